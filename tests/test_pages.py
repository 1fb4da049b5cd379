"""The Generate and Annotate pages and the sidebar, in AppTest: what a user sees and what is saved."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from helpers import WAIT_LIMIT_S, open_page, wait_until
from streamlit.testing.v1 import AppTest

from app.widgets import jobs_table, plain
from sdaudit.files.runfolder import RunFolder, ingest
from sdaudit.generation.generate import generate
from sdaudit.generation.jobs import JobQueue
from sdaudit.generation.spec import DEVICE, GenerationSpec
from sdaudit.records import Job
from sdaudit.store import Store

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app" / "router.py")
PAGES = ROOT / "pages"


@pytest.fixture
def home(app_home):
    return app_home


@pytest.fixture(scope="session")
def four_images(tiny_model, tmp_path_factory) -> Path:
    """A run folder of four tiny images, ingested into each test's home."""
    folder = tmp_path_factory.mktemp("runs") / "four"
    spec = GenerationSpec(model=str(tiny_model), prompt="a doctor sitting behind a desk", first_seed=0, last_seed=3,
                          steps=2, height=64, width=64, device="cpu")
    sink = RunFolder(folder, spec=spec.to_dict())
    generate(spec, sink, home=tmp_path_factory.mktemp("unused"))
    sink.finalize()
    return folder


@pytest.fixture
def home_with_images(home, four_images):
    with Store.open(home) as store:
        ingest(four_images, store, home)
    return home


def widget(elements, label):
    return next(element for element in elements if element.label == label)


def job_rows(at: AppTest) -> list[list[str]]:
    """The cells of the Generate page's job table, newest job first."""
    table = next(md.value for md in at.markdown if md.value.startswith("| job | status |"))
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in table.splitlines()[2:] if line]


def app(page: str | None = "generate") -> AppTest:
    """The app, opened at its landing page (Home) and switched to ``page`` (None: stay on Home)."""
    return open_page(page)


# -- Generate ---------------------------------------------------------------------------------


def test_generate_shows_the_origin_defaults(home):
    at = app()
    assert [title.value for title in at.title] == ["Generate"]
    assert widget(at.text_input, "Model").value == "CompVis/stable-diffusion-v1-4"
    assert widget(at.text_input, "Prompt").value == "a doctor sitting behind a desk"
    assert widget(at.selectbox, "Scheduler").value == "pndm"
    assert (widget(at.number_input, "Steps").value, widget(at.number_input, "Guidance").value) == (50, 7.5)
    assert widget(at.toggle, "Safety checker").value is False
    assert "No GPU found" in at.warning[0].value


def test_the_form_starts_from_the_specs_own_defaults(home):
    """The form does not spell its own defaults: each field shows GenerationSpec's."""
    at, spec = app(), GenerationSpec()
    shown = {"Batch size": spec.batch_size, "Steps": spec.steps, "Guidance": spec.guidance,
             "Width": spec.width, "Height": spec.height, "First seed": spec.first_seed}
    assert {label: widget(at.number_input, label).value for label in shown} == shown
    assert widget(at.selectbox, "Scheduler").value == spec.scheduler
    assert widget(at.text_input, "Negative prompt").value == spec.negative_prompt


def test_the_form_honours_the_model_device_and_dtype_settings(home, monkeypatch, tmp_path):
    """As the CLI does: SDAUDIT_MODEL fills the Model field; SDAUDIT_DEVICE and SDAUDIT_DTYPE go into
    the queued job's spec."""
    missing_model = str(tmp_path / "no-such-model")  # fails fast in the worker: nothing is generated
    monkeypatch.setenv("SDAUDIT_MODEL", missing_model)
    monkeypatch.setenv("SDAUDIT_DEVICE", "cpu")
    monkeypatch.setenv("SDAUDIT_DTYPE", "bfloat16")
    at = app()
    assert widget(at.text_input, "Model").value == missing_model
    widget(at.button, "Generate").click().run()
    assert at.success[0].value.startswith("Queued job 1")
    with Store.open(home) as store:
        spec = JobQueue(store).jobs()[0].spec
    assert (spec["model"], spec["device"], spec["dtype"]) == (missing_model, "cpu", "bfloat16")
    # let the worker record the failure before the store closes
    wait_until(lambda: at.run().error, "the failed job's message", poll=0.5)
    assert at.error[0].value.startswith("Job 1 failed: ")


