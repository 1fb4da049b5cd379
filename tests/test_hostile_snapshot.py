"""Hostile snapshots and restores through the real CLI (issue 21): a snapshot writes only into a
new, empty or sdaudit-made folder outside the data home and never touches a file it did not write;
a restore checks every table and image of a snapshot before it writes anything. A refusal is one
`error:` line, exit 2, no traceback, and every file where it was, byte for byte; kill -9 and a full
disk leave the old snapshot (or the home) whole."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import ORIGIN_SHEET, ROOT, Deadline, assert_one_error_line, make_images, make_run, png, run_cli

from sdaudit.files.sheets import import_annotations
from sdaudit.files.snapshot import HOLDS_DATA, HOME_NOT_EMPTY, TARGET_HOLDS_HOME, TARGET_IN_HOME
from sdaudit.files.snapshot_check import (
    COLUMN_TYPE,
    COLUMNS,
    DUPLICATE,
    IMAGE,
    MAX_ID,
    NOT_PARQUET,
    NULL,
    TABLE_MISSING,
    VALUE,
)
from sdaudit.files.staging import MARKER, TARGET_IS_LINK, TARGET_NOT_OURS, TARGET_UNMARKED, walk
from sdaudit.records import STUDY_NAME
from sdaudit.scheme import Annotation
from sdaudit.store import TABLES, Store

IMAGES = 1500  # enough files that a snapshot or restore takes long enough to be killed half-way


def listing(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (links not followed): a file's sha256, a folder, or a link's target."""
    found = {}
    for parent, folders, files in os.walk(root, followlinks=False):
        for name in [*folders, *files]:
            path = os.path.join(parent, name)
            relpath = os.path.relpath(path, root)
            if os.path.islink(path):
                found[relpath] = f"link to {os.readlink(path)}"
            elif os.path.isdir(path):
                found[relpath] = "folder"
            else:
                found[relpath] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return found


def table_rows(home: Path) -> dict[str, int]:
    with Store(home / "sdaudit.duckdb", read_only=True) as store:
        return {table: store.count(table) for table in TABLES}


