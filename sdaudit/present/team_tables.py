"""A rater team in people's words: what the Team page (admins), the Agreement page and the Results
page show of gold, repeats, adjudication, rater groups and the human sample. Computation is in ``rater_quality.py``;
the tables here only word it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd

from sdaudit.analysis.agreement import agreement
from sdaudit.analysis.label_modes import DEFAULT_LABELS
from sdaudit.analysis.options import BOOTSTRAP_RNG_SEED, EstimateOptions
from sdaudit.analysis.rater_quality import (
    MATCH_FIELDS,
    UNPAIRED,
    answers_in_words,
    disagreements,
    gold_accuracy,
    group_comparison,
    rater_group_column,
    self_consistency,
)
from sdaudit.files.sheets import SDAUDIT_COLUMNS
from sdaudit.present.agreement_tables import summary_table
from sdaudit.present.estimate_tables import comparison_table
from sdaudit.present.words import MATCH_NOTE, match_cell
from sdaudit.scheme import TABLE_HEADERS
from sdaudit.store import Store
from sdaudit.store.machine import HumanSample, MachineTables
from sdaudit.store.queue import SampleProgress
from sdaudit.store.team import Team, TeamSettings

MATCH_HEADERS = {"person": "Person", "gender": "Gender presentation", "mst_exact": "Same MST",
                 "mst_within_one": "MST within one", "skin_binary": "Lighter / darker"}
COUNT_HEADERS = {"gold_images": "Gold images rated", "repeats": "Repeats answered"}
GROUPS_CAVEAT = ("Where the groups rated the same images, the interval compares them image by image (a bootstrap "
                 "over images that keeps both groups' labels of an image together); Newcombe's interval only where "
                 "no image was rated by both. The Interval method column says which.")
METHOD_HEADER = "Interval method"


def match_table(frame: pd.DataFrame) -> pd.DataFrame:
    """``gold_accuracy`` or ``self_consistency`` in people's words: per field the share of matches,
    how many of how many, and the exact 95% interval (``words.match_cell``)."""
    shown = frame[["rater", frame.columns[1]]].copy()
    for column in MATCH_FIELDS:
        shown[column] = [match_cell(share, pairs, low, high) for share, pairs, low, high in zip(
            frame[column], frame[f"{column}_pairs"], frame[f"{column}_low"], frame[f"{column}_high"])]
    return shown.rename(columns={"rater": "Rater", **COUNT_HEADERS, **MATCH_HEADERS})


@dataclass(frozen=True)
class QualityView:
    """Per rater: accuracy on gold images and self-consistency on repeats (empty tables when none)."""

    gold: pd.DataFrame = field(repr=False)
    repeats: pd.DataFrame = field(repr=False)


def quality_text(view: QualityView) -> str:
    """The gold and repeat tables as plain text for the CLI, each only when it has rows."""
    parts = [f"{title} ({MATCH_NOTE})\n{table.to_string(index=False)}" for title, table in (
        ("each rater against the gold images", view.gold), ("each rater against their own repeats", view.repeats))
        if not table.empty]
    return "\n\n".join(parts)


def quality_view(store: Store, study: str, *, skin_cut: int) -> QualityView:
    team = Team(store)
    annotations = store.annotations(study=study)
    gold = gold_accuracy(annotations, team.gold(study), skin_cut=skin_cut)
    repeats = self_consistency(team.repeats(study), skin_cut=skin_cut)
    return QualityView(gold=match_table(gold), repeats=match_table(repeats))


@dataclass(frozen=True)
class AdjudicationItem:
    image_id: int
    run_key: str
    seed: int
    path: str
    reasons: str
    answers: pd.DataFrame = field(repr=False)  # every rater's answer, in words
    final: pd.Series | None = field(default=None, repr=False)  # the recorded final label, if any


@dataclass(frozen=True)
class AdjudicationQueue:
    """The images of a study whose raters disagree (by its settings), each with its answers."""

    study: str
    settings: TeamSettings
    items: tuple[AdjudicationItem, ...]

    @property
    def open(self) -> int:
        return sum(item.final is None for item in self.items)

    def label(self, item: AdjudicationItem) -> str:
        done = "adjudicated" if item.final is not None else "open"
        return f"image {item.image_id} · seed {item.seed} · {item.reasons} · {done}"


def adjudication_queue(store: Store, study: str) -> AdjudicationQueue:
    """Open disagreements first, then those already adjudicated, each in image order."""
    team = Team(store)
    settings = team.settings(study)
    annotations = store.annotations(study=study)
    listed = disagreements(annotations, settings)
    final = team.adjudications(study).set_index("image_id")
    paths = annotations.drop_duplicates("image_id").set_index("image_id")["path"]
    items = [AdjudicationItem(int(row.image_id), row.run_key, int(row.seed), paths[row.image_id], row.reasons,
                              answers_in_words(annotations[annotations["image_id"] == row.image_id]),
                              final.loc[row.image_id] if row.image_id in final.index else None)
             for row in listed.itertuples()]
    items.sort(key=lambda item: item.final is not None)
    return AdjudicationQueue(study, settings, tuple(items))


# -- rater groups ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RaterGroupsView:
    """One rater-group field: each group's raters, their shares against the reference group's (paired
    image by image where they rated the same images, ``group_comparison``), and agreement within each group."""

    field: str
    raters: dict[str, list[str]]
    reference: str
    differences: pd.DataFrame = field(repr=False)  # comparison_table, headed "Rater group"
    raw: pd.DataFrame = field(repr=False)
    agreement: pd.DataFrame = field(repr=False)


def rater_groups_view(store: Store, study: str, field_name: str, options: EstimateOptions | None = None, *,
                      reference: str | None = None, with_agreement: bool = True) -> RaterGroupsView:
    """The study's shares as seen by each group of raters in ``field_name`` with ``options`` (but soft
    labels: an adjudicated label belongs to no group), and, ``with_agreement``, agreement within each
    group; only groups of ``MIN_GROUP_RATERS`` or more raters, smaller ones pooled as ``OTHER_GROUP``
    (``rater_group_column``). ``ValueError`` when the field has fewer than two such groups."""
    options = replace(options or EstimateOptions(), labels=DEFAULT_LABELS, bootstrap_rng_seed=BOOTSTRAP_RNG_SEED)
    skin_cut, confidence = options.skin_cut, options.confidence
    groups = Team(store).rater_groups(study)
    annotations = store.annotations(study=study)
    column = rater_group_column(annotations, groups, field_name)
    raters = {name: sorted(annotations.loc[column == name, "rater"].unique())
              for name in sorted(column.dropna().unique())}
    compared = group_comparison(annotations, groups, field_name, reference=reference, **options.arguments)
    table = comparison_table(compared.differences)
    table = table.rename(columns={table.columns[0]: "Rater group"})
    table.insert(table.columns.get_loc(TABLE_HEADERS["excludes_zero"]) + 1, METHOD_HEADER,
                 [method if method == UNPAIRED else f"{method} ({shared:,} shared)"
                  for method, shared in zip(compared.differences["method"], compared.differences["shared_images"])])
    frames = []
    for name, members in raters.items():
        rows = annotations[column == name]
        if len(members) < 2 or not with_agreement:
            continue
        summary = summary_table(agreement(rows, skin_cut=skin_cut, confidence=confidence,
                                          bootstrap_rng_seed=BOOTSTRAP_RNG_SEED))
        summary.insert(0, "Rater group", name)
        frames.append(summary)
    together = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["Rater group"])
    return RaterGroupsView(field_name, raters, compared.reference, table, compared.differences, together)


# -- the human sample ------------------------------------------------------------------------------

# A sheet of the sample for people who label outside the app: sdaudit's own export columns (so
# `import-annotations --format sdaudit` reads it back onto the sample's images by run and seed),
# after the draw order, the image id and its file (relative to the data home). No run-setting
# column (``sheet_runs.RUN_SETTING_COLUMNS``): the import then attaches rows to the study's images.
SAMPLE_SHEET_COLUMNS = ("draw_order", "image_id", "path", *SDAUDIT_COLUMNS)
SAMPLE_SHEET_HOW = ("fill in rater, person_present (true or false), gender (female, male or unclear), mst (1-10) "
                    "or skin_binary (lighter or darker) and confidence (low, medium or high) on each row you label, "
                    "one row per image and rater, and delete the rows you do not label; then import it with "
                    "`python -m sdaudit import-annotations FILE --study {study} --format sdaudit`")


@dataclass(frozen=True)
class HumanSampleView:
    """A study's human sample and how far people are with it."""

    sample: HumanSample
    progress: SampleProgress

    @property
    def settings(self) -> str:
        return (f"{self.sample.size} of {self.sample.population} generated images (seed {self.sample.seed}, "
                f"inclusion probability {self.sample.inclusion_probability:.4g})")

    @property
    def drawn(self) -> str:
        """What a draw did, in one line."""
        return f"drew {self.settings}; raters will be offered them first"

    @property
    def text(self) -> str:
        """The sample and its progress, in one line."""
        complete = (f" ({self.progress.complete} with the study's {self.progress.needed} ratings each)"
                    if self.progress.needed > 1 else "")
        return (f"human sample: {self.settings}, offered to raters first; rated by people: "
                f"{self.progress.rated} of {self.sample.size}{complete}")

    def as_dict(self) -> dict:
        return {"seed": self.sample.seed, "size": self.sample.size, "population": self.sample.population,
                "inclusion_probability": self.sample.inclusion_probability, "drawn_by": self.sample.drawn_by,
                "rated": self.progress.rated, "complete": self.progress.complete,
                "image_ids": list(self.sample.image_ids)}


