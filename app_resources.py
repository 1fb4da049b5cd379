"""Process-wide resources of the app, cached with `st.cache_resource` (never in session state).

Kept apart from `streamlit_app.py` so that pages can import them without re-running the router.
"""

import streamlit as st

from sdaudit.config import data_home
from sdaudit.store import Store


@st.cache_resource(on_release=Store.close)
def open_store(home: str) -> Store:
    """One store per process and data home, shared by all sessions and threads."""
    return Store.open(home)


def current_home() -> str:
    """The data home this app serves (``$SDAUDIT_HOME`` or ./sdaudit-data)."""
    return str(data_home())