def test_a_malformed_device_setting_is_named_on_the_page(home, monkeypatch):
    monkeypatch.setenv("SDAUDIT_DEVICE", "tpu")
    at = app()
    assert [error.value for error in at.error] == [plain(DEVICE.format(choices="auto, cuda, mps, cpu", value="tpu"))]
    assert not [button for button in at.button if button.label == "Generate"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"Prompt": ""}, "`prompt` must be a non-empty text but is ''."),
        ({"Width": 500}, "`height` and `width` have to be divisible by 8 and between 8 and 4096 but are 512 and 500."),
        ({"Model": " "}, "`model` must be a non-empty text but is ''."),
    ],
)
def test_the_form_shows_the_cores_validation_messages(home, changes, message):
    at = app()
    for label, value in changes.items():
        element = next(e for e in [*at.text_input, *at.number_input] if e.label == label)
        element.set_value(value)
    widget(at.button, "Generate").click().run()
    assert [error.value for error in at.error] == [plain(message)]  # shown as text, never as Markdown
    with Store.open(home) as store:
        assert store.count("jobs") == 0


def test_the_form_queues_a_job_that_the_worker_finishes(home):
    at = app()
    widget(at.text_input, "Model").input("demo")
    widget(at.number_input, "Batch size").set_value(2)
    widget(at.number_input, "Batch count").set_value(2)
    for label, value in (("Steps", 2), ("Width", 64), ("Height", 64)):
        widget(at.number_input, label).set_value(value)
    widget(at.button, "Generate").click().run()
    assert at.success[0].value.startswith("Queued job 1: seeds 0–3 for study default.")
    assert "random weights" in at.info[0].value
    newest = wait_until(lambda: (row := job_rows(at.run())[0])[1] in ("done", "failed") and row,
                        "job 1 to finish", poll=0.5)
    assert newest[:4] == ["1", "done", "4 of 4", "0–3"] and newest[4:6] == ["demo", "a doctor sitting behind a desk"]
    assert any(caption.value.startswith("Last job 1: done, 4 of 4 images.") for caption in at.caption)
    assert len(at.main.get("image")) == 1 and len(at.main.get("image")[0].proto.imgs) == 4, "its thumbnails stay"
    link = at.get("page_link")[0].proto
    assert link.label == "Annotate them" and link.page.endswith("annotate")


def test_enter_in_a_field_of_the_generate_form_does_not_start_a_job(home):
    """Streamlit submits a form when Enter is pressed in one of its text fields, unless the form says
    otherwise: a prompt typed and confirmed with Enter would queue hundreds of images."""
    form = app().get("form")[0].proto.form
    assert form.form_id == "generate" and form.enter_to_submit is False


def test_a_model_that_cannot_be_loaded_shows_the_cores_message(home):
    at = app()
    widget(at.text_input, "Model").input("nobody/no-such-model")
    widget(at.button, "Generate").click().run()
    wait_until(lambda: at.run().error, "the failed job's message", poll=0.5)
    assert at.error[0].value.startswith("Job 1 failed: " + plain("could not load model 'nobody/no-such-model'"))
    assert "demo" in at.error[0].value and not at.exception


