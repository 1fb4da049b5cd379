"""The clip labeller and machine-label (issue 25): a real tiny random CLIP built offline and loaded
through from_pretrained, real store files, the tiny demo pipeline's images."""

from __future__ import annotations

import math
import shutil

import pytest
from helpers import assert_one_error_line, make_run, tiny_spec, wait_until

from sdaudit.generation.generate import StoreSink, generate
from sdaudit.generation.jobs import JobQueue, JobRunner, progress_text
from sdaudit.machine.clip import PROMPTS, RULE, ClipLabeller
from sdaudit.machine.job import NO_IMAGES, NOT_A_RUN, LabelRequest, check_request, machine_label
from sdaudit.machine.labellers import make_labeller
from sdaudit.store import Store
from sdaudit.store.machine import MachineTables

STUDY = "clip-study"


@pytest.fixture(scope="module")
def generated_home(tmp_path_factory, tiny_model):
    """A data home whose study holds 8 images of the tiny demo pipeline (one run)."""
    home = tmp_path_factory.mktemp("clip") / "home"
    with Store.open(home) as store:
        generate(tiny_spec(tiny_model, study=STUDY, steps=2), StoreSink(store, home), home=home)
    return home


@pytest.fixture
def home(generated_home, tmp_path):
    """A fresh copy of ``generated_home`` for a test that writes to it."""
    copy = tmp_path / "home"
    shutil.copytree(generated_home, copy)
    return copy


@pytest.fixture(scope="module")
def labeller(tiny_clip):
    return ClipLabeller(str(tiny_clip), device="cpu")


def image_ids(store) -> list[int]:
    return sorted(int(i) for i in store.images(study=STUDY)["image_id"])


def test_scores_sum_to_one_per_field_and_labels_are_the_top_answers(labeller):
    from PIL import Image

    images = [Image.new("RGB", (64, 64), (10 * k, 255 - 20 * k, 7 * k)) for k in range(6)]
    answers = labeller.label(images, list(range(100, 106)))
    assert [answer.image_id for answer in answers] == list(range(100, 106))
    for answer in answers:
        assert set(answer.scores) == set(PROMPTS)
        for field, scores in answer.scores.items():
            assert set(scores) == set(PROMPTS[field])
            assert math.isclose(sum(scores.values()), 1.0, abs_tol=1e-5)
        person = max(answer.scores["person_present"], key=answer.scores["person_present"].get) == "true"
        assert answer.labels.person_present is person
        if person:
            assert answer.labels.gender == max(answer.scores["gender"], key=answer.scores["gender"].get)
            assert answer.labels.skin_binary == max(answer.scores["skin_binary"], key=answer.scores["skin_binary"].get)
        else:  # no person: no gender or skin label (the scheme refuses them)
            assert (answer.labels.gender, answer.labels.skin_binary) == (None, None)
        assert answer.labels.mst is None
    # another image gives other scores: the model looks at the pixels
    assert answers[0].scores != answers[5].scores


def test_the_labelling_records_prompts_revision_and_versions(home, labeller):
    with Store.open(home) as store:
        result = machine_label(store, home, labeller, check_request(store, STUDY))
        labellings = MachineTables(store).labellings(STUDY)
        frame = MachineTables(store).machine_labels(STUDY)
    assert result.labelled == 8 and result.already_labelled == 0
    [labelling] = labellings
    assert labelling.labeller == "clip" and labelling.labelled == 8
    assert labelling.method == {"prompts": PROMPTS, "rule": RULE}
    assert labelling.model_revision.startswith("local-") and labelling.model_revision == labeller.model_revision
    assert labelling.versions["transformers"] and labelling.versions["device"] == "cpu"
    for scores in frame["scores"]:
        assert all(math.isclose(sum(answers.values()), 1.0, abs_tol=1e-5) for answers in scores.values())


class Recording:
    """The real labeller, noting the images it is asked about; ``stop_after`` batches, then it says stop."""

    def __init__(self, labeller, stop_after: int | None = None):
        self.labeller, self.stop_after, self.asked = labeller, stop_after, []
        for name in ("name", "model", "model_revision", "method", "versions"):
            setattr(self, name, getattr(labeller, name))

    def label(self, images, ids):
        self.asked.append(list(ids))
        return self.labeller.label(images, ids)

    def should_cancel(self) -> bool:
        return self.stop_after is not None and len(self.asked) >= self.stop_after


