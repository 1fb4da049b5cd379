"""What to generate: ``GenerationSpec``, its one validator ``check_spec`` and its limits.

Every face builds a ``GenerationSpec`` (the CLI from its flags, the Generate page from its form,
the job queue from a stored job), so the limits here (``MAX_SEED``, ``MAX_BATCH_SIZE``, …) are
the ones every face shows and enforces. The messages are constants, asserted verbatim in tests.
Nothing here imports torch or diffusers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from sdaudit.config import DEFAULT_MODEL, DEVICES, DTYPES, setting
from sdaudit.records import DEFAULT_STUDY, check_study_name

DEFAULT_PROMPT = "a doctor sitting behind a desk"
# The largest first seed any face accepts: what a browser's number input holds exactly (2**53 - 1),
# so the Generate form and the CLI refuse the same seeds.
MAX_SEED = 2**53 - 1
# Seeds one spec may span: its seeds are listed in memory (a range 0-9007199254740991 died of MemoryError).
MAX_SEEDS = 1_000_000
MAX_BATCH_SIZE = 64
MAX_STEPS = 1000
MAX_SIDE = 4096
# fast: on CUDA, channels-last memory, fused QKV projections, torch.compile and TF32 (pipelines.FAST_OPTIONS);
# exact: none of them. Off CUDA both generate the same way (exact).
MODES = ("fast", "exact")

# name -> (diffusers scheduler class, config overrides). PNDM is the origin study's.
SCHEDULERS: dict[str, tuple[str, dict]] = {
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "ddim": ("DDIMScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler-ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "dpmsolver++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "lms": ("LMSDiscreteScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
}

EMPTY_PROMPT = "`prompt` must be a non-empty text but is {value!r}."
SEED_RANGE = "the seed range {first}-{last} is empty: the first seed must not be above the last (e.g. 0-7)."
SEED_BOUNDS = f"seeds must be whole numbers from 0 to {MAX_SEED}, but the range is {{first}}-{{last}}."
SEED_TEXT = ("`--seeds` must look like A-B with whole numbers written in the digits 0-9 (e.g. 0-7) or a single seed, "
             "but is {value!r}.")
SEED_COUNT = ("the seed range {first}-{last} holds {count:,} seeds; at most {max:,} are generated at once, "
              "so give a shorter range (e.g. {first}-{end}).")
BATCH_SIZE = "`batch_size` must be a whole number from 1 to {max} but is {value!r}."
STEPS = "`steps` must be a whole number from 1 to {max} but is {value!r}."
GUIDANCE = "`guidance` must be a finite number from 0 to 50 but is {value!r}."
SIZE = "`height` and `width` have to be divisible by 8 and between 8 and {max} but are {height} and {width}."
SCHEDULER = "`scheduler` must be one of {choices} but is {value!r}."
DTYPE = "`dtype` must be one of {choices} but is {value!r}."
DEVICE = "`device` must be one of {choices} but is {value!r}."
MODE = "`mode` must be one of {choices} but is {value!r}."
EMPTY_TEXT = "`{name}` must be a non-empty text but is {value!r}."
NUL_TEXT = "`{name}` must not hold a NUL character but is {value!r}."
LONG_TEXT = "`{name}` must be at most {max:,} characters long but is {length:,}."
MAX_TEXT = 100_000  # characters of a prompt, a model, a revision or a slot: run folders hold no more


def _is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class GenerationSpec:
    """What to generate: one prompt over an inclusive seed range, with every setting that matters.

    A spec is validated when it is made (``check_spec``), so an invalid one never exists.
    """

    model: str = DEFAULT_MODEL
    prompt: str = DEFAULT_PROMPT
    negative_prompt: str = ""
    first_seed: int = 0
    last_seed: int = 0
    batch_size: int = 4
    steps: int = 50
    guidance: float = 7.5
    height: int = 512
    width: int = 512
    scheduler: str = "pndm"
    safety_checker: bool = False
    dtype: str = "auto"
    device: str = "auto"
    revision: str | None = None
    study: str = DEFAULT_STUDY
    slot: str | None = None  # the prompt set's value this prompt was made from ("doctor"), if any
    mode: str = "fast"  # "exact" turns every speed option off (MODES)

    def __post_init__(self) -> None:
        check_spec(self)

    @property
    def seeds(self) -> range:
        return range(self.first_seed, self.last_seed + 1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_settings(cls, **fields) -> GenerationSpec:
        """A spec whose model, device and dtype default to the settings (``SDAUDIT_MODEL``,
        ``SDAUDIT_DEVICE``, ``SDAUDIT_DTYPE``) rather than the class defaults, as every face offers
        them; ``fields`` given here win. The other defaults are the class's own."""
        for name in ("model", "device", "dtype"):
            fields.setdefault(name, setting(name))
        return cls(**fields)


