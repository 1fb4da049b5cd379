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

from sdaudit.cli.analysis import (
    agreement_command,
    compare_command,
    estimate_command,
    existing_store,
    export_command,
    report_command,
)
from sdaudit.cli.machine import demo_clip_command, machine_audit_command, machine_label_command
from sdaudit.cli.parser import UsageError, build_parser
from sdaudit.cli.team import rater_groups_command, team_command
from sdaudit.cli.terminal import os_error_text, printable, value_error_text
from sdaudit.config import DEMO_MODEL, data_home, home_folder, resolve_device, setting, store_path, writable_folder
from sdaudit.generation.spec import GenerationSpec, parse_seed_range

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


# -- commands ---------------------------------------------------------------------------------


def _demo_model(args) -> str:
    from sdaudit.generation.demo import write_demo_model

    path = write_demo_model(writable_folder(args.path, what="the demo model's folder"), weights_seed=args.weights_seed)
    return f"wrote the demo model (tiny, random weights: its images are noise) to {path}"


def _specs(args) -> list[GenerationSpec]:
    """One spec per (prompt, model): a prompt set's prompts (or the one prompt) × every --model."""
    from sdaudit.generation.promptsets import PromptSet, read_prompt_list, study_specs

    if (args.prompt_template is None) != (args.prompt_list is None):
        raise UsageError("--prompt-template and --prompt-list go together; give both, or --prompt alone.")
    if args.prompt_template is not None and args.prompt is not None:
        raise UsageError("give --prompt, or --prompt-template with --prompt-list, not both.")
    prompt_set = None
    if args.prompt_template is not None:
        prompt_set = PromptSet(args.prompt_template, read_prompt_list(args.prompt_list))
    return study_specs(_spec(args), args.model or [setting("model")], prompt_set)


