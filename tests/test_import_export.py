"""Annotation sheets in and estimates out: the origin study's sheet, sdaudit's own format, exports."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import ORIGIN, ORIGIN_SHEET, make_images, make_run, sheet
from scipy.stats import binomtest

from sdaudit.analysis.estimate import estimate
from sdaudit.files.sheets import (
    DUPLICATE_ANNOTATION,
    DUPLICATE_IMAGE,
    ROW_WIDTH,
    SheetError,
    export_annotations,
    import_annotations,
)
from sdaudit.store import Store


@pytest.fixture
def store():
    with Store() as memory_store:
        yield memory_store


def test_the_origin_sheet_reproduces_the_published_shares(store):
    result = import_annotations(ORIGIN_SHEET, store, study="origin", rater="origin-rater")
    assert (result.rows, result.raters, result.external_images) == (221, ("origin-rater",), 221)
    shares = estimate(store.annotations(study="origin"))
    assert [round(100 * shares.share(f, g)) for f, g in
            [("gender", "female"), ("skin_tone", "darker"), ("intersection", "darker_female"),
             ("intersection", "darker_male")]] == [36, 6, 4, 3]
    low, high = estimate(store.annotations(study="origin"), method="jackknife").interval("intersection", "darker_male")
    assert (round(100 * low, 1), round(100 * high, 1)) == (0.6, 4.9)  # 6/221: p ± 1.96·√(p(1−p)/(n−1))
    names = store.annotations(study="origin")["source_name"]
    assert names.iloc[0] == "doctor_000.png"


def test_importing_the_same_sheet_twice_adds_no_images_and_says_nothing_was_new(store, tmp_path):
    first = import_annotations(ORIGIN_SHEET, store, study="origin", rater="origin-rater")
    again = import_annotations(ORIGIN_SHEET, store, study="origin", rater="origin-rater")
    assert (first.new, first.unchanged, first.runs_added) == (221, 0, 1)
    assert (again.new, again.changed, again.unchanged, again.runs_added) == (0, 0, 221, 0)
    assert again.summary == ("imported into study origin: 0 new, 221 unchanged of 221 annotations by origin-rater "
                             "(221 without images in the store)")
    assert store.count("images") == 221 and store.count("annotations") == 221
    assert store.count("annotation_history") == 221, "an unchanged annotation is not saved again"


def test_a_reimported_export_with_one_edit_saves_that_one_only(store, tmp_path):
    store.add_run(make_run(study="mine"))
    store.add_images(make_images())
    rows = "run-a,0,ana,true,female,7,,high\nrun-a,1,ana,true,male,3,,high\nrun-a,1,ben,false,,,,low\n"
    first = import_annotations(write(tmp_path, SDAUDIT_HEADER + rows), store, study="mine", sheet_format="sdaudit")
    again = import_annotations(write(tmp_path, SDAUDIT_HEADER + rows), store, study="mine", sheet_format="sdaudit")
    edited = import_annotations(write(tmp_path, SDAUDIT_HEADER + rows.replace("female,7", "female,8")), store,
                                study="mine", sheet_format="sdaudit")
    assert [(r.new, r.changed, r.unchanged) for r in (first, again, edited)] == [(3, 0, 0), (0, 0, 3), (0, 1, 2)]
    assert again.summary == "imported into study mine: 0 new, 3 unchanged of 3 annotations by ana, ben"
    assert edited.summary == "imported into study mine: 0 new, 1 changed, 2 unchanged of 3 annotations by ana, ben"
    assert store.count("annotation_history") == 4, "the edit is kept in the history, the unchanged rows once"
    assert list(store.annotations(study="mine").sort_values(["seed", "rater"])["mst"].astype(float).fillna(0)) == \
        [8, 3, 0]


def write(tmp_path: Path, text: str, name: str = "sheet.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("male_presenting,female_presenting,monk_binary,confidence\n1,0,0,high\n0,1,2,high\n",
         "sheet.csv row 3, column monk_binary: expected 0 or 1 but found '2'"),
        ("male_presenting,female_presenting,monk_binary,confidence\n1,0,0,high\n1,1,0,low\n",
         "sheet.csv row 3, column female_presenting: both male_presenting and female_presenting are 1"),
        ("male_presenting,female_presenting,monk_binary,confidence\nyes,0,0,high\n",
         "sheet.csv row 2, column male_presenting: expected 0 or 1 but found 'yes'"),
        ("male_presenting,female_presenting,monk_binary,confidence\n1,0,0,sure\n",
         "sheet.csv row 2, column confidence: expected low, medium, high (or 1, 2, 3) but found 'sure'"),
        ("male,female_presenting,monk_binary,confidence\n1,0,0,high\n",
         "sheet.csv lacks the column(s) male_presenting; it has male, female_presenting, monk_binary, confidence."),
        ("male_presenting,female_presenting,monk_binary,confidence\n", "sheet.csv has no rows to import."),
    ],
)
def test_a_malformed_sheet_is_refused_whole_and_writes_nothing(store, tmp_path, body, message):
    with pytest.raises(SheetError) as caught:
        import_annotations(write(tmp_path, body), store, study="s", rater="r")
    assert str(caught.value) == message
    for table in ("studies", "runs", "images", "annotations", "annotation_history"):
        assert store.count(table) == 0


SDAUDIT_HEADER = "run_key,seed,rater,person_present,gender,mst,skin_binary,confidence\n"


@pytest.mark.parametrize(
    ("body", "sheet_format", "message"),
    [
        # the first and third rows label one image for one rater: which would be current, which history?
        (SDAUDIT_HEADER + "run-a,0,ana,true,female,3,,high\nrun-a,1,ana,true,male,3,,\nrun-a,0,ana,true,male,8,,low\n",
         "sdaudit", DUPLICATE_ANNOTATION.format(name="sheet.csv", first=2, second=4, run_key="run-a", seed=0, rater="ana")),
        # two raters on one image is fine; the same rater twice on the second image is not
        (SDAUDIT_HEADER + "run-a,0,ana,true,,,,\nrun-a,0,ben,true,,,,\nrun-a,1,ben,false,,,,\nrun-a,1,ben,true,,,,\n",
         "sdaudit", DUPLICATE_ANNOTATION.format(name="sheet.csv", first=4, second=5, run_key="run-a", seed=1, rater="ben")),
        ("image,male_presenting,female_presenting,monk_binary,confidence\nx.png,1,0,0,high\ny.png,0,1,0,high\n"
         "y.png,1,0,1,low\n", "origin", DUPLICATE_IMAGE.format(name="sheet.csv", first=3, second=4, image="y.png")),
        ("male_presenting,female_presenting,monk_binary,confidence\n1,0,0,high,1\n", "origin",
         ROW_WIDTH.format(name="sheet.csv", row=2, fields=5, header=4)),
    ],
)
def test_a_sheet_that_labels_one_image_twice_is_refused_before_writing(store, tmp_path, body, sheet_format, message):
    store.add_run(make_run())
    store.add_images(make_images())
    before = {table: store.count(table) for table in ("studies", "runs", "images", "annotations", "annotation_history")}
    with pytest.raises(SheetError) as caught:
        import_annotations(write(tmp_path, body), store, study="default",
                           rater="r" if sheet_format == "origin" else None, sheet_format=sheet_format)
    assert str(caught.value) == message
    assert before == {table: store.count(table) for table in before}


def test_the_origin_format_needs_a_rater(store):
    with pytest.raises(SheetError, match="needs the rater's name"):
        import_annotations(ORIGIN_SHEET, store, study="origin", rater=None)


def test_the_origin_studys_format_is_named_origin_and_is_the_default(store):
    """"seed" means the random seed only: the origin study's sheet format is called ``origin``."""
    from sdaudit.cli.commands import build_parser

    args = build_parser().parse_args(["import-annotations", "sheet.csv", "--study", "s"])
    assert args.sheet_format == "origin"
    with pytest.raises(SheetError) as caught:
        import_annotations(ORIGIN_SHEET, store, study="s", rater="r", sheet_format="seed")
    assert str(caught.value) == "`format` must be one of origin, sdaudit but is 'seed'."


