"""Run folders: written instead of the store, ingested once, refused whole when damaged."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from sdaudit.errors import RunFolderError
from sdaudit.files.runfolder import MANIFEST, RunFolder, ingest, read_run_folder
from sdaudit.generation.generate import StoreSink, generate, image_relpath
from sdaudit.generation.spec import GenerationSpec
from sdaudit.store import Store


def spec_for(model, first=0, last=3) -> GenerationSpec:
    return GenerationSpec(model=str(model), prompt="a nurse", first_seed=first, last_seed=last, batch_size=2,
                          steps=3, height=64, width=64, device="cpu")


@pytest.fixture(scope="session")
def generated_run_folder(tiny_model, tmp_path_factory):
    """One run folder of four images, generated once for the whole test run."""
    scratch = tmp_path_factory.mktemp("run-folder")
    spec = spec_for(tiny_model)
    folder = RunFolder(scratch / "run", spec=spec.to_dict())
    result = generate(spec, folder, home=scratch / "unused-home")
    folder.finalize()
    return scratch / "run", result


@pytest.fixture
def run_folder(generated_run_folder, tmp_path):
    """This test's own copy of the run folder, free to damage."""
    built, result = generated_run_folder
    shutil.copytree(built, tmp_path / "run")
    return tmp_path / "run", result


def test_a_run_folder_describes_itself(run_folder):
    folder, result = run_folder
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["format"] == "sdaudit-run-folder"
    assert manifest["specs"][0]["prompt"] == "a nurse"
    assert [run["run_key"] for run in manifest["runs"]] == [result.run_key]
    assert {"torch", "diffusers"} <= set(manifest["runs"][0]["versions"])
    assert [image["seed"] for image in manifest["images"]] == [0, 1, 2, 3]
    assert not (folder / "parts").exists(), "parts are merged into the manifest"
    assert Image.open(folder / manifest["images"][0]["path"]).text["seed"] == "0"


def test_generating_into_a_run_folder_again_resumes_it(tiny_model, run_folder, tmp_path):
    folder, first = run_folder
    spec = spec_for(tiny_model, 0, 5)
    sink = RunFolder(folder, spec=spec.to_dict())
    again = generate(spec, sink, home=tmp_path / "unused-home")
    assert (again.generated, again.already_present) == (2, 4)
    assert len(sink.finalize().images) == 6


def test_ingesting_twice_adds_nothing(run_folder, tmp_path):
    folder, result = run_folder
    home = tmp_path / "home"
    with Store.open(home) as store:
        first = ingest(folder, store, home)
        second = ingest(folder, store, home)
        assert (first.images_added, first.runs_added, first.already_present) == (4, 1, 0)
        assert (second.images_added, second.runs_added, second.already_present) == (0, 0, 4)
        assert store.count("images") == 4
        assert store.run(result.run_key)["prompt"] == "a nurse"
    for seed in range(4):
        assert np.array_equal(np.asarray(Image.open(home / image_relpath(result.run_key, seed))),
                              np.asarray(Image.open(folder / image_relpath(result.run_key, seed))))


def test_an_ingested_folder_resumes_in_the_store(tiny_model, run_folder, tmp_path):
    folder, result = run_folder
    home = tmp_path / "home"
    with Store.open(home) as store:
        ingest(folder, store, home)
        more = generate(spec_for(tiny_model, 0, 5), StoreSink(store, home), home=home)
    assert (more.run_key, more.generated, more.already_present) == (result.run_key, 2, 4)


def test_a_damaged_image_rejects_the_whole_folder(run_folder, tmp_path):
    folder, result = run_folder
    (folder / image_relpath(result.run_key, 2)).write_bytes(b"not the image that was generated")
    home = tmp_path / "home"
    with Store.open(home) as store:
        with pytest.raises(RunFolderError) as caught:
            ingest(folder, store, home)
        assert str(caught.value) == (
            f"{str(folder)!r}: image {image_relpath(result.run_key, 2)} does not match its recorded sha256."
        )
        assert store.count("images") == 0 and store.count("runs") == 0
    assert not (home / "images").exists(), "nothing is copied before the whole folder is checked"


def test_a_missing_image_is_named(run_folder, tmp_path):
    folder, result = run_folder
    (folder / image_relpath(result.run_key, 1)).unlink()
    with Store.open(tmp_path / "home") as store, pytest.raises(RunFolderError, match="is listed but missing"):
        ingest(folder, store, tmp_path / "home")


@pytest.mark.parametrize("bad_path", ["../../etc/passwd", "/etc/passwd", "notes/x.png"])
def test_paths_outside_the_folder_are_refused(run_folder, bad_path):
    folder, _ = run_folder
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["images"][0]["path"] = bad_path
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(RunFolderError) as caught:
        read_run_folder(folder)
    assert str(caught.value).endswith(f"image path {bad_path!r} must lie under images/ inside the folder.")


def test_not_a_run_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match="holds no manifest.json: it is not a run folder"):
        read_run_folder(tmp_path / "empty")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / MANIFEST).write_text('{"format": "something-else"}')
    with pytest.raises(RunFolderError, match="is not an sdaudit run folder manifest"):
        read_run_folder(tmp_path / "other")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / MANIFEST).write_text("{")
    with pytest.raises(RunFolderError, match="is not valid JSON"):
        read_run_folder(tmp_path / "broken")


def test_a_torn_last_line_of_a_killed_process_is_ignored(tiny_model, tmp_path):
    spec = spec_for(tiny_model, 0, 1)
    sink = RunFolder(tmp_path / "run", spec=spec.to_dict())
    generate(spec, sink, home=tmp_path / "unused-home")
    with sink.part_path.open("a") as handle:
        handle.write('{"image": {"run_key": "x", "se')  # killed mid-write
    assert len(read_run_folder(tmp_path / "run").images) == 2


def test_conflicting_pixels_keep_what_the_store_has(run_folder, tmp_path):
    folder, result = run_folder
    home = tmp_path / "home"
    manifest = json.loads((folder / MANIFEST).read_text())
    with Store.open(home) as store:
        ingest(folder, store, home)
        # the same run and seed generated elsewhere with other pixels (e.g. fp16 on another GPU)
        path = folder / manifest["images"][0]["path"]
        Image.new("RGB", (64, 64), "white").save(path)
        import hashlib

        manifest["images"][0]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        (folder / MANIFEST).write_text(json.dumps(manifest))
        outcome = ingest(folder, store, home)
        assert outcome.conflicts == (f"{result.run_key}/0",)
        assert outcome.images_added == 0
        stored = store.images(run_key=result.run_key)
        assert stored.loc[stored["seed"] == 0, "sha256"].item() != manifest["images"][0]["sha256"]


def test_a_link_planted_at_a_partial_file_is_never_written_through(tiny_model, run_folder, tmp_path):
    """The manifest and each image are written through a partial file and a rename (``safe.write_new``,
    the one atomic write); a link waiting at a partial file's name is refused, not followed."""
    folder, result = run_folder
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    (folder / f".{MANIFEST}.partial").symlink_to(victim)
    with pytest.raises(OSError):
        RunFolder(folder).finalize()
    (folder / f".{MANIFEST}.partial").unlink()
    (folder / "images" / result.run_key / ".4.png.partial").symlink_to(victim)
    spec = spec_for(tiny_model, first=4, last=4)
    with pytest.raises(OSError):
        generate(spec, RunFolder(folder, spec=spec.to_dict()), home=tmp_path / "unused-home")
    assert victim.read_text() == "mine"
    assert not (folder / "images" / result.run_key / "4.png").exists()
