"""Annotations: each rater's current labels for an image, an append-only history of every save,
undo, and the one rule for when an annotation is a rating.

Nothing is ever deleted implicitly: annotations are upserted and appended to the history (a rater's
undo of an image's first save removes its current row, never its history).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sdaudit.records import RunRecord, rater_name
from sdaudit.scheme import LABEL_COLUMNS, Annotation
from sdaudit.store.database import Cursor, TableGroup
from sdaudit.store.runs import STUDY_IMAGES, TO_STUDY, sheet_images_insert, study_id_in

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

ANNOTATION_COLUMNS = ("image_id", "rater", *LABEL_COLUMNS, "confidence")
# One annotation as a relation of ANNOTATION_COLUMNS, its values as ``?`` parameters.
ONE_ANNOTATION = (f"(VALUES ({', '.join('?' * len(ANNOTATION_COLUMNS))})) "
                  f"AS incoming({', '.join(ANNOTATION_COLUMNS)})")


@dataclass(frozen=True)
class SavedSheet:
    """What ``import_sheet`` did with a sheet's annotations, and how many of its runs it added."""

    new: int  # no annotation of that rater on that image before
    changed: int  # replaced that rater's other labels for the image (the old ones stay in the history)
    unchanged: int  # equal to that rater's current labels: nothing written
    runs_added: int


def rated(alias: str) -> str:
    """SQL that is true when the annotation row ``alias`` is a rating: every question the study asks
    is answered — whether a person is shown, and the rater's confidence; for a person, also gender
    presentation and skin tone (an MST value or lighter / darker: a sheet imported into an MST study
    may carry only the coarser answer, and it still answers the question). ``Annotation.complete``
    is the same rule for one annotation in Python (tests/test_team_queue.py holds them together).
    The rater queue, its progress, Home and the team's repeats all count ratings by this rule;
    shares and agreement read every answer for the questions it answers (``present.words.ANSWERS``)."""
    a = alias
    return (f"({a}.person_present IS NOT NULL AND {a}.confidence IS NOT NULL AND (NOT {a}.person_present "
            f"OR ({a}.gender IS NOT NULL AND ({a}.mst IS NOT NULL OR {a}.skin_binary IS NOT NULL))))")


def _upsert_frame(cursor: Cursor, frame: pd.DataFrame) -> int:
    """``_upsert_annotations`` of the rows of ``frame`` (ANNOTATION_COLUMNS); returns how many."""
    cursor.register("incoming_annotations", frame)
    try:
        _upsert_annotations(cursor, "incoming_annotations", [])
    finally:
        cursor.unregister("incoming_annotations")
    return len(frame)


def _upsert_annotations(cursor: Cursor, incoming: str, params: list) -> list[int]:
    """The one annotation upsert: each row of the relation ``incoming`` (ANNOTATION_COLUMNS)
    becomes its image × rater's current labels and is appended to the history; returns the
    history's new event ids. An image id that is not in the store refuses them all."""
    columns = ", ".join(ANNOTATION_COLUMNS)
    unknown = cursor.execute(
        f"SELECT min(image_id) FROM {incoming} WHERE image_id NOT IN (SELECT image_id FROM images)", params
    ).fetchone()[0]
    if unknown is not None:
        raise ValueError(f"there is no image with id {unknown!r} in the store.")
    cursor.execute(
        f"INSERT INTO annotations ({columns}, updated_at) SELECT {columns}, current_timestamp FROM {incoming} "
        "ON CONFLICT (image_id, rater) DO UPDATE SET person_present = excluded.person_present, "
        "gender = excluded.gender, mst = excluded.mst, skin_binary = excluded.skin_binary, "
        "confidence = excluded.confidence, updated_at = excluded.updated_at",
        params,
    )
    added = cursor.execute(
        f"INSERT INTO annotation_history ({columns}) SELECT {columns} FROM {incoming} RETURNING event_id", params
    ).fetchall()
    return [int(event_id) for (event_id,) in added]