def test_sdaudit_export_round_trips(store, tmp_path):
    import_annotations(ORIGIN_SHEET, store, study="origin", rater="origin-rater")
    csv_path, parquet_path = export_annotations(store, "origin", tmp_path / "out")
    assert len(pd.read_parquet(parquet_path)) == 221
    with Store() as other:
        result = import_annotations(csv_path, other, study="copy", sheet_format="sdaudit")
        assert result.rows == 221
        before = estimate(store.annotations(study="origin")).table
        after = estimate(other.annotations(study="copy")).table
        pd.testing.assert_frame_equal(before, after)


def test_sdaudit_rows_attach_to_images_in_the_store(store, tmp_path):
    store.add_run(make_run(study="mine"))
    store.add_images(make_images())
    sheet = write(tmp_path, "run_key,seed,rater,person_present,gender,mst,skin_binary,confidence\n"
                            "run-a,2,ana,true,female,7,,high\nrun-x,0,ana,false,,,,\n")
    result = import_annotations(sheet, store, study="mine", sheet_format="sdaudit")
    assert (result.rows, result.external_images) == (2, 1)
    rows = store.annotations(study="mine").set_index("seed")
    attached = rows[~rows["external"]]
    assert list(attached.index) == [2] and attached.loc[2, "mst"] == 7


