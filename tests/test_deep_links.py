"""Every page's address, opened first on a fresh server, shows that page and no "Page not found".

Streamlit decides how to serve a deep link when its server is fresh: while a folder named pages/
sits beside the main script, the first script run matches the address against that folder's files
(its older multipage mode) and says "Page not found" for one missing there, even though the router
then shows the page. So each address gets a server of its own whose first browser visit is that
address; the servers start together, and one chromium serves every test.
"""

from __future__ import annotations

import ast
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from helpers import WAIT_LIMIT_S, App, Deadline, wait_until

from app.page_list import PAGES, AppPage

ROOT = Path(__file__).resolve().parents[1]
ROUTER = ROOT / "app" / "router.py"
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


@pytest.fixture(scope="module")
def fresh_servers(tmp_path_factory):
    """One server per page address, each over its own empty data home, launched together; a
    health check runs no script, so each is still fresh when its test opens its address."""
    deadline = Deadline()
    servers = {page.address: App(tmp_path_factory.mktemp("home"), deadline) for page in PAGES}
    try:
        for server in servers.values():
            server.launch()
        for server in servers.values():
            wait_until(server.healthy, "the app to answer its health check", deadline=deadline, poll=0.2)
        yield {address: server.url for address, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()


@pytest.mark.slow  # a real server per page address, driven by a real browser
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
