"""The ``skin-pixels`` labeller: the HEIM / DALL-Eval style skin-tone measure, with its rules stated.

For each image, in order:

1. **A face.** OpenCV's bundled Haar cascade (``haarcascade_frontalface_default.xml``, shipped inside
   ``opencv-python-headless`` with its weights: no download) on the grey image, histogram-equalised
   (``equalize``: on drawn test faces it finds the darkest faces that the plain grey image loses);
   the largest face it finds. No face: the answer is ``unclear`` and ``person_present`` is left
   empty — a detector that finds nothing does not know whether a person is there.
2. **Its skin pixels.** Inside a central ellipse of the face box (cheeks, nose, forehead; the box's
   corners are hair and background), the pixels whose CIELAB colour is skin-like: chroma C*ab from 2
   to 45 and hue angle h_ab from 30° to 100° (warm, neither grey nor saturated). The rule is wide
   around all ten Monk swatches (C* 3.8–28, h 49°–89°) because the rules the field uses reject parts
   of the scale itself: Chai & Ngan's YCrCb box rejects MST 10, and the RGB + YCrCb rule HEIM and
   DALL-Eval use rejects MST 1–3 and 8–10 (``docs/machine-labels-skin.md``). Eyes, brows and lips
   that pass are outvoted by the median. Under ``min_skin_share`` of the ellipse: ``unclear``.
3. **Their colour**: the per-channel median of the skin pixels in CIELAB (D65, 2° observer),
   converted from sRGB by IEC 61966-2-1 (``srgb_to_lab``).
4. **The nearest Monk swatch** (``scheme.MST_SWATCHES``) by CIEDE2000 (``ciede2000``; k_L = k_C = k_H
   = 1), and lighter/darker from it by the scheme's one cut (``is_darker``, ``DEFAULT_SKIN_CUT``).

Scores: ``mst`` holds each swatch's inverse-CIEDE2000 closeness, normalised to sum to 1 (the nearest
swatch has the largest; a swatch matched exactly has 1). It is a relative closeness, not a
probability. ``face`` holds ``found`` (1 or 0) and, with a face, ``skin_share``. No gender answer.

``cv2`` is imported only when a labeller is made, so the CLI parses without OpenCV.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sdaudit.scheme import DEFAULT_SKIN_CUT, MST_LEVELS, MST_SWATCHES, UNCLEAR, Annotation, is_darker
from sdaudit.store.machine import MachineAnswer

if TYPE_CHECKING:
    from PIL.Image import Image

CASCADE_FILE = "haarcascade_frontalface_default.xml"
SCALE_FACTOR_TEXT = "`scale_factor` must be a number above 1 and at most 2 but is {value!r}."
MIN_NEIGHBORS_TEXT = "`min_neighbors` must be a whole number from 0 to 50 but is {value!r}."
MIN_SIZE_TEXT = "`min_size` must be a whole number of pixels from 8 to 4096 but is {value!r}."
MIN_SKIN_SHARE_TEXT = "`min_skin_share` must be a number above 0 and at most 1 but is {value!r}."
EQUALIZE_TEXT = "`equalize` must be true or false but is {value!r}."
LENGTHS_TEXT = "`images` and `image_ids` must be as long as each other but are {images} and {image_ids} long."
NO_CASCADE = "OpenCV {version} could not load its bundled face detector {path!r}."

# sRGB (IEC 61966-2-1) linear RGB to XYZ, and the D65 white, as Bruce Lindbloom tabulates them.
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
D65_WHITE = np.array([0.95047, 1.0, 1.08883])
# The skin rule in CIELAB and the face box's central ellipse (fractions of the box).
SKIN_CHROMA = (2.0, 45.0)
SKIN_HUE_DEGREES = (30.0, 100.0)
ELLIPSE_CENTRE = (0.5, 0.55)
ELLIPSE_SEMI_AXES = (0.32, 0.40)


def srgb_to_lab(rgb) -> np.ndarray:
    """CIELAB (D65, 2°) of sRGB colours given as 0–255 values, shape ``(..., 3)``."""
    c = np.asarray(rgb, dtype=float) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    t = (linear @ SRGB_TO_XYZ.T) / D65_WHITE
    delta = 6.0 / 29.0
    f = np.where(t > delta**3, np.cbrt(t), t / (3 * delta**2) + 4.0 / 29.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]),
                     200.0 * (f[..., 1] - f[..., 2])], axis=-1)


def ciede2000(lab1, lab2) -> np.ndarray:
    """The CIEDE2000 colour difference (k_L = k_C = k_H = 1) between CIELAB colours, broadcast over
    ``(..., 3)``; the formula as Sharma, Wu & Dalal (2005) write it, equations (1)–(22)."""
    L1, a1, b1 = np.moveaxis(np.asarray(lab1, dtype=float), -1, 0)
    L2, a2, b2 = np.moveaxis(np.asarray(lab2, dtype=float), -1, 0)
    # 1. a' with the G correction, C' and h' (degrees, 0 for a neutral colour)
    c_mean7 = ((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2) ** 7
    g = 0.5 * (1 - np.sqrt(c_mean7 / (c_mean7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.where(c1p == 0, 0.0, np.degrees(np.arctan2(b1, a1p)) % 360)
    h2p = np.where(c2p == 0, 0.0, np.degrees(np.arctan2(b2, a2p)) % 360)
    # 2. the differences ΔL', ΔC', ΔH'
    neutral = c1p * c2p == 0
    dh = h2p - h1p
    dh = np.where(neutral, 0.0, np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh)))
    dL, dC = L2 - L1, c2p - c1p
    dH = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh) / 2)
    # 3. the weights, at the pair's mean lightness, chroma and hue
    L_mean, c_mean = (L1 + L2) / 2, (c1p + c2p) / 2
    h_sum, far = h1p + h2p, np.abs(h1p - h2p) > 180
    h_mean = np.where(neutral, h_sum, np.where(~far, h_sum / 2,
                                               np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2)))
    t = (1 - 0.17 * np.cos(np.radians(h_mean - 30)) + 0.24 * np.cos(np.radians(2 * h_mean))
         + 0.32 * np.cos(np.radians(3 * h_mean + 6)) - 0.20 * np.cos(np.radians(4 * h_mean - 63)))
    s_l = 1 + 0.015 * (L_mean - 50) ** 2 / np.sqrt(20 + (L_mean - 50) ** 2)
    s_c = 1 + 0.045 * c_mean
    s_h = 1 + 0.015 * c_mean * t
    rotation = -np.sin(np.radians(60 * np.exp(-(((h_mean - 275) / 25) ** 2)))) * 2 * np.sqrt(
        c_mean**7 / (c_mean**7 + 25.0**7))
    return np.sqrt((dL / s_l) ** 2 + (dC / s_c) ** 2 + (dH / s_h) ** 2 + rotation * (dC / s_c) * (dH / s_h))


SWATCH_LAB = srgb_to_lab([[int(hex_code[i:i + 2], 16) for i in (1, 3, 5)] for hex_code in MST_SWATCHES])


def skin_mask(lab: np.ndarray) -> np.ndarray:
    """Which CIELAB pixels ``(..., 3)`` the skin rule keeps: chroma and hue angle in SKIN_CHROMA and
    SKIN_HUE_DEGREES."""
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1])) % 360
    return ((chroma >= SKIN_CHROMA[0]) & (chroma <= SKIN_CHROMA[1])
            & (hue >= SKIN_HUE_DEGREES[0]) & (hue <= SKIN_HUE_DEGREES[1]))


def face_ellipse(height: int, width: int) -> np.ndarray:
    """The central ellipse of a face box ``height`` × ``width``, as a boolean mask."""
    rows, cols = np.mgrid[0:height, 0:width]
    y = (rows + 0.5 - ELLIPSE_CENTRE[1] * height) / (ELLIPSE_SEMI_AXES[1] * height)
    x = (cols + 0.5 - ELLIPSE_CENTRE[0] * width) / (ELLIPSE_SEMI_AXES[0] * width)
    return x**2 + y**2 <= 1


@dataclass(frozen=True)
class FaceColour:
    """What the skin pixels of one face crop measure: their median CIELAB colour (``None`` when too
    few pixels are skin), how many there are and their share of the face's central ellipse."""

    lab: tuple[float, float, float] | None
    skin_pixels: int
    skin_share: float


