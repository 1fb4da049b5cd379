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

import time
from typing import NoReturn

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

# Streamlit binds a button's shortcut in an effect that runs after the button is drawn, and a busy
# browser may handle a key press before that effect (input events go first): the likely cause of the
# first key after the view appeared being lost without a word (seen under load, never on demand;
# the key reached the page, the server never heard of it). This listener, drawn at the top of the Annotate page
# (so it is in place long before the view's buttons), runs after Streamlit's (on the window, after
# the document) and presses the focus button that shows the key when no shortcut took it (Streamlit's
# handler marks the keys it takes with preventDefault): a key is taken once, either way. The button
# is found by the key Streamlit prints on it, so the keys are written in one place (the buttons).
# A key held down repeats: each repeat reached Streamlit as another press (three saves, three undos
# for one "P"). A second listener, on the window in the capture phase (before the document's), stops
# the repeats of a key that has a focus button, so one press is one answer.
KEY_LISTENER = (
    "<script>if (!window.sdauditFocusKeys) { window.sdauditFocusKeys = true;"
    " const shown = {ArrowLeft: '\u2190', ArrowRight: '\u2192', Backspace: 'Backspace'};"
    " const buttonOf = (event) => {"
    "  const target = event.target;"
    "  if (event.ctrlKey || event.metaKey || event.altKey || event.shiftKey) return null;"
    "  if (target && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName))) return null;"
    "  const label = event.key.length === 1 ? event.key.toUpperCase() : shown[event.key];"
    "  if (!label || !/^[A-Z0-9\u2190\u2192]$|^Backspace$/.test(label)) return null;"
    "  const hint = document.querySelector('[class*=\"st-key-focus-\"] button [aria-label=\"Shortcut ' + label + '\"]');"
    "  return hint && hint.closest('button'); };"
    " window.addEventListener('keydown', (event) => {"
    "  if (event.repeat && buttonOf(event)) { event.preventDefault(); event.stopImmediatePropagation(); } }, true);"
    " window.addEventListener('keydown', (event) => {"
    "  if (event.defaultPrevented || event.repeat) return;"
    "  const button = buttonOf(event);"
    "  if (button && !button.disabled) { event.preventDefault(); button.click(); }"
    " }); }</script>")


def listen_for_keys() -> None:
    """Draw ``KEY_LISTENER`` (a fixed script; no user text goes into it) in a hidden container, so
    the page's title stays where every other page has it (a style alone takes no room)."""
    st.html("<style>div:has(> .st-key-sdaudit-key-listener) {display: none}</style>")
    with st.container(key="sdaudit-key-listener"):
        st.html(KEY_LISTENER, unsafe_allow_javascript=True)


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
    rules = [f".st-key-{KEYED}skin-{level} button {{background:{colour};color:{'#fff' if level > 5 else '#222'};"
             f"border:1px solid #9e9e9e}}" for level, colour in enumerate(MST_SWATCHES, start=1)]
    rules.append(f'[class*="st-key-{KEYED}skin-"] [data-testid="stBaseButton-primary"] '
                 "{outline:3px solid #ff4b4b;outline-offset:2px}")
    return "<style>" + "".join(rules) + "</style>"


# Focus mode fits a laptop's screen (1366×768) and a projector's (1280×720) without scrolling: a
# compact page (less room above and beside, a smaller title, tighter rows, and the Order radio, the
# main area's only radio here, without its label: its two options name it), the image as tall as the
# height left under the page's header (a square image as wide: the rest of the width, on a wide
# screen too, is the questions'), and smaller buttons. ABOVE_AND_BELOW is the height the image leaves
# to the rest: the header, the caption under the image (cut after two lines), Previous/Next/Undo and a
# margin. Columns stack on a narrow screen (under 640 px): the image column's width then stays
# Streamlit's. A fixed style; no user text goes into it.
ABOVE_AND_BELOW = "22rem"
FIT_STYLE = (
    "<style>"
    '[data-testid="stMainBlockContainer"] {padding: 3.75rem 1.5rem 1rem}'
    '[data-testid="stMainBlockContainer"] h1 {font-size: 1.75rem; padding: 0 0 0.25rem}'
    '[data-testid="stMainBlockContainer"] [data-testid="stVerticalBlock"] {gap: 0.5rem}'
    '[data-testid="stMainBlockContainer"] [data-testid="stRadio"] > [data-testid="stWidgetLabel"] {display: none}'
    "@media (min-width: 640px) {"
    ' .st-key-focus-view [data-testid="stHorizontalBlock"] > [data-testid="stColumn"]:first-child'
    f" {{flex: 0 1 max(24rem, min(calc(100vh - {ABOVE_AND_BELOW}), 60%)); width: auto}} }}"
    f".st-key-focus-view img {{max-height: calc(100vh - {ABOVE_AND_BELOW}); object-fit: contain}}"
    ".st-key-focus-view button {min-height: 2rem; padding: 0 0.5rem}"
    '.st-key-focus-view [data-testid="stMarkdown"] p {font-size: 0.875rem; line-height: 1.4}'
    '.st-key-focus-view [data-testid="stAlertContainer"] {padding: 0.5rem 0.75rem}'
    '.st-key-focus-view [data-testid="stAlertContainer"] p {font-size: 0.875rem}'
    '.st-key-focus-view [data-testid="stCaptionContainer"] p {display: -webkit-box; -webkit-line-clamp: 2;'
    ' -webkit-box-orient: vertical; overflow: hidden}'
    "</style>")


