"""The scheduled reconcile: regenerate every node's job list and push only what changed.

One run: fetch the whole backupspec from lainlet → generate job lists (pure) → read the node
states of the last accepted pushes → hold the removals that look like a wrong answer rather than a
change (:mod:`chalicelib.core.removals`) → :func:`plan` (pure) → ask the ``/debug`` of each daemon that
would otherwise be left alone (a Go zero ``updateTime`` means it restarted and lost its jobs) →
push the planned nodes concurrently (jobs with their own timeout above the daemon's 5 s hold, then
the notify URL, then re-pause paused jobs) → store the new state of the nodes that accepted. A node
that failed keeps its old state and is retried next run; one that lainlet no longer names and that
stays unreachable for ``NODE_FORGET_HOURS`` is forgotten.

Never wiping: a lainlet failure or a malformed answer changes nothing; an answer that would leave
*every* node without jobs (lainlet answering ``{}``) is refused unless an operator confirms it; a
partial answer's removals are held. Every run, failed or not, is logged and kept in the history.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib import status
from chalicelib.core import jobs as joblib
from chalicelib.core import removals
from chalicelib.core.cluster import Cluster
from chalicelib.core.gotime import GO_ZERO, format_time, parse_go_time
from chalicelib.edges.backupd import BackupdClient, fan_out
from chalicelib.edges.lainlet import fetch_cluster
from chalicelib.edges.records import RecordStore
from chalicelib.edges.state import NodeState, NodeStateStore
from chalicelib.errors import ControllerError, LainletError
from chalicelib.settings import NOTIFY_PATH, Settings

log = logging.getLogger("backupctl")


class NothingToKeep(LainletError):
    """lainlet's answer yields no job anywhere while nodes still hold jobs: refuse to wipe them."""

    code = "refused_empty_spec"


@dataclass
class NodePlan:
    """What a run does to one node; ``reasons`` empty means nothing to do."""

    node: str
    version: str
    jobs: list[dict[str, Any]] = field(repr=False)
    reasons: list[str]
    added: list[str]
    removed: list[str]
    unchanged: int

    @property
    def push(self) -> bool:
        return bool(self.reasons)

    @property
    def job_ids(self) -> list[str]:
        return [j["id"] for j in self.jobs if j["id"]]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["jobs"]
        out["jobs"] = len(self.jobs)
        return out


def plan(generated: dict[str, list[dict[str, Any]]], states: dict[str, NodeState],
         restarted: set[str]) -> list[NodePlan]:
    """Pure: the per-node actions of a run, in node order.

    new/changed: the list's version differs from the last accepted push; stale: the node had jobs
    and lainlet names none for it now (it gets an empty list); restarted: the daemon lost its jobs.
    """
    plans = []
    for node in sorted(set(generated) | set(states), key=ipaddress.IPv4Address):
        node_jobs = generated.get(node, [])
        version = joblib.list_version(node_jobs)
        state = states.get(node)
        new_ids = [j["id"] for j in node_jobs if j["id"]]
        old_ids = list(state.job_ids) if state else []
        reasons = []
        if node not in generated:
            if state and state.job_count:
                reasons.append("stale")
        elif state is None:
            reasons.append("new")
        elif state.version != version:
            reasons.append("changed")
        if node in restarted and node_jobs:
            reasons.append("restarted")
        plans.append(NodePlan(
            node=node, version=version, jobs=node_jobs, reasons=reasons,
            added=[i for i in new_ids if i not in old_ids],
            removed=[i for i in old_ids if i not in new_ids],
            unchanged=len([i for i in new_ids if i in old_ids]),
        ))
    return plans


def with_restarts(plans: list[NodePlan], restarted: set[str]) -> list[NodePlan]:
    """Mark nodes whose daemon restarted (and lost its jobs) to be pushed again."""
    for p in plans:
        if p.node in restarted and p.jobs and "restarted" not in p.reasons:
            p.reasons.append("restarted")
    return plans


def notify_url(settings: Settings) -> str:
    """Where daemons post records; the token rides in the query (daemons keep the URL as given)."""
    if not settings.advertise_url:
        return ""
    url = settings.advertise_url + NOTIFY_PATH
    return f"{url}?token={settings.notify_token}" if settings.notify_token else url


@dataclass
class Observation:
    """Everything a run decides on; ``held_runs`` counts this run among those holding the same set."""

    cluster: Cluster
    plans: list[NodePlan]
    restarted: list[str]
    silent: list[str]  # nodes whose /debug did not answer
    states: dict[str, NodeState]
    verdict: removals.Verdict
    held_runs: int = 0
    applying: bool = False  # held removals take effect this run (confirmed, or held long enough)
    forgotten: list[str] = field(default_factory=list)

    @property
    def holding(self) -> bool:
        return bool(self.verdict.held) and not self.applying


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


