"""The machine audited, in people's words: the tables, chart, CLI text, JSON and report section of a
``machine_audit.MachineAudit``, each cell formatted by ``present.words``."""

from __future__ import annotations

import json
import math

import altair as alt
import pandas as pd

from sdaudit.analysis.machine_audit import (
    ABOVE,
    BELOW,
    FIELDS,
    INCLUDES,
    MIN_IMAGES,
    TONES,
    MachineAudit,
)
from sdaudit.present.words import CHART_PERCENT, CLEARLY_DIFFERENT, EMPTY, EXCLUDES, interval, level, percent, points
from sdaudit.scheme import AGREEMENT_FIELD_LABELS, FAMILY_LABELS, GROUP_LABELS

TOO_FEW = f"too few images (under {MIN_IMAGES}): no number is given"
NO_KAPPA = "κ undefined: one side gave a single answer"
PEOPLE_RULE = ("People's label of an image: the answer most of its raters gave (a tie in gender presentation or "
               "lighter/darker reads as unclear, a tie in MST leaves the image out of the MST rows; a person is "
               "present when at least half of the raters who answered saw one).")
AGREEMENT_READING = ("Accuracy: the share of images on which the machine gave people's answer, with its exact "
                     "(Clopper–Pearson) interval. Cohen's κ: agreement beyond chance (1 perfect, 0 no better than "
                     "chance; linear-weighted for MST), with its asymptotic interval. A tone is people's label of "
                     "the image.")
DIFFERENCE_READING = ("The machine's error rate on one tone minus its rate on the other(s), in percentage points, "
                      "with Newcombe's hybrid score interval: above zero, the machine errs more on that tone.")
SIDE_READING = ("Automatic only: what a tool that takes the machine's answers as the truth would publish, with the "
                "exact binomial interval it would give (it ignores the machine's own error). Prediction-powered: "
                "the machine's answers on every image corrected by people's labels of the random human sample "
                "(PPI++). Human only: people's labels of the sample's rated images alone. Each is a share of all images "
                "(the machine-labelled images the sample was drawn from; for human only, the rated sample images), "
                "\"no person\" a row of its own. A verdict is where the interval lies against parity, given only "
                "for a family where people saw a person on every rated sample image: otherwise these shares count "
                "images without a person too, and parity among people is not their target.")
VERDICT_WORDS = {BELOW: f"{EXCLUDES}: below", INCLUDES: "interval includes the target", ABOVE: f"{EXCLUDES}: above"}
SAME_VERDICT = {True: "yes", False: "no"}
TONE_WORDS = {"all": "all images"}
SIDE_HEADERS = ["Family", "Group", "Parity", "Automatic only", "Automatic verdict", "Prediction-powered",
                "Prediction-powered verdict", "Human only", "Human-only verdict", "Same verdict as prediction-powered",
                "Labelling", "Note"]
CHART_WIDTH = 660


def _field(name: str) -> str:
    return AGREEMENT_FIELD_LABELS[name]


def _kappa(value: float) -> str:
    return EMPTY if pd.isna(value) else f"{value:.3f}"


def _share(share, low, high) -> str:
    """A share and its interval in one cell: ``36.2% (30.1% – 42.0%)``."""
    return EMPTY if pd.isna(share) else f"{percent(share)} ({interval(low, high)})"


def labelling_words(audit: MachineAudit) -> str:
    """Which labelling is audited, and on how many images."""
    labelling = audit.labelling
    revision = f" at revision {labelling.model_revision}" if labelling.model_revision else ""
    return (f"Labelling {labelling.labelling_id} of study “{labelling.study}”: labeller {labelling.labeller}, model "
            f"{labelling.model}{revision}. The machine answered {audit.images_machine} images; people labelled "
            f"{audit.images_compared} of them too ({audit.images_in_sample} in the human sample). "
            f"{level(audit.confidence)} intervals; MST 1–{audit.skin_cut} lighter.")


