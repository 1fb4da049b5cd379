"""Charts (Altair specs, PNG/SVG without a browser) and the stakeholder report."""

from __future__ import annotations

import html.parser
import json
import re
from dataclasses import replace

import pandas as pd
import pytest
from helpers import ORIGIN, ORIGIN_SHEET, make_images, make_run, sheet

from sdaudit.analysis.estimate import estimate
from sdaudit.analysis.planning import compare_runs
from sdaudit.files.sheets import import_annotations
from sdaudit.present.charts import (
    LABEL_LIMIT,
    PARITY,
    RELIABLE,
    UNRELIABLE,
    VERDICT_COLOURS,
    VERDICT_SCALE,
    across_runs_chart,
    comparison_chart,
    difference_ticks,
    differences_chart,
    reference_differences_chart,
    shares_chart,
    targets_chart,
    to_png,
    to_svg,
)
from sdaudit.present.report import LIMITATIONS, audit_card, render_report
from sdaudit.present.words import (
    AMPLIFIED,
    CHART_PERCENT,
    CHART_POINTS,
    DIFFERS,
    EXCLUDES,
    INCLUDES,
    MAY_NOT_DIFFER,
    NCHS_RULE,
    NO_CLEAR_DIFFERENCE,
    NO_TARGET,
    REDUCED,
)
from sdaudit.scheme import UNRELIABLE_NOTE
from sdaudit.store import Store


def layers_of(spec: dict) -> list[dict]:
    return spec["spec"]["layer"]


def test_the_chart_has_a_panel_per_family_and_dashed_parity_rules():
    # the origin study's method, whose small-count flags fall on the darker groups
    result = estimate(sheet(ORIGIN), method="jackknife", targets={("gender", "female"): 0.37})
    spec = shares_chart(result.table).to_dict()
    assert spec["facet"]["row"]["field"] == "family_title"
    marks = [layer["mark"]["type"] for layer in layers_of(spec)]
    assert marks == ["rule", "point", "rule", "tick", "text"]
    parity = layers_of(spec)[2]
    assert parity["encoding"]["x"]["field"] == "parity_target"
    assert parity["encoding"]["strokeDash"]["scale"]["range"][0] == [6, 4], "parity is the dashed marker"
    rows = next(iter(spec["datasets"].values()))
    parity_by_family = {row["family"]: row["parity"] for row in rows}
    assert parity_by_family == {"gender": 0.5, "skin_tone": 0.5, "intersection": 0.25}
    custom = {row["group"]: row["custom_target"] for row in rows if row["custom_target"] is not None}
    assert custom == {"female": 0.37}
    verdicts = {row["group"]: (row["verdict"], row["reliability"]) for row in rows}
    assert verdicts["male"] == (EXCLUDES, RELIABLE)
    assert verdicts["female"] == (INCLUDES, RELIABLE)
    # the origin study's main finding: darker groups far below parity, few images, the verdict kept
    for group in ("darker", "darker_female", "darker_male"):
        assert verdicts[group] == (EXCLUDES, UNRELIABLE)
    colour = layers_of(spec)[1]["encoding"]["color"]
    assert colour["field"] == "verdict" and colour["legend"]["values"] == [EXCLUDES, INCLUDES, NO_TARGET]
    assert layers_of(spec)[0]["encoding"]["opacity"]["field"] == "reliability"
    assert {layers_of(spec)[2]["encoding"]["strokeDash"]["field"],
            layers_of(spec)[3]["encoding"]["strokeDash"]["field"]} == {"parity_marker", "target_marker"}
    tooltip_fields = {item["field"] for item in layers_of(spec)[1]["encoding"]["tooltip"]}
    assert {"share", "low", "high", "count_text"} <= tooltip_fields


