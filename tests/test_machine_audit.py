"""The machine audited (issue 25, item 4): κ against a published worked example and sklearn, accuracy
against scipy's exact interval, Newcombe against sdaudit's own Wilson-based construction, people's
majority rule, the side-by-side shares against direct counts and ``ppi_table`` on arrays built here,
on a real store; the CLI's JSON and one-line errors; the Automatic labels page in AppTest; the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import assert_one_error_line, make_images, make_run, open_page, run_cli
from scipy import stats

from sdaudit.analysis.machine_audit import (
    DRAW_SAMPLE,
    LABEL_SAMPLE,
    MIN_IMAGES,
    NO_LABELS,
    audit,
    cohens_kappa,
    confusion_matrix,
    machine_inputs,
    people_labels,
    verdict_side,
)
from sdaudit.analysis.machine_human import machine_human_estimate
from sdaudit.scheme import Annotation
from sdaudit.store import Store
from sdaudit.store.machine import MachineAnswer, MachineTables

IMAGES, SAMPLE = 600, 120
NO_PERSON = 10  # the machine sees no person in the first images


def kappa_by_definition(table: np.ndarray) -> float:
    """Cohen (1960): (p_o − p_e) / (1 − p_e), p_e from the two raters' margins."""
    table = table / table.sum()
    chance = float(table.sum(axis=1) @ table.sum(axis=0))
    return (float(np.trace(table)) - chance) / (1 - chance)