def test_the_form_starts_from_the_last_job_of_the_current_study(home):
    with Store.open(home) as store:
        store.ensure_study()
        store.ensure_study("nurses")
        JobQueue(store).add("generate", GenerationSpec(model="demo", prompt="a nurse", first_seed=10, last_seed=17,
                                                       batch_size=4, steps=7, width=64, height=64,
                                                       study="nurses").to_dict())
    at = app()
    assert widget(at.text_input, "Model").value == GenerationSpec().model, "the default study has no job yet"
    widget(at.selectbox, "Study").set_value("nurses").run()
    assert (widget(at.text_input, "Model").value, widget(at.text_input, "Prompt").value) == ("demo", "a nurse")
    assert [widget(at.number_input, label).value for label in ("First seed", "Batch size", "Batch count", "Steps",
                                                               "Width")] == [10, 4, 2, 7, 64]


def test_the_demo_model_is_one_click_away(home):
    at = app()
    widget(at.button, "Try the offline demo model").click().run()
    assert widget(at.text_input, "Model").value == "demo"
    assert [widget(at.number_input, label).value for label in ("Steps", "Width", "Height", "Batch size",
                                                               "Batch count")] == [10, 64, 64, 4, 2]
    widget(at.button, "Generate").click().run()
    assert at.success[0].value.startswith("Queued job 1: seeds 0–7 for study default.")


def test_a_failed_load_reads_as_one_sentence_with_the_details_folded_away(home):
    sentence = "could not load model 'someone/sd': it is not on this machine and the hub is unreachable; use `demo`"
    detail = "OSError: We couldn't connect to 'https://huggingface.co' ... check out the root cause in the stacktrace above"
    with Store.open(home) as store:
        queue = JobQueue(store)
        job_id = queue.add("generate", {"model": "someone/sd", "prompt": "p", "first_seed": 0, "last_seed": 3})
        queue.update(job_id, status="failed", error=f"{sentence}\n{detail}", finished=True)
    at = app()
    assert at.error[0].value == f"Job 1 failed: {plain(sentence)}"
    details = next(expander for expander in at.expander if expander.label == "Details")
    assert details.text[0].value == detail
    error_cell = job_rows(at)[0][-1]
    assert error_cell.endswith("…") and len(error_cell) < 150 and "stacktrace" not in error_cell


# -- the sidebar ------------------------------------------------------------------------------


def test_a_new_study_becomes_the_current_one(home):
    at = app()
    widget(at.text_input, "Name of the new study").input("nurses")
    widget(at.button, "Create study").click().run()
    assert widget(at.selectbox, "Study").value == "nurses"
    assert "nurses" in widget(at.selectbox, "Study").options
    assert at.session_state["new_study_popover"] is False, "the popover closes"
    assert any("Created study “nurses”" in box.value for box in at.sidebar.success)
    with Store.open(home) as store:
        assert "nurses" in store.study_names()


@pytest.mark.parametrize("name", ["", "a/b", "x" * 500])
def test_a_refused_study_name_is_said_in_the_popover_and_writes_nothing(home, name):
    at = app()
    with Store.open(home) as store:
        before = store.study_names()
    widget(at.text_input, "Name of the new study").input(name)
    widget(at.button, "Create study").click().run()
    assert not at.exception
    assert len(at.sidebar.error) == 1 and "\n" not in at.sidebar.error[0].value
    assert not at.sidebar.success
    with Store.open(home) as store:
        assert store.study_names() == before


def test_a_study_can_record_skin_tone_as_lighter_or_darker(home, four_images):
    at = app()
    widget(at.text_input, "Name of the new study").input("binary")
    widget(at.radio, "Skin tone is rated as").set_value("Lighter / darker (MST 1–5 / 6–10)")
    widget(at.button, "Create study").click().run()
    with Store.open(home) as store:
        assert store.study_skin_tone_mode("binary") == "binary"
        # put the four images in that study, as a run folder generated for it would
        ingest(four_images, store, home)
        store.db.write(lambda cursor: cursor.execute(
            "UPDATE runs SET study_id = (SELECT study_id FROM studies WHERE name = 'binary')"))
    at.switch_page(str(PAGES / "annotate.py")).run()
    widget(at.text_input, "Rater").input("ana").run()
    skin = [radio for radio in at.radio if radio.label == "Skin tone"]
    assert skin and skin[0].options == ["Lighter (MST 1–5)", "Darker (MST 6–10)"]
    skin[0].set_value("Darker (MST 6–10)").run()
    with Store.open(home) as store:
        row = store.annotations().iloc[0]
    assert row["skin_binary"] == "darker" and pd.isna(row["mst"])


