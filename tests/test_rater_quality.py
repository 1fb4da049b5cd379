"""Disagreements, adjudicated labels, gold accuracy, self-consistency and rater groups, each checked
against a count made by hand or an independent computation (statsmodels' Newcombe interval)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import make_images, make_run, run_cli, three_raters
from statsmodels.stats.proportion import confint_proportions_2indep

from sdaudit.analysis.estimate import estimate
from sdaudit.analysis.label_modes import ADJUDICATED_RATER, NEEDS_ADJUDICATIONS, apply_adjudications
from sdaudit.analysis.planning import compare_tables
from sdaudit.analysis.rater_quality import (
    MATCH_FIELDS,
    MIN_GROUP_RATERS,
    MIN_RATERS_TEXT,
    MIXED,
    NOT_GIVEN,
    OTHER_GROUP,
    PAIRED,
    UNPAIRED,
    disagreements,
    gold_accuracy,
    group_comparison,
    labels_by_image,
    rater_group_column,
    self_consistency,
)
from sdaudit.scheme import Annotation
from sdaudit.store import Store
from sdaudit.store.team import FIELDS_TEXT, Team, TeamSettings


def rows(answers: dict[int, dict[str, tuple]]) -> pd.DataFrame:
    """Annotation rows from {image: {rater: (person, gender, mst)}}."""
    frame = pd.DataFrame([{"image_id": image_id, "rater": rater, "person_present": person, "gender": gender,
                           "mst": mst, "skin_binary": None, "run_key": "r", "seed": image_id}
                          for image_id, by_rater in answers.items() for rater, (person, gender, mst) in by_rater.items()])
    frame["mst"] = frame["mst"].astype(float)
    return frame


TEAM = rows({
    0: {"ana": (True, "female", 3), "ben": (True, "female", 4), "cai": (True, "female", 3)},  # agree
    1: {"ana": (True, "female", 3), "ben": (True, "male", 3)},  # gender differs
    2: {"ana": (True, "male", 2), "ben": (True, "male", 4)},  # MST spread 2
    3: {"ana": (True, "male", 2), "ben": (False, None, None)},  # person split
    4: {"ana": (True, "unclear", 9)},  # one rater: nothing to disagree with
})


def test_disagreements_follow_the_studys_rules():
    found = disagreements(TEAM, TeamSettings())
    assert found[["image_id", "reasons"]].values.tolist() == [
        [1, "gender differs"], [2, "MST spread 2"], [3, "person present split"]]
    assert list(found["raters"]) == [2, 2, 2]
    looser = disagreements(TEAM, TeamSettings(disagree_mst_spread=3, disagree_gender=False))
    assert looser["image_id"].tolist() == [3]
    assert disagreements(TEAM.iloc[0:0], TeamSettings()).empty
    binary = TEAM.assign(mst=np.nan, skin_binary=["lighter"] * 3 + ["lighter", "darker"] + ["lighter"] * 3 + [None, "lighter"])
    assert disagreements(binary, TeamSettings())[["image_id", "reasons"]].values.tolist() == [
        [1, "gender differs; lighter / darker differs"], [3, "person present split"]]


def test_adjudicated_labels_replace_only_the_decided_images():
    final = pd.DataFrame({"image_id": [1, 3], "person_present": [True, False], "gender": ["male", None],
                          "mst": [3, None], "skin_binary": [None, None]})
    replaced = apply_adjudications(TEAM, final)
    assert replaced.groupby("image_id").size().to_dict() == {0: 3, 1: 1, 2: 2, 3: 1, 4: 1}
    assert replaced.loc[replaced["image_id"] == 1, "rater"].tolist() == [ADJUDICATED_RATER]
    adjudicated = estimate(TEAM, labels="adjudicated", adjudications=final)
    # by hand: images with a person 0 (female), 1 (male, adjudicated), 2 (male), 4 (unclear); image 3 has none
    assert adjudicated.images == 4
    assert adjudicated.row("gender", "female")["count"] == 1 and adjudicated.row("gender", "male")["count"] == 2
    assert set(adjudicated.table["labels"]) == {"adjudicated"}
    soft = estimate(TEAM)
    assert soft.row("gender", "female")["count"] == pytest.approx(1.5)  # image 1 split half and half
    assert estimate(TEAM, labels="adjudicated", adjudications=final.iloc[0:0]).table.drop(columns="labels").equals(
        soft.table.drop(columns="labels")), "no final label anywhere: the soft labels"
    with pytest.raises(ValueError) as caught:
        estimate(TEAM, labels="adjudicated")
    assert str(caught.value) == NEEDS_ADJUDICATIONS


def test_gold_accuracy_counts_each_field_where_both_answered():
    gold = pd.DataFrame({"image_id": [0, 1, 3], "person_present": [True, True, True], "gender": ["female", "male", "male"],
                         "mst": [3.0, 3.0, 2.0], "skin_binary": [None, None, None]})
    table = gold_accuracy(TEAM, gold, skin_cut=5).set_index("rater")
    shares = table[["gold_images", *MATCH_FIELDS]]
    # ana: 0 ✓ female/3, 1 ✗ female≠male, 3 ✓ — person 3/3, gender 2/3, MST 3/3
    assert shares.loc["ana"].tolist() == [3, 1.0, pytest.approx(2 / 3), 1.0, 1.0, 1.0]
    # ben: 0 (female, 4): MST one off; 1 (male, 3) ✓; 3 no person: person ✗ and nothing else to compare
    assert shares.loc["ben"].tolist() == [3, pytest.approx(2 / 3), 1.0, 0.5, 1.0, 1.0]
    assert shares.loc["cai"].tolist() == [1, 1.0, 1.0, 1.0, 1.0, 1.0]
    pairs = table[[f"{field}_pairs" for field in MATCH_FIELDS]]
    assert pairs.loc["ben"].tolist() == [3, 2, 2, 2, 2], "ben saw no person on image 3: only person is compared"


@pytest.mark.parametrize(("matches", "gold_images"), [(3, 3), (2, 3), (0, 1), (17, 20)])
def test_gold_accuracy_has_the_exact_interval_of_its_count(matches, gold_images):
    """Issue 22: 3 of 3 is 100% but the exact 95% interval is [29.2%, 100%]; every share comes with
    its count and Clopper–Pearson interval, checked against scipy's exact binomial interval."""
    from scipy.stats import binomtest

    from sdaudit.present.team_tables import match_table

    images = range(gold_images)
    answers = rows({image: {"ana": (True, "female" if image < matches else "male", 3)} for image in images})
    gold = pd.DataFrame({"image_id": list(images), "person_present": True, "gender": "female", "mst": 3.0,
                         "skin_binary": None})
    ana = gold_accuracy(answers, gold, skin_cut=5).set_index("rater").loc["ana"]
    expected = binomtest(matches, gold_images).proportion_ci(confidence_level=0.95, method="exact")
    assert (ana["gender"], ana["gender_pairs"]) == (pytest.approx(matches / gold_images), gold_images)
    assert (ana["gender_low"], ana["gender_high"]) == pytest.approx((expected.low, expected.high), abs=1e-12)
    cell = match_table(gold_accuracy(answers, gold, skin_cut=5))["Gender presentation"].iloc[0]
    assert cell == (f"{100 * matches / gold_images:.0f}% ({matches} of {gold_images}; "
                    f"{100 * expected.low:.1f}% – {100 * expected.high:.1f}%)")
    if (matches, gold_images) == (3, 3):
        assert cell == "100% (3 of 3; 29.2% – 100.0%)"


