"""A stakeholder report: one self-contained HTML file that opens offline.

It answers the audit's question in plain words, shows the chart (inline SVG), the table of
shares and intervals with plain-words warnings, an audit card (what was generated, how it was
annotated, how it was estimated) and the method's limits. Every text from users (prompts,
model ids, rater names) is escaped.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

import sdaudit
from sdaudit.analysis.estimate import Estimate, shown_rows
from sdaudit.analysis.labels import image_decisions
from sdaudit.analysis.options import BOOTSTRAP_RNG_SEED
from sdaudit.present.charts import (
    PARITY_SOURCE,
    reference_differences_chart,
    run_label,
    shares_chart,
    targets_chart,
    to_svg,
)
from sdaudit.present.study_views import READING_RULE, reference_differences
from sdaudit.present.words import EXCLUDES, METHOD_DESCRIPTIONS, interval, percent, points
from sdaudit.records import IMPORTED, REFERENCE, imported_sheet_label, reference_label
from sdaudit.scheme import FAMILY_LABELS, GROUP_LABELS, reliability_note
from sdaudit.store import Store

LIMITATIONS = (
    "Labels are <em>perceived</em> gender presentation and skin tone, judged by raters from "
    "generated images; they say nothing about any real person's identity.",
    "Gender presentation is reduced to female-presenting / male-presenting / unclear: a binary "
    "simplification that leaves out people it does not describe.",
    "Skin tone is rated on the 10-point Monk Skin Tone scale and then cut into lighter and darker; "
    "the cut is a choice (shown on the audit card) and moving it changes the shares.",
    "With a single rater, disagreement between raters cannot be seen; intervals then reflect only "
    "sampling of images, not the uncertainty of the labels.",
    "Intervals flagged as unreliable rest on few images in a group; at such counts the interval "
    "can be too narrow. Annotate more images before drawing conclusions from them.",
    "With several raters, the intervals are about the raters' average share of each group: if raters "
    "err, that average differs from the true share and the intervals do not correct for it.",
)


@dataclass(frozen=True)
class AuditCard:
    study: str
    runs: pd.DataFrame  # model, revision, prompt, scheduler, steps, guidance, size, seeds, images
    images_generated: int
    images_annotated: int
    images_without_person: int
    raters: tuple[str, ...]
    versions: dict[str, str]
    annotations: pd.DataFrame | None = field(default=None, repr=False)  # for the agreement section


def audit_card(store: Store, study: str) -> AuditCard:
    """What the study's estimate rests on, read from the store."""
    images = store.images(study=study)
    runs = store.runs(study=study)
    seeds = images.groupby("run_key")["seed"].agg(["min", "max"])
    runs = runs.join(seeds, on="run_key")
    annotations = store.annotations(study=study)
    decisions = image_decisions(annotations)
    generated = runs[~runs["model"].isin([IMPORTED, REFERENCE])]
    versions = store.run(generated.iloc[0]["run_key"])["versions"] if len(generated) else {}
    return AuditCard(
        study=study,
        runs=runs,
        images_generated=int((~images["external"] & (images["model"] != REFERENCE)).sum()) if len(images) else 0,
        images_annotated=int(annotations["image_id"].nunique()),
        images_without_person=decisions.without_person,
        raters=tuple(sorted(annotations["rater"].unique())),
        versions=versions,
        annotations=annotations,
    )


_percent = percent


