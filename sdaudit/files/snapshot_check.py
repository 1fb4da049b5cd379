"""What ``restore`` checks in a snapshot before it writes anything, and what it reads back.

A snapshot comes from a folder or a dataset repo that anyone with write access may have changed,
so nothing in it is trusted: the manifest, every table and every image is a regular file inside
the snapshot (read without following links); each table holds exactly this sdaudit's columns
(one that a later sdaudit adds may be missing: ``OPTIONAL_COLUMNS``), each column the type the
store gives it, ids and seeds within their ranges, labels among the scheme's answers, study and
rater names under today's rules, and image paths relative and inside the data home's ``images/``;
every image file decodes under the caps of ``ingest-images``. The first problem refuses the whole
snapshot with one line that names it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from sdaudit.errors import SdauditError
from sdaudit.files.reference import MAX_IMAGE_BYTES, _decode
from sdaudit.files.safe import UnsafeFileError, read_regular
from sdaudit.generation.spec import MAX_SEED
from sdaudit.records import RUN_KINDS, check_study_name, rater_name
from sdaudit.scheme import CONFIDENCES, GENDERS, MST_LEVELS, SKIN_ANSWERS, SKIN_TONE_MODES
from sdaudit.store import SCHEMA_VERSION, TABLES, Store

MANIFEST = "snapshot.json"
# A snapshot written at schema 4 holds every table this sdaudit restores; columns added since are
# optional (their rows take the store's default or the migration's value).
OLDEST_RESTORABLE = 4
# migration 5: a run's kind ('generated' | 'imported' | 'reference'); 6: a job's load time and pace
OPTIONAL_COLUMNS = {"runs": {"kind"}, "jobs": {"load_seconds", "seconds_per_image"}}
# Tables a later migration adds, by the version that adds them: a snapshot made before has none (empty)
ADDED_TABLES = {"labellings": 7, "machine_labels": 7, "human_samples": 7, "human_sample_images": 7}
# Ids come from the store's sequences, which a restore moves past the largest id one step at a
# time: a hundred million is more than any audit makes, and a restore that takes seconds, not hours.
MAX_ID = 100_000_000
ID_COLUMNS = {"studies": ("study_id",), "runs": ("study_id",), "images": ("image_id",),
              "annotations": ("image_id",), "annotation_history": ("event_id", "image_id"), "jobs": ("job_id",),
              "targets": ("study_id",), "gold_labels": ("image_id",), "adjudications": ("image_id",),
              "repeat_answers": ("image_id",), "rater_profiles": ("study_id",),
              "labellings": ("labelling_id", "study_id"), "machine_labels": ("labelling_id", "image_id"),
              "human_samples": ("study_id",), "human_sample_images": ("study_id", "image_id")}
# (gold labels' ``set_by`` and adjudications' ``adjudicator`` may be empty: not raters' answers)
RATER_COLUMNS = {"annotations": "rater", "annotation_history": "rater", "repeat_answers": "rater",
                 "rater_profiles": "rater"}
# Each row's reference to another table's row (jobs name a run that may have been left unfinished: free)
FOREIGN_KEYS = (("runs", "study_id", "studies", "study_id"), ("images", "run_key", "runs", "run_key"),
                *((table, "image_id", "images", "image_id") for table in
                  ("annotations", "annotation_history", "gold_labels", "adjudications", "repeat_answers")),
                ("targets", "study_id", "studies", "study_id"), ("rater_profiles", "study_id", "studies", "study_id"),
                ("labellings", "study_id", "studies", "study_id"), ("machine_labels", "labelling_id", "labellings",
                                                                    "labelling_id"),
                ("machine_labels", "image_id", "images", "image_id"), ("human_samples", "study_id", "studies", "study_id"),
                ("human_sample_images", "study_id", "human_samples", "study_id"),
                ("human_sample_images", "image_id", "images", "image_id"))
MAX_SIDE = 8192
MAX_GUIDANCE = 50
LABEL_TABLES = ("annotations", "annotation_history", "repeat_answers", "gold_labels", "adjudications", "machine_labels")

NO_SNAPSHOT = "there is no sdaudit snapshot at {source!r} (no {manifest})."
BAD_MANIFEST = "the snapshot manifest at {source!r} is not valid JSON ({reason})."
WRONG_VERSION = ("the snapshot at {source!r} has schema version {found!r}; this sdaudit restores versions "
                 f"{OLDEST_RESTORABLE} to {SCHEMA_VERSION}.")
UNSAFE = "the snapshot at {source!r} cannot be restored: {reason}"
TABLE_MISSING = "the snapshot at {source!r} lacks {name}; nothing was restored."
NOT_PARQUET = "the snapshot's {name} is not a Parquet table ({reason}); nothing was restored."
COLUMNS = "the snapshot's {name} does not hold the {table} table's columns ({problem}); nothing was restored."
COLUMN_TYPE = "the snapshot's {name} column {column!r} holds {found}, not {expected}; nothing was restored."
ROW_COUNT = "the snapshot's {name} holds {found} rows but its manifest says {expected}; nothing was restored."
VALUE = "the snapshot's {name} row {row} has {column} = {value!r}: {problem}; nothing was restored."
NULL = "the snapshot's {name} row {row} has no {column} (null), which every row needs; nothing was restored."
DUPLICATE = ("the snapshot's {name} rows {first} and {row} have the same {columns} ({value}), which must differ; "
             "nothing was restored.")
IMAGE = "the snapshot's image {path!r} cannot be restored ({reason}); nothing was restored."


class SnapshotError(SdauditError):
    """A snapshot that cannot be written or restored; the message says why."""


class NoSnapshotError(SnapshotError):
    """There is no snapshot at all where one was looked for (no manifest)."""


@dataclass(frozen=True)
class CheckedSnapshot:
    """A snapshot's manifest, its tables (Arrow, checked) and the sha256 of each image file to copy
    (by its path relative to the snapshot and the data home)."""

    manifest: dict
    tables: dict
    images: dict[str, str]


def check_snapshot(folder: Path, source: str) -> CheckedSnapshot:
    """Every table and image of the snapshot in ``folder`` (named ``source`` in messages), checked;
    a ``SnapshotError`` names the first problem."""
    manifest = _read_manifest(folder, source)
    expected, constraints = _expected_columns()
    tables = {table: _read_table(folder, source, table, expected[table], manifest) for table in TABLES}
    _check_nulls_and_keys(tables, constraints)
    _check_values(tables)
    return CheckedSnapshot(manifest, tables, _check_images(folder, source, tables["images"]))


def _read_manifest(folder: Path, source: str) -> dict:
    try:
        manifest = json.loads(read_regular(folder, MANIFEST, what="the manifest").decode("utf-8"))
    except UnsafeFileError as error:
        if not os.path.lexists(folder / MANIFEST):
            raise NoSnapshotError(NO_SNAPSHOT.format(source=source, manifest=MANIFEST)) from None
        raise SnapshotError(str(error)) from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise SnapshotError(BAD_MANIFEST.format(source=source, reason=error)) from None
    version = manifest.get("schema_version") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict) or manifest.get("format") != "sdaudit-snapshot" or isinstance(version, bool) \
            or not isinstance(version, int) or not OLDEST_RESTORABLE <= version <= SCHEMA_VERSION:
        raise SnapshotError(WRONG_VERSION.format(source=source, found=version))
    return manifest


def _expected_columns() -> tuple[dict[str, dict[str, str]], dict[str, dict[str, list]]]:
    """This sdaudit's columns and their types, and its NOT NULL columns and keys, as a new store has them."""
    with Store(":memory:") as store:
        columns, constraints = store.table_columns(), store.table_constraints()
    for table, optional in OPTIONAL_COLUMNS.items():
        for column in optional:
            columns[table].setdefault(column, "VARCHAR")
    return columns, constraints


