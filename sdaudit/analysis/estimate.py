"""Group shares with confidence intervals: the audit's claims about people.

``estimate(annotations, ...)`` computes once and returns an ``Estimate`` whose views are cheap.
The share of a group is the mean over images of the image's label: 1/0 with one rater, or the
share of its raters choosing the group with several (a soft label). Every interval method works
on those per-image labels, so deleting or resampling one *image* at a time keeps a rater's
disagreement inside its image (a cluster jackknife / bootstrap).

Methods:

- ``jackknife`` — the origin study's: leave-one-image-out standard error with a normal (z)
  critical value. For per-image labels y the jackknife variance equals s²/n (s² with n − 1), so
  it is computed in closed form, O(n); for 0/1 labels that is p(1 − p)/(n − 1).
- ``wilson`` — the Wilson score interval on the (soft) count.
- ``clopper-pearson`` (the default) — the exact binomial interval from beta quantiles. With
  several raters per image it is Korn & Graubard's (1998) generalisation, as in the NCHS Data
  Presentation Standards for Proportions (Parker et al. 2017, Vital Health Stat 2(175)): the
  Clopper–Pearson interval at the effective sample size n_eff = p(1 − p)/V, V the
  image-clustered (jackknife) variance with divisor n, n_eff capped at the image count, and the
  effective count p·n_eff. One rater per image gives V = p(1 − p)/n, so n_eff = n: exactly
  Clopper–Pearson. So do soft labels, always: a label in [0, 1] varies no more than a 0/1 label
  of the same mean (V ≤ p(1 − p)/n), so n_eff reaches its cap n: the adjustment never widens it.
- ``bootstrap`` — percentile bootstrap over images, vectorised: images with equal labels are
  pooled and each resample is one multinomial draw over the distinct labels.
Wilson and Clopper–Pearson assume independent 0/1 images; with soft labels they are an
approximation that ignores rater disagreement (the jackknife and bootstrap do not)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sdaudit.analysis.label_modes import DAWID_SKENE_RNG_SEED, DEFAULT_LABELS, LABEL_NOTES, DawidSkeneLabels, LabelMode
from sdaudit.analysis.label_modes import family_labels as labels_of_mode
from sdaudit.analysis.labels import Labels
from sdaudit.analysis.options import DEFAULT_CONFIDENCE, DEFAULT_METHOD, EstimateOptions, Method, check_confidence
from sdaudit.scheme import DEFAULT_SKIN_CUT, FAMILIES, LABEL_COLUMNS, REFIT_METHOD, UNCLEAR, family_groups

NAMED_GROUPS = sum(len(groups) for groups in FAMILIES.values())  # 2 + 2 + 4, each with a target
BOOTSTRAP_RESAMPLES = 4000

# The jackknife and Wilson intervals are flagged `small_count` when fewer than MIN_COUNT images
# fall on the rarer side (min(count, n − count)) or fewer than MIN_IMAGES are rated. Both come from
# benchmarks/coverage_fine.py's exact scan (every n 20–2000, every share, bounded between its points):
# with them no share has more than a 6% chance of an *unflagged* interval that misses it, and of the
# rules that achieve that these flag least (docs/statistics.md). The bootstrap is always flagged: its
# resampling noise (4000 resamples) leaves cells at every size where an unflagged miss is over 6%
# likely, and a rule chosen on one resampling fails on the next. The default (Clopper–Pearson /
# Korn–Graubard) covers at least its nominal level everywhere and is flagged by the NCHS rules.
MIN_COUNT: dict[str, int] = {"jackknife": 60, "wilson": 31}
MIN_IMAGES: dict[str, int] = {"jackknife": 218, "wilson": 156}
# NCHS Data Presentation Standards for Proportions (Parker et al. 2017, Vital Health Stat 2(175)) on its
# 95% interval, whatever is shown: unreliable when (1) n_eff < 30, (2) width ≥ 0.30, or width > 0.05 and
# > 130% of (3) the share or (4) its complement (a review in the standard, CDC surveytable's "Pc" flag).
NCHS_CONFIDENCE = 0.95
NCHS_MIN_N_EFF = 30
NCHS_MAX_WIDTH = 0.30
NCHS_SMALL_WIDTH = 0.05
NCHS_MAX_RELATIVE_WIDTH = 1.30

TARGET_TEXT = "a target must name a family and group as (family, group) with a share from 0 to 1, but got {key!r}: {value!r}."
COLUMNS_TEXT = "annotations need the columns {needed}; missing: {missing}."

RESULT_COLUMNS = [
    "family", "group", "count", "n", "share", "se", "low", "high", "target", "difference", "ratio",
    "small_count", "degenerate", "excludes_target", "method", "n_eff", "reliable", "labels",
]  # fmt: skip


@dataclass(frozen=True)
class Estimate:
    """Shares and intervals for every family × group, computed once; the views are cheap.

    ``table`` has one row per family × group with the columns of ``RESULT_COLUMNS``. ``count``
    is the (soft) number of images in the group, ``n`` the images with a person and an answer in
    that family. ``se`` is the jackknife standard error, whatever the method.
    """

    table: pd.DataFrame = field(repr=False)  # `reliable` is False where `small_count` or `degenerate` is True
    options: EstimateOptions  # how it was formed: the same options give the same estimate
    critical: str  # how the jackknife interval is formed: "z" (normal), as in the origin study
    images: int  # images with a person
    raters: int

    @property
    def method(self) -> str:
        return self.options.method

    @property
    def confidence(self) -> float:
        return self.options.confidence

    @property
    def skin_cut(self) -> int:
        return self.options.skin_cut

    @property
    def include_unclear(self) -> bool:
        return self.options.include_unclear

    @property
    def simultaneous(self) -> bool:
        """Bonferroni: every named group's interval at once."""
        return self.options.simultaneous

    @property
    def labels(self) -> str:
        """How an image's label is formed (``label_modes.LABEL_MODES``)."""
        return self.options.labels

    @property
    def interval_confidence(self) -> float:
        """Each interval's own confidence: ``confidence``, or with ``simultaneous`` the Bonferroni
        level that makes all the named groups' intervals hold together with ``confidence``."""
        return 1 - (1 - self.confidence) / NAMED_GROUPS if self.simultaneous else self.confidence

    @property
    def label_note(self) -> str:
        """How each image's label was formed, in words."""
        return LABEL_NOTES[self.labels]

    @property
    def chart_note(self) -> str:
        """A chart's subtitle: how to read the intervals, and which labels they rest on."""
        return f"{self.interval_note}; {self.label_note}"

    @property
    def interval_note(self) -> str:
        """How the intervals are to be read, in words."""
        if self.simultaneous:
            return (f"{self.confidence:.0%} simultaneous intervals: all {NAMED_GROUPS} named groups' intervals hold "
                    f"together (Bonferroni, each at {self.interval_confidence:.2%})")
        return f"{self.confidence:.0%} intervals, each on its own"

    def family(self, family: str) -> pd.DataFrame:
        return self.table[self.table["family"] == family].reset_index(drop=True)

    def row(self, family: str, group: str) -> pd.Series:
        rows = self.table[(self.table["family"] == family) & (self.table["group"] == group)]
        if rows.empty:
            raise KeyError(f"no estimate for family {family!r}, group {group!r}")
        return rows.iloc[0]

    def share(self, family: str, group: str) -> float:
        return float(self.row(family, group)["share"])

    def interval(self, family: str, group: str) -> tuple[float, float]:
        row = self.row(family, group)
        return float(row["low"]), float(row["high"])

    @property
    def unreliable(self) -> pd.DataFrame:
        """Rows whose interval should not be trusted as stated, leaving out `unclear` rows that no
        rater chose (``shown_rows``)."""
        table = shown_rows(self.table)
        return table[~table["reliable"]].reset_index(drop=True)


