"""kill -9 and a full disk against every command that writes (issue 21): afterwards the data home,
and the folder a command writes into, hold exactly what they held before the command or exactly
what a finished command leaves, never something between.

A state is every table's rows (timestamps and timings left out: they differ between two runs of
one command) and every file under the home with its sha256 (the store file itself left out), read
after a writable open of the store: that open is where sdaudit's documented clean-up runs (files
of a write killed before its commit are removed, ``safe.recover_pending``). Files of an output
folder (``export``/``report --out``, ``generate --out``) are compared by name.

Each command runs in a subprocess (``python -m sdaudit``), as a user runs it. kill -9 lands at
moments spread over the command's measured duration, and at the moments its signs appear: its file
journal (files on their way, nothing committed), DuckDB's log (the commit), its staging folder or
partial file (an export or report on its way); a full disk is
``RLIMIT_FSIZE`` (SIGXFSZ ignored, so a write past the limit fails with EFBIG) at several sizes
chosen from what the command writes. ``benchmarks/fault_matrix.py`` prints the whole matrix with
ten moments a command; these tests run fewer moments, except the ``slow`` ones.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import ROOT, assert_one_error_line, make_images, make_run, png, run_folder

from sdaudit.cli.analysis import EXPORT_SCRATCH
from sdaudit.files.safe import PENDING
from sdaudit.store import TABLES, Store

STORE_FILES = {"sdaudit.duckdb", "sdaudit.duckdb.wal"}
TARGETS_CSV = """slot,prompt,family,group,target,source
,prompt run-a,gender,female,0.46,ONS Labour Force Survey 2023
,prompt run-a,gender,male,0.54,ONS Labour Force Survey 2023
"""
DISK_FULL = "the disk is full"


# -- the state of a home ----------------------------------------------------------------------------


def _files(folder: Path, *, hashes: bool) -> tuple:
    if not folder.exists():
        return ()
    found = []
    for path in sorted(folder.rglob("*")):
        relpath = path.relative_to(folder).as_posix()
        if relpath.startswith(EXPORT_SCRATCH):  # a killed export's scratch folder: the next export removes it
            continue
        if path.is_dir() and not path.is_symlink():
            found.append((relpath + "/", "") if hashes else relpath + "/")  # a folder made and left empty counts
            continue
        if relpath in STORE_FILES:
            continue
        found.append((relpath, hashlib.sha256(path.read_bytes()).hexdigest()) if hashes else relpath)
    return tuple(found)


def home_state(home: Path, out: Path | None = None, *, out_hashes: bool = True) -> tuple:
    """Every table's rows and every file of ``home`` with its sha256 (and ``out``'s files), read
    after a writable open of the store (which runs the documented clean-up)."""
    tables = {}
    if (home / "sdaudit.duckdb").exists():
        with Store.open(home) as store:
            for table in TABLES:
                frame = store.db.read_frame(f"SELECT * FROM {table}")
                timed = [c for c in frame.columns if "datetime" in str(frame[c].dtype) or c == "seconds"]
                frame = frame.drop(columns=timed)
                tables[table] = sorted(map(tuple, frame.astype(str).to_numpy().tolist()))
    return tables, _files(home, hashes=True), _files(out, hashes=out_hashes) if out is not None else ()


# -- the commands -----------------------------------------------------------------------------------


@dataclass
class Case:
    """One writing command: how to build its inputs and the home it starts from, and its arguments."""

    name: str
    prepare: Callable[[Path], None]  # builds inputs and ``template/home`` under the folder
    argv: Callable[[Path, Path, Path], list[str]]  # (inputs folder, home, out) -> arguments
    out: bool = False  # writes into an output folder
    signs: tuple[str, ...] = ()  # paths (under the trial folder) whose appearance is a moment to kill at
    limits: tuple[int, ...] = ()  # RLIMIT_FSIZE values for the disk-full cases
    resumable: Callable[[Path], bool] | None = None  # a state between before and after that is by design
    out_hashes: bool = True  # compare the output folder's files by content (False: by name)
    several_files: bool = False  # writes several files into the output folder: each whole, not all at once


def _annotated_home(home: Path) -> None:
    with Store.open(home) as store:
        store.add_run(make_run("run-a", study="s"))
        store.add_images(make_images("run-a", seeds=range(40)))
        import pandas as pd

        rows = pd.DataFrame({"image_id": store.images(run_key="run-a")["image_id"], "rater": "r1",
                             "person_present": True, "gender": ["female", "male"] * 20, "mst": None,
                             "skin_binary": ["lighter"] * 40, "confidence": "high"})
        store.save_annotations(rows)


def _origin_sheet(path: Path, rows: int) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "male_presenting", "female_presenting", "monk_binary", "confidence"])
        for number in range(rows):
            writer.writerow([f"img_{number:06d}.png", number % 2, (number + 1) % 2, int(number % 3 == 0), "high"])


def _prepare_import(rows: int) -> Callable[[Path], None]:
    def prepare(folder: Path) -> None:
        _origin_sheet(folder / "sheet.csv", rows)
        _annotated_home(folder / "template" / "home")
    return prepare


def _prepare_ingest(folder: Path) -> None:
    run_folder(folder / "runs", {seed: png(seed) for seed in range(120)}, study="s")
    _annotated_home(folder / "template" / "home")


def _prepare_reference(folder: Path) -> None:
    (folder / "photos").mkdir()
    for number in range(120):
        (folder / "photos" / f"p{number:03d}.png").write_bytes(png(number))
    _annotated_home(folder / "template" / "home")


def _prepare_with_targets(folder: Path) -> None:
    (folder / "targets.csv").write_text(TARGETS_CSV)
    _annotated_home(folder / "template" / "home")


def _prepare_generate(folder: Path) -> None:
    subprocess.run([sys.executable, "-m", "sdaudit", "demo-model", str(folder / "model")], check=True,
                   capture_output=True, env=_env())
    _annotated_home(folder / "template" / "home")


def _run_folder_is_resumable(out: Path) -> bool:
    """A run folder that a resume finishes: every image it lists is whole (its sha256 matches); a
    file it does not list (a PNG whose row never landed, a partial file) is ignored by ``ingest``
    and written again by the resume."""
    from sdaudit.files.runfolder import read_run_folder

    contents = read_run_folder(out / "run", allow_empty=True)
    return all((out / "run" / image.path).is_file()
               and hashlib.sha256((out / "run" / image.path).read_bytes()).hexdigest() == image.sha256
               for image in contents.images.values())


def _generate_argv(into_out: bool) -> Callable[[Path, Path, Path], list[str]]:
    def argv(inputs: Path, home: Path, out: Path) -> list[str]:
        where = ["--out", str(out / "run")] if into_out else ["--home", str(home)]
        return ["generate", "--model", str(inputs / "model"), "--seeds", "0-3", "--batch-size", "4", "--steps", "2",
                "--height", "64", "--width", "64",
                "--study", "s", *where]
    return argv


WAL = "home/sdaudit.duckdb.wal"  # DuckDB's log appears with a transaction's commit
JOURNAL_AND_WAL = (f"home/{PENDING}", WAL)  # files on their way, nothing committed; then the commit
CASES = {
    "import-annotations": Case(
        "import-annotations", _prepare_import(5000),
        lambda inputs, home, out: ["import-annotations", str(inputs / "sheet.csv"), "--study", "s", "--rater", "r9",
                                   "--home", str(home)],
        signs=(WAL,), limits=(4096, 600_000)),
    "ingest": Case(
        "ingest", _prepare_ingest, lambda inputs, home, out: ["ingest", str(inputs / "runs"), "--home", str(home)],
        signs=JOURNAL_AND_WAL, limits=(300, 4096, 600_000)),
    "ingest-images": Case(
        "ingest-images", _prepare_reference,
        lambda inputs, home, out: ["ingest-images", str(inputs / "photos"), "--name", "photos", "--study", "s",
                                   "--home", str(home)],
        signs=JOURNAL_AND_WAL, limits=(300, 4096, 600_000)),
    "import-targets": Case(
        "import-targets", _prepare_with_targets,
        lambda inputs, home, out: ["import-targets", str(inputs / "targets.csv"), "--study", "s", "--home", str(home)],
        signs=(WAL,), limits=(100, 1000, 600_000)),
    "export": Case(
        "export", _prepare_with_targets,
        lambda inputs, home, out: ["export", "--study", "s", "--out", str(out), "--home", str(home)],
        out=True, several_files=True, signs=("out/s-annotations.csv",), limits=(100, 6000, 600_000)),
    "report": Case(
        "report", _prepare_with_targets,
        lambda inputs, home, out: ["report", "--study", "s", "--out", str(out / "report.html"), "--home", str(home)],
        out=True, signs=("out/.report.html.partial",), limits=(100, 20_000, 600_000), out_hashes=False),
    # generate's cases leave out the limit above all it writes: each run loads torch (seconds), and the
    # bench's own unlimited run already shows the command finishing
    "generate": Case("generate", _prepare_generate, _generate_argv(False), signs=(*JOURNAL_AND_WAL, "home/images"),
                     limits=(100, 4096)),
    "generate --out": Case("generate --out", _prepare_generate, _generate_argv(True), out=True,
                           signs=("out/run/parts", "out/run/images"), limits=(100, 4096),
                           resumable=_run_folder_is_resumable, out_hashes=False),
}


def _env() -> dict:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


# -- running a case ---------------------------------------------------------------------------------


class Bench:
    """One case's inputs, its template home, and its before and after states."""

    def __init__(self, case: Case, folder: Path):
        self.case, self.folder = case, folder
        folder.mkdir(parents=True, exist_ok=True)
        case.prepare(folder)
        self.runs = 0
        home, out = self.fresh()
        self.before = self.state(home, out)
        home, out = self.fresh()
        started = time.perf_counter()
        result = self.run(home, out)
        self.seconds = time.perf_counter() - started
        assert result.returncode == 0, result.stderr
        self.after = self.state(home, out)
        assert self.after != self.before, f"{case.name} changed nothing"

    def fresh(self) -> tuple[Path, Path]:
        self.runs += 1
        trial = self.folder / f"trial-{self.runs}"
        shutil.copytree(self.folder / "template", trial)
        return trial / "home", trial / "out"

    def start(self, home: Path, out: Path, *, limit: int | None = None) -> subprocess.Popen:
        def fill_the_disk_at() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        return subprocess.Popen([sys.executable, "-m", "sdaudit", *self.case.argv(self.folder, home, out)],
                                env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=fill_the_disk_at if limit is not None else None)

    def run(self, home: Path, out: Path, *, limit: int | None = None) -> subprocess.CompletedProcess:
        process = self.start(home, out, limit=limit)
        stdout, stderr = process.communicate(timeout=300)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def state(self, home: Path, out: Path) -> tuple:
        return home_state(home, out, out_hashes=self.case.out_hashes)

    def outcome(self, home: Path, out: Path) -> str:
        """``before``, ``after``, or between: ``resumable`` (a run folder a resume finishes),
        ``mixed`` (some of an export's files new, each whole; the renames of one export are not one
        step), else ``HALF``."""
        state = self.state(home, out)
        if state in (self.before, self.after):
            return "before" if state == self.before else "after"
        if state[:2] == self.before[:2] and self.case.resumable is not None and self.case.resumable(out):
            return "resumable"
        if (state[:2] == self.before[:2] and self.case.several_files
                and set(state[2]) <= set(self.before[2]) | set(self.after[2])):
            return "mixed"
        return "HALF"

    def kill_after(self, delay: float) -> str:
        home, out = self.fresh()
        process = self.start(home, out)
        time.sleep(delay)
        process.kill()
        process.communicate()
        return self.outcome(home, out)

    def kill_at(self, sign: str) -> str:
        """kill -9 as soon as ``sign`` (a path under the trial folder) appears."""
        home, out = self.fresh()
        process = self.start(home, out)
        deadline = time.monotonic() + 120
        while process.poll() is None and not (home.parent / sign).exists() and time.monotonic() < deadline:
            time.sleep(0.002)
        process.kill()
        process.communicate()
        return self.outcome(home, out)

    def moments(self, count: int, *, from_zero: bool = True) -> list[tuple[str, str]]:
        """kill -9 at ``count`` delays spread over the command's duration (from 0, or from its first
        ``count + 1``-th: a kill at 0 lands before Python has started), then at each of the case's
        signs: (moment, outcome) pairs."""
        found = []
        for step in range(count):
            delay = self.seconds * (step / count if from_zero else (step + 1) / (count + 1))
            found.append((f"{delay:.2f} s", self.kill_after(delay)))
        for sign in self.case.signs:
            found.append((sign.split("/", 1)[1], self.kill_at(sign)))
        return found

    def disk_full(self, limit: int) -> tuple[str, subprocess.CompletedProcess]:
        home, out = self.fresh()
        result = self.run(home, out, limit=limit)
        return self.outcome(home, out), result


