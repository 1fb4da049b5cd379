"""The ``clip`` labeller: zero-shot CLIP through ``transformers`` (``CLIPModel.from_pretrained``).

Each question is a field with one prompt per answer (``PROMPTS``). An image's score for an answer
is the softmax, over that field's prompts only, of CLIP's logits (``logit_scale × cosine`` of the
image's and the prompt's embeddings); its label is the answer with the highest score. Gender and
skin tone are given only when the person prompt wins (a "no person" image carries no gender or
skin label, as people's annotations do), but every field's scores are stored: raw observations,
from which a threshold or another rule can be derived later without labelling again.

Skin tone is asked as lighter/darker (``skin_binary``), not as MST 1–10: CLIP has never been shown
the Monk scale's numbers, so ten "MST n" prompts would measure the digits, not the skin. ``mst`` is
left empty. The prompts, this rule and the field they answer are the labelling's ``method``: a
changed prompt starts another labelling instead of mixing into an old one.

The revision recorded is the hub commit (the snapshot folder that ``hf_hub_download`` gives for the
model's ``config.json`` — the same cache ``from_pretrained`` reads) for a hub id, and a content hash
of the folder (``local-<sha256 prefix>``, as generation records a local pipeline) for a local folder.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import sdaudit
from sdaudit.config import DEMO_MODEL, import_diffusers, resolve_device
from sdaudit.errors import ModelLoadError
from sdaudit.scheme import Annotation

if TYPE_CHECKING:
    from PIL.Image import Image

    from sdaudit.store.machine import MachineAnswer

DEFAULT_CLIP_MODEL = "openai/clip-vit-large-patch14"
# field -> answer -> prompt. Answers are the values the store holds for that field ("true"/"false"
# for person_present, as JSON keys must be text).
PROMPTS: dict[str, dict[str, str]] = {
    "person_present": {"true": "a photo of a person", "false": "a photo with no people"},
    "gender": {"female": "a photo of a woman", "male": "a photo of a man"},
    "skin_binary": {"lighter": "a photo of a person with light skin", "darker": "a photo of a person with dark skin"},
}
RULE = ("per field, softmax over its prompts of logit_scale x cosine(image, prompt); the label is the top answer; "
        "gender and skin_binary only when person_present is true; mst not answered")
CLIP_HINT = ("give a local CLIP folder (`python -m sdaudit demo-clip DIR` builds a tiny one) or the offline "
             "model `demo`")
NOT_CACHED_OFFLINE = ("could not load CLIP model {model!r}: it is not in the local hub cache and the hub is offline "
                      "(HF_HUB_OFFLINE); download it once online, or " + CLIP_HINT + ".")
NO_FOLDER = "could not load CLIP model {model!r}: no such folder; " + CLIP_HINT + "."
NOT_CLIP = "could not load CLIP model {model!r}: {reason}; " + CLIP_HINT + "."
UNREACHABLE = "could not load CLIP model {model!r}: the hub has no such model or cannot be reached; " + CLIP_HINT + "."


def _local_folder(model: str, home) -> Path | None:
    """The local folder ``model`` names (``demo``: the data home's demo CLIP), or None for a hub id."""
    if model == DEMO_MODEL:
        from sdaudit.generation.demo import demo_clip_path

        return demo_clip_path(home)
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(NOT_CLIP.format(model=model, reason="the folder has no config.json, so it is not a "
                                                 "transformers model"))
        return path
    if model.startswith((".", "/", "~")) or os.sep in model.rstrip("/").split("/", 1)[-1] or model.count("/") > 1:
        raise ModelLoadError(NO_FOLDER.format(model=model))
    return None


def _hub_commit(model: str, revision: str | None) -> str:
    """The hub commit of ``model`` (at ``revision``): the snapshot folder its config lies in."""
    from huggingface_hub import constants, hf_hub_download

    try:
        config = Path(hf_hub_download(model, "config.json", revision=revision))
    except Exception as error:  # the hub client raises many types; all mean "cannot load"
        if constants.HF_HUB_OFFLINE:
            raise ModelLoadError(NOT_CACHED_OFFLINE.format(model=model)) from None
        from sdaudit.generation.pipelines import error_detail

        raise ModelLoadError(UNREACHABLE.format(model=model), detail=error_detail(error)) from None
    return config.parent.name if config.parent.parent.name == "snapshots" else (revision or "unknown")


class ClipLabeller:
    """Zero-shot CLIP labels (``PROMPTS``), batched, on CUDA when present (``device="auto"``)."""

    name = "clip"

    def __init__(self, model: str = DEFAULT_CLIP_MODEL, *, revision: str | None = None, device: str = "auto",
                 home=None):
        # 1. Find the model: a local folder (hashed) or a hub id (its commit), before loading anything
        folder = _local_folder(model, home)
        if folder is not None:
            from sdaudit.generation.pipelines import _folder_fingerprint

            self.model_revision = _folder_fingerprint(folder)
            source, revision = str(folder), None
        else:
            self.model_revision = _hub_commit(model, revision)
            source, revision = model, self.model_revision
        self.model = model
        self.method = {"prompts": PROMPTS, "rule": RULE}

        # 2. Load it with from_pretrained, on the device
        torch, _ = import_diffusers()
        from transformers import CLIPModel, CLIPProcessor

        self.device = resolve_device(device)
        dtype = torch.float16 if self.device == "cuda" else torch.float32
        try:
            self.processor = CLIPProcessor.from_pretrained(source, revision=revision)
            self.clip = CLIPModel.from_pretrained(source, revision=revision, dtype=dtype).to(self.device).eval()
        except (OSError, ValueError, TypeError) as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0].split(". ")[0]
            raise ModelLoadError(NOT_CLIP.format(model=model, reason=reason.rstrip("."))) from None
        self.versions = _versions(torch, self.device)

        # 3. The prompts' embeddings, once: every batch compares its images with the same texts
        self._fields = [(field, list(answers)) for field, answers in PROMPTS.items()]
        texts = [prompt for answers in PROMPTS.values() for prompt in answers.values()]
        tokens = self.processor(text=texts, return_tensors="pt", padding=True).to(self.device)
        with torch.inference_mode():
            self._texts = _unit(_embedding(self.clip.get_text_features(**tokens)))
            self._scale = self.clip.logit_scale.exp()

    def label(self, images: Sequence[Image], image_ids: Sequence[int]) -> list[MachineAnswer]:
        """One answer per image, in order: each field's softmax scores and its top answer."""
        import torch

        from sdaudit.store.machine import MachineAnswer

        if len(images) != len(image_ids):
            raise ValueError(f"`images` and `image_ids` must be as long as each other but are {len(images)} "
                             f"and {len(image_ids)} long.")
        if not images:
            return []
        pixels = self.processor(images=[image.convert("RGB") for image in images], return_tensors="pt")
        with torch.inference_mode():
            pictures = _unit(_embedding(self.clip.get_image_features(
                pixel_values=pixels["pixel_values"].to(self.device, self.clip.dtype))))
            logits = (self._scale * pictures @ self._texts.T).float().cpu()
        answers, column = [], 0
        per_field = {}
        for field, choices in self._fields:
            per_field[field] = (choices, logits[:, column:column + len(choices)].softmax(dim=1).tolist())
            column += len(choices)
        for row, image_id in enumerate(image_ids):
            scores = {field: dict(zip(choices, rows[row], strict=True)) for field, (choices, rows) in per_field.items()}
            top = {field: max(answer_scores, key=answer_scores.get) for field, answer_scores in scores.items()}
            person = top["person_present"] == "true"
            labels = (Annotation(person_present=True, gender=top["gender"], skin_binary=top["skin_binary"])
                      if person else Annotation(person_present=False))
            answers.append(MachineAnswer(int(image_id), labels, scores))
        return answers


def _embedding(output):
    """``get_*_features``' embeddings: a tensor (transformers 4) or the output's ``pooler_output`` (5)."""
    return output if hasattr(output, "norm") else output.pooler_output


def _unit(vectors):
    return vectors / vectors.norm(dim=-1, keepdim=True)


def _versions(torch, device: str) -> dict[str, str]:
    import transformers

    versions = {"python": platform.python_version(), "sdaudit": sdaudit.__version__, "torch": torch.__version__,
                "transformers": transformers.__version__, "device": device}
    if device.startswith("cuda"):
        versions["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return versions
