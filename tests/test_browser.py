"""The app in a real browser: `streamlit run streamlit_app.py`, driven by Playwright on Debian's chromium.

AppTest cannot run JavaScript, so what the user actually sees (the chart drawn by Vega, the
navigation) is checked here once, end to end.

Every wait is for a state (a health answer, a finished script, a "Saved" sign on a card, a job's
line) and takes what is left of one generous limit per test (``helpers.WAIT_LIMIT_S``), never a
fixed sleep: a loaded machine is slower, not wrong.

One browser serves the module (each test gets its own tab in its own context, so no cookies or
session are shared), and one app server serves every test that only reads or writes a study of its
own (``shared_app``, its studies made before it starts). A test gets a fresh server (``app``) only
where it must: it kills the server, needs a server no page has run on yet, or reads the store file
afterwards, which the running app holds locked.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote, urlsplit

import pandas as pd
import pytest
from helpers import (
    ORIGIN_SHEET,
    App,
    Deadline,
    add_study_as_an_older_store_did,
    make_images,
    make_run,
    sheet,
    wait_until,
)

from sdaudit.files.sheets import import_annotations
from sdaudit.generation.generate import StoreSink, generate
from sdaudit.generation.jobs import JobQueue
from sdaudit.generation.spec import GenerationSpec
from sdaudit.present.charts import EXCLUDES, VERDICT_COLOURS
from sdaudit.store import Store
from sdaudit.store.team import Team, TeamSettings

pytestmark = pytest.mark.slow  # every test here drives a real browser against a real server

ROOT = Path(__file__).resolve().parents[1]
LIMIT = Deadline()  # replaced by each test's own (the fixture below)


@pytest.fixture(autouse=True)
def deadline():
    """One limit for everything this test waits for."""
    global LIMIT
    LIMIT = Deadline()
    return LIMIT


@pytest.fixture
def app(tmp_path, deadline):
    """An app of this test's own over a fresh data home (not started: the test fills the home first)."""
    running = App(tmp_path / "home", deadline)
    yield running
    running.stop()


@pytest.fixture
def app_with_origin_study(app):
    """The app over a fresh data home holding the origin sheet's study."""
    with Store.open(app.home) as store:
        import_annotations(ORIGIN_SHEET, store, study="origin", rater="origin-rater")
    return app.start()


# the shared app's studies, each used by the tests named beside it
ORIGIN = "origin"  # the origin sheet: the chart test, the downloads test
OCCUPATIONS = "occupations"  # 3 prompts × 2 models: the forest chart test
NURSES = "nurses"  # an empty study: the reload test
HOSTILE = "s http://localhost:18999/x www.evil.example"  # a name with a URL: the user-text test
WIDE = "wide"  # 3 runs with long names and "unclear" answers: the fit test
LONG_PROMPT = "a doctor sitting behind a desk in a hospital office"


@pytest.fixture(scope="module")
def shared_app(tmp_path_factory):
    """One app for the module's tests that need no server of their own: every study they use is
    made here, before it starts (it then holds the store), and each test opens its own study."""
    shared = App(tmp_path_factory.mktemp("shared") / "home", Deadline())
    with Store.open(shared.home) as store:
        store.ensure_study()  # the default study comes first: the one a fresh session shows
        store.ensure_study(NURSES)
        import_annotations(ORIGIN_SHEET, store, study=ORIGIN, rater="origin-rater")
        add_study_as_an_older_store_did(store, HOSTILE)  # today's rule refuses such a name
        for index, (slot, model) in enumerate((slot, model) for slot in ("doctor", "nurse", "ceo")
                                              for model in ("model-a", "model-b")):
            run = replace(make_run(f"{slot}-{model}", study=OCCUPATIONS, prompt=f"a photo of a {slot}"),
                          slot=slot, model=model)
            store.add_run(run)
            store.add_images(make_images(run.run_key, seeds=range(20)))
            rows = sheet({("female", 2): 2 + 3 * index, ("male", 7): 18 - 3 * index})
            rows["image_id"] = store.images(run_key=run.run_key)["image_id"].to_numpy()
            rows["confidence"] = "high"
            store.save_annotations(rows)
        for index, (prompt, model) in enumerate(((LONG_PROMPT, "CompVis/stable-diffusion-v1-4"),
                                                 (LONG_PROMPT, "stabilityai/stable-diffusion-2-1"),
                                                 ("a nurse at work", "CompVis/stable-diffusion-v1-4"))):
            run = replace(make_run(f"wide-{index}", study=WIDE, prompt=prompt), model=model)
            store.add_run(run)
            store.add_images(make_images(run.run_key, seeds=range(60)))
            rows = sheet({("female", 2): 10 + 12 * index, ("female", 8): 3, ("male", 3): 30 - 10 * index,
                          ("male", 7): 5, ("unclear", 4): 12 - 2 * index})
            rows["image_id"] = store.images(run_key=run.run_key)["image_id"].to_numpy()
            rows["confidence"] = "high"
            store.save_annotations(rows)
    shared.start()
    yield shared
    shared.deadline = Deadline()
    shared.stop()


