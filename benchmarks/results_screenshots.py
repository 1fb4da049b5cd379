"""Screenshots of the Results page at 1366×768: its main chart and table, and the compared runs.

Seeds a study of three runs with long names and "unclear" answers in a temporary data home, starts
the app as the Dockerfile does, and drives Debian's chromium (Playwright) to the page. Also prints
each chart's and table's width against the main column's (what tests/test_browser.py asserts).

    python benchmarks/results_screenshots.py benchmarks/results

writes FOLDER/DATE-results-1366x768.png and the like, DATE being today's (UTC).
"""

from __future__ import annotations

import datetime
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import App, Deadline, make_images, make_run, sheet  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from sdaudit.store import Store  # noqa: E402

STUDY = "tour"
RUNS = (("a doctor sitting behind a desk in a hospital office", "CompVis/stable-diffusion-v1-4"),
        ("a doctor sitting behind a desk in a hospital office", "stabilityai/stable-diffusion-2-1"),
        ("a nurse at work", "CompVis/stable-diffusion-v1-4"))
MEASURE = """() => {
  const column = document.querySelector('[data-testid="stMainBlockContainer"]');
  const style = getComputedStyle(column);
  const inner = column.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const charts = Array.from(document.querySelectorAll('[data-testid="stVegaLiteChart"] svg'))
    .map(svg => Math.round(svg.getBoundingClientRect().width));
  const tables = Array.from(document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller'))
    .map(grid => grid.scrollWidth);
  return {column: inner, charts, tables};
}"""


def seed(home: Path) -> None:
    with Store.open(home) as store:
        store.ensure_study(STUDY)
        for index, (prompt, model) in enumerate(RUNS):
            run = replace(make_run(f"run-{index}", study=STUDY, prompt=prompt), model=model)
            store.add_run(run)
            store.add_images(make_images(run.run_key, seeds=range(60)))
            rows = sheet({("female", 2): 10 + 12 * index, ("female", 8): 3, ("male", 3): 30 - 10 * index,
                          ("male", 7): 5, ("unclear", 4): 12 - 2 * index})
            rows["image_id"] = store.images(run_key=run.run_key)["image_id"].to_numpy()
            rows["confidence"] = "high"
            store.save_annotations(rows)


def settled(page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')


def to_top(element) -> None:
    """Scroll so that ``element`` starts at the top of the window, and let the page settle."""
    element.evaluate("element => { element.scrollIntoView({block: 'start'}); "
                     "element.closest('[data-testid=stMain]').scrollBy(0, -70); }")  # below the app's header
    element.page.wait_for_timeout(500)


def main(folder: str) -> None:
    prefix = str(Path(folder) / datetime.datetime.now(datetime.UTC).date().isoformat())
    home = Path(tempfile.mkdtemp()) / "home"
    seed(home)
    app = App(home, Deadline())
    app.start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                                 args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.set_default_timeout(180_000)
            page.goto(f"{app.url}/results?study={STUDY}")
            page.get_by_role("heading", name="Across runs").wait_for()
            settled(page)
            charts = page.locator('[data-testid="stVegaLiteChart"]')
            charts.first.locator("svg").wait_for()
            to_top(charts.first)
            page.screenshot(path=f"{prefix}-results-1366x768.png")
            to_top(page.locator('[data-testid="stDataFrame"]').first)
            page.screenshot(path=f"{prefix}-results-table-1366x768.png")
            page.get_by_text("Compare the chosen runs side by side").click()
            settled(page)
            page.get_by_text("Shares compared").wait_for()
            to_top(charts.nth(2))
            page.screenshot(path=f"{prefix}-compare-1366x768.png")
            to_top(charts.nth(3))
            page.screenshot(path=f"{prefix}-compare-shares-1366x768.png")
            print(json.dumps(page.evaluate(MEASURE)))
            browser.close()
    finally:
        app.stop()


if __name__ == "__main__":
    main(sys.argv[1])
