"""The app in a real browser: `streamlit run streamlit_app.py`, driven by Playwright on Debian's chromium.

AppTest cannot run JavaScript, so what the user actually sees (the chart drawn by Vega, the
navigation) is checked here once, end to end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def app_with_origin_study(tmp_path):
    """The app on a free port, over a fresh data home holding the origin sheet's study."""
    home = tmp_path / "home"
    env = {**os.environ, "SDAUDIT_HOME": str(home), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "sdaudit", "import-annotations", str(ROOT / "examples" / "origin_sheet.csv"),
                    "--study", "origin", "--rater", "seed-rater"], env=env, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            assert server.poll() is None, server.stdout.read().decode(errors="replace")
            assert time.monotonic() < deadline, "the app did not become healthy within 60 s"
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def page():
    playwright_api = pytest.importorskip("playwright.sync_api", reason="requirements-dev.txt installs playwright")
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium must be installed (scripts/test.sh installs it)"
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        yield page
        browser.close()


def wait_for_script(page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)


def test_the_results_page_draws_the_chart_with_parity_markers(app_with_origin_study, page, tmp_path):
    page.goto(app_with_origin_study)
    wait_for_script(page)
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Results", exact=True).click()
    page.get_by_role("heading", name="Results").wait_for(timeout=30_000)
    wait_for_script(page)
    chart = page.locator('[data-testid="stVegaLiteChart"]').first
    chart.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stVegaLiteChart\"] canvas, "
        "[data-testid=\"stVegaLiteChart\"] svg') !== null",
        timeout=30_000,
    )
    box = chart.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 200
    text = page.inner_text('[data-testid="stMain"]')
    assert "221 annotated images with a person" in text
    assert "Unreliable intervals" in text
    page.screenshot(path=str(tmp_path / "results.png"), full_page=True)
    assert (tmp_path / "results.png").stat().st_size > 20_000


def test_a_deep_link_after_a_restart_still_gets_the_apps_shell(app_with_origin_study, page):
    """Streamlit runs its old pages/ discovery until a script calls st.navigation; the page
    modules live in pages/views/ so that a first visitor's /results link still goes through
    the router and gets the sidebar."""
    page.goto(f"{app_with_origin_study}/results")
    page.get_by_role("heading", name="Results").wait_for(timeout=60_000)
    wait_for_script(page)
    sidebar = page.inner_text('[data-testid="stSidebar"]')
    assert "Data home" in sidebar and "Runs" in sidebar
