"""Agreement in people's words: the tables the Agreement page, the report and the CLI show, and the
Dawid–Skene corrected shares beside the soft-label ones (``corrected_table``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from sdaudit.analysis.agreement import Agreement, agreement
from sdaudit.analysis.estimate import Estimate, estimate
from sdaudit.analysis.label_modes import ASSUMPTION
from sdaudit.analysis.options import BOOTSTRAP_RNG_SEED
from sdaudit.present.words import ANSWERS, EMPTY, interval, level, percent
from sdaudit.scheme import (
    AGREEMENT_FIELD_LABELS,
    AGREEMENT_HEADERS,
    AGREEMENT_STATISTIC_LABELS,
    FAMILY_LABELS,
    GROUP_LABELS,
    UNCLEAR,
)
from sdaudit.store import Store

NEEDS_RATERS = "Agreement needs at least two raters on the same images"
SINGLE_RATER = "single rater: agreement not available (it needs at least two raters on the same images)."
READING = ("Krippendorff's α and Gwet's AC1 are 1 for perfect agreement and 0 for agreement no better than "
           "chance; Krippendorff advises relying on data with α ≥ 0.800 and drawing only tentative conclusions "
           "from 0.667 to 0.800. AC1 is less affected when one answer is far more common than the others. "
           "Agreement is the share of rater pairs on an image that gave the same answer (for MST, the same tone).")
OTHER_PAIRS = "the other pairs (median of {count})"
OTHER_RATERS = "the other raters (median of {count})"
SOFT_ROW = "soft labels (raters' average)"
CORRECTED_ROW = "corrected for rater error (Dawid–Skene)"


def _statistic(value: float) -> str:
    """α and AC1 to three places (their scale is −1 to 1, not a share)."""
    return EMPTY if pd.isna(value) else f"{value:.3f}"


def _number(value: float, is_percent: bool) -> str:
    return percent(value) if is_percent else _statistic(value)


def summary_table(result: Agreement) -> pd.DataFrame:
    """One row per field × statistic: value, interval, images and raters, in people's words."""
    table = result.table
    percent_rows = table["statistic"] == "percent_agreement"
    shown = pd.DataFrame({
        "field": table["field"].map(AGREEMENT_FIELD_LABELS),
        "statistic": table["statistic"].map(AGREEMENT_STATISTIC_LABELS),
        "value": [_number(value, is_percent) for value, is_percent in zip(table["value"], percent_rows)],
        "interval": [interval(low, high, number=percent if is_percent else _statistic)
                     for low, high, is_percent in zip(table["low"], table["high"], percent_rows)],
        "images": table["images"],
        "raters": table["raters"],
    })
    return shown.rename(columns=AGREEMENT_HEADERS)


def _median_row(rows: pd.DataFrame, names: dict[str, str]) -> dict:
    """One row standing for ``rows`` (of one field): the median of each number, ``names`` in the name columns."""
    numbers = rows.drop(columns=["field", *names]).median()
    return {"field": rows["field"].iloc[0], **names, **numbers.to_dict(), "images": round(numbers["images"])}


def _own_and_the_rest(rows: pd.DataFrame, rater: str, columns: tuple[str, ...], label: str) -> pd.DataFrame:
    """Per field, the rows naming ``rater`` in ``columns`` (``rater`` put in the first), then the
    others in one row of medians named ``label``: a rater sees their own agreement, and everyone
    else's only in aggregate."""
    shown = []
    for _, by_field in rows.groupby("field", sort=False):
        own = by_field[(by_field[list(columns)] == rater).any(axis=1)].copy()
        if len(columns) == 2:  # a pair: the rater first, the other rater second
            swapped = own[columns[1]] == rater
            own.loc[swapped, list(columns)] = own.loc[swapped, list(columns[::-1])].to_numpy()
        rest = by_field.drop(own.index)
        if len(own):
            shown.append(own)
        if len(rest):
            names = dict.fromkeys(columns, "")
            names[columns[0]] = label.format(count=len(rest))
            shown.append(pd.DataFrame([_median_row(rest, names)]))
    return pd.concat(shown, ignore_index=True) if shown else rows


