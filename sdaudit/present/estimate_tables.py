"""Estimates in people's words: the tables the Results page, the CLI and the report show of shares,
plans and differences, each cell formatted by ``present.words`` and headed by ``TABLE_HEADERS``."""

from __future__ import annotations

import math

import pandas as pd

from sdaudit.analysis.estimate import NCHS_MIN_N_EFF, Estimate
from sdaudit.analysis.planning import plan
from sdaudit.present.words import (
    CLEARLY_DIFFERENT,
    DISTANCE_HEADER,
    NO_TARGET,
    count_of,
    interval,
    percent,
    points,
    verdict,
)
from sdaudit.scheme import FAMILY_LABELS, GROUP_LABELS, TABLE_HEADERS, UNRELIABLE_NOTE, reliability_note


def _groups(column: pd.Series) -> pd.Series:
    return column.map(GROUP_LABELS).fillna(column)


def _source(value) -> str:
    """A target's source as text: "" for parity, which a table holds as None or, once pandas has
    joined tables, as NaN (a float, and truthy)."""
    return value if isinstance(value, str) else ""


def _target(value) -> str:
    return NO_TARGET if pd.isna(value) else percent(value)


# With several raters an image counts toward a group by a fraction (its raters' share, a split tie, a
# posterior probability), so a count such as "8.5 of 12" is a sum: the column's heading says of what.
SUMMED_IMAGES = {
    "soft": "Images in group (raters' shares summed)",
    "majority": "Images in group (ties split)",
    "dawid-skene": "Images in group (probabilities summed)",
    "adjudicated": "Images in group (final labels or raters' shares)",
}


def images_header(labels: str, raters: int) -> str:
    """The heading of a count column: what a count sums when several raters label an image."""
    return SUMMED_IMAGES[labels] if raters > 1 else TABLE_HEADERS["images"]


def _in_words(rows: pd.DataFrame, targets: list[str], *, difference: bool) -> pd.DataFrame:
    """``estimate`` rows (one per family × group) in people's words, keyed by ``TABLE_HEADERS``'s names:
    the one place a share's row is worded, for the pooled table and each run's."""
    shown = {
        "family": rows["family"].map(FAMILY_LABELS),
        "group": _groups(rows["group"]),
        "images": [count_of(row.count, row.n) for row in rows.itertuples()],
        "share": [percent(share) for share in rows["share"]],
        "interval": [interval(row.low, row.high) for row in rows.itertuples()],
        "target": targets,
    }
    if difference:
        shown["difference"] = ["" if pd.isna(value) else points(value) for value in rows["difference"]]
    shown["verdict"] = _verdicts(rows)
    shown["note"] = [reliability_note(row.method, row.degenerate, row.small_count) for row in rows.itertuples()]
    return pd.DataFrame(shown)


def display_table(result: Estimate) -> pd.DataFrame:
    """One row per family × group, every cell in people's words and headed by ``TABLE_HEADERS``."""
    shown = _in_words(result.table, [_target(target) for target in result.table["target"]], difference=True)
    return shown.rename(columns={**TABLE_HEADERS, "images": images_header(result.labels, result.raters)})


def _verdicts(rows: pd.DataFrame) -> list[str]:
    """The verdict column: empty where there is no target or no interval (the target column says which)."""
    return ["" if pd.isna(row.target) else verdict(row.excludes_target, row.target, row.low) for row in rows.itertuples()]


FLOOR_NOTE = f"fewer would do for the power, but not for a reliable interval (effective size {NCHS_MIN_N_EFF})"


def plan_table(result: Estimate) -> pd.DataFrame:
    """``planning.plan`` in people's words: more images needed, or why none can be said."""
    planned = plan(result)

    def images(value: float) -> str:
        if math.isnan(value):
            return "share is 0 or 1: cannot say"
        return "never (the share equals the target)" if math.isinf(value) else f"{value:,.0f}"

    shown = pd.DataFrame({
        "family": planned["family"].map(FAMILY_LABELS),
        "group": planned["group"].map(GROUP_LABELS),
        "share": [percent(share) for share in planned["share"]],
        "target": [percent(target) for target in planned["target"]],
        "images_for_power": [images(value) for value in planned["images_for_power"]],
        "more_images": [images(value) for value in planned["more_images"]],
        "images_for_half_width": [images(value) for value in planned["images_for_half_width"]],
        "note": [FLOOR_NOTE if value else "" for value in planned["floored"]],
    })
    return shown.rename(columns=TABLE_HEADERS)


