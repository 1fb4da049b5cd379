"""``python benchmarks/generate_speed.py``: what sdaudit's generation costs over a bare pipeline call,
and what each of fast mode's options gains and how far it moves pixels.

1. Overhead. Both sides run in the same process on the same loaded pipeline with the same arguments
   (prompt, seeds, batches, steps, size, one CPU generator per image); sdaudit's side also writes each
   PNG with its text chunks and each row into a DuckDB store. Repetitions alternate the two sides
   (and which goes first) and the medians are compared, because these machines are noisy. The tiny
   demo model at batch 1, 4 and 8.
2. Options. Each of fast mode's options alone, then all of them (fast), against exact mode on the
   same seeds: the first call's seconds (warm-up, compilation included), a steady call's seconds,
   and the largest pixel difference and PSNR. On a CPU, only the options that run there.
3. ``--sd-architecture`` (CUDA): parts 1 and 2 on a random pipeline with Stable Diffusion v1-4's
   exact architecture (speed does not depend on weight values, and no hub is reachable), batch
   1/4/8/16, float16 and float32, plus a second process's warm-up with torch.compile's cache warm;
   cells past ``--budget-s`` are skipped and named. The table goes to benchmarks/results/.
This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sdaudit.config import import_diffusers, resolve_device
from sdaudit.generation.generate import StoreSink, generate
from sdaudit.generation.pipelines import (
    FAST_OPTIONS,
    fast_options,
    load_pipeline,
    precision,
    resolve_model,
    scheduler_for,
)
from sdaudit.generation.spec import GenerationSpec
from sdaudit.store import Store

RESULTS = Path(__file__).resolve().parent / "results"
CPU_OPTIONS = ("channels_last", "fused_qkv")  # compile works on a CPU but costs minutes there; TF32 is CUDA's


def _bare_call(pipe, torch, spec: GenerationSpec, device: str) -> None:
    """The baseline: diffusers alone, the same batches and arguments as sdaudit makes."""
    seeds = list(spec.seeds)
    for start in range(0, len(seeds), spec.batch_size):
        batch = seeds[start : start + spec.batch_size]
        pipe(
            prompt=[spec.prompt] * len(batch),
            num_inference_steps=spec.steps,
            guidance_scale=spec.guidance,
            height=spec.height,
            width=spec.width,
            generator=[torch.Generator("cpu").manual_seed(seed) for seed in batch],
        )
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _sdaudit_call(spec: GenerationSpec, store: Store, home: Path, device: str, study: str) -> None:
    """sdaudit's whole generation path (resolve, record, generate, PNG + store writes) into a
    fresh study, so nothing is skipped as already present. The store is opened once, outside
    the timing, as the app and a CLI command each open it once."""
    generate(dataclasses.replace(spec, study=study), StoreSink(store, home), home=home, device=device)


def compare(spec: GenerationSpec, *, repeats: int, home: Path, device: str) -> dict:
    """Median seconds of the bare call and of sdaudit's generate, alternated ``repeats`` times; the
    bare call runs on the pipeline sdaudit loads for the spec's mode, so only sdaudit's own work differs."""
    torch, _ = import_diffusers()
    dtype = spec.dtype if spec.dtype != "auto" else ("float16" if device.startswith("cuda") else "float32")
    resolved = resolve_model(spec.model, home=home)
    options = fast_options(spec.mode, device)
    loaded = load_pipeline(resolved, dtype=dtype, device=device, safety_checker=False, options=options)

    loaded.pipe.scheduler = scheduler_for(loaded, spec.scheduler)
    warm_up = dataclasses.replace(spec, last_seed=spec.first_seed + spec.batch_size - 1)
    with precision(options, device):
        _bare_call(loaded.pipe, torch, warm_up, device)  # first-call allocations, kernel choices, compilation
    bare, ours = [], []
    # CPU seconds of the whole process (all threads): on a shared machine, other processes' load
    # stretches wall time at random but not the work this process does
    cpu = {"bare": [], "sdaudit": []}
    with Store.open(home) as store:
        for repeat in range(repeats):
            sides = [("bare", bare), ("sdaudit", ours)]
            for side, times in sides if repeat % 2 == 0 else sides[::-1]:  # neither side always goes first
                started, cpu_started = time.perf_counter(), time.process_time()
                if side == "bare":
                    with precision(options, device):
                        _bare_call(loaded.pipe, torch, spec, device)
                else:
                    _sdaudit_call(spec, store, home, device,
                                  study=f"bench-{spec.mode}-{dtype}-{spec.batch_size}-{repeat}")
                times.append(time.perf_counter() - started)
                cpu[side].append(time.process_time() - cpu_started)
    images = len(spec.seeds)
    return {
        "images": images,
        "batch_size": spec.batch_size,
        "dtype": dtype,
        "mode": spec.mode if options else "exact",
        "bare_s": statistics.median(bare),
        "sdaudit_s": statistics.median(ours),
        "ratio": statistics.median(ours) / statistics.median(bare),
        "bare_cpu_s": statistics.median(cpu["bare"]),
        "sdaudit_cpu_s": statistics.median(cpu["sdaudit"]),
        "cpu_ratio": statistics.median(cpu["sdaudit"]) / statistics.median(cpu["bare"]),
        "paired_ratios": [round(o / b, 3) for o, b in zip(ours, bare, strict=True)],  # the noise, repetition by repetition
        "bare_images_per_s": images / statistics.median(bare),
        "sdaudit_images_per_s": images / statistics.median(ours),
    }


def write_sd14_random(folder: Path) -> Path:
    """A random pipeline with SD v1-4's architecture (UNet 859.5M, text 123.1M, VAE 83.7M)."""
    torch, diffusers = import_diffusers()
    from transformers import CLIPTextConfig, CLIPTextModel

    from sdaudit.generation.demo import build_demo_pipeline

    tiny = build_demo_pipeline()  # for its offline tokenizer and SD v1.x PNDM scheduler
    unet = diffusers.UNet2DConditionModel(
        sample_size=64,
        layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=768,
        attention_head_dim=8,
    )
    vae = diffusers.AutoencoderKL(
        latent_channels=4,
        layers_per_block=2,
        sample_size=512,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
            projection_dim=768,
        )
    )
    pipe = diffusers.StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tiny.tokenizer,
        unet=unet,
        scheduler=tiny.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder


