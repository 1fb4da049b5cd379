"""Prediction-powered shares (issue 25, item 3): ppi_py's interval against the paper's formula
written out here, its limits (λ = 0, a perfect machine, a useless one), a hand-worked example, and
the family table."""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from sdaudit.analysis import ppi
from sdaudit.scheme import family_groups

Z95 = stats.norm.ppf(0.975)


def from_scratch(y, f_labelled, f_unlabelled, confidence=0.95, lam=None):
    """PPI++ for a mean (Angelopoulos, Duchi, Zrnic, arXiv:2311.01453, §2 and Example 6.1):
    θ̂ = λ·mean(f_unlabelled) + mean(y − λ f_labelled), SE² = λ² Var(f_u)/N + Var(y − λ f_l)/n,
    λ̂ = Cov(y, f_l) / ((1 + n/N) Var(f)), clipped to [0, 1]. Written from the paper, with
    ppi_py's plug-in choices (divisor n for Cov and the SE's variances; Var(f) over all images with
    divisor count − 1), since 1e-9 agreement needs the same estimators."""
    n, big_n = len(y), len(f_unlabelled)
    if lam is None:
        cov = ((y - y.mean()) * (f_labelled - f_labelled.mean())).sum() / n
        everything = np.concatenate([f_labelled, f_unlabelled])
        var = ((everything - everything.mean()) ** 2).sum() / (len(everything) - 1)
        lam = min(max(cov / ((1 + n / big_n) * var), 0.0), 1.0)
    theta = lam * f_unlabelled.mean() + (y - lam * f_labelled).mean()
    rectifier = y - lam * f_labelled
    se = np.sqrt(lam**2 * f_unlabelled.var() / big_n + rectifier.var() / n)
    z = stats.norm.ppf(1 - (1 - confidence) / 2)
    return theta, theta - z * se, theta + z * se, lam


def study(seed, *, images=3000, labelled=300, share=0.2, error=0.15, soft_human=False, soft_machine=False):
    """A simulated study: truth, the machine's answers on every image, the people's on a uniform
    random subset (NaN elsewhere)."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(images) < share).astype(float)
    machine = np.where(rng.random(images) < error, 1 - truth, truth)
    if soft_machine:
        machine = np.clip(0.7 * machine + 0.3 * rng.random(images), 0, 1)
    people = truth.copy()
    if soft_human:  # the share of 3 raters choosing the group, each wrong 10% of the time
        people = (np.where(rng.random((3, images)) < 0.1, 1 - truth, truth)).mean(axis=0)
    human = np.full(images, np.nan)
    subset = rng.choice(images, labelled, replace=False)
    human[subset] = people[subset]
    return machine, human


@pytest.mark.parametrize("soft_machine", [False, True])
@pytest.mark.parametrize("soft_human", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ppi_share_is_the_papers_formula_and_ppi_pys_own_tuning(seed, soft_human, soft_machine):
    from ppi_py import ppi_mean_ci

    machine, human = study(seed, soft_human=soft_human, soft_machine=soft_machine, share=[0.05, 0.2, 0.5][seed])
    result = ppi.ppi_share(machine, human, confidence=0.95)
    labelled = ~np.isnan(human)
    theta, low, high, lam = from_scratch(human[labelled], machine[labelled], machine[~labelled])
    assert (result.share, result.ppi_py_low, result.ppi_py_high, result.lam) == pytest.approx((theta, low, high, lam), abs=1e-9)
    assert 0 < result.lam < 1  # tuned, not a limit
    # ppi_py left to tune λ itself gives the same interval: the reported λ is the one it uses
    tuned = ppi_mean_ci(human[labelled], machine[labelled], machine[~labelled], alpha=0.05)
    assert (result.ppi_py_low, result.ppi_py_high) == pytest.approx((float(tuned[0][0]), float(tuned[1][0])), abs=1e-12)
    assert (result.n_machine, result.n_human) == (3000, 300)
    assert result.n_eff == pytest.approx(300 * (result.human_se / result.se) ** 2)


def test_lambda_zero_is_the_human_only_interval_exactly():
    """At λ = 0 ppi_py's interval is the people's Wald interval, and the reported one the people's
    Clopper–Pearson interval (the pseudo-observations change no share and, at λ = 0, n_eff = n)."""
    from ppi_py import classical_mean_ci

    machine, human = study(5)
    result = ppi.ppi_share(machine, human, lam=0)
    y = human[~np.isnan(human)]
    classical = classical_mean_ci(y, alpha=0.05)
    assert (result.ppi_py_low, result.ppi_py_high) == pytest.approx(classical, abs=1e-12)
    count = y.sum()
    exact = (stats.beta.ppf(0.025, count, 300 - count + 1), stats.beta.ppf(0.975, count + 1, 300 - count))
    assert (result.human_low, result.human_high) == pytest.approx(exact, abs=1e-9)
    assert result.share == result.human_share == y.mean()
    assert result.n_eff == pytest.approx(300)


def test_a_perfect_machine_is_worth_about_every_image_and_no_more():
    rng = np.random.default_rng(7)
    truth = (rng.random(4000) < 0.3).astype(float)
    human = np.full(4000, np.nan)
    subset = rng.choice(4000, 200, replace=False)
    human[subset] = truth[subset]
    result = ppi.ppi_share(truth, human)
    assert 0.9 * 4000 < result.n_eff <= 4000
    assert result.lam == pytest.approx(1 - 200 / 4000, abs=0.02)  # the optimum (N − n)/N
    assert result.high - result.low < 0.4 * (result.human_high - result.human_low)
    assert result.ppi_py_high - result.ppi_py_low < 0.3 * (result.human_high - result.human_low)


@pytest.mark.parametrize("seed", range(6))
def test_a_useless_machine_leaves_the_interval_no_wider_than_the_peoples(seed):
    """Random machine answers: PPI++ tunes λ towards 0; plain PPI (λ = 1) would pay for them."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(2000) < 0.3).astype(float)
    machine = (rng.random(2000) < 0.5).astype(float)
    human = np.full(2000, np.nan)
    subset = rng.choice(2000, 150, replace=False)
    human[subset] = truth[subset]
    tuned = ppi.ppi_share(machine, human)
    plain = ppi.ppi_share(machine, human, lam=1)
    human_width = 2 * Z95 * tuned.human_se  # the people's Wald interval, ppi_py's basis
    assert tuned.ppi_py_high - tuned.ppi_py_low <= human_width * (1 + 1e-12)
    assert tuned.lam < 0.2
    assert plain.ppi_py_high - plain.ppi_py_low > 1.2 * human_width
    # the reported interval likewise against the people's Clopper–Pearson one
    assert tuned.high - tuned.low <= (tuned.human_high - tuned.human_low) * 1.02


