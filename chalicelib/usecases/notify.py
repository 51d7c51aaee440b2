"""The notify flow, one entrance: who reacts to a record a daemon posts, in order.

parse and check it (:mod:`chalicelib.core.formats.recordschema`) → a record that names a run of a
restore operation must be that run's record (:func:`operations.check_record`) → a backup's
success is judged by its archive's size (:func:`chalicelib.core.sizes.judge`) → store it → say
once when a volume's size got a new baseline (:mod:`alerts`) → move the restore operations on
(:func:`operations.advance`) → count it (metrics: the ``notify`` line). Every node's expire job
posts two records a minute that tell nothing (the daemon does not say what it deleted): a
``running`` or ``success`` of it writes no line (95 % of the posts, and of their log bytes); its
failures do. The notify token was checked before this, by the web layer
(:mod:`chalicelib.web.auth`).
"""

from __future__ import annotations

from datetime import timedelta
from logging import INFO, WARNING
from typing import Any

from chalicelib.core.formats.recordschema import parse_record, record_app
from chalicelib.core.jobs import BACKUP_ACTION, EXPIRE_ACTION, node_of_job_id
from chalicelib.core.types import JobRecord
from chalicelib.deps import Deps
from chalicelib.errors import ControllerError
from chalicelib.logs import event, log
from chalicelib.usecases import alerts, operations, records


def notify(deps: Deps, body: bytes | str | None) -> dict[str, Any]:
    """Store a record a daemon posted, and let what depends on it react."""
    try:
        record = parse_record(body, now=deps.clock(),
                              skew=timedelta(seconds=deps.settings.notify_clock_skew_seconds))
        operations.check_record(deps, record)  # a forged record of an operation's run: refused
        kept = records.store(deps, record)
    except ControllerError:
        deps.metrics.notify(accepted=False)
        raise
    stored = kept.stored
    if kept.rebaseline:
        alerts.size_rebaselined(deps, record, *kept.rebaseline)
    failed = record["state"] == "failed"
    if failed or record["action"] != EXPIRE_ACTION:  # an expire run that did not fail says nothing
        deps.metrics.notify(accepted=True, level=WARNING if failed and stored else INFO,
                            **_said(record, stored))
    try:  # a run of a restore operation moves it on (idempotent: a repeat moves nothing)
        operations.advance(deps, record)
    except Exception as e:  # the record is kept; the schedule picks the operation up again
        event(log, "operation_not_advanced", level=WARNING, rid=record["rid"],
              error=getattr(e, "message", f"{type(e).__name__}: {str(e)[:200]}"),
              exc=not isinstance(e, ControllerError))  # a bug's traceback goes with it
    return {"rid": record["rid"], "stored": stored}


def _said(record: JobRecord, stored: bool) -> dict[str, Any]:
    """What the notify line says of a record: whose run, of what, and for a failure why."""
    args = record["args"]
    said: dict[str, Any] = {"rid": record["rid"], "app": record_app(record),
                            "action": record["action"], "state": record["state"], "stored": stored}
    if record["action"] == BACKUP_ACTION and record["id"]:
        said |= {"proc": args.get("proc"), "volume": args.get("volume"),
                 "instance": args.get("instanceNo"), "node": node_of_job_id(record["id"])}
    elif record["action"] == "backup_recover":
        said |= {"proc": args.get("proc"), "target": args.get("destDir") or args.get("backup")}
    if record["state"] == "failed":
        said["reason"] = str(record.get("reason", ""))[:500]
    return said
