"""The Team page in AppTest: admins only; the adjudication queue lists the images whose raters disagree
with every rater's answer, records a final label with a note, and Results then says and uses it."""

from __future__ import annotations

import json

import pytest
from helpers import make_images, make_run, open_page
from streamlit.testing.v1 import AppTest

from app.widgets import plain
from sdaudit.analysis.estimate import estimate
from sdaudit.present.team_tables import SAMPLE_SEED_TEXT
from sdaudit.scheme import Annotation
from sdaudit.store import Store
from sdaudit.store.machine import MachineTables
from sdaudit.store.team import Team, TeamSettings

ANSWERS = {  # image -> rater -> labels; image 1 agrees, 2 splits on gender, 3 on MST (spread 3), 4 on person
    1: {"ana": Annotation(True, "female", 3), "ben": Annotation(True, "female", 3)},
    2: {"ana": Annotation(True, "female", 3), "ben": Annotation(True, "male", 3)},
    3: {"ana": Annotation(True, "male", 2), "ben": Annotation(True, "male", 5)},
    4: {"ana": Annotation(True, "male", 8), "ben": Annotation(False)},
}


@pytest.fixture
def locked(locked):
    """conftest's locked home, holding four images that two raters answered (``ANSWERS``)."""
    with Store.open(locked) as store:
        store.add_run(make_run())
        store.add_images(make_images())
        Team(store).set_settings("default", TeamSettings(raters_per_image=2))
        for image_id, answers in ANSWERS.items():
            for rater, labels in answers.items():
                store.save_annotation(image_id, rater, labels)
    return locked


def page(name: str) -> AppTest:
    return open_page(name.removesuffix(".py"))


def unlock(at: AppTest) -> None:
    next(box for box in at.text_input if box.label == "Admin password").input("s3cret")
    next(button for button in at.button if button.label == "Unlock").click().run()
    assert not at.exception, at.exception


def widget(elements, label):
    return next(element for element in elements if element.label == label)


def test_raters_see_only_the_password_prompt(locked):
    at = page("team.py")
    assert any(box.label == "Admin password" for box in at.text_input)
    assert not any(box.label == "Image to adjudicate" for box in at.selectbox)
    assert not at.dataframe and not any(button.label == "Record the final label" for button in at.button)


def test_an_admin_adjudicates_a_disagreement_and_results_use_it(locked):
    at = page("team.py")
    unlock(at)
    chooser = widget(at.selectbox, "Image to adjudicate")
    assert chooser.options == ["image 2 · seed 1 · gender differs · open", "image 3 · seed 2 · MST spread 3 · open",
                               "image 4 · seed 3 · person present split · open"]
    answers = at.dataframe[0].value
    assert list(answers["Rater"]) == ["ana", "ben"]
    assert list(answers["Gender presentation"]) == ["Female-presenting", "Male-presenting"]

    widget(at.radio, "Person").set_value("Person")
    widget(at.radio, "Gender presentation").set_value("Male-presenting")
    widget(at.radio, "Skin tone").set_value("MST 3")
    widget(at.button, "Record the final label").click().run()  # no note yet: refused, nothing stored
    assert "needs a note" in at.error[0].value
    with Store.open(locked) as store:
        assert Team(store).adjudications("default").empty
    widget(at.text_area, "Note (why this label)").input("broad shoulders, short hair; both raters agree on MST 3")
    widget(at.button, "Record the final label").click().run()
    assert not at.exception and "Recorded the final label of image 2" in at.success[0].value
    with Store.open(locked) as store:
        final = Team(store).adjudications("default")
        annotations = store.annotations()
    assert final[["image_id", "gender", "mst"]].values.tolist() == [[2, "male", 3]]
    assert final.iloc[0]["note"].startswith("broad shoulders")
    assert widget(at.selectbox, "Image to adjudicate").options[-1] == "image 2 · seed 1 · gender differs · adjudicated"

    # Results: the labels selector, said in the chart's subtitle; image 2 now counts as male-presenting
    results = page("results.py")
    widget(results.selectbox, "Labels").set_value("adjudicated").run()
    assert not results.exception
    subtitle = json.loads(results.get("vega_lite_chart")[0].proto.spec)["title"]["subtitle"]
    assert "adjudicated labels where an admin recorded one, soft labels elsewhere" in subtitle[0]
    counted = "Images in group (final labels or raters' shares)"  # two raters: a count sums fractions
    female = results.dataframe[0].value.set_index("Group").loc["female-presenting", counted]
    # independently: images 1 (female by both), 2 (now male), 3 (male), 4 (one rater saw a person: male)
    expected = estimate(annotations.assign(gender=annotations["gender"].where(annotations["image_id"] != 2, "male")))
    assert female == f"{expected.row('gender', 'female')['count']:g} of {expected.images}" == "1 of 4"


