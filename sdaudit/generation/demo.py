"""The offline demo model: a tiny, random Stable Diffusion pipeline built with no network.

Its images are noise. It exists so that tests, CI and a newcomer with no GPU and no hub access
can run the whole audit through the same ``from_pretrained`` path as a real model. The shapes
follow diffusers' own pipeline tests; the tokenizer is CLIP's byte-level BPE with a vocabulary
of single bytes and no merges, which needs no download.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from sdaudit.config import data_home, import_diffusers

DEMO_WEIGHTS_SEED = 0  # the seed of the demo model's random weights (not an image's seed)
TEXT_DIM = 32
MODEL_INDEX = "model_index.json"


def _byte_vocab() -> dict[str, int]:
    """CLIP's byte-to-unicode table: every byte and its end-of-word form, plus the two specials."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    symbols = [chr(c) for c in chars]
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(tokens)}


def build_demo_pipeline(weights_seed: int = DEMO_WEIGHTS_SEED):
    """Build the tiny random pipeline in memory (deterministic: the same weights for one
    ``weights_seed``; another gives another model, e.g. a second model for a study that compares
    models)."""
    torch, _ = import_diffusers()
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab = _byte_vocab()
    # Without model_max_length the pipeline pads to a huge length and the encoder overflows.
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)

    torch.manual_seed(weights_seed)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_DIM,
        norm_num_groups=2,
        attention_head_dim=2,
    )
    vae = AutoencoderKL(
        block_out_channels=(4, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=2,
        sample_size=64,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
            hidden_size=TEXT_DIM,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            vocab_size=len(vocab),
        )
    )
    # The SD v1.x PNDM configuration, so the demo's scheduler matches the real default's.
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
        num_train_timesteps=1000,
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def write_demo_model(path: str | os.PathLike, *, weights_seed: int = DEMO_WEIGHTS_SEED) -> Path:
    """Build the demo pipeline and ``save_pretrained`` it into ``path`` (created; must be empty).

    The folder is written beside its destination and renamed into place, so a half-written
    model is never left where a later run would load it.
    """
    return _write_folder(path, "the demo model", lambda staging: build_demo_pipeline(weights_seed).save_pretrained(staging))


def _write_folder(path: str | os.PathLike, what: str, save: Callable[[Path], object]) -> Path:
    """``save(folder)`` into a new folder beside ``path``, renamed into place (``path`` must be new or
    empty): a half-written model is never where a later run would load it."""
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValueError(f"{what}'s folder must be new or empty, but {str(target)!r} is not.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".demo-", dir=target.parent))
    try:
        save(staging)
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def _built_once(target: Path, marker: str, write: Callable[[Path], Path]) -> Path:
    """``target``, written by ``write`` unless ``target/marker`` is there. Several processes may ask at
    once (a multi-process run): one build wins the rename and the others use its folder."""
    if not (target / marker).is_file():
        try:
            write(target)
        except (OSError, ValueError):
            if not (target / marker).is_file():
                raise
    return target


def demo_model_path(home: str | os.PathLike | None = None) -> Path:
    """The demo model's folder under the data home, built on first use (by one process of several)."""
    return _built_once(data_home(home) / "models" / "demo", MODEL_INDEX, write_demo_model)


# -- the offline demo CLIP (machine labels, issue 25) ---------------------------------------------

DEMO_CLIP_DIM = 32
DEMO_CLIP_IMAGE_SIZE = 32
DEMO_CLIP_CONFIG = "config.json"


def build_demo_clip(weights_seed: int = DEMO_WEIGHTS_SEED):
    """A tiny random CLIP model and its processor, built with no network: ``(CLIPModel, CLIPProcessor)``.

    Its scores are meaningless (random weights); it exists so that tests and a newcomer with no hub
    can run ``machine-label`` through the same ``from_pretrained`` path as a real CLIP. The tokenizer
    is the demo pipeline's (bytes, no merges); images are resized to 32×32.
    """
    torch, _ = import_diffusers()
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    vocab = _byte_vocab()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    config = CLIPConfig(
        text_config=dict(
            bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"], hidden_size=DEMO_CLIP_DIM, intermediate_size=37,
            num_attention_heads=4, num_hidden_layers=2, max_position_embeddings=77, vocab_size=len(vocab),
        ),
        vision_config=dict(
            hidden_size=DEMO_CLIP_DIM, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
            image_size=DEMO_CLIP_IMAGE_SIZE, patch_size=8,
        ),
        projection_dim=16,
    )
    torch.manual_seed(weights_seed)
    model = CLIPModel(config).eval()
    size = DEMO_CLIP_IMAGE_SIZE
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}),
        tokenizer=tokenizer,
    )
    return model, processor


def write_demo_clip(path: str | os.PathLike, *, weights_seed: int = DEMO_WEIGHTS_SEED) -> Path:
    """Build the demo CLIP and ``save_pretrained`` it (model and processor) into ``path`` (created;
    must be new or empty), written beside it and renamed into place like ``write_demo_model``."""
    def save(staging: Path) -> None:
        model, processor = build_demo_clip(weights_seed)
        model.save_pretrained(staging)
        processor.save_pretrained(staging)

    return _write_folder(path, "the demo CLIP", save)


def demo_clip_path(home: str | os.PathLike | None = None) -> Path:
    """The demo CLIP's folder under the data home (``models/demo-clip``), built on first use."""
    return _built_once(data_home(home) / "models" / "demo-clip", DEMO_CLIP_CONFIG, write_demo_clip)
