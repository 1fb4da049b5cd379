"""The CLI's analysis commands over an existing store: estimate, compare, agreement, export, report.

cli.py parses and dispatches; these read a study and print or write what it shows.
"""

from __future__ import annotations

import os
from pathlib import Path

from sdaudit.cli.parser import UsageError
from sdaudit.config import store_path, writable_folder

REPORT_IS_FOLDER = "--out {path} is a folder; give the report's file name, e.g. {path}/report.html."
NO_STORE = "there is no store at {path}; generate or import something first."
NO_STUDY = "there is no study {study!r} in the store; studies: {known}."
NOTHING_ANNOTATED = ("nothing is annotated in study {study} yet: annotate its images on the app's Annotate page, or "
                     "import a rater sheet (`import-annotations`).")


def json_rows(table) -> str:
    """A table as a JSON list of objects, blank cells as null."""
    import json

    return json.dumps(table.astype(object).where(table.notna(), None).to_dict("records"), indent=1)


def differences_text(table, *, first: str, header: str, extra: tuple[str, ...] = ()) -> str:
    """Differences of two shares (``planning.compare`` rows) in percentage points, one row each, in
    the app's words, the column ``first`` naming what was compared, under ``header``; ``extra``
    columns go last."""
    from sdaudit.present.words import CLEARLY_DIFFERENT, interval, percent, points
    from sdaudit.scheme import FAMILY_LABELS, GROUP_LABELS

    shown = {
        first.replace("_", " ").capitalize(): table[first],
        "Family": table["family"].map(FAMILY_LABELS),
        "Group": table["group"].map(GROUP_LABELS).fillna(table["group"]),
        "Share": table["share_first"].map(percent),
        "Share in the reference": table["share_second"].map(percent),
        "Difference": table["difference"].map(points),
        "Interval": [interval(low, high, to=" to ", number=points) for low, high in zip(table["low"], table["high"])],
        "Clearly different": [CLEARLY_DIFFERENT[bool(value)] for value in table["excludes_zero"]],
        **{column.replace("_", " ").capitalize(): table[column] for column in extra},
    }
    import pandas as pd

    return header + "\n" + pd.DataFrame(shown).to_string(index=False)


def existing_store(args):
    """The store of ``args.home``, refused (``NO_STORE``) where there is none yet."""
    from sdaudit.store import Store

    path = store_path(args.home)
    if not Path(path).is_file():
        raise UsageError(NO_STORE.format(path=path))
    return Store(path)


def store_with_study(args):
    """``existing_store`` that also holds ``args.study``, else refused (``NO_STUDY``): the CLI's
    one check for commands that read or change a study that must exist."""
    store = existing_store(args)
    if args.study not in (studies := store.study_names()):
        store.close()
        raise UsageError(NO_STUDY.format(study=args.study, known=", ".join(sorted(studies)) or "none"))
    return store


def _study_estimate(store, args):
    from sdaudit.analysis.estimate import estimate

    options = estimate_options(args)
    return estimate(store.annotations(study=args.study), **options.arguments,
                    adjudications=_adjudications(store, args.study, options))


def estimate_options(args):
    """The command line's ``EstimateOptions`` (a ``ValueError`` naming the option it refuses)."""
    from sdaudit.analysis.label_modes import DEFAULT_LABELS
    from sdaudit.analysis.options import EstimateOptions

    return EstimateOptions(method=args.method, confidence=args.confidence, skin_cut=args.skin_cut,
                           include_unclear=not args.exclude_unclear, simultaneous=args.simultaneous,
                           labels=getattr(args, "labels", DEFAULT_LABELS), bootstrap_rng_seed=args.bootstrap_rng_seed)


def _adjudications(store, study: str, options):
    """The study's final labels, read only when the options ask for them."""
    if options.labels != "adjudicated":
        return None
    from sdaudit.store.team import Team

    return Team(store).adjudications(study)


def run_names(runs) -> dict[str, str]:
    """``records.run_labels`` of ``runs``, each on one line (a tab or line break in a prompt is a space)."""
    from sdaudit.cli.terminal import printable
    from sdaudit.records import run_labels

    return {key: printable(name, one_line=True) for key, name in run_labels(runs).items()}


