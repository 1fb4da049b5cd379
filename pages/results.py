"""Results: each perceived group's share with its interval, against demographic parity."""

import streamlit as st

from app.resources import current_home, open_store
from app.widgets import plain
from sdaudit.charts import GROUP_LABELS, comparison_chart, shares_chart, to_png, to_svg
from sdaudit.errors import StoreError
from sdaudit.report import LIMITATIONS, audit_card, render_report
from sdaudit.stats import METHODS, compare, estimate, estimate_each, group_images, plan
from sdaudit.store import image_file

METHOD_LABELS = {
    "jackknife": "Jackknife (origin study)",
    "wilson": "Wilson score",
    "clopper-pearson": "Clopper–Pearson (exact)",
    "bootstrap": "Bootstrap (percentile)",
}

st.title("Results")
try:
    store = open_store(current_home())
    studies = store.study_names()
except StoreError as error:
    st.error(str(error), icon=":material/error:")
    st.stop()
if not studies:
    st.info("No study yet. Generate images and annotate them, or import a rater sheet: "
            "`python -m sdaudit import-annotations SHEET.csv --study NAME --rater NAME`.", icon=":material/info:")
    st.stop()

study = st.selectbox("Study", studies)
annotations = store.annotations(study=study)
if annotations.empty:
    st.info(f"Nothing is annotated in study “{plain(study)}” yet: annotate its images first, or import a sheet.",
            icon=":material/info:")
    st.stop()

runs = store.runs(study=study)
run_labels = {row.run_key: f"{row.prompt or '(imported sheet)'} · {row.model} · {row.images} images"
              for row in runs.itertuples()}
chosen_runs = st.multiselect("Runs", list(run_labels), default=list(run_labels), format_func=run_labels.get)
annotations = annotations[annotations["run_key"].isin(chosen_runs)]

left, middle, right = st.columns(3)
method = left.selectbox("Interval method", METHODS, format_func=METHOD_LABELS.get)
confidence = middle.select_slider("Confidence", options=[0.80, 0.90, 0.95, 0.99], value=0.95,
                                  format_func=lambda value: f"{value:.0%}")
skin_cut = right.slider("Skin-tone cut: MST 1 to this value counts as lighter", 1, 9, 5,
                        help="The origin study used 5 (MST 1–5 lighter, 6–10 darker); Google groups MST as "
                             "1–3 / 4–6 / 7–10. Move it to see how the conclusions depend on the cut.")
include_unclear = st.toggle("Count “unclear” answers in the denominator", value=True)

result = estimate(annotations, method=method, confidence=confidence, skin_cut=skin_cut,
                  include_unclear=include_unclear, seed=0)
rater_word = "one rater" if result.raters == 1 else f"{result.raters} raters"
st.caption(
    f"{result.images} annotated images with a person, {rater_word}. Shares of *perceived* gender presentation "
    f"and skin tone; gender is a binary simplification (plus “unclear”); skin tone is MST 1–{skin_cut} lighter, "
    f"{skin_cut + 1}–10 darker. "
    + ("With a single rater, disagreement between raters is not visible in the intervals. " if result.raters == 1 else "")
    + ("Jackknife intervals use a normal (z) critical value, as in the origin study." if method == "jackknife" else "")
)

if result.images == 0:
    st.info("None of the chosen annotations has a person in the image, so there is nothing to estimate.",
            icon=":material/info:")
    st.stop()

chart = shares_chart(result.table)
st.altair_chart(chart, width="content")

unreliable = result.unreliable
if not unreliable.empty:
    names = ", ".join(GROUP_LABELS.get(group, group) for group in unreliable["group"].unique())
    st.warning(f"Unreliable intervals (few images in or outside the group): {names}. "
               "Read them as rough; annotate more images before drawing conclusions.", icon=":material/warning:")

table = result.table.copy()
table["group"] = table["group"].map(GROUP_LABELS).fillna(table["group"])
table["note"] = ""
table.loc[table["small_count"], "note"] = "few images: unreliable"
table.loc[table["degenerate"], "note"] = "none or all in the group: no interval"
st.dataframe(
    table[["family", "group", "count", "n", "share", "low", "high", "target", "difference", "note"]],
    hide_index=True,
    column_config={
        "count": st.column_config.NumberColumn("images in group", format="%.1f"),
        "n": st.column_config.NumberColumn("images"),
        **{name: st.column_config.NumberColumn(name, format="percent") for name in
           ("share", "low", "high", "target", "difference")},
    },
)

with st.expander("How many more images would settle it?"):
    planned = plan(result)
    planned["group"] = planned["group"].map(GROUP_LABELS)
    st.caption("At the current shares, how many more annotated images with a person the jackknife interval "
               "needs before it lies wholly on one side of the target (0: it already does).")
    st.dataframe(planned[["family", "group", "share", "target", "more_images_to_separate"]], hide_index=True,
                 column_config={"share": st.column_config.NumberColumn(format="percent"),
                                "target": st.column_config.NumberColumn(format="percent"),
                                "more_images_to_separate": st.column_config.NumberColumn("more images")})

if len(chosen_runs) > 1 and st.toggle("Compare the chosen runs side by side"):
    by_run = {run_labels[key]: each for key, each in estimate_each(
        annotations, "run_key", method=method, confidence=confidence, skin_cut=skin_cut,
        include_unclear=include_unclear, seed=0).items()}
    st.altair_chart(comparison_chart({label: each.table for label, each in by_run.items()}), width="content")
    first_label, second_label = list(by_run)[:2]
    differences = compare(by_run[first_label], by_run[second_label], confidence=confidence)
    st.caption(f"Difference “{plain(first_label)}” minus “{plain(second_label)}”, with a normal interval from the two "
               "jackknife standard errors.")
    st.dataframe(differences[["family", "group", "share_first", "share_second", "difference", "low", "high",
                              "excludes_zero"]], hide_index=True)

with st.expander("Limits of this method"):
    for item in LIMITATIONS:
        st.markdown(f"- {item}", unsafe_allow_html=True)

st.subheader("Images by group")
group_choices = [(row.family, row.group) for row in result.table.itertuples() if row.count > 0]
family, group = st.selectbox("Group", group_choices, format_func=lambda key: GROUP_LABELS.get(key[1], key[1]))
members = group_images(annotations, family, group, skin_cut=skin_cut, include_unclear=include_unclear)
files = [image_file(current_home(), path) for path in members["path"]]
files = [str(path) for path in files if path is not None]
missing = len(members) - len(files)
st.caption(f"{len(members)} images" + (f"; {missing} have no image file here (imported sheets, or moved files)."
                                        if missing else "."))
if files:
    st.image(files[:24], width=128)

st.subheader("Downloads")
first, second, third, fourth = st.columns(4)
first.download_button("Estimates (CSV)", result.table.to_csv(index=False), f"{study}-estimates.csv", "text/csv")
second.download_button("Chart (PNG)", lambda: to_png(chart), f"{study}-chart.png", "image/png")
third.download_button("Chart (SVG)", lambda: to_svg(chart), f"{study}-chart.svg", "image/svg+xml")
fourth.download_button("Report (HTML)", lambda: render_report(result, audit_card(store, study)),
                       f"{study}-report.html", "text/html")
