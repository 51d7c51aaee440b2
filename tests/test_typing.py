"""The route table is type-checked: a handler that calls a use case wrongly fails mypy (the use
cases are loaded lazily at run time, but mypy sees real imports under ``TYPE_CHECKING``)."""

from __future__ import annotations

from mypy import api

from tests.reference import ROOT

RIGHT = 'return backups.list_backups(deps(), app_name, proc, r.query("volume") or None)'
BROKEN = 'return backups.list_backups(deps(), app_name, r.query("volume") or None)'


def check(path) -> tuple[str, int]:
    out, _, status = api.run([str(path), "--config-file", str(ROOT / "pyproject.toml"),
                              "--follow-imports", "silent"])
    return out, status


def test_mypy_catches_a_broken_call_in_the_route_table(tmp_path):
    source = (ROOT / "app.py").read_text()
    assert RIGHT in source
    (tmp_path / "app.py").write_text(source.replace(RIGHT, BROKEN))
    out, status = check(tmp_path / "app.py")
    assert status == 1 and 'Missing positional argument "proc" in call to "list_backups"' in out
    (tmp_path / "app.py").write_text(source)
    assert check(tmp_path / "app.py")[1] == 0
