"""The scheduled reconcile: regenerate every node's job list and push only what changed.

One run: fetch the whole backupspec from lainlet → generate job lists (pure) → read the node
states of the last accepted pushes → hold the removals that look like a wrong answer rather than a
change (:mod:`chalicelib.core.removals`) → :func:`plan` (pure) → ask the ``/debug`` of each daemon that
would otherwise be left alone (a Go zero ``updateTime`` means it restarted and lost its jobs) →
push the planned nodes concurrently (jobs with their own timeout above the daemon's 5 s hold, then
the notify URL, then re-pause paused jobs) → store the new state of the nodes that accepted. A node
that failed keeps its old state and is retried next run; one that lainlet no longer names and that
stays unreachable for ``NODE_FORGET_HOURS`` is forgotten.

Alerting is not done here: the schedule calls :mod:`chalicelib.alerts` after the run, with the
run's cluster and states (:class:`Run`).

Never wiping: a lainlet failure or a malformed answer changes nothing; an answer that would leave
*every* node without jobs (lainlet answering ``{}``) is refused unless an operator confirms it; a
partial answer's removals are held. Every run, failed or not, is logged and kept in the history.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from logging import INFO, WARNING
from typing import Any

from chalicelib.core import drill, lineage, nodehealth, pausecheck, removals, retention
from chalicelib.core.cluster import Cluster
from chalicelib.core.formats.answers import Partial
from chalicelib.core.formats.inputs import bounded_int
from chalicelib.core.formats.pages import page
from chalicelib.core.gotime import GO_ZERO, format_time, parse_go_time
from chalicelib.core.jobs import generate, placements
from chalicelib.core.plan import DRIFTED, NodePlan, NodeState, plan, with_restarts
from chalicelib.core.types import Job, Latest, Pause, Pauses, ReconcileSummary
from chalicelib.deps import Deps
from chalicelib.edges.backupd import BackupdClient, BackupdError, FanOut
from chalicelib.errors import Conflict, ControllerError, LainletError
from chalicelib.logs import event, log
from chalicelib.settings import Settings


class EmptySpecRefused(LainletError):
    """lainlet's answer yields no job anywhere while nodes still hold jobs: refuse to wipe them."""

    code = "refused_empty_spec"


def notify_url(settings: Settings, token: str) -> str:
    """Where daemons post records; the token rides in the query (daemons keep the URL as given)."""
    url = settings.notify_address
    if not url or not token:
        return url
    return f"{url}{'&' if '?' in url else '?'}token={token}"


def digest(url: str) -> str:
    """What the node state keeps of the notify URL: enough to see it changed, not the token."""
    return hashlib.sha256(url.encode()).hexdigest()[:16] if url else ""


@dataclass
class Observation:
    """Everything a run decides on; ``held_runs`` counts this run among those holding the same set."""

    cluster: Cluster
    plans: list[NodePlan]
    restarted: list[str]
    silent: dict[str, str]  # nodes whose /debug did not answer, and why
    states: dict[str, NodeState]
    verdict: removals.Verdict
    held_runs: int = 0
    applying: bool = False  # held removals take effect this run (confirmed, or held long enough)
    forgotten: list[str] = field(default_factory=list)
    expiry_held: dict[tuple[str, str], str] = field(default_factory=dict)  # (node, dir) -> why
    latest: Latest = field(default_factory=dict)
    crond: dict[str, str] = field(default_factory=dict)  # node -> its cron's status (/debug)

    @property
    def holding(self) -> bool:
        return bool(self.verdict.held) and not self.applying


def observe(deps: Deps, *, confirm: bool = False, check_restarts: bool = True,
            cluster: Cluster | None = None) -> Observation:
    """Everything a run decides on, read-only (this is also the plan route's answer): the lists
    to push (the retention floor's holds applied), the removals held, the restarted daemons."""
    settings = deps.settings
    cluster = cluster or deps.cluster()
    latest = deps.records.latest_by_job(cluster.node_ips())
    expiry_held = retention.held_dirs(cluster, latest, deps.clock(),
                                      settings.expiry_hold_margin_percent,
                                      deps.operations.undos(deps.clock()))
    generated = generate(cluster, set(expiry_held))
    _with_proof_jobs(generated, deps.operations.drill_jobs() if settings.drill_root else {})
    states = deps.state.states()
    if not confirm:
        _refuse_to_clear_everything(generated, states)
    forgotten = _departed(states, generated, deps.clock(), settings.node_forget_hours)
    live = {n: s for n, s in states.items() if n not in forgotten}
    held = _hold_removals(deps, cluster, generated, live, confirm)
    plans = plan(held.desired, held.live,
                 notify_digest=digest(notify_url(settings, deps.secrets.notify_token())))
    debug = _debug(deps, plans) if check_restarts else None
    restarted = _ip_order(n for n, d in debug.results.items()
                          if d.get("updateTime") == GO_ZERO) if debug else []
    with_restarts(plans, set(restarted))
    return Observation(cluster, plans, restarted,
                       {n: e.message for n, e in debug.errors.items()} if debug else {}, states,
                       held.verdict, held.runs, held.applying, forgotten, expiry_held, latest,
                       {n: str(d.get("crond_status", "")) for n, d in debug.results.items()}
                       if debug else {})


