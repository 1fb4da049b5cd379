"""What several pages show alike: user text made inert (`plain`), the jobs table, the Monk Skin
Tone swatches, the admin password form, and the Annotate cards' element code fetched ahead. Labels
come from sdaudit.scheme; nothing here computes on data."""

import base64
import re
import secrets

import streamlit as st

from app.resources import admin_gate, signed_in
from sdaudit.present.words import count_of
from sdaudit.records import Job
from sdaudit.roles import sign_in_provider
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


ERROR_SHOWN = 90  # characters of a job's error in the table; a page-long one stretched it


def jobs_table(jobs: list[Job]) -> str:
    """The newest jobs as a Markdown table, user text made inert. (Not st.dataframe: its data grid
    and pandas slow the first load after a restart; see benchmarks/results/README.md.)"""
    def cell(text) -> str:
        return plain(text or "")

    def error(text) -> str:  # its first sentence: the details are below the table, not in it
        first = (text or "").split("\n", 1)[0]
        return cell(first if len(first) <= ERROR_SHOWN else first[:ERROR_SHOWN - 1] + "…")

    lines = ["| job | status | images done | seeds | model | prompt | error |",
             "|---:|---|---:|---|---|---|---|"]
    lines += [f"| {job.job_id} | {job.status} | {count_of(job.images_done, job.images_total)} | {job.seeds} | "
              f"{cell(job.model)} | {cell(job.prompt)} | {error(job.error)} |" for job in jobs[:JOBS_SHOWN]]
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


# A transparent 1×1 PNG: the least st.image can draw.
BLANK_PIXEL = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNgYGBgAAAABQABeqhXUAAAAABJRU5ErkJggg==")


def fetch_card_code() -> None:
    """Draw, out of sight, an image and a radio: the element kinds of an Annotate card whose code the
    browser loads only when the first of its kind arrives. Until it has, every such element shows a
    skeleton, and React (18) reveals them no sooner than 500 ms after the last skeleton appeared, so
    under load, with cards arriving one by one, the whole grid stayed skeletons for seconds. Drawn on
    every page (the router's sidebar), the code is in before a grid is: from Home, from the Rater
    box, from focus mode. A box one pixel high (its overflow out of sight) holds an empty radio and
    a transparent pixel; its place is the sidebar's end. The box is hidden (visibility), so a screen
    reader does not announce them and Tab does not stop on the image's Fullscreen button; the browser
    still draws them, and so loads their code."""
    with st.container(height=1, border=False, key="card-code"):
        st.html("<style>.st-key-card-code {visibility: hidden}</style>")
        st.image(BLANK_PIXEL, width=1)
        st.radio("Page code, not a question", [], label_visibility="collapsed", key="card-code-radio")


def is_admin() -> bool:
    """True for a signed-in admin (``SDAUDIT_ADMINS``) when sign-in is configured; otherwise when no
    admin password is set, or this session unlocked the gate (a signed token kept in the session's
    server-side state only, checked, signature and expiry, on every run: never in the address, so a
    reload or a shared link asks again). Draws nothing."""
    if sign_in_provider() is not None:
        account = signed_in()
        return bool(account and account.admin)
    gate = admin_gate()
    if not gate.required or gate.token_valid(st.session_state.get("admin_token")):
        return True
    st.session_state.pop("admin_token", None)
    return False


def admin_unlocked() -> bool:
    """``is_admin()``; when it is False, says so, and without sign-in shows the password prompt (for
    admin-only actions). Call it once per page: the form has one key."""
    if is_admin():
        return True
    if sign_in_provider() is not None:
        st.info("This is an admin action. You are signed in as a rater; the admins are named by the server's "
                "SDAUDIT_ADMINS setting.", icon=":material/info:")
        return False
    st.info("This is an admin action on this server. Raters can annotate and view results without it.",
            icon=":material/info:")
    with st.form("admin_login"):
        given = st.text_input("Admin password", type="password")
        if st.form_submit_button("Unlock"):
            gate = admin_gate()
            # the source is this browser session: its wrong passwords lock out only itself
            source = st.session_state.setdefault("admin_source", secrets.token_hex(16))
            verdict = gate.check(given, source=source)
            if verdict.unlocked:
                st.session_state["admin_token"] = gate.token()
                st.rerun()
            st.error(verdict.message, icon=":material/error:")
    return False
