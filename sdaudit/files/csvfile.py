"""CSV files in and out. The one strict CSV reader: every CSV sdaudit reads (annotation sheets,
targets) comes through ``read_csv``; every CSV it writes for people goes through ``spreadsheet_safe``.

The file is opened through ``safe.read_regular``: a symbolic link or a special file is refused
before a byte of it is read, so a link to a secret can never be quoted back in an error. The
whole file is then checked before any caller sees a row: UTF-8 text, a header without repeated
columns, every row as wide as the header, and no NUL, escape or other control character in any
cell (tab is allowed; a line break only between rows). An error quotes at most the offending cell,
made printable by ``repr``, never the file's other content.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sdaudit.errors import SdauditError
from sdaudit.files.safe import read_regular

if TYPE_CHECKING:
    import pandas as pd

NO_FILE = "there is no {what} at {path!r}."
TOO_BIG = "{name} is {size:,} bytes; at most {max:,} are read."
NOT_TEXT = "{name} is not UTF-8 text."
BAD_CSV = "{name} is not a readable CSV file ({reason})."
NO_HEADER = "{name} is empty: a CSV file starts with a header row naming its columns."
DUPLICATE_COLUMN = "{name} names the column {column!r} twice (columns {first} and {second}); give each column once."
CONTROL = ("{name} row {row}, column {column}: the cell {cell} holds a control character (NUL, escape, a line break "
           "or similar); remove it.")
ROW_WIDTH = "{name} row {row} has {fields} fields where the header has {header}; remove the extra fields."
ROW_SHORT = "{name} row {row} has {fields} fields where the header has {header}; give every column a field."
MAX_CELL_SHOWN = 60

# Any C0 or C1 control character, DEL, but not tab: a cell may hold a tab, never a NUL, an escape
# sequence or a line break.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


class CsvFileError(SdauditError):
    """A CSV file that is missing, not a regular file, not UTF-8, or malformed."""


@dataclass(frozen=True)
class CsvTable:
    """A CSV file's header (each name stripped and lower-cased) and its rows, each as wide as the
    header, with the file row (header = row 1) each one ends on. Blank lines are skipped."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    row_numbers: tuple[int, ...]


def _cell(text: str) -> str:
    return repr(text if len(text) <= MAX_CELL_SHOWN else text[:MAX_CELL_SHOWN] + "…")


def read_csv(path: str | os.PathLike, *, what: str, label: str, max_bytes: int,
             skip_initial_space: bool = False) -> CsvTable:
    """The checked content of the CSV file ``path``; ``CsvFileError`` for the first problem.

    ``what`` names the kind of file ("annotation sheet") where it is missing; ``label`` starts
    every other message ("sheet.csv", "the targets file data/t.csv")."""
    path = Path(path)
    if not os.path.lexists(path):
        raise CsvFileError(NO_FILE.format(what=what, path=str(path)))
    size = os.lstat(path).st_size
    if size > max_bytes:
        raise CsvFileError(TOO_BIG.format(name=label, size=size, max=max_bytes))
    data = read_regular(path.parent, path.name, what=f"the {what}")  # a link or special file: refused, unread
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CsvFileError(NOT_TEXT.format(name=label)) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, skipinitialspace=skip_initial_space)
    try:
        lines = [(reader.line_num, row) for row in reader if row and row != [""]]
    except csv.Error as error:
        reason = "a NUL byte" if "\x00" in text else str(error).splitlines()[0]
        raise CsvFileError(BAD_CSV.format(name=label, reason=reason)) from None
    if not lines:
        raise CsvFileError(NO_HEADER.format(name=label))
    (_, raw_header), body = lines[0], lines[1:]
    for number, name in enumerate(raw_header, start=1):
        if _CONTROL.search(name):
            raise CsvFileError(CONTROL.format(name=label, row=1, column=number, cell=_cell(name)))
    header = tuple(name.strip().lower() for name in raw_header)
    first_seen: dict[str, int] = {}
    for number, name in enumerate(header, start=1):
        if name in first_seen:
            raise CsvFileError(DUPLICATE_COLUMN.format(name=label, column=name, first=first_seen[name],
                                                       second=number))
        first_seen[name] = number
    for line, row in body:
        if len(row) != len(header):
            template = ROW_WIDTH if len(row) > len(header) else ROW_SHORT
            raise CsvFileError(template.format(name=label, row=line, fields=len(row), header=len(header)))
        for name, cell in zip(header, row):
            if _CONTROL.search(cell):
                raise CsvFileError(CONTROL.format(name=label, row=line, column=name[:MAX_CELL_SHOWN], cell=_cell(cell)))
    return CsvTable(header, tuple(tuple(row) for _, row in body), tuple(line for line, _ in body))


# -- writing ------------------------------------------------------------------------------------

# OWASP's rule for CSV injection: a cell starting with one of these is read as a formula by a
# spreadsheet (=HYPERLINK(...), @SUM(...)|cmd), so such a text cell is written with a leading "'".
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` fit to write as CSV for people who open it in a spreadsheet: every text
    cell that starts with ``FORMULA_STARTS`` or with ``'`` gains a leading ``'`` (so ``as_written``
    can take off exactly the one it put there: "'-anna" is written "''-anna" and read back as
    "'-anna"). Numbers stay numbers (a negative difference is a number, not a formula); Parquet
    exports keep the raw text."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype.kind in "biufcmM":  # numbers, booleans and times cannot hold a formula
            continue
        safe[column] = safe[column].map(
            lambda value: "'" + value if isinstance(value, str) and value.startswith((*FORMULA_STARTS, "'")) else value)
    return safe


def as_written(value: str) -> str:
    """A cell of a CSV that ``spreadsheet_safe`` wrote, as the text was before: the "'" it put
    before a formula's first character is taken off again, so an export imported back keeps its
    raters' names ("-anna" stays "-anna", not "'-anna"; "'-anna", written "''-anna", stays "'-anna")."""
    return value[1:] if value.startswith("'") and value[1:].startswith((*FORMULA_STARTS, "'")) else value
