"""Claims that hold up (issue 22): the NCHS reliability flag judged on the standard's own 95%
interval whatever is displayed, with each of its rules, and `compare --holm` rows whose interval
agrees with their verdict.

Expected values come from independent computations: scipy's exact binomial interval for the NCHS
rules, statsmodels' Holm (``multipletests``) for the adjusted tests.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import sheet
from scipy.stats import binomtest
from statsmodels.stats.multitest import multipletests

from sdaudit.analysis.estimate import _nchs_unreliable, estimate, nchs_unreliable
from sdaudit.analysis.planning import compare_runs


def _female(count: int, images: int) -> dict:
    return {("female", 2): count, ("male", 2): images - count}


def _nchs_by_hand(count: int, images: int) -> bool:
    """The NCHS rules (Parker et al. 2017) on scipy's exact 95% interval, one rater per image."""
    interval = binomtest(count, images).proportion_ci(confidence_level=0.95, method="exact")
    width, share = interval.high - interval.low, count / images
    return (images < 30 or width >= 0.30
            or (width > 0.05 and (width / share > 1.30 or width / (1 - share) > 1.30)))


# (female images, images) -> flagged, one case per rule of the standard at its edge
NCHS_CASES = [
    ((15, 30), True),  # rule 2: [31.3%, 68.7%] is 0.374 wide, at least 0.30
    ((150, 300), False),  # 0.116 wide, 23% of 50%: presented
    ((8, 221), True),  # rule 3: [1.6%, 7.0%], 0.054 wide and 150% of 3.6%
    ((6, 221), False),  # 0.048 wide: at most 0.05 presents it, though 177% of 2.7%
    ((213, 221), True),  # rule 4, the complement: 0.054 wide and 150% of 1 − 96.4% (new)
    ((215, 221), False),  # 0.048 wide: at most 0.05, the complement rule does not apply
    ((12, 100), False),  # [6.4%, 20.0%], 0.137 wide and 114% of 12%: presented
    ((88, 100), False),  # its complement: 114% of 12%, presented too
    ((5, 50), True),  # rule 3: [3.3%, 21.8%], 185% of 10%
    ((45, 50), True),  # rule 4: the same interval against 1 − 90%
]


@pytest.mark.parametrize(("counts", "flagged"), NCHS_CASES)
def test_each_nchs_rule_flags_the_default(counts, flagged):
    assert _nchs_by_hand(*counts) is flagged, "the case's expectation agrees with the standard's rules by hand"
    female = estimate(sheet(_female(*counts))).row("gender", "female")
    assert bool(female["small_count"]) is flagged and bool(female["reliable"]) is not flagged


def test_the_effective_size_rule_holds_on_its_own():
    """Rule 1: under 30 effective images is flagged whatever the interval. With one rater an n under
    30 always fails another rule too, so the rule is checked on the rules' kernel with a narrow
    interval (as several raters' agreement can give) and on ``nchs_unreliable``."""
    half = np.array([0.5, 0.5])
    assert _nchs_unreliable(half, half - 0.01, half + 0.01, np.array([29.9, 30.0])).tolist() == [True, False]
    assert nchs_unreliable(half, np.array([29.0, 400.0])).tolist() == [True, False]


@pytest.mark.parametrize(("counts", "confidence", "simultaneous", "flagged"), [
    ((8, 221), 0.80, False, True),  # the 80% interval is 0.037 wide, but the standard judges the 95% one
    ((12, 100), 0.99, False, False),  # the 99% interval is 162% of 12%, the 95% one 114%: presented
    ((12, 100), 0.95, True, False),  # Bonferroni's 99.4% interval likewise
    ((213, 221), 0.80, False, True),
])
def test_reliability_is_judged_on_the_95_percent_interval_whatever_is_displayed(counts, confidence, simultaneous,
                                                                                   flagged):
    result = estimate(sheet(_female(*counts)), confidence=confidence, simultaneous=simultaneous)
    female = result.row("gender", "female")
    assert bool(female["small_count"]) is flagged
    assert bool(female["small_count"]) is _nchs_by_hand(*counts)
    at_95 = estimate(sheet(_female(*counts))).row("gender", "female")
    assert (female["low"], female["high"]) != pytest.approx((at_95["low"], at_95["high"])), "a different interval shown"


# Issue 22's setting: a reference and two runs of 400 images, 8 named groups each: 16 rows
HOLM_RUNS = {
    "reference": {("female", 2): 100, ("female", 8): 100, ("male", 2): 100, ("male", 8): 100},
    "run-a": {("female", 2): 150, ("female", 8): 80, ("male", 2): 100, ("male", 8): 70},
    "run-b": {("female", 2): 80, ("female", 8): 125, ("male", 2): 115, ("male", 8): 80},
}


def test_holm_rows_never_contradict_their_own_interval():
    estimates = {run: estimate(sheet(groups)) for run, groups in HOLM_RUNS.items()}
    plain = compare_runs(estimates, reference="reference")
    holm = compare_runs(estimates, reference="reference", adjust_holm=True)
    assert len(holm) == 16
    rejects, adjusted, _, _ = multipletests(holm["p_value"], alpha=0.05, method="holm")
    assert holm["p_holm"].to_numpy() == pytest.approx(adjusted, abs=1e-12)
    shown = ((holm["low"] > 0) | (holm["high"] < 0)).to_numpy()
    assert holm["excludes_zero"].tolist() == shown.tolist(), "each row's verdict is its interval's"
    assert shown.tolist() == list(rejects), "and the interval excludes zero exactly where Holm rejects"
    assert 0 < rejects.sum() < 16
    # the setting holds rows that an unadjusted interval would call different and Holm does not
    assert (plain["excludes_zero"].to_numpy() & ~rejects).any()
    # rejected rows are tested at α/(m − k + 1); the rest at the first unrejected rank's level
    order = np.argsort(holm["p_value"].to_numpy(), kind="stable")
    stop = int(rejects.sum())
    levels = 1 - holm["interval_confidence"].to_numpy()[order]
    assert levels[:stop] == pytest.approx(0.05 / (16 - np.arange(stop)))
    assert levels[stop:] == pytest.approx(np.full(16 - stop, 0.05 / (16 - stop)))
    # without --holm nothing changes: the unadjusted intervals and their verdicts
    assert plain["excludes_zero"].tolist() == ((plain["low"] > 0) | (plain["high"] < 0)).tolist()
