"""Schedules exactly as the daemons read them (robfig/cron v2), with next/previous runs via croniter.

The daemon silently drops a job whose spec it cannot parse, so the controller validates every spec
with the daemon's own rules and reports the failure instead. Accepted forms:

* 5 fields ``min hour dom month dow`` or 6 fields ``sec min hour dom month dow`` (seconds *first*;
  croniter puts seconds last, so specs are translated, never handed over as written);
* ``@yearly @annually @monthly @weekly @daily @midnight @hourly`` and ``@every <Go duration>``;
* an optional ``TZ=<zone> `` prefix.

Ranges are robfig's: ``*``/``?``, ``a``, ``a-b``, with ``/step`` (``a/step`` means ``a-max/step``),
comma lists, month names JAN-DEC and weekday names SUN-SAT. A field written as ``*`` or ``?`` is a
"star" field: as in robfig, day-of-month and day-of-week are OR-ed only when neither is a star.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

EXPIRE_RE = re.compile(r"^([0-9]+)([mhd])$")
_EXPIRE_UNITS = {"m": 60, "h": 3600, "d": 86400}

_MONTHS = {n: i + 1 for i, n in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
_DAYS = {n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}

# (name, min, max, names) in robfig's 6-field order.
_FIELDS = (
    ("second", 0, 59, None),
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
)
FIELDS = _FIELDS

_DESCRIPTORS = {
    "@yearly": "0 0 0 1 1 *",
    "@annually": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0",
    "@daily": "0 0 0 * * *",
    "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}

_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
       "h": 3600 * 10**9}
_GO_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?(ns|us|µs|μs|ms|s|m|h)")
MAX_GO_DURATION_NS = 2**63 - 1  # Go's time.Duration is an int64 of nanoseconds
_NEVER = None


class ScheduleError(ValueError):
    """The daemon would reject this spec; the message says why, in robfig's words where it has them."""


@dataclass(frozen=True)
class Schedule:
    """A parsed spec: either a cron expression for croniter or a constant ``@every`` delay."""

    spec: str
    tz: ZoneInfo | timezone
    expression: str = ""  # croniter form: "min hour dom month dow sec", explicit value lists
    day_or: bool = False  # robfig: OR day-of-month and day-of-week unless either is a star field
    every: timedelta | None = None
    seconds: frozenset[int] = frozenset()  # seconds of the minute it fires at (cron forms)
    every_minute: bool = False  # minute, hour, day, month and weekday all unrestricted
    values: tuple[tuple[int, ...], ...] = ()  # each field's values, in robfig's 6-field order
    stars: tuple[bool, ...] = ()  # which fields were written as ``*`` or ``?``
    # what croniter walks: ``expression``, or a schedule whose runs are this one's moved back by
    # ``shift`` seconds (see :func:`_parse_cached`)
    walk_expression: str = ""
    shift: int = 0

    def next_after(self, when: datetime) -> datetime | None:
        """First run strictly after ``when`` (aware datetime), or None if the spec never fires."""
        if self.every is not None:
            return _truncate_seconds(when) + self.every
        return self._run(when, forward=True)

    def prev_before(self, when: datetime) -> datetime | None:
        """Latest run strictly before ``when``. ``@every`` runs are counted from ``when`` itself."""
        if self.every is not None:
            return _truncate_seconds(when) - self.every
        return self._run(when, forward=False)

    def _run(self, when: datetime, *, forward: bool) -> datetime | None:
        shift = timedelta(seconds=self.shift)
        asked = when.astimezone(UTC) - shift  # the question in the walked schedule's time
        key = (self.walk_expression or self.expression, self.day_or, str(self.tz), forward)
        with _WALKERS_LOCK:
            run = _recall(key, asked)
            if run is None:
                run = self._walk(key[0], asked, forward=forward)
                if run is not None:
                    _remember(key, asked, run)
        return None if run is None else run + shift

    def _walk(self, expression: str, when: datetime, *, forward: bool) -> datetime | None:
        # imported here: validating a spec (every listing and job route) needs no croniter, only
        # evaluating one does (freshness, the retention floor), so only those pay for its import
        from croniter.croniter import CroniterBadDateError

        walker = _walker(expression, self.day_or, when.astimezone(self.tz))
        try:
            found: datetime = walker.get_next(datetime) if forward else walker.get_prev(datetime)
        except CroniterBadDateError:  # e.g. "0 0 30 2 *": valid for robfig, never fires
            return _NEVER
        return found.astimezone(UTC)


# Recent answers, per walked schedule and direction: [(asked, run)], meaning no run in (asked,
# run) forward, in (run, asked) backward. A cluster's items share few walked schedules and ask
# about nearly the same moments (now, now minus a grace and a run time, each moved by its shift).
_MEMO: dict[tuple[str, bool, str, bool], list[tuple[datetime, datetime]]] = {}