def test_sdaudit_rows_are_checked_against_the_scheme(store, tmp_path):
    sheet = write(tmp_path, "run_key,seed,rater,person_present,gender,mst,skin_binary,confidence\n"
                            "run-a,0,ana,true,female,12,,high\n")
    with pytest.raises(SheetError) as caught:
        import_annotations(sheet, store, study="s", sheet_format="sdaudit")
    assert str(caught.value) == "sheet.csv row 2, column mst: `mst` must be a Monk Skin Tone from 1 to 10 but is 12."
    assert store.count("annotations") == 0


def test_cli_import_then_estimate_json_prints_the_origin_study(cli, tmp_path):
    home = tmp_path / "h"
    imported = cli("import-annotations", str(ORIGIN_SHEET), "--study", "origin", "--rater", "origin-rater",
                   "--home", str(home), check=True)
    assert imported.stdout.startswith("imported into study origin: 221 new, 0 unchanged of 221 annotations by "
                                      "origin-rater (221 without images in the store); 1 run added; home ")
    result = cli("estimate", "--study", "origin", "--json", "--home", str(home), check=True)
    rows = {(row["family"], row["group"]): row for row in json.loads(result.stdout)}
    assert round(100 * rows[("gender", "female")]["share"]) == 36
    assert round(100 * rows[("intersection", "darker_male")]["share"]) == 3
    # the default is Clopper–Pearson (one rater): scipy's exact interval, and the origin study's
    # main finding: every darker group's interval excludes parity
    for (family, group), count in {("skin_tone", "darker"): 14, ("intersection", "darker_female"): 8,
                                   ("intersection", "darker_male"): 6, ("gender", "female"): 80}.items():
        row = rows[(family, group)]
        exact = binomtest(count, 221).proportion_ci(confidence_level=0.95, method="exact")
        assert (row["low"], row["high"]) == pytest.approx((exact.low, exact.high), abs=1e-12)
        assert row["excludes_target"] is True and row["method"] == "clopper-pearson" and row["n_eff"] == 221
    assert rows[("intersection", "darker_female")]["reliable"] is False  # NCHS: over 130% of the share wide
    jackknife = cli("estimate", "--study", "origin", "--json", "--method", "jackknife", "--home", str(home), check=True)
    unclear = next(row for row in json.loads(jackknife.stdout) if row["family"] == "gender" and row["group"] == "unclear")
    assert unclear["low"] is None, "NaN becomes null in JSON"

    report = cli("report", "--study", "origin", "--out", str(tmp_path / "r.html"), "--home", str(home), check=True)
    assert "wrote the report" in report.stdout
    exported = cli("export", "--study", "origin", "--out", str(tmp_path / "x"), "--home", str(home), check=True)
    assert len(list((tmp_path / "x").iterdir())) == 4 and "origin-estimates.csv" in exported.stdout


