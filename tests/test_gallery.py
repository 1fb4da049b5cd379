"""sdaudit.files.gallery: which stored image rows have an image to show, and in what order."""

from __future__ import annotations

from helpers import png

from sdaudit.files.gallery import gallery


def test_only_images_inside_the_home_are_shown_in_order_with_their_captions(tmp_path):
    (tmp_path / "images").mkdir()
    for name, colour in (("a.png", 1), ("c.png", 3)):
        (tmp_path / "images" / name).write_bytes(png(colour))
    (tmp_path.parent / "outside.png").write_bytes(png(9))
    shown = gallery(tmp_path, ["images/a.png", "images/b.png", "../outside.png", "images/c.png"],
                    ["seed 0", "seed 1", "seed 2", "seed 3"])
    assert shown.files == (png(1), png(3))
    assert (shown.captions, shown.missing) == (("seed 0", "seed 3"), 2)


def test_a_limit_decodes_only_the_first_images_and_still_counts_the_missing(tmp_path):
    (tmp_path / "images").mkdir()
    for seed in range(3):
        (tmp_path / "images" / f"{seed}.png").write_bytes(png(seed))
    shown = gallery(tmp_path, [f"images/{seed}.png" for seed in range(5)], [""] * 5, limit=2)
    assert (shown.files, shown.missing) == ((png(0), png(1)), 2)
