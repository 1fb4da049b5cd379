"""A study's prediction-powered shares from the store: the machine's answers on every generated image
and people's labels on the human sample (issue 25, item 3). ``ppi.py`` does the statistics; this
module reads the store (``MachineTables``' public methods and ``store.annotations``) and lines up,
image by image, what each side said.

**Which answers.** Per field, one labelling: gender from a labelling that answers gender, skin tone
from one that answers skin tone (MST, cut at ``skin_cut``, or lighter/darker) — the most recent such
labelling, unless ``labelling_id`` names one (used for the fields it answers). The intersection
needs both, on the images both labelled. A machine's missing answer on an image with a person counts
as `unclear`; its "no person" as a group of its own.

**Which people's labels.** Only those on the study's human sample (``MachineTables.human_sample``):
labels on any other image were not drawn at random (a rater chose, or the queue offered, them) and
would void the method, so they are never read into it. With several raters an image's label is the
human estimate's (``labels.image_decisions``: a person when at least half of the raters who answered
saw one; then ``soft``, the share of those raters choosing each group, or ``majority``, ties split).
A sample image nobody has answered yet is not labelled; the rated ones stand for the sample only if
which got rated does not depend on what they show (labelling them in draw order keeps that).

**What a share is of.** Every image the machine labelled among those the sample was drawn from (the
study's generated images up to ``HumanSample.last_image_id``: an image generated after the draw could
not be drawn, so it is left out and counted in ``left_out_after_draw``), people's "no person" included
as a row of its own where either side saw an image without one: prediction-powered inference
estimates a mean over one population fixed before anyone looks, and "the images with a person"
depends on who looks. Where every image has a person, this is the human estimate's share.

**Against what.** Parity (1/k of the people) is a target for shares among images with a person, not
for shares of all images. A family's named groups are read against parity (``target``) only where
people saw a person on every rated sample image of that family: then people's estimate of the
"no person" share is 0 and the machine's "no person" answers only carry its error. Otherwise the
rows have no target, their note says on how many rated images a rater saw no person (``NO_PERSON_NOTE``)
and ``MachineHumanEstimate.target_note`` why. (A share among images with a
person, a ratio of two PPI means with a delta-method interval, would have parity as its target; its
coverage is unchecked, so it is not offered.)

**Which labelling answers a field.** One that gave at least one answer for it other than `unclear`
on an image it saw a person in: a labelling whose every answer is `unclear` (a face detector that
found no face) or that saw no person anywhere answers nothing.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sdaudit.analysis.labels import answer_codes, image_decisions
from sdaudit.analysis.options import DEFAULT_CONFIDENCE, check_confidence
from sdaudit.analysis.ppi import PPI_COLUMNS, ppi_row, ppi_share
from sdaudit.scheme import (
    DEFAULT_SKIN_CUT,
    FAMILIES,
    GENDERS,
    SKIN_ANSWERS,
    check_skin_cut,
    family_groups,
    is_darker,
)

MACHINE_HUMAN = "machine+human"  # `estimate --labels`' name for it
NO_PERSON = "no_person"
FIELDS = {"gender": ("gender",), "skin_tone": ("skin",), "intersection": ("gender", "skin")}
HUMAN_LABELS = ("soft", "majority")
# Below this many people's labels the simulation (benchmarks/ppi_coverage.py) did not look.
SIMULATED_MIN_HUMAN = 100
BELOW_GRID = f"fewer than {SIMULATED_MIN_HUMAN} people's labels: below the simulated range, coverage unchecked"
SOFT_NOTE = "several raters' shares: the simulation checked one rater's labels"
COLUMNS = [*PPI_COLUMNS, "labelling", "labelling_ids", "sample_size", "target", "left_out_after_draw", "note"]

NO_MACHINE = ("study {study!r} has no machine labels: run `python -m sdaudit machine-label --study {study} "
              "--labeller clip` first.")
NO_MACHINE_IN_RUNS = "none of the chosen runs of study {study!r} has machine labels: choose others."
NO_FIELD = ("study {study!r} has no machine answers for {field}: run `python -m sdaudit machine-label --study {study} "
            "--labeller {labeller}` first.")
SILENT_FIELD = ("study {study!r} has no machine answers for {field}: {why}; label it with another labeller (`python -m "
                "sdaudit machine-label --study {study} --labeller {labeller}`) or look at the images.")
ALL_AFTER_DRAW = ("every one of the {images} machine-labelled images of study {study!r} was generated after the human "
                  "sample was drawn, so the sample says nothing about them.")
AFTER_DRAW = ("{images} machine-labelled images generated after the human sample was drawn are left out: it could not "
              "draw them, so it says nothing about them; these shares are of the images it was drawn from.")
NO_PERSON_NOTE = "no target: on {none} of the {rated} rated sample images a rater saw no person"
SKIPPED = ("{skipped} sample images before the last one rated (number {last} in draw order) are not rated: the rated "
           "ones are a random sample only if none was skipped for what it shows; label the sample in draw order.")
NO_TARGET_WHY = ("Where a rater saw no person on rated sample images (a row's note says how many), the shares are of all images, "
                 "so parity among people is not their target and no verdict is given: read them as shares of all "
                 "images, or use `estimate --labels soft` for shares among images with a person.")
NO_SAMPLE = ("study {study!r} has no human sample: draw one with `python -m sdaudit team --study {study} "
             "--human-sample N` and have people label it.")
TOO_FEW_RATED = ("the human sample of study {study!r} has {rated} of its {size} images labelled by people{where}; "
                 "prediction-powered shares need at least 2 (and one machine-labelled image outside the sample).")
ALL_RATED = ("every one of the {images} images the machine labelled for {family} is in the rated human sample: there "
             "is nothing for the machine to add; use `estimate --labels soft`.")
LABELLING_ELSEWHERE = "labelling {value} belongs to study {other!r}, not {study!r}."
LABELLING_SILENT = "labelling {value} ({labeller}) has no answers for gender or skin tone in study {study!r}."
HUMAN_LABELS_TEXT = "`human_labels` must be one of {choices} but is {value!r}."


@dataclass(frozen=True)
class MachineHumanEstimate:
    """``machine_human_estimate``'s result: one row per family × group (``COLUMNS``) and what fed them."""

    table: pd.DataFrame
    study: str
    labellings: dict[str, object]  # field ("gender", "skin") -> the ``Labelling`` that answered it
    sample_size: int
    rated: int  # sample images people labelled
    run_keys: tuple[str, ...]  # the runs whose images the machine labelled
    raters: int  # people who labelled sample images
    confidence: float
    skin_cut: int
    human_labels: str
    # the machine's answers alone on the same images, per family × group: how many it put there, of how many
    machine_only: pd.DataFrame
    left_out_after_draw: int = 0  # machine-labelled images generated after the sample was drawn (not in it)
    # family -> (rated sample images people saw no person in, rated sample images)
    no_person: dict = dataclasses.field(default_factory=dict)
    skipped: tuple[int, int] = (0, 0)  # sample images unrated before the last rated one, and its place in the draw

    @property
    def target_note(self) -> str:
        """Why some rows have no target, in words; empty when every named group has parity."""
        return NO_TARGET_WHY if any(none for none, _ in self.no_person.values()) else ""

    @property
    def left_out_note(self) -> str:
        """The images left out for being generated after the draw, in words; empty when none were."""
        return AFTER_DRAW.format(images=self.left_out_after_draw) if self.left_out_after_draw else ""

    @property
    def skipped_note(self) -> str:
        """Sample images left unrated while later ones were rated, in words; empty when none were."""
        return SKIPPED.format(skipped=self.skipped[0], last=self.skipped[1]) if self.skipped[0] else ""