SAMPLE_SEED_TEXT = "a human sample's seed must be a whole number written in the digits 0-9, or left empty, but is {value!r}."


def sample_seed(text: str) -> int | None:
    """The seed typed on the Team page: None when left empty (the store then draws one and records it)."""
    text = text.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()):
        raise ValueError(SAMPLE_SEED_TEXT.format(value=text))
    return int(text)


def generated_images(store: Store, study: str) -> int:
    """How many images a human sample of ``study`` is drawn from (the store's count, the rule the draw
    uses); 0 for a study not created yet."""
    return MachineTables(store).generated_images(study) if study in store.study_names() else 0


def human_sample_view(store: Store, study: str) -> HumanSampleView | None:
    """The study's human sample with its progress; None when none was drawn."""
    sample = MachineTables(store).human_sample(study)
    if sample is None:
        return None
    progress = store.human_sample_progress(study)
    assert progress is not None
    return HumanSampleView(sample, progress)


def draw_human_sample(store: Store, study: str, size: int, *, seed: int | None = None,
                      by: str | None = None) -> HumanSampleView:
    """Draw the study's human sample (``MachineTables.draw_human_sample``: seeded, recorded, once)."""
    MachineTables(store).draw_human_sample(study, size, seed=seed, by=by)
    view = human_sample_view(store, study)
    assert view is not None
    return view


def human_sample_sheet(store: Store, study: str, sample: HumanSample) -> pd.DataFrame:
    """``SAMPLE_SHEET_COLUMNS`` for each image of ``sample`` in draw order, the labels left blank."""
    images = store.images(study=study).set_index("image_id")
    order = list(sample.image_ids)
    rows = images.loc[order, ["path", "run_key", "seed"]].reset_index()
    rows.insert(0, "draw_order", range(1, len(order) + 1))
    for column in SDAUDIT_COLUMNS[2:]:
        rows[column] = ""
    return rows[list(SAMPLE_SHEET_COLUMNS)]