def test_self_consistency_compares_a_repeat_with_the_first_answer():
    repeats = pd.DataFrame({"image_id": [0, 1, 2], "rater": ["ana", "ana", "ben"],
                            "person_present_first": [True, True, True], "gender_first": ["female", "male", "male"],
                            "mst_first": [3, 5, 2], "skin_binary_first": [None, None, None],
                            "person_present_repeat": [True, True, False], "gender_repeat": ["female", "female", None],
                            "mst_repeat": [3, 6, None], "skin_binary_repeat": [None, None, None]})
    table = self_consistency(repeats, skin_cut=5).set_index("rater")
    # ana: gender 1/2; MST exact 1/2, within one 2/2; lighter/darker 1/2 (5 | 6 straddles the cut)
    assert table.loc["ana", ["repeats", *MATCH_FIELDS]].tolist() == [2, 1.0, 0.5, 0.5, 1.0, 0.5]
    ben = table.loc["ben"]
    assert ben["repeats"] == 1 and ben["person"] == 0.0 and np.isnan(ben["gender"]) and np.isnan(ben["mst_exact"])


def test_rater_groups_on_disjoint_images_compare_shares_with_newcombes_interval():
    annotations = three_raters(80)
    annotations = annotations.assign(image_id=annotations["image_id"] + np.where(annotations["rater"] == "ana", 0, 1000))
    groups = {"ana": {"region": "A"}, "ben": {"region": "B"}, "cai": {"region": "B"}}
    compared = group_comparison(annotations, groups, "region", method="wilson", min_raters=1)
    assert compared.reference == "A" and set(compared.estimates) == {"A", "B"}
    row = compared.differences.set_index(["family", "group"]).loc[("gender", "female")]
    a, b = compared.estimates["A"].row("gender", "female"), compared.estimates["B"].row("gender", "female")
    # statsmodels' Newcombe interval at the effective counts (two raters: Korn–Graubard's n_eff)
    low, high = confint_proportions_2indep(b["share"] * b["n_eff"], b["n_eff"], a["share"] * a["n_eff"], a["n_eff"],
                                           method="newcomb", compare="diff")
    assert (row["low"], row["high"]) == (pytest.approx(low), pytest.approx(high))
    assert row["method"] == UNPAIRED and row["shared_images"] == 0
    unnamed = group_comparison(annotations, {"ana": {"region": "A"}}, "region", min_raters=1)
    assert set(unnamed.estimates) == {"A", NOT_GIVEN}
    with pytest.raises(ValueError, match="only one group of raters"):
        group_comparison(annotations, {rater: {"region": "A"} for rater in ("ana", "ben", "cai")}, "region",
                         min_raters=1)
    with pytest.raises(ValueError, match="`labels` must be 'soft' but is 'majority'"):
        group_comparison(annotations, groups, "region", labels="majority", min_raters=1)


