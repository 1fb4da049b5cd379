"""The app shell in AppTest: it starts, routes to Runs, and shows the store's runs or what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from helpers import (
    ORIGIN,
    ORIGIN_SHEET,
    TWO_RUNS,
    WAIT_LIMIT_S,
    add_annotated_run,
    make_images,
    make_run,
    open_page,
    sheet,
)
from streamlit.testing.v1 import AppTest

from sdaudit.scheme import TABLE_HEADERS, Annotation
from sdaudit.store import Store

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app" / "router.py")
PAGES = ROOT / "pages"


@pytest.fixture
def home(app_home):
    return app_home


def runs_page() -> AppTest:
    return open_page("runs")


def test_an_empty_home_says_how_to_generate(home):
    at = runs_page()
    assert [title.value for title in at.title] == ["Runs"]
    assert "No images yet" in at.info[0].value and "--model demo" in at.info[0].value


def test_runs_are_listed_with_their_settings(home):
    with Store.open(home) as store:
        store.add_run(make_run())
        store.add_images(make_images())
    at = runs_page()
    table = at.dataframe[0].value
    assert list(table.columns) == [TABLE_HEADERS[name] for name in (
        "study", "run_images", "nsfw_images", "model", "model_revision", "prompt", "slot", "negative_prompt", "scheduler",
        "steps", "guidance", "size", "dtype", "device", "created_at")], "people's headers, not column names"
    assert list(table["Images"]) == [4] and list(table["Size (width × height)"]) == ["64 × 64"]
    assert list(table["Prompt"]) == ["a doctor sitting behind a desk"]


def test_the_sheet_import_names_the_study_it_imports_into(home):
    """The Runs page's "Import a rater sheet" names the sidebar's study, and asks for a rater only
    for the origin format (an sdaudit export names its raters)."""
    with Store.open(home) as store:
        store.add_run(make_run(study="copy"))
    at = open_page("runs", query={"study": "copy"})
    assert "Imports into study **copy**, the study chosen in the sidebar." in [text.value for text in at.markdown]
    assert [box.label for box in at.text_input if box.label == "Rater of this sheet"] == ["Rater of this sheet"]
    next(radio for radio in at.radio if radio.label == "Format").set_value("sdaudit").run()
    assert not at.exception, at.exception
    assert not [box for box in at.text_input if box.label == "Rater of this sheet"]
    assert any("names its raters in its rater column" in caption.value for caption in at.caption)


@pytest.fixture
def origin_home(home):
    from sdaudit.files.sheets import import_annotations

    with Store.open(home) as store:
        import_annotations(ORIGIN_SHEET, store, study="origin", rater="origin-rater")
    return home


def results_page(at: AppTest) -> AppTest:
    at.switch_page(str(PAGES / "results.py")).run()
    assert not at.exception, at.exception
    return at


def test_results_show_the_chart_with_parity_rules(origin_home):
    at = results_page(AppTest.from_file(APP, default_timeout=WAIT_LIMIT_S).run())
    assert [title.value for title in at.title] == ["Results"]
    chart = at.get("vega_lite_chart")[0].proto
    spec = json.loads(chart.spec)
    parity = [layer for layer in spec["spec"]["layer"]
              if layer["encoding"].get("strokeDash", {}).get("field") == "parity_marker"]
    assert parity and parity[0]["encoding"]["x"]["field"] == "parity_target"  # the rows whose target it is
    # Streamlit sends the chart's rows beside the spec, as Arrow
    rows = pa.ipc.open_stream(chart.datasets[0].data.data).read_all().to_pandas()
    assert dict(rows[["family", "parity"]].drop_duplicates().itertuples(index=False)) == {
        "gender": 0.5, "skin_tone": 0.5, "intersection": 0.25}
    drawn = rows.set_index("group")["verdict"]
    assert list(drawn[["darker", "darker_female", "darker_male"]]) == ["interval excludes the target"] * 3
    # the default (Clopper–Pearson) flags by the NCHS rules: 8/221 is over 130% of its share wide
    assert at.warning[0].value.startswith("Read these intervals as rough")
    assert "“darker, female-presenting” (skin tone × gender presentation)" in at.warning[0].value
    summary = next(caption.value for caption in at.caption if "annotated images with a person" in caption.value)
    assert "one rater" in summary and "*perceived*" in summary


def test_switching_the_method_changes_the_intervals(origin_home):
    at = results_page(AppTest.from_file(APP, default_timeout=WAIT_LIMIT_S).run())
    def interval() -> str:
        return at.dataframe[0].value.set_index("Group").loc["darker, male-presenting", "Interval"]

    exact = interval()  # the default: Clopper–Pearson, scipy's binomtest(6, 221) "exact"
    method = next(box for box in at.selectbox if box.label == "Interval method")
    method.set_value("jackknife").run()
    jackknife = interval()
    method.set_value("wilson").run()
    # at 6/221: jackknife p ± 1.96·√(p(1−p)/(n−1)) = 0.6–4.9%; scipy's binomtest(6, 221) Wilson 1.3–5.8%
    assert (exact, jackknife, interval()) == ("1.0% – 5.8%", "0.6% – 4.9%", "1.3% – 5.8%")


def test_the_skin_cut_slider_moves_the_darker_share(home):
    with Store.open(home) as store:  # MST values, not the origin sheet's binary answers
        store.add_run(make_run(study="mst"))
        store.add_images(make_images(seeds=range(221)))
        rows = sheet(ORIGIN)
        rows["image_id"] = store.images()["image_id"].to_numpy()
        rows["confidence"] = "high"
        store.save_annotations(rows)
    at = results_page(AppTest.from_file(APP, default_timeout=WAIT_LIMIT_S).run())
    before = at.dataframe[0].value.set_index("Group").loc["darker", "Share"]
    at.slider[0].set_value(2).run()
    after = at.dataframe[0].value.set_index("Group").loc["darker", "Share"]
    assert (before, after) == (f"{14 / 221:.1%}", f"{149 / 221:.1%}")


def test_results_without_studies_say_what_to_do(home):
    at = results_page(AppTest.from_file(APP, default_timeout=WAIT_LIMIT_S).run())
    assert "No study yet" in at.info[0].value


def test_results_with_no_image_in_any_group_say_so_instead_of_crashing(home):
    """One image rated "no person", one with a person and nothing else yet: no group has an image,
    and the "Images by group" box had no choice to offer (a TypeError unpacking its None)."""
    with Store.open(home) as store:
        store.add_run(make_run())
        store.add_images(make_images(seeds=[0, 1]))
        store.save_annotation(1, "ana", Annotation(person_present=False, confidence="medium"))
        store.save_annotation(2, "ana", Annotation(person_present=True))
    at = results_page(AppTest.from_file(APP, default_timeout=WAIT_LIMIT_S).run())
    assert not at.exception
    assert any(info.value.startswith("No group has an image yet") for info in at.info), [i.value for i in at.info]


def test_two_runs_can_be_compared(home):
    with Store.open(home) as store:
        for key, groups in TWO_RUNS.items():
            add_annotated_run(store, key, "two", groups)
    at = results_page(AppTest.from_file(APP, default_timeout=WAIT_LIMIT_S).run())
    next(toggle for toggle in at.toggle if toggle.label.startswith("Compare")).set_value(True).run()
    assert not at.exception
    charts = at.get("vega_lite_chart")
    # the shares, one group across the runs, the forest chart of differences, the runs side by side
    assert len(charts) == 4
    forest = charts[2].proto
    assert json.loads(forest.spec)["title"]["text"] == "Each run against the reference"
    rows = pa.ipc.open_stream(forest.datasets[0].data.data).read_all().to_pandas()
    reference_key = next(box for box in at.selectbox if box.label == "Compare each run with").value
    other_key = next(key for key in TWO_RUNS if key != reference_key)
    assert len(rows) == 8 and set(rows["run"]) == {f"prompt {other_key} · demo · 100 images"}
    differences = at.dataframe[-1].value.set_index("Group")
    reference = next(box for box in at.selectbox if box.label == "Compare each run with")
    other = "prompt run-b" if "run-a" in reference.value else "prompt run-a"
    assert differences.loc["female-presenting", "Run"].startswith(other)
    expected = "+20.0 points" if other == "prompt run-b" else "−20.0 points"
    assert differences.loc["female-presenting", "Run − reference"] == expected
    reference.set_value("run-b" if reference.value == "run-a" else "run-a").run()
    flipped = at.dataframe[-1].value.set_index("Group").loc["female-presenting", "Run − reference"]
    assert flipped == ("−20.0 points" if expected.startswith("+") else "+20.0 points")


def test_one_group_is_followed_across_every_run_sorted_by_share(home):
    shares = {"run-a": 30, "run-b": 55, "run-c": 42}
    with Store.open(home) as store:
        for key, female in shares.items():
            add_annotated_run(store, key, "three", {("female", 2): female, ("male", 2): 100 - female})
    at = results_page(AppTest.from_file(APP, default_timeout=WAIT_LIMIT_S).run())
    group = next(box for box in at.selectbox if box.label == "Group to follow across the runs")
    group.set_value(("gender", "female")).run()
    chart = next(chart.proto for chart in at.get("vega_lite_chart")
                 if json.loads(chart.proto.spec)["title"]["text"].endswith("in every run"))
    rows = pa.ipc.open_stream(chart.datasets[0].data.data).read_all().to_pandas()
    assert [source.split(" · ")[0] for source in rows["source"]] == ["prompt run-b", "prompt run-c", "prompt run-a"]
    assert list(rows["share"]) == [0.55, 0.42, 0.30] and set(rows["group"]) == {"female"}
    assert list(rows["verdict"]) == ["interval includes the target", "interval includes the target",
                                     "interval excludes the target"]


def test_results_follow_the_study_chosen_in_the_sidebar(home):
    with Store.open(home) as store:
        add_annotated_run(store, "run-a", "first", {("female", 2): 30, ("male", 2): 70})
        add_annotated_run(store, "run-b", "second", {("female", 2): 45, ("male", 2): 55})
    at = AppTest.from_file(APP, default_timeout=WAIT_LIMIT_S).run()
    for study in ("second", "first"):
        next(box for box in at.selectbox if box.label == "Study").set_value(study).run()
        results_page(at)
        assert not [box for box in at.selectbox if box.label == "Study" and box.key != "study"], "one selector"
        assert any(f"Study “{study}”" in caption.value for caption in at.caption)
        female = at.dataframe[0].value.set_index("Group").loc["female-presenting", "Share"]
        assert female == ("45.0%" if study == "second" else "30.0%")


def test_the_results_tables_speak_in_peoples_words(origin_home):
    """Headers, families, groups and empty cells are words, never column names or None."""
    at = results_page(AppTest.from_file(APP, default_timeout=WAIT_LIMIT_S).run())
    table, planned = at.dataframe[0].value, at.dataframe[1].value
    assert list(table.columns) == ["Family", "Group", "Images in group", "Share", "Interval", "Target",
                                   "Share − target", "Verdict", "Note"]
    assert set(table["Family"]) == {"Perceived gender presentation", "Skin tone (Monk scale)",
                                    "Skin tone × gender presentation"}
    cells = {str(cell) for frame in (table, planned) for cell in frame.to_numpy().ravel()}
    raw = {"skin_tone", "intersection", "darker_male", "female", "None", "nan", "NaN"}
    assert not cells & raw, cells & raw
    assert "darker, male-presenting" in set(table["Group"])
    unclear = table[table["Group"] == "unclear"]
    assert set(unclear["Target"]) == {"no target"}
    assert "Share, first run" not in planned.columns and "More images needed" in planned.columns


def test_simultaneous_intervals_are_said_in_the_chart(origin_home):
    at = results_page(AppTest.from_file(APP, default_timeout=WAIT_LIMIT_S).run())
    next(toggle for toggle in at.toggle if toggle.label.startswith("Simultaneous intervals")).set_value(True).run()
    interval = at.dataframe[0].value.set_index("Group").loc["darker", "Interval"]
    assert interval == "2.7% – 12.2%", "14/221 at 1 − 0.05/8 (scipy's exact interval: 2.71% to 12.17%)"
    subtitle = json.loads(at.get("vega_lite_chart")[0].proto.spec)["title"]["subtitle"]
    assert subtitle[0].startswith("95% simultaneous intervals: all 8 named groups")
