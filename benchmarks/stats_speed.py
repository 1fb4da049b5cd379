"""How fast `estimate` is, as ratios to baselines measured in the same run.

    python benchmarks/stats_speed.py

1. `estimate` on 1,000,000 annotations (one rater per image, all three families, the default
   jackknife) against one `np.bincount` pass over the same gender codes. The annotations arrive
   as the store can give them: categorical text columns and whole-number MST values.
2. The closed-form jackknife against a brute-force leave-one-image-out at n = 20,000.
Each timing is the median of several runs.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pandas as pd

from sdaudit.analysis.estimate import estimate


def median_seconds(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def annotations(n: int, rng) -> pd.DataFrame:
    return pd.DataFrame({
        "image_id": np.arange(n),
        "rater": pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), ["r1"]),
        "person_present": np.ones(n, dtype=bool),
        "gender": pd.Categorical.from_codes(rng.choice(3, n, p=[0.36, 0.6, 0.04]), ["female", "male", "unclear"]),
        "mst": rng.integers(1, 11, n).astype(np.int8),
        "skin_binary": pd.Categorical.from_codes(np.full(n, -1), ["lighter", "darker", "unclear"]),
    })


def main() -> None:
    rng = np.random.default_rng(0)
    frame = annotations(1_000_000, rng)
    codes = frame["gender"].cat.codes.to_numpy()
    estimate(frame)  # warm-up
    ours = median_seconds(lambda: estimate(frame), 15)
    baseline = median_seconds(lambda: np.bincount(codes, minlength=3), 15)
    print(f"estimate, 1,000,000 annotations: {ours * 1000:.1f} ms; one np.bincount: {baseline * 1000:.2f} ms; "
          f"ratio {ours / baseline:.1f}x (goal <= 3x)")

    n = 20_000
    small = annotations(n, rng)
    labels = np.eye(3)[small["gender"].cat.codes.to_numpy()]  # the gender family's 0/1 labels

    def brute_force() -> np.ndarray:
        replicates = np.array([np.delete(labels, i, axis=0).mean(axis=0) for i in range(n)])
        return np.sqrt((n - 1) / n * ((replicates - replicates.mean(axis=0)) ** 2).sum(axis=0))

    closed = median_seconds(lambda: estimate(small), 9)
    brute = median_seconds(brute_force, 1)
    table = estimate(small).family("gender")
    assert np.allclose(table["se"].to_numpy(), brute_force())
    print(f"jackknife at n = 20,000: estimate() (all families) {closed * 1000:.2f} ms; brute-force "
          f"leave-one-out (gender only) {brute:.1f} s; {brute / closed:.0f}x faster (goal >= 1000x)")


if __name__ == "__main__":
    main()
