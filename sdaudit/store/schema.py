"""The store's schema: the migrations that build it, version by version, and the tables they make.

Each migration moves the schema from version i to i + 1 and never drops data; a store opened for
writing is migrated to the latest version at once (``migrate``), and one opened read-only must
already be there.
"""

from __future__ import annotations

from sdaudit.errors import StoreError
from sdaudit.store.database import Database

TOO_NEW = "the store {path} has schema version {found}, newer than this sdaudit knows ({known}); upgrade sdaudit."
TOO_OLD_TO_READ = ("the store {path} has schema version {found}, older than this sdaudit's ({known}); open it once "
                   "for writing (any command that writes, e.g. `import-annotations`, or the app) to migrate it.")

# How migration 5 (and the restore of a snapshot made before it) tells an older run's kind.
KIND_FROM_MARKERS = """
    UPDATE runs SET kind = CASE model WHEN 'external' THEN 'imported' ELSE 'reference' END
    WHERE model IN ('external', 'reference') AND scheduler = model AND dtype = model;
"""
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
    # 5: a run's kind as a column of its own. Before it, a run without generation settings carried
    # a marker in its model, scheduler and dtype columns ("external": an imported sheet's images;
    # "reference": a reference set's), so a generated run whose model id was literally "reference"
    # was taken for a reference set. The markers fill the column once (all three must agree, which a
    # generated run's scheduler class never does); afterwards only the column says what a run is.
    f"""
    ALTER TABLE runs ADD COLUMN kind VARCHAR NOT NULL DEFAULT 'generated';
    {KIND_FROM_MARKERS}
    """,
    # 6: a job's own timings, so its page speaks from the first second: how long loading its model
    # took (the next job of that model says "about N s"), and its pace in seconds per image, kept
    # across its runs and a resume (the time left no longer vanishes while a study's next run loads)
    """
    ALTER TABLE jobs ADD COLUMN load_seconds DOUBLE;
    ALTER TABLE jobs ADD COLUMN seconds_per_image DOUBLE;
    """,
    # 7: audits at scale (issue 25). Machine labels are a labeller's answers, kept in tables of their
    # own so that no estimate, queue, agreement or export of people's labels can ever count them:
    # ``labellings`` (one labeller run over a study: the labeller, its model and revision, its method
    # — the prompts per answer, or the colour space and distance — and library versions) and
    # ``machine_labels`` (its answer for each image, with the score of every answer). People's random
    # subset of a study's images for prediction-powered intervals: ``human_samples`` (the draw: seed,
    # size, how many images it was drawn from and the largest image id then, so images generated later,
    # which it could not draw, are known) and ``human_sample_images`` (each image drawn, its place
    # in the draw and its inclusion probability).
    """
    CREATE SEQUENCE labelling_ids START 1;
    CREATE TABLE labellings (
        labelling_id   INTEGER PRIMARY KEY DEFAULT nextval('labelling_ids'),
        study_id       INTEGER NOT NULL,
        labeller       VARCHAR NOT NULL,
        model          VARCHAR NOT NULL,
        model_revision VARCHAR,
        method         VARCHAR NOT NULL,
        versions       VARCHAR,
        created_at     TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE machine_labels (
        labelling_id   INTEGER NOT NULL,
        image_id       INTEGER NOT NULL,
        person_present BOOLEAN,
        gender         VARCHAR,
        mst            INTEGER,
        skin_binary    VARCHAR,
        scores         VARCHAR NOT NULL,
        labelled_at    TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (labelling_id, image_id)
    );
    CREATE TABLE human_samples (
        study_id   INTEGER PRIMARY KEY,
        seed       BIGINT NOT NULL,
        size       INTEGER NOT NULL,
        population INTEGER NOT NULL,
        last_image_id INTEGER NOT NULL,
        drawn_by   VARCHAR,
        drawn_at   TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
    );
    CREATE TABLE human_sample_images (
        study_id              INTEGER NOT NULL,
        image_id              INTEGER NOT NULL,
        draw_order            INTEGER NOT NULL,
        inclusion_probability DOUBLE NOT NULL,
        PRIMARY KEY (study_id, image_id)
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
# The tables above, and the id sequence that numbers each table's rows (name -> (table, column)).
TABLES = ("studies", "runs", "images", "annotations", "annotation_history", "jobs", "targets", "gold_labels",
          "adjudications", "repeat_answers", "rater_profiles", "labellings", "machine_labels", "human_samples",
          "human_sample_images")
SEQUENCES = {"study_ids": ("studies", "study_id"), "image_ids": ("images", "image_id"),
             "annotation_event_ids": ("annotation_history", "event_id"), "job_ids": ("jobs", "job_id"),
             "labelling_ids": ("labellings", "labelling_id")}


def schema_version(db: Database) -> int:
    """The version the store's file is at (0: a new file)."""
    if not db.read_one("SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_info'")[0]:
        return 0
    return int(db.read_one("SELECT version FROM schema_info")[0])


def migrate(db: Database) -> None:
    """Bring the store to the latest version, one migration (one transaction) at a time."""
    found = schema_version(db)
    if found > len(MIGRATIONS):
        raise StoreError(TOO_NEW.format(path=db.path, found=found, known=len(MIGRATIONS)))
    for version in range(found, len(MIGRATIONS)):
        db.write(lambda cursor, version=version: (cursor.execute(MIGRATIONS[version]),
                                                  cursor.execute("UPDATE schema_info SET version = ?", [version + 1])))


def check_readable(db: Database) -> None:
    """A store opened read-only must already be at this sdaudit's version."""
    if (found := schema_version(db)) != SCHEMA_VERSION:
        template = TOO_NEW if found > SCHEMA_VERSION else TOO_OLD_TO_READ
        raise StoreError(template.format(path=db.path, found=found, known=SCHEMA_VERSION))


def count_rows(db: Database, table: str) -> int:
    """Rows in one of the store's tables (for summaries, tests, and to find a truncated file)."""
    if table not in TABLES:
        raise ValueError(f"`table` must be one of the store's tables but is {table!r}.")
    return int(db.read_one(f"SELECT count(*) FROM {table}")[0])
