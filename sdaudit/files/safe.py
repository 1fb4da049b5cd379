"""Reading and writing files under a folder sdaudit does not fully trust: a run folder, a snapshot,
or the data home itself. Only regular files are read, never through a symbolic link, and never
from outside the folder; a file is written only where no link or special file stands in its way.

A run folder's ``images/R/0.png`` linking to ``/etc/passwd`` must not carry that file home. Paths are
walked one component at a time with ``O_NOFOLLOW`` (each folder opened in the last), so a link swapped
in after a check is refused too; without ``dir_fd`` support each component is ``os.lstat``-checked.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
import uuid
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from sdaudit.errors import SdauditError
from sdaudit.files.journals import DAMAGED, inside_images, parse_journal, remove_regular

NOT_INSIDE = "{what} {path!r} must be a relative path inside {root} (no '..', not absolute)."
MISSING = "{what} {path!r} is missing from {root}."
LINK = "{what} {path!r} in {root} is a symbolic link; sdaudit reads only regular files inside the folder."
SPECIAL = "{what} {path!r} in {root} is not a regular file (a folder, device, socket or pipe)."
BLOCKED = "{what} {path!r} cannot be written in {root}: {blocker!r} is a symbolic link or not a folder."

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
DIRECTORY = getattr(os, "O_DIRECTORY", 0)
TMPFILE = getattr(os, "O_TMPFILE", 0)
NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a pipe swapped in after the check cannot hang the open
WALK_BY_DESCRIPTOR = os.open in os.supports_dir_fd and bool(NOFOLLOW) and bool(DIRECTORY)


class UnsafeFileError(SdauditError):
    """A path that is outside its folder, missing, a link, or not a regular file."""


def _parts(root: Path, relpath: str, what: str) -> tuple[str, ...]:
    path = PurePosixPath(str(relpath).replace("\\", "/"))
    if not str(relpath) or path.is_absolute() or ".." in path.parts or not path.parts:
        raise UnsafeFileError(NOT_INSIDE.format(what=what, path=str(relpath), root=root))
    return path.parts


def _open_by_descriptor(root: Path, parts: tuple[str, ...], relpath: str, what: str,
                        flags: int = os.O_RDONLY | NOFOLLOW | NONBLOCK) -> int:
    """``root/parts`` opened with ``flags``, each folder on the way opened in the last without links."""

    def refuse(error: OSError, depth: int) -> UnsafeFileError:
        if isinstance(error, FileNotFoundError):
            return UnsafeFileError(MISSING.format(what=what, path=relpath, root=root))
        kind = os.lstat(os.path.join(root, *parts[: depth + 1])).st_mode
        return UnsafeFileError((LINK if stat.S_ISLNK(kind) else SPECIAL).format(what=what, path=relpath, root=root))

    try:
        folder = os.open(root, os.O_RDONLY | DIRECTORY)
    except OSError:  # the folder itself is missing or not a folder
        raise UnsafeFileError(MISSING.format(what=what, path=relpath, root=root)) from None
    try:
        for depth, name in enumerate(parts[:-1]):
            try:
                inner = os.open(name, os.O_RDONLY | DIRECTORY | NOFOLLOW, dir_fd=folder)
            except OSError as error:
                raise refuse(error, depth) from None
            os.close(folder)
            folder = inner
        try:
            return os.open(parts[-1], flags, 0o644, dir_fd=folder)
        except OSError as error:
            raise refuse(error, len(parts) - 1) from None
    finally:
        os.close(folder)


def _walk_by_lstat(root: Path, parts: tuple[str, ...], relpath: str, what: str) -> tuple[Path, int]:
    """Each component of the path in turn, none a link: the full path and its mode."""
    current, mode = root, 0
    for name in parts:
        current = current / name
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            raise UnsafeFileError(MISSING.format(what=what, path=relpath, root=root)) from None
        if stat.S_ISLNK(mode):
            raise UnsafeFileError(LINK.format(what=what, path=relpath, root=root))
    return current, mode


def _open_by_lstat(root: Path, parts: tuple[str, ...], relpath: str, what: str) -> int:
    current, _ = _walk_by_lstat(root, parts, relpath, what)
    if not current.resolve().is_relative_to(root):
        raise UnsafeFileError(NOT_INSIDE.format(what=what, path=relpath, root=root))
    return os.open(current, os.O_RDONLY | NOFOLLOW | NONBLOCK)


def read_regular(root: str | os.PathLike, relpath: str, *, what: str = "the file") -> bytes:
    """The bytes of the regular file ``root/relpath``; ``UnsafeFileError`` when it is missing, a
    symbolic link (or reached through one), a special file, or outside ``root``."""
    root = Path(root).resolve()
    parts = _parts(root, relpath, what)
    opener = _open_by_descriptor if WALK_BY_DESCRIPTOR else _open_by_lstat
    descriptor = opener(root, parts, str(relpath), what)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise UnsafeFileError(SPECIAL.format(what=what, path=str(relpath), root=root))
    with os.fdopen(descriptor, "rb") as handle:
        return handle.read()


def is_regular(root: str | os.PathLike, relpath: str) -> bool:
    """True when ``root/relpath`` is a regular file reached without links, inside ``root``."""
    root = Path(root).resolve()
    try:
        _, mode = _walk_by_lstat(root, _parts(root, relpath, "the file"), str(relpath), "the file")
    except (UnsafeFileError, OSError):
        return False
    return stat.S_ISREG(mode)


def writable_target(root: str | os.PathLike, relpath: str, *, what: str = "the file") -> Path:
    """Where ``relpath`` may be written under ``root``: every folder on the way that exists is a
    real folder (not a link), and the file itself is absent or a regular file. Creates nothing."""
    root_path = Path(root)
    parts = _parts(root_path, relpath, what)
    current = root_path
    for position, name in enumerate(parts):
        current = current / name
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            break
        last = position == len(parts) - 1
        if stat.S_ISLNK(mode) or (not last and not stat.S_ISDIR(mode)) or (last and not stat.S_ISREG(mode)):
            raise UnsafeFileError(BLOCKED.format(what=what, path=str(relpath), root=root_path,
                                                 blocker="/".join(parts[: position + 1])))
    return root_path.joinpath(*parts)


def append_regular(root: str | os.PathLike, relpath: str, data: bytes, *, what: str = "the file") -> None:
    """Append ``data`` to the regular file ``root/relpath`` (made if absent) and fsync it; an
    ``UnsafeFileError`` before anything is written when a folder on the way is a link or not a
    folder, or the file is a link, a pipe or any other special file (a pipe would hang a plain
    ``open``; a link would carry the line to a file outside ``root``)."""
    target = writable_target(root, relpath, what=what)
    blocked = UnsafeFileError(SPECIAL.format(what=what, path=str(relpath), root=root))
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | NOFOLLOW | NONBLOCK  # a link or a pipe swapped in: refused
    try:  # walked folder by folder where it can be: so is a link swapped in for a folder on the way
        descriptor = (_open_by_descriptor(Path(root), _parts(Path(root), relpath, what), str(relpath), what, flags)
                      if WALK_BY_DESCRIPTOR else os.open(target, flags, 0o644))
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.ENOTDIR):
            raise blocked from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise blocked
        _write_all(descriptor, data, target)
    finally:
        os.close(descriptor)


def write_new(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` (under a folder sdaudit does not trust, checked first with
    ``writable_target``) so that a reader never sees half a file, and a failed or killed write
    leaves ``target`` as it was.

    sdaudit's one atomic file write: images, run folders' manifests, reference sets and the CLI's
    exports and reports all use it (``write_all_new`` for a set of files)."""
    write_all_new({target: data})