def _spec(args) -> GenerationSpec:
    first, last = parse_seed_range(args.seeds)
    return GenerationSpec(
        model=(args.model or [setting("model")])[0],
        prompt=args.prompt if args.prompt is not None else GenerationSpec.prompt,
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
        mode="exact" if args.exact else "fast",
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
    from sdaudit.files.runfolder import RunFolder
    from sdaudit.generation.generate import StoreSink, batch_grid, generate
    from sdaudit.generation.promptsets import check_models
    from sdaudit.store import Store

    # 1. Validate everything before any file is touched: the specs, the device, where to write
    specs = _specs(args)
    spec = specs[0]
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
    check_models(specs, home=args.home)  # a model that cannot load is refused before another's images are made

    # 2. Generate this process's seeds of each run (one per prompt × model) into the run folder or the store
    bar = _ProgressBar("generating" if group is None else f"process {group.process_index}")
    store = None
    results = []
    try:
        if not args.out:
            home = data_home(args.home)
            store = Store.open(home)
        for number, one in enumerate(specs, start=1):
            if len(specs) > 1:
                bar.label = f"run {number} of {len(specs)}"
            if args.out:
                folder = RunFolder(args.out, rank=group.process_index if group else 0, spec=one.to_dict())
                sink = folder
            else:
                sink = StoreSink(store, home)
            common = dict(home=args.home, on_progress=bar)
            if group is None:
                results.append(generate(one, sink, **common))
            else:
                # whole batches, not seeds, are shared out, so each image keeps the batch company
                # it has in a one-process run (and with it its pixels)
                with group.split_between_processes(batch_grid(one)) as batches:
                    mine = [seed for batch in batches for seed in batch]
                    results.append(generate(one, sink, seeds=mine, device=str(group.device), **common))
            bar.close()
            bar.bar = None
            if results[-1].cancelled:
                break
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
    generated, present, nsfw, seconds = (sum(getattr(result, name) for result in results)
                                         for name in ("generated", "already_present", "nsfw_flagged", "seconds"))
    flagged = f", {nsfw} flagged NSFW and blacked out by the safety checker" if nsfw else ""
    stopped = " (stopped early)" if any(result.cancelled for result in results) else ""
    who = "" if group is None else f" on process {group.process_index} of {group.num_processes}"
    where = f"run folder {args.out} now holds {_images(total)}" if args.out else f"home {data_home(args.home)}"
    noise = " (demo model: random weights, the images are noise)" if DEMO_MODEL in {s.model for s in specs} else ""
    keys = [result.run_key for result in results]
    runs = (f"run {keys[0]}" if len(specs) == 1 else
            f"{len(keys)} of {len(specs)} runs ({', '.join(keys[:6])}{', … (see `runs`)' if len(keys) > 6 else ''})")
    return (
        f"generated {_images(generated)}{noise}{who} ({present} already present{flagged}){stopped} "
        f"in {seconds:.1f} s; {runs}, study {spec.study}; {where}"
    )


def _images(count: int) -> str:
    return _counted(count, "image")


def _counted(count: int, noun: str) -> str:
    """``1 run``, ``3 runs``: a count with its noun in the number it needs."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _ingest(args) -> str:
    from sdaudit.files.runfolder import ingest, read_run_folder
    from sdaudit.store import Store

    home = home_folder(args.home)
    read_run_folder(args.folder)  # a malformed folder fails before the store is opened
    with Store.open(home) as store:
        result = ingest(args.folder, store, home)
    conflicts = (
        f"; {_counted(len(result.conflicts), 'seed')} already in the store with other pixels were kept as stored "
        f"({', '.join(result.conflicts[:3])}{', …' if len(result.conflicts) > 3 else ''})"
        if result.conflicts
        else ""
    )
    return (
        f"ingested {args.folder}: {_images(result.images_added)} added, {result.already_present} already "
        f"present, {_counted(result.runs_added, 'run')} added{conflicts}; home {home}"
    )


def _ingest_images(args) -> str:
    from sdaudit.files.reference import ingest_images
    from sdaudit.store import Store

    home = home_folder(args.home)
    with Store.open(home) as store:
        result = ingest_images(args.folder, store, home, name=args.name, study=args.study, source=args.source,
                               license=args.license)
    return f"{result.summary}; run {result.run_key}; home {home}"


RUNS_CELL = 80  # characters of a prompt or run name in `runs`


def _runs(args) -> str:
    from sdaudit.store import Store

    path = store_path(args.home)
    if not Path(path).is_file():
        return f"no store at {path} yet; create one with `python -m sdaudit generate --model demo --seeds 0-7`."
    with Store(path, read_only=True) as store:
        runs = store.runs()
    if runs.empty:
        return f"no runs in {path} yet."
    from sdaudit.records import run_labels

    def short(text: str) -> str:  # a cell on one line, a long prompt cut (the whole of it is in the store)
        text = printable(str(text), one_line=True)
        return text if len(text) <= RUNS_CELL else text[:RUNS_CELL - 1] + "…"

    runs["size"] = runs["width"].astype(str) + "x" + runs["height"].astype(str)
    runs["run"] = runs["run_key"].map(run_labels(runs)).map(short)  # the name every face gives the run
    settings = ["model", "scheduler", "steps", "guidance", "size", "dtype", "prompt"]
    runs[settings] = runs[settings].astype(str).where(runs["kind"] == "generated", "")  # an imported run has none
    runs["prompt"] = runs["prompt"].map(short)
    columns = ["run_key", "study", "kind", "images", "nsfw_images", *settings, "run"]
    return runs[columns].to_string(index=False)


def _import_annotations(args) -> str:
    from sdaudit.files.sheets import import_annotations
    from sdaudit.store import Store

    with Store.open(args.home) as store:
        result = import_annotations(args.csv, store, study=args.study, rater=args.rater,
                                    sheet_format=args.sheet_format)
    return f"{result.summary}; home {data_home(args.home)}"


def _import_targets(args) -> str:
    from sdaudit.analysis.targets import import_targets, read_targets
    from sdaudit.store import Store

    read_targets(args.csv)  # a bad file fails before the store is opened
    with Store.open(args.home) as store:
        result = import_targets(args.csv, store, study=args.study)
    return (f"imported {_counted(result.rows, 'target')} into study {result.study} ({result.replaced} replaced "
            f"{'one' if result.replaced == 1 else 'ones'} it held); "
            f"home {data_home(args.home)}")


def _snapshot(args) -> str:
    from sdaudit.files.snapshot import snapshot

    home = home_folder(args.home)
    with existing_store(args) as store:
        result = snapshot(store, home, args.target)
    return (f"snapshot of {home} written to {result.target}: {result.rows.get('annotations', 0)} annotations, "
            f"{result.rows.get('images', 0)} image rows, {result.images} image files")


def _restore(args) -> str:
    from sdaudit.files.snapshot import restore_home

    home = home_folder(args.home)
    result = restore_home(home, args.source)  # opens no store in the home: a refusal leaves it as it was
    return f"restored {home} from {args.source}: " + ", ".join(
        f"{count} {table}" for table, count in result.rows.items())


COMMANDS = {
    "demo-model": _demo_model,
    "demo-clip": demo_clip_command,
    "generate": _generate,
    "machine-label": machine_label_command,
    "ingest": _ingest,
    "ingest-images": _ingest_images,
    "runs": _runs,
    "import-annotations": _import_annotations,
    "import-targets": _import_targets,
    "estimate": estimate_command,
    "compare": compare_command,
    "agreement": agreement_command,
    "team": team_command,
    "rater-groups": rater_groups_command,
    "machine-audit": machine_audit_command,
    "export": export_command,
    "report": report_command,
    "snapshot": _snapshot,
    "restore": _restore,
}


STORE_WRITERS = ("generate", "ingest", "ingest-images", "import-annotations", "import-targets")
STORE_FILES = ("sdaudit.duckdb", "sdaudit.duckdb.wal")


def _run(args) -> str:
    """The command's output. A command that opens the store for writing and is refused leaves no
    data home it made: its folders and a store with no rows go again (anything else found there stays)."""
    if args.command not in STORE_WRITERS or getattr(args, "out", None):
        return COMMANDS[args.command](args)
    home = data_home(args.home)
    made = next((folder for folder in (*reversed(home.parents), home) if not os.path.lexists(folder)), None)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, OSError):
        if made is not None:
            _remove_new_home(made, home)
        raise


def _remove_new_home(made: Path, home: Path) -> None:
    """Remove ``home`` and its parents up to ``made`` (all absent when the command began) if they hold
    nothing but the store's files and each other; a refused command's transaction wrote no row there."""
    folders = [home, *home.parents]
    folders = folders[: folders.index(made) + 1] if made in folders else []
    if not all(folder.is_dir() and not folder.is_symlink() for folder in folders):
        return  # the command never made them (refused before), or something else stands there
    found = {path for folder in folders for path in folder.iterdir()}
    if not folders or not found <= {*folders, *(home / name for name in STORE_FILES)}:
        return
    for name in STORE_FILES:
        (home / name).unlink(missing_ok=True)
    for folder in folders:  # innermost first
        folder.rmdir()


def main(argv: list[str] | None = None) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)
        output = _run(args)
    except ValueError as error:  # sdaudit's errors are ValueErrors with a user-facing message
        print(f"error: {printable(value_error_text(error, args), one_line=True)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:  # a file that could not be read or written, not met by a check above
        print(f"error: {printable(os_error_text(error, args), one_line=True)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # snapshot and restore build beside their place and remove what they built
        said = {"snapshot": "the snapshot was not written; the target holds its old snapshot whole (or the new one "
                            "whole, if it had just been put in place); run the same command again to snapshot.",
                "restore": "nothing was restored; the home is as it was (or restored whole, if it had just been put "
                           "in place); run the same command again to restore."}
        default = "every finished batch is saved; run the same command again to resume."
        print(f"interrupted: {said.get(getattr(args, 'command', None), default)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if output:
        try:
            print(printable(output), flush=True)  # prompts and names are the users' text
        except BrokenPipeError:  # `... | head` stopped reading: not an error; Python's own report is silenced
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