def test_the_chart_draws_the_estimates_own_reliability():
    """Reliability is the estimate's ``reliable`` column, not recomputed from its flags by the chart."""
    table = estimate(sheet(ORIGIN)).table.copy()
    assert table.set_index("group").loc["male", "reliable"]
    table.loc[table["group"] == "male", "reliable"] = False
    rows = next(iter(shares_chart(table).to_dict()["datasets"].values()))
    assert {row["group"]: row["reliability"] for row in rows}["male"] == UNRELIABLE


def test_charts_export_to_svg_and_png_without_a_browser():
    chart = shares_chart(estimate(sheet(ORIGIN)).table)
    svg = to_svg(chart)
    assert svg.lstrip().startswith("<svg") and "female-presenting" in svg
    png = to_png(chart)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_the_comparison_chart_keeps_each_source():
    first, second = estimate(sheet(ORIGIN)), estimate(sheet({("female", 2): 50, ("male", 8): 50}))
    spec = comparison_chart({"SD v1-4": first.table, "other model": second.table}).to_dict()
    sources = {row["source"] for row in next(iter(spec["datasets"].values()))}
    assert sources == {"SD v1-4", "other model"}


def test_the_forest_chart_has_a_row_per_run_and_colours_by_the_difference_verdict():
    runs = {"reference": estimate(sheet({("female", 2): 100, ("male", 2): 100})),
            "fewer women": estimate(sheet({("female", 2): 40, ("male", 2): 160})),
            "about the same": estimate(sheet({("female", 2): 95, ("male", 2): 105}))}
    differences = compare_runs(runs, reference="reference")
    spec = differences_chart(differences, reference="reference").to_dict()
    rows = next(iter(spec["datasets"].values()))
    assert {row["run"] for row in rows} == {"fewer women", "about the same"}
    assert len(rows) == len(differences) == 2 * 8  # one row per run × named group
    verdicts = {(row["run"], row["group"]): row["verdict"] for row in rows}
    assert verdicts[("fewer women", "female")] == DIFFERS
    assert verdicts[("about the same", "female")] == MAY_NOT_DIFFER
    layers = spec["spec"]["layer"]
    colour = layers[0]["encoding"]["color"]
    assert colour["field"] == "verdict" and colour["scale"]["range"][0] == VERDICT_COLOURS[EXCLUDES]
    assert "fewer women" in to_svg(differences_chart(differences, reference="reference"))
    # a reference with a very long name: its axis title stays one readable line (it made the chart 2,588 px wide)
    long_name = 'Q"' * 150
    spec = differences_chart(differences, reference=long_name).to_dict()
    title = spec["spec"]["layer"][0]["encoding"]["x"]["title"]
    assert len(title) < 100 and title.endswith("…”") and title.startswith('difference of shares, run minus “Q"Q"')


LONG_RUN = "a doctor sitting behind a desk in a hospital office · stabilityai/stable-diffusion-2-1 · 60 images"


def dataset(spec: dict) -> list[dict]:
    return next(iter(spec["datasets"].values()))


def every_chart() -> dict[str, object]:
    """Each chart sdaudit draws, on small data of its own whose runs have long names."""
    runs = {f"{LONG_RUN} {index}": estimate(sheet({("female", 2): 10 + 15 * index, ("female", 8): 3,
                                                   ("male", 3): 40 - 15 * index, ("unclear", 4): 10}))
            for index in range(3)}
    first = next(iter(runs))
    female = pd.concat([result.table[(result.table["family"] == "gender") & (result.table["group"] == "female")]
                        .assign(source=name, run_key=name, run=name, target_source=None) for name, result in runs.items()])
    by_run = pd.concat([result.table.assign(run_key=name, run=name, target_source=None) for name, result in runs.items()])
    by_run.loc[(by_run["family"] == "gender") & (by_run["group"] == "female"), "target_source"] = "a survey"
    readings = pd.DataFrame({
        "family": "gender", "group": "female", "run": list(runs)[1:], "reference": "real photos",
        "word": [AMPLIFIED, REDUCED], "reliable": [True, False], "target_source": [None, "a survey"],
        "share_first": [0.2, 0.45], "share_second": [0.4, 0.3], "difference": [-0.2, 0.15], "low": [-0.35, 0.02],
        "high": [-0.05, 0.28], "target": [0.5, 0.46], "note": ["", ""]})
    return {
        "shares": shares_chart(runs[first].table),
        "comparison": comparison_chart({name: result.table for name, result in runs.items()}),
        "across runs": across_runs_chart(female),
        "differences": differences_chart(compare_runs(runs, reference=first), reference=first),
        "targets": targets_chart(by_run),
        "reference differences": reference_differences_chart(readings),
    }


