"""sdaudit's app router, the main script Streamlit runs for every session: the pages and the sidebar.
Pages (pages/*.py) are thin views over the sdaudit package.

`streamlit run streamlit_app.py` serves it (streamlit_app.py sets up the server). The store is
opened once per process and shared by every session; DuckDB lets one process write a store file,
so while the app runs, generate from the command line with `--out DIR` and ingest the folder later.
"""

import streamlit as st

from app.address import adopt_address, keep_in_address
from app.page_list import PAGES
from app.resources import STORE_ERRORS, current_home, open_store, store_problem
from app.signin import account_sidebar, require_sign_in
from app.widgets import fetch_card_code, is_admin, plain
from sdaudit.records import DEFAULT_STUDY, require_new_study
from sdaudit.scheme import DEFAULT_SKIN_CUT


def create_study() -> None:
    """Create the study named in the sidebar and make it current (a callback: runs before the rerun).
    Admins only when sign-in or a password is set: the popover is not drawn for raters, and this checks again."""
    name = (st.session_state.get("new_study_name") or "").strip()
    if not is_admin():
        return
    if not name:
        st.session_state["new_study_problem"] = "Type a name for the new study first."
        return
    mode = "binary" if st.session_state.get("new_study_mode") == BINARY_MODE else "mst"
    try:
        store = open_store(current_home())
        require_new_study(name, store.study_names())
        store.ensure_study(name, skin_tone_mode=mode)
    except ValueError as error:  # a name the rules refuse: said in the popover, which stays open
        st.session_state["new_study_problem"] = str(error)
        return
    st.session_state["study"] = name
    st.session_state["new_study_name"] = ""
    st.session_state["new_study_popover"] = False  # close it
    st.session_state["new_study_created"] = name


MST_MODE = "Monk Skin Tone, MST 1–10"
BINARY_MODE = f"Lighter / darker (MST 1–{DEFAULT_SKIN_CUT} / {DEFAULT_SKIN_CUT + 1}–10)"

st.set_page_config(page_title="sdaudit", page_icon=":material/balance:", layout="wide")
require_sign_in()  # with sign-in configured, nothing below is drawn for a visitor who has not signed in

navigation = st.navigation([
    st.Page(page.body, title=page.title, icon=page.icon, url_path=page.url_path, default=page.default)
    for page in PAGES
])

try:
    studies = open_store(current_home()).study_names() or [DEFAULT_STUDY]
except STORE_ERRORS as error:  # not DuckDB, truncated, newer schema, locked: one message, no page
    st.sidebar.caption(f"Data home: {plain(current_home())}")
    st.error(plain(store_problem(error, current_home())), icon=":material/error:")
    st.stop()

with st.sidebar:
    adopt_address(studies)  # ?rater=…&study=… on a session's first run: a reload or a handed-out link
    if st.session_state.get("study") not in studies:
        st.session_state["study"] = DEFAULT_STUDY if DEFAULT_STUDY in studies else studies[0]
    st.selectbox("Study", studies, key="study", help="The study new runs belong to and that is annotated.")
    if is_admin():
        with st.popover("New study", key="new_study_popover", on_change="rerun"):
            st.text_input("Name of the new study", key="new_study_name")
            st.radio("Skin tone is rated as", [MST_MODE, BINARY_MODE], key="new_study_mode",
                     help="The Monk scale keeps the raw value, so the lighter/darker cut can move later; "
                          "lighter/darker directly is how the origin study's rater worked.")
            st.button("Create study", on_click=create_study)
            if problem := st.session_state.pop("new_study_problem", None):
                st.error(plain(problem), icon=":material/error:")
        if created := st.session_state.pop("new_study_created", None):
            st.success(f"Created study “{plain(created)}”; it is the current study now.", icon=":material/check_circle:")
    account_sidebar()  # the rater's name: the signed-in account's, or typed when there is no sign-in
    keep_in_address()
    st.caption(f"Data home: {plain(current_home())}")
    fetch_card_code()  # last: out of sight

try:
    navigation.run()
except STORE_ERRORS as error:  # a store damaged where only this page reads fails here, not at the top
    st.error(plain(store_problem(error, current_home())), icon=":material/error:")
