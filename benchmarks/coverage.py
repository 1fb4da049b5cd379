"""Coverage of each interval method's 95% interval, and the `small_count` threshold it implies.

    python benchmarks/coverage.py

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
    if method == "clopper-pearson":
        return sd_stats._clopper_pearson(counts, n, alpha)
    lows, highs = [], []
    for k in ks:
        labels = sd_stats.Labels(np.eye(2), np.array([k, n - k]))  # k images in the group
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
    """Each method's threshold m (with its worst shown coverage and rare-miss chance)."""
    return {method: threshold(grid(method)) for method in sd_stats.METHODS}


def grid(method: str) -> list[dict]:
    rng = np.random.default_rng(0)
    return [cell(method, p, n, rng) for p in SHARES for n in SIZES]


def main() -> None:
    print(f"Exact coverage of nominal {CONFIDENCE:.0%} intervals (one rater per image)\n")
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
        print(f"  {method:<16} m = {m:<3} worst unflagged coverage {worst:.3f}; "
              f"largest chance of an unflagged miss in rarely-shown cells {rare_miss:.4f}; "
              f"sdaudit uses {sd_stats.MIN_COUNT[method]}")


if __name__ == "__main__":
    main()
