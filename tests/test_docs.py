"""The docs stay true to the code: every file they name exists, every module is in the layout
table, every v2 route in the API table, every setting in the settings table, every link lands
(on a page and a heading of this repository: nothing points outside it)."""

from __future__ import annotations

import re

from app import app
from scripts import render_config
from tests.reference import ROOT

README = (ROOT / "README.md").read_text()
DOCS = {p.name: p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))}
EVERYTHING = "\n".join([README, *DOCS.values()])


def _norm(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _anchor(heading: str) -> str:
    """A heading's anchor, as GitHub makes it."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_file_the_docs_name_exists():
    named = set(re.findall(r"`((?:chalicelib|scripts|tests)/[\w/.-]+\.(?:py|j2|html|js|css))`",
                           EVERYTHING))
    assert named and not {p for p in named if not (ROOT / p).is_file()}


def test_every_module_is_in_the_layout_table():
    layout = set(re.findall(r"^\| `([\w/.-]+)` \|", DOCS["design.md"], re.M))
    modules = {str(p.relative_to(ROOT)) for p in [*(ROOT / "chalicelib").rglob("*.py"),
                                                  *(ROOT / "scripts").glob("*.py")]
               if p.name != "__init__.py"}
    assert modules <= layout, modules - layout


def test_every_v2_route_is_in_the_api_table():
    rows = " ".join(re.findall(r"^\| `(?:GET|POST|PUT)(?:[^|\\]|\\.)*\|", DOCS["api.md"], re.M))
    documented = {f"{m} {_norm(p)}" for m, p in re.findall(r"(GET|POST|PUT) (/[^\s`\[,]*)", rows)}
    routes = {f"{method} {_norm(path.removeprefix('/api/v2'))}" for path, methods in app.routes.items()
              for method in methods if path.startswith("/api/v2")}
    assert routes <= documented, routes - documented


def test_every_setting_is_in_the_settings_table():
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", DOCS["operating.md"], re.M))
    settings = {f.metadata["env"] for f in render_config.fields(render_config.Settings)}
    assert settings <= documented, settings - documented


def test_every_link_lands_inside_the_repository():
    for name, text in {"README.md": README, **{f"docs/{n}": t for n, t in DOCS.items()}}.items():
        base = ROOT / name
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://")):
                assert target.startswith(("https://aws.github.io/chalice", "http://127.0.0.1")), \
                    f"{name} links outside: {target}"
                continue
            path, _, anchor = target.partition("#")
            page = (base.parent / path).resolve() if path else base
            assert page.is_file() and ROOT in page.parents, f"{name}: {target}"
            if anchor:
                headings = re.findall(r"^#+ (.+)$", page.read_text(), re.M)
                assert anchor in {_anchor(h) for h in headings}, f"{name}: {target}"
    assert "../shared" not in EVERYTHING and "DESIGN.md" not in EVERYTHING