def test_a_run_stopped_half_way_keeps_its_batches_and_the_next_labels_only_the_rest(home, labeller):
    with Store.open(home) as store:
        request = LabelRequest(STUDY, None, 8, batch_size=3)
        first = Recording(labeller, stop_after=1)
        stopped = machine_label(store, home, first, request, should_cancel=first.should_cancel)
        assert stopped.cancelled and stopped.labelled == 3
        assert MachineTables(store).labellings(STUDY)[0].labelled == 3
        second = Recording(labeller)
        rest = machine_label(store, home, second, request)
        ids = image_ids(store)
        labelled = sorted(MachineTables(store).machine_labels(STUDY)["image_id"])
    assert first.asked == [ids[:3]]
    assert second.asked == [ids[3:6], ids[6:]]  # only the rest, in batches of 3
    assert (rest.labelled, rest.already_labelled, rest.cancelled) == (5, 3, False)
    assert labelled == ids


def test_a_failing_batch_keeps_the_batches_before_it(home, labeller):
    class FailsSecond(Recording):
        def label(self, images, ids):
            if self.asked:
                raise ValueError("the second batch fails")
            return super().label(images, ids)

    with Store.open(home) as store:
        with pytest.raises(ValueError, match="second batch"):
            machine_label(store, home, FailsSecond(labeller), LabelRequest(STUDY, None, 8, batch_size=4))
        assert len(MachineTables(store).machine_labels(STUDY)) == 4


def test_a_changed_prompt_starts_another_labelling(home, labeller, monkeypatch):
    with Store.open(home) as store:
        request = LabelRequest(STUDY, None, 8, batch_size=8)
        machine_label(store, home, labeller, request)
        monkeypatch.setattr(labeller, "method", {**labeller.method, "prompts": {**PROMPTS, "gender": {
            "female": "a photo of a female person", "male": "a photo of a male person"}}})
        again = machine_label(store, home, labeller, request)
        assert again.labelled == 8 and len(MachineTables(store).labellings(STUDY)) == 2


def test_requests_are_checked_before_anything_is_written(home):
    with Store.open(home) as store:
        store.add_run(make_run("empty-run", study="empty"))
        with pytest.raises(ValueError, match="no study 'nope'"):
            check_request(store, "nope")
        with pytest.raises(ValueError) as raised:
            check_request(store, "empty")
        assert str(raised.value) == NO_IMAGES.format(study="empty", runs="")
        with pytest.raises(ValueError) as raised:
            check_request(store, STUDY, ["empty-run"])
        assert str(raised.value) == NOT_A_RUN.format(run_key="empty-run", study=STUDY)
        with pytest.raises(ValueError, match="`labeller` must be one of clip, skin-pixels but is 'x'"):
            check_request(store, STUDY, labeller="x")
        with pytest.raises(ValueError, match="`batch_size` must be"):
            check_request(store, STUDY, batch_size=0)
        assert MachineTables(store).labellings(STUDY) == []


@pytest.mark.parametrize("model, words", [
    ("openai/clip-vit-base-patch32", "it is not in the local hub cache and the hub is offline (HF_HUB_OFFLINE)"),
    ("/no/such/clip", "no such folder"),
])
def test_a_model_that_cannot_be_found_is_one_sentence(model, words):
    with pytest.raises(ValueError) as raised:
        make_labeller("clip", model)
    assert str(raised.value).startswith(f"could not load CLIP model {model!r}: {words}")
    assert "\n" not in str(raised.value)


def test_machine_label_cli_end_to_end_and_again_labels_nothing(home, tiny_clip, cli):
    with Store(home / "sdaudit.duckdb", read_only=True) as store:
        run_key = store.runs(STUDY)["run_key"].iloc[0]
    args = ("machine-label", "--study", STUDY, "--labeller", "clip", "--model", str(tiny_clip), "--home", str(home))
    first = cli(*args, "--runs", run_key, "--batch-size", "3", "--device", "cpu")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"labelled 8 of 8 images with clip (model {tiny_clip}, revision local-")
    assert "labelling (clip)" in first.stderr  # the progress bar
    again = cli(*args)
    assert again.returncode == 0 and again.stdout.startswith("labelled 0 of 8 images") and "8 labelled before" in again.stdout
    with Store(home / "sdaudit.duckdb", read_only=True) as store:
        frame = MachineTables(store).machine_labels(STUDY)
    assert len(frame) == 8 and set(frame["labeller"]) == {"clip"} and frame["image_id"].is_unique