def _pixels(pipe, torch, spec: GenerationSpec, seeds: list[int], device: str) -> np.ndarray:
    output = pipe(prompt=[spec.prompt] * len(seeds), num_inference_steps=spec.steps, guidance_scale=spec.guidance,
                  height=spec.height, width=spec.width, output_type="np",
                  generator=[torch.Generator("cpu").manual_seed(seed) for seed in seeds])
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return np.round(np.asarray(output.images, dtype=np.float64) * 255)


def fidelity(images: np.ndarray, exact: np.ndarray) -> tuple[float, float]:
    """The largest difference in levels of 255 and the PSNR in dB (inf where equal) of ``images``
    against ``exact``."""
    mse = float(((images - exact) ** 2).mean())
    return float(np.abs(images - exact).max()), (float("inf") if mse == 0 else 10 * np.log10(255**2 / mse))


def options_table(spec: GenerationSpec, *, option_sets: list[tuple[str, ...]], batch_sizes: list[int], home: Path,
                  device: str, deadline: float, steady_calls: int = 3) -> list[dict]:
    """Each option set against exact mode on the same seeds: warm-up and steady (median of
    ``steady_calls``) seconds of one batch,
    images/s, largest pixel difference and PSNR. A cell that would start after ``deadline`` is skipped."""
    torch, _ = import_diffusers()
    resolved = resolve_model(spec.model, home=home)
    exact: dict[int, np.ndarray] = {}
    rows = []
    for options in [(), *option_sets]:
        name = "exact" if not options else ("fast" if set(options) == set(FAST_OPTIONS) else "+".join(options))
        if time.perf_counter() > deadline:
            print(f"skipped (budget): {spec.dtype} {name}", flush=True)
            continue
        started = time.perf_counter()
        loaded = load_pipeline(resolved, dtype=spec.dtype, device=device, safety_checker=False, options=options)
        loaded.pipe.scheduler = scheduler_for(loaded, spec.scheduler)
        load_s = time.perf_counter() - started
        for batch_size in batch_sizes:
            if time.perf_counter() > deadline:
                print(f"skipped (budget): {spec.dtype} {name} batch {batch_size}", flush=True)
                continue
            seeds = list(range(batch_size))
            with precision(options, device):
                started = time.perf_counter()
                images = _pixels(loaded.pipe, torch, spec, seeds, device)
                warm_up_s = time.perf_counter() - started
                steady = []
                for _ in range(steady_calls):
                    started = time.perf_counter()
                    _pixels(loaded.pipe, torch, spec, seeds, device)
                    steady.append(time.perf_counter() - started)
                steady_s = statistics.median(steady)
            exact.setdefault(batch_size, images)
            largest, psnr = fidelity(images, exact[batch_size])
            row = {"part": "options", "model": spec.model, "device": device, "dtype": spec.dtype, "options": name,
                   "batch_size": batch_size, "steps": spec.steps, "load_s": load_s, "warm_up_s": warm_up_s,
                   "steady_s": steady_s, "images_per_s": batch_size / steady_s, "largest_difference": largest,
                   "psnr_db": psnr}
            rows.append(row)
            _print_options(row)
    return rows