def compare_command(args) -> str:
    from sdaudit.analysis.estimate import estimate_each
    from sdaudit.analysis.planning import compare_runs
    from sdaudit.present.estimate_tables import comparison_table
    from sdaudit.present.words import HOLM_INTERVALS, level

    with store_with_study(args) as store:
        annotations = store.annotations(study=args.study)
        runs = store.runs(study=args.study)
        options = estimate_options(args)
        adjudications = _adjudications(store, args.study, options)
    if annotations.empty:
        raise UsageError(NOTHING_ANNOTATED.format(study=args.study))
    names = run_names(runs)
    run_keys = list(runs["run_key"])[::-1]  # oldest first
    known = "; ".join(f"{key} ({names[key]})" for key in run_keys)
    unknown = [key for key in [*(args.runs or []), *([args.reference] if args.reference else [])] if key not in names]
    if unknown:
        raise UsageError(f"study {args.study!r} has no run {', '.join(map(repr, unknown))}; its runs: {known}.")
    annotated = set(annotations["run_key"])
    chosen = [key for key in run_keys if key in set(args.runs)] if args.runs else run_keys  # oldest first
    if args.reference and args.reference not in annotated:
        raise UsageError(f"the reference run {args.reference} ({names[args.reference]}) has no annotations yet; "
                         f"annotate it or choose another with --reference; its runs: {known}.")
    # the default reference: the oldest annotated run compared, or the study's when --runs names one
    pool = [key for key in chosen if key in annotated]
    reference = args.reference or next(iter(pool if len(pool) > 1 else [k for k in run_keys if k in annotated]))
    if not [key for key in pool if key != reference]:
        raise UsageError(f"nothing to compare with the reference run “{names[reference]}”: no other run chosen has "
                         f"annotations; its runs: {known}.")
    keep = annotations["run_key"].isin({*chosen, reference})
    estimates = estimate_each(annotations[keep], options, adjudications=adjudications)
    try:
        table = compare_runs(estimates, reference=reference, confidence=args.confidence, adjust_holm=args.holm)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.json:
        return json_rows(table)
    header = (f"each run minus the reference run “{names[reference]}”, in percentage points; Newcombe's "
              f"{level(args.confidence)} interval" + (f"; {HOLM_INTERVALS}" if args.holm else ""))
    if left_out := [names[key] for key in chosen if key not in annotated]:
        header += "\nleft out, no annotations yet: " + "; ".join(left_out)
    shown = comparison_table(table.assign(run=table["run"].map(names)))
    return header + "\n" + shown.to_string(index=False)


def _estimate_by_run(args) -> str:
    from sdaudit.analysis.targets import estimates_by_run
    from sdaudit.present.estimate_tables import by_run_text

    with store_with_study(args) as store:
        options = estimate_options(args)
        table = estimates_by_run(store, args.study, options, adjudications=_adjudications(store, args.study, options))
        runs = store.runs(study=args.study)
        raters = store.annotations(study=args.study)["rater"].nunique()
    if args.json:
        return json_rows(table)
    if table.empty:
        return NOTHING_ANNOTATED.format(study=args.study)
    names = run_names(runs)
    text = by_run_text(table, args.study, names, labels=options.labels, raters=raters)
    if left_out := [names[key] for key in runs["run_key"][::-1] if key not in set(table["run_key"])]:
        text += "\n\nleft out, no annotations yet: " + "; ".join(left_out)
    return text


def _machine_human_command(args) -> str:
    """``estimate --labels machine+human``: prediction-powered shares (``analysis.machine_human``)."""
    from sdaudit.analysis.machine_human import MACHINE_HUMAN, machine_human_estimate
    from sdaudit.analysis.options import DEFAULT_METHOD
    from sdaudit.present.estimate_tables import machine_human_header, machine_human_table

    refused = [flag for flag, given in (("--by run", args.by == "run"), ("--simultaneous", args.simultaneous),
                                        ("--exclude-unclear", args.exclude_unclear),
                                        ("--bootstrap-rng-seed", args.bootstrap_rng_seed is not None),
                                        (f"--method {args.method}", args.method != DEFAULT_METHOD)) if given]
    if refused:
        raise UsageError(f"{refused[0]} does not apply to --labels {MACHINE_HUMAN} (its interval is its own).")
    with store_with_study(args) as store:
        try:
            result = machine_human_estimate(store, args.study, labelling_id=args.labelling,
                                            confidence=args.confidence, skin_cut=args.skin_cut)
        except ValueError as error:
            raise UsageError(str(error)) from None
        runs = store.runs(study=args.study)
    if args.json:
        return json_rows(result.table)
    return machine_human_header(result, run_names(runs)) + "\n" + machine_human_table(result.table).to_string(index=False)