def _table_html(result: Estimate) -> str:
    lines = ["<table><thead><tr><th>family</th><th>group</th><th>images</th><th>share</th>"
             f"<th>{result.confidence:.0%} interval</th><th>target</th><th>note</th></tr></thead><tbody>"]
    for row in result.table.itertuples():
        notes = [reliability_note(row.method, row.degenerate, row.small_count)] if not row.reliable else []
        if row.excludes_target:  # a reliability note never hides the verdict
            notes.append(EXCLUDES)
        lines.append(
            f"<tr><td>{html.escape(FAMILY_LABELS[row.family])}</td><td>{html.escape(GROUP_LABELS.get(row.group, row.group))}</td>"
            f"<td>{row.count:g} of {row.n}</td><td>{_percent(row.share)}</td>"
            f"<td>{interval(row.low, row.high)}</td>"
            f"<td>{_percent(row.target)}</td>"
            f"<td>{html.escape('; '.join(notes))}</td></tr>"
        )
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _card_html(card: AuditCard, result: Estimate) -> str:
    method = METHOD_DESCRIPTIONS[result.method]
    run_rows = []
    for run in card.runs.itertuples():
        seeds = "–" if pd.isna(run.min) else f"{int(run.min)}–{int(run.max)}"
        if run.model in (IMPORTED, REFERENCE):
            label = imported_sheet_label(run.versions) if run.model == IMPORTED else reference_label(run.versions)
            run_rows.append(f"<tr><td colspan=\"9\">{html.escape(label)}</td>"
                            f"<td>{seeds}</td><td>{run.images}</td></tr>")
            continue
        run_rows.append(
            f"<tr><td>{html.escape(str(run.model))}</td><td>{html.escape(str(run.model_revision or '–'))}</td>"
            f"<td>{html.escape(str(run.prompt))}</td><td>{html.escape(str(run.negative_prompt or '–'))}</td>"
            f"<td>{html.escape(str(run.scheduler))}</td><td>{run.steps}</td><td>{run.guidance:g}</td>"
            f"<td>{run.width}×{run.height}</td><td>{html.escape(str(run.dtype))}</td><td>{seeds}</td>"
            f"<td>{run.images}</td></tr>"
        )
    versions = ", ".join(f"{html.escape(k)} {html.escape(str(v))}" for k, v in sorted(card.versions.items()))
    raters = ", ".join(html.escape(rater) for rater in card.raters) or "–"
    return f"""
<table class="card">
<tr><th>study</th><td>{html.escape(card.study)}</td></tr>
<tr><th>images generated</th><td>{card.images_generated}</td></tr>
<tr><th>images annotated</th><td>{card.images_annotated} ({card.images_without_person} without a person, excluded)</td></tr>
<tr><th>images in the estimate</th><td>{result.images}</td></tr>
<tr><th>raters</th><td>{len(card.raters)}: {raters}</td></tr>
<tr><th>interval</th><td>{result.confidence:.0%}, {html.escape(method)}</td></tr>
<tr><th>skin-tone cut</th><td>MST 1–{result.skin_cut} lighter, {result.skin_cut + 1}–10 darker</td></tr>
<tr><th>unclear answers</th><td>{"their own row, inside the denominator" if result.include_unclear else "left out of the denominator"}</td></tr>
<tr><th>library versions</th><td>{versions or "–"}</td></tr>
</table>
<h3>Runs</h3>
<table><thead><tr><th>model</th><th>revision</th><th>prompt</th><th>negative prompt</th><th>scheduler</th>
<th>steps</th><th>guidance</th><th>size</th><th>dtype</th><th>seeds</th><th>images</th></tr></thead>
<tbody>{"".join(run_rows)}</tbody></table>"""


def _agreement_html(card: AuditCard, result: Estimate) -> str:
    """How well the raters agree, per field; or why that cannot be said."""
    from sdaudit.analysis.agreement import agreement
    from sdaudit.present.agreement_tables import READING, SINGLE_RATER, summary_table

    if card.annotations is None or card.annotations.empty or card.annotations["rater"].nunique() < 2:
        return f"<p>{html.escape(SINGLE_RATER[0].upper() + SINGLE_RATER[1:])}</p>"
    table = summary_table(agreement(card.annotations, skin_cut=result.skin_cut, bootstrap_rng_seed=BOOTSTRAP_RNG_SEED))
    head = "".join(f"<th>{html.escape(str(name))}</th>" for name in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(value))}</td>" for value in row) + "</tr>"
                   for row in table.itertuples(index=False))
    return (f"<p>{html.escape(READING)}</p>\n<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            "<p>Intervals: 95% percentile bootstrap over images. <code>python -m sdaudit agreement</code> adds every pair of "
            "raters and each rater against the others.</p>")