def test_kappa_and_its_interval_match_a_published_worked_example():
    # Fleiss and Paik (2003) via Bonett's statpsych ``ci.kappa(.05, 31, 12, 4, 58)``, whose reference
    # page prints: Cohen kappa 0.6756757, SE 0.07344761, 95% interval 0.5317210 to 0.8196303.
    kappa, low, high = cohens_kappa(np.array([[31, 12], [4, 58]]), confidence=0.95)
    assert kappa == pytest.approx(0.6756757, abs=1e-7)
    assert (low, high) == (pytest.approx(0.5317210, abs=1e-7), pytest.approx(0.8196303, abs=1e-7))
    # the textbook 2 × 2 (50 applications, 20 + 15 agreements): p_o = 0.7, p_e = 0.5, κ = 0.4
    assert cohens_kappa(np.array([[20, 5], [10, 15]]))[0] == pytest.approx(0.4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kappa_agrees_with_sklearn_and_its_definition_weighted_or_not(seed):
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(seed)
    people = rng.integers(1, 11, 200)
    machine = np.clip(people + rng.integers(-2, 3, 200), 1, 10)
    table = confusion_matrix(people, machine, range(1, 11))
    assert table.sum() == 200 and np.trace(table) == int((people == machine).sum())
    assert cohens_kappa(table)[0] == pytest.approx(cohen_kappa_score(people, machine))
    assert cohens_kappa(table)[0] == pytest.approx(kappa_by_definition(table))
    weighted = cohen_kappa_score(people, machine, weights="linear", labels=list(range(1, 11)))
    assert cohens_kappa(table, weighted=True)[0] == pytest.approx(weighted)


def test_kappa_is_undefined_where_one_side_gives_one_answer_and_has_no_point_interval():
    assert np.isnan(cohens_kappa(np.array([[30, 5], [0, 0]]))).all()
    kappa, low, high = cohens_kappa(np.array([[30, 0], [0, 20]]))
    assert kappa == 1 and np.isnan(low) and np.isnan(high), "a zero SE gives no interval, not a point"


@pytest.mark.parametrize(("low", "high", "side"), [(0.1, 0.4, "below"), (0.4, 0.6, "includes"), (0.6, 0.7, "above"),
                                                   (np.nan, np.nan, None)])
def test_a_verdict_is_where_the_interval_lies_against_the_target(low, high, side):
    assert verdict_side(low, high, 0.5) == side


def test_peoples_label_is_the_majority_a_tie_in_gender_is_unclear_and_a_tie_in_mst_left_out():
    rows = pd.DataFrame({
        "image_id": [1, 1, 1, 2, 2, 3, 3, 4],
        "rater": ["a", "b", "c", "a", "b", "a", "b", "a"],
        "person_present": [True, True, False, True, True, True, False, True],
        "gender": ["female", "female", None, "female", "male", "male", None, None],
        "mst": [2, 2, None, 3, 8, 7, None, None],
        "skin_binary": [None, None, None, None, None, None, None, "darker"],
    })
    people = people_labels(rows, skin_cut=5)
    assert list(people.index) == [1, 2, 3, 4]
    assert list(people["person"]) == [True, True, True, True], "a 1–1 split is a person (the labelling rule)"
    assert list(people["gender"]) == [1, 3, 2, 0], "image 2's 1–1 tie reads unclear; image 4 has no answer"
    assert list(people["skin"]) == [1, 3, 2, 2], "image 2: one lighter, one darker; image 4: its binary answer"
    assert people["mst"].tolist()[:3] == [2, pytest.approx(np.nan, nan_ok=True), 7]


def study(store, *, darker_error=0.3, lighter_error=0.05, seed=1, sample=SAMPLE, label_sample=True):
    """``IMAGES`` generated images with a person each (truth: gender, MST); the machine's answers, wrong
    about gender with ``darker_error`` on MST 6–10 and ``lighter_error`` on 1–5, off by up to one MST,
    and blind to the person in the first ``NO_PERSON``; a drawn human sample, labelled by one rater as
    the truth is."""
    rng = np.random.default_rng(seed)
    store.add_run(make_run("run-a"))
    store.add_images(make_images("run-a", range(IMAGES)))
    ids = store.images()["image_id"].to_numpy()
    gender = rng.choice(["female", "male"], IMAGES, p=[0.3, 0.7])
    mst = rng.integers(1, 11, IMAGES)
    wrong = rng.random(IMAGES) < np.where(mst > 5, darker_error, lighter_error)
    machine_gender = np.where(wrong, np.where(gender == "female", "male", "female"), gender)
    machine_mst = np.clip(mst + rng.integers(-1, 2, IMAGES), 1, 10)
    seen = np.arange(IMAGES) >= NO_PERSON
    tables = MachineTables(store)
    labelling = tables.start_labelling("default", "clip", "tiny-clip", model_revision="r1")
    tables.save_machine_labels(labelling, [
        MachineAnswer(int(image), Annotation(True, str(g), int(m)) if person else Annotation(False))
        for image, g, m, person in zip(ids, machine_gender, machine_mst, seen, strict=True)])
    truth = pd.DataFrame({"image_id": ids, "gender": gender, "mst": mst, "machine_gender": machine_gender,
                          "machine_mst": machine_mst, "seen": seen}).set_index("image_id")
    drawn = tables.draw_human_sample("default", sample, seed=3) if sample else None
    if drawn is not None and label_sample:
        rows = truth.loc[list(drawn.image_ids)].reset_index()
        store.save_annotations(pd.DataFrame({
            "image_id": rows["image_id"], "rater": "ana", "person_present": True, "gender": rows["gender"],
            "mst": rows["mst"], "skin_binary": None, "confidence": "high"}))
    return labelling, truth, drawn


@pytest.fixture
def audited():
    with Store(":memory:") as store:
        labelling, truth, drawn = study(store)
        yield (audit(machine_inputs(store, "default"), confidence=0.95), truth, drawn,
               machine_human_estimate(store, "default", confidence=0.95))


def test_accuracy_per_tone_is_the_direct_count_with_the_exact_interval(audited):
    result, truth, drawn, _ = audited
    labelled = truth.loc[list(drawn.image_ids)]
    assert (result.images_machine, result.images_compared, result.images_in_sample) == (IMAGES, SAMPLE, SAMPLE)
    rows = result.agreement.set_index(["field", "tone"])
    both_see = labelled[labelled["seen"]]
    for tone, members in (("all", both_see), ("darker", both_see[both_see["mst"] > 5]),
                          ("lighter", both_see[both_see["mst"] <= 5])):
        row = rows.loc[("gender", tone)]
        matches = int((members["gender"] == members["machine_gender"]).sum())
        assert (row["images"], row["matches"]) == (len(members), matches)
        expected = stats.binomtest(matches, len(members)).proportion_ci(0.95, method="exact")
        assert row["accuracy"] == pytest.approx(matches / len(members))
        assert (row["low"], row["high"]) == (pytest.approx(expected.low), pytest.approx(expected.high))
    person = rows.loc[("person", "all")]
    assert (person["images"], person["matches"]) == (SAMPLE, int(labelled["seen"].sum()))
    confusion = result.confusion[(result.confusion["field"] == "gender") & (result.confusion["tone"] == "all")]
    assert confusion["images"].sum() == len(both_see)


def test_a_tone_with_fewer_than_the_threshold_gives_no_number(audited):
    result, truth, drawn, _ = audited
    rows = result.agreement[result.agreement["field"] == "mst"]
    few, enough = rows[rows["images"] < MIN_IMAGES], rows[rows["images"] >= MIN_IMAGES]
    assert len(few) and len(enough), "the scenario has both kinds of cell"
    assert few["too_few"].all() and few[["accuracy", "low", "high", "kappa"]].isna().all().all()
    assert not enough["too_few"].any() and enough["accuracy"].notna().all()


def test_the_machines_extra_error_on_darker_skin_shows_with_newcombes_interval(audited):
    from sdaudit.analysis.estimate import wilson_interval

    result, truth, drawn, _ = audited
    row = result.differences.set_index(["field", "tone"]).loc[("gender", "darker")]
    labelled = truth.loc[list(drawn.image_ids)]
    labelled = labelled[labelled["seen"]]
    wrong = labelled["gender"] != labelled["machine_gender"]
    dark = labelled["mst"] > 5
    e1, n1, e2, n2 = int(wrong[dark].sum()), int(dark.sum()), int(wrong[~dark].sum()), int((~dark).sum())
    assert (row["errors"], row["images"], row["errors_versus"], row["images_versus"]) == (e1, n1, e2, n2)
    # Newcombe (1998) method 10 from the two Wilson intervals, written out (statsmodels computes the audit's)
    p1, p2, z = e1 / n1, e2 / n2, stats.norm.ppf(0.975)
    (l1, u1), (l2, u2) = wilson_interval(e1, n1, z), wilson_interval(e2, n2, z)
    assert row["low"] == pytest.approx(p1 - p2 - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2))
    assert row["high"] == pytest.approx(p1 - p2 + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))
    assert row["low"] > 0, "30% against 5% wrong on 120 images: the interval lies above zero"


