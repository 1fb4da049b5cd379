"""Coverage of each interval method's 95% interval, and the `small_count` threshold it implies.

    python benchmarks/coverage.py

Two parts. The **dense scan** computes the exact coverage of the jackknife, Wilson and default
(Clopper–Pearson) intervals at every share p from 0.005 to 0.5 in steps of 0.005 and every n
from 20 to 300, then every 10th n to 2000 (45,100 cells), vectorised over the count: an
interval depends on (k, n) only, so each n's intervals are computed once and weighed by the
binomial probabilities of every p at once. It reports, per method, the cells below 94%, the
worst cell, and how often an *unflagged* interval misses (conditional coverage among unflagged
intervals cannot be held at every cell by any flag computed from the data: in a cell where
intervals are rarely unflagged, the unflagged ones are a tail of the sampling distribution).
The bootstrap is left out of the dense scan (4000 resamples per count and n would take hours).
The **coarse grid** (25 cells) then chooses the count thresholds of the jackknife, Wilson and
bootstrap flags, as below.

For one rater per image the data are binomial, so coverage is computed exactly rather than by
simulation: coverage(p, n) = Σ_k P(K = k) · [p inside the interval computed from k]. The
bootstrap is the one exception: its interval for each k is drawn with sdaudit's own resampling
(4000 resamples, fixed seed).

`small_count` flags an interval when min(k, n − k) < m. For each method the script finds the
smallest m such that, in every cell of the grid where an unflagged interval has at least a 5%
chance of being shown, the unflagged intervals cover p at least 94% of the time. (In cells where
unflagged intervals are rarer than that, they come only from far tails of the sampling
distribution; the script prints the largest chance of such an unflagged miss.)
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from sdaudit import stats as sd_stats
from sdaudit.labels import Labels

SHARES = (0.02, 0.05, 0.1, 0.25, 0.5)
SIZES = (50, 100, 221, 500, 2000)
CONFIDENCE = 0.95
GOAL = 0.94
MIN_CHANCE_SHOWN = 0.05


def intervals(method: str, n: int, ks: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """The method's interval for every count in ``ks`` at sample size n (0/1 labels)."""
    alpha = 1 - CONFIDENCE
    z = float(stats.norm.ppf(1 - alpha / 2))
    counts = ks.astype(float)
    if method == "jackknife":
        p = counts / n
        se = np.sqrt(p * (1 - p) / (n - 1))
        return p - z * se, p + z * se
    if method == "wilson":
        return sd_stats._wilson(counts, n, z)
    if method == "clopper-pearson":  # one rater per image: n_eff = n
        return sd_stats._clopper_pearson(counts, np.full(len(counts), float(n)), alpha)
    lows, highs = [], []
    for k in ks:
        labels = Labels(np.eye(2), np.array([k, n - k]))  # k images in the group
        low, high = sd_stats._bootstrap(labels, alpha, rng)
        lows.append(low[0])
        highs.append(high[0])
    return np.array(lows), np.array(highs)


def cell(method: str, p: float, n: int, rng) -> dict:
    ks = np.arange(n + 1)
    weights = stats.binom.pmf(ks, n, p)
    relevant = weights > 1e-12
    ks, weights = ks[relevant], weights[relevant]
    low, high = intervals(method, n, ks, rng)
    covered = (low <= p) & (p <= high)
    if method in ("jackknife", "bootstrap"):
        covered &= (ks > 0) & (ks < n)  # their zero-width intervals at 0 and n are NaN in sdaudit
    rarer = np.minimum(ks, n - ks)
    return {"coverage": float(weights @ covered), "ks": ks, "weights": weights, "covered": covered, "rarer": rarer}


def threshold(cells: list[dict]) -> tuple[int, float, float]:
    """Smallest m meeting the goal; with the worst shown coverage and worst rare-miss chance."""
    for m in range(1, 60):
        worst, rare_miss = 1.0, 0.0
        for c in cells:
            shown = c["rarer"] >= m
            chance = float(c["weights"][shown].sum())
            if chance >= MIN_CHANCE_SHOWN:
                worst = min(worst, float(c["weights"][shown & c["covered"]].sum()) / chance)
            else:
                rare_miss = max(rare_miss, float(c["weights"][shown & ~c["covered"]].sum()))
        if worst >= GOAL:
            return m, worst, rare_miss
    raise RuntimeError("no threshold meets the goal")


