"""A stakeholder report: one self-contained HTML file that opens offline.

It answers the audit's question in plain words, shows the chart (inline SVG), the table of
shares and intervals with plain-words warnings, an audit card (what was generated, how it was
annotated, how it was estimated) and the method's limits. This module computes and formats every
value; the Jinja2 templates in ``templates/`` lay them out and autoescape every text, so text from
users (study names, prompts, model ids, rater names) is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

import sdaudit
from sdaudit.analysis.estimate import Estimate, shown_rows
from sdaudit.analysis.label_modes import WEAK_RULE
from sdaudit.analysis.labels import image_decisions
from sdaudit.analysis.machine_audit import MachineInputs, machine_inputs
from sdaudit.analysis.options import BOOTSTRAP_RNG_SEED
from sdaudit.present.charts import (
    PARITY_SOURCE,
    reference_differences_chart,
    shares_chart,
    targets_chart,
    to_svg,
)
from sdaudit.present.study_views import READING_RULE, reference_differences
from sdaudit.present.words import (
    EMPTY,
    EXCLUDES,
    METHOD_DESCRIPTIONS,
    how_many,
    interval,
    level,
    percent,
    points,
    reliability_rule,
)
from sdaudit.records import run_label, run_labels
from sdaudit.scheme import FAMILY_LABELS, GROUP_LABELS, REFIT_METHOD, reliability_note
from sdaudit.store import Store
from sdaudit.store.machine import MachineTables

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


# Every template is HTML, so autoescape is on for all of them (select_autoescape would miss ".html.j2").
TEMPLATES = Environment(loader=PackageLoader("sdaudit.present", "templates"), autoescape=True,
                        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
# the estimates' JSON as json.dumps wrote it before (timestamps as text, keys in the table's order);
# ``tojson`` still escapes <, >, & and ' so the data cannot close its <script>
TEMPLATES.policies["json.dumps_kwargs"] = {"default": str}


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
    machine: MachineInputs | None = field(default=None, repr=False)  # the newest labelling, for its section


def audit_card(store: Store, study: str, *, machine: bool = True) -> AuditCard:
    """What the study's estimate rests on, read from the store; with ``machine``, the study's newest
    labelling for the report's section on automatic labels (False: a report for raters, who label blind)."""
    images = store.images(study=study)
    runs = store.runs(study=study)
    seeds = images.groupby("run_key")["seed"].agg(["min", "max"])
    runs = runs.join(seeds, on="run_key")
    annotations = store.annotations(study=study)
    decisions = image_decisions(annotations)
    generated = runs[runs["kind"] == "generated"]
    versions = store.run(generated.iloc[0]["run_key"])["versions"] if len(generated) else {}
    return AuditCard(
        study=study,
        runs=runs,
        images_generated=int((images["kind"] == "generated").sum()) if len(images) else 0,
        images_annotated=int(annotations["image_id"].nunique()),
        images_without_person=decisions.without_person,
        raters=tuple(sorted(annotations["rater"].unique())),
        versions=versions,
        annotations=annotations,
        machine=machine_inputs(store, study)
        if machine and any(each.labelled for each in MachineTables(store).labellings(study)) else None,
    )


_percent = percent


def _shares_rows(result: Estimate) -> list[list[str]]:
    """The main table's cells: family, group, images, share, interval, target, note."""
    rows = []
    for row in result.table.itertuples():
        notes = [reliability_note(row.method, row.degenerate, row.small_count)] if not row.reliable else []
        if row.excludes_target:  # a reliability note never hides the verdict
            notes.append(EXCLUDES)
        rows.append([
            FAMILY_LABELS[row.family], GROUP_LABELS.get(row.group, row.group), f"{row.count:g} of {row.n}",
            _percent(row.share), interval(row.low, row.high),
            _percent(row.target), "; ".join(notes)])
    return rows


def _text(value) -> str:
    """A run's optional text (a revision, a negative prompt); ``EMPTY`` when it has none (None, "",
    or the NaN a joined table holds, which is truthy)."""
    return value if isinstance(value, str) and value else EMPTY


