"""What the Results page shows, computed once: ``results_view(store, study, ...) -> ResultsView``.

A page reads its widgets, calls ``results_view`` and renders the fields: the estimate, the table
of shares in people's words, the plan, a comparison of the chosen runs, and each group's image
files. ``run_choices`` gives the run picker its options. Labels come from ``sdaudit.scheme``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import pandas as pd

from sdaudit.analysis.estimate import Estimate, estimate, estimate_each
from sdaudit.analysis.labels import group_images
from sdaudit.analysis.options import BOOTSTRAP_RNG_SEED, EstimateOptions
from sdaudit.analysis.planning import compare_runs
from sdaudit.analysis.targets import run_targets, study_targets
from sdaudit.files.gallery import gallery
from sdaudit.present import words
from sdaudit.present.charts import PARITY_SOURCE
from sdaudit.present.estimate_tables import comparison_table, display_table, plan_table
from sdaudit.present.study_views import DIFFERENCE_COLUMNS, RunStrip, reference_differences, run_strips
from sdaudit.records import run_label, run_labels
from sdaudit.scheme import FAMILY_LABELS, GROUP_LABELS, TABLE_HEADERS
from sdaudit.store import Store
from sdaudit.store.team import Team

IMAGES_SHOWN = 24
UNKNOWN_RUNS = "`runs` must be runs of study {study!r}, but {unknown} are not."
RunTargets = dict[tuple[str, str], tuple[float, str]]  # (family, group) -> (target, its source)


def run_choices(store: Store, study: str) -> dict[str, str]:
    """Every run of ``study``, newest first: run key -> "prompt · model · N images"."""
    return _run_labels(store.runs(study=study))


def _run_labels(runs: pd.DataFrame) -> dict[str, str]:
    """Each run's name (``records.run_labels``) with its number of images."""
    return {key: f"{name} · {images} images"
            for (key, name), images in zip(run_labels(runs).items(), runs["images"])}


@dataclass(frozen=True)
class GroupImages:
    """The images most of whose raters put them in one group, and the files of those here."""

    images: int
    files: tuple[bytes, ...]  # the first IMAGES_SHOWN images that can be shown
    missing: int  # images not shown: no file in the data home (imported sheets, moved files) or not an image


@dataclass(frozen=True)
class RunComparison:
    """The chosen runs side by side: one estimate table per run label, and every other run's
    difference from the reference run per named group, in people's words."""

    tables: dict[str, pd.DataFrame] = field(repr=False)
    reference: str
    differences: pd.DataFrame = field(repr=False)
    raw: pd.DataFrame = field(repr=False)  # compare_runs's rows, for the forest chart


