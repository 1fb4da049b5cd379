"""Nothing from outside the data home: ingest, snapshot, restore and image serving read only regular
files inside their folder, never through a symbolic link, and a refusal writes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import png, run_folder

from sdaudit.errors import SdauditError
from sdaudit.files.gallery import CANNOT_SHOW, NO_FILE, gallery, load_image
from sdaudit.files.runfolder import ingest
from sdaudit.files.safe import LINK, SPECIAL, UnsafeFileError, is_regular, read_regular
from sdaudit.files.snapshot import SnapshotError, restore, snapshot
from sdaudit.records import STUDY_NAME
from sdaudit.store import TABLES, Store

SECRET = Path("/etc/passwd")


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("hostile", ["link to /etc/passwd", "link to an outside png", "linked folder", "fifo"])
def test_ingest_refuses_links_and_special_files_and_writes_nothing(tmp_path, hostile):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "2.png").write_bytes(png(9))
    files: dict[int, bytes | Path | str] = {0: png(1), 1: png(2)}
    files[2] = {"link to /etc/passwd": SECRET, "link to an outside png": outside / "2.png", "fifo": "fifo"}.get(
        hostile, png(3))
    folder = run_folder(tmp_path / "run", files)
    if hostile == "linked folder":  # images/R itself links to a folder outside holding the same files
        os.rename(folder / "images" / "R", outside / "R")
        (folder / "images" / "R").symlink_to(outside / "R", target_is_directory=True)
    home = tmp_path / "home"
    with Store.open(home) as store:
        with pytest.raises(UnsafeFileError) as refused:
            ingest(folder, store, home)
        assert (store.count("runs"), store.count("images")) == (0, 0)
    template = SPECIAL if hostile == "fifo" else LINK
    assert str(refused.value) == template.format(what="image", path=f"images/R/{0 if hostile == 'linked folder' else 2}.png",
                                                 root=folder.resolve())
    assert files_under(home) == ["sdaudit.duckdb"], "nothing was copied into the home"


def test_ingest_refuses_a_link_in_the_home_where_an_image_would_go(tmp_path):
    folder = run_folder(tmp_path / "run", {0: png(1)})
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (home / "images").mkdir(parents=True)
    (home / "images" / "R").symlink_to(elsewhere, target_is_directory=True)
    with Store.open(home) as store:
        with pytest.raises(UnsafeFileError, match="'images/R' is a symbolic link"):
            ingest(folder, store, home)
        assert store.count("images") == 0
    assert list(elsewhere.iterdir()) == []


def test_a_clean_run_folder_still_ingests(tmp_path):
    folder = run_folder(tmp_path / "run", {0: png(1), 1: png(2)})
    with Store.open(tmp_path / "home") as store:
        assert ingest(folder, store, tmp_path / "home").images_added == 2
    assert (tmp_path / "home" / "images" / "R" / "1.png").read_bytes() == png(2)


def test_ingest_refuses_a_study_name_before_copying_anything(tmp_path):
    folder = run_folder(tmp_path / "run", {0: png(1)}, study="../../escaped")
    home = tmp_path / "home"
    with Store.open(home) as store:
        with pytest.raises(SdauditError) as refused:
            ingest(folder, store, home)
        assert str(refused.value) == STUDY_NAME.format(value="../../escaped")
        assert store.count("runs") == store.count("images") == 0
    assert not (home / "images").exists(), "nothing was copied"


def home_with_images(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    with Store.open(home) as store:
        ingest(run_folder(tmp_path / "run", {0: png(1), 1: png(2)}), store, home)
    return home


def test_a_snapshot_does_not_carry_out_a_linked_image(tmp_path):
    home = home_with_images(tmp_path)
    image = home / "images" / "R" / "1.png"
    image.unlink()
    image.symlink_to(SECRET)
    with Store.open(home) as store, pytest.raises(SnapshotError) as refused:
        snapshot(store, home, str(tmp_path / "snap"))
    assert str(refused.value) == "the data home holds an image sdaudit will not copy: " + LINK.format(
        what="image", path="images/R/1.png", root=home.resolve())
    assert not any("passwd" in name or "1.png" in name for name in files_under(tmp_path / "snap"))


@pytest.mark.parametrize("hostile", ["linked image", "linked table", "linked manifest", "linked images folder"])
def test_a_crafted_snapshot_is_refused_and_restores_nothing(tmp_path, hostile):
    home = home_with_images(tmp_path)
    snap = tmp_path / "snap"
    with Store.open(home) as store:
        snapshot(store, home, str(snap))
    if hostile == "linked image":
        (snap / "images" / "R" / "1.png").unlink()
        (snap / "images" / "R" / "1.png").symlink_to(SECRET)
    elif hostile == "linked table":
        os.rename(snap / "runs.parquet", tmp_path / "runs.parquet")
        (snap / "runs.parquet").symlink_to(tmp_path / "runs.parquet")
    elif hostile == "linked manifest":
        os.rename(snap / "snapshot.json", tmp_path / "snapshot.json")
        (snap / "snapshot.json").symlink_to(tmp_path / "snapshot.json")
    else:
        os.rename(snap / "images", tmp_path / "images")
        (snap / "images").symlink_to(tmp_path / "images", target_is_directory=True)
    fresh = tmp_path / "fresh"
    with Store.open(fresh) as store:
        with pytest.raises(SnapshotError, match="symbolic link"):
            restore(store, fresh, str(snap))
        assert all(store.count(table) == 0 for table in TABLES)
    assert files_under(fresh) == ["sdaudit.duckdb"]


def test_images_are_served_only_as_regular_decodable_files_inside_the_home(tmp_path):
    home = home_with_images(tmp_path)
    (tmp_path / "outside.png").write_bytes(png(7))
    (home / "images" / "R" / "2.png").symlink_to(tmp_path / "outside.png")
    (home / "images" / "R" / "3.png").write_text("not a png")
    os.mkfifo(home / "images" / "R" / "4.png")
    assert is_regular(home, "images/R/0.png")
    assert [is_regular(home, f"images/R/{seed}.png") for seed in (2, 4)] == [False, False]
    assert load_image(home, "images/R/0.png").data == png(1)
    assert load_image(home, "images/R/9.png").problem == CANNOT_SHOW.format(reason=NO_FILE)
    assert load_image(home, "images/R/2.png").problem == CANNOT_SHOW.format(
        reason=LINK.format(what="the image", path="images/R/2.png", root=home.resolve()).rstrip("."))
    assert load_image(home, "images/R/3.png").problem.startswith(
        CANNOT_SHOW.format(reason="images/R/3.png is not an image file ("))
    assert load_image(home, "../outside.png").data is None
    shown = gallery(home, [f"images/R/{seed}.png" for seed in range(5)], [f"seed {seed}" for seed in range(5)])
    assert (shown.files, shown.captions, shown.missing) == ((png(1), png(2)), ("seed 0", "seed 1"), 3)


def test_read_regular_refuses_a_link_swapped_in_for_a_folder(tmp_path):
    (tmp_path / "root" / "a").mkdir(parents=True)
    (tmp_path / "root" / "a" / "f").write_bytes(b"ok")
    assert read_regular(tmp_path / "root", "a/f") == b"ok"
    os.rename(tmp_path / "root" / "a", tmp_path / "a")
    (tmp_path / "root" / "a").symlink_to(tmp_path / "a", target_is_directory=True)
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        read_regular(tmp_path / "root", "a/f")


def test_append_regular_refuses_a_link_swapped_in_for_a_folder_after_its_check(tmp_path, monkeypatch):
    """The run folder's part file: a folder on the way that becomes a link between the check
    (``writable_target``) and the open is not written through; the file outside stays as it was."""
    from sdaudit.files import safe

    (tmp_path / "run" / "parts").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "0.jsonl").write_bytes(b"theirs\n")
    checked = safe.writable_target

    def check_then_swap(root, relpath, *, what="the file"):
        target = checked(root, relpath, what=what)
        os.rename(tmp_path / "run" / "parts", tmp_path / "parts-aside")
        (tmp_path / "run" / "parts").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
        return target

    safe.append_regular(tmp_path / "run", "parts/0.jsonl", b"line 1\n")
    assert (tmp_path / "run" / "parts" / "0.jsonl").read_bytes() == b"line 1\n"
    monkeypatch.setattr(safe, "writable_target", check_then_swap)
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        safe.append_regular(tmp_path / "run", "parts/0.jsonl", b"line 2\n")
    assert (tmp_path / "elsewhere" / "0.jsonl").read_bytes() == b"theirs\n"
    assert (tmp_path / "parts-aside" / "0.jsonl").read_bytes() == b"line 1\n"


def test_a_snapshot_its_restore_would_refuse_is_not_written(tmp_path):
    """A store from before today's name rule holds a study named 'Ärzte/2023 (pilot)', which restore
    refuses: the snapshot says so in one line and writes nothing, instead of a backup that cannot be
    restored. The same store with that study gone snapshots and restores."""
    from helpers import add_study_as_an_older_store_did

    home = tmp_path / "home"
    with Store.open(home) as store:
        add_study_as_an_older_store_did(store, "Ärzte/2023 (pilot)")
        with pytest.raises(SnapshotError) as refused:
            snapshot(store, home, str(tmp_path / "snap"))
    message = str(refused.value)
    assert message.startswith("no snapshot was written, because restore would refuse it: the snapshot's studies.parquet")
    assert "'Ärzte/2023 (pilot)'" in message and message.endswith("nothing was changed.") and "\n" not in message
    assert sorted(os.listdir(tmp_path)) == ["home"], "no snapshot folder, no staging folder left"
    with Store.open(home) as store:
        store.db.write(lambda cursor: cursor.execute("DELETE FROM studies WHERE name = 'Ärzte/2023 (pilot)'"))
        snapshot(store, home, str(tmp_path / "snap"))
    with Store.open(tmp_path / "restored") as store:
        restore(store, tmp_path / "restored", str(tmp_path / "snap"))
        assert "Ärzte/2023 (pilot)" not in store.study_names()


def test_a_snapshot_refuses_an_image_over_restores_caps_before_writing(tmp_path):
    """An image of the home over the caps of ``ingest-images`` (one that came with a run folder,
    which has none) makes the snapshot refuse up front, naming it."""
    from test_hostile_snapshot import png_claiming

    home = tmp_path / "home"
    with _store_with_one_image(home) as store:
        (home / "images" / "run-a" / "0.png").write_bytes(png_claiming(30000, 30000))
        with pytest.raises(SnapshotError, match=r"restore would refuse it: the snapshot's image "
                                                r"'images/run-a/0.png' cannot be restored \(over 40,000,000 pixels\)"):
            snapshot(store, home, str(tmp_path / "snap"))
    assert sorted(os.listdir(tmp_path)) == ["home"]


def test_an_empty_image_file_is_named_without_a_python_object_in_the_message(tmp_path):
    home = tmp_path / "home"
    with _store_with_one_image(home) as store:
        (home / "images" / "run-a" / "0.png").write_bytes(b"")
        with pytest.raises(SnapshotError) as refused:
            snapshot(store, home, str(tmp_path / "snap"))
    assert str(refused.value).endswith("the snapshot's image 'images/run-a/0.png' cannot be restored (unreadable: not "
                                       "an image file (empty)); nothing was changed."), str(refused.value)


def test_a_snapshot_refuses_an_image_cut_short_and_keeps_the_last_good_one(tmp_path):
    """A PNG cut in half has a whole header: only decoding it finds it. The snapshot refuses before
    replacing the last good snapshot, which stays as it was."""
    home = tmp_path / "home"
    with _store_with_one_image(home) as store:
        whole = _noise_png()
        (home / "images" / "run-a" / "0.png").write_bytes(whole)
        snapshot(store, home, str(tmp_path / "snap"))
        good = {path: (tmp_path / "snap" / path).read_bytes() for path in _files_under(tmp_path / "snap")}
        (home / "images" / "run-a" / "0.png").write_bytes(whole[: len(whole) // 2])
        with pytest.raises(SnapshotError, match=r"the snapshot's image 'images/run-a/0.png' cannot be restored "
                                                r"\(unreadable: .*\); nothing was changed\.$"):
            snapshot(store, home, str(tmp_path / "snap"))
    assert {path: (tmp_path / "snap" / path).read_bytes() for path in _files_under(tmp_path / "snap")} == good


def _noise_png() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def _store_with_one_image(home: Path) -> Store:
    """A store with run ``run-a`` and its image 0, whose file (``images/run-a/0.png``) the test writes."""
    from helpers import make_images, make_run

    store = Store.open(home)
    store.add_run(make_run())
    store.add_images(make_images(seeds=[0]))
    (home / "images" / "run-a").mkdir(parents=True)
    return store