def _card(card: AuditCard, result: Estimate) -> dict:
    """The audit card's values, and one row per run (an imported or reference run by its name)."""
    method = METHOD_DESCRIPTIONS[result.method]
    run_rows = []
    for run in card.runs.itertuples():
        seeds = EMPTY if pd.isna(run.min) else f"{int(run.min)}–{int(run.max)}"
        if run.kind != "generated":
            run_rows.append({"label": run_label(run), "cells": [seeds, str(run.images)]})
            continue
        run_rows.append({"label": None, "cells": [
            str(run.model), _text(run.model_revision), str(run.prompt), _text(run.negative_prompt),
            str(run.scheduler), str(run.steps), f"{run.guidance:g}", f"{run.width}×{run.height}", str(run.dtype),
            seeds, str(run.images)]})
    return {
        "study": card.study,
        "images_generated": card.images_generated,
        "images_annotated": card.images_annotated,
        "images_without_person": card.images_without_person,
        "images_in_estimate": result.images,
        "raters": card.raters,
        "method": method,
        "skin_cut": f"MST 1–{result.skin_cut} lighter, {result.skin_cut + 1}–10 darker",
        "unclear": "their own row, inside the denominator" if result.include_unclear else "left out of the denominator",
        "versions": ", ".join(f"{name} {version}" for name, version in sorted(card.versions.items())),
        "runs": run_rows,
    }


def _agreement(card: AuditCard, result: Estimate) -> dict:
    """How well the raters agree, per field (a reading and a table); or why that cannot be said (no rows)."""
    from sdaudit.analysis.agreement import agreement
    from sdaudit.present.agreement_tables import READING, SINGLE_RATER, summary_table

    if card.annotations is None or card.annotations.empty or card.annotations["rater"].nunique() < 2:
        return {"reading": SINGLE_RATER[0].upper() + SINGLE_RATER[1:], "head": [], "rows": []}
    table = summary_table(agreement(card.annotations, skin_cut=result.skin_cut, bootstrap_rng_seed=BOOTSTRAP_RNG_SEED))
    return {"reading": READING, "head": [str(name) for name in table.columns],
            "rows": [[str(value) for value in row] for row in table.itertuples(index=False)]}


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
    return f"Of {how_many(result.images, 'annotated image')} with a person: " + "; ".join(parts) + "."


HEADLINE_GROUPS = pd.DataFrame({"family": ["gender", "skin_tone"], "group": ["female", "darker"]})


def _run_names(card: AuditCard) -> dict[str, str]:
    """How the report names each run: ``records.run_labels``, as every face does."""
    return run_labels(card.runs)


def _chart(svg: str) -> Markup:
    """A chart sdaudit drew (Vega's SVG from our own spec), placed as it is: Vega escapes the text it
    draws, user text included, so the SVG needs no escaping and escaping it would break it."""
    return Markup(svg)


def _run_rows(rows: pd.DataFrame) -> list[list[str]]:
    """One run's shares, each against the run's own target with its source."""
    cells = []
    for row in shown_rows(rows).itertuples():
        notes = [reliability_note(row.method, row.degenerate, row.small_count)] if not row.reliable else []
        if row.excludes_target:
            notes.append(EXCLUDES)
        source = row.target_source if isinstance(row.target_source, str) else PARITY_SOURCE
        cells.append([
            f"{FAMILY_LABELS[row.family]}: {GROUP_LABELS.get(row.group, row.group)}", f"{row.count:g} of {row.n}",
            _percent(row.share), interval(row.low, row.high),
            _percent(row.target), EMPTY if pd.isna(row.target) else source, "; ".join(notes)])
    return cells


def _points(value: float) -> str:
    return points(value, unit="")


def _differences(differences: pd.DataFrame, names: dict[str, str], groups: pd.DataFrame) -> dict | None:
    """Generated minus reference for the charted ``groups``: a forest chart per group, then a table
    with the reading (``study_views``' rule); None without a reference set."""
    differences = differences.merge(groups, on=["family", "group"])
    if differences.empty:
        return None
    differences = differences.assign(run=differences["run_key"].map(names),
                                     reference=differences["reference_key"].map(names))
    differences = differences.sort_values(["family", "group", "run"], kind="stable")
    charts = [_chart(to_svg(reference_differences_chart(rows, width=620)))
              for _, rows in differences.groupby(["family", "group"], sort=False)]
    rows = []
    for row in differences.itertuples():
        notes = [note for note in (row.note, "" if row.reliable else "too few images to trust the interval") if note]
        rows.append([
            row.run, row.reference, f"{FAMILY_LABELS[row.family]}: {GROUP_LABELS.get(row.group, row.group)}",
            _percent(row.share_first), _percent(row.share_second), _points(row.difference),
            f"{_points(row.low)} to {_points(row.high)}", _percent(row.target),
            f"{_points(row.distance_low)} to {_points(row.distance_high)}", row.word, "; ".join(notes)])
    return {"charts": charts, "rows": rows}


