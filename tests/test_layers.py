"""The layers stay visible in the tree, read from the source (ast), so an import that breaks a rule
fails here first:

* the core imports no other layer, does no I/O and reads no clock;
* edges import the core only (and the settings, errors, logs);
* the web layer never imports edges or use cases (it reaches them only through ``Deps``);
* a use case never imports a sibling: only the two composers (``schedule``, ``notify``) import
  the concerns they wire, and only ``app.py`` imports a composer.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.reference import ROOT

PACKAGE = ROOT / "chalicelib"
COMPOSERS = ("chalicelib.usecases.schedule", "chalicelib.usecases.notify")
# layer -> chalicelib modules (prefixes) it must never import
FORBIDDEN = {
    "chalicelib.core": ["chalicelib.edges", "chalicelib.usecases", "chalicelib.web",
                        "chalicelib.deps", "chalicelib.logs", "chalicelib.settings", "app"],
    "chalicelib.edges": ["chalicelib.usecases", "chalicelib.web", "chalicelib.deps", "app"],
    "chalicelib.usecases": ["chalicelib.web", "app"],
    "chalicelib.web": ["chalicelib.edges", "chalicelib.usecases", "app"],
    "chalicelib.deps": ["chalicelib.usecases", "chalicelib.web", "app"],
}
IO_LIBRARIES = ("requests", "urllib3", "boto3", "botocore", "socket", "http", "chalice", "subprocess")
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def imports(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def layer_violations(name: str, source: str) -> list[str]:
    """The imports of module ``name`` (its ``source``) that break the layer rules."""
    rules = [bad for layer, bad in FORBIDDEN.items() if name == layer or name.startswith(layer + ".")]
    wrong = {i for i in imports(source) for bad in rules for b in bad if i == b or i.startswith(b + ".")}
    if name.startswith("chalicelib.usecases.") and name not in COMPOSERS:
        siblings = {i for i in imports(source) if i.startswith("chalicelib.usecases.")
                    and i.split(".")[2] != name.split(".")[2]}
        wrong |= siblings  # a concern never imports another concern, nor a composer
    if name != "app":  # only the route table imports a composer
        wrong |= {i for i in imports(source) if _is_composer(i)}
    return sorted(wrong)


def _is_composer(imported: str) -> bool:
    return any(imported == c or imported.startswith(c + ".") for c in COMPOSERS)


def io_and_clock(source: str) -> list[str]:
    """The I/O libraries, clock reads and file or terminal I/O of a core module's ``source``."""
    tree = ast.parse(source)
    found = [i for i in imports(source) if i.split(".")[0] in IO_LIBRARIES]
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    found += [ast.unparse(c.func) for c in calls
              if isinstance(c.func, ast.Attribute) and c.func.attr in CLOCK_CALLS]
    found += [ast.unparse(c.func) for c in calls
              if isinstance(c.func, ast.Name) and c.func.id in ("open", "print", "input")]
    return sorted(found)


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_imports_point_inwards(path):
    assert layer_violations(module_name(path), path.read_text()) == []


CORE = sorted((PACKAGE / "core").rglob("*.py"))


@pytest.mark.parametrize("path", CORE, ids=[module_name(p) for p in CORE])
def test_the_core_does_no_io_and_reads_no_clock(path):
    assert io_and_clock(path.read_text()) == []


@pytest.mark.parametrize("name, source", [
    ("chalicelib.core.x", "from chalicelib.edges import dynamo\n"),
    ("chalicelib.web.x", "from chalicelib.usecases import backups\n"),
    ("chalicelib.usecases.operations", "from chalicelib.usecases.backups import locate\n"),
    ("chalicelib.usecases.health", "from chalicelib.usecases import schedule\n"),
    ("chalicelib.edges.x", "def f():\n    from chalicelib.deps import get_deps\n"),
])
def test_the_rules_catch_a_violation(name, source):
    """The checks themselves can fail (on source text: nothing is written into the tree)."""
    assert layer_violations(name, source)


def test_the_io_check_catches_a_clock_read():
    assert io_and_clock("import datetime\ndatetime.datetime.now()\nimport boto3\n") == \
        ["boto3", "datetime.datetime.now"]


def test_the_composers_import_concerns_and_only_app_imports_them():
    for composer in COMPOSERS:
        path = ROOT / Path(*composer.split(".")).with_suffix(".py")
        assert any(i.startswith("chalicelib.usecases") for i in imports(path.read_text()))
    importers = [module_name(p) for p in MODULES if any(map(_is_composer, imports(p.read_text())))]
    assert importers == []
    assert set(COMPOSERS) <= imports((ROOT / "app.py").read_text())


def test_every_lazily_named_module_exists_and_is_what_mypy_sees():
    """app.py names its use cases twice: real imports under TYPE_CHECKING (what mypy checks the
    handlers against) and LazyModule strings (what runs): the same modules, each importable."""
    import importlib

    source = (ROOT / "app.py").read_text()
    lazy = dict(re.findall(r'^    (\w+) = LazyModule\("([\w.]+)"\)', source, re.M))
    typed = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.module != "chalicelib.deps":
                    typed |= {a.asname or a.name: f"{stmt.module}.{a.name}" for a in stmt.names}
    assert lazy == typed and lazy
    for module in lazy.values():
        importlib.import_module(module)
