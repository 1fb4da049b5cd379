"""The ``skin-pixels`` labeller: its colour formulas against published values, its skin rule against the
Monk swatches, and the whole labeller on faces the bundled Haar cascade truly detects.

No face photograph ships in an installed package (no scikit-image; scipy's face downloads), so the
faces are drawn: a face-shaped ellipse of one skin colour, hair, eyes and brows, a nose and a mouth in
darker shades of it, blurred. ``test_the_cascade_finds_every_drawn_face`` checks that the real cascade
finds each one, so the labeller's tests go through detection, not around it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from helpers import ROOT, make_images, make_run
from PIL import Image

from sdaudit.machine.labellers import LABELLERS
from sdaudit.machine.skin_pixels import (
    CASCADE_FILE,
    EQUALIZE_TEXT,
    LENGTHS_TEXT,
    MIN_NEIGHBORS_TEXT,
    MIN_SIZE_TEXT,
    MIN_SKIN_SHARE_TEXT,
    SCALE_FACTOR_TEXT,
    SWATCH_LAB,
    SkinPixelsLabeller,
    ciede2000,
    face_ellipse,
    measure_face,
    nearest_swatch,
    skin_mask,
    srgb_to_lab,
)
from sdaudit.scheme import DEFAULT_SKIN_CUT, MST_LEVELS, MST_SWATCHES, is_darker
from sdaudit.store import Store
from sdaudit.store.machine import MachineTables

SWATCH_RGB = [tuple(int(code[i:i + 2], 16) for i in (1, 3, 5)) for code in MST_SWATCHES]
BACKGROUND = (60, 120, 90)  # a green backdrop: not skin by the rule


def drawn_face(size: int, skin, *, background=BACKGROUND) -> np.ndarray:
    """A frontal face ``size`` pixels square (sRGB), its skin one colour and its features darker shades."""
    image = np.full((size, size, 3), background, np.uint8)
    skin = np.asarray(skin, dtype=float)

    def shade(factor: float) -> tuple[int, ...]:
        return tuple(int(v) for v in skin * factor)

    c, s = size // 2, size / 100
    cv2.ellipse(image, (c, c), (int(28 * s), int(38 * s)), 0, 0, 360, shade(1.0), -1)
    cv2.ellipse(image, (c, int(c - 25 * s)), (int(30 * s), int(16 * s)), 0, 180, 360, shade(0.2), -1)
    eye_x, eye_y = int(11 * s), int(c - 6 * s)
    for side in (-1, 1):
        x = c + side * eye_x
        cv2.ellipse(image, (x, eye_y), (int(5.5 * s), int(2.5 * s)), 0, 0, 360, shade(0.3), -1)
        cv2.line(image, (x - int(6 * s), eye_y - int(6 * s)), (x + int(6 * s), eye_y - int(6 * s)), shade(0.3),
                 max(2, size // 60))
    cv2.line(image, (c, eye_y + 5), (c, int(c + 8 * s)), shade(0.7), max(2, size // 80))
    cv2.ellipse(image, (c, int(c + 8 * s)), (int(4 * s), int(1.5 * s)), 0, 0, 360, shade(0.7), -1)
    cv2.ellipse(image, (c, int(c + 18 * s)), (int(8 * s), int(2.5 * s)), 0, 0, 360, shade(0.3), -1)
    return cv2.GaussianBlur(image, (0, 0), s)


@pytest.fixture(scope="module")
def labeller():
    return SkinPixelsLabeller()


# --- the colour formulas -------------------------------------------------------------------------

# sRGB (D65) to CIELAB (D65, 2°): Bruce Lindbloom's calculator (brucelindbloom.com), sRGB companding,
# reference white D65; the same figures other colour libraries test against.
PUBLISHED_LAB = [
    ((255, 0, 0), (53.2408, 80.0925, 67.2032)),
    ((0, 255, 0), (87.7347, -86.1827, 83.1793)),
    ((0, 0, 255), (32.2970, 79.1875, -107.8602)),
    ((255, 255, 255), (100.0, 0.0, 0.0)),
]


@pytest.mark.parametrize(("rgb", "lab"), PUBLISHED_LAB)
def test_srgb_to_lab_gives_the_published_values(rgb, lab):
    assert srgb_to_lab(rgb) == pytest.approx(lab, abs=2e-4)


@pytest.mark.parametrize("level", [0, 3, 10, 40, 128, 200])
def test_a_grey_has_no_hue_and_the_cie_lightness_of_its_luminance(level):
    """Greys cover both pieces of the sRGB curve (linear below 0.04045 · 255 ≈ 10.3) and of CIE 1976's
    L* (its linear part, L* = 903.3 · Y, below Y = 0.008856): computed here from the standards' formulas."""
    c = level / 255
    y = c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4  # IEC 61966-2-1
    lightness = 116 * y ** (1 / 3) - 16 if y > 216 / 24389 else 24389 / 27 * y  # CIE 15:2004
    assert srgb_to_lab((level, level, level)) == pytest.approx((lightness, 0, 0), abs=1e-4)


