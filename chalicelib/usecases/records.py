"""Job records: what daemons post (notify), and what users read back (by month, by rid)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from logging import WARNING
from typing import Any

from chalicelib.core.answers import Partial
from chalicelib.core.inputs import bounded_int
from chalicelib.core.types import STATES
from chalicelib.deps import Deps
from chalicelib.errors import BadRequest, ControllerError, Unauthorized
from chalicelib.logs import event, log
from chalicelib.usecases import metrics

MAX_TOTAL = 1000
AUDIT_CURSOR = re.compile(r"^\d{4}-\d{2}-\d{2}T[\d:.]+Z#[0-9A-Za-z-]{0,64}$")


def month_query(total: str | None, month: str | None, year: str | None,
                now: datetime) -> tuple[int, int, int]:
    """``total``/``month``/``year`` of a records query, defaults 100 / this month / this year."""

    def number(name: str, raw: str | None, default: int, lo: int, hi: int) -> int:
        return default if raw in (None, "") else bounded_int(raw, name, lo, hi)

    return (number("total", total, 100, 1, MAX_TOTAL), number("month", month, now.month, 1, 12),
            number("year", year, now.year, 2000, 9999))


def notify(deps: Deps, body: bytes | None, token: str) -> dict[str, Any]:
    """Store a record a daemon posted; with ``NOTIFY_TOKEN`` set, the post must carry it."""
    import hmac

    from chalicelib.core.recordschema import parse_record, record_app  # notify's own checks
    from chalicelib.usecases import operations  # the restores' moves: only notify needs them

    settings = deps.settings
    try:
        accepted = [t for t in deps.secrets.notify_tokens() if t]
        if accepted and not any(hmac.compare_digest(token.encode(), t.encode()) for t in accepted):
            raise Unauthorized("notify needs ?token=<NOTIFY_TOKEN> (the URL the controller gave "
                               "the daemons)", code="bad_notify_token")
        record = parse_record(body, now=deps.clock(),
                              skew=timedelta(seconds=settings.notify_clock_skew_seconds))
        operations.check_record(deps, record)  # a forged record of an operation's run: refused
        stored = deps.records.put(record)
    except ControllerError:
        metrics.notify(deps, accepted=False)
        raise
    metrics.notify(deps, accepted=True)
    event(log, "notify", rid=record["rid"], app=record_app(record), state=record["state"],
          stored=stored)
    try:  # a run of a restore operation moves it on (idempotent: a repeat moves nothing)
        operations.advance(deps, record)
    except Exception as e:  # the record is kept; the schedule picks the operation up again
        event(log, "operation_not_advanced", level=WARNING, rid=record["rid"],
              error=getattr(e, "message", f"{type(e).__name__}: {str(e)[:200]}"))
    return {"rid": record["rid"], "stored": stored}


def month(deps: Deps, app: str, query: Mapping[str, str]) -> list[dict[str, Any]]:
    """The app's records of one month, newest first (``total``/``month``/``year``/``state``)."""
    total, month_, year = month_query(query.get("total"), query.get("month"), query.get("year"),
                                      deps.clock())
    state = query.get("state") or None
    if state is not None and state not in STATES:
        raise BadRequest(f"state must be one of {', '.join(STATES)}, got {state[:20]!r}",
                         code="bad_state")
    return deps.records.month(app, year, month_, total, state)


def one(deps: Deps, app: str, rid: str) -> dict[str, Any]:
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
