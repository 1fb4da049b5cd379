"""The app's snapshot keeper as a hosted team meets it: a restart on an empty disk shows the
restored study on its first page, and a stop (SIGTERM, what a container stop or a Space restart
sends) writes the labels made since the last snapshot."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from helpers import PAGES, App, Deadline, open_page

from sdaudit.files.snapshot import snapshot
from sdaudit.generation.generate import StoreSink, generate
from sdaudit.generation.spec import GenerationSpec
from sdaudit.store import Store


def snapshot_of_a_study(home, target, tiny_model, images: int) -> None:
    """A store of ``images`` demo images at ``home``, snapshotted to ``target``."""
    shutil.copytree(tiny_model, home / "models" / "demo")
    spec = GenerationSpec(model="demo", first_seed=0, last_seed=images - 1, steps=2, height=64, width=64)
    with Store.open(home) as store:
        generate(spec, StoreSink(store, home), home=home)
        snapshot(store, home, str(target))


def test_the_first_page_after_a_restore_on_start_shows_the_restored_study(app_home, tmp_path, tiny_model,
                                                                           monkeypatch):
    """The restore used to wait for the first page that asked for the keeper (Runs, Generate): Home
    read the empty store first and said the study had no images until a reload."""
    snapshot_of_a_study(tmp_path / "before", tmp_path / "snap", tiny_model, images=3)
    monkeypatch.setenv("SDAUDIT_SNAPSHOT_TARGET", str(tmp_path / "snap"))
    at = open_page("home")
    shown = " ".join(str(element.value) for element in [*at.markdown, *at.caption, *at.info, *at.warning])
    assert "has no images yet" not in shown
    assert {metric.label: metric.value for metric in at.metric}["Images"] == "3"
    at.switch_page(str(PAGES / "runs.py")).run()
    assert not at.exception, at.exception
    assert "No images yet" not in " ".join(str(element.value) for element in [*at.markdown, *at.info, *at.caption])


@pytest.mark.slow  # a real server, stopped as a container is, and a real browser to label with
def test_a_stopped_app_snapshots_the_labels_made_since_the_last_snapshot(tmp_path, tiny_model, browser):
    """SIGTERM with an hour to go to the next periodic snapshot: the label made a moment ago is in
    the snapshot once the app has exited, and the snapshot restores."""
    deadline = Deadline()
    app = App(tmp_path / "home", deadline)
    snapshot_of_a_study(app.home, tmp_path / "snap", tiny_model, images=2)
    app.env.update({"SDAUDIT_SNAPSHOT_TARGET": str(tmp_path / "snap"), "SDAUDIT_SNAPSHOT_MINUTES": "60"})
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    try:
        page = context.new_page()
        page.set_default_timeout(deadline.left_ms())
        page.goto(f"{app.start()}/annotate?rater=ana")
        card = page.locator('[class*="st-key-person-"]').first
        card.wait_for()
        image_id = card.get_attribute("class").split("st-key-person-")[1].split()[0]
        card.get_by_role("radiogroup").get_by_text("Person", exact=True).click()
        page.wait_for_function("(selector) => document.querySelector(selector)?.innerText.includes('Saved: ')",
                               arg=f".st-key-saved-{image_id}")
        page.goto("about:blank")
    finally:
        context.close()
    app.stop()  # SIGTERM, as `docker stop` and a Space restart send it
    assert app.server.returncode is not None
    labels = pd.read_parquet(tmp_path / "snap" / "annotations.parquet")
    assert list(labels["rater"]) == ["ana"] and list(labels["image_id"]) == [int(image_id)]
    assert "snapshot on exit" in app.log.read_text(errors="replace")
    restored = tmp_path / "restored"
    from sdaudit.files.snapshot import restore_home

    restore_home(restored, str(tmp_path / "snap"))
    with Store.open(restored) as store:
        assert store.count("annotations") == 1