def _headline(result: Estimate) -> str:
    parts = []
    for family, group in (("gender", "female"), ("skin_tone", "darker"),
                          ("intersection", "darker_female"), ("intersection", "darker_male")):
        row = result.row(family, group)
        if pd.isna(row["share"]):
            continue
        parts.append(f"{GROUP_LABELS[group]} {_percent(row['share'])} (parity {_percent(row['target'])})")
    if not parts:
        return "No annotated images with a person yet."
    return f"Of {result.images} annotated images with a person: " + "; ".join(parts) + "."


HEADLINE_GROUPS = pd.DataFrame({"family": ["gender", "skin_tone"], "group": ["female", "darker"]})


def _run_names(card: AuditCard) -> dict[str, str]:
    """How the report names each run: slot value (or prompt) · model, or the reference set's name."""
    return {run.run_key: reference_label(run.versions) if run.model == REFERENCE
            else imported_sheet_label(run.versions) if run.model == IMPORTED else run_label(run)
            for run in card.runs.itertuples()}


def _cells(values) -> str:
    return "<tr>" + "".join(f"<td>{html.escape(str(value))}</td>" for value in values) + "</tr>"


def _run_table_html(rows: pd.DataFrame, confidence: float) -> str:
    """One run's shares, each against the run's own target with its source."""
    lines = ["<table><thead><tr><th>group</th><th>images</th><th>share</th>"
             f"<th>{confidence:.0%} interval</th><th>target</th><th>target's source</th><th>note</th></tr></thead><tbody>"]
    for row in shown_rows(rows).itertuples():
        notes = [reliability_note(row.method, row.degenerate, row.small_count)] if not row.reliable else []
        if row.excludes_target:
            notes.append(EXCLUDES)
        source = row.target_source if isinstance(row.target_source, str) else PARITY_SOURCE
        lines.append(_cells([
            f"{FAMILY_LABELS[row.family]}: {GROUP_LABELS.get(row.group, row.group)}", f"{row.count:g} of {row.n}",
            _percent(row.share), interval(row.low, row.high),
            _percent(row.target), "–" if pd.isna(row.target) else source, "; ".join(notes)]))
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _points(value: float) -> str:
    return points(value, unit="")