def _with_proof_jobs(generated: dict[str, list[Job]], proofs: dict[str, list[Job]]) -> None:
    """The open drills' proof jobs join their nodes' lists (before the expire job), while the
    drill is open: a drill's proof runs are asked of the daemon by id."""
    for node, jobs in proofs.items():
        if node in generated:
            tail = generated[node][-1:] if generated[node] and not generated[node][-1]["id"] else []
            head = generated[node][:len(generated[node]) - len(tail)]
            generated[node] = head + [j for j in jobs if j not in head] + tail


def _refuse_to_clear_everything(generated: dict[str, list[Job]], states: dict[str, NodeState]
                                ) -> None:
    """lainlet's answer yields no backup job anywhere while nodes hold jobs: refuse to wipe."""
    if any(j["id"] for node_jobs in generated.values() for j in node_jobs):
        return
    holding = sum(1 for s in states.values() if s.job_ids)
    if holding:
        raise EmptySpecRefused("lainlet's backupspec yields no backup job on any node while "
                               f"{holding} node(s) hold jobs; refusing to clear every node (is "
                               "lainlet answering {}?); POST /api/v2/system/reconcile?"
                               "confirm=removals clears them")


@dataclass
class Held:
    """The removals a run holds back, and the lists it pushes with them kept."""

    verdict: removals.Verdict
    runs: int  # runs in a row that held this same set, this one included
    applying: bool  # held removals take effect this run (confirmed, or held long enough)
    desired: dict[str, list[Job]]
    live: dict[str, NodeState]


def _hold_removals(deps: Deps, cluster: Cluster, generated: dict[str, list[Job]],
                   live: dict[str, NodeState], confirm: bool) -> Held:
    """Judge the removals lainlet's answer implies (:mod:`chalicelib.core.removals`): those that
    look like a wrong answer are kept on their nodes, until confirmed or held long enough."""
    settings = deps.settings
    verdict = removals.judge(
        removals.lost(generated, {n: s.jobs for n, s in live.items()},
                      {n: s.job_ids for n, s in live.items()}),
        generated, {n: len(s.job_ids) for n, s in live.items()}, cluster.unreadable,
        settings.removal_guard_percent)
    before = deps.state.held_removals() if verdict.held else {}
    runs = int(before.get("runs", 0)) + 1 if before.get("fingerprint") == verdict.fingerprint else 1
    applying = bool(verdict.held) and (confirm or runs >= settings.removal_confirm_runs)
    desired = dict(generated)
    if verdict.held and not applying:
        for node, ids in verdict.by_node().items():
            old = live[node].jobs
            if old is None:  # a state kept before lists were: leave that node as it is
                desired.pop(node, None)
                live = {n: s for n, s in live.items() if n != node}
            else:
                desired[node] = removals.keep_held(generated.get(node, []), old, ids)
    return Held(verdict, runs, applying, desired, live)


def _debug(deps: Deps, plans: list[NodePlan]) -> FanOut[dict[str, Any]]:
    """The ``/debug`` of the nodes that would otherwise be left alone (the others are pushed, and
    a push starts the daemon's cron again): a Go zero ``updateTime`` means the daemon restarted
    and lost its jobs; ``crond_status`` whether its jobs run at all."""
    return deps.fan_out([p.node for p in plans if not p.push and p.jobs], lambda c: c.debug())


def _ip_order(nodes: Any) -> list[str]:
    return sorted(nodes, key=ipaddress.IPv4Address)


def _departed(states: dict[str, NodeState], generated: dict[str, Any], now: datetime,
              hours: float) -> list[str]:
    """Nodes lainlet no longer names whose pushes have failed for longer than ``hours``."""
    out = []
    for node, state in states.items():
        if node in generated or not state.unreachable_since:
            continue
        try:
            since = parse_go_time(state.unreachable_since)[0]
        except ValueError:
            continue
        if now - since >= timedelta(hours=hours):
            out.append(node)
    return _ip_order(out)


