"""Signing in through a local OpenID Connect provider (oidc-provider-mock) in a real browser: the
accounts it offers and the steps a person takes. Shared by tests/test_browser_sign_in.py and the
image test's browser half (scripts/image_label.py), so both sign in the same way.

Each wait takes ``left_ms``, a function giving the milliseconds still allowed (a test's deadline, or
a fixed limit).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable

# alice is made the admin (SDAUDIT_ADMINS=alice) by whoever starts the app; bob is a rater.
ACCOUNTS = {"alice": {"preferred_username": "alice", "email": "alice@lab.example", "name": "Alice A."},
            "bob": {"preferred_username": "bob", "email": "bob@lab.example", "name": "Bob B."}}


def provider_users() -> list:
    """The accounts as oidc-provider-mock's users, for a provider run in this process."""
    import oidc_provider_mock

    return [oidc_provider_mock.User(sub=sub, claims=claims) for sub, claims in ACCOUNTS.items()]


def provider_command(host: str, port: int) -> list[str]:
    """The command that runs the provider with these accounts as its own process (it allows plain
    HTTP itself), listening on ``host``:``port``."""
    users = [arg for sub, claims in ACCOUNTS.items() for arg in ("--user-claims", json.dumps({"sub": sub, **claims}))]
    return [sys.executable, "-m", "oidc_provider_mock", "--host", host, "--port", str(port), *users]


def settled(page, left_ms: Callable[[], float]) -> None:
    """The app's script has finished its run."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=left_ms())


def sign_in(page, url: str, account: str, left_ms: Callable[[], float]) -> None:
    """Through the app's Sign in button and the provider's authorize page (a button per account),
    back to the app at ``url``, signed in as ``account``."""
    page.goto(url, timeout=left_ms())
    page.get_by_role("button", name="Sign in").click(timeout=left_ms())
    page.get_by_role("button", name=account, exact=True).click(timeout=left_ms())  # the provider's page
    page.wait_for_url(re.compile(re.escape(url) + r"/?(\?.*)?$"), timeout=left_ms())
    page.get_by_text(f"Signed in as {account}").wait_for(timeout=left_ms())
    settled(page, left_ms)