def observe(settings: Settings, store: NodeStateStore, *, confirm: bool = False,
            check_restarts: bool = True, cluster: Cluster | None = None) -> Observation:
    """Everything a run decides on, read-only (this is also the plan route's answer)."""
    cluster = cluster or fetch_cluster(settings)
    generated = joblib.generate(cluster)
    states = store.states()
    holding_jobs = sum(len(s.job_ids) for s in states.values())
    if not any(j["id"] for node_jobs in generated.values() for j in node_jobs) and holding_jobs \
            and not confirm:
        raise NothingToKeep("lainlet's backupspec yields no backup job on any node while "
                            f"{sum(1 for s in states.values() if s.job_ids)} node(s) hold jobs; "
                            "refusing to clear every node (is lainlet answering {}?); "
                            "POST /api/v2/system/reconcile?confirm=removals clears them")
    forgotten = _departed(states, generated, datetime.now(UTC), settings.node_forget_hours)
    live = {n: s for n, s in states.items() if n not in forgotten}
    verdict = removals.judge(
        removals.lost(generated, {n: s.jobs for n, s in live.items()},
                      {n: s.job_ids for n, s in live.items()}),
        generated, {n: len(s.job_ids) for n, s in live.items()}, cluster.unreadable,
        settings.removal_guard_percent)
    before = store.held_removals() if verdict.held else {}
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
    plans = plan(desired, live, set())
    restarted: list[str] = []
    silent: list[str] = []
    if check_restarts:
        # Only nodes that would otherwise be left alone need a restart check: the rest are pushed.
        debug = fan_out([p.node for p in plans if not p.push and p.jobs], lambda c: c.debug(),
                        settings)
        restarted = _ip_order(n for n, d in debug.results.items() if d.get("updateTime") == GO_ZERO)
        silent = debug.unreachable
        with_restarts(plans, set(restarted))
    return Observation(cluster, plans, restarted, silent, states, verdict, runs, applying, forgotten)


def _push(client: BackupdClient, p: NodePlan, notify: str, paused: set[str],
          timeout: float) -> list[str]:
    """Push one node: jobs, then notify address, then pause again what users paused. The jobs get
    ``timeout``: the daemon holds a list until its nearest job is 5 s away (every minute's expire
    job makes that common), and a push it applied after 4 s is a success, not a failure."""
    client.set_jobs(p.jobs, p.version, timeout=timeout)
    if notify:
        client.set_notify(notify)
    repaused = sorted(paused & set(p.job_ids))
    for job_id in repaused:
        client.job_action(job_id, "sleep")
    return repaused


def _first_seen(old: NodeState | None, job_ids: list[str], now: str) -> tuple[tuple[str, str], ...]:
    """When each job was first pushed to the node (kept across pushes while the job exists)."""
    before = dict(old.first_seen) if old else {}
    return tuple((job_id, before.get(job_id, now)) for job_id in job_ids)


def run(settings: Settings, store: NodeStateStore, *, confirm: bool = False) -> dict[str, Any]:
    """One reconcile run; returns (and stores, and logs) its summary.

    Raises on lainlet failure or any other error, after keeping the failed run in the history."""
    started = datetime.now(UTC)
    clock = time.monotonic()
    summary: dict[str, Any] = {"started": format_time(started), "ok": False}
    try:
        seen = observe(settings, store, confirm=confirm)
        summary |= _apply(settings, store, seen)
    except Exception as e:
        message = e.message if isinstance(e, ControllerError) else \
            f"internal error ({type(e).__name__}: {str(e)[:200]})"
        summary |= {"error": message, "pushed": [], "failed": {},
                    "duration_ms": round((time.monotonic() - clock) * 1000)}
        if isinstance(e, ControllerError):
            log.warning("event=reconcile ok=false error=%r duration_ms=%s", message,
                        summary["duration_ms"])
        else:
            log.exception("event=reconcile ok=false error=%r", message)
        _keep(store, summary)
        raise
    summary["duration_ms"] = round((time.monotonic() - clock) * 1000)
    log.info("event=reconcile ok=true nodes=%s pushed=%s failed=%s cleared=%s restarted=%s "
             "held=%s forgotten=%s problems=%s duration_ms=%s failures=%r", summary["nodes"],
             len(summary["pushed"]), len(summary["failed"]), len(summary["cleared"]),
             len(summary["restarted"]), sum(len(v) for v in summary["held"].values()),
             len(summary["forgotten"]), summary["problems"], summary["duration_ms"],
             summary["failed"])
    _keep(store, summary)
    return summary


