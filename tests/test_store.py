"""The DuckDB store: schema and migrations, history that loses nothing, threads, locked files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import duckdb
import pytest
from helpers import add_study_as_an_older_store_did, make_images, make_run

from sdaudit.errors import StoreError
from sdaudit.records import STUDY_NAME
from sdaudit.scheme import Annotation
from sdaudit.store import LOCKED, NOT_DUCKDB, TOO_NEW, Store
from sdaudit.store import schema as schema_module


@pytest.fixture
def store():
    with Store() as memory_store:
        memory_store.add_run(make_run())
        memory_store.add_images(make_images())
        yield memory_store


def test_a_new_store_has_every_table_at_the_latest_schema_version():
    with Store() as fresh:
        assert fresh.schema_version == len(schema_module.MIGRATIONS) == schema_module.SCHEMA_VERSION
        for table in ("studies", "runs", "images", "annotations", "annotation_history", "jobs"):
            assert fresh.count(table) == 0


def test_migrations_upgrade_an_old_file_and_keep_its_rows(tmp_path, monkeypatch):
    path = tmp_path / "old.duckdb"
    with Store(path) as old:
        old.add_run(make_run())
        old.add_images(make_images())
    added = "ALTER TABLE studies ADD COLUMN description VARCHAR DEFAULT ''"
    monkeypatch.setattr(schema_module, "MIGRATIONS", [*schema_module.MIGRATIONS, added])
    with Store(path) as upgraded:
        assert upgraded.schema_version == len(schema_module.MIGRATIONS)
        assert upgraded.count("images") == 4
    with duckdb.connect(str(path), read_only=True) as raw:
        assert ("description",) in raw.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'studies'").fetchall()


def test_a_store_from_a_newer_sdaudit_is_refused(tmp_path):
    path = tmp_path / "new.duckdb"
    with Store(path) as current:
        current.db.write(lambda cursor: cursor.execute("UPDATE schema_info SET version = 99"))
    with pytest.raises(StoreError) as caught:
        Store(path)
    assert str(caught.value) == TOO_NEW.format(path=path, found=99, known=schema_module.SCHEMA_VERSION)


def test_a_file_that_is_not_duckdb_is_named(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("these are my notes, not a database\n")
    with pytest.raises(StoreError) as caught:
        Store(path)
    assert str(caught.value) == NOT_DUCKDB.format(path=path)
    assert path.read_text() == "these are my notes, not a database\n"


def test_a_store_held_by_another_process_gives_one_clear_line(tmp_path):
    path = tmp_path / "held.duckdb"
    Store(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, duckdb
            con = duckdb.connect({str(path)!r})
            print("held", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreError) as caught:
            Store(path)
        message = str(caught.value)
        assert message == LOCKED.format(path=path)
        assert "\n" not in message and "--out" in message
    finally:
        holder.communicate("", timeout=30)


def test_adding_the_same_images_twice_adds_nothing(store):
    assert store.add_images(make_images(seeds=range(6))) == 2
    assert store.add_images(make_images(seeds=range(6))) == 0
    assert store.existing_seeds("run-a") == set(range(6))
    assert store.add_run(make_run()) is False
    runs = store.runs()
    assert runs.loc[0, "images"] == 6 and runs.loc[0, "study"] == "default"


def test_an_edit_overwrites_the_current_row_and_keeps_the_history(store):
    image_id = int(store.images().loc[0, "image_id"])
    store.save_annotation(image_id, "ana", Annotation(person_present=True, gender="female", mst=3))
    store.save_annotation(image_id, "ana", Annotation(person_present=True, gender="male", mst=7, confidence="high"))
    store.save_annotation(image_id, "ben", Annotation(person_present=False))
    current = store.annotations().set_index("rater")
    assert len(current) == 2
    assert current.loc["ana", "gender"] == "male" and current.loc["ana", "mst"] == 7
    assert bool(current.loc["ben", "person_present"]) is False
    history = store.annotation_history(image_id=image_id)
    assert list(history["rater"]) == ["ana", "ana", "ben"]
    assert list(history["gender"].fillna("-")) == ["female", "male", "-"]


def test_undo_puts_back_the_labels_before_each_save_newest_first(store):
    first, second = (int(image_id) for image_id in store.images()["image_id"][:2])
    saves = [store.save_annotation(first, "ana", Annotation(person_present=True)),
             store.save_annotation(second, "ana", Annotation(person_present=False)),
             store.save_annotation(first, "ana", Annotation(person_present=True, gender="male")),
             store.save_annotation(first, "ben", Annotation(person_present=True, gender="female"))]
    assert store.undo_save(saves[2], "ana") == first
    assert store.annotation(first, "ana") == Annotation(person_present=True)
    assert store.annotation(first, "ben") == Annotation(person_present=True, gender="female"), "others' labels stay"
    assert store.undo_save(saves[1], "ana") == second
    assert store.annotation(second, "ana") is None, "before its first save the image had no row"
    store.undo_save(saves[0], "ana")
    assert store.annotation(first, "ana") is None and store.count("annotations") == 1
    history = store.annotation_history()
    assert len(history) == 7, "every save and every undo is kept"
    assert history.iloc[-1][["person_present", "gender", "mst", "skin_binary", "confidence"]].isna().all()


def test_an_undo_after_an_undo_and_a_new_save_restores_the_undone_state(store):
    image_id = int(store.images().loc[0, "image_id"])
    first = store.save_annotation(image_id, "ana", Annotation(person_present=True))
    second = store.save_annotation(image_id, "ana", Annotation(person_present=True, gender="male"))
    store.undo_save(second, "ana")
    third = store.save_annotation(image_id, "ana", Annotation(person_present=True, gender="unclear"))
    store.undo_save(third, "ana")
    assert store.annotation(image_id, "ana") == Annotation(person_present=True)
    store.undo_save(first, "ana")
    assert store.annotation(image_id, "ana") is None


def test_only_a_raters_own_save_can_be_undone(store):
    event = store.save_annotation(1, "ana", Annotation(person_present=True))
    with pytest.raises(ValueError) as caught:
        store.undo_save(event, "ben")
    assert str(caught.value) == f"there is no save {event} by rater 'ben' to undo."
    assert store.annotation(1, "ana") == Annotation(person_present=True) and store.count("annotation_history") == 1


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"gender": "woman"}, "`gender` must be one of female, male, unclear but is 'woman'."),
        ({"mst": 11}, "`mst` must be a Monk Skin Tone from 1 to 10 but is 11."),
        ({"mst": 0}, "`mst` must be a Monk Skin Tone from 1 to 10 but is 0."),
        ({"skin_binary": "dark"}, "`skin_binary` must be one of lighter, darker, unclear but is 'dark'."),
        ({"confidence": "sure"}, "`confidence` must be one of low, medium, high but is 'sure'."),
        ({"person_present": False, "gender": "female"},
         "an image marked `person_present=False` cannot carry gender or skin-tone labels."),
    ],
)
def test_labels_outside_the_scheme_are_refused(labels, message):
    with pytest.raises(ValueError) as caught:
        Annotation(**labels)
    assert str(caught.value) == message


def test_bad_annotation_targets_leave_the_store_unchanged(store):
    with pytest.raises(ValueError, match="there is no image with id 999"):
        store.save_annotation(999, "ana", Annotation(person_present=True))
    with pytest.raises(ValueError, match="needs a rater's name"):
        store.save_annotation(1, "  ", Annotation(person_present=True))
    assert store.count("annotations") == 0 and store.count("annotation_history") == 0


def test_threads_sharing_one_store_lose_no_annotation(store):
    image_ids = [int(i) for i in store.images()["image_id"]]
    raters = [f"rater-{n}" for n in range(6)]
    errors = []

    def annotate(rater: str) -> None:
        try:
            for round_ in range(10):
                for image_id in image_ids:
                    store.save_annotation(image_id, rater, Annotation(person_present=True, mst=1 + round_ % 10))
        except Exception as error:  # collected so the test reports it
            errors.append(error)

    threads = [threading.Thread(target=annotate, args=(rater,)) for rater in raters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count("annotations") == len(raters) * len(image_ids)
    assert store.count("annotation_history") == len(raters) * len(image_ids) * 10
    assert set(store.annotations()["mst"]) == {10}


def test_values_go_in_as_parameters_not_sql(store):
    sneaky = "x'); DROP TABLE images; --"
    add_study_as_an_older_store_did(store, sneaky)
    store.add_run(make_run(run_key="run-b", study=sneaky, prompt=sneaky))
    assert store.run("run-b")["prompt"] == sneaky
    assert store.count("images") == 4
    assert store.study_names() == ["default", sneaky], "oldest first"


@pytest.mark.parametrize("name", ["../../escaped", "a/b", ".hidden", "-flag", "x" * 65, "tab\there"])
def test_a_new_study_needs_a_safe_name_but_an_old_one_still_opens(store, name):
    with pytest.raises(ValueError) as caught:
        store.ensure_study(name)
    assert str(caught.value) == STUDY_NAME.format(value=name)
    assert store.study_names() == ["default"]
    add_study_as_an_older_store_did(store, name)
    assert store.ensure_study(name) == store.ensure_study(name), "an existing study is found, not re-checked"


def test_study_names_and_modes_are_checked():
    with Store() as fresh:
        with pytest.raises(ValueError, match="a study needs a non-empty name but got ''"):
            fresh.ensure_study("")
        with pytest.raises(ValueError, match="`skin_tone_mode` must be one of mst, binary but is 'fitz'"):
            fresh.ensure_study("s", skin_tone_mode="fitz")
        assert fresh.ensure_study("s") == fresh.ensure_study("s")


def test_the_queue_gives_each_image_with_this_raters_saved_labels_only(store):
    first, second = (int(image_id) for image_id in store.images()["image_id"][:2])
    store.save_annotation(first, "ana", Annotation(person_present=True, gender="female", mst=8, confidence="low"))
    store.save_annotation(second, "ben", Annotation(person_present=False, confidence="high"))
    queue = store.annotation_queue("default", "ana", only_missing=False, shuffled=False)
    assert [image.seed for image in queue] == [0, 1, 2, 3]
    assert (queue[0].image_id, queue[0].path, queue[0].model, queue[0].prompt) == (
        first, "images/run-a/0.png", "demo", "a doctor sitting behind a desk")
    assert queue[0].saved == Annotation(person_present=True, gender="female", mst=8, confidence="low")
    assert [image.saved for image in queue[1:]] == [None, None, None], "ben's labels are not ana's"
    missing = store.annotation_queue("default", "ana", only_missing=True, shuffled=False)
    # ben's image has the study's one rating per image: it is not on ana's to-do list
    assert [image.image_id for image in missing] == [image.image_id for image in queue[2:]]
    shuffled = store.annotation_queue("default", "ana", only_missing=False, shuffled=True)
    assert sorted(image.image_id for image in shuffled) == sorted(image.image_id for image in queue)
    assert shuffled == store.annotation_queue("default", "ana", only_missing=False, shuffled=True), "stable per rater"


@pytest.mark.parametrize(
    "annotation",
    [
        None,
        Annotation(person_present=True, gender="unclear", mst=10, confidence="high"),
        Annotation(person_present=True, gender="male", skin_binary="darker"),
        Annotation(person_present=False, confidence="medium"),
        Annotation(gender="female"),
    ],
)
def test_a_saved_annotation_shows_as_the_radio_choices_that_save_it_again(annotation):
    from sdaudit.scheme import annotation_from_choices, choices_from_annotation

    choices = choices_from_annotation(annotation)
    assert annotation_from_choices(**choices) == (annotation or Annotation())


def test_image_paths_never_leave_the_data_home(tmp_path):
    from sdaudit.files.safe import is_regular

    home = tmp_path / "home"
    (home / "images" / "r").mkdir(parents=True)
    (home / "images" / "r" / "0.png").write_bytes(b"png")
    (tmp_path / "secret.txt").write_text("not yours")
    assert is_regular(home, "images/r/0.png")
    assert not is_regular(home, "../secret.txt")
    assert not is_regular(home, str(tmp_path / "secret.txt"))
    assert not is_regular(home, "images/r/1.png")
    assert not is_regular(home, "")