def _push(client: BackupdClient, p: NodePlan, notify: str, paused: set[str],
          timeout: float) -> list[str]:
    """Push one node: jobs, then notify address, then pause again what users paused. The jobs get
    ``timeout``: the daemon holds a list until its nearest job is 5 s away (every minute's expire
    job makes that common), and a push it applied after 4 s is a success, not a failure."""
    client.set_jobs(p.jobs, p.sent_version, timeout=timeout)
    if notify and p.notify_stale:  # a rotated token: drop the daemon's older URLs of this controller
        ours = notify.split("?")[0]
        for addr in client.notify_addrs():
            if addr != notify and addr.split("?")[0] == ours:
                client.remove_notify(addr)
    if notify:
        client.set_notify(notify)
    repaused = sorted(paused & set(p.job_ids))
    for job_id in repaused:
        client.job_action(job_id, "sleep")
    return repaused


def pauses_ended(pauses: Pauses, now: datetime, max_days: float) -> dict[str, set[str]]:
    """The pauses whose end has come (one kept from before pauses had an end lasts
    ``PAUSE_MAX_DAYS`` from when it began)."""
    out: dict[str, set[str]] = {}
    for node, jobs in pauses.items():
        for job_id, pause in jobs.items():
            try:
                end = parse_go_time(pause.until)[0]
            except ValueError:
                try:
                    end = parse_go_time(pause.paused_at)[0] + timedelta(days=max_days)
                except ValueError:
                    end = now
            if end <= now:
                out.setdefault(node, set()).add(job_id)
    return out


def _wake(deps: Deps, ended: dict[str, set[str]]) -> dict[str, set[str]]:
    """Wake the jobs whose pause ended and forget those pauses; a node that does not answer keeps
    them, and the next run tries again."""
    def wake(client: BackupdClient) -> set[str]:
        for job_id in sorted(ended[client.node]):
            try:
                client.job_action(job_id, "wakeup")
            except BackupdError as e:
                if e.upstream_status != 400:  # 400: the job is gone from the node: nothing to wake
                    raise
        return ended[client.node]

    result = deps.fan_out(list(ended), wake)
    for node, ids in result.results.items():
        deps.state.drop_pauses(node, ids)
    if result.results:
        event(log, "pauses_ended", jobs={n: sorted(i) for n, i in result.results.items()},
              failed=list(result.errors))
    return result.results


@dataclass
class PauseCheck:
    """What a run's comparison of pauses on record with the daemons' sleep flags did."""

    checked: int = 0
    adopted: dict[str, list[str]] = field(default_factory=dict)
    reapplied: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Inspection:
    """What a run read on its slice of nodes (``GET /cron/jobs``, ``GET /notify``): the pauses it
    set right, and per node its list against the one pushed and whether it posts to us."""

    pauses: PauseCheck = field(default_factory=PauseCheck)
    nodes: dict[str, tuple[int, int, bool | None]] = field(default_factory=dict)  # missing, extra,
    # notified (None: no notify address to give)


def _inspect(deps: Deps, seen: Observation, pauses: Pauses, ended: dict[str, set[str]],
             pushed: FanOut[list[str]], notify: str) -> Inspection:
    """Read the job list and the notify addresses of the nodes with pauses on record and of this
    minute's slice of the others (each node once in ``NODE_CHECK_MINUTES``); compare the sleep
    flags with the pauses on record (:func:`_set_pauses_right`), the list with the one pushed, the
    addresses with this controller's. Nodes that failed or stayed silent this run are left for
    the next."""
    minute = int(deps.clock().timestamp()) // 60
    skip = set(pushed.errors) | set(seen.silent)
    nodes = [p.node for p in seen.plans if p.job_ids and p.node not in skip and (
        pausecheck.due(p.node, minute, deps.settings.node_check_minutes)
        or (p.node not in pushed.results and set(pauses.get(p.node, {})) - ended.get(p.node, set())))]
    ours = notify.split("?")[0]

    def read(client: BackupdClient) -> tuple[list[dict[str, Any]], bool | None]:
        entries = client.jobs()
        notified = any(a.split("?")[0] == ours for a in client.notify_addrs()) if ours else None
        return entries, notified

    found = deps.fan_out(nodes, read)
    lists = {n: entries for n, (entries, _) in found.results.items()}
    pushed_ids = {p.node: set(p.job_ids) for p in seen.plans}
    compared = {}
    for node, (entries, notified) in found.results.items():
        running = {e["job"]["id"] for e in entries if e["job"].get("id")}
        compared[node] = (len(pushed_ids[node] - running), len(running - pushed_ids[node]), notified)
    return Inspection(_set_pauses_right(deps, lists, pauses, ended, pushed, len(nodes)), compared)


