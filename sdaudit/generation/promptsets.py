"""Prompt sets: one template with one slot, filled with each value of a list.

``a photo of a {}`` × ``doctor, nurse, CEO`` gives three prompts, each remembered with its slot
value ("doctor") so that a run carries it and targets can name it. ``study_specs`` crosses a
prompt set with several models into the specs of one study, all over the same seeds. The
messages are constants, asserted verbatim in tests.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sdaudit.errors import SdauditError
from sdaudit.files.safe import read_regular
from sdaudit.generation.spec import GenerationSpec

SLOT = "{}"
MAX_VALUES = 500
MAX_VALUE_LENGTH = 200
MAX_LIST_BYTES = 1_000_000

TEMPLATE = "a prompt template must hold the slot {{}} exactly once (e.g. 'a photo of a {{}}') but is {value!r}."
NO_VALUES = "the prompt list {where} holds no values; write one value a line (e.g. doctor)."
DUPLICATE = "the prompt list {where} names {value!r} twice (lines {first} and {second}); give each value once."
TOO_MANY = "the prompt list {where} holds {count} values; at most {max} are allowed."
TOO_LONG = "line {line} of the prompt list {where} is {length} characters long; at most {max} are allowed."
HAS_SLOT = "line {line} of the prompt list {where} holds the slot {{}} itself: {value!r}."
CONTROL = "line {line} of the prompt list {where} holds a NUL, escape or other control character: {value!r}."
NOT_TEXT = "the prompt list {where} is not UTF-8 text."
TOO_BIG = "the prompt list {where} is {size} bytes; at most {max} are read."
NOT_A_FILE = "the prompt list {where} is not a file."
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")  # control characters but tab

DUPLICATE_MODEL = "the model {model!r} is named twice; name each model once."


@dataclass(frozen=True)
class PromptSet:
    """A template with one ``{}`` slot and the values that fill it, in the list's order."""

    template: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        check_template(self.template)
        if not self.values:
            raise SdauditError(NO_VALUES.format(where="given"))

    def prompts(self) -> list[tuple[str, str]]:
        """``(prompt, slot value)`` for each value."""
        return [(fill(self.template, value), value) for value in self.values]


def check_template(template: object) -> str:
    if not isinstance(template, str) or template.count(SLOT) != 1 or not template.replace(SLOT, "").strip():
        raise SdauditError(TEMPLATE.format(value=template))
    return template


def fill(template: str, value: str) -> str:
    """The template with its slot replaced by ``value`` (plain replacement: no format fields)."""
    return template.replace(SLOT, value, 1)


def parse_values(text: str, *, where: str = "given") -> tuple[str, ...]:
    """One value a line, stripped; blank lines are skipped. Each value must be new, short and free
    of the slot itself and of control characters."""
    seen: dict[str, int] = {}
    # Lines end at "\n" (or "\r\n") only: splitlines would also break at separators such as
    # "\x1c", and strip would drop them, so a control character could pass unseen.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if _CONTROL.search(line):
            raise SdauditError(CONTROL.format(line=number, where=where, value=line[:MAX_VALUE_LENGTH]))
        value = line.strip()
        if not value:
            continue
        if len(value) > MAX_VALUE_LENGTH:
            raise SdauditError(TOO_LONG.format(line=number, where=where, length=len(value), max=MAX_VALUE_LENGTH))
        if SLOT in value:
            raise SdauditError(HAS_SLOT.format(line=number, where=where, value=value))
        if value in seen:
            raise SdauditError(DUPLICATE.format(where=where, value=value, first=seen[value], second=number))
        seen[value] = number
    if not seen:
        raise SdauditError(NO_VALUES.format(where=where))
    if len(seen) > MAX_VALUES:
        raise SdauditError(TOO_MANY.format(where=where, count=len(seen), max=MAX_VALUES))
    return tuple(seen)


def read_prompt_list(path: str | os.PathLike) -> tuple[str, ...]:
    """The values of a prompt list file: a regular file (not a link), UTF-8, one value a line."""
    path = Path(path)
    where = str(path)
    if not path.is_file() or path.is_symlink():
        if path.is_symlink() or os.path.lexists(path):
            raise SdauditError(NOT_A_FILE.format(where=where))
        raise SdauditError(f"there is no prompt list at {where}.")
    size = path.stat().st_size
    if size > MAX_LIST_BYTES:
        raise SdauditError(TOO_BIG.format(where=where, size=size, max=MAX_LIST_BYTES))
    data = read_regular(path.parent, path.name, what="the prompt list")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SdauditError(NOT_TEXT.format(where=where)) from None
    return parse_values(text, where=where)


def study_specs(base: GenerationSpec, models: Sequence[str], prompt_set: PromptSet | None = None) -> list[GenerationSpec]:
    """One spec per (prompt, model) — every model over every prompt, all with ``base``'s seeds and
    settings — model by model, in the order given. Without a prompt set, ``base``'s prompt."""
    if len(set(models)) != len(models):
        twice = next(model for model in models if models.count(model) > 1)
        raise SdauditError(DUPLICATE_MODEL.format(model=twice))
    prompts = prompt_set.prompts() if prompt_set is not None else [(base.prompt, base.slot)]
    return [replace(base, model=model, prompt=prompt, slot=slot) for model in models for prompt, slot in prompts]


def check_models(specs: Sequence[GenerationSpec], *, home=None) -> None:
    """With several models, find each one (``resolve_model``) before any is used, so a model that
    cannot load is refused before another model's images are made."""
    models = list(dict.fromkeys(spec.model for spec in specs))
    if len(models) > 1:
        from sdaudit.generation.pipelines import resolve_model

        for model in models:
            resolve_model(model, revision=specs[0].revision, home=home)


def study_job(base: GenerationSpec, models: Sequence[str] = (), prompt_set: PromptSet | None = None) -> dict:
    """What a job stores: ``base``'s spec, plus the study's models and prompt set when it has several
    runs (``job_specs`` makes its specs again)."""
    payload = base.to_dict()
    if len(models) > 1:
        payload["models"] = list(models)
    if prompt_set is not None:
        payload["prompt_template"] = prompt_set.template
        payload["slot_values"] = list(prompt_set.values)
    job_specs(payload)  # a study that cannot be made is refused before it is queued
    return payload


def job_specs(payload: dict) -> list[GenerationSpec]:
    """The specs of a stored job, one per (prompt, model); a job of one run is its one spec."""
    fields = dict(payload)
    models = fields.pop("models", None) or [fields["model"]]
    template, values = fields.pop("prompt_template", None), fields.pop("slot_values", None)
    prompt_set = PromptSet(template, tuple(values)) if template is not None else None
    return study_specs(GenerationSpec(**fields), models, prompt_set)