def noise_png(side: int) -> bytes:
    """A PNG of random pixels (about 3 bytes a pixel: PNG cannot compress noise)."""
    import io

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A home with a run of ``IMAGES`` PNGs (the first about 49 kB, the rest under 100 bytes), the
    origin sheet's annotations and one more, and a snapshot of it at ``snap``; copied afresh for
    every case."""
    root = tmp_path_factory.mktemp("hostile-snapshot")
    home = root / "home"
    with Store.open(home) as store:
        store.add_run(make_run("run-a"))
        store.add_images(make_images("run-a", seeds=range(IMAGES)))
        for seed in range(IMAGES):
            path = home / "images" / "run-a" / f"{seed}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png(seed % 256) if seed else noise_png(128))
        import_annotations(ORIGIN_SHEET, store, study="origin", rater="ana")
        store.save_annotation(1, "ben", Annotation(person_present=True, gender="female", mst=4, confidence="high"))
    run_cli("snapshot", "--to", str(root / "snap"), "--home", str(home), check=True)
    return root


@dataclass
class Place:
    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def snap(self) -> Path:
        return self.root / "snap"


@pytest.fixture
def place(template, tmp_path) -> Place:
    shutil.copytree(template, tmp_path / "p", symlinks=True)
    return Place(tmp_path / "p")


def cli(*args: str, limit: int | None = None) -> subprocess.CompletedProcess:
    """`python -m sdaudit ARGS`; with ``limit``, no file it writes may grow past ``limit`` bytes (a
    full disk: the write fails with EFBIG instead of killing the process)."""
    if limit is None:
        return run_cli(*args)

    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "sdaudit", *args], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=600, preexec_fn=full_disk)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}


def kill_when(args: list[str], moment: Callable[[], bool]) -> bool:
    """Start `python -m sdaudit ARGS` and kill -9 it as soon as ``moment()`` holds; False when it
    ended before that."""
    process = subprocess.Popen([sys.executable, "-m", "sdaudit", *args], cwd=ROOT, env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = Deadline()
    try:
        while process.poll() is None and not deadline.expired():
            if moment():
                process.kill()
                return True
            time.sleep(0.002)
        return False
    finally:
        process.kill()
        process.wait()


def staging_of(folder: Path, kind: str) -> list[Path]:
    """The staging folder a snapshot or restore into ``folder`` builds: beside it, or (as sdaudit
    did before issue 21) inside it, or the folder itself (a restore that writes into the home)."""
    beside = sorted(folder.parent.glob(f".{folder.name}.{kind}-*"))
    inside = sorted(folder.glob(f".{kind}-*")) if kind == "snapshot" else [folder] * folder.exists()
    return beside or inside


# -- snapshot: refused without touching a file ---------------------------------------------------


def user_files(place: Place) -> Path:
    target = place.root / "mine"
    (target / "images").mkdir(parents=True)
    (target / "images" / "holiday.jpg").write_bytes(b"my holiday")
    (target / "runs.parquet").write_bytes(b"my own table")
    return target


def unmarked_snapshot(place: Place) -> Path:
    (place.snap / MARKER).unlink()  # as a snapshot written before snapshots were marked
    return place.snap


def images_a_link(place: Place) -> Path:
    elsewhere = place.root / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.png").write_bytes(b"keep me")
    shutil.rmtree(place.snap / "images")
    (place.snap / "images").symlink_to(elsewhere)
    return place.snap


def a_file_of_mine_in_the_snapshot(place: Place) -> Path:
    (place.snap / "images" / "run-a" / "notes.txt").write_text("mine")
    return place.snap


def target_a_link(place: Place) -> Path:
    link = place.root / "link"
    link.symlink_to(place.snap)
    return link


def a_forged_marker_above_the_home(place: Place) -> Path:
    """The folder that holds the data home, with a marker that claims every file in it (the home's
    store and images included) as a snapshot's: replacing that "snapshot" would remove the home."""
    files = walk(place.root)
    (place.root / MARKER).write_text(json.dumps({"format": "sdaudit-snapshot", "marker_format": 1, "files": files}))
    return place.root


SNAPSHOT_REFUSALS = {
    "a folder of the user's files": (user_files, lambda p, t: TARGET_NOT_OURS.format(path=t, found="images/holiday.jpg")),
    "the data home": (lambda p: p.home, lambda p, t: TARGET_IN_HOME.format(path=t, home=p.home)),
    "a folder inside the data home": (lambda p: p.home / "sub", lambda p, t: TARGET_IN_HOME.format(path=t, home=p.home)),
    "the home's images folder": (lambda p: p.home / "images", lambda p, t: TARGET_IN_HOME.format(path=t, home=p.home)),
    "images/ a link in the old snapshot": (images_a_link, lambda p, t: TARGET_NOT_OURS.format(path=t, found="images")),
    "a user's file inside the old snapshot": (a_file_of_mine_in_the_snapshot,
                                              lambda p, t: TARGET_NOT_OURS.format(path=t, found="images/run-a/notes.txt")),
    "an unmarked snapshot": (unmarked_snapshot, lambda p, t: TARGET_UNMARKED.format(path=t)),
    "the target a link": (target_a_link, lambda p, t: TARGET_IS_LINK.format(path=t)),
    "a forged snapshot holding the home": (a_forged_marker_above_the_home,
                                           lambda p, t: TARGET_HOLDS_HOME.format(path=t, home=p.home)),
}


