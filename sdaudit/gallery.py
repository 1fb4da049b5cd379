"""Image files to show for stored image rows: only files inside the data home, in order, with
a count of the rows whose file is not there (imported sheets, or moved files)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from sdaudit.store import Store, image_file

NEWEST_SHOWN = 12


@dataclass(frozen=True)
class Gallery:
    """Files to show, a caption for each, and how many rows had no file here."""

    files: tuple[str, ...]
    captions: tuple[str, ...]
    missing: int


def gallery(home: str | os.PathLike, paths: Sequence[str], captions: Sequence[str]) -> Gallery:
    """The files of stored image ``paths`` under ``home``, each with its caption."""
    files = [image_file(home, path) for path in paths]
    shown = [(str(file), caption) for file, caption in zip(files, captions, strict=True) if file is not None]
    return Gallery(files=tuple(file for file, _ in shown), captions=tuple(caption for _, caption in shown),
                   missing=len(paths) - len(shown))


def newest_images(store: Store, home: str | os.PathLike, run_key: str, *, count: int = NEWEST_SHOWN) -> Gallery:
    """The last ``count`` images of a run (by seed), captioned with their seeds."""
    images = store.images(run_key=run_key).tail(count)
    return gallery(home, list(images["path"]), [f"seed {seed}" for seed in images["seed"]])
