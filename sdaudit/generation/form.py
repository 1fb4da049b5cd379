"""The Generate form's values checked field by field with the spec's own messages.

``GenerationSpec`` stops at its first bad setting; a form with several bad fields should name
each of them at once. So each field is tried alone against the form's defaults, and the whole spec
is built only when every field passes. Nothing here clamps or fixes a value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from sdaudit.generation.promptsets import DUPLICATE_MODEL, PromptSet, check_template, parse_values
from sdaudit.generation.spec import GenerationSpec
from sdaudit.records import Job

BATCH_COUNT = "`batch_count` must be a whole number of at least 1 but is {value!r}."


@dataclass(frozen=True)
class FormCheck:
    """The spec to queue, or each bad field's message (``problems``: field name -> message). A study
    adds its ``models`` (the spec's first) and ``prompt_set``: one run per (prompt, model)."""

    spec: GenerationSpec | None
    problems: dict[str, str] = field(default_factory=dict)
    models: tuple[str, ...] = ()
    prompt_set: PromptSet | None = None

    @property
    def runs(self) -> int:
        return max(1, len(self.models)) * (len(self.prompt_set.values) if self.prompt_set else 1)


def check_form(defaults: GenerationSpec, *, batch_count: int, prompt_template: str = "", slot_values: str = "",
               more_models: str = "", **values) -> FormCheck:
    """Check the form's ``values`` (GenerationSpec fields, ``first_seed`` without ``last_seed``)
    and its ``batch_count``; the seeds run from ``first_seed`` for batch_size × batch_count images.

    A ``prompt_template`` with its ``slot_values`` (one a line) replaces the prompt with a prompt set;
    ``more_models`` (one a line) are generated beside ``values["model"]``.
    """
    base = defaults.to_dict()
    problems: dict[str, str] = {}
    prompt_set = None
    if prompt_template.strip() or slot_values.strip():
        try:
            prompt_set = PromptSet(check_template(prompt_template.strip()),
                                   parse_values(slot_values, where="in the form"))
        except ValueError as error:
            problems["prompt_template"] = str(error)
        else:
            values["prompt"] = prompt_set.prompts()[0][0]  # the set's first prompt stands for it in the checks
    models = tuple(line.strip() for line in more_models.splitlines() if line.strip())
    if models:
        models = (str(values.get("model", defaults.model)), *models)
        if len(set(models)) != len(models):
            twice = next(model for model in models if models.count(model) > 1)
            problems["models"] = DUPLICATE_MODEL.format(model=twice)
    for name, value in values.items():
        trial = {**base, name: value}
        if name == "first_seed":
            trial["last_seed"] = value
        try:
            GenerationSpec(**trial)
        except ValueError as error:
            problems[name] = str(error)
    if batch_count < 1:
        problems["batch_count"] = BATCH_COUNT.format(value=batch_count)
    if problems:
        return FormCheck(None, problems)
    last_seed = values["first_seed"] + values["batch_size"] * batch_count - 1
    try:  # every field is fine alone; together the seed range can still pass the largest seed
        spec = GenerationSpec(**{**base, **values, "last_seed": last_seed})
    except ValueError as error:
        return FormCheck(None, {"seeds": str(error)})
    return FormCheck(spec, models=models, prompt_set=prompt_set)


# What the "Try the demo model" button puts in the form: a run of 8 noise images in seconds.
DEMO_VALUES = {"model": "demo", "steps": 10, "width": 64, "height": 64, "batch_size": 4, "batch_count": 2}


def remembered(defaults: GenerationSpec, jobs: list[Job], study: str) -> tuple[GenerationSpec, int]:
    """The form's starting values for ``study``: its newest job's settings (the last ones used in
    it), else ``defaults``; with the batch count that job implies. A stored spec that no longer
    passes (an older sdaudit's) falls back to the defaults."""
    names = {item.name for item in fields(GenerationSpec)}
    for job in jobs:  # newest first
        if job.kind != "generate" or job.spec.get("study") != study:
            continue
        try:
            spec = GenerationSpec(**{**defaults.to_dict(), **{k: v for k, v in job.spec.items() if k in names}})
        except (TypeError, ValueError):
            break
        images = spec.last_seed - spec.first_seed + 1
        return spec, max(1, math.ceil(images / spec.batch_size))
    return defaults, 1
