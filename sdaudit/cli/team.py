"""The rater team's commands of ``python -m sdaudit`` (what each does; ``cli_parser.py`` says what
they accept): ``team`` shows or changes a study's team settings and draws its human sample (and
writes it as a sheet), ``rater-groups`` compares the shares
as seen by each group of raters. Kept apart from ``cli.py`` so each file reads on its own."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, replace
from pathlib import Path

from sdaudit.cli.analysis import differences_text, estimate_options, json_rows, store_with_study
from sdaudit.cli.parser import UsageError
from sdaudit.config import writable_folder


def settings_text(study: str, settings) -> str:
    fields = ", ".join(settings.rater_fields) or "none"
    repeats = f"one after every {settings.repeat_every} annotations" if settings.repeat_every else "none"
    raters = "1 rater" if settings.raters_per_image == 1 else f"{settings.raters_per_image} raters"
    return (f"study {study}: {raters} per image; repeats: {repeats}; "
            f"adjudicate when {settings.disagreement_rules}; rater-group fields: {fields}")


SEED_WITHOUT_SAMPLE = "--seed is the human sample's seed, so it needs --human-sample N but was given alone ({value})."
NO_SAMPLE_FOR_SHEET = ("study {study!r} has no human sample to write as a sheet; draw one first with "
                       "`team --study {study} --human-sample N`.")
SHEET_IS_FOLDER = "--human-sample-sheet must name a file to write but {path} is a folder."
SHEET_EXISTS = ("--human-sample-sheet must name a new file but {path} exists (it may hold people's answers): give "
                "another name, or move it away first.")


def team_command(args) -> str:
    from sdaudit.files.csvfile import spreadsheet_safe
    from sdaudit.files.safe import write_new
    from sdaudit.present.team_tables import SAMPLE_SHEET_HOW, draw_human_sample, human_sample_sheet, human_sample_view
    from sdaudit.store.team import Team, parse_fields

    changes = {name: value for name, value in (
        ("raters_per_image", args.raters_per_image), ("repeat_every", args.repeat_every),
        ("disagree_mst_spread", args.mst_spread),
        ("disagree_gender", None if args.gender_rule is None else args.gender_rule == "on"),
        ("disagree_person", None if args.person_rule is None else args.person_rule == "on"),
        ("rater_fields", None if args.rater_fields is None else parse_fields(args.rater_fields)),
    ) if value is not None}
    # 1. Check the command line whole before anything is written
    if args.seed is not None and args.human_sample is None:
        raise UsageError(SEED_WITHOUT_SAMPLE.format(value=args.seed))
    sheet = None if args.human_sample_sheet is None else Path(args.human_sample_sheet)
    if sheet is not None:
        if sheet.is_dir():
            raise UsageError(SHEET_IS_FOLDER.format(path=sheet))
        if os.path.lexists(sheet):
            raise UsageError(SHEET_EXISTS.format(path=sheet))
        writable_folder(sheet.parent, what="the folder of --human-sample-sheet")
    with store_with_study(args) as store:
        team = Team(store)
        settings = team.settings(args.study)
        if changes:
            settings = replace(settings, **changes).check()
        # 2. The draw (refused whole: a second one, a bad size or seed), then the settings
        drawn = None
        if args.human_sample is not None:
            drawn = draw_human_sample(store, args.study, args.human_sample, seed=args.seed)
        if changes:
            team.set_settings(args.study, settings)
        sample = human_sample_view(store, args.study)
        if sheet is not None and sample is None:
            raise UsageError(NO_SAMPLE_FOR_SHEET.format(study=args.study))
        rows = None if sheet is None else human_sample_sheet(store, args.study, sample.sample)
        images_home = Path(store.path).parent
    # 3. The sheet, whole or not at all
    if rows is not None:
        write_new(sheet, spreadsheet_safe(rows).to_csv(index=False).encode("utf-8"))
    if args.json:
        return json.dumps({"study": args.study, **asdict(settings),
                           "human_sample": None if sample is None else sample.as_dict()}, indent=1)
    lines = [settings_text(args.study, settings)]
    if sample is not None:
        lines.append(drawn.drawn if drawn is not None else sample.text)
    if rows is not None:
        lines.append(f"wrote the human sample's {len(rows)} images to {sheet} (image files under "
                     f"{images_home}): {SAMPLE_SHEET_HOW.format(study=args.study)}")
    return "\n".join(lines)


def rater_groups_command(args) -> str:
    from sdaudit.analysis.rater_quality import POOLING, group_comparison
    from sdaudit.present.words import level
    from sdaudit.store.team import Team

    with store_with_study(args) as store:
        groups = Team(store).rater_groups(args.study)
        fields = Team(store).settings(args.study).rater_fields
        annotations = store.annotations(study=args.study)
    if args.field not in fields:
        raise UsageError(f"study {args.study!r} asks no rater-group field {args.field!r}; its fields: "
                         f"{', '.join(fields) or 'none (set them with `team --rater-fields`)'}.")
    compared = group_comparison(annotations, groups, args.field, reference=args.reference,
                                **estimate_options(args).arguments)
    table = compared.differences.rename(columns={"run": "rater_group"})
    if args.json:
        return json_rows(table)
    header = (f"shares as seen by each group of raters by {args.field!r} minus those seen by {compared.reference!r}, "
              f"in percentage points, soft labels; {level(args.confidence)} interval by image pairs where the groups rated "
              "the same images (a bootstrap over images), Newcombe's where they share none (method: which). "
              f"{POOLING}")
    return differences_text(table, first="rater_group", header=header, extra=("method",))