# -- the raters' side: repeats, rater groups; and what the Agreement page shows ----------------------


@pytest.fixture
def open_home(app_home):
    with Store.open(app_home) as store:
        store.add_run(make_run())
        store.add_images(make_images())
    return app_home


def annotate(rater: str = "ana") -> AppTest:
    return open_page("annotate", rater=rater)


def test_a_due_repeat_is_shown_blind_and_its_answer_kept_apart(open_home):
    with Store.open(open_home) as store:
        Team(store).set_settings("default", TeamSettings(repeat_every=1))
        store.save_annotation(1, "ana", Annotation(True, "female", 3, None, "high"))
    at = annotate()
    keys = [radio.key for radio in at.radio if radio.label == "Person"]
    assert sorted(keys) == ["person-2", "person-3", "person-4", "person-repeat-1"], "the repeat beside the to-do images"
    assert next(radio for radio in at.radio if radio.key == "person-repeat-1").value is None, "blind: nothing shown"
    assert sum("doctor" in caption.value for caption in at.caption) == 3, "no prompt under the repeat"
    next(radio for radio in at.radio if radio.key == "gender-repeat-1").set_value("Male-presenting").run()
    assert not at.exception
    with Store.open(open_home) as store:
        assert store.annotations()[["image_id", "gender"]].values.tolist() == [[1, "female"]]
        repeats = Team(store).repeats("default")
    assert repeats[["image_id", "rater", "gender_first", "gender_repeat"]].values.tolist() == [[1, "ana", "female", "male"]]


def test_rater_groups_are_asked_once_and_only_kept_with_consent(open_home):
    with Store.open(open_home) as store:
        Team(store).set_settings("default", TeamSettings(rater_fields=("region", "expertise")))
    at = annotate()
    widget(at.text_input, "region").input("A")
    widget(at.button, "Save my answers").click().run()
    assert at.error[0].value == "Tick “I agree” to share your answers, or choose “No thanks”."
    widget(at.checkbox, "I agree").check()
    widget(at.button, "Save my answers").click().run()
    assert not at.exception and not any(box.label == "region" for box in at.text_input), "asked once"
    again = annotate()
    assert not any(box.label == "region" for box in again.text_input)
    ben = annotate("ben")
    widget(ben.text_input, "region").input("B")
    widget(ben.button, "No thanks").click().run()
    with Store.open(open_home) as store:
        assert Team(store).rater_groups("default") == {"ana": {"region": "A"}}
        assert store.count("annotations") == 0


def test_the_agreement_page_shows_gold_repeats_and_no_small_rater_groups(open_home):
    with Store.open(open_home) as store:
        team = Team(store)
        team.set_settings("default", TeamSettings(rater_fields=("region",)))
        for rater, genders in (("ana", "ffmm"), ("ben", "fmmm"), ("cai", "ffmf")):
            for image_id, gender in zip(range(1, 5), genders):
                store.save_annotation(image_id, rater, Annotation(True, {"f": "female", "m": "male"}[gender], 3))
            team.save_profile("default", rater, {"region": "A" if rater != "ben" else "B"}, consented=True)
        team.set_gold("default", 1, Annotation(True, "female", 3))
        team.set_gold("default", 2, Annotation(True, "female", 3))
        team.save_repeat(1, "ana", Annotation(True, "male", 3))
    at = page("agreement.py")
    tables = [frame.value for frame in at.dataframe]
    gold = next(table for table in tables if "Gold images rated" in table.columns).set_index("Rater")
    # ana and cai: female on both gold images; ben: female on image 1, male on image 2
    # each share with its count and exact 95% interval (Clopper–Pearson: 2 of 2 is [15.8%, 100%])
    assert gold["Gender presentation"].to_dict() == {"ana": "100% (2 of 2; 15.8% – 100.0%)",
                                                     "ben": "50% (1 of 2; 1.3% – 98.7%)",
                                                     "cai": "100% (2 of 2; 15.8% – 100.0%)"}
    repeats = next(table for table in tables if "Repeats answered" in table.columns)
    assert repeats[["Rater", "Repeats answered", "Gender presentation"]].values.tolist() == [
        ["ana", 1, "0% (0 of 1; 0.0% – 97.5%)"]]
    # groups A (two raters) and B (one) are smaller than five raters, and so is "other" pooling them: none
    # is shown, as B alone would be ben's answer (tests/test_private_by_role.py shows pooled groups)
    assert not any("Rater group" in table.columns for table in tables)
    assert "has no group of 5 or more raters" in " ".join(info.value for info in at.info)


