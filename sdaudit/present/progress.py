"""Where a study stands, for the Home page: images, who has annotated them, and the next step.

Reads through ``Store._cursor`` (as ``jobs.JobQueue`` does), so the store keeps its one write path
and this query lives beside the rule that reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sdaudit.store import Store

NextStep = Literal["generate", "annotate", "results"]


@dataclass(frozen=True)
class StudyProgress:
    """One study's counts, as one rater sees them (``rater`` empty: no rater named yet)."""

    study: str
    rater: str
    images: int  # images with files, which raters annotate
    imported: int  # images of imported sheets: labels without files
    annotated_by_you: int  # images with files that ``rater`` has annotated
    annotated_by_anyone: int  # images (with files or imported) that some rater has annotated
    files_annotated_by_anyone: int  # of them, images with files
    raters: int

    @property
    def next_step(self) -> NextStep:
        """Generate while the study has no images; Annotate while some image with a file waits
        (for this rater, or for anyone when no rater is named); Results once all are annotated."""
        if self.images + self.imported == 0:
            return "generate"
        waiting = self.images - (self.annotated_by_you if self.rater else self.files_annotated_by_anyone)
        return "annotate" if waiting > 0 else "results"


def study_progress(store: Store, study: str, rater: str) -> StudyProgress:
    """The counts of ``study`` for ``rater`` (stripped; may be empty)."""
    rater = (rater or "").strip()
    with store._cursor() as cursor:
        row = cursor.execute(
            "WITH study_images AS (SELECT i.image_id, i.external FROM images i JOIN runs r USING (run_key) "
            "JOIN studies s USING (study_id) WHERE s.name = ?), "
            "labelled AS (SELECT a.image_id, a.rater, si.external FROM annotations a JOIN study_images si USING (image_id)) "
            "SELECT (SELECT count(*) FILTER (WHERE NOT external) FROM study_images), "
            "(SELECT count(*) FILTER (WHERE external) FROM study_images), "
            "(SELECT count(*) FROM labelled WHERE rater = ? AND NOT external), "
            "(SELECT count(DISTINCT image_id) FROM labelled), "
            "(SELECT count(DISTINCT rater) FROM labelled), "
            "(SELECT count(DISTINCT image_id) FROM labelled WHERE NOT external)",
            [study, rater],
        ).fetchone()
    images, imported, by_you, by_anyone, raters, files_by_anyone = (int(value) for value in row)
    return StudyProgress(study=study, rater=rater, images=images, imported=imported, annotated_by_you=by_you,
                         annotated_by_anyone=by_anyone, files_annotated_by_anyone=files_by_anyone, raters=raters)


def next_to_label(order: list[tuple[int, bool]], current: int) -> int | None:
    """The image after ``current`` that still misses a label, going round from the end to the
    start; None when every image is complete. ``order`` is (image id, complete) in queue order."""
    start = next((index for index, (image_id, _) in enumerate(order) if image_id == current), -1)
    for image_id, complete in order[start + 1:] + order[:start + 1]:
        if not complete and image_id != current:
            return image_id
    return None


def step(order: list[int], current: int, by: int) -> int:
    """The image ``by`` places from ``current`` in ``order``, held at the ends."""
    if current not in order:
        return order[0]
    return order[min(len(order) - 1, max(0, order.index(current) + by))]