@dataclass(frozen=True)
class ResultsView:
    """One study's results for the chosen runs and options.

    ``estimate`` is None when none of the chosen annotations exists; ``estimate.images`` is 0
    when none of them shows a person.
    """

    study: str
    home: str
    run_labels: dict[str, str]
    runs: tuple[str, ...]
    annotated: int  # annotation rows of the study in any run
    estimate: Estimate | None
    annotations: pd.DataFrame = field(repr=False)
    adjudications: pd.DataFrame | None = field(default=None, repr=False)  # read for ``labels="adjudicated"``
    run_targets: dict[str, RunTargets] = field(default_factory=dict, repr=False)  # each run's targets from data
    study_runs: pd.DataFrame | None = field(default=None, repr=False)  # ``Store.runs`` rows of the study
    images: pd.DataFrame | None = field(default=None, repr=False)  # ``Store.images`` rows of the chosen runs
    options: EstimateOptions = field(default_factory=EstimateOptions)  # every estimate's: pooled, per run, the report's

    @property
    def target_note(self) -> str:
        """Which targets the pooled table is read against, in one sentence."""
        sources = sorted({source for key in self.runs for _, source in self.run_targets.get(key, {}).values()})
        if not sources:
            return "Targets: parity, an equal share for each group of a family (50% for two groups, 25% for four)."
        if pooled_targets(self.run_targets, self.runs) is None:
            return ("The chosen runs have different targets from data, so the table above is read against parity; "
                    "“Across runs” shows each run against its own targets.")
        return "Targets from data: " + "; ".join(sources) + ". A group without one keeps parity."

    @property
    def table(self) -> pd.DataFrame:
        """The estimate as people read it: group names, percentages, notes."""
        return display_table(self.estimate)

    @property
    def unreliable_groups(self) -> list[str]:
        """The groups whose interval should be read as rough, each named with its family in quotes
        (group names contain commas, so a bare comma-separated list could be misread)."""
        return [f"“{GROUP_LABELS.get(row.group, row.group)}” ({FAMILY_LABELS[row.family].lower()})"
                for row in self.estimate.unreliable.itertuples()]

    @property
    def unreliable_warning(self) -> str:
        """One sentence naming the rough intervals; empty when there are none."""
        if not self.unreliable_groups:
            return ""
        why = ("bootstrap intervals are never guaranteed" if self.estimate.method == "bootstrap"
               else "too few images to trust them as stated")
        return (f"Read these intervals as rough ({why}): "
                f"{'; '.join(self.unreliable_groups)}. Their colour still says whether they exclude the target; "
                "annotate more images before drawing conclusions.")

    @property
    def plan(self) -> pd.DataFrame:
        """Per group with a target: how many more images until the interval leaves the target."""
        return plan_table(self.estimate)

    @property
    def summary(self) -> str:
        """What the estimate rests on, in one caption (Markdown)."""
        result = self.estimate
        raters = words.raters(result.raters)
        cut = result.skin_cut
        text = (f"{words.how_many(result.images, 'annotated image')} with a person, {raters}. Shares of *perceived* gender "
                f"presentation and skin tone; gender is a binary simplification (plus “unclear”); skin tone is "
                f"MST 1–{cut} lighter, {cut + 1}–10 darker. ")
        if result.raters == 1:
            text += "With a single rater, disagreement between raters is not visible in the intervals. "
        if result.method == "jackknife":
            text += "Jackknife intervals use a normal (z) critical value, as in the origin study."
        return text

    @property
    def groups(self) -> dict[tuple[str, str], str]:
        """The groups with at least one image: (family, group) -> its name."""
        table = self.estimate.table
        return {(row.family, row.group): GROUP_LABELS.get(row.group, row.group)
                for row in table[table["count"] > 0].itertuples()}

    def group_images(self, family: str, group: str) -> GroupImages:
        """The images of one group and their files here (at most ``IMAGES_SHOWN``)."""
        members = group_images(self.annotations, family, group, skin_cut=self.estimate.skin_cut,
                               include_unclear=self.estimate.include_unclear)
        shown = gallery(self.home, list(members["path"]), [""] * len(members), limit=IMAGES_SHOWN)
        return GroupImages(images=len(members), files=shown.files, missing=shown.missing)

    def per_run(self) -> dict[str, Estimate]:
        """Each chosen run's own estimate with the same options, against the run's own targets
        (parity where it has none), by run key (annotated runs only)."""
        return self._per_run

    @cached_property
    def _per_run(self) -> dict[str, Estimate]:
        return estimate_each(self.annotations, self.options, adjudications=self.adjudications,
                             targets={key: _shares(chosen) for key, chosen in self.run_targets.items()})

    def by_run(self) -> pd.DataFrame:
        """``per_run``'s tables in one, each row with its ``run_key``, the run's label in ``source``
        and its target's source in ``target_source`` (``PARITY_SOURCE`` where the run has none)."""
        tables = []
        for key, each in self.per_run().items():
            chosen = self.run_targets.get(key, {})
            tables.append(each.table.assign(run_key=key, source=self.run_labels[key], target_source=[
                chosen.get((family, group), (None, PARITY_SOURCE))[1]
                for family, group in zip(each.table["family"], each.table["group"])]))
        return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()

    def across_runs(self, family: str, group: str) -> pd.DataFrame:
        """One group's estimate row in every chosen run, against the run's own target (its source in
        ``target_source``), with the run's label in ``source``, sorted by share (largest first);
        empty with fewer than two annotated runs."""
        rows = self.by_run() if len(self.runs) > 1 else pd.DataFrame()
        if rows.empty or rows["run_key"].nunique() < 2:
            return pd.DataFrame()
        rows = rows[(rows["family"] == family) & (rows["group"] == group)]
        return rows.sort_values("share", ascending=False, kind="stable").reset_index(drop=True)

    def reference_differences(self, family: str | None = None, group: str | None = None) -> pd.DataFrame:
        """Each chosen generated run minus its reference set (``study_views.reference_differences``,
        whose docstring holds the rule for the words), with ``run`` and ``reference`` labels, for
        every named group or only ``family`` × ``group``; empty when no chosen run has its
        reference among the chosen runs."""
        by_run = self.by_run() if self.study_runs is not None and len(self.runs) > 1 else pd.DataFrame()
        if by_run.empty:
            return pd.DataFrame(columns=DIFFERENCE_COLUMNS)
        rows = reference_differences(by_run, self.study_runs, confidence=self.estimate.confidence)
        rows = rows.assign(run=rows["run_key"].map(self.run_labels), reference=rows["reference_key"].map(self.run_labels))
        if family is not None:
            rows = rows[(rows["family"] == family) & (rows["group"] == group)]
        return rows.sort_values(["family", "group", "run"], kind="stable").reset_index(drop=True)

    @property
    def reference_hint(self) -> str:
        """What to do to see generated − reference when ``reference_differences`` is empty."""
        references = (self.study_runs[self.study_runs["kind"] == "reference"]
                      if self.study_runs is not None else ())
        if not len(references):
            return ("To compare each prompt's images with real ones, add a reference set of real images "
                    "(Runs page, or `python -m sdaudit ingest-images`) and annotate it.")
        if not set(references["run_key"]) & set(self.per_run()):
            return "Choose an annotated reference set among the runs to compare each generated run with it."
        return "No chosen generated run has a reference set here (one named after its prompt, or the study's only one)."

    def strips(self) -> list[RunStrip]:
        """A few images of every chosen run, grouped by prompt then model."""
        if self.study_runs is None or self.images is None:
            return []
        return run_strips(self.images, self.study_runs, {key: self.run_labels[key] for key in self.runs}, self.home)

    def comparison(self, reference: str | None = None, *, adjust_holm: bool = False) -> RunComparison | None:
        """The chosen runs side by side, each against ``reference`` (a run key; default the first
        chosen run with annotations); None with fewer than two annotated runs."""
        if len(self.runs) < 2:
            return None
        result = self.estimate
        by_key = self.per_run()
        if len(by_key) < 2:
            return None
        reference = reference if reference in by_key else next(key for key in self.runs if key in by_key)
        by_label = {self.run_labels[key]: each for key, each in by_key.items()}
        differences = compare_runs(by_label, reference=self.run_labels[reference], confidence=result.confidence,
                                   adjust_holm=adjust_holm)
        return RunComparison(tables={label: each.table for label, each in by_label.items()},
                             reference=self.run_labels[reference], differences=comparison_table(differences),
                             raw=differences)