def estimate_command(args) -> str:
    import json

    if args.labels == "machine+human":
        return _machine_human_command(args)
    if args.labelling is not None:
        raise UsageError("--labelling applies only with --labels machine+human.")
    if args.by == "run":
        return _estimate_by_run(args)
    with store_with_study(args) as store:
        result = _study_estimate(store, args)
    if result.raters == 0 and not args.json:
        return NOTHING_ANNOTATED.format(study=args.study)
    if args.json:
        rows = result.table.astype(object).where(result.table.notna(), None).to_dict("records")
        return json.dumps(rows, indent=1)
    from sdaudit.present.estimate_tables import display_table
    from sdaudit.present.words import METHOD_LABELS, how_many, raters

    header = (f"{how_many(result.images, 'image')} with a person, {raters(result.raters)}; {result.interval_note}, "
              f"{METHOD_LABELS[result.method]}; {result.label_note}; MST 1–{result.skin_cut} lighter. Shares of "
              "perceived "
              "presentation; gender is a binary simplification (plus unclear).")
    return header + "\n" + display_table(result).to_string(index=False)


def agreement_command(args) -> str:

    from sdaudit.analysis.agreement import agreement
    from sdaudit.present.agreement_tables import SINGLE_RATER, agreement_text
    from sdaudit.present.team_tables import quality_text, quality_view

    with store_with_study(args) as store:
        annotations = store.annotations(study=args.study)
        quality = quality_text(quality_view(store, args.study, skin_cut=args.skin_cut))
    if annotations.empty and not args.json:
        return NOTHING_ANNOTATED.format(study=args.study)
    result = agreement(annotations, skin_cut=args.skin_cut, confidence=args.confidence,
                       bootstrap_rng_seed=args.bootstrap_rng_seed)
    if args.json:
        table = result.table
        return json_rows(table)
    text = SINGLE_RATER if result.single_rater else agreement_text(result)
    return "\n\n".join(part for part in (text, quality) if part)


EXPORT_SCRATCH = ".sdaudit-export-"  # + process id: an export's scratch folder, inside --out


def export_command(args) -> str:
    import shutil
    import tempfile

    from sdaudit.files.safe import write_all_new
    from sdaudit.files.sheets import export_annotations, export_estimates

    out = writable_folder(args.out, what="--out")
    # Written first in a scratch folder inside --out (not under /tmp, where a killed export's would
    # stay for good: the next export into --out removes it), then each file whole into --out
    # (``write_all_new``), so a failed or killed export never leaves a half-written file there
    with store_with_study(args) as store:
        result = _study_estimate(store, args)
        out.mkdir(parents=True, exist_ok=True)
        _remove_stale_scratch(out)
        scratch = Path(tempfile.mkdtemp(prefix=f"{EXPORT_SCRATCH}{os.getpid()}-", dir=out))
        try:
            written = export_annotations(store, args.study, scratch)
            written += export_estimates(result.table, scratch, args.study)
            files = {out / path.name: path.read_bytes() for path in written}
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        write_all_new(files)
    return "wrote " + ", ".join(str(out / path.name) for path in written)


def _remove_stale_scratch(out: Path) -> None:
    """Remove the scratch folders in ``out`` of exports killed before they removed their own (their
    process is gone); a link or file of that name, or a live export's folder, stays."""
    import shutil

    for folder in out.glob(f"{EXPORT_SCRATCH}*"):
        process = folder.name[len(EXPORT_SCRATCH):].split("-")[0]
        if folder.is_symlink() or not folder.is_dir() or not process.isdigit() or _running(int(process)):
            continue
        shutil.rmtree(folder)


def _running(process: int) -> bool:
    try:
        os.kill(process, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OverflowError:
        return False
    return True


def report_command(args) -> str:
    from sdaudit.analysis.targets import estimates_by_run
    from sdaudit.files.safe import write_new
    from sdaudit.present.report import audit_card, render_report

    out = Path(args.out)
    if out.is_dir():
        raise UsageError(REPORT_IS_FOLDER.format(path=out))
    writable_folder(out.parent, what="the folder of --out")
    with store_with_study(args) as store:
        result = _study_estimate(store, args)
        card = audit_card(store, args.study)
        by_run = estimates_by_run(store, args.study, result.options, adjudications=_adjudications(
            store, args.study, result.options))
    write_new(out, render_report(result, card, by_run=by_run).encode("utf-8"))  # whole, or the old file stays
    return f"wrote the report for study {args.study} to {out}"
