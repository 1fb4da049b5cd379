"""The rater queue: which of a study's images a rater is offered, in what order, and how far the
rater and the team are. Every count here is of ratings (``annotations.rated``: every question the
study asks is answered), so an image a rater has only started is still theirs to finish and still
another rater's to take.

A study's human sample (``machine.py``: the uniform random subset people label for
prediction-powered intervals) comes first in every rater's list, in draw order: any first part of a
uniform draw is itself a uniform sample, so a team that stops early still leaves a random subset
rated. The queue reads only which images were drawn, never a machine's answer."""

from __future__ import annotations

from dataclasses import dataclass

from sdaudit.records import AnnotationProgress, QueuedImage
from sdaudit.scheme import Annotation
from sdaudit.store.annotations import rated
from sdaudit.store.database import TableGroup
from sdaudit.store.runs import STUDY_IMAGES, TO_STUDY


@dataclass(frozen=True)
class StudyCounts:
    """A study's images and ratings as one rater sees them (``rater`` empty: nobody's own)."""

    images: int  # images with files, which raters annotate
    imported: int  # images of imported sheets: labels without files
    rated_by_you: int  # images with files the rater has rated
    rated_by_anyone: int  # images (with files or imported) with at least one rating
    complete: int  # images with files that have the study's raters per image in ratings
    to_do: int  # images with files the rater has not rated that still need ratings
    raters: int  # people with at least one rating in the study
    needed: int  # the study's raters per image


@dataclass(frozen=True)
class SampleProgress:
    """How far people are with a study's human sample (``rated``: at least one rating; ``complete``:
    the study's raters per image in ratings)."""

    size: int
    rated: int
    complete: int
    needed: int


