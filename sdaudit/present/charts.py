"""Altair charts of an audit's estimates, returned (never rendered) so any face can show them.

`shares_chart` draws one panel per family: each group's share as a point with its interval as
a bar, a dashed rule at demographic parity (50% for two groups, 25% for four) and a tick at any
custom target. Two separate channels carry the two messages: **colour** says only whether the
interval lies wholly away from the target (the verdict), and **fill** says whether the interval
can be trusted as stated (a hollow point and a faded bar: few images, or none or all in the
group). A reliability flag never hides a verdict. The palette is Okabe–Ito (safe for the common
colour-vision deficiencies). `comparison_chart` puts several runs, prompts or models side by
side; `differences_chart` is a forest chart of each run's difference from a reference run.
`to_svg`/`to_png` export without a browser (vl-convert).
"""

from __future__ import annotations

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

VERDICT_COLOURS = {EXCLUDES: "#D55E00", INCLUDES: "#0072B2", NO_TARGET: "#000000"}  # Okabe–Ito
RELIABLE = "reliable"
UNRELIABLE = "unreliable: few images, or none or all in the group"
PARITY = "parity (1/k of k groups)"
CUSTOM_TARGET = "custom target"
PARITY_SOURCE = "parity (no target from data)"
# A single (unfaceted) chart is given Streamlit's "fit" autosize otherwise, which squeezes axis labels,
# plot and legends into ``width`` pixels: long run labels left the plot a few pixels wide.
CONTENT_SIZE = alt.AutoSizeParams(type="pad", contains="padding")


def _chart_rows(table: pd.DataFrame) -> pd.DataFrame:
    rows = shown_rows(table).copy()
    rows["family_title"] = rows["family"].map(FAMILY_LABELS)
    rows["group_label"] = rows["group"].map(GROUP_LABELS).fillna(rows["group"])
    # a share without an interval is drawn as one whose interval includes the target
    rows["verdict"] = [verdict(excludes, target, 0.0) for excludes, target in zip(rows["excludes_target"], rows["target"])]
    rows["reliability"] = [RELIABLE if reliable else UNRELIABLE for reliable in rows["reliable"]]
    rows["parity"] = rows["family"].map({family: 1 / len(groups) for family, groups in FAMILIES.items()})
    rows["parity_marker"] = PARITY
    rows["custom_target"] = rows["target"].where((rows["target"] - rows["parity"]).abs() > 1e-12)
    rows["target_marker"] = CUSTOM_TARGET
    rows["count_text"] = [count_of(round(count, 2), n) for count, n in zip(rows["count"], rows["n"])]
    return rows


def _legend() -> alt.Legend:
    return alt.Legend(orient="bottom", direction="vertical", labelLimit=400)


def _interval_marks(base, *, y, x_title: str, domain: list[str], palette: list[str], tooltip: list,
                    point: str = "share", shares: bool = True):
    """An interval as a bar and its estimate as a point: colour is the verdict (``domain`` →
    ``palette``), a faded bar and a hollow point (white inside) say the interval is unreliable."""
    colour = alt.Color("verdict:N", title="Verdict", scale=alt.Scale(domain=domain, range=palette), legend=_legend())
    opacity = alt.Opacity("reliability:N", title="Interval", legend=_legend(),
                          scale=alt.Scale(domain=[RELIABLE, UNRELIABLE], range=[1.0, 0.35]))
    x = alt.X("low:Q", title=x_title, scale=alt.Scale(domain=[0, 1]) if shares else alt.Undefined,
              axis=alt.Axis(format="%" if shares else "+%"))
    bars = base.mark_rule(strokeWidth=3).encode(x=x, x2="high:Q", y=y, color=colour, opacity=opacity, tooltip=tooltip)
    points = base.mark_point(size=90, strokeWidth=2).encode(
        x=f"{point}:Q", y=y, color=colour, tooltip=tooltip,
        fill=alt.condition(alt.datum.reliability == RELIABLE, "verdict:N", alt.value("white"), legend=None,
                           scale=alt.Scale(domain=domain, range=palette)))
    return bars, points


