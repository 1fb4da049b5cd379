"""Labelling at keyboard speed, in AppTest: focus mode's keys and saves, undo, the live count, a
failed save on its card, the rater and study in the address, and the Home page's next step.

The keys themselves reach Streamlit only in a browser (tests/test_browser.py presses them); here
each key's button is clicked, which runs the very callback a key press runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import add_annotated_run, make_images, make_run, open_page, png
from streamlit.elements.lib.shortcut_utils import normalize_shortcut
from streamlit.testing.v1 import AppTest

from app.focus import NEXT, PREVIOUS, QUIET, QUIET_S, REFUSED_AT, TOO_FAST, UNDO, field_keys
from app.widgets import plain
from sdaudit.present.progress import StudyProgress, next_to_label, step, study_progress
from sdaudit.scheme import Annotation
from sdaudit.store import Store, StudyCounts


def add_pictures(store: Store, home: Path, count: int, *, run_key: str = "run-a", study: str = "default") -> list[int]:
    """``count`` small PNG images of one run in ``study``; returns their ids in seed order."""
    store.add_run(make_run(run_key=run_key, study=study))
    images = make_images(run_key=run_key, seeds=range(count))
    for image in images:
        (home / image.path).parent.mkdir(parents=True, exist_ok=True)
        (home / image.path).write_bytes(png(image.seed))
    store.add_images(images)
    return [int(image_id) for image_id in store.images(run_key=run_key)["image_id"]]


@pytest.fixture
def three_images(app_home) -> tuple[Path, list[int]]:
    with Store.open(app_home) as store:
        return app_home, add_pictures(store, app_home, 3)


def focus_mode(rater: str = "ana") -> AppTest:
    at = open_page("annotate", rater=rater)
    next(toggle for toggle in at.toggle if toggle.label == "Focus mode").set_value(True).run()
    assert not at.exception, at.exception
    return at


def press(at: AppTest, label: str) -> AppTest:
    """Click the button of one choice (what its key does) and draw the whole page again."""
    next(button for button in at.button if button.label == label).click().run()
    assert not at.exception, at.exception
    return at.run()


def shown(at: AppTest) -> str:
    return next(caption.value for caption in at.caption if caption.value.startswith("Image "))


def count(at: AppTest) -> str:
    """The rater's own part of the progress line (the team's part follows a " · ")."""
    return at.get("progress")[0].proto.text.split(" · ")[0]


def labels(home: Path, image_id: int, rater: str = "ana") -> Annotation | None:
    with Store.open(home) as store:
        return store.annotation(image_id, rater)


# -- the keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [False, True])
def test_every_choice_has_a_key_of_its_own_that_streamlit_accepts(binary):
    keys = [key for _, _, choices in field_keys(binary) for key in choices.values()] + [PREVIOUS, NEXT, UNDO]
    normalised = [normalize_shortcut(key) for key in keys]  # raises on "C", "R", punctuation
    assert len(set(normalised)) == len(keys) == (2 + 3 + (2 if binary else 10) + 3 + 3)
    mst = dict(field_keys(False)[2][2])
    assert (mst["MST 1"], mst["MST 9"], mst["MST 10"]) == ("1", "9", "0")


def test_each_button_shows_its_key(three_images):
    at = focus_mode()
    shortcuts = {button.label: button.proto.shortcut for button in at.button if button.proto.shortcut}  # normalised
    assert shortcuts["Person"] == "p" and shortcuts["Female-presenting"] == "f" and shortcuts["MST 10"] == "0"
    assert shortcuts["High"] == "e" and shortcuts["Undo last save"] == "backspace" and shortcuts["Next"] == "right"
    assert len(shortcuts) == 2 + 3 + 10 + 3 + 3


# -- focus mode -----------------------------------------------------------------------------------


def test_each_key_saves_at_once_and_a_complete_image_moves_on(three_images):
    home, ids = three_images
    at = focus_mode()
    assert shown(at).startswith("Image 1 of 3") and count(at) == "0 of 3 annotated by you"
    press(at, "Person")
    assert labels(home, ids[0]) == Annotation(person_present=True), "saved with the first key"
    for label in ("Female-presenting", "MST 4"):
        press(at, label)
        assert shown(at).startswith("Image 1 of 3"), "an image stays until every question is answered"
    press(at, "High")
    assert labels(home, ids[0]) == Annotation(person_present=True, gender="female", mst=4, confidence="high")
    assert shown(at).startswith("Image 2 of 3") and count(at) == "1 of 3 annotated by you"
    assert any(caption.value.startswith("Previous image saved: Person") for caption in at.caption)
    press(at, "Next")  # a move: the line spoke of the image before, and no image is that any more
    assert shown(at).startswith("Image 3 of 3")
    assert not any(caption.value.startswith("Previous image saved") for caption in at.caption)
    press(at, "Previous")
    press(at, "Previous")
    assert shown(at).startswith("Image 1 of 3")
    assert not any(caption.value.startswith("Previous image saved") for caption in at.caption)


def test_focus_mode_keeps_the_teams_overlap(three_images):
    """With two raters per image, an image two others have rated is passed over, and one the team
    completes while it is on screen refuses the key and moves on: no image gets a third rating."""
    from sdaudit.store.team import Team, TeamSettings

    home, ids = three_images
    done = Annotation(person_present=True, gender="male", mst=3, confidence="high")
    with Store.open(home) as store:
        Team(store).set_settings("default", TeamSettings(raters_per_image=2))
        for rater in ("ben", "cai"):
            store.save_annotation(ids[0], rater, done)
    at = focus_mode()
    assert shown(at).startswith("Image 2 of 3"), "image 1 has its two ratings: not offered first"
    with Store.open(home) as store:  # meanwhile two others complete image 2
        for rater in ("ben", "cai"):
            store.save_annotation(ids[1], rater, done)
    press(at, "Person")
    assert labels(home, ids[1]) is None, "the third rating is refused"
    assert shown(at).startswith("Image 3 of 3")
    assert at.error[0].value.startswith(plain("Complete: this image has its ratings from other raters"))


def test_no_person_needs_only_a_confidence(three_images):
    home, ids = three_images
    at = focus_mode()
    press(at, "No person")
    assert all(button.disabled for button in at.button if button.label in ("Female-presenting", "MST 3"))
    press(at, "Low")
    assert labels(home, ids[0]) == Annotation(person_present=False, confidence="low")
    assert shown(at).startswith("Image 2 of 3")


OTHER_CUT = """
import sys, types
from pathlib import Path

