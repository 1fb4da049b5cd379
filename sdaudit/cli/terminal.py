"""What the CLI prints is made safe for a terminal: user text (prompts, rater and study names, sheet
cells) may hold escape sequences, and ``ESC]0;PWNED BEL ESC[2J`` printed raw retitles the terminal
and clears the screen. ``main`` passes every line it prints through ``printable``. The one line a
failed command prints for a file error or a full disk is worded here too."""

from __future__ import annotations

import re
import sys

from sdaudit.config import data_home

# An escape sequence whole: CSI (ESC [ … final byte), OSC/DCS/APC/PM/SOS strings (ESC ] … BEL or
# ESC \), or a two-character escape; removed with its arguments, not only its ESC.
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -~]?)")
# Any other C0 or C1 control character and DEL; tab and line feed stay where lines may break.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")  # and bidi controls
_LINE_BREAK = re.compile(r"[\t\n]")
OS_ERROR = "could not use {path}: {reason}."
DISK_FULL_BATCH = ("the disk is full writing {path}: the batch in hand was not saved, every finished batch is; "
                   "free some space and run the same command again to resume.")


def printable(text: str, *, one_line: bool = False) -> str:
    """``text`` without escape sequences and control characters (tabs and line feeds kept, or
    each made a space with ``one_line``), so printing it cannot steer the terminal."""
    text = _CONTROL.sub("", _ESCAPE.sub("", text))
    return _LINE_BREAK.sub(" ", text) if one_line else text


def value_error_text(error: ValueError, args) -> str:
    database = sys.modules.get("sdaudit.store.database")  # only a store that was opened has a full disk
    if database is not None and isinstance(error, database.DiskFullError):
        return _disk_full_text(error.path, args)
    return str(error)


def os_error_text(error: OSError, args) -> str:
    """The one line for a file error; a full disk says where, and that nothing half-done was kept."""
    from sdaudit.store.database import is_disk_full

    if not is_disk_full(error):
        return OS_ERROR.format(path=error.filename, reason=error.strerror or error)
    return _disk_full_text(error.filename or getattr(args, "out", None) or data_home(getattr(args, "home", None)), args)


def _disk_full_text(path, args) -> str:
    from sdaudit.store.database import DISK_FULL

    return (DISK_FULL_BATCH if getattr(args, "command", None) == "generate" else DISK_FULL).format(path=path)
