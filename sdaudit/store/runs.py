"""Studies, their runs and the runs' images: rows that are only ever added (a run's slot value is
the one thing filled in later)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, fields
from typing import TYPE_CHECKING

from sdaudit.records import DEFAULT_STUDY, ImageRecord, RunRecord, check_study_name
from sdaudit.scheme import SKIN_TONE_MODES
from sdaudit.store.database import Cursor, TableGroup

if TYPE_CHECKING:
    import pandas as pd

# The one join from an image ``i`` to its run ``r`` and study ``s``; STUDY_IMAGES starts from the images.
TO_STUDY = "JOIN runs r USING (run_key) JOIN studies s USING (study_id)"
STUDY_IMAGES = f"images i {TO_STUDY}"

IMAGE_COLUMNS = [f.name for f in fields(ImageRecord)]
RUN_COLUMNS = [f.name for f in fields(RunRecord) if f.name != "study"]


def external_images_insert(run_key: str, names: list[str]) -> Callable[[Cursor], list[int]]:
    """The write of ``add_external_images``: image rows without files, one per name (seed =
    position), reusing rows already present; returns their ids in order."""
    import pandas as pd

    frame = pd.DataFrame({"seed": range(len(names)), "source_name": names})

    def work(cursor: Cursor) -> list[int]:
        cursor.register("incoming_external", frame)
        try:
            cursor.execute(
                "INSERT INTO images (run_key, seed, path, sha256, external, source_name) "
                "SELECT ?, seed, '', '', true, source_name FROM incoming_external "
                "ON CONFLICT (run_key, seed) DO NOTHING",
                [run_key],
            )
        finally:
            cursor.unregister("incoming_external")
        rows = cursor.execute(
            "SELECT image_id FROM images WHERE run_key = ? ORDER BY seed", [run_key]
        ).fetchall()
        return [int(image_id) for (image_id,) in rows]

    return work


def sheet_images_insert(images: pd.DataFrame) -> Callable[[Cursor], int]:
    """The write of an imported sheet's image rows without files (``external``): one per row of
    ``images`` (``run_key``, ``seed``, ``source_name``), a run and seed already present left as it
    is; returns rows added."""
    frame = images[["run_key", "seed", "source_name"]].astype({"run_key": "string", "seed": "int64",
                                                               "source_name": "string"})

    def work(cursor: Cursor) -> int:
        if frame.empty:
            return 0
        cursor.register("incoming_sheet_images", frame)
        try:
            return len(cursor.execute(
                "INSERT INTO images (run_key, seed, path, sha256, external, source_name) "
                "SELECT run_key, seed, '', '', true, source_name FROM incoming_sheet_images "
                "ON CONFLICT (run_key, seed) DO NOTHING RETURNING image_id"
            ).fetchall())
        finally:
            cursor.unregister("incoming_sheet_images")

    return work


def study_id_in(cursor: Cursor, name: str, *, skin_tone_mode: str = "mst") -> int:
    """Within a write: the id of study ``name``, created first if new (so a command's new study is
    part of its one transaction, never left behind alone)."""
    # fetchall, not fetchone: a result left unfinished blocks the next register on this cursor
    find = "SELECT study_id FROM studies WHERE name = ?"
    if found := cursor.execute(find, [name]).fetchall():
        return int(found[0][0])
    check_study_name(name)
    cursor.execute(
        "INSERT INTO studies (name, skin_tone_mode) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        [name, skin_tone_mode],
    ).fetchall()
    return int(cursor.execute(find, [name]).fetchall()[0][0])


class StudyTables(TableGroup):
    """The ``studies`` table (a study's team settings are in ``team.py``)."""

    def ensure_study(self, name: str = DEFAULT_STUDY, *, skin_tone_mode: str = "mst") -> int:
        """The id of study ``name``, created (with ``skin_tone_mode``) if it does not exist.

        A new study's name must pass ``check_study_name``; a study already in the store (an older
        store's odd name) is found whatever its name.
        """
        name = name.strip() if isinstance(name, str) else name
        if not name:
            raise ValueError(f"a study needs a non-empty name but got {name!r}.")
        if skin_tone_mode not in SKIN_TONE_MODES:
            raise ValueError(
                f"`skin_tone_mode` must be one of {', '.join(SKIN_TONE_MODES)} but is {skin_tone_mode!r}."
            )

        return self.db.write(lambda cursor: study_id_in(cursor, name, skin_tone_mode=skin_tone_mode))

    def study_names(self) -> list[str]:
        """The studies' names, oldest study first."""
        return [name for (name,) in self.db.read("SELECT name FROM studies ORDER BY study_id")]

    def study_skin_tone_mode(self, study: str) -> str:
        row = self.db.read_one("SELECT skin_tone_mode FROM studies WHERE name = ?", [study])
        return row[0] if row else "mst"


class RunTables(StudyTables):
    """The ``runs`` and ``images`` tables."""

    def add_run(self, run: RunRecord) -> bool:
        """Record ``run`` unless its key is already present. True when it was added."""
        return self.db.write(self._run_insert(run))

    def add_reference_images(self, run: RunRecord, images: list[tuple[int, str, str, str, int]]) -> bool:
        """Record a reference run (unless present) and its images, each ``(seed, path, sha256,
        original file name, size in bytes)``, in one transaction. True when the run was added."""
        import pandas as pd

        frame = pd.DataFrame(images, columns=["seed", "path", "sha256", "source_name", "size_bytes"])
        insert_run = self._run_insert(run)

        def work(cursor: Cursor) -> bool:
            added = insert_run(cursor)
            cursor.register("incoming_reference", frame)
            try:
                cursor.execute(
                    "INSERT INTO images (run_key, seed, path, sha256, source_name, size_bytes) "
                    "SELECT ?, seed, path, sha256, source_name, size_bytes FROM incoming_reference", [run.run_key])
            finally:
                cursor.unregister("incoming_reference")
            return added

        return self.db.write(work)

    def _run_insert(self, run: RunRecord) -> Callable[[Cursor], bool]:
        """The write that records ``run`` unless present (its study is created first, if new)."""
        row = asdict(run)
        row["versions"] = json.dumps(run.versions, sort_keys=True)
        values = [row[c] for c in RUN_COLUMNS]
        sql = (
            f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}, study_id) "
            f"VALUES ({', '.join('?' * len(RUN_COLUMNS))}, ?) ON CONFLICT (run_key) DO NOTHING "
            "RETURNING run_key"
        )

        def work(cursor: Cursor) -> bool:
            study_id = study_id_in(cursor, run.study)
            added = cursor.execute(sql, [*values, study_id]).fetchone() is not None
            if not added and run.slot is not None:  # the same prompt made earlier outside a prompt set
                cursor.execute("UPDATE runs SET slot = ? WHERE run_key = ? AND slot IS NULL", [run.slot, run.run_key])
            return added

        return work

    def run(self, run_key: str) -> dict | None:
        """The run's row as a dict (``versions`` decoded), or None."""
        frame = self.db.read_frame(
            "SELECT r.*, s.name AS study FROM runs r JOIN studies s USING (study_id) WHERE run_key = ?",
            [run_key],
        )
        if frame.empty:
            return None
        row = frame.iloc[0].to_dict()
        row["versions"] = json.loads(row["versions"] or "{}")
        return row

    def runs(self, study: str | None = None) -> pd.DataFrame:
        """Runs with their study name and image count, newest first."""
        sql = (
            "SELECT r.run_key, s.name AS study, r.model, r.model_revision, r.prompt, r.negative_prompt, "
            "r.scheduler, r.steps, r.guidance, r.width, r.height, r.dtype, r.device, r.batch_size, "
            "r.pipeline_class, r.safety_checker, r.versions, r.slot, r.kind, r.created_at, count(i.image_id) AS images, "
            "count(*) FILTER (WHERE i.nsfw) AS nsfw_images "
            "FROM runs r JOIN studies s USING (study_id) LEFT JOIN images i USING (run_key) "
        )
        params: list = []
        if study is not None:
            sql += "WHERE s.name = ? "
            params.append(study)
        sql += "GROUP BY ALL ORDER BY r.created_at DESC, r.run_key"
        return self.db.read_frame(sql, params)

    def existing_seeds(self, run_key: str) -> set[int]:
        return {int(seed) for (seed,) in self.db.read("SELECT seed FROM images WHERE run_key = ?", [run_key])}

    def add_images(self, images: Iterable[ImageRecord]) -> int:
        """Add image rows; a (run, seed) already present is left as it is. Returns rows added."""
        return self.db.write(self._images_insert(images))

    def add_runs_and_images(self, runs: Iterable[RunRecord], images: Iterable[ImageRecord]) -> tuple[int, int]:
        """Record ``runs`` (each unless present, with its study if new) and image rows (a run and
        seed already present is left as it is) in one transaction: a command's whole write, all or
        nothing. Returns (runs added, images added)."""
        inserts = [self._run_insert(run) for run in runs]
        insert_images = self._images_insert(images)

        def work(cursor: Cursor) -> tuple[int, int]:
            runs_added = sum(insert(cursor) for insert in inserts)
            return runs_added, insert_images(cursor)

        return self.db.write(work)

    def _images_insert(self, images: Iterable[ImageRecord]) -> Callable[[Cursor], int]:
        """The write that adds image rows (a run and seed already present is left); returns rows added."""
        import pandas as pd

        frame = pd.DataFrame([asdict(image) for image in images], columns=IMAGE_COLUMNS)
        frame = frame.astype({"nsfw": "boolean", "seconds": "float64", "batch_size": "Int64"})
        columns = ", ".join(IMAGE_COLUMNS)

        def work(cursor: Cursor) -> int:
            if frame.empty:
                return 0
            cursor.register("incoming_images", frame)
            try:
                return len(
                    cursor.execute(
                        f"INSERT INTO images ({columns}) SELECT {columns} FROM incoming_images "
                        "ON CONFLICT (run_key, seed) DO NOTHING RETURNING image_id"
                    ).fetchall()
                )
            finally:
                cursor.unregister("incoming_images")

        return work

    def recorded_paths(self, paths: list[str]) -> set[str]:
        """Those of ``paths`` that an image row points at (what a crashed write's files keep)."""
        if not paths:
            return set()
        return {path for (path,) in self.db.read("SELECT DISTINCT path FROM images WHERE list_contains(?, path)",
                                                 [paths])}

    def add_external_images(self, run_key: str, names: list[str]) -> list[int]:
        """Image rows without files, one per name (seed = position); returns their ids in order.

        Rows already present for the run are reused, so importing a sheet twice adds none.
        """
        return self.db.write(external_images_insert(run_key, names))

    def images(self, *, run_key: str | None = None, study: str | None = None) -> pd.DataFrame:
        """Image rows (with their run's study and prompt), ordered by run and seed."""
        sql = f"SELECT i.*, s.name AS study, r.prompt, r.model, r.slot, r.kind FROM {STUDY_IMAGES} WHERE true "
        params: list = []
        if run_key is not None:
            sql += "AND i.run_key = ? "
            params.append(run_key)
        if study is not None:
            sql += "AND s.name = ? "
            params.append(study)
        return self.db.read_frame(sql + "ORDER BY i.run_key, i.seed", params)
