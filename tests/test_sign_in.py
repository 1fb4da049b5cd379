"""Sign-in and roles: the provider and Streamlit's [auth] secrets from the settings, who is an
admin or a rater, and the app (in AppTest, with Streamlit's own ``st.user``) for a visitor, a rater
and an admin; without sign-in, the typed-name one-person tool is unchanged and says what it is."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from helpers import APP, PAGES, WAIT_LIMIT_S, open_page
from streamlit.testing.v1 import AppTest

from sdaudit.roles import (
    COOKIE_SECRET_FILE,
    HALF_CONFIGURED,
    Identity,
    auth_secrets,
    cookie_secret,
    identity,
    rater_name,
    sign_in_provider,
)

ALICE = {"sub": "u-1", "preferred_username": "alice", "email": "alice@lab.example", "name": "Alice A."}
BOB = {"sub": "u-2", "preferred_username": "bob", "email": "Bob@Lab.example", "name": "Bob B."}
CAROL = {"sub": "u-3", "email": "carol@lab.example"}
OIDC = {"SDAUDIT_OIDC_CLIENT_ID": "sdaudit", "SDAUDIT_OIDC_CLIENT_SECRET": "client-secret",
        "SDAUDIT_OIDC_PROVIDER_URL": "http://127.0.0.1:9/"}


@pytest.mark.parametrize("claims, admins, raters, expected", [
    (ALICE, "alice", "", Identity("alice", admin=True, may_rate=True)),
    (BOB, "alice", "", Identity("bob", admin=False, may_rate=True)),
    (BOB, " ALICE , bob@lab.EXAMPLE", "", Identity("bob", admin=True, may_rate=True)),  # e-mail, any case
    (BOB, "alice", "carol@lab.example", Identity("bob", admin=False, may_rate=False)),
    (CAROL, "alice", "carol@lab.example", Identity("carol@lab.example", admin=False, may_rate=True)),
    (ALICE, "alice", "bob", Identity("alice", admin=True, may_rate=True)),  # admins always rate
    (ALICE, "", "", Identity("alice", admin=False, may_rate=True)),
    ({"sub": "u-4", "name": "alice"}, "alice", "", Identity("u-4", admin=False, may_rate=True)),  # a display name is no user name
    ({"sub": "u-5", "email": "alice@lab.example", "email_verified": False}, "alice@lab.example", "",
     Identity("u-5", admin=False, may_rate=True)),  # an unverified e-mail names nobody
    ({"sub": "u-6", "email": "alice@lab.example", "email_verified": True}, "alice@lab.example", "",
     Identity("alice@lab.example", admin=True, may_rate=True)),
])
def test_roles_come_from_the_settings(claims, admins, raters, expected):
    assert identity(claims, admins=admins, raters=raters) == expected


def test_roles_read_sdaudit_admins_and_sdaudit_raters(monkeypatch):
    monkeypatch.setenv("SDAUDIT_ADMINS", "alice")
    monkeypatch.setenv("SDAUDIT_RATERS", "bob")
    assert identity(ALICE).admin and identity(BOB) == Identity("bob", False, True)
    assert not identity(CAROL).may_rate


def test_the_rater_name_is_the_user_name_then_the_email_then_the_subject():
    assert [rater_name(claims) for claims in (ALICE, CAROL, {"sub": "u-5"}, {"preferred_username": " "})] == [
        "alice", "carol@lab.example", "u-5", ""]


def test_the_provider_comes_from_sdaudit_settings_or_a_space(monkeypatch):
    for name in (*OIDC, "SDAUDIT_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    assert sign_in_provider({}) is None
    space = {"OAUTH_CLIENT_ID": "hf-id", "OAUTH_CLIENT_SECRET": "hf-secret",
             "OPENID_PROVIDER_URL": "https://huggingface.co", "SPACE_HOST": "lab-sdaudit.hf.space,audit.lab.example"}
    on_space = sign_in_provider(space)
    assert (on_space.client_id, on_space.metadata_url, on_space.redirect_uri, on_space.scope, on_space.label) == (
        "hf-id", "https://huggingface.co/.well-known/openid-configuration",
        "https://lab-sdaudit.hf.space/oauth2callback", "openid profile", "Sign in with Hugging Face")
    for name, value in OIDC.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SDAUDIT_PUBLIC_URL", "https://audit.lab.example/")
    own = sign_in_provider(space)  # the sdaudit settings win over a Space's
    assert (own.client_id, own.metadata_url, own.redirect_uri, own.label) == (
        "sdaudit", "http://127.0.0.1:9/.well-known/openid-configuration", "https://audit.lab.example/oauth2callback",
        "Sign in")
    monkeypatch.delenv("SDAUDIT_OIDC_CLIENT_SECRET")
    with pytest.raises(ValueError) as refused:
        sign_in_provider({})
    assert str(refused.value) == HALF_CONFIGURED.format(given="SDAUDIT_OIDC_CLIENT_ID, SDAUDIT_OIDC_PROVIDER_URL")


def test_the_cookie_secret_is_drawn_once_and_readable_by_its_owner_only(tmp_path, monkeypatch):
    for name, value in OIDC.items():
        monkeypatch.setenv(name, value)
    secrets = auth_secrets(sign_in_provider({}), tmp_path / "home")["auth"]
    path = tmp_path / "home" / COOKIE_SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(secrets["cookie_secret"]) >= 48 and secrets["cookie_secret"] == cookie_secret(tmp_path / "home")
    assert (secrets["client_id"], secrets["client_secret"], secrets["redirect_uri"]) == (
        "sdaudit", "client-secret", "http://localhost:8501/oauth2callback")
    assert cookie_secret(tmp_path / "other") != secrets["cookie_secret"], "drawn at random, per data home"


# -- in the app --------------------------------------------------------------------------------------


@pytest.fixture
def signed(app_home, monkeypatch):
    """``app_home`` with sign-in configured: alice is the admin."""
    for name, value in OIDC.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SDAUDIT_ADMINS", "alice")
    return app_home


def open_as(user: dict | None, page: str | None = None, *, query: dict[str, str] | None = None) -> AppTest:
    """The app as ``user`` (Streamlit's st.user claims; None: nobody signed in), at ``page``."""
    at = AppTest.from_file(APP, default_timeout=WAIT_LIMIT_S)
    at.user = {"is_logged_in": False} if user is None else {"is_logged_in": True, **user}
    for name, value in (query or {}).items():
        at.query_params[name] = value
    at.run()
    if page:
        at.switch_page(str(PAGES / f"{page}.py")).run()
    assert not at.exception, at.exception
    return at


def rater_box(at: AppTest):
    return next(box for box in at.sidebar.text_input if box.label == "Rater")


def test_a_visitor_sees_only_the_sign_in_button(signed):
    at = open_as(None)
    assert [button.label for button in at.button] == ["Sign in"]
    assert not at.sidebar.text_input and not at.selectbox


def test_a_rater_rates_under_their_account_name_and_the_address_cannot_change_it(signed):
    at = open_as(BOB, "annotate", query={"rater": "alice"})
    box = rater_box(at)
    assert box.value == "bob" and box.disabled
    assert "rater" not in at.query_params, "a link must not suggest a rater"
    assert "Enter your name" not in " ".join(info.value for info in at.info)
    assert "Sign out" in [button.label for button in at.sidebar.button]
    assert any("Signed in as bob · rater" in caption.value for caption in at.sidebar.caption)


def test_a_rater_sees_no_admin_action(signed):
    at = open_as(BOB, "generate")
    assert not [button for button in at.button if button.label == "Generate"]
    assert not [box for box in at.text_input if box.label in ("Admin password", "Name of the new study")]
    assert any("You are signed in as a rater" in info.value for info in at.info)
    assert not open_as(BOB, "runs").get("file_uploader")


def test_an_admin_generates_and_creates_studies(signed):
    at = open_as(ALICE, "generate")
    assert [button for button in at.button if button.label == "Generate"]
    assert any(box.label == "Name of the new study" for box in at.text_input)
    assert rater_box(at).value == "alice"


def test_an_account_off_the_rater_list_sees_one_sentence(signed, monkeypatch):
    monkeypatch.setenv("SDAUDIT_RATERS", "bob")
    at = open_as(CAROL, query={"rater": "bob"})
    assert [warning.value for warning in at.warning] == [
        "Your account “carol\u2060@lab\u2060\\.example” is not on this team's list of raters. Ask an admin to add it "
        "to SDAUDIT_RATERS (a server setting: the app restarts to read it), then reload this page."]
    assert [button.label for button in at.button] == ["Sign out"] and not at.sidebar.text_input


def test_an_account_added_to_the_rater_list_needs_no_second_sign_in(signed, monkeypatch):
    """The refusal says "reload", not "sign in again": roles are read from the settings on every
    run, so the same signed-in session rates once the list names it."""
    monkeypatch.setenv("SDAUDIT_RATERS", "bob")
    at = open_as(CAROL)
    assert at.warning
    monkeypatch.setenv("SDAUDIT_RATERS", "bob, carol@lab.example")
    at.run()
    assert not at.exception and not at.warning
    assert rater_box(at).value == "carol@lab.example"


@pytest.mark.parametrize("asked, target", [
    ("/annotate?study=nurses&view=focus", "/annotate?study=nurses&view=focus"),
    ("%2Fannotate%3Fstudy%3Dnurses%26view%3Dfocus", "/annotate?study=nurses&view=focus"),  # as the script stores it
    ("/results?study=a%22%3C%2Fscript%3E&next=https://evil.example/&rater=alice&view=grid",
     "/results?study=a%22%3C%2Fscript%3E"),  # only known keys and values, re-encoded
    ("/", None), ("/?study=nurses", None),  # sign-in lands on the home page anyway
    ("https://evil.example/annotate", None), ("//evil.example/annotate", None), ("/%2F%2Fevil.example", None),
    ("/annotate/../../x", None), ("/nope", None), ("/results#top", None), ("", None),
])
def test_sign_in_goes_back_only_to_the_apps_own_pages_and_link_keys(asked, target):
    from app.signin import safe_return

    assert safe_return(asked) == target


def test_the_sign_in_page_says_links_are_opened_again_and_on_a_space_offers_the_apps_own_tab(signed, monkeypatch):
    captions = [caption.value for caption in open_as(None).caption]
    assert any("open your link again" in caption for caption in captions)
    assert not any("own tab" in caption for caption in captions), "no frame to leave off a Space"
    monkeypatch.setenv("SPACE_HOST", "lab-sdaudit.hf.space")
    captions = [caption.value for caption in open_as(None).caption]
    assert any("[open the app in its own tab](https://lab-sdaudit.hf.space)" in caption for caption in captions)


def test_without_sign_in_the_rater_is_typed_and_the_sidebar_says_it_is_a_one_person_tool(app_home):
    at = open_page("annotate", rater="bob", query={"rater": "carol"})
    box = rater_box(at)
    assert box.value == "bob" and not box.disabled
    assert any(caption.value.startswith("No sign-in on this server: a one-person tool") for caption in at.sidebar.caption)
    assert not [button for button in at.sidebar.button if button.label == "Sign out"]


def test_the_space_signs_in_with_hugging_face_at_streamlits_callback(monkeypatch):
    """The Space's front matter asks for Hugging Face's sign-in and authorises the path Streamlit's
    st.login sends people back to, the one the provider is given."""
    import yaml

    for name in (*OIDC, "SDAUDIT_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    text = (Path(__file__).resolve().parents[1] / "space" / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(text.split("---")[1])
    space = {"OAUTH_CLIENT_ID": "id", "OAUTH_CLIENT_SECRET": "secret", "OPENID_PROVIDER_URL": "https://huggingface.co",
             "SPACE_HOST": "lab-sdaudit.hf.space"}
    assert meta["hf_oauth"] is True
    assert sign_in_provider(space).redirect_uri == f"https://lab-sdaudit.hf.space{meta['hf_oauth_redirect_path']}"


def test_half_the_sign_in_settings_stop_the_server_with_one_line():
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "SDAUDIT_OIDC_CLIENT_ID": "sdaudit"}
    for name in ("SDAUDIT_OIDC_CLIENT_SECRET", "SDAUDIT_OIDC_PROVIDER_URL"):
        env.pop(name, None)
    result = subprocess.run([sys.executable, "-c", "import streamlit_app"], cwd=root, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        "error: " + HALF_CONFIGURED.format(given="SDAUDIT_OIDC_CLIENT_ID")]


def test_with_a_password_and_no_sign_in_the_sidebar_says_how_this_server_works(locked):
    at = open_page("annotate")
    assert [caption.value for caption in at.sidebar.caption if caption.value.startswith("No sign-in")] == [
        "No sign-in on this server: raters type their names; admin actions need the password."]


def test_a_signed_in_rater_saves_under_their_own_name_whatever_the_link_says(signed, tiny_model):
    """bob opens /annotate?rater=alice: his click is saved under bob, and alice's labels are untouched."""
    from sdaudit.generation.generate import StoreSink, generate
    from sdaudit.generation.spec import GenerationSpec
    from sdaudit.store import Store

    spec = GenerationSpec(model=str(tiny_model), prompt="a nurse", first_seed=0, last_seed=1, steps=2, height=64,
                          width=64, device="cpu")
    with Store.open(signed) as store:
        generate(spec, StoreSink(store, signed), home=signed)
    at = open_as(BOB, "annotate", query={"rater": "alice"})
    next(radio for radio in at.radio if radio.label == "Show").set_value("All").run()
    next(radio for radio in at.radio if radio.label == "Person").set_value("No person").run()
    assert not at.exception, at.exception
    with Store.open(signed) as store:
        raters = list(store.annotation_history()["rater"])
    assert raters == ["bob"]