def found(spec, test) -> list[dict]:
    """Every dict anywhere in ``spec`` for which ``test`` holds."""
    if isinstance(spec, dict):
        return ([spec] if test(spec) else []) + [item for value in spec.values() for item in found(value, test)]
    if isinstance(spec, list):
        return [item for value in spec for item in found(value, test)]
    return []


def test_every_chart_colours_its_verdicts_with_the_one_shared_scale():
    """One meaning, one colour, in every chart: the Shares compared chart once coloured its runs in
    a third scheme, and a difference's "no clear difference" was grey where "includes" was blue."""
    shared = VERDICT_SCALE.to_dict()
    for name, chart in every_chart().items():
        coloured = found(chart.to_dict(), lambda item: item.get("field") == "verdict" and "scale" in item)
        assert len(coloured) >= 2 and all(item["scale"] == shared for item in coloured), name  # colour and fill
    assert VERDICT_COLOURS[EXCLUDES] == VERDICT_COLOURS[DIFFERS] == VERDICT_COLOURS[AMPLIFIED]
    assert VERDICT_COLOURS[INCLUDES] == VERDICT_COLOURS[MAY_NOT_DIFFER] == VERDICT_COLOURS[NO_CLEAR_DIFFERENCE]
    assert len({VERDICT_COLOURS[word] for word in (EXCLUDES, INCLUDES, NO_TARGET, REDUCED)}) == 4


def test_no_chart_cuts_a_label_or_outgrows_the_apps_column():
    """Legends stack under the plot with room for every label; a run's long name goes on its own
    lines; each chart fits the main column at 1366 px (906 px wide) drawn as vl-convert draws it."""
    for name, chart in every_chart().items():
        spec = chart.to_dict()
        legends = found({key: value for key, value in spec.items() if key != "config"},
                        lambda item: isinstance(item.get("legend"), dict))
        assert legends and all(item["legend"]["labelLimit"] >= LABEL_LIMIT for item in legends), name
        assert "vertical" in spec["config"]["legend"]["layout"]["expr"], name
        svg = to_svg(chart)
        assert not re.findall(r">([^<>]*…)</text>", svg), name
        assert float(re.search(r'<svg[^>]*? width="([\d.]+)"', svg).group(1)) <= 860, name
    legend_words = to_svg(every_chart()["shares"])
    assert UNRELIABLE in legend_words and PARITY in legend_words and PARITY == "parity: an equal share for each group"


def test_parity_runs_only_across_the_rows_whose_target_it_is():
    """Not through an `unclear` row (it has no target) nor a row with a custom target (its tick)."""
    result = estimate(sheet({("female", 2): 40, ("male", 3): 50, ("male", 7): 5, ("unclear", 4): 10}),
                      targets={("gender", "female"): 0.37})
    chart = shares_chart(result.table)
    spec = chart.to_dict()
    rows = dataset(spec)
    across = {(row["family"], row["group"]) for row in rows if row["parity_target"] is not None}
    assert across == {(row["family"], row["group"]) for row in rows
                      if row["group"] != "unclear" and (row["family"], row["group"]) != ("gender", "female")}
    parity = layers_of(spec)[2]["encoding"]
    assert (parity["y"]["bandPosition"], parity["y2"]["bandPosition"]) == (0, 1), "a row's height, not the panel's"
    drawn = re.findall(r'<line aria-label="parity_target: [^;]*; group_label: ([^;]*);', to_svg(chart))
    assert len(drawn) == len(across) and "unclear" not in drawn and "female-presenting" not in drawn


