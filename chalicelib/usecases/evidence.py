"""The RPO/RTO evidence report of one app, or of every app a page at a time: what an audit asks
of the backups, gathered here and worked out in :mod:`chalicelib.core.evidence`.

What it reads, all from lainlet and DynamoDB (no daemon is asked, so it answers while nodes are
down), per app: the declared items (lainlet), the app's job records started in the window (one
Query per month of the window, keyed from its start: nothing older is read), each job's newest good
backup (one BatchGetItem), the audit trail of the window (who paused, who restored), the pauses on
record and the first push of each job (one Query each, shared by every app), and the app's newest
:data:`MAX_OPERATIONS` operations (restores and drills).

Bounded: one app's report reads at most :data:`MAX_RECORDS` records and answers at most
:data:`MAX_BYTES` of JSON (more is a 413 that says to ask for fewer days; each item lists its
newest exceptions only, streaks of the same failure as one). The system report is cut into pages
of whole apps, in name order, each page ending after :data:`PAGE_APPS` apps, after the app whose
records take it past :data:`PAGE_RECORDS`, or before the app that would take it past
:data:`MAX_BYTES`; the next page is asked with ``?next=<app>`` (the ``X-Backupctl-Next`` header,
and the report's ``page.next``). Each page is a report of its own, with its own sha256; an app too
large for any page is listed as not evaluated, saying why.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from chalicelib.core import evidence
from chalicelib.core.cluster import Cluster
from chalicelib.core.evidence import AppInputs, Declared, PauseSeen, Targets
from chalicelib.core.formats import evidence as render
from chalicelib.core.formats.answers import Text
from chalicelib.core.formats.inputs import bounded_int, preview
from chalicelib.core.formats.pages import MAX_PAGE_BYTES
from chalicelib.core.gotime import format_time, parse_go_time
from chalicelib.core.jobs import placements
from chalicelib.core.naming import check_name
from chalicelib.core.operation import Operation
from chalicelib.core.plan import NodeState
from chalicelib.core.types import Pauses
from chalicelib.deps import Deps
from chalicelib.edges.operations import Unreadable
from chalicelib.errors import BadRequest, PayloadTooLarge

FORMATS = ("json", "csv", "html")
MAX_DAYS = 400
MAX_RECORDS = 50_000  # one app's records in one report (a Query reads ~1,000 a page)
PAGE_RECORDS = 20_000  # a system page ends after the app that takes it past this many records
PAGE_APPS = 25
MAX_OPERATIONS = 1000
MAX_AUDIT = 2000
MAX_BYTES = MAX_PAGE_BYTES // 2  # of JSON per answer: the page of the same report is larger
NEXT_HEADER = "X-Backupctl-Next"  # the router's header of the next page (the web layer's name)
SHA_HEADER = "X-Backupctl-Sha256"


def options(days: str, fmt: str) -> tuple[int, str]:
    """``?days=`` (1 to 400, default 30) and ``?format=`` (json, csv or html), checked before
    anything is read: a 400 naming the one that is wrong."""
    window = bounded_int(days or "30", "days", 1, MAX_DAYS)
    form = fmt or "json"
    if form not in FORMATS:
        raise BadRequest(f"format must be one of {', '.join(FORMATS)}, got {preview(fmt)}",
                         code="bad_format")
    return window, form


def app_evidence(deps: Deps, app: str, days: str = "", fmt: str = "") -> Text:
    """One app's evidence over the last ``days``: 404 for an app lainlet does not know."""
    window, form = options(days, fmt)
    cluster = deps.cluster(app)
    cluster.procs_of(app)  # 404 for an unknown app
    now = deps.clock().replace(microsecond=0)
    shared = _Shared(deps.state.states(), deps.state.pauses())
    inputs, records = _gather(deps, cluster, app, now, window, shared)
    if records > MAX_RECORDS:
        raise PayloadTooLarge(f"app {app} has more than {MAX_RECORDS:,} job records in the last "
                              f"{window} days, more than one report reads: ask for fewer days "
                              "(?days=)", code="too_large")
    report = evidence.app_report(inputs, now=now, days=window, grace=_grace(deps))
    if _size(report) > MAX_BYTES:
        raise PayloadTooLarge(f"the evidence of app {app} over {window} days is "
                              f"{_size(report):,} bytes of JSON, more than one answer carries "
                              f"({MAX_BYTES:,}): ask for fewer days (?days=)", code="too_large")
    body = evidence.report([report], scope=app, now=now, days=window, grace=_grace(deps))
    return _answer(body, form, window, app)


