"""Snapshots: the whole store and its images round-trip through a local folder, identically."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pandas as pd
import pytest
from helpers import ORIGIN_SHEET, ROOT, run_cli

from sdaudit.errors import StoreError
from sdaudit.files.sheets import import_annotations
from sdaudit.files.snapshot import KEPT, MANIFEST, AutoSnapshot, SnapshotError, restore, snapshot
from sdaudit.files.snapshot_check import WRONG_VERSION
from sdaudit.files.staging import STAGING_MARKER, TARGET_NOT_OURS
from sdaudit.generation.generate import StoreSink, generate
from sdaudit.generation.jobs import JobQueue
from sdaudit.generation.spec import GenerationSpec
from sdaudit.scheme import Annotation
from sdaudit.store import SCHEMA_VERSION, TABLES, Store
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


def files_under(folder) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file()}


def test_a_snapshot_the_app_could_not_restore_on_start_is_never_overwritten(full_home, tmp_path):
    """A snapshot from a later sdaudit (or a damaged one) that fails to restore on start is the
    only copy of the data: the empty store must never be snapshotted over it."""
    snap = tmp_path / "snap"
    with Store.open(full_home) as store:
        snapshot(store, full_home, str(snap))
    manifest = json.loads((snap / MANIFEST).read_text())
    (snap / MANIFEST).write_text(json.dumps({**manifest, "schema_version": SCHEMA_VERSION + 1}))
    before = files_under(snap)
    fresh = tmp_path / "fresh"
    with Store.open(fresh) as empty:
        keeper = AutoSnapshot(empty, fresh, str(snap), minutes=10, start=False)
        assert keeper.restored is None
        assert keeper.snapshot_now() is None
        keeper.after_job(None)
    reason = WRONG_VERSION.format(source=str(snap), found=SCHEMA_VERSION + 1).rstrip(".")
    assert keeper.last_error == f"snapshot to {snap} not written: " + KEPT.format(target=snap, reason=reason)
    assert files_under(snap) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fresh", "home", "snap"]


def test_the_first_automatic_snapshot_still_writes_where_there_was_none(full_home, tmp_path):
    fresh = tmp_path / "fresh"
    with Store.open(fresh) as empty:
        keeper = AutoSnapshot(empty, fresh, str(tmp_path / "snap"), minutes=10, start=False)
        assert keeper.last_error.startswith("restore on start failed: there is no sdaudit snapshot")
        assert keeper.snapshot_now() is not None
    assert keeper.last_error is None


# Killed with SIGKILL exactly between swap_snapshot's two renames: the old snapshot is set aside,
# the new one not yet in its place.
KILL_BETWEEN_RENAMES = """
import os, signal, sys
from sdaudit.cli.commands import main
rename = os.rename
def killed_before_the_second(source, target):
    if ".snapshot-" in os.fspath(source):
        os.kill(os.getpid(), signal.SIGKILL)
    rename(source, target)
os.rename = killed_before_the_second
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("reader", ["restore", "the app's start"])
def test_a_snapshot_killed_between_its_renames_is_restored_from_the_old_one(full_home, tmp_path, reader):
    snap = tmp_path / "snap"
    with Store.open(full_home) as store:
        snapshot(store, full_home, str(snap))
        old_rows = {table: store.count(table) for table in TABLES}
        store.save_annotation(1, "ben", Annotation(person_present=False))
    killed = subprocess.run([sys.executable, "-c", KILL_BETWEEN_RENAMES, "snapshot", "--to", str(snap),
                             "--home", str(full_home)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr
    assert not snap.exists() and list(tmp_path.glob(".snap.replaced-*")), "killed between the two renames"
    restored = tmp_path / "restored"
    if reader == "restore":
        result = run_cli("restore", "--from", str(snap), "--home", str(restored))
        assert result.returncode == 0, result.stderr
    else:
        with Store.open(restored) as empty:
            keeper = AutoSnapshot(empty, restored, str(snap), minutes=10, start=False)
            assert keeper.last_error is None and keeper.restored is not None
    with Store.open(restored) as store:
        assert {table: store.count(table) for table in TABLES} == old_rows
    assert not list(tmp_path.glob(".snap.replaced-*"))


def test_a_row_the_store_refuses_is_named_not_hidden_by_the_aborted_transaction(full_home, tmp_path):
    """Rows the checks let through but a constraint refuses: the error names the constraint, not
    "Current transaction is aborted" from cleaning up after it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with Store.open(full_home) as store:
        snapshot(store, full_home, str(tmp_path / "snap"))
    tables = {table: pq.read_table(tmp_path / "snap" / f"{table}.parquet") for table in TABLES}
    tables["images"] = pa.concat_tables([tables["images"], tables["images"].slice(0, 1)])
    with Store.open(tmp_path / "fresh") as empty:
        with pytest.raises(StoreError) as refused:
            empty.import_tables(tables)
        assert not any(empty.count(table) for table in TABLES)
    assert "Constraint Error" in str(refused.value) and "aborted" not in str(refused.value)


@pytest.mark.parametrize("given", [".", "sub/.."])
def test_a_snapshot_to_the_current_folder_is_refused_by_its_own_name(full_home, tmp_path, given):
    """`--to .` and `--to x/..` mean the folder itself: refused as any folder of the user's files,
    with no folder left beside it."""
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    result = run_cli("snapshot", "--to", given, "--home", str(full_home), cwd=mine)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "error: " + TARGET_NOT_OURS.format(path=mine, found="notes.txt")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["home", "mine"]
    assert sorted(path.name for path in mine.iterdir()) == ["notes.txt", "sub"]


def test_the_exit_snapshot_is_written_only_when_the_store_changed(full_home, tmp_path):
    """The last snapshot on exit (``AutoSnapshot.at_exit``) skips an unchanged store, and counts
    any table's rows as a change, a new study as much as a new label."""
    target = tmp_path / "snap"
    with Store.open(full_home) as store:
        unchanged = AutoSnapshot(store, full_home, str(target), minutes=60, start=False)
        unchanged.at_exit()
        assert not target.exists()
        keeper = AutoSnapshot(store, full_home, str(target), minutes=60, start=False)
        store.ensure_study("nurses")
        assert keeper.changed()
        keeper.at_exit()
        assert "nurses" in set(pd.read_parquet(target / "studies.parquet")["name"])
        assert not keeper.changed()
