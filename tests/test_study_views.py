"""Views across a study's runs: each run against its own target, generated minus the reference
set with Newcombe's interval and its reading, image strips per prompt, and the report's sections.

The differences are checked against statsmodels' Newcombe interval (an independent
implementation); the readings against the rule written in sdaudit/present/study_views.py and docs/statistics.md.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from helpers import make_images, make_run, png, sheet

from sdaudit.analysis.options import EstimateOptions
from sdaudit.present.study_views import (
    REFERENCE_AWAY,
    difference_word,
    reference_runs,
)
from sdaudit.present.words import AMPLIFIED, DISTANCE_HEADER, NCHS_RULE, NO_CLEAR_DIFFERENCE, OTHER_SIDE, REDUCED
from sdaudit.records import RunRecord
from sdaudit.store import Store

STUDY = "occupations"
# (slot, model) -> (female-presenting images, images); every image MST 2 (lighter)
GENERATED = {("doctor", "model-a"): (5, 100), ("doctor", "model-b"): (33, 100),
             ("nurse", "model-a"): (90, 200), ("nurse", "model-b"): (70, 100),
             ("ceo", "model-a"): (10, 100), ("ceo", "model-b"): (30, 100)}
REFERENCE_COUNTS = (30, 100)
REFERENCE_SET = RunRecord.reference(run_key="photos", study=STUDY, name="labour photos", source="archive")
TARGETS_CSV = "slot,family,group,target,source\ndoctor,gender,female,0.46,ONS Labour Force Survey 2023\n"
# The readings the rule gives, worked by hand: reference 30%; doctor's target 46%, the others parity 50%.
READINGS = {("doctor", "model-a"): AMPLIFIED,  # 5% vs 30%: 41 points from 46%, the reference 16
            ("doctor", "model-b"): NO_CLEAR_DIFFERENCE,  # 33% vs 30%
            ("nurse", "model-a"): REDUCED,  # 45% is 5 points from parity, the reference 20
            ("nurse", "model-b"): OTHER_SIDE,  # 70% and 30%: both 20 points from parity, on either side
            ("ceo", "model-a"): AMPLIFIED, ("ceo", "model-b"): NO_CLEAR_DIFFERENCE}


def _add_run(store: Store, run, female: int, images: int, *, start_seed: int = 0) -> None:
    store.add_run(run)
    store.add_images(make_images(run.run_key, seeds=range(start_seed, start_seed + images)))
    rows = sheet({("female", 2): female, ("male", 2): images - female})
    rows["image_id"] = store.images(run_key=run.run_key)["image_id"].to_numpy()
    rows["confidence"] = "high"
    store.save_annotations(rows)


def build_study(home, *, with_reference: bool = True, with_targets: bool = True) -> dict[tuple[str, str], str]:
    """Study 'occupations': 3 prompts × 2 models (+ a reference set), annotated; (slot, model) -> run key."""
    from sdaudit.analysis.targets import import_targets

    keys = {}
    with Store.open(home) as store:
        for (slot, model), (female, images) in GENERATED.items():
            run = replace(make_run(f"{slot}-{model}", study=STUDY, prompt=f"a photo of a {slot}"), slot=slot, model=model)
            _add_run(store, run, female, images)
            keys[(slot, model)] = run.run_key
        if with_reference:
            _add_run(store, REFERENCE_SET, *REFERENCE_COUNTS)
            keys[("reference", REFERENCE_SET.model)] = REFERENCE_SET.run_key
        if with_targets:
            targets = home / "targets.csv"
            targets.write_text(TARGETS_CSV)
            import_targets(targets, store, study=STUDY)
    return keys


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    home = tmp_path_factory.mktemp("study") / "home"
    return home, build_study(home)


@pytest.fixture(scope="module")
def view(study):
    from sdaudit.present.results import results_view

    home, _ = study
    with Store.open(home) as store:
        return results_view(store, STUDY, EstimateOptions(method="wilson"))


@pytest.mark.parametrize(("low", "high", "distance_low", "distance_high", "word"), [
    (-0.30, -0.10, 0.10, 0.30, AMPLIFIED),
    (0.05, 0.25, -0.25, -0.05, REDUCED),
    (0.30, 0.50, -0.10, 0.10, OTHER_SIDE),  # a clear difference, but which share is further is not
    (-0.30, 0.01, 0.10, 0.30, NO_CLEAR_DIFFERENCE),  # never a word while the difference's interval includes zero
    (0.00, 0.25, -0.25, 0.00, NO_CLEAR_DIFFERENCE),  # a limit at zero includes it
    (0.30, 0.50, 0.00, 0.20, OTHER_SIDE),  # so does a distance limit at zero
])
def test_the_reading_of_a_difference_follows_the_written_rule(low, high, distance_low, distance_high, word):
    assert difference_word(low, high, distance_low, distance_high) == word


# (generated count, images, reference count, images, target) -> the reading; one rater per image
READING_CASES = [
    # the same side of the target: today's rule, the test of g − r alone decides
    ((10, 100, 30, 100, 0.50), AMPLIFIED),  # 10% and 30% below parity: further
    ((45, 100, 30, 100, 0.50), REDUCED),  # 45% is closer to 50% than 30%
    ((10, 100, 30, 100, 0.05), REDUCED),  # the target decides, not parity: both above 5%, 10% closer
    ((33, 100, 30, 100, 0.50), NO_CLEAR_DIFFERENCE),
    ((900, 1000, 600, 1000, 0.50), AMPLIFIED),  # both above: further
    # opposite sides: the difference of distances |g − t| − |r − t| = ±(g + r − 2t) decides
    ((720, 1000, 300, 1000, 0.50), OTHER_SIDE),  # the case: +0.02 ± 0.04, not amplified
    ((70, 100, 30, 100, 0.50), OTHER_SIDE),  # as far on either side
    ((950, 1000, 100, 1000, 0.50), AMPLIFIED),  # 45 points above against 40 below, ± 3: further
    ((550, 1000, 200, 1000, 0.50), REDUCED),  # 5 points above against 30 below: closer
    ((80, 100, 50, 100, 0.50), AMPLIFIED),  # the reference on the target: any clear distance is further
]


@pytest.mark.parametrize(("counts", "word"), READING_CASES)
def test_readings_on_either_side_of_the_target_follow_their_own_test(counts, word):
    from statsmodels.stats.proportion import confint_proportions_2indep

    from sdaudit.analysis.planning import distance_difference

    generated, generated_n, reference, reference_n, target = counts
    g, r = generated / generated_n, reference / reference_n
    low, high = confint_proportions_2indep(generated, generated_n, reference, reference_n, method="newcomb")
    distance, distance_low, distance_high = distance_difference(g, generated_n, r, reference_n, target)
    assert float(distance) == pytest.approx(abs(g - target) - abs(r - target))
    assert difference_word(low, high, distance_low, distance_high) == word


def test_the_distance_interval_matches_wilson_limits_and_covers_in_simulation():
    """The opposite-side interval of |g − t| − |r − t| = g + r − 2t: the MOVER sum (Zou & Donner 2008)
    of statsmodels' Wilson limits, and by simulation it covers the true difference of distances about
    95% of the time (2,000 studies at g = 0.7, r = 0.3, t = 0.5, 1,000 images each)."""
    import numpy as np
    from statsmodels.stats.proportion import proportion_confint

    from sdaudit.analysis.planning import distance_difference

    g, r = 0.72, 0.30
    l1, u1 = proportion_confint(720, 1000, method="wilson")
    l2, u2 = proportion_confint(300, 1000, method="wilson")
    expected = (g + r - 1 - np.hypot(g - l1, r - l2), g + r - 1 + np.hypot(u1 - g, u2 - r))
    _, low, high = distance_difference(g, 1000, r, 1000, 0.5)
    assert (float(low), float(high)) == pytest.approx(expected, abs=1e-12)
    assert float(low) < 0 < float(high) and float(high - low) / 2 == pytest.approx(0.04, abs=0.001)

    rng = np.random.default_rng(7)
    generated, reference = rng.binomial(1000, 0.7, 2000) / 1000, rng.binomial(1000, 0.3, 2000) / 1000
    _, low, high = distance_difference(generated, 1000, reference, 1000, 0.5)
    covered = np.mean((low <= 0) & (high >= 0))  # the true distances are equal: 0.2 each
    assert 0.935 <= covered <= 0.965


def test_opposite_sides_in_a_study_read_other_side_not_amplified(tmp_path):
    """Issue 22's case through the store: 72% of 1,000 generated against 30% of 1,000 real images,
    target parity: the difference is clear, which lies further from 50% is not."""
    from sdaudit.present.estimate_tables import reference_differences_table
    from sdaudit.present.results import results_view

    home = tmp_path / "home"
    with Store.open(home) as store:
        run = replace(make_run("wide", study=STUDY, prompt="a photo of a pilot"), slot="pilot")
        _add_run(store, run, 720, 1000)
        _add_run(store, REFERENCE_SET, 300, 1000, start_seed=5000)
        view = results_view(store, STUDY)
    female = view.reference_differences("gender", "female").iloc[0]
    assert bool(female["excludes_zero"]) and female["word"] == OTHER_SIDE
    assert female["distance"] == pytest.approx(0.02)
    assert female["distance_low"] < 0 < female["distance_high"]
    shown = reference_differences_table(view.reference_differences("gender", "female")).iloc[0]
    assert (shown["Reading"], shown[DISTANCE_HEADER]) == (OTHER_SIDE, "−2.0 points to +6.0 points")


def test_each_generated_run_is_paired_with_the_reference_set_named_for_its_prompt_or_the_only_one(study):
    home, keys = study
    with Store.open(home) as store:
        runs = store.runs(study=STUDY)
    only = reference_runs(runs)
    assert only == {key: keys[("reference", REFERENCE_SET.model)] for (slot, _), key in keys.items() if slot != "reference"}
    # a second set named for the slot "nurse" becomes the nurse runs' reference; the others then have none
    import pandas as pd

    named = pd.DataFrame([{"run_key": "nurse-photos", "model": REFERENCE_SET.model, "kind": "reference", "versions": '{"reference": "nurse"}',
                           "slot": None, "prompt": ""}])
    runs = pd.concat([runs, named], ignore_index=True)
    assert reference_runs(runs) == {keys[("nurse", "model-a")]: "nurse-photos", keys[("nurse", "model-b")]: "nurse-photos"}


def test_generated_minus_reference_matches_an_independent_newcombe_interval_and_reads_by_the_rule(study, view):
    from statsmodels.stats.proportion import confint_proportions_2indep

    _, keys = study
    rows = view.reference_differences()
    female = rows[(rows["family"] == "gender") & (rows["group"] == "female")].set_index("run_key")
    assert len(female) == 6 and set(rows["group"]) >= {"female", "male", "lighter"} and "unclear" not in set(rows["group"])
    for (slot, model), (count, images) in GENERATED.items():
        row = female.loc[keys[(slot, model)]]
        low, high = confint_proportions_2indep(count, images, *REFERENCE_COUNTS, method="newcomb", compare="diff")
        assert row["difference"] == pytest.approx(count / images - 0.30)
        assert (row["low"], row["high"]) == pytest.approx((low, high), abs=1e-9)
        assert row["word"] == READINGS[(slot, model)], (slot, model)
        assert row["target"] == pytest.approx(0.46 if slot == "doctor" else 0.5)
        assert row["reference"].startswith("reference set labour photos")
    # 30% of 100 lies wholly below 46% and 50%: an unclear difference says the real images are away too
    assert female.loc[keys[("doctor", "model-b")], "note"] == REFERENCE_AWAY
    assert (female[female["word"] != NO_CLEAR_DIFFERENCE]["note"] == "").all()


def test_across_runs_each_run_is_read_against_its_own_target_with_its_source(study, view):
    from statsmodels.stats.proportion import proportion_confint

    from sdaudit.present.charts import PARITY_SOURCE, across_runs_chart
    from sdaudit.present.estimate_tables import across_runs_table

    _, keys = study
    rows = view.across_runs("gender", "female")
    assert len(rows) == 7 and list(rows["share"]) == sorted(rows["share"], reverse=True)
    by_key = rows.set_index("run_key")
    for (slot, model), (count, images) in GENERATED.items():
        row = by_key.loc[keys[(slot, model)]]
        target, source = (0.46, "ONS Labour Force Survey 2023") if slot == "doctor" else (0.5, PARITY_SOURCE)
        low, high = proportion_confint(count, images, method="wilson")
        assert (row["target"], row["target_source"]) == (pytest.approx(target), source)
        assert (row["low"], row["high"]) == pytest.approx((low, high))
        assert row["excludes_target"] == (not low <= target <= high)

    table = across_runs_table(rows)
    assert list(table.columns) == ["Run", "Images in group", "Share", "Interval", "Target", "Target's source",
                                   "Verdict", "Note"]
    assert set(table["Target's source"]) == {"ONS Labour Force Survey 2023", PARITY_SOURCE}
    data = next(iter(across_runs_chart(rows).to_dict()["datasets"].values()))
    ticks = {row["run_key"]: (row["custom_target"], row["target_source"]) for row in data}
    assert ticks[keys[("doctor", "model-a")]] == (pytest.approx(0.46), "ONS Labour Force Survey 2023")
    assert ticks[keys[("ceo", "model-a")]] == (None, PARITY_SOURCE)  # parity is the dashed rule, not a tick


def test_the_pooled_table_uses_shared_targets_and_parity_when_the_runs_targets_differ(study):
    from sdaudit.present.results import results_view

    home, keys = study
    with Store.open(home) as store:
        doctors = results_view(store, STUDY, runs=[keys[("doctor", "model-a")], keys[("doctor", "model-b")]])
        everything = results_view(store, STUDY)
    assert doctors.estimate.row("gender", "female")["target"] == pytest.approx(0.46)
    assert "ONS Labour Force Survey 2023" in doctors.target_note
    assert everything.estimate.row("gender", "female")["target"] == pytest.approx(0.5)
    assert "different targets from data" in everything.target_note


def test_strips_show_a_few_images_per_run_grouped_by_prompt_and_skip_those_without_a_file(study, view):
    home, keys = study
    run_key = keys[("nurse", "model-b")]
    for seed in range(8):  # this run's first 8 images get files; the others have none
        path = home / "images" / run_key / f"{seed}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png(seed))
    strips = view.strips()
    assert [strip.prompt for strip in strips] == ["ceo", "ceo", "doctor", "doctor", "nurse", "nurse",
                                                  "reference set labour photos"]
    by_key = {strip.run_key: strip for strip in strips}
    assert len(by_key[run_key].files) == 6 and by_key[run_key].captions[0] == "seed 0"
    assert by_key[run_key].missing == 92  # 100 images, 8 files, 6 shown
    assert by_key[keys[("ceo", "model-a")]].files == () and by_key[keys[("ceo", "model-a")]].missing == 100


def test_the_report_covers_every_run_forest_chart_first_then_differences_then_one_section_per_run(study):
    from sdaudit.present.results import results_view, study_report

    home, _ = study
    with Store.open(home) as store:
        text = study_report(store, results_view(store, STUDY, EstimateOptions(method="wilson")))  # what the page's download gives
    section = text.split("<h2>Each run against its own target</h2>")[1].split("<h2>")[0]
    assert section.count("<h2") == 0 and text.count("<h2>Each run against its own target</h2>") == 1
    # the forest chart first, then generated minus reference, then one section per prompt and model
    figure, differences, runs = section.index("<figure><svg"), section.index("Generated minus the reference"), \
        section.index("<h3>ceo · model-a</h3>")
    assert figure < differences < runs
    headings = [part.split("</h3>")[0] for part in section.split("<h3>")[1:]]
    assert headings == ["Generated minus the reference set of real images", "ceo · model-a", "ceo · model-b",
                        "doctor · model-a", "doctor · model-b", "nurse · model-a", "nurse · model-b",
                        "reference set labour photos (archive)"]
    compared = section.split("<h3>Generated minus the reference set of real images</h3>")[1].split("<h3>")[0]
    assert compared.count("<figure><svg") == 1  # one forest chart per charted group: female, the one with a target
    readings = [row.split("<td>")[10].split("</td>")[0] for row in compared.split("<tr>")[2:]]
    assert sorted(readings) == sorted(READINGS.values())
    doctor = section.split("<h3>doctor · model-b</h3>")[1].split("<h3>")[0]
    assert "<td>46.0%</td><td>ONS Labour Force Survey 2023</td>" in doctor


def test_a_study_without_targets_or_reference_still_reports_each_run_against_parity(tmp_path):
    from sdaudit.analysis.targets import estimates_by_run
    from sdaudit.present.report import audit_card, render_report
    from sdaudit.present.results import results_view

    home = tmp_path / "home"
    build_study(home, with_reference=False, with_targets=False)
    with Store.open(home) as store:
        text = render_report(results_view(store, STUDY).estimate, audit_card(store, STUDY),
                             by_run=estimates_by_run(store, STUDY))
    section = text.split("<h2>Each run against its own target</h2>")[1].split("<h2>")[0]
    assert "every run is read against parity" in section and "<svg" in section
    assert section.count("<h3>") == 6 and "Generated minus the reference" not in section
    with Store.open(home) as store:
        view = results_view(store, STUDY)
    assert view.reference_differences().empty and "add a reference set of real images" in view.reference_hint


def test_the_results_page_shows_each_run_against_its_target_and_the_reference_differences(app_home):
    import json

    import pyarrow as pa
    from helpers import ROOT, WAIT_LIMIT_S
    from streamlit.testing.v1 import AppTest

    from sdaudit.scheme import TABLE_HEADERS

    build_study(app_home)
    at = AppTest.from_file(str(ROOT / "app" / "router.py"), default_timeout=WAIT_LIMIT_S).run()
    at.switch_page(str(ROOT / "pages" / "results.py")).run()
    assert not at.exception, at.exception
    assert "different targets from data" in " ".join(caption.value for caption in at.caption)
    assert NCHS_RULE in [caption.value for caption in at.caption], "the default's rule is said beside its chart"
    charts = {json.loads(chart.proto.spec)["title"]["text"]: chart.proto for chart in at.get("vega_lite_chart")
              if "title" in json.loads(chart.proto.spec) and isinstance(json.loads(chart.proto.spec)["title"], dict)}
    across = charts["female-presenting (perceived gender presentation) in every run"]
    rows = pa.ipc.open_stream(across.datasets[0].data.data).read_all().to_pandas()
    assert len(rows) == 7 and set(rows["target_source"]) == {"ONS Labour Force Survey 2023",
                                                            "parity (no target from data)"}
    differences = charts["Generated minus the reference set of real images: female-presenting "
                         "(perceived gender presentation)"]
    words = pa.ipc.open_stream(differences.datasets[0].data.data).read_all().to_pandas()
    assert sorted(words["verdict"]) == sorted(READINGS.values())
    tables = [frame.value for frame in at.dataframe]
    readings = next(table for table in tables if TABLE_HEADERS["reading"] in table.columns)
    assert sorted(readings[TABLE_HEADERS["reading"]]) == sorted(READINGS.values())
    assert any(TABLE_HEADERS["target_source"] in table.columns and len(table) == 7 for table in tables)


def test_a_prompt_that_looks_like_markdown_is_shown_as_text_above_its_strip(app_home):
    from helpers import ROOT, WAIT_LIMIT_S
    from streamlit.testing.v1 import AppTest

    hostile = "[click](http://evil.example) # heading"
    with Store.open(app_home) as store:
        for model in ("model-a", "model-b"):
            run = replace(make_run(f"hostile-{model}", study=STUDY, prompt="p"), slot=hostile, model=model)
            _add_run(store, run, 3, 6)
    at = AppTest.from_file(str(ROOT / "app" / "router.py"), default_timeout=WAIT_LIMIT_S).run()
    at.switch_page(str(ROOT / "pages" / "results.py")).run()
    assert not at.exception, at.exception
    assert not [block for block in at.markdown if "evil" in block.value]  # no strips until asked for
    next(toggle for toggle in at.toggle if toggle.label == "Show a few images of each run").set_value(True).run()
    headings = [block.value for block in at.markdown if "evil" in block.value]
    assert headings and all("](" not in value and "\\[" in value for value in headings), headings
