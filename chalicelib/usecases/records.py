"""Job records as users read them back (by month, by rid), the audit trail, and an on-demand backup
of the table that holds them (what daemons post comes in through :mod:`chalicelib.usecases.notify`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.core.formats.answers import Partial
from chalicelib.core.formats.inputs import bounded_int
from chalicelib.core.jobs import BACKUP_ACTION
from chalicelib.core.sizes import Baseline, Judgment, judge
from chalicelib.core.types import STATES, JobRecord
from chalicelib.deps import Deps
from chalicelib.errors import BadRequest

MAX_TOTAL = 1000
AUDIT_CURSOR = re.compile(r"^\d{4}-\d{2}-\d{2}T[\d:.]+Z#[0-9A-Za-z-]{0,64}$")


def month_query(total: str | None, month: str | None, year: str | None,
                now: datetime) -> tuple[int, int, int]:
    """``total``/``month``/``year`` of a records query, defaults 100 / this month / this year."""

    def number(name: str, raw: str | None, default: int, lo: int, hi: int) -> int:
        return default if raw in (None, "") else bounded_int(raw, name, lo, hi)

    return (number("total", total, 100, 1, MAX_TOTAL), number("month", month, now.month, 1, 12),
            number("year", year, now.year, 2000, 9999))


def month(deps: Deps, app: str, query: Mapping[str, str]) -> list[JobRecord]:
    """The app's records of one month, newest first (``total``/``month``/``year``/``state``)."""
    total, month_, year = month_query(query.get("total"), query.get("month"), query.get("year"),
                                      deps.clock())
    state = query.get("state") or None
    if state is not None and state not in STATES:
        raise BadRequest(f"state must be one of {', '.join(STATES)}, got {state[:20]!r}",
                         code="bad_state")
    return deps.records.month(app, year, month_, total, state)


def record(deps: Deps, app: str, rid: str) -> JobRecord:
    """One record of the app (404 if unknown or another app's)."""
    return deps.records.get(app, rid)


def backup_table(deps: Deps) -> dict[str, Any]:
    """An on-demand DynamoDB backup of the table that holds the records."""
    return deps.records.backup(f"{deps.settings.table_name}-{deps.clock():%Y%m%d-%H%M%S}")


def audit(deps: Deps, app: str | None, total: str, before: str) -> Partial:
    """The audit trail, newest first: one app's (``app``) or every call's; ``next`` pages on."""
    count = bounded_int(total or "100", "total", 1, MAX_TOTAL)
    if before and not AUDIT_CURSOR.fullmatch(before):
        raise BadRequest("next: not a cursor this API handed out", code="bad_next")
    entries = (deps.audit.of_app(app, count, before) if app
               else deps.audit.of_system(count, deps.clock(), before))
    return Partial(entries, next=entries[-1]["cursor"] if len(entries) == count else "")


@dataclass(frozen=True)
class Stored:
    """What storing a record did: whether it changed anything, and the new size baseline it
    made (what it was judged against, and the judgment) for the composer to announce."""

    stored: bool
    rebaseline: tuple[Baseline, Judgment] | None = None


def store(deps: Deps, record: JobRecord) -> Stored:
    """Judge a backup job's success by its archive's size (:func:`chalicelib.core.sizes.judge`,
    against the job's recent good sizes) and store the record with that judgment."""
    if record["action"] != BACKUP_ACTION or not record["id"] or record["state"] != "success":
        return Stored(deps.records.put(record))
    baseline = deps.records.baseline(record["id"])
    judgment = judge(record, baseline, deps.settings.suspect_size_percent,
                     deps.settings.size_rebaseline_runs)
    stored = deps.records.put(record, judgment)
    return Stored(stored, (baseline, judgment) if stored and judgment.rebaselined else None)
