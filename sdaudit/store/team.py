"""A rater team's part of the store: study settings, blind repeats, gold and adjudicated labels, and
raters' self-described groups.

``Team(store)`` reads and writes through the store's database (``database.py``), as
``jobs.JobQueue`` does. What each table holds:

- ``studies``' team columns (``TeamSettings``): raters per image (k), how often a repeat is shown,
  when raters disagree enough to list an image for adjudication, the rater-group fields it asks;
- ``repeat_answers``: a rater's answer to an image shown to them again, blind. Kept apart from
  ``annotations``, so a repeat never counts in an estimate (the rater's first answer does, once);
- ``gold_labels``: an admin's reference labels for an image. The raters' own answers on a gold image
  are ordinary annotations and count once; the reference only scores them;
- ``adjudications``: an admin's final label for an image, with a note (``labels="adjudicated"``);
- ``rater_profiles``: each rater's answers to the study's group fields and whether they consented,
  kept apart from the labels; asked once.

Nothing here imports pandas at module level: the Annotate page reads the queue through it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sdaudit.records import rater_name
from sdaudit.scheme import DISAGREEMENT_WORDS, LABEL_COLUMNS, Annotation
from sdaudit.store.database import TableGroup
from sdaudit.store.runs import STUDY_IMAGES, TO_STUDY

if TYPE_CHECKING:
    import pandas as pd

MAX_RATERS_PER_IMAGE = 50
MAX_REPEAT_EVERY = 1000
MAX_FIELDS = 8
MAX_FIELD_NAME = 40
MAX_ANSWER = 100
CONSENT = ("I agree that the answers below are stored with this study, apart from my labels, and are used only to "
           "compare how raters from different groups label the images. Every field is optional.")

RATERS_TEXT = "`raters per image` must be a whole number from 1 to {most} but is {value!r}."
REPEAT_TEXT = "`repeat every` must be a whole number from 0 (no repeats) to {most} but is {value!r}."
SPREAD_TEXT = "`MST spread` must be a whole number from 1 to 9 but is {value!r}."
FIELDS_TEXT = ("rater-group fields must be at most {most} distinct names of 1 to {length} characters, "
               "without line breaks, but are {value!r}.")
ANSWER_TEXT = "the answer to {field!r} must be at most {length} characters without line breaks but is {value!r}."
NO_STUDY = "there is no study {study!r} in the store."
NO_IMAGE = "there is no image with id {image_id!r} in study {study!r}."
NOTE_TEXT = "an adjudication needs a note saying why (1 to 500 characters) but got {value!r}."


@dataclass(frozen=True)
class TeamSettings:
    """A study's team settings; ``check`` validates them all at once."""

    raters_per_image: int = 1
    repeat_every: int = 0  # after every this many of a rater's annotations, one repeat (0: none)
    disagree_mst_spread: int = 2  # highest minus lowest MST at which raters disagree
    disagree_gender: bool = True  # raters who saw a person named different genders
    disagree_person: bool = True  # some raters saw a person and some did not
    rater_fields: tuple[str, ...] = ()

    @property
    def disagreement_rules(self) -> str:
        """When an image is listed for adjudication, in words."""
        words = DISAGREEMENT_WORDS
        rules = [words[field] for field, on in (("person", self.disagree_person), ("gender", self.disagree_gender)) if on]
        spread = words["mst"].format(spread=self.disagree_mst_spread)
        return "; ".join([*rules, f"{spread} or more", words["skin_binary"]])

    def check(self) -> TeamSettings:
        def whole(value, low, high) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

        if not whole(self.raters_per_image, 1, MAX_RATERS_PER_IMAGE):
            raise ValueError(RATERS_TEXT.format(most=MAX_RATERS_PER_IMAGE, value=self.raters_per_image))
        if not whole(self.repeat_every, 0, MAX_REPEAT_EVERY):
            raise ValueError(REPEAT_TEXT.format(most=MAX_REPEAT_EVERY, value=self.repeat_every))
        if not whole(self.disagree_mst_spread, 1, 9):
            raise ValueError(SPREAD_TEXT.format(value=self.disagree_mst_spread))
        fields = self.rater_fields
        if not (isinstance(fields, tuple) and len(fields) <= MAX_FIELDS and len(set(fields)) == len(fields)
                and all(isinstance(name, str) and 0 < len(name.strip()) <= MAX_FIELD_NAME and name == name.strip()
                        and "\n" not in name for name in fields)):
            raise ValueError(FIELDS_TEXT.format(most=MAX_FIELDS, length=MAX_FIELD_NAME, value=fields))
        return self


