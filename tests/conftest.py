"""Shared fixtures: the tiny offline model, built once per test session through sdaudit itself."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# No machine that runs these tests reaches a model hub; fail fast instead of waiting on one.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"
# The tiny demo model gains nothing from several threads, and on a busy 2-core machine torch's
# OpenMP threads spin against the other work (12 demo images: 59 s with 2 threads, 3 s with 1).
# Set before torch is imported, and inherited by every CLI and app process a test starts.
os.environ.setdefault("OMP_NUM_THREADS", "1")
from helpers import ADMIN_PASSWORD, run_cli


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The offline demo model, written by `python -m sdaudit demo-model` as a user would."""
    path = tmp_path_factory.mktemp("models") / "tiny-sd"
    run_cli("demo-model", str(path), check=True)
    return path


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    """The offline demo CLIP (random weights), written by `python -m sdaudit demo-clip` as a user would."""
    path = tmp_path_factory.mktemp("models") / "tiny-clip"
    run_cli("demo-clip", str(path), check=True)
    return path


@pytest.fixture(scope="session")
def second_tiny_model(tmp_path_factory) -> Path:
    """A second offline demo model with other random weights (weights seed 1), for studies of several models."""
    path = tmp_path_factory.mktemp("models") / "tiny-sd-seed-1"
    run_cli("demo-model", str(path), "--weights-seed", "1", check=True)
    return path


@pytest.fixture(scope="session")
def tiny_model_with_safety_checker(tmp_path_factory) -> Path:
    """The tiny model plus a tiny random safety checker whose thresholds flag every image.

    Flagging everything makes the outcome certain, so the test shows that flags are stored
    and reported, not how good a random checker is.
    """
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import (
        StableDiffusionSafetyChecker,
    )
    from transformers import CLIPConfig, CLIPImageProcessor

    from sdaudit.generation.demo import build_demo_pipeline

    pipe = build_demo_pipeline()
    config = CLIPConfig(
        text_config={"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "vocab_size": 100},
        vision_config={"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=8,
    )
    checker = StableDiffusionSafetyChecker(config)
    with torch.no_grad():
        checker.concept_embeds_weights.fill_(-2.0)  # cosine distance - (-2) > 0 for every image
    pipe.register_modules(
        safety_checker=checker,
        feature_extractor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
    )
    pipe.register_to_config(requires_safety_checker=True)
    path = tmp_path_factory.mktemp("models") / "tiny-sd-checked"
    pipe.save_pretrained(path)
    return path


@pytest.fixture
def cli():
    """``cli("generate", ...)`` runs `python -m sdaudit` in a subprocess and returns the result."""
    return run_cli


@pytest.fixture
def app_home(tmp_path, monkeypatch):
    """A fresh data home for an AppTest of the app; the app's cached store and worker are
    released afterwards, as on shutdown."""
    import streamlit as st
    from streamlit import config

    # AppTest keeps each widget's format_func in session state for its own use; the app's
    # enforceSerializableSessionState would then reject it. The app itself keeps no callables
    # there, so the check is relaxed for AppTest only.
    config.set_option("runner.enforceSerializableSessionState", False)
    monkeypatch.setenv("SDAUDIT_HOME", str(tmp_path / "home"))
    yield tmp_path / "home"
    # the worker first (it stops after its current write), then the store it writes to
    from app.resources import auto_snapshot, job_runner

    job_runner.clear()
    auto_snapshot.clear()
    st.cache_resource.clear()


@pytest.fixture
def locked(app_home, monkeypatch):
    """``app_home`` with the admin password (``helpers.ADMIN_PASSWORD``) set, as a hosted team's app has it."""
    monkeypatch.setenv("SDAUDIT_ADMIN_PASSWORD", ADMIN_PASSWORD)
    return app_home


def gpu_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if gpu_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; runs where one is present")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """One chromium for a browser-test module; each test opens its own tabs in contexts of their own."""
    playwright_api = pytest.importorskip("playwright.sync_api", reason="requirements-dev.txt installs playwright")
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium must be installed (scripts/test.sh installs it)"
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()
