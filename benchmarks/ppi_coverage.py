"""Does the prediction-powered interval cover the true share? (issue 25, item 3)

    python benchmarks/ppi_coverage.py            # about half a minute on 2 busy shared cores; [STUDIES]

Simulated studies: N images, each in the group with the cell's chance (the share), a machine that
answers every image and errs (says the other side) with the cell's chance, and people who label a
uniform random subset of n images correctly. The machine's error is either the same on every image
(5% or 30%) or depends on skin tone: 5% on lighter images and 30% on darker ones, for the group
"darker" (the machine under-counts it) and for the group "lighter" (it over-counts it).

Per cell, STUDIES studies, each drawn through its sufficient statistics (the people's 2 × 2 table
of answer against machine, a multinomial; the machine's count on the other N − n images, a
binomial), which is the same distribution as drawing every image, and every interval computed from
them by the paper's formula vectorised over studies. In every cell the first CHECKED studies are
also rebuilt image by image and given to ``sdaudit.analysis.ppi.ppi_share`` (ppi_py), which must
agree to 1e-9, so the figures are those of the code sdaudit ships.

Prints, per cell, the coverage of the true share at 95% with a Monte Carlo ± (1.96 standard errors
over the studies) for: PPI++ (``ppi_share``), the human-only normal (Wald) interval it is compared
with, and the human-only Clopper–Pearson interval (sdaudit's default for hard labels); a candidate
reading, "as C-P": PPI++'s share read as a Clopper–Pearson interval over the effective size
``ppi_share`` reports (n_eff human labels' worth); ``ppi_share``'s candidate "small-sample"
(cp_low/cp_high: the same reading with the variances padded by one pseudo-image at each corner);
the mean of the per-study width ratios PPI / human-only Wald ("width") and small-sample / human-only
C-P ("s-s w"); the mean λ and the median effective sample size. A zero-width
interval (every answer the same, which ``ppi_share`` returns as NaN) counts as a miss. Then a wider
scan beyond the issue's grid (SCAN_* below: n down to 50, machines near perfect or blind to one
side), to see whether a pass on the grid holds between and beyond its points.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

import numpy as np
from scipy import special, stats

# Run as a script, this folder leads sys.path, and its coverage.py would stand in for the coverage
# package that numba (under ppi_py) imports when it finds one: take the folder off.
sys.path[:] = [entry for entry in sys.path if entry != str(Path(__file__).resolve().parent)]

from sdaudit.analysis.estimate import clopper_pearson_interval  # noqa: E402
from sdaudit.analysis.ppi import ppi_share  # noqa: E402

STUDIES = 20_000
CHECKED = 3
CONFIDENCE = 0.95
RNG_SEED = 2026
SHARES = (0.05, 0.20, 0.50)
IMAGES = (2_000, 20_000)
LABELLED = (100, 500)
# (name, the machine's error on the group's images, its error on the other images)
ERRORS = (
    ("5% everywhere", 0.05, 0.05),
    ("30% everywhere", 0.30, 0.30),
    ("tone: group darker", 0.30, 0.05),  # 30% on darker images, 5% on lighter: the group is darker
    ("tone: group lighter", 0.05, 0.30),  # the same machine, the group is lighter
)


def draw(rng, studies, share, images, labelled, error_in, error_out):
    """Sufficient statistics of ``studies`` simulated studies: the people's 2 × 2 table
    (y=1 f=1, y=1 f=0, y=0 f=1, y=0 f=0) and the machine's count on the unlabelled images."""
    cells = [share * (1 - error_in), share * error_in, (1 - share) * error_out, (1 - share) * (1 - error_out)]
    table = rng.multinomial(labelled, cells, size=studies)
    machine_says = share * (1 - error_in) + (1 - share) * error_out
    unlabelled = rng.binomial(images - labelled, machine_says, size=studies)
    return table, unlabelled