from streamlit.testing.v1 import AppTest

import sdaudit

path = Path(sdaudit.__file__).parent / "scheme.py"
source = path.read_text(encoding="utf-8")
assert "DEFAULT_SKIN_CUT = 5" in source
scheme = types.ModuleType("sdaudit.scheme")
scheme.__file__ = str(path)
sys.modules["sdaudit.scheme"] = sdaudit.scheme = scheme
exec(compile(source.replace("DEFAULT_SKIN_CUT = 5", "DEFAULT_SKIN_CUT = 4"), str(path), "exec"), scheme.__dict__)

from app.focus import BINARY_KEYS

print(sorted(BINARY_KEYS.items()))
at = AppTest.from_file(sys.argv[1], default_timeout=600).run()
assert not at.exception, at.exception
print([option for radio in at.radio if radio.label == "Skin tone is rated as" for option in radio.options])
"""


def test_the_app_names_whatever_skin_cut_the_scheme_sets(tmp_path):
    """The cut is typed once, in ``scheme.DEFAULT_SKIN_CUT``: with 4 there, the app still imports and
    its keys and the new-study choice say MST 1–4 / 5–10 (a fresh interpreter, so nothing else sees it)."""
    import subprocess
    import sys

    from helpers import APP, ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT), "SDAUDIT_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", OTHER_CUT, APP], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    keys, modes = done.stdout.splitlines()[-2:]
    assert keys == str([("Darker (MST 5–10)", "D"), ("Lighter (MST 1–4)", "L")])
    assert "Lighter / darker (MST 1–4 / 5–10)" in modes


def test_a_binary_study_asks_lighter_or_darker(app_home):
    with Store.open(app_home) as store:
        store.ensure_study("binary", skin_tone_mode="binary")
        ids = add_pictures(store, app_home, 2, study="binary")
    at = open_page("annotate", rater="ana", query={"study": "binary"})
    next(toggle for toggle in at.toggle if toggle.label == "Focus mode").set_value(True).run()
    assert {button.label: button.proto.shortcut for button in at.button if button.label.startswith(("Lighter",
            "Darker"))} == {"Lighter (MST 1–5)": "l", "Darker (MST 6–10)": "d"}
    assert not any(button.label == "MST 1" for button in at.button)
    for label in ("Person", "Male-presenting", "Darker (MST 6–10)", "Medium"):
        press(at, label)
    assert labels(app_home, ids[0]) == Annotation(person_present=True, gender="male", skin_binary="darker",
                                                  confidence="medium")


def test_left_and_right_walk_the_study_and_stop_at_its_ends(three_images):
    at = focus_mode()
    press(at, "Previous")
    assert shown(at).startswith("Image 1 of 3")
    for expected in (2, 3, 3):
        press(at, "Next")
        assert shown(at).startswith(f"Image {expected} of 3")


def test_undo_walks_back_this_sessions_saves_newest_first(three_images):
    home, ids = three_images
    at = focus_mode()
    for label in ("Person", "Female-presenting", "MST 4", "High", "No person"):
        press(at, label)
    assert labels(home, ids[1]) == Annotation(person_present=False)
    press(at, "Undo last save")
    assert labels(home, ids[1]) is None and shown(at).startswith("Image 2 of 3"), "its first save: no row again"
    press(at, "Undo last save")
    assert labels(home, ids[0]) == Annotation(person_present=True, gender="female", mst=4)
    assert shown(at).startswith("Image 1 of 3") and count(at) == "0 of 3 annotated by you", "no confidence: unrated"
    for _ in range(3):
        press(at, "Undo last save")
    assert labels(home, ids[0]) is None and count(at) == "0 of 3 annotated by you"
    press(at, "Undo last save")
    assert [error.value for error in at.error] == [plain("Nothing to undo: this session has saved nothing yet.")]
    with Store.open(home) as store:
        assert store.count("annotation_history") == 10, "five saves and five undos, all kept"


def test_the_last_label_of_the_study_says_everything_is_done(three_images):
    at = focus_mode()
    for _ in range(3):
        for label in ("No person", "High"):
            press(at, label)
    assert "Every image in this study has all your labels" in at.success[0].value
    assert count(at) == "3 of 3 annotated by you"


# -- the grid: live count, failed saves -------------------------------------------------------------


def test_the_count_moves_once_every_question_is_answered(three_images):
    at = open_page("annotate", rater="ana")
    next(radio for radio in at.radio if radio.label == "Person").set_value("No person").run()
    # the image is not rated yet (no confidence): the count stays
    assert count(at) == "0 of 3 annotated by you"
    assert [caption.value for caption in at.caption if "Saved:" in caption.value] == [":material/check: Saved: No person"]
    next(radio for radio in at.radio if radio.label == "Confidence").set_value("High").run()
    # every question answered: the count moves (in a browser the count's fragment reads it again
    # every few seconds, and only the clicked card reruns: tests/test_browser.py)
    assert count(at) == "1 of 3 annotated by you"


def test_a_save_that_fails_says_so_on_its_card(three_images):
    """In a browser a click reruns only its card, which draws the message the save left for it
    (tests/test_browser.py sees "Complete" so); AppTest reruns the whole page, where a deleted image
    has left the grid, so the two halves are checked apart: what the save leaves, what a card draws."""
    home, ids = three_images
    at = open_page("annotate", rater="ana")
    with Store.open(home) as store:  # the image goes away under the rater's card
        store.db.write(lambda cursor: cursor.execute("DELETE FROM images WHERE image_id = ?", [ids[0]]))
    next(radio for radio in at.radio if radio.label == "Person").set_value("Person").run()
    assert not at.exception
    assert at.session_state[f"problem-{ids[0]}"] == f"Not saved: there is no image with id {ids[0]} in the store."
    assert not [caption for caption in at.caption if "Saved:" in caption.value]
    with Store.open(home) as store:
        assert store.count("annotations") == 0
    at.session_state[f"problem-{ids[1]}"] = "Not saved: the store is busy."
    at.run()
    assert [error.value for error in at.error] == [plain("Not saved: the store is busy.")]


def test_a_grid_card_the_team_completed_meanwhile_refuses_and_says_so(three_images):
    """As above, in two halves: the refused click leaves the card its flag, and a flagged card says why."""
    from sdaudit.store.team import Team, TeamSettings

    home, ids = three_images
    at = open_page("annotate", rater="ana")
    done = Annotation(person_present=True, gender="male", mst=3, confidence="high")
    with Store.open(home) as store:  # two others complete image 1 while it is on ana's screen
        Team(store).set_settings("default", TeamSettings(raters_per_image=2))
        for rater in ("ben", "cai"):
            store.save_annotation(ids[0], rater, done)
    next(radio for radio in at.radio if radio.label == "Person").set_value("No person").run()
    assert not at.exception
    assert labels(home, ids[0]) is None, "the third rater's answer is refused"
    assert at.session_state[f"full-{ids[0]}"] is True
    assert not [caption for caption in at.caption if "Saved:" in caption.value]
    at.session_state[f"full-{ids[1]}"] = True
    at.run()
    assert [info.value for info in at.info if info.value.startswith("Complete")] == [
        "Complete: this image has its 2 ratings from other raters, so your answer is not needed and was not "
        "saved. Go on to the next image."]
    card = [radio for radio in at.radio if (radio.key or "").endswith(f"-{ids[1]}")]
    assert len(card) == 4 and all(radio.disabled for radio in card), "a complete card takes no answer"


# -- the address ------------------------------------------------------------------------------------


def test_the_address_gives_the_rater_and_the_study(app_home):
    with Store.open(app_home) as store:
        store.ensure_study("nurses")
    at = open_page("annotate", query={"rater": "bea", "study": "nurses"})
    assert next(box for box in at.text_input if box.label == "Rater").value == "bea"
    assert next(box for box in at.selectbox if box.label == "Study").value == "nurses"
    next(box for box in at.text_input if box.label == "Rater").input("cy").run()
    assert (at.query_params["rater"], at.query_params["study"]) == ("cy", "nurses")


def test_an_unknown_study_in_the_address_falls_back_without_an_error(app_home):
    at = open_page("annotate", query={"rater": "bea", "study": "no-such-study"})
    assert next(box for box in at.selectbox if box.label == "Study").value == "default"
    assert not at.error and not at.exception
    assert at.query_params["study"] == "default"


# -- Home -------------------------------------------------------------------------------------------


def next_step(at: AppTest) -> tuple[str, str]:
    link = at.page_link[0]
    return link.value, link.proto.page


def test_home_sends_an_empty_study_to_generate(app_home):
    at = open_page("home", rater="ana")
    assert [title.value for title in at.title] == ["sdaudit"]
    assert next_step(at) == ("Next: generate images", "generate")
    assert [metric.value for metric in at.metric] == ["0", "0", "0", "0"]


def test_home_sends_a_study_with_unlabelled_images_to_annotate(three_images):
    home, ids = three_images
    with Store.open(home) as store:
        store.save_annotation(ids[0], "bea", Annotation(person_present=False, confidence="high"))
    at = open_page("home", rater="ana")
    assert next_step(at) == ("Next: annotate images", "annotate")
    assert [metric.label for metric in at.metric] == ["Images", "Annotated by you", "Annotated by anyone", "Raters"]
    assert [metric.value for metric in at.metric] == ["3", "0", "1", "1"]


def test_home_sends_an_annotated_study_to_results(three_images):
    home, ids = three_images
    with Store.open(home) as store:
        for image_id in ids:
            store.save_annotation(image_id, "ana", Annotation(person_present=False, confidence="high"))
    at = open_page("home", rater="ana")
    assert next_step(at) == ("Next: see the results", "results")
    assert [metric.value for metric in at.metric] == ["3", "3", "3", "1"]


# -- the rules beneath ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("images", "imported", "complete", "to_do", "expected"),
    [
        (0, 0, 0, 0, "generate"),
        (4, 0, 4, 1, "annotate"),  # others finished; this rater may still add one
        (4, 0, 3, 1, "annotate"),
        (4, 0, 4, 0, "results"),
        (4, 0, 2, 0, "others"),  # this rater has rated what they can; two images wait for other raters
        (0, 221, 0, 0, "results"),  # an imported sheet: labels without files
    ],
)
def test_the_next_step(images, imported, complete, to_do, expected):
    counts = StudyCounts(images=images, imported=imported, rated_by_you=0, rated_by_anyone=complete + imported,
                         complete=complete, to_do=to_do, raters=1, needed=2)
    assert StudyProgress(study="s", rater="ana", counts=counts).next_step == expected


def test_study_progress_counts_an_imported_sheet_and_raters():
    store = Store()
    add_annotated_run(store, "sheet", "origin", {("female", 2): 3, ("male", 8): 2}, rater="r1")
    store.db.write(lambda cursor: cursor.execute("UPDATE images SET external = true"))
    add_annotated_run(store, "more", "origin", {("male", 3): 1}, rater="r2")
    counts = study_progress(store, "origin", "r2").counts
    assert (counts.images, counts.imported, counts.rated_by_you, counts.rated_by_anyone, counts.complete,
            counts.raters) == (1, 5, 1, 6, 1, 2)
    assert study_progress(store, "other", "r2").counts.images == 0


def test_next_to_label_goes_round_and_ends_when_all_are_done():
    order = [(1, True), (2, False), (3, True), (4, False)]
    assert next_to_label(order, 2) == 4
    assert next_to_label(order, 4) == 2
    assert next_to_label([(1, True), (2, False)], 2) is None, "only the image just finished was left"
    assert next_to_label([(1, True), (2, True)], 1) is None
    assert (step([5, 6, 7], 6, 1), step([5, 6, 7], 7, 1), step([5, 6, 7], 5, -1), step([5, 6, 7], 9, 1)) == (7, 7, 5, 5)


def test_keys_that_reach_one_run_together_save_nothing_and_say_so(three_images):
    """Two keys within one rerun: Streamlit runs their callbacks in the buttons' order, so "High"
    (which completes image 1) then "No person" meant for image 2 would mark image 1 "no person"."""
    home, ids = three_images
    at = focus_mode()
    for label in ("Person", "Female-presenting", "MST 4"):
        press(at, label)
    for label in ("High", "No person"):
        next(button for button in at.button if button.label == label).click()
    at.run()
    assert [error.value for error in at.error] == [plain(TOO_FAST.format(count=2))]
    assert labels(home, ids[0]) == Annotation(person_present=True, gender="female", mst=4), "image 1 is unchanged"
    assert shown(at.run()).startswith("Image 1 of 3")
    press(at, "High")  # at once: typed before the rater could read the refusal
    assert [error.value for error in at.error] == [plain(QUIET)]
    assert labels(home, ids[0]).confidence is None and shown(at).startswith("Image 1 of 3")
    at.session_state[REFUSED_AT] -= QUIET_S  # the rater pauses for a second
    press(at, "High")
    assert not at.error and shown(at).startswith("Image 2 of 3"), "one key at a time is taken again"
