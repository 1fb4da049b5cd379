"""Prediction-powered shares: a machine labels every image, people label a uniform random subset.

The share of a group is estimated by prediction-powered inference with PPI++ power tuning
(Angelopoulos, Bates, Fannjiang, Jordan, Zrnic, *Science* 382, 2023; Angelopoulos, Duchi, Zrnic,
"PPI++", arXiv:2311.01453), computed by the ``ppi-python`` package (``ppi_py.ppi_mean_ci``)::

    θ̂ = λ · mean(f over the images people did not label) + mean(Y − λ f over the images they did)

where f is the machine's answer (0/1 or a probability) and Y the people's (0/1 or a soft share).
Its standard error is ``sqrt(λ² Var(f)/N_u + Var(Y − λ f)/n)`` (both variances with divisor the
count), and PPI++ picks ``λ = Cov(Y, f) / ((1 + n/N_u) Var(f))``, clipped to [0, 1] (ppi_py's
estimate: the covariance over the labelled images, the variance over all images): λ = 0 is the
people's labels alone, λ = 1 the original PPI.

**Which images are "unlabelled".** The paper's two samples are independent draws of one
population. A uniform random subset of a study's images splits the study into two such samples:
the n images people labelled and the N_u = N − n they did not. So ppi_py is given the machine's
answers on those N − n images only. Passing all N (the n included) would make the two means share
images, and ppi_py's variance, which assumes independence, would be too small by
``2λ(n/N)(Cov − λ Var)/n``: up to a fifth of it when people label a quarter of the images. Nothing
is lost: all-N estimators ``λ' mean_N(f) + mean_n(Y − λ' f)`` are the same family with
``λ = λ'(1 − n/N)``, over which the tuning already searches. The estimand is the model's share (the
population the study's images are drawn from), as everywhere in sdaudit, not the share among these
N images.

**Assumptions.** The human subset is a uniform random sample of the images, drawn independently of
the answers (equal inclusion probabilities; a weighted subset is not handled here), and people
answer blind to the machine's answers. The machine may be biased or err more on some images than
on others (darker skin, say): the human subset corrects its bias; a poor machine only widens the
interval, towards the human-only one (λ → 0).

**Effective sample size.** ``n_eff = Var(Y) / SE²``: the number of human labels that, alone, would
give the PPI standard error (the human-only Wald standard error is ``sqrt(Var(Y)/n)``, so
``n_eff = n · (SE_human / SE_ppi)²``), capped at N. A perfect machine gives about N; a useless
one about n.

**The interval reported** (``low``/``high``) is ``_small_sample_interval``: PPI++'s share read as a
Clopper–Pearson interval over an effective number of human labels, with the variances padded by one
pseudo-image at each corner. ppi_py's own normal interval (``ppi_py_low``/``ppi_py_high``) is kept
beside it for comparison: the simulation (``benchmarks/ppi_coverage.py``, results in
``benchmarks/results/2026-12-07-ppi-coverage.txt``: every combination of shares 5–50%, 2,000–20,000
images, 100–500 human labels and machine errors 5–30% on and off the group, which covers errors
that depend on skin tone; 10,000 studies a cell) finds ppi_py's interval under 94% in 365 of 960 cells,
down to 87.7% at a 5% share with 100 human labels, where the reported one covered 94.9–98.5% in every
cell, at 0.46–0.99 times the human-only Clopper–Pearson width. Checked with one rater's hard labels;
several raters' soft labels are not simulated.

**The human-only interval beside it** is Clopper–Pearson over the n human labels (sdaudit's interval
for hard labels; for soft labels, over their sum), so the two widths compare like with like. ``human_se``
is the human-only normal standard error, PPI's basis at λ = 0, which ``n_eff`` uses. Where the
machine's answers all agree, ppi_py's interval is NaN (no variance to show) and a warning says so;
the reported one is still an interval. No store, no labeller: arrays in, a result out
(``machine_human`` reads a study's).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Real

import numpy as np
import pandas as pd

from sdaudit.analysis.estimate import clopper_pearson_interval
from sdaudit.analysis.options import DEFAULT_CONFIDENCE, check_confidence
from sdaudit.scheme import FAMILIES, GENDERS, SKIN_ANSWERS, UNCLEAR, family_groups

ANSWERS_TEXT = "`{name}` must hold shares from 0 to 1 (NaN only in `human`) but holds {value!r}."
SHAPE_TEXT = "`machine` and `human` must be 1-D arrays of one length (one entry per image) but have shapes {machine} and {human}."
TOO_FEW_TEXT = "PPI needs at least 2 images labelled by people and 1 not, but got {labelled} of {images}."
LAMBDA_TEXT = "`lam` must be None (tuned) or a number from 0 to 1 but is {value!r}."
CODES_LENGTH_TEXT = "`{name}` must be a 1-D array with one entry per image ({images}) but has shape {shape}."
FAMILIES_TEXT = "`families` must name families among {choices} but is {value!r}."
CODES_TEXT = "`{name}` must hold answer codes 1–3 for every image (1 + the index in {cells}) but holds {value!r}."
LABELLED_TEXT = "`labelled` must be a boolean array with one entry per image, but has shape {shape} and dtype {dtype} for {images} images."
DEGENERATE_WARNING = "the standard error of {what} is 0 (every answer the same): its interval is NaN, not a point."

PPI_COLUMNS = [
    "family", "group", "share", "low", "high", "ppi_py_low", "ppi_py_high", "se", "n_machine", "n_human",
    "n_eff", "lambda", "human_share", "human_low", "human_high",
]  # fmt: skip


@dataclass(frozen=True)
class PPIShare:
    """One group's prediction-powered share, with the human-only interval beside it."""

    share: float
    low: float  # the interval sdaudit reports: the small-sample reading (``_small_sample_interval``)
    high: float
    ppi_py_low: float  # ppi_py's own normal interval, for comparison (under-covers: module docstring)
    ppi_py_high: float
    se: float  # ppi_py's standard error
    confidence: float
    n_machine: int  # images the machine answered: all of them
    n_human: int  # images people labelled (the random subset)
    n_eff: float  # human labels that alone would give `se` (module docstring)
    lam: float  # PPI++'s power-tuning λ in [0, 1]
    human_share: float
    human_low: float  # the people's labels alone: Clopper–Pearson over the n human labels
    human_high: float
    human_se: float  # the human-only normal (Wald) standard error, PPI's own basis (n_eff)

    @property
    def width_ratio(self) -> float:
        """The reported width over the human-only Clopper–Pearson width (below 1: the machine helped)."""
        return (self.high - self.low) / (self.human_high - self.human_low)


