"""Settings: declared once, documented in the README, resolved as promised."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sdaudit import config

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_settings() -> dict[str, str]:
    """The README's settings table: each `SDAUDIT_…` row's variable and the default in its second cell."""
    rows = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| `(SDAUDIT_[A-Z_]+)` \| `([^`]*)`", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


@pytest.mark.parametrize("name", sorted(config.SETTINGS))
def test_every_setting_is_documented_in_the_readme_with_its_default(name):
    spec = config.SETTINGS[name]
    documented = readme_settings()
    assert spec.env in documented, f"README's settings table has no row for {spec.env}"
    assert documented[spec.env] == spec.default, f"README gives {spec.env} the default {documented[spec.env]!r}"


def test_the_readme_documents_no_setting_that_does_not_exist():
    assert set(readme_settings()) == {spec.env for spec in config.SETTINGS.values()}


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("SDAUDIT_HOME", raising=False)
    assert config.data_home() == Path("./sdaudit-data")
    monkeypatch.setenv("SDAUDIT_HOME", str(tmp_path))
    assert config.data_home() == tmp_path
    assert config.store_path() == tmp_path / "sdaudit.duckdb"
    assert config.data_home("elsewhere") == Path("elsewhere")


def test_default_model_is_stable_diffusion_v1_4(monkeypatch):
    monkeypatch.delenv("SDAUDIT_MODEL", raising=False)
    assert config.setting("model") == "CompVis/stable-diffusion-v1-4"


@pytest.mark.parametrize(
    ("dtype", "device", "expected"),
    [("auto", "cuda", "float16"), ("auto", "cpu", "float32"), ("auto", "mps", "float32"),
     ("bfloat16", "cuda", "bfloat16"), ("float32", "cuda", "float32")],
)
def test_dtype_resolution(dtype, device, expected):
    assert config.resolve_dtype(dtype, device) == expected


def test_device_resolution_prefers_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.resolve_device("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert config.resolve_device("auto") == "cpu"
    assert config.resolve_device("cpu") == "cpu"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: config.resolve_device("tpu"), "`device` must be one of auto, cuda, mps, cpu but is 'tpu'."),
        (lambda: config.resolve_dtype("int8", "cpu"),
         "`dtype` must be one of auto, float16, bfloat16, float32 but is 'int8'."),
    ],
)
def test_bad_settings_are_named(call, message):
    with pytest.raises(ValueError) as caught:
        call()
    assert str(caught.value) == message
