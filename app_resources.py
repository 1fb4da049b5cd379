"""Process-wide resources of the app, cached with `st.cache_resource` (never in session state),
the sidebar's current study and rater, and the text helpers pages share (`plain`, `jobs_table`).

Kept apart from `app_router.py` so that pages can import them without re-running the router.
"""

import runpy
from pathlib import Path

import streamlit as st

from sdaudit.config import data_home, int_setting, setting
from sdaudit.jobs import JobRunner
from sdaudit.records import DEFAULT_STUDY, Job
from sdaudit.roles import WRONG_PASSWORD, AdminGate
from sdaudit.snapshot import AutoSnapshot
from sdaudit.store import Store


@st.cache_resource(on_release=Store.close)
def open_store(home: str) -> Store:
    """One store per process and data home, shared by all sessions and threads."""
    return Store.open(home)


@st.cache_resource(on_release=JobRunner.stop)
def job_runner(home: str) -> JobRunner:
    """The process's one generation worker: it outlives pages, reruns and closed tabs."""
    keeper = auto_snapshot(home)
    return JobRunner(open_store(home), home, on_finished=keeper.after_job if keeper else None)


@st.cache_resource(on_release=lambda keeper: keeper and keeper.stop())
def auto_snapshot(home: str) -> AutoSnapshot | None:
    """With SDAUDIT_SNAPSHOT_TARGET set: restore an empty store on start, then keep snapshotting."""
    target = setting("snapshot_target")
    if not target:
        return None
    return AutoSnapshot(open_store(home), home, target, minutes=int_setting("snapshot_minutes"))


ROUTER = Path(__file__).resolve().parent / "app_router.py"


def hand_over_to_the_router() -> None:
    """Run the router from a top-level file of pages/.

    Until some script has called st.navigation, Streamlit serves a deep link such as /annotate from
    the top-level files of pages/ (its older multipage mode); without pages/annotate.py, a fresh
    server's first visitor there got a "Page not found" dialog before the router showed the page.
    That file calls this, and the router shows the page with the app's sidebar; from then on
    Streamlit uses the router directly and never runs the files in pages/ itself.
    """
    runpy.run_path(str(ROUTER))


def current_home() -> str:
    """The data home this app serves (``$SDAUDIT_HOME`` or ./sdaudit-data)."""
    return str(data_home())


def current_study() -> str:
    return st.session_state.get("study") or DEFAULT_STUDY


def current_rater() -> str:
    """The rater's name from the sidebar, stripped; empty when none is given."""
    return (st.session_state.get("rater") or "").strip()


@st.cache_resource
def admin_gate() -> AdminGate:
    """One gate per process, so slowing down wrong passwords holds across sessions."""
    return AdminGate()


def admin_unlocked() -> bool:
    """True when no admin password is configured, or this session has given it; otherwise
    shows the password prompt (for admin-only actions) and returns False."""
    gate = admin_gate()
    if not gate.required or st.session_state.get("admin"):
        return True
    st.info("This is an admin action on this server. Raters can annotate and view results without it.",
            icon=":material/info:")
    with st.form("admin_login"):
        given = st.text_input("Admin password", type="password")
        if st.form_submit_button("Unlock"):
            if gate.check(given):
                st.session_state["admin"] = True
                st.rerun()
            st.error(WRONG_PASSWORD, icon=":material/error:")
    return False


MARKDOWN_SPECIALS = "\\`*_{}[]()<>#+-.!|~$"


def plain(text) -> str:
    """User text (prompts, model ids, names) made inert for st.markdown/caption/success: every
    Markdown character is escaped, so a prompt cannot become a link, an image or HTML."""
    return "".join("\\" + char if char in MARKDOWN_SPECIALS else char for char in str(text))


JOBS_SHOWN = 20


def jobs_table(jobs: list[Job]) -> str:
    """The newest jobs as a Markdown table, user text made inert. (Not st.dataframe: on the
    landing page its data grid and pandas took ~0.7 s of the first load after a restart.)"""
    def cell(text) -> str:
        return plain(text or "").replace("\n", " ")

    lines = ["| job | status | images done | seeds | model | prompt | error |",
             "|---:|---|---:|---|---|---|---|"]
    lines += [f"| {job.job_id} | {job.status} | {job.images_done} of {job.images_total} | {job.seeds} | "
              f"{cell(job.model)} | {cell(job.prompt)} | {cell(job.error)} |" for job in jobs[:JOBS_SHOWN]]
    if len(jobs) > JOBS_SHOWN:
        lines.append(f"\n{len(jobs) - JOBS_SHOWN} older jobs are not shown; their runs are on the Runs page.")
    return "\n".join(lines)