def agreement_table(audit: MachineAudit, tones: tuple[str, ...] = ("all",), *, enough_only: bool = False) -> pd.DataFrame:
    """Per field and tone (of ``tones``): images, accuracy and κ with their intervals, and why a number is
    missing; ``enough_only`` leaves out the MST tones with too few images (``too_few_tones`` names them)."""
    rows = audit.agreement[audit.agreement["tone"].isin(tones)]
    if enough_only:
        rows = rows[~(rows["too_few"] & rows["tone"].str.startswith("MST"))]
    notes = [TOO_FEW if row.too_few else NO_KAPPA if pd.isna(row.kappa) else "" for row in rows.itertuples()]
    return pd.DataFrame({
        "Field": rows["field"].map(_field),
        "People's tone": rows["tone"].map(lambda tone: TONE_WORDS.get(tone, tone)),
        "Images": rows["images"],
        "Accuracy": [EMPTY if pd.isna(value) else percent(value) for value in rows["accuracy"]],
        "Interval": [interval(low, high) for low, high in zip(rows["low"], rows["high"])],
        "Cohen's κ": rows["kappa"].map(_kappa),
        "κ interval": [interval(low, high, number=_kappa) for low, high in zip(rows["kappa_low"], rows["kappa_high"])],
        "Note": notes,
    })


def too_few_tones(audit: MachineAudit) -> str:
    """The MST tones left out of the tables for too few images, with their images per field."""
    rows = audit.agreement[audit.agreement["too_few"] & audit.agreement["tone"].str.startswith("MST")]
    if rows.empty:
        return ""
    by_field = {name: ", ".join(f"{row.tone} ({row.images})" for row in group.itertuples())
                for name, group in rows.groupby("field", sort=False)}
    listed = (next(iter(by_field.values())) if len(set(by_field.values())) == 1 and len(by_field) == len(FIELDS)
              else "; ".join(f"{_field(name)}: {tones}" for name, tones in by_field.items()))
    return f"MST tones with under {MIN_IMAGES} images (no number; images in brackets): {listed}."


def differences_table(audit: MachineAudit, *, every_tone: bool = False) -> pd.DataFrame:
    """The machine's error on darker minus lighter per field (``every_tone``: and on each MST tone with
    enough images minus the other tones)."""
    rows = audit.differences[(audit.differences["tone"] == "darker") | (every_tone & ~audit.differences["too_few"])]
    excludes = [None if pd.isna(low) else bool(low > 0 or high < 0) for low, high in zip(rows["low"], rows["high"])]
    return pd.DataFrame({
        "Field": rows["field"].map(_field),
        "Tone": rows["tone"],
        "Against": rows["versus"],
        "Error on the tone": [f"{percent(error)} ({errors} of {images})" if not pd.isna(error) else f"{errors} of {images}"
                              for error, errors, images in zip(rows["error"], rows["errors"], rows["images"])],
        "Error against": [f"{percent(error)} ({errors} of {images})" if not pd.isna(error) else f"{errors} of {images}"
                          for error, errors, images in zip(rows["error_versus"], rows["errors_versus"],
                                                           rows["images_versus"])],
        "Difference": rows["difference"].map(points),
        "Interval": [interval(low, high, to=" to ", number=points) for low, high in zip(rows["low"], rows["high"])],
        "Clearly different": [EMPTY if value is None else CLEARLY_DIFFERENT[value] for value in excludes],
        "Note": [TOO_FEW if too_few else "" for too_few in rows["too_few"]],
    })


def confusion_table(audit: MachineAudit, field_name: str, tone: str = "all") -> pd.DataFrame:
    """People's answers (rows) by the machine's (columns) for one field and tone: image counts."""
    cells = audit.confusion[(audit.confusion["field"] == field_name) & (audit.confusion["tone"] == tone)]
    table = cells.pivot(index="people", columns="machine", values="images")
    order = list(FIELDS[field_name])
    table = table.reindex(index=order, columns=order)
    words = {answer: f"MST {answer}" if field_name == "mst" else GROUP_LABELS.get(answer, answer) for answer in order}
    table.index = [f"people: {words[answer]}" for answer in order]
    table.columns = [f"machine: {words[answer]}" for answer in order]
    return table.rename_axis(None).reset_index(names="")


