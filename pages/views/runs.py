"""Runs: what has been generated so far, with every setting that made it."""

import streamlit as st

from sdaudit.errors import StoreError
from app_resources import current_home, open_store

st.title("Runs")
try:
    runs = open_store(current_home()).runs()
except StoreError as error:
    st.error(str(error))
    st.stop()

if runs.empty:
    st.info(
        "No images yet. Generate some on the Generate page, or from a terminal, e.g. "
        "`python -m sdaudit generate --model demo --seeds 0-7 --steps 10 --height 64 --width 64` "
        "(the `demo` model runs offline with random weights: its images are noise)."
    )
else:
    st.dataframe(
        runs[["study", "images", "nsfw_images", "model", "model_revision", "prompt", "negative_prompt",
              "scheduler", "steps", "guidance", "width", "height", "dtype", "device", "created_at"]],
        hide_index=True,
        column_config={"nsfw_images": st.column_config.NumberColumn("NSFW-flagged")},
    )
