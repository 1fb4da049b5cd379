"""Plain records that pass between generation, the store, run folders and the pages.

Kept apart from ``store.py`` so that code handling records (generation, run folders) does not
import the database to name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sdaudit.scheme import Annotation

DEFAULT_STUDY = "default"


@dataclass(frozen=True)
class RunRecord:
    """One run: every setting that makes its images what they are, keyed by ``run_key``.

    A run holds the images of one study generated with identical settings; seeds are added to
    it over time (resume). ``device`` and ``batch_size`` are those of the run's first images;
    each image row records its own.
    """

    run_key: str
    study: str
    model: str
    model_revision: str | None
    pipeline_class: str | None
    prompt: str
    negative_prompt: str
    scheduler: str
    steps: int
    guidance: float
    width: int
    height: int
    dtype: str
    device: str | None
    batch_size: int | None
    safety_checker: bool
    versions: dict[str, str]


@dataclass(frozen=True)
class ImageRecord:
    """One generated image. ``path`` is relative to the data home (or run folder)."""

    run_key: str
    seed: int
    path: str
    sha256: str
    nsfw: bool | None
    seconds: float | None
    batch_size: int | None
    device: str | None


@dataclass(frozen=True)
class QueuedImage:
    """One image on a rater's Annotate page, with what that rater has saved for it so far."""

    image_id: int
    run_key: str
    seed: int
    path: str
    prompt: str
    negative_prompt: str
    model: str
    saved: Annotation | None  # None: this rater has not annotated the image yet


@dataclass(frozen=True)
class Job:
    """A generation job as the ``jobs`` table holds it, with its spec decoded."""

    job_id: int
    kind: str
    spec: dict
    status: str  # queued, running, done, failed, cancelled or interrupted
    run_key: str | None
    images_done: int
    images_total: int
    step: int
    steps_total: int
    error: str | None
    pid: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def seeds(self) -> str:
        return f"{self.spec['first_seed']}–{self.spec['last_seed']}"

    @property
    def model(self) -> str:
        return self.spec["model"]

    @property
    def prompt(self) -> str:
        return self.spec["prompt"]