def side_by_side_table(audit: MachineAudit) -> pd.DataFrame | None:
    """Per group: the three readings with their verdicts, whether the automatic one agrees with the
    prediction-powered one, the labelling that fed the row and its note (left out when no row has one);
    None where there is no side by side (``side_by_side_missing`` says why)."""
    rows = audit.side_by_side
    if rows is None:
        return None

    def verdict(side) -> str:
        return VERDICT_WORDS.get(side, EMPTY) if isinstance(side, str) else EMPTY

    cells = [[FAMILY_LABELS[row.family], GROUP_LABELS.get(row.group, row.group),
              EMPTY if pd.isna(row.target) else percent(row.target),
              _share(row.auto_share, row.auto_low, row.auto_high), verdict(row.auto_verdict),
              _share(row.ppi_share, row.ppi_low, row.ppi_high), verdict(row.ppi_verdict),
              _share(row.human_share, row.human_low, row.human_high), verdict(row.human_verdict),
              SAME_VERDICT.get(row.same_verdict, EMPTY) if isinstance(row.same_verdict, bool) else EMPTY,
              row.labelling, row.note]
             for row in rows.itertuples()]
    table = pd.DataFrame(cells, columns=SIDE_HEADERS)
    return table.drop(columns="Note") if rows["note"].eq("").all() else table


def different_verdicts(audit: MachineAudit) -> list[str]:
    """The groups on which the automatic-only audit reaches another verdict than the prediction-powered one."""
    rows = audit.side_by_side
    if rows is None:
        return []
    return [f"{GROUP_LABELS.get(row.group, row.group)}" for row in rows.itertuples() if row.same_verdict is False]


def error_chart(audit: MachineAudit) -> alt.Chart:
    """The machine's error rate on people's lighter and darker images and on each MST tone, one panel
    per field, each rate's exact interval as a bar; a tone with too few images has no point, only its
    count written at the bottom."""
    rows = audit.agreement[audit.agreement["tone"] != "all"].copy()
    rows["error"] = 1 - rows["accuracy"]
    rows["error_low"], rows["error_high"] = 1 - rows["high"], 1 - rows["low"]
    rows["field_title"] = rows["field"].map(_field)
    rows["errors"] = rows["images"] - rows["matches"]
    rows["few"] = [f"{images}" if too_few else "" for too_few, images in zip(rows["too_few"], rows["images"])]
    rows["base"] = 0.0
    x = alt.X("tone:N", sort=list(TONES[1:]), scale=alt.Scale(domain=list(TONES[1:])),
              title="People's skin tone: lighter, darker, MST 1–10 (too few images: their count only)",
              axis=alt.Axis(labelAngle=0, labelOverlap=False, labelFontSize=11, labelExpr="replace(datum.label, 'MST ', '')"))
    share_axis = alt.Axis(format="%")
    tooltip = [alt.Tooltip("field_title:N", title="Field"), alt.Tooltip("tone:N", title="Tone"),
               alt.Tooltip("errors:Q", title="Wrong"), alt.Tooltip("images:Q", title="Images")]
    base = alt.Chart(rows).encode(x=x, tooltip=tooltip)
    shown = base.transform_filter("isValid(datum.error)")
    bars = shown.mark_rule(strokeWidth=3, opacity=0.5).encode(
        y=alt.Y("error_low:Q", title="Machine's error rate", axis=share_axis, scale=alt.Scale(domain=[0, 1])),
        y2="error_high:Q")
    dots = shown.mark_point(filled=True, size=60, color="#D55E00").encode(
        y=alt.Y("error:Q"), tooltip=[*tooltip, alt.Tooltip("error:Q", title="Error rate", format=CHART_PERCENT)])
    counts = base.transform_filter("datum.few != ''").mark_text(dy=-6, color="#6b7280", fontSize=10).encode(
        y=alt.Y("base:Q"), text="few:N")
    return (bars + dots + counts).properties(width=CHART_WIDTH, height=150).facet(
        row=alt.Row("field_title:N", title=None, sort=[_field(name) for name in FIELDS],
                    header=alt.Header(labelAngle=0, labelOrient="top", labelAnchor="start", labelFontWeight="bold")),
    )


