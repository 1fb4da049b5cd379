"""Agreement: how well the raters agree on each label, and the shares corrected for rater error."""

import streamlit as st

from app.resources import current_home, open_store
from app.widgets import plain
from sdaudit.agreement_view import NEEDS_RATERS, READING, agreement_view, pairs_table, raters_table, summary_table

st.title("Agreement")
store = open_store(current_home())
studies = store.study_names()
if not studies:
    st.info("No study yet. Annotate images with two or more raters, or import their sheets: "
            "`python -m sdaudit import-annotations SHEET.csv --study NAME --format sdaudit`.", icon=":material/info:")
    st.stop()

left, right = st.columns(2)
current = st.session_state.get("study")  # the sidebar's study, when it has one
study = left.selectbox("Study", studies, index=studies.index(current) if current in studies else 0)
skin_cut = right.slider("Skin-tone cut: MST 1 to this value counts as lighter", 1, 9, 5)


@st.cache_data(show_spinner="Refitting the Dawid–Skene model on resamples of the images…", max_entries=8)
def corrected(home: str, study: str, skin_cut: int, fingerprint: str):
    """The slow part, once per study, cut and state of the annotations."""
    return agreement_view(open_store(home), study, skin_cut=skin_cut).corrected()


try:
    view = agreement_view(store, study, skin_cut=skin_cut)
except ValueError as error:
    st.error(plain(error), icon=":material/error:")
    st.stop()
if view.result is None:
    st.info(f"Nothing is annotated in study “{plain(study)}” yet. {NEEDS_RATERS}: ask two or more raters to "
            "annotate its images on the Annotate page (each under their own name).", icon=":material/info:")
    st.stop()
if view.result.single_rater:
    st.info(f"{NEEDS_RATERS}; study “{plain(study)}” has one ({plain(view.result.raters[0])}). Ask a second rater "
            "to annotate the same images on the Annotate page, or import their sheet.", icon=":material/info:")
    st.stop()

st.caption(f"{view.raters} raters; {view.result.confidence:.0%} bootstrap intervals over images. {READING}")
st.dataframe(summary_table(view.result), hide_index=True)
st.subheader("Every pair of raters")
st.dataframe(pairs_table(view.result), hide_index=True)
st.subheader("Each rater against the others")
st.dataframe(raters_table(view.result), hide_index=True)

st.subheader("Shares corrected for rater error")
st.caption(view.assumption)
if st.toggle("Show the shares corrected for rater error (Dawid–Skene)",
             help="Refits the model on each of 100 bootstrap resamples of the images, per family: a minute or two."):
    st.dataframe(corrected(str(current_home()), study, skin_cut, view.fingerprint), hide_index=True)
