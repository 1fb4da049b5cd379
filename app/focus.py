"""Focus mode on the Annotate page: one large image, its labels beside it, one key per choice.

Every choice is a button with a keyboard shortcut (Streamlit's ``shortcut=``), shown on the
button. A key press saves at once, as a click does; once every question of the image is
answered the next image that misses a label comes up by itself. Left and Right walk the study,
Backspace undoes this session's saves, newest first (the store restores the labels from its
history). The keys, none shared within a mode ("C" and "R" are Streamlit's own):

    P / N          person / no person
    F / M / U      female- / male-presenting / unclear
    1 … 9, 0       MST 1 … 9, MST 10          (L / D: lighter / darker in a binary study)
    Q / W / E      confidence low / medium / high  (the top row's first three keys)
"""

import streamlit as st

from app.resources import STORE_ERRORS, current_home, current_rater, open_store
from app.widgets import plain
from sdaudit.files.gallery import load_image
from sdaudit.present.progress import next_to_label, step
from sdaudit.records import QueuedImage
from sdaudit.scheme import (
    BINARY_SKIN_CHOICES,
    CONFIDENCE_CHOICES,
    GENDER_CHOICES,
    MST_CHOICES,
    MST_SWATCHES,
    PERSON_CHOICES,
    annotation_from_choices,
    choices_from_annotation,
)

PERSON_KEYS = {"Person": "P", "No person": "N"}
GENDER_KEYS = {"Female-presenting": "F", "Male-presenting": "M", "Unclear": "U"}
MST_KEYS = {label: str(level % 10) for label, level in MST_CHOICES.items()}
BINARY_KEYS = dict(zip(BINARY_SKIN_CHOICES, "LD"))  # their labels name scheme.DEFAULT_SKIN_CUT
CONFIDENCE_KEYS = {"Low": "Q", "Medium": "W", "High": "E"}
PREVIOUS, NEXT, UNDO = "Left", "Right", "Backspace"
assert list(PERSON_KEYS) == list(PERSON_CHOICES) and list(GENDER_KEYS) == list(GENDER_CHOICES)
assert list(CONFIDENCE_KEYS) == list(CONFIDENCE_CHOICES)

SHOWN = "focus-image"  # the id of the image on screen
ORDER = "focus-order"  # [(image id, complete)] as last drawn, for the callbacks to move on
UNDO_STACK = "focus-undo-stack"  # this session's save events, oldest first
LAST_SAVE = "focus-last-save"  # (image id, what the store now holds for it)
PROBLEM = "focus-problem"  # why the last key press saved nothing


# Keys reach Streamlit only while no input field has the keyboard: the Rater box after Enter, or
# the Focus mode switch after Space, would swallow them. Drawn once when the view appears, this
# hands the keyboard back to the page (a fixed script; no user text goes into it).
RELEASE_KEYBOARD = ("<script>const held = document.activeElement;"
                    "if (held && held.tagName === 'INPUT') { held.blur(); }</script>")


def keep_view_in_address(focus: bool) -> None:
    """``?view=focus`` while focus mode is on, so a reload keeps it and a link can open it."""
    if focus and st.query_params.get("view") != "focus":
        st.query_params["view"] = "focus"
    elif not focus and "view" in st.query_params:
        del st.query_params["view"]


def field_keys(binary: bool) -> list[tuple[str, str, dict[str, str]]]:
    """(field, heading, {choice label: key}) in the order the questions are asked."""
    return [("person", "Person", PERSON_KEYS), ("gender", "Gender presentation", GENDER_KEYS),
            ("skin", "Skin tone", BINARY_KEYS if binary else MST_KEYS), ("confidence", "Confidence", CONFIDENCE_KEYS)]