def test_newcombes_published_example_through_the_audits_difference():
    from sdaudit.analysis.machine_audit import _difference

    # Newcombe (1998), Table II: 56/70 against 48/80 gives 0.0524 to 0.3339
    row = dict(zip(["field", "tone", "versus", "errors", "images", "errors_versus", "images_versus", "error",
                    "error_versus", "difference", "low", "high", "too_few"],
                   _difference("gender", "darker", (56, 70), "lighter", (48, 80), 0.95)))
    assert (round(row["low"], 4), round(row["high"], 4)) == (0.0524, 0.3339)


def test_the_side_by_side_shares_are_direct_counts_and_the_estimates_own_ppi(audited):
    """One population for all three readings (every image the machine labelled, "no person" a group of
    its own), and the prediction-powered reading is exactly ``estimate --labels machine+human``'s: the
    audit page and the Results page never show two numbers for one share."""
    result, truth, drawn, expected = audited
    side = result.side_by_side.set_index(["family", "group"])
    # automatic only: the machine's answers as if they were the truth, exact binomial interval, all images
    female = int(((truth["machine_gender"] == "female") & truth["seen"]).sum())
    row = side.loc[("gender", "female")]
    assert (row["auto_count"], row["auto_n"]) == (female, IMAGES)
    exact = stats.binomtest(female, IMAGES).proportion_ci(0.95, method="exact")
    assert (row["auto_low"], row["auto_high"]) == (pytest.approx(exact.low), pytest.approx(exact.high))
    assert side.loc[("gender", "no_person"), "auto_count"] == NO_PERSON
    # prediction-powered: the estimate's rows, number for number
    table = expected.table.set_index(["family", "group"])
    assert list(side.index) == list(table.index)
    for key in [("gender", "female"), ("skin_tone", "darker"), ("intersection", "darker_female")]:
        assert side.loc[key, "ppi_share"] == table.loc[key, "share"]
        assert (side.loc[key, "ppi_low"], side.loc[key, "ppi_high"]) == (table.loc[key, "low"], table.loc[key, "high"])
        assert side.loc[key, "ppi_normal_high"] == table.loc[key, "ppi_py_high"]
        assert side.loc[key, "ppi_n_human"] == SAMPLE
    # human only: people's labels of the whole sample (every sampled image has a person)
    sample = truth.loc[list(drawn.image_ids)]
    assert side.loc[("gender", "female"), "human_count"] == pytest.approx((sample["gender"] == "female").sum())
    assert side.loc[("gender", "female"), "human_n"] == SAMPLE
    for row in result.side_by_side.itertuples():
        assert row.auto_verdict == verdict_side(row.auto_low, row.auto_high, row.target)
        assert row.same_verdict == (None if row.auto_verdict is None or row.ppi_verdict is None
                                    else row.auto_verdict == row.ppi_verdict)


