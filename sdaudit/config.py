"""Settings, declared once with their defaults and help.

Each setting can be given as an environment variable; the README's settings table is checked
against ``SETTINGS`` by a test, so a setting cannot be added without being documented.
Device and dtype resolution import torch lazily: the store and the annotation pages must not
pay torch's import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sdaudit.errors import SdauditError

DEFAULT_MODEL = "CompVis/stable-diffusion-v1-4"
DEMO_MODEL = "demo"
DEVICES = ("auto", "cuda", "mps", "cpu")
DTYPES = ("auto", "float16", "bfloat16", "float32")
DEVICE_WORDS = {"cuda": "CUDA GPU", "mps": "Apple (mps) GPU"}
DEVICE_ABSENT = "the device {device!r} was asked for, but torch finds no {what} on this machine; use cpu or auto."
FOLDER_BLOCKED = "{what} {path} cannot be a folder: {blocker} is a file."
HOME_NOT_FOLDER = "the data home {path} is a file, not a folder; give --home (or SDAUDIT_HOME) a folder."


@dataclass(frozen=True)
class Setting:
    """One setting: its environment variable, default and a one-line help."""

    env: str
    default: str
    help: str


SETTINGS: dict[str, Setting] = {
    "home": Setting(
        "SDAUDIT_HOME",
        "./sdaudit-data",
        "Data home: the DuckDB store (sdaudit.duckdb), images/ and models/ (the demo model).",
    ),
    "model": Setting(
        "SDAUDIT_MODEL",
        DEFAULT_MODEL,
        "Default model: a diffusers text-to-image hub id, a local folder, or `demo`.",
    ),
    "device": Setting(
        "SDAUDIT_DEVICE",
        "auto",
        "Device for generation: auto (cuda, then mps, then cpu), cuda, mps or cpu.",
    ),
    "dtype": Setting(
        "SDAUDIT_DTYPE",
        "auto",
        "Weights dtype: auto (float16 on cuda, float32 elsewhere), float16, bfloat16 or float32.",
    ),
    "admin_password": Setting(
        "SDAUDIT_ADMIN_PASSWORD",
        "",
        "Without sign-in: when set (a Space secret), admin actions need this password (asked again on each "
        "reload); raters type their names. Unset and no sign-in: everything is open (a researcher alone).",
    ),
    "oidc_client_id": Setting(
        "SDAUDIT_OIDC_CLIENT_ID", "", "Sign-in: the app's client id at your OpenID Connect provider (a Space with "
        "`hf_oauth: true` needs none: it signs in with Hugging Face)."
    ),
    "oidc_client_secret": Setting("SDAUDIT_OIDC_CLIENT_SECRET", "", "Sign-in: the app's client secret (a secret)."),
    "oidc_provider_url": Setting(
        "SDAUDIT_OIDC_PROVIDER_URL", "", "Sign-in: the provider's address (its /.well-known/openid-configuration is read)."
    ),
    "public_url": Setting(
        "SDAUDIT_PUBLIC_URL", "", "Sign-in: the address browsers reach the app at (a Space's own, else "
        "http://localhost:8501); the provider sends people back to its /oauth2callback."
    ),
    "admins": Setting(
        "SDAUDIT_ADMINS", "", "Sign-in: the user names or e-mails (comma-separated) that may generate, import, create "
        "studies, manage the team and see gold and group answers."
    ),
    "raters": Setting(
        "SDAUDIT_RATERS", "", "Sign-in: when set, only these accounts (and the admins) may rate; unset, every "
        "signed-in account rates under its own name."
    ),
    "max_images_per_job": Setting(
        "SDAUDIT_MAX_IMAGES_PER_JOB", "10000", "Most images one generation job may ask for (hosted limit)."
    ),
    "max_queued_jobs": Setting(
        "SDAUDIT_MAX_QUEUED_JOBS", "20", "Most generation jobs waiting at once (hosted limit)."
    ),
    "max_upload_mb": Setting(
        "SDAUDIT_MAX_UPLOAD_MB", "50", "Largest annotation sheet an upload may be, in MB (hosted limit)."
    ),
    "snapshot_target": Setting(
        "SDAUDIT_SNAPSHOT_TARGET",
        "",
        "Where snapshots go: a folder, or hf://datasets/OWNER/NAME (needs HF_TOKEN). When set, the app "
        "snapshots after each finished job, every SDAUDIT_SNAPSHOT_MINUTES while the store changes and once "
        "more when the app is stopped, and restores from it on start when its store is empty.",
    ),
    "snapshot_minutes": Setting(
        "SDAUDIT_SNAPSHOT_MINUTES", "10",
        "Minutes between automatic snapshots while the store changes (and one more when the app stops).",
    ),
}


def setting(name: str) -> str:
    """The value of setting ``name``: its environment variable if set, else its default."""
    spec = SETTINGS[name]
    value = os.environ.get(spec.env, "").strip()
    return value or spec.default


def int_setting(name: str) -> int:
    """A whole-number setting; a malformed value is named with its variable."""
    value = setting(name)
    if not value.isdigit():
        raise ValueError(f"`{SETTINGS[name].env}` must be a whole number but is {value!r}.")
    return int(value)


def data_home(home: str | os.PathLike | None = None) -> Path:
    """The data home: ``home`` if given, else ``$SDAUDIT_HOME``, else ``./sdaudit-data``."""
    return Path(home if home is not None else setting("home")).expanduser()


def home_folder(home: str | os.PathLike | None = None) -> Path:
    """The data home (as ``data_home``), refused with a ``SdauditError`` when it names a file."""
    folder = data_home(home)
    if folder.exists() and not folder.is_dir():
        raise SdauditError(HOME_NOT_FOLDER.format(path=folder))
    return writable_folder(folder, what="the data home")


def writable_folder(folder: str | os.PathLike, *, what: str) -> Path:
    """``folder`` as a Path, if it is a folder or could be made one; else a ``SdauditError`` naming
    the file that stands in the way (``what`` says whose folder it is: "--out", "the data home")."""
    folder = Path(folder)
    for place in (folder, *folder.parents):
        if place.is_dir():
            return folder
        if place.exists() or place.is_symlink():
            raise SdauditError(FOLDER_BLOCKED.format(what=what, path=folder, blocker=place))
    return folder


def store_path(home: str | os.PathLike | None = None) -> Path:
    """Where the DuckDB store of a data home lives (a home that is a file is refused)."""
    return home_folder(home) / "sdaudit.duckdb"


def resolve_device(device: str = "auto") -> str:
    """``auto`` becomes cuda, then mps, then cpu, whichever is present first; cuda or mps asked for
    by name must be present, or a ``SdauditError`` says so before anything is loaded or written."""
    if device not in DEVICES:
        raise ValueError(f"`device` must be one of {', '.join(DEVICES)} but is {device!r}.")
    if device == "cpu":
        return device
    import torch

    present = {
        "cuda": torch.cuda.is_available(),
        "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
    }
    if device == "auto":
        return next((name for name, here in present.items() if here), "cpu")
    if not present[device]:
        raise SdauditError(DEVICE_ABSENT.format(device=device, what=DEVICE_WORDS[device]))
    return device


def gpu_present() -> bool:
    """Whether this machine seems to have a GPU for generation, without importing torch
    (the pages must start fast): an NVIDIA driver, or Apple silicon (mps)."""
    import platform
    import shutil

    if Path("/proc/driver/nvidia").exists() or shutil.which("nvidia-smi"):
        return True
    return platform.system() == "Darwin" and platform.machine() == "arm64"


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto`` becomes float16 on cuda and float32 elsewhere (fp16 on CPU is slow or absent)."""
    if dtype not in DTYPES:
        raise ValueError(f"`dtype` must be one of {', '.join(DTYPES)} but is {dtype!r}.")
    if dtype != "auto":
        return dtype
    return "float16" if device == "cuda" else "float32"


def import_diffusers():
    """Import torch and diffusers quietly; returns ``(torch, diffusers)``.

    transformers announces missing optional backends on import and diffusers/transformers draw
    loading bars; a CLI whose stderr carries its own progress bar must print neither.
    """
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    import diffusers
    import torch
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    return torch, diffusers
