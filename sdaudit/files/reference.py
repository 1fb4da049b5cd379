"""Reference sets: a folder of real images (JPEG, PNG, WebP) becomes a reference run of a study.

A reference run is annotated like any other, so a model's shares can be compared with real
photographs rated by the same people. ``ingest_images`` reads top to bottom: check the folder and
every file in it (only regular files directly in the folder, never through a link; capped in bytes
and pixels; decoded in full), then copy the good files under the data home, then write the run and
its rows in one transaction (the copies are removed when it does not commit: ``safe.PendingFiles``).
Unreadable, duplicate, oversized and other files are reported by name and skipped; a problem with
the folder or the set itself refuses everything and writes nothing.
Each image keeps its sha256, original file name and size; its bytes are copied unchanged.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

from sdaudit.errors import SdauditError
from sdaudit.files.safe import PendingFiles, UnsafeFileError, read_regular, writable_target
from sdaudit.records import RunRecord, require_new_study
from sdaudit.store import Store

FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}  # PIL's format name -> the stored suffix
SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000  # 40 megapixels: more than any camera photo an audit needs
MAX_FILES = 10_000
MAX_NOTE = 500  # characters of --source and --license

NAME = ("a reference set's name must be 1 to 64 letters, digits, spaces, '-', '_' or '.', starting with a letter, "
        "digit or '_', but is {value!r}.")
NO_FOLDER = "there is no folder at {path!r} to ingest images from."
FOLDER_IS_LINK = "{path!r} is a symbolic link; give the folder itself."
TOO_MANY_FILES = "the folder {path!r} holds {count} files; at most {max} are read at once."
NOTE = "`{name}` must be a text of at most {max} characters on one line but is {value!r}."
NOTHING_GOOD = "no image in {path} could be ingested ({skipped}); nothing was written."
NOT_AN_IMAGE_NAME = "not a .jpg, .jpeg, .png or .webp file"
TOO_LARGE = "{size:,} bytes, over {max:,}"
NAME_TAKEN = "the run {run_key} of study {study!r} is not a reference set; choose another name."

_NAME = re.compile(r"\w[\w .-]{0,63}")


@dataclass(frozen=True)
class Skipped:
    """A file that was not ingested, and why, in a few words."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name!r} ({' '.join(self.reason.split())})"  # quoted, on one line whatever the name


@dataclass(frozen=True)
class _GoodImage:
    name: str
    data: bytes
    sha256: str
    suffix: str


@dataclass(frozen=True)
class ReferenceResult:
    run_key: str
    study: str
    name: str
    added: int
    already_present: int
    skipped: tuple[Skipped, ...]
    run_added: bool

    @property
    def summary(self) -> str:
        """One line: what was added, and each skipped file with why."""
        skipped = f"; skipped {len(self.skipped)}: {', '.join(map(str, self.skipped))}" if self.skipped else ""
        added = f"{self.added} image" if self.added == 1 else f"{self.added} images"
        return (f"ingested reference set {self.name!r} into study {self.study}: {added} added, "
                f"{self.already_present} already present{skipped}")


def reference_key(study: str, name: str) -> str:
    """A reference run's key: the same study and name always name the same run."""
    # "reference" is part of every stored reference set's key: changing it would orphan them
    return hashlib.sha256(f"reference\0{study}\0{name}".encode()).hexdigest()[:16]


