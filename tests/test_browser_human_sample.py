"""A rater in a study's human sample never sees a machine's answer (issue 25: anchoring would void the
prediction-powered method), in a real browser: `streamlit run streamlit_app.py` driven by Playwright
on Debian's chromium (conftest's ``browser``), as tests/test_browser.py runs the app.

The study's every image has a machine answer (male-presenting, MST 9) with scores no page would
otherwise show; the rater's grid and focus mode offer the sample first and show neither the answer
(no radio chosen, no button marked) nor a score, the labeller or its model. Controls show each check
can fail: the machine answers are in the store, and each check sees the thing it looks for once a
rater's own click (or a planted line of text) puts it on the page.
"""

from __future__ import annotations

import shutil

import pytest
from helpers import App, Deadline

from sdaudit.generation.generate import StoreSink, generate
from sdaudit.generation.spec import GenerationSpec
from sdaudit.scheme import Annotation
from sdaudit.store import Store
from sdaudit.store.machine import MachineAnswer, MachineTables

pytestmark = pytest.mark.slow  # a real browser against a real server

MACHINE_LABELS = Annotation(person_present=True, gender="male", mst=9)
SCORES = {"person_present": {"true": 0.9731, "false": 0.0269}, "gender": {"male": 0.9173, "female": 0.0827},
          "mst": {"9": 0.6412, "8": 0.3588}}
MODEL = "machine-oracle-clip-7"
# what a page that leaked a machine answer would show: a score (as a number or a percentage), the model
SHOWN_IF_LEAKED = ("0.9731", "0.9173", "0.6412", "0.3588", "97.3", "91.7", "64.1", "35.9", "machine-oracle")


@pytest.fixture
def app(tmp_path, tiny_model):
    """An app over a home with study "default": six demo images, a human sample of three (seed 11),
    and a labelling whose answer for every image is ``MACHINE_LABELS`` with ``SCORES``."""
    deadline = Deadline()
    running = App(tmp_path / "home", deadline)
    shutil.copytree(tiny_model, running.home / "models" / "demo")
    spec = GenerationSpec(model="demo", first_seed=0, last_seed=5, steps=2, height=64, width=64)
    with Store.open(running.home) as store:
        generate(spec, StoreSink(store, running.home), home=running.home)
        tables = MachineTables(store)
        running.sample = tables.draw_human_sample("default", 3, seed=11).image_ids
        labelling = tables.start_labelling("default", "clip", MODEL, model_revision="r1")
        images = store.images(study="default")
        tables.save_machine_labels(labelling, [MachineAnswer(int(image_id), MACHINE_LABELS, SCORES)
                                               for image_id in images["image_id"]])
        running.seeds = dict(zip(images["image_id"].astype(int), images["seed"].astype(int)))
        # the control: the machine answers really are in the store, for the sample's images too
        stored = tables.machine_labels("default")
        assert len(stored) == 6 and set(running.sample) <= set(stored["image_id"])
        assert set(stored["gender"]) == {"male"} and set(stored["mst"]) == {9}
        assert all(scores == SCORES for scores in stored["scores"]) and set(stored["model"]) == {MODEL}
        assert store.annotations().empty, "no person's label: every radio a rater sees starts empty"
    running.start()
    yield running
    running.stop()


def tab(browser, deadline: Deadline):
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.set_default_timeout(deadline.left_ms())
    return page


def wait_for_script(page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')


def sign_in_as(page, rater: str) -> None:
    box = page.get_by_label("Rater", exact=True)
    box.fill(rater)
    box.press("Enter")
    wait_for_script(page)


def cards_in_reading_order(cards) -> list[str]:
    """The cards' image ids as a rater reads the grid, row by row (the page fills three columns by
    turns, so the document holds them column by column)."""
    placed = []
    for index in range(cards.count()):
        box = cards.nth(index).bounding_box()
        key = cards.nth(index).get_attribute("class").split("st-key-person-")[1].split()[0]
        placed.append((box["x"], box["y"], key))
    columns = sorted({round(x) for x, _, _ in placed})
    rows = {key: sorted(y for x, y, _ in placed if round(x) == round(kx)).index(ky) for kx, ky, key in placed}
    return [key for *_, key in sorted(placed, key=lambda card: (rows[card[2]], columns.index(round(card[0]))))]


def leaked(page) -> list[str]:
    """Each of ``SHOWN_IF_LEAKED`` found in the page's text or its HTML (attributes, tooltips)."""
    text = page.inner_text('[data-testid="stApp"]') + page.content()
    return [word for word in SHOWN_IF_LEAKED if word in text]


def plant_text(page, text: str) -> None:
    page.evaluate("(text) => { const line = document.createElement('p'); line.textContent = text;"
                  "  document.querySelector('[data-testid=\"stMain\"]').appendChild(line); }", text)


def test_a_rater_in_the_human_sample_never_sees_a_machine_answer(app, browser):
    deadline = app.deadline
    sample = [str(image_id) for image_id in app.sample]
    radios = ", ".join(f'[class*="st-key-{field}-"] input[type="radio"]' for field in ("person", "gender", "skin",
                                                                                       "confidence"))
    checked = radios.replace('"radio"]', '"radio"]:checked')  # the cards' radios (not Order's or Show's)
    buttons = '[class*="st-key-focus-"] .stButton button'
    marked = f'{buttons}[kind="primary"]'  # focus mode marks a saved choice as the primary button

    # the grid: the sample's three images first, every radio empty, no score, labeller or model
    grid = tab(browser, deadline)
    grid.goto(f"{app.url}/annotate")
    wait_for_script(grid)
    sign_in_as(grid, "ana")
    cards = grid.locator('[class*="st-key-person-"]')
    grid.wait_for_function("() => document.querySelectorAll('[class*=\"st-key-person-\"]').length === 6")
    wait_for_script(grid)
    keys = cards_in_reading_order(cards)
    assert keys[:3] == sample, "the to-do list offers the human sample first, in draw order"
    assert grid.locator(radios).count() >= 6 * (2 + 3 + 10 + 3), "every card's answers are drawn"
    assert grid.locator(checked).count() == 0, "no machine answer preselected"
    assert leaked(grid) == []

    # focus mode, another rater: the sample's first image first, no button marked, nothing leaked
    focus = tab(browser, deadline)
    focus.goto(f"{app.url}/annotate?view=focus")
    wait_for_script(focus)
    sign_in_as(focus, "ben")
    focus.wait_for_function("(text) => document.querySelector('[data-testid=\"stMain\"]')?.innerText.includes(text)",
                            arg=f"Image 1 of 6 · seed {app.seeds[app.sample[0]]} ·")
    wait_for_script(focus)
    focus.wait_for_function("(selector) => document.querySelectorAll(selector).length >= 2 + 3 + 10 + 3 + 3",
                            arg=buttons)  # every choice and Previous, Next, Undo are drawn
    assert focus.locator(marked).count() == 0, "no machine answer marked"
    assert leaked(focus) == []

    # controls: each check sees what it looks for once it is there
    focus.wait_for_function("() => document.activeElement === document.body")  # the keys reach the view
    focus.keyboard.press("m")  # ben's own choice: male-presenting
    focus.wait_for_function("(selector) => document.querySelectorAll(selector).length === 1", arg=marked)
    grid.locator(f".st-key-gender-{keys[0]}").get_by_role("radiogroup").get_by_text("Female-presenting",
                                                                                      exact=True).click()
    grid.wait_for_function("(selector) => document.querySelectorAll(selector).length === 1", arg=checked)
    plant_text(grid, "machine says 91.7% male")
    assert leaked(grid) == ["91.7"]
