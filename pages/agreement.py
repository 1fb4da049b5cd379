"""Agreement: how well the raters agree on each label, and the shares corrected for rater error.

An admin (``is_admin``) sees every rater: each pair, each rater, the gold results, the repeats and the
rater groups. A rater sees their own rows and the others only in aggregate; gold results (which would
tell a rater which images are gold), repeats and rater groups are for admins only.
"""

import streamlit as st

from app.resources import current_home, current_rater, open_store
from app.widgets import is_admin, plain
from sdaudit.analysis.options import EstimateOptions
from sdaudit.analysis.rater_quality import POOLING
from sdaudit.present.agreement_tables import (
    NEEDS_RATERS,
    READING,
    agreement_view,
    pairs_table,
    raters_table,
    summary_table,
)
from sdaudit.present.team_tables import GROUPS_CAVEAT, quality_view, rater_groups_view
from sdaudit.present.words import ANSWERS, MATCH_NOTE, level
from sdaudit.scheme import DEFAULT_SKIN_CUT
from sdaudit.store.team import Team

OWN_ROWS = "Your own rows (your name in the sidebar), and the other raters only as the median of their rows."
NO_NAME = "Enter your name in the sidebar (Rater) to see your own rows; the other raters are shown only as the median."
ADMINS_ONLY = "Each rater's results on gold images and on repeats, and the rater groups, are shown to admins only."

st.title("Agreement")
viewer = None if is_admin() else current_rater()  # None: every rater's rows (an admin); else only one's own
store = open_store(current_home())
studies = store.study_names()
if not studies:
    st.info("No study yet. Annotate images with two or more raters, or import their sheets: "
            "`python -m sdaudit import-annotations SHEET.csv --study NAME --format sdaudit`.", icon=":material/info:")
    st.stop()

left, right = st.columns(2)
current = st.session_state.get("study")  # the sidebar's study, when it has one
study = left.selectbox("Study", studies, index=studies.index(current) if current in studies else 0)
skin_cut = right.slider("Skin-tone cut: MST 1 to this value counts as lighter", 1, 9, DEFAULT_SKIN_CUT)


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
    only = view.result.raters[0]
    named = f" ({plain(only)})" if viewer in (None, only) else ""
    st.info(f"{NEEDS_RATERS}; study “{plain(study)}” has one{named}. Ask a second rater "
            "to annotate the same images on the Annotate page, or import their sheet.", icon=":material/info:")
else:
    st.caption(f"{view.raters} raters answered; {level(view.result.confidence)} bootstrap intervals over images. "
               f"{ANSWERS} {READING}")
    st.dataframe(summary_table(view.result), hide_index=True)
    if viewer is not None:
        st.caption(OWN_ROWS if viewer else NO_NAME)
    st.subheader("Every pair of raters" if viewer is None else "Your pairs of raters, and the other pairs")
    st.dataframe(pairs_table(view.result, for_rater=viewer), hide_index=True)
    st.subheader("Each rater against the others" if viewer is None else "You against the others")
    st.dataframe(raters_table(view.result, for_rater=viewer), hide_index=True)

    st.subheader("Shares corrected for rater error")
    st.caption(view.assumption)
    if st.toggle("Show the shares corrected for rater error (Dawid–Skene)",
                 help="Refits the model on each bootstrap resample of the images, per family: seconds, or minutes "
                      "when many raters each rated a few of many images."):
        st.dataframe(corrected(str(current_home()), study, skin_cut, view.fingerprint), hide_index=True)

if viewer is not None:  # a rater who saw gold results could tell which images are gold and game the check
    st.info(ADMINS_ONLY, icon=":material/lock:")
    st.stop()
quality = quality_view(store, study, skin_cut=skin_cut)
st.subheader("Each rater against the gold images")
if quality.gold.empty:
    st.info("No rater has answered a gold image yet. An admin marks gold images, with reference labels, on the Team "
            "page.", icon=":material/info:")
else:
    st.caption(f"The share of each rater's answers on gold images that match the reference labels, per field; {MATCH_NOTE}.")
    st.dataframe(quality.gold, hide_index=True)
st.subheader("Each rater against their own repeats")
if quality.repeats.empty:
    st.info("No repeats answered yet. An admin can have images shown again, blind, on the Team page (Settings).",
            icon=":material/info:")
else:
    st.caption("The share of repeats on which each rater gave the same answer as the first time, per field "
               f"({MATCH_NOTE}). Repeat answers never count in the results.")
    st.dataframe(quality.repeats, hide_index=True)

st.subheader("By rater group")
fields = Team(store).settings(study).rater_fields
if not fields:
    st.info("No rater groups: an admin can ask raters to describe themselves (e.g. region, expertise) on the Team "
            "page.", icon=":material/info:")
else:
    field_name = st.selectbox("Rater-group field", fields)
    try:
        groups = rater_groups_view(store, study, field_name, EstimateOptions(skin_cut=skin_cut))
    except ValueError as error:
        st.info(plain(error), icon=":material/info:")
    else:
        st.caption(f"Agreement within each group of raters by “{plain(field_name)}”. {POOLING}")
        st.dataframe(groups.agreement, hide_index=True)
        st.caption(f"Shares as seen by each group minus those seen by “{plain(groups.reference)}”, with an "
                   f"interval. {GROUPS_CAVEAT}")
        st.dataframe(groups.differences, hide_index=True)
