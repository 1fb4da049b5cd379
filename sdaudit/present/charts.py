"""Altair charts of an audit's estimates, returned (never rendered) so any face can show them.

`shares_chart` draws one panel per family: each group's share as a point, written above it, with
its interval as a bar, a dashed rule at demographic parity (50% for two groups, 25% for four)
across the rows whose target it is, and a tick at any custom target. Two separate channels carry
the two messages: **colour** says only whether the interval lies wholly away from the target (the
verdict), and **fill** says whether the interval can be trusted as stated (a hollow point and a
faded bar: few images, or none or all in the group). A reliability flag never hides a verdict.
Every chart colours its verdicts with one scale (``VERDICT_SCALE``, Okabe–Ito: safe for the common
colour-vision deficiencies). `comparison_chart` puts several runs, prompts or models side by
side; `differences_chart` is a forest chart of each run's difference from a reference run, whose
axis always shows zero. Each chart is drawn at a fixed width that fits the app's main column at
1366 px (panel titles above the panels, legends stacked below the plot, none of their labels cut).
`to_svg`/`to_png` export without a browser (vl-convert).
"""

from __future__ import annotations

import math

import altair as alt
import pandas as pd

from sdaudit.analysis.estimate import shown_rows
from sdaudit.present.words import (
    AMPLIFIED,
    CHART_PERCENT,
    CHART_POINTS,
    DIFFERS,
    EXCLUDES,
    INCLUDES,
    MAY_NOT_DIFFER,
    NO_CLEAR_DIFFERENCE,
    NO_TARGET,
    OTHER_SIDE,
    REDUCED,
    count_of,
    verdict,
)
from sdaudit.records import run_label
from sdaudit.scheme import FAMILIES, FAMILY_LABELS, GROUP_LABELS

# One colour per verdict word, the same in every chart (Okabe–Ito): orange where the interval lies
# wholly away from the target or from zero, blue where it includes it, black where there is no target;
# a reading against real images that is neither (reduced, other side of the target) has its own.
VERDICT_COLOURS = {EXCLUDES: "#D55E00", DIFFERS: "#D55E00", AMPLIFIED: "#D55E00",
                   INCLUDES: "#0072B2", MAY_NOT_DIFFER: "#0072B2", NO_CLEAR_DIFFERENCE: "#0072B2",
                   REDUCED: "#009E73", OTHER_SIDE: "#CC79A7", NO_TARGET: "#000000"}
VERDICT_SCALE = alt.Scale(domain=list(VERDICT_COLOURS), range=list(VERDICT_COLOURS.values()))
SHARE_VERDICTS = [EXCLUDES, INCLUDES, NO_TARGET]
DIFFERENCE_VERDICTS = [DIFFERS, MAY_NOT_DIFFER]
READINGS = [AMPLIFIED, REDUCED, OTHER_SIDE, NO_CLEAR_DIFFERENCE]
RELIABLE = "reliable"
UNRELIABLE = "unreliable: few images, or none or all in the group"
PARITY = "parity: an equal share for each group"
CUSTOM_TARGET = "custom target"
PARITY_SOURCE = "parity (no target from data)"
# A single (unfaceted) chart is given Streamlit's "fit" autosize otherwise, which squeezes axis labels,
# plot and legends into ``width`` pixels: long run labels left the plot a few pixels wide.
CONTENT_SIZE = alt.AutoSizeParams(type="pad", contains="padding")
# Vega cuts a legend label at 160 px by default ("…none or all in the gro"); no label here is longer.
LABEL_LIMIT = 600
RUN_LABEL_LIMIT = 300  # each line of a run's name on an axis (its parts, one a line)
RUN_LINE = 13  # px, a line of a run's name at 11 px type
# Vega puts bottom legends side by side, which made a chart wider than its column; one under another.
LEGENDS_STACKED = alt.ExprRef("{bottom: {direction: 'vertical', anchor: 'start'}}")
SHARE_TICKS = [step / 10 for step in range(11)]
POINT_TEXT = "#111827"


