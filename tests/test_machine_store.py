"""The store's door to machine labels and the human sample (migration 7, issue 25)."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest
from helpers import make_images, make_run

from sdaudit.files.snapshot import MANIFEST, SnapshotError, restore, snapshot
from sdaudit.records import RunRecord
from sdaudit.scheme import Annotation
from sdaudit.store import TABLES, Store
from sdaudit.store.machine import SAMPLE_EXISTS, MachineAnswer, MachineTables

FEMALE = Annotation(person_present=True, gender="female", mst=3)


@pytest.fixture
def store():
    """Study "default": two generated runs (8 + 4 images), an imported sheet's run (3 images, no
    files) and a reference set (2 images); study "other": one generated run of 5 images."""
    with Store(":memory:") as store:
        store.add_run(make_run("run-a"))
        store.add_images(make_images("run-a", range(8)))
        store.add_run(make_run("run-b", prompt="a nurse"))
        store.add_images(make_images("run-b", range(4)))
        imported = RunRecord.imported(run_key="sheet", study="default", sheet="x.csv", sha256="0" * 64)
        rows = pd.DataFrame({"run_key": "sheet", "seed": range(3), "rater": "r1", "person_present": True,
                             "gender": "male", "mst": 2, "skin_binary": None, "confidence": "high"})
        store.import_sheet(rows, study="default", runs=[imported],
                           images=pd.DataFrame({"run_key": "sheet", "seed": range(3), "source_name": "x"}))
        store.add_run(RunRecord.reference(run_key="ref", study="default", name="photos"))
        store.add_images(make_images("ref", range(2)))
        store.add_run(make_run("run-o", study="other"))
        store.add_images(make_images("run-o", range(5)))
        yield store


def generated_ids(store, study="default") -> list[int]:
    images = store.images(study=study)
    return sorted(int(i) for i in images[images["kind"] == "generated"]["image_id"])


def test_a_labelling_resumes_under_the_same_settings_and_labels_only_generated_images(store):
    tables = MachineTables(store)
    first = tables.start_labelling("default", "clip", "openai/clip", model_revision="abc", method={"prompts": [1]})
    assert tables.start_labelling("default", "clip", "openai/clip", model_revision="abc", method={"prompts": [1]}) == first
    other = tables.start_labelling("default", "clip", "openai/clip", model_revision="abc", method={"prompts": [2]})
    assert other != first
    todo = tables.images_to_label(first)
    assert [image_id for image_id, _ in todo] == generated_ids(store)  # no sheet, reference or other study
    tables.save_machine_labels(first, [MachineAnswer(todo[0][0], FEMALE, {"gender": {"female": 0.9, "male": 0.1}})])
    assert [image_id for image_id, _ in tables.images_to_label(first)] == generated_ids(store)[1:]
    assert tables.images_to_label(other) == todo, "another labelling's answers do not count as done"
    assert tables.labelling(first).labelled == 1 and tables.labelling(other).labelled == 0
    frame = tables.machine_labels("default", first)
    assert frame.loc[0, "gender"] == "female" and frame.loc[0, "scores"] == {"gender": {"female": 0.9, "male": 0.1}}
    assert store.count("annotations") == 3, "a machine's answer is never a person's annotation (the sheet's 3 are)"


def test_a_batch_with_an_image_of_another_study_or_bad_scores_stores_nothing(store):
    tables = MachineTables(store)
    labelling = tables.start_labelling("default", "skin-pixels", "opencv haar")
    mine = generated_ids(store)[0]
    foreign = generated_ids(store, "other")[0]
    with pytest.raises(ValueError, match=f"image {foreign} is not an image of study 'default'"):
        tables.save_machine_labels(labelling, [MachineAnswer(mine, FEMALE), MachineAnswer(foreign, FEMALE)])
    with pytest.raises(ValueError, match="scores of image"):
        tables.save_machine_labels(labelling, [MachineAnswer(mine, FEMALE, {"gender": {"female": 1.5}})])
    assert store.count("machine_labels") == 0


@pytest.mark.parametrize("labeller", ["", "clip;drop", "x" * 41, None])
def test_a_bad_labeller_name_is_refused_naming_it(store, labeller):
    with pytest.raises(ValueError, match="`labeller` must be"):
        MachineTables(store).start_labelling("default", labeller, "m")
    assert store.count("labellings") == 0


def test_a_human_sample_is_a_recorded_seeded_uniform_draw_of_generated_images_and_drawn_once(store):
    tables = MachineTables(store)
    sample = tables.draw_human_sample("default", 5, seed=11, by="lead")
    population = generated_ids(store)
    assert sample.population == len(population) == 12 and sample.size == 5 and sample.seed == 11
    assert list(sample.image_ids) == random.Random(11).sample(population, 5)
    assert sample.inclusion_probability == pytest.approx(5 / 12)
    assert tables.human_sample("default") == sample and tables.human_sample("other") is None
    assert sample.last_image_id == max(population), "images generated later were never in the draw"
    with pytest.raises(ValueError) as refused:
        tables.draw_human_sample("default", 3, seed=1)
    assert str(refused.value) == SAMPLE_EXISTS.format(study="default", size=5, population=12, seed=11)
    assert tables.human_sample("default") == sample


@pytest.mark.parametrize("size", [1, 13, 2.0, True, "4"])
def test_a_human_sample_of_a_bad_size_is_refused_and_nothing_is_drawn(store, size):
    with pytest.raises(ValueError, match=f"from 2 to the study's 12 generated images but got {size!r}"):
        MachineTables(store).draw_human_sample("default", size, seed=1)
    assert store.count("human_samples") == store.count("human_sample_images") == 0


def test_draws_in_different_studies_are_independent_and_a_missing_study_is_named(store):
    tables = MachineTables(store)
    tables.draw_human_sample("other", 2, seed=3)
    assert tables.draw_human_sample("default", 2, seed=3).population == 12
    with pytest.raises(ValueError, match="there is no study 'nope'"):
        tables.draw_human_sample("nope", 2)


def add_machine_work(home) -> None:
    with Store.open(home) as store:
        store.add_run(make_run("run-a"))
        store.add_images(make_images("run-a", range(4)))
        tables = MachineTables(store)
        labelling = tables.start_labelling("default", "clip", "tiny", method={"gender": ["a woman", "a man"]})
        ids = [image_id for image_id, _ in tables.images_to_label(labelling)]
        tables.save_machine_labels(labelling, [MachineAnswer(i, FEMALE, {"gender": {"female": 0.7}}) for i in ids])
        tables.draw_human_sample("default", 2, seed=5)


def test_a_snapshot_keeps_machine_labels_and_the_human_sample(tmp_path):
    home = tmp_path / "home"
    add_machine_work(home)
    with Store.open(home) as store:
        snapshot(store, home, str(tmp_path / "snap"))
        before = {table: store.db.read_frame(f"SELECT * FROM {table} ORDER BY ALL") for table in TABLES}
    restored = tmp_path / "restored"
    with Store.open(restored) as empty:
        restore(empty, restored, str(tmp_path / "snap"))
        for table in ("labellings", "machine_labels", "human_samples", "human_sample_images"):
            after = empty.db.read_frame(f"SELECT * FROM {table} ORDER BY ALL")
            assert len(after) and after.equals(before[table]), table
        # the labelling sequence continues past the restored ids
        assert MachineTables(empty).start_labelling("default", "clip", "other") == 2


@pytest.mark.parametrize("version, restores", [(6, True), (7, False)])
def test_a_snapshot_from_before_migration_7_restores_without_its_tables(tmp_path, version, restores):
    home = tmp_path / "home"
    add_machine_work(home)
    snap = tmp_path / "snap"
    with Store.open(home) as store:
        snapshot(store, home, str(snap))
    for table in ("labellings", "machine_labels", "human_samples", "human_sample_images"):
        (snap / f"{table}.parquet").unlink()
    manifest = json.loads((snap / MANIFEST).read_text())
    (snap / MANIFEST).write_text(json.dumps({**manifest, "schema_version": version}))
    restored = tmp_path / "restored"
    with Store.open(restored) as empty:
        if restores:
            restore(empty, restored, str(snap))
            assert empty.count("images") == 4 and empty.count("machine_labels") == 0
        else:
            with pytest.raises(SnapshotError, match="lacks labellings.parquet"):
                restore(empty, restored, str(snap))
            assert not any(empty.count(table) for table in TABLES)


def test_a_snapshot_whose_machine_label_names_an_unknown_image_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    home = tmp_path / "home"
    add_machine_work(home)
    snap = tmp_path / "snap"
    with Store.open(home) as store:
        snapshot(store, home, str(snap))
    path = snap / "machine_labels.parquet"
    rows = pq.read_table(path).to_pandas()
    rows.loc[0, "image_id"] = 999
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False, schema=pq.read_table(path).schema), path)
    with Store.open(tmp_path / "restored") as empty, \
            pytest.raises(SnapshotError, match="machine_labels.parquet row 1 has image_id = 999"):
        restore(empty, tmp_path / "restored", str(snap))


def test_a_study_without_two_generated_images_is_told_so_not_given_a_range_from_2_to_0(store):
    store.add_run(make_run("run-x", study="lonely"))
    store.add_images(make_images("run-x", range(1)))
    with pytest.raises(ValueError, match="study 'lonely' has 1 generated image"):
        MachineTables(store).draw_human_sample("lonely", 2, seed=1)
    assert store.count("human_samples") == 0


def tampered(tmp_path, table: str, change) -> tuple:
    """A snapshot of ``add_machine_work``'s home with ``change(rows)`` made to ``table``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    home, snap = tmp_path / "home", tmp_path / "snap"
    add_machine_work(home)
    with Store.open(home) as store:
        snapshot(store, home, str(snap))
    path = snap / f"{table}.parquet"
    schema = pq.read_table(path).schema
    rows = pq.read_table(path).to_pandas()
    change(rows)
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False, schema=schema), path)
    return snap


@pytest.mark.parametrize(("table", "change", "message"), [
    ("machine_labels", lambda rows: rows.__setitem__("scores", "not json"), "machine_labels.parquet row 1 has scores"),
    ("labellings", lambda rows: rows.__setitem__("method", "[1]"), "not a JSON object"),
    ("human_samples", lambda rows: rows.__setitem__("size", 3), "holds 2 of its images, not 1 to 3"),
    ("human_sample_images", lambda rows: rows.__setitem__("inclusion_probability", 0.9), "inclusion probability"),
    ("human_samples", lambda rows: rows.__setitem__("last_image_id", 1), "after the last image id of its draw"),
])
def test_a_snapshot_whose_machine_tables_were_tampered_with_is_refused_whole(tmp_path, table, change, message):
    snap = tampered(tmp_path, table, change)
    with Store.open(tmp_path / "restored") as empty:
        with pytest.raises(SnapshotError, match=message):
            restore(empty, tmp_path / "restored", str(snap))
        assert not any(empty.count(name) for name in TABLES)