def thresholds() -> dict[str, tuple[int, float, float]]:
    """Each count-flagged method's threshold m (with its worst shown coverage and rare-miss chance)."""
    return {method: threshold(grid(method)) for method in sd_stats.MIN_COUNT}


DENSE_SHARES = np.round(np.arange(0.005, 0.5001, 0.005), 3)
DENSE_SIZES = (*range(20, 301), *range(310, 2001, 10))


def dense(method: str) -> dict:
    """Exact coverage of ``method`` over the dense grid, with and without its flag."""
    cells = below = unflagged_misses = 0
    worst = (2.0, None, None)
    worst_unflagged_miss = (0.0, None, None)
    for n in DENSE_SIZES:
        ks = np.arange(n + 1)
        low, high = intervals(method, n, ks, None)
        if method in ("jackknife", "bootstrap"):  # sdaudit shows no interval at 0 and n
            low = np.where((ks > 0) & (ks < n), low, np.nan)
        rarer = np.minimum(ks, n - ks)
        if method == "clopper-pearson":
            flagged = sd_stats._nchs_unreliable(ks / n, low, high, np.full(n + 1, float(n))) | (rarer == 0)
        else:
            flagged = (rarer < sd_stats.MIN_COUNT[method]) | (rarer == 0)
        weights = stats.binom.pmf(ks[None, :], n, DENSE_SHARES[:, None])
        covered = (low[None, :] <= DENSE_SHARES[:, None]) & (DENSE_SHARES[:, None] <= high[None, :])
        coverage = (weights * covered).sum(axis=1)
        missed_unflagged = (weights * (~covered & ~flagged)).sum(axis=1)
        cells += len(DENSE_SHARES)
        below += int((coverage < GOAL).sum())
        unflagged_misses += int((missed_unflagged > 1 - GOAL).sum())
        i = int(coverage.argmin())
        if coverage[i] < worst[0]:
            worst = (float(coverage[i]), float(DENSE_SHARES[i]), n)
        j = int(missed_unflagged.argmax())
        if missed_unflagged[j] > worst_unflagged_miss[0]:
            worst_unflagged_miss = (float(missed_unflagged[j]), float(DENSE_SHARES[j]), n)
    return {"cells": cells, "below": below, "worst": worst, "unflagged_misses": unflagged_misses,
            "worst_unflagged_miss": worst_unflagged_miss}


def grid(method: str) -> list[dict]:
    rng = np.random.default_rng(0)
    return [cell(method, p, n, rng) for p in SHARES for n in SIZES]


def main() -> None:
    print(f"Dense scan: exact coverage of nominal {CONFIDENCE:.0%} intervals (one rater per image), "
          f"p = {DENSE_SHARES[0]}..{DENSE_SHARES[-1]} step 0.005, n = 20..300 and every 10th n to 2000\n")
    for method in ("clopper-pearson", "wilson", "jackknife"):
        found = dense(method)
        coverage, p, n = found["worst"]
        miss, miss_p, miss_n = found["worst_unflagged_miss"]
        print(f"  {method:<16} cells below {GOAL:.0%}: {found['below']:>5} of {found['cells']}; worst coverage "
              f"{coverage:.4f} at p = {p}, n = {n}; cells where an unflagged miss is over {1 - GOAL:.0%} likely: "
              f"{found['unflagged_misses']} (worst {miss:.4f} at p = {miss_p}, n = {miss_n})")
    print()
    print(f"Coarse grid: exact coverage of nominal {CONFIDENCE:.0%} intervals (one rater per image)\n")
    header = "method            p     " + "".join(f"n={n:<7}" for n in SIZES)
    print(header)
    chosen = {}
    for method in sd_stats.METHODS:
        cells = grid(method)
        for row, p in enumerate(SHARES):
            line = cells[row * len(SIZES) : (row + 1) * len(SIZES)]
            print(f"{method:<16} {p:<5} " + "".join(f"{c['coverage']:<9.3f}" for c in line))
        chosen[method] = threshold(cells)
        print()
    print(f"small_count threshold m (flag when min(count, n - count) < m), goal >= {GOAL:.0%} when shown:")
    for method, (m, worst, rare_miss) in chosen.items():
        if method not in sd_stats.MIN_COUNT:
            continue  # the default is flagged by the NCHS rules, not by a count
        print(f"  {method:<16} m = {m:<3} worst unflagged coverage {worst:.3f}; "
              f"largest chance of an unflagged miss in rarely-shown cells {rare_miss:.4f}; "
              f"sdaudit uses {sd_stats.MIN_COUNT[method]}")


if __name__ == "__main__":
    main()
