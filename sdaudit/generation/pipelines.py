"""Models: find a model's files and exact revision (``resolve_model``), and load it as a cached
text-to-image pipeline (``load_pipeline``).

A model is ``demo`` (the offline demo pipeline), a local diffusers folder, or a hub id. Every way
it can fail to load becomes one ``ModelLoadError`` that names the model and what to do; torch and
diffusers are imported only when a pipeline is loaded.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sdaudit
from sdaudit.config import DEMO_MODEL, import_diffusers
from sdaudit.errors import ModelLoadError
from sdaudit.generation.demo import MODEL_INDEX, demo_model_path
from sdaudit.generation.spec import SCHEDULERS

MODEL_HINT = (
    "without hub access, give a local diffusers folder "
    "(`python -m sdaudit demo-model DIR` builds a tiny one) or use the offline model `demo`."
)
NOT_CACHED_OFFLINE = (
    "could not load model {model!r}: it is not in the local hub cache and the hub is offline (HF_HUB_OFFLINE); "
    "download it once online, give a local diffusers folder (`python -m sdaudit demo-model DIR` builds a tiny "
    "one), or use the offline model `demo`."
)
MISSING_COMPONENTS = ("could not load model {model!r}: {folder} lacks the folder(s) {names} that its model_index.json "
                      "lists (no weights?); {hint}")
BAD_MODEL_INDEX = "could not load model {model!r}: {path} is not a valid JSON object ({reason}); fix or replace it."


def hub_failure(model: str, error: BaseException) -> str:
    """Why the hub could not give ``model``, as one plain sentence (the hub client's own text is a
    page of advice about stack traces; it goes to the detail)."""
    names = set()
    while error is not None:
        names.update(kind.__name__ for kind in type(error).__mro__)
        error = error.__cause__ or error.__context__
    if names & {"RepositoryNotFoundError", "GatedRepoError"}:
        return f"could not load model {model!r}: the hub has no such model, or it is gated or private"
    if "RevisionNotFoundError" in names:
        return f"could not load model {model!r}: the hub has no such revision of it"
    return f"could not load model {model!r}: it is not on this machine and the hub is unreachable"


def error_detail(error: BaseException) -> str:
    """An error's own text, for a "details" view: its type and message, without Markdown quotes."""
    text = " ".join(str(error).split()).replace("`", "'")
    return f"{type(error).__name__}: {text}"[:2000]


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's files are and which exact version they are."""

    name: str  # as the user gave it: a hub id, a folder, or "demo"
    folder: Path  # the local folder that from_pretrained loads
    revision: str  # the hub commit, or "local-<hash>" for a folder
    local: bool


FINGERPRINT_WHOLE = 1 << 20  # weight files up to this size are hashed whole
FINGERPRINT_SAMPLES = 32  # larger ones: this many evenly spaced pieces ...
FINGERPRINT_PIECE = 1 << 16  # ... of this many bytes each, plus the size


