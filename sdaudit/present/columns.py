"""How the app draws a table so that it fits its column: a width for each column and, where a long
text (a run's name, a note) cannot fit on one line, rows tall enough for it to wrap.

Left to itself the app's data grid sizes each column to its longest text, so the Results table ran
past the right edge of the page at 1366 px and its Note column could only be reached by scrolling.
Widths are estimated from the number of characters (the grid's 14 px type is about 6.4 px a
character) and sum to at most ``FIT_WIDTH``, the main column's width at 1366 px with the sidebar
open (906 px) less a margin; the grid stretches them to fill a wider column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

FIT_WIDTH = 860
CHARACTER_PX = 6.4
PADDING_PX = 20  # a cell's padding, both sides
NARROWEST = 60
MOST_LINES = 4  # a longer text is cut in its cell (a click on the cell shows all of it)
LINE_PX = 20
HEADER_PX = 38
# The grid wraps a cell's text only in rows taller than 4 rem (64 px).
WRAPPED_ROW_PX = 70


@dataclass(frozen=True)
class TableLayout:
    """What ``st.dataframe`` takes: ``column_config`` (a width for each column, and its header as
    ``help`` where the header is cut), ``row_height`` and ``height`` (both None: the grid's own, one
    line a row; else every row shown, wrapped)."""

    column_config: dict[str, dict[str, int | str]]
    row_height: int | None
    height: int | None

    @property
    def width(self) -> int:
        return sum(column["width"] for column in self.column_config.values())


def _px(characters: int) -> int:
    return math.ceil(characters * CHARACTER_PX) + PADDING_PX


def _texts(table: pd.DataFrame, column) -> list[str]:
    return [str(column), *("" if value is None or value != value else str(value) for value in table[column])]


def _lines(text: str, px: int) -> int:
    """How many lines ``text`` wraps to, word by word, in a cell ``px`` wide."""
    room, lines, used = max(1, math.floor((px - PADDING_PX) / CHARACTER_PX)), 1, 0
    for word in text.split():
        if used and used + 1 + len(word) > room:
            lines, used = lines + 1, len(word)
        else:
            used += len(word) + (1 if used else 0)
    return lines


def _narrowest(cells: list[str], least: int, natural: int, lines: int) -> int:
    """The narrowest width from ``least`` up in which every cell wraps to at most ``lines`` lines."""
    return next((px for px in range(least, natural, 4) if all(_lines(cell, px) <= lines for cell in cells)), natural)


def fitted(table: pd.DataFrame, *, width: int = FIT_WIDTH) -> TableLayout:
    """Each column as wide as its longest text, unless the whole is wider than ``width``: then the
    rows get the fewest lines (at most ``MOST_LINES``) in which the table fits, each column as
    narrow as that allows but never narrower than a word of its header or cells (a header cut
    short is its column's help). Where even ``MOST_LINES`` lines do not fit, every column is
    narrowed alike and a cell's text may be cut (a click on the cell shows all of it)."""
    if width < NARROWEST * len(table.columns):
        raise ValueError(f"A table of {len(table.columns)} columns cannot fit {width} px; give at least "
                         f"{NARROWEST} px a column.")
    texts = {str(column): _texts(table, column) for column in table.columns}
    natural = {name: max(NARROWEST, _px(max(map(len, cells)))) for name, cells in texts.items()}
    if sum(natural.values()) <= width:
        return TableLayout({name: {"width": px} for name, px in natural.items()}, None, None)
    # a word is not split
    least = {name: min(natural[name], max(NARROWEST, _px(max((len(word) for cell in cells for word in cell.split()),
                                                             default=0))))
             for name, cells in texts.items()}
    for lines in range(2, MOST_LINES + 1):
        shown = {name: _narrowest(cells[1:], least[name], natural[name], lines) for name, cells in texts.items()}
        if sum(shown.values()) <= width:
            break
    else:  # even at the most lines it does not fit: every column alike, at most its share
        shown = {name: math.floor(least[name] * width / sum(least.values())) for name in texts}
        lines = MOST_LINES
    left = width - sum(shown.values())
    for name in shown:  # what is left goes to headers that would be cut, leftmost first
        more = max(0, min(left, _px(len(name)) - shown[name]))
        shown[name], left = shown[name] + more, left - more
    row = max(WRAPPED_ROW_PX, LINE_PX * lines + 12)
    config = {name: {"width": px} | ({"help": name} if px < _px(len(name)) else {}) for name, px in shown.items()}
    return TableLayout(config, row, HEADER_PX + row * len(table))
