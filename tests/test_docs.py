"""The docs point only at files that exist, and the README stays a short user guide that opens with
its two commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/*.md", "benchmarks/results/README.md", "examples/README.md", "space/README.md")
README_MOST_LINES = 260
README_HEAD_LINES = 15
FIRST_COMMANDS = ("pip install -r requirements.txt && streamlit run streamlit_app.py", "bash scripts/test.sh")
# A backticked word is read as a path into the repository when it starts with one of its folders,
# or is a bare file name ending in one of these (looked up beside the doc, then at the root).
REPO_FOLDERS = ("sdaudit", "app", "pages", "tests", "benchmarks", "docs", "examples", "scripts", "space")
BARE_SUFFIXES = (".py", ".md")

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
WORD_EDGES = "\"'()[]{},;:"


def doc_files(root: Path) -> list[Path]:
    return sorted(path for pattern in DOCS for path in root.glob(pattern))


def _is_repo_path(word: str) -> bool:
    if "/" in word:
        return word.split("/", 1)[0] in REPO_FOLDERS
    return word.endswith(BARE_SUFFIXES) and re.fullmatch(r"[\w.-]+", word) is not None


def _exists(word: str, doc: Path, root: Path) -> bool:
    """A path (a glob when it has ``*``; cut at ``…``, ``...`` or ``<`` when it has them) exists."""
    for cut in ("…", "...", "<"):
        word = word.split(cut, 1)[0]
    word = word.rstrip("/")
    bases = (root,) if "/" in word else (doc.parent, root)
    if "*" in word:
        return any(any(base.glob(word)) for base in bases)
    return any((base / word).exists() for base in bases)


def code_paths(text: str) -> list[str]:
    """The repo paths named in a doc's code: each word of a fenced block or an inline code span."""
    spans = [block for block in FENCE.findall(text)]
    spans += INLINE_CODE.findall(FENCE.sub("", text))
    words = (word.strip(WORD_EDGES).removeprefix("./") for span in spans for word in span.split())
    return [word for word in words if word and _is_repo_path(word)]


def broken_references(doc: Path, root: Path) -> list[str]:
    """Each relative link and each backticked repo path in ``doc`` that names no file, as "doc: target"."""
    text = doc.read_text(encoding="utf-8")
    name = doc.relative_to(root).as_posix()
    broken = []
    for target in LINK.findall(FENCE.sub("", text)):
        path = target.split("#", 1)[0]
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or not path:
            continue  # a web address, mailto:, or an anchor in the same doc
        if not (doc.parent / path).exists():
            broken.append(f"{name}: {target}")
    broken += [f"{name}: {word}" for word in code_paths(text) if not _exists(word, doc, root)]
    return broken


def readme_problems(readme: Path) -> list[str]:
    """What keeps the README from being the short guide that opens with its two commands."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    problems = [f"the README is {len(lines)} lines (at most {README_MOST_LINES})"] if len(lines) > README_MOST_LINES else []
    head = "\n".join(lines[:README_HEAD_LINES])
    problems += [f"the README's first {README_HEAD_LINES} lines lack `{command}`"
                 for command in FIRST_COMMANDS if command not in head]
    return problems


def test_the_docs_are_found():
    names = {path.relative_to(ROOT).as_posix() for path in doc_files(ROOT)}
    assert {"README.md", "docs/statistics.md", "docs/hosting.md", "benchmarks/results/README.md",
            "examples/README.md"} <= names


@pytest.mark.parametrize("doc", doc_files(ROOT), ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_link_and_repo_path_in_the_docs_exists(doc):
    assert broken_references(doc, ROOT) == []


def test_the_readme_is_a_short_guide_that_opens_with_its_two_commands():
    assert readme_problems(ROOT / "README.md") == []


def test_every_benchmark_result_is_in_the_index():
    index = (ROOT / "benchmarks" / "results" / "README.md").read_text(encoding="utf-8")
    results = sorted(path.name for path in (ROOT / "benchmarks" / "results").iterdir() if path.name != "README.md")
    assert results, "no benchmark results found"
    assert [name for name in results if f"]({name})" not in index] == []


def test_the_checker_catches_broken_links_and_paths(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "sdaudit" / "files").mkdir(parents=True)
    (tmp_path / "sdaudit" / "files" / "safe.py").write_text("")
    (tmp_path / "docs" / "hosting.md").write_text("# Hosting\n")
    guide = tmp_path / "docs" / "guide.md"
    guide.write_text(
        "[hosting](hosting.md#docker) and [a site](https://example.org/x.md) and [here](#top)\n"
        "[gone](statistics.md) and `sdaudit/files/safe.py`, `sdaudit/files/*.py` and `sdaudit/store/`\n"
        "see `DESIGN.md` and `sdaudit/files/safefiles.py`\n"
        "```bash\npython benchmarks/missing_speed.py --out ./runs/x\n```\n",
        encoding="utf-8")
    assert broken_references(guide, tmp_path) == [
        "docs/guide.md: statistics.md", "docs/guide.md: benchmarks/missing_speed.py",
        "docs/guide.md: sdaudit/store/", "docs/guide.md: DESIGN.md", "docs/guide.md: sdaudit/files/safefiles.py"]


def test_the_checker_catches_a_long_readme_without_its_commands(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# sdaudit\n\n```bash\nbash scripts/test.sh\n```\n" + "text\n" * 300, encoding="utf-8")
    assert readme_problems(readme) == [
        f"the README is 305 lines (at most {README_MOST_LINES})",
        f"the README's first {README_HEAD_LINES} lines lack `{FIRST_COMMANDS[0]}`"]