def shown_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Estimate rows as charts, warnings and the report show them: an `unclear` row that no rater
    chose would only add an empty line, so it is left out."""
    return table[~((table["group"] == UNCLEAR) & (table["count"] == 0))]


# -- validation -------------------------------------------------------------------------------


def _estimate_iv(annotations, targets):
    resolved_targets = {
        (family, group): 1 / len(groups) for family, groups in FAMILIES.items() for group in groups
    }
    for key, value in (targets or {}).items():
        valid_key = isinstance(key, tuple) and len(key) == 2 and key[0] in FAMILIES and key[1] in FAMILIES[key[0]]
        valid_value = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
        if not (valid_key and valid_value):
            raise ValueError(TARGET_TEXT.format(key=key, value=value))
        resolved_targets[key] = float(value)
    needed = ["image_id", "rater", *LABEL_COLUMNS]
    missing = [column for column in needed if column not in annotations.columns]
    if missing:
        raise ValueError(COLUMNS_TEXT.format(needed=", ".join(needed), missing=", ".join(missing)))
    return resolved_targets


# -- interval kernels -------------------------------------------------------------------------


def _jackknife_se(labels: Labels) -> np.ndarray:
    """Leave-one-image-out standard error of each group's share, in closed form: s / √n.

    Deleting image i moves the mean to (nȳ − yᵢ)/(n − 1); the jackknife variance of those
    replicates, (n − 1)/n · Σ(θ₍ᵢ₎ − θ̄)², equals s²/n with s² = Σ(yᵢ − ȳ)²/(n − 1).
    """
    n = labels.n
    if n < 2:
        return np.full(labels.rows.shape[1], np.nan)
    mean = labels.counts / n
    variance = labels.frequency @ (labels.rows - mean) ** 2 / (n - 1)
    return np.sqrt(variance / n)


def wilson_interval(count: np.ndarray, n, z: float) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score limits of ``count`` out of ``n`` (either may be arrays, and non-integer:
    effective counts); the one Wilson, also behind Newcombe's interval (``planning``)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p = count / n
        center = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return center - half, center + half


def clopper_pearson_interval(count: np.ndarray, n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The Clopper–Pearson (exact) limits of ``count`` out of ``n`` at level ``1 - alpha`` (either may
    be arrays, and non-integer: effective counts); also behind ``planning``'s exact plans."""
    from scipy import special

    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(count > 0, special.betaincinv(count, n - count + 1, alpha / 2), 0.0)
        high = np.where(count < n, special.betaincinv(count + 1, n - count, 1 - alpha / 2), 1.0)
    return low, high


