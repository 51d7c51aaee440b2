"""What the operator hears after each run: every item that went bad or came back, every pause that
starts, ends soon or ended, in the log always and in chat (``ALERT_WEBHOOK_URL``) when set.

The schedule calls :func:`check` with the status of every item it assessed from what the run read
(nothing is read twice). What the runs saw is remembered per item (``STATUS`` items): a
transition to or from ``failing``/``late``/``never``/``suspect`` is one log line naming app, proc,
volume, instance, node and reason (WARNING going bad, INFO coming back, with how long it was
bad). In chat, an item that falls from ``ok`` is announced once, and once it is ``ok`` again the
recovery is announced, with how long it took; a message that could not be delivered is owed
and posted on the next run, a delivered one never twice. Every message names the item in words
first, then carries the item as JSON. Pauses are announced when they start, when they end within
``PAUSE_NOTICE_HOURS``, and when they are over.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from logging import INFO, WARNING
from typing import Any

from chalicelib.core.freshness import BAD, ItemStatus
from chalicelib.core.gotime import format_time, parse_go_time
from chalicelib.core.sizes import Baseline, Judgment, median
from chalicelib.core.types import JobRecord, Pause, Pauses
from chalicelib.deps import Deps
from chalicelib.edges import webhook
from chalicelib.edges.state import PAUSE_MEMORY, Seen
from chalicelib.errors import ControllerError
from chalicelib.logs import event, log

PAUSE = PAUSE_MEMORY  # memory keys of pauses: pause:<node>#<job id>


def check(deps: Deps, items: list[ItemStatus], pauses: Pauses) -> int:
    """Log and announce this run's transitions (``items``: the status the run assessed); how many
    chat messages were delivered. Never fails the run that pushed."""
    try:
        return transitions(deps, items, pauses)
    except ControllerError as e:
        event(log, "alert_check_failed", level=WARNING, error=e.message)
        return 0


def transitions(deps: Deps, items: list[ItemStatus], pauses: Pauses | None = None) -> int:
    """One log line per item that went bad or came back, and the chat messages owed; the number
    of messages delivered."""
    before = deps.state.statuses()
    now = deps.clock()
    chat = bool(deps.settings.alert_webhook_url)
    changed: dict[str, Seen] = {}
    posted = 0
    keys = []
    for item in items:
        key = item.key
        keys.append(key)
        previous = before.get(key)
        seen = _item_seen(previous, item, now, chat)
        if seen.owed and chat and _deliver(deps, key, _item_message(item, seen, previous, now)):
            posted += 1
            seen = Seen(seen.status, seen.since, "", seen.owed == "bad")
        if seen != previous:
            changed[key] = seen
    by_job = {(i.node, i.job_id): i for i in items}
    pause_seen, pause_posted = _pauses(deps, before, pauses or {}, by_job, now, chat)
    changed |= pause_seen
    current = set(keys) | set(pause_seen) | {
        f"{PAUSE}{node}#{job_id}" for node, jobs in (pauses or {}).items() for job_id in jobs}
    gone = {k for k in before if ":" not in k or k.startswith(PAUSE)} - current
    if changed or gone:
        deps.state.save_statuses(changed, gone, before)
    return posted + pause_posted


def _item_seen(previous: Seen | None, item: ItemStatus, now: datetime, chat: bool) -> Seen:
    """The item's memory after this run, its log line written when it went bad or came back,
    and the chat message it owes: the fall from ``ok``, or the recovery of a told episode."""
    if previous is not None and previous.status == item.status:
        return previous
    since = format_time(now)
    where: dict[str, Any] = {"app": item.app, "proc": item.proc, "volume": item.volume,
                             "instance": item.instance, "node": item.node}
    was = previous.status if previous else ""
    if item.status in BAD:
        event(log, "backup_bad", level=WARNING, **where, status=item.status, was=was,
              reason=item.reason)
    elif was in BAD:
        event(log, "backup_recovered" if item.status == "ok" else "backup_status", level=INFO,
              **where, status=item.status, was=was, after=_took(previous, now), reason=item.reason)
    told = previous.told if previous else False
    if item.status in BAD and was == "ok" and chat:
        return Seen(item.status, since, "bad", False)
    if item.status in BAD and was in BAD:  # still bad: the episode and what it owes go on
        assert previous is not None
        return Seen(item.status, previous.since, previous.owed, told)
    if item.status == "ok" and told and chat:
        return Seen(item.status, since, "ok", False)
    return Seen(item.status, since)


def _took(previous: Seen | None, now: datetime) -> str:
    """How long an episode lasted, in words (``2 h 13 min``)."""
    try:
        start = parse_go_time(previous.since)[0] if previous else None
    except ValueError:
        start = None
    if start is None:
        return "an unknown time"
    minutes = int((now - start).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return " ".join(f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (mins, "min"))
                    if n) or "under a minute"


def _item_message(item: ItemStatus, seen: Seen, previous: Seen | None, now: datetime
                  ) -> dict[str, Any]:
    what = (f"backup of {item.app} {item.proc} instance {item.instance} volume {item.volume} "
            f"on {item.node}")
    if seen.owed == "ok":
        text = f"{what} is ok again after {_took(previous, now)}: {item.reason}"
    else:
        text = f"{what} is {item.status} (was ok): {item.reason}"
    return {"text": text, "status": item.status, "event": "recovered" if seen.owed == "ok" else
            "bad", "item": item.to_dict()}


def _pauses(deps: Deps, before: dict[str, Seen], pauses: Pauses,
            by_job: dict[tuple[str, str], ItemStatus], now: datetime, chat: bool
            ) -> tuple[dict[str, Seen], int]:
    """Pauses: one line (and one message) when a pause starts, when it ends within
    ``PAUSE_NOTICE_HOURS`` and when it is over; the memory that changed, the messages posted."""
    notice = timedelta(hours=deps.settings.pause_notice_hours)
    changed: dict[str, Seen] = {}
    posted = 0
    for node, jobs in pauses.items():
        for job_id, pause in jobs.items():
            key = f"{PAUSE}{node}#{job_id}"
            item = by_job.get((node, job_id))
            seen = before.get(key)
            if seen is None or seen.status != pause.until:  # a new pause (or a new end)
                event(log, "pause_started", node=node, job=job_id, until=pause.until,
                      reason=pause.reason, **_where(item))
                seen = Seen(pause.until, format_time(now), "start" if chat else "", False)
            if chat and not seen.owed and not seen.told and _ends_within(pause.until, now, notice):
                seen = Seen(seen.status, seen.since, "ending", False)
            if seen.owed and chat and _deliver(deps, key, _pause_message(seen.owed, node, job_id,
                                                                          pause, item)):
                posted += 1
                seen = Seen(seen.status, seen.since, "", seen.owed == "ending" or seen.told)
            if seen != before.get(key):
                changed[key] = seen
    for key in before:
        node, _, job_id = key[len(PAUSE):].partition("#")
        if key.startswith(PAUSE) and job_id not in pauses.get(node, {}):
            item = by_job.get((node, job_id))
            event(log, "pause_ended", node=node, job=job_id, **_where(item))
            if chat:
                _deliver(deps, key, _pause_message("ended", node, job_id, None, item))
    return changed, posted


def _where(item: ItemStatus | None) -> dict[str, Any]:
    return ({"app": item.app, "proc": item.proc, "volume": item.volume, "instance": item.instance}
            if item else {})


def _pause_message(kind: str, node: str, job_id: str, pause: Pause | None,
                   item: ItemStatus | None) -> dict[str, Any]:
    what = (f"backup of {item.app} {item.proc} instance {item.instance} volume {item.volume} on "
            f"{node}" if item else f"job {job_id} on {node}")
    why = f" (paused for: {pause.reason})" if pause and pause.reason else ""
    text = {"start": f"{what} is paused until {pause.until if pause else '?'}{why}",
            "ending": f"the pause of {what} ends at {pause.until if pause else '?'}{why}; its "
                      "backups resume then",
            "ended": f"the pause of {what} is over: its backups run again"}[kind]
    return {"text": text, "event": f"pause_{kind}", "job_id": job_id, "node": node,
            "until": pause.until if pause else "", "reason": pause.reason if pause else "",
            "item": item.to_dict() if item else None}


def _ends_within(until: str, now: datetime, notice: timedelta) -> bool:
    try:
        end = parse_go_time(until)[0]
    except ValueError:
        return False
    return now < end <= now + notice


def _deliver(deps: Deps, key: str, message: dict[str, Any]) -> bool:
    error = webhook.post(deps.settings.alert_webhook_url, message)
    if error:
        event(log, "alert_failed", level=WARNING, key=key, kind=message.get("event"), error=error)
        return False
    event(log, "alert", key=key, kind=message.get("event"))
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
    _deliver(deps, record["id"], {"text": text, "status": "size_rebaselined",
                                  "event": "size_rebaselined", **where, "old_median": old,
                                  "new_size": new})