def test_a_hand_worked_example():
    """Worked by hand in exact fractions (ppi_py ships no numeric example: its tests are coverage
    simulations and its notebooks download data). People: 1 1 0 0; machine on them: 1 0 0 0;
    machine on the 8 other images: 1 1 0 0 0 0 0 0."""
    y, f_labelled = [1, 1, 0, 0], [1, 0, 0, 0]
    f_unlabelled = [1, 1, 0, 0, 0, 0, 0, 0]
    machine = np.array(f_labelled + f_unlabelled, dtype=float)
    human = np.array(y + [np.nan] * 8)
    # λ = Cov_n(y, f) / ((1 + 4/8) Var(f over the 12 images, divisor 11)) = (1/8) / (3/2 · 9/44) = 11/27
    lam = Fraction(1, 8) / (Fraction(3, 2) * Fraction(9, 44))
    assert lam == Fraction(11, 27)
    rectifier = [Fraction(a) - lam * b for a, b in zip(y, f_labelled)]
    mean = sum(rectifier) / 4
    variance = lam**2 * Fraction(3, 16) / 8 + sum((r - mean) ** 2 for r in rectifier) / 4 / 4
    share = lam * Fraction(2, 8) + mean
    assert share == Fraction(1, 2)
    result = ppi.ppi_share(machine, human)
    half = Z95 * float(variance) ** 0.5
    assert (result.lam, result.share, result.ppi_py_low, result.ppi_py_high) == pytest.approx(
        (float(lam), 0.5, 0.5 - half, 0.5 + half), abs=1e-12)
    # plain PPI (λ = 1): SE² = (3/16)/8 + (3/16)/4 = 9/128
    plain = ppi.ppi_share(machine, human, lam=1)
    assert plain.se == pytest.approx(3 / 128**0.5, abs=1e-12)


def test_a_machine_that_never_varies_leaves_the_people_alone():
    machine, human = study(3)
    result = ppi.ppi_share(np.zeros_like(machine), human)
    assert result.lam == 0
    assert (result.low, result.high) == pytest.approx((result.human_low, result.human_high), abs=1e-12)


