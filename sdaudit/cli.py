"""``python -m sdaudit``: the command-line face of sdaudit.

Bad input ends with one line on stderr that starts with ``error:`` and exit status 2, before
the store is touched. Progress goes to stderr; each command's result is one line on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sdaudit.config import DEFAULT_MODEL, DEMO_MODEL, DEVICES, DTYPES, data_home, setting, store_path
from sdaudit.errors import SdauditError
from sdaudit.generate import DEFAULT_PROMPT, SCHEDULERS, GenerationSpec, parse_seed_range
from sdaudit.store import DEFAULT_STUDY

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class UsageError(SdauditError):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one ``error:`` line, like every other bad input."""

    def error(self, message: str) -> None:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m sdaudit",
        description="Audit text-to-image models for demographic representation bias.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = commands.add_parser(
        "demo-model",
        help="build the tiny offline demo pipeline (random weights) into a folder",
        description="Build a tiny random Stable Diffusion pipeline with no network and save it "
        "with save_pretrained. Its images are noise: it is for trying sdaudit and for tests.",
    )
    demo.add_argument("path", help="folder to create (must be new or empty)")

    gen = commands.add_parser(
        "generate",
        help="generate images over a seed range (resumes: only missing seeds are generated)",
        description="Generate one image per seed with a diffusers text-to-image pipeline. "
        "Seeds already generated with identical settings are skipped.",
    )
    gen.add_argument("--model", default=setting("model"),
                     help=f"hub id, local diffusers folder, or `demo` (default: {DEFAULT_MODEL})")
    gen.add_argument("--revision", default=None, help="hub revision (branch, tag or commit)")
    gen.add_argument("--prompt", default=DEFAULT_PROMPT, help=f"prompt (default: {DEFAULT_PROMPT!r})")
    gen.add_argument("--negative-prompt", default="", help="negative prompt (default: none)")
    gen.add_argument("--seeds", required=True, help="inclusive seed range A-B, e.g. 0-99")
    gen.add_argument("--batch-size", type=int, default=4, help="images per pipeline call (default: 4)")
    gen.add_argument("--steps", type=int, default=50, help="denoising steps (default: 50)")
    gen.add_argument("--guidance", type=float, default=7.5, help="classifier-free guidance (default: 7.5)")
    gen.add_argument("--scheduler", default="pndm", choices=list(SCHEDULERS), help="scheduler (default: pndm)")
    gen.add_argument("--height", type=int, default=512, help="image height, divisible by 8 (default: 512)")
    gen.add_argument("--width", type=int, default=512, help="image width, divisible by 8 (default: 512)")
    gen.add_argument("--dtype", default=setting("dtype"), choices=DTYPES,
                     help="weights dtype (default: auto = float16 on cuda, else float32)")
    gen.add_argument("--device", default=setting("device"), choices=DEVICES,
                     help="device (default: auto = cuda, then mps, then cpu)")
    gen.add_argument("--safety-checker", action="store_true",
                     help="run the model's safety checker and record its NSFW flag per image "
                     "(off by default: a blacked-out image would skew an audit)")
    gen.add_argument("--study", default=DEFAULT_STUDY, help=f"study the run belongs to (default: {DEFAULT_STUDY})")
    where = gen.add_mutually_exclusive_group()
    where.add_argument("--home", help="data home to write (default: $SDAUDIT_HOME or ./sdaudit-data)")
    where.add_argument("--out", help="write a run folder here instead of the store (ingest it later)")

    ingest = commands.add_parser(
        "ingest",
        help="add a run folder's images to the store (twice adds nothing)",
        description="Copy a run folder's images into the data home and record them in its store.",
    )
    ingest.add_argument("folder", help="run folder written by `generate --out`")
    ingest.add_argument("--home", help="data home (default: $SDAUDIT_HOME or ./sdaudit-data)")

    runs = commands.add_parser("runs", help="list the store's runs", description="List the store's runs.")
    runs.add_argument("--home", help="data home (default: $SDAUDIT_HOME or ./sdaudit-data)")
    return parser


# -- commands ---------------------------------------------------------------------------------


def _demo_model(args) -> str:
    from sdaudit.demo import write_demo_model

    path = write_demo_model(args.path)
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
    from sdaudit.exchange import RunFolder
    from sdaudit.generate import StoreSink, generate
    from sdaudit.store import Store

    # 1. Validate everything before any file is touched
    spec = _spec(args)
    if _world_size() > 1 and not args.out:
        raise UsageError(
            f"{_world_size()} processes cannot share one store; give --out DIR and `ingest DIR` afterwards."
        )
    group = _process_group()

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
            with group.split_between_processes(list(spec.seeds)) as mine:
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
    from sdaudit.exchange import ingest, read_run_folder
    from sdaudit.store import Store

    home = data_home(args.home)
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


COMMANDS = {"demo-model": _demo_model, "generate": _generate, "ingest": _ingest, "runs": _runs}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        output = COMMANDS[args.command](args)
    except ValueError as error:  # sdaudit's errors are ValueErrors with a user-facing message
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted: every finished batch is saved; run the same command again to resume.",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if output:
        print(output)
    return 0