# -- Annotate ---------------------------------------------------------------------------------


def annotate_page(rater: str | None = "ana", *, show: str | None = None) -> AppTest:
    at = app("annotate")
    if rater:
        widget(at.text_input, "Rater").input(rater).run()
    if show:
        # The next full run (a later AppTest.run()) would drop an annotated card from the
        # "not yet annotated" grid under the test's feet.
        widget(at.radio, "Show").set_value(show).run()
    assert not at.exception, at.exception
    return at


def radios(at: AppTest, label: str):
    return [radio for radio in at.radio if radio.label == label]


def test_without_a_rater_the_page_asks_for_one_and_writes_nothing(home_with_images):
    at = annotate_page(rater=None)
    assert "Enter your name as **Rater**" in at.info[0].value
    assert radios(at, "Person") == []


def test_an_empty_study_says_how_to_get_images(home):
    at = annotate_page()
    assert "has no images yet" in at.info[0].value and "Generate" in at.info[0].value


def test_a_click_saves_the_right_row_at_once(home_with_images):
    at = annotate_page(show="All")
    assert at.get("progress")[0].proto.text == "0 of 4 annotated by you · 0 of 4 images have 1 rating"
    person = radios(at, "Person")[0]
    image_id = int(person.key.split("-")[1])
    person.set_value("Person").run()
    radios(at, "Gender presentation")[0].set_value("Female-presenting").run()
    radios(at, "Skin tone")[0].set_value("MST 7").run()
    radios(at, "Confidence")[0].set_value("High").run()
    assert not at.exception
    with Store.open(home_with_images) as store:
        rows = store.annotations()
        history = store.annotation_history()
    assert len(rows) == 1 and len(history) == 4, "every click is saved and kept in the history"
    row = rows.iloc[0]
    assert (row["image_id"], row["rater"], row["gender"], row["mst"], row["confidence"]) == (
        image_id, "ana", "female", 7, "high")
    assert bool(row["person_present"]) is True


def test_no_person_disables_the_other_labels_and_clears_them(home_with_images):
    at = annotate_page(show="All")
    radios(at, "Gender presentation")[0].set_value("Male-presenting").run()
    radios(at, "Person")[0].set_value("No person").run()
    assert radios(at, "Gender presentation")[0].disabled and radios(at, "Skin tone")[0].disabled
    assert radios(at, "Gender presentation")[0].value is None
    signs = [caption.value for caption in at.caption if "Saved:" in caption.value]
    assert signs == [":material/check: Saved: No person"], "the sign says what is stored, not the cleared choice"
    with Store.open(home_with_images) as store:
        row = store.annotations().iloc[0]
    assert bool(row["person_present"]) is False and row["gender"] is None


def test_blind_mode_hides_prompt_model_and_seed(home_with_images):
    at = annotate_page()
    assert any("a doctor sitting behind a desk" in caption.value for caption in at.caption)
    widget(at.toggle, "Blind mode").set_value(True).run()
    assert not any("seed" in caption.value or "doctor" in caption.value for caption in at.caption)


def test_the_grid_is_paginated(home_with_images, tmp_path, tiny_model):
    with Store.open(home_with_images) as store:  # 16 more images: 20 in all
        spec = GenerationSpec(model=str(tiny_model), prompt="a nurse", first_seed=0, last_seed=15, steps=2,
                              height=64, width=64, device="cpu")
        from sdaudit.generation.generate import StoreSink

        generate(spec, StoreSink(store, home_with_images), home=home_with_images)
    at = annotate_page()
    assert len(radios(at, "Person")) == 12
    widget(at.number_input, "Page (of 2)").set_value(2).run()
    assert len(radios(at, "Person")) == 8
    widget(at.selectbox, "Per page").set_value(24).run()
    assert len(radios(at, "Person")) == 20


