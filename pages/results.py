"""Results: each perceived group's share with its interval, against demographic parity."""

import streamlit as st

from app.resources import current_home, current_study, open_store
from app.widgets import is_admin, plain
from sdaudit.analysis.label_modes import LABEL_TITLES, RESULTS_LABELS
from sdaudit.analysis.machine_human import MACHINE_HUMAN
from sdaudit.analysis.options import DEFAULT_CONFIDENCE, METHODS, EstimateOptions
from sdaudit.analysis.rater_quality import POOLING
from sdaudit.files.csvfile import spreadsheet_safe
from sdaudit.present.charts import (
    across_runs_chart,
    comparison_chart,
    differences_chart,
    reference_differences_chart,
    shares_chart,
    to_png,
    to_svg,
)
from sdaudit.present.columns import fitted
from sdaudit.present.estimate_tables import (
    MACHINE_HUMAN_CHART_NOTE,
    MACHINE_HUMAN_LIMITS,
    MACHINE_HUMAN_TITLE,
    across_runs_table,
    reference_differences_table,
)
from sdaudit.present.report import LIMITATIONS
from sdaudit.present.results import (
    machine_human_available,
    machine_human_view,
    results_view,
    run_choices,
    study_report,
)
from sdaudit.present.study_views import READING_RULE
from sdaudit.present.team_tables import GROUPS_CAVEAT, rater_groups_view
from sdaudit.present.words import HOLM_INTERVALS, METHOD_LABELS, level, reliability_rule
from sdaudit.scheme import DEFAULT_SKIN_CUT
from sdaudit.store.team import Team


def show_table(table) -> None:
    """A table drawn to fit the page's column: no column cut off at the right (``columns.fitted``)."""
    layout = fitted(table)
    st.dataframe(table, hide_index=True, column_config=layout.column_config, row_height=layout.row_height,
                 height=layout.height or "auto")


def show_machine_human(store, study: str, **options) -> None:
    """The prediction-powered shares: header, chart, table and the method's limits."""
    try:
        view = machine_human_view(store, study, **options)
    except ValueError as error:
        st.info(plain(error), icon=":material/info:")
        return
    result = view.estimate
    notes = [line for line in (result.target_note, result.left_out_note, result.skipped_note) if line]
    # the CLI's header: title, runs, machine, people, interval, limits[, note every row][, the notes below]
    lines = [line for line in view.header.split("\n") if line not in notes]
    st.caption(plain(". ".join(lines[1:4] + lines[6:])))
    for note in notes:
        st.info(plain(note), icon=":material/info:")
    st.altair_chart(shares_chart(view.chart_rows, title="Share of images by perceived group, machine + human",
                                 intervals=MACHINE_HUMAN_CHART_NOTE,
                                 x_title="share of all images (no person: a row of its own)"), width="content")
    show_table(view.table)
    st.caption("The interval method, the “unclear” toggle and simultaneous intervals apply to people's labels "
               "alone; this view has its own.")
    with st.expander("Limits of this method", expanded=True):
        st.markdown(MACHINE_HUMAN_LIMITS)
    st.download_button("Estimates (CSV)", spreadsheet_safe(view.estimate.table).to_csv(index=False),
                       f"{study}-machine-human.csv", "text/csv", on_click="ignore")


st.title("Results")
store = open_store(current_home())
studies = store.study_names()
if not studies:
    st.info("No study yet. Generate images and annotate them, or import a rater sheet: "
            "`python -m sdaudit import-annotations SHEET.csv --study NAME --rater NAME`.", icon=":material/info:")
    st.stop()