def test_an_admin_sets_the_team_and_marks_gold(locked):
    at = page("team.py")
    unlock(at)
    widget(at.number_input, "Raters per image").set_value(3)
    widget(at.text_input, "Rater-group fields (comma-separated, optional)").input("region, own MST range")
    widget(at.button, "Save settings").click().run()
    assert not at.exception and "Saved the team settings." in [success.value for success in at.success]
    with Store.open(locked) as store:
        assert Team(store).settings("default") == TeamSettings(raters_per_image=3,
                                                               rater_fields=("region", "own MST range"))
    widget(at.selectbox, "Image").set_value(2).run()
    radios = [radio for radio in at.radio if radio.key and radio.key.endswith("gold-2")]
    for radio, value in zip(radios, ("Person", "Female-presenting", "MST 4")):
        radio.set_value(value)
    widget(at.button, "Save as gold").click().run()
    assert not at.exception and "Image 2 is gold." in [success.value for success in at.success]
    with Store.open(locked) as store:
        gold = Team(store).gold("default")
    assert gold[["image_id", "gender", "mst"]].values.tolist() == [[2, "female", 4]]
    assert widget(at.selectbox, "Image").format_func(2) == "image 2 · seed 1 · gold"


def test_an_admin_draws_the_human_sample_once_confirmed_and_sees_its_progress(locked):
    at = page("team.py")
    assert not any(button.label == "Draw the human sample" for button in at.button), "raters never see the draw"
    unlock(at)
    assert "of this study's 4 generated images" in " ".join(caption.value for caption in at.caption)
    widget(at.number_input, "Images in the sample").set_value(3)
    widget(at.text_input, "Seed (optional: empty draws one and records it)").input("x5")
    widget(at.button, "Draw the human sample").click().run()  # not confirmed: nothing drawn
    assert any("Tick “I am sure” to draw" in warning.value for warning in at.warning)
    widget(at.checkbox, "I am sure: this study's one human sample, kept for good").check()
    widget(at.button, "Draw the human sample").click().run()  # a seed that is no number: refused
    assert at.error[0].value == plain(SAMPLE_SEED_TEXT.format(value="x5"))
    with Store.open(locked) as store:
        assert MachineTables(store).human_sample("default") is None
    widget(at.text_input, "Seed (optional: empty draws one and records it)").input("5")
    widget(at.button, "Draw the human sample").click().run()
    assert not at.exception
    assert ("Drew 3 of 4 generated images (seed 5, inclusion probability 0.75); raters will be offered them first."
            in [success.value for success in at.success])
    with Store.open(locked) as store:
        sample = MachineTables(store).human_sample("default")
        assert (sample.size, sample.seed, sample.drawn_by) == (3, 5, "admin")
        store.save_annotation(sample.image_ids[0], "cai", Annotation(True, "male", 5, None, "high"))
    assert not any(button.label == "Draw the human sample" for button in at.run().button), "drawn once only"
    shown = " ".join(caption.value for caption in at.caption).replace("\\", "").replace("\u2060", "")  # plain()'s marks
    assert "Human sample: 3 of 4 generated images (seed 5, inclusion probability 0.75)" in shown
    assert "rated by people: 1 of 3 (0 with the study's 2 ratings each)" in shown, "ANSWERS carry no confidence"
    assert at.get("progress")[0].proto.text == "1 of 3 sample images rated by people"