# -- the machine's answers -----------------------------------------------------------------------

def _answers(frame: pd.DataFrame, field: str) -> pd.Series:
    """Whether each machine-label row answers ``field``: an answer other than `unclear`, on an image it
    did not call empty."""
    person = frame["person_present"].ne(False).fillna(True).astype(bool)  # NA: not said, a person
    if field == "gender":
        return person & frame["gender"].notna() & frame["gender"].ne("unclear")
    return person & (frame["mst"].notna() | (frame["skin_binary"].notna() & frame["skin_binary"].ne("unclear")))


def answering(frame: pd.DataFrame) -> set[int]:
    """The labellings of ``frame`` that answer gender or skin tone on at least one image (``_answers``)."""
    rows = _answers(frame, "gender") | _answers(frame, "skin")
    return set(frame.loc[rows, "labelling_id"].astype(int))


def _silence(frame: pd.DataFrame, labellings: list, field: str) -> str:
    """Why the labellings that tried ``field`` gave no answer for it ("" where none tried)."""
    columns = ["gender"] if field == "gender" else ["mst", "skin_binary"]
    parts = []
    for labelling in labellings:
        rows = frame[frame["labelling_id"] == labelling.labelling_id]
        if rows.empty:
            continue
        if rows["person_present"].eq(False).all():
            parts.append(f"labelling {labelling.labelling_id} ({labelling.labeller}) saw no person on any of its "
                         f"{len(rows)} images, so it answered no {'gender presentation' if field == 'gender' else 'skin tone'}")
        elif rows[columns].notna().any(axis=None):
            parts.append(f"labelling {labelling.labelling_id} ({labelling.labeller}) answered unclear on every one of "
                         f"its {len(rows)} images (or saw no person)")
    return "; ".join(parts)


