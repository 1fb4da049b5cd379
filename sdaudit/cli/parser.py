"""What ``python -m sdaudit`` accepts: every command, its arguments, defaults and help.

Kept apart from ``cli.py`` (what the commands do) so that each reads on its own; building the
parser imports neither torch nor the store. A usage mistake raises ``UsageError``, which the CLI
prints as its one ``error:`` line, like every other bad input.
"""

from __future__ import annotations

import argparse

from sdaudit.analysis.label_modes import DEFAULT_LABELS, LABEL_MODES
from sdaudit.analysis.machine_human import MACHINE_HUMAN
from sdaudit.config import DEFAULT_MODEL, DEVICES, DTYPES, setting
from sdaudit.errors import SdauditError
from sdaudit.files.sheets import SHEET_FORMATS
from sdaudit.generation.demo import DEMO_WEIGHTS_SEED
from sdaudit.generation.spec import MAX_SEED, SCHEDULERS, GenerationSpec, is_ascii_digits

HOME_HELP = "data home (default: $SDAUDIT_HOME or ./sdaudit-data)"
BOOTSTRAP_SEED = "must be a whole number from 0 to {max} but is {value!r}"
WEIGHTS_SEED = "must be a whole number from 0 to {max} but is {value!r}"


class UsageError(SdauditError):
    """A command line that argparse (or a command) refuses: wrong flags, values or combinations."""


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
    demo.add_argument("--weights-seed", type=_weights_seed, default=DEMO_WEIGHTS_SEED,
                      help=f"seed of the random weights (default: {DEMO_WEIGHTS_SEED}); another makes another model")
    # the flag's old spelling, hidden ("seed" now means an image's seed only) and still accepted
    demo.add_argument("--seed", type=_weights_seed, dest="weights_seed", help=argparse.SUPPRESS)

    gen = commands.add_parser(
        "generate",
        help="generate images over a seed range (resumes: only missing seeds are generated)",
        description="Generate one image per seed with a diffusers text-to-image pipeline. "
        "Seeds already generated with identical settings are skipped.",
    )
    defaults = GenerationSpec()  # the generation defaults are the spec's own, written once
    gen.add_argument("--model", action="append", default=None,
                     help=f"hub id, local diffusers folder, or `demo` (default: {DEFAULT_MODEL}); give it "
                     "more than once to generate every prompt with each model in one command")
    gen.add_argument("--revision", default=None, help="hub revision (branch, tag or commit)")
    gen.add_argument("--prompt", default=None, help=f"prompt (default: {defaults.prompt!r})")
    gen.add_argument("--prompt-template", default=None,
                     help="a prompt with one slot {}, e.g. 'a photo of a {}'; needs --prompt-list")
    gen.add_argument("--prompt-list", default=None,
                     help="a text file with one slot value a line (doctor, nurse, ...): one run per value and model")
    gen.add_argument("--negative-prompt", default="", help="negative prompt (default: none)")
    gen.add_argument("--seeds", required=True, help="inclusive seed range A-B, e.g. 0-99")
    gen.add_argument("--batch-size", type=int, default=defaults.batch_size,
                     help=f"images per pipeline call (default: {defaults.batch_size})")
    gen.add_argument("--steps", type=int, default=defaults.steps, help=f"denoising steps (default: {defaults.steps})")
    gen.add_argument("--guidance", type=float, default=defaults.guidance,
                     help=f"classifier-free guidance (default: {defaults.guidance})")
    gen.add_argument("--scheduler", default=defaults.scheduler, choices=list(SCHEDULERS),
                     help=f"scheduler (default: {defaults.scheduler})")
    gen.add_argument("--height", type=int, default=defaults.height,
                     help=f"image height, divisible by 8 (default: {defaults.height})")
    gen.add_argument("--width", type=int, default=defaults.width,
                     help=f"image width, divisible by 8 (default: {defaults.width})")
    gen.add_argument("--dtype", default=setting("dtype"), choices=DTYPES,
                     help="weights dtype (default: auto = float16 on cuda, else float32)")
    gen.add_argument("--device", default=setting("device"), choices=DEVICES,
                     help="device (default: auto = cuda, then mps, then cpu)")
    gen.add_argument("--safety-checker", action="store_true",
                     help="run the model's safety checker and record its NSFW flag per image "
                     "(off by default: a blacked-out image would skew an audit)")
    gen.add_argument("--exact", action="store_true",
                     help="exact mode: none of fast mode's speed options (on CUDA: channels-last, fused QKV, "
                     "torch.compile, TF32), which move pixels a little; off CUDA both modes generate exactly")
    gen.add_argument("--study", default=defaults.study, help=f"study the run belongs to (default: {defaults.study})")
    where = gen.add_mutually_exclusive_group()
    where.add_argument("--home", help="data home to write (default: $SDAUDIT_HOME or ./sdaudit-data)")
    where.add_argument("--out", help="write a run folder here instead of the store (ingest it later)")

    ingest = commands.add_parser(
        "ingest",
        help="add a run folder's images to the store (twice adds nothing)",
        description="Copy a run folder's images into the data home and record them in its store.",
    )
    ingest.add_argument("folder", help="run folder written by `generate --out`")
    ingest.add_argument("--home", help=HOME_HELP)

    real = commands.add_parser(
        "ingest-images",
        help="add a folder of real images (JPEG, PNG, WebP) to a study as a reference run",
        description="Copy the JPEG, PNG and WebP files directly in a folder under the data home as a reference "
        "run of a study, each with its sha256, original file name and size. Unreadable, duplicate, oversized "
        "and other files are named and skipped; ingesting again adds only new files.",
    )
    real.add_argument("folder", help="the folder of images (its sub-folders are not read)")
    real.add_argument("--name", required=True, help="the reference set's name, e.g. 'labour-force photos 2024'")
    real.add_argument("--study", default=defaults.study, help=f"study to add it to (default: {defaults.study})")
    real.add_argument("--source", help="where the images come from (kept with the run)")
    real.add_argument("--license", help="the images' license (kept with the run)")
    real.add_argument("--home", help=HOME_HELP)

    runs = commands.add_parser("runs", help="list the store's runs", description="List the store's runs.")
    runs.add_argument("--home", help=HOME_HELP)

    sheet = commands.add_parser(
        "import-annotations",
        help="import an annotation sheet (the origin study's format or sdaudit's own export)",
        description="Import annotations from CSV. A malformed file is refused whole, with the row and "
        "column of its first problem, and nothing is written. An annotation the study holds as it is is left "
        "unchanged (importing a sheet twice changes nothing).",
    )
    sheet.add_argument("csv", help="the sheet to import")
    sheet.add_argument("--study", required=True, help="study to import into (created if new)")
    sheet.add_argument("--rater", help="rater's name (required for --format origin; refused with --format sdaudit, "
                       "whose rows name their raters)")
    sheet.add_argument("--format", default="origin", choices=SHEET_FORMATS, dest="sheet_format",
                       help="origin: male_presenting, female_presenting, monk_binary (1 = MST >= 6), confidence; "
                       "sdaudit: this tool's export, its runs recreated (default: origin)")
    sheet.add_argument("--home", help=HOME_HELP)

    goals = commands.add_parser(
        "import-targets",
        help="import a study's targets from data (CSV: prompt or slot, family, group, target, source)",
        description="Import targets for a study's estimates: one row per prompt or slot value × family × group, "
        "with the share (0 to 1) and its source, e.g. the female share of an occupation from labour statistics. "
        "A bad row refuses the whole file and nothing is written; a row for a target already held replaces it.",
    )
    goals.add_argument("csv", help="the targets file")
    goals.add_argument("--study", required=True, help="study the targets belong to (created if new)")
    goals.add_argument("--home", help=HOME_HELP)

    comparison = commands.add_parser(
        "compare",
        help="each run's shares against a reference run's, with Newcombe's interval",
        description="Compare every chosen run of a study with a reference run, group by group: the "
        "difference of the two shares with Newcombe's score interval, optionally Holm-adjusted.",
    )
    _estimate_options(comparison)
    comparison.add_argument("--reference", help="the run key to compare with (default: the oldest annotated run "
                                                "compared; with one run in --runs, the study's oldest annotated run)")
    comparison.add_argument("--runs", nargs="+", metavar="RUN_KEY",
                            help="the runs to compare (default: every run of the study)")
    comparison.add_argument("--holm", action="store_true",
                            help="Holm-adjust the tests across all runs and groups, each interval at its Holm level")
    comparison.add_argument("--json", action="store_true", help="print the rows as a JSON array")

    est = commands.add_parser(
        "estimate",
        help="each group's share with confidence intervals",
        description="Estimate each perceived group's share among annotated images with a person.",
    )
    _estimate_options(est)
    _labels_option(est, extra=(MACHINE_HUMAN,))
    est.add_argument("--labelling", type=int, default=None,
                     help=f"with --labels {MACHINE_HUMAN}: the machine labelling to use for the fields it answers "
                     "(default: the most recent labelling answering each field)")
    est.add_argument("--json", action="store_true", help="print the rows as a JSON array")
    est.add_argument("--by", choices=["run"], default=None,
                     help="run: one estimate per run, each against its own targets (import-targets), "
                     "with the run's key, prompt, model and slot value")

    agree = commands.add_parser(
        "agreement",
        help="how well the raters agree, per field (person, gender, MST, lighter/darker)",
        description="Krippendorff's alpha (ordinal for MST), Gwet's AC1 and percent agreement per field, with "
        "bootstrap intervals over images; every pair of raters; each rater against the others.",
    )
    agree.add_argument("--study", required=True, help="the study whose raters to compare")
    _confidence_and_cut(agree)
    _bootstrap_rng_seed_option(agree)
    agree.add_argument("--json", action="store_true",
                       help="print one object per field × statistic (field, statistic, value, low, high, images, raters)")
    agree.add_argument("--home", help=HOME_HELP)

    team = commands.add_parser(
        "team",
        help="show or change a study's rater-team settings",
        description="Show a study's rater-team settings, or change those given: raters per image, repeats, when "
        "raters disagree enough to adjudicate, and the rater-group fields asked of each rater. Draw the study's "
        "human sample (a uniform random subset of its generated images that people label first, once per study) "
        "and write it as a sheet for people who label outside the app.",
    )
    team.add_argument("--study", required=True, help="the study")
    team.add_argument("--raters-per-image", type=int, help="ratings each image needs (k)")
    team.add_argument("--repeat-every", type=int, help="show one blind repeat after every N annotations (0: never)")
    team.add_argument("--mst-spread", type=int, help="adjudicate when raters' MST answers span at least this")
    team.add_argument("--gender-rule", choices=("on", "off"), help="adjudicate when gender answers differ")
    team.add_argument("--person-rule", choices=("on", "off"), help="adjudicate when person present is split")
    team.add_argument("--rater-fields", help="comma-separated rater-group fields, e.g. 'region, expertise' ('' for none)")
    team.add_argument("--human-sample", type=int, metavar="N",
                      help="draw a uniform random sample of N of the study's generated images for people to label "
                      "first (recorded with its seed; once per study)")
    team.add_argument("--seed", type=int, help="the human sample's seed (default: a random one, recorded)")
    team.add_argument("--human-sample-sheet", metavar="FILE",
                      help="write the human sample as a CSV sheet to label outside the app (read back with "
                      "`import-annotations --format sdaudit`)")
    team.add_argument("--json", action="store_true", help="print the settings (and the human sample) as a JSON object")
    team.add_argument("--home", help=HOME_HELP)

    machine = commands.add_parser(
        "machine-audit",
        help="a study's machine labels against people's: accuracy, kappa, per skin tone, and the verdicts",
        description="Hold a labelling's answers against people's labels on the images both labelled, per field and "
        "per people's skin tone (accuracy, Cohen's kappa, confusion, error across tones), and show the shares an "
        "automatic-only audit would publish beside the prediction-powered and human-only ones.",
    )
    machine.add_argument("--study", required=True, help="the study")
    machine.add_argument("--labelling", type=int, help="the labelling's id (default: the study's newest with answers)")
    _confidence_and_cut(machine)
    machine.add_argument("--json", action="store_true", help="print every number as one JSON object")
    machine.add_argument("--home", help=HOME_HELP)

    groups = commands.add_parser(
        "rater-groups",
        help="shares as seen by each group of raters, against a reference group",
        description="Estimate the shares from each rater group's annotations (by one rater-group field) and "
        "compare each group with a reference group: the difference with an interval paired image by image where "
        "the groups rated the same images (a bootstrap over images), Newcombe's where they share none.",
    )
    _estimate_options(groups)
    groups.add_argument("--field", required=True, help="the rater-group field, e.g. region")
    groups.add_argument("--reference", help="the group to compare with (default: the first by name)")
    groups.add_argument("--json", action="store_true", help="print the rows as a JSON array")

    _machine_commands(commands)

    export = commands.add_parser("export", help="export a study's annotations and estimates (CSV and Parquet)",
                                 description="Export a study's annotations and estimates as CSV and Parquet.")
    _estimate_options(export)
    _labels_option(export)
    export.add_argument("--out", required=True, help="folder to write into")

    report = commands.add_parser("report", help="write a self-contained HTML report for stakeholders",
                                 description="Write one HTML file (chart inline) that opens offline.")
    _estimate_options(report)
    _labels_option(report)
    report.add_argument("--out", required=True, help="the HTML file to write")

    snap = commands.add_parser("snapshot", help="write the whole store and its images to a folder or HF dataset",
                               description="Write every table (Parquet), the images and a manifest to TARGET: "
                               "a folder, or hf://datasets/OWNER/NAME (needs HF_TOKEN).")
    snap.add_argument("--to", required=True, dest="target", help="folder or hf://datasets/OWNER/NAME")
    snap.add_argument("--home", help=HOME_HELP)
    back = commands.add_parser("restore", help="rebuild an empty store from a snapshot",
                               description="Rebuild an empty store and its images from a snapshot.")
    back.add_argument("--from", required=True, dest="source", help="folder or hf://datasets/OWNER/NAME")
    back.add_argument("--home", help=HOME_HELP)
    return parser


