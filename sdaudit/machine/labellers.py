"""What a machine labeller is, and how one is made by name.

A labeller turns a batch of images into ``MachineAnswer`` records (``store/machine.py``): the
study's labels it can answer (person present, gender presentation, MST or lighter/darker; ``None``
for a question it does not answer) and the score of every answer it weighed. Its identity — name,
model, revision, method (prompts per answer, or colour space and distance) and library versions — is
what ``MachineTables.start_labelling`` records, so that the same labeller with the same settings
resumes its labelling and a changed one starts another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from PIL.Image import Image

    from sdaudit.store.machine import MachineAnswer

LABELLERS = ("clip", "skin-pixels")
UNKNOWN_LABELLER = "`labeller` must be one of {choices} but is {value!r}."


class Labeller(Protocol):
    name: str  # one of LABELLERS
    model: str  # a hub id or local folder, or the detector it uses
    model_revision: str | None
    method: dict  # how it answers, as stored with its labelling (JSON)
    versions: dict[str, str]  # library versions

    def label(self, images: Sequence[Image], image_ids: Sequence[int]) -> list[MachineAnswer]:
        """One answer per image, in order."""
        ...


NO_MODEL = "the {labeller} labeller uses its own bundled detector and takes no `model`, but was given {value!r}."


def make_labeller(name: str, model: str | None = None, device: str | None = None, *, home=None) -> Labeller:
    """The labeller called ``name`` (``LABELLERS``), loaded: ``clip`` with ``model`` (default
    ``clip.DEFAULT_CLIP_MODEL``) on ``device`` (default auto: CUDA when present); ``skin-pixels``
    takes neither. Each is imported only here, so naming one never loads the other's libraries."""
    if name not in LABELLERS:
        raise ValueError(UNKNOWN_LABELLER.format(choices=", ".join(LABELLERS), value=name))
    if name == "clip":
        from sdaudit.machine.clip import DEFAULT_CLIP_MODEL, ClipLabeller

        return ClipLabeller(model or DEFAULT_CLIP_MODEL, device=device or "auto", home=home)
    if model is not None:
        raise ValueError(NO_MODEL.format(labeller=name, value=model))
    from sdaudit.machine.skin_pixels import SkinPixelsLabeller

    return SkinPixelsLabeller()
