"""Label a study's generated images with a machine labeller (``machine_label``): in the foreground
(``python -m sdaudit machine-label``, with a progress bar) or as a background job of kind
``machine-label`` that the generation worker runs (``generation/jobs.py``; the Runs page queues it).

Resumable: a labelling is found again by its labeller, model, revision and method
(``MachineTables.start_labelling``), and only the images it has not labelled are read
(``images_to_label``). Each batch of answers is one transaction, so a run stopped half way keeps every
finished batch, and the next run labels only the rest.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sdaudit.machine.labellers import LABELLERS, UNKNOWN_LABELLER, Labeller
from sdaudit.store.machine import MachineTables

if TYPE_CHECKING:
    from sdaudit.records import Job
    from sdaudit.store import Store

JOB_KIND = "machine-label"
DEFAULT_BATCH_SIZE = 16
MAX_BATCH_SIZE = 1024
BATCH_SIZE_TEXT = "`batch_size` must be a whole number from 1 to {max} but is {value!r}."
NO_IMAGES = "study {study!r} has no generated images to label{runs}."
NOT_A_RUN = "run {run_key!r} is not a run of study {study!r}."
UNREADABLE = "could not read image {image_id} ({path}) to label it: {reason}"


@dataclass(frozen=True)
class LabelProgress:
    """Where a labelling stands: images of the request labelled (earlier runs' included) of all."""

    images_done: int
    images_total: int


@dataclass(frozen=True)
class LabelRequest:
    """A checked request: the study, its runs (None: all) and how many images it covers."""

    study: str
    run_keys: tuple[str, ...] | None
    images: int
    batch_size: int


@dataclass(frozen=True)
class LabelResult:
    labelling_id: int
    labelled: int  # images labelled by this call
    already_labelled: int  # of the request's images, labelled before this call
    images_total: int
    cancelled: bool
    seconds: float


def check_request(store: Store, study: str, run_keys: Sequence[str] | None = None, *,
                  batch_size: int = DEFAULT_BATCH_SIZE, labeller: str | None = None) -> LabelRequest:
    """Check a labelling request against the store before any model is loaded or row written: a
    known labeller name, a batch size, the study, runs of that study, and images to label."""
    if labeller is not None and labeller not in LABELLERS:
        raise ValueError(UNKNOWN_LABELLER.format(choices=", ".join(LABELLERS), value=labeller))
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(BATCH_SIZE_TEXT.format(max=MAX_BATCH_SIZE, value=batch_size))
    tables = MachineTables(store)
    tables.generated_images(study)  # NO_STUDY for a study the store does not hold
    keys = None if not run_keys else tuple(dict.fromkeys(run_keys))
    if keys is not None:
        known = set(store.runs(study)["run_key"])
        for key in keys:
            if key not in known:
                raise ValueError(NOT_A_RUN.format(run_key=key, study=study))
    images = tables.generated_images(study, keys)
    if images == 0:
        runs = "" if keys is None else f" in run(s) {', '.join(keys)}"
        raise ValueError(NO_IMAGES.format(study=study, runs=runs))
    return LabelRequest(study, keys, images, batch_size)


def machine_label(store: Store, home: str | os.PathLike, labeller: Labeller, request: LabelRequest, *,
                  on_progress: Callable[[LabelProgress], None] | None = None,
                  should_cancel: Callable[[], bool] | None = None) -> LabelResult:
    """Label the request's images not yet labelled by this labeller, a batch (one transaction) at a time."""
    start = time.monotonic()
    # 1. The labelling (the same one again when the labeller, model, revision and method are the same)
    tables = MachineTables(store)
    labelling_id = tables.start_labelling(request.study, labeller.name, labeller.model,
                                          model_revision=labeller.model_revision, method=labeller.method,
                                          versions=labeller.versions)
    # 2. What is left to label
    todo = tables.images_to_label(labelling_id, request.run_keys)
    already = request.images - len(todo)
    done = 0
    if on_progress is not None:
        on_progress(LabelProgress(already, request.images))
    # 3. Label and save batch by batch
    cancelled = False
    for first in range(0, len(todo), request.batch_size):
        if should_cancel is not None and should_cancel():
            cancelled = True
            break
        batch = todo[first:first + request.batch_size]
        images = [_open_image(home, image_id, path) for image_id, path in batch]
        answers = labeller.label(images, [image_id for image_id, _ in batch])
        tables.save_machine_labels(labelling_id, answers)
        done += len(batch)
        if on_progress is not None:
            on_progress(LabelProgress(already + done, request.images))
    return LabelResult(labelling_id, done, already, request.images, cancelled, time.monotonic() - start)


def _open_image(home, image_id: int, path: str):
    from PIL import Image, UnidentifiedImageError

    from sdaudit.files.safe import UnsafeFileError, read_regular

    try:
        image = Image.open(io.BytesIO(read_regular(home, path, what="the image")))
        image.load()
    except (UnsafeFileError, OSError, UnidentifiedImageError) as error:
        raise ValueError(UNREADABLE.format(image_id=image_id, path=path, reason=str(error).rstrip("."))) from None
    return image


# -- the background job ------------------------------------------------------------------------------


def job_spec(request: LabelRequest, labeller: str, model: str | None) -> dict:
    """The ``jobs`` row's spec of a labelling job (``model`` None: the labeller's default)."""
    from sdaudit.machine.clip import DEFAULT_CLIP_MODEL

    shown = model or (DEFAULT_CLIP_MODEL if labeller == "clip" else labeller)
    return {"study": request.study, "labeller": labeller, "model": shown, "model_given": model,
            "runs": None if request.run_keys is None else list(request.run_keys), "batch_size": request.batch_size}


def run_job(store: Store, home, job: Job, update: Callable[..., None], should_cancel: Callable[[], bool]) -> None:
    """Run a ``machine-label`` job (the worker calls this): load the labeller (progress says "loading"
    while ``steps_total`` is 0), label the rest, and record the outcome with ``update`` (the queue's)."""
    from sdaudit.machine.labellers import make_labeller

    spec = job.spec
    try:
        request = check_request(store, spec["study"], spec["runs"], batch_size=spec["batch_size"],
                                labeller=spec["labeller"])
        update(step=0, steps_total=0, images_total=request.images)
        loading = time.monotonic()
        labeller = make_labeller(spec["labeller"], spec["model_given"], home=home)
        update(step=1, steps_total=1, load_seconds=time.monotonic() - loading)
        began, last = time.monotonic(), 0.0
        first_done: list[int] = []

        def on_progress(progress: LabelProgress) -> None:
            nonlocal last
            now = time.monotonic()
            if not first_done:
                first_done.append(progress.images_done)
            made = progress.images_done - first_done[0]
            pace = {"seconds_per_image": (now - began) / made} if made else {}
            if now - last >= 0.5 or progress.images_done == progress.images_total:
                last = now
                update(images_done=progress.images_done, images_total=progress.images_total, **pace)

        result = machine_label(store, home, labeller, request, on_progress=on_progress, should_cancel=should_cancel)
    except Exception as error:  # a job's failure is recorded for its page, never raised in the thread
        message = (str(error).strip().splitlines() or [type(error).__name__])[0]
        if detail := getattr(error, "detail", ""):
            message += "\n" + detail
        update(status="failed", error=message, finished=True)
        return
    update(status="cancelled" if result.cancelled else "done", images_done=result.already_labelled + result.labelled,
           images_total=result.images_total, finished=True)


def progress_text(job: Job, now: datetime, clock: Callable[[float], str]) -> tuple[float, str]:
    """A labelling job's progress as (fraction, words): waiting, loading the labeller, or labelling."""
    done, total = job.images_done, job.images_total
    fraction = 0.0 if total == 0 else min(1.0, done / total)
    count = f"{done} of {total} images labelled"
    if job.status == "queued":
        return fraction, f"waiting for the worker · {count}"
    words = [f"loading the {job.spec.get('labeller', 'machine')} labeller" if job.status == "running"
             and job.steps_total == 0 else count]
    if (elapsed := job.elapsed(now)) is not None:
        words.append(f"{clock(elapsed)} elapsed")
    if job.status == "running" and job.steps_total and job.seconds_per_image and total:
        words.append(f"about {clock(job.seconds_per_image * (total - done))} left")
    return fraction, " · ".join(words)
