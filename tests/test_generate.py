"""Generation on the tiny offline model, loaded through the same from_pretrained path as SD v1-4."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
from helpers import pixels, tiny_spec
from PIL import Image

from sdaudit.errors import ModelLoadError
from sdaudit.generation.generate import (
    StoreSink,
    batch_grid,
    generate,
    image_relpath,
)
from sdaudit.generation.pipelines import MODEL_HINT, NOT_CACHED_OFFLINE
from sdaudit.generation.spec import GenerationSpec
from sdaudit.store import Store

PROMPT = "a doctor sitting behind a desk"


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def store(home):
    with Store.open(home) as opened:
        yield opened


def test_generation_writes_pngs_rows_and_png_parameters(tiny_model, home, store):
    spec = tiny_spec(tiny_model, negative_prompt="blurry", first_seed=10, last_seed=14)
    result = generate(spec, StoreSink(store, home), home=home)

    assert (result.generated, result.already_present, result.cancelled) == (5, 0, False)
    rows = store.images()
    assert sorted(rows["seed"]) == [10, 11, 12, 13, 14]
    for row in rows.itertuples():
        path = home / row.path
        assert row.path == image_relpath(result.run_key, row.seed)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row.sha256
        assert row.seconds > 0 and row.batch_size in (4, 1) and row.device == "cpu"
        assert pd_isna(row.nsfw), "with the safety checker off there is no NSFW verdict"
        image = Image.open(path)
        assert image.size == (64, 64)
        text = image.text
        assert text["seed"] == str(row.seed)
        assert (text["prompt"], text["negative_prompt"], text["model"]) == (PROMPT, "blurry", str(tiny_model))
        assert (text["scheduler"], text["steps"], text["guidance"]) == ("pndm", "5", "7.5")
        assert (text["width"], text["height"], text["dtype"]) == ("64", "64", "float32")
        assert text["model_revision"] == result.model_revision.strip() and text["model_revision"].startswith("local-")
    run = store.run(result.run_key)
    assert run["pipeline_class"] == "StableDiffusionPipeline"
    assert {"torch", "diffusers", "transformers", "python", "sdaudit"} <= set(run["versions"])
    assert (run["scheduler"], run["steps"], run["guidance"], run["dtype"]) == ("pndm", 5, 7.5, "float32")


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_an_image_depends_on_its_seed_and_batch_company_only(tiny_model, home, store):
    """Each image has its own generator, so batch size 4 and 1 draw the same picture; whether the
    pixels are equal to the level depends on the CPU's kernels (seen to differ by one level), so
    that is bounded, not asserted. The same batch company again gives the same pixels exactly."""
    spec = tiny_spec(tiny_model, first_seed=0, last_seed=3, batch_size=4)
    batched = generate(dataclasses.replace(spec, study="batched"), StoreSink(store, home), home=home)
    again = generate(dataclasses.replace(spec, study="again"), StoreSink(store, home), home=home)
    single = generate(dataclasses.replace(spec, batch_size=1, study="single"), StoreSink(store, home), home=home)
    assert len({batched.run_key, again.run_key, single.run_key}) == 3  # different studies: nothing skipped
    assert single.generated == again.generated == 4
    for seed in range(4):
        a = pixels(home / image_relpath(batched.run_key, seed))
        assert a.std() > 1, "the tiny model should still draw structured noise"
        assert np.array_equal(a, pixels(home / image_relpath(again.run_key, seed))), f"seed {seed} is not repeatable"
        alone = pixels(home / image_relpath(single.run_key, seed))
        assert np.abs(a - alone).max() <= 2, f"seed {seed} alone is another picture than seed {seed} in a batch"
    # different seeds give different images, so the closeness above is not vacuous
    first, second = (pixels(home / image_relpath(batched.run_key, seed)) for seed in (0, 1))
    assert np.abs(first - second).mean() > 10


def test_the_batch_grid_is_fixed_by_the_seed_range():
    spec = GenerationSpec(first_seed=10, last_seed=19, batch_size=4)
    assert batch_grid(spec) == [range(10, 14), range(14, 18), range(18, 20)]
    assert batch_grid(dataclasses.replace(spec, batch_size=16)) == [range(10, 20)]


def test_a_resume_batches_the_missing_seeds_on_the_grid(tiny_model, home, store):
    spec = tiny_spec(tiny_model, first_seed=0, last_seed=7, batch_size=4, steps=2)
    generate(spec, StoreSink(store, home), home=home, seeds=[1, 5])
    rest = generate(spec, StoreSink(store, home), home=home)
    assert (rest.generated, rest.already_present) == (6, 2)
    companies = {image.seed: image.batch_size for image in rest.images}
    # seeds 0, 2, 3 share the first batch of the grid and 4, 6, 7 the second; never 3 beside 4
    assert companies == {0: 3, 2: 3, 3: 3, 4: 3, 6: 3, 7: 3}


def test_generating_again_adds_only_the_missing_seeds(tiny_model, home, store):
    first = generate(tiny_spec(tiny_model, first_seed=0, last_seed=3), StoreSink(store, home), home=home)
    before = {seed: (home / image_relpath(first.run_key, seed)).stat().st_mtime_ns for seed in range(4)}
    progress = []
    second = generate(tiny_spec(tiny_model, first_seed=0, last_seed=7), StoreSink(store, home), home=home,
                      on_progress=progress.append)
    assert second.run_key == first.run_key
    assert (second.generated, second.already_present) == (4, 4)
    assert sorted(image.seed for image in second.images) == [4, 5, 6, 7]
    assert {seed: (home / image_relpath(first.run_key, seed)).stat().st_mtime_ns for seed in range(4)} == before
    assert progress[-1].images_done == progress[-1].images_total == 4
    third = generate(tiny_spec(tiny_model, first_seed=0, last_seed=7), StoreSink(store, home), home=home)
    assert (third.generated, third.already_present) == (0, 8)
    assert store.count("images") == 8 and store.count("runs") == 1
    # a changed setting is a different run: nothing is wrongly skipped
    other = generate(tiny_spec(tiny_model, first_seed=0, last_seed=0, guidance=5.0), StoreSink(store, home), home=home)
    assert other.run_key != first.run_key and other.generated == 1


def test_progress_counts_every_denoising_step(tiny_model, home, store):
    progress = []
    generate(tiny_spec(tiny_model, first_seed=0, last_seed=1, batch_size=2, steps=5), StoreSink(store, home),
             home=home, on_progress=progress.append)
    steps = [p for p in progress if p.steps_total]
    # PNDM with skip_prk_steps runs steps + 1 timesteps; progress counts the steps asked for, so the
    # extra one reads as the last step again rather than "step 6 of 6" for a 5-step run
    assert [p.step for p in steps] == [1, 2, 3, 4, 5, 5]
    assert {p.steps_total for p in steps} == {5}
    assert progress[-1].images_done == 2


def test_cancel_stops_inside_a_batch_and_leaves_a_consistent_store(tiny_model, home, store):
    calls = []

    def cancel_in_second_batch() -> bool:
        calls.append(1)
        return len(calls) > 10  # batch 1 polls 1 + 6 times; the second batch is cut mid-way

    result = generate(tiny_spec(tiny_model, first_seed=0, last_seed=11, batch_size=4, steps=5),
                      StoreSink(store, home), home=home, should_cancel=cancel_in_second_batch)
    assert result.cancelled is True
    assert result.generated == 4
    assert store.existing_seeds(result.run_key) == {0, 1, 2, 3}
    files = sorted((home / "images" / result.run_key).iterdir())
    assert [f.name for f in files] == ["0.png", "1.png", "2.png", "3.png"], "no partial file is left"
    resumed = generate(tiny_spec(tiny_model, first_seed=0, last_seed=11, batch_size=4, steps=5),
                       StoreSink(store, home), home=home)
    assert (resumed.generated, resumed.already_present) == (8, 4)


def test_other_schedulers_are_set_from_the_model_config(tiny_model, home, store):
    pndm = generate(tiny_spec(tiny_model, first_seed=0, last_seed=0), StoreSink(store, home), home=home)
    ddim = generate(tiny_spec(tiny_model, first_seed=0, last_seed=0, scheduler="ddim"), StoreSink(store, home),
                    home=home)
    assert ddim.run_key != pndm.run_key
    assert Image.open(home / image_relpath(ddim.run_key, 0)).text["scheduler"] == "ddim"
    assert not np.array_equal(pixels(home / image_relpath(pndm.run_key, 0)),
                              pixels(home / image_relpath(ddim.run_key, 0)))


def test_the_model_id_demo_builds_the_demo_model_under_the_home(home, store, tiny_model):
    result = generate(tiny_spec("demo", first_seed=0, last_seed=1), StoreSink(store, home), home=home)
    assert (home / "models" / "demo" / "model_index.json").is_file()
    assert result.generated == 2
    # the same weights as `demo-model PATH`, so both resume one run
    again = generate(tiny_spec(tiny_model, first_seed=0, last_seed=1), StoreSink(store, home), home=home)
    assert (again.run_key, again.generated) == (result.run_key, 0)


def test_an_unreachable_hub_id_names_the_model_and_the_way_out(home, store):
    with pytest.raises(ModelLoadError) as caught:
        generate(tiny_spec("nobody/no-such-model"), StoreSink(store, home), home=home)
    # the tests run offline (conftest): the hub client's page-long text becomes one short line
    assert str(caught.value) == NOT_CACHED_OFFLINE.format(model="nobody/no-such-model")
    assert len(str(caught.value)) < 300
    assert store.count("runs") == 0


def test_a_hub_failure_is_one_plain_sentence_and_keeps_the_clients_text_as_detail():
    from huggingface_hub.errors import RepositoryNotFoundError

    from sdaudit.generation.pipelines import error_detail, hub_failure

    offline = OSError("We couldn't connect to `https://huggingface.co`.\nCheck out the root cause in the stacktrace above.")
    assert hub_failure("a/b", offline) == "could not load model 'a/b': it is not on this machine and the hub is unreachable"
    try:
        raise OSError("wrapped") from RepositoryNotFoundError.__new__(RepositoryNotFoundError)  # its __init__ wants an HTTP response
    except OSError as wrapped:
        assert hub_failure("a/b", wrapped) == ("could not load model 'a/b': the hub has no such model, or it is "
                                               "gated or private")
    detail = error_detail(offline)
    assert detail.startswith("OSError: We couldn't connect") and "`" not in detail and "\n" not in detail


def test_a_folder_that_is_not_a_pipeline_is_named(tmp_path, home, store):
    (tmp_path / "weights").mkdir()
    with pytest.raises(ModelLoadError) as caught:
        generate(tiny_spec(tmp_path / "weights"), StoreSink(store, home), home=home)
    assert str(caught.value) == (
        f"could not load model {str(tmp_path / 'weights')!r}: the folder has no model_index.json, "
        f"so it is not a diffusers pipeline; {MODEL_HINT}"
    )
    with pytest.raises(ModelLoadError, match="no such folder"):
        generate(tiny_spec(tmp_path / "missing"), StoreSink(store, home), home=home)


def test_a_pipeline_that_is_not_text_to_image_is_refused(tmp_path, home, store):
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    unet = UNet2DModel(sample_size=8, block_out_channels=(4, 8), norm_num_groups=2,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"))
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler()).save_pretrained(tmp_path / "ddpm")
    with pytest.raises(ModelLoadError) as caught:
        generate(tiny_spec(tmp_path / "ddpm"), StoreSink(store, home), home=home)
    assert str(caught.value).startswith(f"could not load model {str(tmp_path / 'ddpm')!r} as a text-to-image pipeline")
    assert store.count("images") == 0


def test_asking_for_a_safety_checker_the_model_lacks_is_refused(tiny_model, home, store):
    with pytest.raises(ModelLoadError) as caught:
        generate(tiny_spec(tiny_model, safety_checker=True), StoreSink(store, home), home=home)
    assert str(caught.value) == (
        f"model {str(tiny_model)!r} has no safety checker; generate without the safety checker."
    )


def test_safety_checker_flags_are_stored_never_silently_dropped(tiny_model_with_safety_checker, home, store):
    spec = tiny_spec(tiny_model_with_safety_checker, first_seed=0, last_seed=2, batch_size=3, safety_checker=True)
    result = generate(spec, StoreSink(store, home), home=home)
    assert result.nsfw_flagged == 3
    rows = store.images(run_key=result.run_key)
    assert list(rows["nsfw"]) == [True, True, True]
    assert int(store.runs().loc[0, "nsfw_images"]) == 3
    assert pixels(home / rows.loc[0, "path"]).max() == 0, "a flagged image is blacked out by diffusers"
    # with the checker off, the same model draws the image and records no verdict
    unchecked = generate(dataclasses.replace(spec, safety_checker=False), StoreSink(store, home), home=home)
    assert unchecked.run_key != result.run_key and unchecked.nsfw_flagged == 0
    assert pixels(home / image_relpath(unchecked.run_key, 0)).max() > 0


def test_png_text_survives_any_prompt(tiny_model, home, store):
    prompt = "une médecin assise derrière un bureau, 医生"
    result = generate(tiny_spec(tiny_model, prompt=prompt, first_seed=0, last_seed=0), StoreSink(store, home), home=home)
    assert Image.open(home / image_relpath(result.run_key, 0)).text["prompt"] == prompt
    import diffusers
    import torch
    import transformers

    versions = store.run(result.run_key)["versions"]
    assert (versions["torch"], versions["diffusers"], versions["transformers"]) == (
        torch.__version__, diffusers.__version__, transformers.__version__), "the store records the libraries that ran"
