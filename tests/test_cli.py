"""`python -m sdaudit`, run as a user runs it: the issue's must-show sequence, exit codes, errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import add_annotated_run, assert_one_error_line
from PIL import Image

from sdaudit.cli.analysis import NO_STORE, NO_STUDY
from sdaudit.config import store_path
from sdaudit.store import LOCKED, Store

TINY = ["--prompt", "a doctor sitting behind a desk", "--steps", "5", "--height", "64", "--width", "64"]


@pytest.mark.slow  # over 5 s: several CLI processes, each loading torch
def test_the_must_show_sequence(cli, tiny_model, tmp_path):
    home, out = tmp_path / "h", tmp_path / "r"
    first = cli("generate", "--model", str(tiny_model), *TINY, "--seeds", "0-7", "--batch-size", "4",
                "--home", str(home), check=True)
    assert first.stdout.count("\n") == 1 and first.stdout.startswith("generated 8 images (0 already present)")
    assert len(list(home.glob("images/*/*.png"))) == 8
    with Store.open(home) as store:
        assert store.count("images") == 8
        run_key = store.runs().loc[0, "run_key"]

    again = cli("generate", "--model", str(tiny_model), *TINY, "--seeds", "0-7", "--batch-size", "4",
                "--home", str(home), check=True)
    assert again.stdout.startswith("generated 0 images (8 already present)")

    # the first batch again, into a run folder: the same batch company gives the same pixels
    folder = cli("generate", "--model", str(tiny_model), *TINY, "--seeds", "0-3", "--batch-size", "4",
                 "--out", str(out), check=True)
    assert "run folder" in folder.stdout and "holds 4 images" in folder.stdout
    for seed in range(4):
        in_home = np.asarray(Image.open(home / "images" / run_key / f"{seed}.png"))
        assert np.array_equal(in_home, np.asarray(Image.open(out / "images" / run_key / f"{seed}.png")))

    store_bytes = (home / "sdaudit.duckdb").read_bytes()
    bad = cli("generate", "--model", str(tiny_model), "--prompt", "x", "--seeds", "7-0", "--home", str(home))
    assert_one_error_line(bad, contains="7-0")
    assert (home / "sdaudit.duckdb").read_bytes() == store_bytes

    listed = cli("runs", "--home", str(home), check=True)
    assert run_key in listed.stdout and "a doctor sitting behind a desk" in listed.stdout

    ingested = cli("ingest", str(out), "--home", str(home), check=True)
    assert ingested.stdout.startswith(f"ingested {out}: 0 images added, 4 already present, 0 runs added; home ")
    fresh = cli("ingest", str(out), "--home", str(tmp_path / "fresh"), check=True)
    assert fresh.stdout.startswith(f"ingested {out}: 4 images added, 0 already present, 1 run added; home "), \
        "one run, not '1 runs'"


@pytest.mark.parametrize(
    ("args", "contains"),
    [
        (["generate", "--seeds", "0-3", "--steps", "abc"], "argument --steps: invalid int value: 'abc'"),
        (["generate", "--seeds", "0-3", "--height", "500"], "`height` and `width` have to be divisible by 8"),
        (["generate", "--seeds", "0-3", "--scheduler", "heun"], "argument --scheduler: invalid choice: 'heun'"),
        (["generate", "--seeds", "zero-three"], "`--seeds` must look like A-B"),
        (["generate", "--prompt", "x"], "the following arguments are required: --seeds"),
        (["generate", "--seeds", "0-1", "--prompt", ""], "`prompt` must be a non-empty text but is ''."),
        (["generate", "--seeds", "0-1", "--home", "a", "--out", "b"], "not allowed with argument --home"),
        (["paint"], "invalid choice: 'paint'"),
        (["ingest", "no-such-folder"], "there is no run folder at 'no-such-folder'."),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(cli, tmp_path, args, contains):
    result = cli(*args, cwd=tmp_path)
    assert_one_error_line(result, contains=contains)
    assert not (tmp_path / "sdaudit-data").exists(), "bad input must not create a store"


def test_a_model_that_cannot_be_loaded(cli, tmp_path):
    result = cli("generate", "--model", "nobody/no-such-model", "--seeds", "0-1", "--home", str(tmp_path / "h"),
                 cwd=tmp_path)
    line = assert_one_error_line(result, contains="could not load model 'nobody/no-such-model'")
    assert "demo" in line and "local diffusers folder" in line


def test_a_locked_store_says_what_to_do(cli, tiny_model, tmp_path):
    home = tmp_path / "h"
    Store.open(home).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, duckdb
            con = duckdb.connect({str(home / 'sdaudit.duckdb')!r})
            print("held", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        result = cli("generate", "--model", str(tiny_model), *TINY, "--seeds", "0-1", "--home", str(home))
        line = assert_one_error_line(result)
        assert line == "error: " + LOCKED.format(path=home / "sdaudit.duckdb")
        assert not (home / "images").exists()
    finally:
        holder.communicate("", timeout=30)


@pytest.mark.parametrize("command", [[], ["demo-model"], ["generate"], ["ingest"], ["runs"]])
def test_every_command_has_help(cli, command):
    result = cli(*command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m sdaudit")


def test_runs_on_an_empty_home_says_what_to_do(cli, tmp_path):
    result = cli("runs", "--home", str(tmp_path / "nothing"), check=True)
    assert result.stdout.startswith("no store at ") and "generate" in result.stdout
    assert not (tmp_path / "nothing").exists()


def test_runs_lists_each_runs_kind_and_the_name_every_face_gives_it(cli, tmp_path):
    from helpers import ORIGIN_SHEET, make_run

    from sdaudit.files.sheets import import_annotations

    with Store.open(tmp_path / "h") as store:
        store.add_run(make_run("run-a", study="s", prompt="a photo of a nurse"))
        import_annotations(ORIGIN_SHEET, store, study="s", rater="r1")
    lines = [line.strip() for line in cli("runs", "--home", str(tmp_path / "h"), check=True).stdout.splitlines()]
    assert lines[0].split()[:3] == ["run_key", "study", "kind"] and lines[0].split()[-1] == "run"
    generated = next(line for line in lines if line.startswith("run-a"))
    assert " generated " in generated and generated.endswith("a photo of a nurse · demo")
    imported = next(line for line in lines if line.startswith("external-"))
    assert " imported " in imported and imported.endswith("imported sheet origin_sheet.csv")
    assert "external" not in imported.split(maxsplit=1)[1], "the store's marker is not shown as a model"


def test_demo_model_refuses_a_non_empty_folder(cli, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    result = cli("demo-model", str(tmp_path / "busy"))
    assert_one_error_line(result, contains="must be new or empty")
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"


def _unet_weights(model) -> bytes:
    return (model / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()


@pytest.mark.slow  # over 5 s: several CLI processes, each loading torch
def test_the_demo_models_weights_have_their_own_seed_flag_and_the_old_one_still_works(
        cli, tiny_model, second_tiny_model, tmp_path):
    """`--weights-seed 1` builds what the old spelling `--seed 1` built (``second_tiny_model``), another
    model than the default; `--seed` still works but is no longer offered: "seed" means an image's seed."""
    cli("demo-model", str(tmp_path / "m"), "--weights-seed", "1", check=True)
    assert _unet_weights(tmp_path / "m") == _unet_weights(second_tiny_model) != _unet_weights(tiny_model)
    shown = cli("demo-model", "--help", check=True).stdout
    assert "--weights-seed" in shown and "--seed" not in shown
    bad = cli("demo-model", str(tmp_path / "n"), "--weights-seed", "-1")
    assert_one_error_line(bad, contains="argument --weights-seed: must be a whole number")
    assert not (tmp_path / "n").exists()