def _set_pauses_right(deps: Deps, lists: dict[str, list[dict[str, Any]]], pauses: Pauses,
                      ended: dict[str, set[str]], pushed: FanOut[list[str]], checked: int
                      ) -> PauseCheck:
    """Compare the pauses on record with the daemons' sleep flags
    (:mod:`chalicelib.core.pausecheck`): adopt a job found paused with no pause on record (it
    ends after ``PAUSE_MAX_DAYS``), re-apply a pause whose job runs, confirm an unconfirmed pause
    found applied. Nodes pushed this run were re-paused by the push. ``pauses`` is updated with
    what was adopted."""
    now = deps.clock()
    drift = {n: pausecheck.compare(entries, pauses.get(n, {}), ended.get(n, set()))
             for n, entries in lists.items()}
    # read again before pausing: a wakeup a user asked for since this run read the pauses is theirs
    again = {n: [j for j in d.reapply if deps.state.pause_of(n, j) is not None]
             for n, d in drift.items() if d.reapply}
    again = {n: ids for n, ids in again.items() if ids}

    def sleep(client: BackupdClient) -> list[str]:
        for job_id in again[client.node]:
            client.job_action(job_id, "sleep")
        return again[client.node]

    reapplied = deps.fan_out(list(again), sleep)
    confirm = {n: set(d.confirm) for n, d in drift.items()}
    for node, ids in [*reapplied.results.items(), *pushed.results.items()]:
        confirm.setdefault(node, set()).update(ids)
    for node, confirmed in confirm.items():
        for job_id in sorted(confirmed):
            pause = pauses.get(node, {}).get(job_id)
            if pause and not pause.confirmed and deps.state.confirm_pause(node, job_id, pause):
                pauses[node][job_id] = replace(pause, confirmed=True)
    adopted: dict[str, list[str]] = {}
    until = format_time(now + timedelta(days=deps.settings.pause_max_days))
    for node, d in drift.items():
        for job_id in d.adopt:
            pause = Pause(until, pausecheck.ADOPTED_REASON, format_time(now), adopted=True)
            if deps.state.adopt_pause(node, job_id, pause):
                adopted.setdefault(node, []).append(job_id)
                pauses.setdefault(node, {})[job_id] = pause
    if adopted:
        event(log, "pause_adopted", level=WARNING, jobs=adopted, until=until,
              detail="paused on the node with no pause on record: kept paused until then "
                     "(PAUSE_MAX_DAYS), shown in /api/v2/system/problems")
    if reapplied.results:
        event(log, "pause_reapplied", level=WARNING, jobs=reapplied.results,
              detail="paused on record but running on the node: paused again")
    return PauseCheck(checked, adopted, dict(reapplied.results))


def _node_health(deps: Deps, seen: Observation, result: FanOut[list[str]], inspected: Inspection,
                 states: dict[str, NodeState], notify: str) -> dict[str, NodeState]:
    """Every node's problems after this run (:mod:`chalicelib.core.nodehealth`), kept with since
    when each was first seen: the states whose problems changed (to store). A node that runs
    another list, or does not post to us, gets its list and address pushed again next run."""
    now = format_time(deps.clock())
    changed: dict[str, NodeState] = {}
    for p in seen.plans:
        state = states.get(p.node)
        if state is None or not p.jobs:
            continue
        asked = {nodehealth.CROND_STOPPED, nodehealth.UNREACHABLE}
        unreachable = (result.errors[p.node].message if p.node in result.errors
                       else seen.silent.get(p.node, ""))
        missing = extra = None
        notified: bool | None = None
        if p.node in inspected.nodes:
            missing, extra, notified = inspected.nodes[p.node]
            asked |= {nodehealth.LIST_DRIFT} | ({nodehealth.NOTIFY_MISSING} if notify else set())
        found = nodehealth.seen(p.node, crond=seen.crond.get(p.node), unreachable=unreachable,
                                missing=missing, extra=extra, notified=notified)
        problems = nodehealth.carry(state.problems, found, asked, now)
        if problems == state.problems:
            continue
        repush = {nodehealth.LIST_DRIFT, nodehealth.NOTIFY_MISSING} & set(found)
        changed[p.node] = replace(state, problems=problems,
                                  version=f"{DRIFTED}{now}" if repush else state.version)
        _log_node_problems(p.node, state.problems, problems)
    return changed


