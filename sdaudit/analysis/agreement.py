"""Agreement between raters, per field: ``agreement(annotations, ...) -> Agreement``.

Fields and what each counts:

- ``person`` — is a person present (nominal: no, yes), over every image some rater answered;
- ``gender`` — perceived gender presentation (nominal: female, male, unclear — all three are
  choices a rater is offered);
- ``mst`` — Monk Skin Tone (**ordinal**, the full domain 1–10 even when some tones are unused);
- ``skin_binary`` — lighter / darker at the study's cut (nominal). An ``unclear`` skin answer (only
  an imported sheet can hold one) is not a point on the scale and is left out.

The last three are counted over images with a person (``labels.image_decisions``, the one
labelling rule), from the raters who saw one, read as the estimates read them
(``labels.answer_codes``).

Statistics: Krippendorff's α from the ``krippendorff`` package (Krippendorff 2011, "Computing
Krippendorff's alpha-reliability"); Gwet's AC1 for several raters with missing ratings (Gwet,
Handbook of Inter-Rater Reliability): pa over images with at least two ratings,
pe = Σ_k π_k(1 − π_k)/(q − 1) with π_k the mean over images of r_ik/r_i and q the size of the
field's full domain; percent agreement, Gwet's pa (the share of agreeing rater pairs, per image,
averaged over images with two or more ratings). AC1 and percent agreement treat MST tones as
categories (one tone apart is a disagreement); only α reads them as ordinal.

Intervals: percentile bootstrap over images. Every statistic is a sum over images, so an image
contributes a fixed coincidence matrix and agreement term; images with the same ratings are
pooled and each resample is one multinomial draw over the distinct rating patterns, which makes
thousands of resamples one matrix product (checked against ``krippendorff.alpha`` in the tests).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from sdaudit.analysis.labels import answer_codes, image_decisions
from sdaudit.analysis.options import check_confidence
from sdaudit.scheme import DEFAULT_SKIN_CUT, GENDERS, LABEL_COLUMNS, MST_LEVELS, SKIN_BINARY, check_skin_cut

FIELDS = ("person", "gender", "mst", "skin_binary")
LEVELS = {"person": "nominal", "gender": "nominal", "mst": "ordinal", "skin_binary": "nominal"}
DOMAINS: dict[str, tuple] = {"person": ("no", "yes"), "gender": GENDERS, "mst": MST_LEVELS,
                             "skin_binary": SKIN_BINARY}
STATISTICS = ("krippendorff_alpha", "gwet_ac1", "percent_agreement")
RESAMPLES = 2000
TABLE_COLUMNS = ["field", "statistic", "value", "low", "high", "images", "raters"]
PAIR_COLUMNS = ["field", "rater_a", "rater_b", "images", "percent_agreement", "krippendorff_alpha", "gwet_ac1"]
RATER_COLUMNS = ["field", "rater", "images", "agreement_with_others", "alpha_without_rater"]

COLUMNS_TEXT = "annotations need the columns {needed}; missing: {missing}."
NEEDED = ("image_id", "rater", *LABEL_COLUMNS)


@dataclass(frozen=True)
class FieldRatings:
    """One field's ratings as a raters × images matrix of domain indices (NaN: not rated), keeping
    only images that at least one rater rated."""

    field: str
    ratings: np.ndarray  # raters × images, float: 0..q-1 or NaN
    raters: tuple[str, ...]

    @property
    def level(self) -> str:
        return LEVELS[self.field]

    @property
    def q(self) -> int:
        return len(DOMAINS[self.field])

    @property
    def images(self) -> int:
        return self.ratings.shape[1]

    @property
    def paired(self) -> np.ndarray:
        """Per image: rated by two or more raters. Agreement is seen only on these images, so they are
        the images every table counts (the summary, every pair, each rater against the others)."""
        return (~np.isnan(self.ratings)).sum(axis=0) >= 2

    @property
    def compared_images(self) -> int:
        return int(np.count_nonzero(self.paired))

    @property
    def compared_raters(self) -> int:
        """Raters who rated any of the ``paired`` images."""
        return int(np.count_nonzero((~np.isnan(self.ratings[:, self.paired])).any(axis=1)))

    def counts(self) -> np.ndarray:
        """images × q: how many raters gave each value to each image."""
        rated = ~np.isnan(self.ratings)
        image = np.broadcast_to(np.arange(self.images), self.ratings.shape)[rated]
        value = self.ratings[rated].astype(np.int64)
        return np.bincount(image * self.q + value, minlength=self.images * self.q).reshape(self.images, self.q)


@dataclass(frozen=True)
class Agreement:
    """Agreement per field and statistic, computed once.

    ``table``: one row per field × statistic (``TABLE_COLUMNS``), ``images`` the images with two or
    more ratings in that field (``FieldRatings.paired``, as in ``pairs`` and ``by_rater``) and
    ``raters`` the raters who rated any of them; ``value`` is NaN
    where the statistic is undefined (fewer than two ratings on every image, or one value only).
    ``pairs``: every pair of raters per field, on the images both rated. ``by_rater``: each
    rater's share of agreeing answers with the other raters on the same images, and α without them.
    """

    table: pd.DataFrame = field(repr=False)
    pairs: pd.DataFrame = field(repr=False)
    by_rater: pd.DataFrame = field(repr=False)
    raters: tuple[str, ...]
    confidence: float
    skin_cut: int

    @property
    def single_rater(self) -> bool:
        return len(self.raters) < 2

    def value(self, field_name: str, statistic: str) -> float:
        rows = self.table[(self.table["field"] == field_name) & (self.table["statistic"] == statistic)]
        if rows.empty:
            raise KeyError(f"no agreement for field {field_name!r}, statistic {statistic!r}")
        return float(rows.iloc[0]["value"])


# -- validation and the ratings of each field ----------------------------------------------------


def _agreement_iv(annotations, confidence, skin_cut):
    check_confidence(confidence)
    check_skin_cut(skin_cut)
    missing = [column for column in NEEDED if column not in annotations.columns]
    if missing:
        raise ValueError(COLUMNS_TEXT.format(needed=", ".join(NEEDED), missing=", ".join(missing)))


def field_ratings(annotations: pd.DataFrame, *, skin_cut: int = DEFAULT_SKIN_CUT) -> dict[str, FieldRatings]:
    """Each field's raters × images matrix, read by the estimates' own rules."""
    rater_codes, raters = pd.factorize(annotations["rater"].astype(str), sort=True)
    raters = tuple(raters)
    decisions = image_decisions(annotations)
    gender, skin = answer_codes(annotations, skin_cut)
    person = annotations["person_present"]
    said = person.notna().to_numpy()
    yes = person.fillna(False).astype(bool).to_numpy()
    mst = pd.to_numeric(annotations["mst"], errors="coerce").to_numpy(dtype=float)
    counted = decisions.counted
    values = {
        "person": (said, yes.astype(float)),
        "gender": (counted & (gender > 0), gender - 1.0),
        "mst": (counted & ~np.isnan(mst), mst - 1),
        "skin_binary": (counted & np.isin(skin, (1, 2)), skin - 1.0),
    }
    result = {}
    for name, (keep, value) in values.items():
        matrix = np.full((len(raters), decisions.images), np.nan)
        matrix[rater_codes[keep], decisions.codes[keep]] = value[keep]
        matrix = matrix[:, (~np.isnan(matrix)).any(axis=0)]
        result[name] = FieldRatings(name, matrix, raters)
    return result


# -- kernels: statistics of weighted rating patterns ---------------------------------------------


def _patterns(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(counts) == 0:
        return counts, np.zeros(0, dtype=np.int64)
    return np.unique(counts, axis=0, return_counts=True)


def _kernel(patterns: np.ndarray, weights: np.ndarray, level: str) -> dict[str, np.ndarray]:
    """α, AC1 and percent agreement for each row of ``weights`` (resamples × patterns: how many
    images carry each distinct rating pattern)."""
    q = patterns.shape[1]
    m = patterns.sum(axis=1)
    pairable = m >= 2
    c, mm = patterns[pairable].astype(float), m[pairable].astype(float)
    w_pair = weights[:, pairable].astype(float)
    # Krippendorff: each image adds (n_uc n_uk − [c = k] n_uc) / (m_u − 1) to the coincidences
    per_image = (c[:, :, None] * c[:, None, :] - c[:, :, None] * np.eye(q)) / (mm - 1)[:, None, None]
    coincidences = (w_pair @ per_image.reshape(len(c), q * q)).reshape(-1, q, q)
    n_c = coincidences.sum(axis=2)
    n = n_c.sum(axis=1)
    if level == "ordinal":  # δ²_ck = (Σ_{g=c..k} n_g − (n_c + n_k)/2)², the same formula either way round
        total = np.cumsum(n_c, axis=1)
        delta = (total[:, None, :] - total[:, :, None] + (n_c[:, :, None] - n_c[:, None, :]) / 2) ** 2
    else:
        delta = np.broadcast_to(1 - np.eye(q), coincidences.shape)
    observed = (coincidences * delta).sum(axis=(1, 2))
    expected = (n_c[:, :, None] * n_c[:, None, :] * delta).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = 1 - (n - 1) * observed / expected
        pa = w_pair @ ((c * (c - 1)).sum(axis=1) / (mm * (mm - 1))) / w_pair.sum(axis=1)
        shares = weights @ (patterns / np.maximum(m, 1)[:, None]) / weights.sum(axis=1)[:, None]
        pe = (shares * (1 - shares)).sum(axis=1) / (q - 1)
        ac1 = (pa - pe) / (1 - pe)
    return {"krippendorff_alpha": alpha, "gwet_ac1": ac1, "percent_agreement": pa}


def krippendorff_alpha(ratings: FieldRatings | np.ndarray, level: str | None = None, q: int | None = None) -> float:
    """Krippendorff's α from the ``krippendorff`` package over the field's full value domain; NaN
    where it is undefined (no image with two ratings, or only one value ever given)."""
    import krippendorff

    if isinstance(ratings, FieldRatings):
        matrix, level, q = ratings.ratings, ratings.level, ratings.q
    else:
        matrix = ratings
    if matrix.size == 0 or not ((~np.isnan(matrix)).sum(axis=0) >= 2).any():
        return float("nan")
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level,
                                        value_domain=list(range(q))))


def field_statistics(ratings: FieldRatings, *, confidence: float = 0.95, rng: np.random.Generator | None = None,
                     resamples: int = RESAMPLES) -> pd.DataFrame:
    """One field's three statistics with percentile-bootstrap intervals over images."""
    patterns, frequency = _patterns(ratings.counts())
    point = _kernel(patterns, frequency[None, :], ratings.level) if len(patterns) else {}
    alpha = krippendorff_alpha(ratings)
    low = high = {}
    if len(patterns):
        rng = rng or np.random.default_rng()
        draws = rng.multinomial(ratings.images, frequency / ratings.images, size=resamples)
        resampled = _kernel(patterns, draws, ratings.level)
        tail = (1 - confidence) / 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN resamples: the interval is NaN
            low = {name: np.nanquantile(values, tail) for name, values in resampled.items()}
            high = {name: np.nanquantile(values, 1 - tail) for name, values in resampled.items()}
    rows = []
    for statistic in STATISTICS:
        value = alpha if statistic == "krippendorff_alpha" else float(point.get(statistic, [np.nan])[0])
        defined = not np.isnan(value)
        rows.append({"field": ratings.field, "statistic": statistic, "value": value,
                     "low": float(low.get(statistic, np.nan)) if defined else np.nan,
                     "high": float(high.get(statistic, np.nan)) if defined else np.nan,
                     "images": ratings.compared_images, "raters": ratings.compared_raters})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def _pairs(ratings: FieldRatings) -> list[dict]:
    rows = []
    for a, b in combinations(range(len(ratings.raters)), 2):
        both = ~np.isnan(ratings.ratings[a]) & ~np.isnan(ratings.ratings[b])
        shared = ratings.ratings[[a, b]][:, both]
        pair = FieldRatings(ratings.field, shared, (ratings.raters[a], ratings.raters[b]))
        patterns, frequency = _patterns(pair.counts())
        point = _kernel(patterns, frequency[None, :], pair.level) if len(patterns) else {}
        rows.append({"field": ratings.field, "rater_a": ratings.raters[a], "rater_b": ratings.raters[b],
                     "images": pair.compared_images,
                     "percent_agreement": float(point["percent_agreement"][0]) if point else np.nan,
                     "krippendorff_alpha": krippendorff_alpha(pair),
                     "gwet_ac1": float(point["gwet_ac1"][0]) if point else np.nan})
    return rows