@pytest.mark.parametrize(
    ("args", "contains"),
    [
        (["estimate", "--study", "nope"], "there is no study 'nope' in the store; studies: origin."),
        (["estimate", "--study", "origin", "--confidence", "2"], "`confidence` must be a number strictly between 0 and 1"),
        (["estimate", "--study", "origin", "--method", "wald"], "argument --method: invalid choice: 'wald'"),
        (["import-annotations", "missing.csv", "--study", "s", "--rater", "r"], "there is no annotation sheet at"),
    ],
)
def test_cli_bad_input_is_one_line(cli, tmp_path, args, contains):
    home = tmp_path / "h"
    cli("import-annotations", str(ORIGIN_SHEET), "--study", "origin", "--rater", "origin-rater", "--home", str(home),
        check=True)
    result = cli(*args, "--home", str(home), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and contains in lines[0]


def test_estimate_without_a_store_says_so(cli, tmp_path):
    result = cli("estimate", "--study", "x", "--home", str(tmp_path / "none"))
    assert result.returncode == 2 and "there is no store at" in result.stderr
    assert not (tmp_path / "none").exists()




def test_a_three_rater_export_round_trips_into_an_empty_home_as_the_same_images(store, tmp_path):
    """Rows naming the same (run_key, seed) are one image whatever the number of raters: an export
    of 221 images × 3 raters comes back as 221 images, with every estimate and error unchanged."""
    store.add_run(make_run(study="team"))
    store.add_images(make_images(seeds=range(221)))
    ids = store.images()["image_id"].to_numpy()
    rng = np.random.default_rng(5)
    for rater in ("ana", "ben", "cai"):
        rows = sheet(ORIGIN, rater=rater)
        rows["image_id"] = ids
        flip = rng.random(221) < 0.1  # each rater disagrees on about a tenth of the images
        rows.loc[flip, "mst"] = 11 - rows.loc[flip, "mst"]
        rows["confidence"] = "high"
        store.save_annotations(rows)
    csv_path, _ = export_annotations(store, "team", tmp_path / "out")
    with Store() as empty:  # a home without the images: every row hangs on an external image
        result = import_annotations(csv_path, empty, study="team", sheet_format="sdaudit")
        assert (result.rows, result.external_images) == (663, 663)
        assert empty.count("images") == 221, "one image per (run, seed), not one per row"
        for method in ("clopper-pearson", "jackknife"):
            before = estimate(store.annotations(study="team"), method=method).table
            after = estimate(empty.annotations(study="team"), method=method).table
            pd.testing.assert_frame_equal(before, after)


# -- a study of several runs: out and back in, each run as it was ---------------------------------


def run_cli_here(capsys, *args: str) -> str:
    """`python -m sdaudit ARGS` in this process (``cli.commands.main``); its output, failing on an error."""
    from sdaudit.cli.commands import main

    code = main(list(args))
    said = capsys.readouterr()
    assert code == 0, said.err
    return said.out


def three_run_study(home: Path, study: str = "occupations") -> list[str]:
    """A study of three runs (other prompts; the second from a prompt set's slot), each of 24 images
    annotated by two raters who disagree now and then; the runs' keys, oldest first."""
    rng = np.random.default_rng(11)
    keys = ["run-doctor", "run-nurse", "run-pilot"]
    with Store.open(home) as store:
        for number, key in enumerate(keys):
            run = make_run(run_key=key, study=study, prompt=f"a photo of a {key[4:]}")
            store.add_run(replace(run, slot="nurse") if number == 1 else run)
            store.add_images(make_images(run_key=key, seeds=range(24)))
            ids = store.images(run_key=key)["image_id"].to_numpy()
            female = rng.random(24) < (0.2, 0.8, 0.1)[number]
            tone = rng.integers(1, 11, 24)
            for rater in ("ana", "ben"):
                flip = rng.random(24) < 0.15
                store.save_annotations(pd.DataFrame({
                    "image_id": ids, "rater": rater, "person_present": True,
                    "gender": np.where(female ^ flip, "female", "male"), "mst": tone,
                    "skin_binary": None, "confidence": "high"}))
    return keys


def by_run_and_compare(capsys, home: Path, study: str) -> list[str]:
    outputs = []
    for command in (["estimate", "--by", "run"], ["estimate", "--by", "run", "--json"], ["compare"],
                    ["compare", "--json"]):
        outputs.append(run_cli_here(capsys, *command, "--study", study, "--home", str(home)))
    return outputs


def test_a_study_of_three_runs_round_trips_into_a_new_study_elsewhere(capsys, tmp_path):
    """Issue 22 item 8: export → import collapsed a study's runs into one (`estimate --by run` went
    from 3 runs to 1, `compare` failed). Each run now travels with its key and settings."""
    keys = three_run_study(tmp_path / "a")
    run_cli_here(capsys, "export", "--study", "occupations", "--out", str(tmp_path / "out"), "--home", str(tmp_path / "a"))
    sheet_path = tmp_path / "out" / "occupations-annotations.csv"
    said = run_cli_here(capsys, "import-annotations", str(sheet_path), "--study", "copied", "--format", "sdaudit",
                        "--home", str(tmp_path / "b"))
    assert said.startswith("imported into study copied: 144 new, 0 unchanged of 144 annotations by ana, ben "
                           "(144 without images in the store); 3 runs added; home ")
    before = by_run_and_compare(capsys, tmp_path / "a", "occupations")
    after = by_run_and_compare(capsys, tmp_path / "b", "copied")
    for old, new in zip(before, after):
        assert new == old.replace("study occupations", "study copied")
    assert list(dict.fromkeys(row["run_key"] for row in json.loads(after[1]))) == keys, "three runs, oldest first"
    assert {row["run"] for row in json.loads(after[3])} == set(keys[1:]), "each run against the oldest"
    with Store.open(tmp_path / "b") as copy, Store.open(tmp_path / "a") as origin:
        settings = ["run_key", "model", "model_revision", "pipeline_class", "prompt", "negative_prompt", "scheduler",
                    "steps", "guidance", "width", "height", "dtype", "device", "batch_size", "safety_checker",
                    "versions", "slot", "kind", "created_at", "images"]
        pd.testing.assert_frame_equal(copy.runs()[settings], origin.runs()[settings])
        assert copy.images()["external"].all(), "the images' files did not travel: none is claimed"
    again = run_cli_here(capsys, "import-annotations", str(sheet_path), "--study", "copied", "--format", "sdaudit",
                         "--home", str(tmp_path / "b"))
    assert again.startswith("imported into study copied: 0 new, 144 unchanged of 144 annotations by ana, ben; home ")


def test_a_study_of_three_runs_copied_in_its_own_home_keeps_three_runs(capsys, tmp_path):
    """In the same home the runs' keys are taken (a key is the store's, across studies): the copy's
    runs get keys of their own, one for one, and read the same under them."""
    home = tmp_path / "h"
    keys = three_run_study(home)
    run_cli_here(capsys, "export", "--study", "occupations", "--out", str(tmp_path / "out"), "--home", str(home))
    run_cli_here(capsys, "import-annotations", str(tmp_path / "out" / "occupations-annotations.csv"), "--study",
                 "copied", "--format", "sdaudit", "--home", str(home))
    with Store.open(home) as store:
        copied = store.runs(study="copied").iloc[::-1]
        assert store.count("runs") == 6 and not set(copied["run_key"]) & set(keys)
        new_keys = dict(zip(keys, copied["run_key"]))
        assert list(copied["prompt"]) == [f"a photo of a {key[4:]}" for key in keys]
    before = by_run_and_compare(capsys, home, "occupations")
    after = by_run_and_compare(capsys, home, "copied")
    for old, new in zip(before[1::2], after[1::2]):  # --json: the text's columns are as wide as the keys
        for key, new_key in new_keys.items():
            old = old.replace(f'"{key}"', f'"{new_key}"')
        assert new == old
    for study in ("copied", "occupations"):  # the copy's runs are found again under their keys, and so are the origin's
        again = run_cli_here(capsys, "import-annotations", str(tmp_path / "out" / "occupations-annotations.csv"),
                             "--study", study, "--format", "sdaudit", "--home", str(home))
        assert again.startswith(f"imported into study {study}: 0 new, 144 unchanged of 144 annotations by ana, ben; ")
    with Store.open(home) as store:
        assert store.count("runs") == 6 and store.count("images") == 144


RUN_ROW = ("run-a,0,ana,true,female,3,,high,generated,demo,local-0,StableDiffusionPipeline,a doctor,,,pndm,5,7.5,64,64,"
           "float32,cpu,4,False,\"{\"\"torch\"\": \"\"x\"\"}\",2026-03-01 14:05:00+00:00\n")
RUN_HEADER = SDAUDIT_HEADER.strip() + ",run_kind,model,model_revision,pipeline_class,prompt,negative_prompt,slot," \
    "scheduler,steps,guidance,width,height,dtype,device,batch_size,safety_checker,versions,run_created_at\n"


@pytest.mark.parametrize(
    ("second_row", "message"),
    [
        (RUN_ROW.replace("run-a,0,ana", "run-a,1,ana").replace(",5,7.5,", ",five,7.5,"),
         "sheet.csv row 3, column steps: expected a whole number from 0 to 1000 but found 'five'"),
        (RUN_ROW.replace("run-a,0,ana", "run-b,0,ana").replace(",generated,", ",painted,"),
         "sheet.csv row 3, column run_kind: expected one of generated, imported, reference but found 'painted'"),
        (RUN_ROW.replace("run-a,0,ana", "run-b,0,ana").replace(",7.5,", ",inf,"),
         "sheet.csv row 3, column guidance: expected a number from 0 to 50 but found 'inf'"),
        (RUN_ROW.replace("run-a,0,ana", "run-b,0,ana").replace("\"{\"\"torch\"\": \"\"x\"\"}\"", "torch=x"),
         "sheet.csv row 3, column versions: expected a JSON object of texts (like {\"torch\": \"2.5.1\"}) but found "
         "'torch=x'"),
        (RUN_ROW.replace("run-a,0,ana", "run-b,0,ana").replace("14:05:00+00:00", "14:05"),
         "sheet.csv row 3, column run_created_at: expected a date and time with its offset (like 2026-03-01 "
         "14:05:00+00:00) but found '2026-03-01 14:05'"),
        (RUN_ROW.replace("run-a,0,ana", "run-b,0,ana").replace(",False,", ",maybe,"),
         "sheet.csv row 3, column safety_checker: expected true or false but found 'maybe'"),
        (RUN_ROW.replace("run-a,0,ana", "../x,0,ana"),
         "sheet.csv row 3, column run_key: expected a run key of 1 to 64 letters, digits, '-', '_' or '.' but found "
         "'../x'"),
        (RUN_ROW.replace("run-a,0,ana", "run-a,1,ana").replace("a doctor", "a nurse"),
         "sheet.csv rows 2 and 3 give run run-a two prompt values ('a doctor' and 'a nurse'); one run has one set "
         "of settings."),
        (RUN_ROW.replace("run-a,0,ana", "run-b,0,ana").replace(",5,7.5,64,64,", ",0,7.5,64,64,"),
         "sheet.csv row 3, column steps: a generated run takes 1 step or more but found 0"),
        (RUN_ROW.replace("run-a,0,ana", "run-b,0,ana").replace(",7.5,64,64,", ",7.5,0,64,"),
         "sheet.csv row 3, column width: a generated image's width is a multiple of 8 from 8 up but found 0"),
        (RUN_ROW.replace("run-a,0,ana", "run-b,0,ana").replace("a doctor", "a \\u0000doctor"),
         "sheet.csv row 3, column prompt: a run's text holds no NUL character, but this one does"),
        (RUN_ROW.replace("run-a,0,ana", "run-b,0,ana").replace("2026-03-01 14:05:00+00:00", "9999-12-31 23:59:59+14:00"),
         "sheet.csv row 3, column run_created_at: expected a time that has passed but found '9999-12-31 23:59:59+14:00'"),
    ],
)
def test_a_bad_run_cell_refuses_the_whole_sheet_and_writes_nothing(store, tmp_path, second_row, message):
    with pytest.raises(SheetError) as caught:
        import_annotations(write(tmp_path, RUN_HEADER + RUN_ROW + second_row), store, study="s", sheet_format="sdaudit")
    assert str(caught.value) == message
    for table in ("studies", "runs", "images", "annotations", "annotation_history"):
        assert store.count(table) == 0


def test_a_sheet_with_some_run_columns_is_refused(store, tmp_path):
    body = SDAUDIT_HEADER.strip() + ",model,prompt\nrun-a,0,ana,true,female,3,,high,demo,a doctor\n"
    with pytest.raises(SheetError) as caught:
        import_annotations(write(tmp_path, body), store, study="s", sheet_format="sdaudit")
    assert str(caught.value).startswith("sheet.csv has the run column(s) model, prompt but lacks run_kind, "
                                        "model_revision, pipeline_class, negative_prompt, slot, scheduler,")
    assert store.count("runs") == 0


def test_a_rater_name_with_the_sdaudit_format_is_refused_in_a_sentence(capsys, tmp_path):
    """Issue 23 item 7: `--rater zed` was ignored silently with `--format sdaudit`."""
    from sdaudit.cli.commands import main

    sheet_path = write(tmp_path, RUN_HEADER + RUN_ROW)
    code = main(["import-annotations", str(sheet_path), "--study", "s", "--format", "sdaudit", "--rater", "zed",
                 "--home", str(tmp_path / "h")])
    said = capsys.readouterr()
    assert code == 2 and said.out == ""
    assert said.err == ("error: an sdaudit export names its raters in its rater column, so it takes no rater's name "
                        "(--rater) but was given 'zed'.\n")
    assert not (tmp_path / "h").exists()


def test_the_parquet_copy_of_an_export_is_refused_with_the_csv_named(capsys, tmp_path):
    """It was refused as "not UTF-8 text", which says nothing of the CSV beside it."""
    from sdaudit.cli.commands import main

    parquet = tmp_path / "s-annotations.parquet"
    pd.DataFrame({"rater": ["ana"]}).to_parquet(parquet)
    code = main(["import-annotations", str(parquet), "--study", "s", "--format", "sdaudit", "--home", str(tmp_path / "h")])
    assert code == 2 and capsys.readouterr().err == (
        "error: s-annotations.parquet is the Parquet copy of an export, for analysis tools; import the CSV written "
        "beside it (s-annotations.csv).\n")
    assert not (tmp_path / "h").exists()


def test_a_runs_texts_come_back_exactly_whatever_they_hold(store, tmp_path):
    """The CSV reader refuses control characters, and a prompt may hold them (or backslashes that look
    like an escape): the export escapes them in its CSV and the import reads them back as they were."""
    prompt = "a \x1b]0;x\x07doctor\nat a desk, C:\\temp \\u0041 \\\\ é"
    store.add_run(replace(make_run(study="s", prompt=prompt), negative_prompt="blurry\tugly", slot="doc\\tor"))
    store.add_images(make_images(seeds=[0]))
    store.save_annotations(pd.DataFrame({"image_id": [int(store.images()["image_id"][0])], "rater": ["ana"],
                                         "person_present": [True], "gender": ["female"], "mst": [4],
                                         "skin_binary": [None], "confidence": ["high"]}))
    csv_path, _ = export_annotations(store, "s", tmp_path / "out")
    assert "\x1b" not in csv_path.read_text() and "C:\\\\temp" in csv_path.read_text()
    with Store() as other:
        import_annotations(csv_path, other, study="s", sheet_format="sdaudit")
        run = other.run("run-a")
        assert (run["prompt"], run["negative_prompt"], run["slot"]) == (prompt, "blurry\tugly", "doc\\tor")


def test_a_reimport_that_contradicts_the_stored_run_or_adds_a_seed_is_refused(store, tmp_path):
    """A hand-edited export imported again: a run's settings that differ from the run the store holds,
    or a seed the run does not have (an image without a file that generating again would pass over)."""
    import_annotations(write(tmp_path, RUN_HEADER + RUN_ROW), store, study="s", sheet_format="sdaudit")
    before = {table: store.count(table) for table in ("runs", "images", "annotations", "annotation_history")}
    cases = {
        RUN_ROW.replace(",5,7.5,", ",9,7.5,"):
            "sheet.csv gives run run-a steps 9, but the store's run run-a has 5; an export imported again must give "
            "its runs' settings as they are (nothing was imported).",
        RUN_ROW.replace("run-a,0,ana", "run-a,99,ana"):
            "sheet.csv row 2 names seed 99 of run run-a, which the store holds without that image; an export names "
            "only its runs' images (nothing was imported).",
    }
    for row, message in cases.items():
        with pytest.raises(SheetError) as caught:
            import_annotations(write(tmp_path, RUN_HEADER + row), store, study="s", sheet_format="sdaudit")
        assert str(caught.value) == message
        assert {table: store.count(table) for table in before} == before
    again = import_annotations(write(tmp_path, RUN_HEADER + RUN_ROW), store, study="s", sheet_format="sdaudit")
    assert (again.new, again.unchanged) == (0, 1), "the export as written still imports"
