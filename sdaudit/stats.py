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
- ``clopper-pearson`` — the exact binomial interval from beta quantiles.
- ``bootstrap`` — percentile bootstrap over images, vectorised: images with equal labels are
  pooled and each resample is one multinomial draw over the distinct labels.

Wilson and Clopper–Pearson assume independent 0/1 images; with soft labels they are an
approximation that ignores rater disagreement (the jackknife and bootstrap do not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special, stats

from sdaudit.scheme import DEFAULT_SKIN_CUT, FAMILIES, UNCLEAR

Method = Literal["jackknife", "wilson", "clopper-pearson", "bootstrap"]
METHODS: tuple[str, ...] = ("jackknife", "wilson", "clopper-pearson", "bootstrap")
BOOTSTRAP_RESAMPLES = 4000

# An interval is flagged `small_count` when fewer than this many images fall on the rarer side
# (min(count, n − count)). Set from benchmarks/coverage.py so that, over its grid of shares and
# sample sizes, every unflagged 95% interval covers the true share at least 94% of the time.
# Wilson's coverage oscillates below 94% at some moderate counts (p = 0.1, n = 100: 93.6%), so
# it needs as large a threshold as the jackknife; Clopper–Pearson is conservative.
MIN_COUNT: dict[str, int] = {"jackknife": 19, "wilson": 19, "clopper-pearson": 1, "bootstrap": 6}

METHOD_TEXT = "`method` must be one of {choices} but is {value!r}."
CONFIDENCE_TEXT = "`confidence` must be a number strictly between 0 and 1 but is {value!r}."
SKIN_CUT_TEXT = "`skin_cut` must be a whole number from 1 to 9 (MST 1..cut is lighter) but is {value!r}."
TARGET_TEXT = "a target must name a family and group as (family, group) with a share from 0 to 1, but got {key!r}: {value!r}."
COLUMNS_TEXT = "annotations need the columns {needed}; missing: {missing}."

RESULT_COLUMNS = [
    "family", "group", "count", "n", "share", "se", "low", "high", "target", "difference", "ratio",
    "small_count", "degenerate", "excludes_target",
]  # fmt: skip


@dataclass(frozen=True)
class Estimate:
    """Shares and intervals for every family × group, computed once; the views are cheap.

    ``table`` has one row per family × group with the columns of ``RESULT_COLUMNS``. ``count``
    is the (soft) number of images in the group, ``n`` the images with a person and an answer in
    that family. ``se`` is the jackknife standard error, whatever the method.
    """

    table: pd.DataFrame = field(repr=False)
    method: str
    confidence: float
    critical: str  # how the jackknife interval is formed: "z" (normal), as in the origin study
    skin_cut: int
    include_unclear: bool
    images: int  # images with a person
    raters: int

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
        """Rows whose interval should not be trusted as stated (small counts or degenerate)."""
        return self.table[self.table["small_count"] | self.table["degenerate"]].reset_index(drop=True)


# -- validation -------------------------------------------------------------------------------


def _estimate_iv(annotations, method, confidence, skin_cut, targets, include_unclear):
    if method not in METHODS:
        raise ValueError(METHOD_TEXT.format(choices=", ".join(METHODS), value=method))
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(CONFIDENCE_TEXT.format(value=confidence))
    if isinstance(skin_cut, bool) or not isinstance(skin_cut, (int, np.integer)) or not 1 <= skin_cut <= 9:
        raise ValueError(SKIN_CUT_TEXT.format(value=skin_cut))
    resolved_targets = {
        (family, group): 1 / len(groups) for family, groups in FAMILIES.items() for group in groups
    }
    for key, value in (targets or {}).items():
        valid_key = isinstance(key, tuple) and len(key) == 2 and key[0] in FAMILIES and key[1] in FAMILIES[key[0]]
        valid_value = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
        if not (valid_key and valid_value):
            raise ValueError(TARGET_TEXT.format(key=key, value=value))
        resolved_targets[key] = float(value)
    needed = ["image_id", "rater", "person_present", "gender", "mst", "skin_binary"]
    missing = [column for column in needed if column not in annotations.columns]
    if missing:
        raise ValueError(COLUMNS_TEXT.format(needed=", ".join(needed), missing=", ".join(missing)))
    return resolved_targets, bool(include_unclear)


# -- labels -----------------------------------------------------------------------------------


def _answers(annotations: pd.DataFrame, skin_cut: int) -> dict[str, np.ndarray]:
    """Each annotation row's answer per family as an object array (None = not answered)."""
    gender = annotations["gender"].to_numpy(dtype=object)
    has_gender = annotations["gender"].notna().to_numpy()
    mst = pd.to_numeric(annotations["mst"], errors="coerce").to_numpy(dtype=float)
    binary = annotations["skin_binary"].to_numpy(dtype=object)
    has_mst = ~np.isnan(mst)
    has_skin = has_mst | annotations["skin_binary"].notna().to_numpy()
    skin = np.where(has_mst, np.where(mst <= skin_cut, "lighter", "darker"), binary).astype(object)
    skin[~has_skin] = None
    gender = np.where(has_gender, gender, None).astype(object)
    both = has_gender & has_skin
    unclear = both & ((gender == UNCLEAR) | (skin == UNCLEAR))
    intersection = np.full(len(annotations), None, dtype=object)
    named = both & ~unclear
    intersection[named] = np.char.add(np.char.add(skin[named].astype(str), "_"), gender[named].astype(str))
    intersection[unclear] = UNCLEAR
    return {"gender": gender, "skin_tone": skin, "intersection": intersection}


def _image_labels(image_codes: np.ndarray, answers: np.ndarray, groups: tuple[str, ...], n_images: int):
    """Per-image soft labels (images × groups) from one family's answers; None answers skipped."""
    codes = np.full(len(answers), -1, dtype=np.int64)
    for index, group in enumerate(groups):
        codes[answers == group] = index
    kept = codes >= 0
    counts = np.bincount(
        image_codes[kept] * len(groups) + codes[kept], minlength=n_images * len(groups)
    ).reshape(n_images, len(groups))
    answered = counts.sum(axis=1)
    has = answered > 0
    return counts[has] / answered[has, None]


def _labels(annotations: pd.DataFrame, skin_cut: int, include_unclear: bool):
    """Per family: (groups, per-image soft labels). Images count when most raters saw a person."""
    person = annotations["person_present"]
    said = person.notna().to_numpy()
    yes = person.fillna(False).astype(bool).to_numpy()
    image_codes, image_ids = pd.factorize(annotations["image_id"], sort=False)
    n_images = len(image_ids)
    said_count = np.bincount(image_codes[said], minlength=n_images)
    yes_count = np.bincount(image_codes[yes], minlength=n_images)
    # Ties count as a person: an image half the raters saw a person in is not silently dropped.
    with_person = (said_count > 0) & (2 * yes_count >= said_count)
    keep = yes & with_person[image_codes]
    answers = _answers(annotations, skin_cut)
    labels = {}
    for family, named in FAMILIES.items():
        groups = (*named, UNCLEAR) if include_unclear else named
        labels[family] = (groups, _image_labels(image_codes[keep], answers[family][keep], groups, n_images))
    return labels, int(with_person.sum())


# -- interval kernels -------------------------------------------------------------------------


def _jackknife_se(labels: np.ndarray) -> np.ndarray:
    """Leave-one-image-out standard error of each column's mean, in closed form: s / √n."""
    n = labels.shape[0]
    if n < 2:
        return np.full(labels.shape[1], np.nan)
    return labels.std(axis=0, ddof=1) / math.sqrt(n)


def _wilson(count: np.ndarray, n: int, z: float) -> tuple[np.ndarray, np.ndarray]:
    p = count / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return center - half, center + half


def _clopper_pearson(count: np.ndarray, n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(count > 0, special.betaincinv(count, n - count + 1, alpha / 2), 0.0)
        high = np.where(count < n, special.betaincinv(count + 1, n - count, 1 - alpha / 2), 1.0)
    return low, high


def _bootstrap(labels: np.ndarray, alpha: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap over images: one multinomial draw over the distinct label rows."""
    n = labels.shape[0]
    distinct, frequency = np.unique(labels, axis=0, return_counts=True)
    draws = rng.multinomial(n, frequency / n, size=BOOTSTRAP_RESAMPLES)
    means = draws @ distinct / n
    return np.quantile(means, alpha / 2, axis=0), np.quantile(means, 1 - alpha / 2, axis=0)


# -- entry point ------------------------------------------------------------------------------


def estimate(
    annotations: pd.DataFrame,
    *,
    method: Method = "jackknife",
    confidence: float = 0.95,
    skin_cut: int = DEFAULT_SKIN_CUT,
    targets: dict[tuple[str, str], float] | None = None,
    include_unclear: bool = True,
    seed: int | None = None,
) -> Estimate:
    """Each group's share among annotated images with a person, with a ``confidence`` interval.

    ``annotations`` has one row per image × rater (the store's ``annotations()``): ``image_id``,
    ``rater``, ``person_present``, ``gender``, ``mst`` (1–10) and ``skin_binary``. ``skin_cut``
    makes MST 1..cut lighter and the rest darker. ``targets`` maps ``(family, group)`` to a share
    and replaces parity (1/k of a family's k groups) for that group. With ``include_unclear``
    false, `unclear` answers leave the denominator. ``seed`` drives the bootstrap only.
    """
    targets_by_group, include_unclear = _estimate_iv(annotations, method, confidence, skin_cut, targets,
                                                     include_unclear)
    alpha = 1 - confidence
    z = float(stats.norm.ppf(1 - alpha / 2))
    rng = np.random.default_rng(seed)
    labels, images = _labels(annotations, int(skin_cut), include_unclear)

    frames = []
    for family, (groups, y) in labels.items():
        n = y.shape[0]
        count = y.sum(axis=0) if n else np.zeros(len(groups))
        share = count / n if n else np.full(len(groups), np.nan)
        se = _jackknife_se(y)
        if n < 2:
            low = high = np.full(len(groups), np.nan)
        elif method == "jackknife":
            low, high = share - z * se, share + z * se
        elif method == "wilson":
            low, high = _wilson(count, n, z)
        elif method == "clopper-pearson":
            low, high = _clopper_pearson(count, n, alpha)
        else:
            low, high = _bootstrap(y, alpha, rng)
        rarer = np.minimum(count, n - count)
        degenerate = (n == 0) | (rarer <= 0)
        zero_width = np.isclose(low, high) if n >= 2 else np.ones(len(groups), dtype=bool)
        # A zero-width interval at share 0 or 1 would claim certainty that the data do not give.
        low = np.where(degenerate & zero_width, np.nan, np.clip(low, 0, 1))
        high = np.where(degenerate & zero_width, np.nan, np.clip(high, 0, 1))
        target = np.array([targets_by_group.get((family, group), np.nan) for group in groups])
        frames.append(
            pd.DataFrame({
                "family": family,
                "group": list(groups),
                "count": count,
                "n": n,
                "share": share,
                "se": se,
                "low": low,
                "high": high,
                "target": target,
                "difference": share - target,
                "ratio": np.divide(share, target, out=np.full(len(groups), np.nan), where=target > 0),
                "small_count": rarer < MIN_COUNT[method],
                "degenerate": degenerate,
                "excludes_target": (low > target) | (high < target),
            })
        )
    table = pd.concat(frames, ignore_index=True)[RESULT_COLUMNS]
    raters = int(annotations["rater"].nunique()) if len(annotations) else 0
    return Estimate(table, method, float(confidence), "z", int(skin_cut), include_unclear, images, raters)


# -- planning and comparison ------------------------------------------------------------------


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(CONFIDENCE_TEXT.format(value=confidence))
    return float(stats.norm.ppf(1 - (1 - confidence) / 2))


def images_needed(share: float, half_width: float, *, confidence: float = 0.95) -> int:
    """Images with a person needed for a jackknife interval of ±``half_width`` at ``share``."""
    if not 0 < share < 1:
        raise ValueError(f"`share` must be strictly between 0 and 1 but is {share!r}.")
    if not 0 < half_width < 1:
        raise ValueError(f"`half_width` must be strictly between 0 and 1 but is {half_width!r}.")
    z = _z(confidence)
    # z·√(p(1−p)/(n−1)) ≤ h  ⇔  n ≥ z²p(1−p)/h² + 1
    return math.ceil(z * z * share * (1 - share) / (half_width * half_width)) + 1


def images_to_separate(share: float, target: float, n: int, *, confidence: float = 0.95) -> float:
    """How many more images, at the current ``share``, until the interval excludes ``target``.

    0 when it already does; ``inf`` when the share equals the target.
    """
    if not 0 < share < 1:
        raise ValueError(f"`share` must be strictly between 0 and 1 but is {share!r}.")
    if not 0 <= target <= 1:
        raise ValueError(f"`target` must be from 0 to 1 but is {target!r}.")
    if share == target:
        return math.inf
    z = _z(confidence)
    # z·√(p(1−p)/(n−1)) < |p − t|  ⇔  n > z²p(1−p)/(p − t)² + 1
    bound = z * z * share * (1 - share) / (share - target) ** 2 + 1
    required = math.floor(bound) + 1
    return max(0, required - n)


def compare(first: Estimate, second: Estimate, *, confidence: float = 0.95) -> pd.DataFrame:
    """Per family × group: ``first`` share − ``second`` share with a normal interval.

    The two estimates come from different images (two runs, prompts or models), so their
    jackknife standard errors combine as √(se₁² + se₂²).
    """
    z = _z(confidence)
    keys = ["family", "group"]
    merged = first.table[[*keys, "share", "se", "n"]].merge(
        second.table[[*keys, "share", "se", "n"]], on=keys, suffixes=("_first", "_second")
    )
    difference = merged["share_first"] - merged["share_second"]
    se = np.sqrt(merged["se_first"] ** 2 + merged["se_second"] ** 2)
    merged["difference"] = difference
    merged["low"] = difference - z * se
    merged["high"] = difference + z * se
    merged["excludes_zero"] = (merged["low"] > 0) | (merged["high"] < 0)
    return merged
