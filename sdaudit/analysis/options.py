"""How an estimate is formed: ``EstimateOptions``, the one carrier of the options every face offers
(the Results page, the CLI's flags, the report), with their defaults and checks written once.

Building the CLI's parser reads the defaults from here, so this module imports no scipy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from numbers import Real
from typing import Literal

from sdaudit.analysis.label_modes import DEFAULT_LABELS, LabelMode, check_label_mode
from sdaudit.scheme import DEFAULT_SKIN_CUT, check_skin_cut

Method = Literal["clopper-pearson", "jackknife", "wilson", "bootstrap"]
METHODS: tuple[str, ...] = ("clopper-pearson", "jackknife", "wilson", "bootstrap")
DEFAULT_METHOD = "clopper-pearson"
DEFAULT_CONFIDENCE = 0.95
# The pages' and the report's bootstrap (intervals, agreement) draws from this, so their intervals stay
# put across reruns. "Seed" alone always means an image's random seed.
BOOTSTRAP_RNG_SEED = 0

METHOD_TEXT = "`method` must be one of {choices} but is {value!r}."
CONFIDENCE_TEXT = "`confidence` must be a number strictly between 0 and 1 but is {value!r}."


def check_method(method) -> str:
    if method not in METHODS:
        raise ValueError(METHOD_TEXT.format(choices=", ".join(METHODS), value=method))
    return method


def check_confidence(confidence) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, Real) or not 0 < confidence < 1:
        raise ValueError(CONFIDENCE_TEXT.format(value=confidence))
    return float(confidence)


@dataclass(frozen=True, kw_only=True)
class EstimateOptions:
    """The options of ``estimate.estimate``, checked when built (``ValueError`` naming the option).

    ``include_unclear`` keeps `unclear` answers in the denominator; ``simultaneous`` makes the
    named groups' intervals hold together (Bonferroni); ``labels`` says how an image's label is
    formed (``label_modes``); ``bootstrap_rng_seed`` drives the bootstrap only.
    """

    method: Method = DEFAULT_METHOD
    confidence: float = DEFAULT_CONFIDENCE
    skin_cut: int = DEFAULT_SKIN_CUT
    labels: LabelMode = DEFAULT_LABELS
    simultaneous: bool = False
    include_unclear: bool = True
    bootstrap_rng_seed: int | None = None

    def __post_init__(self) -> None:
        check_method(self.method)
        object.__setattr__(self, "confidence", check_confidence(self.confidence))
        object.__setattr__(self, "skin_cut", check_skin_cut(self.skin_cut))
        check_label_mode(self.labels)
        object.__setattr__(self, "simultaneous", bool(self.simultaneous))
        object.__setattr__(self, "include_unclear", bool(self.include_unclear))

    @property
    def arguments(self) -> dict:
        """``estimate``'s keyword arguments."""
        return asdict(self)
