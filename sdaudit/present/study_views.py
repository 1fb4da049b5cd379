"""Views of a study's runs side by side: each generated run against the reference set of real
images that goes with its prompt, and a strip of a few images per run.

**Which reference goes with a run.** A reference set whose name is the run's slot value (or its
whole prompt) is that prompt's reference; otherwise, when the study holds exactly one reference
set, it is every generated run's reference; otherwise the run has none (and no difference is
shown for it).

**The difference and its words.** Per named group (`unclear` is left out), the generated share g
minus the reference share r, with Newcombe's hybrid score interval (``planning.compare_tables``).
Both are measured against the generated run's own target t (its target from data, else parity), and
which one lies further from it is a test of its own: the difference of distances |g − t| − |r − t|
with its interval (``planning.distance_difference``; on the same side of the target that is ±(g − r)
and Newcombe's interval, on opposite sides ±(g + r − 2t) with the MOVER interval of the sum):

- the interval of g − r includes zero → ``no clear difference`` (never one of the words below);
- it excludes zero and the distances' interval lies above zero → ``amplified``: the generated
  images lie further from the target than the real ones;
- … below zero → ``reduced``: they lie closer to it;
- … includes zero → ``other side of the target``: the two lie on opposite sides (or one on it),
  and which is further is not clear. On the same side the two intervals agree, so this is never
  the word there.

"Inherited" is never a label: it would claim that the generated share equals the reference's, and
an interval that includes zero shows only that no difference was found, not that there is none.
Where the difference is unclear and the reference's own interval excludes the target, the row's
note says the real images are themselves away from the target, which is what a reader asking
"did the model inherit this?" needs to know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from sdaudit.analysis.planning import compare_tables, distance_difference
from sdaudit.files.gallery import gallery
from sdaudit.present.words import AMPLIFIED, NO_CLEAR_DIFFERENCE, OTHER_SIDE, REDUCED
from sdaudit.records import image_number, run_subject
from sdaudit.scheme import UNCLEAR

REFERENCE_AWAY = "the real images are themselves away from the target"
STRIP_IMAGES = 6
READING_RULE = ("Each generated run minus its reference set, with Newcombe's score interval; both shares are "
                "measured against the run's target. Amplified: the generated share is further from the target than "
                "the real images'; reduced: closer — each only where the interval of the difference and that of the "
                "difference of distances from the target both exclude zero; other side of the target: the two lie "
                "on opposite sides and which is further is not clear. Where the difference's interval includes zero: "
                "“no clear difference”.")
DIFFERENCE_COLUMNS = ["run_key", "reference_key", "family", "group", "share_first", "share_second", "difference",
                      "low", "high", "target", "target_source", "excludes_zero", "distance", "distance_low",
                      "distance_high", "reliable", "word", "note"]


def difference_word(low: float, high: float, distance_low: float, distance_high: float) -> str:
    """The word for generated − reference (module docstring) from two intervals: ``low``–``high`` of
    g − r, and ``distance_low``–``distance_high`` of |g − t| − |r − t|. Never amplified or reduced
    while either includes zero."""
    if not (low > 0 or high < 0):
        return NO_CLEAR_DIFFERENCE
    if distance_low > 0:
        return AMPLIFIED
    if distance_high < 0:
        return REDUCED
    return OTHER_SIDE


def _reference_name(versions) -> str:
    found = json.loads(versions or "{}") if isinstance(versions, str) else (versions or {})
    return str(found.get("reference", ""))


def reference_runs(runs: pd.DataFrame) -> dict[str, str]:
    """Each generated run's reference run (``Store.runs`` rows), by run key; runs without one are
    left out (the rule is in the module docstring)."""
    references = runs[runs["kind"] == "reference"]
    by_name = {_reference_name(row.versions): row.run_key for row in references.itertuples()}
    only = references["run_key"].iloc[0] if len(references) == 1 else None
    found = {}
    for run in runs[runs["kind"] == "generated"].itertuples():
        names = [value for value in (run.slot, run.prompt) if isinstance(value, str) and value in by_name]
        chosen = by_name[names[0]] if names else only
        if chosen is not None:
            found[run.run_key] = chosen
    return found


def reference_differences(by_run: pd.DataFrame, runs: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Every generated run with a reference among ``by_run``'s runs, per named group: ``run_key``,
    ``reference_key``, family, group, the two shares, ``difference`` with Newcombe's ``low``–``high``,
    the generated run's ``target`` and ``target_source``, the difference of distances from it
    (``distance`` with ``distance_low``–``distance_high``), ``word`` and ``note`` (module docstring),
    ``reliable``. ``by_run`` holds estimate rows with ``run_key`` and ``target_source`` (as
    ``targets.estimates_by_run`` gives them); empty when no run has its reference there."""
    tables = {key: rows for key, rows in by_run.groupby("run_key", sort=False)}
    parts = []
    for run_key, reference_key in reference_runs(runs).items():
        if run_key not in tables or reference_key not in tables:
            continue
        generated, reference = tables[run_key], tables[reference_key]
        rows = compare_tables(generated, reference, confidence=confidence)
        rows = rows[(rows["group"] != UNCLEAR) & rows["share_first"].notna() & rows["share_second"].notna()]
        rows = rows.merge(generated[["family", "group", "target", "target_source", "n_eff"]], on=["family", "group"])
        rows = rows.merge(reference[["family", "group", "low", "high", "n_eff"]].rename(
            columns={"low": "reference_low", "high": "reference_high"}), on=["family", "group"],
            suffixes=("_first", "_second"))
        parts.append(rows.assign(run_key=run_key, reference_key=reference_key))
    if not parts:
        return pd.DataFrame(columns=DIFFERENCE_COLUMNS)
    table = pd.concat(parts, ignore_index=True)
    table["distance"], table["distance_low"], table["distance_high"] = distance_difference(
        table["share_first"], table["n_eff_first"], table["share_second"], table["n_eff_second"], table["target"],
        confidence=confidence)
    table["word"] = [difference_word(row.low, row.high, row.distance_low, row.distance_high)
                     for row in table.itertuples()]
    away = (table["reference_low"] > table["target"]) | (table["reference_high"] < table["target"])
    table["note"] = [REFERENCE_AWAY if word == NO_CLEAR_DIFFERENCE and is_away else ""
                     for word, is_away in zip(table["word"], away)]
    return table[DIFFERENCE_COLUMNS]


