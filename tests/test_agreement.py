"""Agreement between raters and label modes: every statistic against a published worked example or an
independent computation written here from the formulas; the CLI after importing a 3-rater sheet."""

from __future__ import annotations

import json
import warnings
from itertools import permutations

import numpy as np
import pandas as pd
import pytest
from helpers import ORIGIN, sheet, three_raters

from sdaudit.analysis.agreement import (
    _kernel,
    _patterns,
    agreement,
    field_ratings,
    krippendorff_alpha,
)
from sdaudit.analysis.estimate import estimate, wilson_interval
from sdaudit.analysis.label_modes import LABELS_TEXT, AnswerPatterns, family_answers, family_labels
from sdaudit.analysis.options import CONFIDENCE_TEXT
from sdaudit.scheme import REFIT_METHOD, WEAK_MODEL_NOTE, family_groups, reliability_note

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers × 12 units
# with missing values. Published: nominal α = 0.743, ordinal 0.815, interval 0.849, ratio 0.797.
# Gwet uses the same data (irrCAC's `cac.raw4raters`, Handbook of Inter-Rater Reliability): AC1 = 0.7754
# with pa = 0.8182 and pe = 0.1903.
KRIPPENDORFF_2011 = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
])  # fmt: skip


# -- independent computations, straight from the formulas -----------------------------------------


