"""The machine audited (issue 25, item 4): a labeller's answers held against people's labels, per
field and per skin tone, and the shares an automatic-only audit would publish beside the
prediction-powered and the human-only ones.

**People's label of an image** (several raters): whether it has a person is the one labelling rule
(``labels.image_decisions``: at least half of the raters who answered saw one); its gender
presentation and lighter/darker side are the answer most of the raters who saw a person gave, a tie
read as `unclear`; its MST is the tone most of them gave, a tie left out of the MST comparison. With
one rater per image that is the rater's answer. (``estimate``'s ``majority`` mode splits a tie
evenly instead: a hard comparison needs one answer.)

**Agreement** on the human sample's rated images where a sample was drawn (a uniform random sample of
the study's generated images, so the intervals describe them all; people's labels elsewhere were chosen
by raters or the queue, not drawn, and are left out), else on every image both labelled (then the
intervals describe those images only: they were not drawn at random), per field (person present, gender presentation,
lighter/darker, MST 1–10), over all of them and per people's tone (lighter, darker, MST 1 … 10):
accuracy (the share where the machine gave people's answer) with its exact (Clopper–Pearson)
interval; Cohen's κ (linear-weighted over MST 1–10) with statsmodels' asymptotic standard error
(Fleiss, Cohen and Everitt 1969), κ ± z·SE cut to [−1, 1]; κ is undefined where either side gave
one answer only. The confusion table counts every (people, machine) answer pair. Where a cell holds
fewer than ``MIN_IMAGES`` images its numbers are left out ("too few images"): the NCHS standard's
smallest effective sample for a proportion (``estimate.NCHS_MIN_N_EFF``), below which an interval
means little.

**Differences in machine error across tones**: error rate on darker minus lighter, and on each MST
tone minus the other tones, with Newcombe's hybrid score interval (statsmodels'
``confint_proportions_2indep(method="newcomb")``).

**Side by side**, for each group, the three readings over one population — every image the machine
labelled among those the human sample was drawn from, "no person" a row of its own where either side
saw such an image — so that the prediction-powered reading here is exactly ``estimate --labels
machine+human``'s (``machine_human.estimate_from``; the audited labelling stands for the fields it
answers, the most recent answering labelling for the others; each row names its ``labelling``):

- *automatic only*: the machine's answers on every image, read as if they were the truth, with the
  exact binomial interval such a tool would give;
- *prediction-powered*: the machine's answers and people's labels of the human sample's images
  (drawn uniformly; the to-do lists offer them in draw order), its reported interval (the reading
  that held its coverage in every simulated cell) and ppi_py's own normal interval beside it;
- *human-only*: people's labels of the sample's images alone, exact interval.

A verdict is where the interval lies against the estimate's target: below it, including it, or above
it (``present.words``: "interval excludes the target" / "interval includes the target"). The target is
parity only where people saw a person on every rated sample image of the family (these are shares of
all images, and parity is a target among people); otherwise the rows have none, no verdict, and a
note saying why.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sdaudit.analysis.estimate import NCHS_MIN_N_EFF, clopper_pearson_interval, z_value
from sdaudit.analysis.labels import answer_codes, image_decisions
from sdaudit.analysis.options import DEFAULT_CONFIDENCE, check_confidence
from sdaudit.scheme import DEFAULT_SKIN_CUT, GENDERS, MST_LEVELS, SKIN_ANSWERS, check_skin_cut
from sdaudit.store.machine import HumanSample, Labelling, MachineTables

ON_SAMPLE = ("Agreement on the human sample's {images} rated images: a uniform random sample of the study's generated "
             "images, so the intervals describe them all (people's labels of other images, chosen rather than drawn, "
             "are left out).")
NOT_RANDOM = ("Agreement on every image both labelled ({images}): with no human sample these were not drawn at random, "
              "so the intervals describe these images only.")

MIN_IMAGES = NCHS_MIN_N_EFF  # fewer images in a cell: "too few images", no number
PERSON_ANSWERS = ("person", "no person")
FIELDS: dict[str, tuple] = {"person": PERSON_ANSWERS, "gender": GENDERS, "skin_binary": SKIN_ANSWERS,
                            "mst": MST_LEVELS}
TONES = ("all", "lighter", "darker", *(f"MST {level}" for level in MST_LEVELS))
BELOW, INCLUDES, ABOVE = "below", "includes", "above"  # where an interval lies against the target

NO_LABELS = ("study {study!r} has no machine labels yet: label it automatically from the Runs page or "
             "`python -m sdaudit machine-label --study {study} --labeller clip`.")
OTHER_STUDY = "labelling {labelling_id} labels study {other!r}, not {study!r}; its labellings: {known}."
NO_OVERLAP = ("no image of study {study!r} has both the machine's answers (labelling {labelling_id}) and people's "
              "labels yet: {next_step}")
DRAW_SAMPLE = ("draw a human sample on the Team page (`python -m sdaudit team --study {study} --human-sample N`) and "
               "have people label it.")
LABEL_SAMPLE = "have people label the human sample's images (the Annotate page offers them first)."

AGREEMENT_COLUMNS = ["field", "tone", "images", "matches", "accuracy", "low", "high", "kappa", "kappa_low",
                     "kappa_high", "too_few"]
CONFUSION_COLUMNS = ["field", "tone", "people", "machine", "images"]
DIFFERENCE_COLUMNS = ["field", "tone", "versus", "errors", "images", "errors_versus", "images_versus", "error",
                      "error_versus", "difference", "low", "high", "too_few"]
SIDE_COLUMNS = [
    "family", "group", "target",
    "auto_count", "auto_n", "auto_share", "auto_low", "auto_high", "auto_verdict",
    "ppi_share", "ppi_low", "ppi_high", "ppi_normal_low", "ppi_normal_high", "ppi_n_machine", "ppi_n_human",
    "ppi_n_eff", "ppi_verdict",
    "human_count", "human_n", "human_share", "human_low", "human_high", "human_verdict", "same_verdict",
    "labelling", "note",
]  # fmt: skip


@dataclass(frozen=True)
class MachineInputs:
    """What an audit of one labelling reads from the store: the labelling, its answers (one row per
    image), people's annotations of the study and the human sample (None when none was drawn)."""

    labelling: Labelling
    machine: pd.DataFrame
    annotations: pd.DataFrame
    sample: HumanSample | None
    every_labelling: pd.DataFrame  # the study's machine answers of every labelling (the side by side's)
    labellings: tuple[Labelling, ...]