def test_srgb_to_lab_agrees_with_opencvs_conversion():
    """An independent implementation: OpenCV's float RGB→Lab (its own D65 white, tabulated gamma and cube
    root, hence agreement to a few tenths, not to the fourth decimal)."""
    colours = np.random.default_rng(0).integers(0, 256, (2000, 3)).astype(np.uint8)
    theirs = cv2.cvtColor(colours[None].astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[0]
    assert np.abs(srgb_to_lab(colours) - theirs).max() < 0.4


# Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula: implementation notes,
# supplementary test data, and mathematical observations", Color Res. Appl. 30(1), Table 1: all 34
# pairs, L1 a1 b1 L2 a2 b2 ΔE00 (chosen to exercise the hue-angle and mean-hue edge cases).
SHARMA_2005 = """
50.0000 2.6772 -79.7751 50.0000 0.0000 -82.7485 2.0425
50.0000 3.1571 -77.2803 50.0000 0.0000 -82.7485 2.8615
50.0000 2.8361 -74.0200 50.0000 0.0000 -82.7485 3.4412
50.0000 -1.3802 -84.2814 50.0000 0.0000 -82.7485 1.0000
50.0000 -1.1848 -84.8006 50.0000 0.0000 -82.7485 1.0000
50.0000 -0.9009 -85.5211 50.0000 0.0000 -82.7485 1.0000
50.0000 0.0000 0.0000 50.0000 -1.0000 2.0000 2.3669
50.0000 -1.0000 2.0000 50.0000 0.0000 0.0000 2.3669
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0009 7.1792
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0010 7.1792
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0011 7.2195
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0012 7.2195
50.0000 -0.0010 2.4900 50.0000 0.0009 -2.4900 4.8045
50.0000 -0.0010 2.4900 50.0000 0.0010 -2.4900 4.8045
50.0000 -0.0010 2.4900 50.0000 0.0011 -2.4900 4.7461
50.0000 2.5000 0.0000 50.0000 0.0000 -2.5000 4.3065
50.0000 2.5000 0.0000 73.0000 25.0000 -18.0000 27.1492
50.0000 2.5000 0.0000 61.0000 -5.0000 29.0000 22.8977
50.0000 2.5000 0.0000 56.0000 -27.0000 -3.0000 31.9030
50.0000 2.5000 0.0000 58.0000 24.0000 15.0000 19.4535
50.0000 2.5000 0.0000 50.0000 3.1736 0.5854 1.0000
50.0000 2.5000 0.0000 50.0000 3.2972 0.0000 1.0000
50.0000 2.5000 0.0000 50.0000 1.8634 0.5757 1.0000
50.0000 2.5000 0.0000 50.0000 3.2592 0.3350 1.0000
60.2574 -34.0099 36.2677 60.4626 -34.1751 39.4387 1.2644
63.0109 -31.0961 -5.8663 62.8187 -29.7946 -4.0864 1.2630
61.2901 3.7196 -5.3901 61.4292 2.2480 -4.9620 1.8731
35.0831 -44.1164 3.7933 35.0232 -40.0716 1.5901 1.8645
22.7233 20.0904 -46.6940 23.0331 14.9730 -42.5619 2.0373
36.4612 47.8580 18.3852 36.2715 50.5065 21.2231 1.4146
90.8027 -2.0831 1.4410 91.1528 -1.6435 0.0447 1.4441
90.9257 -0.5406 -0.9208 88.6381 -0.8985 -0.7239 1.5381
6.7747 -0.2908 -2.4247 5.8714 -0.0985 -2.2286 0.6377
2.0776 0.0795 -1.1350 0.9033 -0.0636 -0.5514 0.9082
"""


def test_ciede2000_gives_sharmas_34_published_differences_both_ways():
    pairs = np.array([line.split() for line in SHARMA_2005.split("\n") if line], dtype=float)
    assert len(pairs) == 34
    first, second, published = pairs[:, 0:3], pairs[:, 3:6], pairs[:, 6]
    assert ciede2000(first, second) == pytest.approx(published, abs=1e-4)  # the table rounds to 4 places
    assert ciede2000(second, first) == pytest.approx(published, abs=1e-4)


# --- the skin rule and the nearest swatch ----------------------------------------------------------


def test_the_skin_rule_keeps_every_monk_swatch_and_rejects_grey_and_non_warm_colours():
    assert skin_mask(SWATCH_LAB).all()
    not_skin = {"white": (255, 255, 255), "grey": (128, 128, 128), "black": (0, 0, 0), "grass": (60, 120, 90),
                "sky": (110, 160, 230), "purple": (120, 60, 160), "pure red": (255, 0, 0)}
    assert skin_mask(srgb_to_lab(list(not_skin.values()))).tolist() == [False] * len(not_skin)


def heim_rule(rgb) -> bool:
    """The RGB + YCrCb skin rule of Kolkur et al. (2017) as HEIM and DALL-Eval apply it
    (helm/benchmark/metrics/image_generation/skin_tone_metrics.py), for one opaque sRGB colour."""
    r, g, b = rgb
    y, cr, cb = (int(v) for v in cv2.cvtColor(np.array([[rgb]], np.uint8), cv2.COLOR_RGB2YCrCb)[0, 0])
    return (r > 95 and g > 40 and b > 20 and r > g and r > b and abs(r - g) > 15 and cr > 135 and cb > 85
            and y > 80 and cr <= 1.5862 * cb + 20 and cr >= 0.3448 * cb + 76.2069
            and cr >= -4.5652 * cb + 234.5652 and cr <= -1.15 * cb + 301.75 and cr <= -2.2857 * cb + 432.85)


def test_the_fields_skin_rules_reject_parts_of_the_monk_scale_itself():
    """Why the labeller does not use them (docs/machine-labels-skin.md): HEIM's rule finds no skin in MST
    1–3 or 8–10, and Chai & Ngan's YCrCb box (Cr 133–173, Cb 77–127) none in MST 10."""
    rejected_by_heim = [level for level, rgb in zip(MST_LEVELS, SWATCH_RGB, strict=True) if not heim_rule(rgb)]
    ycrcb = cv2.cvtColor(np.array([SWATCH_RGB], np.uint8), cv2.COLOR_RGB2YCrCb)[0]
    rejected_by_box = [level for level, (_, cr, cb) in zip(MST_LEVELS, ycrcb.tolist(), strict=True)
                       if not (133 <= cr <= 173 and 77 <= cb <= 127)]
    assert rejected_by_heim == [1, 2, 3, 8, 9, 10]
    assert rejected_by_box == [10]


@pytest.mark.parametrize("level", MST_LEVELS)
def test_a_swatchs_own_colour_is_nearest_itself_with_all_the_closeness(level):
    mst, closeness = nearest_swatch(SWATCH_LAB[level - 1])
    assert mst == level
    assert closeness == {str(k): (1.0 if k == level else 0.0) for k in MST_LEVELS}


@pytest.mark.parametrize("rgb", [(200, 160, 120), (120, 80, 60), (230, 200, 170), (70, 50, 40), (160, 110, 90)])
def test_the_nearest_swatch_is_the_one_brute_force_finds_and_closeness_is_inverse_distance(rgb):
    lab = srgb_to_lab(rgb)
    distances = [float(ciede2000(lab, swatch)) for swatch in SWATCH_LAB]  # one pair at a time
    mst, closeness = nearest_swatch(lab)
    assert mst == MST_LEVELS[int(np.argmin(distances))]
    inverse = [1 / d for d in distances]
    assert [closeness[str(k)] for k in MST_LEVELS] == pytest.approx([v / sum(inverse) for v in inverse])
    assert max(closeness, key=closeness.get) == str(mst)


# --- a face crop's colour (the step after detection) ------------------------------------------------


def test_a_face_crop_gives_the_median_of_its_skin_pixels():
    """Skin in swatch 7, its left third grass (not skin): the median is swatch 7's colour."""
    crop = np.zeros((90, 90, 3), np.uint8)
    crop[:] = SWATCH_RGB[6]
    crop[:, :30] = BACKGROUND
    colour = measure_face(crop)
    assert colour.lab == pytest.approx(tuple(SWATCH_LAB[6]), abs=1e-9)
    assert 0.5 < colour.skin_share < 0.9


def test_a_face_crop_with_too_little_skin_has_no_colour():
    crop = np.zeros((90, 90, 3), np.uint8)
    crop[:] = BACKGROUND
    crop[40:50, 40:50] = SWATCH_RGB[3]  # 100 skin pixels, all inside the central ellipse
    colour = measure_face(crop)
    assert colour.lab is None
    assert (colour.skin_pixels, colour.skin_share) == (100, 100 / face_ellipse(90, 90).sum())
    assert 3000 < face_ellipse(90, 90).sum() < 3500  # π · (0.32 · 90) · (0.40 · 90) ≈ 3,257
    assert measure_face(crop, min_skin_share=0.01).lab == pytest.approx(tuple(SWATCH_LAB[3]), abs=1e-9)


# --- the labeller, through the real cascade ---------------------------------------------------------


@pytest.mark.parametrize("size", [96, 256])
def test_the_cascade_finds_every_drawn_face(labeller, size):
    for skin in SWATCH_RGB:
        box = labeller.find_face(drawn_face(size, skin))
        assert box is not None, skin
        x, y, w, h = box
        assert abs(x + w / 2 - size / 2) < size * 0.1 and 0.5 * size < w < 0.9 * size


@pytest.mark.parametrize("level", MST_LEVELS)
def test_a_face_drawn_in_a_swatch_is_labelled_that_tone(labeller, level):
    labels, scores = labeller.answer(Image.fromarray(drawn_face(192, SWATCH_RGB[level - 1])))
    assert (labels.person_present, labels.mst, labels.gender) == (True, level, None)
    assert labels.skin_binary == ("darker" if is_darker(level, DEFAULT_SKIN_CUT) else "lighter")
    assert scores["mst"][str(level)] == max(scores["mst"].values())
    assert scores["face"]["found"] == 1.0 and scores["face"]["skin_share"] > 0.8


def test_a_face_between_swatches_gets_the_nearest_and_lighting_moves_the_answer(labeller):
    """The measure reads rendered colour: the same face lit at 60 % reads darker (a limit the docs state)."""
    between = tuple((np.array(SWATCH_RGB[4]) * 0.5 + np.array(SWATCH_RGB[5]) * 0.5).astype(int))
    labels, _ = labeller.answer(Image.fromarray(drawn_face(192, between)))
    assert labels.mst == nearest_swatch(srgb_to_lab(between))[0]
    lit, _ = labeller.answer(Image.fromarray(drawn_face(192, SWATCH_RGB[4])))
    dim, _ = labeller.answer(Image.fromarray((drawn_face(192, SWATCH_RGB[4]) * 0.6).astype(np.uint8)))
    assert lit.mst == 5 and dim.mst > 5


def test_the_largest_face_is_the_one_measured(labeller):
    canvas = np.full((300, 420, 3), BACKGROUND, np.uint8)
    canvas[20:140, 10:130] = drawn_face(120, SWATCH_RGB[3])
    canvas[20:280, 150:410] = drawn_face(260, SWATCH_RGB[8])
    assert [x > 150 for x, _, _, _ in labeller.find_faces(canvas)] == [True, False]  # both found, largest first
    labels, _ = labeller.answer(Image.fromarray(canvas))
    assert labels.mst == 9
    canvas[20:280, 150:410] = BACKGROUND
    assert labeller.answer(Image.fromarray(canvas))[0].mst == 4  # and the small face alone is found too


def test_equalising_the_grey_image_finds_a_dark_face_on_a_light_ground_that_the_plain_image_loses(labeller):
    """Why ``equalize`` is on by default: the cascade misses the darkest drawn face on light grey without it."""
    face = drawn_face(192, SWATCH_RGB[9], background=(200, 200, 200))
    assert labeller.find_face(face) is not None
    assert SkinPixelsLabeller(equalize=False).find_face(face) is None


NO_FACE = {
    "noise": np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8),
    "gradient": np.stack([*np.meshgrid(np.linspace(0, 255, 256), np.linspace(255, 0, 256)), np.full((256, 256), 90.0)],
                         axis=-1).astype(np.uint8),
    "plain skin colour": np.full((256, 256, 3), SWATCH_RGB[4], np.uint8),
    "too small a face": drawn_face(24, SWATCH_RGB[4]),
}