def _target_marks(base, *, y):
    """Parity as a dashed rule and any custom target as a tick, both in the "Markers" legend."""
    scale = alt.Scale(domain=[PARITY, CUSTOM_TARGET], range=[[6, 4], [1, 0]])
    legend = alt.Legend(orient="bottom", direction="vertical", symbolType="stroke", symbolSize=400,
                        symbolStrokeWidth=2, labelLimit=400)
    parity = base.mark_rule(color="#111827").encode(
        x="mean(parity):Q", strokeDash=alt.StrokeDash("parity_marker:N", title="Markers", scale=scale, legend=legend))
    targets = base.mark_tick(color="#111827", thickness=2, size=18).encode(
        x="custom_target:Q", y=y,
        strokeDash=alt.StrokeDash("target_marker:N", title="Markers", scale=scale, legend=legend))
    return parity, targets


def _share_tooltip(first: alt.Tooltip) -> list:
    return [first, alt.Tooltip("share:Q", format=CHART_PERCENT), alt.Tooltip("low:Q", format=CHART_PERCENT, title="interval low"),
            alt.Tooltip("high:Q", format=CHART_PERCENT, title="interval high"), alt.Tooltip("count_text:N", title="images"),
            alt.Tooltip("target:Q", format=CHART_PERCENT), alt.Tooltip("verdict:N"),
            alt.Tooltip("reliability:N", title="interval")]


def _by_panel(layered, rows: pd.DataFrame, title: str, subtitle: str):
    """One row of panels per ``panel`` value (a family and group), in the rows' order, titled."""
    return (
        layered.facet(row=alt.Row("panel:N", title=None, sort=list(dict.fromkeys(rows["panel"])),
                                  header=alt.Header(labelAngle=0, labelAlign="left", labelFontWeight="bold")))
        .resolve_scale(y="independent")
        .properties(title=alt.Title(title, subtitle=[subtitle]))
    )


def shares_chart(table: pd.DataFrame, *, title: str = "Share of images by perceived group", width: int = 420,
                 intervals: str = "95% intervals, each on its own"):
    """One panel per family: shares, intervals, parity rules and custom-target ticks; ``intervals``
    says in the subtitle how the intervals are to be read (``Estimate.interval_note``)."""
    rows = _chart_rows(table)
    base = alt.Chart(rows)
    y = alt.Y("group_label:N", title=None, sort=None, axis=alt.Axis(labelLimit=260))
    bars, points = _interval_marks(base, y=y, x_title="share of images with a person", domain=list(VERDICT_COLOURS),
                                   palette=list(VERDICT_COLOURS.values()),
                                   tooltip=_share_tooltip(alt.Tooltip("group_label:N", title="group")))
    parity, targets = _target_marks(base, y=y)
    layered = alt.layer(bars, points, parity, targets).properties(width=width)
    return (
        layered.facet(row=alt.Row("family_title:N", title=None, sort=list(FAMILY_LABELS.values()),
                                  header=alt.Header(labelAngle=0, labelAlign="left", labelFontWeight="bold")))
        .resolve_scale(y="independent")
        .properties(title=alt.Title(title, subtitle=[
            f"{intervals[0].upper()}{intervals[1:]}.",
            "Colour: does the interval exclude the target? Hollow point, faded bar: too few images to trust "
            "the interval."]))
    )