def parse_fields(text: str) -> tuple[str, ...]:
    """Rater-group field names from a comma-separated line ("region, own MST range, expertise")."""
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


SETTING_COLUMNS = ("raters_per_image", "repeat_every", "disagree_mst_spread", "disagree_gender", "disagree_person",
                   "rater_fields")


def _label_upsert(table: str, *extra: str) -> str:
    """Insert or replace one image's labels (``LABEL_COLUMNS``, then ``extra``) in ``table``, keyed by image."""
    columns = [*LABEL_COLUMNS, *extra]
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns)
    return (f"INSERT INTO {table} (image_id, {', '.join(columns)}) VALUES ({', '.join('?' * (len(columns) + 1))}) "
            f"ON CONFLICT (image_id) DO UPDATE SET {updates}, updated_at = now()")


def _label_values(annotation: Annotation) -> list:
    return [annotation.person_present, annotation.gender, annotation.mst, annotation.skin_binary]


class Team:
    """The team tables of one store."""

    def __init__(self, store: TableGroup):
        self.db = store.db

    # -- settings -------------------------------------------------------------------------------

    def settings(self, study: str) -> TeamSettings:
        """The study's team settings; the defaults for a study not created yet (the sidebar's first)."""
        row = self.db.read_one(f"SELECT {', '.join(SETTING_COLUMNS)} FROM studies WHERE name = ?", [study])
        if row is None:
            return TeamSettings()
        return TeamSettings(*row[:5], rater_fields=tuple(json.loads(row[5])))

    def set_settings(self, study: str, settings: TeamSettings) -> None:
        settings.check()
        values = [settings.raters_per_image, settings.repeat_every, settings.disagree_mst_spread,
                  settings.disagree_gender, settings.disagree_person, json.dumps(list(settings.rater_fields))]

        def work(cursor) -> None:
            assignments = ", ".join(f"{column} = ?" for column in SETTING_COLUMNS)
            if not cursor.execute(f"UPDATE studies SET {assignments} WHERE name = ? RETURNING study_id",
                                  [*values, study]).fetchall():
                raise ValueError(NO_STUDY.format(study=study))

        self.db.write(work)

    def _image_in_study(self, cursor, image_id: int, study: str) -> None:
        found = cursor.execute(f"SELECT 1 FROM {STUDY_IMAGES} WHERE i.image_id = ? AND s.name = ?",
                               [image_id, study]).fetchone()
        if found is None:
            raise ValueError(NO_IMAGE.format(image_id=image_id, study=study))

    # -- repeats --------------------------------------------------------------------------------

    def save_repeat(self, image_id: int, rater: str, annotation: Annotation) -> None:
        """``rater``'s answer to a repeat of an image (kept apart from their annotation of it)."""
        rater = rater_name(rater, what="a repeat answer")
        values = [image_id, rater, *_label_values(annotation), annotation.confidence]
        self.db.write(lambda cursor: cursor.execute(
            "INSERT INTO repeat_answers (image_id, rater, person_present, gender, mst, skin_binary, confidence) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (image_id, rater) DO UPDATE SET "
            "person_present = excluded.person_present, gender = excluded.gender, mst = excluded.mst, "
            "skin_binary = excluded.skin_binary, confidence = excluded.confidence, updated_at = now()",
            values))

    def repeats(self, study: str) -> pd.DataFrame:
        """Every repeat answer of ``study`` beside the rater's annotation of the same image
        (columns ``image_id, rater`` and each label column twice: ``_first`` and ``_repeat``)."""
        columns = ", ".join(f"a.{c} AS {c}_first, x.{c} AS {c}_repeat" for c in LABEL_COLUMNS)
        return self.db.read_frame(
            f"SELECT x.image_id, x.rater, {columns} FROM repeat_answers x "
            "JOIN annotations a ON a.image_id = x.image_id AND a.rater = x.rater "
            f"JOIN images i ON i.image_id = x.image_id {TO_STUDY} WHERE s.name = ? ORDER BY x.rater, x.image_id",
            [study])

    # -- gold -----------------------------------------------------------------------------------

    def set_gold(self, study: str, image_id: int, reference: Annotation, *, by: str = "") -> None:
        """Mark an image of ``study`` as gold with ``reference`` labels (replacing earlier ones)."""
        def work(cursor) -> None:
            self._image_in_study(cursor, image_id, study)
            cursor.execute(_label_upsert("gold_labels", "set_by"), [image_id, *_label_values(reference), by])

        self.db.write(work)

    def remove_gold(self, image_id: int) -> None:
        self.db.write(lambda cursor: cursor.execute("DELETE FROM gold_labels WHERE image_id = ?", [image_id]))

    def gold(self, study: str) -> pd.DataFrame:
        """The study's gold images with their reference labels."""
        return self.db.read_frame(
            f"SELECT g.*, i.run_key, i.seed FROM gold_labels g JOIN images i USING (image_id) {TO_STUDY} "
            "WHERE s.name = ? ORDER BY g.image_id", [study])

    # -- adjudication ---------------------------------------------------------------------------

    def adjudicate(self, study: str, image_id: int, final: Annotation, *, note: str, by: str = "") -> None:
        """Record the final label of an image of ``study``, with a note saying why."""
        note = note.strip() if isinstance(note, str) else note
        if not (isinstance(note, str) and 0 < len(note) <= 500):
            raise ValueError(NOTE_TEXT.format(value=note))

        def work(cursor) -> None:
            self._image_in_study(cursor, image_id, study)
            cursor.execute(_label_upsert("adjudications", "note", "adjudicator"),
                           [image_id, *_label_values(final), note, by])

        self.db.write(work)

    def adjudications(self, study: str) -> pd.DataFrame:
        """The study's final labels, one row per adjudicated image."""
        return self.db.read_frame(
            f"SELECT a.* FROM adjudications a JOIN images i USING (image_id) {TO_STUDY} "
            "WHERE s.name = ? ORDER BY a.image_id", [study])

    # -- rater groups ---------------------------------------------------------------------------

    def profile_asked(self, study: str, rater: str) -> bool:
        """Whether ``rater`` has answered (or declined) the study's rater-group questions."""
        return self.db.read_one(
            "SELECT 1 FROM rater_profiles p JOIN studies s USING (study_id) WHERE s.name = ? AND p.rater = ?",
            [study, rater]) is not None

    def save_profile(self, study: str, rater: str, answers: dict[str, str], *, consented: bool) -> None:
        """``rater``'s answers to the study's fields; without consent nothing but the refusal is kept."""
        rater = rater_name(rater, what="a rater profile")
        fields = self.settings(study).rater_fields
        kept = {}
        for name, value in (answers or {}).items() if consented else ():
            if name not in fields:
                raise ValueError(f"study {study!r} asks no rater-group field {name!r}; its fields: {list(fields)}.")
            value = (value or "").strip()
            if len(value) > MAX_ANSWER or "\n" in value:
                raise ValueError(ANSWER_TEXT.format(field=name, length=MAX_ANSWER, value=value))
            if value:
                kept[name] = value
        self.db.write(lambda cursor: cursor.execute(
            "INSERT INTO rater_profiles (study_id, rater, consented, answers) "
            "SELECT study_id, ?, ?, ? FROM studies WHERE name = ? ON CONFLICT (study_id, rater) DO UPDATE SET "
            "consented = excluded.consented, answers = excluded.answers, answered_at = now()",
            [rater, bool(consented), json.dumps(kept, sort_keys=True), study]))

    def rater_groups(self, study: str) -> dict[str, dict[str, str]]:
        """Consenting raters' answers: rater -> {field: answer}."""
        rows = self.db.read(
            "SELECT p.rater, p.answers FROM rater_profiles p JOIN studies s USING (study_id) "
            "WHERE s.name = ? AND p.consented ORDER BY p.rater", [study])
        return {rater: json.loads(answers) for rater, answers in rows}
