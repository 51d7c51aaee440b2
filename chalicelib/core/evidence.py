"""The RPO/RTO evidence report: what an audit asks of backups, worked out from the records. Pure.

For every declared volume × instance (app, proc, volume, instance) over a window of ``days`` up to
``now`` (both given: nothing here reads a clock):

* the **target RPO** its schedule implies: the largest interval between two consecutive runs of
  the schedule as pushed (a weekday schedule at 02:00 implies 3 days, Friday to Monday);
* the **achieved RPO**: the largest gap between consecutive good backups (successes not judged
  suspect) in the window, counting the window's start (or, if later, when the job first reached
  its node, or its first run if that came earlier still) to the first one and the last one to
  ``now``; and, apart, ``now`` minus the newest good backup (which may be older than the window);
* the **share of due runs that succeeded**: each run the schedule made due in the window (from
  its start, or the job's first push, to ``now`` minus the grace) counts as met when a good
  backup started in its slot (from its due time to the next one, a few seconds of clock skew
  allowed); runs due while the job was paused count as missed, and the pause is an exception;
* the **last drill** (restore operations with ``plan.kind == "drill"``) and its outcome, the
  **throughput** the newest verified drill measured (bytes / seconds) and the **RTO** it predicts
  at today's size (the newest good backup's archive size / that throughput);
* every **exception** of the window: failed runs, suspect runs, pauses (reason, who, until when),
  restores performed (recover and migrate operations), drills that did not verify;
* one **control** per target, each ``pass``, ``fail`` or ``unknown`` (with why): RPO met, success
  share met, drilled (verified) within the drill cycle, RTO met.

Units: sizes in bytes, throughput in MiB/s (1 MiB = 1,048,576 bytes), durations in whole seconds
(and hours or minutes beside them, for people). Everything is ordered, so the same inputs give the
same report byte for byte; :func:`canonical` is the form its sha256 is taken of.
"""

from __future__ import annotations

import hashlib
import json
import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any

from chalicelib.core import cron
from chalicelib.core.gotime import parse_go_time
from chalicelib.core.operation import Operation
from chalicelib.core.sizes import archive_size

MIB = 1024 * 1024
SKEW = 5  # seconds: daemon clocks and a run's expected start may differ a little (as freshness)
MAX_DUE = 100_000  # due runs counted per item (every minute for 69 days); more: the share is unknown
MAX_WALK = 5_000  # runs of a schedule with a time zone walked one by one (croniter, ~0.1 ms each)
HORIZON_DAYS = 4 * 366  # the target RPO looks this far each side of now: a Feb 29 schedule fires
MAX_EXCEPTIONS = 200  # entries listed per item (newest kept; all counted in exception_counts)
STREAKS = ("failed_run", "suspect_run")  # consecutive ones with the same reason: one entry
CONTROLS = ("rpo", "success_share", "drill", "rto")
RESTORE_KINDS = ("recover", "migrate")
DRILL_KIND = "drill"
TARGET_KEYS = ("rpo_hours", "rto_minutes", "success_percent", "drill_days")


@dataclass(frozen=True)
class Targets:
    """What an app promises. ``rpo_hours`` 0: each item's own schedule (its target RPO) plus the
    freshness grace, so the control asks "was every promised backup made"."""

    rpo_hours: float = 0.0
    rto_minutes: float = 240.0
    success_percent: float = 95.0
    drill_days: float = 7.0

    def to_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in TARGET_KEYS}