def choose_labellings(frame: pd.DataFrame, labellings: list, study: str, labelling_id: int | None) -> dict:
    """Per field, the labelling that answers it: ``labelling_id``'s where it does, else the most recent
    (highest id) answering labelling. ``frame``: ``MachineTables.machine_labels(study)``."""
    by_id = {labelling.labelling_id: labelling for labelling in labellings}
    chosen = {}
    for field in ("gender", "skin"):
        answering = sorted(set(frame.loc[_answers(frame, field), "labelling_id"].astype(int)))
        if labelling_id in answering:
            chosen[field] = by_id[labelling_id]
        elif answering:
            chosen[field] = by_id[answering[-1]]
    if labelling_id is not None and labelling_id not in {labelling.labelling_id for labelling in chosen.values()}:
        raise ValueError(LABELLING_SILENT.format(value=labelling_id, labeller=by_id[labelling_id].labeller, study=study))
    return chosen


def machine_codes(frame: pd.DataFrame, field: str, skin_cut: int) -> pd.Series:
    """One labelling's answer per image (indexed by image id): 0 no person, else 1 + the index in
    ``GENDERS`` or ``SKIN_ANSWERS``; a missing answer on an image with a person is `unclear`."""
    no_person = frame["person_present"].eq(False).fillna(False).to_numpy(dtype=bool)  # NA: not said, a person
    if field == "gender":
        codes = pd.Categorical(frame["gender"], categories=list(GENDERS)).codes + 1
    else:
        binary = pd.Categorical(frame["skin_binary"], categories=list(SKIN_ANSWERS)).codes + 1
        mst = pd.to_numeric(frame["mst"], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            codes = np.where(np.isnan(mst), binary, 1 + is_darker(mst, skin_cut))
    codes = np.where(codes == 0, 3, codes)  # unanswered: unclear
    return pd.Series(np.where(no_person, 0, codes), index=frame["image_id"].to_numpy(), dtype=np.int64)


def machine_matrix(family: str, gender: np.ndarray | None, skin: np.ndarray | None) -> np.ndarray:
    """Images × (the family's groups, `unclear`, no person), one-hot, from answer codes."""
    groups = family_groups(family)
    out = np.zeros((len(gender if gender is not None else skin), len(groups) + 1))
    if family == "gender":
        out[gender > 0, gender[gender > 0] - 1] = 1
        out[gender == 0, -1] = 1
        return out
    if family == "skin_tone":
        out[skin > 0, skin[skin > 0] - 1] = 1
        out[skin == 0, -1] = 1
        return out
    none = (gender == 0) | (skin == 0)
    unclear = ~none & ((gender == 3) | (skin == 3))
    for index, group in enumerate(FAMILIES["intersection"]):
        tone, sex = group.split("_")
        out[:, index] = ~none & ~unclear & (skin == 1 + SKIN_ANSWERS.index(tone)) & (gender == 1 + GENDERS.index(sex))
    out[unclear, len(groups) - 1] = 1
    out[none, -1] = 1
    return out


# -- people's labels on the sample ---------------------------------------------------------------

def human_matrices(annotations: pd.DataFrame, skin_cut: int, human_labels: str = "soft") -> tuple[np.ndarray, dict]:
    """People's labels per image of ``annotations`` (already only the sample's): the image ids, and per
    family an images × (groups, `unclear`, no person) matrix — the raters' shares (or the majority,
    ties split), one-hot "no person" where the image has none, NaN rows where it is not labelled."""
    if human_labels not in HUMAN_LABELS:
        raise ValueError(HUMAN_LABELS_TEXT.format(choices=", ".join(HUMAN_LABELS), value=human_labels))
    if annotations.empty:
        return np.zeros(0, dtype=np.int64), {family: np.zeros((0, len(family_groups(family)) + 1)) for family in FAMILIES}
    decisions = image_decisions(annotations)
    image_ids = np.zeros(decisions.images, dtype=np.int64)
    image_ids[decisions.codes] = annotations["image_id"].to_numpy()
    seen = np.bincount(decisions.codes, minlength=decisions.images) > 0
    gender, skin = answer_codes(annotations, skin_cut)
    counted = decisions.counted
    rows = decisions.codes[counted]
    matrices = {}
    for family in FAMILIES:
        per_row = machine_matrix(family, gender[counted].astype(np.int64), skin[counted].astype(np.int64))[:, :-1]
        if family == "gender":
            per_row[gender[counted] == 0] = 0  # the row's rater gave no gender: it does not count
        elif family == "skin_tone":
            per_row[skin[counted] == 0] = 0
        else:
            per_row[(gender[counted] == 0) | (skin[counted] == 0)] = 0
        sums = np.zeros((decisions.images, per_row.shape[1]))
        np.add.at(sums, rows, per_row)
        answered = sums.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            labels = sums / answered[:, None]
        if human_labels == "majority":
            top = np.isclose(labels, np.nanmax(np.where(answered[:, None] > 0, labels, 0), axis=1, keepdims=True))
            labels = np.where(answered[:, None] > 0, top / np.maximum(top.sum(axis=1, keepdims=True), 1), np.nan)
        matrix = np.column_stack([labels, np.zeros(decisions.images)])
        matrix[decisions.answered & ~decisions.with_person] = np.eye(matrix.shape[1])[-1]
        matrix[~decisions.answered | ~seen | (decisions.with_person & (answered == 0))] = np.nan
        matrices[family] = matrix
    return image_ids[seen], {family: matrix[seen] for family, matrix in matrices.items()}


# -- the table -------------------------------------------------------------------------------------

def ppi_rows(family: str, machine: np.ndarray, human: np.ndarray, confidence: float) -> list[tuple]:
    """``PPI_COLUMNS`` rows of one family: ``machine`` images × (groups, unclear, no person) one-hot,
    ``human`` likewise with NaN rows for images people did not label. "No person" is a row only where
    either side saw such an image."""
    groups = [*family_groups(family), NO_PERSON]
    labelled = ~np.isnan(human).any(axis=1)
    rows = []
    for index, group in enumerate(groups):
        if group == NO_PERSON and not (machine[:, index].any() or np.nansum(human[:, index]) > 0):
            continue
        with warnings.catch_warnings():  # a group nobody is in: ppi_py's interval is NaN, which says it
            warnings.simplefilter("ignore", RuntimeWarning)
            result = ppi_share(machine[:, index], np.where(labelled, human[:, index], np.nan), confidence=confidence)
        rows.append(ppi_row(family, group, result))
    return rows


def machine_human_estimate(store, study: str, *, labelling_id: int | None = None,
                           confidence: float = DEFAULT_CONFIDENCE, skin_cut: int = DEFAULT_SKIN_CUT,
                           human_labels: str = "soft", runs: Sequence[str] | None = None) -> MachineHumanEstimate:
    """The study's prediction-powered shares (module docstring), over the images of ``runs`` (run keys;
    None: every run) — the sample's images in them are a uniform random sample of those; ``ValueError``
    with a one-line reason where there are no machine labels, no human sample, or too few rated
    sample images."""
    from sdaudit.store.machine import MachineTables

    tables = MachineTables(store)
    if labelling_id is not None and (other := tables.labelling(labelling_id).study) != study:
        raise ValueError(LABELLING_ELSEWHERE.format(value=labelling_id, other=other, study=study))
    return estimate_from(tables.machine_labels(study), tables.labellings(study), tables.human_sample(study),
                         store.annotations(study=study), study, labelling_id=labelling_id, confidence=confidence,
                         skin_cut=skin_cut, human_labels=human_labels, runs=runs)


def estimate_from(frame: pd.DataFrame, labellings: list, sample, annotations: pd.DataFrame, study: str, *,
                  labelling_id: int | None = None, confidence: float = DEFAULT_CONFIDENCE,
                  skin_cut: int = DEFAULT_SKIN_CUT, human_labels: str = "soft",
                  runs: Sequence[str] | None = None) -> MachineHumanEstimate:
    """``machine_human_estimate`` of what it reads from the store: ``frame`` (every labelling's answers,
    ``MachineTables.machine_labels(study)``), the study's ``labellings``, its human ``sample`` (or
    None) and people's ``annotations`` of the study; the machine audit's side by side reads the same."""
    skin_cut, confidence = check_skin_cut(skin_cut), check_confidence(confidence)
    if frame.empty:
        raise ValueError(NO_MACHINE.format(study=study))
    if runs is not None:
        frame = frame[frame["run_key"].isin(set(runs))]
        if frame.empty:
            raise ValueError(NO_MACHINE_IN_RUNS.format(study=study))
    left_out = 0
    if sample is not None:  # the draw's population: images generated after it could not be drawn
        later = frame["image_id"] > sample.last_image_id
        left_out = int(frame.loc[later, "image_id"].nunique())
        if later.all():
            raise ValueError(ALL_AFTER_DRAW.format(images=left_out, study=study))
        frame = frame[~later]
    chosen = choose_labellings(frame, labellings, study, labelling_id)
    if sample is None:
        raise ValueError(NO_SAMPLE.format(study=study))
    in_sample = annotations[annotations["image_id"].isin(set(sample.image_ids))].reset_index(drop=True)
    human_ids, human = human_matrices(in_sample, skin_cut, human_labels)
    codes = {field: machine_codes(frame[frame["labelling_id"] == labelling.labelling_id], field, skin_cut)
             for field, labelling in chosen.items()}
    rows, rated, machine_only, no_person = [], set(), [], {}
    # images some rater of the sample saw no person in (a 1–1 split counts as a person in the shares,
    # but not as "people saw a person" for the parity target)
    said_empty = np.array(sorted(set(in_sample.loc[in_sample["person_present"].eq(False).fillna(False).astype(bool),
                                                   "image_id"].astype(int))), dtype=np.int64)
    for family, fields in FIELDS.items():
        missing = [field for field in fields if field not in chosen]
        if missing:
            if family != "intersection":
                words = "gender presentation" if family == "gender" else "skin tone"
                labeller = "clip" if family == "gender" else "skin-pixels"
                why = _silence(frame, labellings, fields[0])
                raise ValueError(SILENT_FIELD.format(study=study, field=words, why=why, labeller=labeller) if why
                                 else NO_FIELD.format(study=study, field=family.replace("_", " "), labeller=labeller))
            continue
        images = codes[fields[0]].index
        for field in fields[1:]:
            images = images.intersection(codes[field].index)
        images = images.sort_values()
        matrix = machine_matrix(family, *(codes[field].reindex(images).to_numpy() if field in fields else None
                                          for field in ("gender", "skin")))
        machine_only += [(family, group, float(matrix[:, index].sum()), len(images))
                         for index, group in enumerate([*family_groups(family), NO_PERSON])]
        people = pd.DataFrame(human[family], index=human_ids).reindex(images).to_numpy()
        labelled = ~np.isnan(people).any(axis=1)
        rated |= set(images[labelled])
        if labelled.sum() < 2:
            where = "" if len(images) >= sample.population else f" among the {len(images)} the machine labelled"
            raise ValueError(TOO_FEW_RATED.format(study=study, rated=int(labelled.sum()), size=sample.size, where=where))
        if labelled.all():
            raise ValueError(ALL_RATED.format(images=len(images), family=family))
        soft = bool(np.any((people[labelled] > 0) & (people[labelled] < 1)))
        # Parity is a target among people: only where people saw a person on every rated sample image
        # (module docstring, "Against what").
        empty = int(np.isin(images[labelled], said_empty).sum())
        no_person[family] = (empty, int(labelled.sum()))
        groups = FAMILIES[family]
        for row in ppi_rows(family, matrix, people, confidence):
            names = list({chosen[field].labelling_id: chosen[field] for field in fields}.values())
            named = row[PPI_COLUMNS.index("group")] in groups
            notes = [BELOW_GRID] if row[PPI_COLUMNS.index("n_human")] < SIMULATED_MIN_HUMAN else []
            notes += [SOFT_NOTE] if soft else []
            notes += [NO_PERSON_NOTE.format(none=empty, rated=int(labelled.sum()))] if empty and named else []
            target = 1 / len(groups) if named and not empty else np.nan
            rows.append((*row, " + ".join(f"{item.labeller} #{item.labelling_id}" for item in names),
                         ",".join(str(item.labelling_id) for item in names), sample.size, target, left_out,
                         "; ".join(notes)))
    table = pd.DataFrame(rows, columns=COLUMNS)
    raters = int(in_sample.loc[in_sample["image_id"].isin(rated), "rater"].nunique())
    labelled_ids = set().union(*(set(codes[field].index) for field in codes))
    run_keys = tuple(frame.loc[frame["image_id"].isin(labelled_ids), "run_key"].drop_duplicates())
    order = [image_id for image_id in sample.image_ids if image_id <= sample.last_image_id]
    last = max((place for place, image_id in enumerate(order, start=1) if image_id in rated), default=0)
    skipped = (sum(image_id not in rated for image_id in order[:last]), last)
    return MachineHumanEstimate(table, study, chosen, sample.size, len(rated), run_keys, raters,
                                float(confidence), skin_cut, human_labels,
                                pd.DataFrame(machine_only, columns=["family", "group", "count", "n"]), left_out,
                                no_person, skipped)