def _chart_rows(table: pd.DataFrame) -> pd.DataFrame:
    rows = shown_rows(table).copy()
    rows["family_title"] = rows["family"].map(FAMILY_LABELS)
    rows["group_label"] = rows["group"].map(GROUP_LABELS).fillna(rows["group"])
    # a share without an interval is drawn as one whose interval includes the target
    rows["verdict"] = [verdict(excludes, target, 0.0) for excludes, target in zip(rows["excludes_target"], rows["target"])]
    rows["reliability"] = [RELIABLE if reliable else UNRELIABLE for reliable in rows["reliable"]]
    rows["parity"] = rows["family"].map({family: 1 / len(groups) for family, groups in FAMILIES.items()})
    rows["parity_marker"] = PARITY
    # parity is drawn across the rows whose target it is: not an `unclear` row (no target), nor a custom one
    at_parity = (rows["target"] - rows["parity"]).abs() <= 1e-12
    rows["parity_target"] = rows["parity"].where(at_parity)
    rows["custom_target"] = rows["target"].where(rows["target"].notna() & ~at_parity)
    rows["target_marker"] = CUSTOM_TARGET
    rows["count_text"] = [count_of(round(count, 2), n) for count, n in zip(rows["count"], rows["n"])]
    return rows


def _legend(**properties) -> alt.Legend:
    return alt.Legend(orient="bottom", direction="vertical", labelLimit=LABEL_LIMIT, **properties)


def _marker_legend() -> alt.Legend:
    return _legend(symbolType="stroke", symbolSize=400, symbolStrokeWidth=2)


def _fitted(chart):
    """The chart as every face draws it: legends one under another, below the plot."""
    return chart.configure_legend(layout=LEGENDS_STACKED)


def _panel_header() -> alt.Header:
    """A panel's title above it, not beside it, where it took width from the plot."""
    return alt.Header(labelAngle=0, labelOrient="top", labelAnchor="start", labelAlign="left",
                      labelFontWeight="bold", labelLimit=LABEL_LIMIT)


TITLE_NAME = 60  # characters of a run's name in an axis title (the whole name is on its rows)


def _run_axis() -> alt.Axis:
    """Runs named on an axis one part a line (subject, model, run), so a usual prompt is not cut (one
    longer than ``RUN_LABEL_LIMIT`` pixels is cut, with "…"),
    the lines centred on the run's row (Vega starts them there). Type size and line height are
    fixed here, as the offsets and ``RUN_ROW`` assume, whatever theme draws the chart."""
    lines = "length(split(datum.label, ' · '))"
    centred = [{"test": f"{lines} == {count}", "value": -(count - 1) * RUN_LINE / 2} for count in (2, 3, 4, 5)]
    return alt.Axis(labelLimit=RUN_LABEL_LIMIT, labelExpr="split(datum.label, ' · ')", labelFontSize=11,
                    labelLineHeight=RUN_LINE, labelOffset={"condition": centred, "value": 0})


def difference_ticks(low: pd.Series, high: pd.Series) -> list[float]:
    """Tick values for a difference axis: evenly spaced, at most eight, and always including zero
    (Vega's own ticks thinned their labels to −70 … −10, +10 …, dropping the zero the chart is about)."""
    lowest, highest = min(0.0, float(low.min())), max(0.0, float(high.max()))

    def span(step: float) -> range:  # the whole steps that cover the range
        return range(math.floor(lowest / step + 1e-9), math.ceil(highest / step - 1e-9) + 1)

    step = next((step for step in (0.05, 0.1, 0.2, 0.25) if len(span(step)) <= 8), 0.5)
    return [round(index * step, 10) for index in span(step)]


