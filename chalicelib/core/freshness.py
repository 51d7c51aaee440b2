"""Is every declared volume actually backed up on schedule? Pure: no I/O, time is passed in.

For every backup item of every instance (on each node it runs on) the status is, in order:

* ``invalid``  the spec has a problem that stops the backup (bad schedule, never fires, no node);
* ``paused``   a user paused the job;
* ``failing``  the latest run since the last due run failed;
* ``suspect``  the latest run since the last due run "succeeded" with an archive that cannot be
               trusted (no size, 0 bytes, far smaller than the recent good ones);
* ``pending``  no run was due yet since the job was first pushed (a new job);
* ``ok``       a good (not suspect) success at or after the last due run;
* ``never``    no success ever recorded (or the job never reached its node);
* ``late``     a run was due and nothing succeeded since.

A run is *due* once its expected start plus the grace period (``FRESHNESS_GRACE_SECONDS``, plus the
job's last run time) has passed: the daemons need time to run it. Due and next runs come from the
schedule as pushed (its ``H`` resolved, its spread second: :mod:`chalicelib.core.spread`), the one
the daemon runs; an item shows it (``schedule_pushed``) next to the one written (``schedule``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from chalicelib.core import cron
from chalicelib.core.backupspec import BackupItem
from chalicelib.core.cluster import Cluster
from chalicelib.core.formats import cronwords
from chalicelib.core.gotime import parse_go_time
from chalicelib.core.jobs import Placement, placements
from chalicelib.core.nodehealth import STOPS_BACKUPS, NodeProblem
from chalicelib.core.types import JobRecord, Latest, Pause, Pauses

STATUSES = ("ok", "pending", "late", "failing", "suspect", "never", "paused", "invalid")
BAD = ("late", "failing", "suspect", "never")
SKEW = timedelta(seconds=5)  # daemon clocks and the expected start may differ a little
MAX_RUN_TIME = timedelta(days=7)  # a longer "run time" is a broken record, not a slow backup


@dataclass(slots=True)  # not frozen: built 160,000 times a run at 2,000 nodes, 10× faster
class ItemStatus:
    app: str
    proc: str
    instance: int
    volume: str
    mode: str
    schedule: str
    node: str
    job_id: str
    status: str
    reason: str
    due: str = ""  # the last scheduled start before now
    # the runs as read (shared with the records read, never changed; shown as their brief)
    last_run: Mapping[str, Any] | None = None
    last_success: Mapping[str, Any] | None = None
    pause: dict[str, str] | None = None  # until, reason: while a user has paused the job
    expiry_held: str = ""  # why its old backups are kept past their expire (the retention floor)
    schedule_words: str = ""  # the schedule as the daemon reads it (the one pushed), in words
    next_run: str = ""  # when the daemon next starts it ("" when paused, invalid, ``@every``,
    # or its node's cron is stopped or its daemon does not answer)
    node_problems: tuple[str, ...] = ()  # what is wrong with its node, in words (the cause)
    schedule_pushed: str = ""  # the schedule as pushed: H resolved, the spread ("" if invalid)
    verification: dict[str, Any] | None = None  # its restore drills (core/drill.py), when on

    @property
    def key(self) -> str:
        return f"{self.proc}/{self.instance}{self.volume}@{self.node}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["last_run"], out["last_success"] = _brief(self.last_run), _brief(self.last_success)
        return out


def _when(record: Mapping[str, Any] | None, field: str = "start") -> datetime | None:
    value = record.get(field) if record else None
    if not isinstance(value, str):
        return None
    try:
        return parse_go_time(value)[0]
    except ValueError:
        return None


@lru_cache(maxsize=8192)
def _seen_at(text: str) -> datetime | None:
    """When a job reached its node: the node's jobs share the time of the push that took them."""
    return _when({"start": text})


def _brief(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What an item shows of a run (built when it is shown: 320,000 small dicts a run at 2,000
    nodes otherwise)."""
    if not record:
        return None
    get = record.get
    return {"rid": get("rid"), "state": get("state"), "start": get("start"), "end": get("end"),
            "reason": get("reason")}


@lru_cache(maxsize=4096)
def _iso(when: datetime | None) -> str:
    """A due or first-seen time in words: a cluster's items share few of them (each node's
    items reached it at one push; each schedule has one due time), and formatting is slow."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else ""


