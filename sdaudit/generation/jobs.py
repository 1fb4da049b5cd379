"""Background generation: one worker thread per process (``JobRunner``) that runs the jobs of the
store's queue (``JobQueue``, the ``jobs`` table: ``sdaudit/store/jobs.py``).

The app owns one ``JobRunner`` (through ``st.cache_resource``), so a job outlives page switches
and closed tabs: Streamlit stops a page's script when its browser goes away, but not this
thread. Jobs run one at a time (a diffusers scheduler is not thread-safe) in the order they were
queued. Progress and status live in the ``jobs`` table, where every session can read them:
``queued`` → ``running`` → ``done`` | ``failed`` | ``cancelled``; a job left ``running`` by a
process that died becomes ``interrupted`` when the next one starts, and ``resume`` queues it again
(only its missing seeds are generated). Nothing here imports streamlit.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from sdaudit.config import int_setting
from sdaudit.generation.generate import GenerationProgress, StoreSink, generate
from sdaudit.generation.promptsets import PromptSet, job_specs, study_job
from sdaudit.generation.spec import GenerationSpec
from sdaudit.records import Job
from sdaudit.store import Store
from sdaudit.store.jobs import JobQueue

PROGRESS_INTERVAL = 0.5  # seconds between progress writes: a step can take milliseconds
IDLE_CHECK = 30.0  # seconds: jobs are queued in this process, which wakes the worker at once
FINISHED = ("done", "failed", "cancelled", "interrupted")
RESUMABLE = ("interrupted", "failed", "cancelled")
ACTIVE = ("running", "queued")
TOO_MANY_IMAGES = ("this job asks for {count} images; this server allows at most {limit} a job "
                   "(SDAUDIT_MAX_IMAGES_PER_JOB).")
QUEUE_FULL = ("{count} jobs are already waiting; this server queues at most {limit} "
              "(SDAUDIT_MAX_QUEUED_JOBS). Try again when one has finished.")


class JobRunner:
    """Runs queued generation jobs from ``store`` on one thread, writing images under ``home``."""

    def __init__(self, store: Store, home: str | os.PathLike, *, start: bool = True,
                 on_finished: Callable[[Job], None] | None = None):
        self.store = store
        self.queue = JobQueue(store)
        self.home = Path(home)
        self.on_finished = on_finished  # called with the job's row after it ends (snapshots)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._cancelled: set[int] = set()
        self._lock = threading.Lock()
        self.interrupted_at_start = self.queue.mark_interrupted()
        self._thread = threading.Thread(target=self._loop, name="sdaudit-jobs", daemon=True)
        if start:
            self._thread.start()

    # -- what pages call --------------------------------------------------------------------

    def submit(self, spec: GenerationSpec, *, models: Sequence[str] = (), prompt_set: PromptSet | None = None) -> int:
        """Queue ``spec`` within the hosted limits — with several ``models`` or a ``prompt_set``, one
        job of one run per (prompt, model) over the spec's seeds; returns the job id."""
        payload = study_job(spec, models, prompt_set)
        images, limit = len(spec.seeds) * len(job_specs(payload)), int_setting("max_images_per_job")
        if images > limit:
            raise ValueError(TOO_MANY_IMAGES.format(count=images, limit=limit))
        waiting = sum(job.status == "queued" for job in self.queue.jobs())
        limit = int_setting("max_queued_jobs")
        if waiting >= limit:
            raise ValueError(QUEUE_FULL.format(count=waiting, limit=limit))
        job_id = self.queue.add("generate", payload, images_total=images)
        self._wake.set()
        return job_id

    def submit_labelling(self, study: str, labeller: str, *, model: str | None = None,
                         run_keys: Sequence[str] | None = None, batch_size: int | None = None) -> int:
        """Queue a ``machine-label`` job (``sdaudit/machine/job.py``) after checking its study, runs and
        labeller; it labels only the images its labelling lacks. Returns the job id."""
        from sdaudit.machine.job import DEFAULT_BATCH_SIZE, JOB_KIND, check_request, job_spec

        request = check_request(self.store, study, run_keys, batch_size=batch_size or DEFAULT_BATCH_SIZE,
                                labeller=labeller)
        waiting, limit = sum(job.status == "queued" for job in self.queue.jobs()), int_setting("max_queued_jobs")
        if waiting >= limit:
            raise ValueError(QUEUE_FULL.format(count=waiting, limit=limit))
        job_id = self.queue.add(JOB_KIND, job_spec(request, labeller, model), images_total=request.images)
        self._wake.set()
        return job_id

    def cancel(self, job_id: int) -> None:
        """Stop a job: a queued one never starts; a running one stops within its batch."""
        job = self.queue.job(job_id)
        if job is None or job.status in FINISHED:
            return
        with self._lock:
            self._cancelled.add(job_id)
        if job.status == "queued":
            self.queue.update(job_id, status="cancelled", finished=True)

    def resume(self, job_id: int) -> None:
        """Queue an interrupted, failed or cancelled job again; only its missing seeds are made."""
        job = self.queue.job(job_id)
        if job is None or job.status not in RESUMABLE:
            raise ValueError(f"only an interrupted, failed or cancelled job can be resumed; job {job_id!r} is "
                             f"{'missing' if job is None else job.status}.")
        with self._lock:
            self._cancelled.discard(job_id)
        self.queue.update(job_id, status="queued", error=None)
        self._wake.set()

    def stop(self, timeout: float = 30) -> None:
        """Stop the worker after the job in hand (tests and shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the worker -------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            job = self.queue.claim_next(os.getpid())
            if job is None:
                # Polling the store every second would take its write lock from annotation clicks.
                self._wake.wait(timeout=IDLE_CHECK)
                self._wake.clear()
                continue
            if job.kind == "machine-label":
                self._run_labelling(job)
            else:
                self._run(job)
            if self.on_finished is not None:
                self.on_finished(self.queue.job(job.job_id))

    def _run_labelling(self, job: Job) -> None:
        """A ``machine-label`` job: ``sdaudit/machine/job.py`` runs it, writing progress to its row."""
        from sdaudit.machine.job import run_job

        job_id = job.job_id
        run_job(self.store, self.home, job, lambda **values: self.queue.update(job_id, **values),
                lambda: job_id in self._cancelled or self._stop.is_set())

    def _run(self, job: Job) -> None:
        """Generate the job's missing seeds. Its counts are the whole job's: a resumed job of 200
        images with 144 made reads "144 of 200" at its start, not "0 of 56". Before each run it says
        it is loading (step 0 of 0); it records how long the load took and its pace: the wall time
        per image made since it was claimed, loading left out, which a resume starts from again."""
        job_id = job.job_id
        last_write = 0.0
        per_run = len(range(job.spec["first_seed"], job.spec["last_seed"] + 1))
        finished = 0  # images of the job's earlier runs (a study's runs are made one after another)
        made, working = 0, 0.0  # images made since the claim, and the seconds spent making them
        longest = job.load_seconds or 0.0  # its longest load: a later run's model, cached, loads in no time
        run = {"loading_since": 0.0, "since": None, "made": 0}  # the run in hand: when it began making images

        def on_progress(progress: GenerationProgress) -> None:
            nonlocal last_write, longest
            now = time.monotonic()
            timings = {}
            if run["since"] is None and progress.steps_total:  # the first denoising step: the model is loaded
                run["since"] = now
                longest = max(longest, now - run["loading_since"])
                timings["load_seconds"] = longest
            if run["since"] is not None and progress.images_done > run["made"]:  # a batch saved: the pace so far
                run["made"] = progress.images_done
                timings["seconds_per_image"] = (working + now - run["since"]) / (made + run["made"])
            first = progress.step == 0 and progress.images_done == 0
            if timings or first or progress.step == progress.steps_total or now - last_write >= PROGRESS_INTERVAL:
                last_write = now
                present = per_run - progress.images_total  # made before this call: a resume's earlier images
                self.queue.update(job_id, run_key=progress.run_key,
                                  images_done=finished + present + progress.images_done, images_total=total,
                                  step=progress.step, steps_total=progress.steps_total, **timings)

        def should_cancel() -> bool:
            return job_id in self._cancelled or self._stop.is_set()

        try:
            specs = job_specs(job.spec)
            total = per_run * len(specs)
            for spec in specs:
                self.queue.update(job_id, step=0, steps_total=0)  # loading this run's model
                run.update(loading_since=time.monotonic(), since=None, made=0)
                result = generate(spec, StoreSink(self.store, self.home), home=self.home,
                                  on_progress=on_progress, should_cancel=should_cancel)
                finished += result.generated + result.already_present
                if run["since"] is not None and run["made"]:
                    made += run["made"]
                    working += time.monotonic() - run["since"]
                if result.cancelled:
                    break
        except Exception as error:  # a job's failure is recorded for its page, never raised in the thread
            message = (str(error).strip().splitlines() or [type(error).__name__])[0]
            if detail := getattr(error, "detail", ""):
                message += "\n" + detail  # the first line is the sentence people read; the rest, details
            self.queue.update(job_id, status="failed", error=message, finished=True)
            return
        status = "cancelled" if result.cancelled else "done"
        self.queue.update(job_id, status=status, run_key=result.run_key, images_done=finished, images_total=total,
                          step=0, steps_total=0, finished=True)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def progress_text(job: Job, now: datetime, *, longest_load: float | None = None) -> tuple[float, str]:
    """A job's progress as (fraction, words), in its phase: waiting for the worker, loading a run's
    model (step 0 of 0), or generating: images of the whole job from the start ("0 of 36"), the
    denoising step as asked, elapsed time, and the time left from the job's own pace (seconds per
    image made, loading left out; kept across its runs and a resume). ``longest_load``: the longest
    any job took to load this job's model (``JobQueue.longest_load``), said while it loads."""
    if job.kind == "machine-label":
        from sdaudit.machine.job import progress_text as labelling_progress

        return labelling_progress(job, now, _clock)
    done, total, step, steps = job.images_done, job.images_total, job.step, job.steps_total
    fraction = 0.0 if total == 0 else min(1.0, (done + (step / steps if steps else 0)) / total)
    elapsed = job.elapsed(now)
    count = [f"{done} of {total} images"] if total else []
    if job.status == "queued":
        return fraction, " · ".join(["waiting for the worker", *count])
    words = count
    loading = job.status == "running" and (steps == 0 and done < total or total == 0)
    if loading:
        words = [f"loading the model (the first time took about {_clock(longest_load)})" if longest_load
                 else "loading the model (the first time can take a minute)", *count]
    elif job.status == "running" and steps:
        words = [*count, f"step {step} of {steps}"]
    if elapsed is not None:
        words.append(f"{_clock(elapsed)} elapsed")
    if job.status == "running" and job.seconds_per_image and total:
        words.append(f"about {_clock(job.seconds_per_image * (total - done - (step / steps if steps else 0)))} left")
    return fraction, " · ".join(words)