def _machine_commands(commands) -> None:
    """``demo-clip`` and ``machine-label`` (issue 25: machine labels)."""
    from sdaudit.machine.clip import DEFAULT_CLIP_MODEL
    from sdaudit.machine.job import DEFAULT_BATCH_SIZE
    from sdaudit.machine.labellers import LABELLERS

    clip = commands.add_parser(
        "demo-clip", help="build the tiny offline demo CLIP (random weights) into a folder",
        description="Build a tiny random CLIP model and processor with no network and save them with "
        "save_pretrained. Its labels are noise: it is for trying machine-label and for tests.")
    clip.add_argument("path", help="folder to create (must be new or empty)")
    clip.add_argument("--weights-seed", type=_weights_seed, default=DEMO_WEIGHTS_SEED,
                      help=f"seed of the random weights (default: {DEMO_WEIGHTS_SEED})")

    label = commands.add_parser(
        "machine-label", help="label a study's generated images with a machine labeller (resumes)",
        description="Label a study's generated images automatically, kept apart from people's labels. A labeller "
        "with the same model, revision and prompts continues its labelling: only images it lacks are labelled, and "
        "each batch is saved as it is done.")
    label.add_argument("--study", required=True, help="the study whose images to label")
    label.add_argument("--labeller", required=True, choices=LABELLERS,
                       help="clip: zero-shot CLIP prompts; skin-pixels: a detected face's skin pixels matched to MST")
    label.add_argument("--model", default=None, help="clip: a hub id, a local CLIP folder, or `demo` (default: "
                       f"{DEFAULT_CLIP_MODEL})")
    label.add_argument("--runs", nargs="+", metavar="RUN_KEY", help="label only these runs (default: every run)")
    label.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                       help=f"images per model call (default: {DEFAULT_BATCH_SIZE})")
    label.add_argument("--device", default="auto", choices=DEVICES,
                       help="device (default: auto = cuda, then mps, then cpu)")
    label.add_argument("--home", help=HOME_HELP)