def system_evidence(deps: Deps, days: str = "", fmt: str = "", next_app: str = "") -> Text:
    """Every app's evidence, a page of whole apps at a time (see the module)."""
    window, form = options(days, fmt)
    if next_app:
        check_name(next_app, "next")
    cluster = deps.cluster()
    now = deps.clock().replace(microsecond=0)
    shared = _Shared(deps.state.states(), deps.state.pauses())
    apps = [a for a in sorted(cluster.apps()) if a >= next_app]
    done: list[dict[str, Any]] = []
    read, size, following = 0, 0, ""
    for app in apps:
        if done and (read >= PAGE_RECORDS or len(done) >= PAGE_APPS):
            following = app
            break
        inputs, records = _gather(deps, cluster, app, now, window, shared)
        why = (f"more than {MAX_RECORDS:,} job records in the last {window} days"
               if records > MAX_RECORDS else "")
        report = {} if why else evidence.app_report(inputs, now=now, days=window,
                                                     grace=_grace(deps))
        if report and size + _size(report) > MAX_BYTES:
            if done:  # the next page starts with it
                following = app
                break
            why = f"its evidence is {_size(report):,} bytes of JSON, more than one answer carries"
        if why:
            report = evidence.app_report(AppInputs(app, [], [], {}, targets=inputs.targets, problems=(
                f"{why}: not evaluated; ask for this app alone with fewer days "
                f"(/api/v2/app/{app}/evidence?days=)",)), now=now, days=window, grace=_grace(deps))
        read += records
        size += _size(report)
        done.append(report)
    page = {"first": done[0]["app"] if done else "", "last": done[-1]["app"] if done else "",
            "next": following}
    body = evidence.report(done, scope="system", now=now, days=window, grace=_grace(deps),
                           page=page)
    return _answer(body, form, window, "system", following)


@dataclass(frozen=True)
class _Shared:
    """What every app's report reads from one Query each: node states (each job's first push)
    and the pauses on record."""

    states: dict[str, NodeState]
    pauses: Pauses


def _size(report: dict[str, Any]) -> int:
    return len(evidence.canonical(report))


def _grace(deps: Deps) -> int:
    return int(deps.settings.freshness_grace_seconds)


def _targets(deps: Deps, app: str) -> Targets:
    s = deps.settings
    defaults = Targets(s.evidence_rpo_hours, s.evidence_rto_minutes, s.evidence_success_percent,
                       s.drill_cycle_days)
    return evidence.targets_for(app, defaults, evidence.parse_targets(s.evidence_app_targets))


def _declared(cluster: Cluster, app: str, shared: _Shared) -> list[Declared]:
    """The app's volume × instance items, each with its nodes, its jobs and the earliest first
    push of one of them."""
    first_seen = {(node, job): when for node, state in shared.states.items()
                  for job, when in state.first_seen}
    found: dict[tuple[str, int, str], dict[str, Any]] = {}
    for proc in cluster.procs_of(app):
        for pod in proc.pods:
            for item in pod.items:
                found.setdefault((proc.full_name, pod.instance_no, item.volume), {
                    "mode": item.mode or "full", "schedule": item.schedule_written,
                    "pushed": item.schedule if item.schedule_ok else "", "nodes": [], "jobs": [],
                    "seen": []})
    for p in placements(cluster):
        entry = found.get((p.proc.full_name, p.pod.instance_no, p.item.volume))
        if p.proc.app != app or entry is None:
            continue
        entry["nodes"].append(p.node)
        if p.job:
            entry["jobs"].append(p.job["id"])
            if (p.node, p.job["id"]) in first_seen:
                entry["seen"].append(first_seen[(p.node, p.job["id"])])
    return [Declared(app, proc, instance, volume, e["mode"], e["schedule"], e["pushed"],
                     tuple(dict.fromkeys(e["nodes"])), tuple(dict.fromkeys(e["jobs"])),
                     min(e["seen"], key=_sortable, default=""))
            for (proc, instance, volume), e in found.items()]


def _sortable(text: str) -> str:
    try:
        return format_time(parse_go_time(text)[0])
    except ValueError:
        return "9999"


def _gather(deps: Deps, cluster: Cluster, app: str, now: datetime, days: int, shared: _Shared
            ) -> tuple[AppInputs, int]:
    """The app's inputs and how many records were read (one more than the limit: too many)."""
    start = now - timedelta(days=days)
    items = _declared(cluster, app, shared)
    jobs = {job for d in items for job in d.job_ids}
    records = deps.records.window(app, start, now, MAX_RECORDS + 1)
    goods = deps.records.goods(sorted(jobs)) if jobs else {}
    audit = deps.audit.of_app(app, MAX_AUDIT, since=start)
    operations: list[Operation] = []
    unreadable: list[tuple[str, str]] = []
    for op in deps.operations.of_app(app, MAX_OPERATIONS):
        if isinstance(op, Unreadable):
            unreadable.append((op.op_id, op.reason))
        else:
            operations.append(op)
    callers = {str(e["id"]): _who(e) for e in audit if e.get("id")}
    inputs = AppInputs(app, items, records, goods, _pauses(audit, shared.pauses, jobs, now, deps),
                       operations, unreadable, callers, _targets(deps, app))
    return inputs, len(records)


