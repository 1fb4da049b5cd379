"""Annotate: a grid of images, or focus mode (one image, one key per choice: app/focus.py); every
click or key press is saved at once under the rater's name."""

import streamlit as st

from app.focus import fit_to_screen, focus_view, keep_view_in_address, listen_for_keys
from app.rater_groups import ask_once
from app.resources import STORE_ERRORS, current_home, current_rater, current_study, open_store
from app.widgets import mst_swatches, plain
from sdaudit.files.gallery import load_image
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
from sdaudit.store.team import Team

FIELDS = ("person", "gender", "skin", "confidence")
PROGRESS_EVERY_S = 2
# A card's "Saved: …" sign keeps its place before the first save: two caption lines (0.875rem × 1.6
# each), as the longest sign ("Person · Female-presenting · MST 10 · Medium") takes on a laptop's
# card, so the card does not grow when it appears. A fixed style; no user text goes into it.
NO_SIGN_YET = "\u00a0"  # a no-break space
SIGN_STYLE = '<style>[class*="st-key-saved-"] {min-height: 2.8rem}</style>'

listen_for_keys()  # first: in place before focus mode's buttons are drawn
st.title("Annotate")
home = current_home()
store = open_store(home)
study = current_study()
rater = current_rater()

if not rater:
    st.info("Enter your name as **Rater** in the sidebar to start: every annotation is saved under it, "
            "and nothing is saved without it.", icon=":material/info:")
    st.stop()

ask_once(store, study, rater)  # the study's optional rater-group questions, once
needed = store.annotation_progress(study, rater)
if needed.images == 0:
    st.info(f"Study “{plain(study)}” has no images yet. Generate some on the Generate page, or ingest a run folder "
            "(`python -m sdaudit ingest DIR`) — or import a rater sheet to go straight to Results.",
            icon=":material/info:")
    st.stop()


@st.fragment(key="progress", run_every=PROGRESS_EVERY_S)
def progress() -> None:
    """The rater's count and the team's, read again every few seconds: it follows this rater's saves
    and the other raters' too. (A save does not rerun it: see ``save``.)"""
    now = store.annotation_progress(study, current_rater())
    st.progress(now.yours / now.images, text=now.text)


progress()

controls = st.columns([1, 1, 1, 1, 1])
st.session_state.setdefault("focus-mode", st.query_params.get("view") == "focus")  # a link may open it
focus = controls[0].toggle("Focus mode", key="focus-mode",
                           help="One large image at a time and a key for every choice: no mouse needed.")
keep_view_in_address(focus)
shuffled = controls[1].radio("Order", ["By seed", "Shuffled"], horizontal=True) == "Shuffled"
blind = controls[2].toggle("Blind mode", value=False, help="Hide prompt, model and seed so they cannot prime you.")
if not focus:
    only_missing = controls[3].radio(
        "Show", ["To do", "All"], horizontal=True,
        help=f"To do: the images you have not annotated that still need ratings (this study asks for "
             f"{needed.needed} per image). All: every image, yours to review.") != "All"
    page_size = controls[4].selectbox("Per page", [12, 24, 48], index=0)

binary = store.study_skin_tone_mode(study) == "binary"
skin_choices = list(BINARY_SKIN_CHOICES if binary else MST_CHOICES)
st.caption("Label what the image *shows*: perceived gender presentation and skin tone, not anyone's identity. "
           "Choose “Unclear” when you cannot tell.")
if focus:
    st.caption("Each choice's key is on its button. The next image comes up once every question is answered.")
    # blind mode always shuffles: a reference set's real images and generated ones are mixed, not in blocks
    focus_view(home, study, rater, shuffled=shuffled or blind, blind=blind, binary=binary)
    fit_to_screen()
    st.stop()
if not binary:
    mst_swatches()
st.html(SIGN_STYLE)

queue = store.annotation_queue(study, rater, only_missing=only_missing, shuffled=shuffled or blind)
if not queue:
    st.success("Nothing left to do: every image you have not annotated has its ratings. Switch to “All” to "
               "review your labels.", icon=":material/check_circle:")
    st.stop()