def _labels_option(parser: argparse.ArgumentParser, extra: tuple[str, ...] = ()) -> None:
    parser.add_argument("--labels", default=DEFAULT_LABELS, choices=(*LABEL_MODES, *extra),
                        help="how an image's label is formed from its raters' answers: soft (the share of its raters "
                        "choosing each group; the default), majority (the group most chose), dawid-skene "
                        "(corrected for rater error; with --method bootstrap the model is refitted per resample: slow), "
                        "or adjudicated (an admin's final label where one is recorded, soft elsewhere)"
                        + (f"; {MACHINE_HUMAN}: prediction-powered shares from a machine's labels on every image and "
                           "people's soft labels on the study's random human sample" if extra else ""))


def _estimate_options(parser: argparse.ArgumentParser) -> None:
    """``EstimateOptions``' flags (``cli.analysis.estimate_options`` reads them), defaults from it."""
    from sdaudit.analysis.options import DEFAULT_METHOD, METHODS

    parser.add_argument("--study", required=True, help="the study to estimate")
    parser.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS,
                        help=f"interval method (default: {DEFAULT_METHOD}; with several raters, Korn–Graubard's "
                        "effective-size version; jackknife is the origin study's)")
    _confidence_and_cut(parser)
    parser.add_argument("--exclude-unclear", action="store_true",
                        help="leave `unclear` answers out of the denominator")
    _bootstrap_rng_seed_option(parser)
    parser.add_argument("--simultaneous", action="store_true",
                        help="Bonferroni-adjust the intervals so all named groups' hold together")
    parser.add_argument("--home", help=HOME_HELP)