def _recall(key: tuple[str, bool, str, bool], asked: datetime) -> datetime | None:
    forward = key[3]
    for seen, run in _MEMO.get(key, ()):
        if (seen <= asked < run) if forward else (run < asked <= seen):
            return run
    return None


def _remember(key: tuple[str, bool, str, bool], asked: datetime, run: datetime) -> None:
    memo = _MEMO.get(key)
    if memo is None:
        if len(_MEMO) >= MAX_WALKERS:
            _MEMO.clear()
        memo = _MEMO[key] = []
    for index, (seen, known) in enumerate(memo):
        if known == run:  # one interval per run, as wide as the questions made it
            memo[index] = (min(seen, asked) if key[3] else max(seen, asked), run)
            return
    if len(memo) >= RECENT:
        del memo[0]
    memo.append((asked, run))


# croniter parses its expression on every construction (our expressions list every value: 270 us
# each, 22 s for the 40,000 items of a cluster's status); one iterator per expression is kept and
# moved to each new start instead. The lock keeps a threaded local server's requests apart.
RECENT = 8
_WALKERS: dict[tuple[str, bool], Any] = {}
_WALKERS_LOCK = threading.Lock()
MAX_WALKERS = 4096


def _walker(expression: str, day_or: bool, start: datetime) -> Any:
    from croniter import croniter

    key = (expression, day_or)
    walker = _WALKERS.get(key)
    if walker is None:
        if len(_WALKERS) >= MAX_WALKERS:
            _WALKERS.clear()
        walker = _WALKERS[key] = croniter(expression, start, day_or=day_or)
    else:
        walker.set_current(start, force=True)
    return walker


def _truncate_seconds(when: datetime) -> datetime:
    return when.replace(microsecond=0)


def parse(spec: str) -> Schedule:
    """Parse ``spec`` the way the daemon does; raise :class:`ScheduleError` where it would fail."""
    return _parse_cached(spec)


def validate(spec: str) -> str | None:
    """The reason the daemon would reject ``spec``, or None when it is valid."""
    try:
        parse(spec)
    except ScheduleError as e:
        return str(e)
    return None


@lru_cache(maxsize=4096)
def _parse_cached(spec: str) -> Schedule:
    text = spec.strip()
    if not text:
        raise ScheduleError("Empty spec string")
    tz: ZoneInfo | timezone = UTC
    if text.startswith("TZ="):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # few specs name a zone

        zone, _, text = text[3:].partition(" ")
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
            raise ScheduleError(f"Provided bad location {zone[:40]}") from None
        text = text.strip()
        if not text:
            raise ScheduleError("Empty spec string")
    if text.startswith("@"):
        if text.startswith("@every "):
            return Schedule(spec, tz, every=_parse_every(text[len("@every "):].strip()))
        if text not in _DESCRIPTORS:
            raise ScheduleError(f"Unrecognized descriptor: {text[:40]}")
        text = _DESCRIPTORS[text]
    fields = text.split()
    if len(fields) not in (5, 6):
        raise ScheduleError(f"Expected 5 or 6 fields, found {len(fields)}: {text[:60]}")
    if len(fields) == 5:
        fields = ["0", *fields]
    parsed = [_field_cached(raw, index) for index, raw in enumerate(fields)]
    values = tuple(p[0] for p in parsed)
    stars = tuple(p[1] for p in parsed)
    second, minute, hour, dom, month, dow = (p[2] for p in parsed)
    walk_expression, shift = f"{minute} {hour} {dom} {month} {dow} {second}", 0
    if tz is UTC and len(values[0]) == 1:
        # one second (and, below, one time of day): the runs are those of the same days at
        # 00:00:00 (or of the same minutes at second 0) moved by that time, so one croniter serves
        # every schedule that differs only by it (a spread or hashed cluster has thousands)
        shift = values[0][0]
        walk_expression = f"{minute} {hour} {dom} {month} {dow} 0"
        if len(values[1]) == 1 and len(values[2]) == 1:
            shift += values[1][0] * 60 + values[2][0] * 3600
            walk_expression = f"0 0 {dom} {month} {dow} 0"
    return Schedule(
        spec,
        tz,
        expression=f"{minute} {hour} {dom} {month} {dow} {second}",
        day_or=not (stars[3] or stars[5]),
        seconds=frozenset(values[0]),
        every_minute=all(len(v) == hi - lo + 1
                         for v, (_, lo, hi, _) in zip(values[1:], _FIELDS[1:], strict=True)),
        values=values,
        stars=stars,
        walk_expression=walk_expression,
        shift=shift,
    )


@lru_cache(maxsize=2048)
def _field_cached(raw: str, index: int) -> tuple[tuple[int, ...], bool, str]:
    """(sorted values, star, croniter text) of field ``index`` written ``raw``; few distinct."""
    name, lo, hi, names = _FIELDS[index]
    try:
        values, star = _parse_field(raw, lo, hi, names)
    except ScheduleError as e:
        raise ScheduleError(f"{name} {raw[:20]!r}: {e}") from None
    ordered = tuple(sorted(values))
    return ordered, star, ",".join(map(str, ordered))