def results_view(store: Store, study: str, options: EstimateOptions | None = None, *,
                 runs: list[str] | None = None) -> ResultsView:
    """Estimate ``study`` with ``options`` over the chosen ``runs`` (all when None) and gather what
    the page shows. A bootstrap draws from ``BOOTSTRAP_RNG_SEED``, so a rerun shows the same
    intervals. ``options.labels == "adjudicated"`` reads the study's final labels from the store.
    Raises ``ValueError`` for a run that is not the study's.
    """
    options = replace(options or EstimateOptions(), bootstrap_rng_seed=BOOTSTRAP_RNG_SEED)
    study_runs = store.runs(study=study)
    run_labels = _run_labels(study_runs)
    chosen = tuple(run_labels) if runs is None else tuple(runs)
    unknown = [key for key in chosen if key not in run_labels]
    if unknown:
        raise ValueError(UNKNOWN_RUNS.format(study=study, unknown=", ".join(map(repr, unknown))))
    annotations = store.annotations(study=study)
    annotated = len(annotations)
    annotations = annotations[annotations["run_key"].isin(chosen)].reset_index(drop=True)
    result = None
    adjudications = Team(store).adjudications(study) if options.labels == "adjudicated" else None
    targets = run_targets(study_runs, study_targets(store, study))
    if not annotations.empty:
        result = estimate(annotations, **options.arguments, adjudications=adjudications,
                          targets=_shares(pooled_targets(targets, chosen) or {}))
    images = store.images(study=study)
    # Image paths are stored relative to the data home, where the store file lives.
    return ResultsView(study=study, home=str(Path(store.path).parent), run_labels=run_labels, runs=chosen,
                       annotated=annotated, estimate=result, annotations=annotations, adjudications=adjudications,
                       run_targets=targets, study_runs=study_runs, options=options,
                       images=images[images["run_key"].isin(chosen)].reset_index(drop=True))


def _shares(targets: RunTargets) -> dict[tuple[str, str], float]:
    return {key: target for key, (target, _) in targets.items()}


def pooled_targets(targets: dict[str, RunTargets], runs: tuple[str, ...]) -> RunTargets | None:
    """The targets all ``runs`` share (empty: parity), or None when their targets from data differ:
    a pooled estimate of runs with different targets has no one target, so it is read against parity."""
    found = {tuple(sorted(targets.get(key, {}).items())) for key in runs}
    return dict(found.pop()) if len(found) == 1 else None


