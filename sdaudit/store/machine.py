"""Audits at scale: machine labellers' answers and people's random subset (issue 25, migration 7).

``MachineTables(store)`` reads and writes through the store's database (``database.py``), as
``team.Team`` does. What each table holds:

- ``labellings``: one labeller run over a study — the labeller (``clip``, ``skin-pixels``), its model
  (a hub id or folder, or the face detector) and revision, its method as JSON (the prompts per
  answer, or the colour space and distance) and library versions. Labelling a study again with the
  same labeller, model, revision and method continues the same labelling (a resume), never a second;
- ``machine_labels``: a labelling's answer for one image (the scheme's label columns; no confidence)
  and, as JSON, the score of every answer it weighed. Kept apart from ``annotations``, so that no
  estimate, rater queue, agreement or export of people's labels can count a machine's answer, and no
  rater is ever shown one;
- ``human_samples`` and ``human_sample_images``: the uniform random subset of a study's generated
  images that people label for prediction-powered intervals — its seed, size and the number of images
  it was drawn from (recorded, so the draw can be repeated and checked), and each image drawn, its
  place in the draw and its inclusion probability (size / population, the same for every image).

Nothing here imports pandas at module level.
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sdaudit.records import rater_name
from sdaudit.scheme import LABEL_COLUMNS, Annotation
from sdaudit.store.database import Cursor, TableGroup
from sdaudit.store.runs import TO_STUDY

if TYPE_CHECKING:
    import pandas as pd

NO_STUDY = "there is no study {study!r} in the store."
NO_LABELLING = "there is no labelling with id {value!r} in the store."
LABELLER_TEXT = "`labeller` must be a name of 1 to 40 letters, digits or '-' but is {value!r}."
MODEL_TEXT = "`model` must be a non-empty text of at most 500 characters but is {value!r}."
NOT_IN_STUDY = "image {image_id!r} is not an image of study {study!r} (labelling {labelling_id})."
SCORES_TEXT = "the scores of image {image_id!r} must be a mapping of fields to mappings of answers to numbers but are {value!r}."
SAMPLE_SIZE = ("a human sample needs a whole number of images from 2 to the study's {population} generated images "
               "but got {value!r}.")
TOO_FEW_TO_SAMPLE = ("study {study!r} has {population} generated image(s): a human sample is drawn from at least 2 "
                     "(an imported sheet's or a reference set's images are not sampled).")
SAMPLE_SEED = "a human sample's seed must be a whole number from 0 to 2**63 - 1 but is {value!r}."
SAMPLE_EXISTS = ("study {study!r} has a human sample already ({size} of {population} images, seed {seed}); a second "
                 "draw would void the first one's randomness, so it is kept.")
MAX_SEED = 2**63 - 1
# The images a machine labels and a human sample is drawn from: a study's generated images (those
# with files: an imported sheet's have none, and a reference set's real photos are not the model's).
GENERATED = "r.kind = 'generated' AND NOT i.external"


@dataclass(frozen=True)
class MachineAnswer:
    """A labeller's answer for one image: the scheme's labels (``labels``, no confidence) and the
    score of every answer it weighed, by field (``{"gender": {"female": 0.8, "male": 0.2}}``)."""

    image_id: int
    labels: Annotation
    scores: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Labelling:
    """One labeller run over a study, and how many of the study's images it has labelled."""

    labelling_id: int
    study: str
    labeller: str
    model: str
    model_revision: str | None
    method: dict
    versions: dict
    labelled: int


@dataclass(frozen=True)
class HumanSample:
    """A study's human sample: the draw's settings and its images in draw order."""

    study: str
    seed: int
    size: int
    population: int
    drawn_by: str | None
    image_ids: tuple[int, ...]
    # the largest image id when it was drawn: the study's generated images up to it are its population
    # (ids only grow), and images generated later were never in the draw
    last_image_id: int = 0

    @property
    def inclusion_probability(self) -> float:
        return self.size / self.population


def _check_scores(image_id: int, scores) -> str:
    ok = isinstance(scores, Mapping) and all(
        isinstance(name, str) and isinstance(answers, Mapping) and all(
            isinstance(answer, str) and isinstance(value, int | float) and not isinstance(value, bool)
            and 0 <= value <= 1 for answer, value in answers.items())
        for name, answers in scores.items())
    if not ok:
        raise ValueError(SCORES_TEXT.format(image_id=image_id, value=scores))
    return json.dumps({name: dict(answers) for name, answers in scores.items()}, sort_keys=True)