def _runs(by_run: pd.DataFrame | None, card: AuditCard, confidence: float) -> dict | None:
    """Every run of the study: the forest chart of the groups with targets from data (else female
    and darker) across the runs first, then generated minus reference, then one section per
    prompt/model with its shares against its own targets. None for a study of one run without
    targets from data (the report's main table says it all)."""
    if by_run is None or by_run.empty:
        return None
    from_data = by_run["target_source"].notna().any()
    if by_run["run_key"].nunique() < 2 and not from_data:
        return None
    names = _run_names(card)
    rows = by_run.assign(run=by_run["run_key"].map(names))
    groups = by_run[by_run["target_source"].notna()][["family", "group"]].drop_duplicates() if from_data \
        else HEADLINE_GROUPS
    svg = to_svg(targets_chart(rows, width=620, groups=groups))
    differences = reference_differences(by_run, card.runs, confidence=confidence)
    sections = [{"name": names[key], "rows": _run_rows(rows[rows["run_key"] == key])}
                for key in dict.fromkeys(rows.sort_values(["run"], kind="stable")["run_key"])]
    intro = ("Targets from data, imported for this study; a group without one keeps parity." if from_data
             else "No targets from data: every run is read against parity.")
    return {"intro": intro, "chart": _chart(svg), "reading_rule": READING_RULE,
            "differences": _differences(differences, names, groups), "sections": sections}


def _machine(card: AuditCard, result: Estimate) -> dict | None:
    """The machine audited (``present.machine_tables``), at the estimate's confidence and cut; None for a
    study without machine labels, and only the reason where it cannot be audited yet."""
    if card.machine is None:
        return None
    from sdaudit.analysis.machine_audit import audit
    from sdaudit.present.machine_tables import error_chart, report_section

    try:
        audited = audit(card.machine, confidence=result.confidence, skin_cut=result.skin_cut)
    except ValueError as error:  # no image labelled by both yet: the section says what to do next
        return {"missing": str(error)}
    return {"missing": "", **report_section(audited, _chart(to_svg(error_chart(audited))))}


def _reliability_rule(result: Estimate) -> str:
    """How the shown intervals are flagged: the method's rule, and Dawid–Skene's where it refitted them."""
    rule = reliability_rule(result.method)
    if (result.table["method"] == REFIT_METHOD).any():
        rule = f"{rule} Dawid–Skene's refitted intervals (“{REFIT_METHOD}”) are {WEAK_RULE}.".strip()
    return rule


def render_report(result: Estimate, card: AuditCard, *, title: str | None = None,
                  by_run: pd.DataFrame | None = None) -> str:
    """The whole report as one HTML document with the chart inline; with ``by_run``
    (``targets.estimates_by_run``), every run of the study: the forest chart across the runs first,
    generated minus reference, and one section per prompt/model against its own targets."""
    chart = _chart(to_svg(shares_chart(result.table, width=620, intervals=result.chart_note))) if result.images else None
    return TEMPLATES.get_template("report.html.j2").render(
        title=title or f"Representation audit: {card.study}",
        prompts=sorted({str(prompt) for prompt in card.runs["prompt"] if str(prompt)}),
        headline=_headline(result),
        chart=chart,
        label_note=result.label_note,
        reliability_rule=_reliability_rule(result),
        confidence=level(result.confidence),
        empty=EMPTY,
        shares=_shares_rows(result),
        agreement=_agreement(card, result),
        runs=_runs(by_run, card, result.confidence),
        machine=_machine(card, result),
        card=_card(card, result),
        # sdaudit's own sentences, whose only markup is their <em>; no user text in them
        limitations=[Markup(item) for item in LIMITATIONS],
        version=sdaudit.__version__,
        created=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        estimates=result.table.to_dict("records"),
    )
