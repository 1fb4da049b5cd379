"""The audit store: one DuckDB file behind one door.

A writable open also finishes what a killed write left: the files it had written for rows that
never committed are removed (``files/safe.py``, ``PendingFiles`` and ``recover_pending``).

- ``database.py``: the connection and its door — ``read`` and ``write`` (one transaction, one lock,
  retried on a conflict); the only place a cursor is taken;
- ``schema.py``: the migrations, version by version, and the tables they make;
- one module per group of tables, each a part of ``Store``: ``runs.py`` (studies, runs, images),
  ``annotations.py`` (labels, their history and undo, and the rule for when one is a rating),
  ``queue.py`` (the rater queue and progress), ``targets.py`` (targets from data), ``parquet.py``
  (every table to Parquet and back, for snapshots); and two on their own: ``team.py``
  (``Team(store)``: team settings, repeats, gold, adjudication, rater groups), ``jobs.py``
  (``JobQueue(store)``: the generation queue) and ``machine.py`` (``MachineTables(store)``: machine
  labellers' answers and the human sample, kept apart from people's labels).

No SQL lives outside this package, and nothing outside it reaches past ``Store``'s public methods
(tests/test_architecture.py). Plain records live in ``records.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

from sdaudit.config import store_path, writable_folder
from sdaudit.errors import StoreError
from sdaudit.files.safe import recover_pending
from sdaudit.records import ImageRecord, RunRecord
from sdaudit.store import schema
from sdaudit.store.annotations import AnnotationTables
from sdaudit.store.database import DAMAGED, LOCKED, MEMORY, NOT_DUCKDB, Database
from sdaudit.store.parquet import ParquetCopies
from sdaudit.store.queue import RaterQueue, StudyCounts
from sdaudit.store.runs import RunTables
from sdaudit.store.schema import SCHEMA_VERSION, SEQUENCES, TABLES, TOO_NEW, TOO_OLD_TO_READ
from sdaudit.store.targets import TargetTables

__all__ = ["DAMAGED", "LOCKED", "MEMORY", "NOT_DUCKDB", "SCHEMA_VERSION", "SEQUENCES", "TABLES", "TOO_NEW",
           "TOO_OLD_TO_READ", "ImageRecord", "RunRecord", "Store", "StudyCounts"]


class Store(RunTables, AnnotationTables, RaterQueue, TargetTables, ParquetCopies):
    """The audit's DuckDB store. ``Store(":memory:")`` gives a private in-memory store."""

    def __init__(self, path: str | os.PathLike = MEMORY, *, read_only: bool = False):
        self.path = str(path)
        if self.path != MEMORY:
            writable_folder(Path(self.path).parent, what="the data home").mkdir(parents=True, exist_ok=True)
        self.db = Database(self.path, read_only=read_only)
        try:
            if read_only:
                schema.check_readable(self.db)
            else:
                schema.migrate(self.db)
            for table in schema.TABLES:  # a truncated file can open and fail later, mid-command: find out now
                self.count(table)
            if self.path != MEMORY and not read_only:  # files of a write that died before its commit go
                recover_pending(Path(self.path).parent, self.recorded_paths)
        except StoreError:
            self.db.close()
            raise

    @classmethod
    def open(cls, home: str | os.PathLike | None = None, **kwargs) -> Store:
        """The store of a data home (``$SDAUDIT_HOME`` when ``home`` is None)."""
        return cls(store_path(home), **kwargs)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return schema.schema_version(self.db)

    def count(self, table: str) -> int:
        """Rows in one of the store's tables (for summaries and tests)."""
        return schema.count_rows(self.db, table)
