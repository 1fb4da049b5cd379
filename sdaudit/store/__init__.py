"""The audit store: one class around one DuckDB file.

One connection per ``Store``; every call takes its own cursor, so a store can be shared by the
threads of one process (the app's sessions and its generation worker). DuckDB lets only one
process open a file for writing, and while it does no other process can open it at all; that
case becomes a ``StoreError`` that says what to do instead. Values go in only through ``?``
parameters. Nothing is ever deleted implicitly: annotations are upserted with an append-only
history (a rater's undo of an image's first save removes its current row, never its history),
and images and runs are only ever added.

Every write goes through ``Store._write`` (one transaction, one lock, retried on conflict); the
job queue (``jobs.JobQueue``) and snapshots (``snapshot.py``) keep their own SQL but read through
``Store._cursor`` and write through ``Store._write``. Plain records live in ``records.py``.

At ~760 lines this module is over the package's ~400-line mark on purpose: about 175 of them are
the schema's migrations, kept beside the ``_migrate`` that applies them and the queries that
depend on their columns (the rater team's own queries live in ``team.py``), and the annotation
writes (save, bulk save, undo) share one upsert.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import duckdb

from sdaudit.config import store_path, writable_folder
from sdaudit.errors import StoreError
from sdaudit.records import (
    DEFAULT_STUDY,
    AnnotationProgress,
    ImageRecord,
    QueuedImage,
    RunRecord,
    check_study_name,
)
from sdaudit.scheme import SKIN_TONE_MODES, Annotation

if TYPE_CHECKING:  # pandas is imported where a frame is built: the Annotate and Generate pages read
    import pandas as pd  # records and start without it (~0.3 s of a cold start; benchmarks/app_speed.py)

MEMORY = ":memory:"
ATTEMPTS = 20
T = TypeVar("T")

LOCKED = (
    "the store {path} is open in another process (the app or another sdaudit command); "
    "stop that process, or write a run folder with `generate --out DIR` and `ingest DIR` later."
)
NOT_DUCKDB = "the store {path} exists but is not a DuckDB database; give another --home or move the file away."
TOO_NEW = "the store {path} has schema version {found}, newer than this sdaudit knows ({known}); upgrade sdaudit."
TOO_OLD_TO_READ = ("the store {path} has schema version {found}, older than this sdaudit's ({known}); open it once "
                   "for writing (any command that writes, e.g. `import-annotations`, or the app) to migrate it.")
DAMAGED = ("the store {path} is damaged or truncated (DuckDB cannot read it back); restore a snapshot "
           "(`python -m sdaudit restore`) into a new --home, or move the file away.")

# Each migration moves the schema from version i to i + 1 and never drops data.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE schema_info (version INTEGER NOT NULL);
    INSERT INTO schema_info VALUES (0);

    CREATE SEQUENCE study_ids START 1;
    CREATE TABLE studies (
        study_id       INTEGER PRIMARY KEY DEFAULT nextval('study_ids'),
        name           VARCHAR NOT NULL UNIQUE,
        skin_tone_mode VARCHAR NOT NULL DEFAULT 'mst',
        created_at     TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
    );

    CREATE TABLE runs (
        run_key         VARCHAR PRIMARY KEY,
        study_id        INTEGER NOT NULL,
        model           VARCHAR NOT NULL,
        model_revision  VARCHAR,
        pipeline_class  VARCHAR,
        prompt          VARCHAR NOT NULL,
        negative_prompt VARCHAR NOT NULL,
        scheduler       VARCHAR NOT NULL,
        steps           INTEGER NOT NULL,
        guidance        DOUBLE NOT NULL,
        width           INTEGER NOT NULL,
        height          INTEGER NOT NULL,
        dtype           VARCHAR NOT NULL,
        device          VARCHAR,
        batch_size      INTEGER,
        safety_checker  BOOLEAN NOT NULL,
        versions        VARCHAR,
        created_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
    );

    CREATE SEQUENCE image_ids START 1;
    CREATE TABLE images (
        image_id   INTEGER PRIMARY KEY DEFAULT nextval('image_ids'),
        run_key    VARCHAR NOT NULL,
        seed       BIGINT NOT NULL,
        path       VARCHAR NOT NULL,
        sha256     VARCHAR NOT NULL,
        nsfw       BOOLEAN,
        seconds    DOUBLE,
        batch_size INTEGER,
        device     VARCHAR,
        created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        UNIQUE (run_key, seed)
    );

    CREATE TABLE annotations (
        image_id       INTEGER NOT NULL,
        rater          VARCHAR NOT NULL,
        person_present BOOLEAN,
        gender         VARCHAR,
        mst            INTEGER,
        skin_binary    VARCHAR,
        confidence     VARCHAR,
        updated_at     TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (image_id, rater)
    );

    CREATE SEQUENCE annotation_event_ids START 1;
    CREATE TABLE annotation_history (
        event_id       BIGINT PRIMARY KEY DEFAULT nextval('annotation_event_ids'),
        image_id       INTEGER NOT NULL,
        rater          VARCHAR NOT NULL,
        person_present BOOLEAN,
        gender         VARCHAR,
        mst            INTEGER,
        skin_binary    VARCHAR,
        confidence     VARCHAR,
        recorded_at    TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
    );

    CREATE SEQUENCE job_ids START 1;
    CREATE TABLE jobs (
        job_id       INTEGER PRIMARY KEY DEFAULT nextval('job_ids'),
        kind         VARCHAR NOT NULL,
        spec         VARCHAR NOT NULL,
        status       VARCHAR NOT NULL,
        run_key      VARCHAR,
        images_done  INTEGER NOT NULL DEFAULT 0,
        images_total INTEGER NOT NULL DEFAULT 0,
        step         INTEGER NOT NULL DEFAULT 0,
        steps_total  INTEGER NOT NULL DEFAULT 0,
        error        VARCHAR,
        pid          INTEGER,
        created_at   TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        started_at   TIMESTAMPTZ,
        finished_at  TIMESTAMPTZ
    );
    """,
    # 2: annotations imported without their images (the origin study's sheet) hang on
    # "external" image rows that have no file.
    """
    ALTER TABLE images ADD COLUMN external BOOLEAN NOT NULL DEFAULT false;
    ALTER TABLE images ADD COLUMN source_name VARCHAR;
    """,
    # 3: studies beyond one prompt: a run's slot value ("doctor" of "a photo of a {}"), a reference
    # image's file size, and targets from data (``targets.py``): one share per prompt or slot value
    """
    ALTER TABLE runs ADD COLUMN slot VARCHAR;
    ALTER TABLE images ADD COLUMN size_bytes BIGINT;
    CREATE TABLE targets (
        study_id   INTEGER NOT NULL,
        applies_to VARCHAR NOT NULL,
        value      VARCHAR NOT NULL,
        family     VARCHAR NOT NULL,
        group_name VARCHAR NOT NULL,
        target     DOUBLE NOT NULL,
        source     VARCHAR NOT NULL,
        PRIMARY KEY (study_id, applies_to, value, family, group_name)
    );
    """,
    # 4: a rater team (issue 13). A study's team settings (raters per image, repeats, when raters
    # disagree enough to adjudicate, the rater-group fields it asks about); admins' gold reference
    # labels and final (adjudicated) labels; raters' blind repeat answers, kept apart from their
    # annotations so they never count in estimates; raters' self-described group answers, kept
    # apart from the labels.
    """
    ALTER TABLE studies ADD COLUMN raters_per_image INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE studies ADD COLUMN repeat_every INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE studies ADD COLUMN disagree_mst_spread INTEGER NOT NULL DEFAULT 2;
    ALTER TABLE studies ADD COLUMN disagree_gender BOOLEAN NOT NULL DEFAULT true;
    ALTER TABLE studies ADD COLUMN disagree_person BOOLEAN NOT NULL DEFAULT true;
    ALTER TABLE studies ADD COLUMN rater_fields VARCHAR NOT NULL DEFAULT '[]';

    CREATE TABLE gold_labels (
        image_id       INTEGER PRIMARY KEY,
        person_present BOOLEAN,
        gender         VARCHAR,
        mst            INTEGER,
        skin_binary    VARCHAR,
        set_by         VARCHAR,
        updated_at     TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE adjudications (
        image_id       INTEGER PRIMARY KEY,
        person_present BOOLEAN,
        gender         VARCHAR,
        mst            INTEGER,
        skin_binary    VARCHAR,
        note           VARCHAR NOT NULL,
        adjudicator    VARCHAR,
        updated_at     TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE repeat_answers (
        image_id       INTEGER NOT NULL,
        rater          VARCHAR NOT NULL,
        person_present BOOLEAN,
        gender         VARCHAR,
        mst            INTEGER,
        skin_binary    VARCHAR,
        confidence     VARCHAR,
        updated_at     TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (image_id, rater)
    );
    CREATE TABLE rater_profiles (
        study_id    INTEGER NOT NULL,
        rater       VARCHAR NOT NULL,
        consented   BOOLEAN NOT NULL,
        answers     VARCHAR NOT NULL,
        answered_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (study_id, rater)
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
# The tables above, and the id sequence that numbers each table's rows (name -> (table, column)).
TABLES = ("studies", "runs", "images", "annotations", "annotation_history", "jobs", "targets", "gold_labels",
          "adjudications", "repeat_answers", "rater_profiles")
SEQUENCES = {"study_ids": ("studies", "study_id"), "image_ids": ("images", "image_id"),
             "annotation_event_ids": ("annotation_history", "event_id"), "job_ids": ("jobs", "job_id")}


IMAGE_COLUMNS = [f.name for f in fields(ImageRecord)]
RUN_COLUMNS = [f.name for f in fields(RunRecord) if f.name != "study"]
ANNOTATION_COLUMNS = ("image_id", "rater", "person_present", "gender", "mst", "skin_binary", "confidence")
# One annotation as a relation of ANNOTATION_COLUMNS, its values as ``?`` parameters.
ONE_ANNOTATION = (f"(VALUES ({', '.join('?' * len(ANNOTATION_COLUMNS))})) "
                  f"AS incoming({', '.join(ANNOTATION_COLUMNS)})")


def _upsert_annotations(cursor: duckdb.DuckDBPyConnection, incoming: str, params: list) -> list[int]:
    """The one annotation upsert: each row of the relation ``incoming`` (ANNOTATION_COLUMNS)
    becomes its image × rater's current labels and is appended to the history; returns the
    history's new event ids. An image id that is not in the store refuses them all."""
    columns = ", ".join(ANNOTATION_COLUMNS)
    unknown = cursor.execute(
        f"SELECT min(image_id) FROM {incoming} WHERE image_id NOT IN (SELECT image_id FROM images)", params
    ).fetchone()[0]
    if unknown is not None:
        raise ValueError(f"there is no image with id {unknown!r} in the store.")
    cursor.execute(
        f"INSERT INTO annotations ({columns}, updated_at) SELECT {columns}, current_timestamp FROM {incoming} "
        "ON CONFLICT (image_id, rater) DO UPDATE SET person_present = excluded.person_present, "
        "gender = excluded.gender, mst = excluded.mst, skin_binary = excluded.skin_binary, "
        "confidence = excluded.confidence, updated_at = excluded.updated_at",
        params,
    )
    added = cursor.execute(
        f"INSERT INTO annotation_history ({columns}) SELECT {columns} FROM {incoming} RETURNING event_id", params
    ).fetchall()
    return [int(event_id) for (event_id,) in added]


