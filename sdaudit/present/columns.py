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
    """What ``st.dataframe`` takes: ``column_config`` (a width for each column), ``row_height`` and
    ``height`` (both None: the grid's own, one line a row; else every row shown, wrapped)."""

    column_config: dict[str, dict[str, int]]
    row_height: int | None
    height: int | None

    @property
    def width(self) -> int:
        return sum(column["width"] for column in self.column_config.values())


def _px(characters: int) -> int:
    return math.ceil(characters * CHARACTER_PX) + PADDING_PX


def _texts(table: pd.DataFrame, column) -> list[str]:
    return [str(column), *("" if value is None or value != value else str(value) for value in table[column])]


def fitted(table: pd.DataFrame, *, width: int = FIT_WIDTH) -> TableLayout:
    """Each column as wide as its longest text, unless the whole is wider than ``width``: then each
    column gets at least its header and its longest word, and what is left of ``width`` goes to the
    columns with longer texts in proportion to what they lack; their text wraps in taller rows."""
    if width < NARROWEST * len(table.columns):
        raise ValueError(f"A table of {len(table.columns)} columns cannot fit {width} px; give at least "
                         f"{NARROWEST} px a column.")
    columns = [str(column) for column in table.columns]
    texts = {name: _texts(table, column) for name, column in zip(columns, table.columns)}
    natural = {name: max(NARROWEST, _px(max(map(len, cells)))) for name, cells in texts.items()}
    if sum(natural.values()) <= width:
        return TableLayout({name: {"width": px} for name, px in natural.items()}, None, None)
    # a header is not wrapped, and a word is not split
    least = {name: min(natural[name], max(NARROWEST, _px(len(cells[0])),
                                          _px(max((len(word) for cell in cells[1:] for word in cell.split()), default=0))))
             for name, cells in texts.items()}
    left, lacking = width - sum(least.values()), {name: natural[name] - least[name] for name in columns}
    if left >= 0:
        shown = {name: least[name] + math.floor(left * lacking[name] / sum(lacking.values())) for name in columns}
    else:  # even the words do not fit: shrink every column alike
        shown = {name: max(NARROWEST, math.floor(least[name] * width / sum(least.values()))) for name in columns}
    lines = min(MOST_LINES, max(math.ceil((natural[name] - PADDING_PX) / (shown[name] - PADDING_PX)) for name in columns))
    row = max(WRAPPED_ROW_PX, LINE_PX * lines + 12)
    return TableLayout({name: {"width": px} for name, px in shown.items()}, row, HEADER_PX + row * len(table))
