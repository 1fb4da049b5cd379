"""Hosting for a team: the Space files, admin and rater roles, hosted limits, uploads, snapshots."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import (
    APP,
    ORIGIN_SHEET,
    WAIT_LIMIT_S,
    Deadline,
    add_study_as_an_older_store_did,
    app_command,
    dockerfile_command,
    free_port,
    make_images,
    make_run,
    open_page,
)
from oidc_sign_in import ACCOUNTS
from streamlit.testing.v1 import AppTest

from sdaudit.files.sheets import SheetError, import_uploaded_sheet
from sdaudit.files.snapshot import AutoSnapshot, snapshot
from sdaudit.generation.jobs import QUEUE_FULL, TOO_MANY_IMAGES, JobQueue, JobRunner
from sdaudit.generation.spec import GenerationSpec
from sdaudit.roles import WRONG_PASSWORD
from sdaudit.store import Store

ROOT = Path(__file__).resolve().parents[1]


def dockerfile_instructions() -> dict[str, list[str]]:
    instructions: dict[str, list[str]] = {}
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.setdefault(keyword.upper(), []).append(rest.strip())
    return instructions


def front_matter() -> dict:
    import yaml

    text = (ROOT / "space" / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_the_dockerfile_serves_the_app_as_uid_1000_on_the_space_port():
    instructions = dockerfile_instructions()
    assert any("-u 1000" in run for run in instructions["RUN"]), "Spaces run containers as uid 1000"
    assert instructions["USER"] == ["user"]
    assert instructions["EXPOSE"] == ["8501"]
    assert "/_stcore/health" in instructions["HEALTHCHECK"][0]
    assert any("pip install -r requirements.txt" in run for run in instructions["RUN"])
    command = dockerfile_command()
    assert command[:3] == ["streamlit", "run", "streamlit_app.py"]
    assert command[command.index("--server.port") + 1] == "8501"
    assert command[command.index("--server.address") + 1] == "0.0.0.0"
    env = " ".join(instructions["ENV"])
    assert "SDAUDIT_HOME=/home/user/" in env and "HF_HOME=/home/user/" in env, "writable paths for uid 1000"


def test_one_dockerfile_builds_on_the_cuda_image_and_on_a_local_debian_base():
    """The Space builds the CUDA image (the default); scripts/test-image.sh passes BASE_IMAGE, a local
    Debian base. Ubuntu 24.04 images already have `ubuntu` with uid 1000, so useradd alone fails there."""
    instructions = dockerfile_instructions()
    args = dict(arg.partition("=")[::2] for arg in instructions["ARG"])
    assert args["BASE_IMAGE"].startswith("nvidia/cuda:") and "ubuntu" in args["BASE_IMAGE"]
    assert instructions["FROM"] == ["${BASE_IMAGE}"]
    assert "python3.12" not in (ROOT / "Dockerfile").read_text(), "the base's own python3, whichever it is"
    assert any("python3 python3-venv" in run for run in instructions["RUN"])
    runs = " ".join(instructions["RUN"])
    before_useradd = runs[:runs.index("useradd -m -u 1000 user")]
    assert "id -nu 1000" in before_useradd and "userdel -r" in before_useradd, "free uid 1000 first"
    assert "/_stcore/health" in instructions["HEALTHCHECK"][0]
    script = (ROOT / "scripts" / "test-image.sh").read_text()
    assert "--build-arg BASE_IMAGE=" in script and "--format docker" in script, "docker format keeps HEALTHCHECK"


def test_the_image_tests_provider_offers_the_browser_tests_accounts(tmp_path):
    """scripts/test-image.sh signs in through ``image_label.py provider PORT``: a real OpenID Connect
    provider on loopback whose authorize page offers a button for each account the browser tests
    sign in as (tests/oidc_sign_in.py), and whose metadata names it by the address the app is given."""
    port, deadline = free_port(), Deadline()
    log = (tmp_path / "provider.log").open("w")
    provider = subprocess.Popen([sys.executable, "scripts/image_label.py", "provider", str(port)], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{base}/.well-known/openid-configuration", timeout=5) as answer:
                    metadata = json.load(answer)
                break
            except urllib.error.URLError:
                assert provider.poll() is None, (tmp_path / "provider.log").read_text()
                assert not deadline.expired(), "the provider did not answer"
                time.sleep(0.2)
        assert metadata["issuer"] == base and metadata["authorization_endpoint"].startswith(base + "/")
        query = "client_id=sdaudit&redirect_uri=http://127.0.0.1:1/oauth2callback&response_type=code&scope=openid"
        with urllib.request.urlopen(f"{metadata['authorization_endpoint']}?{query}", timeout=5) as answer:
            page = answer.read().decode()
        assert ACCOUNTS and all(f'name="sub" value="{account}"' in page for account in ACCOUNTS)
    finally:
        provider.terminate()
        provider.wait(timeout=10)
        log.close()


def test_the_image_tests_browser_half_refuses_a_port_that_is_no_number():
    done = subprocess.run([sys.executable, "scripts/image_label.py", "provider", "80x"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and done.stderr.strip() == "error: the provider's port must be a number, not '80x'"


def test_the_space_front_matter_matches_the_dockerfile():
    meta = front_matter()
    assert meta["sdk"] == "docker"
    assert str(meta["app_port"]) == dockerfile_instructions()["EXPOSE"][0]
    assert meta["suggested_hardware"].startswith(("a10g", "t4", "l4", "a100", "l40s", "h100"))
    assert [item.split()[0] for item in meta["preload_from_hub"]] == ["CompVis/stable-diffusion-v1-4"]
    assert meta["title"] and meta["short_description"]


# -- roles ------------------------------------------------------------------------------------


def test_with_a_password_generate_asks_for_it_and_refuses_a_wrong_one(locked):
    at = open_page("generate")
    assert not [b for b in at.button if b.label == "Generate"], "raters cannot generate"
    password = next(box for box in at.text_input if box.label == "Admin password")
    password.input("guess")
    next(b for b in at.button if b.label == "Unlock").click().run()
    assert WRONG_PASSWORD in [error.value for error in at.error]
    assert not [b for b in at.button if b.label == "Generate"]
    next(box for box in at.text_input if box.label == "Admin password").input("s3cret")
    next(b for b in at.button if b.label == "Unlock").click().run()
    assert [b for b in at.button if b.label == "Generate"], "the admin sees the form"


def test_with_a_password_raters_cannot_import_but_can_annotate(locked):
    runs = open_page("runs")
    assert not runs.get("file_uploader") and any(box.label == "Admin password" for box in runs.text_input)
    annotate = open_page("annotate")
    assert not any(box.label == "Admin password" for box in annotate.text_input)


def test_without_a_password_everything_is_open(app_home, monkeypatch):
    monkeypatch.delenv("SDAUDIT_ADMIN_PASSWORD", raising=False)
    at = open_page("generate")
    assert [b for b in at.button if b.label == "Generate"]
    assert open_page("runs").get("file_uploader")


def test_names_from_users_are_shown_as_text(app_home):
    """A study (or rater) name is user text: Markdown in it must not render as a link or image."""
    with Store.open(app_home) as store:
        add_study_as_an_older_store_did(store, "![x](http://evil.example/p.png)")  # new ones are refused
    at = AppTest.from_file(APP, default_timeout=WAIT_LIMIT_S).run()
    next(box for box in at.selectbox if box.label == "Study").set_value("![x](http://evil.example/p.png)")
    next(box for box in at.text_input if box.label == "Rater").input("ana").run()
    at.switch_page(str(ROOT / "pages" / "annotate.py")).run()
    assert not at.exception
    shown = at.info[0].value
    assert "has no images yet" in shown and "![x](http" not in shown and "\\!\\[x\\]" in shown


# -- hosted limits ----------------------------------------------------------------------------


def test_hosted_limits_are_said_in_words(tmp_path, monkeypatch):
    monkeypatch.setenv("SDAUDIT_MAX_IMAGES_PER_JOB", "8")
    monkeypatch.setenv("SDAUDIT_MAX_QUEUED_JOBS", "1")
    with Store.open(tmp_path / "home") as store:
        runner = JobRunner(store, tmp_path / "home", start=False)
        with pytest.raises(ValueError) as caught:
            runner.submit(GenerationSpec(model="demo", first_seed=0, last_seed=9))
        assert str(caught.value) == TOO_MANY_IMAGES.format(count=10, limit=8)
        runner.submit(GenerationSpec(model="demo", first_seed=0, last_seed=3))
        with pytest.raises(ValueError) as caught:
            runner.submit(GenerationSpec(model="demo", first_seed=4, last_seed=7))
        assert str(caught.value) == QUEUE_FULL.format(count=1, limit=1)


def test_uploads_are_size_limited_and_never_used_as_paths(tmp_path, monkeypatch):
    content = ORIGIN_SHEET.read_bytes()
    # The upload is written inside a scratch folder under tmp_path/scratch; a browser's name used
    # as a path would land two levels up, in tmp_path/etc, which exists so the write would succeed.
    (tmp_path / "scratch").mkdir()
    (tmp_path / "etc").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    with Store() as store:
        with pytest.raises(SheetError, match="uploads over 100 bytes are refused"):
            import_uploaded_sheet(store, content, "sheet.csv", study="s", rater="r", sheet_format="origin",
                                  max_bytes=100)
        assert store.count("annotations") == 0
        result = import_uploaded_sheet(store, content, "../../etc/evil.csv", study="s", rater="r",
                                       sheet_format="origin", max_bytes=10**6)
        assert result.rows == 221
    assert list((tmp_path / "etc").iterdir()) == [], "the browser's file name was used as a path"
    assert list((tmp_path / "scratch").iterdir()) == [], "the upload's scratch copy was left behind"


# -- automatic snapshots ----------------------------------------------------------------------


def test_an_empty_store_is_restored_on_start_and_jobs_trigger_snapshots(tmp_path):
    home, target = tmp_path / "home", tmp_path / "snap"
    with Store.open(tmp_path / "before") as store:
        import_uploaded_sheet(store, ORIGIN_SHEET.read_bytes(), "s.csv", study="origin", rater="r",
                              sheet_format="origin", max_bytes=10**6)
        snapshot(store, tmp_path / "before", str(target))
    with Store.open(home) as store:  # a Space restarts with an empty disk
        keeper = AutoSnapshot(store, home, str(target), minutes=60, start=False)
        assert keeper.restored is not None and store.count("annotations") == 221
        JobQueue(store).add("generate", {"x": 1})
        keeper.after_job({"job_id": 1})
        assert keeper.last_error is None and keeper.last_success.rows["jobs"] == 1


def test_a_failed_snapshot_is_reported_not_swallowed(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with Store.open(tmp_path / "home") as store:
        store.ensure_study("s")
        keeper = AutoSnapshot(store, tmp_path / "home", str(tmp_path / "a-file"), minutes=60, start=False)
        assert keeper.snapshot_now() is None
        assert keeper.last_error.startswith(f"snapshot to {tmp_path / 'a-file'} failed")


def test_the_browser_test_runs_the_dockerfiles_command():
    command = app_command(port=1234)
    expected = dockerfile_command()
    expected[expected.index("--server.port") + 1] = "1234"
    assert command[-len(expected):] == expected and shlex.join(command).count("streamlit run") == 1


def test_the_streamlit_config_is_explained_and_keeps_xsrf_on():
    import tomllib

    path = ROOT / ".streamlit" / "config.toml"
    config = tomllib.loads(path.read_text())
    assert config["server"]["enableXsrfProtection"] is True
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines):
        if "=" in line and not line.lstrip().startswith("#"):
            assert lines[number - 1].lstrip().startswith("#"), f"config line {number + 1} has no comment: {line}"


def test_user_text_cannot_become_markdown():
    from app.widgets import plain

    joiner = "\u2060"
    assert plain("![x](http://evil/p.png) <b>hi</b> **a**") == (
        f"\\!\\[x\\]\\(http{joiner}://evil/p{joiner}\\.png\\) \\<b\\>hi\\</b\\> \\*\\*a\\*\\*")


@pytest.mark.parametrize("unlock", [False, True])
def test_the_runs_page_works_locked_and_unlocked_with_a_snapshot_target(locked, monkeypatch, tmp_path, unlock):
    """The README's Space setup (a password and a snapshot target): the admin form is drawn once."""
    monkeypatch.setenv("SDAUDIT_SNAPSHOT_TARGET", str(tmp_path / "snapshots"))
    at = open_page("runs")
    assert [box.label for box in at.text_input].count("Admin password") == 1
    assert not [b for b in at.button if b.label == "Snapshot now"]
    if unlock:
        next(box for box in at.text_input if box.label == "Admin password").input("s3cret")
        next(b for b in at.button if b.label == "Unlock").click().run()
        assert not at.exception, at.exception
        assert [b for b in at.button if b.label == "Snapshot now"] and at.get("file_uploader")
        assert not [box for box in at.text_input if box.label == "Admin password"]