def swatch_style() -> str:
    """CSS that paints each MST choice in its official swatch colour (white text from MST 6 on)."""
    rules = [f".st-key-focus-skin-{level} button {{background:{colour};color:{'#fff' if level > 5 else '#222'};"
             f"border:1px solid #9e9e9e}}" for level, colour in enumerate(MST_SWATCHES, start=1)]
    rules.append('[class*="st-key-focus-skin-"] [data-testid="stBaseButton-primary"] '
                 "{outline:3px solid #ff4b4b;outline-offset:2px}")
    return "<style>" + "".join(rules) + "</style>"


NAVIGATION = ("focus-previous", "focus-next", "focus-undo")
BUTTONS = [*NAVIGATION, *(f"focus-{field}-{number}" for field in ("person", "gender", "skin", "confidence")
                          for number in range(1, 11))]
TOO_FAST = ("{count} keys arrived before the page could answer the first, so their order is unknown: none was "
            "taken. Press them again, one at a time.")


def keys_at_once() -> int:
    """How many of the view's keys this run answers. Keys pressed faster than a rerun reach one run
    together, and Streamlit calls their callbacks in the buttons' order, not the presses': "E" (which
    moves on) then "N" for the next image would mark the finished image "no person"."""
    return sum(st.session_state.get(key) is True for key in BUTTONS)


def refuse_keys_at_once() -> None:
    """Save nothing when several keys arrive in one run, and say so (a callback's first step)."""
    if (count := keys_at_once()) > 1:
        st.session_state[PROBLEM] = TOO_FAST.format(count=count)
        st.rerun(["focus"])


def signs(labels: dict[str, str | None]) -> str:
    return " · ".join(label for label in labels.values() if label)


def choose(image_id: int, field: str, label: str) -> None:
    """A key press (or click) on a choice for the image it was drawn beside: save that image's
    labels with it at once; when the image is complete, move to the next one that misses a label."""
    refuse_keys_at_once()
    rater = current_rater()
    store = open_store(current_home())
    try:
        before = store.annotation(image_id, rater)  # the store's labels, not a stale copy
        labels = choices_from_annotation(before)
        labels[field] = label
        annotation = annotation_from_choices(**labels)
        event = store.save_annotation(image_id, rater, annotation, overlap=True)
    except (*STORE_ERRORS, ValueError) as error:
        st.session_state[PROBLEM] = f"Not saved: {error}"
        st.rerun(["focus"])
    if event is None:  # other raters gave the image its ratings meanwhile: move on to one that needs yours
        st.session_state[PROBLEM] = ("Complete: this image has its ratings from other raters, so your answer was "
                                     "not saved. Here is the next image that needs you.")
        order = [(shown, done or shown == image_id) for shown, done in st.session_state.get(ORDER, [])]
        st.session_state[SHOWN] = next_to_label(order, image_id) or image_id
        st.rerun(["focus"])
    st.session_state.pop(PROBLEM, None)
    st.session_state[UNDO_STACK] = [*st.session_state.get(UNDO_STACK, []), event]
    st.session_state[LAST_SAVE] = (image_id, signs(choices_from_annotation(annotation)))
    if annotation.complete:
        order = [(shown, done or shown == image_id) for shown, done in st.session_state.get(ORDER, [])]
        st.session_state[SHOWN] = next_to_label(order, image_id) or image_id
    moved = (before is not None and before.complete) != annotation.complete  # the count counts rated images
    st.rerun(["focus", "progress"] if moved else ["focus"])


def move(by: int) -> None:
    refuse_keys_at_once()
    st.session_state.pop(PROBLEM, None)
    st.session_state[SHOWN] = step([image_id for image_id, _ in st.session_state.get(ORDER, [])],
                                   st.session_state[SHOWN], by)
    st.rerun(["focus"])


