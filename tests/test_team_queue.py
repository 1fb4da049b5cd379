"""A rater team's queue: k raters per image, a save that cannot take an image's last place twice,
blind repeats kept apart from the annotations, the team settings and their migration."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers import make_images, make_run

from sdaudit.analysis.estimate import estimate
from sdaudit.scheme import Annotation
from sdaudit.store import Store
from sdaudit.store import runs as runs_module
from sdaudit.store import schema as schema_module
from sdaudit.store.machine import MachineTables
from sdaudit.store.queue import SampleProgress
from sdaudit.store.team import RATERS_TEXT, REPEAT_TEXT, Team, TeamSettings

FEMALE = Annotation(True, "female", 3, None, "high")
MALE = Annotation(True, "male", 8, None, "high")


@pytest.fixture
def store():
    with Store() as memory_store:
        memory_store.add_run(make_run())
        memory_store.add_images(make_images(seeds=range(6)))
        yield memory_store


def settings(store: Store, **changes) -> None:
    Team(store).set_settings("default", TeamSettings(**changes))


def queued(store: Store, rater: str, **options) -> list[int]:
    options = {"only_missing": True, "shuffled": False, **options}
    return [image.image_id for image in store.annotation_queue("default", rater, **options)]


def test_the_to_do_queue_holds_what_still_needs_ratings_closest_to_complete_first(store):
    settings(store, raters_per_image=2)
    assert queued(store, "cai") == [1, 2, 3, 4, 5, 6]
    for rater, image_id in (("ana", 1), ("ben", 1), ("ana", 4), ("ben", 6)):
        assert store.save_annotation(image_id, rater, FEMALE, overlap=True)
    # image 1 is complete; 4 and 6 have one rating each and come first; ana's own image 4 is not hers to do
    assert queued(store, "cai") == [4, 6, 2, 3, 5]
    assert queued(store, "ana") == [6, 2, 3, 5]
    everything = store.annotation_queue("default", "cai", only_missing=False, shuffled=False)
    assert [image.image_id for image in everything] == [1, 2, 3, 4, 5, 6], "to review, in the chosen order"
    assert [image.full for image in everything] == [True] + [False] * 5
    progress = store.annotation_progress("default", "ana")
    assert (progress.yours, progress.images, progress.complete, progress.needed) == (2, 6, 1, 2)
    assert progress.text == "2 of 6 annotated by you · 1 of 6 images have 2 ratings"


def test_a_first_answer_on_a_complete_image_is_refused_but_an_edit_is_kept(store):
    settings(store, raters_per_image=2)
    assert store.save_annotation(1, "ana", FEMALE, overlap=True)
    assert store.save_annotation(1, "ben", FEMALE, overlap=True)
    assert not store.save_annotation(1, "cai", FEMALE, overlap=True)
    assert store.save_annotation(1, "ana", MALE, overlap=True), "a rater may always change their own answer"
    rows = store.annotations()
    assert sorted(rows["rater"]) == ["ana", "ben"] and len(store.annotation_history()) == 3
    assert store.save_annotation(1, "cai", FEMALE), "without overlap (imports, scripts) nothing is refused"


def test_raters_saving_at_once_never_give_an_image_more_than_k_ratings(store):
    """Six raters on threads race for every image of a study that wants three ratings each."""
    settings(store, raters_per_image=3)
    start = threading.Barrier(6)
    taken: dict[str, list[int]] = {}

    def rater(name: str) -> None:
        start.wait()
        taken[name] = [image_id for image_id in range(1, 7) if store.save_annotation(image_id, name, FEMALE,
                                                                                     overlap=True)]

    threads = [threading.Thread(target=rater, args=(f"r{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    per_image = store.annotations().groupby("image_id").size()
    assert per_image.to_dict() == {image_id: 3 for image_id in range(1, 7)}
    assert sum(len(images) for images in taken.values()) == 18, "every accepted save is one row; the rest refused"


def test_repeats_come_due_blind_and_never_count_in_estimates(store):
    settings(store, repeat_every=2)
    assert [image.repeat for image in store.annotation_queue("default", "ana", only_missing=True,
                                                             shuffled=False)] == [False] * 6
    for image_id, labels in ((1, FEMALE), (2, MALE), (3, FEMALE)):
        store.save_annotation(image_id, "ana", labels, overlap=True)
    queue = store.annotation_queue("default", "ana", only_missing=True, shuffled=False)
    repeats = [image for image in queue if image.repeat]
    assert len(repeats) == 1 and repeats[0].image_id in (1, 2, 3) and repeats[0].saved is None
    assert repeats[0].card_key == f"repeat-{repeats[0].image_id}" and queue[1] is repeats[0]
    before = estimate(store.annotations()).table
    answer = MALE if repeats[0].image_id != 2 else FEMALE  # the rater contradicts themselves
    Team(store).save_repeat(repeats[0].image_id, "ana", answer)
    assert store.count("annotations") == 3 and store.count("repeat_answers") == 1
    assert estimate(store.annotations()).table.equals(before), "a repeat answer is not an annotation"
    assert not any(image.repeat for image in store.annotation_queue("default", "ana", only_missing=True,
                                                                    shuffled=False)), "due again after 2 more"
    pairs = Team(store).repeats("default")
    assert len(pairs) == 1 and pairs.iloc[0]["gender_first"] != pairs.iloc[0]["gender_repeat"]


@pytest.mark.parametrize(("changes", "message"), [
    ({"raters_per_image": 0}, RATERS_TEXT.format(most=50, value=0)),
    ({"raters_per_image": 2.5}, RATERS_TEXT.format(most=50, value=2.5)),
    ({"repeat_every": -1}, REPEAT_TEXT.format(most=1000, value=-1)),
])
def test_bad_settings_are_named_and_change_nothing(store, changes, message):
    with pytest.raises(ValueError) as caught:
        settings(store, **changes)
    assert str(caught.value) == message
    assert Team(store).settings("default") == TeamSettings()


def test_a_store_from_before_the_team_opens_with_one_rater_per_image(tmp_path, monkeypatch):
    path = tmp_path / "v2.duckdb"
    full_migrations, full_tables = schema_module.MIGRATIONS, schema_module.TABLES
    monkeypatch.setattr(schema_module, "MIGRATIONS", full_migrations[:2])
    monkeypatch.setattr(schema_module, "TABLES", full_tables[:6])
    full_run_columns = runs_module.RUN_COLUMNS
    monkeypatch.setattr(runs_module, "RUN_COLUMNS", [c for c in full_run_columns if c not in ("slot", "kind")])
    with Store(path) as old:
        old.add_run(make_run())
        old.add_images(make_images())
        old.save_annotation(1, "ana", FEMALE)
        assert old.schema_version == 2
    monkeypatch.setattr(schema_module, "MIGRATIONS", full_migrations)
    monkeypatch.setattr(schema_module, "TABLES", full_tables)
    monkeypatch.setattr(runs_module, "RUN_COLUMNS", full_run_columns)
    with Store(path) as upgraded:
        assert upgraded.schema_version == len(full_migrations)
        assert Team(upgraded).settings("default") == TeamSettings()
        assert upgraded.count("annotations") == 1 and upgraded.count("gold_labels") == 0
        assert queued(upgraded, "ben") == [2, 3, 4], "k = 1: ana's image is complete"


# -- one rule for "an image is rated": every question the study asks is answered -----------------

UNFINISHED = Annotation(True, "female", 3, None, None)  # person, gender, MST: no confidence yet


def test_an_answer_without_a_confidence_is_no_rating_so_a_second_rater_still_gets_the_image(store):
    """The drift bug: ana's person/gender/MST without a confidence counted toward the study's two
    raters per image, so ben's to-do list skipped the image once a third rater had finished it."""
    settings(store, raters_per_image=2)
    assert store.save_annotation(1, "ana", UNFINISHED, overlap=True)
    assert store.save_annotation(1, "cai", FEMALE, overlap=True)
    assert 1 in queued(store, "ben"), "one rating so far: the image still needs a second"
    assert queued(store, "ana")[0] == 1, "ana's own unfinished image stays on her list, first"
    progress = store.annotation_progress("default", "ana")
    assert (progress.yours, progress.complete) == (0, 0)
    assert store.save_annotation(1, "ben", MALE, overlap=True), "ben's answer takes the second place"
    assert 1 not in queued(store, "dan") and store.annotation_progress("default", "dan").complete == 1


