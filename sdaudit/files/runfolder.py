"""Run folders: self-describing generation output that is ingested into a store later.

DuckDB lets one process write a store file, so generation that must not touch the store (the
app holds it, or several processes generate at once) writes a run folder instead::

    DIR/manifest.json              format, runs (every setting + library versions), images
    DIR/images/<run_key>/<seed>.png
    DIR/parts/rank-<k>.jsonl       rows not yet merged into the manifest (one file a process)

Each process appends its image rows to its own part file as it goes (a crash keeps them);
``finalize`` (one process) merges the parts into the manifest. ``ingest`` copies the images
into a data home and adds the rows; ingesting twice adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import sdaudit
from sdaudit.errors import RunFolderError
from sdaudit.files.manifest_schema import check_manifest, check_part_line, shown
from sdaudit.files.safe import PendingFiles, append_regular, read_regular, writable_target, write_new
from sdaudit.records import ImageRecord, RunRecord, require_new_study
from sdaudit.store import Store

FORMAT = "sdaudit-run-folder"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PARTS = "parts"
MAX_MANIFEST_BYTES = 1024**3  # about 3 million images' rows

RUN_DIFFERS = ("{folder!r}: run {run_key!r} is already in the store with other settings ({field} {stored!r} there, "
               "{given!r} in the folder); nothing was ingested.")
# every setting that makes a run's images what they are: a folder's run must match the stored run of its key
SETTINGS = ("study", "model", "model_revision", "prompt", "negative_prompt", "scheduler", "steps", "guidance",
            "width", "height", "dtype", "safety_checker", "kind")
NESTED = "{where} is nested too deeply to be a run folder manifest."
TOO_BIG = "{where} is {size:,} bytes; at most {max:,} are read."


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class RunFolderContents:
    """What a run folder holds, merged from its manifest and any unmerged parts."""

    runs: dict[str, RunRecord]
    images: dict[tuple[str, int], ImageRecord]
    specs: list[dict]


def _run_from(row: dict, where: str) -> RunRecord:
    """A run row already checked against the schema (``manifest_schema``)."""
    return RunRecord(**row)


def _image_from(row: dict, where: str) -> ImageRecord:
    """An image row already checked against the schema, whose path lies under images/."""
    path = PurePosixPath(row["path"])
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] != "images":
        raise RunFolderError(f"{where}: image path {row['path']!r} must lie under images/ inside the folder.")
    return ImageRecord(**row)


class RunFolder:
    """A run folder, usable as a generation sink (``generate(spec, RunFolder(dir))``)."""

    def __init__(self, folder: str | os.PathLike, *, rank: int = 0, spec: dict | None = None):
        self.root = Path(folder)
        self.rank = rank
        self.spec = spec  # the generation spec, recorded in the manifest

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def part_path(self) -> Path:
        return self.root / PARTS / f"rank-{self.rank}.jsonl"

    # -- sink -------------------------------------------------------------------------------

    def begin(self, run: RunRecord) -> set[int]:
        if self.root.exists() and not self.root.is_dir():
            raise RunFolderError(f"the run folder {str(self.root)!r} is a file, not a folder.")
        writable_target(self.root, f"{PARTS}/{self.part_path.name}", what="the part file")  # no link on the way
        self.part_path.parent.mkdir(parents=True, exist_ok=True)
        self._append({"run": asdict(run), "spec": self.spec})
        contents = read_run_folder(self.root, allow_empty=True)
        return {seed for (run_key, seed) in contents.images if run_key == run.run_key}

    def add_images(self, images: Sequence[ImageRecord], files: Mapping[str, bytes] | None = None) -> None:
        """Write ``files`` (path under the folder → bytes; none when already there), then append the
        rows: a row always has its whole file. A file whose row never lands is not in the folder's
        manifest: ``ingest`` ignores it and a resume writes it again."""
        for relpath, data in (files or {}).items():
            write_new(writable_target(self.root, relpath, what="image"), data)
        for image in images:
            self._append({"image": asdict(image)})

    def _append(self, entry: dict) -> None:
        line = (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8")
        append_regular(self.root, f"{PARTS}/{self.part_path.name}", line, what="the part file")

    # -- merging ----------------------------------------------------------------------------

    def finalize(self) -> RunFolderContents:
        """Merge every process's parts into ``manifest.json`` (call from one process only)."""
        contents = read_run_folder(self.root, allow_empty=True)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "written_by": f"sdaudit {sdaudit.__version__}",
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "specs": contents.specs,
            "runs": [asdict(run) for run in contents.runs.values()],
            "images": [asdict(image) for _, image in sorted(contents.images.items())],
        }
        self.root.mkdir(parents=True, exist_ok=True)
        write_new(self.manifest_path, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
        parts = self.root / PARTS
        if parts.is_dir():
            for part in parts.glob("rank-*.jsonl"):
                part.unlink()
            parts.rmdir()
        return contents


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _parse_json(data: bytes, where: str) -> object:
    """``data`` parsed as JSON; ``RunFolderError`` for anything else, NaN and Infinity included,
    and for nesting too deep to parse (a RecursionError, caught here before it reaches a face)."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise RunFolderError(TOO_BIG.format(where=where, size=len(data), max=MAX_MANIFEST_BYTES))
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except RecursionError:
        raise RunFolderError(NESTED.format(where=where)) from None
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise RunFolderError(f"{where} is not valid JSON ({error}).") from None


def read_run_folder(folder: str | os.PathLike, *, allow_empty: bool = False) -> RunFolderContents:
    """Read a run folder's manifest and unmerged parts; raise ``RunFolderError`` if malformed."""
    root = Path(folder)
    if not root.is_dir():
        if allow_empty and not root.exists():
            return RunFolderContents({}, {}, [])
        raise RunFolderError(f"there is no run folder at {str(root)!r}.")
    runs: dict[str, RunRecord] = {}
    images: dict[tuple[str, int], ImageRecord] = {}
    specs: list[dict] = []

    def add_spec(spec: dict | None) -> None:
        if spec is not None and spec not in specs:
            specs.append(spec)

    manifest = root / MANIFEST
    if os.path.lexists(manifest):  # a link or special file here is refused, not followed
        where = str(manifest)
        data = _parse_json(read_regular(root, MANIFEST, what="the manifest"), where)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise RunFolderError(f"{where} is not an sdaudit run folder manifest (no format {FORMAT!r}).")
        if data.get("format_version") != FORMAT_VERSION:
            raise RunFolderError(
                f"{where} has format version {shown(data.get('format_version'))}; this sdaudit reads {FORMAT_VERSION}."
            )
        check_manifest(data, where)
        for spec in data.get("specs", []):
            add_spec(spec)
        for row in data.get("runs", []):
            run = _run_from(row, where)
            runs[run.run_key] = run
        for row in data.get("images", []):
            image = _image_from(row, where)
            images[(image.run_key, image.seed)] = image
    parts = sorted((root / PARTS).glob("rank-*.jsonl")) if (root / PARTS).is_dir() else []
    for part in parts:
        lines = read_regular(root, f"{PARTS}/{part.name}", what="the part file").decode("utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            where = f"{part}:{number}"
            if not line.strip():
                continue
            try:
                entry = _parse_json(line.encode(), where)
            except RunFolderError:
                # A process killed mid-line leaves at most its last line torn; the image is
                # regenerated on resume because its row never landed.
                if number == len(lines):
                    continue
                raise
            check_part_line(entry, where)
            if "run" in entry:
                run = _run_from(entry["run"], where)
                runs.setdefault(run.run_key, run)
                add_spec(entry.get("spec"))
            elif "image" in entry:
                image = _image_from(entry["image"], where)
                images.setdefault((image.run_key, image.seed), image)
    if not os.path.lexists(manifest) and not parts and not allow_empty:
        raise RunFolderError(f"{str(root)!r} holds no {MANIFEST}: it is not a run folder.")
    orphans = {run_key for run_key, _ in images} - set(runs)
    if orphans:
        raise RunFolderError(f"{str(root)!r} has images of runs it does not describe: {sorted(orphans)}.")
    return RunFolderContents(runs, images, specs)


@dataclass(frozen=True)
class IngestResult:
    runs_added: int
    images_added: int
    already_present: int
    conflicts: tuple[str, ...]  # "run_key/seed" present in the store with other pixels


def ingest(folder: str | os.PathLike, store: Store, home: str | os.PathLike) -> IngestResult:
    """Copy a run folder's images into ``home`` and add its runs and rows to ``store``.

    Every file is checked against its recorded sha256 before anything is written, so a
    damaged folder changes nothing. Only regular files inside the folder are read: an image that
    is a symbolic link (or lies behind one) or a special file refuses the whole folder, and so does
    a link in the data home where an image would be written. Images already in the store are left
    as they are.
    """
    root = Path(folder)
    contents = read_run_folder(root)
    home = Path(home)

    def source_bytes(image: ImageRecord) -> bytes:
        if not os.path.lexists(root / image.path):
            raise RunFolderError(f"{str(root)!r}: image {image.path} is listed but missing.")
        data = read_regular(root, image.path, what="image")
        if _sha256(data) != image.sha256:
            raise RunFolderError(f"{str(root)!r}: image {image.path} does not match its recorded sha256.")
        return data

    # 1. Check the whole folder first: a study name a new study may have, and every image a
    # regular file inside the folder, present and intact
    known = set(store.study_names())
    for run in contents.runs.values():
        require_new_study(run.study, known)
    for run in contents.runs.values():
        _require_same_run(run, store.run(run.run_key), root)
    for image in contents.images.values():
        source_bytes(image)

    # 2. Sort incoming images into new, already present, and conflicting
    stored: dict[tuple[str, int], str] = {}
    for run_key in contents.runs:
        frame = store.images(run_key=run_key)
        stored.update({(run_key, int(seed)): sha for seed, sha in zip(frame["seed"], frame["sha256"])})
    new = [image for key, image in sorted(contents.images.items()) if key not in stored]
    conflicts = tuple(
        f"{run_key}/{seed}"
        for (run_key, seed), image in sorted(contents.images.items())
        if (run_key, seed) in stored and stored[(run_key, seed)] != image.sha256
    )
    targets = {}
    for image in new:
        target = targets[image.path] = writable_target(home, image.path, what="image")
        if target.exists() and _sha256(read_regular(home, image.path, what="image")) != image.sha256:
            raise RunFolderError(
                f"{target} already exists with other content and is not in the store; move it away first."
            )

    # 3. Copy files (read again, and checked again, as they are copied), then record runs and rows in
    # one transaction (rows last: a row always has its file; files whose rows never commit are removed)
    copies = [image for image in new if not targets[image.path].exists()]
    with PendingFiles(home, [image.path for image in copies]) as pending:
        for image in copies:
            pending.write(image.path, source_bytes(image))
        runs_added, images_added = store.add_runs_and_images(contents.runs.values(), new)
    return IngestResult(runs_added, images_added, len(contents.images) - len(new), conflicts)


def _require_same_run(run: RunRecord, stored: dict | None, root: Path) -> None:
    """A ``RunFolderError`` naming the first setting in which ``run`` differs from the stored run
    of its key (none stored: nothing to compare): its images must not join a run made otherwise."""
    if stored is None:
        return
    for field in SETTINGS:
        given, kept = getattr(run, field), stored.get(field, "generated" if field == "kind" else None)
        if _missing(given) and _missing(kept):
            continue
        if _missing(given) or _missing(kept) or given != kept:
            raise RunFolderError(RUN_DIFFERS.format(folder=str(root), run_key=run.run_key, field=field,
                                                    stored=_plain(kept), given=_plain(given)))


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)  # a NULL read back as NaN


def _plain(value: object) -> object:
    """A stored value as the Python value it stands for (numpy scalars print their type otherwise)."""
    return value.item() if hasattr(value, "item") else value
