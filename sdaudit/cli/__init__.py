"""``python -m sdaudit``: the command-line face. ``main`` runs a command; ``parser`` says what
each command accepts, ``commands``, ``analysis`` and ``team`` what each does."""

from sdaudit.cli.commands import build_parser, main

__all__ = ["build_parser", "main"]
