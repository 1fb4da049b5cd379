"""The background worker: jobs queue, run one at a time, report progress, cancel and resume."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from helpers import wait_until

from sdaudit.generation.jobs import JobQueue, JobRunner, progress_text
from sdaudit.generation.spec import GenerationSpec
from sdaudit.records import Job
from sdaudit.store import Store


def spec_for(model, **changes) -> GenerationSpec:
    settings = dict(model=str(model), prompt="a doctor sitting behind a desk", first_seed=0, last_seed=3,
                    batch_size=2, steps=3, height=64, width=64, device="cpu")
    return GenerationSpec(**{**settings, **changes})


def wait_for(store: Store, job_id: int, statuses=("done", "failed", "cancelled")) -> Job:
    return wait_until(lambda: (job := JobQueue(store).job(job_id)).status in statuses and job,
                      f"job {job_id} to become {' or '.join(statuses)}")


@pytest.fixture
def runner(tmp_path):
    home = tmp_path / "home"
    store = Store.open(home)
    worker = JobRunner(store, home)
    yield worker
    worker.stop()
    store.close()


def test_queued_jobs_run_in_order_and_record_their_run(runner, tiny_model):
    first = runner.submit(spec_for(tiny_model))
    second = runner.submit(spec_for(tiny_model, first_seed=4, last_seed=5))
    done = wait_for(runner.store, second)
    assert done.status == "done" and done.images_done == 2 and done.images_total == 2
    earlier = runner.queue.job(first)
    assert earlier.status == "done" and earlier.finished_at <= done.started_at
    assert runner.store.count("images") == 6
    assert earlier.run_key == done.run_key and done.run_key


def test_a_bad_model_fails_the_job_with_its_message(runner, tmp_path):
    job_id = runner.submit(spec_for(tmp_path / "nowhere"))
    job = wait_for(runner.store, job_id)
    assert job.status == "failed" and job.error.startswith("could not load model")
    assert runner.alive, "a failed job must not kill the worker"


def test_cancel_stops_a_running_job_and_resume_finishes_it(runner, tiny_model):
    job_id = runner.submit(spec_for(tiny_model, last_seed=39, steps=20, batch_size=2))
    wait_for(runner.store, job_id, statuses=("running",))
    wait_until(lambda: runner.queue.job(job_id).images_done >= 2, "the job's first batch")
    runner.cancel(job_id)
    job = wait_for(runner.store, job_id)
    assert job.status == "cancelled" and 2 <= job.images_done < 40
    made = runner.store.count("images")
    assert job.images_total == 40
    runner.resume(job_id)
    job = wait_for(runner.store, job_id, statuses=("done",))
    # a resumed job keeps its whole total and counts every one of its images, not just the last call's
    assert runner.store.count("images") == 40 and (job.images_done, job.images_total) == (40, 40)
    assert made < 40


def test_a_resumed_job_starts_from_the_images_it_already_has(runner, tiny_model):
    first = runner.submit(spec_for(tiny_model, last_seed=1))
    wait_for(runner.store, first, statuses=("done",))
    job_id = runner.submit(spec_for(tiny_model, last_seed=5))
    seen = []
    wait_until(lambda: seen.append(runner.queue.job(job_id)) or seen[-1].status == "done", "the second job")
    totals = {job.images_total for job in seen if job.status == "running" and job.images_total}
    assert totals <= {6}, totals  # never the 4 this call makes
    # once the job has looked at the store (its run key set) it counts the 2 images it already has; in the
    # moment between its claim and that look it still reads 0 done (a race the test once lost)
    assert all(job.images_done >= 2 for job in seen if job.status == "running" and job.run_key)
    assert (seen[-1].images_done, seen[-1].images_total) == (6, 6)


def test_a_queued_job_can_be_cancelled_before_it_starts(tmp_path, tiny_model):
    home = tmp_path / "home"
    with Store.open(home) as store:
        paused = JobRunner(store, home, start=False)
        job_id = paused.submit(spec_for(tiny_model))
        paused.cancel(job_id)
        assert paused.queue.job(job_id).status == "cancelled"
        assert paused.queue.claim_next(1) is None


def test_jobs_left_running_by_a_dead_process_become_interrupted(tmp_path):
    home = tmp_path / "home"
    with Store.open(home) as store:
        queue = JobQueue(store)
        job_id = queue.add("generate", spec_for("demo").to_dict())
        assert queue.claim_next(pid=999999).status == "running"
    with Store.open(home) as store:  # the app restarts
        runner = JobRunner(store, home, start=False)
        assert runner.interrupted_at_start == 1
        assert runner.queue.job(job_id).status == "interrupted"
        runner.resume(job_id)
        assert runner.queue.job(job_id).status == "queued"
        with pytest.raises(ValueError, match="only an interrupted, failed or cancelled job can be resumed"):
            runner.resume(job_id)


def test_progress_speaks_in_phases_and_estimates_from_the_jobs_own_pace():
    started = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    job = Job(job_id=1, kind="generate", spec={}, status="running", run_key="r", images_done=1, images_total=4,
              step=5, steps_total=10, error=None, pid=1, load_seconds=22.0, seconds_per_image=20.0,
              created_at=started, started_at=started, finished_at=None)
    later = started + timedelta(seconds=100)
    # 1 image and half of the next of 4 = 0.375; at 20 s an image, 2.5 images are left: 50 s
    fraction, words = progress_text(job, later)
    assert fraction == 0.375
    assert words == "1 of 4 images · step 5 of 10 · 1:40 elapsed · about 0:50 left"
    # no pace yet (nothing made): no guess, rather than one swollen by the model's loading
    first = replace(job, images_done=0, seconds_per_image=None)
    assert progress_text(first, later)[1] == "0 of 4 images · step 5 of 10 · 1:40 elapsed"
    # loading: the total is known, and how long the model took the first time, once a job has loaded it
    loading = replace(first, step=0, steps_total=0, run_key=None)
    assert progress_text(loading, started + timedelta(seconds=12), longest_load=22.4) == (
        0.0, "loading the model (the first time took about 0:22) · 0 of 4 images · 0:12 elapsed")
    assert progress_text(loading, started + timedelta(seconds=12))[1] == (
        "loading the model (the first time can take a minute) · 0 of 4 images · 0:12 elapsed")
    # a study's second run loading: the count and the time left stay
    between = replace(job, images_done=2, step=0, steps_total=0)
    assert progress_text(between, later, longest_load=22.4)[1] == (
        "loading the model (the first time took about 0:22) · 2 of 4 images · 1:40 elapsed · about 0:40 left")
    queued = replace(job, status="queued", started_at=None, images_done=0, step=0)
    assert progress_text(queued, started) == (0.0, "waiting for the worker · 0 of 4 images")
    done = replace(job, status="done", images_done=4, step=0, steps_total=0)
    assert progress_text(done, later) == (1.0, "4 of 4 images · 1:40 elapsed")
    # a finished job's clock stops: read an hour later, a job that failed after 30 s says 0:30
    failed = replace(job, status="failed", finished_at=started + timedelta(seconds=30))
    assert progress_text(failed, later + timedelta(hours=1))[1] == "1 of 4 images · 0:30 elapsed"


def test_a_queued_study_job_knows_its_total(tmp_path, tiny_model):
    from sdaudit.generation.promptsets import PromptSet

    with Store.open(tmp_path / "home") as store:
        paused = JobRunner(store, tmp_path / "home", start=False)
        job_id = paused.submit(spec_for(tiny_model, prompt="a photo of a {}"),
                               prompt_set=PromptSet("a photo of a {}", ("doctor", "nurse")))
        job = paused.queue.job(job_id)
    assert (job.status, job.images_done, job.images_total) == ("queued", 0, 8), "two runs of 4 seeds"
    assert progress_text(job, datetime.now(UTC))[1] == "waiting for the worker · 0 of 8 images"


def test_a_job_records_its_load_and_keeps_its_pace_while_its_next_run_loads(runner, tiny_model):
    from sdaudit.generation.promptsets import PromptSet

    job_id = runner.submit(spec_for(tiny_model, prompt="a photo of a {}"),
                           prompt_set=PromptSet("a photo of a {}", ("doctor", "nurse")))
    seen = []
    wait_until(lambda: seen.append(runner.queue.job(job_id)) or seen[-1].status in ("done", "failed"),
               "the two-run job")
    done = seen[-1]
    assert done.status == "done" and (done.images_done, done.images_total) == (8, 8)
    assert done.load_seconds is not None and done.seconds_per_image > 0
    assert runner.queue.longest_load(str(tiny_model)) >= done.load_seconds
    loads = [job.load_seconds for job in seen if job.load_seconds is not None]
    assert loads == sorted(loads), "a later run's model, already in memory, does not shrink the first load"
    assert runner.queue.longest_load("another/model") is None
    running = [job for job in seen if job.status == "running"]
    assert running and all(job.images_total == 8 for job in running), "never the 4 of the run in hand"
    assert all(job.seconds_per_image for job in running if job.images_done >= 2), "a pace once a batch is made"
