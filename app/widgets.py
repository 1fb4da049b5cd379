"""What several pages show alike: user text made inert (`plain`), the jobs table, the Monk Skin
Tone swatches and the admin password form. Labels come from sdaudit.scheme; nothing here
computes on data."""

import re

import streamlit as st

from app.resources import admin_gate
from sdaudit.records import Job
from sdaudit.roles import WRONG_PASSWORD
from sdaudit.scheme import MST_SWATCHES

MARKDOWN_SPECIALS = "\\`*_{}[]()<>#+-.!|~$"
# Invisible, and not a character a link may hold: placed before ":", "." and "@" it stops the
# autolinking that runs on Markdown's text *after* escapes are read (http://…, www.…, a@b.c,
# :material/…: icons and :emoji: shortcodes), so escaping alone does not do it.
WORD_JOINER = "\u2060"
LINK_MARKS = ":.@"
LINE_BREAKS = re.compile(r"\s*[\n\r\v\f\x85\u2028\u2029]\s*")


def plain(text) -> str:
    """User text (prompts, model ids, names, error texts) made inert for st.markdown, captions,
    st.success and st.error: one line (a newline then ``===`` would make a heading), every Markdown
    character escaped (no link, image, HTML or table cell), and no autolink or icon shortcode."""
    line = LINE_BREAKS.sub(" ", str(text))
    return "".join((WORD_JOINER if char in LINK_MARKS else "") + ("\\" + char if char in MARKDOWN_SPECIALS else char)
                   for char in line)


JOBS_SHOWN = 20


def jobs_table(jobs: list[Job]) -> str:
    """The newest jobs as a Markdown table, user text made inert. (Not st.dataframe: on the
    landing page its data grid and pandas took ~0.7 s of the first load after a restart.)"""
    def cell(text) -> str:
        return plain(text or "")

    lines = ["| job | status | images done | seeds | model | prompt | error |",
             "|---:|---|---:|---|---|---|---|"]
    lines += [f"| {job.job_id} | {job.status} | {job.images_done} of {job.images_total} | {job.seeds} | "
              f"{cell(job.model)} | {cell(job.prompt)} | {cell(job.error)} |" for job in jobs[:JOBS_SHOWN]]
    if len(jobs) > JOBS_SHOWN:
        lines.append(f"\n{len(jobs) - JOBS_SHOWN} older jobs are not shown; their runs are on the Runs page.")
    return "\n".join(lines)


def mst_swatches() -> None:
    """The official Monk Skin Tone scale, MST 1 to MST 10, as coloured swatches with their numbers."""
    swatches = "".join(
        f'<span style="display:inline-block;text-align:center;margin-right:4px">'
        f'<span style="display:block;width:34px;height:22px;border-radius:4px;background:{colour};'
        f'border:1px solid #d4d4d4"></span><small>{level}</small></span>'
        for level, colour in enumerate(MST_SWATCHES, start=1)
    )
    st.markdown(f"Monk Skin Tone scale, MST 1 to MST 10:<br>{swatches}", unsafe_allow_html=True)


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
