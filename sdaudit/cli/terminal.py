"""What the CLI prints is made safe for a terminal: user text (prompts, rater and study names, sheet
cells) may hold escape sequences, and ``ESC]0;PWNED BEL ESC[2J`` printed raw retitles the terminal
and clears the screen. ``main`` passes every line it prints through ``printable``."""

from __future__ import annotations

import re

# An escape sequence whole: CSI (ESC [ … final byte), OSC/DCS/APC/PM/SOS strings (ESC ] … BEL or
# ESC \), or a two-character escape; removed with its arguments, not only its ESC.
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -~]?)")
# Any other C0 or C1 control character and DEL; tab and line feed stay where lines may break.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_LINE_BREAK = re.compile(r"[\t\n]")


def printable(text: str, *, one_line: bool = False) -> str:
    """``text`` without escape sequences and control characters (tabs and line feeds kept, or
    each made a space with ``one_line``), so printing it cannot steer the terminal."""
    text = _CONTROL.sub("", _ESCAPE.sub("", text))
    return _LINE_BREAK.sub(" ", text) if one_line else text