def test_the_per_image_labels_are_those_the_estimate_counts():
    annotations = three_raters(80)
    for include_unclear in (True, False):
        for raters in (["ana"], ["ben", "cai"], ["ana", "ben", "cai"]):
            chosen = annotations[annotations["rater"].isin(raters)]
            result = estimate(chosen, include_unclear=include_unclear)
            for family, labels in labels_by_image(chosen, include_unclear=include_unclear).items():
                shares = result.family(family)
                assert labels.mean().to_numpy() == pytest.approx(shares["share"].to_numpy(), abs=1e-12)
                assert len(labels) == shares["n"].iloc[0]


def test_the_paired_bootstrap_resamples_shared_images_together():
    """Checked by hand: a bootstrap over images of the per-image difference when every image is
    shared, the same seed; with images only one group rated, the rest stands on its own."""
    annotations = three_raters(80)
    no_person = annotations.loc[~annotations["person_present"].astype(bool), "image_id"]
    annotations = annotations[~annotations["image_id"].isin(no_person)]  # every image counted by both groups
    groups = {"ana": {"region": "A"}, "ben": {"region": "B"}, "cai": {"region": "B"}}
    compared = group_comparison(annotations, groups, "region", bootstrap_rng_seed=5, min_raters=1)
    rows = compared.differences.set_index(["family", "group"])
    assert set(rows["method"]) == {PAIRED}
    first = labels_by_image(annotations[annotations["rater"] != "ana"])["gender"]
    second = labels_by_image(annotations[annotations["rater"] == "ana"])["gender"]
    assert rows.loc[("gender", "female"), "shared_images"] == len(first) == len(second)
    per_image = (first - second.loc[first.index])["female"].to_numpy()
    assert rows.loc[("gender", "female"), "difference"] == pytest.approx(per_image.mean(), abs=1e-12)
    rng = np.random.default_rng(7)
    by_hand = [per_image[rng.integers(0, len(per_image), len(per_image))].mean() for _ in range(4000)]
    low, high = np.quantile(by_hand, [0.025, 0.975])
    assert (rows.loc[("gender", "female"), "low"], rows.loc[("gender", "female"), "high"]) == (
        pytest.approx(low, abs=0.01), pytest.approx(high, abs=0.01))
    mixed = annotations[~((annotations["rater"] == "ana") & (annotations["image_id"] >= 60))]
    mixed = pd.concat([mixed, annotations[(annotations["rater"] == "ana") & (annotations["image_id"] >= 60)]
                       .assign(image_id=lambda frame: frame["image_id"] + 1000)])
    partly = group_comparison(mixed, groups, "region", min_raters=1).differences.set_index(["family", "group"])
    shared = len(set(annotations.loc[annotations["image_id"] < 60, "image_id"]))
    assert set(partly["method"]) == {MIXED} and partly.loc[("gender", "female"), "shared_images"] == shared
    assert partly.loc[("gender", "female"), "difference"] == pytest.approx(
        compared.estimates["B"].share("gender", "female")
        - estimate(mixed[mixed["rater"] == "ana"]).share("gender", "female"), abs=1e-12)


