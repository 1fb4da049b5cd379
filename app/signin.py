"""Who is at the keyboard: the sign-in page, and the sidebar's account line.

With sign-in configured (sdaudit.roles.sign_in_provider), nothing of the app is drawn before a
person signs in, an account that may not rate sees one sentence, and the sidebar shows the rater's
name read-only with a Sign out button. Without it, the sidebar keeps its typed Rater box and says,
in one line, that this is a one-person tool.
"""

import json
import os
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import streamlit as st

from app.page_list import PAGES
from app.resources import admin_gate, signed_in
from app.widgets import plain
from sdaudit.roles import public_url, sign_in_provider

NOT_A_RATER = ("Your account “{name}” is not on this team's list of raters. Ask an admin to add it to "
               "SDAUDIT_RATERS (a server setting: the app restarts to read it), then reload this page.")
# Streamlit's sign-in always returns to the app's home page, so the page asked for is kept through the
# round trip in a short-lived cookie of this app's own (written by the sign-in page's script, read
# once by the first run after sign-in, then deleted), and the browser is sent back to it. Only the
# app's own page addresses and the query keys a link may carry are followed: never another site.
RETURN_COOKIE = "sdaudit-return"
RETURN_MINUTES = 10
RETURN_QUERY = {"study": None, "view": ("focus",)}  # a key a link may carry, and its allowed values (None: any)
MAX_RETURN_VALUE = 200
REMEMBER_PAGE = ("<script>document.cookie = '" + RETURN_COOKIE + "=' + encodeURIComponent(location.pathname + "
                 f"location.search) + '; path=/; max-age={RETURN_MINUTES * 60}; samesite=lax';</script>")
FORGET_PAGE = f"<script>document.cookie = '{RETURN_COOKIE}=; path=/; max-age=0; samesite=lax';"
LINK_AGAIN = ("Signing in brings you back to the page you opened; if you land on the home page instead, open "
              "your link again.")
# On a Space, huggingface.co/spaces/OWNER/NAME shows the app in a frame, where the provider's sign-in
# page cannot return (the browser refuses it); the app's own address works.
OWN_TAB = "Signing in does not work inside the Space page's frame: [open the app in its own tab]({url}) and sign in there."
ALONE = "No sign-in on this server: a one-person tool, and anyone who opens it can type any rater's name."
PASSWORD_ONLY = "No sign-in on this server: raters type their names; admin actions need the password."


def require_sign_in() -> None:
    """With sign-in configured: the sign-in page for a visitor, the refusal for an account that
    may not rate; either ends the run (``st.stop``). Without sign-in, or for a rater or admin, draws nothing."""
    provider = sign_in_provider()
    if provider is None:
        return
    account = signed_in()
    if account is None:
        st.title("sdaudit")
        st.write("This server's studies are open to its team only: sign in to annotate or view results.")
        st.button(provider.label, on_click=st.login, type="primary", icon=":material/login:")
        st.caption(LINK_AGAIN)
        st.html(REMEMBER_PAGE, unsafe_allow_javascript=True)  # a fixed script: the address is the browser's own
        if os.environ.get("SPACE_HOST"):
            st.caption(OWN_TAB.format(url=public_url(os.environ)))
        st.stop()
    return_to_asked_page()
    if not account.may_rate:
        st.title("sdaudit")
        st.warning(NOT_A_RATER.format(name=plain(account.name)), icon=":material/block:")
        st.button("Sign out", on_click=st.logout)
        st.stop()


def account_sidebar() -> None:
    """The rater's name: read-only with a Sign out button when signed in; else the typed box and the
    one line saying that this server has no sign-in."""
    account = signed_in()
    if account is not None:
        st.text_input("Rater", value=account.name, disabled=True,
                      help="Your account's name: every annotation is saved under it. It cannot be changed here.")
        st.caption(f"Signed in as {plain(account.name)} · {'admin' if account.admin else 'rater'}")
        st.button("Sign out", on_click=st.logout, icon=":material/logout:")
        return
    st.text_input("Rater", key="rater", help="Your name: every annotation is saved under it.")
    st.caption(PASSWORD_ONLY if admin_gate().required else ALONE)


def safe_return(asked: str) -> str | None:
    """The app address to go back to after sign-in, from the cookie's value: one of the app's own
    pages (``/annotate``; not ``/``, where sign-in lands anyway) with only the query keys a link may
    carry (``RETURN_QUERY``); None for anything else (another site, another path, no page)."""
    parts = urlsplit(unquote(asked))
    if parts.scheme or parts.netloc or parts.fragment:
        return None
    if parts.path not in {page.address for page in PAGES if not page.default}:
        return None
    query = [(key, value) for key, value in parse_qsl(parts.query)
             if key in RETURN_QUERY and len(value) <= MAX_RETURN_VALUE
             and (RETURN_QUERY[key] is None or value in RETURN_QUERY[key])]
    return parts.path + (f"?{urlencode(query)}" if query else "")


def return_to_asked_page() -> None:
    """On a signed-in session's first run: when the sign-in page remembered another page of this
    app, forget it and send the browser there (once; the cookie is deleted either way)."""
    if st.session_state.get("return-checked"):
        return
    st.session_state["return-checked"] = True
    asked = st.context.cookies.get(RETURN_COOKIE)
    if not isinstance(asked, str):  # none; AppTest, with no browser, has no cookies to give
        return
    target = safe_return(asked)
    go = f" location.replace({json.dumps(target)});" if target else ""  # a path of this app, percent-encoded
    st.html(f"{FORGET_PAGE}{go}</script>", unsafe_allow_javascript=True)
