"""The layering rules that keep sdaudit's core usable without Streamlit and fast to import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_under_sdaudit_imports_streamlit():
    modules = sorted((ROOT / "sdaudit").rglob("*.py"))
    assert len(modules) >= 8, "the package's modules were not found"
    offenders = [str(path.relative_to(ROOT)) for path in modules if "streamlit" in imported_modules(path)]
    assert offenders == []


def test_the_checker_would_see_a_streamlit_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import streamlit as st\n    from streamlit import session_state\n")
    assert "streamlit" in imported_modules(sample)


def test_store_and_cli_import_without_torch():
    """The store, scheme and CLI parser must not pay torch's (or scipy's, altair's) import time."""
    code = (
        "import sys; import sdaudit.store, sdaudit.scheme, sdaudit.cli.commands, sdaudit.files.runfolder, sdaudit.files.sheets; "
        "sdaudit.cli.commands.build_parser(); "
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'streamlit', 'scipy', 'altair') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_code_passes_the_projects_lint():
    """ruff.toml's rules: unused names, likely bugs, unsorted imports fail the suite."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


MAX_LINES = 400


def long_modules(root: Path, limit: int = MAX_LINES) -> list[str]:
    """Every module under root longer than limit lines, as 'path (lines)'."""
    found = []
    for path in sorted(root.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            found.append(f"{path.relative_to(root.parent)} ({lines} lines)")
    return found


def test_no_module_of_the_product_is_over_400_lines():
    """A module over ~400 lines does several jobs: split it by job, whatever its docstring says."""
    assert [*long_modules(ROOT / "sdaudit"), *long_modules(ROOT / "app"), *long_modules(ROOT / "pages")] == []


def test_the_size_check_sees_a_long_module_in_a_sub_package(tmp_path):
    package = tmp_path / "pkg" / "area"
    package.mkdir(parents=True)
    (package / "short.py").write_text("x = 1\n" * MAX_LINES)
    (package / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    assert long_modules(tmp_path / "pkg") == [f"pkg/area/long.py ({MAX_LINES + 1} lines)"]
