"""Team (admins): how a study's raters work together, its gold images, the adjudication of images
whose raters disagree, and its human sample (the random subset people label first)."""

import streamlit as st

from app.resources import current_home, current_study, open_store
from app.widgets import admin_unlocked, plain
from sdaudit.analysis.rater_quality import annotation_of
from sdaudit.files.csvfile import spreadsheet_safe
from sdaudit.files.gallery import load_image
from sdaudit.present.team_tables import (
    adjudication_queue,
    draw_human_sample,
    generated_images,
    human_sample_sheet,
    human_sample_view,
    sample_seed,
)
from sdaudit.present.words import how_many
from sdaudit.scheme import (
    BINARY_SKIN_CHOICES,
    DISAGREEMENT_WORDS,
    GENDER_CHOICES,
    MST_CHOICES,
    PERSON_CHOICES,
    Annotation,
    annotation_from_choices,
    choices_from_annotation,
)
from sdaudit.store.team import Team, TeamSettings, parse_fields

st.title("Team")
home = current_home()
store = open_store(home)
study = current_study()
st.caption(f"Study “{plain(study)}” (choose another in the sidebar).")
if not admin_unlocked():
    st.stop()
team = Team(store)
settings = team.settings(study)
skin_choices = list(BINARY_SKIN_CHOICES if store.study_skin_tone_mode(study) == "binary" else MST_CHOICES)


def label_radios(key: str, saved: Annotation | None) -> Annotation:
    """Person, gender and skin-tone radios (inside a form) showing ``saved``; the labels chosen."""
    shown = choices_from_annotation(saved)

    def index(options: list, value) -> int | None:
        return options.index(value) if value in options else None

    person = st.radio("Person", list(PERSON_CHOICES), index=index(list(PERSON_CHOICES), shown["person"]),
                      key=f"person-{key}", horizontal=True)
    gender = st.radio("Gender presentation", list(GENDER_CHOICES), key=f"gender-{key}", horizontal=True,
                      index=index(list(GENDER_CHOICES), shown["gender"]))
    skin = st.radio("Skin tone", skin_choices, index=index(skin_choices, shown["skin"]), key=f"skin-{key}",
                    horizontal=True)
    return annotation_from_choices(person, gender, skin, None)


def show_image(path: str) -> None:
    loaded = load_image(home, path)
    if loaded.data is not None:
        st.image(loaded.data, width=320)
    else:
        st.warning(plain(loaded.problem), icon=":material/warning:")


if done := st.session_state.pop("team-done", None):
    st.success(done, icon=":material/check_circle:")
adjudication, settings_tab, gold_tab, sample_tab = st.tabs(["Adjudication", "Settings", "Gold images", "Human sample"])

with adjudication:
    queue = adjudication_queue(store, study)
    rules = settings.disagreement_rules
    if not queue.items:
        st.info(f"No image has raters who disagree ({rules}). An image is listed here once two or more raters "
                "have rated it and disagree; set the raters per image under Settings.", icon=":material/info:")
    else:
        st.caption(f"{queue.open} of {len(queue.items)} images still open. Listed when {rules}. The final label "
                   "is used by the “adjudicated” labels on Results and by `estimate --labels adjudicated`.")
        items = {item.image_id: item for item in queue.items}
        item_labels = {image_id: queue.label(item) for image_id, item in items.items()}
        item = items[st.selectbox("Image to adjudicate", list(items), format_func=item_labels.get)]
        left, right = st.columns([1, 2])
        with left:
            show_image(item.path)
        with right:
            st.dataframe(item.answers, hide_index=True)
            if item.final is not None:
                st.caption("Recorded note:")
                st.text(item.final["note"])
            with st.form(f"adjudicate-{item.image_id}"):
                final = label_radios(f"final-{item.image_id}", annotation_of(item.final))
                note = st.text_area("Note (why this label)", value="" if item.final is None else item.final["note"])
                if st.form_submit_button("Record the final label"):
                    try:
                        team.adjudicate(study, item.image_id, final, note=note, by="admin")
                    except ValueError as error:
                        st.error(plain(error), icon=":material/error:")
                    else:  # drawn again, so the list says it is adjudicated
                        st.session_state["team-done"] = f"Recorded the final label of image {item.image_id}."
                        st.rerun()

