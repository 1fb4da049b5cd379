"""The address /runs on a fresh server, handed to the router; the page itself is pages/views/runs.py.

Until some script has called st.navigation, Streamlit serves a deep link from the top-level files
of pages/ (its older multipage mode). Without this file a first visitor's /runs link got a
"Page not found" dialog before the router showed the page. This file runs the router
(streamlit_app.py), which shows Runs with the app's sidebar; from then on Streamlit uses the
router directly and never runs this file.
"""

from app_resources import hand_over_to_the_router

hand_over_to_the_router()
