"""Automatic labels: a study's machine labels held against people's, per field and per skin tone, and
what an automatic-only audit would publish beside the prediction-powered and human-only shares.

Admins only where sign-in or an admin password is set: the human sample's raters must answer blind to
the machine (prediction-powered intervals are void otherwise), and this page shows the machine's
answers in aggregate and how they compare with people's.
"""

import streamlit as st

from app.resources import current_home, open_store
from app.widgets import admin_unlocked, plain
from sdaudit.analysis.machine_audit import FIELDS, NO_LABELS, TONES, audit, machine_inputs
from sdaudit.analysis.machine_human import answering
from sdaudit.present.machine_tables import (
    AGREEMENT_READING,
    DIFFERENCE_READING,
    PEOPLE_RULE,
    SIDE_READING,
    agreement_table,
    confusion_table,
    differences_table,
    different_verdicts,
    error_chart,
    labelling_words,
    side_by_side_table,
    too_few_tones,
)
from sdaudit.scheme import AGREEMENT_FIELD_LABELS, DEFAULT_SKIN_CUT
from sdaudit.store.machine import MachineTables

BLIND = ("Shown to admins only: people who label the human sample must not see the machine's answers, or the "
         "prediction-powered shares lose their footing.")

st.title("Automatic labels")
if not admin_unlocked():
    st.caption(BLIND)
    st.stop()
store = open_store(current_home())
studies = store.study_names()
if not studies:
    st.info("No study yet. Generate images on the Generate page, then label them automatically from the Runs page "
            "or `python -m sdaudit machine-label`.", icon=":material/info:")
    st.stop()

left, middle, right = st.columns(3)
current = st.session_state.get("study")  # the sidebar's study, when it has one
study = left.selectbox("Study", studies, index=studies.index(current) if current in studies else 0)
labellings = [labelling for labelling in MachineTables(store).labellings(study) if labelling.labelled]
if not labellings:
    st.info(plain(NO_LABELS.format(study=study)), icon=":material/info:")
    st.stop()
names = {each.labelling_id: f"{each.labelling_id}: {each.labeller}, {each.model} ({each.labelled} images)"
         for each in labellings[::-1]}  # newest first
answers = answering(MachineTables(store).machine_labels(study))  # the default: the newest that answers something
labelling_id = middle.selectbox("Labelling", list(names), format_func=names.get,
                                index=next((place for place, each in enumerate(names) if each in answers), 0))
skin_cut = right.slider("Skin-tone cut: MST 1 to this value counts as lighter", 1, 9, DEFAULT_SKIN_CUT)

try:
    result = audit(machine_inputs(store, study, labelling_id), skin_cut=skin_cut)
except ValueError as error:  # no image both labelled yet: what to do next
    st.info(plain(error), icon=":material/info:")
    st.stop()

st.caption(plain(labelling_words(result)))
st.caption(plain(result.agreement_scope))
st.caption(PEOPLE_RULE)
st.subheader("Agreement with people")
st.dataframe(agreement_table(result), hide_index=True)
st.caption(AGREEMENT_READING)

st.subheader("By people's skin tone")
st.altair_chart(error_chart(result), width="content")
st.dataframe(agreement_table(result, TONES[1:], enough_only=True), hide_index=True)
if left_out := too_few_tones(result):
    st.caption(left_out)
st.subheader("The machine's error across tones")
st.dataframe(differences_table(result, every_tone=True), hide_index=True)
st.caption(DIFFERENCE_READING)

st.subheader("What each audit would publish")
side = side_by_side_table(result)
if side is None:
    st.info(plain(f"No side-by-side shares yet: {result.side_by_side_missing}"), icon=":material/info:")
else:
    st.dataframe(side, hide_index=True)
    st.caption(SIDE_READING)
    if result.left_out_after_draw:
        st.caption(plain(result.left_out_after_draw))
    if changed := different_verdicts(result):
        st.warning(f"An automatic-only audit would reach another verdict on: {'; '.join(changed)}.",
                   icon=":material/warning:")
    else:
        st.success("An automatic-only audit would reach the same verdict on every group with a target.",
                   icon=":material/check_circle:")

with st.expander("Confusion tables (people's answers in rows, the machine's in columns)"):
    for field_name in FIELDS:
        st.caption(AGREEMENT_FIELD_LABELS[field_name])
        st.dataframe(confusion_table(result, field_name), hide_index=True)