@dataclass(frozen=True)
class MachineAudit:
    """A labelling audited against people; every table holds numbers, ``present.machine_tables`` words."""

    labelling: Labelling
    confidence: float
    skin_cut: int
    images_machine: int  # images the machine answered
    images_compared: int  # of those, images people labelled too
    images_in_sample: int  # of those, images in the human sample
    agreement: pd.DataFrame  # AGREEMENT_COLUMNS: per field × tone
    confusion: pd.DataFrame  # CONFUSION_COLUMNS: every answer pair per field × tone
    differences: pd.DataFrame  # DIFFERENCE_COLUMNS: error on a tone minus error on others
    side_by_side: pd.DataFrame | None  # SIDE_COLUMNS; None with ``side_by_side_missing`` saying why
    side_by_side_missing: str = ""
    notes: tuple[str, ...] = field(default=())  # degenerate PPI shares (warnings turned into words)
    agreement_images: int = 0  # the images agreement is computed on (the rated sample's, else all compared)
    agreement_on_sample: bool = False  # whether those are the human sample's rated images
    left_out_after_draw: str = ""  # the side by side's images generated after the draw, in words

    @property
    def agreement_scope(self) -> str:
        """Which images the agreement tables are of, and what their intervals describe."""
        return (ON_SAMPLE if self.agreement_on_sample else NOT_RANDOM).format(images=self.agreement_images)


def machine_inputs(store, study: str, labelling_id: int | None = None) -> MachineInputs:
    """The study's labelling ``labelling_id`` (default: its newest with an answer other than `unclear`
    on an image with a person, ``machine_human.answering``) and what the audit reads."""
    from sdaudit.analysis.machine_human import answering

    tables = MachineTables(store)
    labellings = tables.labellings(study)
    every = tables.machine_labels(study)
    if labelling_id is None:
        answers = answering(every)
        answered = [labelling for labelling in labellings if labelling.labelling_id in answers]
        if not answered:
            raise ValueError(NO_LABELS.format(study=study))
        labelling = answered[-1]
    else:
        labelling = tables.labelling(labelling_id)
        if labelling.study != study:
            known = ", ".join(str(each.labelling_id) for each in labellings) or "none"
            raise ValueError(OTHER_STUDY.format(labelling_id=labelling_id, other=labelling.study, study=study,
                                                known=known))
    return MachineInputs(labelling, every[every["labelling_id"] == labelling.labelling_id].reset_index(drop=True),
                         store.annotations(study=study), tables.human_sample(study), every, tuple(labellings))