def _by_rater(ratings: FieldRatings) -> list[dict]:
    matrix = ratings.ratings
    rated = ~np.isnan(matrix)
    rows = []
    for index, rater in enumerate(ratings.raters):
        others = np.delete(np.arange(len(ratings.raters)), index)
        mine = rated[index]
        same = (matrix[others] == matrix[index]) & rated[others] & mine  # NaN never equals
        compared = rated[others] & mine
        images = int(np.count_nonzero(ratings.paired & mine))
        rest = matrix[others]
        rows.append({"field": ratings.field, "rater": rater, "images": images,
                     "agreement_with_others": same.sum() / compared.sum() if compared.any() else np.nan,
                     "alpha_without_rater": krippendorff_alpha(rest, ratings.level, ratings.q)
                     if len(others) >= 2 else np.nan})
    return rows


# -- entry point ---------------------------------------------------------------------------------


def agreement(annotations: pd.DataFrame, *, skin_cut: int = DEFAULT_SKIN_CUT, confidence: float = 0.95,
              bootstrap_rng_seed: int | None = None, resamples: int = RESAMPLES) -> Agreement:
    """Agreement between the raters of ``annotations`` (one row per image × rater, the store's
    ``annotations()``) on every field, with ``confidence`` bootstrap intervals over images
    (``bootstrap_rng_seed`` drives the bootstrap)."""
    _agreement_iv(annotations, confidence, skin_cut)
    rng = np.random.default_rng(bootstrap_rng_seed)
    by_field = field_ratings(annotations, skin_cut=int(skin_cut))
    tables, pairs, by_rater = [], [], []
    for ratings in by_field.values():
        tables.append(field_statistics(ratings, confidence=confidence, rng=rng, resamples=resamples))
        pairs += _pairs(ratings)
        by_rater += _by_rater(ratings)
    raters = next(iter(by_field.values())).raters
    return Agreement(table=pd.concat(tables, ignore_index=True),
                     pairs=pd.DataFrame(pairs, columns=PAIR_COLUMNS),
                     by_rater=pd.DataFrame(by_rater, columns=RATER_COLUMNS),
                     raters=raters, confidence=float(confidence), skin_cut=int(skin_cut))
