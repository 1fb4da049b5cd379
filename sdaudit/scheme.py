"""The annotation scheme: the one place that names labels, Monk Skin Tone swatches and groups,
and the words every face shows people for them (group and family names, notes on unreliable
intervals, table headers). Number formats, verdicts and method names are ``present.words``'.

Raw observations are stored (MST 1–10, per rater); the binary lighter/darker view is derived
with a cut that is a setting, so changing the cut never needs re-annotation.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Literal

GENDERS = ("female", "male", "unclear")
CONFIDENCES = ("low", "medium", "high")
SKIN_BINARY = ("lighter", "darker")
SKIN_ANSWERS = (*SKIN_BINARY, "unclear")  # what `skin_binary` may hold
UNCLEAR = "unclear"
SKIN_TONE_MODES = ("mst", "binary")
MST_LEVELS = tuple(range(1, 11))
DEFAULT_SKIN_CUT = 5  # the origin study: MST 1–5 lighter, 6–10 darker; every face's default
SKIN_CUT_TEXT = "`skin_cut` must be a whole number from 1 to 9 (MST 1..cut is lighter) but is {value!r}."
# A rater's labels of one image, as the store, sheets and every analysis name them.
LABEL_COLUMNS = ("person_present", "gender", "mst", "skin_binary")

# The groups whose shares an audit estimates, by family. Parity is 1/k of a family's k groups;
# `unclear` answers form their own row and have no parity target.
FAMILIES: dict[str, tuple[str, ...]] = {
    "gender": ("female", "male"),
    "skin_tone": SKIN_BINARY,
    "intersection": ("lighter_female", "lighter_male", "darker_female", "darker_male"),
}



def family_groups(family: str, include_unclear: bool = True) -> tuple[str, ...]:
    """A family's groups in table order: its named groups, then `unclear` when it is counted."""
    return (*FAMILIES[family], UNCLEAR) if include_unclear else FAMILIES[family]


def check_skin_cut(skin_cut) -> int:
    """The skin-tone cut as an int; ``ValueError`` (``SKIN_CUT_TEXT``) for anything but 1–9."""
    if isinstance(skin_cut, bool) or not isinstance(skin_cut, Integral) or not 1 <= skin_cut <= 9:
        raise ValueError(SKIN_CUT_TEXT.format(value=skin_cut))
    return int(skin_cut)


def is_darker(mst, skin_cut: int):
    """The one skin-tone cut: MST above ``skin_cut`` is darker, 1..cut lighter (NaN: neither)."""
    return mst > skin_cut


# The official Monk Skin Tone scale, MST 1 (lightest) to MST 10 (darkest).
MST_SWATCHES = (
    "#f6ede4", "#f3e7db", "#f7ead0", "#eadaba", "#d7bd96",
    "#a07e56", "#825c43", "#604134", "#3a312a", "#292420",
)  # fmt: skip

Gender = Literal["female", "male", "unclear"]
Confidence = Literal["low", "medium", "high"]
SkinBinary = Literal["lighter", "darker", "unclear"]


@dataclass(frozen=True)
class Annotation:
    """One rater's labels for one image. Fields left ``None`` are not yet answered.

    ``mst`` is the Monk Skin Tone 1–10; ``skin_binary`` is used instead when a study records
    lighter/darker directly, as the origin study's rater did, or holds ``unclear`` when the
    rater cannot tell a skin tone.
    """

    person_present: bool | None = None
    gender: Gender | None = None
    mst: int | None = None
    skin_binary: SkinBinary | None = None
    confidence: Confidence | None = None

    def __post_init__(self) -> None:
        check_annotation(self)

    @property
    def complete(self) -> bool:
        """Every question answered: person present (or not) and confidence; for a person, also
        gender presentation and skin tone (MST or lighter/darker)."""
        if self.person_present is None or self.confidence is None:
            return False
        return self.person_present is False or (
            self.gender is not None and (self.mst is not None or self.skin_binary is not None))


