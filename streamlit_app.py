"""sdaudit's app: `streamlit run streamlit_app.py`. This file sets up the server; app/router.py
holds the pages and the sidebar.

An st.App (rather than a plain script) gives the server a start-up hook, run once before any
browser connects: sdaudit.serving.lifespan turns Nagle's algorithm off there, so the first page
load after a restart (a Space waking up) is as quick as the later ones.
"""

import streamlit as st

from sdaudit.serving import lifespan

app = st.App("app/router.py", lifespan=lifespan)
