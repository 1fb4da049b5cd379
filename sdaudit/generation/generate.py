"""Reproducible generation with any diffusers text-to-image pipeline.

``generate(spec, sink)`` reads top to bottom: resolve the model (``pipelines.py``) and the run's
identity, find the seeds still missing, load the (cached) pipeline, then generate batch by batch
and hand each image to a sink (the store, or a run folder). Image *i* depends on seed *i* only: each image
gets its own CPU ``torch.Generator``, so a batch of 4 equals the same seeds generated one by one.
torch and diffusers are imported only when a pipeline is loaded.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import sdaudit
from sdaudit.config import import_diffusers, resolve_device, resolve_dtype
from sdaudit.errors import SdauditError
from sdaudit.files.safe import PendingFiles
from sdaudit.generation.pipelines import (
    ResolvedModel,
    fast_options,
    library_versions,
    load_pipeline,
    mode_text,
    model_index,
    precision,
    resolve_model,
    scheduler_for,
)
from sdaudit.generation.spec import GenerationSpec
from sdaudit.records import ImageRecord, RunRecord

# -- identity and sinks -----------------------------------------------------------------------


def run_identity(spec: GenerationSpec, resolved: ResolvedModel, dtype: str, options: tuple[str, ...] = ()) -> dict:
    """The settings that decide a run's pixels. Equal identities resume one another.

    A local folder is identified by its content fingerprint, not its path, so a run folder
    made elsewhere resumes and ingests into the same run. The safety checker is part of it
    because it replaces flagged images with black ones. Fast mode's ``options`` (on CUDA) move
    pixels a little, so a fast run is another run than an exact one; without options (exact mode,
    or fast mode off CUDA, which generates exactly) the identity is what it was before modes
    existed, so earlier runs resume.
    """
    fast = {"mode": "fast", "fast_options": list(options)} if options else {}
    return {
        **fast,
        "study": spec.study,
        "model": "local" if resolved.local else resolved.name,
        "model_revision": resolved.revision,
        "prompt": spec.prompt,
        "negative_prompt": spec.negative_prompt,
        "scheduler": spec.scheduler,
        "steps": spec.steps,
        "guidance": float(spec.guidance),
        "width": spec.width,
        "height": spec.height,
        "dtype": dtype,
        "safety_checker": spec.safety_checker,
    }


def run_key_of(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


class ImageSink(Protocol):
    """Where generated images go: the store (``StoreSink``) or a run folder (``RunFolder``)."""

    root: Path  # image paths are relative to it

    def begin(self, run: RunRecord) -> set[int]:
        """Start the run (recorded by the time its first images are); return the seeds it already has."""

    def add_images(self, images: Sequence[ImageRecord], files: Mapping[str, bytes]) -> None:
        """Write a batch's files (``files``: path under ``root`` → bytes) and record its image rows,
        the rows only once every file is whole."""


class StoreSink:
    """Images into a data home: files under ``home/images``, rows in its store.

    The run (and its study) is recorded with its first images, not at ``begin``: a model that
    fails to load, or a device that fails, leaves the store as it was. A batch is all or nothing:
    its files are written, then the run and its rows are one transaction, and the files go again
    when it does not commit (``safe.PendingFiles``; a killed process's are removed at the next open).
    """

    def __init__(self, store, home):
        self.store = store
        self.root = Path(home)
        self._unrecorded: RunRecord | None = None

    def begin(self, run: RunRecord) -> set[int]:
        self._unrecorded = run
        return self.store.existing_seeds(run.run_key)

    def add_images(self, images: Sequence[ImageRecord], files: Mapping[str, bytes]) -> None:
        runs = [self._unrecorded] if self._unrecorded is not None else []
        with PendingFiles(self.root, list(files)) as pending:
            for relpath, data in files.items():
                pending.write(relpath, data)
            self.store.add_runs_and_images(runs, images)
        self._unrecorded = None


# -- generation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationProgress:
    """Progress of one ``generate`` call; ``step``/``steps_total`` are the current batch's."""

    images_done: int
    images_total: int
    step: int
    steps_total: int
    elapsed: float
    run_key: str = ""


@dataclass(frozen=True)
class GenerationResult:
    run_key: str
    model_revision: str
    generated: int
    already_present: int
    cancelled: bool
    seconds: float
    images: tuple[ImageRecord, ...] = field(repr=False)

    @property
    def nsfw_flagged(self) -> int:
        return sum(1 for image in self.images if image.nsfw)


def png_parameters(run: RunRecord, seed: int) -> dict[str, str]:
    """The text chunks of an image's PNG: enough to say alone how it was made."""
    return {
        "seed": str(seed),
        "prompt": run.prompt,
        "negative_prompt": run.negative_prompt,
        "model": run.model,
        "model_revision": run.model_revision or "",
        "scheduler": run.scheduler,
        "steps": str(run.steps),
        "guidance": repr(float(run.guidance)),
        "width": str(run.width),
        "height": str(run.height),
        "dtype": run.dtype,
        "safety_checker": str(run.safety_checker).lower(),
        "run_key": run.run_key,
        "study": run.study,
        "generator": f"sdaudit {sdaudit.__version__}",
        "mode": run.versions.get("mode", "exact"),
        **({"slot": run.slot} if run.slot is not None else {}),
    }


def _png_bytes(image, parameters: dict[str, str]) -> bytes:
    """``image`` as a PNG with text chunks (a sink writes it, atomically)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in parameters.items():
        info.add_itxt(key, value)  # iTXt: UTF-8, so any prompt survives
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def image_relpath(run_key: str, seed: int) -> str:
    return f"images/{run_key}/{seed}.png"


def batch_grid(spec: GenerationSpec) -> list[range]:
    """The batches of the spec's seed range: ``batch_size`` consecutive seeds from the first seed on.

    Every process, and every resume, batches seeds on this grid, so an image is made beside the
    same seeds whether one process or several make the run. That matters for its pixels: on some
    CPUs, and on GPUs, an image differs by a level or so with the seeds that share its batch.
    """
    step = spec.batch_size
    return [range(start, min(start + step, spec.last_seed + 1)) for start in range(spec.first_seed, spec.last_seed + 1, step)]


def _batches(spec: GenerationSpec, seeds: Sequence[int]) -> Iterable[list[int]]:
    """``seeds`` grouped by their batch on the spec's grid (a resume makes a batch's missing seeds)."""
    batches: dict[int, list[int]] = {}
    for seed in seeds:
        batches.setdefault((seed - spec.first_seed) // spec.batch_size, []).append(seed)
    for index in sorted(batches):
        yield sorted(batches[index])


def generate(
    spec: GenerationSpec,
    sink: ImageSink,
    *,
    home=None,
    seeds: Iterable[int] | None = None,
    device: str | None = None,
    on_progress: Callable[[GenerationProgress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> GenerationResult:
    """Generate the seeds of ``spec`` that ``sink`` does not have yet, batch by batch.

    ``seeds`` narrows the spec's range (one process's share of a multi-process run: whole batches of
    ``batch_grid(spec)``, so each image keeps its batch company); ``device``
    overrides the spec's (``cuda:1``). ``should_cancel`` is polled at every denoising step: the
    batch in flight is discarded and every finished batch stays recorded.
    """
    started = time.perf_counter()
    # 1. Resolve the device, dtype and model: the model's revision is part of the run's identity
    device = device or resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device.split(":")[0])
    resolved = resolve_model(spec.model, revision=spec.revision, home=home)
    options = fast_options(spec.mode, device)
    identity = run_identity(spec, resolved, dtype, options)
    run_key = run_key_of(identity)
    wanted = list(spec.seeds if seeds is None else seeds)
    if any(seed not in spec.seeds for seed in wanted):
        raise SdauditError(f"`seeds` must lie in the spec's range {spec.first_seed}-{spec.last_seed}.")

    # 2. Describe the run and find the seeds it still lacks (resume); a store records it with its first images
    index = model_index(resolved)
    run = RunRecord(
        run_key=run_key,
        study=spec.study,
        model=spec.model,
        model_revision=resolved.revision,
        pipeline_class=index.get("_class_name"),
        prompt=spec.prompt,
        negative_prompt=spec.negative_prompt,
        scheduler=spec.scheduler,
        steps=spec.steps,
        guidance=float(spec.guidance),
        width=spec.width,
        height=spec.height,
        dtype=dtype,
        device=device,
        batch_size=spec.batch_size,
        safety_checker=spec.safety_checker,
        # the mode lives with the versions: like them it says how pixels were made, and needs no new column
        versions={**library_versions(device), "mode": mode_text(spec.mode, options),
                  **({"fast_options": ",".join(options)} if options else {})},
        slot=spec.slot,
    )
    present = sink.begin(run)
    missing = [seed for seed in wanted if seed not in present]
    already_present = len(wanted) - len(missing)
    if not missing:
        return GenerationResult(run_key, resolved.revision, 0, already_present, False,
                                time.perf_counter() - started, ())

    report = on_progress or (lambda progress: None)
    report(GenerationProgress(0, len(missing), 0, 0, time.perf_counter() - started, run_key))

    # 3. Load the pipeline (cached per model, dtype, device) and set the scheduler
    loaded = load_pipeline(resolved, dtype=dtype, device=device, safety_checker=spec.safety_checker, options=options)
    pipe = loaded.pipe
    pipe.scheduler = scheduler_for(loaded, spec.scheduler)
    torch, _ = import_diffusers()

    # 4. Generate batch by batch; PNG encoding and store writes of a batch overlap the next one
    saved: list[ImageRecord] = []
    cancelled = False

    def on_step(pipeline, step: int, timestep, callback_kwargs: dict) -> dict:
        if should_cancel is not None and should_cancel():
            pipeline._interrupt = True  # diffusers' own way to stop a denoising loop
        # steps as the user asked for them: PNDM runs one more timestep than asked (its warm-up)
        report(GenerationProgress(len(saved), len(missing), min(step + 1, spec.steps), spec.steps,
                                  time.perf_counter() - started, run_key))
        return callback_kwargs

    def save(batch: list[int], images, nsfw, seconds: float) -> None:
        records, files = [], {}
        for position, seed in enumerate(batch):
            relpath = image_relpath(run_key, seed)
            files[relpath] = _png_bytes(images[position], png_parameters(run, seed))
            flagged = bool(nsfw[position]) if nsfw is not None else None
            records.append(ImageRecord(run_key, seed, relpath, hashlib.sha256(files[relpath]).hexdigest(), flagged,
                                       seconds / len(batch), len(batch), device))
        sink.add_images(records, files)
        saved.extend(records)

    # Nobody listening, no callback: the denoising loop then runs exactly as a bare pipeline call does.
    listened = on_progress is not None or should_cancel is not None
    # The writer thread's work is mostly in C that lets the GIL go (Pillow's PNG encoder, hashlib, fsync,
    # DuckDB), so it overlaps the next batch with little hold on the Python that drives the GPU.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sdaudit-writer") as writer, precision(options, device):
        pending: Future | None = None
        for batch in _batches(spec, missing):
            if should_cancel is not None and should_cancel():
                cancelled = True
                break
            batch_started = time.perf_counter()
            output = pipe(
                prompt=[spec.prompt] * len(batch),
                negative_prompt=[spec.negative_prompt] * len(batch) if spec.negative_prompt else None,
                num_inference_steps=spec.steps,
                guidance_scale=spec.guidance,
                height=spec.height,
                width=spec.width,
                generator=[torch.Generator("cpu").manual_seed(seed) for seed in batch],
                callback_on_step_end=on_step if listened else None,
            )
            if getattr(pipe, "_interrupt", False):
                cancelled = True  # the batch was cut short: its images are not finished
                break
            if pending is not None:
                pending.result()  # re-raises a failed write before more work is done
            nsfw = getattr(output, "nsfw_content_detected", None)
            pending = writer.submit(save, batch, output.images, nsfw, time.perf_counter() - batch_started)
        if pending is not None:
            pending.result()
    report(GenerationProgress(len(saved), len(missing), 0, 0, time.perf_counter() - started, run_key))
    return GenerationResult(run_key, resolved.revision, len(saved), already_present, cancelled,
                            time.perf_counter() - started, tuple(saved))
