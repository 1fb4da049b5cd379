"""``python benchmarks/generate_speed.py``: what sdaudit's generation costs over a bare pipeline call.

Both sides run in the same process on the same loaded pipeline with the same arguments (prompt,
seeds, batches, steps, size, one CPU generator per image); sdaudit's side also writes each PNG
with its text chunks and each row into a DuckDB store. Repetitions alternate the two sides and
the medians are compared, because these machines are noisy. On a CUDA machine it also builds a
random pipeline with Stable Diffusion v1-4's exact architecture (speed does not depend on weight
values, and no hub is reachable) and reports images/s by batch size in float16 and float32.
This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sdaudit.config import import_diffusers, resolve_device
from sdaudit.generation.generate import StoreSink, generate
from sdaudit.generation.pipelines import load_pipeline, resolve_model, scheduler_for
from sdaudit.generation.spec import GenerationSpec
from sdaudit.store import Store


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
    """Median seconds of the bare call and of sdaudit's generate, alternated ``repeats`` times."""
    torch, _ = import_diffusers()
    dtype = spec.dtype if spec.dtype != "auto" else ("float16" if device.startswith("cuda") else "float32")
    resolved = resolve_model(spec.model, home=home)
    loaded = load_pipeline(resolved, dtype=dtype, device=device, safety_checker=False)

    loaded.pipe.scheduler = scheduler_for(loaded, spec.scheduler)
    warm_up = dataclasses.replace(spec, last_seed=spec.first_seed + spec.batch_size - 1)
    _bare_call(loaded.pipe, torch, warm_up, device)  # first-call allocations and kernel choices
    bare, ours = [], []
    with Store.open(home) as store:
        for repeat in range(repeats):
            started = time.perf_counter()
            _bare_call(loaded.pipe, torch, spec, device)
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            _sdaudit_call(spec, store, home, device, study=f"bench-{dtype}-{spec.batch_size}-{repeat}")
            ours.append(time.perf_counter() - started)
    images = len(spec.seeds)
    return {
        "images": images,
        "batch_size": spec.batch_size,
        "dtype": dtype,
        "bare_s": statistics.median(bare),
        "sdaudit_s": statistics.median(ours),
        "ratio": statistics.median(ours) / statistics.median(bare),
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


def bench_generate(args) -> list[dict]:
    device = resolve_device(args.device)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sdaudit-bench-") as scratch:
        home = Path(scratch)
        tiny = GenerationSpec(
            model="demo",
            prompt="a doctor sitting behind a desk",
            first_seed=0,
            last_seed=args.tiny_images - 1,
            batch_size=4,
            steps=args.steps,
            height=64,
            width=64,
            dtype="float32",
        )
        row = {"model": "demo (tiny)", "device": device, **compare(tiny, repeats=args.repeats, home=home, device=device)}
        rows.append(row)
        _print(row)
        if device.startswith("cuda") and not args.skip_sd:
            folder = write_sd14_random(home / "sd14-random")
            for dtype in args.dtypes:
                for batch_size in args.batch_sizes:
                    spec = GenerationSpec(
                        model=str(folder),
                        first_seed=0,
                        last_seed=batch_size * args.sd_batches - 1,
                        batch_size=batch_size,
                        steps=args.steps,
                        dtype=dtype,
                    )
                    row = {"model": "SD v1-4 architecture (random)", "device": device,
                           **compare(spec, repeats=args.sd_repeats, home=home, device=device)}
                    rows.append(row)
                    _print(row)
    return rows


def _print(row: dict) -> None:
    print(
        f"{row['model']:<30} {row['device']:<5} {row['dtype']:<8} batch {row['batch_size']:>2}  "
        f"{row['images']:>3} images  bare {row['bare_s']:7.2f} s ({row['bare_images_per_s']:6.2f} img/s)  "
        f"sdaudit {row['sdaudit_s']:7.2f} s ({row['sdaudit_images_per_s']:6.2f} img/s)  "
        f"ratio {row['ratio']:.3f}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/generate_speed.py", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")
    parser.add_argument("--steps", type=int, default=50, help="denoising steps (default 50)")
    parser.add_argument("--repeats", type=int, default=5, help="alternated repetitions on the tiny model")
    parser.add_argument("--tiny-images", type=int, default=16, help="images per repetition on the tiny model")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--sd-batches", type=int, default=2, help="batches per SD v1-4 measurement")
    parser.add_argument("--sd-repeats", type=int, default=1, help="alternated repetitions per SD v1-4 measurement")
    parser.add_argument("--dtypes", nargs="+", default=["float16", "float32"],
                        choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--skip-sd", action="store_true", help="skip the full-size SD v1-4 part on CUDA")
    parser.add_argument("--json", help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)
    rows = bench_generate(args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
