"""How an image's label is formed from its raters' answers: ``family_labels(..., mode)``.

- ``soft`` (the default) — the share of the image's raters choosing each group
  (``labels.labels_by_family``, the one labelling rule);
- ``majority`` — the group most of its raters chose, a tie split evenly between the tied groups;
- ``adjudicated`` — an admin's final label (``team.Team.adjudicate``) where one is recorded, as if
  one rater had given it, and ``soft`` elsewhere (``apply_adjudications``);
- ``dawid-skene`` — corrected for rater error: a Dawid–Skene latent-class model learns each rater's
  confusion matrix and the groups' prevalences, and an image's label is its posterior probability of
  each group. Their mean is the model's prevalence. It assumes each image has one true group, each
  rater errs at fixed rates that depend only on that group (not on the image), and raters err
  independently of each other. The EM is crowd-kit's ``DawidSkene``, step for step, in numpy on the
  distinct answer patterns (``AnswerPatterns.fit``), so that a thousand refits are fitted together.

Every mode keeps the same images (``image_decisions``: images with a person, from the raters who
saw one) and gives ``Labels``, so every interval method works on it. For ``dawid-skene``, where
raters disagree, ``estimate`` shows whatever the method the bootstrap that refits the model on each
resample of images (``DawidSkeneLabels.refit_interval``): intervals that treat the fitted error rates
as known under-cover (benchmarks/dawid_skene_coverage.py), and it is flagged by ``WEAK_RULE``.
"""

from __future__ import annotations

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
    "dawid-skene": ("labels corrected for rater error (Dawid–Skene); where raters disagree, each interval is a "
                    "bootstrap over images refitting the model on each resample, whatever the method"),
    "adjudicated": "adjudicated labels where an admin recorded one, soft labels elsewhere",
}
# The Results page's choices (Dawid–Skene is offered by the Agreement page and `estimate --labels dawid-skene`).
RESULTS_LABELS = ("soft", "majority", "adjudicated")
LABEL_TITLES = {"soft": "Soft (raters' average)", "majority": "Majority", "dawid-skene": "Dawid–Skene",
                "adjudicated": "Adjudicated (soft elsewhere)"}
ADJUDICATED_RATER = "(adjudicated)"
NEEDS_ADJUDICATIONS = "`labels='adjudicated'` needs the study's adjudications (a frame, empty when there are none)."
DEFAULT_LABELS = "soft"
LABELS_TEXT = "`labels` must be one of {choices} but is {value!r}."
DAWID_SKENE_RESAMPLES = 1000  # each a refit; fitted together, about a second a family for a few raters on 200 images
DAWID_SKENE_ITERATIONS = 100
# the refits are shown whatever the method, so without a seed given they draw from this one: reproducible
DAWID_SKENE_RNG_SEED = 0
# The refitting bootstrap's flag: the model is weakly identified, or the group rests on few images. From
# benchmarks/dawid_skene_coverage.py (2–3 raters, 100–400 images, true shares 5–50%, flips 10–20%; results
# in 2026-12-06-dawid-skene-coverage.txt): an unflagged interval missed the true share in at most 5% of
# studies in every setting tried, while the refitting bootstrap itself covered as little as 68% with 3 raters.
DAWID_SKENE_MIN_RATERS = 3  # answers on the median image: two raters' 3 free cells cannot fix 5 unknowns (2 groups)
DAWID_SKENE_MAX_DISAGREEMENT = 0.30  # share of images whose raters disagree
DAWID_SKENE_MIN_COUNT = 15  # images (posterior) on the group's rarer side
WEAK_RULE = (f"flagged where the median image has fewer than {DAWID_SKENE_MIN_RATERS} raters, raters disagree on "
             f"more than {DAWID_SKENE_MAX_DISAGREEMENT:.0%} of the images, or fewer than {DAWID_SKENE_MIN_COUNT} "
             f"images (by the posteriors) fall on the group's rarer side")
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

# crowd-kit 1.4.2's DawidSkene defaults, which the EM below follows step for step (its floor, its
# stopping rule on the evidence lower bound per answer); tests/test_agreement.py checks the two agree.
DAWID_SKENE_FLOOR = 1e-10
DAWID_SKENE_TOLERANCE = 1e-5
# Resamples are fitted together, a batch at a time, keeping each batch's arrays under this many numbers.
_BATCH_NUMBERS = 4_000_000