def test_each_point_carries_its_value_as_text():
    result = estimate(sheet({("female", 2): 37, ("male", 3): 55, ("unclear", 4): 8}))
    spec = shares_chart(result.table).to_dict()
    text = layers_of(spec)[-1]
    assert text["mark"]["type"] == "text"
    assert (text["encoding"]["text"]["field"], text["encoding"]["text"]["format"]) == ("share", CHART_PERCENT)
    svg = to_svg(shares_chart(result.table))
    for share in ("37.0%", "55.0%", "8.0%"):
        assert f">{share}</text>" in svg, share
    differences = every_chart()["differences"].to_dict()
    shown = [layer["encoding"]["text"] for layer in layers_of(differences) if layer["mark"]["type"] == "text"]
    assert [(item["field"], item["format"]) for item in shown] == [("difference", CHART_POINTS)]


@pytest.mark.parametrize(("low", "high", "expected"), [
    ([-0.73], [-0.12], [-0.8, -0.6, -0.4, -0.2, 0.0]),  # all below zero: Vega's own ticks had no 0 label
    ([-0.05], [0.18], [-0.05, 0.0, 0.05, 0.1, 0.15, 0.2]),
    ([0.1], [0.9], [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    ([-1.0], [1.0], [-1.0, -0.5, 0.0, 0.5, 1.0]),
])
def test_a_difference_axis_always_shows_zero(low, high, expected):
    assert difference_ticks(pd.Series(low), pd.Series(high)) == pytest.approx(expected)


def test_the_difference_charts_axes_include_zero():
    runs = {"reference": estimate(sheet({("female", 2): 90, ("male", 2): 10})),
            "fewer women": estimate(sheet({("female", 2): 20, ("male", 2): 80}))}
    spec = differences_chart(compare_runs(runs, reference="reference"), reference="reference").to_dict()
    axis = layers_of(spec)[0]["encoding"]["x"]["axis"]
    assert 0.0 in axis["values"] and axis["labelFlush"] is False
    assert ">+0%</text>" in to_svg(differences_chart(compare_runs(runs, reference="reference"), reference="reference"))


class _Collector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture
def origin_store():
    with Store() as store:
        import_annotations(ORIGIN_SHEET, store, study="origin", rater="<b>rater</b>")
        yield store


def test_the_report_is_one_html_file_with_the_chart_inline(origin_store):
    result = estimate(origin_store.annotations(study="origin"))
    document = render_report(result, audit_card(origin_store, "origin"))
    parser = _Collector()
    parser.feed(document)
    assert document.startswith("<!DOCTYPE html>") and parser.tags[0] == "html"
    assert "svg" in parser.tags, "the chart is inline SVG"
    assert "<script src" not in document and "http" not in document.split("<svg", 1)[0], "opens offline"
    text = " ".join(parser.text)
    assert "female-presenting 36.2% (parity 50.0%)" in text
    # darker female (8/221) is flagged by the NCHS rules, and its verdict is still said beside it
    assert f"{UNRELIABLE_NOTE}; {EXCLUDES}" in text  # the reliability note never hides the verdict
    assert NCHS_RULE in text, "the report says which rule flags the default, and that it judges the 95% interval"
    assert all(item.split("<em>")[0][:30] in document for item in LIMITATIONS)
    assert "&lt;b&gt;rater&lt;/b&gt;" in document and "<b>rater</b>" not in document
    data = json.loads(document.split('id="estimates">', 1)[1].split("</script>", 1)[0])
    assert len(data) == len(result.table)


def test_the_audit_card_counts_what_the_estimate_rests_on(origin_store):
    card = audit_card(origin_store, "origin")
    assert (card.images_generated, card.images_annotated, card.images_without_person) == (0, 221, 0)
    assert card.raters == ("<b>rater</b>",)


def test_an_imported_sheets_run_reads_as_one_in_the_report_and_runs_table(origin_store):
    from sdaudit.present.results import run_choices, runs_table

    document = render_report(estimate(origin_store.annotations(study="origin")), audit_card(origin_store, "origin"))
    assert "imported sheet origin_sheet.csv" in document and "0×0" not in document
    row = runs_table(origin_store.runs()).iloc[0]
    assert row["Model"] == "imported sheet origin_sheet.csv"
    assert (row["Steps"], row["Guidance"], row["Size (width × height)"], row["Scheduler"]) == ("", "", "", "")
    assert list(run_choices(origin_store, "origin").values()) == ["imported sheet origin_sheet.csv · 221 images"]


HOSTILE = "<img src=x onerror=alert(1)>"


def test_text_from_users_is_escaped_everywhere_in_the_report():
    """Prompts, model ids, slots and rater names from the store, a study name as an older store may
    hold one, and a title: each reaches the report as text, never as markup."""
    from sdaudit.analysis.targets import estimates_by_run

    with Store() as store:
        for key, model, female in (("plain", "model-a", 30), ("hostile", HOSTILE, 60)):
            run = replace(make_run(key, study="hostile", prompt=f"{HOSTILE} {key}"), model=model, slot=HOSTILE,
                          negative_prompt=HOSTILE)
            store.add_run(run)
            store.add_images(make_images(key, seeds=range(100)))
            rows = sheet({("female", 2): female, ("male", 2): 100 - female}, rater=HOSTILE)
            rows["image_id"] = store.images(run_key=key)["image_id"].to_numpy()
            rows["confidence"] = "high"
            store.save_annotations(rows)
        card = replace(audit_card(store, "hostile"), study=HOSTILE)
        result = estimate(store.annotations(study="hostile"))
        document = render_report(result, card, by_run=estimates_by_run(store, "hostile"))
        titled = render_report(result, card, title=HOSTILE)
    for page in (document, titled):
        parser = _Collector()
        parser.feed(page)
        assert "img" not in parser.tags and "<img" not in page
    shown = "&lt;img src=x onerror=alert(1)&gt;"
    assert f"<h1>Representation audit: {shown}</h1>" in document and f"<title>{shown}</title>" in titled
    assert f"When prompted with “{shown} hostile”, “{shown} plain”, whom" in document
    assert f"<tr><th>study</th><td>{shown}</td></tr>" in document
    assert f"<td>1: {shown}</td>" in document, "the rater"
    assert f"<td>{shown}</td><td>local-0</td><td>{shown} hostile</td><td>{shown}</td>" in document
    assert f"<h3>{shown} · {shown}</h3>" in document and f"<h3>{shown} · model-a</h3>" in document


def test_a_run_without_a_revision_or_negative_prompt_shows_the_empty_mark_not_nan():
    """A revision the store holds as NULL comes back as NaN beside a run that has one (a truthy float)."""
    from sdaudit.present.words import EMPTY

    with Store() as store:
        for key, revision, negative in (("bare", None, ""), ("pinned", "abc123", "blurry")):
            store.add_run(replace(make_run(key, study="cells"), model_revision=revision, negative_prompt=negative))
            store.add_images(make_images(key, seeds=range(10)))
            rows = sheet({("female", 2): 5, ("male", 2): 5})
            rows["image_id"] = store.images(run_key=key)["image_id"].to_numpy()
            rows["confidence"] = "high"
            store.save_annotations(rows)
        document = render_report(estimate(store.annotations(study="cells")), audit_card(store, "cells"))
    assert ">nan<" not in document and ">None<" not in document
    assert f"<td>{EMPTY}</td>" in document and "<td>abc123</td>" in document and "<td>blurry</td>" in document