def _log_node_problems(node: str, before: nodehealth.Kept, after: nodehealth.Kept) -> None:
    """One line per problem a node got (WARNING) or lost (INFO)."""
    old, new = {k for k, _, _ in before}, {k for k, _, _ in after}
    for problem in nodehealth.problems(node, after):
        if problem.kind not in old:
            event(log, "node_problem", level=WARNING, node=node, kind=problem.kind,
                  since=problem.since, detail=problem.detail, fix=problem.fix)
    for kind, since, detail in before:
        if kind not in new:
            event(log, "node_problem_cleared", node=node, kind=kind, since=since, detail=detail)


def _first_seen(old: NodeState | None, job_ids: list[str], now: str) -> tuple[tuple[str, str], ...]:
    """When each job was first pushed to the node (kept across pushes while the job exists)."""
    before = dict(old.first_seen) if old else {}
    return tuple((job_id, before.get(job_id, now)) for job_id in job_ids)


@dataclass
class Run:
    """A finished run: its summary, and what it read (the alert check reuses it)."""

    summary: ReconcileSummary
    cluster: Cluster
    states: dict[str, NodeState] = field(default_factory=dict)
    pauses: Pauses = field(default_factory=dict)
    latest: Latest = field(default_factory=dict)
    expiry_held: dict[tuple[str, str], str] = field(default_factory=dict)


def run(deps: Deps, *, confirm: bool = False) -> Run:
    """One reconcile run; its summary is stored in the history and logged as one line.

    Only one run at a time (a lease in DynamoDB, shared by the schedule and the route): a second
    caller gets a 409 naming the running one. Raises on lainlet failure or any other error, after
    keeping the failed run in the history."""
    clock = time.monotonic()
    started = deps.clock()
    summary: ReconcileSummary = {"started": format_time(started), "ok": False}
    run_id = uuid.uuid4().hex[:12]
    try:
        deps.state.acquire_lease(run_id, started, deps.settings.reconcile_lease_seconds)
    except Conflict as e:
        event(log, "reconcile_skipped", level=WARNING, reason=e.message)
        raise
    try:
        return _run(deps, confirm, summary, clock)
    finally:
        try:
            deps.state.release_lease(run_id)
        except ControllerError as e:  # the lease expires by itself
            event(log, "reconcile_lease_kept", level=WARNING, error=e.message)


def _run(deps: Deps, confirm: bool, summary: ReconcileSummary, clock: float) -> Run:
    try:
        seen = observe(deps, confirm=confirm)
        done = _apply(deps, seen)
    except Exception as e:
        message = e.message if isinstance(e, ControllerError) else \
            f"internal error ({type(e).__name__}: {str(e)[:200]})"
        summary.update({"error": message, "pushed": [], "failed": {},
                        "duration_ms": round((time.monotonic() - clock) * 1000)})
        _keep(deps, summary)  # the schedule's one line says it (with the traceback of a bug)
        raise
    summary.update(done.summary)
    summary["duration_ms"] = round((time.monotonic() - clock) * 1000)
    _keep(deps, summary)
    done.summary = summary
    return done


def _keep(deps: Deps, summary: ReconcileSummary) -> None:
    """Add the run to the history; a history that cannot be written is logged, not raised."""
    try:
        deps.state.add_run(dict(summary), deps.clock())
    except ControllerError as e:
        event(log, "reconcile_history_failed", level=WARNING, error=e.message)


def _apply(deps: Deps, seen: Observation) -> Run:
    """Push the planned nodes, wake the pauses that ended, store what the nodes accepted, compare
    the daemons' pauses with those on record, keep the held removals; the run's summary."""
    todo = {p.node: p for p in seen.plans if p.push}
    pauses = deps.state.pauses()
    ended = pauses_ended(pauses, deps.clock(), deps.settings.pause_max_days)
    notify = notify_url(deps.settings, deps.secrets.notify_token())
    _carry_pauses(deps, todo, pauses, ended)
    carried: dict[str, int] = {}
    result = _push_all(deps, todo, pauses, ended, notify, carried)
    _carry_latest(seen, todo)
    woken = _wake(deps, ended)
    for node, ids in woken.items():  # what the run leaves paused is what it hands on
        pauses[node] = {j: p for j, p in pauses.get(node, {}).items() if j not in ids}
    pushed = _remember(deps, seen, todo, result, pauses, notify)
    states = {**seen.states, **{s.node: s for s in pushed}}
    try:
        inspected = _inspect(deps, seen, pauses, ended, result, notify)
    except ControllerError as e:  # the pushes are done and kept; the next run compares again
        event(log, "node_check_failed", level=WARNING, error=e.message)
        inspected = Inspection()
    health = _node_health(deps, seen, result, inspected, states, notify)
    if health:
        deps.state.save(list(health.values()))
        states.update(health)
    held = _keep_held(deps, seen)
    _warn(deps, seen, notify)
    summary = _summary(seen, todo, result, woken, inspected.pauses, held, notify)
    summary["node_problems"] = sum(len(s.problems) for s in states.values())
    summary["carried"] = sum(carried.values())
    return Run(summary, seen.cluster, states, pauses, seen.latest, seen.expiry_held)