def test_all_the_same_answers_give_nan_and_a_warning_not_a_point():
    human = np.full(100, np.nan)
    human[:20] = 0.0
    with pytest.warns(RuntimeWarning) as heard:
        result = ppi.ppi_share(np.zeros(100), human)
    assert [str(warning.message) for warning in heard] == [ppi.DEGENERATE_WARNING.format(what="ppi_py's PPI interval")]
    assert np.isnan(result.ppi_py_low) and np.isnan(result.n_eff)
    assert result.low == result.human_low == 0 and result.high > 0 and result.human_high > 0  # exact: from 0


def test_importing_ppi_py_leaves_warnings_on(monkeypatch):
    """ppi_py calls warnings.simplefilter("ignore") when imported; sdaudit's import of it must not
    silence every later warning in the process. ppi_py is imported afresh (its modules taken out
    of sys.modules for this test, put back after)."""
    import sys

    for name in [name for name in sys.modules if name == "ppi_py" or name.startswith("ppi_py.")]:
        monkeypatch.delitem(sys.modules, name)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        before = list(warnings.filters)
        ppi._ppi_mean_ci()
        assert "ppi_py" in sys.modules
        assert warnings.filters == before


@pytest.mark.parametrize(("arguments", "message"), [
    ({"machine": [0.5, 2.0, 0.0], "human": [1.0, 0.0, np.nan]}, "`machine` must hold shares from 0 to 1 (NaN only in `human`) but holds 2.0."),
    ({"machine": [0.5, np.nan, 0.0], "human": [1.0, 0.0, np.nan]}, "`machine` must hold shares from 0 to 1 (NaN only in `human`) but holds nan."),
    ({"machine": [0.5, 1.0, 0.0], "human": [1.0, -1.0, np.nan]}, "`human` must hold shares from 0 to 1 (NaN only in `human`) but holds -1.0."),
    ({"machine": [0.5, 1.0], "human": [1.0, 0.0, np.nan]}, "`machine` and `human` must be 1-D arrays of one length (one entry per image) but have shapes (2,) and (3,)."),
    ({"machine": [0.5, 1.0, 0.0], "human": [1.0, np.nan, np.nan]}, "PPI needs at least 2 images labelled by people and 1 not, but got 1 of 3."),
    ({"machine": [0.5, 1.0, 0.0], "human": [1.0, 0.0, 1.0]}, "PPI needs at least 2 images labelled by people and 1 not, but got 3 of 3."),
    ({"machine": [0.5, 1.0, 0.0], "human": [1.0, 0.0, np.nan], "lam": 1.5}, "`lam` must be None (tuned) or a number from 0 to 1 but is 1.5."),
    ({"machine": [0.5, 1.0, 0.0], "human": [1.0, 0.0, np.nan], "lam": "1"}, "`lam` must be None (tuned) or a number from 0 to 1 but is '1'."),
])  # fmt: skip
def test_bad_input_is_named(arguments, message):
    with pytest.raises(ValueError) as raised:
        ppi.ppi_share(**arguments)
    assert str(raised.value) == message


def family_study(seed, images=2000, labelled=250):
    rng = np.random.default_rng(seed)
    gender = rng.choice([1, 2, 3], images, p=[0.45, 0.45, 0.1])
    skin = rng.choice([1, 2, 3], images, p=[0.6, 0.3, 0.1])
    wrong = rng.random(images) < 0.1
    machine_gender = np.where(wrong, rng.choice([1, 2, 3], images), gender)
    machine_skin = np.where(rng.random(images) < 0.2, rng.choice([1, 2, 3], images), skin)
    mask = np.zeros(images, bool)
    mask[rng.choice(images, labelled, replace=False)] = True
    return dict(machine_gender=machine_gender, machine_skin=machine_skin,
                human_gender=np.where(mask, gender, 0), human_skin=np.where(mask, skin, 0), labelled=mask)