def parse_targets(text: str) -> dict[str, dict[str, float]]:
    """Per-app overrides, ``<app>:<key>=<number>[,<key>=<number>…][;<app>:…]`` (keys
    :data:`TARGET_KEYS`) → ``{app: {key: value}}``; ``ValueError`` naming what is wrong (the
    setting is read once, so a typo fails loudly instead of silently auditing the defaults)."""
    out: dict[str, dict[str, float]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        app, sep, pairs = part.partition(":")
        if not sep or not app.strip():
            raise ValueError(f"{part[:40]!r} is not <app>:<key>=<number>,…")
        values = out.setdefault(app.strip(), {})
        for pair in filter(None, (p.strip() for p in pairs.split(","))):
            key, eq, raw = pair.partition("=")
            if key.strip() not in TARGET_KEYS or not eq:
                raise ValueError(f"{pair[:40]!r}: the key is one of {', '.join(TARGET_KEYS)}")
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{pair[:40]!r}: {raw[:20]!r} is not a number") from None
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{pair[:40]!r}: must be a number of at least 0")
            values[key.strip()] = value
    return out


def targets_for(app: str, defaults: Targets, overrides: Mapping[str, Mapping[str, float]]
                ) -> Targets:
    """The app's targets: the defaults with its own overrides."""
    return Targets(**{**defaults.to_dict(), **overrides.get(app, {})})


@dataclass(frozen=True)
class Declared:
    """One declared volume × instance as lainlet has it now: its schedule as written and as
    pushed ("" when invalid), the nodes and backup jobs it has, and when the first of its jobs
    reached its node ("" when unknown)."""

    app: str
    proc: str  # the full proc name, as records carry it
    instance: int
    volume: str
    mode: str
    schedule: str
    pushed: str
    nodes: tuple[str, ...] = ()
    job_ids: tuple[str, ...] = ()
    first_seen: str = ""

    @property
    def key(self) -> tuple[str, int, str]:
        return self.proc, self.instance, self.volume


@dataclass(frozen=True)
class PauseSeen:
    """A pause of one of the app's jobs: from the audit trail (a user's ``sleep``, with who) or
    the pauses on record now (an adopted one was found on its node, set by nobody known)."""

    job_id: str
    at: str
    until: str
    reason: str = ""
    by: str = ""


@dataclass(frozen=True)
class AppInputs:
    """Everything the report of one app is made of, as read (any order: it is sorted here)."""

    app: str
    items: Sequence[Declared]
    records: Sequence[Mapping[str, Any]]  # the app's records started in the window
    latest_good: Mapping[str, Mapping[str, Any]]  # job id → its newest good success (any age)
    pauses: Sequence[PauseSeen] = ()
    operations: Sequence[Operation] = ()
    unreadable: Sequence[tuple[str, str]] = ()  # (operation id, why) of operations not readable
    callers: Mapping[str, str] = field(default_factory=dict)  # operation id → who asked for it
    targets: Targets = Targets()
    problems: Sequence[str] = ()  # why (part of) the app could not be evaluated


# -- time ------------------------------------------------------------------------------------------

def _epoch(when: datetime) -> int:
    return int(when.timestamp())


def _iso(seconds: int | None) -> str:
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: Any) -> int | None:
    """Epoch seconds of a Go time string, None when it is not one."""
    try:
        return _epoch(parse_go_time(text)[0])
    except (ValueError, TypeError):
        return None


def _span(seconds: int | None) -> dict[str, Any] | None:
    """A duration for programs (seconds) and people (hours)."""
    if seconds is None:
        return None
    return {"seconds": seconds, "hours": round(seconds / 3600, 2)}


# -- schedules -------------------------------------------------------------------------------------

def _day_fires(day: date, doms: frozenset[int], months: frozenset[int], dows: frozenset[int],
               day_or: bool) -> bool:
    """robfig's dayMatches: day of month and weekday OR-ed only when neither was written ``*``."""
    if day.month not in months:
        return False
    dom, dow = day.day in doms, (day.weekday() + 1) % 7 in dows
    return (dom or dow) if day_or else (dom and dow)


@lru_cache(maxsize=1024)
def _times_of_day(seconds: tuple[int, ...], minutes: tuple[int, ...], hours: tuple[int, ...]
                  ) -> tuple[int, ...]:
    """Every second of the day (UTC) a cron schedule fires at, sorted."""
    return tuple(sorted(h * 3600 + m * 60 + s for h in hours for m in minutes for s in seconds))