def _who(entry: Mapping[str, Any]) -> str:
    """Who made an audited call, as far as the trail tells: the API token's fingerprint (never
    the token) and the caller's address."""
    caller = entry.get("caller") or {}
    token = str(caller.get("token") or "none")
    ip = str(caller.get("ip") or "")
    return ("no token" if token == "none" else token) + (f" from {ip}" if ip else "")


def _pauses(audit: list[dict[str, Any]], on_record: Pauses, jobs: set[str], now: datetime,
            deps: Deps) -> list[PauseSeen]:
    """The pauses of the app's jobs in the window: each ``sleep`` in the audit trail (who, why,
    until its end or the job's next ``wakeup``), and the pauses on record now that no audited
    sleep explains (set before the window, or found on a node with nobody known)."""
    longest = timedelta(days=deps.settings.pause_max_days)
    seen: list[PauseSeen] = []
    open_by_job: dict[str, int] = {}
    for entry in sorted(audit, key=lambda e: str(e.get("time", ""))):
        target = entry.get("target") or {}
        action, job = target.get("action"), str(target.get("job_id") or "")
        status = (entry.get("outcome") or {}).get("status")
        ok = isinstance(status, int) and status < 300
        if not ok or job not in jobs or action not in ("sleep", "wakeup"):
            continue
        at = str(entry.get("time", ""))
        if action == "sleep":
            seen.append(PauseSeen(job, at, _asked_end(str(target.get("until") or ""), at, longest),
                                  str(target.get("reason") or ""), _who(entry)))
            open_by_job[job] = len(seen) - 1
        elif job in open_by_job:
            index = open_by_job.pop(job)
            if _sortable(at) < _sortable(seen[index].until):
                seen[index] = PauseSeen(job, seen[index].at, at, seen[index].reason, seen[index].by)
    for node_pauses in on_record.values():
        for job, pause in sorted(node_pauses.items()):
            if job not in jobs or any(p.job_id == job and _near(p.at, pause.paused_at) for p in seen):
                continue
            by = "nobody known: found paused on its node" if pause.adopted else "not in the audit trail"
            seen.append(PauseSeen(job, pause.paused_at or format_time(now), pause.until,
                                  pause.reason, by))
    return seen


def _asked_end(until: str, at: str, longest: timedelta) -> str:
    """When an audited sleep's pause was to end: its ``until`` (a time, or a duration after the
    call), or ``PAUSE_MAX_DAYS`` after the call when none was given."""
    try:
        start = parse_go_time(at)[0]
    except ValueError:
        return until
    units = {"m": 60, "h": 3600, "d": 86400}
    if until[-1:] in units and until[:-1].isdigit() and len(until) <= 10:
        return format_time(start + timedelta(seconds=int(until[:-1]) * units[until[-1]]))
    if not until:
        return format_time(start + longest)
    return until


def _near(a: str, b: str) -> bool:
    """Two times within two minutes (an audited sleep and the pause it wrote)."""
    try:
        return abs(parse_go_time(a)[0] - parse_go_time(b)[0]) <= timedelta(minutes=2)
    except ValueError:
        return False


def _style_hash(style: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(style.encode()).digest()).decode() + "'"


def _answer(body: dict[str, Any], form: str, days: int, scope: str, following: str = "") -> Text:
    """The report in the asked format; every format carries the sha256 of its canonical body."""
    answer = evidence.signed(body)
    headers = {NEXT_HEADER: following} if following else {}
    if form == "json":
        return Text(evidence.canonical(answer), "application/json",
                    {**headers, SHA_HEADER: answer["sha256"]})
    if form == "csv":
        text = render.to_csv(body)
        name = f"evidence-{scope}-{body['window']['to'][:10]}.csv"
        return Text(text, "text/csv; charset=utf-8",
                    {**headers, SHA_HEADER: text.rstrip("\n").rpartition(",")[2],
                     "Content-Disposition": f'inline; filename="{name}"'})
    links = {"JSON": "?" + urlencode({"days": days, "format": "json"}),
             "CSV": "?" + urlencode({"days": days, "format": "csv"})}
    if following:
        links["next page"] = "?" + urlencode({"days": days, "format": "html", "next": following})
    policy = (f"default-src 'none'; style-src {_style_hash(render.STYLE)}; base-uri 'none'; "
              "form-action 'none'; frame-ancestors 'none'")
    return Text(render.to_html(answer, links), "text/html; charset=utf-8",
                {**headers, "Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff",
                 "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"})
