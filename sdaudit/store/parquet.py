"""Every table to Parquet files and back, for snapshots (``files/snapshot.py`` adds the images and
the manifest, ``files/snapshot_check.py`` checks a snapshot's tables before they come back)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from sdaudit.errors import StoreError
from sdaudit.store import schema
from sdaudit.store.database import Cursor, TableGroup

if TYPE_CHECKING:  # pyarrow is imported by whoever reads a snapshot's tables
    import pyarrow as pa

NOT_STORED = "the snapshot's rows could not be stored in {path}: {reason}."
NOT_WRITTEN = "the snapshot's table {path} could not be written: {reason}."


def _quote(text: str) -> str:
    """A path inside a SQL string literal (COPY takes no parameters for its file name)."""
    return text.replace("'", "''")


def _copy_table_out(cursor: Cursor, table: str, folder: Path) -> int:
    """Write one table to ``folder/<table>.parquet``; returns its row count."""
    path = str(folder / f"{table}.parquet")
    try:
        cursor.execute(f"COPY (SELECT * FROM {table}) TO '{_quote(path)}' (FORMAT parquet)")
    except duckdb.IOException as error:  # a full disk: not the store's fault (the cursor would call it damaged)
        raise StoreError(NOT_WRITTEN.format(path=path, reason=_first_line(error))) from None
    return int(cursor.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


class ParquetCopies(TableGroup):
    def export_tables(self, folder: Path) -> dict[str, int]:
        """Write every table to ``folder/<table>.parquet`` from one consistent read (which does not
        block writers, so annotation clicks go on meanwhile); returns each table's row count."""
        return self.db.read_together(
            lambda cursor: {table: _copy_table_out(cursor, table, folder) for table in schema.TABLES})

    def table_columns(self) -> dict[str, dict[str, str]]:
        """Every table's columns in order, each with its DuckDB type (``INTEGER``, ``VARCHAR``, …)."""
        rows = self.db.read("SELECT table_name, column_name, data_type FROM information_schema.columns "
                            "ORDER BY table_name, ordinal_position")
        columns: dict[str, dict[str, str]] = {table: {} for table in schema.TABLES}
        for table, column, data_type in rows:
            if table in columns:
                columns[table][column] = data_type
        return columns

    def table_constraints(self) -> dict[str, dict[str, list]]:
        """Every table's NOT NULL columns (``not_null``) and its keys (``keys``: the columns of its
        primary key and of each UNIQUE constraint), for a restore to check before it writes."""
        rows = self.db.read("SELECT table_name, constraint_type, constraint_column_names FROM duckdb_constraints() "
                            "WHERE constraint_type IN ('NOT NULL', 'PRIMARY KEY', 'UNIQUE') ORDER BY ALL")
        found: dict[str, dict[str, list]] = {table: {"not_null": [], "keys": []} for table in schema.TABLES}
        for table, kind, columns in rows:
            if table not in found:
                continue
            if kind == "NOT NULL":
                found[table]["not_null"] += columns
            else:
                found[table]["keys"].append(columns)
        return found

    def import_tables(self, tables: Mapping[str, pa.Table]) -> dict[str, int]:
        """Load each table's rows (Arrow tables, checked by the caller) into the empty store in one
        transaction, then move each id sequence past the largest id restored; returns each table's
        row count. A column this store does not have is left out (the caller allows only those a
        later sdaudit adds); one it has and the rows lack takes its default."""
        known = self.table_columns()

        def work(cursor: Cursor) -> dict[str, int]:
            rows = {}
            for table in schema.TABLES:
                incoming = tables[table]
                names = ", ".join(f'"{name}"' for name in incoming.column_names if name in known[table])
                cursor.register("incoming", incoming)
                # no try/finally: after a refused row the transaction is aborted and unregister would
                # raise its own error in place of the constraint that refused the row
                cursor.execute(f"INSERT INTO {table} BY NAME SELECT {names} FROM incoming").fetchall()
                cursor.unregister("incoming")
                # fetchall, not fetchone: DuckDB refuses the next register while a result is unfinished
                rows[table] = int(cursor.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
            if "kind" not in tables["runs"].column_names:  # a snapshot from before migration 5
                cursor.execute(schema.KIND_FROM_MARKERS)
            for sequence, (table, column) in schema.SEQUENCES.items():
                highest = cursor.execute(f"SELECT coalesce(max({column}), 0) FROM {table}").fetchone()[0]
                cursor.execute(f"SELECT count(nextval('{sequence}')) FROM range(?)", [int(highest)])
            return rows

        try:
            return self.db.write(work)
        except duckdb.Error as error:  # a row the checks let through that the schema refuses, or a full disk
            raise StoreError(NOT_STORED.format(path=self.db.path, reason=_first_line(error))) from None


def fill_new_store(path: Path, open_store: Callable[[Path], AbstractContextManager],
                   tables: Mapping[str, pa.Table]) -> dict[str, int]:
    """Create the store ``open_store(path)`` (``Store``: this module cannot import it), load
    ``tables`` into it (as ``import_tables``) and close it; any DuckDB failure on the way, a full
    disk included, is a ``StoreError``."""
    try:
        with open_store(path) as store:
            return store.import_tables(tables)
    except duckdb.Error as error:
        raise StoreError(NOT_STORED.format(path=path, reason=_first_line(error))) from None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(".")
