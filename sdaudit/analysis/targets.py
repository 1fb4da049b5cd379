"""Targets from data: the share each group would have if a model drew people as the world is.

Parity (1/k of a family's k groups) is the default target. A study may instead hold targets read
from a CSV — say the female share of each occupation from national labour statistics — one row
per prompt or slot value × family × group, each with its source::

    slot,family,group,target,source
    doctor,gender,female,0.46,ONS Labour Force Survey 2023 table 9
    nurse,gender,female,0.89,ONS Labour Force Survey 2023 table 9

A row names either a ``prompt`` (the whole prompt text) or a ``slot`` value (the prompt set's
value, e.g. ``doctor``); where both match a run, the prompt's row wins. ``import_targets`` checks
the whole file first: a bad row refuses the file with one line naming the row, and the store is
unchanged. Importing again replaces the targets it names and keeps the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sdaudit.errors import SdauditError
from sdaudit.files.csvfile import CsvFileError, read_csv
from sdaudit.records import require_new_study
from sdaudit.scheme import FAMILIES

if TYPE_CHECKING:
    import pandas as pd

    from sdaudit.analysis.options import EstimateOptions
    from sdaudit.store import Store

REQUIRED = ("family", "group", "target", "source")
KEYS = ("prompt", "slot")
MAX_BYTES = 2_000_000
MAX_ROWS = 20_000
MAX_TEXT = 500

COLUMNS = ("the targets file {path} needs the columns family, group, target, source and prompt or slot; "
           "its header is {header!r}.")
EMPTY = "the targets file {path} has a header but no rows."
TOO_MANY = "the targets file {path} has over {max:,} rows."
ROW = "the targets file {path}, row {row} (line {line}): {problem}"
KEY = "give a prompt or a slot value, exactly one of them, but prompt is {prompt!r} and slot is {slot!r}."
FAMILY = "family must be one of {choices} but is {value!r}."
GROUP = "group must be one of {choices} for family {family} but is {value!r}."
TARGET = "target must be a share from 0 to 1 (e.g. 0.46 for 46%) but is {value!r}."
SOURCE = "source must say where the target comes from (1 to {max} characters) but is {value!r}."
TEXT = "{name} must be at most {max} characters on one line but is {length} long."
DUPLICATE = "{kind} {value!r}, {family} {group} is also given on row {first}."
OVER_ONE = "the targets of {kind} {value!r} in family {family} add up to {total:.3f}, more than 1 (rows {rows})."


@dataclass(frozen=True)
class Target:
    """One target: a group's share for the runs with a given prompt or slot value, and its source."""

    applies_to: str  # "prompt" or "slot"
    value: str
    family: str
    group: str
    target: float
    source: str


@dataclass(frozen=True)
class TargetImport:
    study: str
    rows: int
    replaced: int  # rows that replaced a target the study held already