def check_disk_full(bench: Bench, limit: int) -> str:
    """A full disk: the command ends with one `error:` line naming it and changes nothing, or (a
    limit above all it writes) finishes. Returns the outcome."""
    outcome, result = bench.disk_full(limit)
    if result.returncode == 0:
        assert outcome == "after", (limit, result.stderr)
    else:
        # generate's progress bar (stderr, redrawn with \r) is not an error line
        result.stderr = "\n".join(line for line in result.stderr.splitlines() if not line.startswith("generating"))
        assert_one_error_line(result, contains=DISK_FULL)
        # a run folder keeps what it was given (its run's line) and is finished by running the command again
        assert outcome in ("before", "resumable" if bench.case.resumable else "before"), (limit, result.stderr)
    return outcome


@pytest.fixture(scope="module")
def benches(tmp_path_factory):
    made: dict[str, Bench] = {}

    def bench(name: str) -> Bench:
        if name not in made:
            made[name] = Bench(CASES[name], tmp_path_factory.mktemp(name.replace(" ", "-")))
        return made[name]

    return bench


# -- the tests --------------------------------------------------------------------------------------


# generation loads torch and diffusers in every run (seconds each): its cases are the same tests run
# from tests/test_faults_generate.py, so that the two files run side by side on two workers
NAMES = [name for name in CASES if not name.startswith("generate")]


