"""Does Dawid–Skene's interval cover the true share? The old one (error rates taken as known) and the
refitting bootstrap that `estimate --labels dawid-skene` shows now (issue 22, item 5).

    python benchmarks/dawid_skene_coverage.py      # about 11 minutes on 2 busy shared cores; [STUDIES [GRID_STUDIES]]

Simulated studies, each image truly darker with the setting's chance and seen by the setting's raters
(3; 2 in the grid's last row), who each flip its skin tone with the setting's chance (as in
benchmarks/dawid_skene_recovery.py). Per study,
the darker share's 95% interval two ways:

- old: the default method (Clopper–Pearson at Korn–Graubard's effective size) on the posteriors,
  as `estimate --labels dawid-skene` gave it before: the fitted error rates taken as known;
- new: the percentile bootstrap refitting the model on each of DAWID_SKENE_RESAMPLES resamples of
  images (`DawidSkeneLabels.refit_interval`, which `estimate` shows whatever the method; the tests
  check the two are the same), with its reliability flag (`WEAK_RULE`).

Prints coverage of the true (population) share with a 95% Monte Carlo ± (1.96 standard errors over
the studies), the width ratio new / old (the mean of the per-study ratios), how often the new
interval is flagged, and the chance of an unflagged new interval that misses.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from sdaudit.analysis import estimate as sd_estimate
from sdaudit.analysis.label_modes import DAWID_SKENE_RESAMPLES, WEAK_RULE, family_labels

STUDIES = 250
GRID_STUDIES = 60
# (name, images, raters, true darker share, each rater's chance of flipping an image's skin tone)
SETTINGS = [
    ("the README's setting", 200, 3, 0.10, 0.10),
    ("a rare group, noisy raters", 200, 3, 0.05, 0.20),
]
# where the flag's thresholds were chosen, fewer studies each
GRID = [(100, 3, 0.05, 0.10), (100, 3, 0.10, 0.10), (200, 3, 0.05, 0.10), (200, 3, 0.05, 0.15), (200, 3, 0.10, 0.20),
        (200, 3, 0.50, 0.20), (400, 3, 0.05, 0.20), (200, 2, 0.10, 0.10)]
RNG_SEED = 2026


def simulated_study(rng: np.random.Generator, images: int, raters: int, share: float, flip: float) -> pd.DataFrame:
    darker = rng.random(images) < share
    frames = []
    for rater in range(raters):
        seen = darker ^ (rng.random(images) < flip)
        frames.append(pd.DataFrame({"image_id": np.arange(images), "rater": f"rater-{rater}", "person_present": True,
                                    "gender": "female", "mst": np.where(seen, 8, 3), "skin_binary": None}))
    return pd.concat(frames, ignore_index=True)


def known_rates_interval(labels, alpha: float) -> tuple[float, float]:
    """The darker share's interval as `estimate`'s default gave it on Dawid–Skene labels before."""
    n = labels.n
    share = labels.counts / n
    n_eff = sd_estimate._effective_size(share, sd_estimate._jackknife_se(labels), n)
    low, high = sd_estimate.clopper_pearson_interval(share * n_eff, n_eff, alpha)
    return float(low[1]), float(high[1])


def one_setting(images: int, raters: int, share: float, flip: float, studies: int) -> dict:
    rng = np.random.default_rng([RNG_SEED, images, raters, round(share * 1000), round(flip * 1000)])
    found = []
    for _ in range(studies):
        annotations = simulated_study(rng, images, raters, share, flip)
        labels = family_labels(annotations, 5, True, "dawid-skene")[0]["skin_tone"]
        old_low, old_high = known_rates_interval(labels, 0.05)
        refit = labels.refit_interval(0.05, rng)
        if refit is None:  # no rater disagreed: nothing to refit (vanishingly rare here)
            new_low, new_high, weak = old_low, old_high, False
        else:
            new_low, new_high, weak = float(refit.low[1]), float(refit.high[1]), bool(refit.weak[1])
        found.append((old_low <= share <= old_high, new_low <= share <= new_high, weak,
                      (new_high - new_low) / (old_high - old_low)))
    old, new, weak, ratio = (np.array(column) for column in zip(*found))
    return {"old": old.mean(), "new": new.mean(), "flagged": weak.mean(), "ratio": ratio.mean(),
            "unflagged_miss": np.mean(~new & ~weak)}


def plus_minus(share: float, studies: int) -> str:
    return f"{share:.1%} ± {1.96 * np.sqrt(share * (1 - share) / studies):.1%}"


def main(studies: int = STUDIES, grid_studies: int = GRID_STUDIES) -> None:
    started = time.perf_counter()
    print(f"The darker share's 95% interval; {DAWID_SKENE_RESAMPLES} refits a study; ± is 1.96 Monte Carlo "
          f"standard errors over the studies. The new interval's flag: {WEAK_RULE}.")
    for name, images, raters, share, flip in SETTINGS:
        result = one_setting(images, raters, share, flip, studies)
        print(f"\n{name}: {studies} studies, {images} images, {raters} raters each flipping {flip:.0%}, "
              f"true darker share {share:.0%}")
        print(f"  old (error rates taken as known; Clopper–Pearson / Korn–Graubard)  covers "
              f"{plus_minus(result['old'], studies)}")
        print(f"  new (bootstrap refitting the model per resample)                 covers "
              f"{plus_minus(result['new'], studies)}, width {result['ratio']:.2f}× the old (mean of per-study ratios)")
        print(f"  new flagged in {result['flagged']:.0%} of studies; unflagged and missing the truth in "
              f"{plus_minus(result['unflagged_miss'], studies)} of studies")
    print(f"\nThe flag over a grid, {grid_studies} studies each (± about 1.96·√(p(1 − p)/{grid_studies})):")
    print("  images raters  share  flips   old covers  new covers  width ×  new flagged  unflagged miss")
    for images, raters, share, flip in GRID:
        result = one_setting(images, raters, share, flip, grid_studies)
        print(f"  {images:>6} {raters:>6} {share:>6.0%} {flip:>6.0%}   {result['old']:>10.0%}  {result['new']:>10.0%}  "
              f"{result['ratio']:>7.2f}  {result['flagged']:>11.0%}  {result['unflagged_miss']:>14.0%}")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main(*(int(argument) for argument in sys.argv[1:3]))