@lru_cache(maxsize=256)
def _firing_days(doms: frozenset[int], months: frozenset[int], dows: frozenset[int], day_or: bool,
                 first: date, last: date) -> tuple[date, ...]:
    out, day = [], first
    while day <= last:
        if _day_fires(day, doms, months, dows, day_or):
            out.append(day)
        day += timedelta(days=1)
    return tuple(out)


def _utc_cron(schedule: cron.Schedule) -> bool:
    return schedule.every is None and schedule.tz == UTC and len(schedule.values) == 6


def _day_parts(schedule: cron.Schedule) -> tuple[tuple[int, ...], tuple[Any, ...]]:
    sec, minute, hour, dom, month, dow = schedule.values
    return _times_of_day(sec, minute, hour), (frozenset(dom), frozenset(month), frozenset(dow),
                                               schedule.day_or)


def target_rpo(schedule: cron.Schedule, now: datetime) -> int | None:
    """The largest interval, in seconds, between two consecutive runs of ``schedule`` within
    :data:`HORIZON_DAYS` either side of ``now`` (None: it fires less than twice there). A UTC
    schedule is read from its fields (exact, and cheap for any number of runs); one with a time
    zone is walked run by run (its first :data:`MAX_WALK` runs from a year ago: a lower bound)."""
    if schedule.every is not None:
        return int(schedule.every.total_seconds())
    if _utc_cron(schedule):
        times, day = _day_parts(schedule)
        return _utc_target(times, *day, now.date())
    return _walked_target(schedule.spec, _epoch(now) // 86400)


@lru_cache(maxsize=1024)
def _utc_target(times: tuple[int, ...], doms: frozenset[int], months: frozenset[int],
                dows: frozenset[int], day_or: bool, today: date) -> int | None:
    days = _firing_days(doms, months, dows, day_or, today - timedelta(days=HORIZON_DAYS),
                        today + timedelta(days=HORIZON_DAYS))
    if not days or not times or (len(days) == 1 and len(times) == 1):
        return None
    within = max((b - a for a, b in pairwise(times)), default=0)
    across = max(((b - a).days * 86400 + times[0] - times[-1]
                  for a, b in pairwise(days)), default=0)
    return max(within, across)


@lru_cache(maxsize=256)
def _walked_target(spec: str, today: int) -> int | None:
    schedule = cron.parse(spec)
    when: datetime | None = datetime.fromtimestamp((today - 366) * 86400, UTC)
    runs: list[int] = []
    while when is not None and len(runs) < MAX_WALK and (not runs or runs[-1] < (today + 366) * 86400):
        when = schedule.next_after(when)
        if when is not None:
            runs.append(_epoch(when))
    gaps = [b - a for a, b in pairwise(runs)]
    return max(gaps) if gaps else None


def due_times(schedule: cron.Schedule, start: int, end: int) -> list[int] | None:
    """Epoch seconds of the runs of ``schedule`` from ``start`` to ``end`` (inclusive), sorted;
    None when there are more than :data:`MAX_DUE` (or more than :data:`MAX_WALK` to walk).
    ``@every`` runs count from when the daemon took the job, which no record says: the window is
    cut into intervals of that length from ``start``."""
    if end < start:
        return []
    if schedule.every is not None:
        step = max(1, int(schedule.every.total_seconds()))
        count = (end - start) // step
        return [start + step * (k + 1) for k in range(count)] if count <= MAX_DUE else None
    if _utc_cron(schedule):
        times, day = _day_parts(schedule)
        first, last = (datetime.fromtimestamp(t, UTC).date() for t in (start, end))
        out: list[int] = []
        for d in _firing_days(*day, first, last):
            base = (d - date(1970, 1, 1)).days * 86400
            out += [base + t for t in times if start <= base + t <= end]
            if len(out) > MAX_DUE:
                return None
        return out
    walked: list[int] = []
    when = schedule.next_after(datetime.fromtimestamp(start - 1, UTC))
    while when is not None and _epoch(when) <= end:
        walked.append(_epoch(when))
        if len(walked) > MAX_WALK:
            return None
        when = schedule.next_after(when)
    return walked


# -- one item --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """A finished backup run of an item, as the report reads its record."""

    start: int
    rid: str
    state: str
    size: int | None
    suspect: str
    reason: str
    recovered: bool

    @property
    def good(self) -> bool:
        return self.state == "success" and not self.suspect


def _run_of(record: Mapping[str, Any]) -> tuple[tuple[str, int, str], Run] | None:
    """(item key, run) of a backup job's finished record; None for anything else."""
    if record.get("action") != "backup":
        return None
    args = record.get("args")
    run = _finished(record)
    if not isinstance(args, Mapping) or run is None:
        return None
    try:
        instance = int(args.get("instanceNo"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return (str(args.get("proc", "")), instance, str(args.get("volume", ""))), run


def _finished(record: Mapping[str, Any]) -> Run | None:
    """The run of a finished record, or of a job's newest good success as the store keeps it
    (its few fields: no action nor args, the job it is of says whose it is); None otherwise."""
    start = _parse(record.get("start"))
    if record.get("state") not in ("success", "failed") or start is None:
        return None
    return Run(start, str(record.get("rid", "")), str(record["state"]),
               archive_size(record.get("result")), str(record.get("suspect") or ""),
               str(record.get("reason") or ""), bool(record.get("recovered")))


def _drill_of(op: Operation) -> dict[str, Any]:
    """A drill operation as the report shows it; an open one (no outcome yet) says so."""
    drill = op.drill if isinstance(op.drill, Mapping) else {}

    def number(key: str) -> float:
        value = drill.get(key)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return float(value) if ok and value > 0 else 0.0  # type: ignore[operator, arg-type]

    size, seconds = int(number("bytes")), number("seconds")
    at = _parse(drill.get("at")) or _parse(op.updated) or _parse(op.created) or 0
    return {"operation": op.id, "at": _iso(at), "outcome": str(drill.get("outcome") or
                                                                  ("open" if not op.finished else
                                                                   "no outcome")),
            "fault": str(drill.get("fault") or ""), "bytes": size, "seconds": round(seconds, 3),
            "throughput_mib_s": round(size / seconds / MIB, 3) if size and seconds else None,
            "backup": op.plan.name, "node": op.plan.node, "_at": at,
            "_throughput": size / seconds if size and seconds else None}


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if not k.startswith("_")}


def _control(status: str, why: str) -> dict[str, str]:
    return {"status": status, "why": why}


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def item_report(d: Declared, runs: Sequence[Run], newest_good: Run | None,
                drills: Sequence[dict[str, Any]], exceptions: list[dict[str, Any]], *, now: int,
                start: int, grace: int, targets: Targets, gone: frozenset[str] = frozenset()
                ) -> dict[str, Any]:
    """The evidence of one volume × instance (see the module); ``runs`` are its runs in the
    window, ``newest_good`` its newest good backup of any age (``gone``: rids of good backups
    whose archive is known deleted, never the newest), ``exceptions`` its own already
    found (pauses, restores), to which its failed and suspect runs are added."""
    runs = sorted(runs, key=lambda r: (r.start, r.rid))
    goods = [r for r in runs if r.good]
    first_seen = _parse(d.first_seen)
    if first_seen is not None and runs:  # a run before its recorded first push: the job existed
        first_seen = min(first_seen, runs[0].start)  # (the node states were made afresh since)
    if first_seen is not None and newest_good:  # so did the item, before its job's ID changed
        first_seen = min(first_seen, newest_good.start)  # (its history followed: core/lineage)
    counted_from = max(start, first_seen) if first_seen else start
    schedule = None
    if d.pushed:
        try:
            schedule = cron.parse(d.pushed)
        except cron.ScheduleError:
            schedule = None
    implied = target_rpo(schedule, datetime.fromtimestamp(now, UTC)) if schedule else None

    # achieved RPO: the largest gap between consecutive good backups, ends of the window included
    points = [counted_from, *(r.start for r in goods if r.start >= counted_from), now]
    gap, gap_from, gap_to = max(((b - a, a, b) for a, b in pairwise(points)),
                                default=(0, counted_from, now))
    kept = [r for r in goods if r.rid not in gone]  # a deleted archive restores nothing now
    newest = max([r for r in (newest_good, *kept[-1:]) if r], key=lambda r: r.start, default=None)
    since_good = max(0, now - newest.start) if newest else None

    # share of due runs that succeeded
    due = due_times(schedule, counted_from, now - grace) if schedule else []
    share: dict[str, Any]
    if due is None:
        share = {"due": None, "succeeded": None, "percent": None,
                 "why": f"too many runs were due in the window to count (more than {MAX_DUE:,}, "
                        f"or {MAX_WALK:,} for a schedule with TZ=)"}
    elif schedule is None:
        share = {"due": None, "succeeded": None, "percent": None,
                 "why": f"the schedule {d.schedule!r} is invalid or never fires: no run is due"}
    else:
        met = {bisect_right(due, r.start + SKEW) - 1 for r in goods}
        met.discard(-1)
        share = {"due": len(due), "succeeded": len(met),
                 "percent": round(100 * len(met) / len(due), 2) if due else None}

    # drills
    drills = sorted(drills, key=lambda x: (x["_at"], x["operation"]))
    last_drill = drills[-1] if drills else None
    verified = [x for x in drills if x["outcome"] == "verified"]
    measured = next((x for x in reversed(verified) if x["_throughput"]), None)
    size = newest.size if newest else None
    rto = round(size / measured["_throughput"]) if size and measured else None

    for r in runs:
        if r.state == "failed":
            exceptions.append({"kind": "failed_run", "at": _iso(r.start), "rid": r.rid,
                               "detail": r.reason or "the daemon gave no reason"})
        elif r.suspect:
            exceptions.append({"kind": "suspect_run", "at": _iso(r.start), "rid": r.rid,
                               "detail": r.suspect})
    for x in drills:
        if x["_at"] >= start and x["outcome"] not in ("verified", "open"):
            exceptions.append({"kind": "drill_not_verified", "at": x["at"], "operation": x["operation"],
                               "detail": f"{x['outcome']}" + (f" ({x['fault']} fault)" if x["fault"]
                                                              else "")})
    counted = _counts(exceptions)
    exceptions, omitted = bounded(exceptions)

    target = targets.rpo_hours * 3600 if targets.rpo_hours else (implied + grace if implied else None)
    rto_ok = rto is not None and rto <= targets.rto_minutes * 60
    controls = {
        "rpo": (_control("unknown", "no target: RPO_HOURS is 0 and the schedule implies none")
                if target is None else
                _control("pass" if gap <= target else "fail",
                         f"largest gap {_hours(gap)} {'within' if gap <= target else 'over'} the "
                         f"target {_hours(target)}")),
        "success_share": (_control("unknown", share.get("why") or "no run was due in the window")
                          if not share["due"] else
                          _control("pass" if share["percent"] >= targets.success_percent else "fail",
                                   f"{share['succeeded']} of {share['due']} due runs succeeded "
                                   f"({share['percent']}%; target {targets.success_percent:g}%)")),
        "drill": _drill_control(verified, last_drill, now, targets.drill_days),
        "rto": (_control("unknown", "no verified drill measured a throughput" if not measured
                         else "no good backup with an archive size (increments report none)")
                if rto is None else
                _control("pass" if rto_ok else "fail",
                         f"predicted {rto / 60:.1f} min {'within' if rto_ok else 'over'} the target "
                         f"{targets.rto_minutes:g} min")),
    }
    return {
        "app": d.app, "proc": d.proc, "instance": d.instance, "volume": d.volume, "mode": d.mode,
        "nodes": sorted(d.nodes), "schedule": d.schedule, "schedule_pushed": d.pushed,
        "counted_from": _iso(counted_from),
        "target_rpo": _span(implied),
        "achieved_rpo": {**(_span(gap) or {}), "from": _iso(gap_from), "to": _iso(gap_to)},
        "since_last_good": _span(since_good),
        "last_good": {"at": _iso(newest.start), "rid": newest.rid, "bytes": newest.size}
        if newest else None,
        "runs": {"good": len(goods), "suspect": sum(r.state == "success" and bool(r.suspect)
                                                    for r in runs),
                 "failed": sum(r.state == "failed" for r in runs)},
        "due_runs": share,
        "last_drill": _public(last_drill) if last_drill else None,
        "last_verified_drill": _public(verified[-1]) if verified else None,
        "throughput_mib_s": measured["throughput_mib_s"] if measured else None,
        "predicted_rto": {"seconds": rto, "minutes": round(rto / 60, 1), "bytes": size}
        if rto is not None else None,
        "exceptions": exceptions,
        "exception_counts": counted,
        "exceptions_omitted": omitted,
        "controls": controls,
    }


def _counts(exceptions: list[dict[str, Any]]) -> dict[str, int]:
    """How many exceptions of each kind (a run of failures is as many as it has runs)."""
    out: dict[str, int] = {}
    for e in exceptions:
        out[e["kind"]] = out.get(e["kind"], 0) + 1
    return dict(sorted(out.items()))


def bounded(exceptions: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The exceptions oldest first, each streak of runs that failed (or were suspect) for the
    same reason one entry (``count``, from ``at`` to ``last``), and only the newest
    :data:`MAX_EXCEPTIONS` of those: a job failing every 30 minutes for a year is one line, and
    an answer stays under Lambda's size. Also how many older entries were left out."""
    ordered = sorted(exceptions, key=lambda e: (e["at"], e["kind"], json.dumps(e, sort_keys=True)))
    out: list[dict[str, Any]] = []
    for e in ordered:
        last = out[-1] if out else None
        if (last is not None and e["kind"] in STREAKS and last["kind"] == e["kind"]
                and last["detail"] == e["detail"]):
            last["count"] = last.get("count", 1) + 1
            last["last"] = e["at"]
        else:
            out.append(dict(e))
    omitted = max(0, len(out) - MAX_EXCEPTIONS)
    return out[omitted:], omitted


def _drill_control(verified: list[dict[str, Any]], last: dict[str, Any] | None, now: int,
                   days: float) -> dict[str, str]:
    if not verified:
        tried = f"; the last drill ({last['at']}) ended {last['outcome']}" if last else ""
        return _control("fail", f"never verified by a drill{tried}")
    newest = verified[-1]
    age = now - newest["_at"]
    ok = age <= days * 86400
    return _control("pass" if ok else "fail",
                    f"last verified by a drill at {newest['at']}, {age / 86400:.1f} days ago "
                    f"({'within' if ok else 'over'} the {days:g}-day cycle)")


# -- one app ---------------------------------------------------------------------------------------

def app_report(inputs: AppInputs, *, now: datetime, days: int, grace: int) -> dict[str, Any]:
    """The evidence of one app: every declared item's (see :func:`item_report`), the exceptions
    that concern no declared item (a pause of a job no longer generated, an unreadable
    operation), the counts per control and the app's result (``pass``: every control of every
    item passed; ``fail``: one failed; ``incomplete``: none failed, some unknown or the app
    could not be evaluated; ``nothing_declared``: the app declares no backup volume)."""
    end = _epoch(now)
    start = end - days * 86400
    declared = sorted(inputs.items, key=lambda d: (d.proc, d.instance, d.volume))
    keys = {d.key for d in declared}
    by_job = {job: d.key for d in declared for job in d.job_ids}

    runs: dict[tuple[str, int, str], list[Run]] = {}
    for record in inputs.records:
        found = _run_of(record)
        if found and found[0] in keys and start <= found[1].start <= end:
            runs.setdefault(found[0], []).append(found[1])
    own: dict[tuple[str, int, str], list[dict[str, Any]]] = {k: [] for k in keys}
    loose: list[dict[str, Any]] = []
    newest_good: dict[tuple[str, int, str], Run] = {}
    gone: set[str] = set()  # rids of good backups whose archive is known deleted
    for job, record in sorted(inputs.latest_good.items()):
        good = _finished(record)  # the job's newest good success, possibly carried from the
        key = by_job.get(job)     # item's former job ID (core/lineage.py)
        if not (good and key and good.good):
            continue
        if record.get("gone"):
            gone.add(good.rid)
            own[key].append({"kind": "backup_gone", "at": _iso(good.start),
                             "rid": good.rid, "detail": str(record["gone"])})
        elif key not in newest_good or good.start > newest_good[key].start:
            newest_good[key] = good
    for p in inputs.pauses:
        at, until = _parse(p.at), _parse(p.until)
        if (until is not None and until < start) or (at is not None and at > end):
            continue
        entry = {"kind": "pause", "at": _iso(at) if at is not None else p.at, "job": p.job_id,
                 "until": _iso(until) if until is not None else p.until,
                 "detail": p.reason or "no reason given", "by": p.by or "unknown"}
        (own[by_job[p.job_id]] if p.job_id in by_job else loose).append(entry)
    drills: dict[tuple[str, int, str], list[dict[str, Any]]] = {k: [] for k in keys}
    for op in inputs.operations:
        key = (op.plan.proc, op.plan.instance, op.plan.volume)
        if op.plan.kind == DRILL_KIND:
            if key in drills:
                drills[key].append(_drill_of(op))
        elif op.plan.kind in RESTORE_KINDS:
            at = _parse(op.created)
            if at is None or not start <= at <= end:
                continue
            entry = {"kind": "restore", "at": _iso(at), "operation": op.id,
                     "detail": f"{op.plan.kind} of {op.plan.name}: {op.phase.value}"
                               + (f" ({op.error})" if op.error else ""),
                     "by": inputs.callers.get(op.id, "unknown")}
            own.get(key, loose).append(entry)
    for why in inputs.problems:
        loose.append({"kind": "not_evaluated", "at": "", "detail": why})
    for op_id, why in inputs.unreadable:
        loose.append({"kind": "operation_unreadable", "at": "", "operation": op_id, "detail": why})
    loose, _ = bounded(loose)

    items = [item_report(d, runs.get(d.key, []), newest_good.get(d.key), drills[d.key], own[d.key],
                         now=end, start=start, grace=grace, targets=inputs.targets,
                         gone=frozenset(gone))
             for d in declared]
    counts = {c: {s: sum(i["controls"][c]["status"] == s for i in items)
                  for s in ("pass", "fail", "unknown")} for c in CONTROLS}
    failed = any(v["fail"] for v in counts.values())
    unknown = any(v["unknown"] for v in counts.values())
    return {"app": inputs.app, "targets": inputs.targets.to_dict(),
            "result": ("fail" if failed else "incomplete" if unknown or inputs.problems
                       else "pass" if items else "nothing_declared"),
            "controls": counts, "items": items, "exceptions": loose}


# -- the report and its hash -----------------------------------------------------------------------

def report(apps: Iterable[dict[str, Any]], *, scope: str, now: datetime, days: int,
           grace: int, page: dict[str, str] | None = None) -> dict[str, Any]:
    """The report's body: its scope (an app, or ``system``), window, units and the apps'
    evidence; ``page`` (system reports) names the apps it covers and the next one."""
    end = _epoch(now)
    body: dict[str, Any] = {
        "report": "backup evidence", "scope": scope,
        "window": {"from": _iso(end - days * 86400), "to": _iso(end), "days": days},
        "grace_seconds": grace,
        "units": {"bytes": "bytes", "throughput": "MiB/s (1 MiB = 1,048,576 bytes)",
                  "durations": "seconds (hours or minutes beside them)", "times": "UTC"},
        "apps": list(apps),
    }
    if page is not None:
        body["page"] = page
    return body


def canonical(body: Any) -> str:
    """The one serialization the sha256 is taken of: JSON, keys sorted, no spaces, ASCII."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def signed(body: dict[str, Any]) -> dict[str, Any]:
    """The answer: the body and the sha256 of its canonical form (what a reader recomputes)."""
    return {"sha256": sha256(canonical(body)),
            "hashed": "sha256 of report as JSON with sorted keys, separators (',', ':'), ASCII",
            "report": body}
