"""Who is at the keyboard: the sign-in page, and the sidebar's account line.

With sign-in configured (sdaudit.roles.sign_in_provider), nothing of the app is drawn before a
person signs in, an account that may not rate sees one sentence, and the sidebar shows the rater's
name read-only with a Sign out button. Without it, the sidebar keeps its typed Rater box and says,
in one line, that this is a one-person tool.
"""

import os

import streamlit as st

from app.resources import admin_gate, signed_in
from app.widgets import plain
from sdaudit.roles import public_url, sign_in_provider

NOT_A_RATER = ("Your account “{name}” is not on this team's list of raters. Ask an admin to add it to "
               "SDAUDIT_RATERS (a server setting: the app restarts to read it), then reload this page.")
# Streamlit's sign-in always returns to the app's home page: the page and query asked for are lost.
LINK_AGAIN = "Signing in brings you to the home page: if you were given a link to a page, open it again once signed in."
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
        if os.environ.get("SPACE_HOST"):
            st.caption(OWN_TAB.format(url=public_url(os.environ)))
        st.stop()
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
