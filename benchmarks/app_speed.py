"""The app's speed as a user feels it: cold start to the Annotate page, and a click on a 48-image page.

    python benchmarks/app_speed.py            (BENCH_PAGE=12 for a 12-image page)

Needs Playwright and Debian's chromium (requirements-dev.txt, scripts/test.sh). It makes 48 demo
images in a temporary data home with one generation job, as the app makes them, then:

1. Cold start, three launches each way: from launching `streamlit run streamlit_app.py` to the
   Annotate page rendered in the browser, (a) opening the app and clicking Annotate, (b) opening
   the page's own address, /annotate; and whether the server process has loaded torch or pandas
   by then (its memory map is read from /proc). The baseline, launched in turn with them: a bare
   one-line Streamlit page with the same settings, opened the same way, which is the floor
   Streamlit and the browser set.
2. Click latency on a 48-image page, three ways: (a) from a radio click to the end of the card's
   fragment rerun as the browser sees it; (b) from the click's websocket frame leaving the browser
   to the rerun's `script_finished` arriving back (as relayed by Playwright, which adds its own
   delay while the browser renders); (c) server-side: a second server on an
   untouched copy of the same data home is sent, by a plain websocket client in this process, the
   very frames the browser sent, one at a time, and each click frame is timed until its
   `script_finished` arrives. (c) is the goal's measure: it is what the server spends on the
   click (the fragment rerun and the committed row) without the browser, which on a 2-core
   machine competes with the server for the CPU. The replay checks that the copy holds the rows
   the clicks should have written. The store's own save time is measured beside them, in this
   process, as the baseline.
3. Focus mode, by keyboard (BENCH_PARTS=focus runs this part alone): (a) server side, a key press
   until its rerun has finished (the row is committed before it), by the same replay of the
   browser's frames to a second server on an untouched copy, against the store's own save as the
   baseline; (b) in the browser, from an image's last key to the next image shown. Its baseline,
   measured in turn on this machine: a bare Streamlit page whose only button has a key, from the
   key to the page showing the count it raised (the floor Streamlit and the browser set).
4. The grid's first cards (BENCH_PARTS=grid runs this part alone): a rater opens Annotate, the
   page drawn, types a name and presses Enter; from the Enter to the first card's image shown, and
   to all 12, in a fresh tab each time; and how many skeletons (Streamlit's stand-ins for elements
   whose code is still loading) appeared in the cards. Then the same from a link that names the
   rater (/annotate?rater=…), the grid being the tab's first page. Baseline, opened in turn the same
   two ways: a bare Streamlit page that draws the same 12 cards (an image and four radios in a
   bordered box, three columns) once a Rater is given, and nothing else: what Streamlit does with
   such a grid by itself.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's sdaudit, as the servers it launches use, not an installed one
CLICKS = 40
COLD_STARTS = 3
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def settle(page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)


@dataclass(frozen=True)
class ColdStart:
    healthy: float  # seconds from launch until the server answers its health check
    annotate: float  # seconds from launch until the Annotate page has rendered in the browser
    torch_loaded: bool  # whether the server process has mapped libtorch by then
    pandas_loaded: bool  # and pandas's compiled modules


def launch(home: Path, app: Path = ROOT) -> tuple[subprocess.Popen, str]:
    """Start `streamlit run streamlit_app.py` in ``app`` on a free port for ``home``; return it and its URL."""
    port = free_port()
    env = {**os.environ, "SDAUDIT_HOME": str(home), "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port",
                               str(port), "--server.headless", "true"], cwd=app, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                return server, url
        except OSError:
            time.sleep(0.05)


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=30)


def replay(url: str, frames: list[bytes], first_click: int, before_clicks=lambda: None) -> list[float]:
    """Send the browser's frames to a fresh session, one at a time; time each click's rerun."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    early = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_EARLY_FOR_RERUN")
    times = []
    with connect(url.replace("http", "ws") + "/_stcore/stream", subprotocols=["streamlit"], max_size=None) as socket_:
        for index, frame in enumerate(frames):
            if index == first_click:
                before_clicks()
            message = BackMsg()
            message.ParseFromString(frame)
            began = time.perf_counter()
            socket_.send(frame)
            if message.WhichOneof("type") != "rerun_script":
                continue
            while True:
                reply = ForwardMsg()
                reply.ParseFromString(socket_.recv(timeout=60))
                if reply.WhichOneof("type") == "script_finished" and reply.script_finished != early:
                    break
            if index >= first_click and not message.rerun_script.is_auto_rerun:  # a click or key, not a timer's
                times.append(time.perf_counter() - began)
    return times