def _confidence_and_cut(parser: argparse.ArgumentParser) -> None:
    from sdaudit.analysis.options import DEFAULT_CONFIDENCE
    from sdaudit.scheme import DEFAULT_SKIN_CUT

    parser.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE,
                        help=f"interval confidence (default: {DEFAULT_CONFIDENCE})")
    parser.add_argument("--skin-cut", type=int, default=DEFAULT_SKIN_CUT,
                        help=f"MST 1..cut is lighter (default: {DEFAULT_SKIN_CUT})")


def _bootstrap_rng_seed_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap-rng-seed", dest="bootstrap_rng_seed", type=_bootstrap_seed, default=None,
                        help="seed of the bootstrap's random numbers (default: fresh each run)")
    # the flag's earlier spelling, kept working (and its errors naming it); "seed" alone means an image's seed
    parser.add_argument("--seed", dest="bootstrap_rng_seed", type=_bootstrap_seed, help=argparse.SUPPRESS)


def _bootstrap_seed(text: str) -> int:
    """``--seed``: numpy refuses a negative seed with words that do not name the flag."""
    if not (is_ascii_digits(text.strip()) and int(text) <= MAX_SEED):
        raise argparse.ArgumentTypeError(BOOTSTRAP_SEED.format(max=MAX_SEED, value=text))
    return int(text)


def _weights_seed(text: str) -> int:
    """``demo-model --weights-seed``: a whole number from 0 to ``MAX_SEED``, or argparse's error naming the flag."""
    if not (is_ascii_digits(text.strip()) and int(text) <= MAX_SEED):
        raise argparse.ArgumentTypeError(WEIGHTS_SEED.format(max=MAX_SEED, value=text))
    return int(text)
