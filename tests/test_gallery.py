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


def test_a_runs_newest_images_read_seed_for_generated_and_position_for_a_reference_set(tmp_path):
    """"seed" means an image's random seed only: a real image of a reference set has a position."""
    from helpers import make_images, make_run

    from sdaudit.files.gallery import newest_images
    from sdaudit.files.reference import ingest_uploaded_images
    from sdaudit.store import Store

    with Store() as store:
        store.add_run(make_run("run-a"))
        store.add_images(make_images("run-a", seeds=[7, 8]))
        for seed in (7, 8):
            (tmp_path / "images" / "run-a").mkdir(parents=True, exist_ok=True)
            (tmp_path / "images" / "run-a" / f"{seed}.png").write_bytes(png(seed))
        photos = ingest_uploaded_images([("a.png", png(1)), ("b.png", png(2))], store, tmp_path, name="photos",
                                        study="default")
        assert newest_images(store, tmp_path, "run-a").captions == ("seed 7", "seed 8")
        assert newest_images(store, tmp_path, photos.run_key).captions == ("position 0", "position 1")