class AnnotationTables(TableGroup):
    """The ``annotations`` and ``annotation_history`` tables."""

    def save_annotation(self, image_id: int, rater: str, annotation: Annotation, *,
                        overlap: bool = False) -> int | None:
        """Set ``rater``'s current labels for an image and append them to the history; returns the
        save's event id in the history (what ``undo_save`` takes), or None when refused.

        With ``overlap`` (the Annotate page), once an image has its study's raters per image in
        ratings from other raters, a save by a rater who has not rated it (no answer yet, or an
        unfinished one) is refused (None, nothing written). The count and the write are one
        transaction under the store's write lock, so of two raters who finish an image at once only
        one takes its last place. Edits of one's own rating always save.
        """
        rater = rater_name(rater, what="an annotation")
        values = [image_id, rater, annotation.person_present, annotation.gender, annotation.mst,
                  annotation.skin_binary, annotation.confidence]

        def work(cursor: Cursor) -> int | None:
            if overlap:
                own, others = cursor.execute(
                    f"SELECT count(*) FILTER (WHERE rater = ? AND {rated('a')}), "
                    f"count(*) FILTER (WHERE rater <> ? AND {rated('a')}) FROM annotations a WHERE image_id = ?",
                    [rater, rater, image_id],
                ).fetchone()
                found = cursor.execute(f"SELECT s.raters_per_image FROM {STUDY_IMAGES} WHERE i.image_id = ?",
                                       [image_id]).fetchone()
                needed = found[0] if found else None
                if needed is not None and own == 0 and others >= needed:
                    return None
            return _upsert_annotations(cursor, ONE_ANNOTATION, values)[0]

        return self.db.write(work)

    def undo_save(self, event_id: int, rater: str) -> int:
        """Put ``rater``'s labels for an image back to what they were before save ``event_id``
        (an id ``save_annotation`` returned), appending the restored labels to the history;
        returns the image's id. Undoing a session's saves newest first walks back through them.

        Before the image's first save there was no row: the current row goes and the history
        records the undo as a row with no labels (so a later undo reads it as "no row" too).
        """
        def work(cursor: Cursor) -> int:
            saved = cursor.execute("SELECT image_id FROM annotation_history WHERE event_id = ? AND rater = ?",
                                   [event_id, rater]).fetchone()
            if saved is None:
                raise ValueError(f"there is no save {event_id!r} by rater {rater!r} to undo.")
            image_id = int(saved[0])
            before = cursor.execute(
                "SELECT person_present, gender, mst, skin_binary, confidence FROM annotation_history "
                "WHERE image_id = ? AND rater = ? AND event_id < ? ORDER BY event_id DESC LIMIT 1",
                [image_id, rater, event_id],
            ).fetchone()
            if before is None or all(value is None for value in before):
                cursor.execute("DELETE FROM annotations WHERE image_id = ? AND rater = ?", [image_id, rater])
                cursor.execute("INSERT INTO annotation_history (image_id, rater) VALUES (?, ?)", [image_id, rater])
            else:
                _upsert_annotations(cursor, ONE_ANNOTATION, [image_id, rater, *before])
            return image_id

        return self.db.write(work)

    def annotation(self, image_id: int, rater: str) -> Annotation | None:
        """``rater``'s current labels for one image, or None when the rater has none."""
        row = self.db.read_one("SELECT person_present, gender, mst, skin_binary, confidence FROM annotations "
                               "WHERE image_id = ? AND rater = ?", [image_id, rater])
        return Annotation(*row) if row else None

    def save_annotations(self, rows: pd.DataFrame) -> int:
        """Save many annotations in one transaction (all or nothing); returns rows saved.

        ``rows`` has ``image_id``, ``rater`` and the label columns; values must already be
        checked against the scheme (``Annotation``). Each row also goes to the history.
        """
        frame = rows[list(ANNOTATION_COLUMNS)].astype({"image_id": "int64", "person_present": "boolean", "mst": "Int64"})
        if frame.empty:
            return 0

        return self.db.write(lambda cursor: _upsert_frame(cursor, frame))

    def import_sheet(self, rows: pd.DataFrame, *, study: str, runs: Sequence[RunRecord] = (),
                     created_at: Mapping[str, datetime] | None = None, images: pd.DataFrame | None = None) -> SavedSheet:
        """A sheet's whole import in one transaction, all or nothing: the study (if new), each of
        ``runs`` unless present (one added is dated ``created_at[run_key]`` where given), an image row
        without a file for each of ``images`` (``run_key``, ``seed``, ``source_name``; one present is
        reused) and the annotations of ``rows`` (``run_key``, ``seed``, ``rater`` and the label
        columns), each on the image of its run and seed. An annotation equal to the image × rater's
        current one is left as it is (no history entry): importing a sheet twice writes nothing."""
        frame = rows[["run_key", "seed", *ANNOTATION_COLUMNS[1:]]].reset_index(drop=True).astype(
            {"seed": "int64", "person_present": "boolean", "mst": "Int64"}).assign(position=lambda f: range(len(f)))
        inserts = [(run, self._run_insert(run)) for run in runs]  # RunTables', a part of Store
        insert_images = sheet_images_insert(images) if images is not None else None
        dates = dict(created_at or {})
        same = " AND ".join(f"a.{column} IS NOT DISTINCT FROM s.{column}" for column in ANNOTATION_COLUMNS[2:])

        def work(cursor: Cursor) -> SavedSheet:
            study_id_in(cursor, study)
            added = 0
            for run, insert in inserts:
                if insert(cursor):
                    added += 1
                    if run.run_key in dates:  # a recreated run keeps the time it was made (runs are listed by it)
                        cursor.execute("UPDATE runs SET created_at = ? WHERE run_key = ?", [dates[run.run_key], run.run_key])
            if insert_images is not None:
                insert_images(cursor)
            cursor.register("incoming_sheet", frame)
            try:
                found = cursor.execute(
                    "SELECT s.position, i.image_id, a.image_id IS NOT NULL, "
                    f"a.image_id IS NOT NULL AND {same} FROM incoming_sheet s "
                    "LEFT JOIN images i USING (run_key, seed) "
                    "LEFT JOIN annotations a ON a.image_id = i.image_id AND a.rater = s.rater ORDER BY s.position"
                ).fetchall()
            finally:
                cursor.unregister("incoming_sheet")
            missing = next((position for position, image_id, _, _ in found if image_id is None), None)
            if missing is not None:
                raise ValueError(f"row {missing} of the sheet has no image {frame.loc[missing, 'run_key']!r} seed "
                                 f"{frame.loc[missing, 'seed']} in the store.")
            held = [bool(present) for _, _, present, _ in found]
            unchanged = [bool(equal) for _, _, _, equal in found]
            write = frame.assign(image_id=[int(image_id) for _, image_id, _, _ in found])[[not u for u in unchanged]]
            _upsert_frame(cursor, write[list(ANNOTATION_COLUMNS)])
            return SavedSheet(new=held.count(False), changed=sum(h and not u for h, u in zip(held, unchanged)),
                              unchanged=sum(unchanged), runs_added=added)

        return self.db.write(work)

    def annotations(self, *, study: str | None = None) -> pd.DataFrame:
        """Current annotations with the image's run, seed and study."""
        sql = ("SELECT a.*, i.run_key, i.seed, i.path, i.external, i.source_name, s.name AS study "
               f"FROM annotations a JOIN images i USING (image_id) {TO_STUDY} ")
        params: list = []
        if study is not None:
            sql += "WHERE s.name = ? "
            params.append(study)
        return self.db.read_frame(sql + "ORDER BY a.image_id, a.rater", params)

    def annotation_history(self, *, image_id: int | None = None) -> pd.DataFrame:
        """Every annotation ever saved, oldest first."""
        if image_id is None:
            return self.db.read_frame("SELECT * FROM annotation_history ORDER BY event_id")
        return self.db.read_frame("SELECT * FROM annotation_history WHERE image_id = ? ORDER BY event_id", [image_id])
