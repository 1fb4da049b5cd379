"""Tables drawn to fit the app's column (``present.columns``): widths from the texts, long ones wrapped."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import sheet

from sdaudit.analysis.estimate import estimate
from sdaudit.analysis.planning import compare_runs
from sdaudit.present.columns import FIT_WIDTH, MOST_LINES, NARROWEST, _lines, _px, fitted
from sdaudit.present.estimate_tables import comparison_table, display_table

LONG_RUN = "a doctor sitting behind a desk in a hospital office · stabilityai/stable-diffusion-2-1 · 60 images"


def results_table() -> pd.DataFrame:
    return display_table(estimate(sheet({("female", 2): 10, ("female", 8): 3, ("male", 3): 30, ("male", 7): 5,
                                         ("unclear", 4): 12})))


def comparison() -> pd.DataFrame:
    runs = {f"{LONG_RUN} {index}": estimate(sheet({("female", 2): 10 + 12 * index, ("male", 3): 30}))
            for index in range(3)}
    return comparison_table(compare_runs(runs, reference=next(iter(runs))))


def test_a_table_that_fits_keeps_one_line_a_row():
    table = pd.DataFrame({"Group": ["female-presenting", "male-presenting"], "Share": ["41.7%", "58.3%"]})
    layout = fitted(table)
    assert layout.row_height is None and layout.height is None
    assert layout.column_config == {"Group": {"width": _px(len("female-presenting"))}, "Share": {"width": NARROWEST}}


@pytest.mark.parametrize("table", [results_table(), comparison()], ids=["results", "comparison"])
def test_a_wide_table_fits_the_column_and_wraps_its_long_texts(table):
    """The Results table's Note column ran past the page's right edge at 1366 px."""
    natural = sum(_px(max(len(str(column)), *table[column].astype(str).str.len())) for column in table.columns)
    assert natural > FIT_WIDTH  # as the grid sized it, it did not fit
    layout = fitted(table)
    widths = {column: config["width"] for column, config in layout.column_config.items()}
    assert list(widths) == list(table.columns) and layout.width <= FIT_WIDTH
    assert layout.row_height > 64, "the grid wraps text only in rows taller than 4 rem"
    assert layout.height >= layout.row_height * len(table), "every row is shown"
    for column, config in layout.column_config.items():  # a header cut short is the column's help
        assert config.get("help") == (column if config["width"] < _px(len(column)) else None)


def test_the_results_table_wraps_every_text_whole_in_its_rows():
    layout = fitted(results_table())
    widths = {column: config["width"] for column, config in layout.column_config.items()}
    lines = max(_lines(str(cell), widths[column]) for column, cells in results_table().items() for cell in cells)
    assert 1 < lines <= MOST_LINES and layout.row_height >= 20 * lines


def test_words_wrap_whole():
    assert _lines("too few images to trust this interval", _px(16)) == 3
    assert _lines("female-presenting", _px(20)) == 1


def test_a_width_no_table_can_fit_is_refused():
    with pytest.raises(ValueError, match="^A table of 9 columns cannot fit 300 px; give at least 60 px a column.$"):
        fitted(results_table(), width=300)