def simulated_groups(seed: int, miss_first: float, miss_second: float, images: int = 200,
                     darker: float = 0.3) -> pd.DataFrame:
    """Two raters, one per group, over the same ``images``; each sees a darker image as lighter
    with their own chance (``miss_first`` for group A's, ``miss_second`` for group B's)."""
    rng = np.random.default_rng(seed)
    truth = rng.random(images) < darker
    frames = []
    for rater, miss in (("ana", miss_first), ("ben", miss_second)):
        seen = truth & (rng.random(images) >= miss)
        frames.append(pd.DataFrame({"image_id": np.arange(images), "rater": rater, "person_present": True,
                                    "gender": "female", "mst": np.where(seen, 8.0, 3.0), "skin_binary": None}))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.slow  # over 5 s: 300 simulated studies each
@pytest.mark.parametrize(("miss_second", "difference"), [(0.25, -0.25 * 0.3), (0.10, 0.0)])
def test_rater_groups_on_the_same_images_are_compared_pair_by_pair(miss_second, difference):
    """Issue 22: one group misses 25% of darker images (200 images, 300 simulated studies). Newcombe's
    interval, which treats the groups as independent samples, almost never sees it; the paired
    bootstrap covers the true difference about 95% of the time and sees it nearly always. With no
    real difference (both miss 10%, independently) it still covers at least 93%."""
    groups = {"ana": {"region": "A"}, "ben": {"region": "B"}}
    covered, separated, newcombe_separated = [], [], []
    for seed in range(300):
        compared = group_comparison(simulated_groups(seed, 0.10 if difference == 0 else 0.0, miss_second),
                                    groups, "region", min_raters=1)
        row = compared.differences.set_index(["family", "group"]).loc[("skin_tone", "darker")]
        assert row["method"] == PAIRED
        covered.append(row["low"] <= difference <= row["high"])
        separated.append(bool(row["excludes_zero"]))
        independent = compare_tables(compared.estimates["B"].table, compared.estimates["A"].table)
        newcombe = independent.set_index(["family", "group"]).loc[("skin_tone", "darker")]
        newcombe_separated.append(newcombe["low"] > 0 or newcombe["high"] < 0)
    if difference == 0:
        assert np.mean(covered) >= 0.93
    else:
        assert np.mean(covered) == pytest.approx(0.95, abs=0.035)
        assert np.mean(separated) >= 0.9
        assert np.mean(newcombe_separated) < 0.5, "the independent interval misses most of them"


