"""Go's time format, as the daemons write it: RFC 3339 with up to nanoseconds, and the zero time.

One place for the parsing and formatting every module needs (records, freshness, the reconcile's
restart check, the run history). Pure.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

GO_ZERO = "0001-01-01T00:00:00Z"  # Go's zero time.Time: "never" (an unset end, a fresh daemon)
_GO_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")
# UTC to the nanosecond, as the daemons write every time: ASCII digits only (\d would take any
# script's, and fromisoformat alone also reads week dates and offsets)
_DAEMON_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z")


def parse_go_time(text: str) -> tuple[datetime, int]:
    """A Go RFC 3339 time → (UTC datetime to the second, nanoseconds). ValueError if malformed."""
    if not isinstance(text, str):
        raise ValueError(f"{str(text)[:40]!r} is not an RFC 3339 time")
    if _DAEMON_TIME.fullmatch(text):  # the daemons' own form: no zone or precision to work out
        try:
            return datetime.fromisoformat(text[:19]).replace(tzinfo=UTC), int(text[20:29])
        except ValueError:
            pass  # the general parser says why
    return _parse_go_time(text)


@lru_cache(maxsize=4096)
def _parse_go_time(text: str) -> tuple[datetime, int]:
    """Any other RFC 3339 form (another zone, fewer digits): rarer, so a few are remembered."""
    m = _GO_TIME.match(text)
    if not m:
        raise ValueError(f"{text[:40]!r} is not an RFC 3339 time")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    when = datetime.fromisoformat(m.group(1) + zone).astimezone(UTC)
    return when, int((m.group(2) or "").ljust(9, "0"))


def format_time(when: datetime) -> str:
    """A UTC time with microseconds, as the controller stamps its own runs and states."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sort_key(text: str, rid: str) -> str:
    """Fixed-width UTC time + rid: sorts chronologically whatever precision the daemon wrote."""
    when, nanos = parse_go_time(text)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z#{rid}"