def check_spec(spec: GenerationSpec) -> None:
    """Raise ``ValueError`` for the first setting of ``spec`` that cannot be generated."""
    s = spec
    for name in ("model", "study"):
        value = getattr(s, name)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(EMPTY_TEXT.format(name=name, value=value))
    check_study_name(s.study)
    if not isinstance(s.prompt, str) or not s.prompt.strip():
        raise ValueError(EMPTY_PROMPT.format(value=s.prompt))
    if not isinstance(s.negative_prompt, str):
        raise ValueError(f"`negative_prompt` must be a text but is {s.negative_prompt!r}.")
    if not (_is_whole(s.first_seed) and _is_whole(s.last_seed)) or not (
        0 <= s.first_seed <= MAX_SEED and 0 <= s.last_seed <= MAX_SEED
    ):
        raise ValueError(SEED_BOUNDS.format(first=s.first_seed, last=s.last_seed))
    if s.first_seed > s.last_seed:
        raise ValueError(SEED_RANGE.format(first=s.first_seed, last=s.last_seed))
    if s.last_seed - s.first_seed + 1 > MAX_SEEDS:
        raise ValueError(SEED_COUNT.format(first=s.first_seed, last=s.last_seed, count=s.last_seed - s.first_seed + 1,
                                           max=MAX_SEEDS, end=s.first_seed + MAX_SEEDS - 1))
    if not _is_whole(s.batch_size) or not 1 <= s.batch_size <= MAX_BATCH_SIZE:
        raise ValueError(BATCH_SIZE.format(max=MAX_BATCH_SIZE, value=s.batch_size))
    if not _is_whole(s.steps) or not 1 <= s.steps <= MAX_STEPS:
        raise ValueError(STEPS.format(max=MAX_STEPS, value=s.steps))
    if (
        isinstance(s.guidance, bool)
        or not isinstance(s.guidance, (int, float))
        or not math.isfinite(s.guidance)
        or not 0 <= s.guidance <= 50
    ):
        raise ValueError(GUIDANCE.format(value=s.guidance))
    sides = (s.height, s.width)
    if not all(_is_whole(v) and 8 <= v <= MAX_SIDE and v % 8 == 0 for v in sides):
        raise ValueError(SIZE.format(max=MAX_SIDE, height=s.height, width=s.width))
    if s.scheduler not in SCHEDULERS:
        raise ValueError(SCHEDULER.format(choices=", ".join(SCHEDULERS), value=s.scheduler))
    if s.dtype not in DTYPES:
        raise ValueError(DTYPE.format(choices=", ".join(DTYPES), value=s.dtype))
    if s.device not in DEVICES:
        raise ValueError(DEVICE.format(choices=", ".join(DEVICES), value=s.device))
    if s.mode not in MODES:
        raise ValueError(MODE.format(choices=", ".join(MODES), value=s.mode))
    if s.safety_checker not in (True, False):
        raise ValueError(f"`safety_checker` must be true or false but is {s.safety_checker!r}.")
    if s.revision is not None and (not isinstance(s.revision, str) or not s.revision.strip()):
        raise ValueError(EMPTY_TEXT.format(name="revision", value=s.revision))
    if s.slot is not None and (not isinstance(s.slot, str) or not s.slot.strip()):
        raise ValueError(EMPTY_TEXT.format(name="slot", value=s.slot))
    for name in ("model", "prompt", "negative_prompt", "revision", "slot"):
        value = getattr(s, name)
        if value is not None and "\x00" in value:  # a run folder's schema refuses it (and a C library cuts there)
            raise ValueError(NUL_TEXT.format(name=name, value=value))
        if value is not None and len(value) > MAX_TEXT:
            raise ValueError(LONG_TEXT.format(name=name, max=MAX_TEXT, length=len(value)))


def parse_seed_range(text: str) -> tuple[int, int]:
    """``"0-7"`` → ``(0, 7)``; ``"3"`` → ``(3, 3)``. The order is checked by the spec."""
    parts = text.strip().split("-")
    # str.isdigit also accepts '²' and other digits int() refuses: only ASCII 0-9 make a seed
    if len(parts) not in (1, 2) or not all(is_ascii_digits(part.strip()) for part in parts):
        raise ValueError(SEED_TEXT.format(value=text))
    first = int(parts[0])
    return first, int(parts[-1])


def is_ascii_digits(text: str) -> bool:
    """Whether ``text`` is a whole number written with the digits 0-9 only."""
    return text.isascii() and text.isdigit()