def test_saved_labels_show_when_the_rater_comes_back(home_with_images):
    at = annotate_page()
    radios(at, "Skin tone")[0].set_value("MST 2").run()
    again = annotate_page(show="All")
    assert "MST 2" in [radio.value for radio in radios(again, "Skin tone")]
    # a skin tone alone is no rating (every question must be answered): the counts stay at 0
    assert again.get("progress")[0].proto.text == "0 of 4 annotated by you · 0 of 4 images have 1 rating"


def test_annotating_never_imports_pandas_or_torch(home_with_images):
    """The raters' page starts fast: the sidebar and grid read records, not frames, so a fresh
    process shows the page and saves a click without importing pandas (~0.3 s) or torch."""
    code = textwrap.dedent(f"""
        import sys
        from streamlit import config
        from streamlit.testing.v1 import AppTest
        config.set_option("runner.enforceSerializableSessionState", False)
        at = AppTest.from_file({APP!r}, default_timeout={WAIT_LIMIT_S})
        at.switch_page({str(PAGES / "annotate.py")!r}).run()  # opened at its address, as raters do
        next(e for e in at.text_input if e.label == "Rater").input("ana").run()
        next(e for e in at.radio if e.label == "Skin tone").set_value("MST 4").run()  # reruns the card alone
        for label, value in (("Person", "Person"), ("Gender presentation", "Male-presenting"), ("Confidence", "High")):
            next(e for e in at.radio if e.label == label).set_value(value).run()  # every question: a rating
        at.run()  # the page again, as after a reload
        assert not at.exception, at.exception
        print(len([e for e in at.radio if e.label == "Person"]),
              sorted(name for name in ("pandas", "torch") if name in sys.modules))  # numpy: st.image's own
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=WAIT_LIMIT_S,
                            env={**os.environ, "SDAUDIT_HOME": str(home_with_images)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[-2] == "3 []", "the annotated card leaves the grid; no pandas, no torch"
    with Store.open(home_with_images) as store:
        assert list(store.annotations()["mst"]) == [4], "the click was saved"


def make_job(job_id: int, **changes) -> Job:
    values = dict(job_id=job_id, kind="generate", spec={"first_seed": 0, "last_seed": 7, "model": "demo",
                                                        "prompt": "a doctor sitting behind a desk"},
                  status="done", run_key="r", images_done=8, images_total=8, step=0, steps_total=0, error=None,
                  pid=None, load_seconds=None, seconds_per_image=None, created_at=datetime.now(UTC), started_at=None,
                  finished_at=None)
    return Job(**{**values, **changes})


def test_the_job_table_lists_the_newest_jobs_with_user_text_made_inert():
    sneaky = make_job(2, status="failed", spec={"first_seed": 5, "last_seed": 9, "model": "x/y",
                                                "prompt": "a | b\n[link](http://e.org)"}, error="no | luck")
    table = jobs_table([sneaky, make_job(1)])
    lines = table.splitlines()
    assert lines[0] == "| job | status | images done | seeds | model | prompt | error |"
    assert lines[2] == "| 2 | failed | 8 of 8 | 5–9 | x/y | a \\| b \\[link\\]\\(http\u2060://e\u2060\\.org\\) | no \\| luck |"
    assert lines[3] == "| 1 | done | 8 of 8 | 0–7 | demo | a doctor sitting behind a desk |  |"
    many = jobs_table([make_job(n) for n in range(25, 0, -1)]).splitlines()
    assert [line.split(" | ")[0] for line in many[2:22]] == [f"| {n}" for n in range(25, 5, -1)]
    assert many[-1] == "5 older jobs are not shown; their runs are on the Runs page."