@pytest.mark.parametrize("case", SNAPSHOT_REFUSALS, ids=list(SNAPSHOT_REFUSALS))
def test_a_snapshot_into_a_folder_it_did_not_make_is_refused_and_touches_nothing(place, case):
    make_target, message = SNAPSHOT_REFUSALS[case]
    target = make_target(place)
    with Store.open(place.home) as store:  # a snapshot that wrote anything would show it
        store.save_annotation(2, "ben", Annotation(person_present=False, confidence="low"))
    before = listing(place.root)
    result = cli("snapshot", "--to", str(target), "--home", str(place.home))
    assert assert_one_error_line(result) == f"error: {message(place, target)}"
    assert listing(place.root) == before


def test_a_snapshot_replaces_its_own_and_leaves_nothing_beside_it(place):
    with Store.open(place.home) as store:
        store.save_annotation(2, "ben", Annotation(person_present=False, confidence="low"))
    result = cli("snapshot", "--to", str(place.snap), "--home", str(place.home))
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in place.root.iterdir()) == ["home", "snap"], "no staging folder is left"
    marker = json.loads((place.snap / MARKER).read_text())
    assert sorted(marker["files"]) == sorted(set(listing(place.snap)) - {MARKER} - {
        name for name, kind in listing(place.snap).items() if kind == "folder"})
    restored = place.root / "restored"
    assert cli("restore", "--from", str(place.snap), "--home", str(restored)).returncode == 0
    assert table_rows(restored) == table_rows(place.home)


# -- snapshot: kill -9 and a full disk keep the old snapshot whole --------------------------------


MOMENTS = {
    "staging made": lambda staging: True,
    "tables written": lambda staging: (staging / "rater_profiles.parquet").exists(),
    "images being copied": lambda staging: (staging / "images").exists(),
    "manifest written": lambda staging: (staging / "snapshot.json").exists(),
}


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_snapshot_killed_at_any_moment_leaves_the_old_one_whole(place, moment):
    old = listing(place.snap)
    old_rows = table_rows(place.home)
    with Store.open(place.home) as store:  # the new snapshot would differ from the old one
        store.save_annotation(3, "ben", Annotation(person_present=False, confidence="low"))
    new_rows = table_rows(place.home)

    def at_moment() -> bool:
        staging = staging_of(place.snap, "snapshot")
        return bool(staging) and MOMENTS[moment](staging[0])

    killed = kill_when(["snapshot", "--to", str(place.snap), "--home", str(place.home)], at_moment)
    assert killed or moment != "staging made", "the snapshot ended before its staging folder was seen"
    restored = place.root / "restored"
    result = cli("restore", "--from", str(place.snap), "--home", str(restored))
    assert result.returncode == 0, result.stderr
    if listing(place.snap) == old:
        assert table_rows(restored) == old_rows
    else:  # the kill came after the swap: the new snapshot is whole
        assert table_rows(restored) == new_rows
    # the next snapshot tidies what the killed one left, and replaces the snapshot
    again = cli("snapshot", "--to", str(place.snap), "--home", str(place.home))
    assert again.returncode == 0, again.stderr
    assert sorted(path.name for path in place.root.iterdir()) == ["home", "restored", "snap"]


# Where each limit stops a snapshot: at its staging marker, at a table (runs.parquet is about 5 kB),
# at the first image (about 49 kB; every table is under 40 kB)
SNAPSHOT_LIMITS = {"staging marker": 10, "tables": 2_000, "images": 40_000}


@pytest.mark.parametrize("limit", SNAPSHOT_LIMITS.values(), ids=list(SNAPSHOT_LIMITS))
def test_a_snapshot_on_a_full_disk_leaves_the_old_one_whole(place, limit):
    old, home = listing(place.snap), listing(place.home)
    with Store.open(place.home) as store:
        store.save_annotation(3, "ben", Annotation(person_present=False, confidence="low"))
    home = listing(place.home)
    result = cli("snapshot", "--to", str(place.snap), "--home", str(place.home), limit=limit)
    assert_one_error_line(result)
    assert listing(place.snap) == old
    assert listing(place.home) == home
    assert sorted(path.name for path in place.root.iterdir()) == ["home", "snap"]