def _effective_size(share: np.ndarray, se: np.ndarray, n: int) -> np.ndarray:
    """Korn–Graubard's effective sample size p(1 − p)/V, V the jackknife variance with divisor n,
    capped at the image count; the image count itself where the share is 0 or 1 (no variance)."""
    variance = se * se * (n - 1) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        n_eff = np.where(variance > 0, share * (1 - share) / variance, n)
    n_eff = np.nan_to_num(n_eff, nan=n)
    # one rater per image gives n exactly, up to rounding: make it exact, so the interval is too
    return np.where(n_eff > n * (1 - 1e-9), float(n), n_eff)


def nchs_unreliable(share: np.ndarray, n_eff: np.ndarray) -> np.ndarray:
    """True where a share fails an NCHS rule (above ``NCHS_CONFIDENCE``), judged on the 95%
    Clopper–Pearson / Korn–Graubard interval at ``n_eff`` whatever interval is displayed."""
    return _nchs_unreliable(share, *clopper_pearson_interval(share * n_eff, n_eff, 1 - NCHS_CONFIDENCE), n_eff)


def _nchs_unreliable(share: np.ndarray, low: np.ndarray, high: np.ndarray, n_eff: np.ndarray) -> np.ndarray:
    """The four rules on a given 95% interval ``low``–``high`` (``nchs_unreliable`` forms it)."""
    width = high - low
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = width / np.minimum(share, 1 - share)  # of the share or its complement: the larger
    return ((n_eff < NCHS_MIN_N_EFF) | (width >= NCHS_MAX_WIDTH)
            | ((width > NCHS_SMALL_WIDTH) & (relative > NCHS_MAX_RELATIVE_WIDTH)))