@pytest.mark.parametrize("name", NO_FACE)
def test_no_face_is_unclear_and_does_not_say_whether_a_person_is_there(labeller, name):
    labels, scores = labeller.answer(Image.fromarray(NO_FACE[name]))
    assert (labels.person_present, labels.mst, labels.skin_binary, labels.gender) == (None, None, "unclear", None)
    assert scores == {"face": {"found": 0.0}}


def test_a_face_without_skin_coloured_pixels_is_a_person_of_unclear_tone(labeller):
    labels, scores = labeller.answer(Image.fromarray(drawn_face(192, (110, 160, 230))))  # a sky-blue face
    assert (labels.person_present, labels.mst, labels.skin_binary) == (True, None, "unclear")
    assert scores["face"]["found"] == 1.0 and scores["face"]["skin_share"] < 0.3 and "mst" not in scores


def test_label_answers_each_image_in_order_and_the_store_keeps_the_answers(labeller):
    images = [Image.fromarray(drawn_face(128, SWATCH_RGB[8])), Image.fromarray(NO_FACE["noise"]),
              Image.fromarray(drawn_face(128, SWATCH_RGB[2]))]
    with Store(":memory:") as store:
        store.add_run(make_run("run-a"))
        store.add_images(make_images("run-a", range(3)))
        tables = MachineTables(store)
        labelling = tables.start_labelling("default", labeller.name, labeller.model,
                                           model_revision=labeller.model_revision, method=labeller.method,
                                           versions=labeller.versions)
        ids = [image_id for image_id, _ in tables.images_to_label(labelling)]
        tables.save_machine_labels(labelling, labeller.label(images, ids))
        stored = tables.machine_labels("default").set_index("image_id").loc[ids]
        again = tables.start_labelling("default", labeller.name, labeller.model, model_revision=labeller.model_revision,
                                       method=SkinPixelsLabeller().method, versions=labeller.versions)
    assert stored["mst"].tolist()[0::2] == [9, 3] and stored["skin_binary"].tolist() == ["darker", "unclear", "lighter"]
    assert stored["scores"].tolist()[1] == {"face": {"found": 0.0}}
    assert again == labelling  # the same settings resume the labelling