def _interval_marks(base, *, y, x_title: str, verdicts: list[str], tooltip: list, point: str = "share",
                    difference_axis: list[float] | None = None):
    """An interval as a bar, its estimate as a point with its value written above it: colour is the
    verdict (``VERDICT_SCALE``; the legend lists ``verdicts``), a faded bar and a hollow point (white
    inside) say the interval is unreliable. The x axis runs from 0 to 100% or, for a difference,
    over ``difference_axis`` (``difference_ticks``), its values written with a sign."""
    shares = difference_axis is None
    ticks = SHARE_TICKS if shares else difference_axis
    colour = alt.Color("verdict:N", title="Verdict", scale=VERDICT_SCALE, legend=_legend(values=verdicts))
    opacity = alt.Opacity("reliability:N", title="Interval", legend=_legend(),
                          scale=alt.Scale(domain=[RELIABLE, UNRELIABLE], range=[1.0, 0.35]))
    x = alt.X("low:Q", title=x_title, scale=alt.Scale(domain=[ticks[0], ticks[-1]], nice=False),
              axis=alt.Axis(format="%" if shares else "+%", values=ticks, labelFlush=False))
    bars = base.mark_rule(strokeWidth=3).encode(x=x, x2="high:Q", y=y, color=colour, opacity=opacity, tooltip=tooltip)
    points = base.mark_point(size=90, strokeWidth=2).encode(
        x=f"{point}:Q", y=y, color=colour, tooltip=tooltip,
        fill=alt.condition(alt.datum.reliability == RELIABLE, "verdict:N", alt.value("white"), legend=None,
                           scale=VERDICT_SCALE))
    values = base.mark_text(dy=-12, fontSize=12, color=POINT_TEXT).encode(
        x=f"{point}:Q", y=y, text=alt.Text(f"{point}:Q", format=CHART_PERCENT if shares else CHART_POINTS),
        tooltip=tooltip)
    return bars, points, values


def _target_marks(base, *, y):
    """Parity as a dashed rule across the rows whose target it is and any custom target as a tick,
    both in the "Markers" legend."""
    scale = alt.Scale(domain=[PARITY, CUSTOM_TARGET], range=[[6, 4], [1, 0]])
    legend = _marker_legend()
    across = y.copy()
    across.bandPosition = 0  # from the top of the row to its bottom: rows side by side join into one line
    parity = base.mark_rule(color="#111827").encode(
        x="parity_target:Q", y=across, y2=alt.Y2(y.to_dict()["field"], bandPosition=1),
        strokeDash=alt.StrokeDash("parity_marker:N", title="Markers", scale=scale, legend=legend))
    targets = base.mark_tick(color="#111827", thickness=2, size=18).encode(
        x="custom_target:Q", y=y,
        strokeDash=alt.StrokeDash("target_marker:N", title="Markers", scale=scale, legend=legend))
    return parity, targets


def _share_tooltip(first: alt.Tooltip) -> list:
    return [first, alt.Tooltip("share:Q", format=CHART_PERCENT), alt.Tooltip("low:Q", format=CHART_PERCENT, title="interval low"),
            alt.Tooltip("high:Q", format=CHART_PERCENT, title="interval high"), alt.Tooltip("count_text:N", title="images"),
            alt.Tooltip("target:Q", format=CHART_PERCENT), alt.Tooltip("verdict:N"),
            alt.Tooltip("reliability:N", title="interval")]


GROUP_ROW = alt.Step(28)  # a row per group: room for the value written above each point
RUN_ROW = alt.Step(3 * RUN_LINE + 9)  # a row per run: room for its name in three lines


def _by_panel(layered, panels: list[str], title: str, subtitle: str):
    """One row of panels per ``panel`` value (a family and group), in the order of ``panels``, titled."""
    return _fitted(
        layered.facet(row=alt.Row("panel:N", title=None, sort=panels, header=_panel_header()))
        .resolve_scale(y="independent")
        .properties(title=alt.Title(title, subtitle=[subtitle]))
    )


