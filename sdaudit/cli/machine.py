"""``python -m sdaudit machine-audit``: a study's machine labels held against people's (what it accepts is
in ``cli/parser.py``). Text: readable tables; ``--json``: every number."""

from __future__ import annotations

from sdaudit.cli.analysis import store_with_study


def machine_audit_command(args) -> str:
    from sdaudit.analysis.machine_audit import audit, machine_inputs
    from sdaudit.present.machine_tables import audit_json, audit_text

    with store_with_study(args) as store:
        inputs = machine_inputs(store, args.study, args.labelling)
    result = audit(inputs, confidence=args.confidence, skin_cut=args.skin_cut)
    return audit_json(result) if args.json else audit_text(result)
