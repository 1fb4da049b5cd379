"""Studies beyond one prompt: prompt sets × several models in one command, reference sets of real
images, and targets from data — run through `python -m sdaudit` as a user runs it."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from helpers import assert_one_error_line

from sdaudit.generation.promptsets import DUPLICATE, TEMPLATE, PromptSet, parse_values
from sdaudit.store import Store

TINY = ["--steps", "2", "--height", "64", "--width", "64", "--batch-size", "4"]
OCCUPATIONS = ["doctor", "nurse", "CEO"]


@pytest.mark.slow  # over 5 s: several CLI processes, each loading torch
def test_a_prompt_set_with_two_models_makes_one_run_per_prompt_and_model(cli, tiny_model, second_tiny_model, tmp_path):
    home, values = tmp_path / "home", tmp_path / "occupations.txt"
    values.write_text("doctor\n\nnurse\nCEO\n")
    command = ["generate", "--prompt-template", "a photo of a {}", "--prompt-list", str(values),
               "--model", str(tiny_model), "--model", str(second_tiny_model), "--seeds", "0-3", *TINY,
               "--home", str(home)]
    first = cli(*command, check=True)
    assert first.stdout.count("\n") == 1
    assert first.stdout.startswith("generated 24 images") and "6 of 6 runs" in first.stdout
    with Store.open(home) as store:
        runs = store.runs()
        images = store.images()
    assert len(runs) == 6
    assert Counter(zip(runs["model"], runs["slot"])) == Counter(
        (str(model), value) for model in (tiny_model, second_tiny_model) for value in OCCUPATIONS)
    assert set(runs["prompt"]) == {f"a photo of a {value}" for value in OCCUPATIONS}
    for run_key, seeds in images.groupby("run_key")["seed"]:
        assert sorted(seeds) == [0, 1, 2, 3], run_key
    # different weights, different pixels: the two models' runs are not one run
    by_prompt = images.merge(runs[["run_key", "model"]], on="run_key").groupby(["prompt", "seed"])["sha256"]
    assert (by_prompt.nunique() == 2).all()

    again = cli(*command, check=True)
    assert again.stdout.startswith("generated 0 images (24 already present)")
    with Store.open(home) as store:
        assert store.count("runs") == 6 and store.count("images") == 24


@pytest.mark.parametrize(("extra", "contains"), [
    (["--prompt-template", "a photo of a doctor", "--prompt-list", "LIST"], "exactly once"),
    (["--prompt-template", "a photo of a {}"], "go together"),
    (["--prompt-template", "a {} and a {}", "--prompt-list", "LIST"], "exactly once"),
    (["--prompt", "x", "--prompt-template", "a {}", "--prompt-list", "LIST"], "not both"),
    (["--prompt-template", "a {}", "--prompt-list", "MISSING"], "no prompt list"),
    (["--prompt-template", "a {}", "--prompt-list", "LINK"], "not a file"),
    (["--prompt-template", "a {}", "--prompt-list", "DUPLICATES"], "twice (lines 1 and 3)"),
    (["--model", "NO_MODEL"], "could not load model"),  # found before the first model's images are made
])
def test_a_bad_prompt_set_is_one_line_and_the_store_is_untouched(cli, tiny_model, tmp_path, extra, contains):
    files = {"LIST": tmp_path / "list.txt", "MISSING": tmp_path / "missing.txt", "LINK": tmp_path / "link.txt",
             "DUPLICATES": tmp_path / "duplicates.txt", "NO_MODEL": tmp_path / "no-model"}
    files["LIST"].write_text("doctor\nnurse\n")
    files["DUPLICATES"].write_text("doctor\nnurse\ndoctor\n")
    files["LINK"].symlink_to(files["LIST"])
    extra = [str(files[word]) if word in files else word for word in extra]
    home = tmp_path / "home"
    result = cli("generate", "--model", str(tiny_model), "--seeds", "0-1", *TINY, *extra, "--home", str(home))
    assert_one_error_line(result, contains=contains)
    assert not home.exists()  # no store, no image


def test_prompt_set_messages_are_the_module_constants():
    with pytest.raises(ValueError) as caught:
        PromptSet("no slot here", ("doctor",))
    assert str(caught.value) == TEMPLATE.format(value="no slot here")
    with pytest.raises(ValueError) as caught:
        parse_values("doctor\n nurse \ndoctor", where="occupations.txt")
    assert str(caught.value) == DUPLICATE.format(where="occupations.txt", value="doctor", first=1, second=3)
    # values are filled by plain replacement: a brace in a value is not a format field
    assert PromptSet("a photo of a {}", ("{0.__class__}",)).prompts() == [("a photo of a {0.__class__}", "{0.__class__}")]


def _photo(colour: tuple[int, int, int], image_format: str, size=(24, 16)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=image_format)
    return buffer.getvalue()


def _reference_folder(folder, outside) -> dict[str, bytes]:
    """20 entries: 14 good JPEG/PNG/WebP files, and 6 that must be skipped. Returns the good ones."""
    folder.mkdir()
    good = {}
    for number in range(14):
        image_format, suffix = [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("JPEG", "JPEG")][number % 4]
        good[f"photo-{number:02d}.{suffix}"] = _photo((10 * number, 200 - 10 * number, 60), image_format)
    for name, data in good.items():
        (folder / name).write_bytes(data)
    (folder / "photo-99-copy.png").write_bytes(good["photo-01.png"])  # a duplicate
    (folder / "cut.png").write_bytes(good["photo-05.png"][:40])  # truncated
    (folder / "cut.jpg").write_bytes(_photo((1, 2, 3), "JPEG", size=(200, 200))[:300])
    (folder / "notes.jpg").write_text("not an image\n")
    (folder / "huge.png").write_bytes(b"\0" * (20 * 1024 * 1024 + 1))  # over the size cap: never read
    outside.write_bytes(_photo((9, 9, 9), "PNG"))
    (folder / "linked.png").symlink_to(outside)
    assert len(list(folder.iterdir())) == 20
    return good


def test_a_folder_of_real_images_becomes_a_reference_run_with_exactly_the_good_files(cli, tmp_path):
    import hashlib

    folder, home = tmp_path / "photos", tmp_path / "home"
    good = _reference_folder(folder, tmp_path / "elsewhere.png")
    result = cli("ingest-images", str(folder), "--name", "labour photos", "--study", "occupations",
                 "--source", "national photo archive", "--license", "CC BY 4.0", "--home", str(home), check=True)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and "14 images added, 0 already present; skipped 6:" in lines[0]
    for name, reason in [("photo-99-copy.png", "duplicate of photo-01.png"), ("cut.png", "unreadable"),
                         ("cut.jpg", "unreadable"), ("notes.jpg", "unreadable"), ("huge.png", "over"),
                         ("linked.png", "symbolic link")]:
        assert f"'{name}' (" in lines[0] and reason in lines[0].split(f"'{name}' (")[1].split(")")[0], name

    with Store.open(home) as store:
        runs = store.runs(study="occupations")
        images = store.images(study="occupations")
        run = store.run(runs.loc[0, "run_key"])
    assert len(runs) == 1 and run["model"] == "reference"
    assert run["versions"] == {"reference": "labour photos", "source": "national photo archive", "license": "CC BY 4.0"}
    assert sorted(images["source_name"]) == sorted(good)
    for row in images.itertuples():
        stored = (home / row.path).read_bytes()
        assert stored == good[row.source_name]  # copied unchanged
        assert row.sha256 == hashlib.sha256(stored).hexdigest() and row.size_bytes == len(stored)
    assert sorted(images["seed"]) == list(range(14))

    again = cli("ingest-images", str(folder), "--name", "labour photos", "--study", "occupations",
                "--home", str(home), check=True)
    assert "0 images added, 14 already present" in again.stdout
    with Store.open(home) as store:
        assert store.count("images") == 14 and store.count("runs") == 1


def test_reference_images_are_annotated_beside_generated_ones_in_one_shuffled_queue(tmp_path):
    from helpers import make_images, make_run

    from sdaudit.files.reference import ingest_images

    folder, home = tmp_path / "photos", tmp_path / "home"
    good = _reference_folder(folder, tmp_path / "elsewhere.png")
    with Store.open(home) as store:
        store.add_run(make_run("generated", study="occupations"))
        store.add_images(make_images("generated", seeds=range(14)))
        ingest_images(folder, store, home, name="photos", study="occupations")
        queue = store.annotation_queue("occupations", "r1", only_missing=True, shuffled=True)
    kinds = ["generated" if image.run_key == "generated" else "reference" for image in queue]
    assert Counter(kinds) == {"generated": 14, "reference": len(good)}
    # shuffled together: the reference images are not one block at either end
    first_reference = kinds.index("reference")
    assert "generated" in kinds[first_reference:] and kinds[:14] != ["generated"] * 14


@pytest.mark.parametrize(("arguments", "contains"), [
    (["--name", "../evil"], "a reference set's name must be"),
    (["--name", "ok", "--license", "line one\nline two"], "`license` must be a text"),
    (["--name", "ok", "FOLDER_IS_LINK"], "is a symbolic link"),
    (["--name", "ok", "NO_FOLDER"], "there is no folder"),
    (["--name", "ok", "EMPTY"], "no image in"),
])
def test_a_bad_reference_set_is_one_line_and_nothing_is_written(cli, tmp_path, arguments, contains):
    photos, empty = tmp_path / "photos", tmp_path / "empty"
    photos.mkdir()
    empty.mkdir()
    (photos / "a.png").write_bytes(_photo((1, 2, 3), "PNG"))
    (empty / "notes.txt").write_text("no images here")
    (tmp_path / "link").symlink_to(photos)
    folders = {"FOLDER_IS_LINK": tmp_path / "link", "NO_FOLDER": tmp_path / "nowhere", "EMPTY": empty}
    folder = next((folders[word] for word in arguments if word in folders), photos)
    arguments = [word for word in arguments if word not in folders]
    home = tmp_path / "home"
    with Store.open(home):
        pass
    before = (home / "sdaudit.duckdb").read_bytes()
    result = cli("ingest-images", str(folder), *arguments, "--home", str(home))
    assert_one_error_line(result, contains=contains)
    assert (home / "sdaudit.duckdb").read_bytes() == before
    assert not (home / "images").exists()


TARGETS_CSV = """slot,prompt,family,group,target,source
doctor,,gender,female,0.46,ONS Labour Force Survey 2023
doctor,,gender,male,0.54,ONS Labour Force Survey 2023