def shares_chart(table: pd.DataFrame, *, title: str = "Share of images by perceived group", width: int = 420,
                 intervals: str = "95% intervals, each on its own", x_title: str = "share of images with a person"):
    """One panel per family: shares, intervals, parity rules and custom-target ticks; ``intervals``
    says in the subtitle how the intervals are to be read (``Estimate.interval_note``)."""
    rows = _chart_rows(table)
    base = alt.Chart(rows)
    y = alt.Y("group_label:N", title=None, sort=None, axis=alt.Axis(labelLimit=260))
    bars, points, values = _interval_marks(base, y=y, x_title=x_title, verdicts=SHARE_VERDICTS,
                                           tooltip=_share_tooltip(alt.Tooltip("group_label:N", title="group")))
    parity, targets = _target_marks(base, y=y)
    layered = alt.layer(bars, points, parity, targets, values).properties(width=width, height=GROUP_ROW)
    return _fitted(
        layered.facet(row=alt.Row("family_title:N", title=None, sort=list(FAMILY_LABELS.values()),
                                  header=_panel_header()))
        .resolve_scale(y="independent")
        .properties(title=alt.Title(title, subtitle=[
            f"{intervals[0].upper()}{intervals[1:]}.",
            "Colour: does the interval exclude the target? Hollow point, faded bar: too few images to trust "
            "the interval."]))
    )


def _panel_order(rows: pd.DataFrame) -> list[str]:
    """Panels in the scheme's order: families as ``FAMILIES`` lists them, each family's groups in
    order, `unclear` last, whichever table named a group first."""
    families = list(FAMILIES)
    rank = [(families.index(family), FAMILIES[family].index(group) if group in FAMILIES[family] else len(FAMILIES[family]))
            for family, group in zip(rows["family"], rows["group"])]
    return list(dict.fromkeys(panel for _, panel in sorted(zip(rank, rows["panel"]), key=lambda pair: pair[0])))


def comparison_chart(tables: dict[str, pd.DataFrame], *, title: str = "Shares compared", width: int = 420):
    """Several estimates (keyed by run, prompt or model) side by side: one panel per group, one row
    per estimate, each named on the axis, drawn as in ``shares_chart`` (verdict colour, reliability
    fill, parity or a custom target, the share written above its point)."""
    rows = pd.concat([_chart_rows(table).assign(source=name) for name, table in tables.items()], ignore_index=True)
    rows["panel"] = rows["family_title"] + ": " + rows["group_label"]
    base = alt.Chart(rows)
    y = alt.Y("source:N", title=None, sort=list(tables), axis=_run_axis())
    bars, points, values = _interval_marks(base, y=y, x_title="share of images with a person", verdicts=SHARE_VERDICTS,
                                           tooltip=_share_tooltip(alt.Tooltip("source:N", title="run")))
    parity, targets = _target_marks(base, y=y)
    return _by_panel(alt.layer(bars, points, parity, targets, values).properties(width=width, height=RUN_ROW),
                     _panel_order(rows), title,
                     "Colour: does the interval exclude the target? Hollow point, faded bar: too few images to "
                     "trust the interval.")


def across_runs_chart(rows: pd.DataFrame, *, width: int = 420):
    """A forest chart of one group's share in every run (``ResultsView.across_runs`` rows, one per
    run, labelled by ``source``): the share with its interval, the verdict in colour, reliability
    as fill, parity as a dashed rule and each run's own target as a tick (its source in the tooltip)."""
    rows = _chart_rows(rows)
    rows["target_source"] = rows["target_source"].fillna(PARITY_SOURCE) if "target_source" in rows else PARITY_SOURCE
    family, group = rows["family_title"].iloc[0], rows["group_label"].iloc[0]
    base = alt.Chart(rows)
    y = alt.Y("source:N", title=None, sort=list(rows["source"]), axis=_run_axis())
    tooltip = [*_share_tooltip(alt.Tooltip("source:N", title="run")), alt.Tooltip("target_source:N", title="target's source")]
    bars, points, values = _interval_marks(base, y=y, x_title=f"share of images with a person: {group}",
                                           verdicts=SHARE_VERDICTS, tooltip=tooltip)
    parity, targets = _target_marks(base, y=y)
    return _fitted(alt.layer(bars, points, parity, targets, values).properties(
        width=width, height=RUN_ROW, autosize=CONTENT_SIZE, title=alt.Title(
            f"{group} ({family.lower()}) in every run", anchor="start", subtitle=[
                "Sorted by share. Tick: the run's own target from data.",
                "Colour: does the interval exclude the run's target? Hollow point, faded bar: too few images to "
                "trust the interval."])))


ZERO = "no difference"