study = current_study()  # the sidebar's: one study at a time across the pages
st.caption(f"Study “{plain(study)}” (choose another in the sidebar).")
run_labels = run_choices(store, study)
chosen_runs = st.multiselect("Runs", list(run_labels), default=list(run_labels), format_func=run_labels.get)
left, labels_column, middle, right = st.columns(4)
method = left.selectbox("Interval method", METHODS, format_func=METHOD_LABELS.get)
# machine + human for admins, as the Automatic labels page: raters label the sample blind to the machine
label_choices = (*RESULTS_LABELS, *((MACHINE_HUMAN,) if is_admin() and machine_human_available(store, study) else ()))
labels = labels_column.selectbox("Labels", label_choices,
                                 format_func={**LABEL_TITLES, MACHINE_HUMAN: MACHINE_HUMAN_TITLE.capitalize()}.get,
                                 help="How each image's label is formed from its raters' answers; where the study "
                                      "has machine labels and a random human sample, also the two combined.")
confidence = middle.select_slider("Confidence", options=[0.80, 0.90, 0.95, 0.99], value=DEFAULT_CONFIDENCE,
                                  format_func=level)
skin_cut = right.slider("Skin-tone cut: MST 1 to this value counts as lighter", 1, 9, DEFAULT_SKIN_CUT,
                        help="The origin study used 5 (MST 1–5 lighter, 6–10 darker); Google groups MST as "
                             "1–3 / 4–6 / 7–10. Move it to see how the conclusions depend on the cut.")
include_unclear = st.toggle("Count “unclear” answers in the denominator", value=True)
simultaneous = st.toggle("Simultaneous intervals (Bonferroni across the named groups)", value=False,
                         help="Each interval is widened so that all of them hold together with the chosen confidence.")

if labels == MACHINE_HUMAN:
    show_machine_human(store, study, confidence=confidence, skin_cut=skin_cut, runs=chosen_runs)
    st.stop()

try:
    options = EstimateOptions(method=method, confidence=confidence, skin_cut=skin_cut, labels=labels,
                              include_unclear=include_unclear, simultaneous=simultaneous)
    view = results_view(store, study, options, runs=chosen_runs)
except ValueError as error:
    st.error(plain(error), icon=":material/error:")
    st.stop()
if view.annotated == 0:
    st.info(f"Nothing is annotated in study “{plain(study)}” yet: annotate its images first, or import a sheet.",
            icon=":material/info:")
    st.stop()
if view.estimate is None:
    st.info("None of the chosen runs has annotations: choose other runs.", icon=":material/info:")
    st.stop()
st.caption(view.summary)
if view.estimate.images == 0:
    st.info("None of the chosen annotations has a person in the image, so there is nothing to estimate.",
            icon=":material/info:")
    st.stop()

chart = shares_chart(view.estimate.table, intervals=view.estimate.chart_note)
st.altair_chart(chart, width="content")
if rule := reliability_rule(view.estimate.method):
    st.caption(rule)
if view.unreliable_warning:
    st.warning(view.unreliable_warning, icon=":material/warning:")
show_table(view.table)
st.caption(view.target_note)

with st.expander("How many more images would settle it?"):
    st.caption("If each true share is today's estimate: how many annotated images with a person the chosen "
               "interval needs to lie wholly on one side of the target with an 80% chance (in all, and more "
               "than today), at that number and any larger one, and how many for an interval of ±5 percentage "
               f"points. Planned for the interval shown: {view.estimate.interval_note}; never fewer than an "
               "effective 30 images, the fewest the NCHS standard reports.")
    show_table(view.plan)