def fit_to_screen() -> None:
    """Draw ``FIT_STYLE`` (a style alone takes no room): for the page that shows the focus view."""
    st.html(FIT_STYLE)


# Every button carries, as its callback's argument, the view it was drawn in: the image on screen
# and how many refusals the rater has been shown (``EPOCH``). A key is taken only when that view is
# still the one on screen when the server answers it: keys typed fast after the last answer of image
# 1 reach the server before image 2's buttons are drawn, with image 1's view, and are refused and
# said (with one view for every key, image 1 ended with the labels typed for image 2). The buttons'
# keys stay the same from image to image, so a key pressed while the next image is being drawn
# reaches its button, and is never dropped without a word.
KEYED = "focus-"
EPOCH = "focus-epoch"
# After a refusal no key is taken until the keyboard has been quiet this long: keys typed faster than
# a person reads the message were meant for an image the view did not move to, and would land on the
# one still shown.
QUIET_S = 1.0
REFUSED_AT = "focus-refused-at"
QUIET = ("Not saved: after a refused key, keys are taken again once the keyboard has paused for a second, so "
         "that nothing typed before you could read this lands on the wrong image. Press it again.")
MOVED_ON = ("Not saved: that key was typed before this image, or the last message, was on screen, so it was "
            "not taken. Press it again.")
TOO_FAST = ("{count} keys arrived before the page could answer the first, so their order is unknown: none was "
            "taken. Press them again, one at a time.")
COMPLETE = ("Complete: this image has its ratings from other raters, so your answer was not saved. Here is the "
            "next image that needs you.")


def current_view() -> tuple[int | None, int]:
    """(image on screen, refusals shown so far): what a key must have been typed in to be taken."""
    return st.session_state.get(SHOWN), st.session_state.get(EPOCH, 0)


NAVIGATION = ("previous", "next", "undo")
BUTTONS = [*NAVIGATION, *(f"{field}-{number}" for field in ("person", "gender", "skin", "confidence")
                          for number in range(1, 11))]


def button_key(name: str) -> str:
    return f"{KEYED}{name}"


def keys_at_once() -> int:
    """How many of the view's keys this run answers. Keys pressed faster than a rerun reach one run
    together, and Streamlit calls their callbacks in the buttons' order, not the presses': "E" (which
    moves on) then "N" for the next image would mark the finished image "no person"."""
    return sum(st.session_state.get(button_key(name)) is True for name in BUTTONS)


def refuse(problem: str) -> NoReturn:
    """Save nothing, say why, and refuse every key typed before the rater can read it."""
    st.session_state[PROBLEM] = problem
    st.session_state[EPOCH] = current_view()[1] + 1
    st.session_state[REFUSED_AT] = time.monotonic()
    st.rerun(["focus"])


def take(view: tuple[int | None, int]) -> None:
    """A callback's first step: refuse keys that reached one run together, a key typed in a view that
    is no longer on screen, and keys typed without a pause after a refusal."""
    if (count := keys_at_once()) > 1:
        refuse(TOO_FAST.format(count=count))
    if view != current_view():
        refuse(MOVED_ON)
    if time.monotonic() - st.session_state.get(REFUSED_AT, -QUIET_S) < QUIET_S:
        refuse(QUIET)


def signs(labels: dict[str, str | None]) -> str:
    return " · ".join(label for label in labels.values() if label)


def next_image(image_id: int) -> int:
    """The image to show once ``image_id`` is done: the next one that misses a label."""
    order = [(shown, done or shown == image_id) for shown, done in st.session_state.get(ORDER, [])]
    return next_to_label(order, image_id) or image_id