with settings_tab, st.form("team-settings"):
    raters = st.number_input("Raters per image", 1, 50, settings.raters_per_image,
                             help="Each rater's to-do list offers the images with fewer ratings than this.")
    repeat = st.number_input("Repeat one image after every N annotations (0: never)", 0, 1000,
                             settings.repeat_every,
                             help="An image the rater already labelled is shown again, blind, to measure their "
                                  "self-consistency; the answer never counts in the results.")
    mst_spread = st.number_input("Disagreement: MST spread of at least", 1, 9, settings.disagree_mst_spread)
    gender = st.checkbox("Disagreement: gender answers differ", settings.disagree_gender)
    person = st.checkbox(f"Disagreement: {DISAGREEMENT_WORDS['person']}", settings.disagree_person)
    fields = st.text_input("Rater-group fields (comma-separated, optional)", ", ".join(settings.rater_fields),
                           help="Asked once of each rater, with consent, e.g. region, own MST range, expertise.")
    if st.form_submit_button("Save settings"):
        try:
            team.set_settings(study, TeamSettings(int(raters), int(repeat), int(mst_spread), gender, person,
                                                  parse_fields(fields)))
        except ValueError as error:
            st.error(plain(error), icon=":material/error:")
        else:
            st.success("Saved the team settings.", icon=":material/check_circle:")

with gold_tab:
    images = store.images(study=study)
    images = images[~images["external"]]
    gold = team.gold(study).set_index("image_id")
    st.caption(f"{how_many(len(gold), 'gold image')}. Raters' answers on a gold image count once, like any other; the "
               "reference labels only score each rater (Agreement page).")
    if images.empty:
        st.info("This study has no images yet.", icon=":material/info:")
    else:
        paths = dict(zip(images["image_id"].astype(int), images["path"]))
        image_labels = {int(row.image_id): f"image {row.image_id} · seed {row.seed}" + (
            " · gold" if row.image_id in gold.index else "") for row in images.itertuples()}
        chosen = st.selectbox("Image", list(image_labels), format_func=image_labels.get)
        show_image(paths[chosen])
        with st.form(f"gold-{chosen}"):
            reference = label_radios(f"gold-{chosen}", annotation_of(gold.loc[chosen] if chosen in gold.index else None))
            if st.form_submit_button("Save as gold"):
                team.set_gold(study, chosen, reference, by="admin")
                st.session_state["team-done"] = f"Image {chosen} is gold."
                st.rerun()
        if chosen in gold.index and st.button("Remove from gold"):
            team.remove_gold(chosen)
            st.rerun()

with sample_tab:
    sample = human_sample_view(store, study)
    if sample is None:
        population = generated_images(store, study)
        st.caption(f"Draw a uniform random sample of this study's {population} generated images for people to label "
                   "first: every rater's to-do list offers them before the rest, in the order drawn. With machine "
                   "labels on every image, the people's labels on this sample make the prediction-powered "
                   "intervals. The draw is recorded with its seed, and a study has one: it cannot be drawn again.")
        with st.form("human-sample"):
            size = st.number_input("Images in the sample", 2, max(2, population), min(120, max(2, population)))
            seed = st.text_input("Seed (optional: empty draws one and records it)")
            sure = st.checkbox("I am sure: this study's one human sample, kept for good")
            if st.form_submit_button("Draw the human sample"):
                if not sure:
                    st.warning("Tick “I am sure” to draw: a study's human sample cannot be drawn again.",
                               icon=":material/warning:")
                else:
                    try:
                        drawn = draw_human_sample(store, study, int(size), seed=sample_seed(seed), by="admin")
                    except ValueError as error:
                        st.error(plain(error), icon=":material/error:")
                    else:
                        st.session_state["team-done"] = drawn.drawn[0].upper() + drawn.drawn[1:] + "."
                        st.rerun()
    else:
        st.caption(plain(sample.text[0].upper() + sample.text[1:]) + ".")
        st.progress(sample.progress.rated / sample.sample.size,
                    text=f"{sample.progress.rated} of {sample.sample.size} sample images rated by people")
        sheet = spreadsheet_safe(human_sample_sheet(store, study, sample.sample)).to_csv(index=False)
        st.download_button("Sheet of the sample (CSV)", sheet.encode("utf-8"), file_name="human-sample.csv",
                           mime="text/csv", help="For people who label outside the app: fill in rater, labels and "
                                                 "confidence, then import it (Runs page, or `import-annotations "
                                                 "--format sdaudit`).")
