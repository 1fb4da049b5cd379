"""Analysis: labels from raters' answers, shares with intervals, comparisons, planning, agreement."""