def raters_over_the_same_images(raters: list[str], images: int = 40, seed: int = 3) -> pd.DataFrame:
    """Each of ``raters`` answers the same ``images``: a shared truth, each rater changing a few answers."""
    rng = np.random.default_rng(seed)
    gender = rng.choice(["female", "male"], images)
    mst = rng.integers(1, 9, images)
    return pd.concat([pd.DataFrame({"image_id": np.arange(images), "rater": rater, "person_present": True,
                                    "gender": np.where(rng.random(images) < 0.2, "unclear", gender),
                                    "mst": np.clip(mst + rng.integers(-1, 2, images), 1, 8).astype(float),
                                    "skin_binary": None}) for rater in raters], ignore_index=True)


# north: five raters; south: three; Atlantis: one; two gave no answer. South, Atlantis and the two
# without an answer (six raters) are pooled as "other".
REGIONS = {**{f"n{i}": "north" for i in range(5)}, **{f"s{i}": "south" for i in range(3)}, "solo": "Atlantis"}
RATERS = [*REGIONS, "quiet1", "quiet2"]


def test_rater_groups_of_fewer_than_five_raters_are_pooled_as_other():
    annotations = raters_over_the_same_images(RATERS)
    groups = {rater: {"region": region} for rater, region in REGIONS.items()}
    column = rater_group_column(annotations, groups, "region")
    by_rater = dict(zip(annotations["rater"], column))
    assert MIN_GROUP_RATERS == 5
    assert by_rater == {**{f"n{i}": "north" for i in range(5)},
                        **dict.fromkeys(["s0", "s1", "s2", "solo", "quiet1", "quiet2"], OTHER_GROUP)}
    compared = group_comparison(annotations, groups, "region", bootstrap_rng_seed=1)
    assert set(compared.estimates) == {"north", OTHER_GROUP} and set(compared.differences["run"]) == {OTHER_GROUP}
    pooled = annotations[~annotations["rater"].str.startswith("n")]
    assert compared.estimates[OTHER_GROUP].share("gender", "female") == pytest.approx(
        estimate(pooled).share("gender", "female"), abs=1e-12), "other: the pooled raters' annotations"
    # without the two who gave no answer: "other" (four raters) is too small to be shown as well
    fewer = annotations[~annotations["rater"].str.startswith("quiet")]
    assert set(rater_group_column(fewer, groups, "region").dropna()) == {"north"}
    with pytest.raises(ValueError, match=r"has only one group of raters \(north\)"):
        group_comparison(fewer, groups, "region")
    with pytest.raises(ValueError, match="has no group of 5 or more raters"):
        group_comparison(annotations[annotations["rater"].isin(["s0", "s1", "solo"])], groups, "region")
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError) as refused:
            rater_group_column(annotations, groups, "region", min_raters=bad)
        assert str(refused.value) == MIN_RATERS_TEXT.format(value=bad)


@pytest.mark.parametrize(("solo_raters", "said"), [
    (RATERS, "north other"),  # the shown groups, then the table
    ([*RATERS[:5], "solo"], "only one group of raters (north)"),  # "other" would be the one rater: not shown
    (["solo", "n0"], "has no group of 5 or more raters"),
])
def test_a_group_of_one_rater_never_appears_by_name(solo_raters, said):
    """Whatever the other groups, the answer only one rater gave is never shown: not as a group, not
    in an error, not in the CLI."""
    from sdaudit.present.team_tables import rater_groups_view

    with Store() as store:
        store.add_run(make_run())
        store.add_images(make_images(seeds=range(40)))
        rows = raters_over_the_same_images(solo_raters)
        rows["image_id"] += 1
        rows["confidence"] = "high"
        store.save_annotations(rows)
        team = Team(store)
        team.set_settings("default", TeamSettings(rater_fields=("region",)))
        for rater in solo_raters:
            if rater in REGIONS:
                team.save_profile("default", rater, {"region": REGIONS[rater]}, consented=True)
        try:
            view = rater_groups_view(store, "default", "region")
        except ValueError as error:
            shown = str(error)
        else:
            shown = " ".join([*view.raters, view.reference, view.differences.to_string(), view.agreement.to_string()])
    assert said in shown and "Atlantis" not in shown