def check_annotation(annotation: Annotation) -> None:
    """Raise ``ValueError`` naming the first field whose value is not in the scheme."""
    a = annotation
    if a.person_present not in (None, True, False):
        raise ValueError(f"`person_present` must be true, false or empty but is {a.person_present!r}.")
    if a.gender is not None and a.gender not in GENDERS:
        raise ValueError(f"`gender` must be one of {', '.join(GENDERS)} but is {a.gender!r}.")
    if a.mst is not None and (isinstance(a.mst, bool) or a.mst not in MST_LEVELS):
        raise ValueError(f"`mst` must be a Monk Skin Tone from 1 to 10 but is {a.mst!r}.")
    if a.skin_binary is not None and a.skin_binary not in SKIN_ANSWERS:
        raise ValueError(f"`skin_binary` must be one of {', '.join(SKIN_ANSWERS)} but is {a.skin_binary!r}.")
    if a.confidence is not None and a.confidence not in CONFIDENCES:
        raise ValueError(f"`confidence` must be one of {', '.join(CONFIDENCES)} but is {a.confidence!r}.")
    if a.person_present is False and any(
        value is not None for value in (a.gender, a.mst, a.skin_binary)
    ):
        raise ValueError("an image marked `person_present=False` cannot carry gender or skin-tone labels.")


# What raters see, and the stored value each choice stands for.
PERSON_CHOICES = {"Person": True, "No person": False}
GENDER_CHOICES = {"Female-presenting": "female", "Male-presenting": "male", "Unclear": "unclear"}
MST_CHOICES = {f"MST {level}": level for level in MST_LEVELS}
BINARY_SKIN_CHOICES = {f"Lighter (MST 1–{DEFAULT_SKIN_CUT})": "lighter",
                       f"Darker (MST {DEFAULT_SKIN_CUT + 1}–10)": "darker"}
CONFIDENCE_CHOICES = {"Low": "low", "Medium": "medium", "High": "high"}


def annotation_from_choices(person: str | None, gender: str | None, skin: str | None,
                            confidence: str | None) -> Annotation:
    """The stored labels for a card's radio choices (labels as shown). "No person" clears the rest."""
    present = PERSON_CHOICES.get(person) if person is not None else None
    if present is False:
        return Annotation(person_present=False, confidence=CONFIDENCE_CHOICES.get(confidence))
    return Annotation(
        person_present=present,
        gender=GENDER_CHOICES.get(gender) if gender else None,
        mst=MST_CHOICES.get(skin) if skin else None,
        skin_binary=BINARY_SKIN_CHOICES.get(skin) if skin else None,
        confidence=CONFIDENCE_CHOICES.get(confidence) if confidence else None,
    )


def choices_from_annotation(annotation: Annotation | None) -> dict[str, str | None]:
    """The radio labels that show a saved annotation (None where nothing is saved)."""
    def label(choices: dict, value) -> str | None:
        return next((text for text, stored in choices.items() if stored == value), None)

    if annotation is None:
        return {"person": None, "gender": None, "skin": None, "confidence": None}
    skin = label(MST_CHOICES, annotation.mst) if annotation.mst is not None else label(
        BINARY_SKIN_CHOICES, annotation.skin_binary)
    return {
        "person": label(PERSON_CHOICES, annotation.person_present),
        "gender": label(GENDER_CHOICES, annotation.gender),
        "skin": skin,
        "confidence": label(CONFIDENCE_CHOICES, annotation.confidence),
    }


# -- words shown to people: pages, charts and the report all take them from here ----------------

FAMILY_LABELS = {"gender": "Perceived gender presentation", "skin_tone": "Skin tone (Monk scale)",
                 "intersection": "Skin tone × gender presentation"}
