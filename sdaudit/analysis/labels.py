"""Who is in each group, image by image: the one labelling rule and the per-image labels.

``image_decisions`` says which images have a person (at least half of the raters who answered saw
one) and which annotation rows label them; ``estimate`` (stats.py), ``group_images`` and the
report's audit card all use it, so an image is counted and listed by one rule. Labels are kept
compressed (``Labels``): the distinct per-image label rows and how many images carry each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sdaudit.scheme import DEFAULT_SKIN_CUT, FAMILIES, UNCLEAR, family_groups, is_darker


@dataclass(frozen=True)
class Labels:
    """One family's per-image labels, compressed: the distinct label rows and how many images
    carry each. With one rater per image the rows are one-hot, so a family is just its counts;
    every kernel below works on this form, which is what makes a million rows cheap."""

    rows: np.ndarray  # distinct labels × groups; each row sums to 1
    frequency: np.ndarray  # images per distinct label

    @classmethod
    def from_images(cls, labels: np.ndarray) -> Labels:
        """Compress an images × groups matrix of (soft) labels."""
        if labels.shape[0] == 0:
            return cls(np.zeros((0, labels.shape[1])), np.zeros(0, dtype=np.int64))
        rows, frequency = np.unique(labels, axis=0, return_counts=True)
        return cls(rows, frequency)

    @property
    def n(self) -> int:
        return int(self.frequency.sum())

    @property
    def counts(self) -> np.ndarray:
        return self.frequency @ self.rows


def _codes(column: pd.Series, categories: tuple[str, ...]) -> np.ndarray:
    """1 + the index of each value in ``categories`` (0 for empty or unknown), as int8.

    A categorical column with exactly these categories is used as it is, without hashing text.
    """
    if isinstance(column.dtype, pd.CategoricalDtype) and tuple(column.cat.categories) == categories:
        codes = column.cat.codes.to_numpy()
    else:
        codes = pd.Categorical(column, categories=list(categories)).codes
    return (codes + 1).astype(np.int8)


# Every rater's answer pair is one cell of a 4 × 4 table: gender (none, female, male, unclear) by
# skin tone (none, lighter, darker, unclear). One bincount fills the table; each family's counts
# are sums over it, so all three families cost one pass over the rows.
GENDER_CELLS = ("female", "male", UNCLEAR)
SKIN_CELLS = ("lighter", "darker", UNCLEAR)
DISCARD = 16  # the cell of rows that do not count (no person)


def _joint_cells(annotations: pd.DataFrame, skin_cut: int) -> np.ndarray:
    gender = _codes(annotations["gender"], GENDER_CELLS)
    column = annotations["mst"]
    if column.dtype.kind in "iu" and not column.hasnans:  # every row has an MST value: no text to look at
        skin = is_darker(column.to_numpy(), skin_cut).astype(np.int8) + np.int8(1)
    else:
        binary = _codes(annotations["skin_binary"], SKIN_CELLS)
        mst = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float32)
        with np.errstate(invalid="ignore"):
            skin = np.where(np.isnan(mst), binary, 1 + is_darker(mst, skin_cut)).astype(np.int8)
    gender *= np.int8(4)
    gender += skin
    return gender


def answer_codes(annotations: pd.DataFrame, skin_cut: int) -> tuple[np.ndarray, np.ndarray]:
    """Per annotation row, its gender answer (0 none, then 1 + the index in ``GENDER_CELLS``) and its
    skin-tone answer (0 none, then 1 + the index in ``SKIN_CELLS``: MST cut at ``skin_cut``, or the
    stored lighter/darker/unclear): the same reading of a row as the estimates'."""
    cells = _joint_cells(annotations, skin_cut)
    return cells // 4, cells % 4


def _family_counts(table: np.ndarray, include_unclear: bool) -> dict[str, np.ndarray]:
    """Counts per family × group from (…, 4, 4) gender-by-skin tables."""
    gender = table[..., 1:, :].sum(axis=-1)  # female, male, unclear
    skin = table[..., :, 1:].sum(axis=-2)  # lighter, darker, unclear
    answered_both = table[..., 1:, 1:]
    named = np.stack(
        [answered_both[..., 0, 0], answered_both[..., 1, 0], answered_both[..., 0, 1], answered_both[..., 1, 1]],
        axis=-1,
    )  # lighter_female, lighter_male, darker_female, darker_male
    unclear = answered_both.sum(axis=(-2, -1)) - named.sum(axis=-1)
    intersection = np.concatenate([named, unclear[..., None]], axis=-1)
    counts = {"gender": gender, "skin_tone": skin, "intersection": intersection}
    if not include_unclear:
        counts = {family: values[..., :-1] for family, values in counts.items()}
    return counts


def _image_codes(image_id: pd.Series) -> tuple[np.ndarray, int]:
    """A dense code per image. Whole-number ids in a compact range are used as they are."""
    values = image_id.to_numpy()
    if values.dtype.kind in "iu" and len(values):
        low, high = int(values.min()), int(values.max())
        if high - low < 4 * len(values) + 1024:
            return (values - low).astype(np.int64, copy=False), high - low + 1
    codes, uniques = pd.factorize(image_id, sort=False)
    return codes.astype(np.int64), len(uniques)