@dataclass(frozen=True)
class RunStrip:
    """A few images of one run, to see what a prompt and model drew."""

    run_key: str
    prompt: str  # the slot value, the prompt, or the reference set's name: what the strips are grouped by
    label: str  # how the run is named elsewhere on the page
    files: tuple[bytes, ...]
    captions: tuple[str, ...]
    missing: int  # images of the run that have no file here (or are not images) and are skipped


def run_strips(images: pd.DataFrame, runs: pd.DataFrame, labels: dict[str, str], home: str, *,
               count: int = STRIP_IMAGES) -> list[RunStrip]:
    """The first ``count`` images with a file of every run in ``labels`` (``Store.images`` and
    ``Store.runs`` rows), grouped by prompt (slot value, prompt, or reference set) then model."""
    chosen = runs[runs["run_key"].isin(list(labels))].copy()
    chosen["what"] = [run_subject(run) for run in chosen.itertuples()]
    strips = []
    for run in chosen.sort_values(["what", "model"], kind="stable").itertuples():
        rows = images[images["run_key"] == run.run_key].sort_values("seed")
        shown = gallery(home, list(rows["path"].fillna("")), [image_number(run.kind, seed) for seed in rows["seed"]], limit=count)
        strips.append(RunStrip(run.run_key, str(run.what), labels[run.run_key], shown.files, shown.captions,
                               shown.missing))
    return strips
