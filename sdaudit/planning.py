"""Planning and comparing audits: how many more images would settle a comparison with a target
(with the jackknife's normal approximation, as the origin study's intervals are formed), and the
difference between two estimates (two runs, prompts or models) with Newcombe's interval.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sdaudit.stats import Estimate, z_value


def images_needed(share: float, half_width: float, *, confidence: float = 0.95) -> int:
    """Images with a person needed for a jackknife interval of ±``half_width`` at ``share``."""
    if not 0 < share < 1:
        raise ValueError(f"`share` must be strictly between 0 and 1 but is {share!r}.")
    if not 0 < half_width < 1:
        raise ValueError(f"`half_width` must be strictly between 0 and 1 but is {half_width!r}.")
    z = z_value(confidence)
    # z·√(p(1−p)/(n−1)) ≤ h  ⇔  n ≥ z²p(1−p)/h² + 1
    return math.ceil(z * z * share * (1 - share) / (half_width * half_width)) + 1


def images_to_separate(share: float, target: float, n: int, *, confidence: float = 0.95) -> float:
    """How many more images, at the current ``share``, until the interval excludes ``target``.

    0 when it already does; ``inf`` when the share equals the target.
    """
    if not 0 < share < 1:
        raise ValueError(f"`share` must be strictly between 0 and 1 but is {share!r}.")
    if not 0 <= target <= 1:
        raise ValueError(f"`target` must be from 0 to 1 but is {target!r}.")
    if share == target:
        return math.inf
    z = z_value(confidence)
    # z·√(p(1−p)/(n−1)) < |p − t|  ⇔  n > z²p(1−p)/(p − t)² + 1
    bound = z * z * share * (1 - share) / (share - target) ** 2 + 1
    required = math.floor(bound) + 1
    return max(0, required - n)


def _wilson_limits(count: np.ndarray, n: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score limits at (possibly non-integer) effective counts; never zero width."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p = count / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def compare(first: Estimate, second: Estimate, *, confidence: float = 0.95) -> pd.DataFrame:
    """Per family × group: ``first`` share − ``second`` share with Newcombe's hybrid score interval.

    Newcombe (1998), "Interval estimation for the difference between independent proportions",
    method 10: from each share's Wilson limits (l₁, u₁), (l₂, u₂), the difference d = p₁ − p₂ has
    low = d − √((p₁ − l₁)² + (u₂ − p₂)²) and high = d + √((u₁ − p₁)² + (p₂ − l₂)²). Each share
    enters at its effective count p·n_eff (Korn–Graubard's effective size; n with one rater), so
    the interval never has zero width, even at 0/200 against 0/30. ``reliable`` is false where
    either share's own interval is flagged.
    """
    z = z_value(confidence)
    keys = ["family", "group"]
    columns = [*keys, "share", "n_eff", "reliable"]
    merged = first.table[columns].merge(second.table[columns], on=keys, suffixes=("_first", "_second"))
    p1, n1 = merged["share_first"].to_numpy(float), merged["n_eff_first"].to_numpy(float)
    p2, n2 = merged["share_second"].to_numpy(float), merged["n_eff_second"].to_numpy(float)
    l1, u1 = _wilson_limits(p1 * n1, n1, z)
    l2, u2 = _wilson_limits(p2 * n2, n2, z)
    difference = p1 - p2
    merged["difference"] = difference
    merged["low"] = difference - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    merged["high"] = difference + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    merged["excludes_zero"] = (merged["low"] > 0) | (merged["high"] < 0)
    merged["reliable"] = merged.pop("reliable_first") & merged.pop("reliable_second")
    return merged.drop(columns=["n_eff_first", "n_eff_second"])


def plan(result: Estimate) -> pd.DataFrame:
    """Per group with a target: how many more images, at the current share, until the
    (jackknife) interval excludes the target. NaN where the share is 0 or 1."""
    rows = result.table[result.table["target"].notna()][["family", "group", "share", "target", "n"]].copy()
    more = []
    for row in rows.itertuples():
        if not 0 < row.share < 1:
            more.append(math.nan)
        else:
            more.append(images_to_separate(row.share, row.target, int(row.n), confidence=result.confidence))
    rows["more_images_to_separate"] = more
    return rows.reset_index(drop=True)