@pytest.fixture
def page(browser):
    """A tab of this test's own; every tab the test opened is closed afterwards."""
    before = set(browser.contexts)
    yield new_page(browser)
    for context in set(browser.contexts) - before:
        context.close()


def new_page(browser):
    """A tab in a context of its own (its own cookies and session) whose every Playwright wait
    defaults to what is left of the test's limit."""
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.set_default_timeout(LIMIT.left_ms())
    return page


def wait_for_script(page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=LIMIT.left_ms())


def test_the_results_page_draws_the_chart_with_parity_markers(shared_app, page, tmp_path):
    page.goto(f"{shared_app.url}/?study={ORIGIN}")
    wait_for_script(page)
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Results", exact=True).click()
    page.get_by_role("heading", name="Results").wait_for(timeout=LIMIT.left_ms())
    wait_for_script(page)
    chart = page.locator('[data-testid="stVegaLiteChart"]').first
    chart.wait_for(timeout=LIMIT.left_ms())
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stVegaLiteChart\"] canvas, "
        "[data-testid=\"stVegaLiteChart\"] svg') !== null",
        timeout=LIMIT.left_ms(),
    )
    box = chart.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 200
    # Vega draws each point as an SVG path carrying its colour and its data as an aria-label
    points = "[data-testid=stVegaLiteChart] svg path[aria-label*='group_label']"
    page.wait_for_function(f"() => document.querySelectorAll(\"{points}\").length >= 8", timeout=LIMIT.left_ms())
    drawn = page.evaluate(f"""() => Array.from(document.querySelectorAll("{points}")).map(
        e => [e.getAttribute("aria-label"), (e.getAttribute("stroke") || "").toUpperCase(), e.getAttribute("fill")])""")
    by_group = {label.split("group_label: ")[1].split(";")[0]: (stroke, fill) for label, stroke, fill in drawn}
    excludes = VERDICT_COLOURS[EXCLUDES].upper()
    for group in ("darker", "darker, female-presenting", "darker, male-presenting"):
        assert by_group[group][0] == excludes, (group, by_group[group])  # the origin study's main finding
    assert by_group["darker, female-presenting"][1] == "white"  # unreliable (NCHS): hollow, still orange
    text = page.inner_text('[data-testid="stMain"]')
    assert "221 annotated images with a person" in text
    assert "Read these intervals as rough" in text
    page.screenshot(path=str(tmp_path / "results.png"), full_page=True)
    assert (tmp_path / "results.png").stat().st_size > 20_000


def test_every_download_on_results_works_on_the_first_click(shared_app, page, tmp_path):
    """Each download button gives its file at the first click (a deferred chart once answered
    'file not found' when the click's own rerun had already replaced it)."""
    page.goto(f"{shared_app.url}/results?study={ORIGIN}")
    page.get_by_role("heading", name="Results").wait_for(timeout=LIMIT.left_ms())
    wait_for_script(page)
    expected = {"Estimates (CSV)": b"family,", "Chart (PNG)": b"\x89PNG", "Chart (SVG)": b"<svg",
                "Report (HTML)": b"<!DOCTYPE html>"}
    for label, start in expected.items():
        button = page.locator('[data-testid="stDownloadButton"]').get_by_text(label, exact=True)
        with page.expect_download(timeout=LIMIT.left_ms()) as download:
            button.click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        assert saved.read_bytes().lstrip()[:len(start)] == start, label
        wait_for_script(page)


def test_a_deep_link_to_a_page_after_the_first_visit_finds_it(shared_app, page):
    """Once the router has run, Streamlit matches a link against the pages' public paths, and the
    default page's is "": while Generate was the default, /generate said "Page not found"."""
    url = shared_app.url
    page.goto(url)
    page.get_by_role("heading", name="sdaudit").wait_for(timeout=LIMIT.left_ms())  # Home
    wait_for_script(page)
    for name in ("generate", "annotate", "generate"):
        page.goto(f"{url}/{name}")
        page.get_by_role("heading", name=name.capitalize()).wait_for(timeout=LIMIT.left_ms())
        wait_for_script(page)
        assert page.get_by_text("Page not found").count() == 0, name
        assert urlsplit(page.url).path == f"/{name}"


def test_user_text_is_never_a_link_in_the_browser(shared_app, page):
    """Streamlit's Markdown autolinks bare URLs even when Markdown characters are escaped; a study
    named with one is shown, and the page holds no link to it."""
    page.goto(f"{shared_app.url}/annotate?study={quote(HOSTILE, safe='')}")
    wait_for_script(page)
    fill(page, "Rater", "ana")
    page.get_by_text("has no images yet").wait_for(timeout=LIMIT.left_ms())
    assert "18999" in page.inner_text('[data-testid="stMain"]')
    assert page.locator('a[href*="18999"], a[href*="evil"]').count() == 0