# -- the runs in people's words -------------------------------------------------------------------


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """``Store.runs()`` as people read it: one row per run, headed by ``TABLE_HEADERS``, user text
    (prompts, model ids, study names) left as plain values for a table's cells."""
    imported = (runs["kind"] != "generated").to_numpy()

    def generated(values) -> list:
        """A generation setting, blank for an imported sheet's or a reference set's run (it has none)."""
        return ["" if sheet else value for sheet, value in zip(imported, values)]

    shown = pd.DataFrame({
        "study": runs["study"],
        "run_images": runs["images"],
        "nsfw_images": runs["nsfw_images"],
        "model": [run_label(run) if sheet else run.model for sheet, run in zip(imported, runs.itertuples())],
        "model_revision": runs["model_revision"].fillna(""),
        "prompt": runs["prompt"],
        "slot": runs["slot"].fillna("") if "slot" in runs else "",
        "negative_prompt": runs["negative_prompt"],
        "scheduler": generated(runs["scheduler"]),
        "steps": generated(runs["steps"].astype(str)),
        "guidance": generated(f"{value:g}" for value in runs["guidance"]),
        "size": generated(f"{width} × {height}" for width, height in zip(runs["width"], runs["height"])),
        "dtype": generated(runs["dtype"]),
        "device": runs["device"].fillna(""),
        "created_at": [f"{moment:%Y-%m-%d %H:%M}" for moment in runs["created_at"]],
    })
    return shown.rename(columns=TABLE_HEADERS)


def study_report(store: Store, view: ResultsView, *, machine: bool = False) -> str:
    """The stakeholder report of ``view``'s estimate, covering every run of the study (each against
    its own targets, with the view's options): ``report.render_report`` with ``by_run``. ``machine``:
    with the section on automatic labels (admins only: raters label the human sample blind)."""
    from sdaudit.analysis.targets import estimates_by_run
    from sdaudit.present.report import audit_card, render_report

    by_run = estimates_by_run(store, view.study, view.options, adjudications=view.adjudications)
    return render_report(view.estimate, audit_card(store, view.study, machine=machine), by_run=by_run)


# -- machine + human (prediction-powered), where a study has both ---------------------------------

@dataclass(frozen=True)
class MachineHumanView:
    """``analysis.machine_human``'s shares as the Results page shows them: the header lines, the table
    in people's words, and rows ``charts.shares_chart`` draws (each named group against parity)."""

    estimate: object  # machine_human.MachineHumanEstimate
    header: str
    table: pd.DataFrame = field(repr=False)
    chart_rows: pd.DataFrame = field(repr=False)


def machine_human_available(store: Store, study: str) -> bool:
    """Whether ``study`` has machine labels and a human sample (the Results page's choice)."""
    from sdaudit.store.machine import MachineTables

    tables = MachineTables(store)
    return tables.human_sample(study) is not None and any(item.labelled for item in tables.labellings(study))


def machine_human_view(store: Store, study: str, *, confidence: float, skin_cut: int,
                       runs: list[str] | None = None) -> MachineHumanView:
    """The study's prediction-powered shares over ``runs``; ``ValueError`` (one line) where they cannot be had."""
    from sdaudit.analysis.machine_human import machine_human_estimate
    from sdaudit.present.estimate_tables import machine_human_header, machine_human_table

    result = machine_human_estimate(store, study, confidence=confidence, skin_cut=skin_cut, runs=runs)
    names = run_labels(store.runs(study=study))
    return MachineHumanView(result, machine_human_header(result, names), machine_human_table(result.table),
                            ppi_chart_rows(result.table))


def ppi_chart_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Prediction-powered rows in the columns ``charts.shares_chart`` reads: the estimate's target (parity
    for a named group where people saw a person on every rated sample image; none for `unclear`, "no
    person", or a family whose shares are of images without a person too); "too few images" where
    people labelled fewer than the simulation's smallest sample."""
    from sdaudit.analysis.machine_human import SIMULATED_MIN_HUMAN

    rows = table[["family", "group", "share", "low", "high", "target"]].assign(
        count=table["share"].clip(0, 1) * table["n_machine"], n=table["n_machine"],
        reliable=table["n_human"] >= SIMULATED_MIN_HUMAN)
    rows["excludes_target"] = rows["target"].notna() & ((rows["low"] > rows["target"]) | (rows["high"] < rows["target"]))
    return rows