GROUP_LABELS = {
    "female": "female-presenting", "male": "male-presenting", "unclear": "unclear",
    "lighter": "lighter", "darker": "darker",
    "lighter_female": "lighter, female-presenting", "lighter_male": "lighter, male-presenting",
    "darker_female": "darker, female-presenting", "darker_male": "darker, male-presenting",
    "no_person": "no person",  # prediction-powered shares are of every image: those without a person are a row
}  # fmt: skip
UNRELIABLE_NOTE = "too few images to trust this interval as stated: read it as rough"
DEGENERATE_NOTE = "no images in this group (or all): no interval can be trusted"
BOOTSTRAP_NOTE = "bootstrap intervals carry resampling noise and are never guaranteed: read as rough"
# An interval's method where Dawid–Skene's refitting bootstrap replaced the one asked for, and its flag's note.
REFIT_METHOD = "bootstrap (refit per resample)"
WEAK_MODEL_NOTE = ("the rater-error model is weakly identified here (few raters, much disagreement, or few images "
                   "on one side): read it as rough")


def reliability_note(method: str, degenerate: bool, small_count: bool) -> str:
    """Why an interval is not to be trusted as stated, in words; empty when it is."""
    if degenerate:
        return DEGENERATE_NOTE
    if small_count:
        return {"bootstrap": BOOTSTRAP_NOTE, REFIT_METHOD: WEAK_MODEL_NOTE}.get(method, UNRELIABLE_NOTE)
    return ""


# Why raters disagree on an image (rater_quality.disagreements' reasons; the team settings' rules).
DISAGREEMENT_WORDS = {"person": "person present split", "gender": "gender differs", "mst": "MST spread {spread}",
                      "skin_binary": "lighter / darker differs"}

# Column headers of the tables people read (the estimates, the plan, run comparisons, the runs).
TABLE_HEADERS = {
    "family": "Family",
    "group": "Group",
    "images": "Images in group",
    "share": "Share",
    "interval": "Interval",
    "target": "Target",
    "difference": "Share − target",
    "verdict": "Verdict",
    "note": "Note",
    "images_for_power": "Images for an 80% chance",
    "more_images": "More images needed",
    "images_for_half_width": "Images for ±5 points",
    "share_first": "Share in the run",
    "share_second": "Share in the reference",
    "run": "Run",
    "run_difference": "Run − reference",
    "excludes_zero": "Clearly different",
    "study": "Study",
    "run_images": "Images",
    "nsfw_images": "NSFW-flagged",
    "model": "Model",
    "model_revision": "Model revision",
    "prompt": "Prompt",
    "slot": "Slot value",
    "negative_prompt": "Negative prompt",
    "scheduler": "Scheduler",
    "steps": "Steps",
    "guidance": "Guidance",
    "size": "Size (width × height)",
    "dtype": "Precision",
    "device": "Device",
    "created_at": "Created",
    "target_source": "Target's source",
    "reference_set": "Reference set",
    "generated_difference": "Generated − reference",
    "reading": "Reading",
}

# Agreement between raters (sdaudit/analysis/agreement.py): the fields compared and the statistics.
AGREEMENT_FIELD_LABELS = {"person": "Person present", "gender": "Perceived gender presentation",
                          "mst": "Monk Skin Tone (1–10, ordinal)", "skin_binary": "Skin tone, lighter / darker"}
AGREEMENT_STATISTIC_LABELS = {"krippendorff_alpha": "Krippendorff's α", "gwet_ac1": "Gwet's AC1",
                              "percent_agreement": "Agreement"}
AGREEMENT_HEADERS = {
    "field": "Field", "statistic": "Statistic", "value": "Value", "interval": "Interval", "images": "Images",
    "raters": "Raters", "rater_a": "Rater", "rater_b": "Other rater", "percent_agreement": "Agreement",
    "krippendorff_alpha": "Krippendorff's α", "gwet_ac1": "Gwet's AC1", "rater": "Rater",
    "agreement_with_others": "Agreement with the others", "alpha_without_rater": "α without this rater",
}
