"""sdaudit's app: the entry file only routes. Pages are thin views over the sdaudit package.

Run it with `streamlit run streamlit_app.py`. The store is opened once per process and shared
by every session; DuckDB lets one process write a store file, so while the app runs, generate
from the command line with `--out DIR` and ingest the folder later.
"""

import streamlit as st

from app_resources import current_home

st.set_page_config(page_title="sdaudit", page_icon=":material/balance:", layout="wide")

navigation = st.navigation([
    st.Page("pages/views/runs.py", title="Runs", icon=":material/photo_library:", default=True),
    st.Page("pages/views/results.py", title="Results", icon=":material/bar_chart:"),
])
with st.sidebar:
    st.caption(f"Data home: `{current_home()}`")
navigation.run()
