"""The store's one door to its DuckDB file: ``read`` and ``write``.

One connection per ``Database``; every call takes its own cursor, so one database can be shared by
the threads of one process (the app's sessions and its generation worker). DuckDB lets only one
process open a file for writing, and while it does no other process can open it at all; that case
becomes a ``StoreError`` that says what to do instead. Values go in only through ``?`` parameters.

Every write goes through ``write``: one transaction, one lock per process, retried on a conflict.
Reads go through ``read`` (rows), ``read_frame`` (a table) or, for several reads that must see one
moment, ``read_together``. Only the modules of ``sdaudit/store/`` hold SQL (tests/test_architecture.py).
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import duckdb

from sdaudit.errors import StoreError

if TYPE_CHECKING:  # pandas is imported where a frame is built: the Annotate and Generate pages read records
    import pandas as pd  # and start without it (benchmarks/results/store.md)

MEMORY = ":memory:"
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
ATTEMPTS = 20
T = TypeVar("T")
Cursor = duckdb.DuckDBPyConnection

LOCKED = (
    "the store {path} is open in another process (the app or another sdaudit command); "
    "stop that process, or write a run folder with `generate --out DIR` and `ingest DIR` later."
)
NOT_DUCKDB = "the store {path} exists but is not a DuckDB database; give another --home or move the file away."
DAMAGED = ("the store {path} is damaged or truncated (DuckDB cannot read it back); restore a snapshot "
           "(`python -m sdaudit restore`) into a new --home, or move the file away.")
DISK_FULL = "the disk is full writing {path}: nothing was saved."
# How DuckDB words a write the file system refused for want of room (ENOSPC, EFBIG, EDQUOT).
DISK_FULL_WORDS = ("no space left on device", "file too large", "disk quota exceeded")


class DiskFullError(StoreError):
    """A write the disk had no room for; nothing of it was kept. ``path`` is the file being written."""

    def __init__(self, path: str):
        super().__init__(DISK_FULL.format(path=path))
        self.path = path


def is_disk_full(error: BaseException) -> bool:
    """True when ``error`` (DuckDB's or the OS's) says a write found no room: a full disk, a
    file-size limit or a quota."""
    return getattr(error, "errno", None) in DISK_FULL_ERRNOS or any(
        words in str(error).lower() for words in DISK_FULL_WORDS)


class Database:
    """One DuckDB file (or ``:memory:``) behind ``read`` and ``write``."""

    def __init__(self, path: str | os.PathLike = MEMORY, *, read_only: bool = False):
        self.path = str(path)
        try:
            self._con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.Error as error:
            text = str(error)
            if is_disk_full(error):
                raise DiskFullError(self.path) from None
            if not isinstance(error, duckdb.IOException):
                raise
            if "lock" in text.lower():
                raise StoreError(LOCKED.format(path=self.path)) from None
            if "not a valid DuckDB database" in text:
                raise StoreError(NOT_DUCKDB.format(path=self.path)) from None
            if "could not read" in text.lower():
                raise StoreError(DAMAGED.format(path=self.path)) from None
            raise StoreError(f"the store {self.path} cannot be opened: {text.splitlines()[0]}") from None
        self._write_lock = threading.Lock()

    def close(self) -> None:
        self._con.close()

    @contextmanager
    def _cursor(self) -> Iterator[Cursor]:
        """A cursor of the connection. A file that DuckDB cannot read back (truncated or
        overwritten) often opens and fails only at its first query: that becomes a StoreError."""
        cursor = self._con.cursor()
        try:
            yield cursor
        except duckdb.Error as error:
            if is_disk_full(error):
                raise DiskFullError(self.path) from None
            if isinstance(error, duckdb.IOException):
                raise StoreError(DAMAGED.format(path=self.path)) from None
            raise
        finally:
            cursor.close()

    def read(self, sql: str, params: Iterable = ()) -> list[tuple]:
        """The rows of one query."""
        with self._cursor() as cursor:
            return cursor.execute(sql, list(params)).fetchall()

    def read_one(self, sql: str, params: Iterable = ()) -> tuple | None:
        """The first row of one query, or None."""
        with self._cursor() as cursor:
            return cursor.execute(sql, list(params)).fetchone()

    def read_frame(self, sql: str, params: Iterable = ()) -> pd.DataFrame:
        """One query's rows as a DataFrame."""
        with self._cursor() as cursor:
            return cursor.execute(sql, list(params)).df()

    def read_together(self, work: Callable[[Cursor], T]) -> T:
        """Run the reads of ``work(cursor)`` in one read transaction, so they all see one moment of
        the store; it is rolled back, and it does not block writers (a snapshot reads this way)."""
        with self._cursor() as cursor:
            cursor.begin()
            try:
                return work(cursor)
            finally:
                cursor.rollback()

    def write(self, work: Callable[[Cursor], T]) -> T:
        """Run ``work(cursor)`` in one transaction and commit it.

        Writes of this process are serialised by a lock; a conflict with another connection to
        the same file (DuckDB shares the database within a process) is retried. A commit the disk
        has no room for changes nothing and becomes a ``StoreError`` (``DISK_FULL``).
        """
        for attempt in range(ATTEMPTS):
            with self._write_lock, self._cursor() as cursor:
                cursor.begin()
                try:
                    result = work(cursor)
                    cursor.commit()
                    return result
                except duckdb.TransactionException as error:
                    _roll_back(cursor)
                    if is_disk_full(error):
                        raise DiskFullError(self.path) from None
                    if attempt == ATTEMPTS - 1:
                        raise
                except BaseException:
                    _roll_back(cursor)
                    raise
            time.sleep(0.002 * (attempt + 1))
        raise AssertionError("unreachable")


def _roll_back(cursor: Cursor) -> None:
    """Roll back the cursor's transaction, if it still has one: a commit that failed (a full disk)
    has ended it already, and DuckDB's "no transaction is active" would hide the real error."""
    try:
        cursor.rollback()
    except duckdb.TransactionException as error:
        if "no transaction is active" not in str(error):
            raise


class TableGroup:
    """What each group of the store's tables (``Store`` is made of them) works through: its database."""

    db: Database
