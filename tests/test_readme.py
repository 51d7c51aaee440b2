"""The README's tables stay true to the code: every file it names exists, every module is in its
layout table, and every v2 route is in its API table."""

from __future__ import annotations

import re

from app import app
from tests.reference import ROOT

README = (ROOT / "README.md").read_text()


def _norm(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_every_file_the_readme_names_exists():
    named = set(re.findall(r"`((?:chalicelib|scripts|tests)/[\w/.-]+\.(?:py|j2|html|js|css))`", README))
    assert named and not {p for p in named if not (ROOT / p).is_file()}


def test_every_module_is_in_the_layout_table():
    layout = set(re.findall(r"^\| `([\w/.-]+)` \|", README, re.M))
    modules = {str(p.relative_to(ROOT)) for p in [*(ROOT / "chalicelib").rglob("*.py"),
                                                  *(ROOT / "scripts").glob("*.py")]
               if p.name != "__init__.py"}
    assert modules <= layout, modules - layout


def test_every_v2_route_is_in_the_api_table():
    rows = " ".join(re.findall(r"^\| `(?:GET|POST|PUT)(?:[^|\\]|\\.)*\|", README, re.M))
    documented = {f"{m} {_norm(p)}" for m, p in re.findall(r"(GET|POST|PUT) (/[^\s`\[,]*)", rows)}
    routes = {f"{method} {_norm(path.removeprefix('/api/v2'))}" for path, methods in app.routes.items()
              for method in methods if path.startswith("/api/v2")}
    assert routes <= documented, routes - documented
