"""Home: what sdaudit does in three steps, where this study stands, and the next step as a link."""

from pathlib import Path

import streamlit as st

from app.resources import current_home, current_rater, current_study, open_store
from app.widgets import plain
from sdaudit.present.progress import study_progress

PAGES = Path(__file__).resolve().parent
NEXT = {
    "generate": ("generate.py", "Next: generate images", "This study has no images yet."),
    "annotate": ("annotate.py", "Next: annotate images", "Some images are waiting for labels."),
    "results": ("results.py", "Next: see the results", "Every image has labels: the shares are ready."),
}

st.title("sdaudit")
st.markdown(
    "1. **Generate** images for a prompt from a text-to-image model, many seeds at a time.\n"
    "2. **Annotate** what each image shows: a person or not, perceived gender presentation, skin tone.\n"
    "3. **Results**: each group's share with its interval, set against parity, ready to report."
)

study, rater = current_study(), current_rater()
progress = study_progress(open_store(current_home()), study, rater)
st.subheader(f"Study “{plain(study)}”")
counts = st.columns(4)
counts[0].metric("Images", progress.images + progress.imported,
                 help="Imported sheets' images count too; they have labels but no files." if progress.imported else None)
counts[1].metric("Annotated by you", progress.annotated_by_you if rater else "–",
                 help=None if rater else "Enter your name as Rater in the sidebar.")
counts[2].metric("Annotated by anyone", progress.annotated_by_anyone)
counts[3].metric("Raters", progress.raters)

page, label, why = NEXT[progress.next_step]
st.caption(why)
st.page_link(str(PAGES / page), label=label, icon=":material/arrow_forward:")
