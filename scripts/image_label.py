"""The browser half of scripts/test-image.sh: in Debian's chromium, driven by Playwright, open the
app's Annotate page, type a rater's name, and either label the first image or find its label.

    python scripts/image_label.py URL RATER label   # click "Person" on the first card; prints its id
    python scripts/image_label.py URL RATER find    # the first card (Show: All) has "Person" chosen

Exits non-zero (with Playwright's error) when a step does not show within two minutes
(SDAUDIT_IMAGE_WAIT_MS sets another limit), leaving a screenshot of the page in the image test's scratch.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

LABEL = "Person"
WAIT_MS = int(os.environ.get("SDAUDIT_IMAGE_WAIT_MS", 120_000))
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


def settled(page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=WAIT_MS)


def saved_sign_lists(page, image_id: str, label: str) -> None:
    page.wait_for_function(
        "([selector, label]) => { const sign = document.querySelector(selector);"
        "  return sign !== null && sign.innerText.split('Saved: ')[1]?.split(' · ').includes(label); }",
        arg=[f".st-key-saved-{image_id}", label], timeout=WAIT_MS)


def chosen(page, image_id: str, label: str) -> None:
    page.wait_for_function(
        "([selector, label]) => [...document.querySelectorAll(selector)].some("
        "  input => input.checked && input.closest('label')?.innerText.trim() === label)",
        arg=[f".st-key-person-{image_id} input[type=radio]", label], timeout=WAIT_MS)


def act(page, url: str, rater: str, action: str) -> str:
    """Open Annotate as ``rater``; label the first image or find its label; returns its id."""
    page.goto(f"{url}/annotate", timeout=WAIT_MS)
    page.get_by_role("heading", name="Annotate").wait_for(timeout=WAIT_MS)
    settled(page)
    box = page.get_by_label("Rater", exact=True)
    box.fill(rater)
    box.press("Enter")
    page.wait_for_url(f"**rater={rater}*", timeout=WAIT_MS)
    settled(page)
    if action == "find":  # every image, whether the rater's "To do" list still holds it or not
        page.locator('[data-testid="stRadio"]').filter(has_text="Show").get_by_text("All", exact=True).click()
        settled(page)
    card = page.locator('[class*="st-key-person-"]').first
    card.wait_for(timeout=WAIT_MS)
    image_id = card.get_attribute("class").split("st-key-person-")[1].split()[0]
    if action == "label":
        page.locator(f".st-key-person-{image_id}").get_by_role("radiogroup").get_by_text(LABEL, exact=True).click()
        saved_sign_lists(page, image_id, LABEL)
    else:  # a new session shows the stored answer as the chosen one (the "Saved:" sign follows a click)
        chosen(page, image_id, LABEL)
    return image_id


def main(url: str, rater: str, action: str) -> None:
    if action not in ("label", "find"):
        sys.exit(f"error: the action must be 'label' or 'find', not {action!r}")
    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("error: Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        try:
            image_id = act(page, url, rater, action)
        except PlaywrightError:
            shot = Path(os.environ.get("SDAUDIT_IMAGE_SCRATCH", "/tmp/sdaudit-image")) / f"failed-{action}.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"the page when it failed: {shot}", file=sys.stderr)
            raise
        browser.close()
    print(f"{image_id} {LABEL}")




if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