def status_of(p: Placement, *, first_seen: str, paused: Pause | None,
              latest: dict[str, JobRecord], now: datetime, grace: timedelta
              ) -> tuple[str, str, datetime | None]:
    """(status, reason, last due run) of one placement. A run counts as missed only once its
    start plus the grace (and the job's last run time) has passed: the daemons need time to
    run it; the due time answered is the last scheduled start before ``now``."""
    if p.job is None:
        return "invalid", (f"schedule {p.item.schedule_written!r} is invalid; the daemon drops this "
                           "job"), None
    last = latest.get("last")
    newest = latest.get("success")
    success = latest.get("good") or (None if newest and newest.get("suspect") else newest)
    if paused and not _ended(paused, now):
        return _paused(p, paused, success)
    first = _seen_at(first_seen) if first_seen else None
    if first is None and success is None:
        return "never", f"the job has not reached {p.node} yet (next reconcile pushes it)", None
    schedule = cron.parse(p.item.schedule)
    scheduled = schedule.prev_before(now)
    if scheduled is None:
        return "invalid", f"schedule {p.item.schedule_written!r} never fires", None
    run_time = timedelta(0)
    ended, started = _when(success, "end"), _when(success)
    if ended and started:
        run_time = min(max(timedelta(0), ended - started), MAX_RUN_TIME)
    due = schedule.prev_before(now - grace - run_time)  # the last run that should be done by now
    last_start, success_start = _when(last), started
    if last and last.get("state") == "failed" and last_start and (due is None
                                                                  or last_start >= due - SKEW):
        return ("failing", f"the latest run ({last.get('start')}) failed: {last.get('reason')}",
                scheduled)
    if last and last.get("suspect") and last_start and (due is None or last_start >= due - SKEW):
        return "suspect", (f"the latest run ({last.get('start')}) succeeded, but "
                           f"{last.get('suspect')}"), scheduled
    if due is None or (first is not None and due < first - SKEW):
        if success:
            return "ok", (f"succeeded at {success.get('start')}; no run was due since the job "
                          f"reached {p.node} at {_iso(first)}"), scheduled
        return "pending", (f"its first run is due at {_iso(schedule.next_after(first or now))} "
                           "(and counts as missed only after the grace)"), scheduled
    if success and success_start and success_start >= due - SKEW:
        pending = (f"; the run due at {_iso(scheduled)} is within its grace"
                   if scheduled > due + SKEW and success_start < scheduled - SKEW else "")
        return "ok", f"succeeded at {success.get('start')}{pending}", scheduled
    if success is None:
        return "never", (f"no successful backup ever recorded; a run was due at {_iso(due)}"),\
            scheduled
    return "late", (f"a run was due at {_iso(due)} and none has succeeded since; the last "
                    f"success was at {success.get('start')}"), scheduled


def _ended(pause: Pause, now: datetime) -> bool:
    """A pause whose end has come (the reconcile wakes its job): no longer shown as paused."""
    try:
        return parse_go_time(pause.until)[0] <= now
    except ValueError:
        return False


def _paused(p: Placement, paused: Pause, success: JobRecord | None
            ) -> tuple[str, str, datetime | None]:
    """A paused job's status: ``paused`` with who, until when and why; a volume never backed up
    stays ``never`` (a pause does not make a missing backup any less missing)."""
    why = f": {paused.reason}" if paused.reason and not paused.adopted else ""
    who = (f"found paused on {p.node} with no pause on record, kept paused" if paused.adopted
           else "paused by a user")
    unsure = "" if paused.confirmed else " (the daemon has not confirmed it yet)"
    words = f"{who} until {paused.until or 'woken up'}{why}{unsure}"
    if success is None:
        return "never", (f"no successful backup ever recorded, and the job is {words}; wake it "
                         "up to back it up"), None
    return "paused", f"{words}; wake it up to resume backups sooner", None