def pytest_generate_tests(metafunc):
    """Each case of this module's NAMES (tests/test_faults_generate.py gives its own)."""
    if "name" in metafunc.fixturenames:
        metafunc.parametrize("name", NAMES)


def test_kill_9_leaves_the_home_as_before_or_as_after(benches, name):
    bench = benches(name)
    outcomes = bench.moments(2, from_zero=False)
    assert [moment for moment, outcome in outcomes if outcome == "HALF"] == [], outcomes


def test_a_full_disk_gives_one_error_line_and_changes_nothing(benches, name):
    bench = benches(name)
    outcomes = [check_disk_full(bench, limit) for limit in bench.case.limits]
    assert {"before", "resumable"} & set(outcomes), "no limit was small enough to fill the disk"


@pytest.mark.slow
def test_kill_9_at_ten_moments_of_a_60000_row_import(tmp_path):
    """The issue's measurement: a 60,000-row origin sheet, killed at ten moments of its import."""
    bench = Bench(Case("import-annotations", _prepare_import(60_000), CASES["import-annotations"].argv), tmp_path)
    outcomes = bench.moments(10)
    assert [moment for moment, outcome in outcomes if outcome == "HALF"] == [], outcomes
    assert {"before"} <= {outcome for _, outcome in outcomes}