def alpha_by_coincidences(ratings: np.ndarray, domain: list, level: str) -> float:
    """Krippendorff's α by the coincidence matrix, one pairable unit and one ordered pair at a time."""
    index = {value: i for i, value in enumerate(domain)}
    o = np.zeros((len(domain), len(domain)))
    for unit in ratings.T:
        values = [value for value in unit if not np.isnan(value)]
        if len(values) < 2:
            continue
        for a, b in permutations(range(len(values)), 2):
            o[index[values[a]], index[values[b]]] += 1 / (len(values) - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()

    def delta2(c: int, k: int) -> float:
        if level == "nominal":
            return float(c != k)
        low, high = min(c, k), max(c, k)
        return (sum(n_c[g] for g in range(low, high + 1)) - (n_c[c] + n_c[k]) / 2) ** 2

    size = range(len(domain))
    observed = sum(o[c, k] * delta2(c, k) for c in size for k in size)
    expected = sum(n_c[c] * n_c[k] * delta2(c, k) for c in size for k in size)
    return 1 - (n - 1) * observed / expected


def ac1_by_formula(ratings: np.ndarray, domain: list) -> tuple[float, float, float]:
    """Gwet's AC1 for several raters with missing ratings: (pa, pe, AC1)."""
    agreements, shares = [], []
    for unit in ratings.T:
        values = [value for value in unit if not np.isnan(value)]
        if not values:
            continue
        r = len(values)
        counts = [values.count(k) for k in domain]
        shares.append([count / r for count in counts])
        if r >= 2:
            agreements.append(sum(count * (count - 1) for count in counts) / (r * (r - 1)))
    pa = float(np.mean(agreements))
    pi = np.mean(shares, axis=0)
    pe = float(np.sum(pi * (1 - pi)) / (len(domain) - 1))
    return pa, pe, (pa - pe) / (1 - pe)


# -- the published examples ------------------------------------------------------------------------


@pytest.mark.parametrize("level, published", [("nominal", 0.743), ("ordinal", 0.815)])
def test_alpha_matches_krippendorffs_worked_example(level, published):
    coded = KRIPPENDORFF_2011 - 1  # values 1..5 as domain indices 0..4
    alpha = krippendorff_alpha(coded, level, 5)
    assert round(alpha, 3) == published
    assert alpha == pytest.approx(alpha_by_coincidences(KRIPPENDORFF_2011, [1, 2, 3, 4, 5], level), abs=1e-12)


def test_the_independent_alpha_reproduces_the_published_values_itself():
    """The check above is only as good as the reference: it gives the paper's figures on its own."""
    assert round(alpha_by_coincidences(KRIPPENDORFF_2011, [1, 2, 3, 4, 5], "nominal"), 3) == 0.743
    assert round(alpha_by_coincidences(KRIPPENDORFF_2011, [1, 2, 3, 4, 5], "ordinal"), 3) == 0.815


def test_ac1_matches_gwets_published_example():
    pa, pe, ac1 = ac1_by_formula(KRIPPENDORFF_2011, [1, 2, 3, 4, 5])
    assert (round(pa, 4), round(pe, 4), round(ac1, 4)) == (0.8182, 0.1903, 0.7754)
    patterns, frequency = _patterns(_counts(KRIPPENDORFF_2011 - 1, 5))
    kernel = _kernel(patterns, frequency[None, :], "nominal")
    assert kernel["gwet_ac1"][0] == pytest.approx(ac1, abs=1e-12)
    assert kernel["percent_agreement"][0] == pytest.approx(pa, abs=1e-12)


def _counts(matrix: np.ndarray, q: int) -> np.ndarray:
    return np.array([[np.sum(unit == k) for k in range(q)] for unit in matrix.T])


@pytest.mark.parametrize("level", ["nominal", "ordinal"])
def test_the_bootstrap_kernel_equals_the_package_on_the_whole_sample(level):
    """The intervals' kernel computes α from pooled rating patterns; on unit weights it is the package's α."""
    rng = np.random.default_rng(2)
    matrix = rng.integers(0, 10, size=(5, 300)).astype(float)
    matrix[rng.random(matrix.shape) < 0.3] = NAN
    patterns, frequency = _patterns(_counts(matrix, 10))
    assert _kernel(patterns, frequency[None, :], level)["krippendorff_alpha"][0] == pytest.approx(
        krippendorff_alpha(matrix, level, 10), abs=1e-10)


# -- agreement on annotations ----------------------------------------------------------------------


def reference_matrices(annotations: pd.DataFrame, skin_cut: int = 5) -> dict[str, np.ndarray]:
    """Each field's raters × images matrix built here by hand, under the labelling rule: an image has a
    person when at least half its raters saw one; its labels come from those who did."""
    raters = sorted(annotations["rater"].unique())
    images = sorted(annotations["image_id"].unique())
    matrices = {name: np.full((len(raters), len(images)), NAN) for name in ("person", "gender", "mst", "skin_binary")}
    for j, image in enumerate(images):
        rows = annotations[annotations["image_id"] == image]
        has_person = rows["person_present"].astype(bool).mean() >= 0.5
        for row in rows.itertuples():
            i = raters.index(row.rater)
            matrices["person"][i, j] = float(bool(row.person_present))
            if has_person and row.person_present:
                matrices["gender"][i, j] = ["female", "male", "unclear"].index(row.gender)
                matrices["mst"][i, j] = row.mst - 1
                matrices["skin_binary"][i, j] = float(row.mst > skin_cut)
    return matrices


DOMAIN_SIZES = {"person": 2, "gender": 3, "mst": 10, "skin_binary": 2}


def test_each_field_reads_the_annotations_as_the_labelling_rule_does():
    annotations = three_raters()
    reference = reference_matrices(annotations)
    for name, ratings in field_ratings(annotations).items():
        expected = reference[name][:, ~np.isnan(reference[name]).all(axis=0)]
        np.testing.assert_array_equal(ratings.ratings, expected, err_msg=name)


def test_agreement_equals_the_independent_computations():
    annotations = three_raters()
    result = agreement(annotations, bootstrap_rng_seed=0)
    for name, matrix in reference_matrices(annotations).items():
        q = DOMAIN_SIZES[name]
        level = "ordinal" if name == "mst" else "nominal"
        pa, _, ac1 = ac1_by_formula(matrix, list(range(q)))
        assert result.value(name, "krippendorff_alpha") == pytest.approx(
            alpha_by_coincidences(matrix, list(range(q)), level), abs=1e-9), name
        assert result.value(name, "gwet_ac1") == pytest.approx(ac1, abs=1e-9), name
        assert result.value(name, "percent_agreement") == pytest.approx(pa, abs=1e-9), name
    table = result.table
    assert (table["low"] <= table["value"] + 1e-12).all() and (table["value"] <= table["high"] + 1e-12).all()
    assert set(table["images"]) == {60} and set(table["raters"]) == {3}


def two_raters_on_some_images() -> pd.DataFrame:
    """Rater a labels 31 images; rater b labels 15 of them, and on the last three sees no person.
    (The Agreement page once said "Images 31" for every field here.)"""
    first = sheet({("female", 2): 16, ("male", 7): 15}, rater="a")
    second = sheet({("female", 2): 6, ("male", 3): 6, ("unclear", 8): 3}, rater="b")
    second.loc[12:, ["person_present", "gender", "mst"]] = [False, None, None]
    return pd.concat([first, second], ignore_index=True)


def test_a_fields_images_are_those_with_two_or_more_ratings_of_it():
    """One rule for the summary and the pairs: an image counts in a field when two raters rated it there."""
    annotations = two_raters_on_some_images()
    result = agreement(annotations, bootstrap_rng_seed=0)
    reference = reference_matrices(annotations)
    images = result.table.groupby("field")["images"].first()
    for name, matrix in reference.items():
        assert images[name] == np.count_nonzero((~np.isnan(matrix)).sum(axis=0) >= 2), name
    assert dict(images) == {"person": 15, "gender": 12, "mst": 12, "skin_binary": 12}
    assert dict(result.pairs.set_index("field")["images"]) == dict(images), "the summary and the pairs agree"


def test_unused_tones_still_count_in_the_domain():
    """AC1's chance term divides by q − 1: with MST 9 and 10 unused, q is still 10."""
    annotations = three_raters()
    matrix = reference_matrices(annotations)["mst"]
    ac1_with_ten = ac1_by_formula(matrix, list(range(10)))[2]
    ac1_with_eight = ac1_by_formula(matrix, list(range(8)))[2]
    assert ac1_with_ten != pytest.approx(ac1_with_eight)
    assert agreement(annotations, bootstrap_rng_seed=0).value("mst", "gwet_ac1") == pytest.approx(ac1_with_ten, abs=1e-9)


def test_pairs_and_each_rater_against_the_others():
    annotations = three_raters()
    result = agreement(annotations, bootstrap_rng_seed=0)
    matrix = reference_matrices(annotations)["gender"]
    pair = result.pairs[(result.pairs["field"] == "gender") & (result.pairs["rater_a"] == "ana")
                        & (result.pairs["rater_b"] == "cai")].iloc[0]
    both = ~np.isnan(matrix[0]) & ~np.isnan(matrix[2])
    assert pair["images"] == both.sum()
    assert pair["percent_agreement"] == pytest.approx(np.mean(matrix[0, both] == matrix[2, both]))
    assert pair["krippendorff_alpha"] == pytest.approx(alpha_by_coincidences(matrix[[0, 2]][:, both], [0, 1, 2],
                                                                             "nominal"))
    ben = result.by_rater[(result.by_rater["field"] == "gender") & (result.by_rater["rater"] == "ben")].iloc[0]
    same = sum(np.sum((matrix[other] == matrix[1]) & ~np.isnan(matrix[other]) & ~np.isnan(matrix[1]))
               for other in (0, 2))
    compared = sum(np.sum(~np.isnan(matrix[other]) & ~np.isnan(matrix[1])) for other in (0, 2))
    assert ben["agreement_with_others"] == pytest.approx(same / compared)
    assert ben["alpha_without_rater"] == pytest.approx(alpha_by_coincidences(matrix[[0, 2]], [0, 1, 2], "nominal"))


def test_the_bootstrap_draws_from_its_rng_seed():
    annotations = three_raters()
    first, second = agreement(annotations, bootstrap_rng_seed=3).table, agreement(annotations, bootstrap_rng_seed=3).table
    pd.testing.assert_frame_equal(first, second)
    assert not agreement(annotations, bootstrap_rng_seed=4).table["low"].equals(first["low"])


def test_one_rater_has_no_agreement_to_show():
    result = agreement(sheet(ORIGIN), bootstrap_rng_seed=0)
    assert result.single_rater
    assert result.table["value"].isna().all() and result.table["low"].isna().all()


@pytest.mark.parametrize("confidence", [0, 1.5, True, "0.9"])
def test_a_bad_confidence_is_named(confidence):
    with pytest.raises(ValueError) as caught:
        agreement(three_raters(), confidence=confidence)
    assert str(caught.value) == CONFIDENCE_TEXT.format(value=confidence)


# -- label modes -----------------------------------------------------------------------------------


def test_majority_labels_take_the_most_chosen_group_and_split_ties():
    rows = pd.DataFrame({"image_id": [0, 0, 0, 1, 1], "rater": ["a", "b", "c", "a", "b"], "person_present": True,
                         "gender": ["female", "female", "male", "female", "male"], "mst": [2.0] * 5,
                         "skin_binary": None})
    labels, images = family_labels(rows, 5, True, "majority")
    assert images == 2
    # image 0: female (2 of 3); image 1: a tie, half female half male
    np.testing.assert_allclose(labels["gender"].counts, [1.5, 0.5, 0.0])
    result = estimate(rows, labels="majority")
    assert result.share("gender", "female") == pytest.approx(0.75)
    assert set(result.table["labels"]) == {"majority"} and result.labels == "majority"
    assert set(estimate(rows).table["labels"]) == {"soft"}


def test_an_unknown_label_mode_is_named():
    with pytest.raises(ValueError) as caught:
        estimate(sheet(ORIGIN), labels="adjusted")
    assert str(caught.value) == LABELS_TEXT.format(choices="soft, majority, dawid-skene, adjudicated", value="adjusted")


def simulated_raters(seed: int, images: int = 200, raters: int = 3, darker: float = 0.10, flip: float = 0.10):
    """Raters who each flip an image's skin tone (MST 3 <-> 8) with probability ``flip``; the true
    darker share is ``darker``. Returns the annotations and the true share among these images."""
    rng = np.random.default_rng(seed)
    truth = rng.random(images) < darker
    frames = []
    for rater in range(raters):
        seen = truth ^ (rng.random(images) < flip)
        frames.append(pd.DataFrame({"image_id": np.arange(images), "rater": f"rater-{rater}", "person_present": True,
                                    "gender": "female", "mst": np.where(seen, 8, 3), "skin_binary": None}))
    return pd.concat(frames, ignore_index=True), float(truth.mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dawid_skene_recovers_the_simulated_truth_better_than_soft_labels(seed):
    annotations, true_share = simulated_raters(seed)
    soft = estimate(annotations).share("skin_tone", "darker")
    corrected = estimate(annotations, labels="dawid-skene")
    share = corrected.share("skin_tone", "darker")
    # soft labels are biased towards 50%: 0.9·p + 0.1·(1 − p) = 0.18 at p = 0.10
    assert abs(share - true_share) < abs(soft - true_share)
    assert abs(share - true_share) < 0.03
    assert abs(share - 0.10) < abs(soft - 0.10)
    assert set(corrected.table["labels"]) == {"dawid-skene"}


def crowd_kit_fit(answers: pd.DataFrame, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """crowd-kit's own DawidSkene (the reference the EM in label_modes follows): posteriors, prevalences."""
    from crowdkit.aggregation import DawidSkene

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # crowd-kit's pandas keywords
        model = DawidSkene(n_iter=100).fit(answers)
    return (model.probas_.reindex(columns=range(groups), fill_value=0.0).sort_index().to_numpy(),
            model.priors_.reindex(range(groups), fill_value=0.0).to_numpy())


def some_raters_skip(annotations: pd.DataFrame) -> pd.DataFrame:
    """A fourth rater who saw every third image, and some `unclear` answers: uneven patterns."""
    fourth = annotations[annotations["rater"] == "rater-0"].iloc[::3].assign(rater="rater-3")
    rows = pd.concat([annotations, fourth], ignore_index=True)
    rows.loc[rows.index % 17 == 0, "gender"] = "unclear"
    rows.loc[rows.index % 11 == 0, "gender"] = "male"
    return rows


@pytest.mark.parametrize("family", ["gender", "skin_tone", "intersection"])
def test_the_dawid_skene_em_is_crowd_kits_on_the_data_and_on_a_resample(family):
    annotations = some_raters_skip(simulated_raters(4, images=80)[0])
    answers = family_answers(annotations, 5, True)[0][family]
    answers = answers.assign(task=pd.factorize(answers["task"], sort=True)[0])
    groups = len(family_groups(family, True))
    patterns = AnswerPatterns.of(answers, groups)
    posteriors, prevalence = patterns.fit(patterns.frequency[None].astype(float))
    expected_posteriors, expected_prevalence = crowd_kit_fit(answers, groups)
    np.testing.assert_allclose(posteriors[0][patterns.of_image], expected_posteriors, atol=1e-9)
    np.testing.assert_allclose(prevalence[0], expected_prevalence, atol=1e-12)
    # a resample: the drawn images, each with all its answers, renumbered as crowd-kit would see them
    drawn = np.random.default_rng(5).integers(0, patterns.of_image.size, patterns.of_image.size)
    tasks = answers["task"].to_numpy()
    resample = pd.concat([answers[tasks == image].assign(task=index) for index, image in enumerate(drawn)])
    weights = np.bincount(patterns.of_image[drawn], minlength=patterns.frequency.size).astype(float)
    np.testing.assert_allclose(patterns.fit(weights[None])[1][0], crowd_kit_fit(resample, groups)[1], atol=1e-12)


def test_the_dawid_skene_refitting_bootstrap_carries_the_error_rates_uncertainty():
    annotations, true_share = simulated_raters(0)
    labels, _ = family_labels(annotations, 5, True, "dawid-skene")
    skin = labels["skin_tone"]
    assert skin.disagreement and skin.n == 200
    refit = skin.refit_interval(0.05, np.random.default_rng(0), resamples=200)
    share = skin.counts[1] / skin.n
    assert refit.low[1] < share < refit.high[1] and refit.low[1] < true_share < refit.high[1]
    # no disagreement at all (gender): nothing to correct, the answers are the labels, no refits
    assert not labels["gender"].disagreement
    assert labels["gender"].refit_interval(0.05, np.random.default_rng(0)) is None
    np.testing.assert_allclose(labels["gender"].counts, [200, 0, 0])


@pytest.mark.parametrize("method", ["clopper-pearson", "wilson", "jackknife", "bootstrap"])
def test_a_dawid_skene_interval_is_the_refitting_bootstrap_whatever_the_method(monkeypatch, method):
    """Issue 22: the intervals that treated the fitted error rates as known covered 92% in the README's
    setting and 31% at a true share of 5% with raters flipping 20%. Now every method shows the
    refitting bootstrap where raters disagree, and says so in the method column."""
    import sdaudit.analysis.label_modes

    monkeypatch.setattr(sdaudit.analysis.label_modes, "DAWID_SKENE_RESAMPLES", 300)
    annotations, _ = simulated_raters(3, images=80, darker=0.05, flip=0.20)
    result = estimate(annotations, labels="dawid-skene", method=method, bootstrap_rng_seed=7)
    skin = family_labels(annotations, 5, True, "dawid-skene")[0]["skin_tone"]
    # gender has no disagreement, so the refits' draws start with skin tone
    refit = skin.refit_interval(0.05, np.random.default_rng(7), resamples=300)
    assert result.interval("skin_tone", "darker") == pytest.approx((refit.low[1], refit.high[1]), abs=1e-12)
    assert result.row("skin_tone", "darker")["method"] == REFIT_METHOD == "bootstrap (refit per resample)"
    assert result.row("gender", "female")["method"] == method, "no disagreement: the method asked"
    # wider than the interval that takes the fitted error rates as known (Wilson on the same posteriors)
    known_low, known_high = wilson_interval(skin.counts[1], skin.n, 1.959963984540054)
    low, high = result.interval("skin_tone", "darker")
    assert high - low > known_high - known_low
    assert "refitting the model on each resample" in result.label_note
    pd.testing.assert_frame_equal(result.table, estimate(annotations, labels="dawid-skene", method=method,
                                                         bootstrap_rng_seed=7).table)


def test_a_group_nobody_chose_keeps_an_interval_and_a_verdict_under_dawid_skene():
    """Every refit put female-presenting at 0, so its interval was [0, 0], hidden as false certainty: the
    audit's headline ("no women at all") lost its interval and verdict. Where every resample gives one
    share, the exact interval of the count is shown instead, as soft labels show it."""
    rows = [{"image_id": image, "rater": f"r{rater}", "person_present": True,
             "gender": "unclear" if rater == 0 and image < 6 else "male", "mst": 3, "skin_binary": None,
             "confidence": "high"}
            for image in range(40) for rater in range(3)]
    annotations = pd.DataFrame(rows)
    corrected = estimate(annotations, labels="dawid-skene", bootstrap_rng_seed=1).row("gender", "female")
    soft = estimate(annotations).row("gender", "female")
    assert corrected["share"] == pytest.approx(0, abs=1e-6)
    assert (corrected["low"], corrected["high"]) == pytest.approx((soft["low"], soft["high"]), abs=1e-6)
    assert corrected["high"] > 0.05 and bool(corrected["excludes_target"])


@pytest.mark.parametrize(("options", "flagged"), [
    ({}, False),  # the README's setting: 3 raters flipping 10%, disagreeing on 22% of images, 24 darker
    ({"flip": 0.20}, True),  # raters disagree on 49% of the images
    ({"raters": 2}, True),  # two raters cannot identify the model
    ({"images": 80, "darker": 0.05, "flip": 0.20}, True),  # and about 4 darker images
])
def test_the_refitting_bootstrap_is_flagged_where_the_model_is_weakly_identified(options, flagged):
    annotations, _ = simulated_raters(0, **options)
    row = estimate(annotations, labels="dawid-skene", bootstrap_rng_seed=1).row("skin_tone", "darker")
    assert row["method"] == REFIT_METHOD and bool(row["small_count"]) is flagged and bool(row["reliable"]) is not flagged
    assert 0 < row["low"] < row["share"] < row["high"], "a flag never hides the estimate or its interval"
    assert reliability_note(row["method"], row["degenerate"], row["small_count"]) == (WEAK_MODEL_NOTE if flagged else "")


# -- the command line ------------------------------------------------------------------------------


def three_rater_sheet(path, annotations: pd.DataFrame):
    """``annotations`` as an sdaudit-format sheet (run run-a, seed = image id)."""
    rows = pd.DataFrame({
        "run_key": "run-a", "seed": annotations["image_id"], "rater": annotations["rater"],
        "person_present": annotations["person_present"].map({True: "true", False: "false"}),
        "gender": annotations["gender"].fillna(""), "mst": annotations["mst"].map(lambda v: "" if pd.isna(v) else int(v)),
        "skin_binary": "", "confidence": "high",
    })
    rows.to_csv(path, index=False)
    return path


def test_the_cli_and_the_report_say_a_dawid_skene_interval_was_refitted(cli, tmp_path):
    annotations, _ = simulated_raters(0, flip=0.20)  # skin tone: disagreement on about half the images
    home = tmp_path / "home"
    cli("import-annotations", str(three_rater_sheet(tmp_path / "team.csv", annotations)), "--study", "team",
        "--format", "sdaudit", "--home", str(home), check=True)
    text = cli("estimate", "--study", "team", "--labels", "dawid-skene", "--home", str(home), check=True).stdout
    assert "refitting the model on each resample, whatever the method" in text and WEAK_MODEL_NOTE in text
    rows = json.loads(cli("estimate", "--study", "team", "--labels", "dawid-skene", "--json", "--home", str(home),
                          check=True).stdout)
    methods = {(row["family"], row["group"]): row["method"] for row in rows}
    assert methods[("skin_tone", "darker")] == REFIT_METHOD and methods[("gender", "female")] == "clopper-pearson"
    report = tmp_path / "report.html"
    cli("report", "--study", "team", "--labels", "dawid-skene", "--out", str(report), "--home", str(home), check=True)
    assert "Dawid–Skene&#39;s refitted intervals (“bootstrap (refit per resample)”) are flagged where" in \
        report.read_text()


def test_agreement_json_after_importing_a_three_rater_sheet(cli, tmp_path):
    annotations = three_raters()
    home = tmp_path / "home"
    cli("import-annotations", str(three_rater_sheet(tmp_path / "team.csv", annotations)), "--study", "team",
        "--format", "sdaudit", "--home", str(home), check=True)
    result = cli("agreement", "--study", "team", "--json", "--seed", "1", "--home", str(home), check=True)
    rows = json.loads(result.stdout)
    assert len(rows) == 12 and all(set(row) == {"field", "statistic", "value", "low", "high", "images", "raters"}
                                   for row in rows)
    by_key = {(row["field"], row["statistic"]): row for row in rows}
    for name, matrix in reference_matrices(annotations).items():
        q = DOMAIN_SIZES[name]
        alpha = alpha_by_coincidences(matrix, list(range(q)), "ordinal" if name == "mst" else "nominal")
        assert abs(by_key[(name, "krippendorff_alpha")]["value"] - alpha) < 1e-6, name
        assert abs(by_key[(name, "gwet_ac1")]["value"] - ac1_by_formula(matrix, list(range(q)))[2]) < 1e-6, name
        assert by_key[(name, "gwet_ac1")]["raters"] == 3
    text = cli("agreement", "--study", "team", "--home", str(home), check=True).stdout
    assert "Krippendorff's α" in text and "every pair of raters" in text and "ana" in text


def test_agreement_cli_errors_are_one_line(cli, tmp_path):
    home = tmp_path / "home"
    cli("import-annotations", str(three_rater_sheet(tmp_path / "team.csv", three_raters(10))), "--study", "team",
        "--format", "sdaudit", "--home", str(home), check=True)
    for args, words in [(("--study", "nope"), "there is no study 'nope' in the store; studies: team."),
                        (("--study", "team", "--confidence", "2"), CONFIDENCE_TEXT.format(value=2.0))]:
        result = cli("agreement", *args, "--home", str(home))
        assert result.returncode == 2 and result.stderr.strip() == f"error: {words}"
    result = cli("estimate", "--study", "team", "--labels", "best", "--home", str(home))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "invalid choice: 'best'" in result.stderr


def test_estimate_json_says_its_labels(cli, tmp_path):
    home = tmp_path / "home"
    cli("import-annotations", str(three_rater_sheet(tmp_path / "team.csv", three_raters(30))), "--study", "team",
        "--format", "sdaudit", "--home", str(home), check=True)
    soft = json.loads(cli("estimate", "--study", "team", "--json", "--home", str(home), check=True).stdout)
    majority = json.loads(cli("estimate", "--study", "team", "--json", "--labels", "majority", "--home", str(home),
                              check=True).stdout)
    assert {row["labels"] for row in soft} == {"soft"} and {row["labels"] for row in majority} == {"majority"}
    assert {"method", "n_eff", "reliable"} <= set(soft[0])


def test_one_rater_says_agreement_is_not_available(cli, tmp_path):
    from helpers import ORIGIN_SHEET

    home = tmp_path / "home"
    cli("import-annotations", str(ORIGIN_SHEET), "--study", "origin", "--rater", "r", "--home", str(home), check=True)
    result = cli("agreement", "--study", "origin", "--home", str(home), check=True)
    assert result.stdout.startswith("single rater: agreement not available")


# -- the report --------------------------------------------------------------------------------------


def test_the_report_shows_agreement_or_says_why_not(tmp_path):
    from helpers import ORIGIN_SHEET, make_images, make_run

    from sdaudit.files.sheets import import_annotations
    from sdaudit.present.report import audit_card, render_report
    from sdaudit.store import Store

    annotations = three_raters(30)
    with Store() as store:
        store.add_run(make_run(study="team"))
        store.add_images(make_images(seeds=range(30)))
        annotations["image_id"] = store.images()["image_id"].to_numpy()[annotations["image_id"]]
        annotations["confidence"] = "high"
        store.save_annotations(annotations)
        team = store.annotations(study="team")
        page = render_report(estimate(team), audit_card(store, "team"))
        import_annotations(ORIGIN_SHEET, store, study="origin", rater="origin-rater")
        single = render_report(estimate(store.annotations(study="origin")), audit_card(store, "origin"))
    assert "<h2>Agreement between raters</h2>" in page
    assert f"<td>{agreement(team, bootstrap_rng_seed=0).value('mst', 'krippendorff_alpha'):.3f}</td>" in page
    assert "Single rater: agreement not available" in single