def summary(times: list[float]) -> str:
    return (f"median {1000 * statistics.median(times):.0f} ms, p90 {1000 * sorted(times)[int(0.9 * len(times))]:.0f} ms "
            f"over {len(times)} clicks")


def bare_streamlit_app() -> Path:
    """The baseline: a one-line Streamlit app titled Annotate, with sdaudit's Streamlit settings."""
    folder = Path(tempfile.mkdtemp(prefix="sdaudit-bare-app-"))
    (folder / "streamlit_app.py").write_text('import streamlit as st\n\nst.title("Annotate")\n')
    shutil.copytree(ROOT / ".streamlit", folder / ".streamlit")
    return folder


def cold_start(browser, home: Path, *, by_link: bool = False, app: Path = ROOT, on_websocket=None):
    """Launch the server and open the Annotate page: from the landing page and a click on Annotate,
    or ``by_link`` at its address (/annotate; the bare app at /). Return the server, the page and
    the timings."""
    started = time.perf_counter()
    server, url = launch(home, app)
    healthy = time.perf_counter() - started
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    if on_websocket is not None:
        page.on("websocket", on_websocket)
    if by_link:
        page.goto(url if app != ROOT else f"{url}/annotate")
    else:
        page.goto(url)
        settle(page)
        page.locator('[data-testid="stSidebarNav"]').get_by_text("Annotate", exact=True).click()
    page.get_by_role("heading", name="Annotate").wait_for(timeout=60_000)
    settle(page)
    annotate = time.perf_counter() - started
    loaded = Path(f"/proc/{server.pid}/maps").read_text()
    cold = ColdStart(healthy=healthy, annotate=annotate, torch_loaded="libtorch" in loaded,
                     pandas_loaded="pandas/_libs" in loaded)
    return server, page, cold


FOCUS_IMAGES = 12
PRESSES = 24


def bare_key_app() -> Path:
    """The focus baseline: a bare page with one button that has a key, and the count it raises."""
    folder = Path(tempfile.mkdtemp(prefix="sdaudit-bare-keys-"))
    (folder / "streamlit_app.py").write_text(
        "import streamlit as st\n\n"
        "st.session_state.setdefault('presses', 0)\n\n\n"
        "def press():\n    st.session_state['presses'] += 1\n\n\n"
        "st.button('Next', shortcut='K', on_click=press)\n"
        "st.caption(f\"Image {st.session_state['presses'] + 1} shown\")\n")
    shutil.copytree(ROOT / ".streamlit", folder / ".streamlit")
    return folder


def text_shown(page, text: str) -> None:
    page.wait_for_function("(text) => document.querySelector('[data-testid=\"stMain\"]')?.innerText.includes(text)",
                           arg=text, timeout=60_000)