# -- restore: every table and image checked before anything is written --------------------------


def rewrite(place: Place, table: str, change: Callable[[pa.Table], pa.Table]) -> None:
    path = place.snap / f"{table}.parquet"
    pq.write_table(change(pq.read_table(path)), path)


def set_value(table: pa.Table, column: str, value, kind=None) -> pa.Table:
    """``table`` with ``value`` in the first row of ``column`` (as ``kind``, text: every value as text)."""
    values = table.column(column).to_pylist()
    if kind == pa.string():
        values = [str(other) for other in values]
    values[0] = value
    position = table.column_names.index(column)
    return table.set_column(position, column, pa.array(values, kind or table.schema.field(column).type))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header claiming ``width``×``height`` pixels, with no pixels: a decoder that tried to
    decode it would fail on the missing data, so only a size cap names its size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


XSS = "<img src=x onerror=alert(1)>"
PASSWD = "../../../etc/passwd"
PATH_RULE = "an image path must be a relative path inside the data home's images/ folder (no '..', not absolute)"


def _image_ids(place: Place) -> list[int]:
    return pq.read_table(place.snap / "images.parquet").column("image_id").to_pylist()


def _first_image(place: Place) -> str:
    return pq.read_table(place.snap / "images.parquet").column("path").to_pylist()[0]


