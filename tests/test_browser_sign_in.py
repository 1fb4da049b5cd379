"""Sign-in in a real browser: `streamlit run streamlit_app.py` with sign-in configured against a real
OpenID Connect provider on loopback (oidc-provider-mock, in this process), driven by Playwright on
Debian's chromium. A person signs in on the provider's own authorize page by choosing an account.

One provider and one app serve the module (each test has its own browser context, so no cookies are
shared): alice is the admin, bob a rater (tests/oidc_sign_in.py: the accounts and the sign-in steps,
shared with the image test).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import oidc_provider_mock
import oidc_sign_in
import pytest
from helpers import App, Deadline, free_port
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from oidc_sign_in import ACCOUNTS
from playwright.sync_api import expect
from streamlit.web.server.server_util import AUTH_COOKIE_NAME
from streamlit.web.server.starlette.starlette_app_utils import create_signed_value
from streamlit.web.server.starlette.starlette_server_config import AUTH_COOKIE_MAX_AGE_SECONDS

from app.signin import RETURN_COOKIE
from sdaudit.store import Store

pytestmark = pytest.mark.slow  # a real browser against a real server and a real provider


SECONDS = 300.0  # each test's limit for waits (a state, not a time: a busy machine is slow), its app's start included
LIMIT = Deadline(SECONDS)


@pytest.fixture(autouse=True)
def deadline():
    global LIMIT
    LIMIT = Deadline(SECONDS)
    return LIMIT


@pytest.fixture(scope="module")
def provider():
    """The OpenID Connect provider's address; accounts are chosen on its authorize page. Plain HTTP
    on loopback needs no AUTHLIB_INSECURE_TRANSPORT: Authlib (1.9) takes an http address on a
    loopback IP as secure (RFC 8252 §7.3), so neither the provider nor the app is given it."""
    assert "AUTHLIB_INSECURE_TRANSPORT" not in os.environ, "the test must show sign-in works without it"
    with oidc_provider_mock.run_server_in_thread(port=0, user_claims=oidc_sign_in.provider_users()) as server:
        yield f"http://127.0.0.1:{server.server_port}"


@pytest.fixture(scope="module")
def signed_app(provider, tmp_path_factory):
    """The app with sign-in through ``provider``: alice is its admin."""
    port = free_port()
    running = App(tmp_path_factory.mktemp("signin") / "home", Deadline(SECONDS), port=port)
    with Store.open(running.home) as store:
        store.ensure_study()
        store.ensure_study("nurses")
    running.env.update({"SDAUDIT_OIDC_CLIENT_ID": "sdaudit", "SDAUDIT_OIDC_CLIENT_SECRET": "client-secret",
                        "SDAUDIT_OIDC_PROVIDER_URL": provider, "SDAUDIT_PUBLIC_URL": f"http://127.0.0.1:{port}",
                        "SDAUDIT_ADMINS": "alice"})
    running.start()
    yield running
    running.deadline = Deadline(SECONDS)
    running.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    tab = context.new_page()
    tab.set_default_timeout(LIMIT.left_ms())
    yield tab
    context.close()


def settled(page) -> None:
    oidc_sign_in.settled(page, LIMIT.left_ms)


def sign_in(page, app: App, account: str) -> None:
    oidc_sign_in.sign_in(page, app.url, account, LIMIT.left_ms)


def rater_box(page):
    return page.locator('[data-testid="stSidebar"] [data-testid="stTextInput"]').filter(has_text="Rater").locator("input")


def test_a_rater_is_their_account_cannot_be_anyone_else_and_signs_out(signed_app, page):
    sign_in(page, signed_app, "bob")
    expect(rater_box(page)).to_have_value("bob", timeout=LIMIT.left_ms())  # the sidebar may draw after the main area
    expect(rater_box(page)).to_be_disabled()
    page.get_by_text("Signed in as bob · rater").wait_for(timeout=LIMIT.left_ms())

    page.goto(f"{signed_app.url}/annotate?rater=alice")  # a handed-out link does not make bob alice
    page.get_by_role("heading", name="Annotate").wait_for(timeout=LIMIT.left_ms())
    settled(page)
    expect(rater_box(page)).to_have_value("bob", timeout=LIMIT.left_ms())  # the sidebar may draw after the main area
    expect(rater_box(page)).to_be_disabled()
    page.wait_for_function("() => !location.search.includes('rater=')", timeout=LIMIT.left_ms())

    page.goto(f"{signed_app.url}/generate")
    page.get_by_text("You are signed in as a rater").wait_for(timeout=LIMIT.left_ms())
    settled(page)
    assert page.get_by_role("button", name="Generate", exact=True).count() == 0, "the Generate form stays locked"
    assert page.get_by_role("button", name="New study").count() == 0

    page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Sign out").click(timeout=LIMIT.left_ms())
    page.get_by_role("button", name="End session").click(timeout=LIMIT.left_ms())  # the provider's own page
    page.get_by_role("button", name="Sign in").wait_for(timeout=LIMIT.left_ms())
    assert not [cookie for cookie in page.context.cookies() if cookie["name"].startswith(AUTH_COOKIE_NAME)]
    page.goto(f"{signed_app.url}/annotate")
    page.get_by_role("button", name="Sign in").wait_for(timeout=LIMIT.left_ms())
    assert rater_box(page).count() == 0, "signed out: nothing of the app"


def test_a_handed_out_link_opened_before_sign_in_is_where_sign_in_ends(signed_app, page):
    """Streamlit's sign-in returns to the home page; the sign-in page remembers the link's page and
    query (this app's own pages and keys only), and the first page after sign-in goes back there."""
    link = f"{signed_app.url}/annotate?study=nurses&view=focus&next=https://evil.example/"
    page.goto(link)
    page.get_by_role("button", name="Sign in").click(timeout=LIMIT.left_ms())
    page.get_by_role("button", name="bob", exact=True).click(timeout=LIMIT.left_ms())  # the provider's page
    page.wait_for_url(re.compile(re.escape(signed_app.url) + r"/annotate\?"), timeout=LIMIT.left_ms())
    page.get_by_role("heading", name="Annotate").wait_for(timeout=LIMIT.left_ms())
    settled(page)
    query = dict(parse_qsl(urlsplit(page.url).query))
    assert query["study"] == "nurses" and query["view"] == "focus" and "next" not in query
    expect(page.get_by_role("combobox", name="Study")).to_have_value("nurses", timeout=LIMIT.left_ms())
    assert not [cookie for cookie in page.context.cookies() if cookie["name"] == RETURN_COOKIE], "used once"
    page.goto(signed_app.url)  # a later visit to the home page stays there
    page.get_by_text("Signed in as bob · rater").wait_for(timeout=LIMIT.left_ms())
    settled(page)
    assert urlsplit(page.url).path == "/"


def test_an_admin_signs_in_and_may_generate(signed_app, page):
    sign_in(page, signed_app, "alice")
    page.get_by_text("Signed in as alice · admin").wait_for(timeout=LIMIT.left_ms())
    page.goto(f"{signed_app.url}/generate")
    page.get_by_role("button", name="Generate", exact=True).wait_for(timeout=LIMIT.left_ms())
    expect(rater_box(page)).to_have_value("alice", timeout=LIMIT.left_ms())


@pytest.mark.parametrize("secret", [None, "not-the-apps-secret", "the app's own"])
def test_a_forged_identity_cookie_is_refused(signed_app, page, secret):
    """An identity cookie the app did not sign (unsigned, or signed with another secret) is ignored;
    the same cookie signed with the app's own secret (the control) is taken."""
    claims = json.dumps({**ACCOUNTS["alice"], "is_logged_in": True, "origin": signed_app.url})  # as Streamlit writes it
    if secret == "the app's own":
        secret = (Path(signed_app.home) / "sign-in-cookie-secret").read_text().strip()
    value = claims if secret is None else create_signed_value(secret, AUTH_COOKIE_NAME, claims).decode()
    page.context.add_cookies([{"name": AUTH_COOKIE_NAME, "value": value, "url": signed_app.url}])
    page.goto(f"{signed_app.url}/generate")
    if secret and secret != "not-the-apps-secret":
        page.get_by_role("button", name="Generate", exact=True).wait_for(timeout=LIMIT.left_ms())
        return
    page.get_by_role("button", name="Sign in").wait_for(timeout=LIMIT.left_ms())
    settled(page)
    assert page.get_by_role("button", name="Generate", exact=True).count() == 0
    assert page.get_by_text("Signed in as").count() == 0


def identity_cookie(secret: str, claims: str, *, signed_days_ago: float) -> str:
    """``claims`` signed as Streamlit signs its identity cookie (itsdangerous, salted with the
    cookie's name), stamped as if signed ``signed_days_ago``: the stamp is inside the signature, so
    only one who holds the secret can write it, and Streamlit refuses a cookie whose stamp is older
    than its 30-day life and a day's grace."""
    class SignedThen(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - signed_days_ago * 86400)

    return URLSafeTimedSerializer(secret, salt=AUTH_COOKIE_NAME, signer=SignedThen).dumps(claims)


@pytest.mark.parametrize("days", [AUTH_COOKIE_MAX_AGE_SECONDS / 86400 - 1, AUTH_COOKIE_MAX_AGE_SECONDS / 86400 + 2],
                         ids=["a day before it expires", "expired two days ago"])
def test_an_expired_identity_cookie_is_refused(signed_app, page, days):
    """alice's identity cookie, signed with the app's own secret but stamped ``days`` ago: taken
    while within its life (the control: the same cookie, unexpired), refused once past it, so the
    visitor is signed out."""
    secret = (Path(signed_app.home) / "sign-in-cookie-secret").read_text().strip()
    claims = json.dumps({**ACCOUNTS["alice"], "is_logged_in": True, "origin": signed_app.url})  # as Streamlit writes it
    value = identity_cookie(secret, claims, signed_days_ago=days)
    page.context.add_cookies([{"name": AUTH_COOKIE_NAME, "value": value, "url": signed_app.url}])
    page.goto(f"{signed_app.url}/generate")
    if days * 86400 < AUTH_COOKIE_MAX_AGE_SECONDS:
        page.get_by_role("button", name="Generate", exact=True).wait_for(timeout=LIMIT.left_ms())
        page.get_by_text("Signed in as alice · admin").wait_for(timeout=LIMIT.left_ms())
        return
    page.get_by_role("button", name="Sign in").wait_for(timeout=LIMIT.left_ms())
    settled(page)
    assert page.get_by_role("button", name="Generate", exact=True).count() == 0
    assert page.get_by_text("Signed in as").count() == 0


def test_the_cookie_secret_stays_in_the_data_home_and_out_of_the_log(signed_app):
    secret_file = Path(signed_app.home) / "sign-in-cookie-secret"
    secret = secret_file.read_text().strip()
    assert secret and secret_file.stat().st_mode & 0o077 == 0
    assert secret not in signed_app.log.read_text(errors="replace")
