"""The layers stay visible in the tree: what each package may import, and a core without I/O or
a clock. Read from the source (ast), so a new import that breaks a rule fails here first."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.reference import ROOT

PACKAGE = ROOT / "chalicelib"
# layer -> chalicelib modules (prefixes) it must never import
FORBIDDEN = {
    "chalicelib.core": ["chalicelib.edges", "chalicelib.usecases", "chalicelib.web",
                        "chalicelib.deps", "chalicelib.reconcile", "chalicelib.alerts",
                        "chalicelib.logs", "chalicelib.settings", "app"],
    "chalicelib.edges": ["chalicelib.usecases", "chalicelib.web", "chalicelib.deps",
                         "chalicelib.reconcile", "chalicelib.alerts", "app"],
    "chalicelib.usecases": ["chalicelib.web", "app"],
    "chalicelib.reconcile": ["chalicelib.web", "chalicelib.usecases", "chalicelib.alerts", "app"],
    "chalicelib.alerts": ["chalicelib.web", "app"],
    "chalicelib.web": ["chalicelib.edges", "chalicelib.usecases", "app"],
}
IO_LIBRARIES = ("requests", "urllib3", "boto3", "botocore", "socket", "http", "chalice", "subprocess")
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_imports_point_inwards(path):
    name = module_name(path)
    rules = [bad for layer, bad in FORBIDDEN.items() if name == layer or name.startswith(layer + ".")]
    wrong = sorted(i for i in imports(path) for bad in rules for b in bad
                   if i == b or i.startswith(b + "."))
    assert wrong == [], f"{name} imports {wrong}"


CORE = sorted((PACKAGE / "core").rglob("*.py"))


@pytest.mark.parametrize("path", CORE, ids=[module_name(p) for p in CORE])
def test_the_core_does_no_io_and_reads_no_clock(path):
    tree = ast.parse(path.read_text())
    io = sorted(i for i in imports(path) if i.split(".")[0] in IO_LIBRARIES)
    assert io == [], f"{module_name(path)} imports {io}"
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    clock = [ast.unparse(c.func) for c in calls
             if isinstance(c.func, ast.Attribute) and c.func.attr in CLOCK_CALLS]
    assert clock == [], f"{module_name(path)} reads the clock: {clock}"
    opened = [ast.unparse(c.func) for c in calls
              if isinstance(c.func, ast.Name) and c.func.id in ("open", "print", "input")]
    assert opened == [], f"{module_name(path)} does I/O: {opened}"


def test_the_rules_catch_a_violation(tmp_path):
    """The checks themselves can fail: a core module importing an edge is found."""
    bad = PACKAGE / "core" / "_probe_violation.py"
    bad.write_text("from chalicelib.edges import dynamo\nimport datetime\ndatetime.datetime.now()\n")
    try:
        with pytest.raises(AssertionError, match="imports"):
            test_imports_point_inwards(bad)
        with pytest.raises(AssertionError):
            test_the_core_does_no_io_and_reads_no_clock(bad)
    finally:
        bad.unlink()