def test_without_machine_labels_or_overlap_the_audit_says_what_to_do_next():
    with Store(":memory:") as store:
        store.add_run(make_run("run-a"))
        store.add_images(make_images("run-a", range(4)))
        with pytest.raises(ValueError) as error:
            machine_inputs(store, "default")
        assert str(error.value) == NO_LABELS.format(study="default")
    with Store(":memory:") as store:
        study(store, sample=0)
        with pytest.raises(ValueError, match="draw a human sample") as error:
            audit(machine_inputs(store, "default"))
        assert DRAW_SAMPLE.format(study="default") in str(error.value)
    with Store(":memory:") as store:
        study(store, label_sample=False)
        with pytest.raises(ValueError) as error:
            audit(machine_inputs(store, "default"))
        assert LABEL_SAMPLE in str(error.value)


def test_people_labels_without_a_sample_give_agreement_but_no_side_by_side():
    with Store(":memory:") as store:
        study(store, sample=0)
        ids = store.images()["image_id"].to_numpy()[:40]
        store.save_annotations(pd.DataFrame({"image_id": ids, "rater": "ana", "person_present": True,
                                             "gender": "female", "mst": 3, "skin_binary": None, "confidence": "high"}))
        result = audit(machine_inputs(store, "default"))
    assert result.images_compared == 40 and result.images_in_sample == 0
    assert result.side_by_side is None and "has no human sample: draw one" in result.side_by_side_missing
    assert not result.agreement_on_sample and result.agreement_images == 40
    assert "not drawn at random, so the intervals describe these images only" in result.agreement_scope


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    with Store.open(home) as store:
        study(store)
    return home


def test_the_cli_json_holds_every_number_and_the_text_its_tables(home):
    result = run_cli("machine-audit", "--study", "default", "--json", "--home", str(home), check=True)
    document = json.loads(result.stdout)
    with Store(home / "sdaudit.duckdb", read_only=True) as store:
        expected = audit(machine_inputs(store, "default"))
    assert (document["images_machine"], document["images_compared"], document["min_images"]) == (IMAGES, SAMPLE, 30)
    assert document["labeller"] == "clip" and document["model_revision"] == "r1"
    assert len(document["agreement"]) == len(expected.agreement) and len(document["confusion"]) == len(expected.confusion)
    gender = next(row for row in document["agreement"] if (row["field"], row["tone"]) == ("gender", "darker"))
    assert gender["accuracy"] == pytest.approx(expected.agreement.set_index(["field", "tone"]).loc[("gender", "darker"),
                                                                                                   "accuracy"])
    few = next(row for row in document["agreement"] if row["too_few"])
    assert few["accuracy"] is None and few["images"] < 30
    rows = {(row["family"], row["group"]): row for row in document["side_by_side"]}
    assert set(rows[("gender", "female")]) >= {"auto_share", "ppi_share", "ppi_low", "human_share", "same_verdict"}

    text = run_cli("machine-audit", "--study", "default", "--home", str(home), check=True).stdout
    for heading in ("Agreement with people", "By people's skin tone", "The machine's error across tones",
                    "Confusion, Perceived gender presentation", "What each audit would publish"):
        assert heading in text


