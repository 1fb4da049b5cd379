"""sdaudit's app: `streamlit run streamlit_app.py`. This file sets up the server; app/router.py
holds the pages and the sidebar.

An st.App (rather than a plain script) gives the server a start-up hook, run once before any
browser connects: sdaudit.serving.lifespan turns Nagle's algorithm off there, so the first page
load after a restart (a Space waking up) is as quick as the later ones. It also takes Streamlit's
``[auth]`` secrets in memory: when sign-in is configured (sdaudit.roles.sign_in_provider), they are
made here from the settings, so no secrets.toml is written.

The hook's end runs when the server shuts down (SIGTERM from a container stop or a Space restart,
Ctrl+C): with a snapshot target, the labels made since the last snapshot are snapshotted then
(sdaudit.files.snapshot.last_snapshots), while the store is still open.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import streamlit as st

from sdaudit.config import data_home
from sdaudit.files.snapshot import last_snapshots
from sdaudit.roles import auth_secrets, sign_in_provider
from sdaudit.serving import lifespan


@asynccontextmanager
async def lifespan_with_last_snapshot(server: object) -> AsyncIterator[None]:
    async with lifespan(server):
        yield
    last_snapshots()  # the server has stopped: no session writes any more

try:
    provider = sign_in_provider()
except ValueError as error:  # half the sign-in settings: one line, no server
    raise SystemExit(f"error: {error}") from None

app = st.App("app/router.py", lifespan=lifespan_with_last_snapshot, secrets=auth_secrets(provider, data_home()) if provider else None)
