"""The app's speed as a user feels it: cold start to the Annotate page, and a click on a 48-image page.

    python benchmarks/app_speed.py            (BENCH_PAGE=12 for a 12-image page)

Needs Playwright and Debian's chromium (requirements-dev.txt, scripts/test.sh). It makes 48 demo
images in a temporary data home, then:

1. Cold start: from launching `streamlit run streamlit_app.py` to the Annotate page rendered in
   the browser (the landing page, then a click on Annotate), and whether the server process has loaded
   torch (its memory map is read from /proc).
2. Click latency on a 48-image page: from a radio click to the end of the card's fragment rerun
   as the browser sees it, which includes the save to DuckDB. This bounds the server-side time
   from above (the browser adds its own round trip on loopback). The store's own save time is
   measured beside it, in this process, as the baseline.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def settle(page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)


def main() -> None:
    from playwright.sync_api import sync_playwright
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    from sdaudit.scheme import Annotation
    from sdaudit.store import Store

    home = Path(tempfile.mkdtemp(prefix="sdaudit-app-bench-"))
    env = {**os.environ, "SDAUDIT_HOME": str(home), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "sdaudit", "generate", "--model", "demo", "--seeds", "0-47", "--steps", "2",
                    "--height", "64", "--width", "64", "--batch-size", "16"], env=env, check=True,
                   capture_output=True)

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

    port = free_port()
    playwright_context = sync_playwright()
    playwright = playwright_context.__enter__()
    browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)  # before the clock
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port",
                               str(port), "--server.headless", "true"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        sockets = []
        page.on("websocket", lambda socket_: sockets.append(socket_))
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.05)
        healthy = time.perf_counter() - started
        page.goto(url)
        settle(page)
        page.locator('[data-testid="stSidebarNav"]').get_by_text("Annotate", exact=True).click()
        page.get_by_role("heading", name="Annotate").wait_for(timeout=60_000)
        settle(page)
        cold = time.perf_counter() - started
        maps = Path(f"/proc/{server.pid}/maps").read_text()
        torch_loaded = "libtorch" in maps

        page.get_by_label("Rater", exact=True).fill("bench")
        page.get_by_label("Rater", exact=True).press("Enter")
        settle(page)
        page.get_by_label("Per page").click()
        page.get_by_role("option", name=os.environ.get("BENCH_PAGE", "48")).click()
        settle(page)
        cards = page.locator('[class*="st-key-skin-"]')
        size = int(os.environ.get("BENCH_PAGE", "48"))
        cards.nth(size - 1).wait_for(timeout=60_000)
        keys = [cards.nth(i).get_attribute("class").split("st-key-skin-")[1].split()[0] for i in range(size)]
        clicks = []
        server_side = []
        frames = {"sent": None}

        def on_websocket(socket_) -> None:
            def sent(payload) -> None:
                if isinstance(payload, bytes) and frames["sent"] is None:
                    frames["sent"] = time.perf_counter()

            def received(payload) -> None:
                if not isinstance(payload, bytes) or frames["sent"] is None:
                    return
                message = ForwardMsg()
                message.ParseFromString(payload)
                if message.WhichOneof("type") == "script_finished":
                    server_side.append(time.perf_counter() - frames["sent"])
                    frames["sent"] = None

            socket_.on("framesent", sent)
            socket_.on("framereceived", received)

        for socket_ in sockets:
            on_websocket(socket_)
        spy = None
        if os.environ.get("BENCH_PYSPY"):
            spy = subprocess.Popen(["py-spy", "record", "-p", str(server.pid), "-o", os.environ["BENCH_PYSPY"],
                                    "-f", "raw", "-r", "200", "--threads"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            time.sleep(1)
        for n in range(40):
            target = page.locator(f".st-key-skin-{keys[n % size]}").get_by_role("radiogroup").get_by_text(
                f"MST {1 + n % 10}", exact=True)
            began = time.perf_counter()
            target.click()
            page.wait_for_timeout(1)
            settle(page)
            clicks.append(time.perf_counter() - began)
        if spy is not None:
            spy.send_signal(2)
            spy.wait(timeout=30)
        browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        playwright_context.__exit__(None, None, None)
    print(f"cold start: healthy after {healthy:.2f} s; Annotate page rendered after {cold:.2f} s (goal <= 3 s); "
          f"torch loaded in the server: {torch_loaded}")
    print(f"click on a {os.environ.get('BENCH_PAGE', '48')}-image page, browser-observed until the card's rerun ends: median "
          f"{1000 * statistics.median(clicks):.0f} ms, p90 {1000 * sorted(clicks)[int(0.9 * len(clicks))]:.0f} ms "
          f"over {len(clicks)} clicks (goal <= 50 ms median, server side)")
    print(f"click on a {os.environ.get('BENCH_PAGE', '48')}-image page, from the click's message leaving the browser "
          f"to the end of the card's rerun arriving (server side plus loopback): median "
          f"{1000 * statistics.median(server_side):.0f} ms, p90 "
          f"{1000 * sorted(server_side)[int(0.9 * len(server_side))]:.0f} ms over {len(server_side)} clicks")
    print(f"baseline, the store's save alone: median {1000 * statistics.median(saves):.1f} ms; "
          f"the click costs {statistics.median(clicks) / statistics.median(saves):.0f}x the save")


if __name__ == "__main__":
    main()