def comparison_table(differences: pd.DataFrame) -> pd.DataFrame:
    """``planning.compare_runs`` in people's words."""
    shown = pd.DataFrame({
        "run": differences["run"],
        "family": differences["family"].map(FAMILY_LABELS),
        "group": _groups(differences["group"]),
        "share_first": [percent(value) for value in differences["share_first"]],
        "share_second": [percent(value) for value in differences["share_second"]],
        "run_difference": [points(value) for value in differences["difference"]],
        "interval": [interval(low, high, to=" to ", number=points)
                     for low, high in zip(differences["low"], differences["high"])],
        "excludes_zero": [CLEARLY_DIFFERENT[bool(value)] for value in differences["excludes_zero"]],
        "note": ["" if value else UNRELIABLE_NOTE for value in differences["reliable"]],
    })
    return shown.rename(columns=TABLE_HEADERS)


def across_runs_table(rows: pd.DataFrame) -> pd.DataFrame:
    """``ResultsView.across_runs`` in people's words: one row per run, each against its own target
    with that target's source."""
    shown = pd.DataFrame({
        "run": rows["source"],
        "images": [count_of(row.count, row.n) for row in rows.itertuples()],
        "share": [percent(share) for share in rows["share"]],
        "interval": [interval(row.low, row.high) for row in rows.itertuples()],
        "target": [_target(target) for target in rows["target"]],
        "target_source": ["" if pd.isna(target) else _source(source)
                          for target, source in zip(rows["target"], rows["target_source"])],
        "verdict": _verdicts(rows),
        "note": [reliability_note(row.method, row.degenerate, row.small_count) for row in rows.itertuples()],
    })
    return shown.rename(columns=TABLE_HEADERS)


def reference_differences_table(rows: pd.DataFrame) -> pd.DataFrame:
    """``ResultsView.reference_differences`` in people's words."""
    shown = pd.DataFrame({
        "run": rows["run"],
        "reference_set": rows["reference"],
        "family": rows["family"].map(FAMILY_LABELS),
        "group": _groups(rows["group"]),
        "share_first": [percent(value) for value in rows["share_first"]],
        "share_second": [percent(value) for value in rows["share_second"]],
        "generated_difference": [points(value) for value in rows["difference"]],
        "interval": [interval(low, high, to=" to ", number=points) for low, high in zip(rows["low"], rows["high"])],
        "target": [percent(value) for value in rows["target"]],
        "target_source": rows["target_source"],
        "reading": rows["word"],
        DISTANCE_HEADER: [interval(low, high, to=" to ", number=points)
                          for low, high in zip(rows["distance_low"], rows["distance_high"])],
        "note": ["; ".join(part for part in (note, "" if reliable else UNRELIABLE_NOTE) if part)
                 for note, reliable in zip(rows["note"], rows["reliable"])],
    })
    return shown.rename(columns=TABLE_HEADERS)


def by_run_text(table: pd.DataFrame, study: str, names: dict[str, str], *, labels: str, raters: int) -> str:
    """``targets.estimates_by_run``'s rows (not empty) as the CLI prints them: a header line, then each
    run by its name (``names``: run key → ``records.run_labels``) over its rows in people's words."""
    parts = [f"one estimate per run of study {study}; each share against its run's target "
             "(parity unless the target's source is named)"]
    headers = {**TABLE_HEADERS, "images": images_header(labels, raters)}
    for key, rows in table.groupby("run_key", sort=False):
        targets = [NO_TARGET if pd.isna(target) else f"{percent(target)} ({_source(source) or 'parity'})"
                   for target, source in zip(rows["target"], rows["target_source"])]
        shown = _in_words(rows, targets, difference=False)
        parts.append(f"{names.get(key, key)}\n" + shown.rename(columns=headers).to_string(index=False))
    return "\n\n".join(parts)