def _zero_marks(base):
    """The rule at zero, in the "Markers" legend."""
    return base.mark_rule(color="#111827").encode(
        x="mean(zero):Q", strokeDash=alt.StrokeDash("zero_marker:N", title="Markers", scale=alt.Scale(
            domain=[ZERO], range=[[6, 4]]), legend=_marker_legend()))


def differences_chart(differences: pd.DataFrame, *, reference: str, width: int = 420,
                      title: str = "Each run against the reference"):
    """A forest chart of ``planning.compare_runs`` rows: one panel per named group, one row per run,
    the difference of shares with its interval, a rule at zero. Colour says whether the interval
    excludes zero; a hollow point and faded bar say it cannot be trusted as stated."""
    rows = differences.copy()
    rows["panel"] = rows["family"].map(FAMILY_LABELS) + ": " + rows["group"].map(GROUP_LABELS).fillna(rows["group"])
    rows["verdict"] = [DIFFERS if value else MAY_NOT_DIFFER for value in rows["excludes_zero"]]
    rows["reliability"] = [RELIABLE if value else UNRELIABLE for value in rows["reliable"]]
    rows["zero"] = 0.0
    rows["zero_marker"] = ZERO
    y = alt.Y("run:N", title=None, sort=None, axis=_run_axis())
    tooltip = [alt.Tooltip("run:N"), alt.Tooltip("panel:N", title="group"),
               alt.Tooltip("share_first:Q", format=CHART_PERCENT, title="share in run"),
               alt.Tooltip("share_second:Q", format=CHART_PERCENT, title="share in reference"),
               alt.Tooltip("difference:Q", format=CHART_POINTS), alt.Tooltip("low:Q", format=CHART_POINTS),
               alt.Tooltip("high:Q", format=CHART_POINTS), alt.Tooltip("verdict:N"), alt.Tooltip("reliability:N", title="interval")]
    base = alt.Chart(rows)
    named = reference if len(reference) <= TITLE_NAME else reference[:TITLE_NAME - 1] + "…"  # a title has one line
    bars, points, values = _interval_marks(base, y=y, x_title=f"difference of shares, run minus “{named}”",
                                           verdicts=DIFFERENCE_VERDICTS, tooltip=tooltip, point="difference",
                                           difference_axis=difference_ticks(rows["low"], rows["high"]))
    return _by_panel(alt.layer(bars, points, _zero_marks(base), values).properties(width=width, height=RUN_ROW),
                     list(dict.fromkeys(rows["panel"])), title,
                     "Colour: does the interval of the difference exclude zero? Hollow point, faded bar: too few "
                     "images to trust the interval.")


def targets_chart(by_run: pd.DataFrame, *, width: int = 420, title: str = "Each run against its own target",
                  groups: pd.DataFrame | None = None):
    """``targets.estimates_by_run`` rows of ``groups`` (family, group; default the groups that have a
    target from data): one panel per group, one row per run (named by a ``run`` column where given),
    the share with its interval and a tick at the run's target, whose source the tooltip names
    (parity where the run has none). Colour and fill as in ``shares_chart``."""
    named = by_run[by_run["target_source"].notna()][["family", "group"]].drop_duplicates() if groups is None else groups
    rows = _chart_rows(by_run.merge(named, on=["family", "group"]))
    rows["panel"] = rows["family_title"] + ": " + rows["group_label"]
    if "run" not in rows:
        rows["run"] = [run_label(row) for row in rows.itertuples()]
    rows["source"] = rows["target_source"].fillna(PARITY_SOURCE)
    rows["target_marker"] = "the run's target"
    # only what is drawn: a missing slot or source in an object column would be NaN, which is not JSON
    rows = rows[["run_key", "run", "panel", "share", "low", "high", "target", "source", "verdict", "reliability",
                 "target_marker"]]
    y = alt.Y("run:N", title=None, sort=None, axis=_run_axis())
    tooltip = [alt.Tooltip("run:N"), alt.Tooltip("panel:N", title="group"), alt.Tooltip("share:Q", format=CHART_PERCENT),
               alt.Tooltip("low:Q", format=CHART_PERCENT, title="interval low"),
               alt.Tooltip("high:Q", format=CHART_PERCENT, title="interval high"),
               alt.Tooltip("target:Q", format=CHART_PERCENT), alt.Tooltip("source:N", title="target's source"),
               alt.Tooltip("verdict:N"), alt.Tooltip("reliability:N", title="interval")]
    base = alt.Chart(rows)
    bars, points, values = _interval_marks(base, y=y, x_title="share of images with a person", verdicts=SHARE_VERDICTS,
                                           tooltip=tooltip)
    ticks = base.mark_tick(color="#111827", thickness=2, size=18).encode(
        x="target:Q", y=y, tooltip=tooltip,
        strokeDash=alt.StrokeDash("target_marker:N", title="Markers", legend=_marker_legend()))
    return _by_panel(alt.layer(bars, points, ticks, values).properties(width=width, height=RUN_ROW),
                     list(dict.fromkeys(rows["panel"])), title,
                     "Tick: the run's target (its source in the tooltip and the table). Colour: does the interval "
                     "exclude it? Hollow point, faded bar: too few images to trust the interval.")