def _ppi_share_iv(machine, human, confidence, lam) -> tuple[np.ndarray, np.ndarray, float, float | None]:
    machine = np.asarray(machine, dtype=float)
    human = np.asarray(human, dtype=float)
    if machine.ndim != 1 or human.shape != machine.shape:
        raise ValueError(SHAPE_TEXT.format(machine=machine.shape, human=human.shape))
    if np.isnan(machine).any() or (machine < 0).any() or (machine > 1).any():
        raise ValueError(ANSWERS_TEXT.format(name="machine", value=float(machine[np.isnan(machine) | (machine < 0) | (machine > 1)][0])))
    answered = human[~np.isnan(human)]
    if (answered < 0).any() or (answered > 1).any():
        raise ValueError(ANSWERS_TEXT.format(name="human", value=float(answered[(answered < 0) | (answered > 1)][0])))
    labelled = int((~np.isnan(human)).sum())
    if labelled < 2 or labelled == len(human):
        raise ValueError(TOO_FEW_TEXT.format(labelled=labelled, images=len(human)))
    if lam is not None and (isinstance(lam, bool) or not isinstance(lam, Real) or not 0 <= lam <= 1):
        raise ValueError(LAMBDA_TEXT.format(value=lam))
    return machine, human, check_confidence(confidence), None if lam is None else float(lam)


def _ppi_mean_ci():
    """ppi_py's mean interval and point estimate, imported when first needed (it pulls in numba,
    statsmodels and scikit-learn, seconds), and without its import-time
    ``warnings.simplefilter("ignore")`` silencing every later warning in the process."""
    with warnings.catch_warnings():
        from ppi_py import ppi_mean_ci, ppi_mean_pointestimate
    return ppi_mean_ci, ppi_mean_pointestimate