# -- prediction-powered shares (``analysis.machine_human``) --------------------------------------

MACHINE_HUMAN_TITLE = "machine + human (prediction-powered)"
MACHINE_HUMAN_LIMITS = (
    "Prediction-powered inference (PPI++; Angelopoulos et al., Science 2023) corrects the machine's labels with "
    "people's labels on a uniform random sample of the images. It holds only if the sample is random (labelled "
    "in draw order, none skipped for what it shows) and the raters never saw the machine's answers. Shares are "
    "of the images the machine labelled, \"no person\" as a row of its own, so parity is their target only where "
    "people saw a person on every rated sample image; and of perceived presentation; "
    "gender is a binary simplification (plus unclear).")
MACHINE_HUMAN_CHART_NOTE = ("prediction-powered intervals (PPI++ read as Clopper–Pearson over its effective size); "
                            "hollow: fewer than 100 people's labels")
MACHINE_HUMAN_INTERVAL = ("each interval: PPI++'s share read as Clopper–Pearson over its effective number of "
                          "people's labels (covered ≥ 94% in every cell of benchmarks/ppi_coverage.py's simulation); "
                          "beside it, people's labels alone (Clopper–Pearson)")


def machine_human_table(table: pd.DataFrame) -> pd.DataFrame:
    """``machine_human.MachineHumanEstimate.table`` in people's words (a note every row shares is
    ``machine_human_header``'s, not a column); the effective sample size "–" with fewer than
    ``SIMULATED_MIN_HUMAN`` people's labels (the JSON keeps the number)."""
    from sdaudit.analysis.machine_human import SIMULATED_MIN_HUMAN

    shown = pd.DataFrame({
        "Family": table["family"].map(FAMILY_LABELS),
        "Group": table["group"].map(GROUP_LABELS).fillna(table["group"]),
        "Share": [percent(value) for value in table["share"]],
        "Interval": [interval(low, high) for low, high in zip(table["low"], table["high"])],
        "Target (parity)": [_target(value) for value in table["target"]],
        "People only": [percent(value) for value in table["human_share"]],
        "People-only interval": [interval(low, high) for low, high in zip(table["human_low"], table["human_high"])],
        "Machine-labelled images": [f"{value:,}" for value in table["n_machine"]],
        "People's labels": [f"{value:,}" for value in table["n_human"]],
        # below the simulated range the effective size (up to N) reads as more than the few labels support
        "Effective sample size": ["–" if pd.isna(value) or n_human < SIMULATED_MIN_HUMAN else f"{value:,.0f}"
                                  for value, n_human in zip(table["n_eff"], table["n_human"])],
        "Labelling": table["labelling"],
        "Note": table["note"],
    })
    return shown.drop(columns="Note") if table["note"].nunique() <= 1 else shown


def machine_human_header(result, names: dict[str, str]) -> str:
    """The lines above the table: which runs, labellings and people's labels fed it, and how."""
    from sdaudit.present.words import how_many, level, raters

    labellings = "; ".join(f"{'gender' if field == 'gender' else 'skin tone'} from {item.labeller} #{item.labelling_id} "
                           f"({item.model})" for field, item in result.labellings.items())
    runs = "; ".join(names.get(key, key) for key in result.run_keys)
    return (f"study {result.study}: {MACHINE_HUMAN_TITLE}, {level(result.confidence)} intervals\n"
            f"runs: {runs}\nmachine: {labellings}\n"
            f"people: {result.human_labels} labels on {how_many(result.rated, 'image')} of the "
            f"{result.sample_size}-image random human sample, {raters(result.raters)}; MST 1–{result.skin_cut} lighter\n"
            f"{MACHINE_HUMAN_INTERVAL}\n{MACHINE_HUMAN_LIMITS}"
            + (f"\nnote, every row: {notes[0]}" if len(notes := result.table["note"].unique()) == 1 and notes[0] else "")
            + "".join(f"\n{line}" for line in (result.target_note, result.left_out_note, result.skipped_note) if line))