def write_all_new(files: dict[Path, bytes]) -> None:
    """Write each ``target: data`` of ``files`` as ``write_new`` does, every file whole before the
    first is renamed into place, so the targets change together but for the renames themselves.

    Each file is written as an unnamed file in its folder where Linux offers one (``O_TMPFILE``:
    a write killed or out of room leaves nothing behind), fsynced, given its partial name
    ``.NAME.partial`` and renamed to NAME; elsewhere it is written under the partial name. The
    partial name is made without following a link, so a link planted there is refused rather than
    written through; a failed write removes the partial files it made."""
    for target in files:  # every name clear before the first is replaced: all of them change, or none
        for path in (target, partial_path(target)):
            _require_clear(path)
    made: list[Path] = []
    try:
        for target, data in files.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = partial_path(target)
            _write_partial(partial, data, target)
            made.append(partial)
        for target in files:
            os.replace(partial_path(target), target)
    except OSError as error:
        for partial in made:
            partial.unlink(missing_ok=True)
        if error.filename is None:  # a failed write names no file; the user needs to know which
            raise OSError(error.errno, error.strerror or str(error), str(next(iter(files)))) from None
        raise
    except BaseException:
        for partial in made:
            partial.unlink(missing_ok=True)
        raise


IN_THE_WAY = "a folder, symbolic link or special file stands there; move it away first"