nurse,,gender,female,0.80,ONS Labour Force Survey 2023
,a photo of a nurse,gender,female,0.89,NHS workforce statistics 2023
"""
GROUPS = {"doctor": {("female", 2): 12, ("male", 3): 28}, "nurse": {("female", 8): 30, ("male", 2): 10},
          "reference": {("female", 7): 9, ("male", 1): 11}}


def _annotated_study(home) -> dict[str, str]:
    """Three runs of study 'occupations' (two of a prompt set, one not), annotated; slot -> run key."""
    from dataclasses import replace

    from helpers import make_images, make_run, sheet

    keys = {}
    with Store.open(home) as store:
        for slot, groups in GROUPS.items():
            run = make_run(f"run-{slot}", study="occupations", prompt=f"a photo of a {slot}")
            store.add_run(replace(run, slot=None if slot == "reference" else slot))
            store.add_images(make_images(run.run_key, seeds=range(sum(groups.values()))))
            rows = sheet(groups)
            rows["image_id"] = store.images(run_key=run.run_key)["image_id"].to_numpy()
            rows["confidence"] = "high"
            store.save_annotations(rows)
            keys[slot] = run.run_key
    return keys


def test_targets_from_data_are_each_runs_own_targets_in_estimate_by_run(cli, tmp_path):
    from scipy.stats import binomtest

    home, targets = tmp_path / "home", tmp_path / "targets.csv"
    keys = _annotated_study(home)
    targets.write_text(TARGETS_CSV)
    imported = cli("import-targets", str(targets), "--study", "occupations", "--home", str(home), check=True)
    assert imported.stdout.startswith("imported 4 targets into study occupations (0 replaced")

    result = cli("estimate", "--study", "occupations", "--by", "run", "--json", "--home", str(home), check=True)
    rows = json.loads(result.stdout)
    per_run = Counter(row["run_key"] for row in rows)
    assert set(per_run) == set(keys.values()) and len(set(per_run.values())) == 1
    assert len({(row["run_key"], row["family"], row["group"]) for row in rows}) == len(rows)
    by = {(row["run_key"], row["family"], row["group"]): row for row in rows}
    expected = {  # slot -> (female target, its source): the prompt's row beats the slot's; else parity
        "doctor": (0.46, "ONS Labour Force Survey 2023"), "nurse": (0.89, "NHS workforce statistics 2023"),
        "reference": (0.5, None)}
    for slot, (target, source) in expected.items():
        row = by[(keys[slot], "gender", "female")]
        assert (row["prompt"], row["model"], row["slot"]) == (f"a photo of a {slot}", "demo",
                                                               None if slot == "reference" else slot)
        female = sum(count for (gender, _), count in GROUPS[slot].items() if gender == "female")
        n = sum(GROUPS[slot].values())
        interval = binomtest(female, n).proportion_ci(0.95, method="exact")  # Clopper–Pearson, independently
        assert row["share"] == pytest.approx(female / n)
        assert (row["low"], row["high"]) == pytest.approx((interval.low, interval.high))
        assert (row["target"], row["target_source"]) == (pytest.approx(target), source)
        assert row["excludes_target"] == (not interval.low <= target <= interval.high)
    assert by[(keys["doctor"], "gender", "male")]["target"] == pytest.approx(0.54)
    assert by[(keys["nurse"], "gender", "male")]["target_source"] is None  # no row: parity

    text = cli("estimate", "--study", "occupations", "--by", "run", "--home", str(home), check=True).stdout
    assert "46.0% (ONS Labour Force Survey 2023)" in text and "50.0% (parity)" in text
    # runs are named, each over its rows: the nurse run's section, its male-presenting row
    nurse = text.split("\n\nnurse · demo\n")[1].split("\n\n")[0]  # a slot run is named by its slot value
    nurse_male = next(line for line in nurse.splitlines() if " male-presenting " in line)
    assert "50.0% (parity)" in nurse_male and "(nan)" not in text  # a parity source is NaN once runs are joined

    # importing again replaces what it names and adds nothing
    again = cli("import-targets", str(targets), "--study", "occupations", "--home", str(home), check=True)
    assert again.stdout.startswith("imported 4 targets into study occupations (4 replaced")
    with Store.open(home) as store:
        assert store.count("targets") == 4


@pytest.mark.parametrize(("content", "contains"), [
    ("slot,family,group,target,source\ndoctor,gender,female,46%,ONS\n", "row 1 (line 2): target must be a share"),
    ("slot,family,group,target,source\ndoctor,gender,female,0.4,ONS\ndoctor,gender,woman,0.4,ONS\n",
     "row 2 (line 3): group must be one of female, male for family gender but is 'woman'"),
    ("slot,family,group,target,source\ndoctor,gender,female,0.4,\n", "row 1 (line 2): source must say"),
    ("slot,prompt,family,group,target,source\ndoctor,a photo,gender,female,0.4,ONS\n", "row 1 (line 2): give a prompt or"),
    ("slot,family,group,target,source\ndoctor,gender,female,0.4,ONS\n\ndoctor,gender,female,0.5,ONS\n",
     "row 2 (line 4): slot 'doctor', gender female is also given on row 1"),
    ("slot,family,group,target,source\ndoctor,gender,female,0.6,ONS\ndoctor,gender,male,0.6,ONS\n",
     "add up to 1.200, more than 1 (rows 1, 2)"),
    ("slot,family,group,target,source\ndoctor,hair,long,0.4,ONS\n", "row 1 (line 2): family must be one of"),
    ("slot,family,group,target\ndoctor,gender,female,0.4\n", "needs the columns"),
    ("slot,family,group,target,source\n", "no rows"),
    (b"slot,family\xff\n", "not UTF-8"),
])
def test_a_bad_targets_file_is_one_line_naming_the_row_and_the_store_is_unchanged(cli, tmp_path, content, contains):
    from sdaudit.analysis.targets import import_targets, study_targets

    home, targets, good = tmp_path / "home", tmp_path / "targets.csv", tmp_path / "good.csv"
    _annotated_study(home)
    good.write_text(TARGETS_CSV)
    with Store.open(home) as store:
        import_targets(good, store, study="occupations")
        before = study_targets(store, "occupations")
    store_bytes = (home / "sdaudit.duckdb").read_bytes()
    targets.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = cli("import-targets", str(targets), "--study", "occupations", "--home", str(home))
    assert_one_error_line(result, contains=contains)
    assert (home / "sdaudit.duckdb").read_bytes() == store_bytes
    with Store.open(home) as store:
        assert study_targets(store, "occupations").equals(before) and len(before) == 4


@pytest.mark.slow  # over 5 s: several CLI processes, each loading torch
def test_a_prompt_set_goes_into_a_run_folder_and_ingests_with_its_slots(cli, tiny_model, tmp_path):
    home, out, values = tmp_path / "home", tmp_path / "runs", tmp_path / "values.txt"
    values.write_text("doctor\nnurse\n")
    made = cli("generate", "--prompt-template", "a photo of a {}", "--prompt-list", str(values), "--model",
               str(tiny_model), "--seeds", "0-1", *TINY, "--out", str(out), check=True)
    assert "2 of 2 runs" in made.stdout and "holds 4 images" in made.stdout
    cli("ingest", str(out), "--home", str(home), check=True)
    with Store.open(home) as store:
        runs = store.runs()
    assert sorted(zip(runs["slot"], runs["prompt"], runs["images"])) == [
        ("doctor", "a photo of a doctor", 2), ("nurse", "a photo of a nurse", 2)]


def test_one_job_makes_every_run_of_a_study_and_counts_them_all(tmp_path, tiny_model, second_tiny_model):
    from helpers import wait_until

    from sdaudit.generation.jobs import JobRunner
    from sdaudit.generation.spec import GenerationSpec

    home = tmp_path / "home"
    spec = GenerationSpec(model=str(tiny_model), first_seed=0, last_seed=2, batch_size=2, steps=2, height=64,
                          width=64, device="cpu", study="occupations")
    with Store.open(home) as store:
        runner = JobRunner(store, home)
        try:
            job_id = runner.submit(spec, models=[str(tiny_model), str(second_tiny_model)],
                                   prompt_set=PromptSet("a photo of a {}", ("doctor", "nurse")))
            job = wait_until(lambda: (found := runner.queue.job(job_id)).status in ("done", "failed") and found,
                             "the study's job to finish")
        finally:
            runner.stop()
        runs, images = store.runs(study="occupations"), store.images(study="occupations")
    assert (job.status, job.images_done, job.images_total) == ("done", 12, 12), job.error
    assert job.model == f"{tiny_model}, {second_tiny_model}" and job.prompt == "a photo of a {} × doctor, nurse"
    assert Counter(runs["slot"]) == {"doctor": 2, "nurse": 2}
    assert images.groupby("run_key")["seed"].apply(sorted).map(tuple).unique().tolist() == [(0, 1, 2)]


def test_the_generate_form_queues_a_prompt_set_with_two_models(app_home, tiny_model, second_tiny_model):
    from helpers import ROOT, WAIT_LIMIT_S, wait_until
    from streamlit.testing.v1 import AppTest

    from app.widgets import plain
    from sdaudit.generation.jobs import JobQueue

    def widget(elements, label):
        return next(element for element in elements if element.label == label)

    at = AppTest.from_file(str(ROOT / "app" / "router.py"), default_timeout=WAIT_LIMIT_S).run()
    at.switch_page(str(ROOT / "pages" / "generate.py")).run()  # Home is the landing page
    widget(at.text_input, "Model").input(str(tiny_model))
    widget(at.text_input, "Prompt template").input("a photo of a {}")
    widget(at.text_area, "Slot values, one a line").input("doctor\nnurse\n\nnurse")
    widget(at.button, "Generate").click().run()
    assert [error.value for error in at.error] == [
        plain("the prompt list in the form names 'nurse' twice (lines 2 and 4); give each value once.")]

    widget(at.text_area, "Slot values, one a line").input("doctor\nnurse")
    widget(at.text_area, "More models, one a line").input(str(second_tiny_model))
    for label, value in (("Steps", 2), ("Width", 64), ("Height", 64), ("Batch size", 2)):
        widget(at.number_input, label).set_value(value)
    widget(at.button, "Generate").click().run()
    assert at.success[0].value.startswith("Queued job 1: seeds 0–1 in each of 4 runs (prompt × model)")
    wait_until(lambda: any(caption.value.startswith("Last job 1: done, 8 of 8 images")
                           for caption in at.run().caption), "the study's job to finish", poll=0.5)
    with Store.open(app_home) as store:
        job = JobQueue(store).job(1)
        runs = store.runs()
    assert job.spec["models"] == [str(tiny_model), str(second_tiny_model)]
    assert (job.spec["prompt_template"], job.spec["slot_values"]) == ("a photo of a {}", ["doctor", "nurse"])
    assert Counter(zip(runs["model"], runs["slot"])) == Counter(
        (str(model), slot) for model in (tiny_model, second_tiny_model) for slot in ("doctor", "nurse"))


def test_the_report_and_its_chart_show_each_target_with_its_source(cli, tmp_path):
    from sdaudit.analysis.targets import estimates_by_run
    from sdaudit.present.charts import PARITY_SOURCE, targets_chart

    home, targets, report = tmp_path / "home", tmp_path / "targets.csv", tmp_path / "report.html"
    keys = _annotated_study(home)
    targets.write_text(TARGETS_CSV)
    cli("import-targets", str(targets), "--study", "occupations", "--home", str(home), check=True)
    cli("report", "--study", "occupations", "--out", str(report), "--home", str(home), check=True)
    text = report.read_text()
    section = text.split("<h2>Each run against its own target</h2>")[1].split("<h2>")[0]
    assert "<svg" in section
    for source in ("ONS Labour Force Survey 2023", "NHS workforce statistics 2023", PARITY_SOURCE):
        assert source in section

    with Store.open(home) as store:
        by_run = estimates_by_run(store, "occupations")
    data = next(iter(targets_chart(by_run).to_dict()["datasets"].values()))
    shown = {(row["run_key"], row["panel"]): (row["target"], row["source"]) for row in data}
    # only the groups that have a target from data get a panel: female and male of gender
    assert {panel for _, panel in shown} == {"Perceived gender presentation: female-presenting",
                                             "Perceived gender presentation: male-presenting"}
    assert shown[(keys["nurse"], "Perceived gender presentation: female-presenting")] == (
        pytest.approx(0.89), "NHS workforce statistics 2023")
    assert shown[(keys["reference"], "Perceived gender presentation: female-presenting")] == (
        pytest.approx(0.5), PARITY_SOURCE)


def test_uploaded_images_become_the_same_reference_run_as_the_folder_would(tmp_path):
    from sdaudit.files.reference import ingest_images, ingest_uploaded_images

    folder = tmp_path / "photos"
    good = _reference_folder(folder, tmp_path / "elsewhere.png")
    uploads = [(path.name, path.read_bytes()) for path in sorted(folder.iterdir())
               if not path.is_symlink() and path.name != "huge.png"]
    with Store.open(tmp_path / "uploaded") as store:
        uploaded = ingest_uploaded_images(uploads, store, tmp_path / "uploaded", name="photos", study="occupations",
                                          source="archive", license="CC0")
        from_upload = store.images(run_key=uploaded.run_key)[["seed", "sha256", "source_name", "size_bytes"]]
    with Store.open(tmp_path / "folder") as store:
        ingested = ingest_images(folder, store, tmp_path / "folder", name="photos", study="occupations")
        from_folder = store.images(run_key=ingested.run_key)[["seed", "sha256", "source_name", "size_bytes"]]
    assert uploaded.run_key == ingested.run_key and uploaded.added == len(good) == 14
    assert from_upload.equals(from_folder)
    assert [item.name for item in uploaded.skipped] == ["cut.jpg", "cut.png", "notes.jpg", "photo-99-copy.png"]
    assert uploaded.summary.startswith("ingested reference set 'photos' into study occupations: 14 images added")


def test_the_runs_page_offers_a_reference_set_upload_to_an_admin(app_home):
    from helpers import ROOT, WAIT_LIMIT_S
    from streamlit.testing.v1 import AppTest

    from app.widgets import plain
    from sdaudit.files.reference import NAME

    at = AppTest.from_file(str(ROOT / "app" / "router.py"), default_timeout=WAIT_LIMIT_S).run()
    at.switch_page(str(ROOT / "pages" / "runs.py")).run()
    assert "Add a reference set of real images" in [header.value for header in at.subheader]
    # nothing uploaded and no name: the core's message, as text, and nothing written
    next(button for button in at.button if button.label == "Add reference set").click().run()
    assert [error.value for error in at.error] == [plain(NAME.format(value=""))]
    with Store.open(app_home) as store:
        assert store.count("runs") == 0


def test_a_store_written_before_studies_opens_with_no_slots_and_no_targets(tmp_path, monkeypatch):
    from helpers import make_images, make_run

    from sdaudit.store import runs as runs_module
    from sdaudit.store import schema as schema_module

    path = tmp_path / "v2.duckdb"
    with monkeypatch.context() as older:
        older.setattr(schema_module, "MIGRATIONS", schema_module.MIGRATIONS[:2])
        older.setattr(schema_module, "TABLES", schema_module.TABLES[:6])
        older.setattr(runs_module, "RUN_COLUMNS", [c for c in runs_module.RUN_COLUMNS if c not in ("slot", "kind")])
        with Store(path) as old:
            assert old.schema_version == 2
            old.add_run(make_run("old-run"))
            old.add_images(make_images("old-run"))
    with Store(path) as upgraded:
        assert upgraded.schema_version == schema_module.SCHEMA_VERSION
        runs = upgraded.runs()
        assert runs.loc[0, "run_key"] == "old-run" and runs.loc[0, "images"] == 4
        assert runs["slot"].isna().all() and upgraded.images()["size_bytes"].isna().all()
        assert upgraded.count("targets") == 0
        assert (runs["kind"] == "generated").all()