def test_the_cli_refuses_in_one_line(home, tmp_path):
    assert_one_error_line(run_cli("machine-audit", "--study", "nope", "--home", str(home)), contains="no study 'nope'")
    assert_one_error_line(run_cli("machine-audit", "--study", "default", "--labelling", "99", "--home", str(home)),
                          contains="no labelling with id 99")
    bare = tmp_path / "bare"
    with Store.open(bare) as store:
        store.add_run(make_run("run-a"))
        store.add_images(make_images("run-a", range(4)))
    assert_one_error_line(run_cli("machine-audit", "--study", "default", "--home", str(bare)),
                          contains="has no machine labels yet")


def test_the_page_shows_the_tables_chart_and_verdicts(app_home):
    with Store.open(app_home) as store:
        study(store)
    at = open_page("machine")
    assert not at.exception, at.exception
    assert [title.value for title in at.title] == ["Automatic labels"]
    tables = {tuple(frame.value.columns)[:3]: frame.value for frame in at.dataframe}
    agreement = next(frame for key, frame in tables.items() if key == ("Field", "People's tone", "Images"))
    assert set(agreement["Field"]) == {"Person present", "Perceived gender presentation",
                                       "Skin tone, lighter / darker", "Monk Skin Tone (1–10, ordinal)"}
    side = next(frame for key, frame in tables.items() if key == ("Family", "Group", "Parity"))
    assert "Same verdict as prediction-powered" in side.columns and len(side) == 14
    assert "no person" in set(side["Group"]) and "no_person" not in set(side["Group"]), "the estimate's words"  # 3 families × their groups, `unclear` and "no person"
    spec = at.get("vega_lite_chart")[0].proto.spec
    assert "Machine's error rate" in spec
    assert any("verdict" in element.value for element in [*at.warning, *at.success])


def test_the_pages_empty_states_say_what_to_do_next(app_home):
    with Store.open(app_home) as store:
        store.add_run(make_run("run-a"))
        store.add_images(make_images("run-a", range(4)))
    at = open_page("machine")
    assert "has no machine labels yet" in at.info[0].value and "Runs page" in at.info[0].value
    with Store.open(app_home) as store:
        labelling = MachineTables(store).start_labelling("default", "clip", "tiny")
        ids = store.images()["image_id"].tolist()
        MachineTables(store).save_machine_labels(labelling, [MachineAnswer(i, Annotation(True, "male", 2)) for i in ids])
    at = open_page("machine")
    assert "draw a human sample on the Team page" in at.info[0].value and not at.dataframe


def test_a_rater_on_a_locked_server_sees_no_machine_answers(locked):
    with Store.open(locked) as store:
        study(store)
    at = open_page("machine", rater="ana")
    assert not at.dataframe and not at.get("vega_lite_chart")
    assert any("admins only" in caption.value for caption in at.caption)


def test_the_report_has_its_section_only_where_the_study_has_machine_labels():
    from sdaudit.analysis.estimate import estimate
    from sdaudit.present.report import audit_card, render_report

    with Store(":memory:") as store:
        study(store)
        html = render_report(estimate(store.annotations(study="default")), audit_card(store, "default"))
        for_raters = render_report(estimate(store.annotations(study="default")),
                                   audit_card(store, "default", machine=False))
        store.add_run(make_run("run-o", study="other"))
        store.add_images(make_images("run-o", range(4)))
        other = render_report(estimate(store.annotations(study="other")), audit_card(store, "other"))
    assert "Automatic labels, audited" in html and "What each audit would publish" in html and "<svg" in html
    assert "Automatic labels, audited" not in other and "Automatic labels, audited" not in for_raters


