"""The architecture's rules, checked on the source (with ``ast``), each beside a test that shows its
checker catches a planted offender:

- SQL lives only in ``sdaudit/store/``: no string literal elsewhere in sdaudit/, app/ or pages/ holds
  an SQL statement;
- nothing outside ``sdaudit/store/`` reaches a private member of the store's classes (``_cursor``,
  ``_write``, ``_query``, ``_con``, or any other ``_name`` they define): the store's door is
  ``Store``'s public methods and ``store.db.read``/``write``;
- no import circle among sdaudit's modules, counting every import: at module level, inside
  functions, and under ``if TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "sdaudit" / "store"

# An SQL statement as this project writes it (upper-case keywords), e.g. "SELECT ... FROM",
# "INSERT INTO", "UPDATE jobs SET", "CREATE TABLE"; English prose ("select a model") does not match.
SQL = re.compile(
    r"\bSELECT\s+\S.*\bFROM\b|\bSELECT\s+(count|coalesce|\d)|\bINSERT\s+INTO\b|\bUPDATE\s+\w+\s+SET\b"
    r"|\bDELETE\s+FROM\b|\b(CREATE|ALTER|DROP)\s+(TABLE|SEQUENCE|INDEX|VIEW)\b|\bCOPY\s*\(|\bON\s+CONFLICT\b",
    re.S,
)
# The private members every store class is known to have had, plus whatever ``_name`` they define now.
KNOWN_PRIVATE = {"_cursor", "_write", "_query", "_con"}


def python_files(*folders: Path, leave_out: Path | None = None) -> list[Path]:
    found = []
    for folder in folders:
        paths = [folder] if folder.is_file() else sorted(folder.rglob("*.py"))
        found += [path for path in paths if leave_out is None or leave_out not in path.parents]
    return found


def string_literals(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string literal with its line; an f-string's text with ``{}`` where its values go."""
    texts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            texts.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            text = "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
            texts.append((node.lineno, text))
    return texts


def sql_strings(paths: list[Path]) -> list[str]:
    """``file:line`` of each string literal that holds an SQL statement."""
    found = set()
    for path in paths:
        for line, text in string_literals(ast.parse(path.read_text(encoding="utf-8"))):
            if SQL.search(text):
                found.add(f"{path.parent.name}/{path.name}:{line}")
    return sorted(found)


def private_members(store_folder: Path) -> set[str]:
    """The ``_name``s (not dunders) that the store's classes define: methods and ``self._x`` attributes."""
    names = set(KNOWN_PRIVATE)
    for path in python_files(store_folder):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(inner.name)
                elif isinstance(inner, ast.Attribute) and isinstance(inner.ctx, ast.Store):
                    names.add(inner.attr)
    return {name for name in names if name.startswith("_") and not name.endswith("__")}


def private_calls(paths: list[Path], private: set[str]) -> list[str]:
    """``file:line .name`` of each access to one of ``private`` on anything but ``self`` or ``cls``."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr in private
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                found.append((node.lineno, node.col_offset, f"{path.name}:{node.lineno} .{node.attr}"))
    return [where for *_, where in sorted(found)]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path) -> dict[str, set[str]]:
    """Each module of ``package`` -> the package's modules it imports, anywhere in the file."""
    root = package.parent
    modules = {module_name(path, root): path for path in python_files(package)}

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's own package upwards
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    here = here[:len(here) - (node.level - 1)]
                    base = ".".join([*here, base] if base else here)
                # ``from package import module`` imports that module; ``from module import name`` the module
                targets.update(known(f"{base}.{alias.name}") if f"{base}.{alias.name}" in modules else known(base)
                               for alias in node.names)
        graph[name] = {target for target in targets if target and target != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


# -- the rules ------------------------------------------------------------------------------------


def test_no_sql_outside_the_store():
    paths = python_files(ROOT / "sdaudit", ROOT / "app", ROOT / "pages", ROOT / "streamlit_app.py", leave_out=STORE)
    assert len(paths) >= 40, "the modules were not found"
    assert sql_strings(python_files(STORE)), "the checker finds the store's own SQL"
    assert sql_strings(paths) == []


def test_nothing_outside_the_store_reaches_its_private_members():
    private = private_members(STORE)
    assert {"_cursor", "_write_lock", "_run_insert"} <= private, "the store's private names were not read"
    paths = python_files(ROOT / "sdaudit", ROOT / "app", ROOT / "pages", ROOT / "tests", ROOT / "benchmarks",
                         ROOT / "streamlit_app.py", leave_out=STORE)
    assert private_calls(paths, private) == []


def test_no_import_circle_among_sdauditss_modules():
    graph = import_graph(ROOT / "sdaudit")
    assert "sdaudit.store.runs" in graph["sdaudit.store"], "the graph was not read"
    assert circles(graph) == []


# -- each checker catches a planted offender ------------------------------------------------------


def test_the_sql_checker_sees_sql_in_plain_and_f_strings(tmp_path):
    (tmp_path / "pkg").mkdir()
    planted = tmp_path / "pkg" / "planted.py"
    planted.write_text(
        'HELP = "Select a model from the list, then update the settings."\n'  # prose: not SQL
        'def rows(store, table):\n'
        '    return store.db.read(f"SELECT * FROM {table} WHERE x = ?", [1])\n'
        'UPSERT = ("INSERT INTO jobs (kind) VALUES (?) "\n'
        '          "ON CONFLICT DO NOTHING")\n'
        'def bump(cursor):\n'
        '    cursor.execute("UPDATE jobs SET status = ?", ["done"])\n'
    )
    assert sql_strings([planted]) == ["pkg/planted.py:3", "pkg/planted.py:4", "pkg/planted.py:7"]


def test_the_private_member_checker_sees_a_reach_into_the_store(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "tables.py").write_text(
        "class Tables:\n    def __init__(self):\n        self._hidden = 1\n\n    def _helper(self):\n"
        "        return self._hidden\n")
    private = private_members(store)
    assert {"_hidden", "_helper", "_write"} <= private and "__init__" not in private
    outside = tmp_path / "page.py"
    outside.write_text(
        "def page(store):\n"
        "    store._write(lambda cursor: None)\n"
        "    with store._cursor() as cursor:\n"
        "        pass\n"
        "    return store.db.read('x'), store._helper(), self_like._hidden\n")
    assert private_calls([outside], private) == ["page.py:2 ._write", "page.py:3 ._cursor", "page.py:5 ._helper",
                                                 "page.py:5 ._hidden"]


def test_the_circle_checker_sees_circles_through_function_and_type_checking_imports(tmp_path):
    package = tmp_path / "pkg"
    (package / "inner").mkdir(parents=True)
    for path, text in {
        "__init__.py": "",
        "a.py": "def late():\n    from pkg.inner import b\n",
        "inner/__init__.py": "from pkg.inner.b import thing\n",
        "inner/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\nthing = 1\n",
        "c.py": "from . import a\nfrom .inner import b\n",  # relative imports: no circle through c
    }.items():
        (package / path).write_text(text)
    graph = import_graph(package)
    assert graph["pkg.c"] == {"pkg.a", "pkg.inner.b"}
    assert circles(graph) == [["pkg.a", "pkg.inner.b"]]
    (package / "a.py").write_text("import os\n")
    assert circles(import_graph(package)) == []