def ppi_kernel(table, unlabelled, images):
    """PPI++ for binary answers from the sufficient statistics, vectorised over studies: the
    estimators of ``ppi_share`` (ppi_py's), λ clipped to [0, 1] and 0 where the machine never varies."""
    n = table.sum(axis=1)
    rest = images - n
    s_y = table[:, 0] + table[:, 1]
    s_f = table[:, 0] + table[:, 2]
    s_yf = table[:, 0]
    covariance = s_yf / n - (s_y / n) * (s_f / n)
    ones = s_f + unlabelled
    variance = (ones - ones**2 / images) / (images - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        lam = np.where(variance > 0, np.clip(covariance / ((1 + n / rest) * variance), 0, 1), 0.0)
    share = lam * unlabelled / rest + (s_y - lam * s_f) / n
    mean_unlabelled = unlabelled / rest
    rectifier_mean = (s_y - lam * s_f) / n
    rectifier_square = (s_y - 2 * lam * s_yf + lam**2 * s_f) / n
    se = np.sqrt(lam**2 * mean_unlabelled * (1 - mean_unlabelled) / rest
                 + np.maximum(rectifier_square - rectifier_mean**2, 0) / n)
    return share, se, lam


def small_sample_interval(table, unlabelled, images, estimate, lam):
    """``ppi_share``'s cp_low/cp_high vectorised: the variances with one pseudo-image at each corner."""
    n = table.sum(axis=1)
    rest = images - n
    padded = table + 1
    m = n + 4
    s_y = padded[:, 0] + padded[:, 1]
    s_f = padded[:, 0] + padded[:, 2]
    rectifier_mean = (s_y - lam * s_f) / m
    rectifier_square = (s_y - 2 * lam * padded[:, 0] + lam**2 * s_f) / m
    q = (unlabelled + 1) / (rest + 2)
    variance = lam**2 * q * (1 - q) / rest + np.maximum(rectifier_square - rectifier_mean**2, 0) / n
    size = np.minimum((s_y / m) * (1 - s_y / m) / variance, images)
    return clopper_pearson_interval(np.clip(estimate, 0, 1) * size, size, 1 - CONFIDENCE)


def effective_size(human_share, se, labelled, images):
    """``ppi_share``'s n_eff, Var(Y)/SE² capped at N, vectorised; n where it is undefined."""
    variance = human_share * (1 - human_share)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((se > 0) & (variance > 0), np.minimum(variance / se**2, images), labelled)


def studies_images(table, unlabelled, images, rng):
    """One study rebuilt image by image, in a random order: (machine, human with NaN)."""
    pairs = np.repeat([(1, 1), (1, 0), (0, 1), (0, 0)], table, axis=0).astype(float)
    rest = images - len(pairs)
    machine = np.concatenate([pairs[:, 1], np.r_[np.ones(unlabelled), np.zeros(rest - unlabelled)]])
    human = np.concatenate([pairs[:, 0], np.full(rest, np.nan)])
    order = rng.permutation(images)
    return machine[order], human[order]


def cell(rng, share, images, labelled, error_in, error_out, studies):
    z = stats.norm.ppf(1 - (1 - CONFIDENCE) / 2)
    table, unlabelled = draw(rng, studies, share, images, labelled, error_in, error_out)
    estimate, se, lam = ppi_kernel(table, unlabelled, images)
    alpha = 1 - CONFIDENCE
    human_share = (table[:, 0] + table[:, 1]) / labelled
    human_se = np.sqrt(human_share * (1 - human_share) / labelled)
    size = effective_size(human_share, se, labelled, images)
    adj_low, adj_high = small_sample_interval(table, unlabelled, images, estimate, lam)
    for study in range(CHECKED):  # the kernel is ppi_share's arithmetic, to 1e-9
        machine, human = studies_images(table[study], unlabelled[study], images, rng)
        result = ppi_share(machine, human, confidence=CONFIDENCE)
        kernel = (estimate[study], estimate[study] - z * se[study], estimate[study] + z * se[study], lam[study])
        if not np.allclose((result.share, result.low, result.high, result.lam), kernel, atol=1e-9, rtol=0):
            raise AssertionError(f"kernel {kernel} differs from ppi_share {result}")
        if not np.allclose((result.cp_low, result.cp_high), (adj_low[study], adj_high[study]), atol=1e-9, rtol=0):
            raise AssertionError(f"cp interval {(adj_low[study], adj_high[study])} differs from ppi_share {result}")
        if not np.isnan(result.n_eff) and abs(result.n_eff - size[study]) > 1e-6 * size[study]:
            raise AssertionError(f"n_eff {size[study]} differs from ppi_share's {result.n_eff}")
    count = table[:, 0] + table[:, 1]
    cp_low = np.where(count > 0, special.betaincinv(count, labelled - count + 1, alpha / 2), 0.0)
    cp_high = np.where(count < labelled, special.betaincinv(count + 1, labelled - count, 1 - alpha / 2), 1.0)
    # a candidate, not shipped: PPI++'s share read as a Clopper–Pearson interval over n_eff trials,
    # n_eff as ppi_share reports it (the people's labels alone when they are all the same)
    kg_low, kg_high = clopper_pearson_interval(np.clip(estimate, 0, 1) * size, size, alpha)
    covered = {
        "ppi": (se > 0) & (np.abs(estimate - share) <= z * se),
        "ppi_cp": (kg_low <= share) & (share <= kg_high),
        "ppi_adj": (adj_low <= share) & (share <= adj_high),
        "wald": (human_se > 0) & (np.abs(human_share - share) <= z * human_se),
        "cp": (cp_low <= share) & (share <= cp_high),
    }
    both = (se > 0) & (human_se > 0)
    return {
        **{name: (hits.mean(), 1.96 * np.sqrt(hits.mean() * (1 - hits.mean()) / studies)) for name, hits in covered.items()},
        "ratio": float((se[both] / human_se[both]).mean()),
        "adj_ratio": float(((adj_high - adj_low) / (cp_high - cp_low)).mean()),
        "lam": float(lam.mean()),
        "n_eff": float(np.median(size[both])),
    }


# Beyond the grid: is a pass on the grid more than luck?
SCAN_STUDIES = 2_000
SCAN_ERRORS = ((0.0, 0.0), (0.02, 0.02), (0.05, 0.05), (0.15, 0.15), (0.30, 0.30), (0.45, 0.45), (0.30, 0.05),
               (0.05, 0.30), (0.50, 0.0), (0.0, 0.20))  # (on the group's images, on the others)
SCAN_SHARES = (0.02, 0.05, 0.10, 0.20, 0.35, 0.50)
SCAN_IMAGES = (1_000, 2_000, 20_000)
SCAN_LABELLED = (50, 100, 200, 500, 1_000)
SCAN_CLEARLY_UNDER = 0.93  # with ± 1% of Monte Carlo error a cell at 93.x% may be a 94% cell


def scan(rng) -> None:
    z = stats.norm.ppf(1 - (1 - CONFIDENCE) / 2)
    found = {"PPI++": [], "PPI++ as C-P": [], "PPI++ small-sample": [], "human Wald": [], "human C-P": []}
    widths = []
    for (error_in, error_out), share, images, labelled in itertools.product(SCAN_ERRORS, SCAN_SHARES, SCAN_IMAGES,
                                                                               SCAN_LABELLED):
        if labelled >= images / 2:
            continue
        table, unlabelled = draw(rng, SCAN_STUDIES, share, images, labelled, error_in, error_out)
        estimate, se, lam = ppi_kernel(table, unlabelled, images)
        human_share = (table[:, 0] + table[:, 1]) / labelled
        size = effective_size(human_share, se, labelled, images)
        low, high = clopper_pearson_interval(np.clip(estimate, 0, 1) * size, size, 1 - CONFIDENCE)
        cell = f"error {error_in:.0%} on the group, {error_out:.0%} off it, share {share:.0%}, N {images}, n {labelled}"
        found["PPI++"].append((((se > 0) & (np.abs(estimate - share) <= z * se)).mean(), cell))
        found["PPI++ as C-P"].append((((low <= share) & (share <= high)).mean(), cell))
        adj_low, adj_high = small_sample_interval(table, unlabelled, images, estimate, lam)
        found["PPI++ small-sample"].append((((adj_low <= share) & (share <= adj_high)).mean(), cell))
        human_se = np.sqrt(human_share * (1 - human_share) / labelled)
        found["human Wald"].append((((human_se > 0) & (np.abs(human_share - share) <= z * human_se)).mean(), cell))
        low, high = clopper_pearson_interval(human_share * labelled, labelled, 1 - CONFIDENCE)
        found["human C-P"].append((((low <= share) & (share <= high)).mean(), cell))
        widths.append((float(((adj_high - adj_low) / (high - low)).mean()), cell))
    print(f"\n# Wider scan: {len(found['PPI++'])} cells (n < N/2), {SCAN_STUDIES:,} studies each (± about 1% at 95%)")
    for title, cells in found.items():
        cells.sort()
        print(f"# {title}: {sum(coverage < SCAN_CLEARLY_UNDER for coverage, _ in cells)} cells under "
              f"{SCAN_CLEARLY_UNDER:.0%}; the worst:")
        for coverage, cell in cells[:6 if title.startswith("PPI") else 2]:
            print(f"#   {100 * coverage:.1f}%  {cell}")
    widths.sort()
    print(f"# PPI++ small-sample width / human-only C-P width, the mean per cell: {widths[0][0]:.2f} "
          f"({widths[0][1]}) to {widths[-1][0]:.2f} ({widths[-1][1]})")


def main(studies: int = STUDIES) -> None:
    rng = np.random.default_rng(RNG_SEED)
    started = time.perf_counter()
    print(f"# {studies:,} studies a cell, {int(CONFIDENCE * 100)}% intervals, coverage ± 1.96 Monte Carlo SE; seed {RNG_SEED}")
    print(f"# width = mean over studies of PPI width / human-only Wald width (s-s w: small-sample / human-only C-P); n_eff the median; "
          f"each cell's first {CHECKED} studies checked against ppi_share (ppi_py) to 1e-9")
    header = f"{'machine error':<20} {'share':>5} {'N':>6} {'n':>4}  {'PPI++':>14} {'as C-P':>14} {'small-sample':>14} {'human Wald':>14} {'human C-P':>14} {'width':>6} {'s-s w':>6} {'λ':>5} {'n_eff':>6}"
    print(header)
    low_cells = []
    for (name, error_in, error_out), share, images, labelled in itertools.product(ERRORS, SHARES, IMAGES, LABELLED):
        result = cell(rng, share, images, labelled, error_in, error_out, studies)
        coverage = {key: f"{100 * result[key][0]:5.1f}% ± {100 * result[key][1]:.1f}" for key in ("ppi", "ppi_cp", "ppi_adj", "wald", "cp")}
        print(f"{name:<20} {share:>5.0%} {images:>6} {labelled:>4}  {coverage['ppi']:>14} {coverage['ppi_cp']:>14} {coverage['ppi_adj']:>14} {coverage['wald']:>14} "
              f"{coverage['cp']:>14} {result['ratio']:>6.2f} {result['adj_ratio']:>6.2f} {result['lam']:>5.2f} {result['n_eff']:>6.0f}")
        low_cells += [(key, name, share, images, labelled, result[key][0]) for key in ("ppi", "ppi_cp", "ppi_adj")
                      if result[key][0] < 0.94]
    cells = len(ERRORS) * len(SHARES) * len(IMAGES) * len(LABELLED)
    for key, title in (("ppi", "PPI++"), ("ppi_cp", "PPI++ as C-P"), ("ppi_adj", "PPI++ small-sample")):
        under = [cell for cell in low_cells if cell[0] == key]
        print(f"# {title} cells under 94%: {len(under)} of {cells}")
        for _, name, share, images, labelled, coverage in under:
            print(f"#   {name}, share {share:.0%}, N {images}, n {labelled}: {100 * coverage:.1f}%")
    scan(rng)
    print(f"# {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main(*(int(argument) for argument in sys.argv[1:2]))