def test_results_draw_one_forest_row_per_prompt_and_model_of_a_study(shared_app, page):
    """A study of 3 prompts × 2 models: the "Across runs" forest chart has one point per run."""
    page.goto(f"{shared_app.url}/results?study={OCCUPATIONS}")
    page.get_by_role("heading", name="Across runs").wait_for(timeout=LIMIT.left_ms())
    wait_for_script(page)
    # Vega labels each mark with its data; the across-runs points carry the run ("source") and the share
    points = "[data-testid=stVegaLiteChart] svg path[aria-label^='share: '][aria-label*='source: ']"
    page.wait_for_function(f"() => document.querySelectorAll(\"{points}\").length >= 6", timeout=LIMIT.left_ms())
    labels = page.evaluate(f"""() => Array.from(document.querySelectorAll("{points}")).map(
        e => e.getAttribute("aria-label"))""")
    runs = sorted(label.split("source: ")[1].split(" · ")[0] + " · " + label.split(" · ")[1] for label in labels)
    assert len(labels) == 6, labels
    # drawn at its own width, not squeezed: the shares (10% to 85%) lie far apart on the page
    lefts = [page.locator(points).nth(index).bounding_box()["x"] for index in range(6)]
    assert max(lefts) - min(lefts) > 200, lefts
    assert runs == sorted(f"{slot} · {model}" for slot in ("doctor", "nurse", "ceo")
                          for model in ("model-a", "model-b"))


# Each chart (Vega's SVG) and table (the grid's scroller) on the page, against the main column's
# inner width; and every text Vega drew that it cut short with "…".
MEASURE_FIT = """() => {
  const column = document.querySelector('[data-testid="stMainBlockContainer"]');
  const style = getComputedStyle(column);
  const inner = column.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const charts = Array.from(document.querySelectorAll('[data-testid="stVegaLiteChart"]')).map(chart => [
    chart.getBoundingClientRect().width, chart.querySelector('svg').getBoundingClientRect().width]);
  const tables = Array.from(document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')).map(grid => [
    grid.closest('[data-testid="stDataFrame"]').getBoundingClientRect().width, grid.scrollWidth, grid.clientWidth]);
  const cut = Array.from(document.querySelectorAll('[data-testid="stVegaLiteChart"] svg text'))
    .map(text => text.textContent).filter(text => text.endsWith('…'));
  return {inner, charts, tables, cut};
}"""


