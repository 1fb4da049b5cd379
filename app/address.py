"""The rater's name and the study in the page's address (``?rater=…&study=…``), so a reload keeps
them and a team lead can hand a rater a link. The sidebar's widgets stay the one source of truth;
the address is read once per browser session and written back on every run."""

import streamlit as st

from app.resources import current_rater, current_study
from sdaudit.roles import sign_in_provider

MAX_RATER = 100  # a name from a link is cut to this, as a hand-typed one would fit


def adopt_address(studies: list[str]) -> None:
    """On a session's first run, take the rater and the study from the address. A study the store
    does not hold is ignored: the sidebar falls back to its default with no error. With sign-in the
    rater is the account's, and ``?rater=`` is ignored."""
    if st.session_state.get("address-read"):
        return
    st.session_state["address-read"] = True
    rater = (st.query_params.get("rater") or "").strip()[:MAX_RATER]
    if rater and not st.session_state.get("rater") and sign_in_provider() is None:
        st.session_state["rater"] = rater
    if st.query_params.get("study") in studies:
        st.session_state["study"] = st.query_params["study"]


def keep_in_address() -> None:
    """Write the sidebar's rater and study into the address (only when they changed); with sign-in,
    no rater: the name comes from the account, and a link must not suggest otherwise."""
    rater = current_rater() if sign_in_provider() is None else ""
    for name, value in (("rater", rater), ("study", current_study())):
        if value and st.query_params.get(name) != value:
            st.query_params[name] = value
        elif not value and name in st.query_params:
            del st.query_params[name]
