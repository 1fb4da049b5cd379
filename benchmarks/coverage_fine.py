"""The flag rules from an exact scan that holds between its points, not only on them.

    python benchmarks/coverage_fine.py       # a few minutes on a 2-core machine

coverage.py's dense scan evaluates shares on a grid (steps of 0.005). Between its points an
interval's limit can pass the share and the chance of an unflagged miss can rise above the grid's
values: with the rules that grid chose, Wilson reached 6.1% at p = 0.47396, n = 115 and the
jackknife 6.1% at p = 0.40777, n = 199 (issue 22). This scan bounds that chance over *every* share.

At n images, flag rule F and share p, the chance of an unflagged interval that misses p is exact:
f(p) = Σ over counts k not flagged of P(K = k) · [p outside the interval of k], K ~ Binomial(n, p),
with the intervals as sdaudit forms them for one rater (``planning.method_intervals``; a count of
0 or n is always flagged). Which counts miss changes only where p crosses an interval's limit. So
the scan takes as points every limit of every count and every p from 0 to 0.5 in steps of 1e-4.
On the stretch between two neighbouring points a < b the counts that miss are fixed: those whose
interval lies below p, each with k/n ≤ high(k) < p, so P(K = k) falls as p rises; and those whose
interval lies above p, each with p < low(k) ≤ k/n, so P(K = k) rises. Hence, on the whole stretch,

    f(p) ≤ (the first kind's chance at a) + (the second kind's at b)          (the bound)

and f comes as close as one likes to its values at a and b from inside the stretch (attained). The
bound holds at every p, between the points too; the rule is chosen on it (a stretch bounded over 6%
is cut into 16 pieces, each bounded the same way, up to 3 times). The scan checks what the
argument needs of the intervals: each contains k/n, the limits rise with k, and the interval of
n − k is the mirror 1 − (interval of k) (so p ≤ 0.5 covers p > 0.5; the flags are mirrored too).

For each n from 20 to 2000 the scan finds the smallest m for which flagging min(k, n − k) < m
keeps the bound at most 6% (a larger m flags more, so f can only fall). A rule "flag when
min(k, n − k) < m or n < N" holds on the scan where N is past every n needing more than m; of those
rules the one kept flags least on average over coverage.py's dense grid, as before. The default
(Clopper–Pearson with the NCHS rules) is bounded the same way with its own flags.
"""

from __future__ import annotations

import functools
import importlib.util
import time
from pathlib import Path

import numpy as np
from scipy import special

from sdaudit.analysis import estimate as sd_stats
from sdaudit.analysis.planning import method_intervals


