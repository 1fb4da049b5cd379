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


def _photo(colour: tuple[int, int, int], image_format: str, size=(24, 16)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=image_format)
    return buffer.getvalue()


def _reference_folder(folder, outside) -> dict[str, bytes]:
    """20 entries: 14 good JPEG/PNG/WebP files, and 6 that must be skipped. Returns the good ones."""
    folder.mkdir()
    good = {}
    for number in range(14):
        image_format, suffix = [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("JPEG", "JPEG")][number % 4]
        good[f"photo-{number:02d}.{suffix}"] = _photo((10 * number, 200 - 10 * number, 60), image_format)
    for name, data in good.items():
        (folder / name).write_bytes(data)
    (folder / "photo-99-copy.png").write_bytes(good["photo-01.png"])  # a duplicate
    (folder / "cut.png").write_bytes(good["photo-05.png"][:40])  # truncated
    (folder / "cut.jpg").write_bytes(_photo((1, 2, 3), "JPEG", size=(200, 200))[:300])
    (folder / "notes.jpg").write_text("not an image\n")
    (folder / "huge.png").write_bytes(b"\0" * (20 * 1024 * 1024 + 1))  # over the size cap: never read
    outside.write_bytes(_photo((9, 9, 9), "PNG"))
    (folder / "linked.png").symlink_to(outside)
    assert len(list(folder.iterdir())) == 20
    return good


def test_a_folder_of_real_images_becomes_a_reference_run_with_exactly_the_good_files(cli, tmp_path):
    import hashlib

    folder, home = tmp_path / "photos", tmp_path / "home"
    good = _reference_folder(folder, tmp_path / "elsewhere.png")
    result = cli("ingest-images", str(folder), "--name", "labour photos", "--study", "occupations",
                 "--source", "national photo archive", "--license", "CC BY 4.0", "--home", str(home), check=True)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and "14 images added, 0 already present; skipped 6:" in lines[0]
    for name, reason in [("photo-99-copy.png", "duplicate of photo-01.png"), ("cut.png", "unreadable"),
                         ("cut.jpg", "unreadable"), ("notes.jpg", "unreadable"), ("huge.png", "over"),
                         ("linked.png", "symbolic link")]:
        assert f"'{name}' (" in lines[0] and reason in lines[0].split(f"'{name}' (")[1].split(")")[0], name

    with Store.open(home) as store:
        runs = store.runs(study="occupations")
        images = store.images(study="occupations")
        run = store.run(runs.loc[0, "run_key"])
    assert len(runs) == 1 and run["model"] == "reference"
    assert run["versions"] == {"reference": "labour photos", "source": "national photo archive", "license": "CC BY 4.0"}
    assert sorted(images["source_name"]) == sorted(good)
    for row in images.itertuples():
        stored = (home / row.path).read_bytes()
        assert stored == good[row.source_name]  # copied unchanged
        assert row.sha256 == hashlib.sha256(stored).hexdigest() and row.size_bytes == len(stored)
    assert sorted(images["seed"]) == list(range(14))

    again = cli("ingest-images", str(folder), "--name", "labour photos", "--study", "occupations",
                "--home", str(home), check=True)
    assert "0 images added, 14 already present" in again.stdout
    with Store.open(home) as store:
        assert store.count("images") == 14 and store.count("runs") == 1


def test_reference_images_are_annotated_beside_generated_ones_in_one_shuffled_queue(tmp_path):
    from helpers import make_images, make_run

    from sdaudit.reference import ingest_images

    folder, home = tmp_path / "photos", tmp_path / "home"
    good = _reference_folder(folder, tmp_path / "elsewhere.png")
    with Store.open(home) as store:
        store.add_run(make_run("generated", study="occupations"))
        store.add_images(make_images("generated", seeds=range(14)))
        ingest_images(folder, store, home, name="photos", study="occupations")
        queue = store.annotation_queue("occupations", "r1", only_missing=True, shuffled=True)
    kinds = ["generated" if image.run_key == "generated" else "reference" for image in queue]
    assert Counter(kinds) == {"generated": 14, "reference": len(good)}
    # shuffled together: the reference images are not one block at either end
    first_reference = kinds.index("reference")
    assert "generated" in kinds[first_reference:] and kinds[:14] != ["generated"] * 14


@pytest.mark.parametrize(("arguments", "contains"), [
    (["--name", "../evil"], "a reference set's name must be"),
    (["--name", "ok", "--license", "line one\nline two"], "`license` must be a text"),
    (["--name", "ok", "FOLDER_IS_LINK"], "is a symbolic link"),
    (["--name", "ok", "NO_FOLDER"], "there is no folder"),
    (["--name", "ok", "EMPTY"], "no image in"),
])
def test_a_bad_reference_set_is_one_line_and_nothing_is_written(cli, tmp_path, arguments, contains):
    photos, empty = tmp_path / "photos", tmp_path / "empty"
    photos.mkdir()
    empty.mkdir()
    (photos / "a.png").write_bytes(_photo((1, 2, 3), "PNG"))
    (empty / "notes.txt").write_text("no images here")
    (tmp_path / "link").symlink_to(photos)
    folders = {"FOLDER_IS_LINK": tmp_path / "link", "NO_FOLDER": tmp_path / "nowhere", "EMPTY": empty}
    folder = next((folders[word] for word in arguments if word in folders), photos)
    arguments = [word for word in arguments if word not in folders]
    home = tmp_path / "home"
    with Store.open(home):
        pass
    before = (home / "sdaudit.duckdb").read_bytes()
    result = cli("ingest-images", str(folder), *arguments, "--home", str(home))
    assert_one_error_line(result, contains=contains)
    assert (home / "sdaudit.duckdb").read_bytes() == before
    assert not (home / "images").exists()
