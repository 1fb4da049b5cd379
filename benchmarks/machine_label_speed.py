"""``python benchmarks/machine_label_speed.py``: images per second of the ``clip`` machine labeller, and
what sdaudit's labelling costs per image over a bare ``transformers`` CLIP call.

Both sides run in one process on the same loaded model (the tiny offline demo CLIP unless ``--model``),
the same images and the same batches; repetitions alternate the two sides (and which goes first) and
the medians are compared, because these machines are noisy. Three comparisons per batch size:

- ``labeller / bare as documented``: ``ClipLabeller.label`` on images in memory against the bare
  zero-shot call the transformers docs show (``processor(text=prompts, images=batch)``,
  ``model(**inputs)``, a softmax per field over ``logits_per_image``, the top answer per field), which
  embeds the prompts again for every batch;
- ``labeller / bare, prompts once``: the same, against the bare call at its fastest (the prompts
  embedded once, outside the timing): what sdaudit's own code costs;
- ``machine_label / bare, prompts once, PNGs read``: the whole labelling (each PNG read from the data
  home, labelled, each batch's answers written to the DuckDB store in one transaction) against that
  fastest bare call on the same PNGs read with PIL, no store. Each repetition starts a new labelling (its method carries the repetition's
  number), so nothing is skipped as already labelled.

``--clip-l-architecture``: a CLIP with ``openai/clip-vit-large-patch14``'s exact architecture and random
weights (speed does not depend on weight values, and no hub is reachable here), the tiny CLIP's
tokenizer (prompts of a few more tokens), images at 224x224, so the store's and files' costs are seen
beside a real model's per image.

Images are random-noise PNGs (content does not change a CLIP's speed). This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sdaudit.config import import_diffusers
from sdaudit.generation.demo import write_demo_clip
from sdaudit.machine.clip import PROMPTS, ClipLabeller
from sdaudit.machine.job import LabelRequest, machine_label
from sdaudit.records import ImageRecord, RunRecord
from sdaudit.store import Store

STUDY = "speed"


def make_images(home: Path, count: int, size: int) -> list[Path]:
    """``count`` random-noise PNGs under ``home`` and a generated run of them in the store."""
    from PIL import Image

    rng = np.random.default_rng(0)
    folder = home / "images" / "speed"
    folder.mkdir(parents=True)
    paths, records = [], []
    for seed in range(count):
        path = folder / f"{seed}.png"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
        records.append(ImageRecord("speed", seed, path.relative_to(home).as_posix(), f"{seed:064x}", None, None, 1, "cpu"))
    with Store.open(home) as store:
        store.add_runs_and_images([RunRecord("speed", STUDY, "noise", None, None, "noise", "", "none", 0, 0.0, size, size,
                                             "float32", "cpu", 1, False, {})], records)
    return paths


def bare_call(model, processor, torch, images, batch_size: int) -> list[dict]:
    """Zero-shot CLIP with transformers alone: every prompt against every image, a softmax per field."""
    texts = [prompt for answers in PROMPTS.values() for prompt in answers.values()]
    answers = []
    for first in range(0, len(images), batch_size):
        batch = images[first:first + batch_size]
        inputs = processor(text=texts, images=[image.convert("RGB") for image in batch], return_tensors="pt",
                           padding=True)
        with torch.inference_mode():
            logits = model(**inputs).logits_per_image
        answers += top_answers(logits, len(batch))
    return answers


def top_answers(logits, rows: int) -> list[dict]:
    """Per image, each field's top prompt after a softmax over that field's prompts (the bare calls' end)."""
    column, per_field = 0, {}
    for field, choices in PROMPTS.items():
        per_field[field] = logits[:, column:column + len(choices)].softmax(dim=1).tolist()
        column += len(choices)
    return [{field: max(zip(PROMPTS[field], scores[row], strict=True), key=lambda pair: pair[1])[0]
             for field, scores in per_field.items()} for row in range(rows)]


def bare_call_text_once(model, processor, torch, texts, images, batch_size: int) -> list[dict]:
    """The bare call at its fastest: the prompts embedded once (``texts``, unit vectors), then per batch
    the images' embeddings, ``logit_scale × cosine``, a softmax per field and the top answer."""
    answers = []
    for first in range(0, len(images), batch_size):
        batch = images[first:first + batch_size]
        pixels = processor(images=[image.convert("RGB") for image in batch], return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            embedded = model.get_image_features(pixel_values=pixels).pooler_output
            embedded = embedded / embedded.norm(dim=-1, keepdim=True)
            logits = model.logit_scale.exp() * embedded @ texts.T
        answers += top_answers(logits, len(batch))
    return answers


def embedded_prompts(model, processor, torch):
    texts = [prompt for answers in PROMPTS.values() for prompt in answers.values()]
    with torch.inference_mode():
        embedded = model.get_text_features(**processor(text=texts, return_tensors="pt", padding=True)).pooler_output
    return embedded / embedded.norm(dim=-1, keepdim=True)


def write_clip_l_architecture(path: Path) -> Path:
    """A random CLIP with ViT-L/14's configuration (openai/clip-vit-large-patch14's config.json: vision
    1024 wide, 24 layers, 16 heads, patch 14, 224 px; text 768 wide, 12 layers; projection 768)."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    from sdaudit.generation.demo import build_demo_clip

    _, processor = build_demo_clip()
    size = 224
    processor.image_processor.size, processor.image_processor.crop_size = {"shortest_edge": size}, {
        "height": size, "width": size}
    tokens = processor.tokenizer
    config = CLIPConfig(
        text_config=dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
                         max_position_embeddings=77, vocab_size=len(tokens), bos_token_id=tokens.bos_token_id,
                         eos_token_id=tokens.eos_token_id, pad_token_id=tokens.pad_token_id),
        vision_config=dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=24,
                           image_size=size, patch_size=14),
        projection_dim=768,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(path)
    processor.save_pretrained(path)
    return path


def comparisons(labeller, store, home, texts, images, paths, batch_size: int) -> dict:
    """Each comparison's two sides (sdaudit's, the bare call's) at ``batch_size``, as calls."""
    from PIL import Image

    torch, model, processor = sys.modules["torch"], labeller.clip, labeller.processor
    ids = list(range(len(images)))
    request = LabelRequest(STUDY, None, len(images), batch_size)

    def label_all():
        return [labeller.label(images[f:f + batch_size], ids[f:f + batch_size]) for f in range(0, len(images), batch_size)]

    return {
        "labeller / bare as documented": (label_all, lambda: bare_call(model, processor, torch, images, batch_size)),
        "labeller / bare, prompts once": (
            label_all, lambda: bare_call_text_once(model, processor, torch, texts, images, batch_size)),
        "machine_label / bare, prompts once, PNGs read": (
            lambda: machine_label(store, home, labeller, request),
            lambda: bare_call_text_once(model, processor, torch, texts, [Image.open(p) for p in paths], batch_size)),
    }


def timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a local CLIP folder or hub id (default: the tiny demo CLIP, built here)")
    parser.add_argument("--clip-l-architecture", action="store_true",
                        help="a random CLIP with ViT-L/14's architecture instead of the tiny demo CLIP")
    parser.add_argument("--only", choices=["labeller", "machine_label"],
                        help="run only the comparisons that start with this word")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=128, help="image width and height in pixels")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    torch, _ = import_diffusers()
    from PIL import Image

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if args.clip_l_architecture:
            model_path = str(write_clip_l_architecture(scratch / "clip-l"))
        else:
            model_path = args.model or str(write_demo_clip(scratch / "clip"))
        home = scratch / "home"
        paths = make_images(home, args.images, args.size)
        images = [Image.open(path) for path in paths]
        for image in images:
            image.load()
        labeller = ClipLabeller(model_path, device=args.device)
        texts = embedded_prompts(labeller.clip, labeller.processor, torch)
        name = ("random CLIP, ViT-L/14 architecture" if args.clip_l_architecture
                else "demo CLIP (tiny)" if args.model is None else args.model)
        print(f"# python benchmarks/machine_label_speed.py {' '.join(argv if argv is not None else sys.argv[1:])}")
        print(f"# {name} on {labeller.device}, {args.images} noise images of {args.size}x{args.size}, "
              f"{args.threads} torch thread(s), medians of {args.repeats} alternated repetitions")
        with Store.open(home) as store:
            for batch_size in args.batch_sizes:
                for what, (ours, bare) in comparisons(labeller, store, home, texts, images, paths,
                                                      batch_size).items():
                    if args.only and not what.startswith(args.only):
                        continue
                    ours_s, bare_s = [], []
                    for repeat in range(args.repeats + 1):  # the first is a warm-up, not counted
                        labeller.method = {"prompts": PROMPTS, "repetition": f"{batch_size}-{repeat}"}
                        pair = [(ours_s, ours), (bare_s, bare)]
                        for seconds, work in (pair if repeat % 2 else pair[::-1]):
                            took = timed(work)
                            if repeat:
                                seconds.append(took)
                    ours_m, bare_m = statistics.median(ours_s), statistics.median(bare_s)
                    ratios = [o / b for o, b in zip(ours_s, bare_s, strict=True)]
                    count = len(images)
                    print(f"{what:<46} batch {batch_size:>3}  bare {bare_m:7.3f} s ({count / bare_m:7.1f} img/s)  "
                          f"sdaudit {ours_m:7.3f} s ({count / ours_m:7.1f} img/s)  per image "
                          f"{1000 * (ours_m - bare_m) / count:+.2f} ms  ratio {ours_m / bare_m:.3f}  "
                          f"(repetitions {min(ratios):.2f}-{max(ratios):.2f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
