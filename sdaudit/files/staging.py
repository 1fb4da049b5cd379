"""Folders built beside their place and renamed into it, for snapshots and restores.

A snapshot or a restored home is built in a staging folder beside its place (``STAGING_MARKER``
says which process builds it) and renamed in only once whole; the folder it replaces is renamed
aside first and removed after, file by file, only the files sdaudit listed in it (``MARKER``). A
staging folder left by a killed process is removed by the next run; one whose process still runs,
or that sdaudit did not make, is left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
from pathlib import Path

from sdaudit.config import store_path
from sdaudit.files.safe import UnsafeFileError, is_regular, read_regular, write_new
from sdaudit.files.snapshot_check import MANIFEST, SnapshotError

MARKER = ".sdaudit-snapshot"  # in every snapshot folder sdaudit made: its format and every file it wrote
MARKER_FORMAT = 1
STAGING_MARKER = ".sdaudit-staging"  # in a folder being built: which process builds it

TARGET_IS_LINK = "the snapshot target {path} is a symbolic link; give the folder itself."
TARGET_NOT_OURS = ("the snapshot target {path} holds {found!r}, which no sdaudit snapshot wrote there; give a new or "
                   "empty folder, or the folder of an earlier snapshot.")
TARGET_UNMARKED = ("the snapshot target {path} holds a snapshot written before sdaudit marked its snapshots (no "
                   f"{MARKER}); sdaudit cannot tell its files from yours there: move it away or give a new folder.")


def files_of_our_snapshot(folder: Path) -> list[str]:
    """The files of the snapshot at ``folder`` as its marker lists them (none for a new or empty
    folder); ``SnapshotError`` when the folder holds anything else: a file the marker does not
    list, a link, a special file, or no marker at all."""
    if not os.path.lexists(folder):
        return []
    if folder.is_symlink() or not folder.is_dir():
        raise SnapshotError(TARGET_IS_LINK.format(path=folder))
    found = walk(folder)
    if not found:
        return []
    try:
        marker = json.loads(read_regular(folder, MARKER, what="the snapshot marker").decode("utf-8"))
        listed = marker["files"] if isinstance(marker, dict) and marker.get("format") == "sdaudit-snapshot" else None
    except (UnsafeFileError, UnicodeDecodeError, json.JSONDecodeError, KeyError, RecursionError):
        listed = None
    if not isinstance(listed, list) or not all(isinstance(name, str) for name in listed):
        if os.path.lexists(folder / MANIFEST) and not os.path.lexists(folder / MARKER):
            raise SnapshotError(TARGET_UNMARKED.format(path=folder))
        raise SnapshotError(TARGET_NOT_OURS.format(path=folder, found=found[0]))
    ours = {*listed, MARKER, STAGING_MARKER}
    for relpath in found:
        if relpath not in ours or not is_regular(folder, relpath):
            raise SnapshotError(TARGET_NOT_OURS.format(path=folder, found=relpath))
    return listed


def walk(folder: Path) -> list[str]:
    """Every entry under ``folder`` that is not a real folder (files, links, special files), and
    every link to a folder, relative to ``folder``, without following links."""
    found = []
    for parent, folders, files in os.walk(folder, followlinks=False):
        found += [os.path.join(parent, name) for name in folders if os.path.islink(os.path.join(parent, name))]
        found += [os.path.join(parent, name) for name in files]
    return sorted(Path(path).relative_to(folder).as_posix() for path in found)


def _swap(staging: Path, folder: Path, aside_word: str, old_files: list[str]) -> None:
    """Put the whole folder ``staging`` at ``folder`` by renames: onto a missing or empty folder in
    one step; else the old folder aside (``.NAME.<aside_word>-…``), the new one in, and the old
    one's ``old_files`` removed."""
    if not os.path.lexists(folder) or not any(os.scandir(folder)):
        os.rename(staging, folder)  # onto a missing or empty folder: one step (POSIX replaces an empty folder)
    else:
        aside = folder.with_name(f".{folder.name}.{aside_word}-{secrets.token_hex(4)}")
        os.rename(folder, aside)
        try:
            os.rename(staging, folder)
        except BaseException:
            os.rename(aside, folder)
            raise
        remove_files(aside, old_files)
    (folder / STAGING_MARKER).unlink(missing_ok=True)


def swap_snapshot(staging: Path, folder: Path) -> None:
    """The new snapshot ``staging`` at ``folder`` (``_swap``); the old one's listed files removed."""
    old_files = files_of_our_snapshot(folder) if os.path.lexists(folder) and any(os.scandir(folder)) else []
    _swap(staging, folder, "replaced", old_files)