def _folder_fingerprint(folder: Path) -> str:
    """A cheap, content-based id of a local model folder: its config texts, and its weights' sizes
    and sampled bytes.

    Sizes alone are not enough: two fine-tunes of one architecture (or two demo models with other
    weights seeds) have weight files of equal size, and would be taken for one model, so the second's
    images would count as already made. Sampling reads ~2 MiB a file instead of gigabytes.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative.startswith("."):
            continue
        digest.update(relative.encode())
        if path.suffix in {".json", ".txt"}:
            digest.update(path.read_bytes())
            continue
        size = path.stat().st_size
        digest.update(str(size).encode())
        with path.open("rb") as handle:
            if size <= FINGERPRINT_WHOLE:
                digest.update(handle.read())
                continue
            stride = (size - FINGERPRINT_PIECE) // (FINGERPRINT_SAMPLES - 1)
            for piece in range(FINGERPRINT_SAMPLES):
                handle.seek(piece * stride)
                digest.update(handle.read(FINGERPRINT_PIECE))
    return "local-" + digest.hexdigest()[:16]


def resolve_model(model: str, *, revision: str | None = None, home=None) -> ResolvedModel:
    """Find a model's local folder and exact revision: ``demo``, a local folder, or a hub id.

    A hub id is fetched (or found in the hub cache) with ``DiffusionPipeline.download`` — the
    same call ``from_pretrained`` makes — so the resolved commit can be recorded.
    """
    if model == DEMO_MODEL:
        folder = demo_model_path(home)
        return ResolvedModel(model, folder, _folder_fingerprint(folder), True)
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / MODEL_INDEX).is_file():
            raise ModelLoadError(
                f"could not load model {model!r}: the folder has no {MODEL_INDEX}, so it is not a "
                f"diffusers pipeline; {MODEL_HINT}"
            )
        return ResolvedModel(model, path, _folder_fingerprint(path), True)
    if model.startswith((".", "/", "~")) or os.sep in model.rstrip("/").split("/", 1)[-1]:
        raise ModelLoadError(f"could not load model {model!r}: no such folder; {MODEL_HINT}")
    _, diffusers = import_diffusers()
    from huggingface_hub import constants

    try:
        folder = Path(diffusers.DiffusionPipeline.download(model, revision=revision))
    except Exception as error:  # the hub client raises many types; all mean "cannot load"
        if constants.HF_HUB_OFFLINE:  # offline, every failure is "not in the cache"; its text is a page long
            raise ModelLoadError(NOT_CACHED_OFFLINE.format(model=model)) from None
        raise ModelLoadError(f"{hub_failure(model, error)}; {MODEL_HINT}", detail=error_detail(error)) from None
    commit = folder.name if folder.parent.name == "snapshots" else (revision or "unknown")
    return ResolvedModel(model, folder, commit, False)


def model_index(resolved: ResolvedModel) -> dict:
    """The model folder's ``model_index.json``; one that is not a JSON object is named."""
    path = resolved.folder / MODEL_INDEX
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        reason = f"{error.msg} at line {error.lineno}" if isinstance(error, json.JSONDecodeError) else "not UTF-8"
        raise ModelLoadError(BAD_MODEL_INDEX.format(model=resolved.name, path=path, reason=reason)) from None
    if not isinstance(index, dict):
        raise ModelLoadError(BAD_MODEL_INDEX.format(model=resolved.name, path=path, reason="not an object"))
    return index


# Fast mode's options, each of which may move pixels a little (the benchmark measures how far): they
# pay off on CUDA only (channels-last and compile are slower or unsupported on CPU and MPS).
FAST_OPTIONS = ("channels_last", "fused_qkv", "compile", "tf32")
EXACT_OFF_CUDA = "exact (fast mode needs CUDA)"


def fast_options(mode: str, device: str) -> tuple[str, ...]:
    """The speed options ``mode`` turns on for ``device``: all of them for ``fast`` on CUDA, else none."""
    return FAST_OPTIONS if mode == "fast" and device.startswith("cuda") else ()


def mode_text(mode: str, options: tuple[str, ...]) -> str:
    """How an image was made, as the run record and its PNG say it: ``fast``, ``exact``, or
    ``exact (fast mode needs CUDA)`` where fast was asked for on a CPU or MPS device."""
    if options:
        return "fast"
    return EXACT_OFF_CUDA if mode == "fast" else "exact"


@dataclass
class LoadedPipeline:
    pipe: object
    scheduler_config: dict
    pipeline_class: str
    options: tuple[str, ...] = ()  # the FAST_OPTIONS applied to it


_LOADED: dict[tuple, LoadedPipeline] = {}  # at most one: SD weights are GBs of device memory
_LOADED_LOCK = threading.Lock()


def load_pipeline(resolved: ResolvedModel, *, dtype: str, device: str, safety_checker: bool,
                  options: tuple[str, ...] = ()) -> LoadedPipeline:
    """Load (or reuse) a text-to-image pipeline with ``AutoPipelineForText2Image.from_pretrained``,
    with the speed ``options`` (of ``FAST_OPTIONS``; ``fast_options`` picks them) applied."""
    unknown = sorted(set(options) - set(FAST_OPTIONS))
    if unknown:
        raise ValueError(f"`options` must be among {', '.join(FAST_OPTIONS)} but include {', '.join(unknown)}.")
    key = (str(resolved.folder), resolved.revision, dtype, device, safety_checker, tuple(sorted(options)))
    with _LOADED_LOCK:
        if key not in _LOADED:
            _LOADED.clear()  # free the previous model's memory before loading the next
            loaded = _load_pipeline(resolved, dtype=dtype, device=device, safety_checker=safety_checker)
            _apply_options(loaded, options)
            _LOADED[key] = loaded
        return _LOADED[key]


