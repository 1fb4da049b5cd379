"""sdaudit.gallery: which stored image rows have a file to show, and in what order."""

from __future__ import annotations

from sdaudit.gallery import gallery


def test_only_files_inside_the_home_are_shown_in_order_with_their_captions(tmp_path):
    (tmp_path / "images").mkdir()
    for name in ("a.png", "c.png"):
        (tmp_path / "images" / name).write_bytes(b"png")
    (tmp_path.parent / "outside.png").write_bytes(b"png")
    shown = gallery(tmp_path, ["images/a.png", "images/b.png", "../outside.png", "images/c.png"],
                    ["seed 0", "seed 1", "seed 2", "seed 3"])
    assert [name.rsplit("/", 1)[-1] for name in shown.files] == ["a.png", "c.png"]
    assert (shown.captions, shown.missing) == (("seed 0", "seed 3"), 2)