def _share(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 <= value <= 1 else None  # NaN and infinities fail the comparison


def read_targets(path: str | os.PathLike) -> list[Target]:
    """Every row of a targets CSV, checked; ``SdauditError`` naming the first bad row."""
    path = Path(path)
    try:
        table = read_csv(path, what="targets file", label=f"the targets file {path}", max_bytes=MAX_BYTES)
    except CsvFileError as error:
        raise SdauditError(str(error)) from None
    header = list(table.header)
    if len(table.rows) > MAX_ROWS:
        raise SdauditError(TOO_MANY.format(path=path, max=MAX_ROWS))
    if not set(REQUIRED) <= set(header) or not set(KEYS) & set(header):
        raise SdauditError(COLUMNS.format(path=path, header=",".join(header)))
    if not table.rows:
        raise SdauditError(EMPTY.format(path=path))
    rows, lines = [dict(zip(header, row)) for row in table.rows], table.row_numbers

    def refuse(row: int, problem: str) -> SdauditError:
        return SdauditError(ROW.format(path=path, row=row, line=lines[row - 1], problem=problem))

    targets: list[Target] = []
    first_row: dict[tuple, int] = {}
    for number, raw in enumerate(rows, start=1):
        cells = {name: value.strip() for name, value in raw.items()}
        for name, value in cells.items():
            if len(value) > MAX_TEXT:
                raise refuse(number, TEXT.format(name=name, max=MAX_TEXT, length=len(value)))
        given = [(kind, cells.get(kind, "")) for kind in KEYS if cells.get(kind, "")]
        if len(given) != 1:
            raise refuse(number, KEY.format(prompt=cells.get("prompt", ""), slot=cells.get("slot", "")))
        (kind, value), family, group = given[0], cells["family"], cells["group"]
        if family not in FAMILIES:
            raise refuse(number, FAMILY.format(choices=", ".join(FAMILIES), value=family))
        if group not in FAMILIES[family]:
            raise refuse(number, GROUP.format(choices=", ".join(FAMILIES[family]), family=family, value=group))
        if (share := _share(cells["target"])) is None:
            raise refuse(number, TARGET.format(value=cells["target"]))
        if not cells["source"]:
            raise refuse(number, SOURCE.format(max=MAX_TEXT, value=cells["source"]))
        key = (kind, value, family, group)
        if key in first_row:
            raise refuse(number, DUPLICATE.format(kind=kind, value=value, family=family, group=group, first=first_row[key]))
        first_row[key] = number
        targets.append(Target(kind, value, family, group, share, cells["source"]))

    totals: dict[tuple, list[int]] = {}
    for number, target in enumerate(targets, start=1):
        totals.setdefault((target.applies_to, target.value, target.family), []).append(number)
    for (kind, value, family), numbers in totals.items():
        total = sum(targets[n - 1].target for n in numbers)
        if total > 1 + 1e-9:
            raise refuse(numbers[-1], OVER_ONE.format(kind=kind, value=value, family=family, total=total,
                                                      rows=", ".join(map(str, numbers))))
    return targets


def import_targets(path: str | os.PathLike, store: Store, *, study: str) -> TargetImport:
    """Read and check a targets CSV, then store its rows for ``study`` (created if new) in one
    transaction; a row for a target the study already holds replaces it."""
    targets = read_targets(path)
    require_new_study(study, store.study_names())
    rows = [(t.applies_to, t.value, t.family, t.group, t.target, t.source) for t in targets]
    return TargetImport(study, len(rows), store.save_targets(study, rows, create_study=True))


def study_targets(store: Store, study: str) -> pd.DataFrame:
    """The study's targets: applies_to, value, family, group, target, source."""
    return store.targets(study)


def run_targets(runs: pd.DataFrame, targets: pd.DataFrame) -> dict[str, dict[tuple[str, str], tuple[float, str]]]:
    """Each run's targets, ``(family, group) -> (target, source)``, from ``runs`` (run_key, prompt,
    slot) and ``study_targets``: a slot value's rows, overridden by the run's prompt's rows."""
    found: dict[str, dict[tuple[str, str], tuple[float, str]]] = {}
    by_key = {(kind, value): rows for (kind, value), rows in targets.groupby(["applies_to", "value"])}
    for run in runs.itertuples():
        chosen: dict[tuple[str, str], tuple[float, str]] = {}
        for kind, value in (("slot", run.slot), ("prompt", run.prompt)):
            if isinstance(value, str) and (kind, value) in by_key:
                for row in by_key[(kind, value)].itertuples():
                    chosen[(row.family, row.group)] = (float(row.target), row.source)
        found[run.run_key] = chosen
    return found


def estimates_by_run(store: Store, study: str, options: EstimateOptions | None = None, *,
                     adjudications: pd.DataFrame | None = None) -> pd.DataFrame:
    """One ``estimate`` per run of ``study`` with ``options``, each against its own targets (parity
    where none is given): the estimate's rows with the run's ``run_key``, ``prompt``, ``model`` and
    ``slot`` first and each target's ``target_source`` (None for parity). Runs without annotations
    have no rows. ``adjudications`` is read only by ``labels="adjudicated"``."""
    import pandas as pd

    from sdaudit.analysis.estimate import RESULT_COLUMNS, estimate_each

    runs = store.runs(study=study).iloc[::-1]  # oldest first
    annotations = store.annotations(study=study)
    targets = run_targets(runs, study_targets(store, study))
    shares = {key: {group: target for group, (target, _) in chosen.items()} for key, chosen in targets.items()}
    each = estimate_each(annotations, options, targets=shares, adjudications=adjudications)
    tables = []
    for run in runs.itertuples():
        if run.run_key not in each:
            continue
        chosen = targets[run.run_key]
        table = each[run.run_key].table
        sources = [chosen.get((family, group), (None, None))[1] for family, group in zip(table["family"], table["group"])]
        table = table.assign(target_source=sources)
        for position, (name, value) in enumerate([("run_key", run.run_key), ("prompt", run.prompt),
                                                  ("model", run.model), ("slot", run.slot), ("kind", run.kind)]):
            table.insert(position, name, None if pd.isna(value) else value)
        tables.append(table)
    columns = ["run_key", "prompt", "model", "slot", "kind", *RESULT_COLUMNS, "target_source"]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)
