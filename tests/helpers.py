"""Plain helpers the tests share: paths, the origin study's data, small records, the CLI, the app (a page
in AppTest, a server for the browser).

Fixtures live in conftest.py; everything here is an ordinary function, class or constant, imported as
``from helpers import ...``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from sdaudit.store import ImageRecord, RunRecord

ROOT = Path(__file__).resolve().parents[1]
ORIGIN_SHEET = ROOT / "examples" / "origin_sheet.csv"
APP = str(ROOT / "app" / "router.py")  # the app's entry script, as AppTest runs it
PAGES = ROOT / "pages"
ADMIN_PASSWORD = "s3cret"  # the ``locked`` fixture's admin password

# One generous limit for all the waiting a test does. A 2-core machine with other work on it is
# many times slower than a quiet one; a wait on a state ends as soon as the state is there, so a
# generous limit costs nothing when things work.
WAIT_LIMIT_S = 600.0
# Now and then (twice in about six runs of the closing-tab test) a Streamlit server with a tab
# still open does not exit on SIGTERM; cause not found. Past this grace it is killed.
STOP_GRACE_S = 30.0


class Deadline:
    """The end of one test's time: every wait in the test takes what is left of it."""

    def __init__(self, seconds: float = WAIT_LIMIT_S):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left (at least a millisecond, so a last look is always taken)."""
        return max(0.001, self.end - time.monotonic())

    def left_ms(self) -> float:
        return 1000 * self.left()

    def expired(self) -> bool:
        return time.monotonic() >= self.end


def wait_until(condition: Callable[[], object], what: str, *, deadline: Deadline | None = None,
               poll: float = 0.05):
    """Poll ``condition`` until it gives a true value (returned), or fail saying ``what`` never came."""
    deadline = deadline or Deadline()
    while True:
        value = condition()
        if value:
            return value
        if deadline.expired():
            raise AssertionError(f"waited {deadline.seconds:.0f} s for {what}; it never came")
        time.sleep(poll)


def open_page(page: str | None = None, *, rater: str | None = None, query: dict[str, str] | None = None):
    """The app in an ``AppTest``, opened at its landing page (Home) with ``query`` in its address,
    then switched to ``page`` (a page file's stem; None or "home": stay on Home). With ``rater``,
    the name is typed into the sidebar's Rater box where the page has one. Fails on any exception."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=WAIT_LIMIT_S)
    for name, value in (query or {}).items():
        at.query_params[name] = value
    at.run()
    if page not in (None, "home"):
        at.switch_page(str(PAGES / f"{page}.py")).run()
    if rater:
        box = next((box for box in at.text_input if box.label == "Rater"), None)
        if box is not None:
            box.input(rater).run()
    assert not at.exception, at.exception
    return at


def make_run(run_key="run-a", study="default", prompt="a doctor sitting behind a desk") -> RunRecord:
    return RunRecord(
        run_key=run_key, study=study, model="demo", model_revision="local-0", pipeline_class="StableDiffusionPipeline",
        prompt=prompt, negative_prompt="", scheduler="pndm", steps=5, guidance=7.5, width=64, height=64,
        dtype="float32", device="cpu", batch_size=4, safety_checker=False, versions={"torch": "x"},
    )


def make_images(run_key="run-a", seeds=range(4)) -> list[ImageRecord]:
    return [ImageRecord(run_key, seed, f"images/{run_key}/{seed}.png", f"{seed:064x}", None, 0.5, 4, "cpu")
            for seed in seeds]


def add_annotated_run(store, run_key: str, study: str, groups: dict, *, rater: str = "r1") -> None:
    """A run of ``study`` whose images carry ``sheet(groups)``'s labels, one image per row."""
    images = sum(groups.values())
    store.add_run(make_run(run_key=run_key, study=study, prompt=f"prompt {run_key}"))
    store.add_images(make_images(run_key=run_key, seeds=range(images)))
    rows = sheet(groups, rater=rater)
    rows["image_id"] = store.images(run_key=run_key)["image_id"].to_numpy()
    rows["confidence"] = "high"
    store.save_annotations(rows)


TWO_RUNS = {"run-a": {("female", 2): 30, ("male", 2): 70}, "run-b": {("female", 2): 50, ("male", 2): 50}}


def add_study_as_an_older_store_did(store, name: str) -> None:
    """A study whose name today's rule refuses, as a store written before the rule may hold one."""
    store.db.write(lambda cursor: cursor.execute("INSERT INTO studies (name) VALUES (?)", [name]))


def sheet(groups: dict[tuple[str, int | str | None], int], *, rater: str = "r1", start: int = 0) -> pd.DataFrame:
    """Annotation rows: {(gender, mst or skin_binary or None): how many images}, one rater."""
    rows = []
    image_id = start
    for (gender, skin), count in groups.items():
        for _ in range(count):
            rows.append({
                "image_id": image_id, "rater": rater, "person_present": True, "gender": gender,
                "mst": skin if isinstance(skin, int) else None,
                "skin_binary": skin if isinstance(skin, str) else None,
            })
            image_id += 1
    return pd.DataFrame(rows, columns=["image_id", "rater", "person_present", "gender", "mst", "skin_binary"])


def three_raters(images: int = 60, seed: int = 4) -> pd.DataFrame:
    """Three raters over the same images; each changes a few answers; one image one rater saw no person in."""
    rng = np.random.default_rng(seed)
    gender = rng.choice(["female", "male"], images)
    mst = rng.integers(1, 9, images)  # MST 9 and 10 never used: the ordinal domain must still be 1–10
    frames = []
    for rater in ("ana", "ben", "cai"):
        rows = pd.DataFrame({"image_id": np.arange(images), "rater": rater, "person_present": True,
                             "gender": np.where(rng.random(images) < 0.15, "unclear", gender),
                             "mst": np.clip(mst + rng.integers(-1, 2, images), 1, 8).astype(float),
                             "skin_binary": None})
        frames.append(rows)
    frames[0].loc[0, ["person_present", "gender", "mst"]] = [False, None, np.nan]
    return pd.concat(frames, ignore_index=True)


# The origin study: 221 images with a person; 36% female, 6% darker (MST >= 6), 4% darker female,
# 3% darker male. These counts are the ones consistent with all four rounded figures at once:
# female 80/221 = 36.2%, darker 14/221 = 6.3%, darker female 8/221 = 3.6%, darker male 6/221 = 2.7%.
ORIGIN = {("female", 2): 72, ("female", 8): 8, ("male", 3): 135, ("male", 7): 6}


def app_command(port: int) -> list[str]:
    """The Dockerfile's own command, on ``port``, with this interpreter's streamlit."""
    command = dockerfile_command()
    command[command.index("--server.port") + 1] = str(port)
    return [sys.executable, "-m", *command]


def dockerfile_command() -> list[str]:
    """The command the Dockerfile runs (its last CMD, exec form)."""
    text = (ROOT / "Dockerfile").read_text()
    line = [line for line in text.splitlines() if line.startswith("CMD ")][-1]
    return json.loads(line[4:])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class App:
    """`streamlit run streamlit_app.py` (the Dockerfile's command) on a free port over ``home``, for
    browser tests. Its waits take what is left of ``deadline``; its output goes to ``log`` (beside
    the home), shown if it dies before answering."""

    def __init__(self, home: Path, deadline: Deadline, *, port: int | None = None):
        self.home = home
        self.port = port  # None: a free one at launch (sign-in must know its address before)
        self.deadline = deadline
        self.log = home.parent / f"{home.name}-app.log"
        self.env = {**os.environ, "SDAUDIT_HOME": str(home), "PYTHONPATH": str(ROOT)}
        self.server: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> str:
        """Launch and wait until it answers its health check."""
        self.launch()
        wait_until(self.healthy, "the app to answer its health check", deadline=self.deadline, poll=0.2)
        return self.url

    def launch(self) -> str:
        """Launch without waiting (several servers can start together); no script runs until a
        browser visits, so the server stays fresh."""
        port = self.port or free_port()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:  # a file, not a pipe nobody reads, which fills and stalls the app
            self.server = subprocess.Popen(app_command(port), cwd=ROOT, env=self.env, stdout=log,
                                           stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=self.deadline.left()) as answer:
                return answer.read() == b"ok"
        except OSError:
            assert self.server.poll() is None, self.log.read_text(errors="replace")
            return False

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM, waiting up to ``STOP_GRACE_S``; SIGKILL with ``kill``, or when that runs out (a
        teardown after a test that used up its time must still end the server). Every answer the app
        acknowledged is committed, so a store read after a SIGKILL is complete."""
        if not self.server or self.server.poll() is not None:
            return
        if not kill:
            self.server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.server.wait(timeout=min(STOP_GRACE_S, self.deadline.left()))
        if self.server.poll() is None:
            self.server.kill()
            self.server.wait()


def run_cli(*args: str, cwd: Path | None = None, check: bool = False, env: dict | None = None):
    """Run `python -m sdaudit ARGS` in a subprocess, as a user would, and return the result."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    full_env = {**os.environ, "PYTHONPATH": path, **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "sdaudit", *args],
        cwd=cwd or ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"sdaudit {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def assert_one_error_line(result, *, contains: str = "") -> str:
    """A CLI result that failed as bad input must: exit 2, one `error:` line, no traceback."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    assert contains in lines[0]
    return lines[0]


def png(colour: int = 0) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (colour, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def run_folder(folder: Path, files: dict[int, bytes | Path | str], *, study: str = "default") -> Path:
    """A run folder of run ``R``: seed -> PNG bytes, a path its image links to (with that file's
    sha256 in the manifest, as an attacker would write it), or "fifo" for a named pipe."""
    from sdaudit.files.runfolder import RunFolder

    sink = RunFolder(folder)
    sink.begin(make_run("R", study=study))
    records = []
    for seed, content in files.items():
        path = folder / "images" / "R" / f"{seed}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == "fifo":
            os.mkfifo(path)
            content = b""
        elif isinstance(content, Path):
            path.symlink_to(content)
            content = content.read_bytes()
        else:
            path.write_bytes(content)
        records.append(ImageRecord("R", seed, f"images/R/{seed}.png", hashlib.sha256(content).hexdigest(),
                                   None, 0.1, 1, "cpu"))
    sink.add_images(records)
    sink.finalize()
    return folder


def tiny_spec(model, **changes):
    """A small spec for the tiny offline pipeline: seeds 0–7 in batches of 4, 5 steps, 64×64, on the CPU."""
    from sdaudit.generation.spec import GenerationSpec

    settings = dict(model=str(model), prompt="a doctor sitting behind a desk", first_seed=0, last_seed=7,
                    batch_size=4, steps=5, height=64, width=64, device="cpu")
    return GenerationSpec(**{**settings, **changes})


def pixels(path) -> np.ndarray:
    """An image file's RGB pixels, signed (differences of two images do not wrap)."""
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