def ppi_share(machine, human, *, confidence: float = DEFAULT_CONFIDENCE, lam: float | None = None) -> PPIShare:
    """The prediction-powered share of one group and its interval at ``confidence``.

    ``machine``: the machine's answer for every image (1 in the group, 0 not, or its probability).
    ``human``: the people's answer (0/1, or the share of raters choosing the group) for the images in
    the uniform random human subset, NaN for the others. ``lam`` fixes λ (None: PPI++'s tuning).
    Where the machine's answers are all the same they carry nothing and λ is 0 (human-only).
    """
    # 1. Check inputs
    machine, human, confidence, lam = _ppi_share_iv(machine, human, confidence, lam)
    labelled = ~np.isnan(human)
    y, f_labelled, f_unlabelled = human[labelled], machine[labelled], machine[~labelled]
    n, images = len(y), len(machine)
    alpha = 1 - confidence

    # 2. The interval, by ppi_py (λ tuned unless fixed, or 0 where the machine never varies)
    ppi_mean_ci, ppi_mean_pointestimate = _ppi_mean_ci()
    if lam is None and np.ptp(machine) == 0:
        lam = 0.0
    if lam is None:
        lam = _tuned_lambda(y, f_labelled, f_unlabelled)
    share = float(np.squeeze(ppi_mean_pointestimate(y, f_labelled, f_unlabelled, lam=lam)))
    ppi_py_low, ppi_py_high = (float(np.squeeze(limit))
                               for limit in ppi_mean_ci(y, f_labelled, f_unlabelled, alpha=alpha, lam=lam))
    se = (ppi_py_high - ppi_py_low) / (2 * _z(confidence))

    # 3. Beside it: the people's labels alone (Clopper–Pearson, sdaudit's interval for hard labels)
    human_share = float(y.mean())
    human_se = float(y.std() / np.sqrt(n))
    human_low, human_high = (float(limit) for limit in clopper_pearson_interval(y.sum(), n, alpha))

    # 4. Degenerate-but-legal data: a warning and NaN for ppi_py's interval, never a zero-width one
    if se == 0:
        warnings.warn(DEGENERATE_WARNING.format(what="ppi_py's PPI interval"), RuntimeWarning, stacklevel=2)
        ppi_py_low = ppi_py_high = np.nan
    # capped at the images, as ``estimate``'s n_eff is: a perfect machine's can pass N only by noise
    # in the two variance estimates (the people's labels against every machine answer)
    n_eff = min(n * (human_se / se) ** 2, images) if se > 0 and human_se > 0 else np.nan
    low, high = _small_sample_interval(share, lam, y, f_labelled, f_unlabelled, confidence)
    return PPIShare(share=share, low=low, high=high, ppi_py_low=ppi_py_low, ppi_py_high=ppi_py_high, se=se,
                    confidence=confidence, n_machine=images, n_human=n, n_eff=float(n_eff), lam=float(lam),
                    human_share=human_share, human_low=human_low, human_high=human_high, human_se=human_se)


def _small_sample_interval(share, lam, y, f_labelled, f_unlabelled, confidence) -> tuple[float, float]:
    """PPI++'s share as a Clopper–Pearson interval over an effective number of human labels, with
    the variances taken as if one more image lay at each corner: (person, machine) = (0, 0), (0, 1),
    (1, 0), (1, 1) among the labelled and machine = 0 and 1 among the others (Agresti and Coull's
    pseudo-observations). The plain interval trusts a variance estimated from the few images where
    the machine and the people disagree, and under-covers when there are none or one
    (``benchmarks/ppi_coverage.py``: 87.7% at a 5% share with 100 human labels); this reading covered
    at least 94.9% in every one of the issue's 960 cells and 94.1% (± 1%) in a wider scan, at 0.2–1.0
    times the human-only Clopper–Pearson width. It is the interval sdaudit reports; soft labels are
    not simulated."""
    y_padded = np.concatenate([y, [0.0, 0.0, 1.0, 1.0]])
    f_padded = np.concatenate([f_labelled, [0.0, 1.0, 0.0, 1.0]])
    f_rest_padded = np.concatenate([f_unlabelled, [0.0, 1.0]])
    variance = lam**2 * f_rest_padded.var() / len(f_unlabelled) + (y_padded - lam * f_padded).var() / len(y)
    size = min(y_padded.var() / variance, len(y) + len(f_unlabelled))
    low, high = clopper_pearson_interval(np.clip(share, 0, 1) * size, size, 1 - confidence)
    return float(low), float(high)


def ppi_row(family: str, group: str, result: PPIShare) -> tuple:
    """One ``PPI_COLUMNS`` row."""
    return (family, group, result.share, result.low, result.high, result.ppi_py_low, result.ppi_py_high, result.se,
            result.n_machine, result.n_human, result.n_eff, result.lam, result.human_share, result.human_low,
            result.human_high)