class MachineTables:
    """The machine-label and human-sample tables of one store."""

    def __init__(self, store: TableGroup):
        self.db = store.db

    def _study_id(self, cursor: Cursor, study: str) -> int:
        row = cursor.execute("SELECT study_id FROM studies WHERE name = ?", [study]).fetchall()
        if not row:
            raise ValueError(NO_STUDY.format(study=study))
        return int(row[0][0])

    # -- labellings -----------------------------------------------------------------------------

    def start_labelling(self, study: str, labeller: str, model: str, *, model_revision: str | None = None,
                        method: Mapping | None = None, versions: Mapping | None = None) -> int:
        """The id of ``study``'s labelling by ``labeller`` with this model, revision and method: the
        existing one (a resume) or a new one."""
        if not (isinstance(labeller, str) and 0 < len(labeller) <= 40
                and labeller.replace("-", "").isalnum() and labeller.isascii()):
            raise ValueError(LABELLER_TEXT.format(value=labeller))
        if not (isinstance(model, str) and model.strip() and len(model) <= 500):
            raise ValueError(MODEL_TEXT.format(value=model))
        method_text = json.dumps(dict(method or {}), sort_keys=True)

        def work(cursor: Cursor) -> int:
            study_id = self._study_id(cursor, study)
            found = cursor.execute(
                "SELECT labelling_id FROM labellings WHERE study_id = ? AND labeller = ? AND model = ? "
                "AND model_revision IS NOT DISTINCT FROM ? AND method = ? ORDER BY labelling_id",
                [study_id, labeller, model, model_revision, method_text]).fetchall()
            if found:
                return int(found[0][0])
            return int(cursor.execute(
                "INSERT INTO labellings (study_id, labeller, model, model_revision, method, versions) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING labelling_id",
                [study_id, labeller, model, model_revision, method_text,
                 json.dumps(dict(versions or {}), sort_keys=True)]).fetchall()[0][0])

        return self.db.write(work)

    def labellings(self, study: str) -> list[Labelling]:
        """The study's labellings, oldest first, each with how many images it has labelled."""
        rows = self.db.read(
            "SELECT l.labelling_id, s.name, l.labeller, l.model, l.model_revision, l.method, l.versions, "
            "(SELECT count(*) FROM machine_labels m WHERE m.labelling_id = l.labelling_id) "
            "FROM labellings l JOIN studies s USING (study_id) WHERE s.name = ? ORDER BY l.labelling_id", [study])
        return [_labelling(row) for row in rows]

    def labelling(self, labelling_id: int) -> Labelling:
        row = self.db.read_one(
            "SELECT l.labelling_id, s.name, l.labeller, l.model, l.model_revision, l.method, l.versions, "
            "(SELECT count(*) FROM machine_labels m WHERE m.labelling_id = l.labelling_id) "
            "FROM labellings l JOIN studies s USING (study_id) WHERE l.labelling_id = ?", [labelling_id])
        if row is None:
            raise ValueError(NO_LABELLING.format(value=labelling_id))
        return _labelling(row)

    def images_to_label(self, labelling_id: int, run_keys: Sequence[str] | None = None) -> list[tuple[int, str]]:
        """The (image id, path) of the labelling's study's generated images it has not labelled yet,
        in image order; only those of ``run_keys`` when given."""
        study = self.labelling(labelling_id).study
        runs = "" if run_keys is None else f" AND i.run_key IN ({', '.join('?' * len(run_keys))})"
        if run_keys is not None and not run_keys:
            return []
        rows = self.db.read(
            f"SELECT i.image_id, i.path FROM images i {TO_STUDY} WHERE s.name = ? AND {GENERATED}{runs} "
            "AND i.image_id NOT IN (SELECT image_id FROM machine_labels WHERE labelling_id = ?) ORDER BY i.image_id",
            [study, *(run_keys or []), labelling_id])
        return [(int(image_id), path) for image_id, path in rows]

    def generated_images(self, study: str, run_keys: Sequence[str] | None = None) -> int:
        """How many generated images the study has (of ``run_keys`` when given): what a labelling of
        it would label. ``NO_STUDY`` for a study the store does not hold."""
        runs = "" if run_keys is None else f" AND i.run_key IN ({', '.join('?' * len(run_keys))})"
        if run_keys is not None and not run_keys:
            return 0

        def count(cursor: Cursor) -> int:
            self._study_id(cursor, study)
            return int(cursor.execute(f"SELECT count(*) FROM images i {TO_STUDY} WHERE s.name = ? AND {GENERATED}{runs}",
                                      [study, *(run_keys or [])]).fetchall()[0][0])

        return self.db.read_together(count)

    def save_machine_labels(self, labelling_id: int, answers: Sequence[MachineAnswer]) -> int:
        """Store a batch of the labelling's answers in one transaction (replacing earlier answers for
        the same images); an image outside the labelling's study refuses the whole batch."""
        rows = [[labelling_id, answer.image_id, answer.labels.person_present, answer.labels.gender,
                 answer.labels.mst, answer.labels.skin_binary, _check_scores(answer.image_id, answer.scores)]
                for answer in answers]
        study = self.labelling(labelling_id).study

        def work(cursor: Cursor) -> int:
            # One query and one statement a batch, not two a row: a row's round trip cost ~15 ms on a busy
            # machine, more than the tiny CLIP's labelling (benchmarks/machine_label_speed.py).
            ids = list(dict.fromkeys(row[1] for row in rows))
            if not ids:
                return 0
            found = {int(image_id) for (image_id,) in cursor.execute(
                f"SELECT i.image_id FROM images i {TO_STUDY} WHERE s.name = ? AND i.image_id IN "
                f"({', '.join('?' * len(ids))})", [study, *ids]).fetchall()}
            for image_id in ids:
                if image_id not in found:
                    raise ValueError(NOT_IN_STUDY.format(image_id=image_id, study=study, labelling_id=labelling_id))
            last = list({row[1]: row for row in rows}.values())  # an image twice in a batch: its last answer
            columns = ", ".join(LABEL_COLUMNS)
            updates = ", ".join(f"{column} = excluded.{column}" for column in (*LABEL_COLUMNS, "scores"))
            cursor.execute(
                f"INSERT INTO machine_labels (labelling_id, image_id, {columns}, scores) VALUES "
                f"{', '.join(['(?, ?, ?, ?, ?, ?, ?)'] * len(last))} "
                f"ON CONFLICT (labelling_id, image_id) DO UPDATE SET {updates}, labelled_at = now()",
                [value for row in last for value in row])
            return len(rows)

        return self.db.write(work)

    def machine_labels(self, study: str, labelling_id: int | None = None) -> pd.DataFrame:
        """The study's machine answers (every labelling, or one): ``labelling_id, labeller, model,
        image_id, run_key, seed``, the label columns and ``scores`` (a dict per row)."""
        only = "" if labelling_id is None else " AND m.labelling_id = ?"
        frame = self.db.read_frame(
            f"SELECT m.labelling_id, l.labeller, l.model, m.image_id, i.run_key, i.seed, "
            f"{', '.join('m.' + c for c in LABEL_COLUMNS)}, m.scores FROM machine_labels m "
            "JOIN labellings l USING (labelling_id) JOIN images i ON i.image_id = m.image_id "
            "JOIN runs r ON r.run_key = i.run_key JOIN studies s ON s.study_id = r.study_id "
            f"WHERE s.name = ?{only} ORDER BY m.labelling_id, m.image_id",
            [study, *([] if labelling_id is None else [labelling_id])])
        frame["scores"] = [json.loads(text) for text in frame["scores"]]
        return frame

    # -- the human sample -----------------------------------------------------------------------

    def draw_human_sample(self, study: str, size: int, *, seed: int | None = None, by: str | None = None) -> HumanSample:
        """Draw a uniform random sample of ``size`` of the study's generated images for people to
        label (without replacement; ``random.Random(seed).sample`` over the images in id order), and
        record it. A study has one sample: a second draw is refused (``SAMPLE_EXISTS``)."""
        if seed is None:
            seed = secrets.randbelow(2**31)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise ValueError(SAMPLE_SEED.format(value=seed))
        drawn_by = None if by is None else rater_name(by, what="a human sample")

        def work(cursor: Cursor) -> None:
            study_id = self._study_id(cursor, study)
            existing = cursor.execute("SELECT size, population, seed FROM human_samples WHERE study_id = ?",
                                      [study_id]).fetchall()
            if existing:
                old_size, population, old_seed = existing[0]
                raise ValueError(SAMPLE_EXISTS.format(study=study, size=old_size, population=population, seed=old_seed))
            ids = [int(row[0]) for row in cursor.execute(
                f"SELECT i.image_id FROM images i {TO_STUDY} WHERE s.study_id = ? AND {GENERATED} ORDER BY i.image_id",
                [study_id]).fetchall()]
            if len(ids) < 2:
                raise ValueError(TOO_FEW_TO_SAMPLE.format(study=study, population=len(ids)))
            if isinstance(size, bool) or not isinstance(size, int) or not 2 <= size <= len(ids):
                raise ValueError(SAMPLE_SIZE.format(population=len(ids), value=size))
            chosen = random.Random(seed).sample(ids, size)
            cursor.execute("INSERT INTO human_samples (study_id, seed, size, population, last_image_id, drawn_by) "
                           "VALUES (?, ?, ?, ?, ?, ?)", [study_id, seed, size, len(ids), ids[-1], drawn_by])
            cursor.executemany(
                "INSERT INTO human_sample_images (study_id, image_id, draw_order, inclusion_probability) "
                "VALUES (?, ?, ?, ?)", [[study_id, image_id, order, size / len(ids)]
                                        for order, image_id in enumerate(chosen, start=1)])

        self.db.write(work)
        sample = self.human_sample(study)
        assert sample is not None
        return sample

    def human_sample(self, study: str) -> HumanSample | None:
        """The study's human sample, or None when none was drawn."""
        row = self.db.read_one(
            "SELECT h.seed, h.size, h.population, h.drawn_by, h.study_id, h.last_image_id FROM human_samples h "
            "JOIN studies s USING (study_id) WHERE s.name = ?", [study])
        if row is None:
            return None
        ids = tuple(int(image_id) for (image_id,) in self.db.read(
            "SELECT image_id FROM human_sample_images WHERE study_id = ? ORDER BY draw_order", [row[4]]))
        return HumanSample(study, int(row[0]), int(row[1]), int(row[2]), row[3], ids, int(row[5]))


def _labelling(row: tuple) -> Labelling:
    labelling_id, study, labeller, model, revision, method, versions, labelled = row
    return Labelling(int(labelling_id), study, labeller, model, revision, json.loads(method),
                     json.loads(versions or "{}"), int(labelled))
