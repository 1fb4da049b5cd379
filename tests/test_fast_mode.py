"""Fast and exact mode (issue 26): what each mode records, how it changes a run's identity, and that
fast mode off CUDA generates exactly and says so. The GPU side is in tests/test_gpu.py."""

from __future__ import annotations

import dataclasses

import helpers
import numpy as np
import pytest
from helpers import open_page, wait_until
from PIL import Image

from sdaudit.generation.generate import StoreSink, generate, image_relpath, run_identity, run_key_of
from sdaudit.generation.jobs import JobQueue
from sdaudit.generation.pipelines import (
    EXACT_OFF_CUDA,
    FAST_OPTIONS,
    fast_options,
    load_pipeline,
    precision,
    resolve_model,
)
from sdaudit.generation.spec import MODE, GenerationSpec
from sdaudit.store import Store

PROMPT = "a doctor sitting behind a desk"
# The identity's fields before modes existed: an exact run's key must not change, or earlier runs
# would no longer resume.
IDENTITY_BEFORE_MODES = {"study", "model", "model_revision", "prompt", "negative_prompt", "scheduler", "steps",
                         "guidance", "width", "height", "dtype", "safety_checker"}


def tiny_spec(model, **changes):
    return helpers.tiny_spec(model, **{"last_seed": 3, **changes})  # four seeds: one batch


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def test_fast_is_the_default_and_a_mode_is_checked():
    assert GenerationSpec().mode == "fast"
    with pytest.raises(ValueError) as raised:
        GenerationSpec(mode="turbo")
    assert str(raised.value) == MODE.format(choices="fast, exact", value="turbo")


@pytest.mark.parametrize(("mode", "device", "options"), [
    ("fast", "cuda", FAST_OPTIONS), ("fast", "cuda:1", FAST_OPTIONS), ("exact", "cuda", ()),
    ("fast", "cpu", ()), ("fast", "mps", ()), ("exact", "cpu", ()),
])
def test_fast_options_are_for_cuda_only(mode, device, options):
    assert fast_options(mode, device) == options


def test_on_the_cpu_fast_mode_generates_exactly_and_says_so(tiny_model, home):
    """Off CUDA, fast and exact are one run (the same pixels), and each image says which mode was asked
    and what it got, in the run record and in its PNG."""
    with Store.open(home) as store:
        fast = generate(tiny_spec(tiny_model), StoreSink(store, home), home=home)
        exact = generate(tiny_spec(tiny_model, mode="exact", first_seed=4, last_seed=7), StoreSink(store, home),
                         home=home)
        again = generate(tiny_spec(tiny_model, mode="exact"), StoreSink(store, home), home=home)
        run = store.run(fast.run_key)
    assert fast.run_key == exact.run_key == again.run_key
    assert (again.generated, again.already_present) == (0, 4), "an exact call resumes the run fast mode made on the CPU"
    assert run["versions"]["mode"] == EXACT_OFF_CUDA and "fast_options" not in run["versions"]
    assert Image.open(home / image_relpath(fast.run_key, 0)).text["mode"] == EXACT_OFF_CUDA
    # each PNG says what its own call asked for; the run's record keeps its first images' mode
    assert Image.open(home / image_relpath(exact.run_key, 4)).text["mode"] == "exact"


def test_exact_mode_is_recorded(tiny_model, home):
    with Store.open(home) as store:
        result = generate(tiny_spec(tiny_model, mode="exact"), StoreSink(store, home), home=home)
        run = store.run(result.run_key)
    assert run["versions"]["mode"] == "exact"
    assert Image.open(home / image_relpath(result.run_key, 0)).text["mode"] == "exact"


def test_fast_options_make_another_run_and_exact_keeps_the_old_identity(tiny_model, home):
    spec = tiny_spec(tiny_model)
    resolved = resolve_model(spec.model, home=home)
    exact = run_identity(spec, resolved, "float32")
    fast = run_identity(spec, resolved, "float32", FAST_OPTIONS)
    assert set(exact) == IDENTITY_BEFORE_MODES
    assert fast == {**exact, "mode": "fast", "fast_options": list(FAST_OPTIONS)}
    assert run_key_of(fast) != run_key_of(exact)


def test_the_cli_records_exact(cli, tiny_model, tmp_path):
    home = tmp_path / "h"
    cli("generate", "--model", str(tiny_model), "--prompt", PROMPT, "--steps", "2", "--height", "64", "--width", "64",
        "--seeds", "0-1", "--exact", "--home", str(home), check=True)
    cli("generate", "--model", str(tiny_model), "--prompt", PROMPT, "--steps", "2", "--height", "64", "--width", "64",
        "--seeds", "0-1", "--study", "other", "--home", str(home), check=True)
    with Store.open(home) as store:
        modes = {row.study: store.run(row.run_key)["versions"]["mode"] for row in store.runs().itertuples()}
    assert modes == {"default": "exact", "other": EXACT_OFF_CUDA}


def test_channels_last_and_fused_qkv_keep_the_picture_on_the_cpu(tiny_model, home):
    """The options that also run on a CPU change the arithmetic's order only: the same picture within
    2 levels of 255 (measured here: 0-1)."""
    import torch

    resolved = resolve_model(str(tiny_model), home=home)
    spec = tiny_spec(tiny_model)
    images = {}
    for options in ((), ("channels_last", "fused_qkv")):
        loaded = load_pipeline(resolved, dtype="float32", device="cpu", safety_checker=False, options=options)
        assert loaded.options == options
        output = loaded.pipe(prompt=[PROMPT] * 4, num_inference_steps=spec.steps, height=64, width=64,
                             generator=[torch.Generator("cpu").manual_seed(seed) for seed in spec.seeds],
                             output_type="np")
        images[options] = np.round(output.images * 255)
    difference = np.abs(images[()] - images[("channels_last", "fused_qkv")]).max()
    assert difference <= 2, f"fast options moved a pixel by {difference} levels"
    assert images[()].std() > 1


def test_an_unknown_option_is_named(tiny_model, home):
    resolved = resolve_model(str(tiny_model), home=home)
    with pytest.raises(ValueError, match="but include turbo"):
        load_pipeline(resolved, dtype="float32", device="cpu", safety_checker=False, options=("turbo",))


def test_tf32_is_set_for_a_cuda_call_and_given_back():
    import torch

    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with precision(("tf32",), "cuda"):
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
    with precision((), "cuda"):
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, False)
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


def test_the_form_queues_exact_mode(app_home, monkeypatch, tmp_path):
    monkeypatch.setenv("SDAUDIT_MODEL", str(tmp_path / "no-such-model"))  # the job fails fast: nothing generated
    at = open_page("generate")
    toggle = next(element for element in at.toggle if element.label == "Exact mode")
    assert toggle.value is False, "fast mode is the default"
    toggle.set_value(True)
    next(button for button in at.button if button.label == "Generate").click().run()
    assert at.success[0].value.startswith("Queued job 1")
    with Store.open(app_home) as store:
        assert JobQueue(store).jobs()[0].spec["mode"] == "exact"
    wait_until(lambda: at.run().error, "the failed job's message", poll=0.5)


def test_a_spec_without_a_mode_is_fast():
    """A job queued by an earlier sdaudit has no mode in its stored spec: it runs in the default mode."""
    stored = {name: value for name, value in dataclasses.asdict(GenerationSpec()).items() if name != "mode"}
    assert GenerationSpec(**stored).mode == "fast"