@pytest.mark.parametrize("command", [["team"], ["rater-groups", "--field", "region"], ["estimate"]])
def test_every_command_refuses_a_missing_store_or_study_in_the_same_words(cli, tmp_path, command):
    with Store.open(tmp_path / "h") as store:
        store.ensure_study("kept")
    missing = assert_one_error_line(cli(*command, "--study", "nope", "--home", str(tmp_path / "h")))
    assert missing == "error: " + NO_STUDY.format(study="nope", known="kept")
    nowhere = assert_one_error_line(cli(*command, "--study", "kept", "--home", str(tmp_path / "none")))
    assert nowhere == "error: " + NO_STORE.format(path=store_path(tmp_path / "none"))
    assert not (tmp_path / "none").exists()


@pytest.mark.slow  # over 5 s: several CLI processes, each loading torch
def test_the_demo_model_says_its_images_are_noise(cli, tmp_path):
    result = cli("generate", "--model", "demo", *TINY, "--seeds", "0-0", "--home", str(tmp_path / "h"), check=True)
    assert "demo model: random weights, the images are noise" in result.stdout
    assert (tmp_path / "h" / "models" / "demo" / "model_index.json").is_file()


def test_compare_prints_newcombe_intervals_against_the_reference(cli, tmp_path):
    """`compare --json` against statsmodels' independent Newcombe interval, 0/200 vs 0/30 included."""
    from statsmodels.stats.proportion import confint_proportions_2indep

    home = tmp_path / "h"
    counts = {"run-ref": (0, 200), "run-b": (0, 30), "run-c": (56, 70)}  # (female, images) per run
    with Store.open(home) as store:
        for key, (female, n) in counts.items():
            add_annotated_run(store, key, "three", {("female", 2): female, ("male", 2): n - female})
    result = cli("compare", "--study", "three", "--reference", "run-ref", "--json", "--home", str(home), check=True)
    rows = {(row["run"], row["group"]): row for row in json.loads(result.stdout)}
    assert {run for run, _ in rows} == {"run-b", "run-c"} and ("run-b", "unclear") not in rows
    for run in ("run-b", "run-c"):
        row = rows[(run, "female")]
        low, high = confint_proportions_2indep(*counts[run], *counts["run-ref"], method="newcomb", compare="diff")
        assert (row["low"], row["high"]) == pytest.approx((low, high), abs=1e-9)
        assert row["reference"] == "run-ref" and row["difference"] == pytest.approx(counts[run][0] / counts[run][1])
    assert rows[("run-b", "female")]["high"] > 0.05, "0/30 against 0/200 has an interval of some width"
    holm = json.loads(cli("compare", "--study", "three", "--reference", "run-ref", "--holm", "--json",
                          "--home", str(home), check=True).stdout)
    assert all(row["p_holm"] >= row["p_value"] for row in holm)
    bad = cli("compare", "--study", "three", "--reference", "run-x", "--home", str(home))
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "error: study 'three' has no run 'run-x'; its runs: run-ref (prompt run-ref · demo); "
        "run-b (prompt run-b · demo); run-c (prompt run-c · demo).")


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path):
    """`python -m sdaudit estimate ... | head -1`: the pipe closes before sdaudit writes."""
    from helpers import ORIGIN_SHEET, ROOT

    home = tmp_path / "h"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "sdaudit", "import-annotations", str(ORIGIN_SHEET), "--study", "origin",
                    "--rater", "r", "--home", str(home)], env=env, check=True, capture_output=True)
    reader = subprocess.Popen([sys.executable, "-m", "sdaudit", "estimate", "--study", "origin", "--json",
                               "--home", str(home)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader.stdout.close()  # the reader is gone before the first line is written
    assert reader.wait(timeout=300) == 0
    assert "Traceback" not in reader.stderr.read().decode()


def test_estimates_are_printed_in_the_words_the_app_uses(cli, tmp_path):
    from helpers import ORIGIN_SHEET

    home = tmp_path / "h"
    cli("import-annotations", str(ORIGIN_SHEET), "--study", "origin", "--rater", "r", "--home", str(home), check=True)
    text = cli("estimate", "--study", "origin", "--home", str(home), check=True).stdout
    assert "Skin tone (Monk scale)" in text and "darker, female-presenting" in text and "skin_tone" not in text
    darker = next(line for line in text.splitlines() if " darker " in line and "Skin tone" in line)
    assert "14 of 221" in darker and "3.5% – 10.4%" in darker and "excludes the target" in darker


# Words a table must never show a reader: a missing number, Python's null, an imported run's size, a
# lone thing in the plural.
UNREADABLE = re.compile(r"\bnan\b|\bNone\b|\b0x0\b|(?<![\d.,])1 (runs|images|raters|annotations|studies)\b")


def test_no_command_prints_nan_none_or_a_lone_plural(tmp_path, capsys):
    """Every analysis command's text on a study with two raters on two runs, a run nobody annotated and
    an imported sheet beside it, in-process (the parsing and printing are the CLI's own)."""
    from helpers import ORIGIN_SHEET, make_images, make_run, sheet

    from sdaudit.cli.commands import main

    home = tmp_path / "h"
    with Store.open(home) as store:
        for key, female in (("run-a", 3), ("run-b", 5)):
            add_annotated_run(store, key, "three", {("female", 2): female, ("male", 8): 8 - female})
            second = sheet({("female", 7): 4, ("male", 3): 4}, rater="r2")
            second["image_id"] = store.images(run_key=key)["image_id"].to_numpy()
            second["confidence"] = "high"
            store.save_annotations(second)
        store.add_run(make_run("run-c", study="three", prompt="a pilot"))
        store.add_images(make_images("run-c", seeds=range(3)))
        store.ensure_study("empty")
    targets = tmp_path / "targets.csv"
    targets.write_text("prompt,family,group,target,source\nprompt run-a,gender,female,0.4,a census\n")
    commands = [
        ["import-annotations", str(ORIGIN_SHEET), "--study", "three", "--rater", "origin"],
        ["import-targets", str(targets), "--study", "three"],
        ["runs"], ["team", "--study", "three"],
        *[["estimate", "--study", study, *more] for study in ("three", "empty")
          for more in ([], ["--by", "run"], ["--labels", "majority"], ["--method", "jackknife"])],
        ["compare", "--study", "three"], ["compare", "--study", "three", "--holm", "--reference", "run-b"],
        ["agreement", "--study", "three"], ["agreement", "--study", "empty"],
        ["export", "--study", "three", "--out", str(tmp_path / "out")],
        ["report", "--study", "three", "--out", str(tmp_path / "report.html")],
    ]
    for command in commands:
        status = main([*command, "--home", str(home)])
        said = capsys.readouterr()
        assert status == 0, (command, said.err)
        text = said.out + said.err
        assert not UNREADABLE.search(text), (command, UNREADABLE.search(text).group(0), text)
    by_run = (main(["estimate", "--study", "three", "--by", "run", "--home", str(home)]), capsys.readouterr().out)
    assert "prompt run-a · demo" in by_run[1] and "imported sheet origin_sheet.csv" in by_run[1]
    assert "run-a" not in by_run[1].replace("prompt run-a", ""), "runs are named, keys only in --json"
    assert "Images in group (raters' shares summed)" in by_run[1] and "40.0% (a census)" in by_run[1]
    assert by_run[1].endswith("left out, no annotations yet: a pilot · demo\n")
    main(["compare", "--study", "three", "--home", str(home)])
    compared = capsys.readouterr().out
    assert compared.startswith("each run minus the reference run “prompt run-a · demo”")
    assert "left out, no annotations yet: a pilot · demo" in compared
    assert "Share in the reference" in compared and "share_first" not in compared
    main(["agreement", "--study", "empty", "--home", str(home)])
    assert capsys.readouterr().out.startswith("nothing is annotated in study empty yet"), "not 'single rater'"


def test_odd_runs_keep_the_text_readable(tmp_path, capsys):
    """A one-image study says "1 image"; `runs` cuts a long prompt and keeps each run on one line; the
    default reference is the oldest annotated run compared, whatever order --runs names them in."""
    from helpers import make_images, make_run

    from sdaudit.cli.commands import main

    home = tmp_path / "h"
    long_prompt = "a doctor\tat a desk " + "very " * 60
    with Store.open(home) as store:
        add_annotated_run(store, "run-old", "s", {("female", 2): 1})
        add_annotated_run(store, "run-new", "s", {("male", 2): 1})
        store.add_run(make_run("run-long", study="s", prompt=long_prompt))
        store.add_images(make_images("run-long", seeds=range(1)))
    main(["estimate", "--study", "s", "--home", str(home)])
    assert capsys.readouterr().out.startswith("2 images with a person, one rater;")
    main(["runs", "--home", str(home)])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(len(line) < 260 for line in lines), [len(line) for line in lines]
    assert "\t" not in "".join(lines) and "a doctor at a desk very" in lines[-1 if "run-long" in lines[-1] else 1]
    for order in (["run-new", "run-old"], ["run-old", "run-new"]):
        main(["compare", "--study", "s", "--runs", *order, "--home", str(home)])
        assert capsys.readouterr().out.startswith("each run minus the reference run “prompt run-old · demo”")
    main(["compare", "--study", "s", "--runs", "run-new", "--home", str(home)])
    assert capsys.readouterr().out.startswith("each run minus the reference run “prompt run-old · demo”")
    assert main(["compare", "--study", "s", "--runs", "run-long", "--home", str(home)]) == 2
    assert capsys.readouterr().err.startswith("error: nothing to compare with the reference run “prompt run-old")
