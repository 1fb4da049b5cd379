"""Durable snapshots: the whole store (Parquet per table), its images and a manifest, and back.

Hugging Face Spaces have no persistent disk: the live DuckDB file sits on local disk and is lost
on restart unless it is snapshotted somewhere that lasts. A target is a local folder, or
``hf://datasets/OWNER/NAME`` — a Hugging Face dataset repo, written with ``huggingface_hub`` when
a token is configured (``HF_TOKEN``). A snapshot reads the tables in one DuckDB read transaction
(``Store.export_tables``), which does not block writers, so annotation clicks go on while it runs.

A snapshot never touches a file it did not write. It writes only into a folder that is new, empty,
or holds a snapshot sdaudit made (``MARKER`` lists every file of it), never into the data home or
a folder inside it, never through a link. It is built in a staging folder beside the target and
renamed into place once complete (the old snapshot renamed aside first, then removed), so a crash
at any moment leaves the old snapshot whole or the new one. Before that it is read back with
restore's own checks (each image decoded whole, once per process): a store that holds what restore
refuses (a study name from before today's rule, an image over the caps or cut short) is refused up
front, not written as a backup that cannot be restored. ``restore`` checks every table and
image first (``snapshot_check.py``), then builds the new home in a staging folder beside it and
renames it into place: only into a new or empty home (or one whose store has no rows).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sdaudit
from sdaudit.config import store_path, writable_folder
from sdaudit.files.safe import UnsafeFileError, read_regular, writable_target, write_new
from sdaudit.files.snapshot_check import MANIFEST, NoSnapshotError, SnapshotError, check_snapshot
from sdaudit.files.staging import (
    MARKER,
    MARKER_FORMAT,
    TARGET_IS_LINK,
    files_of_our_snapshot,
    put_back_snapshot,
    staging_folder,
    store_files,
    swap_home,
    swap_snapshot,
    tidy_restores,
    tidy_snapshots,
)
from sdaudit.records import Job
from sdaudit.store import SCHEMA_VERSION, TABLES, Store
from sdaudit.store.parquet import fill_new_store

__all__ = ["MANIFEST", "MARKER", "AutoSnapshot", "SnapshotError", "SnapshotResult", "last_snapshots", "restore",
           "restore_home", "snapshot"]

HF_PREFIX = "hf://datasets/"
TARGET_IN_HOME = ("the snapshot target {path} is the data home {home} or a folder inside it; a snapshot goes to a "
                  "folder outside the data home.")
TARGET_HOLDS_HOME = ("the snapshot target {path} holds the data home {home}; a snapshot goes to a folder outside the "
                     "data home, and the data home outside it.")
UNRESTORABLE = "no snapshot was written, because restore would refuse it: {reason}; nothing was changed."
HOLDS_DATA = "the store {path} already holds data; restore only into an empty store."
HOME_NOT_EMPTY = ("the data home {path} is not empty (it holds {found!r}); restore only into a new or empty folder, "
                  "e.g. --home {path}-restored.")
KEPT = ("the snapshot at {target} could not be restored ({reason}); automatic snapshots are off until it is restored "
        "or moved away, so it is never overwritten.")
CHANGED = "the snapshot at {source!r} changed while it was restored: {path!r} is not the file that was checked."


@dataclass(frozen=True)
class SnapshotResult:
    target: str
    rows: dict[str, int]
    images: int


# -- writing a snapshot -------------------------------------------------------------------------


def snapshot(store: Store, home: str | os.PathLike, target: str) -> SnapshotResult:
    """Write the whole store and its images to ``target`` (a folder or ``hf://datasets/…``)."""
    home = Path(home)
    if not target.startswith(HF_PREFIX):
        return _write_local(store, home, _snapshot_folder(target, home))
    repo = target.removeprefix(HF_PREFIX).strip("/")
    with tempfile.TemporaryDirectory(prefix="sdaudit-snapshot-") as scratch:
        result = _write_local(store, home, Path(scratch))
        try:
            from huggingface_hub import HfApi

            HfApi().upload_folder(repo_id=repo, repo_type="dataset", folder_path=scratch,
                                  commit_message=f"sdaudit snapshot: {result.rows.get('annotations', 0)} annotations")
        except Exception as error:  # the hub client raises many types; a failed snapshot is reported
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise SnapshotError(f"the snapshot could not be uploaded to {target} ({reason}).") from None
    return SnapshotResult(target, result.rows, result.images)


def _snapshot_folder(target: str, home: Path) -> Path:
    """The target folder, refused when it is (or lies under) a file, is a link, is (inside) the
    home, or holds the home (its files would be taken for the old snapshot's and removed)."""
    folder = writable_folder(target, what="the snapshot target")  # a file in the way is refused first
    if folder.is_symlink():
        raise SnapshotError(TARGET_IS_LINK.format(path=folder))
    if folder.name in ("", ".."):  # `.` or `x/..`: the folder's own name is needed beside it (staging, set aside)
        folder = folder.resolve()
    where, home_place = folder.resolve(), home.resolve()
    if where == home_place or where.is_relative_to(home_place):
        raise SnapshotError(TARGET_IN_HOME.format(path=folder, home=home))
    if home_place.is_relative_to(where):
        raise SnapshotError(TARGET_HOLDS_HOME.format(path=folder, home=home))
    return folder


def _write_local(store: Store, home: Path, folder: Path) -> SnapshotResult:
    # 1. Check the target: new, empty, or a snapshot sdaudit made; tidy what a killed run left
    folder.parent.mkdir(parents=True, exist_ok=True)
    tidy_snapshots(folder)
    files_of_our_snapshot(folder)
    # 2. Build the new snapshot beside it: tables, images, manifest, and the marker last
    staging = staging_folder(folder.parent, f".{folder.name}.snapshot-")
    try:
        rows = store.export_tables(staging)
        written = [f"{table}.parquet" for table in TABLES]
        images = store.images()
        for relpath in images.loc[~images["external"], "path"]:
            if os.path.lexists(home / relpath):  # a missing file is left out; a link is refused
                try:
                    data = read_regular(home, relpath, what="image")
                except UnsafeFileError as error:
                    raise SnapshotError(f"the data home holds an image sdaudit will not copy: {error}") from None
                (staging / relpath).parent.mkdir(parents=True, exist_ok=True)
                (staging / relpath).write_bytes(data)
                written.append(relpath)
        copied = len(written) - len(TABLES)
        manifest = {
            "format": "sdaudit-snapshot",
            "schema_version": SCHEMA_VERSION,
            "written_by": f"sdaudit {sdaudit.__version__}",
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "rows": rows,
            "images": copied,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        marker = {"format": "sdaudit-snapshot", "marker_format": MARKER_FORMAT, "files": [*written, MANIFEST]}
        (staging / MARKER).write_text(json.dumps(marker), encoding="utf-8")
        # 3. Read it back with restore's own checks: a snapshot its restore would refuse is no backup
        try:
            check_snapshot(staging, str(folder))
        except SnapshotError as error:
            raise SnapshotError(UNRESTORABLE.format(reason=str(error).removesuffix("; nothing was restored."))) from None
        # 4. Swap it in by renames: the old one aside, the new one in, the old one removed
        swap_snapshot(staging, folder)
    except BaseException:
        if os.path.lexists(staging):
            shutil.rmtree(staging)
        raise
    return SnapshotResult(str(folder), rows, copied)


# -- restoring ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _fetched(source: str) -> Iterator[Path]:
    """The snapshot's folder: ``source`` itself, or a download of ``hf://datasets/…``."""
    if not source.startswith(HF_PREFIX):
        put_back_snapshot(Path(os.path.abspath(source)))  # a snapshot killed between its renames: the old one back
        yield Path(source)
        return
    repo = source.removeprefix(HF_PREFIX).strip("/")
    with tempfile.TemporaryDirectory(prefix="sdaudit-restore-") as scratch:
        try:
            from huggingface_hub import snapshot_download

            # local_dir: real files, not the hub cache's links into its blob store
            folder = Path(snapshot_download(repo_id=repo, repo_type="dataset", local_dir=scratch))
        except Exception as error:  # the hub client raises many types
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise SnapshotError(f"the snapshot at {source} could not be downloaded ({reason}).") from None
        yield folder


def restore(store: Store, home: str | os.PathLike, source: str) -> SnapshotResult:
    """Rebuild an empty, open store (and its images) from a snapshot at ``source``: every table and
    image is checked first; then the images are copied and the rows loaded in one transaction. The
    app restores this way on start; the CLI uses ``restore_home``."""
    home = Path(home)
    if any(store.count(table) for table in TABLES):
        raise SnapshotError(HOLDS_DATA.format(path=store.path))
    with _fetched(source) as folder:
        checked = check_snapshot(folder, source)
        targets = {}
        for relpath in checked.images:
            try:
                targets[relpath] = writable_target(home, relpath, what="image")
            except UnsafeFileError as error:
                raise SnapshotError(f"the snapshot at {source!r} cannot be restored: {error}") from None
        written: list[Path] = []
        try:
            for relpath, target in targets.items():
                data = _checked_bytes(folder, relpath, checked.images[relpath], source)
                if not target.exists():
                    written += [target, target.with_name(f".{target.name}.partial")]  # write_new's partial file
                write_new(target, data)
            rows = store.import_tables(checked.tables)  # rows last: a row always has its file
        except BaseException:
            for target in written:
                target.unlink(missing_ok=True)
            raise
    return SnapshotResult(source, rows, len(checked.images))


def restore_home(home: str | os.PathLike, source: str) -> SnapshotResult:
    """Rebuild the data home ``home`` (new, empty, or holding a store with no rows) from the
    snapshot at ``source``. Every table and image is checked before anything is written; the new
    home is built in a staging folder beside it and renamed into place, so a refusal, a crash or a
    full disk leaves the home as it was."""
    given = Path(home)
    home = given.resolve()
    _check_home(given, home)
    with _fetched(source) as folder:
        checked = check_snapshot(folder, source)
        home.parent.mkdir(parents=True, exist_ok=True)
        tidy_restores(home)
        staging = staging_folder(home.parent, f".{home.name}.restore-")
        try:
            for relpath, digest in checked.images.items():
                (staging / relpath).parent.mkdir(parents=True, exist_ok=True)
                (staging / relpath).write_bytes(_checked_bytes(folder, relpath, digest, source))
            rows = fill_new_store(store_path(staging), Store, checked.tables)
            swap_home(staging, home)
        except BaseException:
            if os.path.lexists(staging):
                shutil.rmtree(staging)
            raise
    return SnapshotResult(source, rows, len(checked.images))


def _check_home(given: Path, home: Path) -> None:
    """A home may be restored into when it is missing, empty, or holds only a store with no rows."""
    if not os.path.lexists(home):
        return
    entries = sorted(os.listdir(home))
    if store_path(home).name in entries:  # the store's own refusals first: damaged, locked, holding data
        with Store(store_path(home), read_only=True) as store:
            if any(store.count(table) for table in TABLES):
                raise SnapshotError(HOLDS_DATA.format(path=store_path(given)))
    others = [name for name in entries if name not in store_files(home)]
    if others:
        raise SnapshotError(HOME_NOT_EMPTY.format(path=given, found=others[0]))


def _checked_bytes(folder: Path, relpath: str, digest: str, source: str) -> bytes:
    """The image file as it was checked (read again without links; its sha256 unchanged)."""
    try:
        data = read_regular(folder, relpath, what="image")
    except UnsafeFileError:
        raise SnapshotError(CHANGED.format(source=source, path=relpath)) from None
    if hashlib.sha256(data).hexdigest() != digest:
        raise SnapshotError(CHANGED.format(source=source, path=relpath))
    return data


class AutoSnapshot:
    """Keeps a hosted store safe: restores it on start when empty, then snapshots after each
    finished job (``after_job``), every ``minutes`` while the store changes, and once more as the
    process ends (``at_exit``: a container's SIGTERM, Ctrl+C or a normal exit) when it changed
    since the last snapshot. "Changed" is any table's row count: a new label, edit, study, gold
    mark or job; an edit that adds no row to any table (a team setting) waits for the next one.

    A failed snapshot is kept in ``last_error`` for the app to show; it is never swallowed. When a
    snapshot is at the target but could not be restored on start, no automatic snapshot is written
    there at all (it would replace the only copy of the data with an empty store).
    """

    def __init__(self, store: Store, home: str | os.PathLike, target: str, *, minutes: float, start: bool = True):
        import threading

        self.store, self.home, self.target, self.minutes = store, Path(home), target, minutes
        self.last_error: str | None = None
        self.last_success: SnapshotResult | None = None
        self.restored: SnapshotResult | None = None
        self._seen: tuple[int, ...] = ()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._kept: str | None = None  # why the target is never written: its snapshot was not restored
        if not any(store.count(table) for table in TABLES):
            try:
                self.restored = restore(store, home, target)
            except NoSnapshotError as error:  # nothing there to lose: the first snapshot makes one
                self.last_error = f"restore on start failed: {error}"
            except (SnapshotError, OSError, ValueError) as error:
                self._kept = KEPT.format(target=target, reason=str(error).rstrip("."))
                self.last_error = f"restore on start failed: {self._kept}"
        self._seen = self._counts()
        self._thread = threading.Thread(target=self._loop, name="sdaudit-snapshots", daemon=True)
        if start:
            self._thread.start()
            _STARTED.add(self)
            atexit.register(self.at_exit)  # a daemon thread dies with the process: the last changes go here

    def snapshot_now(self) -> SnapshotResult | None:
        with self._lock:
            if self._kept:
                self.last_error = f"snapshot to {self.target} not written: {self._kept}"
                return None
            try:
                result = snapshot(self.store, self.home, self.target)
            except (SnapshotError, OSError, ValueError) as error:
                self.last_error = f"snapshot to {self.target} failed: {error}"
                return None
            self.last_error, self.last_success = None, result
            self._seen = tuple(result.rows.get(table, 0) for table in TABLES)  # as read in the snapshot's transaction
            return result

    def _counts(self) -> tuple[int, ...]:
        return tuple(self.store.count(table) for table in TABLES)

    def changed(self) -> bool:
        """Whether any table's row count differs from the last snapshot's (or the start's)."""
        return self._counts() != self._seen

    def after_job(self, job: Job) -> None:
        self.snapshot_now()

    def _loop(self) -> None:
        while not self._stop.wait(self.minutes * 60):
            if self.changed():
                self.snapshot_now()

    def at_exit(self) -> None:
        """The last snapshot, as the process ends (registered with ``atexit`` by a started keeper;
        the app's server calls it through ``last_snapshots`` when it shuts down): written only when the store changed since the last one, all or nothing like every snapshot;
        its outcome is one line on stderr, the app's log."""
        if self._stop.is_set():
            return
        self._stop.set()
        _STARTED.discard(self)
        if not self.changed():
            return
        result = self.snapshot_now()
        if result is None:
            print(f"sdaudit: the last snapshot on exit was not written: {self.last_error}", file=sys.stderr, flush=True)
        else:
            print(f"sdaudit: snapshot on exit to {result.target}: {result.rows.get('annotations', 0)} annotations, "
                  f"{result.images} images", file=sys.stderr, flush=True)

    def stop(self) -> None:
        """Stop snapshotting (the app releases its keeper): no more periodic or exit snapshots."""
        self._stop.set()
        _STARTED.discard(self)
        atexit.unregister(self.at_exit)


_STARTED: weakref.WeakSet[AutoSnapshot] = weakref.WeakSet()  # started keepers not yet stopped


def last_snapshots() -> None:
    """Every started keeper's last snapshot (``AutoSnapshot.at_exit``), for a server's shut-down
    hook. A server that stops on SIGTERM may end the process by that signal once it has shut
    down (uvicorn re-raises it, as Streamlit's server runs it), so ``atexit`` never runs there:
    the app calls this from its lifespan's end instead."""
    for keeper in list(_STARTED):
        keeper.at_exit()
