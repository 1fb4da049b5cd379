"""What a malformed annotation sheet is told: one error, naming the first bad row and column
(``sheets`` checks the labels, ``sheet_runs`` the runs an export carries)."""

from __future__ import annotations

from pathlib import Path

from sdaudit.errors import SdauditError

SHEET_PROBLEM = "{name} row {row}, column {column}: {problem}"


class SheetError(SdauditError):
    """A malformed annotation sheet; the message names the first bad row and column."""


def sheet_problem(path: Path, index: int, column: str, problem: str) -> SheetError:
    # Row numbers as a spreadsheet shows them: the header is row 1.
    return SheetError(SHEET_PROBLEM.format(name=path.name, row=index + 2, column=column, problem=problem))
