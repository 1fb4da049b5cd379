"""How well the rater-error-corrected estimate recovers a true share that soft labels miss.

    python benchmarks/dawid_skene_recovery.py      # about a minute

Issue 13's simulation: 200 images, 3 raters who each flip an image's skin tone 10% of the time, a
true darker share of 10%; 40 simulated studies. Prints, for soft labels (the default) and for
Dawid–Skene (`--labels dawid-skene`), the mean estimate, its RMSE and how often the default
interval covers the true share: Clopper–Pearson / Korn–Graubard for soft labels; for Dawid–Skene,
since issue 22, the bootstrap refitting the model per resample (its coverage in more settings, with
the old interval beside it: benchmarks/dawid_skene_coverage.py).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from sdaudit.analysis.estimate import estimate

STUDIES = 40
IMAGES = 200
RATERS = ("a", "b", "c")
TRUE_SHARE = 0.10
FLIP = 0.10


def simulated_study(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    darker = rng.random(IMAGES) < TRUE_SHARE
    gender = rng.choice(["female", "male"], IMAGES)
    frames = []
    for rater in RATERS:
        seen = darker ^ (rng.random(IMAGES) < FLIP)
        frames.append(pd.DataFrame({"image_id": np.arange(IMAGES), "rater": rater, "person_present": True,
                                    "gender": gender, "mst": np.where(seen, 8, 3), "skin_binary": None}))
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    started = time.perf_counter()
    rows = {"soft": [], "dawid-skene": []}
    for study in range(STUDIES):
        annotations = simulated_study(1000 + study)
        for labels, found in rows.items():
            darker = estimate(annotations, labels=labels).row("skin_tone", "darker")
            found.append((darker["share"], darker["low"] <= TRUE_SHARE <= darker["high"]))
    print(f"{STUDIES} simulated studies, {IMAGES} images, {len(RATERS)} raters flipping {FLIP:.0%}, "
          f"true darker share {TRUE_SHARE:.0%} ({time.perf_counter() - started:.0f} s):")
    for labels, found in rows.items():
        shares = np.array([share for share, _ in found])
        covered = np.mean([hit for _, hit in found])
        rmse = np.sqrt(np.mean((shares - TRUE_SHARE) ** 2))
        print(f"  {labels:<12} mean {shares.mean():.3f}, RMSE {rmse:.3f}, the default interval covers the truth "
              f"in {covered:.0%} of studies")


if __name__ == "__main__":
    main()