def focus_keys(browser, home: Path, untouched: Path) -> tuple[list[float], list[float], list[float]]:
    """Label FOCUS_IMAGES images of ``home`` by keyboard in focus mode; returns the browser's times
    from each image's last key to the next image, the server-side times of every key (replayed to
    ``untouched``), and the bare page's key-to-render times."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    from sdaudit.store import Store

    sent: list[bytes] = []

    def on_websocket(socket_) -> None:
        socket_.on("framesent", lambda payload: sent.append(payload) if isinstance(payload, bytes) else None)

    server, url = launch(home)
    advances = []
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.on("websocket", on_websocket)
        page.goto(f"{url}/annotate?view=focus")
        settle(page)
        page.get_by_label("Rater", exact=True).fill("bench")  # as a rater does; the keys follow
        page.get_by_label("Rater", exact=True).press("Enter")
        text_shown(page, "Image 1 of 48")
        page.wait_for_function("() => document.activeElement === document.body", timeout=60_000)
        settle(page)
        first_key = len(sent)
        for n in range(FOCUS_IMAGES):
            for key, label in (("p", "Person"), ("f", "Female-presenting"), (str((n + 1) % 10), f"MST {n % 10 + 1}")):
                page.keyboard.press(key)
                page.wait_for_function(
                    "(label) => document.querySelector('.st-key-focus-saved')?.innerText.split('Saved: ')[1]"
                    "?.split(' · ').includes(label)", arg=label, timeout=60_000)
                settle(page)  # one key at a time: each after the page has answered the last
            began = time.perf_counter()
            page.keyboard.press("e")
            text_shown(page, f"Image {n + 2} of 48")
            advances.append(time.perf_counter() - began)
            settle(page)
        settle(page)
        page.close()
    finally:
        stop(server)
    # the keys' reruns; the count's fragment also asks for its own every few seconds (run_every)
    keys = [frame for frame in sent[first_key:] if (message := BackMsg.FromString(frame)).WhichOneof("type")
            == "rerun_script" and not message.rerun_script.is_auto_rerun]
    if len(keys) != 4 * FOCUS_IMAGES:
        raise SystemExit(f"the browser sent {len(keys)} reruns for {4 * FOCUS_IMAGES} key presses")

    server, url = launch(untouched)
    try:
        replayed = replay(url, sent, first_key)
    finally:
        stop(server)
    with Store(untouched / "sdaudit.duckdb") as store:
        done = store.annotation_progress(store.study_names()[0], "bench").yours  # rated: every key pressed
    if done != FOCUS_IMAGES:
        raise SystemExit(f"the replay should have saved {FOCUS_IMAGES} annotations but the store holds {done}")

    bare_app = bare_key_app()
    server, url = launch(home, bare_app)
    floor = []
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(url)
        text_shown(page, "Image 1 shown")
        settle(page)
        for n in range(PRESSES):
            began = time.perf_counter()
            page.keyboard.press("k")
            text_shown(page, f"Image {n + 2} shown")
            floor.append(time.perf_counter() - began)
        page.close()
    finally:
        stop(server)
        shutil.rmtree(bare_app, ignore_errors=True)
    return advances, replayed, floor


GRID_CARDS = 12
GRID_OPENINGS = 5
# In every tab: the page's clock at each card image's first showing (loaded and laid out), and a
# count of the skeletons that appeared in cards (a card: a block holding a Person question of its own).
GRID_WATCH = """
window.grid = {shown: [], skeletons: 0};
const seen = new WeakSet();
new MutationObserver(() => {
  for (const skeleton of document.querySelectorAll('[data-testid="stMain"] [data-testid="stSkeleton"]')) {
    const block = skeleton.closest('[data-testid="stVerticalBlock"]');
    if (!seen.has(skeleton) && block && block.querySelector(':scope > [class*="st-key-person-"]')) {
      seen.add(skeleton);
      window.grid.skeletons += 1;
    }
  }
}).observe(document, {childList: true, subtree: true});
(function look() {
  const images = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stImage"] img')];
  const shown = images.filter(image => image.complete && image.naturalWidth > 0 && image.getBoundingClientRect().width > 0);
  while (window.grid.shown.length < shown.length) window.grid.shown.push(performance.now());
  requestAnimationFrame(look);
})();
"""


def bare_grid_app() -> Path:
    """The grid's baseline: once a Rater is given (typed, or ?rater=), a bare page draws 12 cards as
    Annotate does, an image (the data home's own PNGs) and four radios in a bordered box, in three
    columns; nothing else."""
    folder = Path(tempfile.mkdtemp(prefix="sdaudit-bare-grid-"))
    (folder / "streamlit_app.py").write_text(
        "import os\nfrom pathlib import Path\n\nimport streamlit as st\n\n"
        "rater = st.sidebar.text_input('Rater', value=st.query_params.get('rater', ''))\n"
        "st.title('Annotate')\n"
        "if not rater:\n    st.info('Enter your name as Rater in the sidebar to start.')\n    st.stop()\n"
        "paths = sorted(Path(os.environ['SDAUDIT_HOME']).glob('images/*/*.png'))[:12]\n"
        "columns = st.columns(3)\n"
        "for n, path in enumerate(paths):\n"
        "    with columns[n % 3], st.container(border=True):\n"
        "        st.image(path.read_bytes(), width='stretch')\n"
        "        for field, options in (('person', ['Person', 'No person']), ('gender', ['Female', 'Male', 'Unclear']),\n"
        "                               ('skin', [f'MST {level}' for level in range(1, 11)]),\n"
        "                               ('confidence', ['Low', 'Medium', 'High'])):\n"
        "            st.radio(field, options, index=None, key=f'{field}-{n}', horizontal=True)\n")
    shutil.copytree(ROOT / ".streamlit", folder / ".streamlit")
    return folder


@dataclass(frozen=True)
class GridOpening:
    first: float  # seconds from the Enter (or the navigation) to the first card's image shown
    every: float  # to all GRID_CARDS cards' images shown
    skeletons: int  # skeletons that appeared in cards


def open_grid(browser, address: str, *, typed: bool, rater: str) -> GridOpening:
    """Open the grid at ``address`` in a fresh tab: typed (the page drawn first, then the name and
    Enter) or by a link naming the rater; time it in the page's own clock."""
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    context.add_init_script(GRID_WATCH)
    page = context.new_page()
    if typed:
        page.goto(address)
        settle(page)
        page.wait_for_function("() => document.querySelector('[data-testid=\"stSidebarUserContent\"]') !== null"
                               " && !document.querySelector('[data-testid=\"stSidebar\"] [data-testid=\"stSkeleton\"]')",
                               timeout=60_000)
        box = page.get_by_label("Rater", exact=True)
        box.fill(rater)
        began = page.evaluate("() => performance.now()")
        box.press("Enter")
    else:
        began = 0.0  # the page's clock starts at the navigation
        page.goto(f"{address}?rater={rater}")
    page.wait_for_function(f"() => window.grid.shown.length >= {GRID_CARDS}", timeout=120_000)
    grid = page.evaluate("() => window.grid")
    context.close()
    return GridOpening(first=(grid["shown"][0] - began) / 1000, every=(grid["shown"][GRID_CARDS - 1] - began) / 1000,
                       skeletons=grid["skeletons"])


def grid_openings(browser, home: Path) -> dict[str, list[GridOpening]]:
    """GRID_OPENINGS openings each way, sdaudit's and the bare page's in turn on their own servers."""
    bare_app = bare_grid_app()
    sdaudit, sdaudit_url = launch(home)
    bare, bare_url = launch(home, bare_app)
    openings: dict[str, list[GridOpening]] = {}
    try:
        for n in range(GRID_OPENINGS):
            for typed in (True, False):
                way = "typed" if typed else "link"
                openings.setdefault(f"sdaudit {way}", []).append(
                    open_grid(browser, f"{sdaudit_url}/annotate", typed=typed, rater=f"bench-{way}-{n}"))
                openings.setdefault(f"bare {way}", []).append(
                    open_grid(browser, f"{bare_url}/", typed=typed, rater=f"bench-{way}-{n}"))
    finally:
        stop(sdaudit)
        stop(bare)
        shutil.rmtree(bare_app, ignore_errors=True)
    return openings


def print_grid(openings: dict[str, list[GridOpening]]) -> None:
    def line(runs: list[GridOpening]) -> str:
        return (f"first card's image shown: median {1000 * statistics.median(o.first for o in runs):.0f} ms, all "
                f"{GRID_CARDS}: median {1000 * statistics.median(o.every for o in runs):.0f} ms; skeletons in cards "
                f"{', '.join(str(o.skeletons) for o in runs)} over {len(runs)} tabs")

    for way, words in (("typed", "the Rater typed on the drawn Annotate page, from the Enter"),
                       ("link", "a link naming the rater as the tab's first page, from the navigation")):
        ours, floor = openings[f"sdaudit {way}"], openings[f"bare {way}"]
        ratio = statistics.median(o.first for o in ours) / statistics.median(o.first for o in floor)
        print(f"grid of {GRID_CARDS}, {words}: {line(ours)}; {ratio:.2f}x the baseline's first image")
        print(f"baseline, a bare Streamlit page drawing the same {GRID_CARDS} cards, opened the same way: {line(floor)}")


def main() -> None:
    from playwright.sync_api import sync_playwright
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    from sdaudit.generation.jobs import FINISHED, JobRunner
    from sdaudit.generation.spec import DEFAULT_PROMPT, GenerationSpec
    from sdaudit.scheme import Annotation
    from sdaudit.store import Store

    size = int(os.environ.get("BENCH_PAGE", "48"))
    home = Path(tempfile.mkdtemp(prefix="sdaudit-app-bench-"))
    with Store.open(home) as store:  # as the app makes them: one job, so Generate lists it
        runner = JobRunner(store, home)
        job_id = runner.submit(GenerationSpec(model="demo", prompt=DEFAULT_PROMPT, first_seed=0, last_seed=47,
                                              batch_size=16, steps=2, height=64, width=64))
        while runner.queue.job(job_id).status not in FINISHED:
            time.sleep(0.2)
        runner.stop()
        if runner.queue.job(job_id).status != "done":
            raise SystemExit(f"the demo job ended {runner.queue.job(job_id).status}: {runner.queue.job(job_id).error}")
    untouched = home.parent / f"{home.name}-replay"
    shutil.copytree(home, untouched)
    focus_home, focus_untouched = (home.parent / f"{home.name}-{name}" for name in ("focus", "focus-replay"))
    for copy_ in (focus_home, focus_untouched):
        shutil.copytree(home, copy_)
    parts = os.environ.get("BENCH_PARTS", "all")

    # the baseline: the store's own save, in this process, on a copy of the same store
    copy = home.parent / f"{home.name}-copy.duckdb"
    shutil.copy(home / "sdaudit.duckdb", copy)
    with Store(copy) as store:
        image_ids = list(store.images()["image_id"])
        saves = []
        for n in range(60):
            started = time.perf_counter()
            store.save_annotation(int(image_ids[n % 48]), "bench", Annotation(person_present=True, mst=1 + n % 10))
            saves.append(time.perf_counter() - started)
    copy.unlink()

    playwright_context = sync_playwright()
    playwright = playwright_context.__enter__()
    browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)  # before the clock
    if parts == "grid":
        try:
            print_grid(grid_openings(browser, home))
        finally:
            browser.close()
            playwright_context.__exit__(None, None, None)
            for folder in (home, untouched, focus_home, focus_untouched):
                shutil.rmtree(folder, ignore_errors=True)
        return
    try:
        focus = focus_keys(browser, focus_home, focus_untouched)
    finally:
        for copy_ in (focus_home, focus_untouched):
            shutil.rmtree(copy_, ignore_errors=True)
    if parts == "focus":
        browser.close()
        playwright_context.__exit__(None, None, None)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(untouched, ignore_errors=True)
        print_focus(*focus, saves)
        return
    colds, linked, bare = [], [], []
    bare_app = bare_streamlit_app()
    for n in range(3 * COLD_STARTS):  # interleaved, so that a busy spell of the machine hits all three
        way = n % 3
        server, page, cold = cold_start(browser, home, by_link=way != 1, app=bare_app if way == 2 else ROOT)
        (linked, colds, bare)[way].append(cold)
        page.close()
        stop(server)
    shutil.rmtree(bare_app, ignore_errors=True)
    sent: list[bytes] = []
    frames = {"sent": None}
    server_side = []

    def on_websocket(socket_) -> None:
        def on_sent(payload) -> None:
            if isinstance(payload, bytes):
                sent.append(payload)
                if frames["sent"] is None:
                    frames["sent"] = time.perf_counter()

        def on_received(payload) -> None:
            if not isinstance(payload, bytes) or frames["sent"] is None:
                return
            message = ForwardMsg()
            message.ParseFromString(payload)
            if message.WhichOneof("type") == "script_finished":
                server_side.append(time.perf_counter() - frames["sent"])
                frames["sent"] = None

        socket_.on("framesent", on_sent)
        socket_.on("framereceived", on_received)

    server, page, cold = cold_start(browser, home, on_websocket=on_websocket)  # the clicks' server
    try:
        page.get_by_label("Rater", exact=True).fill("bench")
        page.get_by_label("Rater", exact=True).press("Enter")
        settle(page)
        page.get_by_label("Per page").click()
        page.get_by_role("option", name=str(size)).click()
        settle(page)
        cards = page.locator('[class*="st-key-skin-"]')
        cards.nth(size - 1).wait_for(timeout=60_000)
        keys = [cards.nth(i).get_attribute("class").split("st-key-skin-")[1].split()[0] for i in range(size)]
        clicks = []
        page.wait_for_timeout(500)
        first_click = len(sent)
        server_side.clear()
        frames["sent"] = None
        for n in range(CLICKS):
            target = page.locator(f".st-key-skin-{keys[n % size]}").get_by_role("radiogroup").get_by_text(
                f"MST {1 + n % 10}", exact=True)
            began = time.perf_counter()
            target.click()
            page.wait_for_timeout(1)
            settle(page)
            clicks.append(time.perf_counter() - began)
        browser.close()
    finally:
        stop(server)
        playwright_context.__exit__(None, None, None)

    server, url = launch(untouched)
    spy = []

    def profile() -> None:  # BENCH_PYSPY=FILE: where the server spends the replayed clicks
        if os.environ.get("BENCH_PYSPY"):
            spy.append(subprocess.Popen(["py-spy", "record", "-p", str(server.pid), "-o", os.environ["BENCH_PYSPY"],
                                         "-f", "raw", "-r", "500", "--threads"], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL))
            time.sleep(1)

    try:
        replayed = replay(url, sent, first_click, before_clicks=profile)
    finally:
        for profiler in spy:
            profiler.send_signal(2)
            profiler.wait(timeout=30)
        stop(server)
    with Store(untouched / "sdaudit.duckdb") as store:
        rows = int((store.annotations(study=store.study_names()[0])["rater"] == "bench").sum())  # one click each
    if rows != min(CLICKS, size):
        raise SystemExit(f"the replay should have saved {min(CLICKS, size)} annotations but the store holds {rows}")
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(untouched, ignore_errors=True)

    floor = statistics.median(c.annotate for c in bare)
    for way, starts in (("launch, open the app, click Annotate", colds), ("launch, open /annotate", linked)):
        median = statistics.median(c.annotate for c in starts)
        print(f"cold start to the Annotate page ({way}), {len(starts)} launches: median {median:.2f} s "
              f"(goal <= 3 s; each: {', '.join(f'{c.annotate:.2f}' for c in starts)} s; the server answered after "
              f"{statistics.median(c.healthy for c in starts):.2f} s); {median / floor:.2f}x the baseline; "
              f"loaded in the server: torch {any(c.torch_loaded for c in starts)}, "
              f"pandas {any(c.pandas_loaded for c in starts)}")
    print(f"baseline, a bare one-line Streamlit page with the same settings, opened the same way: median {floor:.2f} s "
          f"(each: {', '.join(f'{c.annotate:.2f}' for c in bare)} s)")
    print(f"click on a {size}-image page, server side (the browser's frames replayed to a second server on a copy "
          f"of the store, timed to the card's script_finished; the row is committed before it): {summary(replayed)} "
          f"(goal <= 50 ms median)")
    print(f"click on a {size}-image page, from the click's frame leaving the browser to the card's script_finished "
          f"arriving, browser on the same machine: {summary(server_side)}")
    print(f"click on a {size}-image page, browser-observed until the card's rerun ends: {summary(clicks)}")
    print(f"baseline, the store's save alone: median {1000 * statistics.median(saves):.1f} ms; "
          f"the server-side click costs {statistics.median(replayed) / statistics.median(saves):.0f}x the save")
    print_focus(*focus, saves)


def print_focus(advances: list[float], keys: list[float], floor: list[float], saves: list[float]) -> None:
    save, bare = statistics.median(saves), statistics.median(floor)
    print(f"focus mode, key press to its rerun finished, server side (the browser's frames replayed to a second "
          f"server on a copy of the store; the row is committed before it): {summary(keys).replace('clicks', 'keys')} "
          f"(goal <= 30 ms median); {statistics.median(keys) / save:.1f}x the store's save alone "
          f"(median {1000 * save:.1f} ms)")
    print(f"focus mode, an image's last key to the next image shown in the browser: "
          f"{summary(advances).replace('clicks', 'images')} (goal <= 150 ms median); "
          f"{statistics.median(advances) / bare:.2f}x the baseline")
    print(f"baseline, a bare Streamlit page's key to the count it raised shown: {summary(floor).replace('clicks', 'keys')}")


if __name__ == "__main__":
    main()
