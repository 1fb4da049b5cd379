"""How fast `agreement` is, as a ratio to a baseline measured in the same run.

    python benchmarks/agreement_speed.py

`agreement` on 5,000 images × 5 raters (20% of ratings missing, as when raters share out the
images): four fields, each with Krippendorff's α, Gwet's AC1 and percent agreement and their 2,000
bootstrap resamples over images, every pair of raters, and each rater against the others (goal:
at most 2 s on this project's 2-core machine). The baseline is one bare ``krippendorff.alpha``
call (ordinal, MST 1–10) on the same ratings. Each timing is the median of several runs.

Then the Dawid–Skene correction on 200 images × 3 raters: one fit per family and the bootstrap that
refits the model on every resample of images (DAWID_SKENE_RESAMPLES), which every method shows since
issue 22, against the soft-label estimate.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pandas as pd

from sdaudit.analysis.agreement import agreement, field_ratings


def median_seconds(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def annotations(images: int, raters: int, rng) -> pd.DataFrame:
    """Raters who mostly agree: each answer is the image's own with probability 0.85."""
    gender = rng.choice(["female", "male"], images)
    mst = rng.integers(1, 11, images)
    frames = []
    for rater in range(raters):
        keep = rng.random(images) >= 0.2
        noise = rng.random(images) < 0.15
        frames.append(pd.DataFrame({
            "image_id": np.arange(images)[keep], "rater": f"rater-{rater}", "person_present": True,
            "gender": np.where(noise, rng.choice(["female", "male", "unclear"], images), gender)[keep],
            "mst": np.clip(mst + noise * rng.integers(-2, 3, images), 1, 10)[keep], "skin_binary": None,
        }))
    return pd.concat(frames, ignore_index=True).sort_values(["image_id", "rater"], ignore_index=True)


def main() -> None:
    import krippendorff

    rng = np.random.default_rng(0)
    frame = annotations(5000, 5, rng)
    mst = field_ratings(frame)["mst"].ratings
    agreement(frame, bootstrap_rng_seed=0)  # warm-up (imports)
    ours = median_seconds(lambda: agreement(frame, bootstrap_rng_seed=0), 5)
    baseline = median_seconds(lambda: krippendorff.alpha(reliability_data=mst, level_of_measurement="ordinal",
                                                         value_domain=list(range(10))), 5)
    print(f"agreement, 5,000 images x 5 raters ({len(frame):,} annotations, 4 fields, 3 statistics, "
          f"2,000 bootstrap resamples, 10 pairs): {ours:.2f} s (goal <= 2 s); one krippendorff.alpha "
          f"(ordinal MST): {baseline * 1000:.1f} ms; ratio {ours / baseline:.0f}x")

    from sdaudit.analysis.estimate import estimate
    from sdaudit.analysis.label_modes import DAWID_SKENE_RESAMPLES

    small = annotations(200, 3, rng)
    estimate(small)  # warm-up
    corrected = median_seconds(lambda: estimate(small, labels="dawid-skene"), 3)
    soft = median_seconds(lambda: estimate(small), 5)
    # since issue 22 every method's Dawid–Skene interval is the refitting bootstrap where raters disagree
    print(f"Dawid-Skene shares with their refitting bootstrap ({DAWID_SKENE_RESAMPLES} refits per family with "
          f"disagreement), 200 images x 3 raters, 3 families: {corrected:.2f} s; soft-label estimate: "
          f"{soft * 1000:.1f} ms; ratio {corrected / soft:.0f}x")

if __name__ == "__main__":
    main()
