"""The daemon's idle-window rule: schedules that would make every later push hang are found."""

import pytest

from chalicelib.core import cron
from chalicelib.core.idlewindow import Load


def load(*specs: str) -> Load:
    out = Load()
    for spec in specs:
        out = out.add(cron.parse(spec))
    return out


@pytest.mark.parametrize("specs", [
    ("@every 1s",), ("@every 2s",), ("@every 5s",),
    ("*/3 * * * * *",), ("*/5 * * * * *",), ("* * * * * *",),
    ("*/2 * 3 * * *",),  # only in hour 3, but then every 2 s: pushes wait for the whole hour
    ("0/10 * * * * *", "5/10 * * * * *"),  # interleaving: every 5 s together
    ("@every 10s", "*/10 * * * * *"),  # some phase of the @every job interleaves
    ("@every 20s", "@every 30s", "*/7 * * * * *"),  # several @every: assume the worst
])
def test_blocked(specs):
    assert load(*specs).blocked


@pytest.mark.parametrize("specs", [
    (), ("0 3 * * *",), ("* * * * *",), ("0 0 1 * * *",), ("@every 6s",), ("@every 1m",),
    ("*/6 * * * * *",),  # gaps of 6 s: the daemon finds its second
    ("*/10 * * * * *", "5 * * * * *"),
    ("@every 30s",), ("@daily", "@hourly", "*/30 * * * *"),
])
def test_not_blocked(specs):
    assert not load(*specs).blocked


def test_schedules_that_cannot_matter_leave_the_load_unchanged():
    base = Load()
    assert base.add(cron.parse("0 3 * * *")) is base
    assert base.add(cron.parse("@every 2m")) is base
