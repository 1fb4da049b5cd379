"""Every table to Parquet files and back, for snapshots (``files/snapshot.py`` adds the images and
the manifest)."""

from __future__ import annotations

from pathlib import Path

from sdaudit.store import schema
from sdaudit.store.database import Cursor, TableGroup


def _quote(text: str) -> str:
    """A path inside a SQL string literal (COPY takes no parameters for its file name)."""
    return text.replace("'", "''")


def _copy_table_out(cursor: Cursor, table: str, folder: Path) -> int:
    """Write one table to ``folder/<table>.parquet``; returns its row count."""
    path = str(folder / f"{table}.parquet")
    cursor.execute(f"COPY (SELECT * FROM {table}) TO '{_quote(path)}' (FORMAT parquet)")
    return int(cursor.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


class ParquetCopies(TableGroup):
    def export_tables(self, folder: Path) -> dict[str, int]:
        """Write every table to ``folder/<table>.parquet`` from one consistent read (which does not
        block writers, so annotation clicks go on meanwhile); returns each table's row count."""
        return self.db.read_together(
            lambda cursor: {table: _copy_table_out(cursor, table, folder) for table in schema.TABLES})

    def import_tables(self, folder: Path) -> dict[str, int]:
        """Load ``folder/<table>.parquet`` into each (empty) table in one transaction, then move each
        id sequence past the largest id restored; returns each table's row count."""
        def work(cursor: Cursor) -> dict[str, int]:
            rows = {}
            for table in schema.TABLES:
                path = folder / f"{table}.parquet"
                if not path.is_file():
                    raise ValueError(f"the snapshot lacks {path.name}.")
                cursor.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet('{_quote(str(path))}')")
                rows[table] = int(cursor.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for sequence, (table, column) in schema.SEQUENCES.items():
                highest = cursor.execute(f"SELECT coalesce(max({column}), 0) FROM {table}").fetchone()[0]
                cursor.execute(f"SELECT count(nextval('{sequence}')) FROM range(?)", [int(highest)])
            return rows

        return self.db.write(work)