def undo() -> None:
    """Put back the labels of this session's newest save that is not undone yet, and show its image."""
    refuse_keys_at_once()
    stack = st.session_state.get(UNDO_STACK, [])
    if not stack:
        st.session_state[PROBLEM] = "Nothing to undo: this session has saved nothing yet."
        st.rerun(["focus"])
    try:
        image_id = open_store(current_home()).undo_save(stack[-1], current_rater())
    except (*STORE_ERRORS, ValueError) as error:
        st.session_state[PROBLEM] = f"Not undone: {error}"
        st.rerun(["focus"])
    st.session_state[UNDO_STACK] = stack[:-1]
    st.session_state.pop(PROBLEM, None)
    st.session_state[SHOWN] = image_id
    st.session_state[LAST_SAVE] = (image_id, "the previous labels are back")
    st.rerun(["focus", "progress"])


@st.fragment(key="focus")
def focus_view(home: str, study: str, rater: str, *, shuffled: bool, blind: bool, binary: bool) -> None:
    """The focus view of ``study`` for ``rater``: a fragment, so a key press reruns only it."""
    queue = open_store(home).annotation_queue(study, rater, only_missing=False, shuffled=shuffled)
    # done: all this rater's labels, or (a team's overlap) the image has its ratings from other raters
    complete = [(image.image_id, image.full or (image.saved is not None and image.saved.complete)) for image in queue]
    st.session_state[ORDER] = complete
    ids = [image_id for image_id, _ in complete]
    if st.session_state.get(SHOWN) not in ids:
        st.session_state[SHOWN] = next((image_id for image_id, done in complete if not done), ids[0])
    position = ids.index(st.session_state[SHOWN])
    image = queue[position]
    if all(done for _, done in complete):
        st.success("Every image in this study has all your labels. Left and Right go through them to review.",
                   icon=":material/check_circle:")
    st.html(swatch_style())
    st.html(RELEASE_KEYBOARD, unsafe_allow_javascript=True)
    picture, labels = st.columns([3, 2], gap="large")
    with picture:
        show_image(home, image, position, len(queue), blind=blind)
    with labels:
        choice_buttons(image, binary=binary)


def show_image(home: str, image: QueuedImage, position: int, count: int, *, blind: bool) -> None:
    loaded = load_image(home, image.path)  # a decodable image, read from inside the data home only
    if loaded.data is not None:
        st.image(loaded.data, width="stretch")
    else:
        st.warning(plain(loaded.problem), icon=":material/warning:")
    about = f"Image {position + 1} of {count}"
    st.caption(about if blind else f"{about} · {image.number} · {plain(image.model)} · {plain(image.prompt)}")


def choice_buttons(image: QueuedImage, *, binary: bool) -> None:
    """Every question as a row of buttons, each with its key; the saved choice is marked."""
    saved = choices_from_annotation(image.saved)
    no_person = saved["person"] == "No person"
    for field, heading, keys in field_keys(binary):
        st.markdown(f"**{heading}**")
        with st.container(horizontal=True, gap="small"):
            for number, (label, key) in enumerate(keys.items(), start=1):
                chosen = saved[field] == label
                st.button(label, key=f"focus-{field}-{number}", shortcut=key, type="primary" if chosen else "secondary",
                          icon=":material/check:" if chosen else None,
                          disabled=no_person and field in ("gender", "skin"), on_click=choose, args=(image.image_id, field, label))
    with st.container(horizontal=True, gap="small"):
        st.button("Previous", key=NAVIGATION[0], shortcut=PREVIOUS, on_click=move, args=(-1,))
        st.button("Next", key=NAVIGATION[1], shortcut=NEXT, on_click=move, args=(1,))
        st.button("Undo last save", key=NAVIGATION[2], shortcut=UNDO, on_click=undo)
    if problem := st.session_state.get(PROBLEM):
        st.error(plain(problem), icon=":material/error:")
    with st.container(key="focus-saved"):
        if image.saved is not None:
            st.caption(f":material/check: Saved: {plain(signs(saved))}")
        last = st.session_state.get(LAST_SAVE)
        if last and last[0] != image.image_id:
            st.caption(f"Previous image saved: {plain(last[1])}")