def assess(cluster: Cluster, *, first_seen: dict[tuple[str, str], str],
           paused: Pauses, latest: Latest,
           now: datetime, grace: timedelta,
           expiry_held: dict[tuple[str, str], str] | None = None,
           node_problems: Mapping[str, Sequence[NodeProblem]] | None = None) -> list[ItemStatus]:
    """The status of every backup item of every instance of ``cluster``; an item on a node with
    problems (:mod:`chalicelib.core.nodehealth`) names them as the cause in its reason."""
    out = []
    words: dict[str, tuple[str, str]] = {}
    held, problems = expiry_held or {}, node_problems or {}
    no_pauses: dict[str, Pause] = {}
    for p in placements(cluster):
        job_id = p.job["id"] if p.job else ""
        job_latest = latest.get(job_id, {})
        pause = paused.get(p.node, no_pauses).get(job_id)
        try:
            status, reason, due = status_of(
                p, first_seen=first_seen.get((p.node, job_id), ""), paused=pause,
                latest=job_latest, now=now, grace=grace)
        except Exception as e:  # one item's odd schedule or record never fails the whole answer
            status, reason, due = "invalid", f"cannot be assessed ({type(e).__name__})", None
        on_node = problems.get(p.node, ())
        reason, stopped = _with_causes(status, reason, on_node)
        shown_pause = pause if pause and not _ended(pause, now) else None
        schedule_words, next_run = _words(words, p.item.schedule, now, status)
        out.append(ItemStatus(p.proc.app, p.proc.full_name, p.pod.instance_no, p.item.volume,
                              p.item.mode or "full", p.item.schedule_written, p.node, job_id, status,
                              reason, _iso(due), job_latest.get("last"),
                              job_latest.get("success"),
                              {"until": shown_pause.until, "reason": shown_pause.reason}
                              if shown_pause else None,
                              held.get((p.node, p.path), ""),
                              schedule_words, "" if stopped else next_run,
                              tuple(pr.words() for pr in on_node), _pushed(p.item)))
    for proc in cluster.procs.values():  # items of instances with no valid node IP get no job
        for pod in proc.pods:
            if pod.items and not pod.node_ips:
                for item in pod.items:
                    out.append(ItemStatus(proc.app, proc.full_name, pod.instance_no, item.volume,
                                          item.mode or "full", item.schedule_written, "", "",
                                          "invalid", "no container of this instance has a valid "
                                          "node IP", schedule_words=cronwords.describe(item.schedule),
                                          schedule_pushed=_pushed(item)))
    return out


def _with_causes(status: str, reason: str, problems: Sequence[NodeProblem]) -> tuple[str, bool]:
    """The item's reason with its node's problems as the cause (first, for an item that is not
    ok), and whether its backups are stopped there (no next run to promise)."""
    if not problems:
        return reason, False
    causes = "; ".join(p.words() for p in problems)
    stopped = any(p.kind in STOPS_BACKUPS for p in problems)
    if status in ("ok", "paused", "invalid"):
        return f"{reason}; but {causes}", stopped
    return f"{causes}: {reason}", stopped


def _words(cache: dict[str, tuple[str, str]], spec: str, now: datetime, status: str
           ) -> tuple[str, str]:
    """(schedule in words, next run) of ``spec``, worked out once per spec of the cluster; no next
    run for an item that will not run (paused, invalid)."""
    if spec not in cache:
        try:
            schedule = None if cron.validate(spec) else cron.parse(spec)
            nxt = schedule.next_after(now) if schedule and schedule.every is None else None
        except Exception:  # as in status_of: an odd schedule never fails the whole answer
            nxt = None
        cache[spec] = (cronwords.describe(spec), _iso(nxt))
    words, nxt_iso = cache[spec]
    return words, "" if status in ("paused", "invalid") else nxt_iso


def _pushed(item: BackupItem) -> str:
    """The schedule ``item``'s jobs are pushed with, "" when it has none (invalid)."""
    return item.schedule if item.schedule_ok else ""


def counts(items: list[ItemStatus]) -> dict[str, int]:
    found = Counter(i.status for i in items)
    return {s: found.get(s, 0) for s in STATUSES}