pages = max(1, -(-len(queue) // page_size))
page = st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, step=1) if pages > 1 else 1
shown = queue[(page - 1) * page_size: page * page_size]


def save(image: QueuedImage) -> None:
    """Save one card's choices (a radio's on_change: runs before the card reruns). A repeat's answer is
    kept apart; a first answer on an image that reached its ratings meanwhile is refused and said so.

    Nothing here calls ``st.rerun``: the click's own rerun redraws just its card, with the sign or the
    refusal. A rerun named from a callback preempts the run in progress, and that run may be the one
    drawing the card clicked a moment before (its rerun folded into this one): that card then never
    showed "Saved" or "Complete" while the store had its row (raters clicking at once on a busy
    machine, tests/test_browser.py)."""
    key = image.card_key
    values = {field: st.session_state.get(f"{field}-{key}") for field in FIELDS}
    if values["person"] == "No person":
        for field in ("gender", "skin"):
            st.session_state[f"{field}-{key}"] = None
    try:
        annotation = annotation_from_choices(**values)
        if image.repeat:
            Team(store).save_repeat(image.image_id, current_rater(), annotation)
        elif store.save_annotation(image.image_id, current_rater(), annotation, overlap=True) is None:
            for field in FIELDS:
                st.session_state[f"{field}-{key}"] = None
            st.session_state[f"full-{key}"] = True
            return
    except (*STORE_ERRORS, ValueError) as error:
        st.session_state[f"problem-{key}"] = f"Not saved: {error}"
        return
    st.session_state.pop(f"problem-{key}", None)
    # the sign lists what the store now holds ("No person" clears gender and skin tone)
    st.session_state[f"saved-{key}"] = " · ".join(
        label for label in choices_from_annotation(annotation).values() if label)


def card(image: QueuedImage) -> None:
    key = image.card_key
    loaded = load_image(home, image.path)  # a decodable image, read from inside the data home only
    if loaded.data is not None:
        st.image(loaded.data, width="stretch")
    else:
        st.warning(plain(loaded.problem), icon=":material/warning:")
    if not (blind or image.repeat):  # a repeat is always blind
        st.caption(f"{image.number} · {plain(image.model)} · {plain(image.prompt)}")
    saved = choices_from_annotation(image.saved)
    full = image.full or st.session_state.get(f"full-{key}", False)
    if full:
        with st.container(key=f"full-{key}"):
            st.info(f"Complete: this image has its {image.needed} ratings from other raters, so your answer is not "
                    "needed and was not saved. Go on to the next image.", icon=":material/done_all:")
    for field in FIELDS:  # show what is saved, once; afterwards the widgets keep their state
        st.session_state.setdefault(f"{field}-{key}", saved[field])
    no_person = full or st.session_state[f"person-{key}"] == "No person"
    st.radio("Person", list(PERSON_CHOICES), key=f"person-{key}", horizontal=True, disabled=full,
             on_change=save, args=(image,))
    st.radio("Gender presentation", list(GENDER_CHOICES), key=f"gender-{key}", horizontal=True,
             disabled=no_person, on_change=save, args=(image,))
    st.radio("Skin tone", skin_choices, key=f"skin-{key}", horizontal=True, disabled=no_person,
             on_change=save, args=(image,))
    st.radio("Confidence", list(CONFIDENCE_CHOICES), key=f"confidence-{key}", horizontal=True, disabled=full,
             on_change=save, args=(image,))
    if problem := st.session_state.get(f"problem-{key}"):
        st.error(plain(problem), icon=":material/error:")
    saved_now = st.session_state.get(f"saved-{key}")
    # drawn by the rerun that follows the save: the rater sees the click was kept; before it, a blank
    # (an empty container is not drawn at all) whose place SIGN_STYLE keeps
    with st.container(key=f"saved-{key}"):
        st.caption(f":material/check: Saved: {plain(saved_now)}" if saved_now else NO_SIGN_YET)


columns = st.columns(3)
for position, image in enumerate(shown):
    with columns[position % 3], st.container(border=True):
        st.fragment(card, key=f"card-{image.card_key}")(image)  # a click reruns only its card (and the count)