def compile_cache_warm_up(folder: Path, dtype: str, batch_size: int, steps: int, device: str) -> float | None:
    """The first call's seconds in a fresh process whose torch.compile cache this process has just
    filled: what a user's second session pays."""
    code = (
        "import sys,time,torch; sys.argv=['x']\n"
        "from pathlib import Path\n"
        "from sdaudit.generation.pipelines import FAST_OPTIONS,load_pipeline,resolve_model,precision\n"
        f"r=resolve_model({str(folder)!r}); l=load_pipeline(r,dtype={dtype!r},device={device!r},safety_checker=False,"
        "options=FAST_OPTIONS)\n"
        "g=[torch.Generator('cpu').manual_seed(s) for s in range(" + str(batch_size) + ")]\n"
        "t=time.perf_counter()\n"
        f"with precision(FAST_OPTIONS,{device!r}): l.pipe(prompt=['a doctor']*{batch_size},"
        f"num_inference_steps={steps},generator=g,output_type='np')\n"
        "torch.cuda.synchronize(); print(time.perf_counter()-t)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        print(f"compile cache warm-up failed: {done.stderr.strip().splitlines()[-1:]}", flush=True)
        return None
    return float(done.stdout.strip().splitlines()[-1])


def bench_generate(args) -> list[dict]:
    device = resolve_device(args.device)
    cuda = device.startswith("cuda")
    deadline = time.perf_counter() + args.budget_s
    rows = []
    with tempfile.TemporaryDirectory(prefix="sdaudit-bench-") as scratch:
        home = Path(scratch)
        tiny = GenerationSpec(model="demo", prompt="a doctor sitting behind a desk", first_seed=0,
                              last_seed=args.tiny_images - 1, steps=args.steps, height=64, width=64, dtype="float32")
        # 1. sdaudit over a bare call, tiny model
        for batch_size in args.tiny_batch_sizes:
            # on a GPU fast mode compiles for each batch size: the SD table measures it, within its budget
            for mode in ("exact",) if not cuda or args.sd_architecture else ("fast", "exact"):
                spec = dataclasses.replace(tiny, batch_size=batch_size, mode=mode)
                row = {"part": "overhead", "model": "demo (tiny)", "device": device,
                       **compare(spec, repeats=args.repeats, home=home, device=device)}
                rows.append(row)
                _print(row)
        # 2. each option against exact, tiny model (the SD table supersedes it on a GPU)
        if not args.sd_architecture:
            option_sets = [(option,) for option in (FAST_OPTIONS if cuda else CPU_OPTIONS)]
            option_sets.append(FAST_OPTIONS if cuda else CPU_OPTIONS)
            rows.extend(options_table(dataclasses.replace(tiny, model=str(resolve_model("demo", home=home).folder)),
                                      option_sets=option_sets, batch_sizes=args.tiny_batch_sizes, home=home,
                                      device=device, deadline=deadline))
        # 3. SD v1-4's architecture on CUDA
        if cuda and args.sd_architecture:
            started = time.perf_counter()
            folder = write_sd14_random(home / "sd14-random")
            print(f"random SD v1-4 pipeline written in {time.perf_counter() - started:.0f} s", flush=True)
            for index, dtype in enumerate(args.dtypes):
                # each dtype gets its share of the time left, so float32 is not the one always skipped
                dtype_deadline = time.perf_counter() + (deadline - time.perf_counter()) / (len(args.dtypes) - index)
                sd = GenerationSpec(model=str(folder), prompt="a doctor sitting behind a desk", steps=args.sd_steps,
                                    dtype=dtype)
                sets = [(option,) for option in FAST_OPTIONS if option != "tf32" or dtype == "float32"]

                def overhead(mode: str, sd=sd, dtype=dtype, dtype_deadline=dtype_deadline) -> None:
                    for batch_size in args.sd_overhead_batch_sizes:
                        if time.perf_counter() > dtype_deadline:
                            print(f"skipped (budget): overhead {dtype} {mode} batch {batch_size}", flush=True)
                            continue
                        spec = dataclasses.replace(sd, batch_size=batch_size, first_seed=0,
                                                   last_seed=batch_size * args.sd_batches - 1, mode=mode)
                        row = {"part": "overhead", "model": "SD v1-4 architecture (random)", "device": device,
                               **compare(spec, repeats=args.sd_repeats, home=home, device=device)}
                        rows.append(row)
                        _print(row)

                overhead("exact")  # first: the 1.39 question, before the budget runs low
                rows.extend(options_table(sd, option_sets=[*sets, FAST_OPTIONS], batch_sizes=args.batch_sizes,
                                          home=home, device=device, deadline=dtype_deadline, steady_calls=1))
                overhead("fast")  # on the fast pipeline the table left loaded and compiled
                if time.perf_counter() < dtype_deadline:
                    warm = compile_cache_warm_up(folder, dtype, 1, args.sd_steps, device)
                    rows.append({"part": "compile cache", "dtype": dtype, "batch_size": 1, "warm_up_s": warm})
                    print(f"{dtype} fast batch 1: first call in a new process with a warm compile cache: {warm} s",
                          flush=True)
    return rows


def _print(row: dict) -> None:
    print(
        f"{row['model']:<30} {row['device']:<5} {row['dtype']:<8} {row['mode']:<5} batch {row['batch_size']:>2}  "
        f"{row['images']:>3} images  bare {row['bare_s']:7.2f} s ({row['bare_images_per_s']:6.2f} img/s)  "
        f"sdaudit {row['sdaudit_s']:7.2f} s ({row['sdaudit_images_per_s']:6.2f} img/s)  "
        f"ratio {row['ratio']:.3f}  (repetitions {min(row['paired_ratios']):.2f}-{max(row['paired_ratios']):.2f})  "
        f"CPU seconds {row['bare_cpu_s']:.2f} / {row['sdaudit_cpu_s']:.2f}: ratio {row['cpu_ratio']:.3f}",
        flush=True,
    )


def _print_options(row: dict) -> None:
    print(
        f"options {row['options']:<24} {row['device']:<5} {row['dtype']:<8} batch {row['batch_size']:>2}  "
        f"load {row['load_s']:6.1f} s  warm-up {row['warm_up_s']:7.2f} s  steady {row['steady_s']:7.2f} s "
        f"({row['images_per_s']:6.2f} img/s)  largest difference {row['largest_difference']:3.0f}  "
        f"PSNR {row['psnr_db']:6.1f} dB",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/generate_speed.py", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")
    parser.add_argument("--steps", type=int, default=50, help="denoising steps on the tiny model (default 50)")
    parser.add_argument("--repeats", type=int, default=5, help="alternated repetitions on the tiny model")
    parser.add_argument("--tiny-images", type=int, default=16, help="images per repetition on the tiny model")
    parser.add_argument("--tiny-batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--sd-architecture", action="store_true",
                        help="on CUDA, also the table on a random pipeline with SD v1-4's architecture")
    parser.add_argument("--sd-steps", type=int, default=20, help="denoising steps on SD v1-4 (default 20)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8, 16], help="SD v1-4 options table")
    parser.add_argument("--sd-overhead-batch-sizes", type=int, nargs="+", default=[1, 8],
                        help="SD v1-4 batch sizes of the sdaudit-over-bare comparison")
    parser.add_argument("--sd-batches", type=int, default=2, help="batches per SD v1-4 overhead measurement")
    parser.add_argument("--sd-repeats", type=int, default=3, help="alternated repetitions per SD v1-4 overhead cell")
    parser.add_argument("--dtypes", nargs="+", default=["float16", "float32"],
                        choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--budget-s", type=float, default=400,
                        help="start no cell after this many seconds (default 400, so the whole run stays under 8 minutes)")
    parser.add_argument("--json", help="also write the rows as JSON to this file")
    parser.add_argument("--results", action="store_true",
                        help="write the rows to benchmarks/results/<date>-<device>-generate-fast.json "
                        "(on by default with --sd-architecture)")
    parser.add_argument("--threads", type=int,
                        help="torch's CPU threads; 1 on a shared machine, where two threads that spin-wait for each "
                        "other took 8-40 s for what one thread does in 0.6 s")
    args = parser.parse_args(argv)
    if args.threads:
        torch, _ = import_diffusers()
        torch.set_num_threads(args.threads)
    rows = bench_generate(args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if args.results or args.sd_architecture:
        name = f"{time.strftime('%Y-%m-%d')}-{resolve_device(args.device)}-generate-fast.json"
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / name).write_text(json.dumps(rows, indent=1))
        print(f"rows written to {RESULTS / name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
