"""What one app process shares, cached with `st.cache_resource` (never in session state): the
store, the generation worker, the snapshot keeper and the admin gate; and the sidebar's current
data home, study and rater.

Kept apart from app/router.py so that pages can import them without re-running the router.
"""

import duckdb
import streamlit as st

from sdaudit.config import data_home, int_setting, setting, store_path
from sdaudit.errors import StoreError
from sdaudit.files.snapshot import AutoSnapshot
from sdaudit.generation.jobs import JobRunner
from sdaudit.records import DEFAULT_STUDY
from sdaudit.roles import AdminGate, Identity, identity, sign_in_provider
from sdaudit.store import Store

# A store file that opens but fails on reading (truncated, overwritten in place) raises DuckDB's own
# errors from any query; the app names the file and what to do instead of showing a traceback.
STORE_UNREADABLE = ("the store {path} cannot be read ({reason}); it may be damaged or truncated. "
                    "Move it away, or restore it from a snapshot.")


@st.cache_resource(on_release=Store.close)
def _the_store(home: str) -> Store:
    return Store.open(home)


def open_store(home: str) -> Store:
    """One store per process and data home, shared by all sessions and threads. With a snapshot
    target, the snapshot keeper is made first (``auto_snapshot``): an empty store is restored
    before any page reads it, so the first page after a restart shows the restored data."""
    auto_snapshot(home)
    return _the_store(home)


@st.cache_resource(on_release=JobRunner.stop)
def job_runner(home: str) -> JobRunner:
    """The process's one generation worker: it outlives pages, reruns and closed tabs."""
    keeper = auto_snapshot(home)
    return JobRunner(open_store(home), home, on_finished=keeper.after_job if keeper else None)


@st.cache_resource(on_release=lambda keeper: keeper and keeper.stop())
def auto_snapshot(home: str) -> AutoSnapshot | None:
    """With SDAUDIT_SNAPSHOT_TARGET set: restore an empty store on start (before any page reads
    it: ``open_store`` makes this first), then keep snapshotting, and snapshot once more on exit
    when anything changed (``AutoSnapshot.at_exit``)."""
    target = setting("snapshot_target")
    if not target:
        return None
    return AutoSnapshot(_the_store(home), home, target, minutes=int_setting("snapshot_minutes"))


@st.cache_resource
def admin_gate() -> AdminGate:
    """One gate per process, so slowing down wrong passwords holds across sessions."""
    return AdminGate()


STORE_ERRORS = (StoreError, duckdb.Error)


def store_problem(error: Exception, home: str) -> str:
    """One line for a store that cannot be opened or read: a ``StoreError``'s own message, or
    ``STORE_UNREADABLE`` for DuckDB's errors."""
    if isinstance(error, StoreError):
        return str(error)
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return STORE_UNREADABLE.format(path=store_path(home), reason=reason)


def current_home() -> str:
    """The data home this app serves (``$SDAUDIT_HOME`` or ./sdaudit-data)."""
    return str(data_home())


def current_study() -> str:
    return st.session_state.get("study") or DEFAULT_STUDY


def signed_in() -> Identity | None:
    """The signed-in account and its role; None when sign-in is not configured or nobody is signed
    in. Streamlit reads ``st.user`` from its signed identity cookie, so it cannot be typed or forged."""
    if sign_in_provider() is None or not st.user.get("is_logged_in"):
        return None
    return identity(st.user.to_dict())


def current_rater() -> str:
    """The rater's name: with sign-in, the signed-in account's (``roles.rater_name``), empty when it
    may not rate; without, the name typed in the sidebar, stripped; empty when none is given."""
    if sign_in_provider() is not None:
        account = signed_in()
        return account.name if account and account.may_rate else ""
    return (st.session_state.get("rater") or "").strip()
