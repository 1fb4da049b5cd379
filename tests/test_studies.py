"""Studies beyond one prompt: prompt sets × several models in one command, reference sets of real
images, and targets from data — run through `python -m sdaudit` as a user runs it."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from test_cli import assert_one_error_line

from sdaudit.promptsets import DUPLICATE, TEMPLATE, PromptSet, parse_values
from sdaudit.store import Store

TINY = ["--steps", "2", "--height", "64", "--width", "64", "--batch-size", "4"]
OCCUPATIONS = ["doctor", "nurse", "CEO"]


def test_a_prompt_set_with_two_models_makes_one_run_per_prompt_and_model(cli, tiny_model, second_tiny_model, tmp_path):
    home, values = tmp_path / "home", tmp_path / "occupations.txt"
    values.write_text("doctor\n\nnurse\nCEO\n")
    command = ["generate", "--prompt-template", "a photo of a {}", "--prompt-list", str(values),
               "--model", str(tiny_model), "--model", str(second_tiny_model), "--seeds", "0-3", *TINY,
               "--home", str(home)]
    first = cli(*command, check=True)
    assert first.stdout.count("\n") == 1
    assert first.stdout.startswith("generated 24 images") and "6 of 6 runs" in first.stdout
    with Store.open(home) as store:
        runs = store.runs()
        images = store.images()
    assert len(runs) == 6
    assert Counter(zip(runs["model"], runs["slot"])) == Counter(
        (str(model), value) for model in (tiny_model, second_tiny_model) for value in OCCUPATIONS)
    assert set(runs["prompt"]) == {f"a photo of a {value}" for value in OCCUPATIONS}
    for run_key, seeds in images.groupby("run_key")["seed"]:
        assert sorted(seeds) == [0, 1, 2, 3], run_key
    # different weights, different pixels: the two models' runs are not one run
    by_prompt = images.merge(runs[["run_key", "model"]], on="run_key").groupby(["prompt", "seed"])["sha256"]
    assert (by_prompt.nunique() == 2).all()

    again = cli(*command, check=True)
    assert again.stdout.startswith("generated 0 images (24 already present)")
    with Store.open(home) as store:
        assert store.count("runs") == 6 and store.count("images") == 24


@pytest.mark.parametrize(("extra", "contains"), [
    (["--prompt-template", "a photo of a doctor", "--prompt-list", "LIST"], "exactly once"),
    (["--prompt-template", "a photo of a {}"], "go together"),
    (["--prompt-template", "a {} and a {}", "--prompt-list", "LIST"], "exactly once"),
    (["--prompt", "x", "--prompt-template", "a {}", "--prompt-list", "LIST"], "not both"),
    (["--prompt-template", "a {}", "--prompt-list", "MISSING"], "no prompt list"),
    (["--prompt-template", "a {}", "--prompt-list", "LINK"], "not a file"),
    (["--prompt-template", "a {}", "--prompt-list", "DUPLICATES"], "twice (lines 1 and 3)"),
])
def test_a_bad_prompt_set_is_one_line_and_the_store_is_untouched(cli, tiny_model, tmp_path, extra, contains):
    files = {"LIST": tmp_path / "list.txt", "MISSING": tmp_path / "missing.txt", "LINK": tmp_path / "link.txt",
             "DUPLICATES": tmp_path / "duplicates.txt"}
    files["LIST"].write_text("doctor\nnurse\n")
    files["DUPLICATES"].write_text("doctor\nnurse\ndoctor\n")
    files["LINK"].symlink_to(files["LIST"])
    extra = [str(files[word]) if word in files else word for word in extra]
    home = tmp_path / "home"
    result = cli("generate", "--model", str(tiny_model), "--seeds", "0-1", *TINY, *extra, "--home", str(home))
    assert_one_error_line(result, contains=contains)
    assert not home.exists()


def test_prompt_set_messages_are_the_module_constants():
    with pytest.raises(ValueError) as caught:
        PromptSet("no slot here", ("doctor",))
    assert str(caught.value) == TEMPLATE.format(value="no slot here")
    with pytest.raises(ValueError) as caught:
        parse_values("doctor\n nurse \ndoctor", where="occupations.txt")
    assert str(caught.value) == DUPLICATE.format(where="occupations.txt", value="doctor", first=1, second=3)
    # values are filled by plain replacement: a brace in a value is not a format field
    assert PromptSet("a photo of a {}", ("{0.__class__}",)).prompts() == [("a photo of a {0.__class__}", "{0.__class__}")]