class Store:
    """The audit's DuckDB store. ``Store(":memory:")`` gives a private in-memory store."""

    def __init__(self, path: str | os.PathLike = MEMORY, *, read_only: bool = False):
        self.path = str(path)
        if self.path != MEMORY:
            writable_folder(Path(self.path).parent, what="the data home").mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.IOException as error:
            text = str(error)
            if "lock" in text.lower():
                raise StoreError(LOCKED.format(path=self.path)) from None
            if "not a valid DuckDB database" in text:
                raise StoreError(NOT_DUCKDB.format(path=self.path)) from None
            if "could not read" in text.lower():
                raise StoreError(DAMAGED.format(path=self.path)) from None
            raise StoreError(f"the store {self.path} cannot be opened: {text.splitlines()[0]}") from None
        self._write_lock = threading.Lock()
        try:
            if not read_only:
                self._migrate()
            elif (found := self.schema_version) != SCHEMA_VERSION:
                template = TOO_NEW if found > SCHEMA_VERSION else TOO_OLD_TO_READ
                raise StoreError(template.format(path=self.path, found=found, known=SCHEMA_VERSION))
            for table in TABLES:  # a truncated file can open and fail later, mid-command: find out now
                self.count(table)
        except StoreError:
            self._con.close()
            raise

    @classmethod
    def open(cls, home: str | os.PathLike | None = None, **kwargs) -> Store:
        """The store of a data home (``$SDAUDIT_HOME`` when ``home`` is None)."""
        return cls(store_path(home), **kwargs)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of the store's connection. A file that DuckDB cannot read back (truncated or
        overwritten) often opens and fails only at its first query: that becomes a StoreError."""
        cursor = self._con.cursor()
        try:
            yield cursor
        except duckdb.IOException:
            raise StoreError(DAMAGED.format(path=self.path)) from None
        finally:
            cursor.close()

    def _write(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``work(cursor)`` in one transaction and commit it.

        Writes of this process are serialised by a lock; a conflict with another ``Store`` on
        the same file (DuckDB shares the database within a process) is retried.
        """
        for attempt in range(ATTEMPTS):
            with self._write_lock, self._cursor() as cursor:
                cursor.begin()
                try:
                    result = work(cursor)
                    cursor.commit()
                    return result
                except duckdb.TransactionException:
                    cursor.rollback()
                    if attempt == ATTEMPTS - 1:
                        raise
                except BaseException:
                    cursor.rollback()
                    raise
            time.sleep(0.002 * (attempt + 1))
        raise AssertionError("unreachable")

    def _query(self, sql: str, params: Iterable = ()) -> pd.DataFrame:
        with self._cursor() as cursor:
            return cursor.execute(sql, list(params)).df()

    @property
    def schema_version(self) -> int:
        with self._cursor() as cursor:
            exists = cursor.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_info'"
            ).fetchone()[0]
            if not exists:
                return 0
            return int(cursor.execute("SELECT version FROM schema_info").fetchone()[0])

    def _migrate(self) -> None:
        found = self.schema_version
        if found > len(MIGRATIONS):
            raise StoreError(TOO_NEW.format(path=self.path, found=found, known=len(MIGRATIONS)))
        for version in range(found, len(MIGRATIONS)):
            with self._cursor() as cursor:
                cursor.begin()
                cursor.execute(MIGRATIONS[version])
                cursor.execute("UPDATE schema_info SET version = ?", [version + 1])
                cursor.commit()

    # -- studies ----------------------------------------------------------------------------

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

        def work(cursor: duckdb.DuckDBPyConnection) -> int:
            find = "SELECT study_id FROM studies WHERE name = ?"
            if (row := cursor.execute(find, [name]).fetchone()) is not None:
                return int(row[0])
            check_study_name(name)
            cursor.execute(
                "INSERT INTO studies (name, skin_tone_mode) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                [name, skin_tone_mode],
            )
            return int(cursor.execute(find, [name]).fetchone()[0])

        return self._write(work)

    def study_names(self) -> list[str]:
        """The studies' names, oldest study first."""
        with self._cursor() as cursor:
            return [name for (name,) in cursor.execute("SELECT name FROM studies ORDER BY study_id").fetchall()]

    # -- runs and images --------------------------------------------------------------------

    def add_run(self, run: RunRecord) -> bool:
        """Record ``run`` unless its key is already present. True when it was added."""
        return self._write(self._run_insert(run))

    def add_reference_images(self, run: RunRecord, images: list[tuple[int, str, str, str, int]]) -> bool:
        """Record a reference run (unless present) and its images, each ``(seed, path, sha256,
        original file name, size in bytes)``, in one transaction. True when the run was added."""
        import pandas as pd

        frame = pd.DataFrame(images, columns=["seed", "path", "sha256", "source_name", "size_bytes"])
        insert_run = self._run_insert(run)

        def work(cursor: duckdb.DuckDBPyConnection) -> bool:
            added = insert_run(cursor)
            cursor.register("incoming_reference", frame)
            try:
                cursor.execute(
                    "INSERT INTO images (run_key, seed, path, sha256, source_name, size_bytes) "
                    "SELECT ?, seed, path, sha256, source_name, size_bytes FROM incoming_reference", [run.run_key])
            finally:
                cursor.unregister("incoming_reference")
            return added

        return self._write(work)

    def _run_insert(self, run: RunRecord) -> Callable[[duckdb.DuckDBPyConnection], bool]:
        """The write that records ``run`` unless present (its study is created first, if new)."""
        study_id = self.ensure_study(run.study)
        row = asdict(run)
        row["versions"] = json.dumps(run.versions, sort_keys=True)
        values = [row[c] for c in RUN_COLUMNS]
        sql = (
            f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}, study_id) "
            f"VALUES ({', '.join('?' * len(RUN_COLUMNS))}, ?) ON CONFLICT (run_key) DO NOTHING "
            "RETURNING run_key"
        )

        def work(cursor: duckdb.DuckDBPyConnection) -> bool:
            added = cursor.execute(sql, [*values, study_id]).fetchone() is not None
            if not added and run.slot is not None:  # the same prompt made earlier outside a prompt set
                cursor.execute("UPDATE runs SET slot = ? WHERE run_key = ? AND slot IS NULL", [run.slot, run.run_key])
            return added

        return work

    def run(self, run_key: str) -> dict | None:
        """The run's row as a dict (``versions`` decoded), or None."""
        frame = self._query(
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
            "r.safety_checker, r.versions, r.slot, r.created_at, count(i.image_id) AS images, "
            "count(*) FILTER (WHERE i.nsfw) AS nsfw_images "
            "FROM runs r JOIN studies s USING (study_id) LEFT JOIN images i USING (run_key) "
        )
        params: list = []
        if study is not None:
            sql += "WHERE s.name = ? "
            params.append(study)
        sql += "GROUP BY ALL ORDER BY r.created_at DESC, r.run_key"
        return self._query(sql, params)

    def existing_seeds(self, run_key: str) -> set[int]:
        with self._cursor() as cursor:
            rows = cursor.execute("SELECT seed FROM images WHERE run_key = ?", [run_key]).fetchall()
        return {int(seed) for (seed,) in rows}

    def add_images(self, images: Iterable[ImageRecord]) -> int:
        """Add image rows; a (run, seed) already present is left as it is. Returns rows added."""
        import pandas as pd

        frame = pd.DataFrame([asdict(image) for image in images], columns=IMAGE_COLUMNS)
        if frame.empty:
            return 0
        frame = frame.astype({"nsfw": "boolean", "seconds": "float64", "batch_size": "Int64"})
        columns = ", ".join(IMAGE_COLUMNS)

        def work(cursor: duckdb.DuckDBPyConnection) -> int:
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

        return self._write(work)

    def images(self, *, run_key: str | None = None, study: str | None = None) -> pd.DataFrame:
        """Image rows (with their run's study and prompt), ordered by run and seed."""
        sql = (
            "SELECT i.*, s.name AS study, r.prompt, r.model, r.slot FROM images i "
            "JOIN runs r USING (run_key) JOIN studies s USING (study_id) WHERE true "
        )
        params: list = []
        if run_key is not None:
            sql += "AND i.run_key = ? "
            params.append(run_key)
        if study is not None:
            sql += "AND s.name = ? "
            params.append(study)
        return self._query(sql + "ORDER BY i.run_key, i.seed", params)

    # -- annotations ------------------------------------------------------------------------

    def save_annotation(self, image_id: int, rater: str, annotation: Annotation, *,
                        overlap: bool = False) -> int | None:
        """Set ``rater``'s current labels for an image and append them to the history; returns the
        save's event id in the history (what ``undo_save`` takes), or None when refused.

        With ``overlap`` (the Annotate page), a rater's first answer on an image that already has
        its study's raters per image from other raters is refused (None, nothing written). The
        count and the write are one transaction under the store's write lock, so of two raters who
        save at once only one can take an image's last place. Edits of one's own answer always save.
        """
        rater = rater.strip() if isinstance(rater, str) else rater
        if not rater:
            raise ValueError(f"an annotation needs a rater's name but got {rater!r}.")
        values = [image_id, rater, annotation.person_present, annotation.gender, annotation.mst,
                  annotation.skin_binary, annotation.confidence]

        def work(cursor: duckdb.DuckDBPyConnection) -> int | None:
            if overlap:
                own, ratings = cursor.execute(
                    "SELECT count(*) FILTER (WHERE rater = ?), count(*) FROM annotations WHERE image_id = ?",
                    [rater, image_id],
                ).fetchone()
                found = cursor.execute(
                    "SELECT s.raters_per_image FROM images i JOIN runs r USING (run_key) "
                    "JOIN studies s USING (study_id) WHERE i.image_id = ?", [image_id]).fetchone()
                needed = found[0] if found else None
                if needed is not None and own == 0 and ratings >= needed:
                    return None
            return _upsert_annotations(cursor, ONE_ANNOTATION, values)[0]

        return self._write(work)

    def undo_save(self, event_id: int, rater: str) -> int:
        """Put ``rater``'s labels for an image back to what they were before save ``event_id``
        (an id ``save_annotation`` returned), appending the restored labels to the history;
        returns the image's id. Undoing a session's saves newest first walks back through them.

        Before the image's first save there was no row: the current row goes and the history
        records the undo as a row with no labels (so a later undo reads it as "no row" too).
        """
        def work(cursor: duckdb.DuckDBPyConnection) -> int:
            saved = cursor.execute("SELECT image_id FROM annotation_history WHERE event_id = ? AND rater = ?",
                                   [event_id, rater]).fetchone()
            if saved is None:
                raise ValueError(f"there is no save {event_id!r} by rater {rater!r} to undo.")
            image_id = int(saved[0])
            before = cursor.execute(
                "SELECT person_present, gender, mst, skin_binary, confidence FROM annotation_history "
                "WHERE image_id = ? AND rater = ? AND event_id < ? ORDER BY event_id DESC LIMIT 1",
                [image_id, rater, event_id],
            ).fetchone()
            if before is None or all(value is None for value in before):
                cursor.execute("DELETE FROM annotations WHERE image_id = ? AND rater = ?", [image_id, rater])
                cursor.execute("INSERT INTO annotation_history (image_id, rater) VALUES (?, ?)", [image_id, rater])
            else:
                _upsert_annotations(cursor, ONE_ANNOTATION, [image_id, rater, *before])
            return image_id

        return self._write(work)

    def annotation(self, image_id: int, rater: str) -> Annotation | None:
        """``rater``'s current labels for one image, or None when the rater has none."""
        with self._cursor() as cursor:
            row = cursor.execute(
                "SELECT person_present, gender, mst, skin_binary, confidence FROM annotations "
                "WHERE image_id = ? AND rater = ?", [image_id, rater]).fetchone()
        return Annotation(*row) if row else None

    def save_annotations(self, rows: pd.DataFrame) -> int:
        """Save many annotations in one transaction (all or nothing); returns rows saved.

        ``rows`` has ``image_id``, ``rater`` and the label columns; values must already be
        checked against the scheme (``Annotation``). Each row also goes to the history.
        """
        frame = rows[list(ANNOTATION_COLUMNS)].astype({"image_id": "int64", "person_present": "boolean", "mst": "Int64"})
        if frame.empty:
            return 0

        def work(cursor: duckdb.DuckDBPyConnection) -> int:
            cursor.register("incoming_annotations", frame)
            try:
                _upsert_annotations(cursor, "incoming_annotations", [])
            finally:
                cursor.unregister("incoming_annotations")
            return len(frame)

        return self._write(work)

    def add_external_images(self, run_key: str, names: list[str]) -> list[int]:
        """Image rows without files, one per name (seed = position); returns their ids in order.

        Rows already present for the run are reused, so importing a sheet twice adds none.
        """
        import pandas as pd

        frame = pd.DataFrame({"seed": range(len(names)), "source_name": names})

        def work(cursor: duckdb.DuckDBPyConnection) -> list[int]:
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

        return self._write(work)

    def annotations(self, *, study: str | None = None) -> pd.DataFrame:
        """Current annotations with the image's run, seed and study."""
        sql = (
            "SELECT a.*, i.run_key, i.seed, i.path, i.external, i.source_name, s.name AS study FROM annotations a "
            "JOIN images i USING (image_id) JOIN runs r USING (run_key) JOIN studies s USING (study_id) "
        )
        params: list = []
        if study is not None:
            sql += "WHERE s.name = ? "
            params.append(study)
        return self._query(sql + "ORDER BY a.image_id, a.rater", params)

    def annotation_history(self, *, image_id: int | None = None) -> pd.DataFrame:
        """Every annotation ever saved, oldest first."""
        if image_id is None:
            return self._query("SELECT * FROM annotation_history ORDER BY event_id")
        return self._query(
            "SELECT * FROM annotation_history WHERE image_id = ? ORDER BY event_id", [image_id]
        )

    def study_skin_tone_mode(self, study: str) -> str:
        with self._cursor() as cursor:
            row = cursor.execute("SELECT skin_tone_mode FROM studies WHERE name = ?", [study]).fetchone()
        return row[0] if row else "mst"

    def annotation_queue(self, study: str, rater: str, *, only_missing: bool, shuffled: bool) -> list[QueuedImage]:
        """The study's images (with files) for ``rater`` to annotate, with the rater's saved labels.

        With ``only_missing`` it is the rater's to-do list: the images they have not annotated that
        still need ratings (fewer than the study's raters per image), those closest to complete
        first, so a team reaches that many ratings per image with no wasted work; plus the repeats
        now due (``team.due_repeats``), placed among them and shown blind. Without it, every image
        in the chosen order (``QueuedImage.full`` marks those complete without this rater). Shuffled order is stable per rater (a hash of rater and image), so a page
        reload or a second session shows the same order, and different raters see different orders.
        """
        from sdaudit.store.team import due_repeats

        order = "md5(? || ':' || CAST(i.image_id AS VARCHAR))" if shuffled else "i.run_key, i.seed"
        to_do = "(a.image_id IS NULL AND coalesce(c.ratings, 0) < s.raters_per_image)"
        sql = (
            "WITH counted AS (SELECT image_id, count(*) AS ratings FROM annotations GROUP BY image_id) "
            "SELECT i.image_id, i.run_key, i.seed, i.path, r.prompt, r.negative_prompt, r.model, "
            "a.image_id IS NOT NULL, a.person_present, a.gender, a.mst, a.skin_binary, a.confidence, "
            "coalesce(c.ratings, 0), s.raters_per_image "
            "FROM images i JOIN runs r USING (run_key) JOIN studies s USING (study_id) "
            "LEFT JOIN annotations a ON a.image_id = i.image_id AND a.rater = ? "
            "LEFT JOIN counted c ON c.image_id = i.image_id "
            "WHERE s.name = ? AND NOT i.external "
        )
        params: list = [rater, study]
        if only_missing:  # the closest to complete first; "All" keeps its order, so cards do not move on a rerun
            sql += f"AND {to_do} ORDER BY coalesce(c.ratings, 0) DESC, {order}"
        else:
            sql += f"ORDER BY {order}"
        if shuffled:
            params.append(rater)
        with self._cursor() as cursor:
            rows = cursor.execute(sql, params).fetchall()
        # columns 0-6: the image; 7: whether the rater has a row; 8-12: Annotation's fields in order;
        # 13: the image's ratings; 14: the study's raters per image
        queue = [QueuedImage(*row[:7], saved=Annotation(*row[8:13]) if row[7] else None, ratings=row[13],
                             needed=row[14]) for row in rows]
        if only_missing:
            for position, image in enumerate(due_repeats(self, study, rater)):
                queue.insert(min(len(queue), 1 + 2 * position), image)
        return queue

    def annotation_progress(self, study: str, rater: str) -> AnnotationProgress:
        """How many of ``study``'s images (with files) ``rater`` has annotated, and how many have
        the study's raters per image."""
        with self._cursor() as cursor:
            row = cursor.execute(
                "WITH counted AS (SELECT image_id, count(*) AS ratings, count(*) FILTER (WHERE rater = ?) AS yours "
                "FROM annotations GROUP BY image_id) "
                "SELECT coalesce(sum(c.yours), 0), count(*), count(*) FILTER (WHERE c.ratings >= s.raters_per_image), "
                "any_value(s.raters_per_image) FROM images i JOIN runs r USING (run_key) "
                "JOIN studies s USING (study_id) LEFT JOIN counted c ON c.image_id = i.image_id "
                "WHERE s.name = ? AND NOT i.external",
                [rater, study],
            ).fetchone()
            needed = row[3] if row[3] is not None else cursor.execute(
                "SELECT coalesce(any_value(raters_per_image), 1) FROM studies WHERE name = ?", [study]).fetchone()[0]
        return AnnotationProgress(yours=int(row[0]), images=int(row[1]), complete=int(row[2]), needed=int(needed))

    def annotated_count(self, study: str, rater: str) -> tuple[int, int]:
        """(images ``rater`` has annotated, images with files) in ``study``."""
        progress = self.annotation_progress(study, rater)
        return progress.yours, progress.images

    def count(self, table: str) -> int:
        """Rows in one of the store's tables (for summaries and tests)."""
        if table not in TABLES:
            raise ValueError(f"`table` must be one of the store's tables but is {table!r}.")
        with self._cursor() as cursor:
            return int(cursor.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