def measure_face(face_rgb: np.ndarray, *, min_skin_share: float = 0.3) -> FaceColour:
    """The skin colour of a face crop (``H × W × 3`` sRGB, 0–255): the median CIELAB colour of its
    skin pixels inside the central ellipse, or no colour when under ``min_skin_share`` are skin."""
    region = face_ellipse(*face_rgb.shape[:2])
    lab = srgb_to_lab(face_rgb[region])
    skin = lab[skin_mask(lab)]
    share = len(skin) / max(int(region.sum()), 1)
    if len(skin) == 0 or share < min_skin_share:
        return FaceColour(None, len(skin), share)
    return FaceColour(tuple(float(v) for v in np.median(skin, axis=0)), len(skin), share)


def nearest_swatch(lab) -> tuple[int, dict[str, float]]:
    """The Monk Skin Tone whose swatch is nearest ``lab`` by CIEDE2000, and every swatch's closeness
    (inverse distance, normalised to sum to 1; an exact match gets 1)."""
    distances = ciede2000(np.asarray(lab, dtype=float)[None, :], SWATCH_LAB)
    nearest = int(np.argmin(distances))
    exact = distances == 0
    closeness = exact.astype(float) if exact.any() else (1 / distances) / (1 / distances).sum()
    return MST_LEVELS[nearest], {str(level): float(c) for level, c in zip(MST_LEVELS, closeness, strict=True)}


