"""Focus mode on a laptop's screen (1366×768) and a projector's (1280×720): a screenshot of each after
one key ("P"), and where the lowest part of the view (a button, the image, the "Saved" line) ends.

    python benchmarks/focus_screens.py FOLDER      (writes FOLDER/DATE-focus-1366x768.png and …-1280x720.png)

Needs Playwright and Debian's chromium (requirements-dev.txt, scripts/test.sh). It makes four demo
images (64×64, noise) in a temporary data home with one generation job, as the app makes them.
tests/test_browser.py checks the same boxes at the same sizes; this only shows them.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from app_speed import FLAGS, launch, settle, stop

SIZES = ((1366, 768), (1280, 720))
# the bottom of the lowest part of the view: its buttons, its image, its "Saved" line
LOWEST = ("() => Math.max(...[...document.querySelectorAll('[class*=\"st-key-focus-\"] .stButton button'),"
          " document.querySelector('[data-testid=\"stMain\"] [data-testid=\"stImage\"] img'),"
          " document.querySelector('.st-key-focus-saved')].map(part => part.getBoundingClientRect().bottom))")


def main() -> None:
    from playwright.sync_api import sync_playwright

    from sdaudit.generation.jobs import FINISHED, JobRunner
    from sdaudit.generation.spec import DEFAULT_PROMPT, GenerationSpec
    from sdaudit.store import Store

    if len(sys.argv) != 2:
        raise SystemExit("usage: python benchmarks/focus_screens.py FOLDER")
    prefix = Path(sys.argv[1]) / f"{datetime.now(UTC):%Y-%m-%d}-focus"
    home = Path(tempfile.mkdtemp(prefix="sdaudit-focus-screens-"))
    with Store.open(home) as store:
        runner = JobRunner(store, home)
        job_id = runner.submit(GenerationSpec(model="demo", prompt=DEFAULT_PROMPT, first_seed=0, last_seed=3,
                                              steps=2, height=64, width=64))
        while runner.queue.job(job_id).status not in FINISHED:
            time.sleep(0.2)
        runner.stop()
    server, url = launch(home)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
            for number, (width, height) in enumerate(SIZES):
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(f"{url}/annotate?view=focus")
                settle(page)
                rater = page.get_by_label("Rater", exact=True)
                rater.fill(f"rater-{number}")  # a rater of this size's own: the "Saved" line comes from this key
                rater.press("Enter")
                page.locator('[class*="st-key-focus-"] button [aria-label="Shortcut P"]').wait_for()
                page.wait_for_function("() => document.activeElement === document.body")
                settle(page)
                page.keyboard.press("p")
                page.wait_for_function("() => document.querySelector('.st-key-focus-saved')?.innerText"
                                       ".includes('Saved: Person')")
                settle(page)
                page.wait_for_function("() => [...document.querySelectorAll('[data-testid=\"stMain\"] img')]"
                                       ".every(image => image.complete && image.naturalWidth > 0)")
                page.evaluate("() => new Promise(drawn => requestAnimationFrame(() => requestAnimationFrame(drawn)))")
                print(f"{width}×{height}: the lowest part of the view ends at y = {page.evaluate(LOWEST):.0f} "
                      f"(the window is {height} high)")
                page.screenshot(path=f"{prefix}-{width}x{height}.png")
                page.close()
            browser.close()
    finally:
        stop(server)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
