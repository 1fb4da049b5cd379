"""Planning and comparing audits: how many more images would settle a comparison with a target
(for the interval shown: its method, level and labels; exact binomial power), and the
difference between two estimates (two runs, prompts or models) with Newcombe's interval.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
from scipy import stats

from sdaudit.analysis.estimate import (
    NCHS_MIN_N_EFF,
    Estimate,
    clopper_pearson_interval,
    wilson_interval,
    z_value,
)
from sdaudit.scheme import UNCLEAR

POWER = 0.8
MAX_IMAGES = 1_000_000  # a plan that needs more says so rather than searching on
SCAN_FACTOR = 2  # power is scanned for dips up to this many times the first size found with enough


def method_intervals(method: str, counts: np.ndarray, n, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The 0/1-label interval of ``method`` for every count in ``counts`` out of ``n`` images (``n``
    one size, or one per count), as ``estimate`` forms it (the bootstrap is planned with its normal
    approximation, the jackknife)."""
    counts = np.asarray(counts, dtype=float)
    n = np.broadcast_to(np.asarray(n, dtype=float), counts.shape)
    if method == "clopper-pearson":
        return clopper_pearson_interval(counts, n, 1 - confidence)
    z = z_value(confidence)
    if method == "wilson":
        return wilson_interval(counts, n, z)
    share = counts / n
    half = z * np.sqrt(share * (1 - share) / np.maximum(n - 1, 1))
    inside = (counts > 0) & (counts < n)  # estimate shows no zero-width jackknife interval
    return np.where(inside, share - half, np.nan), np.where(inside, share + half, np.nan)


def _excluded_counts(method: str, n: np.ndarray, target: float, confidence: float):
    """For each size in ``n``, the counts whose ``method`` interval excludes ``target``: those from
    ``first`` to ``below`` (the interval lies below the target) and from ``above`` to ``last``.

    Each side is a run of counts because a limit only moves one way with the count (Clopper–Pearson's
    and Wilson's limits rise with it; the jackknife's excludes t exactly where (t − p)² > z²p(1 − p)/(n − 1),
    a quadratic in p that is negative at t, so for p below its smaller root or above its larger one).
    The ends start from Wilson's closed form, |k − nt| > z√(nt(1 − t)) (the jackknife's from its roots),
    and are then walked one count at a time until the interval itself agrees: ``method_intervals``, or
    for Clopper–Pearson the binomial test it inverts (the same counts, from cheaper functions)."""
    n = np.asarray(n, dtype=np.int64)
    jackknife = method not in ("clopper-pearson", "wilson")
    first, last = (np.ones_like(n), n - 1) if jackknife else (np.zeros_like(n), n.copy())
    z = z_value(confidence)
    if jackknife:
        c = z * z / np.maximum(n - 1, 1)
        root = np.sqrt(np.maximum((2 * target + c) ** 2 - 4 * (1 + c) * target ** 2, 0))
        low_root, high_root = (2 * target + c - root) / (2 * (1 + c)), (2 * target + c + root) / (2 * (1 + c))
        below, above = np.ceil(n * low_root) - 1, np.floor(n * high_root) + 1
    else:
        spread = z * np.sqrt(n * target * (1 - target))
        below, above = np.ceil(n * target - spread) - 1, np.floor(n * target + spread) + 1
    below = np.clip(below, first - 1, last).astype(np.int64)
    above = np.clip(above, first, last + 1).astype(np.int64)

    alpha = 1 - confidence

    def excluded(counts, at, side):  # side +1: the interval lies above the target; -1: below it
        sizes = n[at]
        inside = (counts >= first[at]) & (counts <= last[at])
        if method == "clopper-pearson":  # its limits pass t exactly where the binomial test it inverts rejects
            tail = stats.binom.sf(counts - 1, sizes, target) if side > 0 else stats.binom.cdf(counts, sizes, target)
            return inside & (tail < alpha / 2)
        low, high = method_intervals(method, np.clip(counts, 0, sizes), sizes, confidence)
        return inside & ((low > target) if side > 0 else (high < target))

    moving = np.arange(len(n))  # the sizes whose ends may still move: after a step, only those that did
    while moving.size:
        at_first = first[moving]
        up = excluded(below[moving] + 1, moving, -1)
        down = ~up & ~excluded(below[moving], moving, -1) & (below[moving] >= at_first)
        widen = excluded(above[moving] - 1, moving, +1)
        narrow = ~widen & ~excluded(above[moving], moving, +1) & (above[moving] <= last[moving])
        below[moving] += up.astype(np.int64) - down
        above[moving] += narrow.astype(np.int64) - widen
        moving = moving[up | down | widen | narrow]
    return first, below, above, last