def _push_all(deps: Deps, todo: dict[str, NodePlan], pauses: Pauses, ended: dict[str, set[str]],
              notify: str, carried: dict[str, int]) -> FanOut[list[str]]:
    """Every planned node pushed at once (each with its jobs' active pauses applied again), the
    history of its jobs whose ID changed carried to their new IDs first (so no run of a new ID
    is stored before it: a failed carry fails the node's push, retried next run); ``carried``
    gets how many jobs of each node took a history."""
    active = {n: set(jobs) - ended.get(n, set()) for n, jobs in pauses.items()}
    timeout = deps.settings.push_timeout_seconds

    def one(client: BackupdClient) -> list[str]:
        p = todo[client.node]
        if p.carried:
            carried[client.node] = deps.records.carry(p.carried)
        return _push(client, p, notify, active.get(client.node, set()), timeout)

    return deps.fan_out(list(todo), one)


def _carry_pauses(deps: Deps, todo: dict[str, NodePlan], pauses: Pauses,
                  ended: dict[str, set[str]]) -> None:
    """A paused job whose ID changes stays paused: its pause (until, reason, since) is kept for
    the new ID (unless that has one by now), and the push pauses the new job; the old ID's
    pause goes with its job. ``pauses`` gets the pauses carried."""
    for node, p in todo.items():
        for new, old in p.carried.items():
            pause = pauses.get(node, {}).get(old)
            if pause is None or old in ended.get(node, set()) or new in pauses.get(node, {}):
                continue
            if deps.state.adopt_pause(node, new, pause):
                pauses[node][new] = pause
                deps.state.carry_pause_memory(node, new, old)
                event(log, "pause_carried", node=node, job=new, was=old, until=pause.until)


def _carry_latest(seen: Observation, todo: dict[str, NodePlan]) -> None:
    """The run's own reading of the jobs' latest runs (read before the pushes) as the carry
    left them, so the assessment after this run already sees each moved item's history."""
    for p in todo.values():
        for new, old in p.carried.items():
            if old in seen.latest:
                seen.latest[new] = lineage.merged(seen.latest[old], seen.latest.get(new, {}))


def _remember(deps: Deps, seen: Observation, todo: dict[str, NodePlan],
              result: FanOut[list[str]], pauses: Pauses, notify: str) -> list[NodeState]:
    """Store the new state of the nodes that accepted (and since when the others fail), forget
    the departed nodes, drop the pauses of jobs a node no longer has; the states stored."""
    store, now = deps.state, format_time(deps.clock())
    pushed = [NodeState(n, todo[n].version, tuple(todo[n].job_ids), len(todo[n].jobs), now,
                        _first_seen(seen.states.get(n), todo[n].job_ids, now), tuple(todo[n].jobs),
                        notify_digest=digest(notify),
                        problems=seen.states[n].problems if n in seen.states else ())
              for n in result.results]
    failing = [replace(seen.states[n], unreachable_since=seen.states[n].unreachable_since or now)
               for n in result.errors if n in seen.states]
    store.save(pushed + failing)
    if seen.forgotten:
        store.forget(seen.forgotten)
        event(log, "nodes_forgotten", level=WARNING, nodes=seen.forgotten,
              detail=f"not named by lainlet and unreachable for {deps.settings.node_forget_hours:g}h")
    for node in result.results:  # pauses of jobs that no longer exist on the node go away
        gone = set(pauses.get(node, {})) - set(todo[node].job_ids)
        if gone:
            store.drop_pauses(node, gone)
            pauses[node] = {j: p for j, p in pauses[node].items() if j not in gone}
    return pushed


def _keep_held(deps: Deps, seen: Observation) -> dict[str, set[str]]:
    """Remember for how many runs the same removals were held (the count that applies them)."""
    store = deps.state
    held = seen.verdict.by_node() if seen.holding else {}
    if seen.verdict.held or store.held_removals():
        store.save_held_removals(seen.verdict.fingerprint if seen.holding else "", seen.held_runs,
                                 format_time(deps.clock()))
    if held:
        event(log, "removals_held", level=WARNING, jobs=sum(map(len, held.values())),
              nodes=_ip_order(held), runs=seen.held_runs, of=deps.settings.removal_confirm_runs,
              reasons=seen.verdict.reasons)
    return held