def _tuned_lambda(y: np.ndarray, f_labelled: np.ndarray, f_unlabelled: np.ndarray) -> float:
    """PPI++'s λ exactly as ``ppi_mean_ci(lam=None)`` computes it (its ``_calc_lam_glm`` for the
    mean, clipped to [0, 1]); computed here so the result can report it."""
    n, unlabelled = len(y), len(f_unlabelled)
    covariance = np.mean((y - y.mean()) * (f_labelled - f_labelled.mean()))
    variance = np.var(np.concatenate([f_labelled, f_unlabelled]), ddof=1)
    return float(np.clip(covariance / ((1 + n / unlabelled) * variance), 0, 1))


def _z(confidence: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(1 - (1 - confidence) / 2))


# -- a family's groups from per-image answer codes ---------------------------------------------------

GENDER_CODES = {group: 1 + index for index, group in enumerate(GENDERS)}  # as labels.answer_codes
SKIN_CODES = {group: 1 + index for index, group in enumerate(SKIN_ANSWERS)}


def group_indicators(family: str, gender: np.ndarray, skin: np.ndarray) -> dict[str, np.ndarray]:
    """Per group of ``family`` (its named groups, then `unclear`), 1.0 where an image's answer codes
    put it in the group. Codes are ``labels.answer_codes``': gender 1 female, 2 male, 3 unclear; skin
    1 lighter, 2 darker, 3 unclear. An intersection is `unclear` when either answer is."""
    if family == "gender":
        return {group: (gender == GENDER_CODES[group]).astype(float) for group in family_groups(family)}
    if family == "skin_tone":
        return {group: (skin == SKIN_CODES[group]).astype(float) for group in family_groups(family)}
    indicators = {}
    for group in FAMILIES["intersection"]:
        tone, sex = group.split("_")
        indicators[group] = ((skin == SKIN_CODES[tone]) & (gender == GENDER_CODES[sex])).astype(float)
    indicators[UNCLEAR] = ((skin == SKIN_CODES[UNCLEAR]) | (gender == GENDER_CODES[UNCLEAR])).astype(float)
    return indicators


def _codes_iv(name: str, codes, images: int, cells: tuple[str, ...], where=None) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 1 or len(codes) != images:
        raise ValueError(CODES_LENGTH_TEXT.format(name=name, images=images, shape=codes.shape))
    checked = codes if where is None else codes[where]
    bad = ~np.isin(checked, (1, 2, 3))
    if bad.any():
        raise ValueError(CODES_TEXT.format(name=name, cells=cells, value=checked[bad][0].item()))
    return codes


def ppi_table(*, machine_gender, machine_skin, human_gender, human_skin, labelled,
              families: tuple[str, ...] = tuple(FAMILIES), confidence: float = DEFAULT_CONFIDENCE) -> pd.DataFrame:
    """Prediction-powered shares of every group of ``families``, one row each (``PPI_COLUMNS``).

    Arrays hold one entry per image: the machine's answer codes for all of them, the people's for
    the images where ``labelled`` (a uniform random subset) is True (elsewhere ignored). Every image
    must carry an answer in each family (`unclear` is a group of its own here, and the share is over
    all the images given): images without a person are left out by the caller.
    """
    if isinstance(families, str) or not set(families) <= set(FAMILIES) or not families:
        raise ValueError(FAMILIES_TEXT.format(choices=tuple(FAMILIES), value=families))
    labelled = np.asarray(labelled)
    images = len(np.asarray(machine_gender))
    if labelled.dtype != bool or labelled.shape != (images,):
        raise ValueError(LABELLED_TEXT.format(shape=labelled.shape, dtype=labelled.dtype, images=images))
    machine_gender = _codes_iv("machine_gender", machine_gender, images, GENDERS)
    machine_skin = _codes_iv("machine_skin", machine_skin, images, SKIN_ANSWERS)
    human_gender = _codes_iv("human_gender", human_gender, images, GENDERS, labelled)
    human_skin = _codes_iv("human_skin", human_skin, images, SKIN_ANSWERS, labelled)
    rows = []
    for family in families:
        machine = group_indicators(family, machine_gender, machine_skin)
        human = group_indicators(family, human_gender, human_skin)
        for group in family_groups(family):
            result = ppi_share(machine[group], np.where(labelled, human[group], np.nan), confidence=confidence)
            rows.append(ppi_row(family, group, result))
    return pd.DataFrame(rows, columns=PPI_COLUMNS)