RESTORE_REFUSALS = {
    "an extra column in studies": (
        lambda p: rewrite(p, "studies", lambda t: t.append_column("extra", pa.array(["x"] * t.num_rows))),
        lambda p: COLUMNS.format(name="studies.parquet", table="studies", problem="unknown: extra")),
    "a missing column in runs": (
        lambda p: rewrite(p, "runs", lambda t: t.drop_columns(["prompt"])),
        lambda p: COLUMNS.format(name="runs.parquet", table="runs", problem="missing: prompt")),
    "garbage annotations": (
        lambda p: (p.snap / "annotations.parquet").write_bytes(b"garbage" * 100),
        lambda p: NOT_PARQUET.format(name="annotations.parquet", reason="Parquet magic bytes not found in footer. "
                                     "Either the file is corrupted or this is not a parquet file")),
    "image_id 10**11": (
        lambda p: rewrite(p, "images", lambda t: set_value(t, "image_id", 10**11, pa.int64())),
        lambda p: VALUE.format(name="images.parquet", row=1, column="image_id", value=10**11,
                               problem=f"an id must be a whole number from 1 to {MAX_ID:,}")),
    "a negative seed": (
        lambda p: rewrite(p, "images", lambda t: set_value(t, "seed", -5)),
        lambda p: VALUE.format(name="images.parquet", row=1, column="seed", value=-5,
                               problem="a seed must be a whole number from 0 to 9007199254740991")),
    "a seed as text": (
        lambda p: rewrite(p, "images", lambda t: set_value(t, "seed", "x", pa.string())),
        lambda p: COLUMN_TYPE.format(name="images.parquet", column="seed", found="string", expected="BIGINT")),
    "a missing targets table": (
        lambda p: (p.snap / "targets.parquet").unlink(),
        lambda p: TABLE_MISSING.format(source=str(p.snap), name="targets.parquet")),
    "an image path out of the home": (
        lambda p: rewrite(p, "images", lambda t: set_value(t, "path", PASSWD)),
        lambda p: VALUE.format(name="images.parquet", row=1, column="path", value=PASSWD, problem=PATH_RULE)),
    "an absolute image path": (
        lambda p: rewrite(p, "images", lambda t: set_value(t, "path", "/etc/passwd")),
        lambda p: VALUE.format(name="images.parquet", row=1, column="path", value="/etc/passwd", problem=PATH_RULE)),
    "a 30000×30000 PNG": (
        lambda p: (p.snap / _first_image(p)).write_bytes(png_claiming(30000, 30000)),
        lambda p: IMAGE.format(path=_first_image(p), reason="over 40,000,000 pixels")),
    "an image that is a link": (
        lambda p: ((p.snap / _first_image(p)).unlink(), (p.snap / _first_image(p)).symlink_to("/etc/passwd")),
        lambda p: f"the snapshot at {str(p.snap)!r} cannot be restored: the image {_first_image(p)!r} in "
                  f"{p.snap} is a symbolic link; sdaudit reads only regular files inside the folder."),
    "a study named with HTML": (
        lambda p: rewrite(p, "studies", lambda t: set_value(t, "name", XSS)),
        lambda p: VALUE.format(name="studies.parquet", row=1, column="name", value=XSS,
                               problem=STUDY_NAME.format(value=XSS).rstrip("."))),
    "a blank rater": (
        lambda p: rewrite(p, "annotations", lambda t: set_value(t, "rater", "  ")),
        lambda p: VALUE.format(name="annotations.parquet", row=1, column="rater", value="  ",
                               problem="a restored answer needs a rater's name but got ''")),
    "an MST of 11": (
        lambda p: rewrite(p, "annotation_history", lambda t: set_value(t, "mst", 11)),
        lambda p: VALUE.format(name="annotation_history.parquet", row=1, column="mst", value=11,
                               problem="not one of 1, 2, 3, 4, 5, 6, 7, 8, 9, 10")),
    "an unknown run kind": (
        lambda p: rewrite(p, "runs", lambda t: set_value(t, "kind", "rocket")),
        lambda p: VALUE.format(name="runs.parquet", row=1, column="kind", value="rocket",
                               problem="not one of generated, imported, reference")),
    "a null image path": (
        lambda p: rewrite(p, "images", lambda t: set_value(t, "path", None)),
        lambda p: NULL.format(name="images.parquet", row=1, column="path")),
    "a null external": (
        lambda p: rewrite(p, "images", lambda t: set_value(t, "external", None)),
        lambda p: NULL.format(name="images.parquet", row=1, column="external")),
    "a null run kind": (
        lambda p: rewrite(p, "runs", lambda t: set_value(t, "kind", None)),
        lambda p: NULL.format(name="runs.parquet", row=1, column="kind")),
    "an answer for no image": (
        lambda p: rewrite(p, "annotations", lambda t: set_value(t, "image_id", 99_999)),
        lambda p: VALUE.format(name="annotations.parquet", row=1, column="image_id", value=99_999,
                               problem="no row of images.parquet has it")),
    "an image of no run": (
        lambda p: rewrite(p, "images", lambda t: set_value(t, "run_key", "nowhere")),
        lambda p: VALUE.format(name="images.parquet", row=1, column="run_key", value="nowhere",
                               problem="no row of runs.parquet has it")),
    "negative steps": (
        lambda p: rewrite(p, "runs", lambda t: set_value(t, "steps", -1)),
        lambda p: VALUE.format(name="runs.parquet", row=1, column="steps", value=-1, problem="must be a number of at least 0")),
    "infinite guidance": (
        lambda p: rewrite(p, "runs", lambda t: set_value(t, "guidance", float("inf"))),
        lambda p: VALUE.format(name="runs.parquet", row=1, column="guidance", value=float("inf"),
                               problem="guidance must be a finite number from 0 to 50")),
    "a width of 9000": (
        lambda p: rewrite(p, "runs", lambda t: set_value(t, "width", 9000)),
        lambda p: VALUE.format(name="runs.parquet", row=1, column="width", value=9000,
                               problem="a side must be a whole number of pixels from 0 to 8192")),
    "no raters per image": (
        lambda p: rewrite(p, "studies", lambda t: set_value(t, "raters_per_image", 0)),
        lambda p: VALUE.format(name="studies.parquet", row=1, column="raters_per_image", value=0,
                               problem="must be a number of at least 1")),
    "an unknown skin tone mode": (
        lambda p: rewrite(p, "studies", lambda t: set_value(t, "skin_tone_mode", "rgb")),
        lambda p: VALUE.format(name="studies.parquet", row=1, column="skin_tone_mode", value="rgb",
                               problem="not one of mst, binary")),
    "rater fields not JSON": (
        lambda p: rewrite(p, "studies", lambda t: set_value(t, "rater_fields", "{")),
        lambda p: VALUE.format(name="studies.parquet", row=1, column="rater_fields", value="{", problem="not valid JSON")),
    "negative seconds": (
        lambda p: rewrite(p, "images", lambda t: set_value(t, "seconds", -2.0)),
        lambda p: VALUE.format(name="images.parquet", row=1, column="seconds", value=-2.0,
                               problem="must be a number of at least 0")),
    "an image path with a terminal escape": (
        lambda p: rewrite(p, "images", lambda t: set_value(t, "path", "images/run-a/\x1b[2J.png")),
        lambda p: VALUE.format(name="images.parquet", row=1, column="path", value="images/run-a/\x1b[2J.png",
                               problem="an image path must not hold control characters")),
    "a duplicate image_id": (
        lambda p: rewrite(p, "images", lambda t: set_value(t, "image_id", _image_ids(p)[1])),
        lambda p: DUPLICATE.format(name="images.parquet", first=1, row=2, columns="image_id",
                                   value=repr(_image_ids(p)[1]))),
}


