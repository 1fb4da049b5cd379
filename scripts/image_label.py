"""The browser half of scripts/test-image.sh: the local OpenID Connect provider the app signs in
with, and, in Debian's chromium driven by Playwright, signing in through it as one of its accounts,
opening Annotate and either labelling the first image or finding its label.

    python scripts/image_label.py provider PORT      # runs the provider on 127.0.0.1:PORT until stopped
    python scripts/image_label.py label URL ACCOUNT  # sign in; click "Person" on the first card; prints its id
    python scripts/image_label.py find URL ACCOUNT   # sign in; the first card (Show: All) has "Person" chosen

The accounts (alice, bob) and the sign-in steps are tests/oidc_sign_in.py's, as the browser tests use
them. Exits non-zero (with Playwright's error) when a step does not show within two minutes
(SDAUDIT_IMAGE_WAIT_MS sets another limit), leaving a screenshot of the page in the image test's scratch.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import oidc_sign_in  # noqa: E402  (tests/ is no package: its helpers are found by path, as pytest finds them)

LABEL = "Person"
WAIT_MS = int(os.environ.get("SDAUDIT_IMAGE_WAIT_MS", 120_000))
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


def wait_ms() -> int:
    return WAIT_MS


def settled(page) -> None:
    oidc_sign_in.settled(page, wait_ms)


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


def act(page, url: str, account: str, action: str) -> str:
    """Sign in as ``account`` and open Annotate; label the first image or find its label; returns its id."""
    oidc_sign_in.sign_in(page, url, account, wait_ms)
    page.goto(f"{url}/annotate", timeout=WAIT_MS)
    page.get_by_role("heading", name="Annotate").wait_for(timeout=WAIT_MS)
    page.get_by_text(f"Signed in as {account} · rater").wait_for(timeout=WAIT_MS)  # labels go under the account
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


def main(action: str, *args: str) -> None:
    if action == "provider" and len(args) == 1:
        if not args[0].isdigit():
            sys.exit(f"error: the provider's port must be a number, not {args[0]!r}")
        command = oidc_sign_in.provider_command("127.0.0.1", int(args[0]))
        os.execv(command[0], command)  # the provider in this process: whoever started it stops it by its id
    if action not in ("label", "find") or len(args) != 2:
        sys.exit(__doc__)
    url, account = args
    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("error: Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        try:
            image_id = act(page, url, account, action)
        except PlaywrightError:
            shot = Path(os.environ.get("SDAUDIT_IMAGE_SCRATCH", "/tmp/sdaudit-image")) / f"failed-{action}.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"the page when it failed: {shot}", file=sys.stderr)
            raise
        browser.close()
    print(f"{image_id} {LABEL}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(*sys.argv[1:])