def _load_pipeline(resolved: ResolvedModel, *, dtype: str, device: str, safety_checker: bool) -> LoadedPipeline:
    torch, diffusers = import_diffusers()
    index = model_index(resolved)
    components = {name for name, value in index.items() if isinstance(value, list) and value and value[0]}
    kwargs: dict = {"dtype": getattr(torch, dtype)}
    if safety_checker and "safety_checker" not in components:
        raise ModelLoadError(
            f"model {resolved.name!r} has no safety checker; generate without the safety checker."
        )
    skipped = set() if safety_checker else {"safety_checker", "feature_extractor"}
    missing = sorted(name for name in components - skipped if not (resolved.folder / name).is_dir())
    if missing:  # diffusers would name one of them, a different one from run to run
        raise ModelLoadError(MISSING_COMPONENTS.format(model=resolved.name, folder=resolved.folder,
                                                       names=", ".join(missing), hint=MODEL_HINT))
    if not safety_checker and "safety_checker" in index:
        # Auditing is the use diffusers names for turning it off: a blacked-out image would
        # silently become "no person".
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    try:
        # A component folder with a broken config makes diffusers warn (a FutureWarning about
        # `from_config`) before it fails: the user's one error line below says all there is.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            pipe = diffusers.AutoPipelineForText2Image.from_pretrained(resolved.folder, **kwargs)
    except Exception as error:  # diffusers raises ValueError/OSError/KeyError for unusable folders
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ModelLoadError(
            f"could not load model {resolved.name!r} as a text-to-image pipeline ({reason}); {MODEL_HINT}"
        ) from None
    if hasattr(pipe, "unet") and isinstance(pipe.unet, diffusers.UNet2DConditionModel):
        from diffusers.models.attention_processor import AttnProcessor2_0

        pipe.unet.set_attn_processor(AttnProcessor2_0())  # PyTorch's fused SDPA attention
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return LoadedPipeline(pipe, dict(pipe.scheduler.config), type(pipe).__name__)


def _apply_options(loaded: LoadedPipeline, options: tuple[str, ...]) -> None:
    """Channels-last UNet and VAE, fused QKV projections, a compiled UNet and VAE decoder.
    TF32 is not a property of the pipeline: ``precision`` sets it around each call."""
    import torch

    pipe = loaded.pipe
    models = [getattr(pipe, name) for name in ("unet", "vae") if getattr(pipe, name, None) is not None]
    if "channels_last" in options:
        for model in models:
            model.to(memory_format=torch.channels_last)
    if "fused_qkv" in options and hasattr(pipe, "fuse_qkv_projections"):
        pipe.fuse_qkv_projections()
    if "compile" in options:
        if getattr(pipe, "unet", None) is not None:
            # Not mode="reduce-overhead": its CUDA graphs overwrite an output at the next call, and PNDM
            # keeps past UNet outputs (without guidance they are the UNet's own tensors).
            pipe.unet.compile(fullgraph=True)
        if getattr(pipe, "vae", None) is not None:
            pipe.vae.decoder.compile()
    loaded.options = tuple(option for option in FAST_OPTIONS if option in options)


@contextmanager
def precision(options: tuple[str, ...], device: str) -> Iterator[None]:
    """TF32 matmuls and convolutions for float32 on CUDA while generating with the ``tf32`` option,
    and full float32 without it; the process's own settings come back afterwards."""
    if not device.startswith("cuda"):
        yield
        return
    import torch

    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = "tf32" in options
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def scheduler_for(loaded: LoadedPipeline, name: str):
    """A fresh scheduler ``name`` built from the model's own scheduler config."""
    import diffusers

    class_name, overrides = SCHEDULERS[name]
    return getattr(diffusers, class_name).from_config(loaded.scheduler_config, **overrides)


@functools.cache
def _package_versions() -> dict[str, str]:
    """The installed versions of the packages that make pixels; read once a process (each read scans
    the installed packages' metadata: milliseconds on every generate call otherwise)."""
    import importlib.metadata as metadata

    versions = {}
    for package in ("torch", "diffusers", "transformers", "accelerate"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


def library_versions(device: str) -> dict[str, str]:
    """The versions that decide an image's pixels, recorded with every run."""
    import torch

    versions = {"python": platform.python_version(), "sdaudit": sdaudit.__version__, **_package_versions()}
    if device == "cpu":
        # CPU kernels round differently with another thread count: pixels can move by one level.
        versions["torch_threads"] = str(torch.get_num_threads())
    if device.startswith("cuda"):
        versions["cuda"] = str(torch.version.cuda)
        versions["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return versions