class RaterQueue(TableGroup):
    """The rater's to-do list and the study's progress, read from ``annotations``."""

    def annotation_queue(self, study: str, rater: str, *, only_missing: bool, shuffled: bool) -> list[QueuedImage]:
        """The study's images (with files) for ``rater`` to annotate, with the rater's saved labels.

        With ``only_missing`` it is the rater's to-do list: the images they have not rated that
        still need ratings (fewer than the study's raters per image), those closest to complete
        first, so a team reaches that many ratings per image with no wasted work; plus the repeats
        now due (``due_repeats``), placed among them and shown blind. Without it, every image in the
        chosen order (``QueuedImage.full`` marks those complete without this rater). Shuffled order
        is stable per rater (a hash of rater and image), so a page reload or a second session shows
        the same order, and different raters see different orders. Either way the study's human
        sample comes first, in draw order (already random; the same for every rater, so a team
        completes its first images first).
        """
        order = "md5(? || ':' || CAST(i.image_id AS VARCHAR))" if shuffled else "i.run_key, i.seed"
        sample_first = "h.draw_order IS NULL, h.draw_order"
        to_do = f"(NOT coalesce({rated('a')}, false) AND coalesce(c.ratings, 0) < s.raters_per_image)"
        sql = (
            f"WITH counted AS (SELECT image_id, count(*) AS ratings FROM annotations a WHERE {rated('a')} "
            "GROUP BY image_id) "
            "SELECT i.image_id, i.run_key, i.seed, i.path, r.prompt, r.negative_prompt, r.model, r.kind, "
            "a.image_id IS NOT NULL, a.person_present, a.gender, a.mst, a.skin_binary, a.confidence, "
            "coalesce(c.ratings, 0), s.raters_per_image "
            f"FROM {STUDY_IMAGES} "
            "LEFT JOIN annotations a ON a.image_id = i.image_id AND a.rater = ? "
            "LEFT JOIN counted c ON c.image_id = i.image_id "
            "LEFT JOIN human_sample_images h ON h.image_id = i.image_id AND h.study_id = s.study_id "
            "WHERE s.name = ? AND NOT i.external "
        )
        params: list = [rater, study]
        if only_missing:  # the closest to complete first; "All" keeps its order, so cards do not move on a rerun
            sql += f"AND {to_do} ORDER BY {sample_first}, coalesce(c.ratings, 0) DESC, {order}"
        else:
            sql += f"ORDER BY {sample_first}, {order}"
        if shuffled:
            params.append(rater)
        # columns 0-7: the image; 8: whether the rater has a row; 9-13: Annotation's fields in order;
        # 14: the image's ratings; 15: the study's raters per image
        queue = [QueuedImage(*row[:8], saved=Annotation(*row[9:14]) if row[8] else None, ratings=row[14],
                             needed=row[15]) for row in self.db.read(sql, params)]
        if only_missing:
            for position, image in enumerate(self.due_repeats(study, rater)):
                queue.insert(min(len(queue), 1 + 2 * position), image)
        return queue

    def study_counts(self, study: str, rater: str) -> StudyCounts:
        """``study``'s images and ratings, and ``rater``'s part of them (``rater`` may be empty)."""
        row = self.db.read_one(
            f"WITH study_images AS (SELECT i.image_id, i.external, s.raters_per_image FROM {STUDY_IMAGES} "
            "WHERE s.name = ?), "
            "ratings AS (SELECT a.image_id, a.rater FROM annotations a JOIN study_images USING (image_id) "
            f"WHERE {rated('a')}), "
            "counted AS (SELECT image_id, count(*) AS ratings, bool_or(rater = ?) AS yours FROM ratings "
            "GROUP BY image_id) "
            "SELECT count(*) FILTER (WHERE NOT si.external), count(*) FILTER (WHERE si.external), "
            "count(*) FILTER (WHERE NOT si.external AND c.yours), count(*) FILTER (WHERE c.ratings > 0), "
            "count(*) FILTER (WHERE NOT si.external AND c.ratings >= si.raters_per_image), "
            "count(*) FILTER (WHERE NOT si.external AND NOT coalesce(c.yours, false) "
            "AND coalesce(c.ratings, 0) < si.raters_per_image), "
            "(SELECT count(DISTINCT rater) FROM ratings), "
            "(SELECT coalesce(any_value(raters_per_image), 1) FROM studies WHERE name = ?) "
            "FROM study_images si LEFT JOIN counted c USING (image_id)",
            [study, rater, study],
        )
        return StudyCounts(*(int(value) for value in row))

    def annotation_progress(self, study: str, rater: str) -> AnnotationProgress:
        """How many of ``study``'s images (with files) ``rater`` has rated, and how many have the
        study's raters per image in ratings."""
        counts = self.study_counts(study, rater)
        return AnnotationProgress(yours=counts.rated_by_you, images=counts.images, complete=counts.complete,
                                  needed=counts.needed)

    def human_sample_progress(self, study: str) -> SampleProgress | None:
        """How many of ``study``'s human sample images people have rated; None when none was drawn."""
        row = self.db.read_one(
            "WITH counted AS (SELECT image_id, count(*) AS ratings FROM annotations a "
            f"WHERE {rated('a')} GROUP BY image_id) "
            "SELECT count(*), count(*) FILTER (WHERE c.ratings > 0), "
            "count(*) FILTER (WHERE c.ratings >= s.raters_per_image), any_value(s.raters_per_image) "
            "FROM human_sample_images h JOIN studies s USING (study_id) "
            "LEFT JOIN counted c ON c.image_id = h.image_id WHERE s.name = ?", [study])
        if row is None or not row[0]:
            return None
        return SampleProgress(*(int(value) for value in row))

    def due_repeats(self, study: str, rater: str) -> list[QueuedImage]:
        """The repeats ``rater`` is due: one per ``repeat_every`` of their ratings in ``study``, less
        those answered; each an image they rated and have not seen repeated (a stable hash picks
        which), carried without their saved labels so it is answered blind."""
        found = self.db.read_one(
            "SELECT repeat_every, "
            f"(SELECT count(*) FROM annotations a JOIN images i USING (image_id) {TO_STUDY} "
            f" WHERE s.name = ? AND a.rater = ? AND NOT i.external AND {rated('a')}), "
            f"(SELECT count(*) FROM repeat_answers x JOIN images i USING (image_id) {TO_STUDY} "
            " WHERE s.name = ? AND x.rater = ?) FROM studies WHERE name = ?",
            [study, rater, study, rater, study])
        if found is None or not found[0]:
            return []
        every, rated_count, answered = found
        due = rated_count // every - answered
        if due <= 0:
            return []
        rows = self.db.read(
            "SELECT i.image_id, i.run_key, i.seed, i.path, r.prompt, r.negative_prompt, r.model, r.kind "
            f"FROM annotations a JOIN images i USING (image_id) {TO_STUDY} "
            f"WHERE s.name = ? AND a.rater = ? AND NOT i.external AND {rated('a')} "
            "AND i.image_id NOT IN (SELECT image_id FROM repeat_answers WHERE rater = ?) "
            "ORDER BY md5('repeat:' || ? || ':' || CAST(i.image_id AS VARCHAR)) LIMIT ?",
            [study, rater, rater, rater, due])
        return [QueuedImage(*row, saved=None, repeat=True) for row in rows]
