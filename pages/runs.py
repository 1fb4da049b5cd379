"""Runs: what has been generated so far, with every setting that made it."""

from datetime import UTC, datetime

import streamlit as st

from app.resources import auto_snapshot, current_home, current_rater, current_study, job_runner, open_store
from app.widgets import admin_unlocked, plain
from sdaudit.config import int_setting
from sdaudit.files.reference import ingest_uploaded_images
from sdaudit.files.sheets import import_uploaded_sheet
from sdaudit.generation.jobs import progress_text
from sdaudit.machine.clip import DEFAULT_CLIP_MODEL
from sdaudit.machine.labellers import LABELLERS
from sdaudit.present.results import runs_table
from sdaudit.records import run_labels

st.title("Runs")
runs = open_store(current_home()).runs()

if runs.empty:
    st.info(
        "No images yet. Generate some on the Generate page, or from a terminal, e.g. "
        "`python -m sdaudit generate --model demo --seeds 0-7 --steps 10 --height 64 --width 64` "
        "(the `demo` model runs offline with random weights: its images are noise).",
        icon=":material/info:",
    )
else:
    st.dataframe(runs_table(runs), hide_index=True)  # cells are text: a prompt cannot become a link

st.subheader("Import a rater sheet")
st.caption("The origin study's sheet (male_presenting, female_presenting, monk_binary, confidence) or an "
           "sdaudit export. A malformed file is refused whole, with the row and column of its first problem.")
st.markdown(f"Imports into study **{plain(current_study())}**, the study chosen in the sidebar.")
admin = admin_unlocked()  # asked once per page: the password form is drawn here or nowhere
if admin:
    limit_mb = int_setting("max_upload_mb")
    sheet = st.file_uploader("Sheet (CSV)", type=["csv"], max_upload_size=limit_mb)
    sheet_format = st.radio("Format", ["origin", "sdaudit"], horizontal=True,
                            format_func={"origin": "Origin study's sheet", "sdaudit": "sdaudit export"}.get)
    if sheet_format == "origin":
        sheet_rater = st.text_input("Rater of this sheet", value=current_rater()) or None
    else:
        sheet_rater = None
        st.caption("An sdaudit export names its raters in its rater column, and recreates each of its runs.")
    if sheet is not None and st.button(f"Import into study {plain(current_study())}"):
        try:
            result = import_uploaded_sheet(open_store(current_home()), sheet.getvalue(), sheet.name,
                                           study=current_study(), rater=sheet_rater,
                                           sheet_format=sheet_format, max_bytes=limit_mb * 1024 * 1024)
        except ValueError as error:
            st.error(plain(error), icon=":material/error:")
        else:
            st.success(plain(result.summary[0].upper() + result.summary[1:]) + ".", icon=":material/check_circle:")

st.subheader("Add a reference set of real images")
st.caption("Real photographs (JPEG, PNG or WebP) to annotate beside the generated images, as a reference run of "
           "this study. Unreadable and duplicate files are named and skipped. In blind mode they are shuffled in.")
if admin:
    with st.form("reference"):
        uploads = st.file_uploader("Real images", type=["jpg", "jpeg", "png", "webp"], accept_multiple_files=True,
                                   max_upload_size=limit_mb)
        set_name = st.text_input("Reference set name", placeholder="occupation photos 2024")
        set_source = st.text_input("Source", help="Where the images come from; kept with the run.")
        set_license = st.text_input("License", placeholder="CC BY 4.0")
        if st.form_submit_button("Add reference set"):
            try:
                added = ingest_uploaded_images([(upload.name, upload.getvalue()) for upload in uploads or []],
                                               open_store(current_home()), current_home(), name=set_name.strip(),
                                               study=current_study(), source=set_source, license=set_license)
            except ValueError as error:
                st.error(plain(error), icon=":material/error:")
            else:
                st.success(plain(added.summary) + ".", icon=":material/check_circle:")

st.subheader("Label automatically")
st.caption("Machine labels (CLIP zero-shot, or skin pixels matched to MST swatches) for this study's generated "
           "images, kept apart from people's labels. It runs in the background; labelling again labels only the rest.")
study_runs = runs[(runs["study"] == current_study()) & (runs["kind"] == "generated")] if not runs.empty else runs
if admin and not study_runs.empty:
    runner = job_runner(current_home())
    with st.form("machine-label"):
        labeller = st.selectbox("Labeller", LABELLERS)
        clip_model = st.text_input("CLIP model", value=DEFAULT_CLIP_MODEL,
                                   help="A hub id, a local CLIP folder, or `demo` (a tiny offline CLIP with random "
                                        "weights: its labels are noise). The skin-pixels labeller takes none.")
        chosen = st.multiselect("Runs (none chosen: every run)", list(study_runs["run_key"]),
                                format_func=run_labels(study_runs).get)
        if st.form_submit_button(f"Label study {plain(current_study())} automatically"):
            try:
                job_id = runner.submit_labelling(current_study(), labeller, run_keys=chosen or None,
                                                 model=(clip_model.strip() or None) if labeller == "clip" else None)
            except ValueError as error:
                st.error(plain(error), icon=":material/error:")
            else:
                st.success(f"Queued job {job_id}: {labeller} labels for study {plain(current_study())}.",
                           icon=":material/check_circle:")

    @st.fragment(run_every=1.5)
    def labelling_jobs() -> None:
        now = datetime.now(UTC)
        for job in [job for job in runner.queue.jobs() if job.kind == "machine-label"][:5]:
            fraction, words = progress_text(job, now)
            st.progress(fraction, text=f"Job {job.job_id} ({job.status}): {plain(words)}")
            if job.status == "failed":
                st.error(f"Job {job.job_id} failed: {plain((job.error or '').partition(chr(10))[0])}",
                         icon=":material/error:")

    labelling_jobs()

st.subheader("Snapshot")
keeper = auto_snapshot(current_home())
if keeper is None:
    st.caption("Set `SDAUDIT_SNAPSHOT_TARGET` (a folder, or hf://datasets/OWNER/NAME) to keep snapshots of this "
               "store; on a Space without a persistent disk that is what survives a restart.")
else:
    if keeper.restored:
        st.caption(f"Restored on start from {plain(keeper.target)}.")
    if keeper.last_error:
        st.error(plain(keeper.last_error), icon=":material/error:")
    elif keeper.last_success:
        st.caption(f"Last snapshot: {keeper.last_success.rows.get('annotations', 0)} annotations, "
                   f"{keeper.last_success.images} images, to {plain(keeper.target)}.")
    if admin and st.button("Snapshot now"):
        if keeper.snapshot_now() is not None:
            st.success(f"Snapshot written to {plain(keeper.target)}.", icon=":material/check_circle:")
        else:
            st.error(plain(keeper.last_error), icon=":material/error:")
