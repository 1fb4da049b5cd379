"""The ``jobs`` table: the generation queue every session reads (``generation/jobs.py`` runs it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sdaudit.records import Job
from sdaudit.store.database import Cursor, TableGroup

# The jobs table's columns in Job's order; times as epoch seconds (DuckDB needs pytz to return
# TIMESTAMPTZ values as datetimes).
JOB_COLUMNS = ("job_id, kind, spec, status, run_key, images_done, images_total, step, steps_total, error, pid, "
               "load_seconds, seconds_per_image, epoch(created_at), epoch(started_at), epoch(finished_at)")
UPDATABLE = ("status", "run_key", "images_done", "images_total", "step", "steps_total", "error", "load_seconds",
             "seconds_per_image")


def _job(row: tuple) -> Job:
    *values, created, started, finished = row
    values[2] = json.loads(values[2])
    return Job(*values, *(None if t is None else datetime.fromtimestamp(t, UTC) for t in (created, started, finished)))


class JobQueue:
    """The store's ``jobs`` table: queue, claim, read and update jobs, through the store's database
    (its connection, lock and retries)."""

    def __init__(self, store: TableGroup):
        self.db = store.db

    def add(self, kind: str, spec: dict, *, images_total: int = 0) -> int:
        """Queue a job of ``images_total`` images (known from the start: "0 of 36"); returns its id."""
        return self.db.write(lambda cursor: int(cursor.execute(
            "INSERT INTO jobs (kind, spec, status, images_total) VALUES (?, ?, 'queued', ?) RETURNING job_id",
            [kind, json.dumps(spec, sort_keys=True), images_total],
        ).fetchone()[0]))

    def longest_load(self, model: str) -> float | None:
        """The longest any job took to load ``model`` (seconds; its first load in a process, as a
        later load of a model still in memory takes none); None when no job has loaded it."""
        loads = [float(seconds) for spec, seconds in self.db.read(
                     "SELECT spec, load_seconds FROM jobs WHERE load_seconds IS NOT NULL")
                 if model in (json.loads(spec).get("models") or [json.loads(spec).get("model")])]
        return max(loads, default=None)

    def claim_next(self, pid: int) -> Job | None:
        """Mark the oldest queued job running (for process ``pid``) and return it, or None."""
        def work(cursor: Cursor) -> int | None:
            row = cursor.execute(
                "UPDATE jobs SET status = 'running', pid = ?, started_at = current_timestamp, error = NULL, "
                "finished_at = NULL WHERE job_id = (SELECT min(job_id) FROM jobs WHERE status = 'queued') "
                "RETURNING job_id", [pid],
            ).fetchone()
            return None if row is None else int(row[0])

        job_id = self.db.write(work)
        return None if job_id is None else self.job(job_id)

    def job(self, job_id: int) -> Job | None:
        row = self.db.read_one(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?", [job_id])
        return None if row is None else _job(row)

    def jobs(self) -> list[Job]:
        """Every job, newest first."""
        return [_job(row) for row in self.db.read(f"SELECT {JOB_COLUMNS} FROM jobs ORDER BY job_id DESC")]

    def update(self, job_id: int, **values) -> None:
        """Set some of a job's columns (status, progress, run_key, error, finished)."""
        unknown = set(values) - set(UPDATABLE) - {"finished"}
        if unknown:
            raise ValueError(f"jobs have no column(s) {sorted(unknown)}.")
        finished = values.pop("finished", False)
        assignments = [f"{name} = ?" for name in values] + (["finished_at = current_timestamp"] if finished else [])
        if not assignments:
            return
        self.db.write(lambda cursor: cursor.execute(
            f"UPDATE jobs SET {', '.join(assignments)} WHERE job_id = ?", [*values.values(), job_id]
        ))

    def mark_interrupted(self) -> int:
        """Jobs left running by a process that is gone become `interrupted`; returns how many.

        Only one process can hold the store file, so at start-up no other process is running them.
        """
        return self.db.write(lambda cursor: len(cursor.execute(
            "UPDATE jobs SET status = 'interrupted', finished_at = current_timestamp "
            "WHERE status = 'running' RETURNING job_id"
        ).fetchall()))
