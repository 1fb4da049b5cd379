"""Where a study stands, for the Home page: images, who has rated them, and the next step.

The counts come from the store's rater queue (``Store.study_counts``), which counts ratings by the
one rule for "an image is rated": every question the study asks is answered (``annotations.rated``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sdaudit.store import Store, StudyCounts

NextStep = Literal["generate", "annotate", "others", "results"]


@dataclass(frozen=True)
class StudyProgress:
    """One study's counts, as one rater sees them (``rater`` empty: no rater named yet)."""

    study: str
    rater: str
    counts: StudyCounts

    @property
    def next_step(self) -> NextStep:
        """Generate while the study has no images; Annotate while some image with a file waits for
        this rater (for anyone, when no rater is named): the rater has not rated it and it lacks the
        study's raters per image; "others" when what is left waits for other raters only; Results
        once every image with a file has its ratings (or the study holds imported sheets only)."""
        counts = self.counts
        if counts.images + counts.imported == 0:
            return "generate"
        if counts.to_do > 0:
            return "annotate"
        return "others" if counts.complete < counts.images else "results"


def study_progress(store: Store, study: str, rater: str) -> StudyProgress:
    """The counts of ``study`` for ``rater`` (stripped; may be empty)."""
    rater = (rater or "").strip()
    return StudyProgress(study=study, rater=rater, counts=store.study_counts(study, rater))


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
