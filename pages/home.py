"""Home: what sdaudit does in three steps, where this study stands, and the next step as a link."""

from pathlib import Path

import streamlit as st

from app.resources import current_home, current_rater, current_study, open_store
from app.widgets import plain
from sdaudit.present.progress import study_progress
from sdaudit.present.words import ANSWERS, EMPTY, RATED

PAGES = Path(__file__).resolve().parent
NEXT = {
    "generate": ("generate.py", "Next: generate images", "This study has no images yet."),
    "annotate": ("annotate.py", "Next: annotate images", "Some images are waiting for labels."),
    "others": ("results.py", "Next: see the results so far",
               "You have rated every image you can; {waiting} of {images} images wait for other raters "
               "(this study asks {needed} ratings per image)."),
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
counts = progress.counts
st.subheader(f"Study “{plain(study)}”")
columns = st.columns(4)
columns[0].metric("Images", counts.images + counts.imported,
                  help="Imported sheets' images count too; they have labels but no files." if counts.imported else None)
columns[1].metric("Annotated by you", counts.rated_by_you if rater else EMPTY,
                  help=RATED if rater else "Enter your name as Rater in the sidebar.")
columns[2].metric("Annotated by anyone", counts.rated_by_anyone, help=RATED)
columns[3].metric("Raters", counts.raters, help=f"People who have rated at least one image. {RATED} {ANSWERS}")

page, label, why = NEXT[progress.next_step]
st.caption(why.format(waiting=counts.images - counts.complete, images=counts.images, needed=counts.needed))
st.page_link(str(PAGES / page), label=label, icon=":material/arrow_forward:")
