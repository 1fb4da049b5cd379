"""The architecture's rules, checked on the source (with ``ast``), each beside a test that shows its
checker catches a planted offender:

- SQL lives only in ``sdaudit/store/``: no string literal elsewhere in sdaudit/, app/ or pages/ holds
  an SQL statement, in any letter case;
- nothing outside ``sdaudit/store/`` reaches a private member of the store's classes (``_cursor``,
  ``_write``, ``_query``, ``_con``, or any other ``_name`` they define), by attribute or by name
  (``getattr(store, "_write")``), nor imports a store module's private name
  (``from sdaudit.store.runs import _x``): the store's door is ``Store``'s public methods and
  ``store.db.read``/``write``;
- no import circle among the modules of sdaudit/ and app/ (app imports sdaudit and itself),
  counting every import: at module level, inside functions, and under ``if TYPE_CHECKING``;
- raters never see a machine's answer (issue 25: anchoring would void the prediction-powered
  method): the code that draws the Annotate page's cards (the page, focus mode, the widgets, the
  rater-group questions, the modules they import, and every store method they call, with the store
  methods those call) neither imports the machine-label modules nor names ``MachineTables`` or its
  tables, nor holds SQL that reads them.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "sdaudit" / "store"

# An SQL statement, e.g. "SELECT ... FROM", "INSERT INTO", "INSERT OR REPLACE", "UPDATE jobs SET",
# "DELETE FROM", "TRUNCATE", "CREATE / ALTER / DROP TABLE", in any letter case. English prose
# ("Select a model from the list, then update the settings", "truncate the prompt") does not match:
# in upper case any SELECT ... FROM counts, as this project writes SQL; in lower or mixed case a
# SELECT counts when its shape is SQL's (``*``, a function, a column list, or ``FROM table`` then a
# clause or the end), and a lower-case TRUNCATE only with TABLE.
SQL = re.compile(
    r"\bSELECT\s+\S.*\bFROM\b|\bTRUNCATE\s+\w+|\bDELETE\s+FROM\b|\bCOPY\s*\("
    r"|(?i:\bselect\s+(distinct\s+)?(\*|\d|(count|coalesce|sum|min|max|avg)\s*\()"
    r"|\bselect\s+[\w.]+(\s*,\s*[\w.*]+)+\s+from\b"
    r"|\bselect\s+[\w.]+\s+from\s+[\w.{}\"]+\s*(\bwhere\b|\bjoin\b|\bgroup\s+by\b|\border\s+by\b|\blimit\b|;|\)|$)"
    r"|\binsert\s+(or\s+(replace|ignore)\s+)?into\b|\binsert\s+or\s+replace\b|\bupdate\s+\w+\s+set\b"
    r"|\bdelete\s+from\s+[\w.{}\"]+\s*(\bwhere\b|;|\)|$)|\btruncate\s+table\b"
    r"|\b(create|alter|drop)\s+(or\s+replace\s+)?(temp(orary)?\s+)?(table|sequence|index|view)\b"
    r"|\bon\s+conflict\s*(\(|do\b))",
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


NAME_ACCESS = {"getattr", "setattr", "hasattr", "delattr", "attrgetter", "methodcaller"}


def private_names(paths: list[Path], private: set[str]) -> list[str]:
    """``file:line "name"`` of each reach to one of ``private`` by its name as a string:
    ``getattr(store, "_write")`` and the like, ``operator.attrgetter("_cursor")``."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if called not in NAME_ACCESS:
                continue
            for argument in node.args:
                if isinstance(argument, ast.Constant) and argument.value in private:
                    found.append((node.lineno, f'{path.name}:{node.lineno} "{argument.value}"'))
    return [where for _, where in sorted(found)]


