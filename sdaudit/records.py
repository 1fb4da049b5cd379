"""Plain records that pass between generation, the store, run folders and the pages.

Kept apart from ``store.py`` so that code handling records (generation, run folders) does not
import the database to name them. The rule for a study's name lives here too: every face that
creates a study checks it with ``check_study_name``, and every file named after a study takes
``study_file_stem``, so a name from an older store can never steer a file elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sdaudit.errors import SdauditError
from sdaudit.scheme import Annotation

DEFAULT_STUDY = "default"
IMPORTED = "external"  # the model and scheduler of a run that holds an imported sheet's images
REFERENCE = "reference"  # the model and scheduler of a run that holds a reference set of real images
MAX_STUDY_NAME = 64
STUDY_NAME = (
    "a study name must be 1 to 64 letters, digits, spaces, '-', '_' or '.', starting with a letter, digit or '_', "
    "but is {value!r}."
)
_STUDY_NAME = re.compile(r"\w[\w .-]*")
_UNSAFE_IN_FILE_NAME = re.compile(r"[^\w .-]+")


def check_study_name(name: object) -> str:
    """``name`` if a new study may be called so, else a ``SdauditError`` naming it.

    Names are checked where studies are created, not where they are read: a store written
    before this rule still opens, and its studies keep their names.
    """
    if not (isinstance(name, str) and len(name) <= MAX_STUDY_NAME and _STUDY_NAME.fullmatch(name)):
        raise SdauditError(STUDY_NAME.format(value=name))
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
    seed: int
    path: str
    prompt: str
    negative_prompt: str
    model: str
    saved: Annotation | None  # None: this rater has not annotated the image yet
    ratings: int = 0  # raters who have annotated the image, this one included
    needed: int = 1  # the study's raters per image
    repeat: bool = False  # shown again, blind, to measure the rater's self-consistency

    @property
    def full(self) -> bool:
        """The image has its raters per image from other raters: this rater's answer is not needed."""
        return self.saved is None and not self.repeat and self.ratings >= self.needed

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
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def seeds(self) -> str:
        return f"{self.spec['first_seed']}–{self.spec['last_seed']}"

    @property
    def model(self) -> str:
        return ", ".join(self.spec.get("models") or [self.spec["model"]])

    @property
    def prompt(self) -> str:
        if "prompt_template" in self.spec:  # a prompt set: "a photo of a {} × doctor, nurse"
            return f"{self.spec['prompt_template']} × {', '.join(self.spec['slot_values'])}"
        return self.spec["prompt"]


def imported_sheet_label(versions: str | dict | None) -> str:
    """How people read a run that holds an imported sheet's images: "imported sheet FILE"."""
    import json

    found = json.loads(versions or "{}") if isinstance(versions, str) else (versions or {})
    name = found.get("imported_from")
    return f"imported sheet {name}" if name else "imported sheet"


def reference_label(versions: str | dict | None) -> str:
    """How people read a reference run: "reference set NAME (SOURCE; LICENSE)"."""
    import json

    found = json.loads(versions or "{}") if isinstance(versions, str) else (versions or {})
    notes = "; ".join(found[key] for key in ("source", "license") if found.get(key))
    return f"reference set {found.get('reference', '')}" + (f" ({notes})" if notes else "")
