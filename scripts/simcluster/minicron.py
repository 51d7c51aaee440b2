"""The stand-in daemons' own small cron and path code, written apart from the controller's so that
a bug in the controller's schedule or path rules cannot hide behind the same bug in its test
double. It covers what the simulated cluster and the tests use: 5 fields, or 6 with seconds
first; ``*``, ``?``, numbers, ranges, steps, lists, month and weekday names; ``@hourly``-style
descriptors; ``@every <n>s|m|h``; UTC only.
"""

from __future__ import annotations

import posixpath
from datetime import UTC, datetime, timedelta

ROOT = "/data/lain/volumes"
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_NAMES = {**{m: i + 1 for i, m in enumerate(_MONTHS)}, **{d: i for i, d in enumerate(_DAYS)}}
_BOUNDS = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]
_DESCRIPTORS = {"@yearly": "0 0 0 1 1 *", "@annually": "0 0 0 1 1 *", "@monthly": "0 0 0 1 * *",
                "@weekly": "0 0 0 * * 0", "@daily": "0 0 0 * * *", "@midnight": "0 0 0 * * *",
                "@hourly": "0 0 * * * *"}


def volume_path(app: str, proc: str, instance: int, volume: str) -> str:
    """``/data/lain/volumes/<app>/<proc>/<n>/<volume>`` with the volume's slashes collapsed."""
    return posixpath.normpath(f"{ROOT}/{app}/{proc}/{instance}/{volume.strip('/')}")


def archive(app: str, proc: str, instance: int, volume: str) -> str:
    """The backup name stem: the volume path below the root, ``/`` replaced by ``-``."""
    return volume_path(app, proc, instance, volume)[len(ROOT) + 1:].replace("/", "-")


class Spec:
    """A parsed spec; ``ValueError`` for anything the daemon would drop."""

    def __init__(self, spec: str) -> None:
        text = spec.strip()
        self.every: timedelta | None = None
        if text.startswith("@every "):
            amount = text[len("@every "):].strip()
            units = {"s": 1, "m": 60, "h": 3600}
            if not amount[:-1].isdigit() or amount[-1:] not in units:
                raise ValueError(f"unsupported @every {amount!r}")
            self.every = timedelta(seconds=int(amount[:-1]) * units[amount[-1]])
            return
        text = _DESCRIPTORS.get(text, text)
        fields = text.split()
        if len(fields) == 5:
            fields = ["0", *fields]
        if len(fields) != 6:
            raise ValueError(f"{spec!r} does not have 5 or 6 fields")
        self.sets = [_field(f, lo, hi) for f, (lo, hi) in zip(fields, _BOUNDS, strict=True)]
        self.both_days = fields[3] not in ("*", "?") and fields[5] not in ("*", "?")

    def _matches_day(self, t: datetime) -> bool:
        dom, dow = t.day in self.sets[3], (t.isoweekday() % 7) in self.sets[5]
        return (dom or dow) if self.both_days else (dom and dow)

    def next_after(self, when: datetime) -> datetime | None:
        """The first firing strictly after ``when`` (UTC), within five years."""
        if self.every is not None:
            return when + self.every
        t = when.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        end = t + timedelta(days=5 * 366)
        while t < end:
            if t.month not in self.sets[4]:
                t = (t.replace(day=1, hour=0, minute=0, second=0) + timedelta(days=32)).replace(day=1)
            elif not self._matches_day(t):
                t = t.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif t.hour not in self.sets[2]:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
            elif t.minute not in self.sets[1]:
                t = t.replace(second=0) + timedelta(minutes=1)
            elif t.second not in self.sets[0]:
                t += timedelta(seconds=1)
            else:
                return t
        return None


def _field(text: str, lo: int, hi: int) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        body, _, step = part.partition("/")
        if body in ("*", "?"):
            start, stop = lo, hi
        else:
            first, _, last = body.partition("-")
            start = _number(first)
            stop = _number(last) if last else (hi if step else start)
        if start < lo or stop > hi or start > stop or (step and not step.isdigit()) or step == "0":
            raise ValueError(f"field {text!r} out of range {lo}-{hi}")
        out.update(range(start, stop + 1, int(step or 1)))
    return out


def _number(text: str) -> int:
    if text.lower() in _NAMES:
        return _NAMES[text.lower()]
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{text!r} is not a number")
    return int(text)


def valid(spec: str) -> bool:
    try:
        Spec(spec)
    except ValueError:
        return False
    return True