def _warn(deps: Deps, seen: Observation, notify: str) -> None:
    """What the operator must hear of the runs, said when it changes and counted once an hour
    while it lasts (not every minute): dirs kept from expiring, no notify address to give."""
    held = sorted(f"{n}:{d}" for n, d in seen.expiry_held)
    _say_on_change(deps, "expiry_held", held, lambda new: event(
        log, "expiry_held", level=WARNING if new else INFO, dirs=len(held),
        nodes=_ip_order({n for n, _ in seen.expiry_held}), sample=held[:10],
        detail="left out of their expire jobs until a good backup exists (retention floor)"))
    _say_on_change(deps, "notify_url_unset", [] if notify else ["unset"], lambda new: event(
        log, "notify_url_unset", level=WARNING,
        detail="ADVERTISE_URL is empty: daemons are not told where to post records"))


def _say_on_change(deps: Deps, name: str, what: list[str], say: Callable[[bool], None]) -> None:
    """Log ``what`` (``say(new)``) when it changed since the last run, and once an hour while
    it stays; nothing once it is gone. A store that cannot tell: say it."""
    try:
        if not what:
            deps.state.unsay(name)
            return
        how = deps.state.say(name, hashlib.sha256("\n".join(what).encode()).hexdigest()[:16],
                             deps.clock(), timedelta(hours=1))
    except ControllerError:
        how = "new"
    if how:
        say(how == "new")


def _summary(seen: Observation, todo: dict[str, NodePlan], result: FanOut[list[str]],
             woken: dict[str, set[str]], checked: PauseCheck, held: dict[str, set[str]],
             notify: str) -> ReconcileSummary:
    return {
        "ok": True,
        "nodes": len(seen.plans),
        "pushed": list(result.results),
        "failed": {n: e.message for n, e in result.errors.items()},
        "cleared": [n for n in result.results if "stale" in todo[n].reasons],
        "restarted": seen.restarted,
        "repaused": {n: ids for n, ids in result.results.items() if ids},
        "woken": {n: sorted(ids) for n, ids in sorted(woken.items())},
        "pauses_checked": checked.checked,
        "pauses_adopted": checked.adopted,
        "pauses_reapplied": checked.reapplied,
        "unchanged": len(seen.plans) - len(todo),
        "held": {n: sorted(ids) for n, ids in sorted(held.items())},
        "held_reasons": seen.verdict.reasons if held else [],
        "held_runs": seen.held_runs if held else 0,
        "removals_applied": sum(len(v) for v in seen.verdict.by_node().values()) if seen.applying else 0,
        "forgotten": seen.forgotten,
        "expiry_held": len(seen.expiry_held),
        "problems": len(seen.cluster.problems),
        "notify_url_set": bool(notify),
    }


def plan_answer(seen: Observation) -> dict[str, Any]:
    """The plan route's answer: what the next run would do, per node."""
    return {
        "push": [p.node for p in seen.plans if p.push],
        "clear": [p.node for p in seen.plans if "stale" in p.reasons],
        "restarted": seen.restarted,
        "silent": sorted(seen.silent),
        "node_problems": [p.to_dict() for node, state in sorted(seen.states.items())
                          for p in nodehealth.problems(node, state.problems)],
        "held": {n: sorted(ids) for n, ids in sorted(seen.verdict.by_node().items())}
        if seen.holding else {},
        "held_reasons": seen.verdict.reasons if seen.holding else [],
        "held_runs": seen.held_runs if seen.holding else 0,
        "removals_applied_next_run": seen.applying,
        "forget": seen.forgotten,
        "expiry_held": [{"node": n, "dir": d, "reason": why}
                        for (n, d), why in sorted(seen.expiry_held.items())],
        "nodes": [p.to_dict() for p in seen.plans],
    }


def next_plan(deps: Deps, token: str = "") -> Partial:
    """What the next run would do (the plan route); ``nodes`` a page at a time."""
    answer = plan_answer(observe(deps))
    answer["nodes"], next_token = page(answer["nodes"], token)
    return Partial(answer, next=next_token)


def history(deps: Deps, total: str | None) -> list[dict[str, Any]]:
    """The last runs' summaries, newest first."""
    return deps.state.runs(bounded_int(total or "20", "total", 1, 1000))


def problems(deps: Deps, token: str = "") -> Partial:
    """Spec problems a page at a time (see :func:`all_problems`)."""
    found, next_token = page(all_problems(deps), token)
    return Partial(found, next=next_token)