def test_a_skin_only_labeller_that_never_answers_person_is_audited_on_skin_tone_alone():
    with Store(":memory:") as store:
        labelling, truth, drawn = study(store)
        tables = MachineTables(store)
        skin = tables.start_labelling("default", "skin-pixels", "opencv haar")
        tables.save_machine_labels(skin, [MachineAnswer(int(image), Annotation(mst=int(row.machine_mst)))
                                          for image, row in truth.iterrows()])
        result = audit(machine_inputs(store, "default"))  # the newest labelling with answers
    assert result.labelling.labeller == "skin-pixels"
    rows = result.agreement.set_index(["field", "tone"])
    assert rows.loc[("gender", "all"), "images"] == 0 and rows.loc[("person", "all"), "images"] == 0
    assert rows.loc[("mst", "all"), "images"] == SAMPLE, "every sampled image: the labeller never said 'no person'"
    assert "skin_tone" in set(result.side_by_side["family"])
    darker = result.side_by_side.set_index(["family", "group"]).loc[("skin_tone", "darker")]
    assert (darker["auto_count"], darker["auto_n"]) == ((truth["machine_mst"] > 5).sum(), IMAGES)


# -- the reviewer's findings (issue 25, fix25) -----------------------------------------------------

def test_agreement_is_on_the_random_sample_only_where_one_was_drawn():
    """People's labels of images outside the sample (chosen, not drawn) stay out of the agreement."""
    from sdaudit.analysis.machine_audit import ON_SAMPLE

    with Store(":memory:") as store:
        _, truth, drawn = study(store)
        seen = int(truth.loc[list(drawn.image_ids), "seen"].sum())  # sample images the machine saw a person in
        outside = [int(image) for image in truth.index if image not in set(drawn.image_ids)][:50]
        store.save_annotations(pd.DataFrame({"image_id": outside, "rater": "bo", "person_present": True,
                                             "gender": "female", "mst": 10, "skin_binary": None, "confidence": "high"}))
        result = audit(machine_inputs(store, "default"))
    rows = result.agreement.set_index(["field", "tone"])
    assert rows.loc[("gender", "all"), "images"] == seen
    assert result.images_compared == SAMPLE + 50 and result.agreement_images == SAMPLE and result.agreement_on_sample
    assert result.agreement_scope == ON_SAMPLE.format(images=SAMPLE)
    from sdaudit.present.machine_tables import audit_text

    assert f"the human sample's {SAMPLE} rated images" in audit_text(result)


def test_the_side_by_side_has_no_parity_where_people_saw_empty_images_and_names_its_labelling():
    from sdaudit.present.machine_tables import SIDE_READING, side_by_side_table

    with Store(":memory:") as store:
        labelling, _, drawn = study(store)
        empty = list(drawn.image_ids[:5])
        none = pd.DataFrame({"image_id": empty, "rater": "r2", "person_present": False, "gender": None, "mst": None,
                             "skin_binary": None, "confidence": "high"})
        store.save_annotations(pd.concat([none, none.assign(rater="r3")]))  # 2 of 3 raters: no person
        result = audit(machine_inputs(store, "default"))
    side = result.side_by_side
    assert side["target"].isna().all()
    assert side[["auto_verdict", "ppi_verdict", "human_verdict"]].isna().all(axis=None)
    assert set(side["labelling"]) == {f"clip #{labelling}"}
    named = side[side["group"].isin(["female", "male"])]
    assert all("on 5 of the 120 rated sample images a rater saw no person" in note for note in named["note"])
    assert "Labelling" in side_by_side_table(result) and "Note" in side_by_side_table(result)
    assert "over its images with a person" not in SIDE_READING


def test_the_default_labelling_is_the_newest_that_answers_something():
    with Store(":memory:") as store:
        labelling, truth, _ = study(store)
        tables = MachineTables(store)
        blind = tables.start_labelling("default", "skin-pixels", "haar")  # found no face anywhere
        tables.save_machine_labels(blind, [MachineAnswer(int(image), Annotation(skin_binary="unclear"))
                                           for image in truth.index])
        inputs = machine_inputs(store, "default")
    assert inputs.labelling.labelling_id == labelling


def test_groups_with_other_verdicts_are_listed_with_semicolons(audited):
    from dataclasses import replace

    from sdaudit.present.machine_tables import audit_text, different_verdicts, report_section

    result = audited[0]
    changed = replace(result, side_by_side=result.side_by_side.assign(same_verdict=False))
    names = different_verdicts(changed)
    assert any(", " in name for name in names), "an intersection's name holds a comma"
    assert "; ".join(names) in audit_text(changed) and "; ".join(names) in report_section(changed, "")["verdicts"]