@dataclass(frozen=True)
class AnswerPatterns:
    """A family's answers with the images that got the same answers (the same raters giving the same
    groups) pooled: the model sees an image only through its answers, so it fits patterns, weighted."""

    of_image: np.ndarray  # each image's pattern
    frequency: np.ndarray  # images per pattern
    pattern: np.ndarray  # per answer of a pattern: the pattern
    pair: np.ndarray  # per answer of a pattern: its (rater, group) pair, an index into pair_group
    pair_rater: np.ndarray  # per pair: the rater
    pair_group: np.ndarray  # per pair: the group answered
    raters: int
    groups: int

    @classmethod
    def of(cls, answers: pd.DataFrame, groups: int) -> AnswerPatterns:
        """``answers`` as ``family_answers`` gives them, tasks numbered 0..images-1."""
        raters = pd.factorize(answers["worker"], sort=True)[0]
        codes = raters * groups + answers["label"].to_numpy().astype(np.int64)
        pairs, pair = np.unique(codes, return_inverse=True)
        keys = pd.Series(pair).groupby(answers["task"].to_numpy()).agg(lambda each: tuple(sorted(each)))
        of_image, distinct = pd.factorize(keys.sort_index(), sort=True)
        lengths = np.array([len(key) for key in distinct])
        return cls(of_image, np.bincount(of_image, minlength=len(distinct)),
                   np.repeat(np.arange(len(distinct)), lengths),
                   np.array([item for key in distinct for item in key], dtype=np.int64),
                   pairs // groups, pairs % groups, int(raters.max()) + 1, groups)

    def fit(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dawid–Skene's EM on each row of ``weights`` (how many images of each pattern are drawn), as
        crowd-kit's ``DawidSkene`` runs it on those images: (posteriors fits × patterns × groups,
        prevalences fits × groups). A group no drawn image was given has prevalence 0."""
        per_batch = max(1, _BATCH_NUMBERS // max(1, len(self.pattern) * self.groups))
        parts = [self._fit(weights[start:start + per_batch]) for start in range(0, len(weights), per_batch)]
        return np.concatenate([part[0] for part in parts]), np.concatenate([part[1] for part in parts])

    def _fit(self, weights):
        groups = self.groups
        pair_order = np.argsort(self.pair, kind="stable")
        pair_starts = np.searchsorted(self.pair[pair_order], np.arange(len(self.pair_group)))
        by_pair = self.pattern[pair_order]  # each answer's pattern, answers in pair order
        pattern_starts = np.searchsorted(self.pattern, np.arange(len(self.frequency)))
        answers_of_pattern = np.bincount(self.pattern, minlength=len(self.frequency))
        answer_group = self.pair_group[self.pair]

        def m_step(weights, posteriors, seen_pair):
            """Each rater's P(answer | true group): the posterior mass of its answers, floored, normalised."""
            mass = np.add.reduceat(weights[:, by_pair, None] * posteriors[:, by_pair], pair_starts, axis=1)
            floored = np.where(seen_pair[:, :, None], np.maximum(mass, DAWID_SKENE_FLOOR), 0.0)
            per_rater = np.zeros((len(weights), self.raters, groups))
            np.add.at(per_rater, (slice(None), self.pair_rater), floored)
            with np.errstate(invalid="ignore", divide="ignore"):
                errors = floored / per_rater[:, self.pair_rater]
            return mass, np.where(seen_pair[:, :, None], errors, 1.0)  # 1: a pair not drawn is never read

        def prevalence_of(weights, posteriors):
            return np.einsum("bi,bik->bk", weights, posteriors) / weights.sum(axis=1)[:, None]

        # crowd-kit starts from the majority vote's shares of each image's answers
        votes = np.zeros((len(self.frequency), groups))
        np.add.at(votes, (self.pattern, answer_group), 1.0)
        posteriors = np.broadcast_to(votes / votes.sum(axis=1, keepdims=True), (len(weights), *votes.shape)).copy()
        prevalence = prevalence_of(weights, posteriors)
        live = np.arange(len(weights))  # the fits still running; the others are final
        seen_group = np.stack([np.bincount(answer_group, row, minlength=groups) for row in weights[:, self.pattern]]) > 0
        seen_pair = np.add.reduceat(weights[:, by_pair], pair_starts, axis=1) > 0
        errors = m_step(weights, posteriors, seen_pair)[1]
        loss = np.full(len(weights), -np.inf)
        for _ in range(DAWID_SKENE_ITERATIONS):
            drawn, seen = weights[live], seen_group[live]
            log_prior = np.log(np.maximum(prevalence[live], DAWID_SKENE_FLOOR))
            likelihood = log_prior[:, None] + np.add.reduceat(np.log(errors)[:, self.pair], pattern_starts, axis=1)
            likelihood = np.where(seen[:, None], likelihood, -np.inf)
            update = np.exp(likelihood - likelihood.max(axis=2, keepdims=True))
            update /= update.sum(axis=2, keepdims=True)
            posteriors[live] = update
            prevalence[live] = prevalence_of(drawn, update)
            mass, errors = m_step(drawn, update, seen_pair[live])
            # the evidence lower bound per answer: crowd-kit stops once it gains less than its tolerance
            floored = np.where(seen[:, None], np.maximum(update, DAWID_SKENE_FLOOR), 1.0)
            bound = ((mass * np.log(errors)).sum(axis=(1, 2))
                     + np.einsum("bi,bik,bk->b", drawn * answers_of_pattern, update,
                                 np.log(np.maximum(prevalence[live], DAWID_SKENE_FLOOR)))
                     - np.einsum("bi,bik->b", drawn, floored * np.log(floored))) / (drawn @ answers_of_pattern)
            running = ~(bound - loss[live] < DAWID_SKENE_TOLERANCE)
            loss[live] = bound
            live, errors = live[running], errors[running]
            if not live.size:
                break
        return posteriors, prevalence


@dataclass(frozen=True)
class DawidSkeneLabels(Labels):
    """Per-image posterior group probabilities from a Dawid–Skene fit, with the answer patterns it
    was fitted to, so that a bootstrap can refit it on resampled images."""

    answers: pd.DataFrame = field(repr=False)  # task (0..images-1), worker, label (group index)
    groups: int
    patterns: AnswerPatterns | None = field(repr=False)  # None when there are no answers
    prevalence: np.ndarray = field(repr=False)  # in group order

    @property
    def disagreement(self) -> bool:
        """Whether some image's raters gave different answers."""
        return bool((self.answers.groupby("task")["label"].nunique() > 1).any())

    def refit_interval(self, alpha: float, rng: np.random.Generator,
                       resamples: int | None = None) -> RefitInterval | None:
        """The percentile interval of the prevalences over ``resamples`` (default
        ``DAWID_SKENE_RESAMPLES``) refits on images drawn with replacement (each drawn image keeps all
        its raters' answers), so that it carries the uncertainty of the raters' error rates, flagged
        by ``WEAK_RULE``. None where no two raters disagree (the model has nothing to correct: the
        posteriors are the answers, and any method's interval applies as to soft labels) or fewer
        than two images are labelled."""
        if self.n < 2 or not self.disagreement:
            return None
        weights = rng.multinomial(self.n, self.patterns.frequency / self.n, size=resamples or DAWID_SKENE_RESAMPLES)
        shares = self.patterns.fit(weights.astype(float))[1]
        low, high = np.quantile(shares, alpha / 2, axis=0), np.quantile(shares, 1 - alpha / 2, axis=0)
        answers = self.answers.groupby("task")["label"]
        weak = ((answers.size().median() < DAWID_SKENE_MIN_RATERS)
                | ((answers.nunique() > 1).mean() > DAWID_SKENE_MAX_DISAGREEMENT)
                | (np.minimum(self.counts, self.n - self.counts) < DAWID_SKENE_MIN_COUNT))
        return RefitInterval(low, high, weak)


@dataclass(frozen=True)
class RefitInterval:
    """Dawid–Skene's refitting bootstrap interval per group, and where it is not to be trusted as stated."""

    low: np.ndarray
    high: np.ndarray
    weak: np.ndarray  # per group: True where WEAK_RULE flags it


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
            labels[family] = DawidSkeneLabels(empty.rows, empty.frequency, rows, groups, None, np.zeros(groups))
            continue
        # tasks renumbered 0..n-1 so that posteriors, resamples and the image count agree
        rows = rows.assign(task=pd.factorize(rows["task"], sort=True)[0])
        patterns = AnswerPatterns.of(rows, groups)
        posteriors, prevalence = patterns.fit(patterns.frequency[None].astype(float))
        compressed = Labels.from_images(posteriors[0][patterns.of_image])
        labels[family] = DawidSkeneLabels(compressed.rows, compressed.frequency, rows, groups, patterns, prevalence[0])
    return labels, images