def tidy_snapshots(folder: Path) -> None:
    """What a snapshot killed half-way left beside ``folder``: its staging folder is removed; a
    previous snapshot renamed aside goes back if the target is missing, else is removed."""
    for entry in os.scandir(folder.parent):
        if not entry.is_dir(follow_symlinks=False):
            continue
        if entry.name.startswith(f".{folder.name}.snapshot-") and abandoned(Path(entry.path)):
            shutil.rmtree(entry.path)
    put_back_snapshot(folder)
    for entry in os.scandir(folder.parent):
        if entry.is_dir(follow_symlinks=False) and entry.name.startswith(f".{folder.name}.replaced-"):
            try:
                listed = files_of_our_snapshot(Path(entry.path))
            except SnapshotError:  # something sdaudit did not write is in it: left alone
                continue
            remove_files(Path(entry.path), listed)  # the snapshot that replaced it is in place


def put_back_snapshot(folder: Path) -> None:
    """A snapshot killed between its two renames left the old one set aside (``.NAME.replaced-*``)
    and none at ``folder``: the old one goes back (the next snapshot and every restore do this first)."""
    if os.path.lexists(folder) or not folder.parent.is_dir():
        return
    for entry in sorted(os.scandir(folder.parent), key=lambda entry: entry.name):
        if entry.is_dir(follow_symlinks=False) and entry.name.startswith(f".{folder.name}.replaced-"):
            try:
                files_of_our_snapshot(Path(entry.path))
            except SnapshotError:  # something sdaudit did not write is in it: left alone
                continue
            os.rename(entry.path, folder)
            return


def remove_files(folder: Path, listed: list[str]) -> None:
    """Remove the files ``listed`` (and the markers) from ``folder``, then each folder they emptied;
    anything else stays, with the folders that hold it."""
    listed = [relpath for relpath in listed if is_regular(folder, relpath)]  # none outside ``folder``
    for relpath in [*listed, MARKER, STAGING_MARKER]:
        if is_regular(folder, relpath):
            (folder / relpath).unlink()
    parents = {parent for relpath in listed for parent in Path(relpath).parents if parent != Path(".")}
    for parent in sorted(parents, key=lambda path: len(path.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty: it holds something sdaudit did not write
            (folder / parent).rmdir()
    with contextlib.suppress(OSError):
        folder.rmdir()


def staging_folder(parent: Path, prefix: str) -> Path:
    """A new folder ``parent/PREFIX<random>`` carrying ``STAGING_MARKER`` (this process and host)."""
    staging = parent / f"{prefix}{secrets.token_hex(6)}"
    staging.mkdir()
    try:
        write_new(staging / STAGING_MARKER, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
    except BaseException:  # a full disk: nothing is left behind
        shutil.rmtree(staging)
        raise
    return staging


def abandoned(staging: Path) -> bool:
    """A staging folder whose process, on this host, is gone (one still running is left alone), or
    one killed before its marker was whole (it holds nothing else)."""
    if set(os.listdir(staging)) <= {f".{STAGING_MARKER}.partial"}:
        return True
    try:
        owner = json.loads(read_regular(staging, STAGING_MARKER, what="the staging marker"))
        pid, host = int(owner["pid"]), owner["host"]
    except (UnsafeFileError, ValueError, KeyError, TypeError):
        return False  # not a staging folder sdaudit made: ignored
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        return False
    return False


def swap_home(staging: Path, home: Path) -> None:
    """The restored home ``staging`` at ``home`` (``_swap``): a home that held only a store with no
    rows goes aside and its empty store is removed."""
    _swap(staging, home, "emptied", store_files(home))


def store_files(home: Path) -> list[str]:
    """The names of a home's store file and its write-ahead log."""
    name = store_path(home).name
    return [name, f"{name}.wal"]


def tidy_restores(home: Path) -> None:
    """What a restore into ``home`` killed half-way left beside it: its staging folder (once its
    process is gone), and an emptied home's store files set aside."""
    for entry in os.scandir(home.parent):
        if not entry.is_dir(follow_symlinks=False):
            continue
        if entry.name.startswith(f".{home.name}.restore-") and abandoned(Path(entry.path)):
            shutil.rmtree(entry.path)
        elif entry.name.startswith(f".{home.name}.emptied-"):
            remove_files(Path(entry.path), store_files(home))
