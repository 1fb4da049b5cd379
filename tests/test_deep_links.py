"""Every page's address, opened first on a fresh server, shows that page and no "Page not found".

Streamlit decides how to serve a deep link when its server is fresh: while a folder named pages/
sits beside the main script, the first script run matches the address against that folder's files
(its older multipage mode) and says "Page not found" for one missing there, even though the router
then shows the page. So each address gets a server of its own whose first browser visit is that
address; the servers start together, and one chromium serves every test.

The server and browser set-up is copied from tests/test_browser.py and tests/helpers.py for now
(those files are being reshaped into shared fixtures at the same time).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app.page_list import PAGES, AppPage

ROOT = Path(__file__).resolve().parents[1]
ROUTER = ROOT / "app" / "router.py"
WAIT_LIMIT_S = 600.0  # generous: a wait ends as soon as its state is there, so this costs nothing
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
SCRIPT_DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def test_no_pages_folder_sits_beside_the_main_script():
    """A pages/ folder beside app/router.py turns on Streamlit's older discovery for a fresh
    server's first visit (the browser tests below show what it costs); the page list is the one list."""
    streamlit_app = (ROOT / "streamlit_app.py").read_text()
    assert 'st.App("app/router.py"' in streamlit_app, "the main script moved: check the folder beside it"
    assert not (ROUTER.parent / "pages").exists(), f"{ROUTER.parent / 'pages'} makes Streamlit discover pages"


def test_the_page_list_names_every_page_body_once():
    bodies = sorted(path.name for path in (ROOT / "pages").glob("*.py") if path.name != "__init__.py")
    assert sorted(page.file for page in PAGES) == bodies
    assert all(page.body.is_file() for page in PAGES)
    assert len({page.url_path for page in PAGES}) == len(PAGES)
    assert [page.title for page in PAGES if page.default] == ["Home"]


def heading_of(page: AppPage) -> str:
    """The text of the page body's own st.title(...) call."""
    tree = ast.parse(page.body.read_text())
    titles = [node.args[0].value for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "title"
              and isinstance(node.func.value, ast.Name) and node.func.value.id == "st"
              and node.args and isinstance(node.args[0], ast.Constant)]
    assert len(titles) == 1, f"{page.file} should call st.title once with a plain string, found {titles}"
    return titles[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def app_command(port: int) -> list[str]:
    """The Dockerfile's own command (its last CMD, exec form), on ``port``, with this interpreter."""
    line = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")][-1]
    command = json.loads(line[4:])
    command[command.index("--server.port") + 1] = str(port)
    return [sys.executable, "-m", *command]


def healthy(url: str, server: subprocess.Popen) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=10) as answer:
            return answer.read() == b"ok"
    except OSError:
        assert server.poll() is None, server.stdout.read().decode(errors="replace")
        return False


@pytest.fixture(scope="module")
def fresh_servers(tmp_path_factory):
    """One server per page address, each over its own empty data home, started together; a
    health check runs no script, so each is still fresh when its test opens its address."""
    servers: dict[str, tuple[str, subprocess.Popen]] = {}
    try:
        for page in PAGES:
            port = free_port()
            env = {**os.environ, "SDAUDIT_HOME": str(tmp_path_factory.mktemp("home")), "PYTHONPATH": str(ROOT)}
            server = subprocess.Popen(app_command(port), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT)
            servers[page.address] = (f"http://127.0.0.1:{port}", server)
        waiting = dict(servers)
        end = time.monotonic() + WAIT_LIMIT_S
        while waiting:
            waiting = {address: (url, server) for address, (url, server) in waiting.items()
                       if not healthy(url, server)}
            assert time.monotonic() < end, f"waited {WAIT_LIMIT_S:.0f} s for the servers of {sorted(waiting)}"
            if waiting:
                time.sleep(0.2)
        yield {address: url for address, (url, _) in servers.items()}
    finally:
        for _, server in servers.values():
            server.terminate()
        for _, server in servers.values():
            server.wait(timeout=60)


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api", reason="requirements-dev.txt installs playwright")
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium must be installed (scripts/test.sh installs it)"
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.mark.parametrize("page", PAGES, ids=[page.title for page in PAGES])
def test_a_fresh_servers_first_visit_to_a_pages_address_shows_that_page(page, browser, fresh_servers):
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    tab.set_default_timeout(WAIT_LIMIT_S * 1000)
    try:
        tab.goto(fresh_servers[page.address] + page.address)
        tab.get_by_role("heading", name=heading_of(page), exact=True).wait_for()
        tab.wait_for_selector(SCRIPT_DONE)
        assert tab.get_by_text("Page not found").count() == 0, f"{page.address} said: {tab.inner_text('[role=dialog]')}"
        current = tab.locator('[data-testid="stSidebarNav"] a[aria-current="page"]')
        assert page.title in current.inner_text().splitlines(), current.inner_text()  # after its icon's name
        assert urlsplit(tab.url).path == page.address
    finally:
        tab.close()
