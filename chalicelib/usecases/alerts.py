"""Alerts on backups that stop being fresh, and on pauses about to end: transitions → notify. The
schedule calls this after each reconcile with the status of every item it assessed from what the
run read (nothing is read twice).

A message goes out when an item goes from ``ok`` to a bad status (``late``/``failing``/``never``/
``suspect``), and once for each pause that ends within ``PAUSE_NOTICE_HOURS``. What was announced
is remembered only once the message was delivered, so a failed post is retried next run and a
delivered one is never repeated; the memory of items and pauses that no longer exist is dropped.
Only with ``ALERT_WEBHOOK_URL`` set: the status routes assess on demand.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from logging import WARNING
from typing import Any

from chalicelib.core.freshness import BAD, ItemStatus
from chalicelib.core.gotime import parse_go_time
from chalicelib.core.sizes import Baseline, Judgment, median
from chalicelib.core.types import JobRecord, Pauses
from chalicelib.deps import Deps
from chalicelib.edges import webhook
from chalicelib.errors import ControllerError
from chalicelib.logs import event, log


def check(deps: Deps, items: list[ItemStatus], pauses: Pauses) -> int:
    """Post the alerts of this run (``items``: the status the run assessed); how many were
    delivered. Never fails the run that pushed."""
    if not deps.settings.alert_webhook_url:
        return 0
    try:
        return transitions(deps, items, pauses)
    except ControllerError as e:
        event(log, "alert_check_failed", level=WARNING, error=e.message)
        return 0


def transitions(deps: Deps, items: list[ItemStatus], pauses: Pauses | None = None) -> int:
    """Post one message per item that went from ok to a bad status, and per pause about to end;
    the number posted."""
    before = deps.state.statuses()
    changed: dict[str, str] = {}
    posted = 0
    for item in items:
        previous = before.get(item.key)
        if previous == item.status:
            continue
        if previous == "ok" and item.status in BAD:
            if not _deliver(deps, item.key, item.status, _item_text(item, previous),
                            {"previous": previous, **item.to_dict()}):
                continue
            posted += 1
        changed[item.key] = item.status
    notice = timedelta(hours=deps.settings.pause_notice_hours)
    now = deps.clock()
    current = set()
    for node, jobs in (pauses or {}).items():
        for job_id, pause in jobs.items():
            key = f"pause:{node}#{job_id}"
            current.add(key)
            if before.get(key) == pause.until or not _ends_within(pause.until, now, notice):
                continue
            text = (f"the pause of job {job_id} on {node} ends at {pause.until}"
                    + (f" (paused for: {pause.reason})" if pause.reason else "")
                    + "; its backups resume then")
            if _deliver(deps, key, "pause_ending", text, {"job_id": job_id, "node": node,
                                                          "until": pause.until,
                                                          "reason": pause.reason}):
                posted += 1
                changed[key] = pause.until
    gone = set(before) - {item.key for item in items} - current
    if changed or gone:
        deps.state.save_statuses(changed, gone)
    return posted


def _ends_within(until: str, now: datetime, notice: timedelta) -> bool:
    try:
        end = parse_go_time(until)[0]
    except ValueError:
        return False
    return now < end <= now + notice


def _item_text(item: ItemStatus, previous: str) -> str:
    return (f"backup of {item.app} {item.proc} instance {item.instance} volume {item.volume} "
            f"on {item.node} is {item.status} (was {previous}): {item.reason}")


def _deliver(deps: Deps, key: str, status: str, text: str, fields: dict[str, Any]) -> bool:
    error = webhook.post(deps.settings.alert_webhook_url, {"text": text, **fields})
    if error:
        event(log, "alert_failed", level=WARNING, key=key, status=status, error=error)
        return False
    event(log, "alert", key=key, status=status)
    return True


def size_rebaselined(deps: Deps, record: JobRecord, baseline: Baseline, judgment: Judgment) -> None:
    """Say once that a job's archives have a new baseline size: one log line, and a webhook
    message when ``ALERT_WEBHOOK_URL`` is set (an undelivered one is logged, not retried)."""
    args = record.get("args") or {}
    where: dict[str, Any] = {"app": args.get("app"), "proc": args.get("proc"),
                             "volume": args.get("volume"), "instance": args.get("instanceNo"),
                             "job": record["id"]}
    old, new = median(list(baseline.sizes)), judgment.good_sizes[-1]
    event(log, "size_rebaselined", level=WARNING, **where, old_median=old, new_size=new,
          runs=len(judgment.good_sizes), rid=record["rid"])
    if not deps.settings.alert_webhook_url:
        return
    text = (f"backup of {where['app']} {where['proc']} instance {where['instance']} volume "
            f"{where['volume']}: {len(judgment.good_sizes)} backups in a row were about {new} "
            f"bytes, against a recent median of {old}; that is its new baseline and its backups "
            "count as good again. If the volume did not really shrink, look now.")
    _deliver(deps, record["id"], "size_rebaselined", text,
             {"status": "size_rebaselined", **where, "old_median": old, "new_size": new})
