"""Does a node's set of schedules leave its daemon a moment to accept a new job list?

backupd applies a pushed list only when its nearest job is at least ``HOLD`` seconds away, and
checks that once a second (``crond.Update``). Schedules that together fire every ``HOLD`` seconds
or more often leave no such moment: the list is accepted once, and every later push to that node
hangs forever. Such schedules are refused before they are pushed. Pure: no I/O, no clock.

What counts, per minute (a job firing at most once a minute, in some minutes only, can hold a push
up for a few seconds but never forever):

* every node's ``backup_expire`` job fires at second 0 of every minute;
* a cron schedule that fires in every minute, or more than once a minute, fires at its seconds;
* ``@every d`` with d under a minute fires every d seconds, at a phase nobody knows in advance.

A set is *blocked* when no gap between consecutive firings is longer than ``HOLD`` seconds. With at
most 10 firings a minute the mean gap is at least 6 s, so some gap is longer than ``HOLD``: the
common case needs no search. Otherwise the seconds are checked exactly; with one ``@every`` every
whole-second phase is tried; with several, the worst is assumed.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from chalicelib.core.cron import Schedule

HOLD = 5
_CHEAP = 60 // (HOLD + 1)  # firings per minute that always leave a gap over HOLD


@dataclass(frozen=True)
class Load:
    """What a node's schedules put on its daemon's scheduler, per minute."""

    seconds: frozenset[int] = frozenset({0})  # the expire job, on every node with jobs
    periods: tuple[int, ...] = ()  # @every delays under a minute, in seconds

    def add(self, schedule: Schedule) -> Load:
        """This load with ``schedule`` added (unchanged if it cannot matter)."""
        if not matters(schedule):
            return self
        if schedule.every is not None:
            return Load(self.seconds, (*self.periods, int(schedule.every.total_seconds())))
        return Load(self.seconds | schedule.seconds, self.periods)

    @property
    def blocked(self) -> bool:
        """True if the daemon may never be ``HOLD`` seconds away from its next job."""
        if any(p <= HOLD for p in self.periods):
            return True
        if len(self.seconds) + sum(60 / p for p in self.periods) <= _CHEAP:
            return False
        if not self.periods:
            return _max_gap(sorted(self.seconds), 60) <= HOLD
        if len(self.periods) > 1:
            return True
        period = self.periods[0]
        span = math.lcm(60, period)
        fixed = [s + minute for minute in range(0, span, 60) for s in self.seconds]
        return any(_max_gap(sorted({*fixed, *range(phase, span, period)}), span) <= HOLD
                   for phase in range(period))


def matters(schedule: Schedule) -> bool:
    """Can ``schedule`` take a daemon's idle moments? Only if it fires every minute or more often."""
    if schedule.every is not None:
        return schedule.every.total_seconds() < 60
    return schedule.every_minute or len(schedule.seconds) > 1


def _max_gap(times: list[int], span: int) -> int:
    """The longest gap between consecutive sorted ``times`` on a circle of length ``span``."""
    if not times:
        return span
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return max([*gaps, times[0] + span - times[-1]])