# Each refusal is checked against one home state, the two taking turns (a refusal comes before
# anything looks at the home; each case once is half the suite's slowest file, both states still tried)
@pytest.mark.parametrize(("case", "home_state"),
                         [(case, ("missing", "empty")[number % 2]) for number, case in enumerate(RESTORE_REFUSALS)],
                         ids=list(RESTORE_REFUSALS))
def test_a_hostile_snapshot_is_refused_before_anything_is_written(place, case, home_state):
    spoil, message = RESTORE_REFUSALS[case]
    spoil(place)
    home = place.root / "new-home"
    if home_state == "empty":
        home.mkdir()
    before = listing(place.root)
    result = cli("restore", "--from", str(place.snap), "--home", str(home))
    assert assert_one_error_line(result) == f"error: {message(place)}"
    assert listing(place.root) == before, "a refused restore wrote nothing, not even an empty store"


@pytest.mark.parametrize("home_state", ["missing", "empty", "an empty store"])
def test_a_restore_into_a_new_or_empty_home_is_whole(place, home_state):
    home = place.root / "new-home"
    if home_state == "empty":
        home.mkdir()
    if home_state == "an empty store":
        Store.open(home).close()
    result = cli("restore", "--from", str(place.snap), "--home", str(home))
    assert result.returncode == 0, result.stderr
    assert table_rows(home) == table_rows(place.home)
    assert {path: kind for path, kind in listing(home).items() if path.startswith("images")} == \
        {path: kind for path, kind in listing(place.home).items() if path.startswith("images")}
    assert sorted(path.name for path in place.root.iterdir()) == ["home", "new-home", "snap"]


def test_a_restore_into_a_home_with_data_or_files_is_refused(place):
    before = listing(place.root)
    result = cli("restore", "--from", str(place.snap), "--home", str(place.home))
    assert assert_one_error_line(result) == f"error: {HOLDS_DATA.format(path=place.home / 'sdaudit.duckdb')}"
    mine = place.root / "mine"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"my holiday")
    before = listing(place.root)
    result = cli("restore", "--from", str(place.snap), "--home", str(mine))
    assert assert_one_error_line(result) == f"error: {HOME_NOT_EMPTY.format(path=mine, found='holiday.jpg')}"
    assert listing(place.root) == before


# -- restore: kill -9 and a full disk never leave a store that fails to open ---------------------


