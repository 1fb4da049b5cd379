"""What a rater team's extra data says: where raters disagree (``disagreements``), how each rater
matches the gold labels (``gold_accuracy``) and their own earlier answers (``self_consistency``),
and the shares as seen by each rater group (``group_estimates``, ``group_comparison``).

Answers are compared field by field, each over the pairs where both sides answered it:

- ``person`` — person present or not;
- ``gender`` — the same gender answer (female, male, unclear), where both saw a person;
- ``mst_exact`` / ``mst_within_one`` — the same Monk Skin Tone, or one tone apart;
- ``skin_binary`` — the same side of the study's lighter/darker cut (MST, or a lighter/darker answer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sdaudit.analysis.estimate import BOOTSTRAP_RESAMPLES, Estimate, clopper_pearson_interval, estimate
from sdaudit.analysis.label_modes import DEFAULT_LABELS
from sdaudit.analysis.labels import answer_codes, image_decisions
from sdaudit.analysis.options import BOOTSTRAP_RNG_SEED
from sdaudit.analysis.planning import compare_runs
from sdaudit.scheme import (
    DEFAULT_SKIN_CUT,
    DISAGREEMENT_WORDS,
    LABEL_COLUMNS,
    Annotation,
    choices_from_annotation,
    family_groups,
    is_darker,
)
from sdaudit.store.team import TeamSettings

MATCH_FIELDS = ("person", "gender", "mst_exact", "mst_within_one", "skin_binary")
ACCURACY_CONFIDENCE = 0.95  # a rater's accuracy on gold (or repeats) comes with its exact interval at this level
NOT_GIVEN = "(not given)"


def disagreements(annotations: pd.DataFrame, settings: TeamSettings) -> pd.DataFrame:
    """Images (rated by two or more raters) whose raters disagree by the study's rules: some saw a
    person and some did not; those who saw one named different genders; their MST answers span
    ``disagree_mst_spread`` or more; or (a study that records lighter/darker) those answers differ. One row per image: ``image_id``, ``run_key``, ``seed``,
    ``raters`` and ``reasons`` (in words), in image order."""
    columns = ["image_id", "run_key", "seed", "raters", "reasons"]
    if annotations.empty:
        return pd.DataFrame(columns=columns)
    rows = annotations.assign(mst=pd.to_numeric(annotations["mst"], errors="coerce"))
    person = rows["person_present"].astype("boolean")
    by_image = rows.assign(
        said_yes=person.fillna(False).astype(bool), said_no=(~person.fillna(True)).astype(bool),
        gender_seen=rows["gender"].where(person.fillna(False).astype(bool)),
        binary_seen=rows["skin_binary"].where(person.fillna(False).astype(bool) & rows["mst"].isna()),
    ).groupby("image_id", sort=True)
    summary = pd.DataFrame({
        "raters": by_image["rater"].nunique(),
        "person_split": by_image["said_yes"].any() & by_image["said_no"].any(),
        "genders": by_image["gender_seen"].nunique(),
        "spread": by_image["mst"].max() - by_image["mst"].min(),
        "sides": by_image["binary_seen"].nunique(),
    })
    reasons = pd.Series([[] for _ in range(len(summary))], index=summary.index, dtype=object)
    rules = []
    if settings.disagree_person:
        rules.append((summary["person_split"], lambda spread: DISAGREEMENT_WORDS["person"]))
    if settings.disagree_gender:
        rules.append((summary["genders"] > 1, lambda spread: DISAGREEMENT_WORDS["gender"]))
    rules.append((summary["spread"] >= settings.disagree_mst_spread,
                  lambda spread: DISAGREEMENT_WORDS["mst"].format(spread=f"{spread:g}")))
    rules.append((summary["sides"] > 1, lambda spread: DISAGREEMENT_WORDS["skin_binary"]))
    for flagged, words in rules:
        for image_id in summary.index[flagged.fillna(False).to_numpy(bool) & (summary["raters"] > 1).to_numpy()]:
            reasons[image_id].append(words(summary.at[image_id, "spread"]))
    listed = summary[reasons.map(bool)].copy()
    listed["reasons"] = reasons[listed.index].map("; ".join)
    places = rows.drop_duplicates("image_id").set_index("image_id")[["run_key", "seed"]]
    listed = listed.join(places)
    return listed.reset_index()[columns]


def annotation_of(row) -> Annotation | None:
    """A stored row's labels (an annotation, a gold or final label; a Series or a named tuple) as an
    ``Annotation``; None for no row."""
    if row is None:
        return None

    def value(name):
        found = getattr(row, name, None)
        return None if found is None or (not isinstance(found, str) and pd.isna(found)) else found

    mst = value("mst")
    return Annotation(person_present=None if value("person_present") is None else bool(value("person_present")),
                      gender=value("gender"), mst=None if mst is None else int(mst),
                      skin_binary=value("skin_binary"), confidence=value("confidence"))


def answers_in_words(rows: pd.DataFrame) -> pd.DataFrame:
    """Each rater's answer (rows of one image) as the Annotate page's choices say it."""
    shown = []
    for row in rows.itertuples():
        words = choices_from_annotation(annotation_of(row))
        shown.append({"Rater": row.rater, "Person": words["person"] or "", "Gender presentation": words["gender"] or "",
                      "Skin tone": words["skin"] or "", "Confidence": words["confidence"] or ""})
    return pd.DataFrame(shown, columns=["Rater", "Person", "Gender presentation", "Skin tone", "Confidence"])


def _skin_side(mst: pd.Series, binary: pd.Series, skin_cut: int) -> pd.Series:
    """lighter / darker from MST at the cut, else the stored lighter/darker answer, else NA."""
    side = pd.Series(np.where(is_darker(mst, skin_cut), "darker", "lighter"), index=mst.index).where(mst.notna())
    return side.fillna(binary.where(binary.isin(["lighter", "darker"])))


def _matches(first: pd.DataFrame, second: pd.DataFrame, skin_cut: int) -> pd.DataFrame:
    """Row by row, whether two answers match in each field (NA where either side did not answer it)."""
    def same(a: pd.Series, b: pd.Series) -> pd.Series:
        return (a == b).astype("boolean").where(a.notna() & b.notna())

    p1, p2 = first["person_present"].astype("boolean"), second["person_present"].astype("boolean")
    both_saw = (p1.fillna(False) & p2.fillna(False)).astype(bool)
    m1, m2 = pd.to_numeric(first["mst"], errors="coerce"), pd.to_numeric(second["mst"], errors="coerce")
    return pd.DataFrame({
        "person": same(p1, p2),
        "gender": same(first["gender"], second["gender"]).where(both_saw),
        "mst_exact": same(m1, m2),
        "mst_within_one": ((m1 - m2).abs() <= 1).astype("boolean").where(m1.notna() & m2.notna()),
        "skin_binary": same(_skin_side(m1, first["skin_binary"], skin_cut),
                            _skin_side(m2, second["skin_binary"], skin_cut)),
    })


def _per_rater(raters: pd.Series, matches: pd.DataFrame, count_name: str) -> pd.DataFrame:
    """Per rater: ``count_name`` (rows), then each field's share of matches (``MATCH_FIELDS``), then
    per field the pairs that answered it (``{field}_pairs``) and the exact (Clopper–Pearson) 95%
    interval of the share (``{field}_low``, ``{field}_high``; NaN where no pair answered it)."""
    table = matches.astype("Float64").assign(rater=raters.to_numpy()).groupby("rater", sort=True)
    shares = table[list(MATCH_FIELDS)].mean().astype(float)
    shares.insert(0, count_name, table.size())
    pairs = table[list(MATCH_FIELDS)].count()
    matched = table[list(MATCH_FIELDS)].sum().astype(float)
    for field in MATCH_FIELDS:
        answered = pairs[field].to_numpy(float)
        low, high = clopper_pearson_interval(matched[field].to_numpy(float), answered, 1 - ACCURACY_CONFIDENCE)
        shares[f"{field}_pairs"] = pairs[field].astype(int)
        shares[f"{field}_low"] = np.where(answered > 0, low, np.nan)
        shares[f"{field}_high"] = np.where(answered > 0, high, np.nan)
    return shares.reset_index()


def gold_accuracy(annotations: pd.DataFrame, gold: pd.DataFrame, *, skin_cut: int = DEFAULT_SKIN_CUT) -> pd.DataFrame:
    """Per rater: gold images they rated (``gold_images``) and the share of them on which each field
    matches the reference (``MATCH_FIELDS``; NaN where no pair answered it), with the number of gold
    images that answered the field and the share's exact 95% interval (``_per_rater``): 3 of 3 is
    100%, but only [29.2%, 100%] can be said of the rater."""
    paired = annotations.merge(gold[["image_id", *LABEL_COLUMNS]],
                               on="image_id", suffixes=("", "_gold"))
    reference = paired[[f"{c}_gold" for c in LABEL_COLUMNS]]
    reference.columns = list(LABEL_COLUMNS)
    return _per_rater(paired["rater"], _matches(paired, reference, skin_cut), "gold_images")


def self_consistency(repeats: pd.DataFrame, *, skin_cut: int = DEFAULT_SKIN_CUT) -> pd.DataFrame:
    """Per rater: repeats answered and the share on which each field matches their first answer
    (``Team.repeats`` gives the pairs)."""
    def side(suffix: str) -> pd.DataFrame:
        frame = repeats[[f"{c}_{suffix}" for c in LABEL_COLUMNS]]
        frame.columns = list(LABEL_COLUMNS)
        return frame

    return _per_rater(repeats["rater"], _matches(side("first"), side("repeat"), skin_cut), "repeats")


# -- rater groups ----------------------------------------------------------------------------------


# A group of one rater is that rater's answer (and its shares are that rater's labels): rater groups
# are shown, on every page, in the CLI and to admins too, only as groups of at least MIN_GROUP_RATERS
# raters; smaller groups are pooled as OTHER_GROUP, and an OTHER_GROUP still smaller is not shown.
MIN_GROUP_RATERS = 5
OTHER_GROUP = "other"
POOLING = (f"Groups of fewer than {MIN_GROUP_RATERS} raters are pooled as “{OTHER_GROUP}” (not shown when fewer "
           f"than {MIN_GROUP_RATERS} raters are in it): a group of one rater would be that rater's answer.")
MIN_RATERS_TEXT = "`min_raters` must be a whole number of at least 1 but is {value!r}."


def rater_group_column(annotations: pd.DataFrame, groups: dict[str, dict[str, str]], field: str, *,
                       min_raters: int = MIN_GROUP_RATERS) -> pd.Series:
    """Each annotation row's rater group in ``field``: the rater's answer (``NOT_GIVEN`` for raters
    who gave none) where at least ``min_raters`` of the raters of ``annotations`` gave it, else
    ``OTHER_GROUP``; None (in no group) for the raters of an ``OTHER_GROUP`` that is still smaller."""
    if isinstance(min_raters, bool) or not isinstance(min_raters, int) or min_raters < 1:
        raise ValueError(MIN_RATERS_TEXT.format(value=min_raters))
    answers = {rater: answers.get(field) for rater, answers in groups.items()}
    group = {rater: answers.get(rater) or NOT_GIVEN for rater in annotations["rater"].unique()}
    size = pd.Series(group).value_counts()
    group = {rater: name if size[name] >= min_raters else OTHER_GROUP for rater, name in group.items()}
    pooled = sum(name == OTHER_GROUP for name in group.values())
    if pooled < min_raters:
        group = {rater: None if name == OTHER_GROUP else name for rater, name in group.items()}
    return annotations["rater"].map(group)


def group_estimates(annotations: pd.DataFrame, groups: dict[str, dict[str, str]], field: str, *,
                    min_raters: int = MIN_GROUP_RATERS, **options) -> dict[str, Estimate]:
    """The study's shares as seen by each rater group in ``field`` (groups of ``min_raters`` or more,
    ``rater_group_column``): one ``estimate`` per group, from that group's raters' annotations only
    (``options`` go to ``estimate``)."""
    column = rater_group_column(annotations, groups, field, min_raters=min_raters)
    return {name: estimate(annotations[column == name], **options) for name in sorted(column.dropna().unique())}


PAIRED = "paired bootstrap over images"  # every image rated by both groups
MIXED = "bootstrap over images, shared images paired"  # some images rated by both groups
UNPAIRED = "Newcombe (no image rated by both)"


@dataclass(frozen=True)
class GroupComparison:
    """Every rater group's shares against a reference group's, per named group."""

    field: str
    reference: str
    estimates: dict[str, Estimate]
    differences: pd.DataFrame  # compare_runs's rows, ``run`` naming the rater group, plus ``method``


def group_comparison(annotations: pd.DataFrame, groups: dict[str, dict[str, str]], field: str, *,
                     reference: str | None = None, confidence: float = 0.95, min_raters: int = MIN_GROUP_RATERS,
                     **options) -> GroupComparison:
    """Each rater group's shares minus ``reference``'s (default: the first group in name order that
    is not ``NOT_GIVEN``), per named group, with an interval that fits how the images were shared.
    Only groups of ``min_raters`` or more raters are compared, smaller ones pooled (``rater_group_column``).

    Groups that rated the same images see the same people, so their shares move together from one
    sample of images to the next; treating them as independent (Newcombe's interval) makes the
    interval far too wide: 0.7% power where the paired analysis has 100% (issue 22). So where the
    two groups rated some images in common, the interval is a percentile bootstrap over images
    (``paired_difference``): the shared images are resampled with both groups' labels together, the
    images only one group rated on their own. Newcombe's interval (``planning.compare_runs``) is kept
    only where no image was rated by both. ``method`` says which, ``shared_images`` how many images
    with a person both groups counted, and ``p_value`` is the test the interval inverts. The estimates
    use soft labels, which the paired analysis takes image by image."""
    labels = options.get("labels", DEFAULT_LABELS)
    if labels != DEFAULT_LABELS:
        raise ValueError(f"rater groups are compared on soft labels (an image's label from its raters); "
                         f"`labels` must be {DEFAULT_LABELS!r} but is {labels!r}.")
    estimates = group_estimates(annotations, groups, field, confidence=confidence, min_raters=min_raters, **options)
    if not estimates:
        raise ValueError(f"rater-group field {field!r} has no group of {min_raters} or more raters; a comparison "
                         "needs two.")
    named = [name for name in estimates if name != NOT_GIVEN] or list(estimates)
    if reference is None:
        reference = named[0]
    if reference not in estimates:
        raise ValueError(f"`reference` must be one of the rater groups {sorted(estimates)} but is {reference!r}.")
    if len(estimates) < 2:
        raise ValueError(f"rater-group field {field!r} has only one group of raters ({', '.join(estimates)}); "
                         "a comparison needs two.")
    differences = compare_runs(estimates, reference=reference, confidence=confidence)
    column = rater_group_column(annotations, groups, field, min_raters=min_raters)
    skin_cut = options.get("skin_cut", DEFAULT_SKIN_CUT)
    include_unclear = options.get("include_unclear", True)
    seed = options.get("bootstrap_rng_seed")
    by_image = {name: labels_by_image(annotations[column == name], skin_cut, include_unclear) for name in estimates}
    differences = differences.assign(method=UNPAIRED, shared_images=0)
    for (name, family), rows in differences.groupby(["run", "family"], sort=False):
        first, second = by_image[name][family], by_image[reference][family]
        shared = len(first.index.intersection(second.index))
        if not shared:
            continue
        rng = np.random.default_rng(BOOTSTRAP_RNG_SEED if seed is None else seed)
        paired = paired_difference(first, second, confidence=confidence, rng=rng).loc[rows["group"]]
        differences.loc[rows.index, ["low", "high", "p_value"]] = paired[["low", "high", "p_value"]].to_numpy()
        differences.loc[rows.index, "method"] = PAIRED if shared == len(first) == len(second) else MIXED
        differences.loc[rows.index, "shared_images"] = shared
    differences["excludes_zero"] = (differences["low"] > 0) | (differences["high"] < 0)
    return GroupComparison(field, reference, estimates, differences)


def labels_by_image(annotations: pd.DataFrame, skin_cut: int = DEFAULT_SKIN_CUT,
                    include_unclear: bool = True) -> dict[str, pd.DataFrame]:
    """Per family, each image's soft label (the share of its raters who saw a person choosing each
    group, ``family_groups`` as columns), indexed by ``image_id``: the images and labels a soft-label
    ``estimate`` of these annotations counts (``labels.image_decisions``, ``labels.answer_codes``)."""
    decisions = image_decisions(annotations)
    gender, skin = answer_codes(annotations, skin_cut)
    counted = decisions.counted
    image, gender, skin = annotations["image_id"].to_numpy()[counted], gender[counted], skin[counted]
    female, male, lighter, darker = gender == 1, gender == 2, skin == 1, skin == 2
    named = {"gender": [female, male], "skin_tone": [lighter, darker],
             "intersection": [female & lighter, male & lighter, female & darker, male & darker]}
    answered = {"gender": gender > 0, "skin_tone": skin > 0, "intersection": (gender > 0) & (skin > 0)}
    labels = {}
    for family, columns in named.items():
        chosen = np.column_stack(columns)
        if include_unclear:  # any other answer is unclear (in the intersection: either part unclear)
            chosen = np.column_stack([chosen, answered[family] & ~chosen.any(axis=1)])
        keep = chosen.any(axis=1)
        frame = pd.DataFrame(chosen[keep].astype(float), columns=list(family_groups(family, include_unclear)))
        labels[family] = frame.groupby(image[keep], sort=True).mean()
    return labels


def paired_difference(first: pd.DataFrame, second: pd.DataFrame, *, confidence: float = 0.95,
                      rng: np.random.Generator, resamples: int = BOOTSTRAP_RESAMPLES) -> pd.DataFrame:
    """``first``'s shares minus ``second``'s (``labels_by_image`` frames of one family), per group,
    with a percentile bootstrap interval over images: the images both rated are resampled with both
    labels together (the pairing), those only one rated on their own, each set keeping its size.
    ``p_value`` is twice the smaller share of resampled differences on either side of zero (at most 1).
    No interval (NaN) where every resample gives the same difference, as ``estimate`` shows no
    zero-width interval. Rows: the groups; columns ``difference``, ``low``, ``high``, ``p_value``."""
    shared = first.index.intersection(second.index)
    width = first.shape[1]
    zeros = np.zeros
    strata = [
        np.hstack([first.loc[shared].to_numpy(), second.loc[shared].to_numpy()]),
        np.hstack([first.drop(shared).to_numpy(), zeros((len(first) - len(shared), width))]),
        np.hstack([zeros((len(second) - len(shared), width)), second.drop(shared).to_numpy()]),
    ]
    sums = zeros((resamples, 2 * width))
    for rows in strata:
        if len(rows):  # equal rows pooled: one multinomial draw per resample (as estimate's bootstrap)
            distinct, frequency = np.unique(rows, axis=0, return_counts=True)
            sums += rng.multinomial(len(rows), frequency / len(rows), size=resamples) @ distinct
    resampled = sums[:, :width] / len(first) - sums[:, width:] / len(second)
    alpha = 1 - confidence
    below, above = (resampled <= 0).mean(axis=0), (resampled >= 0).mean(axis=0)
    low, high = np.quantile(resampled, alpha / 2, axis=0), np.quantile(resampled, 1 - alpha / 2, axis=0)
    # Every resample alike (the groups label every image alike, or differ alike): a zero-width interval
    # would claim a certainty about images not yet rated that these images do not give, so none is shown.
    spread = resampled.max(axis=0) > resampled.min(axis=0)
    return pd.DataFrame({
        "difference": first.to_numpy().mean(axis=0) - second.to_numpy().mean(axis=0),
        "low": np.where(spread, low, np.nan),
        "high": np.where(spread, high, np.nan),
        "p_value": np.where(spread, np.minimum(1.0, 2 * np.minimum(below, above)), np.nan),
    }, index=first.columns)