if len(view.runs) > 1:
    st.subheader("Across runs")
    family, group = st.selectbox("Group to follow across the runs", list(view.groups), format_func=view.groups.get,
                                 key="across_runs_group")
    rows = view.across_runs(family, group)
    if rows.empty:
        st.info("Only one of the chosen runs has annotations.", icon=":material/info:")
    else:
        st.altair_chart(across_runs_chart(rows), width="content")
        show_table(across_runs_table(rows))
        differences = view.reference_differences(family, group)
        if not differences.empty:
            st.altair_chart(reference_differences_chart(differences), width="content")
            st.caption(f"The reference set is the one named after the run's prompt, or the study's only one. {READING_RULE}")
            show_table(reference_differences_table(differences))
        elif group != "unclear":  # differences are read for the named groups only
            st.caption(view.reference_hint)
    if st.toggle("Show a few images of each run", help="Up to six images per run, grouped by prompt."):
        prompt = None
        for strip in view.strips():
            if strip.prompt != prompt:
                prompt = strip.prompt
                st.markdown(f"**{plain(prompt)}**")
            st.caption(plain(strip.label) + (f" — {strip.missing} images without a file here are skipped."
                                             if strip.missing else ""))
            if strip.files:
                st.image(list(strip.files), caption=list(strip.captions), width=96)

if len(view.runs) > 1 and st.toggle("Compare the chosen runs side by side"):
    left, right = st.columns([3, 1])
    reference = left.selectbox("Compare each run with", view.runs, format_func=view.run_labels.get)
    adjust = right.toggle("Holm adjustment", help="Adjust the tests for the number of runs × groups compared.")
    comparison = view.comparison(reference, adjust_holm=adjust)
    if comparison is None:
        st.info("Only one of the chosen runs has annotations.", icon=":material/info:")
    else:
        st.altair_chart(differences_chart(comparison.raw, reference=comparison.reference), width="content")
        st.caption(f"Each run minus “{plain(comparison.reference)}”, with Newcombe's score interval for a "
                   "difference of two shares" + (f". {HOLM_INTERVALS}." if adjust else "."))
        show_table(comparison.differences)
        st.altair_chart(comparison_chart(comparison.tables), width="content")

if is_admin() and (rater_fields := Team(store).settings(study).rater_fields):  # raters' answers: admins only
    with st.expander("Shares as seen by each rater group"):
        field_name = st.selectbox("Rater-group field", rater_fields)
        try:
            groups = rater_groups_view(store, study, field_name, view.options, with_agreement=False)
        except ValueError as error:
            st.info(plain(error), icon=":material/info:")
        else:
            st.caption(f"Each group minus “{plain(groups.reference)}”, all runs, soft labels. {POOLING} "
                       f"{GROUPS_CAVEAT}")
            show_table(groups.differences)

with st.expander("Limits of this method"):
    for item in LIMITATIONS:
        st.markdown(f"- {item}", unsafe_allow_html=True)

st.subheader("Images by group")
if not view.groups:  # e.g. one image with no person, one with a person but no other answer yet
    st.info("No group has an image yet: no annotated image has a gender presentation or a skin tone. Answer them "
            "on Annotate to see the images of each group here.", icon=":material/info:")
else:
    family, group = st.selectbox("Group", list(view.groups), format_func=view.groups.get)
    members = view.group_images(family, group)
    st.caption(f"{members.images} images" + (f"; {members.missing} cannot be shown here (no file: imported sheets or "
                                              "moved files; or not an image)." if members.missing else "."))
    if members.files:
        st.image(list(members.files), width=128)

st.subheader("Downloads")
first, second, third, fourth = st.columns(4)
# on_click="ignore": a click does not rerun the page. With the default rerun, the rerun could drop
# the deferred file's id before the browser fetched it ("Deferred file ... not found"), so a first
# click did nothing; and every download recomputed the page.
first.download_button("Estimates (CSV)", spreadsheet_safe(view.estimate.table).to_csv(index=False), f"{study}-estimates.csv", "text/csv",
                      on_click="ignore")
second.download_button("Chart (PNG)", lambda: to_png(chart), f"{study}-chart.png", "image/png", on_click="ignore")
third.download_button("Chart (SVG)", lambda: to_svg(chart), f"{study}-chart.svg", "image/svg+xml", on_click="ignore")
fourth.download_button("Report (HTML)", lambda: study_report(store, view, machine=is_admin()), f"{study}-report.html", "text/html",
                       on_click="ignore")
