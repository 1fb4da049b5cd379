"""Does the planner's number of images give the power it promises, for the interval that is shown?

    python benchmarks/plan_check.py      # a few seconds

Issue 22, item 3. Ten cases (true share, target, method, simultaneous): for each, ``planning.plan``
on an estimate at that share gives the images needed; then 2,000 studies of that many images are
simulated (a binomial count of female-presenting images, one rater), each run through the real
``estimate`` with the same options, and the share of studies whose shown interval excludes the
target is printed beside the planned (exact) power. The exact power is also scanned from the plan
to four times it: ``lowest after`` is its smallest value there (the plan promises ≥ 80% at every
size from it on), and ``power at plan − 1`` shows the size before is short (or the NCHS floor of
an effective 30 images set the plan).
"""

from __future__ import annotations

import functools
import time

import numpy as np
import pandas as pd

from sdaudit.analysis.estimate import estimate
from sdaudit.analysis.planning import plan, separation_power

STUDIES = 2000
RNG_SEED = 22
# (true share of female-presenting images, target, method, simultaneous)
CASES = [
    (0.36, 0.50, "clopper-pearson", False),
    (0.36, 0.50, "clopper-pearson", True),
    (0.36, 0.50, "wilson", False),
    (0.04, 0.25, "clopper-pearson", False),
    (0.27, 0.50, "jackknife", False),
    (0.42, 0.50, "wilson", True),
    (0.063, 0.50, "clopper-pearson", True),
    (0.60, 0.50, "jackknife", True),
    (0.15, 0.30, "wilson", False),
    (0.30, 0.45, "bootstrap", False),
]


def annotations(female: int, images: int) -> pd.DataFrame:
    """One rater; ``female`` of ``images`` images female-presenting, all MST 3."""
    return pd.DataFrame({"image_id": np.arange(images), "rater": "r1", "person_present": True,
                         "gender": np.where(np.arange(images) < female, "female", "male"),
                         "mst": 3, "skin_binary": None})


def options(target: float, method: str, simultaneous: bool) -> dict:
    return dict(method=method, simultaneous=simultaneous, targets={("gender", "female"): target},
                bootstrap_rng_seed=0)


@functools.cache
def shown_excludes(female: int, images: int, target: float, method: str, simultaneous: bool) -> bool:
    """Whether the estimate's shown interval for the female share excludes the target."""
    row = estimate(annotations(female, images), **options(target, method, simultaneous)).row("gender", "female")
    return bool(row["excludes_target"])


def main() -> None:
    started = time.perf_counter()
    rng = np.random.default_rng(RNG_SEED)
    print(f"{STUDIES} simulated studies per case at the planned number of images; one rater; seed {RNG_SEED}")
    header = (f"{'share':>6} {'target':>6} {'method':<16} {'simult.':<7} {'level':>7} {'planned n':>9} "
              f"{'floored':<7} {'planned power':>13} {'simulated power':>15} {'± 2 s.e.':>8} "
              f"{'lowest after':>12} {'power at n − 1':>14}")
    print(header)
    for share, target, method, simultaneous in CASES:
        today = estimate(annotations(round(share * 1000), 1000), **options(target, method, simultaneous))
        rows = plan(today)
        row = rows[(rows["family"] == "gender") & (rows["group"] == "female")].iloc[0]
        n, level = int(row["images_for_power"]), float(row["confidence"])
        planning_method = "jackknife" if method == "bootstrap" else method
        planned = separation_power(share, target, n, method=planning_method, confidence=level)
        counts = rng.binomial(n, share, size=STUDIES)
        simulated = np.mean([shown_excludes(int(k), n, target, method, simultaneous) for k in counts])
        error = 2 * np.sqrt(simulated * (1 - simulated) / STUDIES)
        after = separation_power(share, target, np.arange(n, 4 * n + 1), method=planning_method, confidence=level)
        before = separation_power(share, target, n - 1, method=planning_method, confidence=level)
        print(f"{share:>6.3f} {target:>6.2f} {method:<16} {str(simultaneous):<7} {level:>7.4f} {n:>9} "
              f"{str(bool(row['floored'])):<7} {planned:>13.3f} {simulated:>15.3f} {error:>8.3f} "
              f"{after.min():>12.3f} {before:>14.3f}")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
