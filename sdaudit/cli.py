"""``python -m sdaudit``: the command-line face of sdaudit — what each command does.

What the commands accept (arguments, defaults, help) is in ``cli_parser.py``. Bad input ends with
one line on stderr that starts with ``error:`` and exit status 2, before the store is touched:
inputs are checked where they are used (``SdauditError`` from the spec, config, store, model and
sheet code), and ``main`` is the one place that turns those, and any file error not met by a check,
into that line. Progress goes to stderr; each command's result is one line on stdout.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sdaudit.cli_parser import UsageError, build_parser
from sdaudit.cli_team import rater_groups_command, team_command
from sdaudit.config import DEMO_MODEL, data_home, home_folder, resolve_device, store_path, writable_folder
from sdaudit.spec import GenerationSpec, parse_seed_range

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
REPORT_IS_FOLDER = "--out {path} is a folder; give the report's file name, e.g. {path}/report.html."
OS_ERROR = "could not use {path}: {reason}."


# -- commands ---------------------------------------------------------------------------------


def _demo_model(args) -> str:
    from sdaudit.demo import write_demo_model

    path = write_demo_model(writable_folder(args.path, what="the demo model's folder"))
    return f"wrote the demo model (tiny, random weights: its images are noise) to {path}"


def _spec(args) -> GenerationSpec:
    first, last = parse_seed_range(args.seeds)
    return GenerationSpec(
        model=args.model,
        prompt=args.prompt,
        negative_prompt=args.negative_prompt,
        first_seed=first,
        last_seed=last,
        batch_size=args.batch_size,
        steps=args.steps,
        guidance=args.guidance,
        height=args.height,
        width=args.width,
        scheduler=args.scheduler,
        safety_checker=args.safety_checker,
        dtype=args.dtype,
        device=args.device,
        revision=args.revision,
        study=args.study,
    )


def _world_size() -> int:
    """How many processes `accelerate launch` or `torchrun` started (1 when run directly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _process_group():
    """Accelerate's process state under `accelerate launch`/`torchrun`, else None."""
    if _world_size() <= 1:
        return None
    import torch
    from accelerate import PartialState

    # Without cpu=True on a machine with no CUDA, each process believes it is alone.
    return PartialState(cpu=not torch.cuda.is_available())


class _ProgressBar:
    """A tqdm bar on stderr, created once the number of images to generate is known."""

    def __init__(self, label: str):
        self.label = label
        self.bar = None

    def __call__(self, progress) -> None:
        from tqdm import tqdm

        if self.bar is None and not (progress.steps_total or progress.images_done):
            return  # no bar until the pipeline has loaded: a model that fails leaves one error line
        if self.bar is None:
            self.bar = tqdm(total=progress.images_total, desc=self.label, unit="img", file=sys.stderr)
        self.bar.n = progress.images_done
        if progress.steps_total:
            self.bar.set_postfix_str(f"step {progress.step}/{progress.steps_total}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _generate(args) -> str:
    from sdaudit.generate import StoreSink, batch_grid, generate
    from sdaudit.runfolder import RunFolder
    from sdaudit.store import Store

    # 1. Validate everything before any file is touched: the spec, the device, where to write
    spec = _spec(args)
    if _world_size() > 1 and not args.out:
        raise UsageError(
            f"{_world_size()} processes cannot share one store; give --out DIR and `ingest DIR` afterwards."
        )
    group = _process_group()
    if group is None:
        resolve_device(spec.device)  # cuda or mps asked for and absent: refused before the store opens
    if args.out:
        writable_folder(args.out, what="--out")
    else:
        store_path(args.home)  # a --home that is a file is refused here

    # 2. Generate this process's seeds into the run folder or the store
    bar = _ProgressBar("generating" if group is None else f"process {group.process_index}")
    store = None
    try:
        if args.out:
            folder = RunFolder(args.out, rank=group.process_index if group else 0, spec=spec.to_dict())
            sink = folder
        else:
            home = data_home(args.home)
            store = Store.open(home)
            sink = StoreSink(store, home)
        common = dict(home=args.home, on_progress=bar)
        if group is None:
            result = generate(spec, sink, **common)
        else:
            # whole batches, not seeds, are shared out, so each image keeps the batch company
            # it has in a one-process run (and with it its pixels)
            with group.split_between_processes(batch_grid(spec)) as batches:
                mine = [seed for batch in batches for seed in batch]
                result = generate(spec, sink, seeds=mine, device=str(group.device), **common)
    finally:
        bar.close()
        if store is not None:
            store.close()

    # 3. One process merges the run folder and reports
    total = None
    if args.out:
        if group is not None:
            group.wait_for_everyone()
        if group is None or group.is_main_process:
            total = len(folder.finalize().images)
        if group is not None:
            group.wait_for_everyone()
            if not group.is_main_process:
                return ""
    flagged = f", {result.nsfw_flagged} flagged NSFW and blacked out by the safety checker" if result.nsfw_flagged else ""
    stopped = " (stopped early)" if result.cancelled else ""
    who = "" if group is None else f" on process {group.process_index} of {group.num_processes}"
    where = f"run folder {args.out} now holds {_images(total)}" if args.out else f"home {data_home(args.home)}"
    noise = " (demo model: random weights, the images are noise)" if spec.model == DEMO_MODEL else ""
    return (
        f"generated {_images(result.generated)}{noise}{who} ({result.already_present} already present{flagged}){stopped} "
        f"in {result.seconds:.1f} s; run {result.run_key}, study {spec.study}; {where}"
    )


def _images(count: int) -> str:
    return f"{count} image" if count == 1 else f"{count} images"


def _ingest(args) -> str:
    from sdaudit.runfolder import ingest, read_run_folder
    from sdaudit.store import Store

    home = home_folder(args.home)
    read_run_folder(args.folder)  # a malformed folder fails before the store is opened
    with Store.open(home) as store:
        result = ingest(args.folder, store, home)
    conflicts = (
        f"; {len(result.conflicts)} seeds already in the store with other pixels were kept as stored "
        f"({', '.join(result.conflicts[:3])}{', …' if len(result.conflicts) > 3 else ''})"
        if result.conflicts
        else ""
    )
    return (
        f"ingested {args.folder}: {_images(result.images_added)} added, {result.already_present} already "
        f"present, {result.runs_added} runs added{conflicts}; home {home}"
    )


def _runs(args) -> str:
    from sdaudit.store import Store

    path = store_path(args.home)
    if not Path(path).is_file():
        return f"no store at {path} yet; create one with `python -m sdaudit generate --model demo --seeds 0-7`."
    with Store(path, read_only=True) as store:
        runs = store.runs()
    if runs.empty:
        return f"no runs in {path} yet."
    runs["size"] = runs["width"].astype(str) + "x" + runs["height"].astype(str)
    columns = ["run_key", "study", "images", "nsfw_images", "model", "scheduler", "steps", "guidance",
               "size", "dtype", "prompt"]
    return runs[columns].to_string(index=False)


def _existing_store(args):
    from sdaudit.store import Store

    path = store_path(args.home)
    if not Path(path).is_file():
        raise UsageError(f"there is no store at {path}; generate or import something first.")
    return Store(path)


def _study_estimate(store, args):
    from sdaudit.stats import estimate

    if args.study not in (studies := store.study_names()):
        known = ", ".join(sorted(studies)) or "none"
        raise UsageError(f"there is no study {args.study!r} in the store; studies: {known}.")
    settings = _estimate_settings(args)
    if settings["labels"] == "adjudicated":
        from sdaudit.team import Team

        settings["adjudications"] = Team(store).adjudications(args.study)
    return estimate(store.annotations(study=args.study), **settings)


def _estimate_settings(args) -> dict:
    return dict(method=args.method, confidence=args.confidence, skin_cut=args.skin_cut,
                include_unclear=not args.exclude_unclear, seed=args.seed, simultaneous=args.simultaneous,
                labels=getattr(args, "labels", "soft"))


def _compare(args) -> str:
    import json

    from sdaudit.planning import compare_runs
    from sdaudit.stats import estimate_each

    with _existing_store(args) as store:
        if args.study not in (studies := store.study_names()):
            raise UsageError(f"there is no study {args.study!r} in the store; studies: {', '.join(sorted(studies))}.")
        annotations = store.annotations(study=args.study)
        run_keys = list(store.runs(study=args.study)["run_key"])[::-1]  # oldest first
    chosen = args.runs or run_keys
    unknown = [key for key in [*chosen, *([args.reference] if args.reference else [])] if key not in run_keys]
    if unknown:
        raise UsageError(f"study {args.study!r} has no run {', '.join(map(repr, unknown))}; its runs: "
                         f"{', '.join(run_keys)}.")
    reference = args.reference or chosen[0]
    keep = annotations["run_key"].isin({*chosen, reference})
    estimates = estimate_each(annotations[keep], "run_key", **_estimate_settings(args))
    try:
        table = compare_runs(estimates, reference=reference, confidence=args.confidence, adjust_holm=args.holm)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.json:
        return json.dumps(table.astype(object).where(table.notna(), None).to_dict("records"), indent=1)
    shown = table.copy()
    for column in ("share_first", "share_second"):
        shown[column] = shown[column].map(lambda v: f"{100 * v:.1f}%")
    for column in ("difference", "low", "high"):
        shown[column] = shown[column].map(lambda v: f"{100 * v:+.1f}")
    header = (f"each run minus the reference run {reference}, in percentage points; Newcombe's "
              f"{args.confidence:.0%} interval" + (", Holm-adjusted tests" if args.holm else ""))
    columns = ["run", "family", "group", "share_first", "share_second", "difference", "low", "high", "excludes_zero"]
    return header + "\n" + shown[columns].to_string(index=False)


def _import_annotations(args) -> str:
    from sdaudit.sheets import import_annotations
    from sdaudit.store import Store

    with Store.open(args.home) as store:
        result = import_annotations(args.csv, store, study=args.study, rater=args.rater,
                                    sheet_format=args.sheet_format)
    external = f", {result.external_images} of them without images in the store" if result.external_images else ""
    return (f"imported {result.rows} annotations by {', '.join(result.raters)} into study {result.study}"
            f"{external}; home {data_home(args.home)}")


def _estimate(args) -> str:
    import json

    with _existing_store(args) as store:
        result = _study_estimate(store, args)
    if args.json:
        rows = result.table.astype(object).where(result.table.notna(), None).to_dict("records")
        return json.dumps(rows, indent=1)
    from sdaudit.results import display_table
    from sdaudit.scheme import METHOD_LABELS

    rater_word = "one rater" if result.raters == 1 else f"{result.raters} raters"
    header = (f"{result.images} images with a person, {rater_word}; {result.interval_note}, "
              f"{METHOD_LABELS[result.method]}; {result.label_note}; MST 1–{result.skin_cut} lighter. Shares of perceived "
              "presentation; gender is a binary simplification (plus unclear).")
    return header + "\n" + display_table(result).to_string(index=False)


def _agreement(args) -> str:
    import json

    from sdaudit.agreement import agreement
    from sdaudit.agreement_view import SINGLE_RATER, agreement_text
    from sdaudit.team_view import quality_text, quality_view

    with _existing_store(args) as store:
        if args.study not in (studies := store.study_names()):
            known = ", ".join(sorted(studies)) or "none"
            raise UsageError(f"there is no study {args.study!r} in the store; studies: {known}.")
        annotations = store.annotations(study=args.study)
        quality = quality_text(quality_view(store, args.study, skin_cut=args.skin_cut))
    result = agreement(annotations, skin_cut=args.skin_cut, confidence=args.confidence, seed=args.seed)
    if args.json:
        table = result.table
        return json.dumps(table.astype(object).where(table.notna(), None).to_dict("records"), indent=1)
    text = SINGLE_RATER if result.single_rater else agreement_text(result)
    return "\n\n".join(part for part in (text, quality) if part)


def _export(args) -> str:
    from sdaudit.sheets import export_annotations, export_estimates

    writable_folder(args.out, what="--out")
    with _existing_store(args) as store:
        result = _study_estimate(store, args)
        written = export_annotations(store, args.study, args.out)
    written += export_estimates(result.table, args.out, args.study)
    return "wrote " + ", ".join(str(path) for path in written)


def _report(args) -> str:
    from sdaudit.report import audit_card, render_report

    out = Path(args.out)
    if out.is_dir():
        raise UsageError(REPORT_IS_FOLDER.format(path=out))
    writable_folder(out.parent, what="the folder of --out")
    with _existing_store(args) as store:
        result = _study_estimate(store, args)
        card = audit_card(store, args.study)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(result, card), encoding="utf-8")
    return f"wrote the report for study {args.study} to {out}"


def _snapshot(args) -> str:
    from sdaudit.snapshot import snapshot

    home = home_folder(args.home)
    with _existing_store(args) as store:
        result = snapshot(store, home, args.target)
    return (f"snapshot of {home} written to {result.target}: {result.rows.get('annotations', 0)} annotations, "
            f"{result.rows.get('images', 0)} image rows, {result.images} image files")


def _restore(args) -> str:
    from sdaudit.snapshot import restore
    from sdaudit.store import Store

    home = home_folder(args.home)
    with Store.open(home) as store:
        result = restore(store, home, args.source)
    return f"restored {home} from {args.source}: " + ", ".join(
        f"{count} {table}" for table, count in result.rows.items())


COMMANDS = {
    "demo-model": _demo_model,
    "generate": _generate,
    "ingest": _ingest,
    "runs": _runs,
    "import-annotations": _import_annotations,
    "estimate": _estimate,
    "compare": _compare,
    "agreement": _agreement,
    "team": team_command,
    "rater-groups": rater_groups_command,
    "export": _export,
    "report": _report,
    "snapshot": _snapshot,
    "restore": _restore,
}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        output = COMMANDS[args.command](args)
    except ValueError as error:  # sdaudit's errors are ValueErrors with a user-facing message
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:  # a file that could not be read or written, not met by a check above
        print(f"error: {OS_ERROR.format(path=error.filename, reason=error.strerror or error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted: every finished batch is saved; run the same command again to resume.",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if output:
        try:
            print(output, flush=True)
        except BrokenPipeError:  # `... | head` stopped reading: not an error; Python's own report is silenced
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
