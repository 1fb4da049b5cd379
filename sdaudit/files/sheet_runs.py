"""The runs of an sdaudit annotation export: each row carries its run's identity and settings
(``RUN_SETTING_COLUMNS``), so an import recreates every run of the study as it was made (its key,
kind, prompt, model, settings and the time it was made) and ``estimate --by run`` and ``compare``
read the same after the round trip.

An export written before these columns existed has none of them: its rows hang on one imported run
(``sheets.import_annotations``). A sheet with some of the columns but not all is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from sdaudit.files.sheet_cells import SheetError, sheet_problem
from sdaudit.generation.spec import MAX_BATCH_SIZE, MAX_SIDE, MAX_STEPS
from sdaudit.records import RUN_KINDS, RunRecord
from sdaudit.store import Store

# The run's columns in an export, beside each annotation; the run's kind and creation time are
# prefixed (a sheet's "kind" or "created_at" could be read as the annotation's).
RUN_SETTING_COLUMNS = ("run_kind", "model", "model_revision", "pipeline_class", "prompt", "negative_prompt", "slot",
                       "scheduler", "steps", "guidance", "width", "height", "dtype", "device", "batch_size",
                       "safety_checker", "versions", "run_created_at")
SOME_RUN_COLUMNS = ("{name} has the run column(s) {present} but lacks {missing}: an export carries all of its "
                    "runs' columns (each run recreated as it was) or none (every row onto one imported run).")
RUN_DISAGREES = ("{name} rows {first} and {second} give run {run_key} two {column} values ({one!r} and {other!r}); "
                 "one run has one set of settings.")
# A run's texts in the CSV: the CSV reader refuses control characters (a prompt may hold one), so the
# CSV writes each as \uXXXX and doubles every backslash; the Parquet export keeps the raw text
RUN_TEXT_COLUMNS = ("model", "model_revision", "pipeline_class", "prompt", "negative_prompt", "slot", "scheduler",
                    "dtype", "device")
_TO_ESCAPE = re.compile(r"[\\\x00-\x1f\x7f-\x9f]")
_ESCAPED = re.compile(r"\\(\\|u[0-9a-fA-F]{4})")
RUN_KEY_TEXT = "expected a run key of 1 to 64 letters, digits, '-', '_' or '.' but found {value!r}"
_RUN_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class SheetRun:
    """One run as an export gives it: its record (the sheet's key, the study it goes into) and when
    it was made (None: the export did not say; it is then dated by the import)."""

    record: RunRecord
    created_at: datetime | None


def run_settings(runs: pd.DataFrame) -> pd.DataFrame:
    """``Store.runs()`` rows as an export's run columns, one row per ``run_key``."""
    settings = runs.rename(columns={"kind": "run_kind", "created_at": "run_created_at"})
    return settings[["run_key", *RUN_SETTING_COLUMNS]]


def escaped_run_texts(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of an export's ``frame`` fit for its CSV: every run text cell (``RUN_TEXT_COLUMNS``)
    with each backslash doubled and each control character written as ``\\uXXXX`` (``unescaped``
    reads it back)."""
    def escape(value):
        if not isinstance(value, str):
            return value
        return _TO_ESCAPE.sub(lambda found: "\\\\" if found.group() == "\\" else f"\\u{ord(found.group()):04x}", value)

    return frame.assign(**{column: frame[column].map(escape) for column in RUN_TEXT_COLUMNS})


def unescaped(value: str) -> str:
    """A run text cell of an export's CSV as the text was: ``\\\\`` → ``\\``, ``\\uXXXX`` → that
    character; any other backslash stays (a sheet written by hand)."""
    return _ESCAPED.sub(lambda found: "\\" if found.group(1) == "\\" else chr(int(found.group(1)[1:], 16)), value)


def has_run_columns(name: str, columns) -> bool:
    """Whether a sheet's ``columns`` carry its runs: all of ``RUN_SETTING_COLUMNS`` (True), none (False),
    else ``SOME_RUN_COLUMNS``."""
    present = [column for column in RUN_SETTING_COLUMNS if column in columns]
    if present and len(present) < len(RUN_SETTING_COLUMNS):
        missing = [column for column in RUN_SETTING_COLUMNS if column not in columns]
        raise SheetError(SOME_RUN_COLUMNS.format(name=name, present=", ".join(present), missing=", ".join(missing)))
    return bool(present)


def parse_runs(path: Path, frame: pd.DataFrame, study: str) -> dict[str, SheetRun]:
    """Each run of an export (``frame``: its cells as written), by the sheet's run key: every cell of
    ``RUN_SETTING_COLUMNS`` checked, and every row of one run giving the same settings."""
    runs: dict[str, SheetRun] = {}
    first_row: dict[str, int] = {}
    for index, record in enumerate(frame.to_dict("records")):
        run_key = record["run_key"].strip()
        if not _RUN_KEY.fullmatch(run_key):
            raise sheet_problem(path, index, "run_key", RUN_KEY_TEXT.format(value=run_key))
        run = _sheet_run(path, index, record, run_key, study)
        if run_key not in runs:
            runs[run_key], first_row[run_key] = run, index
            continue
        for column, one, other in _differences(runs[run_key], run):
            raise SheetError(RUN_DISAGREES.format(name=path.name, first=first_row[run_key] + 2, second=index + 2,
                                                  run_key=run_key, column=column, one=one, other=other))
    return runs


def target_keys(store: Store, study: str, sheet_keys) -> dict[str, str]:
    """The key each of the sheet's runs takes in ``study``: its own, when the store has no run of that
    key or has it in ``study`` (a re-import); else (the store holds the key in another study, as when
    a study is copied into a new one in the same home) a key made from the study and the sheet's key,
    the same on every import."""
    chosen = {}
    for key in sheet_keys:
        held = store.run(key)
        if held is None or held["study"] == study:
            chosen[key] = key
        else:
            chosen[key] = hashlib.sha256(f"imported\0{study}\0{key}".encode()).hexdigest()[:16]
    return chosen


# What a re-import must agree on with the run the store holds (``STORED_DIFFERS``)
COMPARED = ("kind", "model", "prompt", "negative_prompt", "scheduler", "steps", "guidance", "width", "height", "dtype")
STORED_DIFFERS = ("{name} gives run {run_key} {column} {given!r}, but the store's run {run_key} has {held!r}; an export "
                  "imported again must give its runs' settings as they are (nothing was imported).")
NO_SUCH_IMAGE = ("{name} row {row} names seed {seed} of run {run_key}, which the store holds without that image; an "
                 "export names only its runs' images (nothing was imported).")


def check_against_store(store: Store, path: Path, runs: dict[str, SheetRun], keys: dict[str, str],
                        rows: pd.DataFrame) -> None:
    """A sheet's run that the store holds already (a re-import) must give that run's settings, and
    name only images the run has: a hand-edited seed would add an image without a file to a
    generated run, which generating again would then pass over."""
    for sheet_key, sheet_run in runs.items():
        held = store.run(keys[sheet_key])
        if held is None:
            continue
        for field_name in COMPARED:
            given, kept = getattr(sheet_run.record, field_name), held[field_name]
            if given != kept and not (pd.isna(kept) and given in (None, "")):
                raise SheetError(STORED_DIFFERS.format(name=path.name, run_key=keys[sheet_key], held=kept, given=given,
                                                       column={"kind": "run_kind"}.get(field_name, field_name)))
        seeds = set(store.images(run_key=keys[sheet_key])["seed"].astype(int))
        for index, seed in rows.loc[rows["run_key"] == keys[sheet_key], "seed"].items():
            if int(seed) not in seeds:
                raise SheetError(NO_SUCH_IMAGE.format(name=path.name, row=index + 2, seed=seed, run_key=keys[sheet_key]))


# -- one row's run cells --------------------------------------------------------------------------


def _sheet_run(path: Path, index: int, record: dict, run_key: str, study: str) -> SheetRun:
    def text(column: str, *, required: bool = False) -> str | None:
        value = record[column]
        if value.strip() == "":
            if required:
                raise sheet_problem(path, index, column, f"a run's {column} is required")
            return None
        return unescaped(value)

    def whole(column: str, low: int, high: int, *, blank_ok: bool = False) -> int | None:
        value = record[column].strip()
        if value == "" and blank_ok:
            return None
        if value.endswith(".0"):  # a spreadsheet may write 50 as 50.0
            value = value[:-2]
        if not (value.isascii() and value.isdigit() and low <= int(value) <= high):
            raise sheet_problem(path, index, column, f"expected a whole number from {low} to {high} "
                                f"but found {record[column].strip()!r}")
        return int(value)

    kind = record["run_kind"].strip()
    if kind not in RUN_KINDS:
        raise sheet_problem(path, index, "run_kind", f"expected one of {', '.join(RUN_KINDS)} but found {kind!r}")
    guidance_text = record["guidance"].strip()
    try:
        guidance = float(guidance_text)
    except ValueError:
        guidance = math.nan
    if not (math.isfinite(guidance) and 0 <= guidance <= 50):
        raise sheet_problem(path, index, "guidance", f"expected a number from 0 to 50 but found {guidance_text!r}")
    safety = record["safety_checker"].strip().lower()
    if safety not in ("true", "false", "1", "0"):
        raise sheet_problem(path, index, "safety_checker", f"expected true or false but found {safety!r}")
    run = RunRecord(
        run_key=run_key, study=study, kind=kind, model=text("model", required=True).strip(),
        model_revision=_stripped(text("model_revision")), pipeline_class=_stripped(text("pipeline_class")),
        prompt=unescaped(record["prompt"]), negative_prompt=unescaped(record["negative_prompt"]), slot=text("slot"),
        scheduler=text("scheduler", required=True).strip(), steps=whole("steps", 0, MAX_STEPS),
        guidance=guidance, width=whole("width", 0, MAX_SIDE), height=whole("height", 0, MAX_SIDE),
        dtype=text("dtype", required=True).strip(), device=_stripped(text("device")),
        batch_size=whole("batch_size", 1, MAX_BATCH_SIZE, blank_ok=True), safety_checker=safety in ("true", "1"),
        versions=_versions(path, index, record["versions"]),
    )
    if kind == "generated" and not run.prompt.strip():
        raise sheet_problem(path, index, "prompt", "a generated run's prompt is required")
    if kind == "generated" and run.steps < 1:  # what generating it would have refused
        raise sheet_problem(path, index, "steps", f"a generated run takes 1 step or more but found {run.steps}")
    for side in ("width", "height"):
        if kind == "generated" and (getattr(run, side) < 8 or getattr(run, side) % 8):
            raise sheet_problem(path, index, side, f"a generated image's {side} is a multiple of 8 from 8 up but "
                                f"found {getattr(run, side)}")
    for column in ("model", "prompt", "negative_prompt", "slot", "scheduler", "dtype"):
        if "\x00" in (getattr(run, column) or ""):
            raise sheet_problem(path, index, column, "a run's text holds no NUL character, but this one does")
    return SheetRun(run, _moment(path, index, record["run_created_at"]))


def _stripped(value: str | None) -> str | None:
    return None if value is None else value.strip()


def _versions(path: Path, index: int, value: str) -> dict[str, str]:
    if value.strip() == "":
        return {}
    try:
        versions = json.loads(value)
    except json.JSONDecodeError:
        versions = None
    if not (isinstance(versions, dict) and all(isinstance(v, str) for v in versions.values())):
        raise sheet_problem(path, index, "versions",
                            f'expected a JSON object of texts (like {{"torch": "2.5.1"}}) but found {value!r}')
    return versions


def _moment(path: Path, index: int, value: str) -> datetime | None:
    value = value.strip()
    if value == "":
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise sheet_problem(path, index, "run_created_at", "expected a date and time with its offset "
                            f"(like 2026-03-01 14:05:00+00:00) but found {value!r}")
    if moment > datetime.now(UTC) + timedelta(days=1):  # it orders the runs: none is made in the future
        raise sheet_problem(path, index, "run_created_at", f"expected a time that has passed but found {value!r}")
    return moment


def _differences(first: SheetRun, other: SheetRun):
    """The columns in which two rows' runs differ, with both values."""
    names = {"kind": "run_kind"}
    for field in fields(RunRecord):
        one, two = getattr(first.record, field.name), getattr(other.record, field.name)
        if one != two:
            yield names.get(field.name, field.name), one, two
    if first.created_at != other.created_at:
        yield "run_created_at", str(first.created_at), str(other.created_at)