CRASH_AFTER_WRITING = """
import os, sys
from sdaudit.files.safe import PendingFiles
from sdaudit.store import Store
home = sys.argv[1]
with Store.open(home) as store:
    pending = PendingFiles(home, ["images/K/0.png", "images/N/0.png", "images/N/1.png"]).__enter__()
    for relpath in pending.relpaths:
        pending.write(relpath, b"png")
    store.add_runs_and_images([make_run("K")], make_images("K", seeds=[0]))  # one row committed
    os._exit(9)  # as kill -9: no clean-up runs
"""


def test_the_next_open_removes_the_files_a_killed_write_left_without_rows(tmp_path):
    """``safe.PendingFiles``' journal outlives a killed process; the next writable open of the
    store removes the files no committed row points at, the folders made for them, the journal."""
    home = tmp_path / "home"
    Store.open(home).close()
    code = "from helpers import make_images, make_run\n" + CRASH_AFTER_WRITING
    env = {**_env(), "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    crashed = subprocess.run([sys.executable, "-c", code, str(home)], env=env, capture_output=True, text=True)
    assert crashed.returncode == 9, crashed.stderr
    assert (home / PENDING).is_dir() and (home / "images" / "N" / "1.png").is_file()
    with Store(home / "sdaudit.duckdb", read_only=True) as store:  # a read-only open changes nothing
        assert store.count("images") == 1
    assert (home / PENDING).is_dir()
    Store.open(home).close()
    assert _files(home, hashes=False) == ("images/", "images/K/", "images/K/0.png")
    assert not (home / "images" / "N").exists()


def test_a_journal_never_removes_a_file_outside_the_homes_images(tmp_path):
    """A hand-made (or hostile) journal names the store itself, a file beside the home, '..' ways out
    and a folder outside images/: recovery removes only what lies under images/, no link followed."""
    home = tmp_path / "home"
    Store.open(home).close()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "0.png").write_bytes(b"keep me too")
    (home / "images").mkdir()
    (home / "images" / "L").symlink_to(tmp_path / "elsewhere")
    (home / "notes").mkdir()
    (home / "images" / "mine.png").write_bytes(b"left by a killed write")
    files = ["sdaudit.duckdb", "../outside.txt", "images/../sdaudit.duckdb", str(outside), "images/L/0.png",
             "images/mine.png"]
    (home / PENDING).mkdir()
    (home / PENDING / "1-hostile.json").write_text(json.dumps({"files": files, "folders": ["notes", "images/L", ".."]}))
    with Store.open(home) as store:
        store.add_run(make_run("K"))
    assert (home / "sdaudit.duckdb").is_file() and outside.read_text() == "keep me"
    assert (tmp_path / "elsewhere" / "0.png").read_bytes() == b"keep me too" and (home / "images" / "L").is_symlink()
    assert (home / "notes").is_dir()
    assert not (home / "images" / "mine.png").exists()  # what a journal may name is still undone
    with Store(home / "sdaudit.duckdb", read_only=True) as store:
        assert store.run("K") is not None


@pytest.mark.parametrize("text", ["{bad", '{"nofiles": 1}', "[1]", '{"files": [1], "folders": []}', "\xff"])
def test_a_damaged_journal_is_set_aside_and_writes_go_on(tmp_path, text):
    home = tmp_path / "home"
    Store.open(home).close()
    (home / PENDING).mkdir()
    (home / PENDING / "1-damaged.json").write_bytes(text.encode("latin-1"))
    for number in range(2):  # and the next open as well
        with Store.open(home) as store:
            store.add_run(make_run(f"K{number}"))
    assert (home / PENDING / "1-damaged.json.damaged").read_bytes() == text.encode("latin-1")
    with Store(home / "sdaudit.duckdb", read_only=True) as store:
        assert store.run("K0") is not None and store.run("K1") is not None