def _check_note(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_NOTE or "\n" in value or "\r" in value:
        raise SdauditError(NOTE.format(name=name, max=MAX_NOTE, value=value))
    return value.strip() or None


def _decode(data: bytes) -> str:
    """The stored suffix of an image's bytes; ``ValueError`` with a short reason otherwise."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in FORMATS:
                    raise ValueError(f"a {image.format} image, not JPEG, PNG or WebP")
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise ValueError(f"{image.width}×{image.height} pixels, over {MAX_IMAGE_PIXELS:,}")
                image.load()  # the whole image, so a truncated file is found now
                return FORMATS[image.format]
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ValueError(f"over {MAX_IMAGE_PIXELS:,} pixels") from None
    except UnidentifiedImageError:  # PIL names its in-memory file here (an object's address): not for users
        raise ValueError("unreadable: not an image file" + (" (empty)" if not data else "")) from None
    except (OSError, SyntaxError) as error:  # PIL's other ways of saying "cannot decode"
        raise ValueError(f"unreadable: {str(error).rstrip('.') or type(error).__name__}") from None


def _scan(folder: Path) -> tuple[list[tuple[str, bytes]], list[Skipped]]:
    """Every file directly in ``folder``, in name order: (name, bytes) of the files that may be
    images, and the rest with why."""
    files: list[tuple[str, bytes]] = []
    skipped: list[Skipped] = []
    entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    if len(entries) > MAX_FILES:
        raise SdauditError(TOO_MANY_FILES.format(path=str(folder), count=len(entries), max=MAX_FILES))
    for entry in entries:
        if entry.name.startswith("."):
            continue  # hidden files (.DS_Store, editors' backups) are not part of a set
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode):
            skipped.append(Skipped(entry.name, "a symbolic link"))
            continue
        if not stat.S_ISREG(mode):
            skipped.append(Skipped(entry.name, "a folder" if stat.S_ISDIR(mode) else "not a regular file"))
            continue
        if not entry.name.lower().endswith(SUFFIXES):
            skipped.append(Skipped(entry.name, NOT_AN_IMAGE_NAME))
            continue
        size = entry.stat(follow_symlinks=False).st_size
        if size > MAX_IMAGE_BYTES:
            skipped.append(Skipped(entry.name, TOO_LARGE.format(size=size, max=MAX_IMAGE_BYTES)))
            continue
        try:
            files.append((entry.name, read_regular(folder, entry.name, what="image")))
        except UnsafeFileError as error:
            skipped.append(Skipped(entry.name, str(error)))
    return files, skipped


def _check_images(files: list[tuple[str, bytes]]) -> tuple[list[_GoodImage], list[Skipped]]:
    """The files that decode in full as JPEG, PNG or WebP within the caps, each once; the rest with why."""
    good: list[_GoodImage] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    for name, data in files:
        if not name.lower().endswith(SUFFIXES):
            skipped.append(Skipped(name, NOT_AN_IMAGE_NAME))
            continue
        if len(data) > MAX_IMAGE_BYTES:
            skipped.append(Skipped(name, TOO_LARGE.format(size=len(data), max=MAX_IMAGE_BYTES)))
            continue
        try:
            suffix = _decode(data)
        except ValueError as error:
            skipped.append(Skipped(name, str(error)))
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            skipped.append(Skipped(name, f"a duplicate of {seen[digest]}"))
            continue
        seen[digest] = name
        good.append(_GoodImage(name, data, digest, suffix))
    return good, skipped


def ingest_images(folder: str | os.PathLike, store: Store, home: str | os.PathLike, *, name: str,
                  study: str, source: str | None = None, license: str | None = None) -> ReferenceResult:
    """Add the real images directly in ``folder`` to ``study`` as the reference run ``name``.

    Ingesting the same folder again adds nothing; new files in it are added to the same run.
    """
    _check_set(store, name, study, source, license)
    root = Path(folder)
    if root.is_symlink():
        raise SdauditError(FOLDER_IS_LINK.format(path=str(root)))
    if not root.is_dir():
        raise SdauditError(NO_FOLDER.format(path=str(root)))
    files, skipped = _scan(root)
    return _add_reference_set(store, home, files, skipped, name=name, study=study, source=source,
                              license=license, where=repr(str(root)))


def ingest_uploaded_images(files: list[tuple[str, bytes]], store: Store, home: str | os.PathLike, *, name: str,
                           study: str, source: str | None = None, license: str | None = None) -> ReferenceResult:
    """As ``ingest_images``, for files already in memory (the app's upload): ``(file name, bytes)``."""
    _check_set(store, name, study, source, license)
    if len(files) > MAX_FILES:
        raise SdauditError(TOO_MANY_FILES.format(path="the upload", count=len(files), max=MAX_FILES))
    return _add_reference_set(store, home, files, [], name=name, study=study, source=source, license=license,
                              where="the upload")


def _check_set(store: Store, name: str, study: str, source: str | None, license: str | None) -> None:
    if not (isinstance(name, str) and _NAME.fullmatch(name)):
        raise SdauditError(NAME.format(value=name))
    _check_note("source", source)
    _check_note("license", license)
    require_new_study(study, store.study_names())
    run_key = reference_key(study, name)
    stored = store.run(run_key)
    if stored is not None and stored["kind"] != "reference":
        raise SdauditError(NAME_TAKEN.format(run_key=run_key, study=study))


def _add_reference_set(store: Store, home: str | os.PathLike, files: list[tuple[str, bytes]], skipped: list[Skipped],
                       *, name: str, study: str, source: str | None, license: str | None,
                       where: str) -> ReferenceResult:
    # 1. Decode every file; keep the good ones that the run does not hold yet
    source, license = _check_note("source", source), _check_note("license", license)
    run_key = reference_key(study, name)
    good, bad = _check_images(files)
    skipped = sorted([*skipped, *bad], key=lambda item: item.name)
    present = store.images(run_key=run_key)
    known = set(present["sha256"])
    new = [image for image in good if image.sha256 not in known]
    if not good:
        raise SdauditError(NOTHING_GOOD.format(path=where, skipped=", ".join(map(str, skipped)) or "it is empty"))
    # a real image has no seed: it is numbered by its position in the set (the store's ``seed`` column)
    first_position = int(present["seed"].max()) + 1 if len(present) else 0
    home = Path(home)
    rows = []
    for position, image in enumerate(new, start=first_position):
        relpath = f"images/{run_key}/{position}{image.suffix}"
        target = writable_target(home, relpath, what="image")
        if target.exists() and hashlib.sha256(read_regular(home, relpath, what="image")).hexdigest() != image.sha256:
            raise SdauditError(f"{target} already exists with other content and is not in the store; move it away first.")
        rows.append((image, position, relpath, target))

    # 2. Copy the files, then write the run and its rows in one transaction (a row always has its file;
    # files whose rows never commit are removed)
    copies = [(image, relpath) for image, _, relpath, target in rows if not target.exists()]
    run = RunRecord.reference(run_key=run_key, study=study, name=name, source=source, license=license)
    with PendingFiles(home, [relpath for _, relpath in copies]) as pending:
        for image, relpath in copies:
            pending.write(relpath, image.data)
        run_added = store.add_reference_images(run, [
            (position, relpath, image.sha256, image.name, len(image.data)) for image, position, relpath, _ in rows])
    return ReferenceResult(run_key, study, name, len(rows), len(good) - len(new), tuple(skipped), run_added)
