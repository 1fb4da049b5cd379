"""sdaudit.present.results: what the Results page shows, against direct calls of the statistics."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from helpers import TWO_RUNS, add_annotated_run

from sdaudit.analysis.estimate import estimate
from sdaudit.analysis.options import BOOTSTRAP_RNG_SEED, EstimateOptions
from sdaudit.present import words
from sdaudit.present.estimate_tables import display_table
from sdaudit.present.results import UNKNOWN_RUNS, results_view, run_choices
from sdaudit.scheme import DEGENERATE_NOTE, UNRELIABLE_NOTE
from sdaudit.store import Store


@pytest.fixture
def two_runs(tmp_path):
    """Study "two": run-a with 30 of 100 female-presenting, run-b with 50 of 100."""
    with Store.open(tmp_path) as store:
        for key, groups in TWO_RUNS.items():
            add_annotated_run(store, key, "two", groups)
        yield store


@pytest.mark.parametrize("method", ["jackknife", "wilson", "bootstrap"])
def test_the_view_holds_the_estimate_of_the_chosen_runs(two_runs, method):
    annotations = two_runs.annotations(study="two")
    direct = estimate(annotations[annotations["run_key"] == "run-a"], method=method, confidence=0.9, skin_cut=4,
                      include_unclear=False, bootstrap_rng_seed=0)
    options = EstimateOptions(method=method, confidence=0.9, skin_cut=4, include_unclear=False)
    view = results_view(two_runs, "two", options, runs=["run-a"])
    pd.testing.assert_frame_equal(view.estimate.table, direct.table)
    assert view.options == view.estimate.options == replace(options, bootstrap_rng_seed=BOOTSTRAP_RNG_SEED)
    assert view.estimate.share("gender", "female") == pytest.approx(0.3)
    assert (view.runs, view.annotated) == (("run-a",), 200)


def test_all_runs_by_default_and_the_labels_of_the_picker(two_runs):
    view = results_view(two_runs, "two")
    assert set(view.runs) == {"run-a", "run-b"}
    assert view.estimate.share("gender", "female") == pytest.approx(0.4)
    assert run_choices(two_runs, "two") == view.run_labels
    assert view.run_labels["run-a"].startswith("prompt run-a · ") and view.run_labels["run-a"].endswith("100 images")


def test_a_run_of_another_study_is_refused_by_name(two_runs):
    with pytest.raises(ValueError) as error:
        results_view(two_runs, "two", runs=["run-a", "elsewhere"])
    assert str(error.value) == UNKNOWN_RUNS.format(study="two", unknown="'elsewhere'")


def test_no_chosen_run_gives_no_estimate(two_runs):
    view = results_view(two_runs, "two", runs=[])
    assert view.estimate is None and view.annotated == 200


def test_two_runs_compare_as_the_statistics_do(two_runs):
    comparison = results_view(two_runs, "two").comparison()
    assert len(comparison.tables) == 2
    row = comparison.differences.set_index("Group").loc["female-presenting"]
    assert row["Run − reference"] in ("−20.0 points", "+20.0 points")


def test_group_images_count_members_and_missing_files(two_runs):
    view = results_view(two_runs, "two", runs=["run-a"])
    members = view.group_images("gender", "female")
    assert members.images == 30
    assert members.missing == 30 - len(members.files)


def test_the_display_table_names_notes_once(two_runs):
    annotations = two_runs.annotations(study="two")
    # 6 female- and 6 male-presenting, all MST 2: gender intervals rest on few images, skin tone on none
    few = pd.concat([annotations[annotations["gender"] == gender].head(6) for gender in ("female", "male")])
    table = display_table(estimate(few)).set_index("Group")
    assert table.loc["female-presenting", "Note"] == UNRELIABLE_NOTE
    assert table.loc["darker", "Note"] == DEGENERATE_NOTE


@pytest.mark.parametrize(("shown", "expected"), [
    (words.percent(80 / 221), "36.2%"), (words.percent(float("nan")), words.EMPTY), (words.percent(None), words.EMPTY),
    (words.percent(0.5, digits=0), "50%"), (words.points(-0.2), "−20.0 points"), (words.points(0.2, unit=""), "+20.0"),
    (words.interval(0.01, 0.058), "1.0% – 5.8%"), (words.interval(float("nan"), float("nan")), words.EMPTY),
    (words.interval(-0.3, -0.1, to=" to ", number=words.points), "−30.0 points to −10.0 points"),
    (words.count_of(14.0, 221), "14 of 221"), (words.count_of(2.5, 4), "2.5 of 4"),
    (words.count_of(8.20183, 12), "8.2 of 12"), (words.count_of(3.96, 12), "4 of 12"),
    (words.how_many(1, "annotated image"), "1 annotated image"), (words.how_many(0, "run"), "0 runs"),
    (words.count_of(2_000_000, 2_000_000), "2000000 of 2000000"), (words.level(0.95), "95%"),
])
def test_numbers_are_written_one_way(shown, expected):
    assert shown == expected


def test_a_missing_share_and_interval_read_as_the_one_empty_marker(two_runs):
    empty = estimate(two_runs.annotations(study="two").head(0))  # no image: every share is missing
    table = display_table(empty)
    assert set(table["Share"]) == set(table["Interval"]) == {words.EMPTY}


def test_a_raters_report_has_no_machine_audit_and_an_admins_has():
    """The Results page's report download passes ``machine=is_admin()``: a rater labelling the human
    sample blind must not download the machine's answers in aggregate."""
    from test_machine_audit import study

    from sdaudit.present.results import study_report

    with Store(":memory:") as store:
        study(store)
        view = results_view(store, "default", EstimateOptions(method="wilson"))
        assert "Automatic labels, audited" not in study_report(store, view)  # the default: no machine section
        assert "Automatic labels, audited" not in study_report(store, view, machine=False)
        assert "Automatic labels, audited" in study_report(store, view, machine=True)
    page = (Path(__file__).parent.parent / "pages" / "results.py").read_text()
    assert "study_report(store, view, machine=is_admin())" in page
