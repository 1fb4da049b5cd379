"""How an image's label is formed from its raters' answers: ``family_labels(..., mode)``.

- ``soft`` (the default) — the share of the image's raters choosing each group
  (``labels.labels_by_family``, the one labelling rule);
- ``majority`` — the group most of its raters chose, a tie split evenly between the tied groups;
- ``adjudicated`` — an admin's final label (``team.Team.adjudicate``) where one is recorded, as if
  one rater had given it, and ``soft`` elsewhere (``apply_adjudications``);
- ``dawid-skene`` — corrected for rater error: a Dawid–Skene latent-class model (crowd-kit's
  ``DawidSkene``) learns each rater's confusion matrix and the groups' prevalences, and an image's
  label is its posterior probability of each group. Their mean is the model's prevalence. It
  assumes each image has one true group, each rater errs at fixed rates that depend only on that
  group (not on the image), and raters err independently of each other.

Every mode keeps the same images (``image_decisions``: images with a person, from the raters who
saw one) and gives ``Labels``, so every interval method works on it. For ``dawid-skene`` the
Wilson, Clopper–Pearson and jackknife intervals treat the fitted error rates as known; the
bootstrap refits the model on each resample of images (``DawidSkeneLabels.bootstrap``), so its
interval carries the uncertainty of the error rates too.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from sdaudit.analysis.labels import Labels, answer_codes, image_decisions, labels_by_family
from sdaudit.scheme import FAMILIES, LABEL_COLUMNS

LabelMode = Literal["soft", "majority", "dawid-skene", "adjudicated"]
LABEL_MODES: tuple[str, ...] = ("soft", "majority", "dawid-skene", "adjudicated")
# How each mode is named in a chart's subtitle, the report and the CLI's header.
LABEL_NOTES = {
    "soft": "soft labels (each image: the share of its raters choosing each group)",
    "majority": "majority labels (each image: the group most of its raters chose)",
    "dawid-skene": "labels corrected for rater error (Dawid–Skene)",
    "adjudicated": "adjudicated labels where an admin recorded one, soft labels elsewhere",
}
# The Results page's choices (Dawid–Skene's refitting bootstrap is too slow for a page; the Agreement page
# and `estimate --labels dawid-skene` offer it).
RESULTS_LABELS = ("soft", "majority", "adjudicated")
LABEL_TITLES = {"soft": "Soft (raters' average)", "majority": "Majority", "dawid-skene": "Dawid–Skene",
                "adjudicated": "Adjudicated (soft elsewhere)"}
ADJUDICATED_RATER = "(adjudicated)"
NEEDS_ADJUDICATIONS = "`labels='adjudicated'` needs the study's adjudications (a frame, empty when there are none)."
DEFAULT_LABELS = "soft"
LABELS_TEXT = "`labels` must be one of {choices} but is {value!r}."
DAWID_SKENE_RESAMPLES = 100  # each resample is a full refit (~0.1–0.5 s each), so far fewer than the plain bootstrap
DAWID_SKENE_ITERATIONS = 100
ASSUMPTION = ("Corrected for rater error (Dawid–Skene): assumes each image has one true group, and that each "
              "rater mislabels at fixed rates that depend only on that group and independently of the other "
              "raters; with few raters or few images those rates are rough.")


def check_label_mode(mode) -> str:
    if mode not in LABEL_MODES:
        raise ValueError(LABELS_TEXT.format(choices=", ".join(LABEL_MODES), value=mode))
    return mode


def family_labels(annotations: pd.DataFrame, skin_cut: int, include_unclear: bool,
                  mode: str = DEFAULT_LABELS, adjudications: pd.DataFrame | None = None) -> tuple[dict[str, Labels], int]:
    """Per family, the per-image labels under ``mode``; and the number of images with a person.
    ``adjudications`` (``Team.adjudications``) is needed by, and only read by, ``adjudicated``."""
    check_label_mode(mode)
    if mode == "soft":
        return labels_by_family(annotations, skin_cut, include_unclear)
    if mode == "adjudicated":
        if adjudications is None:
            raise ValueError(NEEDS_ADJUDICATIONS)
        return labels_by_family(apply_adjudications(annotations, adjudications), skin_cut, include_unclear)
    if mode == "majority":
        soft, images = labels_by_family(annotations, skin_cut, include_unclear)
        return {family: _majority(labels) for family, labels in soft.items()}, images
    return _dawid_skene_labels(annotations, skin_cut, include_unclear)


def apply_adjudications(annotations: pd.DataFrame, adjudications: pd.DataFrame) -> pd.DataFrame:
    """``annotations`` with every adjudicated image's rows replaced by one row holding its final label
    (rater ``ADJUDICATED_RATER``, the image's other columns kept); images without a final label keep
    their raters' rows. An adjudication of an image not among ``annotations`` adds nothing."""
    final = adjudications[adjudications["image_id"].isin(annotations["image_id"])]
    if final.empty:
        return annotations
    decided = annotations["image_id"].isin(final["image_id"])
    first = annotations[decided].drop_duplicates("image_id").set_index("image_id")
    replaced = first.copy()
    replaced["rater"] = ADJUDICATED_RATER
    labels = final.set_index("image_id")[list(LABEL_COLUMNS)]
    for column in labels.columns:
        replaced[column] = labels[column].reindex(replaced.index).astype(object)
    rows = pd.concat([annotations[~decided].astype(object), replaced.reset_index().astype(object)],
                     ignore_index=True)
    rows["mst"] = pd.to_numeric(rows["mst"], errors="coerce")
    rows["image_id"] = rows["image_id"].astype("int64")
    return rows.sort_values(["image_id", "rater"], kind="stable").reset_index(drop=True)


def _majority(labels: Labels) -> Labels:
    """Each distinct soft label's most chosen group (ties split evenly), with the same images."""
    if labels.rows.shape[0] == 0:
        return labels
    top = np.isclose(labels.rows, labels.rows.max(axis=1, keepdims=True))
    rows = top / top.sum(axis=1, keepdims=True)
    return Labels.from_images(np.repeat(rows, labels.frequency, axis=0))


# -- Dawid–Skene ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DawidSkeneLabels(Labels):
    """Per-image posterior group probabilities from a Dawid–Skene fit, with the answers it was fitted
    to, so that a bootstrap can refit it on resampled images."""

    answers: pd.DataFrame = field(repr=False)  # task (0..images-1), worker, label (group index)
    groups: int
    errors: pd.DataFrame = field(repr=False)  # per rater: P(answer | true group), crowd-kit's errors_
    prevalence: np.ndarray = field(repr=False)  # crowd-kit's priors_, in group order

    @property
    def disagreement(self) -> bool:
        """Whether some image's raters gave different answers."""
        return bool((self.answers.groupby("task")["label"].nunique() > 1).any())

    def bootstrap(self, alpha: float, rng: np.random.Generator,
                  resamples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of the prevalences over ``resamples`` (default
        ``DAWID_SKENE_RESAMPLES``) refits on images drawn with replacement (each drawn image keeps
        all its raters' answers). Where no two raters disagree the model has nothing to correct and
        its posteriors are the answers themselves, so the plain bootstrap of those is used."""
        resamples = resamples or DAWID_SKENE_RESAMPLES
        if not self.disagreement:
            draws = rng.multinomial(self.n, self.frequency / self.n, size=resamples)
            means = draws @ self.rows / self.n
            return np.quantile(means, alpha / 2, axis=0), np.quantile(means, 1 - alpha / 2, axis=0)
        tasks = self.answers["task"].to_numpy()
        order = np.argsort(tasks, kind="stable")
        starts = np.searchsorted(tasks[order], np.arange(self.n + 1))
        shares = np.empty((resamples, self.groups))
        for index in range(resamples):
            drawn = rng.integers(0, self.n, self.n)
            sizes = starts[drawn + 1] - starts[drawn]
            rows = order[np.repeat(starts[drawn], sizes) + _ranges(sizes)]
            sample = pd.DataFrame({"task": np.repeat(np.arange(self.n), sizes),
                                   "worker": self.answers["worker"].to_numpy()[rows],
                                   "label": self.answers["label"].to_numpy()[rows]})
            shares[index] = _fit(sample, self.groups)[1]
        return np.quantile(shares, alpha / 2, axis=0), np.quantile(shares, 1 - alpha / 2, axis=0)


def _ranges(sizes: np.ndarray) -> np.ndarray:
    """0..size-1 for each size, concatenated."""
    ends = np.cumsum(sizes)
    return np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - sizes, sizes)


def _fit(answers: pd.DataFrame, groups: int):
    """crowd-kit's DawidSkene on ``answers``: (posteriors images × groups, prevalences, errors)."""
    from crowdkit.aggregation import DawidSkene

    with warnings.catch_warnings():
        # crowd-kit 1.4.2 uses pandas keywords (inplace=, copy=) that pandas 3.1 deprecates; nothing here
        # can change that, and the fit is unaffected
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"crowdkit\.")
        model = DawidSkene(n_iter=DAWID_SKENE_ITERATIONS).fit(answers)
    posteriors = model.probas_.reindex(columns=range(groups), fill_value=0.0).sort_index().to_numpy()
    prevalence = model.priors_.reindex(range(groups), fill_value=0.0).to_numpy()
    return posteriors, prevalence, model.errors_


def family_answers(annotations: pd.DataFrame, skin_cut: int, include_unclear: bool) -> tuple[dict[str, pd.DataFrame], int]:
    """Per family, the answers of the raters who saw a person in an image that has one, as crowd-kit
    reads them: ``task`` (the image), ``worker`` (the rater), ``label`` (the group's index in the
    family's groups, ``unclear`` last); and the number of images with a person."""
    decisions = image_decisions(annotations)
    gender, skin = answer_codes(annotations, skin_cut)
    counted = decisions.counted
    named = (gender > 0) & (gender < 3) & (skin > 0) & (skin < 3)
    by_family = {
        "gender": (counted & (gender > 0), gender.astype(np.int64) - 1),
        "skin_tone": (counted & (skin > 0), skin.astype(np.int64) - 1),
        # lighter_female, lighter_male, darker_female, darker_male; then unclear (some answer unclear)
        "intersection": (counted & (gender > 0) & (skin > 0),
                         np.where(named, (skin.astype(np.int64) - 1) * 2 + gender - 1, 4)),
    }
    raters = annotations["rater"].astype(str).to_numpy()
    answers = {}
    for family, (keep, label) in by_family.items():
        if not include_unclear:
            keep = keep & (label < len(FAMILIES[family]))
        answers[family] = pd.DataFrame({"task": decisions.codes[keep], "worker": raters[keep], "label": label[keep]})
    return answers, int(np.count_nonzero(decisions.with_person))


def _dawid_skene_labels(annotations: pd.DataFrame, skin_cut: int,
                        include_unclear: bool) -> tuple[dict[str, Labels], int]:
    answers, images = family_answers(annotations, skin_cut, include_unclear)
    labels = {}
    for family, rows in answers.items():
        groups = len(FAMILIES[family]) + (1 if include_unclear else 0)
        if rows.empty:
            empty = Labels.from_images(np.zeros((0, groups)))
            labels[family] = DawidSkeneLabels(empty.rows, empty.frequency, rows, groups, pd.DataFrame(),
                                              np.zeros(groups))
            continue
        # tasks renumbered 0..n-1 so that posteriors, resamples and the image count agree
        rows = rows.assign(task=pd.factorize(rows["task"], sort=True)[0])
        posteriors, prevalence, errors = _fit(rows, groups)
        compressed = Labels.from_images(posteriors)
        labels[family] = DawidSkeneLabels(compressed.rows, compressed.frequency, rows, groups, errors, prevalence)
    return labels, images