def people_labels(annotations: pd.DataFrame, skin_cut: int) -> pd.DataFrame:
    """People's label of each image they answered (module docstring), indexed by ``image_id``: ``person``
    (bool), ``gender`` and ``skin`` as answer codes (0 none, else 1 + the index in ``GENDERS`` /
    ``SKIN_ANSWERS``) and ``mst`` (NaN where none or tied)."""
    if annotations.empty:
        return pd.DataFrame({"person": pd.Series(dtype=bool), "gender": pd.Series(dtype=np.int8),
                             "skin": pd.Series(dtype=np.int8), "mst": pd.Series(dtype=float)},
                            index=pd.Index([], name="image_id", dtype="int64"))
    decisions = image_decisions(annotations)
    gender, skin = answer_codes(annotations, skin_cut)
    rows = pd.DataFrame({"code": decisions.codes, "image_id": annotations["image_id"].to_numpy(), "gender": gender,
                         "skin": skin, "mst": pd.to_numeric(annotations["mst"], errors="coerce").to_numpy(float)})
    ids = rows.groupby("code")["image_id"].first()
    people = pd.DataFrame({"person": decisions.with_person[ids.index]}, index=ids.index)
    counted = rows[decisions.counted]
    unclear = len(GENDERS)  # the code of `unclear` in both families
    for name in ("gender", "skin"):
        answered = counted[counted[name] > 0]
        people[name] = _majority(answered["code"], answered[name], tie=unclear).reindex(people.index).fillna(0)
    answered = counted.dropna(subset=["mst"])
    people["mst"] = _majority(answered["code"], answered["mst"], tie=np.nan).reindex(people.index)
    people = people[decisions.answered[ids.index]].astype({"gender": np.int8, "skin": np.int8})
    return people.set_index(ids[people.index].rename("image_id"))


def _majority(image: pd.Series, answer: pd.Series, *, tie) -> pd.Series:
    """Per image, the answer most of its rows give; ``tie`` where two or more tie."""
    if image.empty:
        return pd.Series(dtype=float)
    table = pd.crosstab(image, answer)
    top = table.max(axis=1)
    return table.idxmax(axis=1).where(table.eq(top, axis=0).sum(axis=1) == 1, tie)


def _machine_labels(machine: pd.DataFrame, skin_cut: int) -> pd.DataFrame:
    """The machine's answers in ``people_labels``' form; ``person`` NaN where it did not answer."""
    gender, skin = answer_codes(machine, skin_cut)
    person = machine["person_present"].map({True: 1.0, False: 0.0}).astype(float)
    return pd.DataFrame({"person": person.to_numpy(), "gender": gender, "skin": skin,
                         "mst": pd.to_numeric(machine["mst"], errors="coerce").to_numpy(float)},
                        index=pd.Index(machine["image_id"].astype("int64"), name="image_id"))


def audit(inputs: MachineInputs, *, confidence: float = DEFAULT_CONFIDENCE,
          skin_cut: int = DEFAULT_SKIN_CUT) -> MachineAudit:
    """The labelling audited against people (module docstring). ``ValueError`` where the labelling has no
    answers (``NO_LABELS``) or no image has both the machine's answers and people's labels (``NO_OVERLAP``,
    saying what to do next)."""
    # 1. Check inputs; each image's labels, people's and the machine's
    confidence, skin_cut = check_confidence(confidence), check_skin_cut(skin_cut)
    study, labelling_id = inputs.labelling.study, inputs.labelling.labelling_id
    if inputs.machine.empty:
        raise ValueError(NO_LABELS.format(study=study))
    people = people_labels(inputs.annotations, skin_cut)
    machine = _machine_labels(inputs.machine, skin_cut)
    both = people.add_suffix("_people").join(machine.add_suffix("_machine"), how="inner")
    if both.empty:
        next_step = DRAW_SAMPLE.format(study=study) if inputs.sample is None else LABEL_SAMPLE
        raise ValueError(NO_OVERLAP.format(study=study, labelling_id=labelling_id, next_step=next_step))
    sample = set(inputs.sample.image_ids) if inputs.sample is not None else set()
    compared = both[both.index.isin(list(sample))] if inputs.sample is not None else both  # random, or said not
    if compared.empty:
        raise ValueError(NO_OVERLAP.format(study=study, labelling_id=labelling_id, next_step=LABEL_SAMPLE))

    # 2. Agreement per field and people's tone, and the machine's error across tones
    agreement, confusion, differences = _agreement(compared, confidence)

    # 3. Side by side: automatic only, prediction-powered, human only
    side, missing, notes, left_out = _side_by_side(inputs, confidence, skin_cut)
    return MachineAudit(inputs.labelling, confidence, skin_cut, len(machine), len(both),
                        int(both.index.isin(list(sample)).sum()), agreement, confusion, differences, side,
                        missing, notes, len(compared), inputs.sample is not None, left_out)


