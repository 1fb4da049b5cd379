"""Plain records that pass between generation, the store, run folders and the pages.

Kept apart from ``store/`` so that code handling records (generation, run folders) does not
import the database to name them. Rules about these records live here, once:

- **A run's kind** (``RunRecord.kind``, the store's ``runs.kind`` column): generated, imported (an
  imported sheet's images) or reference (a reference set of real images). Only ``RunRecord.imported``
  and ``RunRecord.reference`` make a run of another kind than generated.
- **A run's name** (``run_label``, ``run_labels``): how every face (pages, CLI, report, charts)
  names a run.
- **A study's name**: every face that may create a study checks it with ``require_new_study``,
  and every file named after a study takes ``study_file_stem``, so a name from an older store can
  never steer a file elsewhere.
- **A rater's name** (``rater_name``): what may be saved as the rater of an answer.

"Seed" means an image's random seed only. An imported sheet's or a reference set's image has no
seed: its number in its set is its ``position`` (the store keeps it in the ``seed`` column).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sdaudit.errors import SdauditError
from sdaudit.scheme import Annotation

DEFAULT_STUDY = "default"
MAX_STUDY_NAME = 64
STUDY_NAME = (
    "a study name must be 1 to 64 letters, digits, spaces, '-', '_' or '.', starting with a letter, digit or '_', "
    "but is {value!r}."
)
RATER_NAME = "{what} needs a rater's name but got {value!r}."
RATER_CONTROL = ("a rater's name must not hold NUL, escape, line breaks, text-direction marks or other control "
                 "characters but is {value!r}.")

RunKind = Literal["generated", "imported", "reference"]
RUN_KINDS: tuple[RunKind, ...] = ("generated", "imported", "reference")
# What the ``model`` (and ``scheduler``, ``dtype``) of a run without generation settings says
# (the kind itself is ``RunRecord.kind``; stores before schema 5 knew it by these words alone).
_NO_SETTINGS: dict[RunKind, str] = {"imported": "external", "reference": "reference"}
_STUDY_NAME = re.compile(r"\w[\w .-]*")
_UNSAFE_IN_FILE_NAME = re.compile(r"[^\w .-]+")
# C0 and C1 control characters, DEL, and the bidirectional controls (a right-to-left override shows
# "ana\u202eeb" as "anabe": one rater's name made to look like another's)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def check_study_name(name: object) -> str:
    """``name`` if a new study may be called so, else a ``SdauditError`` naming it.

    Names are checked where studies are created, not where they are read: a store written
    before this rule still opens, and its studies keep their names.
    """
    if not (isinstance(name, str) and len(name) <= MAX_STUDY_NAME and _STUDY_NAME.fullmatch(name)):
        raise SdauditError(STUDY_NAME.format(value=name))
    return name


def require_new_study(name: object, studies: Collection[str]) -> str:
    """``name`` if a study of that name may be written to: one of ``studies`` (the store's study
    names, found whatever their name), or a name a new study may take (``check_study_name``); else
    a ``SdauditError`` naming it. Every face that may create a study calls this before it writes."""
    if isinstance(name, str) and name in studies:
        return name
    return check_study_name(name)


def rater_name(value: object, *, what: str = "an annotation") -> str:
    """The rater's name ``value`` stripped, or a ``SdauditError`` saying that ``what`` needs one
    (``RATER_NAME``): an answer is never saved under an empty name, nor under one holding a control
    character (``RATER_CONTROL``)."""
    name = value.strip() if isinstance(value, str) else value
    if not (isinstance(name, str) and name):
        raise SdauditError(RATER_NAME.format(what=what, value=name))
    if _CONTROL.search(name):  # a NUL is stored as given; an escape sequence retitles a terminal that prints it
        raise SdauditError(RATER_CONTROL.format(value=name))
    return name


def study_file_stem(name: str) -> str:
    """A study's name made safe as the start of a file name in one folder: runs of anything but
    letters, digits, spaces, '-', '_' and '.' become '_', and a leading '.' is dropped (no hidden file,
    no '..')."""
    stem = _UNSAFE_IN_FILE_NAME.sub("_", name).lstrip(".")
    return stem[:MAX_STUDY_NAME] or "study"


@dataclass(frozen=True)
class RunRecord:
    """One run: every setting that makes its images what they are, keyed by ``run_key``.

    A run holds the images of one study generated with identical settings; seeds are added to
    it over time (resume). ``device`` and ``batch_size`` are those of the run's first images;
    each image row records its own.
    """

    run_key: str
    study: str
    model: str
    model_revision: str | None
    pipeline_class: str | None
    prompt: str
    negative_prompt: str
    scheduler: str
    steps: int
    guidance: float
    width: int
    height: int
    dtype: str
    device: str | None
    batch_size: int | None
    safety_checker: bool
    versions: dict[str, str]
    slot: str | None = None  # the prompt set's value filled into its template ("doctor"), if any
    kind: RunKind = "generated"  # or imported (an imported sheet's images), or reference (a reference set's)

    @classmethod
    def imported(cls, *, run_key: str, study: str, sheet: str, sha256: str) -> RunRecord:
        """The run that holds the images of the imported sheet ``sheet`` (file name), whose
        content has ``sha256``; its images have no files and no generation settings."""
        return cls._without_settings("imported", run_key, study, {"imported_from": sheet, "sha256": sha256})

    @classmethod
    def reference(cls, *, run_key: str, study: str, name: str, source: str | None = None,
                  license: str | None = None) -> RunRecord:
        """The run that holds the reference set ``name`` of real images, with where they come
        from and their license where given."""
        versions = {"reference": name, **({"source": source} if source else {}),
                    **({"license": license} if license else {})}
        return cls._without_settings("reference", run_key, study, versions)

    @classmethod
    def _without_settings(cls, kind: RunKind, run_key: str, study: str, versions: dict[str, str]) -> RunRecord:
        none = _NO_SETTINGS[kind]
        return cls(run_key=run_key, study=study, model=none, model_revision=None, pipeline_class=None, prompt="",
                   negative_prompt="", scheduler=none, steps=0, guidance=0.0, width=0, height=0, dtype=none,
                   device=None, batch_size=None, safety_checker=False, versions=versions, kind=kind)


@dataclass(frozen=True)
class ImageRecord:
    """One generated image. ``path`` is relative to the data home (or run folder)."""

    run_key: str
    seed: int
    path: str
    sha256: str
    nsfw: bool | None
    seconds: float | None
    batch_size: int | None
    device: str | None


@dataclass(frozen=True)
class QueuedImage:
    """One image on a rater's Annotate page, with what that rater has saved for it so far."""

    image_id: int
    run_key: str
    seed: int  # the store's ``seed`` column: a reference set's image has a position there, not a seed
    path: str
    prompt: str
    negative_prompt: str
    model: str
    kind: RunKind  # its run's kind
    saved: Annotation | None  # None: this rater has not annotated the image yet
    ratings: int = 0  # raters who have annotated the image, this one included
    needed: int = 1  # the study's raters per image
    repeat: bool = False  # shown again, blind, to measure the rater's self-consistency

    @property
    def full(self) -> bool:
        """The image has its raters per image from other raters: this rater's answer is not needed."""
        return self.saved is None and not self.repeat and self.ratings >= self.needed

    @property
    def number(self) -> str:
        """The image's number as people read it: "seed 3", or "position 3" in a reference set."""
        return image_number(self.kind, self.seed)

    @property
    def card_key(self) -> str:
        """What the card's widget keys end with: a repeat is a card of its own beside the image's."""
        return f"repeat-{self.image_id}" if self.repeat else str(self.image_id)