def _flagged(method, share, n_eff, rarer, n) -> np.ndarray:
    """The method's reliability flag (True: not to be trusted as stated); see MIN_COUNT."""
    if method == "clopper-pearson":
        return nchs_unreliable(share, n_eff)
    if method == "bootstrap":
        return np.ones(len(share), dtype=bool)
    return (rarer < MIN_COUNT[method]) | (n < MIN_IMAGES[method])


def _bootstrap(labels: Labels, alpha: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap over images: each resample is one multinomial draw of n images over
    the distinct labels, the same distribution as drawing n images with replacement."""
    n = labels.n
    draws = rng.multinomial(n, labels.frequency / n, size=BOOTSTRAP_RESAMPLES)
    means = draws @ labels.rows / n
    return np.quantile(means, alpha / 2, axis=0), np.quantile(means, 1 - alpha / 2, axis=0)


# -- entry point ------------------------------------------------------------------------------


def estimate(
    annotations: pd.DataFrame,
    *,
    method: Method = DEFAULT_METHOD,
    confidence: float = DEFAULT_CONFIDENCE,
    skin_cut: int = DEFAULT_SKIN_CUT,
    targets: dict[tuple[str, str], float] | None = None,
    include_unclear: bool = True,
    bootstrap_rng_seed: int | None = None,
    simultaneous: bool = False,
    labels: LabelMode = DEFAULT_LABELS,
    adjudications: pd.DataFrame | None = None,
) -> Estimate:
    """Each group's share among annotated images with a person, with a ``confidence`` interval.

    ``annotations`` has one row per image × rater (the store's ``annotations()``): ``image_id``, ``rater``,
    ``person_present``, ``gender``, ``mst`` (1–10) and ``skin_binary``. ``skin_cut`` makes MST 1..cut lighter
    and the rest darker. ``targets`` maps ``(family, group)`` to a share and replaces parity (1/k of a
    family's k groups) for that group. With ``include_unclear`` false, `unclear` answers leave the
    denominator. ``bootstrap_rng_seed`` drives the bootstraps only (Dawid–Skene's refits draw from
    ``DAWID_SKENE_RNG_SEED`` without one, being shown whatever the method). With ``simultaneous``, the
    intervals are Bonferroni-adjusted across the named groups, so that all of them hold together with
    ``confidence``. ``labels`` forms an image's label (``label_modes``): ``soft``, ``majority``, ``dawid-skene``
    (corrected for rater error; where raters disagree every interval is its refitting bootstrap) or
    ``adjudicated`` (with ``adjudications``). The options are checked as ``EstimateOptions``, which it keeps.
    """
    options = EstimateOptions(method=method, confidence=confidence, skin_cut=skin_cut, labels=labels,
                              simultaneous=simultaneous, include_unclear=include_unclear,
                              bootstrap_rng_seed=bootstrap_rng_seed)
    targets_by_group = _estimate_iv(annotations, targets)
    include_unclear = options.include_unclear
    confidence = options.confidence
    if options.simultaneous:
        confidence = 1 - (1 - confidence) / NAMED_GROUPS
    alpha = 1 - confidence
    z = z_value(confidence)
    rng = np.random.default_rng(DAWID_SKENE_RNG_SEED if bootstrap_rng_seed is None and labels == "dawid-skene" else bootstrap_rng_seed)
    by_family, images = labels_of_mode(annotations, options.skin_cut, include_unclear, labels, adjudications)

    parts: dict[str, list] = {name: [] for name in RESULT_COLUMNS}
    for family, family_labels in by_family.items():
        groups = family_groups(family, include_unclear)
        n = family_labels.n
        count = family_labels.counts if n else np.zeros(len(groups))
        share = count / n if n else np.full(len(groups), np.nan)
        se = _jackknife_se(family_labels)
        n_eff = _effective_size(share, se, n) if n >= 2 else np.full(len(groups), float(n))
        refit = family_labels.refit_interval(alpha, rng) if isinstance(family_labels, DawidSkeneLabels) else None
        if n < 2:
            low = high = np.full(len(groups), np.nan)
        elif refit is not None:  # Dawid–Skene where raters disagree: refitted per resample, whatever the method
            # (where every resample gave one share, the exact interval of the count: no false certainty)
            exact, narrow = clopper_pearson_interval(share * n, n, alpha), np.isclose(refit.low, refit.high)
            low, high = np.where(narrow, exact[0], refit.low), np.where(narrow, exact[1], refit.high)
        elif method == "jackknife":
            low, high = share - z * se, share + z * se
        elif method == "wilson":
            low, high = wilson_interval(count, n, z)
        elif method == "clopper-pearson":
            low, high = clopper_pearson_interval(share * n_eff, n_eff, alpha)
        else:
            low, high = _bootstrap(family_labels, alpha, rng)
        rarer = np.minimum(count, n - count)
        degenerate = (n == 0) | (rarer <= 0)
        zero_width = np.isclose(low, high) if n >= 2 else np.ones(len(groups), dtype=bool)
        # A zero-width interval at share 0 or 1 would claim certainty that the data do not give.
        low = np.where(degenerate & zero_width, np.nan, np.clip(low, 0, 1))
        high = np.where(degenerate & zero_width, np.nan, np.clip(high, 0, 1))
        target = np.array([targets_by_group.get((family, group), np.nan) for group in groups])
        columns = {
            "family": [family] * len(groups),
            "group": list(groups),
            "count": count,
            "n": np.full(len(groups), n),
            "share": share,
            "se": se,
            "low": low,
            "high": high,
            "target": target,
            "difference": share - target,
            "ratio": np.divide(share, target, out=np.full(len(groups), np.nan), where=target > 0),
            "small_count": refit.weak if refit is not None else _flagged(method, share, n_eff, rarer, n),
            "degenerate": np.broadcast_to(degenerate, len(groups)),
            "excludes_target": (low > target) | (high < target),
            "method": [REFIT_METHOD if refit is not None else method] * len(groups),
            "n_eff": n_eff,
            "labels": [labels] * len(groups),
        }
        for name, values in columns.items():
            parts[name].append(values)
    # One DataFrame at the end: building one per family costs more than the estimate itself.
    table = pd.DataFrame({name: np.concatenate(values) for name, values in parts.items() if name != "reliable"})
    table.insert(RESULT_COLUMNS.index("reliable"), "reliable", ~(table["small_count"] | table["degenerate"]))
    raters = _count_distinct(annotations["rater"])
    return Estimate(table, options, "z", images, raters)


def _count_distinct(column: pd.Series) -> int:
    """Distinct non-empty values (raters), cheaply for a categorical column."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        if len(codes) == 0:
            return 0
        if len(column.cat.categories) == 1:  # one rater named: present unless every row is empty
            return int(codes.max() >= 0)
        return int(np.count_nonzero(np.bincount(codes[codes >= 0], minlength=1)))
    return int(column.nunique())


def estimate_each(annotations: pd.DataFrame, options: EstimateOptions | None = None, *, by: str = "run_key",
                  targets: dict | None = None, adjudications: pd.DataFrame | None = None) -> dict[str, Estimate]:
    """One ``estimate`` per value of column ``by`` (runs, prompts, models), in order of appearance,
    all with ``options``; ``targets`` maps a value to its own targets (parity where it has none)."""
    options = options or EstimateOptions()
    return {key: estimate(rows, **options.arguments, targets=(targets or {}).get(key), adjudications=adjudications)
            for key, rows in annotations.groupby(by, sort=False)}


# -- planning and comparison ------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def z_value(confidence: float) -> float:
    """The normal critical value of a two-sided interval (scipy is imported only when needed)."""
    from scipy import stats

    check_confidence(confidence)
    return float(stats.norm.ppf(1 - (1 - confidence) / 2))