def _check_nulls_and_keys(tables: dict, constraints: dict) -> None:
    """No null in a NOT NULL column (a missing optional column takes its default), and no two rows
    with the same key (primary key or UNIQUE; a key holding a null is not compared, as in the store)."""
    for table, rows in tables.items():
        name = f"{table}.parquet"
        for column in constraints[table]["not_null"]:
            if column in rows.column_names and rows.column(column).null_count:
                row = rows.column(column).to_pylist().index(None) + 1
                raise SnapshotError(NULL.format(name=name, row=row, column=column))
        for key in constraints[table]["keys"]:
            if not all(column in rows.column_names for column in key):
                continue
            seen: dict[tuple, int] = {}
            for row, value in enumerate(zip(*(rows.column(column).to_pylist() for column in key)), start=1):
                if None in value:
                    continue
                if value in seen:
                    raise SnapshotError(DUPLICATE.format(name=name, first=seen[value], row=row, columns=", ".join(key),
                                                         value=", ".join(map(repr, value))))
                seen[value] = row


def _read_table(folder: Path, source: str, table: str, columns: dict[str, str], manifest: dict):
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = f"{table}.parquet"
    if not os.path.lexists(folder / name):
        if manifest["schema_version"] < ADDED_TABLES.get(table, 0):  # made before the table existed: empty
            return pa.table({column: pa.array([], type=pa.null()) for column in columns})
        raise SnapshotError(TABLE_MISSING.format(source=source, name=name))
    try:
        data = read_regular(folder, name, what=f"the snapshot's {name}")
    except UnsafeFileError as error:
        raise SnapshotError(UNSAFE.format(source=source, reason=error)) from None
    try:
        rows = pq.read_table(pa.BufferReader(data), use_threads=False)
    except (pa.ArrowException, ValueError, OSError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(".")
        reason = reason.removeprefix("Could not open Parquet input source '<Buffer>': ")
        raise SnapshotError(NOT_PARQUET.format(name=name, reason=reason)) from None
    found = rows.column_names
    extra = [column for column in found if column not in columns]
    missing = [column for column in columns if column not in found and column not in OPTIONAL_COLUMNS.get(table, ())]
    if extra or missing or len(set(found)) != len(found):
        problem = "; ".join(part for part in (f"unknown: {', '.join(extra)}" if extra else "",
                                              f"missing: {', '.join(missing)}" if missing else "",
                                              "a column named twice" if len(set(found)) != len(found) else "") if part)
        raise SnapshotError(COLUMNS.format(name=name, table=table, problem=problem))
    for field in rows.schema:
        if not _fits(field.type, columns[field.name]):
            raise SnapshotError(COLUMN_TYPE.format(name=name, column=field.name, found=field.type,
                                                   expected=columns[field.name]))
    expected_rows = manifest.get("rows", {}).get(table) if isinstance(manifest.get("rows"), dict) else None
    if expected_rows is not None and expected_rows != rows.num_rows:
        raise SnapshotError(ROW_COUNT.format(name=name, found=rows.num_rows, expected=expected_rows))
    return rows


def _fits(arrow_type, store_type: str) -> bool:
    """Whether values of ``arrow_type`` go into a store column of ``store_type`` as they are."""
    import pyarrow as pa

    if pa.types.is_null(arrow_type):  # a column of nulls only; NOT NULL is the store's own check
        return True
    if store_type in ("INTEGER", "BIGINT"):
        return pa.types.is_integer(arrow_type)
    if store_type == "DOUBLE":
        return pa.types.is_floating(arrow_type) or pa.types.is_integer(arrow_type)
    if store_type == "VARCHAR":
        return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    if store_type == "BOOLEAN":
        return pa.types.is_boolean(arrow_type)
    if store_type.startswith("TIMESTAMP"):
        return pa.types.is_timestamp(arrow_type)
    return False


def _check_values(tables: dict) -> None:
    for table, columns in ID_COLUMNS.items():
        for column in columns:
            _each(tables, table, column, _id)
    for table, column, parent, parent_column in FOREIGN_KEYS:
        known = set(tables[parent].column(parent_column).to_pylist())
        _each(tables, table, column, lambda value, known=known, parent=parent:
              None if value in known else f"no row of {parent}.parquet has it")
    _each(tables, "runs", "steps", _at_least(0))
    _each(tables, "runs", "guidance", _guidance)
    for column in ("width", "height"):
        _each(tables, "runs", column, lambda value: None if 0 <= value <= MAX_SIDE else
              f"a side must be a whole number of pixels from 0 to {MAX_SIDE}")
    _each(tables, "studies", "raters_per_image", _at_least(1))
    _each(tables, "studies", "repeat_every", _at_least(0))
    _each(tables, "studies", "skin_tone_mode", _among(SKIN_TONE_MODES))
    _each(tables, "studies", "rater_fields", _json_list)
    _each(tables, "images", "seconds", _at_least(0))
    _each(tables, "images", "size_bytes", _at_least(0))
    _each(tables, "images", "seed", _seed)
    _check_image_paths(tables["images"])
    _each(tables, "studies", "name", _study_name)
    _each(tables, "runs", "kind", _among(RUN_KINDS))
    for table, column in RATER_COLUMNS.items():
        _each(tables, table, column, _rater)
    for table in LABEL_TABLES:
        _each(tables, table, "mst", _among(MST_LEVELS))
        _each(tables, table, "gender", _among(GENDERS))
        _each(tables, table, "skin_binary", _among(SKIN_ANSWERS))
    for table in ("annotations", "annotation_history", "repeat_answers"):
        _each(tables, table, "confidence", _among(CONFIDENCES))
    for table, column in (("labellings", "method"), ("labellings", "versions"), ("machine_labels", "scores")):
        _each(tables, table, column, _json_object)
    _check_human_samples(tables["human_samples"], tables["human_sample_images"])


def _each(tables: dict, table: str, column: str, problem_of: Callable[[object], str | None]) -> None:
    """Refuse the first non-null value of ``table.column`` for which ``problem_of`` names a problem."""
    if column not in tables[table].column_names:
        return
    for row, value in enumerate(tables[table].column(column).to_pylist(), start=1):
        if value is not None and (problem := problem_of(value)):
            raise SnapshotError(VALUE.format(name=f"{table}.parquet", row=row, column=column, value=value,
                                             problem=problem.rstrip(".")))


def _id(value) -> str | None:
    return None if 1 <= value <= MAX_ID else f"an id must be a whole number from 1 to {MAX_ID:,}"


def _seed(value) -> str | None:
    return None if 0 <= value <= MAX_SEED else f"a seed must be a whole number from 0 to {MAX_SEED}"


def _check_image_paths(images) -> None:
    """An image with a file has a path inside the data home's images/; an imported sheet's image
    (``external``, no file) has none."""
    for row, (value, external) in enumerate(zip(images.column("path").to_pylist(),
                                                images.column("external").to_pylist(), strict=True), start=1):
        problem = (None if value == "" else "an imported sheet's image has no file") if external \
            else _image_path(value)
        if problem:
            raise SnapshotError(VALUE.format(name="images.parquet", row=row, column="path", value=value,
                                             problem=problem))


def _image_path(value: str) -> str | None:
    path = PurePosixPath(value)
    if any(ord(character) < 32 or ord(character) == 127 for character in value):
        return "an image path must not hold control characters"
    if ("\\" in value or "\0" in value or path.is_absolute() or PureWindowsPath(value).drive or ".." in path.parts
            or path.parts[:1] != ("images",) or len(path.parts) < 2):
        return "an image path must be a relative path inside the data home's images/ folder (no '..', not absolute)"
    return None


def _at_least(lowest: int) -> Callable[[object], str | None]:
    return lambda value: None if math.isfinite(value) and value >= lowest else f"must be a number of at least {lowest}"


def _guidance(value) -> str | None:
    return None if math.isfinite(value) and 0 <= value <= MAX_GUIDANCE else \
        f"guidance must be a finite number from 0 to {MAX_GUIDANCE}"


def _json_list(value) -> str | None:
    try:
        fields = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        return "not valid JSON"
    return None if isinstance(fields, list) else "not a JSON list"


def _json_object(value) -> str | None:
    try:
        found = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        return "not valid JSON"
    return None if isinstance(found, dict) else "not a JSON object"


def _check_human_samples(samples, images) -> None:
    """Each human sample as a draw made it: its images numbered 1..size in draw order, each with the
    inclusion probability size / population, none after the largest image id of its draw."""
    drawn: dict[int, list] = {}
    for study_id, image_id, order, probability in zip(*(images.column(name).to_pylist() for name in (
            "study_id", "image_id", "draw_order", "inclusion_probability")), strict=True):
        drawn.setdefault(study_id, []).append((order, image_id, probability))
    for row, (study_id, size, population, last) in enumerate(zip(*(samples.column(name).to_pylist() for name in (
            "study_id", "size", "population", "last_image_id")), strict=True), start=1):
        rows = sorted(drawn.pop(study_id, []))
        problem = (
            "its size is not between 2 and its population" if not 2 <= size <= population else
            f"human_sample_images.parquet holds {len(rows)} of its images, not 1 to {size} in draw order"
            if [order for order, _, _ in rows] != list(range(1, size + 1)) else
            "an image's inclusion probability is not size / population"
            if any(abs(probability - size / population) > 1e-12 for _, _, probability in rows) else
            "an image's id is after the last image id of its draw" if any(image_id > last for _, image_id, _ in rows)
            else None)
        if problem:
            raise SnapshotError(VALUE.format(name="human_samples.parquet", row=row, column="size", value=size,
                                             problem=problem))
    for study_id in drawn:
        raise SnapshotError(VALUE.format(name="human_sample_images.parquet", row=1, column="study_id",
                                         value=study_id, problem="no human sample of that study"))


def _study_name(value) -> str | None:
    try:
        check_study_name(value)
    except SdauditError as error:
        return str(error)
    return None


def _rater(value) -> str | None:
    try:
        name = rater_name(value, what="a restored answer")
    except SdauditError as error:
        return str(error)
    return None if name == value else "a rater's name does not start or end with a space"


def _among(allowed) -> Callable[[object], str | None]:
    return lambda value: None if value in allowed else f"not one of {', '.join(map(str, allowed))}"


# The sha256 of every image this process has decoded whole: a snapshot reads back each image it
# copied (about 6 ms a 512×512 PNG, longer than the copy), and the app's automatic snapshots copy the
# same images again and again. Keyed by content, an entry stands for exactly the bytes that decoded.
DECODED: set[str] = set()


def _check_images(folder: Path, source: str, images) -> dict[str, str]:
    """The sha256 of each image file the snapshot holds for a row with a file (an imported
    sheet's rows have none; a file the snapshot left out stays missing), each read without links
    and decoded under the caps of ``ingest-images``."""
    rows = images.select(["path", "external"]).to_pylist()
    digests = {}
    for relpath in sorted({row["path"] for row in rows if not row["external"]}):
        if not os.path.lexists(folder / relpath):
            continue
        try:
            data = read_regular(folder, relpath, what="the image")
        except UnsafeFileError as error:
            raise SnapshotError(UNSAFE.format(source=source, reason=error)) from None
        if len(data) > MAX_IMAGE_BYTES:
            raise SnapshotError(IMAGE.format(path=relpath, reason=f"{len(data):,} bytes, over {MAX_IMAGE_BYTES:,}"))
        digest = hashlib.sha256(data).hexdigest()
        if digest not in DECODED:
            try:
                _decode(data)
            except ValueError as error:
                raise SnapshotError(IMAGE.format(path=relpath, reason=error)) from None
            DECODED.add(digest)
        digests[relpath] = digest
    return digests