@pytest.mark.parametrize("golds", [1, 2])
def test_the_team_page_counts_gold_images_in_words(app_home, golds):
    """A newcomer's Team page said "1 gold images"."""
    from sdaudit.scheme import Annotation
    from sdaudit.store.team import Team

    with Store.open(app_home) as store:
        store.add_run(make_run())
        store.add_images(make_images(seeds=range(3)))
        for image_id in list(store.images()["image_id"])[:golds]:
            Team(store).set_gold("default", int(image_id), Annotation(person_present=True, mst=3))
    at = open_page("team")
    captions = [caption.value for caption in at.caption]
    expected = "1 gold image." if golds == 1 else f"{golds} gold images."
    assert any(caption.startswith(expected) for caption in captions), captions


def test_the_space_preloads_only_the_diffusers_files_sdaudit_loads(tiny_model):
    """``preload_from_hub`` with a repo alone fetches the whole repo, the SD v1-4 checkpoints (.ckpt,
    many GB) and every weight format included; the list names the float32 safetensors that
    ``DiffusionPipeline.download`` takes (no variant), under the names diffusers saves them with."""
    import yaml

    text = (ROOT / "space" / "README.md").read_text(encoding="utf-8")
    (item,) = yaml.safe_load(text.split("---")[1])["preload_from_hub"]
    repo, files = item.split()
    files = files.split(",")
    assert repo == "CompVis/stable-diffusion-v1-4" and "model_index.json" in files
    weights = [name for name in files if not name.endswith((".json", ".txt"))]
    assert weights and all(name.endswith(".safetensors") and ".fp16." not in name for name in weights)
    for component in ("unet", "vae", "text_encoder"):  # the same pipeline class, saved by diffusers itself
        saved = {path.relative_to(tiny_model).as_posix() for path in (tiny_model / component).iterdir()}
        assert saved <= set(files), f"{component}: {saved - set(files)} not preloaded"
    assert {"scheduler/scheduler_config.json", "tokenizer/tokenizer_config.json"} <= set(files)