def _one_row_per_image(image_id: pd.Series) -> bool:
    """Whether every image has exactly one annotation row (one rater), cheaply when the ids
    come sorted, as the store returns them."""
    values = image_id.to_numpy()
    if len(values) < 2:
        return True
    if values.dtype.kind in "iu" and bool(np.all(values[1:] > values[:-1])):
        return True
    return not image_id.duplicated().any()


@dataclass(frozen=True)
class ImageDecisions:
    """The one labelling rule, shared by estimates, group listings and the audit card: an image has
    a person when at least half of the raters who answered saw one (a tie is not silently dropped),
    and its labels come from the raters who saw one."""

    codes: np.ndarray  # per annotation row: its image's code, 0..images-1
    images: int
    answered: np.ndarray  # per image: some rater said whether a person is present
    with_person: np.ndarray  # per image
    counted: np.ndarray  # per row: this rater saw a person in an image that has one

    @property
    def without_person(self) -> int:
        return int(np.count_nonzero(self.answered & ~self.with_person))


def image_decisions(annotations: pd.DataFrame) -> ImageDecisions:
    """Apply the labelling rule to annotation rows (one per image × rater)."""
    person = annotations["person_present"]
    if person.dtype == bool:
        yes = person.to_numpy()
        said = np.ones(len(person), dtype=bool)
    else:
        said = person.notna().to_numpy()
        yes = person.fillna(False).astype(bool).to_numpy()
    codes, images = _image_codes(annotations["image_id"])
    said_count = np.bincount(codes[said], minlength=images)
    yes_count = np.bincount(codes[yes], minlength=images)
    answered = said_count > 0
    with_person = answered & (2 * yes_count >= said_count)
    return ImageDecisions(codes, images, answered, with_person, yes & with_person[codes])


def labels_by_family(annotations: pd.DataFrame, skin_cut: int, include_unclear: bool) -> tuple[dict[str, Labels], int]:
    """Per family, the compressed per-image labels; and the number of images with a person
    (``image_decisions``' rule)."""
    cells = _joint_cells(annotations, skin_cut)
    if _one_row_per_image(annotations["image_id"]):
        person = annotations["person_present"]
        yes = person.to_numpy() if person.dtype == bool else person.fillna(False).astype(bool).to_numpy()
        # One rater per image: every label is one-hot, so counts are the whole story.
        cells[~yes] = DISCARD
        table = np.bincount(cells, minlength=DISCARD + 1)[:DISCARD].reshape(4, 4)
        labels = {}
        for family, counts in _family_counts(table, include_unclear).items():
            present = counts > 0
            labels[family] = Labels(np.eye(len(counts))[present], counts[present])
        return labels, int(np.count_nonzero(yes))
    decisions = image_decisions(annotations)
    image_codes, n_images, keep = decisions.codes, decisions.images, decisions.counted
    tables = np.bincount(image_codes[keep] * DISCARD + cells[keep].astype(np.int64), minlength=n_images * DISCARD)
    labels = {}
    for family, per_image in _family_counts(tables.reshape(n_images, 4, 4), include_unclear).items():
        answered = per_image.sum(axis=1)
        labels[family] = Labels.from_images(per_image[answered > 0] / answered[answered > 0, None])
    return labels, int(np.count_nonzero(decisions.with_person))



def group_images(annotations: pd.DataFrame, family: str, group: str, *, skin_cut: int = DEFAULT_SKIN_CUT,
                 include_unclear: bool = True) -> pd.DataFrame:
    """The annotation rows (one per image) of images with a person (``image_decisions``) that most
    of their raters who saw one put in ``group``."""
    if family not in FAMILIES:
        raise ValueError(f"`family` must be one of {', '.join(FAMILIES)} but is {family!r}.")
    groups = family_groups(family, include_unclear)
    if group not in groups:
        raise ValueError(f"`group` must be one of {', '.join(groups)} for family {family!r} but is {group!r}.")
    if annotations.empty:
        return annotations.iloc[0:0]
    decisions = image_decisions(annotations)
    image_codes, n_images, counted = decisions.codes, decisions.images, decisions.counted
    cells = _joint_cells(annotations, skin_cut).astype(np.int64)
    tables = np.bincount(image_codes[counted] * DISCARD + cells[counted], minlength=n_images * DISCARD)
    per_image = _family_counts(tables.reshape(n_images, 4, 4), include_unclear)[family]
    answered = per_image.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = per_image[:, groups.index(group)] / answered
    members = np.flatnonzero((answered > 0) & (share >= 0.5))
    first_rows = ~pd.Series(image_codes).duplicated().to_numpy()
    rows = annotations[first_rows & np.isin(image_codes, members)]
    return rows.reset_index(drop=True)
