"""The planner plans for the interval that is shown (issue 22, item 3): the estimate's method,
confidence, Bonferroni level with ``simultaneous`` and labels mode; the smallest n from which the
power stays at 80% (power zig-zags for exact intervals); never below the NCHS floor of an effective
30 images. Power is checked against a brute-force loop over every count with statsmodels' own
intervals (Wilson, Clopper–Pearson "beta") and a hand-written jackknife."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import sheet
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from sdaudit.analysis.estimate import NAMED_GROUPS, estimate
from sdaudit.analysis.planning import images_for_power, plan, separation_power
from sdaudit.scheme import GROUP_LABELS, TABLE_HEADERS

STATSMODELS = {"wilson": "wilson", "clopper-pearson": "beta"}


def brute_power(share: float, target: float, n: int, method: str, confidence: float) -> float:
    """Σ binom.pmf(k) over the counts k whose interval excludes ``target``, every interval formed
    on its own (statsmodels; the jackknife by hand, shown only for 0 < k < n)."""
    counts = np.arange(n + 1)
    if method == "jackknife":
        z = stats.norm.ppf(1 - (1 - confidence) / 2)
        p = counts / n
        half = z * np.sqrt(p * (1 - p) / (n - 1))
        low, high, shown = p - half, p + half, (counts > 0) & (counts < n)
    else:
        low, high = proportion_confint(counts, n, alpha=1 - confidence, method=STATSMODELS[method])
        shown = np.ones(n + 1, dtype=bool)
    excludes = shown & ((low > target) | (high < target))
    return float(stats.binom.pmf(counts, n, share)[excludes].sum())


def brute_plan(share: float, target: float, method: str, confidence: float, up_to: int) -> int:
    """The size after the last one below 80% power among 2..``up_to``."""
    short = [n for n in range(2, up_to + 1) if brute_power(share, target, n, method, confidence) < 0.8]
    assert short[-1] < up_to // 2, "the brute-force scan must reach well past the last dip"
    return short[-1] + 1


def one_run(female: int, n: int) -> pd.DataFrame:
    return sheet({("female", 2): female, ("male", 2): n - female})


def female_plan(result) -> pd.Series:
    rows = plan(result)
    return rows[(rows["family"] == "gender") & (rows["group"] == "female")].iloc[0]


def test_the_plan_at_36_of_100_with_simultaneous_intervals_plans_for_the_bonferroni_interval():
    """Issue 22: with --simultaneous the planner said 106 images, where the Bonferroni interval shown
    has power 0.53 there and needs 169."""
    shown = estimate(one_run(36, 100), simultaneous=True)
    level = 1 - 0.05 / NAMED_GROUPS
    assert shown.interval_confidence == pytest.approx(level)
    row = female_plan(shown)
    expected = brute_plan(0.36, 0.5, "clopper-pearson", level, up_to=700)
    assert row["images_for_power"] == expected
    assert expected >= 169
    assert brute_power(0.36, 0.5, 106, "clopper-pearson", level) < 0.6, "106 is far from enough"
    assert row["confidence"] == pytest.approx(level)
    alone = female_plan(estimate(one_run(36, 100)))
    assert alone["images_for_power"] < row["images_for_power"], "one interval on its own needs fewer"


@pytest.mark.parametrize("method", ["clopper-pearson", "wilson", "jackknife"])
@pytest.mark.parametrize(("share", "target", "confidence"),
                         [(0.36, 0.5, 0.95), (0.36, 0.5, 0.90), (0.27, 0.5, 0.99), (0.1, 0.25, 0.95)])
def test_the_plan_is_the_smallest_size_from_which_power_stays_at_80_percent(method, share, target, confidence):
    """Against a brute-force scan to far beyond the planned size; the size before the plan is short."""
    planned = images_for_power(share, target, method=method, confidence=confidence)
    assert planned == brute_plan(share, target, method, confidence, up_to=int(4 * planned))
    assert brute_power(share, target, int(planned) - 1, method, confidence) < 0.8


def test_the_planner_does_not_stop_at_the_first_size_that_reaches_80_percent():
    """Power zig-zags: for 36% against 50% with Wilson's interval 80% is reached, lost and reached
    again, and the plan is where it is reached for good."""
    powers = {n: brute_power(0.36, 0.5, n, "wilson", 0.95) for n in range(60, 140)}
    first = min(n for n, value in powers.items() if value >= 0.8)
    last_short = max(n for n, value in powers.items() if value < 0.8)
    assert first < last_short, "the case shows a dip after 80% is first reached"
    assert images_for_power(0.36, 0.5, method="wilson") == last_short + 1


@pytest.mark.parametrize("method", ["clopper-pearson", "wilson", "jackknife"])
def test_exact_power_agrees_with_every_interval_formed_on_its_own(method):
    sizes = np.arange(2, 260)
    for share, target, confidence in [(0.36, 0.5, 0.95), (0.04, 0.25, 0.99), (0.7, 0.5, 0.9), (0.2, 0.02, 0.95)]:
        mine = separation_power(share, target, sizes, method=method, confidence=confidence)
        brute = [brute_power(share, target, n, method, confidence) for n in sizes]
        assert mine == pytest.approx(brute, abs=1e-12), (share, target, confidence)
    assert separation_power(0.36, 0.5, 169, method=method) == pytest.approx(brute_power(0.36, 0.5, 169, method, 0.95))


def test_the_plan_never_goes_below_an_effective_30_images():
    """Issue 22: 4% against 25% was planned at 27 images, which the default's own NCHS rule flags."""
    row = female_plan(estimate(one_run(2, 50), targets={("gender", "female"): 0.25}))
    assert images_for_power(0.04, 0.25, method="clopper-pearson") < 30, "the power alone would need fewer"
    assert row["images_for_power"] == 30 and bool(row["floored"]) is True
    assert row["images_for_half_width"] >= 30
    steady = female_plan(estimate(one_run(36, 100)))
    assert bool(steady["floored"]) is False


@pytest.mark.parametrize(("method", "confidence", "simultaneous"),
                         [("wilson", 0.9, False), ("jackknife", 0.99, False), ("wilson", 0.9, True)])
def test_the_plan_follows_the_estimates_method_and_level(method, confidence, simultaneous):
    result = estimate(one_run(36, 100), method=method, confidence=confidence, simultaneous=simultaneous)
    level = 1 - (1 - confidence) / NAMED_GROUPS if simultaneous else confidence
    planned = female_plan(result)["images_for_power"]
    assert planned == brute_plan(0.36, 0.5, method, level, up_to=int(4 * planned))


def test_the_results_plan_table_says_where_the_floor_set_the_number():
    from sdaudit.present.estimate_tables import FLOOR_NOTE, plan_table

    shown = plan_table(estimate(one_run(2, 50), targets={("gender", "female"): 0.25}))
    female = shown[shown[TABLE_HEADERS["group"]] == GROUP_LABELS["female"]].iloc[0]
    assert female[TABLE_HEADERS["note"]] == FLOOR_NOTE
