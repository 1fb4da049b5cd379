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