def _field_answers(both: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per field, the images both answered: people's and the machine's answer (in ``FIELDS``' terms)
    and a mask over ``both``."""
    people_person = both["person_people"].to_numpy(bool)
    machine_person = both["person_machine"].to_numpy(float)
    seen = people_person & (machine_person != 0)  # a labeller that does not answer `person` (NaN) still counts
    answers = {"person": (~np.isnan(machine_person),
                          np.where(people_person, PERSON_ANSWERS[0], PERSON_ANSWERS[1]),
                          np.where(machine_person == 1, PERSON_ANSWERS[0], PERSON_ANSWERS[1]))}
    for name, column, labels in (("gender", "gender", GENDERS), ("skin_binary", "skin", SKIN_ANSWERS)):
        first, second = both[f"{column}_people"].to_numpy(), both[f"{column}_machine"].to_numpy()
        names = np.array(("", *labels), dtype=object)
        answers[name] = (seen & (first > 0) & (second > 0), names[first], names[second])
    first, second = both["mst_people"].to_numpy(float), both["mst_machine"].to_numpy(float)
    answers["mst"] = (seen & ~np.isnan(first) & ~np.isnan(second), first, second)
    return {name: (mask, people[mask], machine[mask]) for name, (mask, people, machine) in answers.items()}


def _tones(both: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each tone's mask over ``both``: every image, people's lighter and darker side, people's MST."""
    skin, mst = both["skin_people"].to_numpy(), both["mst_people"].to_numpy(float)
    person = both["person_people"].to_numpy(bool)
    tones = {"all": np.ones(len(both), dtype=bool), "lighter": person & (skin == 1), "darker": person & (skin == 2)}
    tones.update({f"MST {level}": person & (mst == level) for level in MST_LEVELS})
    return tones


def _agreement(both: pd.DataFrame, confidence: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per field × tone, the agreement row and the confusion cells; per field, the error differences."""
    tones = _tones(both)
    rows, cells, differences = [], [], []
    for name, (mask, people, machine) in _field_answers(both).items():
        categories = FIELDS[name]
        errors = {}
        for tone, in_tone in tones.items():
            keep = in_tone[mask]
            table = confusion_matrix(people[keep], machine[keep], categories)
            images, matches = int(table.sum()), int(np.trace(table))
            errors[tone] = (images - matches, images)
            too_few = images < MIN_IMAGES
            accuracy = matches / images if images and not too_few else np.nan
            low, high = (clopper_pearson_interval(matches, images, 1 - confidence) if not np.isnan(accuracy)
                         else (np.nan, np.nan))
            kappa = (np.nan,) * 3 if too_few else cohens_kappa(table, weighted=name == "mst", confidence=confidence)
            rows.append((name, tone, images, matches, accuracy, float(low), float(high), *kappa, too_few))
            cells += [(name, tone, first, second, int(table[i, j])) for i, first in enumerate(categories)
                      for j, second in enumerate(categories)]
        differences.append(_difference(name, "darker", errors["darker"], "lighter", errors["lighter"], confidence))
        for level in MST_LEVELS:
            rest = [errors[f"MST {other}"] for other in MST_LEVELS if other != level]
            differences.append(_difference(name, f"MST {level}", errors[f"MST {level}"], "other tones",
                                           (sum(e for e, _ in rest), sum(n for _, n in rest)), confidence))
    return (pd.DataFrame(rows, columns=AGREEMENT_COLUMNS), pd.DataFrame(cells, columns=CONFUSION_COLUMNS),
            pd.DataFrame(differences, columns=DIFFERENCE_COLUMNS))


def confusion_matrix(people: np.ndarray, machine: np.ndarray, categories: Sequence) -> np.ndarray:
    """Counts of (people's answer, machine's answer), rows people's, in ``categories``' order."""
    index = pd.Index(list(categories))
    table = np.zeros((len(index), len(index)), dtype=np.int64)
    np.add.at(table, (index.get_indexer(people), index.get_indexer(machine)), 1)
    return table


def cohens_kappa(table: np.ndarray, *, weighted: bool = False,
                 confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float, float]:
    """Cohen's κ of a confusion table (linear-weighted with ``weighted``) and its interval: statsmodels'
    estimate and asymptotic standard error, κ ± z·SE cut to [−1, 1]. NaN where either side used one
    answer only (no chance-corrected agreement can be read); a NaN interval where the SE is 0."""
    from statsmodels.stats.inter_rater import cohens_kappa as statsmodels_kappa

    table = np.asarray(table, dtype=float)
    if (table.sum(axis=0) > 0).sum() < 2 or (table.sum(axis=1) > 0).sum() < 2:
        return np.nan, np.nan, np.nan
    result = statsmodels_kappa(table, wt="linear" if weighted else None)
    half = z_value(confidence) * float(result.std_kappa)
    kappa = float(result.kappa)
    if not half > 0:  # perfect agreement: the asymptotic SE is 0, and a point is no interval
        return kappa, np.nan, np.nan
    return kappa, max(-1.0, kappa - half), min(1.0, kappa + half)


def _difference(field_name, tone, tone_errors, versus, versus_errors, confidence) -> tuple:
    """Error on ``tone`` minus error on ``versus``, Newcombe's interval; numbers left out where either
    side has fewer than ``MIN_IMAGES`` images."""
    from statsmodels.stats.proportion import confint_proportions_2indep

    (errors, images), (errors_versus, images_versus) = tone_errors, versus_errors
    too_few = min(images, images_versus) < MIN_IMAGES
    if too_few:
        return (field_name, tone, versus, errors, images, errors_versus, images_versus, *(np.nan,) * 5, True)
    low, high = confint_proportions_2indep(errors, images, errors_versus, images_versus, method="newcomb",
                                           compare="diff", alpha=1 - confidence)
    error, error_versus = errors / images, errors_versus / images_versus
    return (field_name, tone, versus, errors, images, errors_versus, images_versus, error, error_versus,
            error - error_versus, float(low), float(high), False)


def verdict_side(low: float, high: float, target: float) -> str | None:
    """Where an interval lies against the target (``BELOW``, ``INCLUDES``, ``ABOVE``); None without one."""
    if any(pd.isna(value) for value in (low, high, target)):
        return None
    return BELOW if high < target else ABOVE if low > target else INCLUDES


def _side_by_side(inputs: MachineInputs, confidence: float, skin_cut: int
                  ) -> tuple[pd.DataFrame | None, str, tuple[str, ...], str]:
    """The three readings of every group (module docstring), or None and why they cannot be given, and
    the images left out for being generated after the draw (words). The
    prediction-powered and human-only readings are ``estimate --labels machine+human``'s, the
    labelling audited standing for the fields it answers; the automatic-only one counts the
    machine's answers on the same images."""
    from sdaudit.analysis.machine_human import estimate_from

    study = inputs.labelling.study
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            estimate = estimate_from(inputs.every_labelling, list(inputs.labellings), inputs.sample,
                                     inputs.annotations, study, labelling_id=inputs.labelling.labelling_id,
                                     confidence=confidence, skin_cut=skin_cut)
        except ValueError as error:
            return None, str(error), (), ""
    notes = tuple(dict.fromkeys(str(warning.message) for warning in caught))
    auto = estimate.machine_only.set_index(["family", "group"])
    rows = []
    for row in estimate.table.itertuples(index=False):
        target = row.target  # the estimate's: parity only among images with a person (module docstring)
        count, n = auto.loc[(row.family, row.group), ["count", "n"]]
        auto_low, auto_high = clopper_pearson_interval(count, n, 1 - confidence)
        human_count = row.human_share * row.n_human
        verdicts = (verdict_side(auto_low, auto_high, target), verdict_side(row.low, row.high, target),
                    verdict_side(row.human_low, row.human_high, target))
        same = None if verdicts[0] is None or verdicts[1] is None else verdicts[0] == verdicts[1]
        rows.append((row.family, row.group, target, count, int(n), count / n, float(auto_low), float(auto_high),
                     verdicts[0], row.share, row.low, row.high, row.ppi_py_low, row.ppi_py_high, int(row.n_machine),
                     int(row.n_human), row.n_eff, verdicts[1], human_count, int(row.n_human), row.human_share,
                     row.human_low, row.human_high, verdicts[2], same, row.labelling, row.note))
    side = pd.DataFrame(rows, columns=SIDE_COLUMNS)
    verdicts = ["auto_verdict", "ppi_verdict", "human_verdict"]  # None where there is none, not NaN
    side[verdicts] = side[verdicts].astype(object).where(side[verdicts].notna(), None)
    return side, "", notes, estimate.left_out_note
