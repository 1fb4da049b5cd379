"""The app shell in AppTest: it starts, routes to Runs, and shows the store's runs or what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sdaudit.store import Store
from test_store import make_images, make_run

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SDAUDIT_HOME", str(tmp_path / "home"))
    yield tmp_path / "home"
    # Release the app's cached store, as the app does on shutdown, so its file is closed.
    import streamlit as st

    st.cache_resource.clear()


def test_an_empty_home_says_how_to_generate(home):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert [title.value for title in at.title] == ["Runs"]
    assert "No images yet" in at.info[0].value and "--model demo" in at.info[0].value


def test_runs_are_listed_with_their_settings(home):
    with Store.open(home) as store:
        store.add_run(make_run())
        store.add_images(make_images())
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["images"]) == [4]
    assert list(table["prompt"]) == ["a doctor sitting behind a desk"]