def private_imports(paths: list[Path]) -> list[str]:
    """``file:line module._name`` of each import of a store module's private name
    (``from sdaudit.store.runs import _x``), or of a private store module itself."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[:2] == [
                    "sdaudit", "store"]:
                names = [alias.name for alias in node.names]
                found += [(node.lineno, f"{path.name}:{node.lineno} {node.module}.{name}") for name in names
                          if name.startswith("_") and not name.endswith("__")]
                if any(part.startswith("_") for part in node.module.split(".")):
                    found.append((node.lineno, f"{path.name}:{node.lineno} {node.module}"))
            elif isinstance(node, ast.Import):
                found += [(node.lineno, f"{path.name}:{node.lineno} {alias.name}") for alias in node.names
                          if alias.name.split(".")[:2] == ["sdaudit", "store"]
                          and any(part.startswith("_") for part in alias.name.split("."))]
    return [where for _, where in sorted(found)]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(*packages: Path) -> dict[str, set[str]]:
    """Each module of ``packages`` (folders side by side) -> those packages' modules it imports,
    anywhere in the file."""
    modules = {module_name(path, package.parent): path for package in packages for path in python_files(package)}

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


# The Annotate page's card-drawing code (pages/annotate.py and what it draws with), and what would let
# it show a machine's answer: the machine-label modules, their names, SQL reading their tables.
CARD_CODE = (ROOT / "pages" / "annotate.py", ROOT / "app" / "focus.py", ROOT / "app" / "widgets.py",
             ROOT / "app" / "rater_groups.py")
MACHINE_MODULES = ("sdaudit.machine", "sdaudit.store.machine")
MACHINE_NAMES = {"MachineTables", "MachineAnswer", "Labelling", "machine_labels", "labellings"}
MACHINE_SQL = re.compile(r"\b(from|join)\s+(machine_labels|labellings)\b", re.I)


def imported_files(paths: list[Path]) -> list[Path]:
    """``paths`` and the files of the sdaudit/ and app/ modules they import (anywhere in the file)."""
    graph = import_graph(ROOT / "sdaudit", ROOT / "app", ROOT / "pages")
    files = {module: path for module, path in ((module_name(path, ROOT), path) for path in
                                               python_files(ROOT / "sdaudit", ROOT / "app", ROOT / "pages"))}
    reached = {path.resolve() for path in paths}
    for path in paths:
        reached.update(files[target].resolve() for target in graph.get(module_name(path, ROOT), ()) if target in files)
    return sorted(reached)


def machine_reads(sources: dict[str, str]) -> list[str]:
    """``where:line what`` for each import of a machine-label module, each use of a machine-label name
    and each SQL string reading their tables in ``sources`` (a label -> Python source); docstrings
    (which may explain the rule) are not code."""
    found = []
    for where, source in sources.items():
        tree = ast.parse(source)
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            line = getattr(node, "lineno", 0)
            if isinstance(node, ast.Import):
                found += [(line, f"{where}:{line} import {alias.name}") for alias in node.names
                          if alias.name.startswith(MACHINE_MODULES)]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                module = node.module or ""
                found += [(line, f"{where}:{line} from {module} import {alias.name}") for alias in node.names
                          if module.startswith(MACHINE_MODULES) or f"{module}.{alias.name}".startswith(MACHINE_MODULES)
                          or alias.name in MACHINE_NAMES]
            elif isinstance(node, ast.Name) and node.id in MACHINE_NAMES:
                found.append((line, f"{where}:{line} {node.id}"))
            elif isinstance(node, ast.Attribute) and node.attr in MACHINE_NAMES:
                found.append((line, f"{where}:{line} .{node.attr}"))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings \
                    and MACHINE_SQL.search(node.value):
                found.append((line, f"{where}:{line} SQL"))
    return [text for _, text in sorted(set(found))]


def methods_reached(paths: list[Path], classes: tuple[type, ...]) -> dict[str, str]:
    """The source of every method of ``classes`` that ``paths`` call (``anything.name(...)``), and of
    the methods of ``classes`` those call on ``self``, by ``Class.name``."""
    names = {node.func.attr for path in paths for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
    sources: dict[str, str] = {}
    todo = sorted(names)
    while todo:
        name = todo.pop()
        for cls in classes:
            member = inspect.getattr_static(cls, name, None)
            member = getattr(member, "__func__", member)  # a classmethod or staticmethod's function
            if not inspect.isfunction(member) or f"{cls.__name__}.{name}" in sources:
                continue
            source = textwrap.dedent(inspect.getsource(member))
            sources[f"{cls.__name__}.{name}"] = source
            todo += [node.attr for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Attribute)
                     and isinstance(node.value, ast.Name) and node.value.id == "self"]
    return sources


# -- the rules ------------------------------------------------------------------------------------


def test_no_sql_outside_the_store():
    """sdaudit/, app/, pages/ and streamlit_app.py. tests/ and benchmarks/ are left out on purpose:
    tests build stores as an older sdaudit left them and plant rows the store's API refuses
    (tests/helpers.py writes an older store's tables), and benchmarks/queue_speed.py times the old
    query against the store's new one; neither is the app's own code."""
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
    assert private_names(paths, private) == []
    assert private_imports(paths) == []


def test_no_import_circle_among_sdauditss_modules():
    graph = import_graph(ROOT / "sdaudit")
    assert "sdaudit.store.runs" in graph["sdaudit.store"], "the graph was not read"
    assert circles(graph) == []


def test_no_import_circle_among_the_apps_and_sdauditss_modules():
    graph = import_graph(ROOT / "sdaudit", ROOT / "app")
    assert {"app.resources", "sdaudit.store"} <= graph["app.focus"] | graph["app.resources"], "app/ was not read"
    assert circles(graph) == []


def test_the_annotate_pages_cards_never_read_a_machine_answer():
    from sdaudit.store import Store
    from sdaudit.store.team import Team

    files = imported_files(list(CARD_CODE))
    assert {ROOT / "sdaudit" / "store" / "team.py", ROOT / "app" / "resources.py"} <= set(files), "imports not read"
    assert machine_reads({path.name: path.read_text(encoding="utf-8") for path in files}) == []
    methods = methods_reached(list(CARD_CODE), (Store, Team))
    assert {"Store.annotation_queue", "Store.due_repeats", "Store.save_annotation"} <= set(methods), "calls not read"
    assert machine_reads(methods) == []
    assert not any(hasattr(Store, name) for name in MACHINE_NAMES), "the store a page opens has no door to them"


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


def test_the_sql_checker_sees_sql_in_any_case_and_every_statement(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text(
        'HELP = "Select a model from the list, then update the settings."\n'  # 1 prose
        'TIP = "Truncate the prompt, or delete from the list what you do not need."\n'  # 2 prose
        'A = "select image_id, rater from annotations"\n'  # 3
        'B = "select * from jobs"\n'  # 4
        'C = f"select rater from {table} where image_id = ?"\n'  # 5
        'D = "Insert Or Replace INTO jobs VALUES (?)"\n'  # 6
        'E = "insert or replace into jobs values (?)"\n'  # 7
        'F = "TRUNCATE jobs"\n'  # 8
        'G = "truncate table jobs"\n'  # 9
        'H = "drop table jobs"\n'  # 10
        'I = "Alter Table jobs ADD COLUMN x INTEGER"\n'  # 11
        'J = "delete from jobs where id = ?"\n'  # 12
        'K = "update jobs set status = ?"\n'  # 13
        'L = "select count(*) from images"\n'  # 14
        'M = "insert into x values (1) on conflict do nothing"\n'  # 15
        'N = "Pick the images you want: select images from the run."\n'  # 16 prose
    )
    assert sql_strings([planted]) == sorted(f"{tmp_path.name}/planted.py:{line}" for line in range(3, 16))


def test_the_private_member_checker_sees_a_reach_by_name_and_a_private_import(tmp_path):
    private = {"_write", "_cursor", "_run_insert"}
    outside = tmp_path / "page.py"
    outside.write_text(
        "import operator\n"
        "from sdaudit.store.runs import STUDY_IMAGES, _hidden_rule\n"
        "from sdaudit.store import Store\n"
        "import sdaudit.store._private\n"
        "def page(store):\n"
        "    write = getattr(store, '_write')\n"
        "    hasattr(store.runs, '_run_insert'), getattr(store, 'db'), getattr(store, '_other')\n"
        "    return operator.attrgetter('_cursor')(store)\n")
    assert private_names([outside], private) == ['page.py:6 "_write"', 'page.py:7 "_run_insert"',
                                                 'page.py:8 "_cursor"']
    assert private_imports([outside]) == ["page.py:2 sdaudit.store.runs._hidden_rule",
                                          "page.py:4 sdaudit.store._private"]


def test_the_circle_checker_sees_circles_across_the_app_and_the_package(tmp_path):
    for path, text in {
        "pkg/__init__.py": "",
        "pkg/core.py": "thing = 1\n",
        "face/__init__.py": "",
        "face/page.py": "from pkg.core import thing\ndef draw():\n    from face import widgets\n",
        "face/widgets.py": "import face.page\nfrom pkg import core\n",
    }.items():
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_text(text)
    graph = import_graph(tmp_path / "pkg", tmp_path / "face")
    assert graph["face.page"] == {"pkg.core", "face.widgets"} and graph["face.widgets"] == {"face.page", "pkg.core"}
    assert circles(graph) == [["face.page", "face.widgets"]]
    assert circles(import_graph(tmp_path / "pkg")) == []


def test_the_machine_answer_checker_sees_an_import_a_name_and_a_store_method_that_reads_them(tmp_path):
    card = tmp_path / "card.py"
    card.write_text(
        '"""Cards. Never shows machine_labels (a docstring explains; it is no code)."""\n'
        "from sdaudit.store.machine import MachineTables\n"
        "from sdaudit import machine\n"
        "SCHEMA = 'CREATE TABLE machine_labels (x INTEGER)'\n"
        "def draw(store, image_id):\n"
        "    hint = store.db.read('SELECT gender FROM machine_labels WHERE image_id = ?', [image_id])\n"
        "    return store.queue_with_hints(image_id), hint\n")
    assert machine_reads({"card.py": card.read_text()}) == [
        "card.py:2 from sdaudit.store.machine import MachineTables", "card.py:3 from sdaudit import machine",
        "card.py:6 SQL"]
    planted = tmp_path / "planted_store.py"
    planted.write_text(
        "class PlantedStore:\n"
        "    def queue_with_hints(self, image_id):\n"
        "        return self.hints(image_id)\n"
        "    def hints(self, image_id):\n"
        "        return self.db.read('SELECT m.gender FROM images i JOIN machine_labels m USING (image_id)')\n")
    spec = importlib.util.spec_from_file_location("planted_store", planted)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    methods = methods_reached([card], (module.PlantedStore,))
    assert set(methods) == {"PlantedStore.queue_with_hints", "PlantedStore.hints"}, "followed through self"
    assert machine_reads(methods) == ["PlantedStore.hints:2 SQL"]  # lines of the method's own source