def test_the_family_table_has_a_row_per_group_each_the_groups_ppi_share():
    arrays = family_study(11)
    table = ppi.ppi_table(**arrays)
    assert list(table.columns) == ppi.PPI_COLUMNS
    expected = [(family, group) for family in ("gender", "skin_tone", "intersection") for group in family_groups(family)]
    assert list(zip(table["family"], table["group"])) == expected
    assert (table["n_machine"] == 2000).all() and (table["n_human"] == 250).all()
    for family in ("gender", "skin_tone", "intersection"):  # every image in exactly one group
        shares = table.loc[table["family"] == family]
        assert shares["human_share"].sum() == pytest.approx(1)
    # one row recomputed by hand: darker_male is skin 2 and gender 2
    machine = ((arrays["machine_skin"] == 2) & (arrays["machine_gender"] == 2)).astype(float)
    people = np.where(arrays["labelled"], ((arrays["human_skin"] == 2) & (arrays["human_gender"] == 2)), np.nan)
    row = table.set_index(["family", "group"]).loc[("intersection", "darker_male")]
    direct = ppi.ppi_share(machine, people)
    assert (row["share"], row["low"], row["high"], row["ppi_py_low"], row["lambda"]) == (
        direct.share, direct.low, direct.high, direct.ppi_py_low, direct.lam)
    unclear = table.set_index(["family", "group"]).loc[("intersection", "unclear"), "human_share"]
    either = (arrays["human_skin"] == 3) | (arrays["human_gender"] == 3)
    assert unclear == either[arrays["labelled"]].mean()


@pytest.mark.parametrize(("change", "message"), [
    ({"machine_skin": np.zeros(2000, int)}, "`machine_skin` must hold answer codes 1–3 for every image (1 + the index in ('lighter', 'darker', 'unclear')) but holds 0."),
    ({"labelled": np.ones(2000)}, "`labelled` must be a boolean array with one entry per image, but has shape (2000,) and dtype float64 for 2000 images."),
    ({"human_gender": np.ones(10, int)}, "`human_gender` must be a 1-D array with one entry per image (2000) but has shape (10,)."),
    ({"families": ("gender", "age")}, "`families` must name families among ('gender', 'skin_tone', 'intersection') but is ('gender', 'age')."),
])  # fmt: skip
def test_the_family_tables_bad_input_is_named(change, message):
    arrays = family_study(1) | change
    with pytest.raises(ValueError) as raised:
        ppi.ppi_table(**arrays)
    assert str(raised.value) == message


def small_sample_from_scratch(y, f_labelled, f_unlabelled, lam, share, confidence=0.95):
    """The small-sample interval written out for hard labels from counts: the people's 2 × 2 table
    and the machine's count elsewhere, each cell given one more image (the rest given one 0 and one 1),
    then Clopper–Pearson over Var(person)/SE² trials, by scipy's beta quantiles."""
    n, rest = len(y), len(f_unlabelled)
    cells = {(a, b): 1 + np.sum((y == a) & (f_labelled == b)) for a in (0, 1) for b in (0, 1)}
    m = n + 4
    values = {(a, b): a - lam * b for (a, b) in cells}
    mean = sum(cells[key] * values[key] for key in cells) / m
    rectifier = sum(cells[key] * (values[key] - mean) ** 2 for key in cells) / m
    q = (f_unlabelled.sum() + 1) / (rest + 2)
    p = (cells[1, 0] + cells[1, 1]) / m
    size = min(p * (1 - p) / (lam**2 * q * (1 - q) / rest + rectifier / n), n + rest)
    count = min(max(share, 0), 1) * size
    alpha = 1 - confidence
    low = stats.beta.ppf(alpha / 2, count, size - count + 1) if count > 0 else 0.0
    high = stats.beta.ppf(1 - alpha / 2, count + 1, size - count) if count < size else 1.0
    return low, high


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_small_sample_interval_is_its_formula(seed):
    machine, human = study(seed, share=[0.05, 0.2, 0.5][seed], labelled=[60, 150, 300][seed])
    result = ppi.ppi_share(machine, human)
    labelled = ~np.isnan(human)
    expected = small_sample_from_scratch(human[labelled], machine[labelled], machine[~labelled], result.lam, result.share)
    assert (result.low, result.high) == pytest.approx(expected, abs=1e-9)
    assert 0 <= result.low < result.share < result.high <= 1


def test_the_small_sample_interval_stays_an_interval_where_the_plain_one_is_a_point():
    """No person in the subset is in the group and the machine agrees everywhere: the plain interval
    has no variance to show (NaN), the small-sample one is a proper interval from 0."""
    human = np.full(1000, np.nan)
    human[:100] = 0.0
    with pytest.warns(RuntimeWarning):
        result = ppi.ppi_share(np.zeros(1000), human)
    assert np.isnan(result.ppi_py_low)
    assert result.low == 0 and 0 < result.high < 0.05
