"""The words and number formats people read, written once: every table, chart, report and CLI
text takes them from here, so the app, the report and the terminal say the same thing the same way.

Group and family names, table headers and notes on unreliable intervals are the label scheme's
(``sdaudit.scheme``); this module holds how numbers are shown and the verdicts read from them.
"""

from __future__ import annotations

import math

EMPTY = "–"  # a number that does not exist (no share, no interval, nothing to plan)

# -- what is counted -------------------------------------------------------------------------------

# A rating (the store's ``rated`` rule): what the to-do lists, progress bars and Home count.
RATED = ("An image counts as rated by someone once they answered every question (a person or not, and "
         "confidence; for a person, also gender presentation and skin tone).")
# What shares and agreement read: every answer, for the questions it answers (an imported sheet may
# leave confidence blank, and a rater's unfinished card still says what they saw).
ANSWERS = "Shares and agreement use every answer, finished or not, for each question it answers."

# -- numbers ---------------------------------------------------------------------------------------

CHART_PERCENT = ".1%"  # ``percent`` as Vega-Lite (d3-format) writes it, for chart axes and tooltips
CHART_POINTS = "+.1%"  # a signed difference of shares, likewise


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value != value


def percent(value, digits: int = 1) -> str:
    """A share as a percentage: ``0.3617`` → ``36.2%``; ``EMPTY`` when there is none."""
    return EMPTY if _missing(value) else f"{100 * value:.{digits}f}%"


def points(value, unit: str = " points") -> str:
    """A difference of shares in percentage points, signed with a true minus: ``−20.0 points``."""
    return EMPTY if _missing(value) else f"{100 * value:+.1f}{unit}".replace("-", "−")


def interval(low, high, *, to: str = " – ", number=percent) -> str:
    """An interval's two ends (``36.2% – 41.0%``); ``EMPTY`` when there is none."""
    return EMPTY if _missing(low) else f"{number(low)}{to}{number(high)}"


def count_of(count, n) -> str:
    """A (possibly soft) count of images out of ``n``, a fraction to one decimal: ``14 of 221``,
    ``2.5 of 4``, ``8.2 of 12`` (8.20183: a sum of probabilities)."""
    rounded = round(float(count), 1)
    return f"{int(rounded) if rounded.is_integer() else rounded} of {n}"


def level(confidence: float) -> str:
    """A confidence level: ``95%``."""
    return f"{confidence:.0%}"


def how_many(count: int, thing: str, things: str | None = None) -> str:
    """``count`` of a thing in words: "1 image", "2 images", "1 run", "0 runs"."""
    return f"{count} {thing if count == 1 else things or thing + 's'}"


def raters(count: int) -> str:
    return "one rater" if count == 1 else f"{count} raters"


# -- a rater against gold labels or their own repeats ----------------------------------------------

MATCH_NOTE = ("each cell: the share of matching answers, how many of the images both answered, and its exact "
              "95% interval (Clopper–Pearson) — 3 of 3 is 100%, yet only 29.2% – 100.0% can be said")


def match_cell(share, pairs, low, high) -> str:
    """A rater's share of matches with its count and exact interval: ``67% (2 of 3; 9.4% – 99.2%)``;
    ``EMPTY`` where no pair answered the field."""
    if _missing(share) or not pairs:
        return EMPTY
    return f"{percent(share, digits=0)} ({count_of(round(share * pairs), int(pairs))}; {interval(low, high)})"


# -- verdicts: does an interval exclude the target, or zero ----------------------------------------

EXCLUDES = "interval excludes the target"
INCLUDES = "interval includes the target"
NO_TARGET = "no target"
DIFFERS = "interval excludes no difference"
MAY_NOT_DIFFER = "interval includes no difference"
CLEARLY_DIFFERENT = {True: "yes", False: "no"}
HOLM_INTERVALS = ("Holm-adjusted: each row's interval is at the level at which Holm's step-down tests it, so it "
                  "excludes zero exactly where the adjusted test finds a difference (not simultaneous intervals)")


def verdict(excludes_target: bool, target, low) -> str:
    """The verdict on a share: its interval excludes the target or includes it; ``NO_TARGET``
    when it has no target, and empty when it has no interval."""
    if _missing(target):
        return NO_TARGET
    if _missing(low):
        return ""
    return EXCLUDES if excludes_target else INCLUDES


# -- generated minus reference: the words of study_views.difference_word ---------------------------

AMPLIFIED = "amplified"
REDUCED = "reduced"
OTHER_SIDE = "other side of the target"  # opposite sides, and which is further is not clear
NO_CLEAR_DIFFERENCE = "no clear difference"
DIFFERENCE_WORDS = (AMPLIFIED, REDUCED, OTHER_SIDE, NO_CLEAR_DIFFERENCE)
DISTANCE_HEADER = "Further from target than reference"  # the interval of |g − t| − |r − t|, in points

# -- reliability: which rule flags an interval -----------------------------------------------------

NCHS_RULE = ("Reliability follows the NCHS standard for proportions and is judged on the 95% interval, whatever "
             "confidence or simultaneous setting is shown: an interval is flagged (hollow, “rough”) with an effective "
             "sample under 30, a width of 0.30 or more, or a width over 0.05 that is over 130% of the share or of "
             "its complement.")


def reliability_rule(method: str) -> str:
    """The one sentence that says how ``method``'s intervals are flagged, where it needs saying
    beside a chart or table (the default's NCHS rule); empty for the other methods."""
    return NCHS_RULE if method == "clopper-pearson" else ""


# -- interval methods ------------------------------------------------------------------------------

METHOD_LABELS = {  # a method's name, where it is chosen (the Results page, the CLI's header)
    "jackknife": "Jackknife (the origin study's method)",
    "wilson": "Wilson score",
    "clopper-pearson": "Clopper–Pearson (exact; Korn–Graubard with several raters)",
    "bootstrap": "Bootstrap (percentile)",
}
METHOD_DESCRIPTIONS = {  # how it is formed, where the estimate is described in full (the report's audit card)
    "jackknife": "leave-one-image-out jackknife, normal (z) critical value (as in the origin study)",
    "wilson": "Wilson score",
    "clopper-pearson": "Clopper–Pearson (exact; with several raters Korn–Graubard's effective sample size)",
    "bootstrap": "percentile bootstrap over images",
}