def _keep(store: NodeStateStore, summary: dict[str, Any]) -> None:
    """Add the run to the history; a history that cannot be written is logged, not raised."""
    try:
        store.add_run(summary)
    except ControllerError as e:
        log.warning("event=reconcile_history_failed error=%r", e.message)


def _apply(settings: Settings, store: NodeStateStore, seen: Observation) -> dict[str, Any]:
    """Push the planned nodes and store what they accepted; the summary's fields."""
    todo = {p.node: p for p in seen.plans if p.push}
    pauses = store.pauses()
    notify = notify_url(settings)
    result = fan_out(list(todo), lambda c: _push(c, todo[c.node], notify, pauses.get(c.node, set()),
                                                 settings.push_timeout_seconds), settings)
    now = format_time(datetime.now(UTC))
    pushed = [NodeState(n, todo[n].version, tuple(todo[n].job_ids), len(todo[n].jobs), now,
                        _first_seen(seen.states.get(n), todo[n].job_ids, now), tuple(todo[n].jobs))
              for n in result.results]
    failing = [replace(seen.states[n], unreachable_since=seen.states[n].unreachable_since or now)
               for n in result.errors if n in seen.states]
    store.save(pushed + failing)
    if seen.forgotten:
        store.forget(seen.forgotten)
        log.warning("event=nodes_forgotten nodes=%s detail='not named by lainlet and unreachable "
                    "for %gh'", ",".join(seen.forgotten), settings.node_forget_hours)
    for node in result.results:  # pauses of jobs that no longer exist on the node go away
        gone = pauses.get(node, set()) - set(todo[node].job_ids)
        if gone:
            store.drop_pauses(node, gone)
    held = seen.verdict.by_node() if seen.holding else {}
    if seen.verdict.held or _had_held(store):
        store.save_held_removals(seen.verdict.fingerprint if seen.holding else "", seen.held_runs,
                                 now)
    if held:
        log.warning("event=removals_held jobs=%s nodes=%s runs=%s of=%s reasons=%r",
                    sum(map(len, held.values())), ",".join(_ip_order(held)), seen.held_runs,
                    settings.removal_confirm_runs, seen.verdict.reasons)
    states_now = {**seen.states, **{s.node: s for s in pushed}}
    if not notify:
        log.warning("event=notify_url_unset detail='ADVERTISE_URL is empty: daemons are not told "
                    "where to post records'")
    return {
        "ok": True,
        "nodes": len(seen.plans),
        "pushed": list(result.results),
        "failed": {n: e.message for n, e in result.errors.items()},
        "cleared": [n for n in result.results if "stale" in todo[n].reasons],
        "restarted": seen.restarted,
        "repaused": {n: ids for n, ids in result.results.items() if ids},
        "unchanged": len(seen.plans) - len(todo),
        "held": {n: sorted(ids) for n, ids in sorted(held.items())},
        "held_reasons": seen.verdict.reasons if held else [],
        "held_runs": seen.held_runs if held else 0,
        "removals_applied": sum(len(v) for v in seen.verdict.by_node().values()) if seen.applying else 0,
        "forgotten": seen.forgotten,
        "problems": len(seen.cluster.problems),
        "notify_url_set": bool(notify),
        "alerts": _alerts(settings, seen.cluster, store, states_now, pauses),
    }


def _had_held(store: NodeStateStore) -> bool:
    return bool(store.held_removals())


def _alerts(settings: Settings, cluster: Cluster, store: NodeStateStore,
            states: dict[str, NodeState], pauses: dict[str, set[str]]) -> int:
    """Alert on backup items that stopped being ok (only when ``ALERT_WEBHOOK_URL`` is set: the
    status routes assess on demand); never fails the run that pushed the jobs."""
    if not settings.alert_webhook_url:
        return 0
    try:
        items = status.assess(settings, cluster, store, RecordStore(store.db.table), states, pauses)
        return status.alert_transitions(settings, items, store)
    except Exception as e:
        log.exception("event=alert_check_failed error=%r", str(e))
        return 0


def plan_answer(seen: Observation) -> dict[str, Any]:
    """The plan route's answer: what the next run would do, per node."""
    return {
        "push": [p.node for p in seen.plans if p.push],
        "clear": [p.node for p in seen.plans if "stale" in p.reasons],
        "restarted": seen.restarted,
        "silent": seen.silent,
        "held": {n: sorted(ids) for n, ids in sorted(seen.verdict.by_node().items())}
        if seen.holding else {},
        "held_reasons": seen.verdict.reasons if seen.holding else [],
        "held_runs": seen.held_runs if seen.holding else 0,
        "removals_applied_next_run": seen.applying,
        "forget": seen.forgotten,
        "nodes": [p.to_dict() for p in seen.plans],
    }