def test_results_charts_and_tables_fit_the_column_with_every_label_whole(shared_app, page):
    """At 1366×768 and 1920×1080 no chart or table on Results, the compared runs included, is wider
    than the main column, no table scrolls sideways (its Note column was cut off at the right), and
    no legend or axis label is cut short (the compare chart was 1,244 px wide, its legend cut)."""
    for width, height in ((1366, 768), (1920, 1080)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{shared_app.url}/results?study={WIDE}")
        page.get_by_role("heading", name="Across runs").wait_for(timeout=LIMIT.left_ms())
        wait_for_script(page)
        page.get_by_text("Compare the chosen runs side by side").click()
        wait_for_script(page)
        # the main chart, across runs, each run against the reference, and the shares compared
        page.wait_for_function("() => document.querySelectorAll('[data-testid=stVegaLiteChart] svg').length >= 4 && "
                               "document.querySelectorAll('[data-testid=stDataFrame] .dvn-scroller').length >= 3",
                               timeout=LIMIT.left_ms())
        page.get_by_text("Shares compared").wait_for(timeout=LIMIT.left_ms())
        fit = page.evaluate(MEASURE_FIT)
        assert 600 < fit["inner"] < width, fit
        for box, drawn in fit["charts"]:
            assert max(box, drawn) <= fit["inner"] + 1, (width, fit)
        for box, scrolled, shown in fit["tables"]:
            assert box <= fit["inner"] + 1 and scrolled <= shown + 1, (width, fit)
        assert fit["cut"] == [], (width, fit["cut"])


def test_a_reload_keeps_the_rater_and_the_study(shared_app, page):
    page.goto(f"{shared_app.url}/annotate")
    wait_for_script(page)
    page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Study").click()
    page.get_by_role("option", name="nurses", exact=True).click()
    wait_for_script(page)
    fill(page, "Rater", "bea")
    page.wait_for_url("**/annotate?*rater=bea*", timeout=LIMIT.left_ms())
    assert "study=nurses" in page.url
    page.reload()
    page.get_by_role("heading", name="Annotate").wait_for(timeout=LIMIT.left_ms())
    wait_for_script(page)
    page.wait_for_function(
        "() => [...document.querySelectorAll('input')].some("
        "  input => input.getAttribute('aria-label') === 'Rater' && input.value === 'bea')", timeout=LIMIT.left_ms())
    assert page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Study").input_value() == "nurses"
    assert "has no images yet" in page.inner_text('[data-testid="stMain"]') and "nurses" in page.inner_text(
        '[data-testid="stMain"]')


# -- tests with an app of their own ---------------------------------------------------------------
# Each says why it cannot use the shared app.


def test_a_deep_link_after_a_restart_gets_the_page_with_the_apps_shell(app_with_origin_study, page):
    """Streamlit runs its old pages/ discovery (beside the main script, app/router.py) until a
    script calls st.navigation; app/pages/results.py hands that first visit to the router, so a
    first visitor's /results link gets the page with its sidebar and no "Page not found".

    Its own app: the link must be the first visit a server ever has."""
    page.goto(f"{app_with_origin_study}/results")
    page.get_by_role("heading", name="Results").wait_for(timeout=LIMIT.left_ms())
    wait_for_script(page)
    sidebar = page.inner_text('[data-testid="stSidebar"]')
    assert "Data home" in sidebar and "Runs" in sidebar
    assert page.get_by_text("Page not found").count() == 0
    assert urlsplit(page.url).path == "/results"  # the query keeps the study (?study=origin)


def fill(page, label: str, value: str) -> None:
    """Type into a text or number field and wait until the rerun it caused shows the value kept."""
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter" if label in ("Rater",) else "Tab")
    wait_for_script(page)
    page.wait_for_function(
        "([label, value]) => [...document.querySelectorAll('input')].some("
        "  input => input.getAttribute('aria-label') === label && input.value === value)",
        arg=[label, value], timeout=LIMIT.left_ms())
    wait_for_script(page)


def queue_demo_job(page, **fields: str) -> None:
    """Fill the Generate form for the demo model at 64×64 (plus ``fields``) and submit it."""
    fill(page, "Model", "demo")
    for label, value in {"Width": "64", "Height": "64", **fields}.items():
        fill(page, label.replace("_", " "), value)
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text("Queued job 1").wait_for(timeout=LIMIT.left_ms())


def open_annotate(page, rater: str, *, cards_expected: int | None = None) -> list[str]:
    """Go to Annotate as ``rater``; returns the image ids of the cards shown (with
    ``cards_expected``, once that many are drawn: a loaded browser draws them one by one)."""
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Annotate", exact=True).click()
    page.get_by_role("heading", name="Annotate").wait_for(timeout=LIMIT.left_ms())
    wait_for_script(page)
    fill(page, "Rater", rater)
    assert page.get_by_label("Rater", exact=True).input_value() == rater, "the rater's name must stick"
    cards = page.locator('[class*="st-key-person-"]')
    cards.first.wait_for(timeout=LIMIT.left_ms())
    if cards_expected is not None:
        page.wait_for_function(f"() => document.querySelectorAll('[class*=\"st-key-person-\"]').length "
                               f"=== {cards_expected}", timeout=LIMIT.left_ms())
    wait_for_script(page)
    return [cards.nth(i).get_attribute("class").split("st-key-person-")[1].split()[0] for i in range(cards.count())]


def choose(page, field: str, image_id: str, label: str, *, wait: bool = True) -> None:
    """Click one radio choice on one card (keyed widgets carry the class st-key-<key>) and, with
    ``wait``, wait until the card says the choice is saved."""
    page.locator(f".st-key-{field}-{image_id}").get_by_role("radiogroup").get_by_text(label, exact=True).click()
    if wait:
        wait_saved(page, image_id, label)


def wait_saved(page, image_id: str, label: str) -> None:
    """The card's "Saved: …" sign, drawn by the rerun after the store has the row, lists ``label``."""
    page.wait_for_function(
        "([selector, label]) => { const sign = document.querySelector(selector);"
        "  return sign !== null && sign.innerText.split('Saved: ')[1]?.split(' · ').includes(label); }",
        arg=[f".st-key-saved-{image_id}", label], timeout=LIMIT.left_ms())


def test_generate_four_images_then_annotate_them_all(app, page, tmp_path):
    """The whole flow a newcomer follows, with no GPU and no network: demo model, four images,
    four annotations, all by clicking.

    Its own app: a newcomer's (no demo model yet, job 1), and it reads the store file afterwards."""
    page.goto(f"{app.start()}/generate")
    wait_for_script(page)
    queue_demo_job(page, Steps="2", Batch_size="4")
    # the progress fragment polls the worker; its line changes when the job is done
    page.get_by_text("Last job 1: done, 4 of 4 images").wait_for(timeout=LIMIT.left_ms())

    keys = open_annotate(page, "ana", cards_expected=4)
    page.get_by_text("0 of 4 annotated by you").wait_for(timeout=LIMIT.left_ms())  # the count's own fragment
    assert len(keys) == 4
    for image_id in keys:
        for field, label in (("person", "Person"), ("gender", "Female-presenting"), ("skin", "MST 4"),
                             ("confidence", "High")):
            choose(page, field, image_id, label)
    # the count follows the clicks on the same page (its fragment reads the store every few seconds)
    page.get_by_text("4 of 4 annotated by you").wait_for(timeout=LIMIT.left_ms())

    page.screenshot(path=str(tmp_path / "annotate.png"), full_page=True)
    app.stop()  # the app holds the store; read it once the app is gone
    with Store.open(app.home) as store:
        rows = store.annotations()
    assert len(rows) == 4 and set(rows["rater"]) == {"ana"}
    assert set(rows["gender"]) == {"female"} and set(rows["mst"]) == {4} and set(rows["confidence"]) == {"high"}


@pytest.fixture
def seed_images(app, tiny_model):
    """``seed_images(count)``: a study of ``count`` demo images in the test's app home, made before the
    app starts, as `generate --model demo --seeds 0-N` makes them (in this process: no second
    interpreter to start; the demo model is the session's copy, not built again)."""

    def seed(count: int) -> None:
        shutil.copytree(tiny_model, app.home / "models" / "demo")
        spec = GenerationSpec(model="demo", first_seed=0, last_seed=count - 1, steps=2, height=64, width=64)
        with Store.open(app.home) as store:
            generate(spec, StoreSink(store, app.home), home=app.home)

    return seed


def pngs(app: App) -> int:
    return len(list(app.home.glob("images/*/*.png")))


def card_height(page, image_id: str) -> float:
    """The height of the card (its bordered box) that holds ``image_id``'s questions."""
    return page.evaluate(
        "(id) => { let box = document.querySelector(`.st-key-person-${id}`);"
        "  while (box && getComputedStyle(box).borderTopWidth === '0px') box = box.parentElement;"
        "  return box.getBoundingClientRect().height; }", image_id)


def test_a_card_keeps_its_height_when_its_saved_sign_appears(app, seed_images, page):
    """The "Saved: …" line under a card's questions took a line of its own once the first click was
    saved: the card grew and every card below it moved while the rater aimed at the next choice."""
    seed_images(3)
    page.goto(app.start())
    wait_for_script(page)
    keys = open_annotate(page, "ana", cards_expected=3)
    page.wait_for_function("(count) => { const images = [...document.querySelectorAll('[data-testid=\"stMain\"] img')];"
                           "  return images.length === count && images.every("
                           "    image => image.complete && image.naturalWidth > 0); }",
                           arg=len(keys), timeout=LIMIT.left_ms())  # every card drawn at its full height
    before = card_height(page, keys[0])
    for field, label in (("person", "Person"), ("gender", "Female-presenting"), ("skin", "MST 10"),
                         ("confidence", "Medium")):  # the longest sign a card shows
        choose(page, field, keys[0], label)
        assert card_height(page, keys[0]) == before, f"the card grew when {label} was saved"


def test_every_acknowledged_click_survives_kill_9(app, seed_images, page):
    """Its own app: it kills the server."""
    seed_images(3)
    page.goto(app.start())
    wait_for_script(page)
    keys = open_annotate(page, "ana", cards_expected=3)
    for image_id in keys:
        for field, label in (("person", "Person"), ("gender", "Female-presenting")):
            choose(page, field, image_id, label)
    maps = Path(f"/proc/{app.server.pid}/maps")
    if maps.exists():  # Linux: the annotating app never loaded torch (it is imported only to generate)
        assert "libtorch" not in maps.read_text()
    app.stop(kill=True)  # SIGKILL: no shutdown, no checkpoint
    with Store.open(app.home) as store:
        assert store.count("annotations") == len(keys) == 3
        assert store.count("annotation_history") == 2 * len(keys)


def test_four_raters_at_once_lose_nothing(app, seed_images, page):
    """Its own app: it reads the store file afterwards."""
    seed_images(4)
    with Store.open(app.home) as store:  # all four rate every image: the study asks for four per image
        Team(store).set_settings("default", TeamSettings(raters_per_image=4))
    url = app.start()
    browser = page.context.browser
    pages = [new_page(browser) for _ in range(4)]
    raters = [f"rater-{n}" for n in range(4)]
    for each, rater in zip(pages, raters):
        each.goto(url)
        wait_for_script(each)
        keys = open_annotate(each, rater, cards_expected=4)
    # interleave the four sessions' clicks without waiting, so their saves overlap on the server
    for image_id in keys:
        for each in pages:
            choose(each, "person", image_id, "Person", wait=False)
    for each in pages:
        for image_id in keys:
            wait_saved(each, image_id, "Person")
        assert each.locator('[data-testid="stException"]').count() == 0
        assert each.locator('[data-testid="stAlert"]').filter(has_text="error").count() == 0
    app.stop()
    with Store.open(app.home) as store:
        rows = store.annotations()
    assert len(rows) == 16 and sorted(rows.groupby("rater").size().to_dict().items()) == [(r, 4) for r in raters]


def test_closing_the_tab_does_not_stop_generation(app, page):
    """Its own app: it counts the home's image files and reads the store file afterwards."""
    page.goto(f"{app.start()}/generate")
    wait_for_script(page)
    queue_demo_job(page, Steps="20", Batch_size="2", Batch_count="6")  # 12 images, a few seconds
    browser = page.context.browser
    page.context.close()  # the browser goes away mid-job
    assert pngs(app) < 12, "the job finished before the tab closed; the test needs a longer job"
    later = new_page(browser)  # the user comes back later
    later.goto(f"{app.url}/generate")
    later.get_by_text("Last job 1: done, 12 of 12 images").wait_for(timeout=LIMIT.left_ms())
    later.close()  # no session left polling the jobs panel while the server stops
    app.stop()
    with Store.open(app.home) as store:
        job = JobQueue(store).job(1)
        assert job.status == "done" and job.images_done == 12
        assert store.count("images") == 12


def test_a_job_cut_off_by_a_crash_is_interrupted_and_resumes_only_missing_seeds(app, page):
    """Its own app: it kills the server."""
    page.goto(f"{app.start()}/generate")
    wait_for_script(page)
    queue_demo_job(page, Steps="20", Batch_size="2", Batch_count="6")  # 12 images, a few seconds
    wait_until(lambda: pngs(app) >= 2, "the job's first batch", deadline=LIMIT, poll=0.02)  # then crash
    app.stop(kill=True)
    made_before = pngs(app)
    assert made_before < 12, "the job finished before the crash; the test needs a longer job"

    page.goto(f"{app.start()}/generate")  # the app restarts: the job it was running is now interrupted
    wait_for_script(page)
    resume = page.get_by_role("button", name="Resume job 1 (interrupted)")
    resume.wait_for(timeout=LIMIT.left_ms())
    resume.click()
    page.get_by_text("Last job 1: done").wait_for(timeout=LIMIT.left_ms())
    app.stop()
    with Store.open(app.home) as store:
        assert store.count("images") == 12
        job = JobQueue(store).job(1)
    assert job.status == "done" and job.images_done <= 12 - made_before + 2


def test_three_raters_with_two_per_image_give_every_image_exactly_two(app, seed_images, page):
    """k = 2, three raters at once, all finishing the same card at the same moment, card after card:
    each image gets three last answers, the store keeps exactly two ratings, and the third rater's card
    says the image is complete. Afterwards every to-do list is empty.

    Its own app: it reads the store file afterwards."""
    seed_images(6)
    with Store.open(app.home) as store:
        Team(store).set_settings("default", TeamSettings(raters_per_image=2))
    url = app.start()
    browser = page.context.browser
    pages = [new_page(browser) for _ in range(3)]
    cards = {}
    for each, rater in zip(pages, ("ana", "ben", "cai")):
        each.goto(url)
        wait_for_script(each)
        cards[rater] = open_annotate(each, rater, cards_expected=6)
        each.get_by_text("0 of 6 images have 2 ratings").wait_for(timeout=LIMIT.left_ms())  # the count's fragment
        assert each.get_by_text("0 of 6 images have 2 ratings").count() == 1
    assert all(sorted(keys) == sorted(cards["ana"]) and len(keys) == 6 for keys in cards.values())
    outcomes = {}
    for position in range(6):
        # each session starts the image (an unfinished answer takes no place), then the three sessions'
        # last answers overlap on the server (the race for its last place); each session waits for its
        # card's answer before its next click, as a rater would
        for each, keys in zip(pages, cards.values()):
            choose(each, "person", keys[position], "No person")
        for each, keys in zip(pages, cards.values()):
            choose(each, "confidence", keys[position], "High", wait=False)
        for (rater, keys), each in zip(cards.items(), pages):
            image_id = keys[position]
            each.wait_for_function(
                "([id]) => { if (document.querySelector(`.st-key-full-${id}`) !== null) return true;"
                "  const sign = document.querySelector(`.st-key-saved-${id}`);"
                "  return sign !== null && sign.innerText.split('Saved: ')[1]?.split(' · ').includes('High'); }",
                arg=[image_id], timeout=LIMIT.left_ms())
            outcomes[rater, image_id] = "full" if each.locator(f".st-key-full-{image_id}").count() else "saved"
    for each in pages:
        assert each.locator('[data-testid="stException"]').count() == 0
    for image_id in cards["ana"]:
        assert sorted(outcomes[rater, image_id] for rater in cards) == ["full", "saved", "saved"], image_id
    for each, rater in zip(pages, cards):
        each.reload()
        wait_for_script(each)
        fill(each, "Rater", rater)
        each.get_by_text("Nothing left to do").wait_for(timeout=LIMIT.left_ms())
        each.get_by_text("6 of 6 images have 2 ratings").wait_for(timeout=LIMIT.left_ms())
        assert each.get_by_text("6 of 6 images have 2 ratings").count() == 1
    app.stop()
    with Store.open(app.home) as store:
        rows = store.annotations()
    per_image = rows[rows["confidence"].notna()].groupby("image_id").size()  # ratings: every question answered
    assert len(per_image) == 6 and set(per_image) == {2}, per_image.to_dict()


def caption_shown(page, text: str) -> None:
    """Wait until the main area shows ``text`` (the focus view's "Image n of m" line, a saved sign)."""
    page.wait_for_function("(text) => document.querySelector('[data-testid=\"stMain\"]')?.innerText.includes(text)",
                           arg=text, timeout=LIMIT.left_ms())


def focus_sign_lists(page, label: str) -> None:
    """The focus view's "Saved: …" sign for the image on screen lists ``label``."""
    page.wait_for_function(
        "(label) => { const sign = document.querySelector('.st-key-focus-saved');"
        "  return sign !== null && sign.innerText.split('Saved: ')[1]?.split(' · ').includes(label); }",
        arg=label, timeout=LIMIT.left_ms())


# image n of 12: (keys pressed, the labels they choose); the last two have no person
KEYED = [(("p", "fmu"[n % 3], str((n + 1) % 10), "e"),
          ("Person", ("Female-presenting", "Male-presenting", "Unclear")[n % 3], f"MST {n + 1}",
           "High")) for n in range(10)] + [(("n", "w"), ("No person", "Medium"))] * 2


def test_a_rater_labels_twelve_images_by_keyboard_alone(app, seed_images, page):
    """Focus mode from a handed-out link: the rater types a name and presses Enter, then never
    clicks — one key per choice; each image moves on by itself once complete, and Backspace undoes
    the last save.

    Its own app: it reads the store file (and its history) afterwards."""
    seed_images(12)
    page.goto(f"{app.start()}/annotate?view=focus")
    wait_for_script(page)
    fill(page, "Rater", "ana")
    caption_shown(page, "Image 1 of 12")
    # the view hands the keyboard back from the Rater box, or the keys would be typed into it
    page.wait_for_function("() => document.activeElement === document.body", timeout=LIMIT.left_ms())
    wait_for_script(page)  # and the first key at once: it once went missing (see the next test)
    for n, (keys, labels) in enumerate(KEYED, start=1):
        caption_shown(page, f"Image {n} of 12")
        for key, label in zip(keys[:-1], labels[:-1]):
            page.keyboard.press(key)
            focus_sign_lists(page, label)  # saved before the next key
            wait_for_script(page)  # one key at a time: each after the page has answered the last
        page.keyboard.press(keys[-1])
        caption_shown(page, f"Image {n + 1} of 12" if n < 12 else "Every image in this study has all your labels")
        wait_for_script(page)
    caption_shown(page, "12 of 12 annotated by you")

    page.keyboard.press("Backspace")  # undo the last save: image 12 loses its confidence again
    page.wait_for_function(
        "() => document.querySelector('.st-key-focus-saved')?.innerText.trim().endsWith('Saved: No person')",
        timeout=LIMIT.left_ms())
    caption_shown(page, "11 of 12 annotated by you")  # its row stays, without a confidence: no longer rated
    assert page.locator('[data-testid="stException"]').count() == 0
    app.stop()
    with Store.open(app.home) as store:
        rows = store.annotations().sort_values("seed")
        history = store.annotation_history()
    assert len(rows) == 12 and set(rows["rater"]) == {"ana"}
    assert list(rows["mst"][:10]) == [n + 1 for n in range(10)]
    assert list(rows["gender"][:10]) == [("female", "male", "unclear")[n % 3] for n in range(10)]
    assert list(rows["confidence"].fillna("-")) == ["high"] * 10 + ["medium", "-"], "the undo restored image 12"
    assert len(history) == 10 * 4 + 2 * 2 + 1, "every key press and the undo are in the history"


def test_a_key_no_shortcut_took_still_presses_its_button_once(app, seed_images, page):
    """A busy browser handles a key before Streamlit has bound the shortcuts of buttons just drawn, and
    the first key after the view appeared was lost without a word. The view's own listener presses the
    button when no shortcut took the key. A key sent to the window alone never reaches Streamlit's
    listener (it sits on the document): "P" saves once (one history row), and "F" (male needs "M")
    chooses female-presenting, not anything else. A real key held down (two repeats) saves once too."""
    seed_images(2)
    page.goto(f"{app.start()}/annotate?view=focus")
    wait_for_script(page)
    fill(page, "Rater", "ana")
    caption_shown(page, "Image 1 of 2")
    for key, label in (("p", "Person"), ("F", "Female-presenting")):
        # the button is drawn (the caption beside it may come first): a key before it has nothing to press
        page.locator(f'[class*="st-key-focus-"] button [aria-label="Shortcut {key.upper()}"]').wait_for()
        page.evaluate("(key) => window.dispatchEvent(new KeyboardEvent('keydown', {key}))", key)
        focus_sign_lists(page, label)
        wait_for_script(page)
    for _ in range(3):  # "Q" held: one press and two repeats (Playwright marks a key already down as a repeat)
        page.keyboard.down("q")
    page.keyboard.up("q")
    focus_sign_lists(page, "Low")
    wait_for_script(page)
    page.keyboard.press("Backspace")  # a real key, which Streamlit's listener takes: one press, one undo
    page.wait_for_function(
        "() => document.querySelector('.st-key-focus-saved')?.innerText.trim().endsWith("
        "'Saved: Person · Female-presenting')", timeout=LIMIT.left_ms())
    assert page.locator('[data-testid="stException"]').count() == 0
    app.stop()
    with Store.open(app.home) as store:
        history = store.annotation_history()
        rows = store.annotations()
    assert len(history) == 4, "one history row per key: person, gender, confidence (held), the undo"
    assert list(rows["gender"]) == ["female"] and list(rows["confidence"].fillna("-")) == ["-"]


IMAGE = '[data-testid="stMain"] [data-testid="stImage"] img'  # the focus view's one image


def outside(page, width: int, height: int) -> dict[str, list[float]]:
    """The focus view's buttons, image and "Saved" line whose box does not lie inside the viewport
    (``width`` × ``height``), each with its box [left, top, right, bottom]."""
    return page.evaluate(
        "([width, height, image]) => { const parts = {};"
        "  document.querySelectorAll('[class*=\"st-key-focus-\"] .stButton button').forEach(button => {"
        "    parts[button.innerText.replace(/\\s+/g, ' ')] = button; });"
        "  parts.image = document.querySelector(image);"
        "  parts.saved = document.querySelector('.st-key-focus-saved');"
        "  const out = {};"
        "  for (const [name, part] of Object.entries(parts)) {"
        "    const box = part.getBoundingClientRect();"
        "    if (box.left < 0 || box.top < 0 || box.right > width || box.bottom > height)"
        "      out[name] = [box.left, box.top, box.right, box.bottom]; }"
        "  return out; }", [width, height, IMAGE])


def test_focus_mode_fits_a_laptop_and_a_projector_without_scrolling(app, seed_images, page):
    """At 1366×768 (a laptop) and 1280×720 (a projector) every button of the focus view, its image
    and the "Saved" line after a key press lie inside the window, and the image takes nearly half
    its height. (At 1366×768 the image once ran below the fold, and with it MST 4–10, the confidence
    row, Previous, Next, Undo and "Saved": the lowest at y≈1184.)"""
    seed_images(2)
    url = app.start()
    for (width, height), rater in (((1366, 768), "ana"), ((1280, 720), "ben")):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{url}/annotate?view=focus")
        wait_for_script(page)
        fill(page, "Rater", rater)  # a rater of this size's own: the "Saved" line comes from this key
        caption_shown(page, "Image 1 of 2")
        page.wait_for_function("() => document.activeElement === document.body", timeout=LIMIT.left_ms())
        page.locator('[class*="st-key-focus-"] button [aria-label="Shortcut P"]').wait_for()
        wait_for_script(page)
        page.keyboard.press("p")
        focus_sign_lists(page, "Person")
        wait_for_script(page)
        page.wait_for_function("(selector) => { const image = document.querySelector(selector);"
                               "  return image !== null && image.complete && image.naturalWidth > 0; }",
                               arg=IMAGE, timeout=LIMIT.left_ms())
        page.evaluate("() => new Promise(drawn => requestAnimationFrame(() => requestAnimationFrame(drawn)))")
        assert page.locator('[class*="st-key-focus-"] .stButton button').count() == 2 + 3 + 10 + 3 + 3
        assert outside(page, width, height) == {}, f"off screen at {width}×{height}"
        image = page.locator(IMAGE).bounding_box()
        assert image["height"] >= 0.45 * height, f"the image uses the room at {width}×{height}: {image}"


# image n of 4: the keys typed for it and the labels they mean (the last key answers the last question)
FAST = [("pf1q", dict(person_present=True, gender="female", mst=1, confidence="low")),
        ("pm8w", dict(person_present=True, gender="male", mst=8, confidence="medium")),
        ("pu3e", dict(person_present=True, gender="unclear", mst=3, confidence="high")),
        ("pf9q", dict(person_present=True, gender="female", mst=9, confidence="low"))]


def shown_image(page) -> int:
    """The number n of the focus view's "Image n of m" line."""
    return int(re.search(r"Image (\d+) of \d+", page.locator('[data-testid="stMain"]').inner_text()).group(1))


def test_keys_typed_fast_never_land_on_another_image(app, seed_images, page):
    """Twice, eight keys without waiting for the page, 40 ms apart, then 10 ms apart: the keys of the
    image on screen and of the one after it. A key may be refused (the view says so), but no label may
    land on another image than the one it was typed for. With one button per choice for every image,
    image 1 ended with image 2's labels (keys typed after the last answer of image 1 reached image 1's
    callbacks); with buttons per image, keys typed after a refusal landed on the image still shown.

    Its own app: it reads the store file afterwards."""
    seed_images(4)
    page.goto(f"{app.start()}/annotate?view=focus")
    wait_for_script(page)
    fill(page, "Rater", "ana")
    caption_shown(page, "Image 1 of 4")
    page.wait_for_function("() => document.activeElement === document.body", timeout=LIMIT.left_ms())
    wait_for_script(page)
    refused = 0
    for gap_ms in (40, 10):
        first = shown_image(page) - 1
        for keys, _ in FAST[first:first + 2]:
            for key in keys:
                page.keyboard.press(key)
                page.wait_for_timeout(gap_ms)  # the typing's pace, not a wait for a state
        wait_for_script(page)
        refused += page.locator('[data-testid="stAlert"]').filter(has_text="Not saved").count()
    assert page.locator('[data-testid="stException"]').count() == 0
    app.stop()
    with Store.open(app.home) as store:
        rows = store.annotations().set_index("seed")
    for seed, (_, meant) in enumerate(FAST):
        if seed not in rows.index:
            continue  # every key for it refused: nothing saved, which the view said
        saved = rows.loc[seed]
        wrong = {field: saved[field] for field, value in meant.items()
                 if not pd.isna(saved[field]) and saved[field] != value}
        assert not wrong, f"image {seed + 1} holds labels typed for another image: {wrong}"
    # not vacuous: keys were taken, or the view said why not (a key typed while the page redraws may
    # still be dropped without a word: its button is gone when it arrives)
    assert len(rows) or refused
