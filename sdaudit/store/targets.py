"""The ``targets`` table: a study's targets from data, one share per prompt or slot value × family ×
group with its source (``analysis/targets.py`` reads and checks the CSV they come from)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sdaudit.store.database import Cursor, TableGroup
from sdaudit.store.runs import study_id_in

if TYPE_CHECKING:
    import pandas as pd

TARGET_COLUMNS = ("applies_to", "value", "family", "group_name", "target", "source")


class TargetTables(TableGroup):
    def save_targets(self, study: str, rows: Sequence[Sequence], *, create_study: bool = False) -> int:
        """Store ``rows`` (each ``TARGET_COLUMNS``' values) as the targets of ``study`` (which must
        exist, unless ``create_study``: then a new study is made in the same transaction) in one
        transaction; a row for a target the study holds already replaces it. Returns how many rows
        replaced one."""
        def work(cursor: Cursor) -> int:
            if create_study:
                study_id_in(cursor, study)
            found = cursor.execute("SELECT study_id FROM studies WHERE name = ?", [study]).fetchone()
            if found is None:
                raise ValueError(f"there is no study {study!r} in the store.")
            replaced = 0
            for row in rows:
                key = [found[0], *row[:4]]
                replaced += cursor.execute(
                    "SELECT count(*) FROM targets WHERE study_id = ? AND applies_to = ? AND value = ? AND family = ? "
                    "AND group_name = ?", key).fetchone()[0]
                cursor.execute(
                    f"INSERT INTO targets (study_id, {', '.join(TARGET_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (study_id, applies_to, value, family, group_name) DO UPDATE SET "
                    "target = excluded.target, source = excluded.source", [found[0], *row])
            return replaced

        return self.db.write(work)

    def targets(self, study: str) -> pd.DataFrame:
        """The study's targets: applies_to, value, family, group, target, source."""
        return self.db.read_frame(
            "SELECT t.applies_to, t.value, t.family, t.group_name AS \"group\", t.target, t.source FROM targets t "
            "JOIN studies s USING (study_id) WHERE s.name = ? ORDER BY t.applies_to, t.value, t.family, t.group_name",
            [study])
