"""Images to show for stored image rows: only decodable images that are regular files inside the
data home, read without following links, in order, with a count of the rows not shown (imported
sheets, moved files, or files that are not images)."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from sdaudit.files.reference import MAX_IMAGE_PIXELS
from sdaudit.files.safe import UnsafeFileError, is_regular, read_regular
from sdaudit.records import image_number
from sdaudit.store import Store

NEWEST_SHOWN = 12
CANNOT_SHOW = "this image cannot be shown: {reason}"
NO_FILE = "its file is not in the data home"
NOT_AN_IMAGE = "{path} is not an image file ({reason})"
TOO_MANY_PIXELS = "{path} has over {max:,} pixels"
TOO_LARGE = "{path} is {size:,} bytes, over {max:,}"
# A generated 4096×4096 PNG of noise is about 50 MB; ingest-images' 20 MB cap is for photographs.
MAX_SHOWN_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class LoadedImage:
    """One stored image's bytes to show, or why it cannot be shown (``problem``)."""

    data: bytes | None
    problem: str | None


def load_image(home: str | os.PathLike, path: str | None) -> LoadedImage:
    """The bytes of a stored image path under ``home`` once they decode as an image; otherwise
    ``CANNOT_SHOW`` with the reason (no file, a link or special file, outside the home, not an image,
    over ``MAX_SHOWN_BYTES`` or over ``ingest-images``' ``MAX_IMAGE_PIXELS``)."""
    from PIL import Image, UnidentifiedImageError

    if not path:
        return LoadedImage(None, CANNOT_SHOW.format(reason=NO_FILE))
    if is_regular(home, path) and (size := os.stat(os.path.join(home, path)).st_size) > MAX_SHOWN_BYTES:
        return LoadedImage(None, CANNOT_SHOW.format(reason=TOO_LARGE.format(path=path, size=size, max=MAX_SHOWN_BYTES)))
    try:
        data = read_regular(home, path, what="the image")
    except UnsafeFileError as error:
        reason = NO_FILE if not os.path.lexists(os.path.join(home, path)) else str(error).rstrip(".")
        return LoadedImage(None, CANNOT_SHOW.format(reason=reason))
    try:
        # The caps of `ingest-images`: a 900-megapixel PNG of a few KB must not reach the decoder
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise Image.DecompressionBombError(f"{image.width}×{image.height} pixels")
                image.verify()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        return LoadedImage(None, CANNOT_SHOW.format(reason=TOO_MANY_PIXELS.format(path=path, max=MAX_IMAGE_PIXELS)))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:  # PIL's ways of saying "not an image"
        reason = NOT_AN_IMAGE.format(path=path, reason=str(error).rstrip(".") or type(error).__name__)
        return LoadedImage(None, CANNOT_SHOW.format(reason=reason))
    return LoadedImage(data, None)


@dataclass(frozen=True)
class Gallery:
    """Images to show (their bytes), a caption for each, and how many rows were not shown."""

    files: tuple[bytes, ...]
    captions: tuple[str, ...]
    missing: int


def gallery(home: str | os.PathLike, paths: Sequence[str], captions: Sequence[str], *,
            limit: int | None = None) -> Gallery:
    """The images of stored ``paths`` under ``home``, each with its caption: the first ``limit``
    that can be shown. Rows past the limit are only checked for a regular file, not decoded."""
    shown: list[tuple[bytes, str]] = []
    missing = 0
    for path, caption in zip(paths, captions, strict=True):
        if limit is None or len(shown) < limit:
            loaded = load_image(home, path)
            if loaded.data is None:
                missing += 1
            else:
                shown.append((loaded.data, caption))
        elif not path or not is_regular(home, path):
            missing += 1
    return Gallery(files=tuple(data for data, _ in shown), captions=tuple(caption for _, caption in shown),
                   missing=missing)


def newest_images(store: Store, home: str | os.PathLike, run_key: str, *, count: int = NEWEST_SHOWN) -> Gallery:
    """The last ``count`` images of a run (by seed or position), captioned with their seeds (a
    reference set's images with their positions)."""
    images = store.images(run_key=run_key).tail(count)
    return gallery(home, list(images["path"]), [image_number(kind, number) for kind, number
                                                in zip(images["kind"], images["seed"])])
