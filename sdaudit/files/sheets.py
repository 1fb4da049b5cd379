"""Annotation sheets: import a rater's sheet (the origin study's format or sdaudit's own export),
and export a study's annotations and estimates as CSV and Parquet.

A sheet is checked whole before anything is written: a malformed one is refused with the row and
column of its first problem, and an accepted one is saved in one transaction.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd

from sdaudit.files.csvfile import ROW_WIDTH as ROW_WIDTH  # sheets name their rows with the reader's message
from sdaudit.files.csvfile import CsvFileError, as_written, read_csv, spreadsheet_safe
from sdaudit.files.safe import read_regular
from sdaudit.files.sheet_cells import SHEET_PROBLEM as SHEET_PROBLEM  # named here as before sheet_runs shared it
from sdaudit.files.sheet_cells import SheetError as SheetError
from sdaudit.files.sheet_cells import sheet_problem as _problem
from sdaudit.files.sheet_runs import (
    check_against_store,
    escaped_run_texts,
    has_run_columns,
    parse_runs,
    run_settings,
    target_keys,
)
from sdaudit.generation.spec import MAX_SEED
from sdaudit.records import RunRecord, rater_name, require_new_study, study_file_stem
from sdaudit.scheme import LABEL_COLUMNS
from sdaudit.store import Store

SHEET_FORMATS = ("origin", "sdaudit")
ORIGIN_COLUMNS = ("male_presenting", "female_presenting", "monk_binary", "confidence")
SDAUDIT_COLUMNS = ("run_key", "seed", "rater", *LABEL_COLUMNS, "confidence")
IMAGE_NAME_COLUMNS = ("image", "image_name", "file_name", "filename", "file")
CONFIDENCE_WORDS = {"low": "low", "medium": "medium", "high": "high", "1": "low", "2": "medium", "3": "high"}
MAX_SHEET_BYTES = 50 * 1024 * 1024

DUPLICATE_ANNOTATION = ("{name} rows {first} and {second} both label run {run_key}, seed {seed} for rater {rater!r}; "
                        "keep one of them.")
DUPLICATE_IMAGE = "{name} rows {first} and {second} both label the image {image!r}; keep one of them."
SEED_VALUE = "expected a whole seed from 0 to {max} written in the digits 0-9 but found {value!r}"
SDAUDIT_TAKES_NO_RATER = ("an sdaudit export names its raters in its rater column, so it takes no rater's name "
                          "(--rater) but was given {value!r}.")


@dataclass(frozen=True)
class ImportResult:
    study: str
    rows: int  # the sheet's annotations
    raters: tuple[str, ...]
    external_images: int  # rows whose images are not in the store
    new: int = 0  # annotations the study did not hold
    changed: int = 0  # annotations that replaced other labels of the same rater and image
    unchanged: int = 0  # annotations the study already held as they are: nothing written for them
    runs_added: int = 0

    @property
    def summary(self) -> str:
        """One line: into which study, how many annotations were new, changed or already there, and
        the runs added (``imported into study s: 0 new, 24 unchanged of 24 annotations by ana, ben``)."""
        changed = f", {self.changed} changed" if self.changed else ""
        external = f" ({self.external_images} without images in the store)" if self.external_images else ""
        runs = f"; {_counted(self.runs_added, 'run')} added" if self.runs_added else ""
        return (f"imported into study {self.study}: {self.new} new{changed}, {self.unchanged} unchanged of "
                f"{_counted(self.rows, 'annotation')} by {', '.join(self.raters)}{external}{runs}")


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _read_sheet(path: Path) -> pd.DataFrame:
    """The sheet's cells as text, through the one strict CSV reader (``files.csvfile``): every value
    is then checked with its row and column."""
    if path.suffix.lower() == ".parquet":
        raise SheetError(f"{path.name} is the Parquet copy of an export, for analysis tools; import the CSV written "
                         f"beside it ({path.with_suffix('.csv').name}).")
    try:
        table = read_csv(path, what="annotation sheet", label=path.name, max_bytes=MAX_SHEET_BYTES,
                         skip_initial_space=True)
    except CsvFileError as error:
        raise SheetError(str(error)) from None
    return pd.DataFrame(list(table.rows), columns=list(table.header), dtype=str)


def _first_duplicate(rows: pd.DataFrame, columns: list[str]) -> tuple[int, int] | None:
    """Spreadsheet row numbers (header = row 1) of the first row repeating ``columns`` and of the row it repeats."""
    repeated = rows.duplicated(columns, keep=False)
    if not repeated.any():
        return None
    clash = rows[repeated]
    first_dup = clash.index[clash.duplicated(columns)][0]
    key = tuple(rows.loc[first_dup, columns])
    original = clash.index[(clash[columns].apply(tuple, axis=1) == key)][0]
    return int(original) + 2, int(first_dup) + 2


def _require_columns(path: Path, frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise SheetError(
            f"{path.name} lacks the column(s) {', '.join(missing)}; it has {', '.join(frame.columns) or 'none'}."
        )


def _flag(path: Path, index: int, column: str, value: str, *, blank_ok: bool) -> int | None:
    value = value.strip()
    if value == "" and blank_ok:
        return None
    if value in ("0", "1", "0.0", "1.0"):
        return int(float(value))
    raise _problem(path, index, column, f"expected 0 or 1 but found {value!r}")


def _confidence(path: Path, index: int, value: str) -> str | None:
    value = value.strip().lower()
    if value == "":
        return None
    if value not in CONFIDENCE_WORDS:
        raise _problem(path, index, "confidence", f"expected low, medium, high (or 1, 2, 3) but found {value!r}")
    return CONFIDENCE_WORDS[value]


def parse_origin_sheet(path: Path) -> pd.DataFrame:
    """The origin study's rater sheet → rows of labels (one per image, all with a person)."""
    from sdaudit.scheme import Annotation

    frame = _read_sheet(path)
    _require_columns(path, frame, ORIGIN_COLUMNS)
    name_column = next((column for column in IMAGE_NAME_COLUMNS if column in frame.columns), None)
    rows = []
    for index, record in enumerate(frame.to_dict("records")):
        male = _flag(path, index, "male_presenting", record["male_presenting"], blank_ok=True)
        female = _flag(path, index, "female_presenting", record["female_presenting"], blank_ok=True)
        if male == 1 and female == 1:
            raise _problem(path, index, "female_presenting", "both male_presenting and female_presenting are 1")
        gender = "male" if male == 1 else "female" if female == 1 else "unclear" if (male, female) == (0, 0) else None
        darker = _flag(path, index, "monk_binary", record["monk_binary"], blank_ok=True)
        skin = None if darker is None else ("darker" if darker == 1 else "lighter")
        labels = Annotation(person_present=True, gender=gender, skin_binary=skin,
                            confidence=_confidence(path, index, record["confidence"]))
        rows.append({**asdict(labels), "name": (record[name_column].strip() if name_column else "") or f"row {index + 2}"})
    return pd.DataFrame(rows)