def test_raters_who_started_an_image_together_cannot_all_finish_it(store):
    """Unfinished answers take no place, so three raters may start an image that asks two ratings;
    the save that would give it a third rating is refused, and the third rater's start stays unrated."""
    settings(store, raters_per_image=2)
    for rater in ("ana", "ben", "cai"):
        assert store.save_annotation(1, rater, Annotation(True), overlap=True), "an unfinished answer takes no place"
    assert store.save_annotation(1, "ana", FEMALE, overlap=True)
    assert store.save_annotation(1, "ben", MALE, overlap=True)
    assert store.save_annotation(1, "cai", FEMALE, overlap=True) is None, "a third rating is refused"
    assert store.annotation(1, "cai") == Annotation(True)
    assert store.save_annotation(1, "ben", FEMALE, overlap=True), "a rater may always change their own rating"
    assert store.annotation_progress("default", "cai").complete == 1 and 1 not in queued(store, "cai")


def test_the_rule_is_annotation_complete_for_every_kind_of_answer(store):
    """The store's count agrees with ``Annotation.complete`` on answers with each question left out."""
    answers = [Annotation(), Annotation(True), Annotation(True, "male"), Annotation(True, "male", 4),
               Annotation(True, "male", 4, None, "low"), Annotation(True, "male", None, "darker", "low"),
               Annotation(True, "male", None, None, "low"), Annotation(True, None, 4, None, "low"),
               Annotation(False), Annotation(False, confidence="high")]
    store.add_images(make_images(seeds=range(6, len(answers))))
    for image_id, answer in enumerate(answers, start=1):
        store.save_annotation(image_id, "ana", answer)
    rated = [image_id for image_id, answer in enumerate(answers, start=1) if answer.complete]
    assert rated == [5, 6, 10]
    assert store.annotation_progress("default", "ana").yours == len(rated)
    assert queued(store, "ana") == [image_id for image_id in range(1, 11) if image_id not in rated]