def audit_text(audit: MachineAudit) -> str:
    """The CLI's text: every table, under headings, in people's words."""
    parts = [labelling_words(audit), PEOPLE_RULE,
             audit.agreement_scope,
             "Agreement with people\n" + agreement_table(audit).to_string(index=False),
             "By people's skin tone\n" + agreement_table(audit, TONES[1:], enough_only=True).to_string(index=False),
             AGREEMENT_READING, too_few_tones(audit),
             "The machine's error across tones\n" + differences_table(audit, every_tone=True).to_string(index=False),
             DIFFERENCE_READING]
    for field_name in FIELDS:
        parts.append(f"Confusion, {_field(field_name)} (images)\n"
                     + confusion_table(audit, field_name).to_string(index=False))
    side = side_by_side_table(audit)
    if side is None:
        parts.append(f"No side-by-side shares: {audit.side_by_side_missing}")
    else:
        changed = different_verdicts(audit)
        verdicts = (f"The automatic-only audit reaches another verdict than the prediction-powered one on: "
                    f"{'; '.join(changed)}." if changed else
                    "The automatic-only audit reaches the prediction-powered verdict on every group with a target.")
        parts += ["What each audit would publish\n" + side.to_string(index=False), SIDE_READING,
                  audit.left_out_after_draw, verdicts]
    return "\n\n".join(part for part in parts if part)


def audit_json(audit: MachineAudit) -> str:
    """Every number of the audit as one JSON object (blank cells null)."""
    def records(table: pd.DataFrame | None):
        if table is None:
            return None
        return table.astype(object).where(table.notna(), None).to_dict("records")

    labelling = audit.labelling
    document = {
        "study": labelling.study, "labelling_id": labelling.labelling_id, "labeller": labelling.labeller,
        "model": labelling.model, "model_revision": labelling.model_revision, "confidence": audit.confidence,
        "skin_cut": audit.skin_cut, "min_images": MIN_IMAGES, "images_machine": audit.images_machine,
        "images_compared": audit.images_compared, "images_in_sample": audit.images_in_sample,
        "agreement_images": audit.agreement_images, "agreement_on_sample": audit.agreement_on_sample,
        "left_out_after_draw": audit.left_out_after_draw or None,
        "agreement": records(audit.agreement), "confusion": records(audit.confusion),
        "differences": records(audit.differences), "side_by_side": records(audit.side_by_side),
        "side_by_side_missing": audit.side_by_side_missing or None, "notes": list(audit.notes),
    }
    return json.dumps(document, indent=1, default=_plain)


def _plain(value):
    """numpy numbers as JSON numbers (NaN as null)."""
    number = value.item() if hasattr(value, "item") else value
    return None if isinstance(number, float) and math.isnan(number) else number


def report_section(audit: MachineAudit, svg: str) -> dict:
    """The report's section: the tables as header and rows of text, the chart's SVG, the readings."""
    def cells(table: pd.DataFrame) -> dict:
        return {"head": [str(name) for name in table.columns],
                "rows": [[str(value) for value in row] for row in table.itertuples(index=False)]}

    side = side_by_side_table(audit)
    changed = different_verdicts(audit)
    return {
        "labelling": labelling_words(audit) + " " + audit.agreement_scope, "people_rule": PEOPLE_RULE,
        "reading": AGREEMENT_READING,
        "agreement": cells(agreement_table(audit, ("all", "lighter", "darker"))),
        "differences": cells(differences_table(audit)), "difference_reading": DIFFERENCE_READING,
        "chart": svg, "side": None if side is None else cells(side),
        "side_reading": " ".join(part for part in (SIDE_READING, audit.left_out_after_draw) if part),
        "side_missing": audit.side_by_side_missing,
        "verdicts": (f"An automatic-only audit would reach another verdict on: {'; '.join(changed)}." if changed
                     else "An automatic-only audit would reach the same verdicts." if side is not None else ""),
    }
