"""Schedules as the daemon gets them: ``H`` resolved and, when asked, a stable second. Pure.

A daemon starts every due job in the same second, and every job posts its records at once: at
``0 0 * * *`` the jobs of a whole cluster start together. The controller writes the schedules it
pushes, so it spreads them before the daemon sees them (the daemon never sees ``H``, and computes
nothing: a job's id is the md5 of the schedule it is pushed with, :mod:`chalicelib.core.jobs`).

* ``H`` (as Jenkins writes it), in any field of a 5- or 6-field schedule: ``H`` is a value of the
  field's range chosen by the item's hash, ``H(a-b)`` one within ``a``-``b`` (month and weekday
  names allowed), ``H/n`` a hashed start below ``n`` then every ``n``-th value to the end of the
  range, ``H(a-b)/n`` the same within ``a``-``b``; comma lists may mix them with robfig's forms.
  ``H`` ranges are robfig's but for the day of the month: 1-28, so it exists in every month.
  ``H 3 * * *`` → ``17 3 * * *``; ``H/15 * * * *`` → ``4-59/15 * * * *``.
* The spread (``SPREAD_SECONDS``, off by default since it changes job ids): a 5-field schedule,
  or a descriptor meaning one (``@hourly`` ``0 * * * *``, ``@daily``/``@midnight`` ``0 0 * * *``,
  ``@weekly`` ``0 0 * * 0``, ``@monthly`` ``0 0 1 * *``, ``@yearly``/``@annually`` ``0 0 1 1 *``),
  is pushed as robfig's seconds-first 6 fields with the item's hashed second: ``0 0 * * *`` →
  ``42 0 0 * * *`` (as if it began with an ``H`` seconds field). It fires as often as before, in
  the same minutes. Left as written: 6-field schedules (their seconds are chosen), ``@every``, and
  schedules firing in two minutes in a row (59 and 0 count): those keep second 0, where every
  node's expire job already fires, so a crowd of them cannot keep a daemon busy for minutes (see
  :mod:`chalicelib.core.idlewindow`; a spread schedule never counts there).

**The item's hash** is the sha256 of ``"<app>/<proc>/<volume>/<instance>"`` in UTF-8 (the full proc
name, the volume as written, the instance number in decimal): stable across runs, processes and
versions of Python. Field *i* of robfig's 6-field order (second 0, minute 1, hour 2, day of month
3, month 4, day of week 5) reads bytes ``4i`` to ``4i+4`` of it as a big-endian number *u*; ``H``
in a range ``lo``-``hi`` is ``lo + u mod (hi-lo+1)``; ``H/n`` starts at ``lo + u mod min(n,
hi-lo+1)``; the spread's second is the seconds field's ``u mod 60``. Every ``H`` of one field
shares its *u*. An ``H`` that cannot be resolved is a :class:`~chalicelib.core.cron.ScheduleError`
(the item's ``bad_schedule`` problem); whether it can does not depend on the hash.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date
from functools import lru_cache

from chalicelib.core import cron

# each field's H range, in robfig's 6-field order (robfig's own but for the day of the month)
H_RANGES = ((0, 59), (0, 59), (0, 23), (1, 28), (1, 12), (0, 6))
SPREAD_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_H_TERM = re.compile(r"H(?:\(([^()/-]+)-([^()/-]+)\))?(?:/([^/]+))?")
_NO_HASH = bytes(32)


def item_hash(app: str, proc: str, volume: str, instance: int) -> bytes:
    """The sha256 digest every ``H`` and the spread of one item (of one instance) come from."""
    return hashlib.sha256(f"{app}/{proc}/{volume}/{instance}".encode()).digest()


def field_number(digest: bytes, index: int) -> int:
    """The number *u* field ``index`` (robfig's 6-field order) takes from an item's hash."""
    return int.from_bytes(digest[4 * index:4 * index + 4], "big")


def spread_second(digest: bytes) -> int:
    """The second of the minute the spread gives an item."""
    return field_number(digest, 0) % 60


def resolve(spec: str, digest: bytes, *, spread: bool = False) -> str:
    """``spec`` as pushed for the item whose hash is ``digest``: its ``H`` resolved and, with
    ``spread``, its second added. ``spec`` itself (the same text) when neither changes it; a
    :class:`~chalicelib.core.cron.ScheduleError` for an ``H`` that cannot be resolved. Anything
    else wrong in ``spec`` is left for :func:`chalicelib.core.cron.parse` to find."""
    second = spread_second(digest) if spread else None
    if not has_h(spec):
        return spec if second is None else _with_second(spec, second)
    return _resolve(spec, digest, second)


@lru_cache(maxsize=8192)
def _with_second(spec: str, second: int) -> str:
    """A spec without ``H`` spread to ``second``: a cluster's few schedules times 60."""
    return _resolve(spec, _NO_HASH, second)


def _resolve(spec: str, digest: bytes, second: int | None) -> str:
    layout = _layout(spec, second is not None)
    if layout is None:
        return spec
    prefix, fields, translated = layout
    offset = 6 - len(fields)
    resolved = [raw if isinstance(raw, str) else ",".join(
        term if isinstance(term, str) else _value(term, field_number(digest, index + offset))
        for term in raw) for index, raw in enumerate(fields)]
    if second is not None and len(fields) == 5 and _spreadable(resolved[0]):
        return prefix + " ".join([str(second), *resolved])
    if translated or all(isinstance(raw, str) for raw in fields):
        return spec
    return prefix + " ".join(resolved)


_Terms = tuple[str | tuple[int, int, int], ...]  # a field's terms, an H one as (first, last, step)


@lru_cache(maxsize=4096)
def _layout(spec: str, spreading: bool) -> tuple[str, tuple[str | _Terms, ...], bool] | None:
    """(``"TZ=<zone> "`` or "", the 5 or 6 fields each as written or, with an H, as its terms,
    whether a descriptor was translated) of ``spec``; None when there is nothing to resolve."""
    prefix, body = _split(spec)
    translated = body.startswith("@")
    if translated:
        if not spreading or body not in SPREAD_DESCRIPTORS:
            return None
        body = SPREAD_DESCRIPTORS[body]
    fields = body.split()
    if len(fields) not in (5, 6):
        return None
    offset = 6 - len(fields)
    return prefix, tuple(_terms(raw, index + offset) if _hashed(raw) else raw
                         for index, raw in enumerate(fields)), translated


def _hashed(raw: str) -> bool:
    """Does the field ``raw`` hold an ``H`` term? ("THU" holds an H but is no H term.)"""
    return "H" in raw and any(term.startswith("H") for term in raw.split(","))


def has_h(spec: str) -> bool:
    """Does ``spec`` hold an ``H`` term (a comma-separated piece of a field starting with ``H``)?"""
    return "H" in spec and _has_h(spec)


@lru_cache(maxsize=4096)
def _has_h(spec: str) -> bool:
    body = _split(spec)[1]
    return not body.startswith("@") and any(_hashed(raw) for raw in body.split())


def check(spec: str) -> str:
    """``spec`` with its ``H`` resolved for some item (``spec`` itself if it has none), or the
    :class:`~chalicelib.core.cron.ScheduleError` saying why it cannot be: whether an ``H`` can be
    resolved, and whether the result is a schedule robfig accepts, never depends on the item."""
    return _check(spec) if has_h(spec) else spec


@lru_cache(maxsize=1024)
def _check(spec: str) -> str:
    return _resolve(spec, _NO_HASH, None)


def _split(spec: str) -> tuple[str, str]:
    """(``"TZ=<zone> "`` or "", the rest), split as :func:`chalicelib.core.cron.parse` splits."""
    text = spec.strip()
    if text.startswith("TZ="):
        zone, _, rest = text[3:].partition(" ")
        return f"TZ={zone} ", rest.strip()
    return "", text


def _value(term: tuple[int, int, int], number: int) -> str:
    """An ``H`` term (first, last, step; step 0: none) resolved with the field's ``number``."""
    first, last, step = term
    size = last - first + 1
    if not step:
        return str(first + number % size)
    return f"{first + number % min(step, size)}-{last}/{step}"


@lru_cache(maxsize=1024)
def _terms(raw: str, index: int) -> tuple[str | tuple[int, int, int], ...]:
    """The comma-separated terms of a field, each ``H`` one read as (first, last, step)."""
    try:
        return tuple(_term(term, index) if term.startswith("H") else term
                     for term in raw.split(","))
    except cron.ScheduleError as e:
        raise cron.ScheduleError(f"{cron.FIELDS[index][0]} {raw[:20]!r}: {e}") from None


def _term(term: str, index: int) -> tuple[int, int, int]:
    """One ``H`` term of field ``index``: (first, last, step), step 0 when it has none."""
    found = _H_TERM.fullmatch(term)
    if found is None:
        raise cron.ScheduleError(f"{term[:20]!r} is not H, H(a-b), H/n or H(a-b)/n")
    _, lo, hi, names = cron.FIELDS[index]
    first, last = H_RANGES[index]
    if found.group(1) is not None:
        first, last = cron.int_or_name(found.group(1), names), cron.int_or_name(found.group(2), names)
        if first < lo:
            raise cron.ScheduleError(f"Beginning of range ({first}) below minimum ({lo})")
        if last > hi:
            raise cron.ScheduleError(f"End of range ({last}) above maximum ({hi})")
        if first > last:
            raise cron.ScheduleError(f"Beginning of range ({first}) beyond end of range ({last})")
    if found.group(3) is None:
        return first, last, 0
    step = cron.int_or_name(found.group(3), None)
    if step <= 0:
        raise cron.ScheduleError(f"Step of range ({step}) must be positive")
    return first, last, step


@lru_cache(maxsize=1024)
def _spreadable(minute: str) -> bool:
    """May a schedule with this (resolved) minute field get a second other than 0? Not if it fires
    in two minutes in a row."""
    try:
        minutes = set(cron.parse(f"{minute} * * * *").values[1])
    except cron.ScheduleError:  # left as it is, for the daemon's rules to report
        return False
    return not any((m + 1) % 60 in minutes for m in minutes)


# -- the herd, modelled -----------------------------------------------------------------------------

def crowd(specs: Mapping[str, int] | Iterable[tuple[str, int]], day: date) -> Counter[int]:
    """How many jobs start in each second of ``day`` (seconds since its midnight, as each
    schedule's clock reads: a ``TZ=`` schedule counts at its local time), for schedules each held
    by a number of jobs. ``@every`` jobs are left out (their phase is the daemon's), so are
    schedules the daemon would drop. A model of the herd, not of a daemon: its figures are what
    the spread changes (:func:`peak`)."""
    found: Counter[int] = Counter()
    pairs = specs.items() if isinstance(specs, Mapping) else specs
    for spec, jobs in pairs:
        for second in _seconds_of(spec, day):
            found[second] += jobs
    return found


def peak(specs: Mapping[str, int] | Iterable[tuple[str, int]], day: date) -> tuple[int, int]:
    """(the most jobs starting in one second of ``day``, how many seconds of it start any)."""
    found = crowd(specs, day)
    return max(found.values(), default=0), len(found)


@lru_cache(maxsize=65536)
def _seconds_of(spec: str, day: date) -> tuple[int, ...]:
    try:
        schedule = cron.parse(spec)
    except cron.ScheduleError:
        return ()
    if schedule.every is not None:
        return ()
    second, minute, hour, dom, month, dow = schedule.values
    weekday = (day.weekday() + 1) % 7  # robfig's Sunday is 0
    on_dom, on_dow = day.day in dom, weekday in dow
    fires = (on_dom or on_dow) if schedule.day_or else (on_dom and on_dow)
    if day.month not in month or not fires:
        return ()
    return tuple(h * 3600 + m * 60 + s for h in hour for m in minute for s in second)