def _differences_html(differences: pd.DataFrame, names: dict[str, str], groups: pd.DataFrame) -> str:
    """Generated minus reference for the charted ``groups``: a forest chart per group, then a table
    with the reading (``study_views``' rule)."""
    differences = differences.merge(groups, on=["family", "group"])
    if differences.empty:
        return ""
    differences = differences.assign(run=differences["run_key"].map(names),
                                     reference=differences["reference_key"].map(names))
    differences = differences.sort_values(["family", "group", "run"], kind="stable")
    charts = [f"<figure>{to_svg(reference_differences_chart(rows, width=620))}</figure>"
              for _, rows in differences.groupby(["family", "group"], sort=False)]
    lines = ["<h3>Generated minus the reference set of real images</h3>",
             f"<p>{html.escape(READING_RULE)} The groups of the chart above; each run's section below has all its groups.</p>",
             *charts,
             "<table><thead><tr><th>run</th><th>reference set</th><th>group</th><th>generated</th><th>reference</th>"
             "<th>difference (points)</th><th>interval (Newcombe)</th><th>target</th><th>reading</th><th>note</th></tr></thead><tbody>"]
    for row in differences.itertuples():
        notes = [note for note in (row.note, "" if row.reliable else "too few images to trust the interval") if note]
        lines.append(_cells([
            row.run, row.reference, f"{FAMILY_LABELS[row.family]}: {GROUP_LABELS.get(row.group, row.group)}",
            _percent(row.share_first), _percent(row.share_second), _points(row.difference),
            f"{_points(row.low)} to {_points(row.high)}", _percent(row.target), row.word, "; ".join(notes)]))
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _runs_html(by_run: pd.DataFrame | None, card: AuditCard, confidence: float) -> str:
    """Every run of the study: the forest chart of the groups with targets from data (else female
    and darker) across the runs first, then generated minus reference, then one section per
    prompt/model with its shares against its own targets. Empty for a study of one run without
    targets from data (the report's main table says it all)."""
    if by_run is None or by_run.empty:
        return ""
    from_data = by_run["target_source"].notna().any()
    if by_run["run_key"].nunique() < 2 and not from_data:
        return ""
    names = _run_names(card)
    rows = by_run.assign(run=by_run["run_key"].map(names))
    groups = by_run[by_run["target_source"].notna()][["family", "group"]].drop_duplicates() if from_data \
        else HEADLINE_GROUPS
    svg = to_svg(targets_chart(rows, width=620, groups=groups))
    differences = reference_differences(by_run, card.runs, confidence=confidence)
    sections = [f"<h3>{html.escape(names[key])}</h3>\n" + _run_table_html(rows[rows["run_key"] == key], confidence)
                for key in dict.fromkeys(rows.sort_values(["run"], kind="stable")["run_key"])]
    intro = ("Targets from data, imported for this study; a group without one keeps parity." if from_data
             else "No targets from data: every run is read against parity.")
    return ("<h2>Each run against its own target</h2>\n" f"<p>{intro} One row per prompt and model.</p>\n"
            f"<figure>{svg}</figure>\n" + _differences_html(differences, names, groups) + "\n" + "\n".join(sections))


def render_report(result: Estimate, card: AuditCard, *, title: str | None = None,
                  by_run: pd.DataFrame | None = None) -> str:
    """The whole report as one HTML document with the chart inline; with ``by_run``
    (``targets.estimates_by_run``), every run of the study: the forest chart across the runs first,
    generated minus reference, and one section per prompt/model against its own targets."""
    prompts = sorted({str(prompt) for prompt in card.runs["prompt"] if str(prompt)})
    question = (
        "When prompted with " + ", ".join(f"“{html.escape(p)}”" for p in prompts) + ", whom does the model draw?"
        if prompts else "Whom does the model draw?"
    )
    title = title or f"Representation audit: {card.study}"
    svg = to_svg(shares_chart(result.table, width=620, intervals=result.chart_note)) if result.images else "<p>No chart: nothing annotated yet.</p>"
    data = json.dumps(result.table.to_dict("records"), default=str).replace("</", "<\\/")
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    limitations = "".join(f"<li>{item}</li>" for item in LIMITATIONS)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2rem auto; padding: 0 1rem; color: #111827; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }}
th, td {{ border-bottom: 1px solid #e5e7eb; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }}
.card th {{ width: 12rem; }}
.lead {{ font-size: 1.15rem; }}
figure {{ margin: 1rem 0; overflow-x: auto; }}
footer {{ color: #6b7280; font-size: 0.8rem; margin-top: 2rem; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="lead">{question}</p>
<p class="lead"><strong>{html.escape(_headline(result))}</strong></p>
<figure>{svg}</figure>
<h2>Shares and intervals</h2>
<p>Labels: {html.escape(result.label_note)}.</p>
{_table_html(result)}
<h2>Agreement between raters</h2>
{_agreement_html(card, result)}
{_runs_html(by_run, card, result.confidence)}
<h2>Audit card</h2>
{_card_html(card, result)}
<h2>Limits of this method</h2>
<ul>{limitations}</ul>
<footer>Made with sdaudit {html.escape(sdaudit.__version__)} on {created}.</footer>
<script type="application/json" id="estimates">{data}</script>
</body></html>
"""
