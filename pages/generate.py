"""Generate: queue a generation run; it goes on in the background while you work elsewhere."""

from datetime import UTC, datetime

import streamlit as st

from app.resources import current_home, current_study, job_runner, open_store
from app.widgets import admin_unlocked, jobs_table, plain
from sdaudit.config import DEMO_MODEL, gpu_present
from sdaudit.gallery import newest_images
from sdaudit.generation_form import check_form
from sdaudit.jobs import ACTIVE, RESUMABLE, progress_text
from sdaudit.spec import SCHEDULERS, GenerationSpec

st.title("Generate")
home = current_home()
store = open_store(home)
runner = job_runner(home)
if not admin_unlocked():
    st.stop()

if not gpu_present():
    st.warning("No GPU found: generation runs on the CPU. Stable Diffusion v1-4 at 512×512 with 50 steps takes "
               "minutes per image there; the offline `demo` model (random weights) takes about a second.",
               icon=":material/warning:")

try:
    defaults = GenerationSpec.from_settings()  # SDAUDIT_MODEL, SDAUDIT_DEVICE, SDAUDIT_DTYPE, as the CLI
except ValueError as error:
    st.error(plain(error), icon=":material/error:")
    st.stop()

with st.form("generate"):
    model = st.text_input("Model", value=defaults.model,
                          help="A diffusers text-to-image model: a hub id, a local folder, or `demo` — a tiny "
                               "offline model with random weights whose images are noise, for trying the flow.")
    prompt = st.text_input("Prompt", value=defaults.prompt)
    negative_prompt = st.text_input("Negative prompt", value=defaults.negative_prompt)
    with st.expander("A study: a prompt set and more models (optional)"):
        prompt_template = st.text_input(
            "Prompt template", placeholder="a photo of a {}",
            help="A prompt with one slot {}. When given, it replaces the Prompt above: each slot value makes "
                 "one run, and each run remembers its value.")
        slot_values = st.text_area("Slot values, one a line", placeholder="doctor\nnurse\nCEO\njanitor")
        more_models = st.text_area("More models, one a line",
                                   help="Every prompt is generated with the Model above and with each of these, "
                                        "over the same seeds, in one job.")
    # No min/max on the numbers: a browser field holding an out-of-range value turns red and is never
    # sent, so Generate did nothing silently. Every value is sent and checked with the spec's messages.
    first, size, count = st.columns(3)
    first_seed = first.number_input("First seed", value=defaults.first_seed, step=1)
    batch_size = size.number_input("Batch size", value=defaults.batch_size, step=1)
    batch_count = count.number_input("Batch count", value=1, step=1)
    left, middle, right = st.columns(3)
    schedulers = list(SCHEDULERS)
    scheduler = left.selectbox("Scheduler", schedulers, index=schedulers.index(defaults.scheduler),
                               format_func=lambda name: f"{name} (default)" if name == defaults.scheduler else name)
    steps = middle.number_input("Steps", value=defaults.steps, step=1)
    guidance = right.number_input("Guidance", value=float(defaults.guidance), step=0.5)
    width_column, height_column = st.columns(2)
    width = width_column.number_input("Width", value=defaults.width, step=8)
    height = height_column.number_input("Height", value=defaults.height, step=8)
    safety_checker = st.toggle("Safety checker", value=defaults.safety_checker,
                               help="Off by default for auditing: it blacks out flagged images, which would then "
                                    "count silently as “no person”. When on, each image's flag is recorded.")
    submitted = st.form_submit_button("Generate", type="primary")

if submitted:
    checked = check_form(
        defaults, batch_count=int(batch_count), model=model.strip(), prompt=prompt, negative_prompt=negative_prompt,
        first_seed=int(first_seed), batch_size=int(batch_size), steps=int(steps), guidance=float(guidance),
        height=int(height), width=int(width), scheduler=scheduler, safety_checker=safety_checker,
        study=current_study(), prompt_template=prompt_template, slot_values=slot_values, more_models=more_models,
    )
    if checked.problems:  # one message, naming each bad field
        st.error("\n\n".join(plain(problem) for problem in checked.problems.values()), icon=":material/error:")
    else:
        spec = checked.spec
        try:
            job_id = runner.submit(spec, models=checked.models, prompt_set=checked.prompt_set)
        except ValueError as error:
            st.error(plain(error), icon=":material/error:")
            st.stop()
        runs = f" in each of {checked.runs} runs (prompt × model)" if checked.runs > 1 else ""
        st.success(f"Queued job {job_id}: seeds {spec.first_seed}–{spec.last_seed}{runs} for study {plain(spec.study)}. "
                   "It runs in the background; you can switch pages or close this tab.", icon=":material/check_circle:")
if model.strip() == DEMO_MODEL:
    st.info("`demo` is a tiny model with random weights: its images are noise, for trying sdaudit offline.",
            icon=":material/info:")

@st.fragment(run_every=1.5)
def jobs_panel() -> None:
    jobs = runner.queue.jobs()
    if not jobs:
        st.caption("No runs yet: fill in the form and press Generate.")
        return
    now = datetime.now(UTC)
    active = [job for job in jobs if job.status in ACTIVE]
    if not active:
        last = jobs[0]
        if last.status == "failed":
            st.error(f"Job {last.job_id} failed: {plain(last.error)}", icon=":material/error:")
        else:
            st.caption(f"Last job {last.job_id}: {last.status}, {last.images_done} of {last.images_total} images. "
                       "Annotate them on the Annotate page.")
    for job in active:
        fraction, words = progress_text(job, now)
        st.progress(fraction, text=f"Job {job.job_id} ({job.status}): {words}")
        if st.button("Cancel", key=f"cancel-{job.job_id}"):
            runner.cancel(job.job_id)
        if job.run_key:
            newest = newest_images(store, home, job.run_key)
            if newest.files:
                st.image(list(newest.files), width=96, caption=list(newest.captions))
    st.subheader("Jobs")
    st.markdown(jobs_table(jobs))
    for job in jobs:
        if job.status in RESUMABLE and st.button(
                f"Resume job {job.job_id} ({job.status})", key=f"resume-{job.job_id}",
                help="Generates only the seeds still missing."):
            runner.resume(job.job_id)


jobs_panel()
