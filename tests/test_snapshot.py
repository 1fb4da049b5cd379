"""Snapshots: the whole store and its images round-trip through a local folder, identically."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pandas as pd
import pytest
from helpers import ORIGIN_SHEET

from sdaudit.files.sheets import import_annotations
from sdaudit.files.snapshot import MANIFEST, AutoSnapshot, SnapshotError, restore, snapshot
from sdaudit.files.staging import STAGING_MARKER, TARGET_NOT_OURS
from sdaudit.generation.generate import StoreSink, generate
from sdaudit.generation.jobs import JobQueue
from sdaudit.generation.spec import GenerationSpec
from sdaudit.scheme import Annotation
from sdaudit.store import TABLES, Store
from sdaudit.store import parquet as parquet_module
from sdaudit.store.team import Team


@pytest.fixture
def full_home(tmp_path, tiny_model):
    """A store with a generated run, annotations with history, an imported sheet, a job and a gold label."""
    home = tmp_path / "home"
    with Store.open(home) as store:
        spec = GenerationSpec(model=str(tiny_model), prompt="a doctor", first_seed=0, last_seed=3, steps=2,
                              height=64, width=64, device="cpu")
        generate(spec, StoreSink(store, home), home=home)
        for image_id in store.images()["image_id"]:
            store.save_annotation(int(image_id), "ana", Annotation(person_present=True, mst=3))
            store.save_annotation(int(image_id), "ana", Annotation(person_present=True, mst=7, gender="female"))
        import_annotations(ORIGIN_SHEET, store, study="origin", rater="origin-rater")
        JobQueue(store).add("generate", spec.to_dict())
        Team(store).set_gold("default", 1, Annotation(person_present=True, mst=3))  # set by no one named
    return home


def tables_of(home) -> dict[str, pd.DataFrame]:
    with Store.open(home) as store:
        return {table: store.db.read_frame(f"SELECT * FROM {table} ORDER BY ALL") for table in TABLES}


def test_a_snapshot_round_trips_every_row_and_image(full_home, tmp_path):
    with Store.open(full_home) as store:
        written = snapshot(store, full_home, str(tmp_path / "snap"))
    assert written.rows["annotation_history"] == 8 + 221 and written.images == 4
    restored_home = tmp_path / "restored"
    with Store.open(restored_home) as empty:
        restore(empty, restored_home, str(tmp_path / "snap"))
        # ids keep counting after the restored ones
        new_job = JobQueue(empty).add("generate", {"x": 1})
        assert new_job == 2
        empty.db.write(lambda cursor: cursor.execute("DELETE FROM jobs WHERE job_id = 2"))
    before, after = tables_of(full_home), tables_of(restored_home)
    for table in TABLES:
        pd.testing.assert_frame_equal(before[table], after[table], check_dtype=False)
    for path in full_home.glob("images/*/*.png"):
        assert (restored_home / path.relative_to(full_home)).read_bytes() == path.read_bytes()


def test_restore_refuses_a_store_that_holds_data(full_home, tmp_path):
    with Store.open(full_home) as store:
        snapshot(store, full_home, str(tmp_path / "snap"))
        with pytest.raises(SnapshotError, match="already holds data; restore only into an empty store"):
            restore(store, full_home, str(tmp_path / "snap"))


def test_restoring_from_nothing_says_so(tmp_path):
    with Store.open(tmp_path / "home") as store, pytest.raises(SnapshotError, match="there is no sdaudit snapshot"):
        restore(store, tmp_path / "home", str(tmp_path / "nowhere"))


def test_a_second_snapshot_replaces_the_first(full_home, tmp_path):
    with Store.open(full_home) as store:
        snapshot(store, full_home, str(tmp_path / "snap"))
        store.save_annotation(1, "ben", Annotation(person_present=False))
        second = snapshot(store, full_home, str(tmp_path / "snap"))
    assert second.rows["annotations"] == 4 + 221 + 1
    assert not list((tmp_path / "snap").glob(".snapshot-*")), "no staging folder is left behind"


def test_a_snapshot_does_not_hold_the_write_lock(full_home, tmp_path, monkeypatch):
    """Clicks go on during a snapshot: its reads run in their own transaction, so a save made
    while the snapshot is halfway through commits at once and the snapshot stays consistent."""
    with Store.open(full_home) as store:
        saved_during = []
        original = parquet_module._copy_table_out

        def save_midway(cursor, table: str, folder) -> int:
            if table == "annotations" and not saved_during:  # the snapshot is reading table by table
                store.save_annotation(1, "zoe", Annotation(person_present=True, gender="male"))
                saved_during.append(store.count("annotations"))
            return original(cursor, table, folder)

        monkeypatch.setattr(parquet_module, "_copy_table_out", save_midway)
        result = snapshot(store, full_home, str(tmp_path / "snap"))
        assert saved_during == [4 + 221 + 1], "the save committed while the snapshot was running"
        assert result.rows["annotations"] == 4 + 221, "the snapshot is one consistent read, from before the save"


# -- issue 21: a snapshot never touches what it did not write; a restore checks before it writes --


def test_the_periodic_snapshotter_refuses_a_folder_of_the_users_files(full_home, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "runs.parquet").write_bytes(b"my own table")
    with Store.open(full_home) as store:
        keeper = AutoSnapshot(store, full_home, str(mine), minutes=60, start=False)
        assert keeper.snapshot_now() is None
    assert keeper.last_error == f"snapshot to {mine} failed: " + TARGET_NOT_OURS.format(path=mine, found="runs.parquet")
    assert [path.name for path in mine.iterdir()] == ["runs.parquet"]
    assert (mine / "runs.parquet").read_bytes() == b"my own table"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["home", "mine"], "no staging folder is left"


def test_a_staging_folder_is_removed_only_when_its_process_is_gone(full_home, tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owners = {"gone": int(finished.stdout), "running": os.getpid()}
    for name, pid in owners.items():
        (tmp_path / f".snap.snapshot-{name}").mkdir()
        (tmp_path / f".snap.snapshot-{name}" / STAGING_MARKER).write_text(
            json.dumps({"pid": pid, "host": socket.gethostname()}))
    (tmp_path / ".snap.snapshot-unmarked").mkdir()
    (tmp_path / ".snap.snapshot-unmarked" / "mine.txt").write_text("not sdaudit's")
    with Store.open(full_home) as store:
        snapshot(store, full_home, str(tmp_path / "snap"))
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        ".snap.snapshot-running", ".snap.snapshot-unmarked", "home", "snap"]


def test_a_snapshot_killed_between_its_two_renames_is_put_back(full_home, tmp_path):
    """The old snapshot renamed aside and the new one not yet in: the next snapshot puts the old
    one back first, then replaces it as usual."""
    with Store.open(full_home) as store:
        snapshot(store, full_home, str(tmp_path / "snap"))
        os.rename(tmp_path / "snap", tmp_path / ".snap.replaced-0000")
        store.save_annotation(1, "ben", Annotation(person_present=False))
        second = snapshot(store, full_home, str(tmp_path / "snap"))
    assert second.rows["annotations"] == 4 + 221 + 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["home", "snap"]


def test_a_restore_into_an_open_store_checks_everything_before_it_writes(full_home, tmp_path):
    with Store.open(full_home) as store:
        snapshot(store, full_home, str(tmp_path / "snap"))
    (tmp_path / "snap" / "targets.parquet").unlink()
    restored_home = tmp_path / "restored"
    with Store.open(restored_home) as empty:
        with pytest.raises(SnapshotError, match="lacks targets.parquet"):
            restore(empty, restored_home, str(tmp_path / "snap"))
        assert not any(empty.count(table) for table in TABLES)
    assert [path.name for path in restored_home.iterdir()] == ["sdaudit.duckdb"], "no image was copied"


def test_a_snapshot_from_before_the_kind_column_restores_each_runs_kind(full_home, tmp_path):
    """Schema 4 knew an imported run by the word in its model, scheduler and dtype columns; its
    snapshot has no runs.kind. Restored, each run gets the kind migration 5 would have given it."""
    import pyarrow.parquet as pq

    with Store.open(full_home) as store:
        snapshot(store, full_home, str(tmp_path / "snap"))
        kinds = dict(zip(store.runs()["run_key"], store.runs()["kind"]))
    assert sorted(kinds.values()) == ["generated", "imported"]
    runs = tmp_path / "snap" / "runs.parquet"
    pq.write_table(pq.read_table(runs).drop_columns(["kind"]), runs)  # as schema 4 wrote it
    manifest = json.loads((tmp_path / "snap" / MANIFEST).read_text())
    (tmp_path / "snap" / MANIFEST).write_text(json.dumps({**manifest, "schema_version": 4}))
    restored_home = tmp_path / "restored"
    with Store.open(restored_home) as empty:
        restore(empty, restored_home, str(tmp_path / "snap"))
        assert dict(zip(empty.runs()["run_key"], empty.runs()["kind"])) == kinds