@dataclass(frozen=True)
class AnnotationProgress:
    """How far one rater, and the team, are with a study's images (those with files)."""

    yours: int  # images this rater has annotated
    images: int
    complete: int  # images with at least ``needed`` ratings
    needed: int  # the study's raters per image

    @property
    def text(self) -> str:
        rating = "rating" if self.needed == 1 else "ratings"
        return (f"{self.yours} of {self.images} annotated by you · "
                f"{self.complete} of {self.images} images have {self.needed} {rating}")


@dataclass(frozen=True)
class Job:
    """A generation job as the ``jobs`` table holds it, with its spec decoded."""

    job_id: int
    kind: str
    spec: dict
    status: str  # queued, running, done, failed, cancelled or interrupted
    run_key: str | None
    images_done: int
    images_total: int
    step: int
    steps_total: int
    error: str | None
    pid: int | None
    load_seconds: float | None  # how long its latest run's model took to load
    seconds_per_image: float | None  # its pace: wall time per image made, loading left out
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    def elapsed(self, now: datetime) -> float | None:
        """Seconds since it started, up to ``now`` or to its end when it has finished (its clock
        stops then); None before it started."""
        if self.started_at is None:
            return None
        return max(0.0, ((self.finished_at or now) - self.started_at).total_seconds())

    @property
    def seeds(self) -> str:
        if self.kind != "generate":  # a machine-label job labels images, it makes none
            return ""
        return f"{self.spec['first_seed']}–{self.spec['last_seed']}"

    @property
    def model(self) -> str:
        return ", ".join(self.spec.get("models") or [self.spec["model"]])

    @property
    def prompt(self) -> str:
        if self.kind != "generate":
            return f"{self.spec.get('labeller', self.kind)} labels of study {self.spec.get('study', '?')}"
        if "prompt_template" in self.spec:  # a prompt set: "a photo of a {} × doctor, nurse"
            return f"{self.spec['prompt_template']} × {', '.join(self.spec['slot_values'])}"
        return self.spec["prompt"]