def _require_clear(path: Path) -> None:
    """An ``OSError`` naming ``path`` unless it is absent or a regular file (which a write may replace)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise OSError(errno.EEXIST, IN_THE_WAY, str(path))


def _write_partial(partial: Path, data: bytes, target: Path) -> None:
    """``data`` at ``partial`` (absent, or a stale regular partial file), on the disk (fsync)."""
    descriptor = _unnamed_file(partial.parent)
    if descriptor is None:  # no unnamed files here: write under the partial name itself
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NOFOLLOW, 0o644)
        try:
            _write_all(descriptor, data, target)
        except BaseException:
            os.close(descriptor)
            partial.unlink(missing_ok=True)
            raise
        os.close(descriptor)
        return
    try:
        _write_all(descriptor, data, target)
        if os.path.lexists(partial) and stat.S_ISREG(os.lstat(partial).st_mode):
            os.unlink(partial)  # a killed write's, under the named-file fallback: stale
        proc = os.open("/proc/self/fd", os.O_RDONLY | DIRECTORY)
        try:  # linkat(AT_SYMLINK_FOLLOW) gives the unnamed file its name; a link planted there stays
            os.link(str(descriptor), partial, src_dir_fd=proc, follow_symlinks=True)
        except OSError as error:  # name the partial file, not the descriptor's number
            raise OSError(error.errno, IN_THE_WAY if error.errno == errno.EEXIST else error.strerror,
                          str(partial)) from None
        finally:
            os.close(proc)
    finally:
        os.close(descriptor)


def _unnamed_file(folder: Path) -> int | None:
    """An unnamed file in ``folder`` (Linux's ``O_TMPFILE``), or None where there is none."""
    if not TMPFILE or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(folder, TMPFILE | os.O_WRONLY, 0o644)
    except OSError as error:
        if error.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):  # the file system has none
            return None
        raise


def _write_all(descriptor: int, data: bytes, path: Path) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(descriptor, view)
        except OSError as error:
            raise OSError(error.errno, error.strerror, str(path)) from None
        view = view[written:]
    os.fsync(descriptor)


def partial_path(target: Path) -> Path:
    """Where ``write_new`` names ``target`` before renaming it into place."""
    return target.with_name(f".{target.name}.partial")


# -- files a transaction will point at ------------------------------------------------------------

PENDING = ".sdaudit-pending"  # the data home's folder of journals, one per write in flight
_LIVE_JOURNALS: set[str] = set()  # this process's journals in flight, never recovered under its feet
_LIVE_LOCK = threading.Lock()


