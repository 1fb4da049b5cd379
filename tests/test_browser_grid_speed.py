"""The Annotate grid in a real browser draws its cards, not skeletons, once a page of the app has run.

Streamlit's browser code loads each element kind's code (the radio's, the image's) when the first
element of that kind arrives; until then every such element is a skeleton, and React reveals them no
sooner than 500 ms after the last skeleton appeared. Under load, with cards arriving one by one, the
grid stayed skeletons for seconds. Every page now draws an image and a radio out of sight in the
sidebar (app.widgets.fetch_card_code), so a grid that comes after any first page finds its code in.

The checks are states, not times: a watcher in the page counts every skeleton that appears inside a
card, from the first page on, and the test ends once every card's image has loaded.
"""

from __future__ import annotations

import shutil

import pytest
from helpers import App, Deadline

from sdaudit.generation.generate import StoreSink, generate
from sdaudit.generation.spec import GenerationSpec
from sdaudit.store import Store

pytestmark = pytest.mark.slow  # a real browser against a real server

CARDS = 12
# A card: the block that holds a Person question as one of its own elements.
IS_CARD = "(block) => block !== null && block.querySelector(':scope > [class*=\"st-key-person-\"]') !== null"
# Counts each skeleton (Streamlit's stand-in for an element whose code is loading) that appears in a card.
WATCH_CARD_SKELETONS = f"""
window.isCard = {IS_CARD};
window.cardSkeletons = 0;
const seen = new WeakSet();
new MutationObserver(() => {{
  for (const skeleton of document.querySelectorAll('[data-testid="stMain"] [data-testid="stSkeleton"]')) {{
    if (!seen.has(skeleton) && window.isCard(skeleton.closest('[data-testid="stVerticalBlock"]'))) {{
      seen.add(skeleton);
      window.cardSkeletons += 1;
    }}
  }}
}}).observe(document, {{childList: true, subtree: true}});
"""
CARD_IMAGES_LOADED = f"""() => {{
  const images = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stImage"] img')];
  return images.length === {CARDS} && images.every(image => image.complete && image.naturalWidth > 0);
}}"""
LIMIT = Deadline()


@pytest.fixture(autouse=True)
def deadline():
    global LIMIT
    LIMIT = Deadline()
    return LIMIT


@pytest.fixture(scope="module")
def grid_app(tmp_path_factory, tiny_model):
    """One app over twelve demo images, made before it starts, as `generate --model demo` makes them."""
    running = App(tmp_path_factory.mktemp("grid") / "home", Deadline())
    shutil.copytree(tiny_model, running.home / "models" / "demo")
    spec = GenerationSpec(model="demo", first_seed=0, last_seed=CARDS - 1, steps=2, height=64, width=64)
    with Store.open(running.home) as store:
        generate(spec, StoreSink(store, running.home), home=running.home)
    running.start()
    yield running
    running.deadline = Deadline()
    running.stop()


@pytest.fixture
def page(browser):
    """A tab in a context of its own (its own session), watching for skeletons in cards from its first page."""
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    context.add_init_script(WATCH_CARD_SKELETONS)
    tab = context.new_page()
    tab.set_default_timeout(LIMIT.left_ms())
    yield tab
    context.close()


def first_page_drawn(page) -> None:
    """The script has finished and the sidebar holds no skeleton: every element it drew has its code."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=LIMIT.left_ms())
    page.wait_for_function("() => document.querySelector('[data-testid=\"stSidebarUserContent\"]') !== null && "
                           "document.querySelectorAll('[data-testid=\"stSidebar\"] [data-testid=\"stSkeleton\"]')"
                           ".length === 0", timeout=LIMIT.left_ms())


def cards_drawn(page) -> int:
    """Wait until every card's image has loaded; return how many skeletons appeared in cards."""
    page.wait_for_function(CARD_IMAGES_LOADED, timeout=LIMIT.left_ms())
    cards = page.evaluate("() => [...document.querySelectorAll('[data-testid=\"stVerticalBlock\"]')].filter(window.isCard)"
                          ".length")
    assert cards == CARDS, f"the watcher tells {cards} cards, not {CARDS}: it would miss their skeletons"
    return page.evaluate("() => window.cardSkeletons")


def test_a_rater_who_types_a_name_on_annotate_gets_cards_without_skeletons(grid_app, page):
    page.goto(f"{grid_app.url}/annotate")
    page.get_by_text("Enter your name as Rater").wait_for(timeout=LIMIT.left_ms())
    first_page_drawn(page)
    box = page.get_by_label("Rater", exact=True)
    box.fill("ana")
    box.press("Enter")
    assert cards_drawn(page) == 0, "a card showed skeletons: its radio's or image's code was not loaded before it"


def test_cards_opened_from_home_come_without_skeletons(grid_app, page):
    page.goto(f"{grid_app.url}/?rater=ben")
    page.get_by_role("heading", name="sdaudit").wait_for(timeout=LIMIT.left_ms())
    first_page_drawn(page)
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Annotate", exact=True).click()
    assert cards_drawn(page) == 0, "a card showed skeletons: its radio's or image's code was not loaded before it"


def test_the_out_of_sight_card_code_is_out_of_reach_of_screen_readers_and_tab(grid_app, page):
    page.goto(f"{grid_app.url}/?rater=dora")
    page.get_by_role("heading", name="sdaudit").wait_for(timeout=LIMIT.left_ms())
    first_page_drawn(page)
    page.locator('.st-key-card-code [data-testid="stRadio"]').wait_for(state="attached", timeout=LIMIT.left_ms())
    sidebar = page.locator('[data-testid="stSidebar"]').aria_snapshot()
    assert 'textbox "Rater"' in sidebar, f"the snapshot misses the sidebar's own widgets: {sidebar}"
    for word in ("radiogroup", "No options", "Fullscreen", "- img"):
        assert word not in sidebar, f"{word!r} is exposed to assistive technology in the sidebar: {sidebar}"