def parse_sdaudit_sheet(path: Path) -> pd.DataFrame:
    """sdaudit's own annotation export → rows of labels with their run, seed and rater."""
    return _sdaudit_rows(path, _sdaudit_cells(path))


def _sdaudit_cells(path: Path) -> pd.DataFrame:
    frame = _read_sheet(path).map(as_written)  # the export's neutralised formula cells, as they were
    _require_columns(path, frame, SDAUDIT_COLUMNS)
    return frame


def _sdaudit_rows(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    from sdaudit.scheme import Annotation

    rows = []
    for index, record in enumerate(frame.to_dict("records")):
        seed = record["seed"].strip()
        if not (seed.isascii() and seed.isdigit() and int(seed) <= MAX_SEED):  # '²'.isdigit() is True
            raise _problem(path, index, "seed", SEED_VALUE.format(max=MAX_SEED, value=seed))
        if not record["rater"].strip():
            raise _problem(path, index, "rater", "a rater's name is required")
        person = record["person_present"].strip().lower()
        if person not in ("true", "false", "1", "0", ""):
            raise _problem(path, index, "person_present", f"expected true or false but found {person!r}")
        mst = record["mst"].strip()
        if mst and not (mst.isascii() and (mst.isdigit() or mst.endswith(".0") and mst[:-2].isdigit())):
            raise _problem(path, index, "mst", f"expected a Monk Skin Tone from 1 to 10 but found {mst!r}")
        try:
            labels = Annotation(
                person_present=None if person == "" else person in ("true", "1"),
                gender=record["gender"].strip() or None,
                mst=int(float(mst)) if mst else None,
                skin_binary=record["skin_binary"].strip() or None,
                confidence=record["confidence"].strip() or None,
            )
        except ValueError as error:
            field_name = str(error).split("`")[1] if "`" in str(error) else "labels"
            column = {"person_present": "person_present"}.get(field_name, field_name)
            raise _problem(path, index, column, str(error)) from None
        rows.append({**asdict(labels), "run_key": record["run_key"].strip(), "seed": int(seed),
                     "rater": record["rater"].strip(), "source_name": record.get("source_name", "").strip() or None,
                     "name": record.get("source_name", "").strip()
                     or f"{record['run_key'].strip()}/{seed}"})
    return pd.DataFrame(rows)


def import_annotations(path: str | os.PathLike, store: Store, *, study: str, rater: str | None = None,
                       sheet_format: str = "origin") -> ImportResult:
    """Import an annotation sheet into ``study``: checked whole first, then written in one go.

    ``origin``: the origin study's sheet (``male_presenting``, ``female_presenting``,
    ``monk_binary`` with 1 = MST ≥ 6, ``confidence``, an optional image file name); every row
    is an image with a person, under ``rater``. ``sdaudit``: this tool's own export, whose rows
    name their raters (a ``rater`` is refused); rows whose run and seed are in the study attach to
    those images. An export with its runs' columns (``sheet_runs``) brings each run back as it was:
    the other rows hang on image rows without files (at their seeds) of their recreated run. Without
    those columns (an older export, or the origin format) they hang on external image rows of one
    run named after the sheet's content. An annotation the study already holds as it is is counted
    as unchanged and written nowhere, so importing a sheet twice changes nothing.
    """
    path = Path(path)
    if sheet_format not in SHEET_FORMATS:
        raise SheetError(f"`format` must be one of {', '.join(SHEET_FORMATS)} but is {sheet_format!r}.")
    if sheet_format == "sdaudit" and rater is not None:
        raise SheetError(SDAUDIT_TAKES_NO_RATER.format(value=rater))
    if sheet_format == "origin" and not (rater and rater.strip()):
        raise SheetError("a sheet in the origin study's format needs the rater's name (--rater).")
    if sheet_format == "origin":
        rater = rater_name(rater, what="a sheet in the origin study's format")
    # 1. Parse and check every row (and every run it carries) before anything is written
    require_new_study(study, store.study_names())
    runs = {}
    if sheet_format == "origin":
        rows = parse_origin_sheet(path)
    else:
        cells = _sdaudit_cells(path)
        rows = _sdaudit_rows(path, cells)
        if has_run_columns(path.name, cells.columns):
            runs = parse_runs(path, cells, study)
    if rows.empty:
        raise SheetError(f"{path.name} has no rows to import.")
    _refuse_duplicates(path, rows, sheet_format)
    if sheet_format == "origin":
        rows["rater"] = rater.strip()
        rows["run_key"], rows["seed"], rows["source_name"] = "", 0, rows["name"]

    # 2. Each row's image: one in the study, one of a recreated run (at its seed), or one of the
    # imported run (numbered by position)
    records, created_at = [], {}
    if runs:
        keys = target_keys(store, study, runs)
        records = [replace(run.record, run_key=keys[key]) for key, run in runs.items()]
        created_at = {keys[key]: run.created_at for key, run in runs.items() if run.created_at is not None}
        rows["run_key"] = rows["run_key"].map(keys)
        check_against_store(store, path, runs, keys, rows)
    known = store.images(study=study)[["run_key", "seed", "image_id"]].assign(known=True)
    found = rows[["run_key", "seed"]].merge(known, on=["run_key", "seed"], how="left")
    external = found["known"].isna().to_numpy()
    if sheet_format == "sdaudit" and SAMPLE_SHEET_MARK in cells.columns:
        _check_sample_sheet(path, study, rows, cells, found)
    if external.any() and not runs:
        # read again as the parse read it (no link followed), so a file swapped for a link since is refused
        content = hashlib.sha256(read_regular(path.parent, path.name, what="the annotation sheet")).hexdigest()[:16]
        records = [RunRecord.imported(run_key=f"external-{content}", study=study, sheet=path.name, sha256=content)]
        _number_by_position(rows, external, records[0].run_key, sheet_format)
    images = rows.loc[external, ["run_key", "seed", "source_name"]].drop_duplicates(["run_key", "seed"])

    # 3. The study, the runs, their images without files and every new or changed annotation: one transaction
    saved = store.import_sheet(rows, study=study, runs=records, created_at=created_at, images=images)
    return ImportResult(study, len(rows), tuple(sorted(rows["rater"].unique())), int(external.sum()),
                        saved.new, saved.changed, saved.unchanged, saved.runs_added)


def _number_by_position(rows: pd.DataFrame, external, run_key: str, sheet_format: str) -> None:
    """Put the ``external`` rows on the images of the imported run ``run_key``: one image per image
    of the sheet (an sdaudit export names an image by its run and seed, whatever the number of
    raters; the origin format is one row an image), numbered by position in the sheet (0, 1, ...),
    never by a seed, and named by the sheet's name for it."""
    keys = (rows.loc[external, "run_key"] + "\x00" + rows.loc[external, "seed"].astype(str)
            if sheet_format == "sdaudit" else pd.Series(rows.index[external].astype(str), index=rows.index[external]))
    distinct = list(dict.fromkeys(keys))
    first_row = {key: index for index, key in reversed(list(keys.items()))}
    names = {key: rows.loc[first_row[key], "name"] or key.replace("\x00", " seed ") for key in distinct}
    position = {key: number for number, key in enumerate(distinct)}
    rows.loc[external, "source_name"] = [names[key] for key in keys]
    rows.loc[external, "seed"] = [position[key] for key in keys]
    rows.loc[external, "run_key"] = run_key


# A human sample's sheet (``team --human-sample-sheet``) has this column; its rows label the study's
# own images, named by run and seed and by image id (both must agree), never images it would import.
SAMPLE_SHEET_MARK = "draw_order"
NOT_IN_STUDY = ("run {run_key!r} seed {seed} is not an image of study {study!r}; a human sample's sheet labels the "
                "study's own images only (check run_key and seed)")
OTHER_IMAGE = "run {run_key!r} seed {seed} is image {actual} of study {study!r}, not {given!r}"


def _check_sample_sheet(path: Path, study: str, rows: pd.DataFrame, cells: pd.DataFrame, found: pd.DataFrame) -> None:
    """A human sample's sheet names images of the study only, and each row's ``image_id`` (when kept)
    is the image its run and seed name."""
    for index, (run_key, seed, image_id) in enumerate(zip(rows["run_key"], rows["seed"], found["image_id"],
                                                          strict=True)):
        if pd.isna(image_id):
            raise _problem(path, index, "run_key", NOT_IN_STUDY.format(run_key=run_key, seed=seed, study=study))
        given = cells["image_id"].iloc[index].strip() if "image_id" in cells.columns else ""
        if given and given != str(int(image_id)):
            raise _problem(path, index, "image_id", OTHER_IMAGE.format(run_key=run_key, seed=seed,
                                                                       actual=int(image_id), study=study, given=given))


def _refuse_duplicates(path: Path, rows: pd.DataFrame, sheet_format: str) -> None:
    """One row per image and rater: a second row would leave the current label and the newest
    history entry disagreeing, so such a sheet is refused before anything is written."""
    if sheet_format == "sdaudit":
        pair = _first_duplicate(rows, ["run_key", "seed", "rater"])
        if pair is not None:
            row = rows.loc[pair[1] - 2]
            raise SheetError(DUPLICATE_ANNOTATION.format(name=path.name, first=pair[0], second=pair[1],
                                                         run_key=row["run_key"], seed=row["seed"], rater=row["rater"]))
    else:  # origin rows are images by name (or by position when the sheet has no name column)
        pair = _first_duplicate(rows, ["name"])
        if pair is not None:
            raise SheetError(DUPLICATE_IMAGE.format(name=path.name, first=pair[0], second=pair[1],
                                                    image=rows.loc[pair[1] - 2, "name"]))


def export_annotations(store: Store, study: str, folder: str | os.PathLike) -> list[Path]:
    """Write the study's annotations as CSV (re-importable with format ``sdaudit``) and Parquet, each
    row with its run's identity and settings (``sheet_runs.RUN_SETTING_COLUMNS``), so that an import
    recreates every run."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frame = store.annotations(study=study)[
        [*SDAUDIT_COLUMNS, "updated_at", "path", "external", "source_name"]
    ].merge(run_settings(store.runs(study=study)), on="run_key", how="left", validate="many_to_one")
    stem = study_file_stem(study)  # an older store's study may be named '../x': files stay in ``folder``
    csv_path, parquet_path = folder / f"{stem}-annotations.csv", folder / f"{stem}-annotations.parquet"
    spreadsheet_safe(escaped_run_texts(frame)).to_csv(csv_path, index=False)  # Parquet keeps the raw text
    frame.to_parquet(parquet_path, index=False)
    return [csv_path, parquet_path]


def export_estimates(table: pd.DataFrame, folder: str | os.PathLike, stem: str) -> list[Path]:
    """Write an estimate table as CSV and Parquet, named from ``stem`` (a study's name) made safe."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = study_file_stem(stem)
    csv_path, parquet_path = folder / f"{stem}-estimates.csv", folder / f"{stem}-estimates.parquet"
    spreadsheet_safe(table).to_csv(csv_path, index=False)
    table.to_parquet(parquet_path, index=False)
    return [csv_path, parquet_path]


def import_uploaded_sheet(store: Store, content: bytes, name: str, *, study: str, rater: str | None,
                          sheet_format: str, max_bytes: int) -> ImportResult:
    """Import a sheet that arrived as bytes (an upload): size-checked, parsed like a file."""
    if len(content) > max_bytes:
        raise SheetError(f"{name} is {len(content)} bytes; uploads over {max_bytes} bytes are refused.")
    safe_name = Path(name).name or "sheet.csv"  # the browser's name, never a path
    with tempfile.TemporaryDirectory(prefix="sdaudit-upload-") as scratch:
        path = Path(scratch) / safe_name
        path.write_bytes(content)
        return import_annotations(path, store, study=study, rater=rater, sheet_format=sheet_format)
