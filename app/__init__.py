"""sdaudit's Streamlit face, in one place.

    streamlit_app.py   the server (an st.App with sdaudit's lifespan); it serves app/router.py
    app/router.py      the main script: st.navigation over pages/*.py, and the sidebar
    app/resources.py   what one process shares, cached with st.cache_resource: store, worker, snapshots
    app/widgets.py     what pages show alike: `plain` text, the jobs table, MST swatches, the admin form
    app/focus.py       Annotate's focus mode: one image, a key per choice (button shortcuts), undo
    app/address.py     the sidebar's rater and study kept in the page's address
    app/pages/*.py     a fresh server's first deep link (/results, ...) handed to the router
    pages/*.py         the page bodies: widgets -> one sdaudit call -> render

Streamlit looks for its older pages/ discovery beside the main script, so only app/pages/ (the
hand-overs) is ever discovered; the page bodies in pages/ run through the router alone.
"""

import runpy
from pathlib import Path

ROUTER = Path(__file__).resolve().parent / "router.py"


def hand_over_to_the_router() -> None:
    """Run the router from a file of app/pages/.

    Until some script has called st.navigation, Streamlit serves a deep link such as /annotate from
    the files of the pages/ folder beside its main script (its older multipage mode); without
    app/pages/annotate.py, a fresh server's first visitor there got a "Page not found" dialog before
    the router showed the page. That file calls this, and the router shows the page with the app's
    sidebar; from then on Streamlit uses the router directly and never runs those files itself.
    """
    runpy.run_path(str(ROUTER))