def _parse_field(field: str, lo: int, hi: int, names: dict[str, int] | None) -> tuple[set[int], bool]:
    """Values of one field and whether it is a star field (robfig's starBit)."""
    values: set[int] = set()
    star = False
    for expr in field.split(","):
        range_and_step = expr.split("/")
        if len(range_and_step) > 2:
            raise ScheduleError(f"Too many slashes: {expr}")
        low_high = range_and_step[0].split("-")
        if low_high[0] in ("*", "?"):
            if len(low_high) != 1:
                raise ScheduleError(f"Too many hyphens: {expr}")
            start, end, star = lo, hi, True
        else:
            if len(low_high) > 2:
                raise ScheduleError(f"Too many hyphens: {expr}")
            start = _int_or_name(low_high[0], names)
            end = _int_or_name(low_high[1], names) if len(low_high) == 2 else start
        step = 1
        if len(range_and_step) == 2:
            step = _int_or_name(range_and_step[1], None)
            if step <= 0:
                raise ScheduleError(f"Step of range ({step}) must be positive")
            if len(low_high) == 1:
                end = hi  # "N/step" means "N-max/step"
        if start < lo:
            raise ScheduleError(f"Beginning of range ({start}) below minimum ({lo})")
        if end > hi:
            raise ScheduleError(f"End of range ({end}) above maximum ({hi})")
        if start > end:
            raise ScheduleError(f"Beginning of range ({start}) beyond end of range ({end})")
        values.update(range(start, end + 1, step))
    return values, star


def int_or_name(expr: str, names: dict[str, int] | None) -> int:
    """A field's number or name as robfig reads it (:class:`ScheduleError` if it is neither)."""
    return _int_or_name(expr, names)


def _int_or_name(expr: str, names: dict[str, int] | None) -> int:
    if names and expr.lower() in names:
        return names[expr.lower()]
    # ASCII digits only ("²".isdigit() is True), and few enough that int() stays cheap and sane
    if not (expr.isascii() and expr.isdigit()) or len(expr) > 9:
        raise ScheduleError(f"Failed to parse int from {expr[:20]!r}")
    return int(expr)


def _parse_every(text: str) -> timedelta:
    """Go's ``time.ParseDuration``, as ``@every`` uses it; robfig refuses delays under a second."""
    body = text.lstrip("+")
    if body.startswith("-"):
        raise ScheduleError(f"Negative duration in @every {text[:40]}")
    nanos = 0 if body == "0" else _go_duration_ns(body, text)
    if nanos < 10**9:
        raise ScheduleError(f"Delays of less than a second are not supported: @every {text[:40]}")
    return timedelta(seconds=nanos // 10**9)


def _go_duration_ns(body: str, text: str) -> int:
    """Nanoseconds of a Go duration; an error where Go's parser fails, overflow included."""
    total, pos = 0, 0
    while pos < len(body):
        m = _GO_DURATION_PART.match(body, pos)
        if not m or not (m.group(1) or m.group(2)):
            raise ScheduleError(f"Failed to parse duration @every {text[:40]}")
        whole, fraction, unit = m.group(1) or "0", (m.group(2) or "")[:18], m.group(3)
        if len(whole) > 19:
            raise ScheduleError(f"Failed to parse duration @every {text[:40]}: invalid duration")
        total += int(whole) * _NS[unit] + int(fraction or "0") * _NS[unit] // 10 ** len(fraction)
        if total > MAX_GO_DURATION_NS:
            raise ScheduleError(f"Failed to parse duration @every {text[:40]}: invalid duration")
        pos = m.end()
    if not body:
        raise ScheduleError(f"Failed to parse duration @every {text[:40]}")
    return total


@lru_cache(maxsize=1024)  # every full item of the cluster, every run: few distinct values
def parse_expire(expire: str) -> timedelta:
    """``<int><m|h|d>``, as the daemon's expire job reads it.

    Zero would delete every backup at once; beyond Go's int64 nanoseconds the daemon's
    ``time.Duration(n) * unit`` silently wraps around (possibly negative: every backup expired)."""
    m = EXPIRE_RE.match(expire.strip())
    if not m:
        raise ScheduleError(f"expire {expire[:40]!r} is not <number><m|h|d>, e.g. 7d")
    digits, unit = m.group(1).lstrip("0") or "0", _EXPIRE_UNITS[m.group(2)]
    if digits == "0":
        raise ScheduleError(f"expire {expire!r} would delete every backup as soon as it is made")
    if len(digits) > 19 or int(digits) * unit * 10**9 > MAX_GO_DURATION_NS:
        most = MAX_GO_DURATION_NS // (unit * 10**9)
        raise ScheduleError(f"expire {expire[:40]!r} overflows the daemon's duration type "
                            f"(at most {most}{m.group(2)}); the daemon would expire backups at once")
    return timedelta(seconds=int(digits) * unit)
