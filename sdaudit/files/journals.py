"""What a data home's file journal (``safe.PendingFiles``) may say, read by ``safe.recover_pending``
before it removes anything: a journal is a JSON object whose ``files`` and ``folders`` are lists of
paths, and only paths under the home's ``images/`` (no '..', no link on the way) are ever removed.
A journal sdaudit did not write (hand-edited, torn, hostile) must neither delete the store nor stop
every later write. Undoing a write removes only regular files: a link planted at a name stays."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path, PurePosixPath

DAMAGED = ".damaged"  # the suffix a journal that cannot be read is set aside under


def parse_journal(data: bytes) -> dict[str, list[str]] | None:
    """A journal's ``files`` and ``folders`` (lists of paths), or None when ``data`` is not one."""
    try:
        journal = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):  # a JSONDecodeError and a UnicodeDecodeError are ValueErrors
        return None
    if not isinstance(journal, dict):
        return None
    lists = {key: journal.get(key) for key in ("files", "folders")}
    if not all(isinstance(value, list) and all(isinstance(item, str) for item in value) for value in lists.values()):
        return None
    return lists


def inside_images(home: Path, relpath: str) -> bool:
    """True when ``relpath`` is ``images`` or lies under it in ``home``, with no '..' and no link on the way."""
    path = PurePosixPath(relpath)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] != "images":
        return False
    current = home
    for name in path.parts:
        current = current / name
        try:
            if stat.S_ISLNK(os.lstat(current).st_mode):
                return False
        except FileNotFoundError:
            return True
        except OSError:
            return False
    return True


def remove_regular(path: Path) -> None:
    """Remove ``path`` if it is a regular file: a link or folder someone else put there stays."""
    try:
        if stat.S_ISREG(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        return
