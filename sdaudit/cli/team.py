"""The rater team's commands of ``python -m sdaudit`` (what each does; ``cli_parser.py`` says what
they accept): ``team`` shows or changes a study's team settings, ``rater-groups`` compares the shares
as seen by each group of raters. Kept apart from ``cli.py`` so each file reads on its own."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

from sdaudit.cli.analysis import differences_text, estimate_options, json_rows, store_with_study
from sdaudit.cli.parser import UsageError


def settings_text(study: str, settings) -> str:
    fields = ", ".join(settings.rater_fields) or "none"
    repeats = f"one after every {settings.repeat_every} annotations" if settings.repeat_every else "none"
    raters = "1 rater" if settings.raters_per_image == 1 else f"{settings.raters_per_image} raters"
    return (f"study {study}: {raters} per image; repeats: {repeats}; "
            f"adjudicate when {settings.disagreement_rules}; rater-group fields: {fields}")


def team_command(args) -> str:
    from sdaudit.store.team import Team, parse_fields

    changes = {name: value for name, value in (
        ("raters_per_image", args.raters_per_image), ("repeat_every", args.repeat_every),
        ("disagree_mst_spread", args.mst_spread),
        ("disagree_gender", None if args.gender_rule is None else args.gender_rule == "on"),
        ("disagree_person", None if args.person_rule is None else args.person_rule == "on"),
        ("rater_fields", None if args.rater_fields is None else parse_fields(args.rater_fields)),
    ) if value is not None}
    with store_with_study(args) as store:
        team = Team(store)
        settings = team.settings(args.study)
        if changes:
            settings = replace(settings, **changes)
            team.set_settings(args.study, settings)
    if args.json:
        return json.dumps({"study": args.study, **asdict(settings)}, indent=1)
    return settings_text(args.study, settings)


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
