"""The stand-ins' own cron and path code against golden vectors (the reference daemon's answers
and DESIGN.md), so the test double is right on its own, not by sharing the controller's code."""

import ast
from datetime import UTC, datetime

import pytest

from scripts.simcluster import minicron
from scripts.simcluster.backupd import _fires_every_5s
from tests.reference import ROOT

NOW = datetime(2026, 11, 24, 23, 47, 10, tzinfo=UTC)


def test_paths_match_the_design():
    assert minicron.volume_path("hello", "hello.web.web", 1, "/var/log/hello") == \
        "/data/lain/volumes/hello/hello.web.web/1/var/log/hello"
    assert minicron.archive("hello", "hello.web.web", 1, "/var/log/hello") == \
        "hello-hello.web.web-1-var-log-hello"
    assert minicron.archive("mysql", "mysql.worker.master", 1, "var/lib/mysql/") == \
        "mysql-mysql.worker.master-1-var-lib-mysql"


@pytest.mark.parametrize("spec, expected", [  # "next" as the reference daemon answered at NOW
    ("0 3 * * *", datetime(2026, 11, 25, 3, 0, tzinfo=UTC)),
    ("*/30 * * * *", datetime(2026, 11, 25, 0, 0, tzinfo=UTC)),
    ("* * * * *", datetime(2026, 11, 24, 23, 48, tzinfo=UTC)),
    ("0 0 1 * * *", datetime(2026, 11, 25, 1, 0, tzinfo=UTC)),
    ("@daily", datetime(2026, 11, 25, tzinfo=UTC)),
    ("0 0 * * SUN", datetime(2026, 11, 29, tzinfo=UTC)),
    ("@every 90s", datetime(2026, 11, 24, 23, 48, 40, tzinfo=UTC)),
])
def test_next_runs(spec, expected):
    assert minicron.Spec(spec).next_after(NOW) == expected


@pytest.mark.parametrize("spec", ["0 0 5 0 0", "61 * * * *", "* * * *", "x * * * *", "*/0 * * * *"])
def test_specs_the_daemon_drops(spec):
    assert not minicron.valid(spec)


@pytest.mark.parametrize("spec, busy", [("@every 2s", True), ("@every 5s", True), ("@every 6s", False),
                                        ("*/3 * * * * *", True), ("* * * * * *", True),
                                        ("*/10 * * * * *", False), ("0 3 * * *", False)])
def test_schedules_that_keep_the_daemon_busy(spec, busy):
    assert _fires_every_5s(spec) is busy


def test_the_standins_borrow_nothing_from_the_product():
    """A stand-in sharing the controller's code would share its bugs, and pass them unseen."""
    for path in sorted((ROOT / "scripts" / "simcluster").glob("*.py")):
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [m for m in names if m.split(".")[0] in ("chalicelib", "app")], path.name
