"""Annotate: a grid of images, or focus mode (one image, one key per choice: app/focus.py); every
click or key press is saved at once under the rater's name."""

import streamlit as st

from app.focus import focus_view, keep_view_in_address
from app.resources import STORE_ERRORS, current_home, current_rater, current_study, open_store
from app.widgets import mst_swatches, plain
from sdaudit.gallery import load_image
from sdaudit.records import QueuedImage
from sdaudit.scheme import (
    BINARY_SKIN_CHOICES,
    CONFIDENCE_CHOICES,
    GENDER_CHOICES,
    MST_CHOICES,
    PERSON_CHOICES,
    annotation_from_choices,
    choices_from_annotation,
)

FIELDS = ("person", "gender", "skin", "confidence")

st.title("Annotate")
home = current_home()
store = open_store(home)
study = current_study()
rater = current_rater()

if not rater:
    st.info("Enter your name as **Rater** in the sidebar to start: every annotation is saved under it, "
            "and nothing is saved without it.", icon=":material/info:")
    st.stop()

if store.annotated_count(study, rater)[1] == 0:
    st.info(f"Study “{plain(study)}” has no images yet. Generate some on the Generate page, or ingest a run folder "
            "(`python -m sdaudit ingest DIR`) — or import a rater sheet to go straight to Results.",
            icon=":material/info:")
    st.stop()


@st.fragment(key="progress")
def progress() -> None:
    """The rater's count; every save reruns it (the saves' callbacks name it), not just the card."""
    done, total = store.annotated_count(study, current_rater())
    st.progress(done / total, text=f"{done} of {total} annotated by you")


progress()

controls = st.columns([1, 1, 1, 1, 1])
st.session_state.setdefault("focus-mode", st.query_params.get("view") == "focus")  # a link may open it
focus = controls[0].toggle("Focus mode", key="focus-mode",
                           help="One large image at a time and a key for every choice: no mouse needed.")
keep_view_in_address(focus)
shuffled = controls[1].radio("Order", ["By seed", "Shuffled"], horizontal=True) == "Shuffled"
blind = controls[2].toggle("Blind mode", value=False, help="Hide prompt, model and seed so they cannot prime you.")
if not focus:
    only_missing = controls[3].radio("Show", ["Not yet annotated by me", "All"], horizontal=True) != "All"
    page_size = controls[4].selectbox("Per page", [12, 24, 48], index=0)

binary = store.study_skin_tone_mode(study) == "binary"
skin_choices = list(BINARY_SKIN_CHOICES if binary else MST_CHOICES)
st.caption("Label what the image *shows*: perceived gender presentation and skin tone, not anyone's identity. "
           "Choose “Unclear” when you cannot tell.")
if focus:
    st.caption("Keys: each choice's key is on its button. ← and → move between images, Backspace undoes your "
               "last save. The next image comes up once every question is answered.")
    focus_view(home, study, rater, shuffled=shuffled, blind=blind, binary=binary)
    st.stop()
if not binary:
    mst_swatches()

queue = store.annotation_queue(study, rater, only_missing=only_missing, shuffled=shuffled)
if not queue:
    st.success("You have annotated every image in this study. Switch to “All” to review your labels.",
               icon=":material/check_circle:")
    st.stop()
pages = max(1, -(-len(queue) // page_size))
page = st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, step=1) if pages > 1 else 1
shown = queue[(page - 1) * page_size: page * page_size]


def save(image_id: int) -> None:
    """Save one card's choices (a radio's on_change: runs before the card reruns)."""
    values = {field: st.session_state.get(f"{field}-{image_id}") for field in FIELDS}
    if values["person"] == "No person":
        for field in ("gender", "skin"):
            st.session_state[f"{field}-{image_id}"] = None
    try:
        annotation = annotation_from_choices(**values)
        first = store.annotation(image_id, current_rater()) is None
        store.save_annotation(image_id, current_rater(), annotation)
    except (*STORE_ERRORS, ValueError) as error:
        st.session_state[f"problem-{image_id}"] = f"Not saved: {error}"
        st.rerun([f"card-{image_id}"])
    st.session_state.pop(f"problem-{image_id}", None)
    # the sign lists what the store now holds ("No person" clears gender and skin tone)
    st.session_state[f"saved-{image_id}"] = " · ".join(
        label for label in choices_from_annotation(annotation).values() if label)
    # the card, and the count when it moved (a first save): never the whole page
    st.rerun([f"card-{image_id}", "progress"] if first else [f"card-{image_id}"])


def card(image: QueuedImage) -> None:
    image_id = image.image_id
    loaded = load_image(home, image.path)  # a decodable image, read from inside the data home only
    if loaded.data is not None:
        st.image(loaded.data, width="stretch")
    else:
        st.warning(plain(loaded.problem), icon=":material/warning:")
    if not blind:
        st.caption(f"seed {image.seed} · {plain(image.model)} · {plain(image.prompt)}")
    saved = choices_from_annotation(image.saved)
    for field in FIELDS:  # show what is saved, once; afterwards the widgets keep their state
        st.session_state.setdefault(f"{field}-{image_id}", saved[field])
    no_person = st.session_state[f"person-{image_id}"] == "No person"
    st.radio("Person", list(PERSON_CHOICES), key=f"person-{image_id}", horizontal=True,
             on_change=save, args=(image_id,))
    st.radio("Gender presentation", list(GENDER_CHOICES), key=f"gender-{image_id}", horizontal=True,
             disabled=no_person, on_change=save, args=(image_id,))
    st.radio("Skin tone", skin_choices, key=f"skin-{image_id}", horizontal=True, disabled=no_person,
             on_change=save, args=(image_id,))
    st.radio("Confidence", list(CONFIDENCE_CHOICES), key=f"confidence-{image_id}", horizontal=True,
             on_change=save, args=(image_id,))
    if problem := st.session_state.get(f"problem-{image_id}"):
        st.error(plain(problem), icon=":material/error:")
    saved_now = st.session_state.get(f"saved-{image_id}")
    if saved_now:  # drawn by the rerun that follows the save: the rater sees the click was kept
        with st.container(key=f"saved-{image_id}"):
            st.caption(f":material/check: Saved: {plain(saved_now)}")


columns = st.columns(3)
for position, image in enumerate(shown):
    with columns[position % 3], st.container(border=True):
        st.fragment(card, key=f"card-{image.image_id}")(image)  # a click reruns only its card (and the count)