def pairs_table(result: Agreement, *, for_rater: str | None = None) -> pd.DataFrame:
    """Every pair of raters per field, on the images both rated (an admin's view, ``for_rater`` None);
    for a rater (``for_rater``: their name, "" for none given), their own pairs, then the other pairs
    in one row of medians per field."""
    pairs = result.pairs
    if for_rater is not None:
        pairs = _own_and_the_rest(pairs, for_rater, ("rater_a", "rater_b"), OTHER_PAIRS)
    shown = pd.DataFrame({
        "field": pairs["field"].map(AGREEMENT_FIELD_LABELS),
        "rater_a": pairs["rater_a"],
        "rater_b": pairs["rater_b"],
        "images": pairs["images"],
        "percent_agreement": [percent(value) for value in pairs["percent_agreement"]],
        "krippendorff_alpha": [_statistic(value) for value in pairs["krippendorff_alpha"]],
        "gwet_ac1": [_statistic(value) for value in pairs["gwet_ac1"]],
    })
    return shown.rename(columns=AGREEMENT_HEADERS)


def raters_table(result: Agreement, *, for_rater: str | None = None) -> pd.DataFrame:
    """Each rater against the others per field: how often they gave the same answer, and α without them
    (an admin's view, ``for_rater`` None); for a rater, their own row, then the other raters' medians."""
    by_rater = result.by_rater
    if for_rater is not None:
        by_rater = _own_and_the_rest(by_rater, for_rater, ("rater",), OTHER_RATERS)
    shown = pd.DataFrame({
        "field": by_rater["field"].map(AGREEMENT_FIELD_LABELS),
        "rater": by_rater["rater"],
        "images": by_rater["images"],
        "agreement_with_others": [percent(value) for value in by_rater["agreement_with_others"]],
        "alpha_without_rater": [_statistic(value) for value in by_rater["alpha_without_rater"]],
    })
    return shown.rename(columns=AGREEMENT_HEADERS)


def agreement_text(result: Agreement) -> str:
    """The three tables as plain text (the CLI's output)."""
    header = (f"{len(result.raters)} raters answered; {level(result.confidence)} bootstrap intervals over images; "
              f"MST 1–{result.skin_cut} lighter. {ANSWERS}")
    return "\n\n".join([header, summary_table(result).to_string(index=False),
                        "every pair of raters\n" + pairs_table(result).to_string(index=False),
                        "each rater against the others\n" + raters_table(result).to_string(index=False)])


def corrected_table(soft: Estimate, corrected: Estimate) -> pd.DataFrame:
    """Per named group, the soft-label share and the Dawid–Skene corrected one, each with its interval."""
    rows = []
    for family, group in ((row.family, row.group) for row in soft.table.itertuples() if row.group != UNCLEAR):
        for name, result in ((SOFT_ROW, soft), (CORRECTED_ROW, corrected)):
            row = result.row(family, group)
            rows.append({"Family": FAMILY_LABELS[family], "Group": GROUP_LABELS.get(group, group), "Labels": name,
                         "Share": percent(row["share"]), "Interval": interval(row["low"], row["high"])})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class AgreementView:
    """What the Agreement page shows for one study: the agreement (None when nothing is annotated)
    and, on request, the Dawid–Skene corrected shares."""

    study: str
    skin_cut: int
    annotations: pd.DataFrame = field(repr=False)
    result: Agreement | None = field(repr=False)

    @property
    def raters(self) -> int:
        return 0 if self.result is None else len(self.result.raters)

    @property
    def fingerprint(self) -> str:
        """Changes whenever an annotation is added or edited (for caching the slow correction)."""
        rows = self.annotations
        latest = rows["updated_at"].max() if "updated_at" in rows and len(rows) else ""
        return f"{len(rows)}:{latest}"

    def corrected(self) -> pd.DataFrame:
        """Each named group's soft-label share beside its Dawid–Skene corrected share, both with a
        bootstrap interval over images (the model refitted on each resample)."""
        options = dict(method="bootstrap", skin_cut=self.skin_cut, bootstrap_rng_seed=BOOTSTRAP_RNG_SEED)
        return corrected_table(estimate(self.annotations, **options),
                               estimate(self.annotations, labels="dawid-skene", **options))

    assumption = ASSUMPTION


def agreement_view(store: Store, study: str, *, skin_cut: int, confidence: float = 0.95) -> AgreementView:
    """Agreement between the raters of ``study`` (``ValueError`` for an option ``agreement`` refuses)."""
    annotations = store.annotations(study=study)
    result = None if annotations.empty else agreement(annotations, skin_cut=skin_cut, confidence=confidence,
                                                       bootstrap_rng_seed=BOOTSTRAP_RNG_SEED)
    return AgreementView(study=study, skin_cut=skin_cut, annotations=annotations, result=result)
