"""A study's human sample from the command line (issue 25): `team --human-sample N [--seed K]` draws it
once (seeded, recorded), `team` shows it and how many of its images people have rated, and
`team --human-sample-sheet FILE` writes it as a sheet that people fill in outside the app and
`import-annotations --format sdaudit` reads back onto the sample's own images."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest
from helpers import assert_one_error_line, make_images, make_run, run_cli

from sdaudit.cli.team import NO_SAMPLE_FOR_SHEET, SEED_WITHOUT_SAMPLE, SHEET_EXISTS
from sdaudit.present.team_tables import SAMPLE_SHEET_COLUMNS
from sdaudit.scheme import Annotation
from sdaudit.store import Store
from sdaudit.store.machine import SAMPLE_EXISTS, SAMPLE_SIZE, MachineTables
from sdaudit.store.team import RATERS_TEXT

SETTINGS = ("study default: 1 rater per image; repeats: none; adjudicate when person present split; gender differs; "
            "MST spread 2 or more; lighter / darker differs; rater-group fields: none")


@pytest.fixture
def home(tmp_path):
    """Study "default": 600 generated images over three runs (as the issue's must-show has them)."""
    home = tmp_path / "home"
    with Store.open(home) as store:
        for run_key, prompt in (("doctors", "a doctor"), ("nurses", "a nurse"), ("ceos", "a ceo")):
            store.add_run(make_run(run_key, prompt=prompt))
            store.add_images(make_images(run_key, seeds=range(200)))
    return home


def cli(home, *args: str, check: bool = True):
    return run_cli("team", "--study", "default", "--home", str(home), *args, check=check)


def test_a_120_image_human_sample_is_drawn_once_labelled_on_a_sheet_and_imported_back(home, tmp_path):
    drawn = cli(home, "--human-sample", "120", "--seed", "1234").stdout
    assert drawn.splitlines() == [SETTINGS, "drew 120 of 600 generated images (seed 1234, inclusion probability 0.2); "
                                            "raters will be offered them first"]
    with Store.open(home) as store:
        sample = MachineTables(store).human_sample("default")
        ids = sorted(int(i) for i in store.images(study="default")["image_id"])
    assert sample.seed == 1234 and sample.image_ids == tuple(random.Random(1234).sample(ids, 120)), "the recorded draw"
    again = cli(home, "--human-sample", "50", check=False)
    assert_one_error_line(again)
    assert again.stderr == f"error: {SAMPLE_EXISTS.format(study='default', size=120, population=600, seed=1234)}\n"

    sheet = tmp_path / "sample.csv"
    written = cli(home, "--human-sample-sheet", str(sheet)).stdout
    assert f"wrote the human sample's 120 images to {sheet}" in written and "--format sdaudit" in written
    rows = pd.read_csv(sheet, dtype=str, keep_default_na=False)
    assert tuple(rows.columns) == SAMPLE_SHEET_COLUMNS
    assert [int(i) for i in rows["image_id"]] == list(sample.image_ids), "in draw order"
    assert set(rows["rater"]) == {""} and set(rows["gender"]) == {""}, "no answer filled in for anyone"
    # two people label the sheet outside the app: ana all of it, ben the first 30 images (the rest deleted)
    ana = rows.assign(rater="ana", person_present="true", gender=["female", "male"] * 60, mst="4", confidence="high")
    ben = rows.head(30).assign(rater="ben", person_present="true", gender="male", skin_binary="darker",
                               confidence="medium")
    pd.concat([ana, ben]).to_csv(sheet, index=False)
    imported = run_cli("import-annotations", str(sheet), "--study", "default", "--format", "sdaudit",
                       "--home", str(home), check=True).stdout
    assert "150 new" in imported and "without images" not in imported
    with Store.open(home) as store:
        labels = store.annotations(study="default")
    assert set(labels["image_id"]) == set(sample.image_ids) and not labels["external"].any()
    assert len(labels[labels["rater"] == "ana"]) == 120 and set(labels.loc[labels["rater"] == "ben", "skin_binary"]) == {
        "darker"}

    shown = cli(home).stdout
    assert shown.splitlines() == [SETTINGS, "human sample: 120 of 600 generated images (seed 1234, inclusion "
                                            "probability 0.2), offered to raters first; rated by people: 120 of 120"]
    two = json.loads(cli(home, "--raters-per-image", "2", "--json").stdout)["human_sample"]
    assert (two["size"], two["population"], two["rated"], two["complete"]) == (120, 600, 120, 30)
    assert two["inclusion_probability"] == 0.2 and two["image_ids"] == list(sample.image_ids)


def test_only_rated_images_count_and_the_json_says_when_none_was_drawn(home):
    assert json.loads(cli(home, "--json").stdout)["human_sample"] is None
    assert cli(home).stdout.strip() == SETTINGS, "no sample: the summary is the settings alone"
    drawn = json.loads(cli(home, "--human-sample", "10", "--json").stdout)["human_sample"]
    assert drawn["size"] == 10 and 0 <= drawn["seed"] < 2**31 and drawn["drawn_by"] is None
    first, second = drawn["image_ids"][:2]
    with Store.open(home) as store:
        store.save_annotation(first, "ana", Annotation(True, "female", 3, None, "high"))
        store.save_annotation(second, "ana", Annotation(True, "female", 3))  # no confidence: not yet a rating
    assert "rated by people: 1 of 10" in cli(home).stdout


@pytest.mark.parametrize(("args", "message"), [
    (("--human-sample", "601"), SAMPLE_SIZE.format(population=600, value=601)),
    (("--human-sample", "1"), SAMPLE_SIZE.format(population=600, value=1)),
    (("--human-sample", "5", "--seed", "-1"), "a human sample's seed must be a whole number from 0 to 2**63 - 1 "
                                              "but is -1."),
    (("--seed", "7"), SEED_WITHOUT_SAMPLE.format(value=7)),
    (("--human-sample-sheet", "SHEET"), NO_SAMPLE_FOR_SHEET.format(study="default")),
    (("--human-sample", "5", "--raters-per-image", "0"), RATERS_TEXT.format(most=50, value=0)),
])
def test_a_bad_draw_is_one_line_and_draws_nothing(home, tmp_path, args, message):
    args = tuple(str(tmp_path / "sheet.csv") if arg == "SHEET" else arg for arg in args)
    line = assert_one_error_line(cli(home, *args, check=False))
    assert message in line
    with Store.open(home) as store:
        assert MachineTables(store).human_sample("default") is None
    assert not (tmp_path / "sheet.csv").exists()


def test_the_sample_sheet_never_overwrites_a_file_that_may_hold_answers(home, tmp_path):
    cli(home, "--human-sample", "10", "--seed", "3")
    sheet = tmp_path / "filled.csv"
    sheet.write_text("draw_order,rater,gender\n1,alice,female\n")
    line = assert_one_error_line(cli(home, "--human-sample-sheet", str(sheet), check=False))
    assert line == f"error: {SHEET_EXISTS.format(path=sheet)}"
    assert sheet.read_text() == "draw_order,rater,gender\n1,alice,female\n", "people's answers kept"


@pytest.mark.parametrize(("column", "value", "message"), [
    ("run_key", "doctorz", "run 'doctorz' seed {seed} is not an image of study 'default'"),
    ("image_id", "9999", "is image {image_id} of study 'default', not '9999'"),
])
def test_a_sample_sheet_row_naming_another_image_is_refused_and_nothing_is_imported(home, tmp_path, column, value,
                                                                                   message):
    """A typo in a sample sheet's run key once became a new imported run of file-less images, and its
    image_id column was ignored: a row of a human sample's sheet labels one of the study's images, the
    one its run, seed and image id all name."""
    cli(home, "--human-sample", "10", "--seed", "3")
    sheet = tmp_path / "sample.csv"
    cli(home, "--human-sample-sheet", str(sheet))
    rows = pd.read_csv(sheet, dtype=str, keep_default_na=False)
    rows = rows.assign(rater="ana", person_present="true", gender="female", mst="4", confidence="high")
    expected = message.format(seed=rows.loc[3, "seed"], image_id=rows.loc[3, "image_id"])
    rows.loc[3, column] = value
    rows.to_csv(sheet, index=False)
    result = run_cli("import-annotations", str(sheet), "--study", "default", "--format", "sdaudit",
                     "--home", str(home), check=False)
    line = assert_one_error_line(result)
    assert f"sample.csv row 5, column {column}: " in line and expected in line
    with Store.open(home) as store:
        assert store.count("annotations") == 0 and len(store.runs()) == 3