def choose(view: tuple[int, int], field: str, label: str) -> None:
    """A key press (or click) on a choice, in the view it was drawn in: save that image's labels with it
    at once; when the image is complete, move to the next one that misses a label."""
    take(view)
    image_id = view[0]
    rater = current_rater()
    store = open_store(current_home())
    try:
        before = store.annotation(image_id, rater)  # the store's labels, not a stale copy
        labels = choices_from_annotation(before)
        labels[field] = label
        annotation = annotation_from_choices(**labels)
        event = store.save_annotation(image_id, rater, annotation, overlap=True)
    except (*STORE_ERRORS, ValueError) as error:
        refuse(f"Not saved: {error}")
    if event is None:  # other raters gave the image its ratings meanwhile: move on to one that needs yours
        st.session_state[SHOWN] = next_image(image_id)
        refuse(COMPLETE)
    st.session_state.pop(PROBLEM, None)
    st.session_state[UNDO_STACK] = [*st.session_state.get(UNDO_STACK, []), event]
    st.session_state[LAST_SAVE] = (image_id, signs(choices_from_annotation(annotation)))
    if annotation.complete:
        st.session_state[SHOWN] = next_image(image_id)
    moved = (before is not None and before.complete) != annotation.complete  # the count counts rated images
    st.rerun(["focus", "progress"] if moved else ["focus"])


def move(view: tuple[int, int], by: int) -> None:
    """Left or Right: the image ``by`` places from the one on screen."""
    take(view)
    st.session_state.pop(PROBLEM, None)
    st.session_state.pop(LAST_SAVE, None)  # "Previous image saved" speaks of the image just left by saving
    st.session_state[SHOWN] = step([shown for shown, _ in st.session_state.get(ORDER, [])], view[0], by)
    st.rerun(["focus"])


def undo(view: tuple[int, int]) -> None:
    """Put back the labels of this session's newest save that is not undone yet, and show its image."""
    take(view)
    stack = st.session_state.get(UNDO_STACK, [])
    if not stack:
        refuse("Nothing to undo: this session has saved nothing yet.")
    try:
        image_id = open_store(current_home()).undo_save(stack[-1], current_rater())
    except (*STORE_ERRORS, ValueError) as error:
        refuse(f"Not undone: {error}")
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
    st.html(swatch_style())
    st.html(RELEASE_KEYBOARD, unsafe_allow_javascript=True)
    view = current_view()
    with st.container(key="focus-view"):  # FIT_STYLE sizes its two columns to the screen
        picture, labels = st.columns([3, 2], gap="medium")
        with picture:
            show_image(home, image, position, len(queue), blind=blind)
            navigation_buttons(view)
        with labels:
            if all(done for _, done in complete):  # beside the image: above it, it would push the image down
                st.success("Every image in this study has all your labels. Left and Right go through them to "
                           "review.", icon=":material/check_circle:")
            choice_buttons(image, view, binary=binary)


def show_image(home: str, image: QueuedImage, position: int, count: int, *, blind: bool) -> None:
    loaded = load_image(home, image.path)  # a decodable image, read from inside the data home only
    if loaded.data is not None:
        st.image(loaded.data, width="stretch")
    else:
        st.warning(plain(loaded.problem), icon=":material/warning:")
    about = f"Image {position + 1} of {count}"
    st.caption(about if blind else f"{about} · {image.number} · {plain(image.model)} · {plain(image.prompt)}")


def navigation_buttons(view: tuple[int, int]) -> None:
    """Previous, Next and Undo, under the image they walk from (the questions' column keeps the room for
    the messages)."""
    with st.container(horizontal=True, gap="small"):
        st.button("Previous", key=button_key("previous"), shortcut=PREVIOUS, on_click=move, args=(view, -1))
        st.button("Next", key=button_key("next"), shortcut=NEXT, on_click=move, args=(view, 1))
        st.button("Undo last save", key=button_key("undo"), shortcut=UNDO, on_click=undo, args=(view,))


def choice_buttons(image: QueuedImage, view: tuple[int, int], *, binary: bool) -> None:
    """Every question as a row of buttons, each with its key, drawn in ``view`` (the image on screen,
    the refusals shown: ``current_view``); the saved choice is marked."""
    saved = choices_from_annotation(image.saved)
    no_person = saved["person"] == "No person"
    for field, heading, keys in field_keys(binary):
        st.markdown(f"**{heading}**")
        with st.container(horizontal=True, gap="small"):
            for number, (label, key) in enumerate(keys.items(), start=1):
                chosen = saved[field] == label
                st.button(label, key=button_key(f"{field}-{number}"), shortcut=key,
                          type="primary" if chosen else "secondary",
                          icon=":material/check:" if chosen else None,
                          disabled=no_person and field in ("gender", "skin"), on_click=choose, args=(view, field, label))
    if problem := st.session_state.get(PROBLEM):
        st.error(plain(problem), icon=":material/error:")
    with st.container(key="focus-saved"):
        if image.saved is not None:
            st.caption(f":material/check: Saved: {plain(signs(saved))}")
        last = st.session_state.get(LAST_SAVE)
        if last and last[0] != image.image_id:
            st.caption(f"Previous image saved: {plain(last[1])}")