def separation_power(share: float, target: float, n, *, method: str, confidence: float = 0.95):
    """The chance that ``method``'s interval from ``n`` images (one size, or an array of sizes)
    excludes ``target`` when the true share is ``share``: exact, the binomial probability of the
    counts whose interval excludes it (``_excluded_counts``)."""
    sizes = np.atleast_1d(np.asarray(n, dtype=np.int64))
    first, below, above, last = _excluded_counts(method, sizes, target, confidence)
    cdf = functools.partial(stats.binom.cdf, n=sizes, p=share)
    power = np.where(below >= first, cdf(below) - cdf(first - 1), 0.0)
    power = power + np.where(above <= last, cdf(last) - cdf(above - 1), 0.0)
    return float(power[0]) if np.ndim(n) == 0 else power


def _smallest(meets, first: int = 2) -> float:
    """The smallest n from ``first`` up to MAX_IMAGES with ``meets(n)``, by doubling then
    bisection (``meets`` rises with n up to the binomial's small sawtooth); inf if none."""
    high = first
    while not meets(high):
        if high >= MAX_IMAGES:
            return math.inf
        high = min(2 * high, MAX_IMAGES)
    low = max(first, high // 2)
    while low < high:
        middle = (low + high) // 2
        if meets(middle):
            high = middle
        else:
            low = middle + 1
    return float(high)


def _power_holds_from(share: float, target: float, *, method: str, confidence: float, power: float) -> float:
    """The smallest n from which ``method``'s power stays at least ``power`` for every larger n up
    to the scan's cap; inf if none up to MAX_IMAGES.

    Power zig-zags with n (a count crosses an interval's limit and the binomial's mass moves), so
    it is not enough that power first reaches ``power`` at some n. Doubling from 2 finds a size
    ``reached`` with enough power; every size from ``reached``/2 (which had too little) to
    ``SCAN_FACTOR`` × ``reached`` is then scanned, and the plan is the size after the last one below
    ``power``. At twice a size with 80% power the normal approximation's power is 98% (the
    separation grows by √2: z = 0.84 + 1.96 becomes 1.41 · 2.80 = 3.96), far above the sawtooth's
    teeth, so no later size falls below 80% (benchmarks/plan_check.py scans on to 4×)."""
    reached = 2
    while separation_power(share, target, reached, method=method, confidence=confidence) < power:
        if reached >= MAX_IMAGES:
            return math.inf
        reached = min(2 * reached, MAX_IMAGES)
    sizes = np.arange(max(2, reached // 2), min(SCAN_FACTOR * reached, MAX_IMAGES) + 1)
    short = sizes[separation_power(share, target, sizes, method=method, confidence=confidence) < power]
    return float(short[-1] + 1) if len(short) else float(sizes[0])


@functools.lru_cache(maxsize=512)
def images_for_power(share: float, target: float, *, method: str, confidence: float = 0.95,
                     power: float = POWER, design_effect: float = 1.0) -> float:
    """Images with a person needed for ``method``'s interval to exclude ``target`` with chance at
    least ``power`` if the true share is ``share``, at that size and every larger one
    (``_power_holds_from``); ``design_effect`` (images per effective image, n / n_eff) scales it for
    several raters. inf when the share equals the target."""
    if not 0 <= share <= 1 or not 0 <= target <= 1:
        raise ValueError(f"`share` and `target` must be from 0 to 1 but are {share!r} and {target!r}.")
    if share == target:
        return math.inf
    effective = _power_holds_from(share, target, method=method, confidence=confidence, power=power)
    return math.ceil(effective * design_effect) if math.isfinite(effective) else math.inf


def images_for_half_width(share: float, half_width: float, *, method: str, confidence: float = 0.95,
                          design_effect: float = 1.0) -> float:
    """Images with a person needed for ``method``'s interval at ``share`` to be at most
    ±``half_width`` wide (its width at the expected count share·n)."""
    if not 0 < half_width < 1:
        raise ValueError(f"`half_width` must be strictly between 0 and 1 but is {half_width!r}.")

    def narrow_enough(n: int) -> bool:
        low, high = method_intervals(method, np.array([share * n]), n, confidence)
        return bool(np.nan_to_num(high - low, nan=0.0)[0] <= 2 * half_width)

    effective = _smallest(narrow_enough)
    return math.ceil(effective * design_effect) if math.isfinite(effective) else math.inf


def _newcombe(p1, n1, p2, n2, z) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval (method 10) for p₁ − p₂; ``z`` may be an array."""
    l1, u1 = wilson_interval(p1 * n1, n1, z)  # Wilson limits at the effective counts: never zero width
    l2, u2 = wilson_interval(p2 * n2, n2, z)
    difference = p1 - p2
    return (difference - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            difference + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def _newcombe_p_value(p1, n1, p2, n2) -> np.ndarray:
    """The smallest α at which Newcombe's 1 − α interval excludes 0 (its test's p-value), by
    bisection on α: the interval only widens as α falls."""
    low_alpha, high_alpha = np.zeros_like(p1), np.ones_like(p1)
    for _ in range(60):
        alpha = (low_alpha + high_alpha) / 2
        low, high = _newcombe(p1, n1, p2, n2, stats.norm.ppf(1 - alpha / 2))
        excludes = (low > 0) | (high < 0)
        high_alpha = np.where(excludes, alpha, high_alpha)
        low_alpha = np.where(excludes, low_alpha, alpha)
    return high_alpha


def compare(first: Estimate, second: Estimate, *, confidence: float = 0.95) -> pd.DataFrame:
    """Per family × group: ``first`` share − ``second`` share with Newcombe's hybrid score interval.

    Newcombe (1998), "Interval estimation for the difference between independent proportions",
    method 10: from each share's Wilson limits (l₁, u₁), (l₂, u₂), the difference d = p₁ − p₂ has
    low = d − √((p₁ − l₁)² + (u₂ − p₂)²) and high = d + √((u₁ − p₁)² + (p₂ − l₂)²). Each share
    enters at its effective count p·n_eff (Korn–Graubard's effective size; n with one rater), so
    the interval never has zero width, even at 0/200 against 0/30. ``reliable`` is false where
    either share's own interval is flagged; ``p_value`` is the test of no difference that the
    interval inverts.
    """
    return compare_tables(first.table, second.table, confidence=confidence)


def distance_difference(first, n_first, second, n_second, target, *,
                        confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How much further ``first`` lies from ``target`` than ``second`` does, |p₁ − t| − |p₂ − t|, with
    an interval at ``confidence``; each share enters at its effective size (``n_first``, ``n_second``).

    On the same side of the target the difference of distances is ±(p₁ − p₂), and its interval is
    Newcombe's for p₁ − p₂ with that sign. On opposite sides (or one share on the target) it is
    ±(p₁ + p₂ − 2t), the sign that of p₁ − p₂, and the interval is the MOVER interval for the sum
    p₁ + p₂ from the two Wilson intervals (Zou & Donner 2008, the construction behind Newcombe's):
    low = S − √((p₁ − l₁)² + (p₂ − l₂)²), high = S + √((u₁ − p₁)² + (u₂ − p₂)²), minus 2t.
    """
    p1, n1, p2, n2, t = np.broadcast_arrays(*(np.asarray(value, dtype=float)
                                             for value in (first, n_first, second, n_second, target)))
    z = z_value(confidence)
    l1, u1 = wilson_interval(p1 * n1, n1, z)
    l2, u2 = wilson_interval(p2 * n2, n2, z)
    same_side = (p1 - t) * (p2 - t) > 0
    sign = np.where(same_side, np.sign(p1 - t), np.where(p1 >= p2, 1.0, -1.0))
    low_difference, high_difference = _newcombe(p1, n1, p2, n2, z)
    total = p1 + p2 - 2 * t
    low_sum = total - np.sqrt((p1 - l1) ** 2 + (p2 - l2) ** 2)
    high_sum = total + np.sqrt((u1 - p1) ** 2 + (u2 - p2) ** 2)
    low = np.where(same_side, low_difference, low_sum)
    high = np.where(same_side, high_difference, high_sum)
    centre = np.where(same_side, p1 - p2, total)
    return sign * centre, np.where(sign > 0, low, -high), np.where(sign > 0, high, -low)


def compare_tables(first: pd.DataFrame, second: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """``compare`` on two estimate tables (``Estimate.table`` rows: family, group, share, n_eff,
    reliable), for callers that hold tables rather than estimates (one run of ``estimates_by_run``)."""
    return _with_interval(_paired(first, second), confidence).drop(columns=["n_eff_first", "n_eff_second"])


def _paired(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """The two tables' shares side by side per family × group, with the difference, ``reliable``
    and the p-value of the test of no difference; the effective sizes are kept for the interval."""
    keys = ["family", "group"]
    columns = [*keys, "share", "n_eff", "reliable"]
    merged = first[columns].merge(second[columns], on=keys, suffixes=("_first", "_second"))
    p1, n1 = merged["share_first"].to_numpy(float), merged["n_eff_first"].to_numpy(float)
    p2, n2 = merged["share_second"].to_numpy(float), merged["n_eff_second"].to_numpy(float)
    merged["difference"] = p1 - p2
    merged["reliable"] = merged.pop("reliable_first") & merged.pop("reliable_second")
    merged["p_value"] = _newcombe_p_value(p1, n1, p2, n2)
    return merged


def _with_interval(rows: pd.DataFrame, confidence: float | np.ndarray) -> pd.DataFrame:
    """``rows`` (``_paired``) with Newcombe's ``low``–``high`` at ``confidence`` (one level, or one
    per row) and ``excludes_zero`` read from that very interval, placed after ``difference``."""
    p1, n1 = rows["share_first"].to_numpy(float), rows["n_eff_first"].to_numpy(float)
    p2, n2 = rows["share_second"].to_numpy(float), rows["n_eff_second"].to_numpy(float)
    z = z_value(confidence) if np.ndim(confidence) == 0 else stats.norm.ppf(1 - (1 - np.asarray(confidence)) / 2)
    low, high = _newcombe(p1, n1, p2, n2, z)
    place = list(rows.columns).index("difference") + 1
    rows = rows.copy()
    rows.insert(place, "low", low)
    rows.insert(place + 1, "high", high)
    rows.insert(place + 2, "excludes_zero", (low > 0) | (high < 0))
    return rows


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment: the i-th smallest p times (m − i + 1), kept monotone, at most 1."""
    p_values = np.asarray(p_values, dtype=float)
    order = np.argsort(p_values, kind="stable")
    m = len(p_values)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p_values[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def holm_levels(p_values: np.ndarray, alpha: float) -> np.ndarray:
    """Each test's level in Holm's step-down at family-wise ``alpha``: the k-th smallest p-value is
    tested at α/(m − k + 1) while every smaller one was rejected; from the first that is not, every
    later test keeps that first unrejected level (Holm stops there, and their p-values are larger)."""
    p_values = np.asarray(p_values, dtype=float)
    m = len(p_values)
    order = np.argsort(p_values, kind="stable")
    stepped = alpha / (m - np.arange(m))
    stop = int(np.cumprod(p_values[order] <= stepped).sum())  # rank of the first unrejected; m if none
    levels = np.empty(m)
    levels[order] = np.where(np.arange(m) < stop, stepped, stepped[min(stop, m - 1)])
    return levels


def compare_runs(estimates: dict[str, Estimate], *, reference: str, confidence: float = 0.95,
                 adjust_holm: bool = False) -> pd.DataFrame:
    """Every run in ``estimates`` but ``reference`` against ``reference``, per named group (the
    groups with a target; `unclear` is left out), one row each: ``run``, ``reference``, the two
    shares, the difference with Newcombe's interval, ``excludes_zero`` (read from that interval)
    and ``p_value``.

    With ``adjust_holm``, ``p_holm`` is Holm's adjusted p-value across all the rows, and each row's
    interval is Newcombe's at the level at which Holm's step-down tests it (``holm_levels``; the
    level is in ``interval_confidence``): the interval excludes zero exactly where Holm rejects, so
    a row never contradicts itself. They are not simultaneous intervals: unlike Bonferroni's, they
    are not promised to cover every difference at once with ``confidence``."""
    if reference not in estimates:
        raise ValueError(f"the reference run {reference!r} is not among the runs compared: "
                         f"{', '.join(map(repr, estimates))}.")
    parts = []
    for run, result in estimates.items():
        if run == reference:
            continue
        rows = _paired(result.table, estimates[reference].table)
        rows = rows[rows["group"] != UNCLEAR]
        parts.append(rows.assign(run=run, reference=reference))
    if not parts:
        raise ValueError("comparing needs at least two runs with annotations.")
    table = pd.concat(parts, ignore_index=True)
    if adjust_holm:
        table["p_holm"] = holm(table["p_value"].to_numpy())
        table["interval_confidence"] = 1 - holm_levels(table["p_value"].to_numpy(), 1 - confidence)
        table = _with_interval(table, table["interval_confidence"].to_numpy())
    else:
        table = _with_interval(table, confidence)
    table = table.drop(columns=["n_eff_first", "n_eff_second"])
    first = ["run", "reference", "family", "group"]
    return table[first + [column for column in table.columns if column not in first]]


def plan(result: Estimate, *, power: float = POWER, half_width: float = 0.05) -> pd.DataFrame:
    """Per group with a target: the images with a person needed (in all, and more than today) for
    the interval the estimate shows to exclude the target with chance ``power`` if the true share is
    today's, at that size and every larger one, and for a ±``half_width`` interval.

    The interval planned for is the one shown: the estimate's method (the bootstrap through its
    normal approximation, the jackknife), at its ``interval_confidence`` (Bonferroni's level with
    ``simultaneous``); its labels mode and several raters enter through the design effect
    n / n_eff. No plan goes below the reliability floor, an effective size of ``NCHS_MIN_N_EFF``
    (the NCHS standard's first rule, ``estimate.nchs_unreliable``): ``floored`` says where the floor,
    not the power, sets ``images_for_power``. ``confidence`` is the level planned for. NaN where the share is
    0 or 1 (today's share says nothing of where it lies)."""
    rows = result.table[result.table["target"].notna()][["family", "group", "share", "target", "n", "n_eff"]].copy()
    confidence = result.interval_confidence
    needed, needed_width, floored = [], [], []
    for row in rows.itertuples():
        if not 0 < row.share < 1:
            needed.append(math.nan)
            needed_width.append(math.nan)
            floored.append(False)
            continue
        design_effect = row.n / row.n_eff if row.n_eff > 0 else 1.0
        options = dict(method=result.method, confidence=confidence)
        floor = math.ceil(NCHS_MIN_N_EFF * design_effect)
        for_power = images_for_power(row.share, row.target, power=power, design_effect=design_effect, **options)
        for_width = images_for_half_width(row.share, half_width, design_effect=design_effect, **options)
        floored.append(for_power < floor)
        needed.append(max(for_power, floor))
        needed_width.append(max(for_width, floor))
    rows["images_for_power"] = needed
    rows["more_images"] = [value if math.isnan(value) or math.isinf(value) else max(0.0, value - n)
                           for value, n in zip(needed, rows["n"])]
    rows["images_for_half_width"] = needed_width
    rows["floored"] = floored
    rows["confidence"] = confidence
    return rows.drop(columns="n_eff").reset_index(drop=True)
