"""`estimate --labels machine+human` (issue 25, item 3) on a real store: machine answers written with
``MachineTables.save_machine_labels``, people's with ``save_annotations``, the JSON checked against a
from-scratch prediction-powered computation; only the human sample's labels enter it; its errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import assert_one_error_line, make_images, make_run, run_cli
from scipy import stats
from test_ppi import from_scratch, small_sample_from_scratch

from sdaudit.analysis.machine_human import (
    MACHINE_HUMAN,
    NO_PERSON,
    NO_TARGET_WHY,
    human_matrices,
    machine_human_estimate,
)
from sdaudit.config import store_path
from sdaudit.scheme import Annotation
from sdaudit.store import Store
from sdaudit.store.machine import MachineAnswer, MachineTables

IMAGES = {"run-a": 50, "run-b": 30}
SAMPLE = 30


def truth_of(rng, count):
    gender = rng.choice(["female", "male"], count, p=[0.35, 0.65])
    mst = rng.choice([2, 4, 7, 9], count)
    return gender, mst


@pytest.fixture
def home(tmp_path):
    return tmp_path, build_study(tmp_path)


def build_study(folder, *, sample=True) -> dict:
    """80 generated images in two runs; clip (#1) answers gender and skin, erring on a fifth of the
    images; skin-pixels (#2, newer) answers skin only; a 30-image human sample that one person labels
    truly, except 2 sample images left unrated; and 20 labels outside the sample, all female and
    dark, which must be ignored. Without ``sample``, the machine labels alone."""
    rng = np.random.default_rng(3)
    with Store(store_path(folder)) as store:
        for run_key, count in IMAGES.items():
            store.add_run(make_run(run_key, prompt=f"a photo of a {run_key}"))
            store.add_images(make_images(run_key, range(count)))
        ids = np.array(sorted(store.images(study="default")["image_id"]))
        gender, mst = truth_of(rng, len(ids))
        wrong = rng.random(len(ids)) < 0.2
        tables = MachineTables(store)
        clip = tables.start_labelling("default", "clip", "tiny-clip")
        tables.save_machine_labels(clip, [
            MachineAnswer(int(i), Annotation(person_present=True, gender=("male" if g == "female" else "female") if w else g,
                                             mst=int(11 - m if w else m)))
            for i, g, m, w in zip(ids, gender, mst, wrong)])
        pixels = tables.start_labelling("default", "skin-pixels", "haar")
        tables.save_machine_labels(pixels, [MachineAnswer(int(i), Annotation(person_present=True, mst=int(m)))
                                            for i, m in zip(ids, np.where(rng.random(len(ids)) < 0.1, 5, mst))])
        if not sample:
            return dict(ids=ids, clip=clip, pixels=pixels)
        sample = tables.draw_human_sample("default", SAMPLE, seed=11)
        in_sample = np.isin(ids, sample.image_ids)
        rated = ids[in_sample][2:]
        outside = ids[~in_sample][:20]
        people = pd.DataFrame({"image_id": np.r_[rated, outside], "rater": "r1", "person_present": True,
                               "gender": np.r_[gender[np.isin(ids, rated)], ["female"] * 20],
                               "mst": np.r_[mst[np.isin(ids, rated)], [9] * 20], "skin_binary": None,
                               "confidence": "high"})
        store.save_annotations(people)
    return dict(ids=ids, gender=gender, mst=mst, rated=rated, outside=outside, clip=clip, pixels=pixels)


def expected_row(machine, human, confidence=0.95):
    """The prediction-powered share from scratch (``test_ppi``'s formula and small-sample interval)."""
    labelled = ~np.isnan(human)
    y, f_labelled, f_unlabelled = human[labelled], machine[labelled], machine[~labelled]
    share, ppi_low, ppi_high, lam = from_scratch(y, f_labelled, f_unlabelled, confidence)
    low, high = small_sample_from_scratch(y, f_labelled, f_unlabelled, lam, share, confidence)
    count, n = y.sum(), len(y)
    alpha = 1 - confidence
    human_low = stats.beta.ppf(alpha / 2, count, n - count + 1) if count > 0 else 0.0
    human_high = stats.beta.ppf(1 - alpha / 2, count + 1, n - count) if count < n else 1.0
    return dict(share=share, low=low, high=high, ppi_py_low=ppi_low, ppi_py_high=ppi_high, human_low=human_low,
                human_high=human_high, n_machine=len(machine), n_human=n)


def cli_rows(home, *extra):
    result = run_cli("estimate", "--study", "default", "--labels", "machine+human", "--json", "--home", str(home),
                     *extra, check=True)
    return {(row["family"], row["group"]): row for row in json.loads(result.stdout)}


def test_the_cli_json_is_the_from_scratch_ppi_on_the_sample_only(home):
    home, known = home
    rows = cli_rows(home)
    ids, rated = known["ids"], np.isin(known["ids"], known["rated"])
    # the machine's answers as stored, read back to build the expected rows
    with Store(store_path(home)) as store:
        frame = MachineTables(store).machine_labels("default").set_index(["labelling_id", "image_id"])
    clip_gender = frame.loc[known["clip"]].loc[ids, "gender"].to_numpy()
    pixel_mst = frame.loc[known["pixels"]].loc[ids, "mst"].to_numpy()
    cases = {
        ("gender", "female"): (clip_gender == "female", known["gender"] == "female"),
        ("skin_tone", "darker"): (pixel_mst > 5, known["mst"] > 5),
        ("intersection", "darker_female"): ((pixel_mst > 5) & (clip_gender == "female"),
                                            (known["mst"] > 5) & (known["gender"] == "female")),
    }
    for key, (machine, truth) in cases.items():
        human = np.where(rated, truth.astype(float), np.nan)
        expected = expected_row(machine.astype(float), human)
        got = {name: rows[key][name] for name in expected}
        assert got == pytest.approx(expected, abs=1e-9), key
        assert rows[key]["n_human"] == SAMPLE - 2 and rows[key]["n_machine"] == 80 and rows[key]["sample_size"] == SAMPLE
        assert rows[key]["n_eff"] > 0 and rows[key]["low"] <= rows[key]["share"] <= rows[key]["high"]
        # people's labels outside the sample (all female, all darker) would move every one of these rows
        leaky = np.where(rated | np.isin(ids, known["outside"]),
                         np.where(np.isin(ids, known["outside"]), 1.0, truth.astype(float)), np.nan)
        assert expected_row(machine.astype(float), leaky)["share"] != pytest.approx(rows[key]["share"], abs=1e-6)
    assert rows["gender", "female"]["labelling"] == f"clip #{known['clip']}"
    assert rows["skin_tone", "darker"]["labelling"] == f"skin-pixels #{known['pixels']}"  # the most recent answering skin
    assert rows["intersection", "darker_female"]["labelling"] == f"clip #{known['clip']} + skin-pixels #{known['pixels']}"
    assert all(row["note"].startswith("fewer than 100") for row in rows.values())  # 28 labels: below the simulated grid
    assert ("gender", NO_PERSON) not in rows  # every image has a person on both sides


def test_labelling_names_the_source_for_the_fields_it_answers(home):
    home, known = home
    rows = cli_rows(home, "--labelling", str(known["clip"]))
    assert {row["labelling"] for row in rows.values()} == {f"clip #{known['clip']}"}


def test_the_text_names_runs_labellings_and_the_methods_limits(home):
    home, known = home
    text = run_cli("estimate", "--study", "default", "--labels", "machine+human", "--home", str(home), check=True).stdout
    assert "a photo of a run-a" in text and "a photo of a run-b" in text
    assert f"clip #{known['clip']} (tiny-clip)" in text and f"skin-pixels #{known['pixels']} (haar)" in text
    assert "28 images of the 30-image random human sample" in text
    assert "raters never saw the machine's answers" in text and "perceived presentation" in text


def test_people_labels_outside_the_sample_never_enter(home):
    """Moving a label outside the sample changes nothing; moving one inside does."""
    home, known = home
    with Store(store_path(home)) as store:
        before = machine_human_estimate(store, "default").table
        outside = pd.DataFrame({"image_id": known["outside"][:5], "rater": "r2", "person_present": False,
                                "gender": None, "mst": None, "skin_binary": None, "confidence": "high"})
        store.save_annotations(pd.concat([outside, outside.assign(rater="r3")]))  # 2 of 3 raters: no person
        pd.testing.assert_frame_equal(machine_human_estimate(store, "default").table, before)
        inside = outside.assign(image_id=known["rated"][:5])
        store.save_annotations(pd.concat([inside, inside.assign(rater="r3")]))  # 2 of 3 raters: no person
        after = machine_human_estimate(store, "default").table
    assert (after["group"] == NO_PERSON).sum() == 3, "a row per family for the images people saw no person in"
    assert not np.allclose(after.set_index(["family", "group"]).loc[before.set_index(["family", "group"]).index, "share"],
                           before["share"].to_numpy())


def test_several_raters_give_the_human_estimates_soft_labels():
    rows = pd.DataFrame({"image_id": [1, 1, 1, 2, 2, 3], "rater": ["a", "b", "c", "a", "b", "a"],
                         "person_present": [True, True, False, True, True, False],
                         "gender": ["female", "male", None, "male", "male", None],
                         "mst": [2, 8, None, 8, 9, None], "skin_binary": None, "confidence": "high"})
    ids, matrices = human_matrices(rows, 5)
    assert list(ids) == [1, 2, 3]
    assert matrices["gender"].tolist() == [[0.5, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]]
    assert matrices["intersection"][0].tolist() == [0.5, 0, 0, 0.5, 0, 0]  # lighter_female, darker_male
    _, majority = human_matrices(rows, 5, "majority")
    assert majority["gender"][0].tolist() == [0.5, 0.5, 0, 0]  # a tie split, as the human estimate's


def test_machine_answers_read_back_from_the_store_become_codes(tmp_path):
    """Unsaid person (a face not found) is a person with an unclear answer; "no person" is code 0;
    MST is cut at the skin cut; a stored lighter/darker is used as it is."""
    from sdaudit.analysis.machine_human import machine_codes

    with Store(store_path(tmp_path)) as store:
        store.add_run(make_run())
        store.add_images(make_images(seeds=range(4)))
        ids = sorted(int(i) for i in store.images(study="default")["image_id"])
        tables = MachineTables(store)
        labelling = tables.start_labelling("default", "skin-pixels", "haar")
        tables.save_machine_labels(labelling, [
            MachineAnswer(ids[0], Annotation(person_present=None, skin_binary="unclear")),
            MachineAnswer(ids[1], Annotation(person_present=False)),
            MachineAnswer(ids[2], Annotation(person_present=True, mst=8)),
            MachineAnswer(ids[3], Annotation(person_present=True, gender="female", skin_binary="lighter"))])
        frame = tables.machine_labels("default")
    assert machine_codes(frame, "skin", 5).to_dict() == dict(zip(ids, [3, 0, 2, 1]))
    assert machine_codes(frame, "skin", 8).to_dict()[ids[2]] == 1
    assert machine_codes(frame, "gender", 5).to_dict() == dict(zip(ids, [3, 0, 3, 1]))


@pytest.mark.parametrize(("setup", "extra", "message"), [
    ("no machine", (), "run `python -m sdaudit machine-label --study default"),
    ("no sample", (), "draw one with `python -m sdaudit team --study default --human-sample N`"),
    ("one rated", (), "has 1 of its 10 images labelled by people; prediction-powered shares need at least 2"),
    ("full", ("--labelling", "99"), "there is no labelling with id 99"),
    ("full", ("--method", "bootstrap"), "--method bootstrap does not apply to --labels machine+human"),
    ("full", ("--by", "run"), "--by run does not apply"),
])  # fmt: skip
def test_errors_are_one_line(tmp_path, setup, extra, message):
    with Store(store_path(tmp_path)) as store:
        store.add_run(make_run("run-a"))
        store.add_images(make_images("run-a", range(20)))
        ids = sorted(int(i) for i in store.images(study="default")["image_id"])
        tables = MachineTables(store)
        if setup != "no machine":
            labelling = tables.start_labelling("default", "clip", "tiny")
            tables.save_machine_labels(labelling, [MachineAnswer(i, Annotation(person_present=True, gender="male", mst=3))
                                                   for i in ids])
        if setup in ("one rated", "full"):
            sample = tables.draw_human_sample("default", 10, seed=1)
            chosen = sample.image_ids[:1 if setup == "one rated" else 10]
            store.save_annotations(pd.DataFrame({"image_id": chosen, "rater": "r1", "person_present": True,
                                                 "gender": "female", "mst": 3, "skin_binary": None, "confidence": "high"}))
    result = run_cli("estimate", "--study", "default", "--labels", "machine+human", "--home", str(tmp_path), *extra)
    assert_one_error_line(result, contains=message)


def test_labelling_without_machine_human_is_refused(tmp_path):
    with Store(store_path(tmp_path)) as store:
        store.add_run(make_run("run-a"))
    result = run_cli("estimate", "--study", "default", "--labelling", "1", "--home", str(tmp_path))
    assert_one_error_line(result, contains="--labelling applies only with --labels machine+human")


def results_page():
    from helpers import APP, PAGES, WAIT_LIMIT_S
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=WAIT_LIMIT_S).run()
    at.switch_page(str(PAGES / "results.py")).run()
    assert not at.exception, at.exception
    return at, next(box for box in at.selectbox if box.label == "Labels")


def test_the_results_page_has_no_machine_plus_human_without_a_human_sample(app_home):
    from sdaudit.present.estimate_tables import MACHINE_HUMAN_TITLE

    app_home.mkdir(parents=True)
    build_study(app_home, sample=False)
    _, labels = results_page()
    assert "Majority" in labels.options and MACHINE_HUMAN_TITLE.capitalize() not in labels.options


def test_the_results_page_shows_machine_plus_human_where_a_study_has_both(app_home):
    """Choosing it shows the chart, the table of the CLI's shares and the method's limits."""
    from sdaudit.present.estimate_tables import MACHINE_HUMAN_TITLE

    app_home.mkdir(parents=True)
    known = build_study(app_home)
    with Store(store_path(app_home)) as store:
        expected = machine_human_estimate(store, "default").table
    at, labels = results_page()
    assert MACHINE_HUMAN_TITLE.capitalize() in labels.options
    labels.select(MACHINE_HUMAN).run()
    assert not at.exception, at.exception
    assert len(at.get("vega_lite_chart")) == 1
    shown = at.dataframe[0].value
    assert list(shown["Share"]) == [f"{100 * value:.1f}%" for value in expected["share"]]
    assert any("raters never saw the machine's answers" in item.value for item in at.markdown)
    assert any(f"gender from clip \\#{known['clip']}" in item.value for item in at.caption)  # as plain() writes it


# -- the reviewer's findings (issue 25, fix25) -----------------------------------------------------

def study_with_empty_images(folder, *, people_see_empty=True) -> None:
    """60 images, a quarter without a person; the machine (clip) answers truly; a 30-image sample that
    one person labels truly (or, without ``people_see_empty``, as if every image had a person)."""
    rng = np.random.default_rng(5)
    with Store(store_path(folder)) as store:
        store.add_run(make_run("run-a"))
        store.add_images(make_images("run-a", range(60)))
        ids = np.array(sorted(store.images(study="default")["image_id"]))
        empty = np.arange(60) < 15
        gender, mst = truth_of(rng, 60)
        tables = MachineTables(store)
        clip = tables.start_labelling("default", "clip", "tiny-clip")
        tables.save_machine_labels(clip, [
            MachineAnswer(int(i), Annotation(person_present=False) if e else
                          Annotation(person_present=True, gender=str(g), mst=int(m)))
            for i, e, g, m in zip(ids, empty, gender, mst)])
        sample = tables.draw_human_sample("default", 30, seed=2)
        chosen = np.isin(ids, sample.image_ids)
        seen_empty = empty[chosen] & people_see_empty
        store.save_annotations(pd.DataFrame({
            "image_id": ids[chosen], "rater": "r1", "person_present": ~seen_empty,
            "gender": np.where(seen_empty, None, gender[chosen]), "mst": np.where(seen_empty, None, mst[chosen]),
            "skin_binary": None, "confidence": "high"}))


def test_shares_of_all_images_get_no_parity_target_where_people_saw_empty_images(tmp_path):
    """With a quarter of the images empty, lighter + darker is about 75%: parity (50%) is not their target,
    so no row has one and each says why; where people saw a person on every rated image, parity stays."""
    from sdaudit.present.results import ppi_chart_rows

    study_with_empty_images(tmp_path)
    with Store(store_path(tmp_path)) as store:
        result = machine_human_estimate(store, "default")
    table = result.table
    named = table[table["group"].isin(["female", "male", "lighter", "darker"])]
    assert named["share"].groupby(named["family"]).sum().lt(0.95).all(), "these shares are of all images"
    assert table["target"].isna().all()
    none, rated = result.no_person["gender"]
    assert none > 0 and rated == 30
    assert all(f"on {none} of the 30 rated sample images a rater saw no person" in note for note in named["note"])
    assert ppi_chart_rows(table)["target"].isna().all() and not ppi_chart_rows(table)["excludes_target"].any()
    text = run_cli("estimate", "--study", "default", "--labels", "machine+human", "--home", str(tmp_path),
                   check=True).stdout
    assert text.count(NO_TARGET_WHY) == 1 and "no target: " in text

    other = tmp_path / "people-see-a-person"
    other.mkdir()
    study_with_empty_images(other, people_see_empty=False)
    with Store(store_path(other)) as store:
        table = machine_human_estimate(store, "default").table
    rows = table.set_index(["family", "group"])
    assert rows.loc[("gender", "female"), "target"] == 0.5 and rows.loc[("intersection", "darker_male"), "target"] == 0.25
    assert np.isnan(rows.loc[("gender", NO_PERSON), "target"]) and np.isnan(rows.loc[("gender", "unclear"), "target"])


def test_images_generated_after_the_draw_are_left_out_and_counted(home):
    home, known = home
    with Store(store_path(home)) as store:
        store.add_run(make_run("run-c", prompt="a photo of a run-c"))
        store.add_images(make_images("run-c", range(40)))
        later = sorted(set(store.images(study="default")["image_id"]) - set(int(i) for i in known["ids"]))
        MachineTables(store).save_machine_labels(known["clip"], [
            MachineAnswer(int(i), Annotation(person_present=True, gender="female", mst=9)) for i in later])
        result = machine_human_estimate(store, "default")
    assert result.left_out_after_draw == 40 and (result.table["n_machine"] == 80).all()
    assert "run-c" not in result.run_keys
    rows = cli_rows(home)
    assert {row["left_out_after_draw"] for row in rows.values()} == {40}
    assert rows["gender", "female"]["n_machine"] == 80
    text = run_cli("estimate", "--study", "default", "--labels", "machine+human", "--home", str(home), check=True).stdout
    assert "40 machine-labelled images generated after the human sample was drawn are left out" in text


def test_a_labelling_whose_every_answer_is_unclear_answers_nothing(home):
    """A newer skin-pixels labelling that found no face anywhere does not displace the answering ones."""
    home, known = home
    with Store(store_path(home)) as store:
        tables = MachineTables(store)
        blind = tables.start_labelling("default", "skin-pixels", "haar-blind")
        tables.save_machine_labels(blind, [MachineAnswer(int(i), Annotation(skin_binary="unclear")) for i in known["ids"]])
        rows = machine_human_estimate(store, "default").table.set_index(["family", "group"])
        assert rows.loc[("skin_tone", "darker"), "labelling"] == f"skin-pixels #{known['pixels']}"
        with pytest.raises(ValueError, match=f"labelling {blind} .* has no answers"):
            machine_human_estimate(store, "default", labelling_id=blind)


def sampled_study(folder, answer: Annotation) -> int:
    """20 generated images the machine gave ``answer`` each, a 10-image human sample nobody rated; the
    labelling's id."""
    with Store(store_path(folder)) as store:
        store.add_run(make_run("run-a"))
        store.add_images(make_images("run-a", range(20)))
        ids = sorted(int(i) for i in store.images(study="default")["image_id"])
        tables = MachineTables(store)
        labelling = tables.start_labelling("default", "clip", "tiny")
        tables.save_machine_labels(labelling, [MachineAnswer(i, answer) for i in ids])
        tables.draw_human_sample("default", 10, seed=1)
    return labelling


def test_a_machine_that_saw_no_person_anywhere_says_so(tmp_path):
    labelling = sampled_study(tmp_path, Annotation(person_present=False))
    result = run_cli("estimate", "--study", "default", "--labels", "machine+human", "--home", str(tmp_path))
    assert_one_error_line(result, contains=f"labelling {labelling} (clip) saw no person on any of its 20 images, so "
                                           "it answered no gender presentation")
    assert "run `python -m sdaudit machine-label" not in result.stderr


def test_the_wording_and_a_bootstrap_seed_is_refused(home, tmp_path):
    home, _ = home
    result = run_cli("estimate", "--study", "default", "--labels", "machine+human", "--bootstrap-rng-seed", "3",
                     "--home", str(home))
    assert_one_error_line(result, contains="--bootstrap-rng-seed does not apply to --labels machine+human")
    text = run_cli("estimate", "--study", "default", "--labels", "machine+human", "--home", str(home), check=True).stdout
    # 28 people's labels: below the simulated range, so no effective sample size in the text (JSON keeps it)
    assert "Effective sample size" in text and cli_rows(home)["gender", "female"]["n_eff"] > 1
    from sdaudit.present.estimate_tables import machine_human_table

    with Store(store_path(home)) as store:
        shown = machine_human_table(machine_human_estimate(store, "default").table)
    assert set(shown["Effective sample size"]) == {"–"}


def test_too_few_rated_reads_plainly(tmp_path):
    sampled_study(tmp_path, Annotation(person_present=True, gender="male", mst=3))
    result = run_cli("estimate", "--study", "default", "--labels", "machine+human", "--home", str(tmp_path))
    assert_one_error_line(result, contains="the human sample of study 'default' has 0 of its 10 images labelled")


def test_the_results_page_says_what_was_left_out_and_draws_shares_without_a_target(app_home):
    app_home.mkdir(parents=True)
    study_with_empty_images(app_home)
    with Store(store_path(app_home)) as store:
        store.add_images(make_images("run-a", range(60, 70)))
        later = sorted(int(i) for i in store.images(study="default")["image_id"])[60:]
        tables = MachineTables(store)
        tables.save_machine_labels(tables.labellings("default")[0].labelling_id, [
            MachineAnswer(i, Annotation(person_present=True, gender="male", mst=2)) for i in later])
    at, labels = results_page()
    labels.select(MACHINE_HUMAN).run()
    assert not at.exception, at.exception
    assert len(at.get("vega_lite_chart")) == 1
    from app.widgets import plain
    from sdaudit.analysis.machine_human import AFTER_DRAW

    shown = [item.value for item in at.info]
    assert plain(AFTER_DRAW.format(images=10)) in shown and plain(NO_TARGET_WHY) in shown
    assert set(at.dataframe[0].value["Target (parity)"]) == {"no target"}


def test_a_one_one_split_on_a_person_withdraws_the_parity_target(home):
    """A 1–1 split over whether an image shows a person counts as a person in the shares (the labelling
    rule), but then people did not all see a person: parity among people is no longer the target."""
    home, known = home
    with Store(store_path(home)) as store:
        assert machine_human_estimate(store, "default").table["target"].notna().any()
        first = int(known["rated"][0])
        store.save_annotation(first, "r2", Annotation(person_present=False, confidence="high"))
        result = machine_human_estimate(store, "default")
    table = result.table
    assert table["target"].isna().all() and result.target_note
    assert (table["group"] == NO_PERSON).sum() == 0, "the split image still counts as a person in the shares"
    named = table[table["group"].isin(["female", "male"])]
    assert all("on 1 of the" in note and "a rater saw no person" in note for note in named["note"])


def test_sample_images_skipped_before_later_rated_ones_are_counted_and_said(home):
    """The rated images stand for the sample only if none was skipped for what it shows: unrated images
    before the last rated one in draw order are counted and said."""
    home, known = home
    with Store(store_path(home)) as store:
        sample = MachineTables(store).human_sample("default")
        rated = set(int(i) for i in known["rated"])
        last = max(place for place, image_id in enumerate(sample.image_ids, start=1) if image_id in rated)
        unrated = sum(image_id not in rated for image_id in sample.image_ids[:last])
        result = machine_human_estimate(store, "default")
    assert unrated > 0 and result.skipped == (unrated, last)
    assert f"{unrated} sample images before the last one rated (number {last} in draw order)" in result.skipped_note
    text = run_cli("estimate", "--study", "default", "--labels", "machine+human", "--home", str(home), check=True).stdout
    assert result.skipped_note in text


def test_a_rater_is_not_offered_machine_plus_human_on_results(locked):
    """Raters label the sample blind to the machine: as the Automatic labels page, the machine + human
    reading on Results is for admins where an admin password is set."""
    from sdaudit.present.estimate_tables import MACHINE_HUMAN_TITLE

    locked.mkdir(parents=True, exist_ok=True)
    build_study(locked)
    _, labels = results_page()
    assert "Majority" in labels.options and MACHINE_HUMAN_TITLE.capitalize() not in labels.options