@functools.cache
def _dense_grid():
    """benchmarks/coverage.py, read by path (another `coverage` may be installed): its dense grid."""
    spec = importlib.util.spec_from_file_location("sdaudit_coverage", Path(__file__).with_name("coverage.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DENSE_SHARES, module.DENSE_SIZES


CONFIDENCE = 0.95
MOST_MISSED = 0.06  # the promise: at most this chance of an unflagged interval that misses
STEP = 1e-4
SIZES = range(20, 2001)
GRID = np.linspace(0.0, 0.5, 5001)  # p in steps of 1e-4
METHODS = ("wilson", "jackknife")
BEYOND = (2500, 5000, 10000)  # spot checks past the scan
PIECES, REFINE = 16, 3  # a stretch bounded over 6% is cut in 16, up to 3 times


def limits(method: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The intervals of counts 1..n − 1 out of n, checked for what the bound needs."""
    ks = np.arange(1, n)
    low, high = method_intervals(method, ks, n, CONFIDENCE)
    low, high = np.clip(low, 0, 1), np.clip(high, 0, 1)  # as estimate() shows them
    if not ((low <= ks / n) & (ks / n <= high)).all():
        raise AssertionError(f"{method}, n = {n}: an interval leaves out its own share")
    if (np.diff(low) < 0).any() or (np.diff(high) < 0).any():
        raise AssertionError(f"{method}, n = {n}: a limit falls as the count rises")
    if np.abs(low - (1 - high[::-1])).max() > 1e-12:
        raise AssertionError(f"{method}, n = {n}: the interval of n - k is not the mirror of k's")
    return low, high


class Size:
    """One n: the scan's points and, for each stretch between them, which counts miss."""

    def __init__(self, method: str, n: int):
        self.method, self.n = method, n
        low, high = limits(method, n)
        self.low, self.high = low, high
        ends = np.concatenate([low, high])
        self.p = np.unique(np.concatenate([GRID, ends[(ends >= 0) & (ends <= 0.5)]]))
        a, b = self.p[:-1], self.p[1:]
        # stretch (a, b): counts 1..below miss from below (high ≤ a), counts above..n − 1 from above (low ≥ b)
        self.below = np.searchsorted(high, a, side="right")
        self.above = np.searchsorted(low, b, side="left") + 1

    def unflagged_miss(self, runs: list[tuple[int, int]]) -> tuple[float, float, float]:
        """For the unflagged counts ``runs`` (inclusive first, last), the bound on f over 0 ≤ p ≤ 0.5,
        the largest value f nears at a stretch's end from inside it, and a share 1e-9 inside from it.
        Stretches whose bound is over MOST_MISSED while no value found is are cut into PIECES and
        bounded again (the same counts miss on each piece), up to REFINE times."""
        a, b, below, above = self.p[:-1], self.p[1:], self.below, self.above
        settled, best = 0.0, (-1.0, None)
        for cut in range(REFINE + 1):
            below_a, below_b, above_a, above_b = _misses(self.n, runs, a, b, below, above)
            bound = below_a + above_b
            for side, value in ((a, below_a + above_a), (b, below_b + above_b)):
                i = int(value.argmax())
                if value[i] > best[0]:
                    inside = min(1e-9, (b[i] - a[i]) / 2)  # f nears its value at a stretch's end from inside
                    best = (float(value[i]), float(side[i] + (inside if side is a else -inside)))
            over = bound > MOST_MISSED
            if cut == REFINE or best[0] > MOST_MISSED or not over.any():
                return max(settled, float(bound.max())), *best
            settled = max(settled, float(bound[~over].max(initial=0.0)))
            ends = a[over, None] + (b[over] - a[over])[:, None] * np.linspace(0, 1, PIECES + 1)
            a, b = ends[:, :-1].ravel(), ends[:, 1:].ravel()
            below, above = np.repeat(below[over], PIECES), np.repeat(above[over], PIECES)
        raise AssertionError("unreachable")


def _misses(n: int, runs, a, b, below, above):
    """Per stretch (a, b), the chance at a and at b of the unflagged counts that miss from below
    (1..below) and from above (above..n − 1) on it."""
    below_a, below_b, above_a, above_b = (np.zeros(len(a)) for _ in range(4))
    for first, last in runs:
        end = np.minimum(below, last)  # unflagged counts missing from below: first..end
        some = end >= first
        below_a += np.where(some, _cdf(end, n, a) - _cdf(first - 1, n, a), 0.0)
        below_b += np.where(some, _cdf(end, n, b) - _cdf(first - 1, n, b), 0.0)
        start = np.maximum(above, first)  # from above: start..last
        some = start <= last
        above_a += np.where(some, _cdf(last, n, a) - _cdf(start - 1, n, a), 0.0)
        above_b += np.where(some, _cdf(last, n, b) - _cdf(start - 1, n, b), 0.0)
    return below_a, below_b, above_a, above_b


def _cdf(k, n: int, p) -> np.ndarray:
    k = np.broadcast_to(np.asarray(k, dtype=np.int64), np.shape(p))
    return np.where(k < 0, 0.0, special.bdtr(np.maximum(k, 0), n, p))


def rule_runs(n: int, m: int) -> list[tuple[int, int]]:
    """The counts a rule with this m leaves unflagged (0 and n never; none when m > n/2)."""
    first, last = max(m, 1), n - max(m, 1)
    return [(first, last)] if first <= last else []


def smallest_m(size: Size, guess: int) -> int:
    """The smallest m whose bound is at most MOST_MISSED at this n, searched from ``guess``."""
    def holds(m):
        return size.unflagged_miss(rule_runs(size.n, m))[0] <= MOST_MISSED
    m = max(1, guess)
    if holds(m):
        while m > 1 and holds(m - 1):
            m -= 1
        return m
    while not holds(m + 1):
        m += 1
    return m + 1


def scan(method: str, sizes=SIZES) -> dict[int, int]:
    """n -> the smallest m that keeps the bound at most MOST_MISSED at that n."""
    needed, guess = {}, 1
    for n in sizes:
        guess = needed[n] = smallest_m(Size(method, n), guess)
    return needed


def flag_chance(m: int, smallest_n: int) -> float:
    """The rule's chance of a flag, averaged over coverage.py's dense grid (as the rules were compared)."""
    shares, sizes = _dense_grid()
    chances = []
    for n in sizes:
        if n < smallest_n or 2 * m > n:
            chances.append(np.ones(len(shares)))
        else:
            chances.append(_cdf(m - 1, n, shares) + 1 - _cdf(n - m, n, shares))
    return float(np.mean(chances))


def choose_rule(needed: dict[int, int]) -> dict:
    """Of the rules (m, N) that hold on the scan, the one that flags least on average."""
    best = None
    for m in range(1, max(needed.values()) + 1):
        failing = [n for n, want in needed.items() if want > m]
        smallest_n = max(failing) + 1 if failing else min(needed)
        if smallest_n > max(needed):
            continue
        candidate = {"m": m, "n": smallest_n, "flag_chance": flag_chance(m, smallest_n)}
        if best is None or candidate["flag_chance"] < best["flag_chance"] - 1e-12:
            best = candidate
    return best


def worst_under(method: str, m: int, smallest_n: int, sizes=SIZES) -> dict:
    """Under the rule (m, N): the worst bound and the worst attained chance over the scanned n ≥ N."""
    worst = {"bound": 0.0, "attained": 0.0, "p": None, "n": None}
    for n in sizes:
        if n < smallest_n:
            continue
        bound, attained, p = Size(method, n).unflagged_miss(rule_runs(n, m))
        worst["bound"] = max(worst["bound"], bound)
        if attained > worst["attained"]:
            worst.update(attained=attained, p=p, n=n)
    return worst


def default_runs(n: int) -> list[tuple[int, int]]:
    """The counts the default's NCHS rules leave unflagged, as runs (one rater: n_eff = n)."""
    ks = np.arange(n + 1)
    shown = ~sd_stats.nchs_unreliable(ks / n, np.full(n + 1, float(n))) & (ks > 0) & (ks < n)
    if (shown != shown[::-1]).any():
        raise AssertionError(f"n = {n}: the NCHS flags of k and n - k differ")
    edges = np.flatnonzero(np.diff(np.concatenate([[0], shown.astype(int), [0]])))
    return [(int(first), int(last) - 1) for first, last in zip(edges[::2], edges[1::2])]


def default_worst(sizes=SIZES) -> dict:
    worst = {"bound": 0.0, "attained": 0.0, "p": None, "n": None}
    for n in sizes:
        bound, attained, p = Size("clopper-pearson", n).unflagged_miss(default_runs(n))
        worst["bound"] = max(worst["bound"], bound)
        if attained > worst["attained"]:
            worst.update(attained=attained, p=p, n=n)
    return worst


def main() -> None:
    print(f"Fine scan: every n from {SIZES.start} to {SIZES.stop - 1}; p from 0 to 0.5 in steps of {STEP:g} "
          f"and at every limit of every count's {CONFIDENCE:.0%} interval; the bound holds between the points "
          f"(see the docstring); p > 0.5 by the intervals' checked mirror symmetry.\n")
    for method in METHODS:
        started = time.perf_counter()
        needed = scan(method)
        rule = choose_rule(needed)
        worst = worst_under(method, rule["m"], rule["n"])
        old = worst_under(method, *coverage_rule(method))
        print(f"  {method:<10} rule: flag when min(count, n - count) < {rule['m']} or n < {rule['n']}; "
              f"mean chance of a flag over the dense grid {rule['flag_chance']:.3f}; sdaudit uses "
              f"m = {sd_stats.MIN_COUNT[method]}, N = {sd_stats.MIN_IMAGES[method]}")
        print(f"  {'':<10} unflagged miss over n >= {rule['n']}: bound {worst['bound']:.5f}, attained "
              f"{worst['attained']:.5f} at p = {worst['p']:.9f}, n = {worst['n']}")
        edge = Size(method, rule["n"] - 1).unflagged_miss(rule_runs(rule["n"] - 1, rule["m"]))
        print(f"  {'':<10} at n = {rule['n'] - 1} the same m: bound {edge[0]:.5f}, attained {edge[1]:.5f} at "
              f"p = {edge[2]:.9f} (so N cannot be lower)")
        print(f"  {'':<10} the dense scan's rule (m = {coverage_rule(method)[0]}, N = {coverage_rule(method)[1]}, "
              f"mean chance of a flag {flag_chance(*coverage_rule(method)):.3f}): attained {old['attained']:.5f} "
              f"at p = {old['p']:.9f}, n = {old['n']}")
        largest = max(needed, key=lambda n: (needed[n], n))
        beyond = worst_under(method, rule["m"], rule["n"], BEYOND)
        print(f"  {'':<10} the largest m any n needs: {needed[largest]} (n = {largest}); past the scan, at n = "
              f"{', '.join(map(str, BEYOND))}: bound {beyond['bound']:.5f}; {time.perf_counter() - started:.0f} s\n")
    started = time.perf_counter()
    worst = default_worst()
    print(f"  clopper-pearson with the NCHS flags: unflagged miss bound {worst['bound']:.5f}, attained "
          f"{worst['attained']:.5f} at p = {worst['p']:.9f}, n = {worst['n']}; {time.perf_counter() - started:.0f} s")


def coverage_rule(method: str) -> tuple[int, int]:
    """The rule the dense grid chose (2026-11-29-coverage-dense.txt), for comparison."""
    return {"jackknife": (55, 199), "wilson": (27, 110)}[method]


if __name__ == "__main__":
    main()
