"""Hostile input in the app: a broken store, non-image files, user text built to become Markdown,
out-of-range form values. Each gets one clear message on the page and no traceback."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import add_study_as_an_older_store_did, open_page
from streamlit.testing.v1 import AppTest

from app.widgets import plain
from sdaudit.store import DAMAGED, NOT_DUCKDB, TOO_NEW, Store

PAGES = ("generate", "annotate", "results", "agreement", "team", "runs")


# -- a store that is not one ---------------------------------------------------------------------


def random_bytes(home: Path) -> str:
    home.mkdir(parents=True)
    (home / "sdaudit.duckdb").write_bytes(os.urandom(64 * 1024))
    return NOT_DUCKDB.format(path=home / "sdaudit.duckdb")


def newer_schema(home: Path) -> str:
    with Store.open(home) as store:
        store.db.write(lambda cursor: cursor.execute("UPDATE schema_info SET version = 99"))
    return TOO_NEW.format(path=home / "sdaudit.duckdb", found=99, known=Store(":memory:").schema_version)


def truncated(home: Path) -> str:
    with Store.open(home) as store:
        store.ensure_study("nurses")
    path = home / "sdaudit.duckdb"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # opens, but its tables cannot be read: the store says so
    return DAMAGED.format(path=path)


@pytest.mark.parametrize("damage", [random_bytes, newer_schema, truncated])
@pytest.mark.parametrize("name", PAGES)
def test_a_broken_store_gives_every_page_one_message(app_home, damage, name):


    expected = damage(app_home)
    before = (app_home / "sdaudit.duckdb").read_bytes()
    at = open_page(name, rater="ana")
    shown = [error.value for error in at.error]
    assert len(shown) == 1, shown
    assert shown == [plain(expected)]
    assert (app_home / "sdaudit.duckdb").read_bytes() == before, "the store file is left as it was"


# -- user text that would become Markdown ----------------------------------------------------------

URL = "http://localhost:18999/x"
DECIMAL_URL = "http://2130706433:18999/x"
STUDY = f"study {URL}"
PROMPT = f"a doctor\n===\n{DECIMAL_URL} www.evil.example :material/delete:"
MODEL = f"{URL}/model"
RATER = f"ana {URL}"
OTHER_RATER = f"ben {URL}"
FIELD = f"region {URL}"


def rendered(at: AppTest) -> list[str]:
    """Every piece of Markdown the page sent: headings, text, captions and alerts."""
    kinds = ("markdown", "caption", "info", "success", "warning", "error", "title", "subheader", "header")
    return [element.value for kind in kinds for element in at.get(kind)]


def assert_inert(texts: list[str]) -> None:
    for text in texts:
        for form in ("http://", "www.", ":material/delete:"):
            assert form not in text, f"{form!r} would render as a link or an icon in {text!r}"
        assert not any(line.lstrip().startswith("===") for line in text.splitlines()), f"a heading in {text!r}"


@pytest.fixture
def hostile_home(app_home):
    """Two runs (so Results compares them) of a hostile study, prompt and model, each annotated by
    a hostile rater, and a failed job whose error text is hostile too."""
    from helpers import make_images, make_run

    from sdaudit.generation.jobs import JobQueue
    from sdaudit.scheme import Annotation

    with Store.open(app_home) as store:
        add_study_as_an_older_store_did(store, STUDY)
        for run_key in ("run-a", "run-b"):
            store.add_run(replace(make_run(run_key, study=STUDY, prompt=f"{PROMPT} {run_key}"), model=MODEL))
            store.add_images(make_images(run_key, seeds=range(4)))
        for image_id, gender in zip(range(1, 9), ["female", "male"] * 4, strict=True):
            store.save_annotation(image_id, RATER, Annotation(person_present=True, gender=gender, mst=3,
                                                               confidence="high"))
        # a second hostile rater who disagrees on every image; both describe themselves in hostile words;
        # every disagreement adjudicated with a hostile note; one gold image
        from sdaudit.store.team import Team, TeamSettings

        for image_id, gender in zip(range(1, 9), ["male", "female"] * 4, strict=True):
            store.save_annotation(image_id, OTHER_RATER, Annotation(person_present=True, gender=gender, mst=3))
        team = Team(store)
        team.set_settings(STUDY, TeamSettings(raters_per_image=2, rater_fields=(FIELD,)))
        for rater, group in ((RATER, f"north {URL}"), (OTHER_RATER, f"south {URL}")):
            team.save_profile(STUDY, rater, {FIELD: group}, consented=True)
        for image_id in range(1, 9):
            team.adjudicate(STUDY, image_id, Annotation(person_present=True, gender="female", mst=3),
                            note=f"why\n===\n{URL}", by="admin")
        team.set_gold(STUDY, 1, Annotation(person_present=True, gender="female", mst=3))
        queue = JobQueue(store)
        job_id = queue.add("generate", {"model": MODEL, "prompt": PROMPT, "first_seed": 0, "last_seed": 3,
                                        "study": STUDY})
        queue.update(job_id, status="failed", error=f"could not load {MODEL}\n===\n{URL}", finished=True)
    return app_home


def hostile_page(name: str) -> AppTest:
    at = open_page(name, rater=RATER)
    next(box for box in at.selectbox if box.label == "Study").set_value(STUDY).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("name", PAGES)
def test_user_text_is_shown_as_text_on_every_page(hostile_home, name):
    at = hostile_page(name)
    if name == "annotate":
        next(radio for radio in at.radio if radio.label == "Show").set_value("All").run()
    if name == "results":
        next(box for box in at.selectbox if box.label == "Study").set_value(STUDY).run()
        next(toggle for toggle in at.toggle if toggle.label.startswith("Compare")).set_value(True).run()
        assert any(caption.value.startswith("Each run minus") for caption in at.caption), "the comparison is shown"
    texts = rendered(at)
    shown_somewhere = " ".join(texts + [str(frame.value.to_dict()) for frame in at.dataframe])
    assert "18999" in shown_somewhere, "the hostile text is on the page, as text"
    assert_inert(texts)


@pytest.mark.parametrize("text", [URL, DECIMAL_URL, "www.evil.example", "mail ana@evil.example", "a\n===",
                                  "a\r\n---", "line\u2028===", ":material/delete: :smile:", "<http://x.y>"])
def test_plain_breaks_autolinks_headings_and_shortcodes(text):


    shown = plain(text)
    assert_inert([shown])
    assert "\n" not in shown and "\r" not in shown and "\u2028" not in shown
    assert "a@" not in shown and ":smile:" not in shown
    visible = shown.replace("\u2060", "").replace("\\", "")
    assert visible.split() == text.split(), "the reader sees the same words"


# -- a file in the data home that is not an image --------------------------------------------------


def test_a_non_image_file_gets_a_placeholder_and_the_other_cards_still_show(app_home, tmp_path):
    from helpers import png, run_folder

    from sdaudit.files.gallery import CANNOT_SHOW
    from sdaudit.files.runfolder import ingest

    with Store.open(app_home) as store:
        ingest(run_folder(tmp_path / "run", {seed: png(seed) for seed in range(4)}), store, app_home)
    (app_home / "images" / "R" / "0.png").write_text("not a png at all")
    at = open_page("annotate", rater="ana")
    assert len([radio for radio in at.radio if radio.label == "Person"]) == 4, "every card is drawn"
    assert len(at.main.get("image")) == 3
    warnings = [warning.value for warning in at.warning]
    assert len(warnings) == 1 and warnings[0].startswith(plain(CANNOT_SHOW.format(reason="images/R/0.png is not")))


# -- out-of-range values in the Generate form ------------------------------------------------------


def test_out_of_range_form_values_get_one_message_per_field_and_queue_nothing(app_home):
    from sdaudit.generation.form import BATCH_COUNT
    from sdaudit.generation.spec import GUIDANCE, MAX_STEPS, SEED_BOUNDS, STEPS

    at = open_page("generate", rater="ana")
    for label, value in (("Steps", 5000), ("First seed", -1), ("Guidance", 51.0), ("Batch count", 0)):
        next(box for box in at.number_input if box.label == label).set_value(value)
    next(button for button in at.button if button.label == "Generate").click().run()
    assert not at.exception, at.exception
    expected = [SEED_BOUNDS.format(first=-1, last=-1), STEPS.format(max=MAX_STEPS, value=5000),
                GUIDANCE.format(value=51.0), BATCH_COUNT.format(value=0)]
    assert [error.value for error in at.error] == ["\n\n".join(plain(message) for message in expected)]
    assert [box.value for box in at.number_input if box.label == "Steps"] == [5000], "the field kept the input"
    with Store.open(app_home) as store:
        assert store.count("jobs") == 0


def test_a_seed_range_past_the_largest_seed_is_named(app_home, monkeypatch):
    from sdaudit.generation.spec import MAX_SEED, SEED_BOUNDS

    assert MAX_SEED == 2**53 - 1, "the largest seed a browser's number field holds exactly, as the CLI's"
    at = open_page("generate", rater="ana")
    next(box for box in at.number_input if box.label == "First seed").set_value(MAX_SEED)
    next(button for button in at.button if button.label == "Generate").click().run()
    assert [error.value for error in at.error] == [plain(SEED_BOUNDS.format(first=MAX_SEED, last=MAX_SEED + 3))]
    with Store.open(app_home) as store:
        assert store.count("jobs") == 0
