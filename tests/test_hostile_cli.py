"""Hostile input through the real CLI: one exact `error:` line, exit 2, no traceback, and the store's
rows as they were. Each message is the module constant the code raises, formatted with what was given."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import ORIGIN_SHEET, add_study_as_an_older_store_did, run_cli

from sdaudit.cli.analysis import REPORT_IS_FOLDER
from sdaudit.cli.parser import BOOTSTRAP_SEED
from sdaudit.config import DEVICE_ABSENT, FOLDER_BLOCKED, HOME_NOT_FOLDER
from sdaudit.files.runfolder import RunFolder
from sdaudit.files.sheets import (
    DUPLICATE_ANNOTATION,
    DUPLICATE_IMAGE,
    ROW_WIDTH,
    SEED_VALUE,
    SHEET_PROBLEM,
    import_annotations,
)
from sdaudit.generation.generate import StoreSink, generate
from sdaudit.generation.jobs import JobQueue
from sdaudit.generation.pipelines import BAD_MODEL_INDEX, MISSING_COMPONENTS, MODEL_HINT, NOT_CACHED_OFFLINE
from sdaudit.generation.spec import MAX_SEED, SEED_BOUNDS, SEED_TEXT, GenerationSpec
from sdaudit.records import STUDY_NAME
from sdaudit.store import DAMAGED, NOT_DUCKDB, SCHEMA_VERSION, TABLES, TOO_NEW, Store

TINY = ["--steps", "2", "--height", "64", "--width", "64", "--batch-size", "2"]
ODD_STUDIES = ("a/b", "../../escaped")  # as a store written before study names were checked may hold


@pytest.fixture(scope="module")
def template(tmp_path_factory, tiny_model) -> Path:
    """A home with one generated run, annotations in three studies (two with names today's rule
    refuses), a job row, and a run folder beside it; copied afresh for every case."""
    root = tmp_path_factory.mktemp("hostile")
    home = root / "home"
    spec = GenerationSpec(model=str(tiny_model), first_seed=0, last_seed=1, batch_size=2, steps=2, height=64,
                          width=64, device="cpu")
    with Store.open(home) as store:
        generate(spec, StoreSink(store, home), home=home)
        import_annotations(ORIGIN_SHEET, store, study="origin", rater="ana")
        for name in ODD_STUDIES:
            add_study_as_an_older_store_did(store, name)
            import_annotations(ORIGIN_SHEET, store, study=name, rater="ben")
        JobQueue(store).add("generate", spec.to_dict())
    generate(spec, RunFolder(root / "runfolder", spec=spec.to_dict()), home=home)
    RunFolder(root / "runfolder").finalize()
    return root


@dataclass
class Place:
    """Where a case runs: a copy of the template, the tiny model, and a few hostile files."""

    root: Path
    model: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def store(self) -> Path:
        return self.home / "sdaudit.duckdb"

    @property
    def file(self) -> Path:
        return self.root / "a-file"

    def sheet(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        return path

    def model_folder(self, name: str, index_text: str) -> Path:
        folder = self.root / name
        folder.mkdir()
        (folder / "model_index.json").write_text(index_text, encoding="utf-8")
        return folder


@dataclass
class Case:
    id: str
    args: Callable[[Place], list[str]]
    message: Callable[[Place], str]


def _sdaudit_sheet(place: Place, rows: list[str]) -> Path:
    header = "run_key,seed,rater,person_present,gender,mst,skin_binary,confidence"
    return place.sheet("rows.csv", "\n".join([header, *rows]) + "\n")


CASES = [
    Case("device cuda absent",
         lambda p: ["generate", "--model", str(p.model), *TINY, "--seeds", "0-1", "--device", "cuda", "--home", str(p.home)],
         lambda p: DEVICE_ABSENT.format(device="cuda", what="CUDA GPU")),
    Case("device mps absent",
         lambda p: ["generate", "--model", str(p.model), *TINY, "--seeds", "0-1", "--device", "mps", "--home", str(p.home)],
         lambda p: DEVICE_ABSENT.format(device="mps", what="Apple (mps) GPU")),
    Case("generate --home is a file",
         lambda p: ["generate", "--model", str(p.model), *TINY, "--seeds", "0-1", "--home", str(p.file)],
         lambda p: HOME_NOT_FOLDER.format(path=p.file)),
    Case("runs --home is a file", lambda p: ["runs", "--home", str(p.file)],
         lambda p: HOME_NOT_FOLDER.format(path=p.file)),
    Case("import --home under a file",
         lambda p: ["import-annotations", str(ORIGIN_SHEET), "--study", "s", "--rater", "r", "--home", str(p.file / "h")],
         lambda p: FOLDER_BLOCKED.format(what="the data home", path=p.file / "h", blocker=p.file)),
    Case("snapshot --to a file", lambda p: ["snapshot", "--to", str(p.file), "--home", str(p.home)],
         lambda p: FOLDER_BLOCKED.format(what="the snapshot target", path=p.file, blocker=p.file)),
    Case("report --out under a file",
         lambda p: ["report", "--study", "origin", "--out", str(p.file / "x.html"), "--home", str(p.home)],
         lambda p: FOLDER_BLOCKED.format(what="the folder of --out", path=p.file, blocker=p.file)),
    Case("report --out a folder", lambda p: ["report", "--study", "origin", "--out", str(p.home), "--home", str(p.home)],
         lambda p: REPORT_IS_FOLDER.format(path=p.home)),
    Case("export --out under a file",
         lambda p: ["export", "--study", "origin", "--out", str(p.file / "exp"), "--home", str(p.home)],
         lambda p: FOLDER_BLOCKED.format(what="--out", path=p.file / "exp", blocker=p.file)),
    Case("generate --study escaping",
         lambda p: ["generate", "--model", str(p.model), *TINY, "--seeds", "0-1", "--study", "../../x", "--home", str(p.home)],
         lambda p: STUDY_NAME.format(value="../../x")),
    Case("import --study escaping",
         lambda p: ["import-annotations", str(ORIGIN_SHEET), "--study", "../../x", "--rater", "r", "--home", str(p.home)],
         lambda p: STUDY_NAME.format(value="../../x")),
    Case("seeds with a superscript digit",
         lambda p: ["generate", "--model", str(p.model), *TINY, "--seeds", "²-3", "--home", str(p.home)],
         lambda p: SEED_TEXT.format(value="²-3")),
    Case("first seed past what a browser holds",
         lambda p: ["generate", "--model", str(p.model), *TINY, "--seeds", str(MAX_SEED + 1), "--home", str(p.home)],
         lambda p: SEED_BOUNDS.format(first=MAX_SEED + 1, last=MAX_SEED + 1)),
    Case("sheet seed with a superscript digit",
         lambda p: ["import-annotations", str(_sdaudit_sheet(p, ["r1,²,ana,true,female,3,,high"])), "--study", "origin",
                    "--format", "sdaudit", "--home", str(p.home)],
         lambda p: SHEET_PROBLEM.format(name="rows.csv", row=2, column="seed",
                                        problem=SEED_VALUE.format(max=MAX_SEED, value="²"))),
    Case("sheet row with extra fields",
         lambda p: ["import-annotations", str(p.sheet("wide.csv", "male_presenting,female_presenting,monk_binary,confidence\n"
                                                      "0,1,0,high\n1,0,0,high,extra,more\n")),
                    "--study", "origin", "--rater", "r", "--home", str(p.home)],
         lambda p: ROW_WIDTH.format(name="wide.csv", row=3, fields=6, header=4)),
    Case("sheet with two rows for one image and rater",
         lambda p: ["import-annotations", str(_sdaudit_sheet(p, ["r1,0,ana,true,female,3,,high", "r1,1,ana,true,male,3,,high",
                                                                 "r1,0,ana,true,male,8,,low"])),
                    "--study", "origin", "--format", "sdaudit", "--home", str(p.home)],
         lambda p: DUPLICATE_ANNOTATION.format(name="rows.csv", first=2, second=4, run_key="r1", seed=0, rater="ana")),
    Case("origin sheet naming one image twice",
         lambda p: ["import-annotations", str(p.sheet("twice.csv", "image,male_presenting,female_presenting,monk_binary,"
                                                      "confidence\na.png,0,1,0,high\nb.png,1,0,0,high\na.png,1,0,1,low\n")),
                    "--study", "origin", "--rater", "r", "--home", str(p.home)],
         lambda p: DUPLICATE_IMAGE.format(name="twice.csv", first=2, second=4, image="a.png")),
    Case("model_index.json that is not JSON",
         lambda p: ["generate", "--model", str(p.model_folder("broken", '{"_class_name": ')), *TINY, "--seeds", "0-1",
                    "--home", str(p.home)],
         lambda p: BAD_MODEL_INDEX.format(model=str(p.root / "broken"), path=p.root / "broken" / "model_index.json",
                                          reason="Expecting value at line 1")),
    Case("model folder without weights",
         lambda p: ["generate", "--model", str(p.model_folder("hollow", (p.model / "model_index.json").read_text())),
                    *TINY, "--seeds", "0-1", "--home", str(p.home)],
         lambda p: MISSING_COMPONENTS.format(model=str(p.root / "hollow"), folder=p.root / "hollow",
                                             names="scheduler, text_encoder, tokenizer, unet, vae", hint=MODEL_HINT)),
    Case("demo-model under a file", lambda p: ["demo-model", str(p.file / "m")],
         lambda p: FOLDER_BLOCKED.format(what="the demo model's folder", path=p.file / "m", blocker=p.file)),
    Case("negative bootstrap seed",
         lambda p: ["estimate", "--study", "origin", "--method", "bootstrap", "--seed", "-5", "--home", str(p.home)],
         lambda p: "argument --seed: " + BOOTSTRAP_SEED.format(max=MAX_SEED, value="-5")
                   + " (see `python -m sdaudit estimate --help`)"),
    Case("unknown hub id offline",
         lambda p: ["generate", "--model", "nobody/no-such-model", *TINY, "--seeds", "0-1", "--home", str(p.home)],
         lambda p: NOT_CACHED_OFFLINE.format(model="nobody/no-such-model")),
]


def row_counts(store_file: Path) -> dict[str, int]:
    with Store(store_file, read_only=True) as store:
        return {table: store.count(table) for table in TABLES}


@pytest.fixture
def place(template, tiny_model, tmp_path) -> Place:
    shutil.copytree(template, tmp_path / "p")
    place = Place(tmp_path / "p", tiny_model)
    place.file.write_text("not a folder")
    return place


def assert_refused(result, message: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"error: {message}"]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input_is_one_exact_line_and_changes_nothing(place, case):
    before = row_counts(place.store)
    images = sorted(place.home.rglob("*.png"))
    result = run_cli(*case.args(place), cwd=place.root, env={"HF_HUB_OFFLINE": "1"})
    assert_refused(result, case.message(place))
    assert row_counts(place.store) == before
    assert sorted(place.home.rglob("*.png")) == images
    assert place.file.read_text() == "not a folder"


COMMANDS_THAT_OPEN_THE_STORE = [
    ["runs"],
    ["generate", "--model", "{model}", *TINY, "--seeds", "0-1"],
    ["ingest", "{root}/runfolder"],
    ["import-annotations", str(ORIGIN_SHEET), "--study", "origin", "--rater", "r"],
    ["estimate", "--study", "origin"],
    ["estimate", "--study", "origin", "--labels", "dawid-skene"],
    ["agreement", "--study", "origin"],
    ["export", "--study", "origin", "--out", "{root}/exp"],
    ["report", "--study", "origin", "--out", "{root}/report.html"],
    ["snapshot", "--to", "{root}/snap"],
    ["restore", "--from", "{root}/snap"],
]


@pytest.mark.parametrize(("damage", "template_message"), [("truncated", DAMAGED), ("random bytes", NOT_DUCKDB)])
@pytest.mark.parametrize("command", COMMANDS_THAT_OPEN_THE_STORE, ids=lambda command: command[0])
def test_a_damaged_store_is_named_by_every_command(place, command, damage, template_message):
    data = place.store.read_bytes()
    # the first 12 KiB keep DuckDB's header, so the file opens and fails when read further
    place.store.write_bytes(data[:12288] if damage == "truncated" else bytes(range(256)) * 64)
    damaged = place.store.read_bytes()
    args = [part.format(model=place.model, root=place.root) for part in command]
    result = run_cli(*args, "--home", str(place.home), cwd=place.root)
    assert_refused(result, template_message.format(path=place.store))
    assert place.store.read_bytes() == damaged


def test_a_newer_store_tells_runs_to_upgrade_sdaudit(place):
    with Store(place.store) as store:
        store.db.write(lambda cursor: cursor.execute("UPDATE schema_info SET version = 99"))
    result = run_cli("runs", "--home", str(place.home), cwd=place.root)
    assert_refused(result, TOO_NEW.format(path=place.store, found=99, known=SCHEMA_VERSION))


@pytest.mark.parametrize("study", ODD_STUDIES)
def test_an_older_stores_odd_study_exports_inside_the_folder_given(place, study):
    out = place.root / "exp" / "a" / "b"
    before = sorted(path for path in place.root.rglob("*") if path.is_file())
    result = run_cli("export", "--study", study, "--out", str(out), "--home", str(place.home), cwd=place.root)
    assert result.returncode == 0, result.stderr
    written = sorted(set(path for path in place.root.rglob("*") if path.is_file()) - set(before))
    assert len(written) == 4 and all(path.parent == out for path in written), written
    report = run_cli("report", "--study", study, "--out", str(out / "report.html"), "--home", str(place.home),
                     cwd=place.root)
    assert report.returncode == 0, report.stderr


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_an_absent_device_is_refused_before_a_store_is_made(tiny_model, tmp_path, device):
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the refusal is for machines without it")
    result = run_cli("generate", "--model", str(tiny_model), *TINY, "--seeds", "0-1", "--device", device,
                     "--home", str(tmp_path / "new-home"), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert not (tmp_path / "new-home").exists()
