"""The rater-group questions a study asks each rater once, with consent, above the Annotate grid.

Kept out of pages/annotate.py so the page gains one line; the answers go to ``rater_profiles``
(``team.Team.save_profile``), apart from the labels.
"""

import streamlit as st

from app.widgets import plain
from sdaudit.store import Store
from sdaudit.store.team import CONSENT, MAX_ANSWER, Team

NEEDS_CONSENT = "Tick “I agree” to share your answers, or choose “No thanks”."


def ask_once(store: Store, study: str, rater: str) -> None:
    """The study's rater-group fields as an optional form, until this rater answers or declines.
    Draws nothing when the study asks none or the rater has been asked."""
    team = Team(store)
    fields = team.settings(study).rater_fields
    if not fields or team.profile_asked(study, rater):
        return
    with st.expander("About you (optional, asked once)", expanded=True), st.form(f"rater-groups-{study}-{rater}"):
        st.caption(CONSENT)
        consent = st.checkbox("I agree")
        answers = {name: st.text_input(plain(name), max_chars=MAX_ANSWER, key=f"rater-group-{name}")
                   for name in fields}
        left, right = st.columns(2)
        share = left.form_submit_button("Save my answers")
        decline = right.form_submit_button("No thanks")
    if not (share or decline):
        return
    if share and not consent:
        st.error(NEEDS_CONSENT, icon=":material/error:")
        return
    try:
        team.save_profile(study, rater, answers if share else {}, consented=bool(share))
    except ValueError as error:
        st.error(plain(error), icon=":material/error:")
        return
    st.rerun()