@pytest.mark.parametrize("moment", ["staging made", "store written", "images being copied"])
def test_a_restore_killed_at_any_moment_leaves_no_home(place, moment):
    home = place.root / "new-home"
    moments = {"staging made": lambda staging: True,
               "store written": lambda staging: (staging / "sdaudit.duckdb").exists(),
               "images being copied": lambda staging: (staging / "images").exists()}

    def at_moment() -> bool:
        staging = staging_of(home, "restore")
        return bool(staging) and moments[moment](staging[0])

    killed = kill_when(["restore", "--from", str(place.snap), "--home", str(home)], at_moment)
    assert killed or moment != "staging made", "the restore ended before its staging folder was seen"
    if home.exists():  # the kill came after the rename: the home is whole
        assert table_rows(home) == table_rows(place.home)
    else:  # the next restore tidies what the killed one left
        result = cli("restore", "--from", str(place.snap), "--home", str(home))
        assert result.returncode == 0, result.stderr
        assert table_rows(home) == table_rows(place.home)
        assert sorted(path.name for path in place.root.iterdir()) == ["home", "new-home", "snap"]


# Where each limit stops a restore: at its staging marker, at the first image (about 49 kB), at the
# store (DuckDB grows by 256 kB blocks; the images come first)
RESTORE_LIMITS = {"staging marker": 10, "images": 20_000, "store": 100_000}


@pytest.mark.parametrize("limit", RESTORE_LIMITS.values(), ids=list(RESTORE_LIMITS))
@pytest.mark.parametrize("home_state", ["missing", "empty"])
def test_a_restore_on_a_full_disk_leaves_the_home_as_it_was(place, limit, home_state):
    home = place.root / "new-home"
    if home_state == "empty":
        home.mkdir()
    before = listing(place.root)
    result = cli("restore", "--from", str(place.snap), "--home", str(home), limit=limit)
    assert_one_error_line(result)
    assert listing(place.root) == before


# -- Ctrl-C: a snapshot or restore interrupted says what it left, and leaves nothing half-done ---


def interrupted_when(args: list[str], moment: Callable[[], bool]) -> subprocess.CompletedProcess:
    """`python -m sdaudit ARGS`, sent SIGINT (Ctrl-C) as soon as ``moment()`` holds.

    The command starts with SIGINT's default action: a test run started in the background by a
    shell (`bash scripts/test.sh &`) ignores SIGINT, every child inherits that, and a Python started
    so never turns Ctrl-C into KeyboardInterrupt (both tests failed so, the command finishing)."""
    process = subprocess.Popen([sys.executable, "-m", "sdaudit", *args], cwd=ROOT, env=_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = Deadline()
    while process.poll() is None and not deadline.expired() and not moment():
        time.sleep(0.002)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=600)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_a_snapshot_interrupted_says_so_and_keeps_the_old_one(place):
    old = listing(place.snap)
    with Store.open(place.home) as store:
        store.save_annotation(3, "ben", Annotation(person_present=False, confidence="low"))
    result = interrupted_when(["snapshot", "--to", str(place.snap), "--home", str(place.home)],
                              lambda: any((staging / "images").exists() for staging in staging_of(place.snap, "snapshot")))
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip() == ("interrupted: the snapshot was not written; the target holds its old snapshot whole "
                                     "(or the new one whole, if it had just been put in place); run the same command "
                                     "again to snapshot.")
    assert listing(place.snap) == old
    assert sorted(path.name for path in place.root.iterdir()) == ["home", "snap"]


def test_a_restore_interrupted_says_so_and_leaves_no_home(place):
    home = place.root / "new-home"
    result = interrupted_when(["restore", "--from", str(place.snap), "--home", str(home)],
                              lambda: any((staging / "images").exists() for staging in staging_of(home, "restore")))
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip() == ("interrupted: nothing was restored; the home is as it was (or restored whole, if "
                                     "it had just been put in place); run the same command again to restore.")
    assert sorted(path.name for path in place.root.iterdir()) == ["home", "snap"]