def test_the_rater_groups_table_names_the_interval_method_of_each_row():
    from sdaudit.present.team_tables import METHOD_HEADER, rater_groups_view

    with Store() as store:
        store.add_run(make_run())
        store.add_images(make_images())
        team = Team(store)
        team.set_settings("default", TeamSettings(rater_fields=("region",)))
        for number in range(2 * MIN_GROUP_RATERS):  # two groups just large enough to be shown
            rater, region, genders = f"r{number}", "AB"[number % 2], ("ffmm", "fmmm")[number % 2]
            for image_id, gender in zip(range(1, 5), genders):
                store.save_annotation(image_id, rater, Annotation(True, {"f": "female", "m": "male"}[gender], 3))
            team.save_profile("default", rater, {"region": region}, consented=True)
        view = rater_groups_view(store, "default", "region", with_agreement=False)
    assert set(view.differences[METHOD_HEADER]) == {f"{PAIRED} (4 shared)"}
    assert set(view.raw["method"]) == {PAIRED}
    rows = view.raw.set_index(["family", "group"])
    # both groups put all four images on the lighter side: no zero-width interval claims they always will
    assert rows.loc[("skin_tone", "lighter"), "difference"] == 0
    assert np.isnan(rows.loc[("skin_tone", "lighter"), ["low", "high"]].to_numpy(float)).all()
    assert not rows.loc[("skin_tone", "lighter"), "excludes_zero"]
    assert rows.loc[("gender", "female"), "high"] > rows.loc[("gender", "female"), "low"]


def test_rater_profiles_are_kept_apart_and_only_with_consent():
    with Store() as store:
        store.ensure_study("default")
        team = Team(store)
        team.set_settings("default", TeamSettings(rater_fields=("region", "expertise")))
        assert not team.profile_asked("default", "ana")
        team.save_profile("default", "ana", {"region": " A ", "expertise": ""}, consented=True)
        team.save_profile("default", "ben", {"region": "B"}, consented=False)
        assert team.profile_asked("default", "ben")
        assert team.rater_groups("default") == {"ana": {"region": "A"}}, "ben declined: nothing of his is kept"
        with pytest.raises(ValueError, match="asks no rater-group field 'age'"):
            team.save_profile("default", "cai", {"age": "40"}, consented=True)
        with pytest.raises(ValueError) as caught:
            team.set_settings("default", TeamSettings(rater_fields=("region", "region")))
        assert str(caught.value) == FIELDS_TEXT.format(most=8, length=40, value=("region", "region"))
        assert store.count("annotations") == 0 and store.count("rater_profiles") == 2


def test_estimate_cli_says_and_uses_adjudicated_labels(tmp_path):
    home = tmp_path / "home"
    with Store.open(home) as store:
        store.add_run(make_run())
        store.add_images(make_images())
        store.save_annotation(1, "ana", Annotation(True, "female", 3))
        store.save_annotation(1, "ben", Annotation(True, "male", 3))
        store.save_annotation(2, "ana", Annotation(True, "male", 8))
        Team(store).adjudicate("default", 1, Annotation(True, "female", 3), note="long hair, dress", by="admin")
    result = run_cli("estimate", "--study", "default", "--labels", "adjudicated", "--json", "--home", str(home),
                     check=True)
    table = pd.DataFrame(json.loads(result.stdout))
    assert set(table["labels"]) == {"adjudicated"}
    assert table.set_index(["family", "group"]).loc[("gender", "female"), "count"] == 1  # soft would give 0.5
    text = run_cli("estimate", "--study", "default", "--labels", "adjudicated", "--home", str(home), check=True)
    assert "adjudicated labels where an admin recorded one, soft labels elsewhere" in text.stdout
    report = tmp_path / "report.html"
    run_cli("report", "--study", "default", "--labels", "adjudicated", "--out", str(report), "--home", str(home),
            check=True)
    assert "Labels: adjudicated labels where an admin recorded one, soft labels elsewhere." in report.read_text()