def reference_differences_chart(rows: pd.DataFrame, *, width: int = 420,
                                title: str = "Generated minus the reference set of real images"):
    """A forest chart of ``ResultsView.reference_differences`` rows of one group: one row per
    generated run, the difference of shares with Newcombe's interval, a rule at zero; colour is
    the reading (amplified / reduced / other side of the target / no clear difference), a hollow point
    and faded bar say the interval cannot be trusted as stated."""
    rows = rows.copy()
    family, group = FAMILY_LABELS[rows["family"].iloc[0]], GROUP_LABELS.get(rows["group"].iloc[0], rows["group"].iloc[0])
    rows["verdict"] = rows["word"]
    rows["reliability"] = [RELIABLE if value else UNRELIABLE for value in rows["reliable"]]
    rows["zero"] = 0.0
    rows["zero_marker"] = ZERO
    rows["target_source"] = rows["target_source"].fillna(PARITY_SOURCE)
    rows = rows[["run", "reference", "share_first", "share_second", "difference", "low", "high", "target",
                 "target_source", "verdict", "reliability", "note", "zero", "zero_marker"]]
    y = alt.Y("run:N", title=None, sort=None, axis=_run_axis())
    tooltip = [alt.Tooltip("run:N"), alt.Tooltip("reference:N", title="reference set"),
               alt.Tooltip("share_first:Q", format=CHART_PERCENT, title="share in run"),
               alt.Tooltip("share_second:Q", format=CHART_PERCENT, title="share in reference"),
               alt.Tooltip("difference:Q", format=CHART_POINTS), alt.Tooltip("low:Q", format=CHART_POINTS),
               alt.Tooltip("high:Q", format=CHART_POINTS), alt.Tooltip("target:Q", format=CHART_PERCENT),
               alt.Tooltip("target_source:N", title="target's source"), alt.Tooltip("verdict:N", title="reading"),
               alt.Tooltip("note:N"), alt.Tooltip("reliability:N", title="interval")]
    base = alt.Chart(rows)
    bars, points, values = _interval_marks(base, y=y, x_title=f"difference of shares, generated minus real: {group}",
                                           verdicts=READINGS, tooltip=tooltip, point="difference",
                                           difference_axis=difference_ticks(rows["low"], rows["high"]))
    return _fitted(alt.layer(bars, points, _zero_marks(base), values).properties(
        width=width, height=RUN_ROW, autosize=CONTENT_SIZE, title=alt.Title(
            f"{title}: {group} ({family.lower()})", anchor="start", subtitle=[
                "Amplified: further from the run's target than the real images; reduced: closer. Only where the "
                "interval excludes zero."])))


def to_svg(chart) -> str:
    import vl_convert

    return vl_convert.vegalite_to_svg(chart.to_json())


def to_png(chart, *, scale: float = 2.0) -> bytes:
    import vl_convert

    return vl_convert.vegalite_to_png(chart.to_json(), scale=scale)
