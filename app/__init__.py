"""sdaudit's Streamlit face, in one place.

    streamlit_app.py   the server (an st.App with sdaudit's lifespan); it serves app/router.py
    app/router.py      the main script: st.navigation over the page list, and the sidebar
    app/page_list.py   the pages, listed once: body file, title, icon, address
    app/resources.py   what one process shares, cached with st.cache_resource: store, worker, snapshots
    app/widgets.py     what pages show alike: `plain` text, the jobs table, MST swatches, the admin form
    app/rater_groups.py  the Annotate page's rater-group questions, asked once with consent
    app/focus.py       Annotate's focus mode: one image, a key per choice (button shortcuts), undo
    app/address.py     the sidebar's rater and study kept in the page's address
    pages/*.py         the page bodies: widgets -> one sdaudit call -> render

app/ holds no pages/ folder: beside the main script, one would turn on Streamlit's older page
discovery for a fresh server's first visit (see app/page_list.py).
"""
