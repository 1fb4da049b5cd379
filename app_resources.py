"""Process-wide resources of the app, cached with `st.cache_resource` (never in session state),
and the sidebar's current study and rater.

Kept apart from `streamlit_app.py` so that pages can import them without re-running the router.
"""

import streamlit as st

from sdaudit.config import data_home
from sdaudit.jobs import JobRunner
from sdaudit.store import DEFAULT_STUDY, Store


@st.cache_resource(on_release=Store.close)
def open_store(home: str) -> Store:
    """One store per process and data home, shared by all sessions and threads."""
    return Store.open(home)


@st.cache_resource(on_release=JobRunner.stop)
def job_runner(home: str) -> JobRunner:
    """The process's one generation worker: it outlives pages, reruns and closed tabs."""
    return JobRunner(open_store(home), home)


def current_home() -> str:
    """The data home this app serves (``$SDAUDIT_HOME`` or ./sdaudit-data)."""
    return str(data_home())


def current_study() -> str:
    return st.session_state.get("study") or DEFAULT_STUDY


def current_rater() -> str:
    """The rater's name from the sidebar, stripped; empty when none is given."""
    return (st.session_state.get("rater") or "").strip()