def half_rated_study(store: Store) -> None:
    """The issue's study: 52 images, two ratings asked per image, 18 with both; three more people
    pressed one key on each of the others."""
    store.add_images(make_images(seeds=range(6, 52)))
    settings(store, raters_per_image=2)
    for image_id in range(1, 19):
        for rater, answer in (("ana", FEMALE), ("ben", MALE)):
            store.save_annotation(image_id, rater, answer, overlap=True)
    for image_id in range(19, 53):
        store.save_annotation(image_id, ("cai", "dan", "eve")[image_id % 3], Annotation(True), overlap=True)


def test_home_waits_for_the_ratings_the_study_asks_and_counts_only_raters_who_rated(store):
    from sdaudit.present.progress import study_progress

    half_rated_study(store)
    for rater in ("", "ana", "cai"):
        progress = study_progress(store, "default", rater)
        assert progress.next_step == "annotate", f"34 of 52 images still need ratings ({rater or 'no rater'})"
        assert progress.counts.raters == 2, "a key pressed once is not a rating"


def test_the_home_page_does_not_call_a_half_rated_study_ready(app_home):
    from streamlit.testing.v1 import AppTest

    with Store.open(app_home) as home_store:
        home_store.add_run(make_run())
        home_store.add_images(make_images(seeds=range(6)))
        half_rated_study(home_store)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app" / "router.py"), default_timeout=600).run()
    assert not at.exception, at.exception
    assert "Every image has labels" not in " ".join(caption.value for caption in at.caption)
    assert at.page_link[0].value == "Next: annotate images"
    assert {metric.label: metric.value for metric in at.metric}["Raters"] == "2"


def test_the_human_sample_comes_first_in_draw_order_and_the_rest_keeps_its_order(store):
    """The sample in draw order before the rest, in the to-do list (k raters per image, repeats and
    closest-to-complete-first kept for the rest), in "All" (focus mode's order) and shuffled; its
    progress counts ratings by the store's ``rated`` rule."""
    settings(store, raters_per_image=2, repeat_every=2)
    assert store.human_sample_progress("default") is None
    sample = MachineTables(store).draw_human_sample("default", 3, seed=7).image_ids
    rest = [image_id for image_id in range(1, 7) if image_id not in sample]
    assert list(sample) != sorted(sample), "the seed gives a draw order other than the seeds' (the test can tell)"
    assert queued(store, "cai") == [*sample, *rest]
    assert queued(store, "cai", only_missing=False) == [*sample, *rest], "focus mode walks the same order"
    shuffled = queued(store, "cai", shuffled=True)
    assert shuffled[:3] == list(sample) and sorted(shuffled[3:]) == rest
    # ben rates a non-sample image: it comes first among the rest (closest to complete), never before the sample
    assert store.save_annotation(rest[-1], "ben", FEMALE, overlap=True)
    assert queued(store, "cai") == [*sample, rest[-1], *rest[:-1]]
    # ana rates the sample's second image, then its first without a confidence (no rating yet)
    assert store.save_annotation(sample[1], "ana", FEMALE, overlap=True)
    assert store.save_annotation(sample[0], "ana", Annotation(True, "female", 3), overlap=True)
    assert queued(store, "cai")[:3] == list(sample), "within the sample: draw order, not closest to complete"
    assert queued(store, "ana") == [sample[0], sample[2], rest[-1], *rest[:-1]]
    assert store.human_sample_progress("default") == SampleProgress(size=3, rated=1, complete=0, needed=2)
    assert store.save_annotation(sample[1], "ben", MALE, overlap=True)
    assert store.save_annotation(sample[0], "ana", FEMALE, overlap=True)  # now with its confidence
    assert store.human_sample_progress("default") == SampleProgress(size=3, rated=2, complete=1, needed=2)
    queue = store.annotation_queue("default", "ana", only_missing=True, shuffled=False)
    assert [image.repeat for image in queue][:2] == [False, True], "a repeat due still comes second"
    assert [image.image_id for image in queue if not image.repeat] == [sample[2], rest[-1], *rest[:-1]]
    assert queued(store, "cai") == [sample[0], sample[2], rest[-1], *rest[:-1]], "sample[1] has its two ratings"