class SkinPixelsLabeller:
    """The ``skin-pixels`` labeller (see the module's text); every option changes its answers, so
    every option is in ``method``."""

    name = "skin-pixels"

    def __init__(self, *, scale_factor: float = 1.1, min_neighbors: int = 5, min_size: int = 30,
                 min_skin_share: float = 0.3, equalize: bool = True) -> None:
        self._options_iv(scale_factor, min_neighbors, min_size, min_skin_share, equalize)
        import cv2

        path = Path(cv2.data.haarcascades) / CASCADE_FILE
        self._cv2 = cv2
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise RuntimeError(NO_CASCADE.format(version=cv2.__version__, path=str(path)))
        self.scale_factor, self.min_neighbors = float(scale_factor), int(min_neighbors)
        self.min_size, self.min_skin_share, self.equalize = int(min_size), float(min_skin_share), equalize
        self.model = f"{CASCADE_FILE} (OpenCV {cv2.__version__})"
        self.model_revision = hashlib.sha256(path.read_bytes()).hexdigest()  # the cascade file itself
        self.versions = {"opencv": cv2.__version__, "numpy": np.__version__}
        self.method = {
            "detector": {"cascade": CASCADE_FILE, "input": "grey, histogram-equalised" if equalize else "grey",
                         "scale_factor": self.scale_factor, "min_neighbors": self.min_neighbors,
                         "min_size": [self.min_size, self.min_size], "face": "largest"},
            "face_region": {"shape": "ellipse", "centre": list(ELLIPSE_CENTRE), "semi_axes": list(ELLIPSE_SEMI_AXES),
                            "of": "the face box's width and height"},
            "skin_rule": {"space": "CIELAB", "chroma": list(SKIN_CHROMA), "hue_degrees": list(SKIN_HUE_DEGREES),
                          "min_skin_share": self.min_skin_share},
            "colour_space": "CIELAB, D65 2°, from sRGB (IEC 61966-2-1)",
            "summary": "per-channel median of the skin pixels",
            "distance": "CIEDE2000 (kL = kC = kH = 1)",
            "swatches": list(MST_SWATCHES),
            "skin_cut": DEFAULT_SKIN_CUT,
            "scores": "mst: inverse-CIEDE2000 closeness normalised to sum 1, not a probability",
        }

    @staticmethod
    def _options_iv(scale_factor, min_neighbors, min_size, min_skin_share, equalize) -> None:
        def number(value) -> bool:
            return isinstance(value, int | float) and not isinstance(value, bool)

        def whole(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        if not (number(scale_factor) and 1 < scale_factor <= 2):
            raise ValueError(SCALE_FACTOR_TEXT.format(value=scale_factor))
        if not (whole(min_neighbors) and 0 <= min_neighbors <= 50):
            raise ValueError(MIN_NEIGHBORS_TEXT.format(value=min_neighbors))
        if not (whole(min_size) and 8 <= min_size <= 4096):
            raise ValueError(MIN_SIZE_TEXT.format(value=min_size))
        if not (number(min_skin_share) and 0 < min_skin_share <= 1):
            raise ValueError(MIN_SKIN_SHARE_TEXT.format(value=min_skin_share))
        if not isinstance(equalize, bool):
            raise ValueError(EQUALIZE_TEXT.format(value=equalize))

    def find_faces(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Every face the cascade finds in an sRGB image (``H × W × 3``, 0–255), as ``(x, y, width,
        height)``, largest first."""
        cv2 = self._cv2
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if self.equalize:
            grey = cv2.equalizeHist(grey)
        faces = self._cascade.detectMultiScale(grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                                               minSize=(self.min_size, self.min_size))
        boxes = [(int(x), int(y), int(w), int(h)) for x, y, w, h in faces]
        return sorted(boxes, key=lambda box: (-box[2] * box[3], box))

    def find_face(self, rgb: np.ndarray) -> tuple[int, int, int, int] | None:
        """The largest face the cascade finds in an sRGB image, or None."""
        faces = self.find_faces(rgb)
        return faces[0] if faces else None

    def answer(self, image: Image) -> tuple[Annotation, dict[str, dict[str, float]]]:
        """One image's labels and scores."""
        rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
        face = self.find_face(rgb)
        if face is None:
            return Annotation(skin_binary=UNCLEAR), {"face": {"found": 0.0}}
        x, y, w, h = face
        colour = measure_face(rgb[y:y + h, x:x + w], min_skin_share=self.min_skin_share)
        found = {"found": 1.0, "skin_share": colour.skin_share}
        if colour.lab is None:
            return Annotation(person_present=True, skin_binary=UNCLEAR), {"face": found}
        mst, closeness = nearest_swatch(colour.lab)
        binary = "darker" if is_darker(mst, DEFAULT_SKIN_CUT) else "lighter"
        return Annotation(person_present=True, mst=mst, skin_binary=binary), {"mst": closeness, "face": found}

    def label(self, images: Sequence[Image], image_ids: Sequence[int]) -> list[MachineAnswer]:
        """One answer per image, in order."""
        if len(images) != len(image_ids):
            raise ValueError(LENGTHS_TEXT.format(images=len(images), image_ids=len(image_ids)))
        answers = []
        for image, image_id in zip(images, image_ids, strict=True):
            labels, scores = self.answer(image)
            answers.append(MachineAnswer(image_id=image_id, labels=labels, scores=scores))
        return answers
