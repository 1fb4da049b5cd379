"""Generate: queue a generation run; it goes on in the background while you work elsewhere."""

from datetime import UTC, datetime
from pathlib import Path

import streamlit as st

from app.resources import current_home, current_study, job_runner, open_store
from app.widgets import admin_unlocked, jobs_table, plain
from sdaudit.config import DEMO_MODEL, gpu_present
from sdaudit.files.gallery import newest_images
from sdaudit.generation.form import DEMO_VALUES, check_form, remembered
from sdaudit.generation.jobs import ACTIVE, RESUMABLE, progress_text
from sdaudit.generation.spec import SCHEDULERS, GenerationSpec

ANNOTATE = Path(__file__).resolve().parent / "annotate.py"

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

FORM_FIELDS = ("model", "prompt", "negative_prompt", "first_seed", "batch_size", "scheduler", "steps", "guidance",
               "width", "height", "safety_checker")


def fill_form(values: dict) -> None:
    """Put ``values`` (form field -> value) into the form's widgets (a callback, or before they are drawn)."""
    for name, value in values.items():
        st.session_state[f"form_{name}"] = float(value) if name == "guidance" else value


def use_demo() -> None:
    fill_form(DEMO_VALUES)


study = current_study()
if st.session_state.get("form_study") != study or "form_model" not in st.session_state:
    # a first visit, a return to the page, or another study: its last job's settings, else the defaults
    remembered_spec, remembered_count = remembered(defaults, runner.queue.jobs(), study)
    fill_form({**{name: getattr(remembered_spec, name) for name in FORM_FIELDS}, "batch_count": remembered_count,
               "exact": remembered_spec.mode == "exact"})
    st.session_state["form_study"] = study

st.button("Try the offline demo model", icon=":material/science:", on_click=use_demo,
          help="Fills the form with the tiny `demo` model: 8 images of 64×64 noise in 10 steps, in seconds, "
               "to try Generate → Annotate → Results without a GPU or network.")
with st.form("generate", enter_to_submit=False):  # Enter in a field must not start a job of hundreds of images
    model = st.text_input("Model", key="form_model",
                          help="A diffusers text-to-image model: a hub id, a local folder, or `demo` — a tiny "
                               "offline model with random weights whose images are noise, for trying the flow.")
    prompt = st.text_input("Prompt", key="form_prompt")
    negative_prompt = st.text_input("Negative prompt", key="form_negative_prompt")
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
    first_seed = first.number_input("First seed", key="form_first_seed", step=1)
    batch_size = size.number_input("Batch size", key="form_batch_size", step=1)
    batch_count = count.number_input("Batch count", key="form_batch_count", step=1)
    left, middle, right = st.columns(3)
    schedulers = list(SCHEDULERS)
    scheduler = left.selectbox("Scheduler", schedulers, key="form_scheduler",
                               format_func=lambda name: f"{name} (default)" if name == defaults.scheduler else name)
    steps = middle.number_input("Steps", key="form_steps", step=1)
    guidance = right.number_input("Guidance", key="form_guidance", step=0.5)
    width_column, height_column = st.columns(2)
    width = width_column.number_input("Width", key="form_width", step=8)
    height = height_column.number_input("Height", key="form_height", step=8)
    safety_checker = st.toggle("Safety checker", key="form_safety_checker",
                               help="Off by default for auditing: it blacks out flagged images, which would then "
                                    "count silently as “no person”. When on, each image's flag is recorded.")
    exact = st.toggle("Exact mode", key="form_exact",
                      help="Off: on a GPU, fast mode (channels-last, fused attention projections, torch.compile, "
                           "TF32) generates faster, with pixels that may differ slightly from exact mode's; each image records "
                           "its mode. On: none of these options. Without a GPU both generate exactly.")
    submitted = st.form_submit_button("Generate", type="primary")

if submitted:
    checked = check_form(
        defaults, batch_count=int(batch_count), model=model.strip(), prompt=prompt, negative_prompt=negative_prompt,
        first_seed=int(first_seed), batch_size=int(batch_size), steps=int(steps), guidance=float(guidance),
        height=int(height), width=int(width), scheduler=scheduler, safety_checker=safety_checker,
        mode="exact" if exact else "fast",
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


def thumbnails(run_key: str | None) -> None:
    if run_key:
        newest = newest_images(store, home, run_key)
        if newest.files:
            st.image(list(newest.files), width=96, caption=list(newest.captions))


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
            sentence, _, detail = (last.error or "failed").partition("\n")
            st.error(f"Job {last.job_id} failed: {plain(sentence)}", icon=":material/error:")
            if detail:
                with st.expander("Details"):
                    st.text(detail)
        else:
            st.caption(f"Last job {last.job_id}: {last.status}, {last.images_done} of {last.images_total} images.")
            thumbnails(last.run_key)
            if last.images_done:
                st.page_link(str(ANNOTATE), label="Annotate them", icon=":material/label:")
    for job in active:
        fraction, words = progress_text(job, now, longest_load=runner.queue.longest_load(job.spec["model"]))
        st.progress(fraction, text=f"Job {job.job_id} ({job.status}): {words}")
        if st.button("Cancel", key=f"cancel-{job.job_id}"):
            runner.cancel(job.job_id)
        thumbnails(job.run_key)
    st.subheader("Jobs")
    st.markdown(jobs_table(jobs))
    for job in jobs:
        if job.status in RESUMABLE and st.button(
                f"Resume job {job.job_id} ({job.status})", key=f"resume-{job.job_id}",
                help="Generates only the seeds still missing."):
            runner.resume(job.job_id)


jobs_panel()
