"""Planning and comparing audits: how many more images would settle a comparison with a target,
and the difference between two estimates (two runs, prompts or models) with its interval.

Both use the jackknife's normal approximation, as the origin study's intervals do.
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


def compare(first: Estimate, second: Estimate, *, confidence: float = 0.95) -> pd.DataFrame:
    """Per family × group: ``first`` share − ``second`` share with a normal interval.

    The two estimates come from different images (two runs, prompts or models), so their
    jackknife standard errors combine as √(se₁² + se₂²).
    """
    z = z_value(confidence)
    keys = ["family", "group"]
    merged = first.table[[*keys, "share", "se", "n"]].merge(
        second.table[[*keys, "share", "se", "n"]], on=keys, suffixes=("_first", "_second")
    )
    difference = merged["share_first"] - merged["share_second"]
    se = np.sqrt(merged["se_first"] ** 2 + merged["se_second"] ** 2)
    merged["difference"] = difference
    merged["low"] = difference - z * se
    merged["high"] = difference + z * se
    merged["excludes_zero"] = (merged["low"] > 0) | (merged["high"] < 0)
    return merged


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