def comparison_chart(tables: dict[str, pd.DataFrame], *, title: str = "Shares compared", width: int = 420):
    """Several estimates (keyed by run, prompt or model) side by side, one panel per family."""
    rows = pd.concat([_chart_rows(table).assign(source=name) for name, table in tables.items()], ignore_index=True)
    base = alt.Chart(rows)
    y = alt.Y("group_label:N", title=None, sort=None, axis=alt.Axis(labelLimit=260))
    y_offset = alt.YOffset("source:N")
    colour = alt.Color("source:N", title=None, legend=alt.Legend(orient="bottom"))
    tooltip = ["source:N", alt.Tooltip("group_label:N", title="group"), alt.Tooltip("share:Q", format=CHART_PERCENT),
               alt.Tooltip("low:Q", format=CHART_PERCENT), alt.Tooltip("high:Q", format=CHART_PERCENT),
               alt.Tooltip("count_text:N", title="images")]
    bars = base.mark_rule(strokeWidth=3).encode(
        x=alt.X("low:Q", title="share of images with a person", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%")),
        x2="high:Q", y=y, yOffset=y_offset, color=colour, tooltip=tooltip,
    )
    points = base.mark_point(filled=True, size=80).encode(x="share:Q", y=y, yOffset=y_offset, color=colour,
                                                          tooltip=tooltip)
    parity = base.mark_rule(strokeDash=[6, 4], color="#111827").encode(x="mean(parity):Q")
    return (
        alt.layer(bars, points, parity).properties(width=width)
        .facet(row=alt.Row("family_title:N", title=None, sort=list(FAMILY_LABELS.values()),
                           header=alt.Header(labelAngle=0, labelAlign="left", labelFontWeight="bold")))
        .resolve_scale(y="independent")
        .properties(title=title)
    )


def across_runs_chart(rows: pd.DataFrame, *, width: int = 420):
    """A forest chart of one group's share in every run (``ResultsView.across_runs`` rows, one per
    run, labelled by ``source``): the share with its interval, the verdict in colour, reliability
    as fill, parity as a dashed rule and each run's own target as a tick (its source in the tooltip)."""
    rows = _chart_rows(rows)
    rows["target_source"] = rows["target_source"].fillna(PARITY_SOURCE) if "target_source" in rows else PARITY_SOURCE
    family, group = rows["family_title"].iloc[0], rows["group_label"].iloc[0]
    base = alt.Chart(rows)
    y = alt.Y("source:N", title=None, sort=list(rows["source"]), axis=alt.Axis(labelLimit=320))
    tooltip = [*_share_tooltip(alt.Tooltip("source:N", title="run")), alt.Tooltip("target_source:N", title="target's source")]
    bars, points = _interval_marks(base, y=y, x_title=f"share of images with a person: {group}",
                                   domain=list(VERDICT_COLOURS), palette=list(VERDICT_COLOURS.values()),
                                   tooltip=tooltip)
    parity, targets = _target_marks(base, y=y)
    return alt.layer(bars, points, parity, targets).properties(width=width, autosize=CONTENT_SIZE, title=alt.Title(
        f"{group} ({family.lower()}) in every run", subtitle=[
            "Sorted by share. Tick: the run's own target from data. Colour: does the interval exclude the run's "
            "target? Hollow point, faded bar: too few images to trust the interval."]))


ZERO = "no difference"


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
    domain, palette = [DIFFERS, MAY_NOT_DIFFER], [VERDICT_COLOURS[EXCLUDES], VERDICT_COLOURS[INCLUDES]]
    y = alt.Y("run:N", title=None, sort=None, axis=alt.Axis(labelLimit=260))
    tooltip = [alt.Tooltip("run:N"), alt.Tooltip("panel:N", title="group"),
               alt.Tooltip("share_first:Q", format=CHART_PERCENT, title="share in run"),
               alt.Tooltip("share_second:Q", format=CHART_PERCENT, title="share in reference"),
               alt.Tooltip("difference:Q", format=CHART_POINTS), alt.Tooltip("low:Q", format=CHART_POINTS),
               alt.Tooltip("high:Q", format=CHART_POINTS), alt.Tooltip("verdict:N"), alt.Tooltip("reliability:N", title="interval")]
    base = alt.Chart(rows)
    bars, points = _interval_marks(base, y=y, x_title=f"difference of shares, run minus “{reference}”",
                                   domain=domain, palette=palette, tooltip=tooltip, point="difference", shares=False)
    zero = base.mark_rule(color="#111827").encode(
        x="mean(zero):Q", strokeDash=alt.StrokeDash("zero_marker:N", title="Markers", scale=alt.Scale(
            domain=[ZERO], range=[[6, 4]]), legend=alt.Legend(orient="bottom", symbolType="stroke")))
    return _by_panel(alt.layer(bars, points, zero).properties(width=width), rows, title,
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
    y = alt.Y("run:N", title=None, sort=None, axis=alt.Axis(labelLimit=260))
    tooltip = [alt.Tooltip("run:N"), alt.Tooltip("panel:N", title="group"), alt.Tooltip("share:Q", format=CHART_PERCENT),
               alt.Tooltip("low:Q", format=CHART_PERCENT, title="interval low"),
               alt.Tooltip("high:Q", format=CHART_PERCENT, title="interval high"),
               alt.Tooltip("target:Q", format=CHART_PERCENT), alt.Tooltip("source:N", title="target's source"),
               alt.Tooltip("verdict:N"), alt.Tooltip("reliability:N", title="interval")]
    base = alt.Chart(rows)
    bars, points = _interval_marks(base, y=y, x_title="share of images with a person", domain=list(VERDICT_COLOURS),
                                   palette=list(VERDICT_COLOURS.values()), tooltip=tooltip)
    ticks = base.mark_tick(color="#111827", thickness=2, size=18).encode(
        x="target:Q", y=y, tooltip=tooltip,
        strokeDash=alt.StrokeDash("target_marker:N", title="Markers", legend=alt.Legend(orient="bottom", symbolType="stroke")))
    return _by_panel(alt.layer(bars, points, ticks).properties(width=width), rows, title,
                     "Tick: the run's target (its source in the tooltip and the table). Colour: does the interval "
                     "exclude it? Hollow point, faded bar: too few images to trust the interval.")


WORD_COLOURS = {AMPLIFIED: "#D55E00", REDUCED: "#009E73", OTHER_SIDE: "#CC79A7",
                NO_CLEAR_DIFFERENCE: "#999999"}  # Okabe–Ito


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
    y = alt.Y("run:N", title=None, sort=None, axis=alt.Axis(labelLimit=320))
    tooltip = [alt.Tooltip("run:N"), alt.Tooltip("reference:N", title="reference set"),
               alt.Tooltip("share_first:Q", format=CHART_PERCENT, title="share in run"),
               alt.Tooltip("share_second:Q", format=CHART_PERCENT, title="share in reference"),
               alt.Tooltip("difference:Q", format=CHART_POINTS), alt.Tooltip("low:Q", format=CHART_POINTS),
               alt.Tooltip("high:Q", format=CHART_POINTS), alt.Tooltip("target:Q", format=CHART_PERCENT),
               alt.Tooltip("target_source:N", title="target's source"), alt.Tooltip("verdict:N", title="reading"),
               alt.Tooltip("note:N"), alt.Tooltip("reliability:N", title="interval")]
    base = alt.Chart(rows)
    bars, points = _interval_marks(base, y=y, x_title=f"difference of shares, generated minus real: {group}",
                                   domain=list(WORD_COLOURS), palette=list(WORD_COLOURS.values()), tooltip=tooltip,
                                   point="difference", shares=False)
    zero = base.mark_rule(color="#111827").encode(
        x="mean(zero):Q", strokeDash=alt.StrokeDash("zero_marker:N", title="Markers", scale=alt.Scale(
            domain=[ZERO], range=[[6, 4]]), legend=alt.Legend(orient="bottom", symbolType="stroke")))
    return alt.layer(bars, points, zero).properties(width=width, autosize=CONTENT_SIZE, title=alt.Title(
        f"{title}: {group} ({family.lower()})", subtitle=[
            "Amplified: further from the run's target than the real images; reduced: closer. Only where the "
            "interval excludes zero."]))


def to_svg(chart) -> str:
    import vl_convert

    return vl_convert.vegalite_to_svg(chart.to_json())


def to_png(chart, *, scale: float = 2.0) -> bytes:
    import vl_convert

    return vl_convert.vegalite_to_png(chart.to_json(), scale=scale)