def image_number(kind: RunKind, number: int) -> str:
    """How an image's number reads beside it: "seed 3" for a generated image, "position 3" for an
    imported sheet's or a reference set's (it has no seed). ``kind`` is its run's kind."""
    return f"seed {number}" if kind == "generated" else f"position {number}"


def _versions(versions: str | dict | None) -> dict:
    return json.loads(versions or "{}") if isinstance(versions, str) else dict(versions or {})


def run_subject(run) -> str:
    """What a run shows, as its name starts: the slot value (or the whole prompt) of a generated
    run, "imported sheet FILE", or "reference set NAME". ``run`` is a ``RunRecord`` or a
    ``Store.runs`` row (``kind``, ``model``, ``prompt``, ``slot``, ``versions``)."""
    kind = run.kind
    versions = _versions(getattr(run, "versions", None))
    if kind == "imported":
        name = versions.get("imported_from")
        return f"imported sheet {name}" if name else "imported sheet"
    if kind == "reference":
        return f"reference set {versions.get('reference', '')}".rstrip()
    slot = getattr(run, "slot", None)
    return slot if isinstance(slot, str) and slot else str(run.prompt)


def run_label(run) -> str:
    """How every face names a run: "SLOT-OR-PROMPT · MODEL" for a generated run, "imported sheet
    FILE", or "reference set NAME (SOURCE; LICENSE)". ``run`` as for ``run_subject``."""
    kind = run.kind
    if kind == "generated":
        return f"{run_subject(run)} · {run.model}"
    if kind == "reference":
        versions = _versions(getattr(run, "versions", None))
        notes = "; ".join(versions[key] for key in ("source", "license") if versions.get(key))
        return run_subject(run) + (f" ({notes})" if notes else "")
    return run_subject(run)


def run_labels(runs) -> dict[str, str]:
    """Every run of ``runs`` (``Store.runs`` rows) by run key, named by ``run_label``; runs that
    would share a name (one prompt and model, other settings) each end with " · run KEY", so no
    two runs of a table, chart or comparison are taken for one."""
    names = {run.run_key: run_label(run) for run in runs.itertuples()}
    shared = Counter(names.values())
    return {key: f"{name} · run {key}" if shared[name] > 1 else name for key, name in names.items()}