class PendingFiles:
    """New files under a data home that the rows of one store transaction will point at.

    Order, so that no moment leaves a row without its file or a file nobody wrote down:

    1. a journal ``HOME/.sdaudit-pending/<id>.json`` lists every file and folder about to be made;
    2. ``write`` puts each file at its final name (``write_new``: partial file, fsync, rename);
    3. the caller commits the transaction that records them;
    4. leaving the ``with`` removes the journal — or, when the block raised, the files and the
       folders it made, then the journal.

    A process killed between 1 and 4 leaves the journal: ``recover_pending`` (run by every writable
    ``Store`` open) removes each listed file that no committed row points at, the partial files
    beside them and the listed folders left empty, then the journal. So after a crash the home
    holds either the files of a committed transaction or none of them.
    """

    def __init__(self, home: str | os.PathLike, relpaths: list[str], *, what: str = "image"):
        self.home = Path(home)
        self.relpaths = list(relpaths)
        self.targets = {relpath: writable_target(self.home, relpath, what=what) for relpath in self.relpaths}
        folders: list[str] = []
        for relpath in self.relpaths:
            parents = list(PurePosixPath(relpath).parents)[:-1]  # 'images/R/0.png' -> images/R, images
            for parent in reversed(parents):
                if str(parent) not in folders and not os.path.lexists(self.home / parent):
                    folders.append(str(parent))
        self.folders = folders  # outermost first
        self.journal = self.home / PENDING / f"{os.getpid()}-{uuid.uuid4().hex}.json"
        self.written: list[Path] = []

    def __enter__(self) -> PendingFiles:
        if not self.relpaths:
            return self
        with _LIVE_LOCK:
            _LIVE_JOURNALS.add(self.journal.name)
        try:
            write_new(self.journal, json.dumps({"files": self.relpaths, "folders": self.folders}).encode())
        except BaseException:  # no journal, no files: the journals' folder goes again if it was new
            self.relpaths = []
            _remove_empty(self.home, [PENDING])
            with _LIVE_LOCK:
                _LIVE_JOURNALS.discard(self.journal.name)
            raise
        return self

    def write(self, relpath: str, data: bytes) -> None:
        """Write one of the listed files at its final name."""
        target = self.targets[relpath]
        write_new(target, data)  # a failed write leaves nothing of its own; what stood there stays
        self.written.append(target)

    def __exit__(self, kind, error, trace) -> None:
        if not self.relpaths:
            return
        if kind is not None:
            for target in self.written:
                remove_regular(target)
                remove_regular(partial_path(target))
            _remove_empty(self.home, self.folders)
        self.journal.unlink(missing_ok=True)
        _remove_empty(self.home, [PENDING])
        with _LIVE_LOCK:
            _LIVE_JOURNALS.discard(self.journal.name)


def _remove_empty(home: Path, folders: list[str]) -> None:
    """Remove each of ``folders`` (relative to ``home``, outermost first) that is an empty real folder."""
    for relpath in reversed(folders):
        folder = home / relpath
        if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            folder.rmdir()


def recover_pending(home: str | os.PathLike, recorded: Callable[[list[str]], set[str]]) -> int:
    """Undo the files of writes that died before their transaction committed (``PendingFiles``):
    each file a journal lists and ``recorded`` (the listed paths → those the store's rows point at)
    does not return is removed, with its partial file and the listed folders left empty, then the
    journal. Returns how many journals were recovered. Only the store's own writer may call this:
    the store's open lock keeps other processes out, and this process's live journals are skipped."""
    home = Path(home)
    folder = home / PENDING
    if folder.is_symlink() or not folder.is_dir():
        return 0
    recovered = 0
    for entry in sorted(os.scandir(folder), key=lambda entry: entry.name):
        with _LIVE_LOCK:
            if entry.name in _LIVE_JOURNALS:
                continue
        if entry.name.endswith(DAMAGED):
            continue  # a journal that could not be read, kept for a person to look at
        if entry.name.endswith(".json") and entry.is_file(follow_symlinks=False):
            try:
                journal = parse_journal(read_regular(folder, entry.name, what="a journal"))
            except UnsafeFileError:
                journal = None
            if journal is None:  # damaged: set aside, so every later write goes on
                os.replace(entry.path, folder / f"{entry.name}{DAMAGED}")
                continue
            kept = recorded(journal["files"])
            for relpath in journal["files"]:
                if relpath in kept or not inside_images(home, relpath):
                    continue  # recorded, or not ours to remove: only files under images/ ever are
                try:
                    target = writable_target(home, relpath, what="a journal's file")
                except UnsafeFileError:
                    continue  # a link now stands on the way: nothing of ours to remove behind it
                remove_regular(target)
                remove_regular(partial_path(target))
            _remove_empty(home, [relpath for relpath in journal["folders"] if inside_images(home, relpath)])
            recovered += 1
        if not entry.is_dir(follow_symlinks=False):
            os.unlink(entry.path)  # a journal, or the partial file of one that was never finished
    _remove_empty(home, [PENDING])
    return recovered