@pytest.mark.parametrize("changes, words", [
    (("--study", "nope"), "there is no study 'nope'"),
    (("--model", "openai/clip-vit-base-patch32"), "could not load CLIP model 'openai/clip-vit-base-patch32': it is not"),
    (("--runs", "nope"), "run 'nope' is not a run of study"),
    (("--labeller", "magic"), "argument --labeller: invalid choice: 'magic'"),
    (("--batch-size", "0"), "`batch_size` must be a whole number from 1 to 1024 but is 0."),
])
def test_machine_label_cli_refuses_bad_input_in_one_line_and_writes_nothing(home, tiny_clip, cli, changes, words):
    args = {"--study": STUDY, "--labeller": "clip", "--model": str(tiny_clip), "--home": str(home)}
    args.update(dict(zip(changes[::2], changes[1::2], strict=True)))
    result = cli("machine-label", *(part for pair in args.items() for part in pair))
    assert_one_error_line(result, contains=words)
    with Store(home / "sdaudit.duckdb", read_only=True) as store:
        assert MachineTables(store).labellings(STUDY) == []


def test_demo_clip_refuses_a_folder_in_use(tmp_path, cli):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    assert_one_error_line(cli("demo-clip", str(tmp_path / "taken")), contains="must be new or empty")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_a_machine_label_job_runs_in_the_worker_with_progress_and_resumes(home, monkeypatch):
    from datetime import UTC, datetime

    with Store.open(home) as store:
        paused = JobRunner(store, home, start=False)
        job_id = paused.submit_labelling(STUDY, "clip", model="demo", batch_size=4)
        # half of it done, then its process died: the job is left interrupted with 4 images labelled
        half = Recording(make_labeller("clip", "demo", home=home), stop_after=1)
        machine_label(store, home, half, LabelRequest(STUDY, None, 8, 4), should_cancel=half.should_cancel)
        paused.queue.update(job_id, status="interrupted", finished=True)
        runner = JobRunner(store, home)
        try:
            runner.resume(job_id)
            job = wait_until(lambda: (found := JobQueue(store).job(job_id)).status in ("done", "failed") and found,
                             "the labelling job to finish")
            assert job.status == "done", job.error
            assert (job.images_done, job.images_total, job.kind) == (8, 8, "machine-label")
            assert progress_text(job, datetime.now(UTC))[1].startswith("8 of 8 images labelled")
            assert job.seeds == "" and job.prompt == f"clip labels of study {STUDY}"
            [labelling] = MachineTables(store).labellings(STUDY)  # the job continued the same labelling
            assert labelling.labelled == 8 and len(MachineTables(store).machine_labels(STUDY)) == 8
            bad = runner.submit_labelling(STUDY, "clip", model=str(home / "no-clip"))
            failed = wait_until(lambda: (found := JobQueue(store).job(bad)).status in ("done", "failed") and found,
                                "the bad job to fail")
            assert failed.status == "failed" and failed.error.startswith("could not load CLIP model")
            with pytest.raises(ValueError, match="no study 'nope'"):
                runner.submit_labelling("nope", "clip")
        finally:
            runner.stop()
        paused = JobRunner(store, home, start=False)  # nothing runs: queued jobs wait
        monkeypatch.setenv("SDAUDIT_MAX_QUEUED_JOBS", "1")
        paused.submit_labelling(STUDY, "clip", model="demo")
        with pytest.raises(ValueError, match="1 jobs are already waiting"):
            paused.submit_labelling(STUDY, "clip", model="demo")


def test_the_runs_page_queues_a_labelling_and_shows_its_progress(app_home, tiny_model, tiny_clip):
    from helpers import open_page

    with Store.open(app_home) as store:
        generate(tiny_spec(tiny_model, steps=2, last_seed=3), StoreSink(store, app_home), home=app_home)
    at = open_page("runs")
    next(box for box in at.text_input if box.label == "CLIP model").input(str(tiny_clip))
    next(button for button in at.button if button.label.startswith("Label study default")).click().run()
    assert not at.exception, at.exception
    assert [s.value for s in at.success] == ["Queued job 1: clip labels for study default."]

    def finished():
        at.run()
        return any("(done): 4 of 4 images labelled" in bar.proto.text for bar in at.get("progress"))

    wait_until(finished, "the Runs page to show the labelling done")
    assert not at.error