def test_label_refuses_images_and_ids_of_different_lengths(labeller):
    with pytest.raises(ValueError) as error:
        labeller.label([Image.fromarray(NO_FACE["noise"])], [1, 2])
    assert str(error.value) == LENGTHS_TEXT.format(images=1, image_ids=2)


def test_the_labellers_identity_names_the_detector_and_every_setting_that_changes_an_answer(labeller):
    assert labeller.name in LABELLERS
    assert CASCADE_FILE in labeller.model and cv2.__version__ in labeller.model
    assert len(labeller.model_revision) == 64
    assert labeller.versions == {"opencv": cv2.__version__, "numpy": np.__version__}
    assert json.loads(json.dumps(labeller.method)) == labeller.method
    assert labeller.method["detector"]["scale_factor"] == 1.1 and labeller.method["distance"].startswith("CIEDE2000")
    other = SkinPixelsLabeller(scale_factor=1.2, min_neighbors=3, min_size=40, min_skin_share=0.5, equalize=False)
    changed = {(key, name) for key in ("detector", "skin_rule") for name in labeller.method[key]
               if labeller.method[key][name] != other.method[key][name]}
    assert changed == {("detector", "scale_factor"), ("detector", "min_neighbors"), ("detector", "min_size"),
                       ("detector", "input"), ("skin_rule", "min_skin_share")}
    assert {key for key in labeller.method if labeller.method[key] != other.method[key]} == {"detector", "skin_rule"}


@pytest.mark.parametrize(("options", "text"), [
    ({"scale_factor": 1.0}, SCALE_FACTOR_TEXT.format(value=1.0)),
    ({"scale_factor": "1.1"}, SCALE_FACTOR_TEXT.format(value="1.1")),
    ({"min_neighbors": -1}, MIN_NEIGHBORS_TEXT.format(value=-1)),
    ({"min_neighbors": 2.5}, MIN_NEIGHBORS_TEXT.format(value=2.5)),
    ({"min_size": True}, MIN_SIZE_TEXT.format(value=True)),
    ({"min_size": 4}, MIN_SIZE_TEXT.format(value=4)),
    ({"min_skin_share": 0}, MIN_SKIN_SHARE_TEXT.format(value=0)),
    ({"min_skin_share": 1.5}, MIN_SKIN_SHARE_TEXT.format(value=1.5)),
    ({"equalize": 1}, EQUALIZE_TEXT.format(value=1)),
])
def test_bad_options_are_refused_naming_the_value(options, text):
    with pytest.raises(ValueError) as error:
        SkinPixelsLabeller(**options)
    assert str(error.value) == text


def test_importing_the_labeller_does_not_import_opencv():
    code = "import sys, sdaudit.machine.skin_pixels; print('cv2' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
