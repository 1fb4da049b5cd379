"""``machine-label``, ``demo-clip`` and ``machine-audit``: label a study's images with a machine
labeller in the foreground, with a progress bar, as ``generate`` makes images (the Runs page queues the
same work as a background job); build the tiny offline CLIP that tests and newcomers label with; and
hold a study's machine labels against people's (text: readable tables; ``--json``: every number).
What each accepts is in ``cli/parser.py``."""

from __future__ import annotations

import sys

from sdaudit.cli.analysis import store_with_study
from sdaudit.config import data_home, writable_folder


def demo_clip_command(args) -> str:
    from sdaudit.generation.demo import write_demo_clip

    path = write_demo_clip(writable_folder(args.path, what="the demo CLIP's folder"), weights_seed=args.weights_seed)
    return f"wrote the demo CLIP (tiny, random weights: its labels are noise) to {path}"


def machine_label_command(args) -> str:
    from sdaudit.machine.job import check_request, machine_label
    from sdaudit.machine.labellers import make_labeller

    # 1. Check the request (study, runs, labeller, batch size) before loading a model or writing a row
    home = data_home(args.home)
    with store_with_study(args) as store:
        request = check_request(store, args.study, args.runs, batch_size=args.batch_size, labeller=args.labeller)
        # 2. Load the labeller (a model that cannot be found offline stops here, the store unchanged)
        labeller = make_labeller(args.labeller, args.model, args.device, home=home)
        # 3. Label what its labelling lacks, a committed batch at a time
        bar = _Bar(f"labelling ({args.labeller})")
        try:
            result = machine_label(store, home, labeller, request, on_progress=bar)
        finally:
            bar.close()
    revision = f", revision {labeller.model_revision}" if labeller.model_revision else ""
    return (f"labelled {result.labelled} of {result.images_total} images with {labeller.name} (model {labeller.model}"
            f"{revision}; {result.already_labelled} labelled before) in {result.seconds:.1f} s; labelling "
            f"{result.labelling_id} of study {request.study}; home {home}")


def machine_audit_command(args) -> str:
    from sdaudit.analysis.machine_audit import audit, machine_inputs
    from sdaudit.present.machine_tables import audit_json, audit_text

    with store_with_study(args) as store:
        inputs = machine_inputs(store, args.study, args.labelling)
    result = audit(inputs, confidence=args.confidence, skin_cut=args.skin_cut)
    return audit_json(result) if args.json else audit_text(result)


class _Bar:
    """A tqdm bar on stderr over the request's images, the ones labelled before counted in."""

    def __init__(self, label: str):
        self.label = label
        self.bar = None

    def __call__(self, progress) -> None:
        from tqdm import tqdm

        if self.bar is None and progress.images_done >= progress.images_total:
            return  # nothing left to label: no bar
        if self.bar is None:
            self.bar = tqdm(total=progress.images_total, desc=self.label, unit="img", file=sys.stderr)
        self.bar.n = progress.images_done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
