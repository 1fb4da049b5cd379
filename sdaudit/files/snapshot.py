"""Durable snapshots: the whole store (Parquet per table), its images and a manifest, and back.

Hugging Face Spaces have no persistent disk: the live DuckDB file sits on local disk and is lost
on restart unless it is snapshotted somewhere that lasts. A target is a local folder, or
``hf://datasets/OWNER/NAME`` — a Hugging Face dataset repo, written with ``huggingface_hub`` when
a token is configured (``HF_TOKEN``). A snapshot reads the tables in one DuckDB read transaction
(``Store.export_tables``), which does not block writers, so annotation clicks go on while it runs.
``restore`` rebuilds an *empty* store and never overwrites one that holds data.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sdaudit
from sdaudit.config import writable_folder
from sdaudit.errors import SdauditError
from sdaudit.files.safe import UnsafeFileError, is_regular, read_regular, writable_target, write_new
from sdaudit.records import Job
from sdaudit.store import SCHEMA_VERSION, TABLES, Store

MANIFEST = "snapshot.json"
HF_PREFIX = "hf://datasets/"


class SnapshotError(SdauditError):
    """A snapshot that cannot be written or restored; the message says why."""


@dataclass(frozen=True)
class SnapshotResult:
    target: str
    rows: dict[str, int]
    images: int


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_local(store: Store, home: Path, folder: Path) -> SnapshotResult:
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".snapshot-", dir=folder))
    try:
        rows = store.export_tables(staging)
        images = store.images()
        copied = 0
        for relpath in images.loc[~images["external"], "path"]:
            if os.path.lexists(home / relpath):  # a missing file is left out; a link is refused
                try:
                    data = read_regular(home, relpath, what="image")
                except UnsafeFileError as error:
                    raise SnapshotError(f"the data home holds an image sdaudit will not copy: {error}") from None
                target = staging / relpath
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                copied += 1
        manifest = {
            "format": "sdaudit-snapshot",
            "schema_version": SCHEMA_VERSION,
            "written_by": f"sdaudit {sdaudit.__version__}",
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "rows": rows,
            "images": copied,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        # Replace the previous snapshot only once the new one is complete.
        for name in [*(f"{table}.parquet" for table in TABLES), "images", MANIFEST]:
            old = folder / name
            if old.is_dir():
                shutil.rmtree(old)
            elif old.exists():
                old.unlink()
            if (staging / name).exists():
                os.replace(staging / name, old)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return SnapshotResult(str(folder), rows, copied)


def snapshot(store: Store, home: str | os.PathLike, target: str) -> SnapshotResult:
    """Write the whole store and its images to ``target`` (a folder or ``hf://datasets/…``)."""
    home = Path(home)
    if not target.startswith(HF_PREFIX):  # a target that is (or lies under) a file is refused first
        return _write_local(store, home, writable_folder(target, what="the snapshot target"))
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


def restore(store: Store, home: str | os.PathLike, source: str) -> SnapshotResult:
    """Rebuild an empty store (and its images) from a snapshot at ``source``.

    Only regular files inside the snapshot are read: a manifest, table or image that is a symbolic
    link (or lies behind one) or a special file refuses the whole snapshot before anything is
    written, and so does a link in the data home where an image would go.
    """
    home = Path(home)
    if any(store.count(table) for table in TABLES):
        raise SnapshotError(f"the store {store.path} already holds data; restore only into an empty store.")
    if not source.startswith(HF_PREFIX):
        return _restore_folder(store, home, Path(source), source)
    repo = source.removeprefix(HF_PREFIX).strip("/")
    with tempfile.TemporaryDirectory(prefix="sdaudit-restore-") as scratch:
        try:
            from huggingface_hub import snapshot_download

            # local_dir: real files, not the hub cache's links into its blob store
            folder = Path(snapshot_download(repo_id=repo, repo_type="dataset", local_dir=scratch))
        except Exception as error:  # the hub client raises many types
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise SnapshotError(f"the snapshot at {source} could not be downloaded ({reason}).") from None
        return _restore_folder(store, home, folder, source)


def _restore_folder(store: Store, home: Path, folder: Path, source: str) -> SnapshotResult:
    # 1. Check everything first: the manifest, every table and every image a regular file inside
    # the snapshot, and every image's place in the data home free of links
    try:
        manifest = json.loads(read_regular(folder, MANIFEST, what="the manifest").decode("utf-8"))
    except UnsafeFileError as error:
        if not os.path.lexists(folder / MANIFEST):
            raise SnapshotError(f"there is no sdaudit snapshot at {source!r} (no {MANIFEST}).") from None
        raise SnapshotError(str(error)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SnapshotError(f"the snapshot manifest at {source!r} is not valid JSON ({error}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "sdaudit-snapshot" \
            or manifest.get("schema_version") != SCHEMA_VERSION:
        found = manifest.get("schema_version") if isinstance(manifest, dict) else None
        raise SnapshotError(
            f"the snapshot at {source!r} has schema version {found!r}; this sdaudit restores {SCHEMA_VERSION}."
        )
    for table in TABLES:
        name = f"{table}.parquet"
        if os.path.lexists(folder / name) and not is_regular(folder, name):
            raise SnapshotError(f"the snapshot's {name} is a symbolic link or a special file; it is not restored.")
    try:
        relpaths = _image_paths(folder)
        targets = {relpath: writable_target(home, relpath, what="image") for relpath in relpaths}
        for relpath in relpaths:
            read_regular(folder, relpath, what="image")
    except UnsafeFileError as error:
        raise SnapshotError(f"the snapshot at {source!r} cannot be restored: {error}") from None

    # 2. Copy the images, then load the rows (rows last: a row always has its file)
    for relpath, target in targets.items():
        try:
            write_new(target, read_regular(folder, relpath, what="image"))
        except UnsafeFileError as error:
            raise SnapshotError(f"the snapshot at {source!r} changed while it was restored: {error}") from None
    rows = store.import_tables(folder)
    return SnapshotResult(source, rows, manifest.get("images", 0))


def _image_paths(folder: Path) -> list[str]:
    """Every file under the snapshot's images/ (without following links), relative to ``folder``.
    A link or special file among them is listed too, so that the check refuses it."""
    images = folder / "images"
    if not os.path.lexists(images):
        return []
    if not images.is_dir() or images.is_symlink():
        raise UnsafeFileError(f"the snapshot's images folder {str(images)!r} is a symbolic link or not a folder.")
    found = []
    for parent, folders, files in os.walk(images, followlinks=False):
        # os.walk lists a link to a folder among the folders and does not enter it: refuse it here
        found += [os.path.join(parent, name) for name in folders if os.path.islink(os.path.join(parent, name))]
        found += [os.path.join(parent, name) for name in files]
    return sorted(Path(path).relative_to(folder).as_posix() for path in found)


class AutoSnapshot:
    """Keeps a hosted store safe: restores it on start when empty, then snapshots after each
    finished job (``after_job``) and every ``minutes`` while annotations change.

    A failed snapshot is kept in ``last_error`` for the app to show; it is never swallowed.
    """

    def __init__(self, store: Store, home: str | os.PathLike, target: str, *, minutes: float, start: bool = True):
        import threading

        self.store, self.home, self.target, self.minutes = store, Path(home), target, minutes
        self.last_error: str | None = None
        self.last_success: SnapshotResult | None = None
        self.restored: SnapshotResult | None = None
        self._seen = -1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if not any(store.count(table) for table in TABLES):
            try:
                self.restored = restore(store, home, target)
            except SnapshotError as error:
                self.last_error = f"restore on start failed: {error}"
        self._seen = store.count("annotation_history")
        self._thread = threading.Thread(target=self._loop, name="sdaudit-snapshots", daemon=True)
        if start:
            self._thread.start()

    def snapshot_now(self) -> SnapshotResult | None:
        with self._lock:
            try:
                result = snapshot(self.store, self.home, self.target)
            except (SnapshotError, OSError, ValueError) as error:
                self.last_error = f"snapshot to {self.target} failed: {error}"
                return None
            self.last_error, self.last_success = None, result
            self._seen = result.rows.get("annotation_history", self._seen)
            return result

    def after_job(self, job: Job) -> None:
        self.snapshot_now()

    def _loop(self) -> None:
        while not self._stop.wait(self.minutes * 60):
            if self.store.count("annotation_history") != self._seen:
                self.snapshot_now()

    def stop(self) -> None:
        self._stop.set()
