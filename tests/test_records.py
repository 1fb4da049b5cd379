"""The rules ``sdaudit.records`` holds once: a run's kind, a run's name, a new study's name, a
rater's name. Each face relies on these, so each is checked here on its own and through a face."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
from helpers import ORIGIN_SHEET, make_images, make_run, png, sheet

from sdaudit.errors import SdauditError
from sdaudit.files.reference import ingest_uploaded_images
from sdaudit.files.sheets import import_annotations
from sdaudit.records import (
    RATER_NAME,
    STUDY_NAME,
    RunRecord,
    image_number,
    rater_name,
    require_new_study,
    run_label,
    run_labels,
)
from sdaudit.store import SCHEMA_VERSION, Store

IMPORTED_RUN = RunRecord.imported(run_key="external-1", study="s", sheet="origin_sheet.csv", sha256="ab")
REFERENCE_RUN = RunRecord.reference(run_key="ref-1", study="s", name="labour photos", source="archive",
                                    license="CC BY 4.0")


@pytest.fixture
def store():
    with Store() as memory_store:
        yield memory_store


@pytest.mark.parametrize(("run", "kind", "label"), [
    (make_run(prompt="a photo of a nurse"), "generated", "a photo of a nurse · demo"),
    (replace(make_run(prompt="a photo of a nurse"), slot="nurse"), "generated", "nurse · demo"),
    (IMPORTED_RUN, "imported", "imported sheet origin_sheet.csv"),
    (REFERENCE_RUN, "reference", "reference set labour photos (archive; CC BY 4.0)"),
    (RunRecord.reference(run_key="ref-2", study="s", name="bare"), "reference", "reference set bare"),
])
def test_each_kind_of_run_has_its_kind_and_its_name(run, kind, label):
    assert run.kind == kind
    assert run_label(run) == label


def test_runs_without_settings_carry_none():
    for run in (IMPORTED_RUN, REFERENCE_RUN):
        assert (run.prompt, run.steps, run.guidance, run.width, run.height, run.device) == ("", 0, 0.0, 0, 0, None)


def test_the_kind_and_the_name_survive_the_store(store, tmp_path):
    """Runs come back from the store as rows with their kind, named as a RunRecord is."""
    import_annotations(ORIGIN_SHEET, store, study="s", rater="r1")
    ingest_uploaded_images([("a.png", png(10)), ("b.png", png(200))], store, tmp_path, name="labour photos",
                           study="s", source="archive", license="CC BY 4.0")
    store.add_run(make_run("run-a", study="s", prompt="a photo of a nurse"))
    runs = store.runs(study="s")
    kinds = dict(zip(runs["run_key"], runs["kind"]))
    assert sorted(kinds.values()) == ["generated", "imported", "reference"]
    names = run_labels(runs)
    assert sorted(names.values()) == ["a photo of a nurse · demo", "imported sheet origin_sheet.csv",
                                      "reference set labour photos (archive; CC BY 4.0)"]
    assert {store.run(key)["kind"] for key in kinds} == set(kinds.values())
    assert set(store.images(study="s")["kind"]) == {"imported", "reference"}


def test_an_imported_or_reference_image_is_numbered_by_its_position(store, tmp_path):
    import_annotations(ORIGIN_SHEET, store, study="s", rater="r1")
    result = ingest_uploaded_images([("b.png", png(200)), ("a.png", png(10))], store, tmp_path, name="photos",
                                    study="s")
    images = store.images(study="s")
    imported = images[images["kind"] == "imported"]
    assert list(imported["seed"]) == list(range(221))  # the store's column keeps the position
    reference = images[images["run_key"] == result.run_key]
    # an upload's files are numbered in the order they came (a folder's in name order)
    assert list(reference["seed"]) == [0, 1] and list(reference["source_name"]) == ["b.png", "a.png"]


def test_runs_that_would_share_a_name_are_told_apart_by_their_key():
    first = make_run("run-a", prompt="a photo of a nurse")
    second = replace(first, run_key="run-b", steps=50)  # the same prompt and model, other settings
    third = make_run("run-c", prompt="a photo of a doctor")
    runs = pd.DataFrame([{**vars(run)} for run in (first, second, third)])
    assert run_labels(runs) == {"run-a": "a photo of a nurse · demo · run run-a",
                                "run-b": "a photo of a nurse · demo · run run-b",
                                "run-c": "a photo of a doctor · demo"}


def test_the_results_comparison_keeps_two_runs_of_one_prompt_and_model_apart(store):
    """Named by prompt and model only, the two runs had one name, and the comparison, keyed by the
    name, compared one run with itself."""
    from sdaudit.analysis.options import EstimateOptions
    from sdaudit.present.results import results_view

    for key, steps, female in (("run-a", 5, 10), ("run-b", 50, 30)):
        store.add_run(replace(make_run(key, study="s", prompt="a photo of a nurse"), steps=steps))
        store.add_images(make_images(key, seeds=range(40)))
        rows = sheet({("female", 2): female, ("male", 2): 40 - female})
        rows["image_id"] = store.images(run_key=key)["image_id"].to_numpy()
        rows["confidence"] = "high"
        store.save_annotations(rows)
    view = results_view(store, "s", EstimateOptions(method="wilson"))
    compared = view.comparison("run-a")
    assert compared is not None and len(compared.tables) == 2
    assert len(set(view.run_labels.values())) == 2


@pytest.mark.parametrize("name", ["default", "../x", "a" * 80, ""])
def test_a_study_the_store_holds_is_found_whatever_its_name(name):
    assert require_new_study(name, [name]) == name


@pytest.mark.parametrize("name", ["../x", "a" * 65, "", " lead", None, 3])
def test_a_new_study_must_have_a_name_the_rule_allows(name):
    with pytest.raises(SdauditError) as refused:
        require_new_study(name, ["default"])
    assert str(refused.value) == STUDY_NAME.format(value=name)


def test_a_new_study_with_a_good_name_passes():
    assert require_new_study("occupations 2025", ["default"]) == "occupations 2025"


@pytest.mark.parametrize("value", ["", "   ", None, 7])
def test_an_answer_needs_a_raters_name(value):
    with pytest.raises(SdauditError) as refused:
        rater_name(value, what="a repeat answer")
    stripped = value.strip() if isinstance(value, str) else value
    assert str(refused.value) == RATER_NAME.format(what="a repeat answer", value=stripped)


def test_a_raters_name_is_stripped():
    assert rater_name("  ana ") == "ana"


def test_an_image_on_the_annotate_page_reads_seed_or_position_by_its_runs_kind():
    from sdaudit.records import QueuedImage

    def queued(run: RunRecord) -> QueuedImage:
        return QueuedImage(image_id=1, run_key=run.run_key, seed=3, path="images/x/3.png", prompt=run.prompt,
                           negative_prompt="", model=run.model, kind=run.kind, saved=None)

    assert (queued(make_run()).number, queued(REFERENCE_RUN).number) == ("seed 3", "position 3")


@pytest.mark.parametrize("model", ["reference", "external"])
def test_a_generated_run_whose_model_id_is_a_kind_word_stays_generated(store, model):
    """The kind was read from the model column, so a model id "reference" (a local folder of that
    name) made a generated run a reference set: its images read "position", its settings were blanked."""
    store.add_run(replace(make_run("run-r", study="s", prompt="a photo of a nurse"), model=model))
    store.add_images(make_images("run-r", seeds=[3]))
    run = store.runs(study="s").iloc[0]
    assert run["kind"] == "generated" and store.run("run-r")["kind"] == "generated"
    assert run_label(run) == f"a photo of a nurse · {model}"
    image = store.images(run_key="run-r").iloc[0]
    assert image_number(image["kind"], image["seed"]) == "seed 3"
    queued = store.annotation_queue("s", "ana", only_missing=False, shuffled=False)
    assert [image.number for image in queued] == ["seed 3"]


def test_schema_5_gives_an_older_stores_runs_their_kind(tmp_path, monkeypatch):
    """A store made before the kind column knew an imported or reference run by the word in its model,
    scheduler and dtype columns; migration 5 reads all three, so a generated run whose model id alone
    is such a word stays generated."""
    from sdaudit.files.snapshot_check import ADDED_TABLES
    from sdaudit.store import schema

    path = tmp_path / "old.duckdb"
    with monkeypatch.context() as old:
        old.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:4])
        old.setattr(schema, "TABLES", tuple(t for t in schema.TABLES if t not in ADDED_TABLES))  # not there yet
        with Store(path) as store:
            study_id = store.ensure_study("s")
            for run in (IMPORTED_RUN, REFERENCE_RUN, replace(make_run("run-g", study="s"), model="reference")):
                store.db.write(lambda cursor, run=run: cursor.execute(
                    "INSERT INTO runs (run_key, study_id, model, prompt, negative_prompt, scheduler, steps, "
                    "guidance, width, height, dtype, safety_checker, versions) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}')",
                    [run.run_key, study_id, run.model, run.prompt, run.negative_prompt, run.scheduler, run.steps,
                     run.guidance, run.width, run.height, run.dtype, run.safety_checker]))
            assert store.schema_version == 4
    with Store(path) as upgraded:
        assert upgraded.schema_version == SCHEMA_VERSION  # migration 5 and every later one
        kinds = dict(zip(upgraded.runs()["run_key"], upgraded.runs()["kind"]))
    assert kinds == {IMPORTED_RUN.run_key: "imported", REFERENCE_RUN.run_key: "reference", "run-g": "generated"}
