"""The Agreement page in AppTest: its empty states, the agreement tables, the corrected shares."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import ORIGIN_SHEET, make_images, make_run, open_page, three_raters
from streamlit.testing.v1 import AppTest

from sdaudit.analysis.agreement import agreement
from sdaudit.store import Store


def agreement_page() -> AppTest:
    return open_page("agreement")


def test_without_studies_the_page_says_what_to_do(app_home):
    at = agreement_page()
    assert [title.value for title in at.title] == ["Agreement"]
    assert "No study yet" in at.info[0].value and "import-annotations" in at.info[0].value


def test_one_rater_is_told_agreement_needs_two(app_home):
    from sdaudit.files.sheets import import_annotations

    with Store.open(app_home) as store:
        import_annotations(ORIGIN_SHEET, store, study="origin", rater="origin-rater")
    at = agreement_page()
    assert "Agreement needs at least two raters on the same images" in at.info[0].value
    assert not at.dataframe


@pytest.fixture
def team_home(app_home):
    annotations = three_raters(40)
    with Store.open(app_home) as store:
        store.add_run(make_run(study="team"))
        store.add_images(make_images(seeds=range(40)))
        ids = store.images()["image_id"].to_numpy()
        annotations["image_id"] = ids[annotations["image_id"]]
        annotations["confidence"] = "high"
        store.save_annotations(annotations)
        stored = store.annotations(study="team")
    return app_home, stored


def test_three_raters_see_each_statistic_pairs_and_raters(team_home, monkeypatch):
    _, stored = team_home
    at = agreement_page()
    summary, pairs, raters = (frame.value for frame in at.dataframe)
    expected = agreement(stored, bootstrap_rng_seed=0)
    shown = summary.set_index(["Field", "Statistic"])
    assert shown.loc[("Perceived gender presentation", "Krippendorff's α"), "Value"] == \
        f"{expected.value('gender', 'krippendorff_alpha'):.3f}"
    assert shown.loc[("Monk Skin Tone (1–10, ordinal)", "Gwet's AC1"), "Value"] == \
        f"{expected.value('mst', 'gwet_ac1'):.3f}"
    assert len(pairs) == 3 * 4 and len(raters) == 3 * 4
    assert set(raters["Rater"]) == {"ana", "ben", "cai"}

    import sdaudit.analysis.label_modes

    monkeypatch.setattr(sdaudit.analysis.label_modes, "DAWID_SKENE_RESAMPLES", 5)  # each resample is a refit
    next(toggle for toggle in at.toggle if "rater error" in toggle.label).set_value(True).run()
    assert not at.exception, at.exception
    corrected = at.dataframe[-1].value
    assert set(corrected["Labels"]) == {"soft labels (raters' average)", "corrected for rater error (Dawid–Skene)"}
    assert len(corrected) == 2 * 8, "both rows for each of the eight named groups"
    assert any("Dawid–Skene" in caption.value and "assumes" in caption.value for caption in at.caption)


def test_the_summarys_images_are_the_pairs_images(app_home):
    """Drift bug: the summary said "Images 31" for every field while 15 images had two ratings and the
    pairs table said 15/12/12/12. Both now count, per field, the images with two or more ratings of it."""
    from helpers import sheet

    first = sheet({("female", 2): 16, ("male", 7): 15}, rater="a")
    second = sheet({("female", 2): 6, ("male", 3): 6, ("unclear", 8): 3}, rater="b")
    second.loc[12:, ["person_present", "gender", "mst"]] = [False, None, None]
    annotations = pd.concat([first, second], ignore_index=True)
    with Store.open(app_home) as store:
        store.add_run(make_run(study="pairs"))
        store.add_images(make_images(seeds=range(31)))
        ids = store.images()["image_id"].to_numpy()
        annotations["image_id"] = ids[annotations["image_id"]]
        annotations["confidence"] = "high"
        store.save_annotations(annotations)
    at = agreement_page()
    summary, pairs = at.dataframe[0].value, at.dataframe[1].value
    by_field = summary.groupby("Field", sort=False)["Images"].unique().map(list)
    assert by_field.to_dict() == {"Person present": [15], "Perceived gender presentation": [12],
                                  "Monk Skin Tone (1–10, ordinal)": [12], "Skin tone, lighter / darker": [12]}
    assert pairs.set_index("Field")["Images"].to_dict() == {field: images[0] for field, images in by_field.items()}


def test_home_counts_raters_who_finished_and_agreement_those_who_answered_and_each_says_so(team_home):
    """A fourth rater who pressed one key on one image: Home counts ratings (every question answered),
    so three raters; Agreement reads every answer for the questions it answers, so four raters answered.
    The two counts differ on purpose, and each page says what it counts."""
    from sdaudit.present.words import ANSWERS, RATED
    from sdaudit.scheme import Annotation

    home, stored = team_home
    with Store.open(home) as store:
        store.save_annotation(int(stored["image_id"].iloc[0]), "dee", Annotation(person_present=True))
    at = agreement_page()
    caption = next(caption.value for caption in at.caption if "raters answered" in caption.value)
    assert caption.startswith("4 raters answered;") and ANSWERS in caption
    home_page = open_page("home")
    raters = next(metric for metric in home_page.metric if metric.label == "Raters")
    assert raters.value == "3" and RATED in raters.help and ANSWERS in raters.help