def all_problems(deps: Deps) -> list[dict[str, Any]]:
    """What needs an operator: the nodes' problems (a stopped cron, a silent daemon, a list or a
    notify address that drifted: the causes, first), spec problems the original silently dropped
    (bad schedules, expires, annotations, IPs), jobs the reconcile found paused on their node
    with no pause on record, the dirs the retention floor keeps out of expire jobs because their
    good backup is getting old or was deleted (a volume with no good backup yet is its item's
    state, ``never``, not a problem of the spec), and the job removals the reconcile holds
    because lainlet's answer looks wrong."""
    cluster = deps.cluster()
    states = deps.state.states()
    found: list[dict[str, Any]] = [
        {"kind": "node", "problem": p.kind, "node": p.node, "since": p.since, "app": "", "proc": "",
         "instance": None, "volume": "", "reason": p.words()}
        for node, state in sorted(states.items()) for p in nodehealth.problems(node, state.problems)]
    found += [p.to_dict() for p in cluster.problems] + _paused_on_node(deps, cluster)
    found += _drill_problems(deps, cluster)
    try:
        seen = observe(deps, cluster=cluster, check_restarts=False)
    except EmptySpecRefused as e:
        return [*found, {"kind": "refused_empty_spec", "app": "", "proc": "", "instance": None,
                         "reason": e.message, "volume": ""}]
    # held dirs come from this cluster's placements: each names its app, proc and instance
    owners = {(p.node, p.path): p for p in placements(cluster)} if seen.expiry_held else {}
    for (node, path), why in sorted(seen.expiry_held.items()):
        if why == retention.NO_GOOD_YET:
            continue
        owner = owners[(node, path)]
        found.append({"kind": "expiry_held", "app": owner.proc.app, "proc": owner.proc.full_name,
                      "instance": owner.pod.instance_no, "volume": owner.item.volume,
                      "reason": f"{path} on {node} is left out of the expire job: {why}; old "
                                "backups of it are kept until a new good backup exists"})
    if seen.holding:
        why = "; ".join(seen.verdict.reasons)
        found += [{"kind": "held_removal", "app": r.app, "proc": r.proc, "instance": r.instance,
                   "volume": r.volume,
                   "reason": f"job {r.job_id} on {r.node} is kept although lainlet's answer drops "
                             f"it ({why}; held {seen.held_runs} of "
                             f"{deps.settings.removal_confirm_runs} runs; POST "
                             "/api/v2/system/reconcile?confirm=removals applies it now)"}
                  for r in seen.verdict.held]
    return found


def _drill_problems(deps: Deps, cluster: Cluster) -> list[dict[str, Any]]:
    """The items of the cluster whose newest restore drill proved nothing (with restore drills
    on): an app, volume or instance gone from the spec is no problem any more."""
    if not deps.settings.drill_root:
        return []
    items = {drill.item_key(p.proc.app, p.proc.full_name, p.item.volume, p.pod.instance_no)
             for p in placements(cluster)}
    out = []
    for key, result in sorted(deps.operations.drilled().items()):
        if result.outcome == drill.VERIFIED or key not in items:
            continue
        out.append({"kind": "drill", "problem": result.outcome, **drill.item_of(key),
                    "since": result.at, "reason": f"restore drill {result.operation}: "
                    f"{result.outcome}{f' ({result.fault} fault)' if result.fault else ''}: "
                    f"{result.why}"})
    for u in deps.operations.uncoverable():
        out.append({"kind": "drill", "problem": "drill_cycle_impossible",
                    **drill.item_of(str(u.get("item", ""))), "node": str(u.get("node", "")),
                    "reason": f"no restore drill can cover it within DRILL_CYCLE_DAYS: {u.get('why')}"})
    return out


def _paused_on_node(deps: Deps, cluster: Cluster) -> list[dict[str, Any]]:
    """The pauses the reconcile adopted: jobs found paused on their node with no pause on record
    (kept paused, with an end, until someone decides)."""
    adopted = [(node, job_id, pause) for node, jobs in sorted(deps.state.pauses().items())
               for job_id, pause in sorted(jobs.items()) if pause.adopted]
    owners = {p.job["id"]: p for p in placements(cluster) if p.job} if adopted else {}
    out = []
    for node, job_id, pause in adopted:
        owner = owners.get(job_id)
        out.append({"kind": "paused_on_node", "app": owner.proc.app if owner else "",
                    "proc": owner.proc.full_name if owner else "",
                    "instance": owner.pod.instance_no if owner else None,
                    "volume": owner.item.volume if owner else "",
                    "reason": f"job {job_id} on {node} was found paused on the node with no pause "
                              f"on record ({pause.paused_at}); it is kept paused until "
                              f"{pause.until} (PAUSE_MAX_DAYS), then woken: wake it up to resume "
                              "its backups now, or sleep it with a reason to keep it paused"})
    return out
