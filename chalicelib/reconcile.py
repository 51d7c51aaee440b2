"""The scheduled reconcile: regenerate every node's job list and push only what changed.

One run: fetch the whole backupspec from lainlet → generate job lists (pure) → read the node
states of the last accepted pushes → ask the ``/debug`` of each daemon that would otherwise be
left alone (a Go zero ``updateTime`` means it restarted and lost its jobs) → :func:`plan`
(pure) → push the planned
nodes concurrently (jobs, then the notify URL, then re-pause paused jobs) → store the new state
of the nodes that accepted. A node that failed keeps its old state and is retried next run.

Never wiping: a lainlet failure or a malformed answer changes nothing, and an answer that would
leave *every* node without jobs (lainlet answering ``{}``) is refused rather than obeyed.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib import jobs as joblib
from chalicelib import status
from chalicelib.backupd import BackupdClient, fan_out
from chalicelib.cluster import Cluster
from chalicelib.errors import ControllerError, LainletError
from chalicelib.lainlet import fetch_cluster
from chalicelib.nodestate import NodeState, NodeStateStore
from chalicelib.records import RecordStore
from chalicelib.settings import NOTIFY_PATH, Settings

log = logging.getLogger("backupctl")
GO_ZERO = "0001-01-01T00:00:00Z"


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


def notify_url(settings: Settings) -> str:
    """Where daemons post records; the token rides in the query (daemons keep the URL as given)."""
    if not settings.advertise_url:
        return ""
    url = settings.advertise_url + NOTIFY_PATH
    return f"{url}?token={settings.notify_token}" if settings.notify_token else url


@dataclass
class Observation:
    cluster: Cluster
    plans: list[NodePlan]
    restarted: list[str]
    silent: list[str]  # nodes whose /debug did not answer
    states: dict[str, NodeState]


def observe(settings: Settings, store: NodeStateStore) -> Observation:
    """Everything a run decides on, read-only (this is also the plan route's answer)."""
    cluster = fetch_cluster(settings)
    generated = joblib.generate(cluster)
    states = store.states()
    if not generated and any(s.job_count for s in states.values()):
        raise NothingToKeep("lainlet's backupspec yields no backup job on any node while "
                            f"{sum(1 for s in states.values() if s.job_count)} node(s) hold jobs; "
                            "refusing to clear every node (is lainlet answering {}?)")
    # Only nodes that would otherwise be left alone need a restart check: the rest are pushed.
    unchanged = [p.node for p in plan(generated, states, set()) if not p.push and p.jobs]
    debug = fan_out(unchanged, lambda c: c.debug(), settings)
    restarted = sorted((n for n, d in debug.results.items()
                        if isinstance(d, dict) and d.get("updateTime") == GO_ZERO),
                       key=ipaddress.IPv4Address)
    return Observation(cluster, plan(generated, states, set(restarted)), restarted,
                       debug.unreachable, states)


def _push(client: BackupdClient, p: NodePlan, notify: str, paused: set[str]) -> list[str]:
    """Push one node: jobs, then notify address, then pause again what users paused."""
    client.set_jobs(p.jobs, p.version)
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


def run(settings: Settings, store: NodeStateStore) -> dict[str, Any]:
    """One reconcile run; returns (and stores, and logs) its summary. Raises on lainlet failure."""
    started = datetime.now(UTC)
    clock = time.monotonic()
    summary: dict[str, Any] = {"started": started.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "ok": False}
    try:
        seen = observe(settings, store)
    except ControllerError as e:
        summary |= {"error": e.message, "pushed": [], "failed": {},
                    "duration_ms": round((time.monotonic() - clock) * 1000)}
        log.warning("event=reconcile ok=false error=%r duration_ms=%s", e.message,
                    summary["duration_ms"])
        store.add_run(summary)
        raise
    todo = {p.node: p for p in seen.plans if p.push}
    pauses = store.pauses()
    notify = notify_url(settings)
    result = fan_out(list(todo),
                     lambda c: _push(c, todo[c.node], notify, pauses.get(c.node, set())), settings)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    pushed = [NodeState(n, todo[n].version, tuple(todo[n].job_ids), len(todo[n].jobs), now,
                        _first_seen(seen.states.get(n), todo[n].job_ids, now))
              for n in result.results]
    store.save(pushed)
    states_now = {**seen.states, **{s.node: s for s in pushed}}
    for node in result.results:  # pauses of jobs that no longer exist on the node go away
        gone = pauses.get(node, set()) - set(todo[node].job_ids)
        if gone:
            store.drop_pauses(node, gone)
    summary |= {
        "ok": True,
        "nodes": len(seen.plans),
        "pushed": list(result.results),
        "failed": {n: e.message for n, e in result.errors.items()},
        "cleared": [n for n in result.results if "stale" in todo[n].reasons],
        "restarted": seen.restarted,
        "repaused": {n: ids for n, ids in result.results.items() if ids},
        "unchanged": len(seen.plans) - len(todo),
        "problems": len(seen.cluster.problems),
        "notify_url_set": bool(notify),
        "alerts": _alerts(settings, seen.cluster, store, states_now, pauses),
        "duration_ms": round((time.monotonic() - clock) * 1000),
    }
    log.info("event=reconcile ok=true nodes=%s pushed=%s failed=%s cleared=%s restarted=%s "
             "problems=%s duration_ms=%s failures=%r", summary["nodes"], len(summary["pushed"]),
             len(summary["failed"]), len(summary["cleared"]), len(summary["restarted"]),
             summary["problems"], summary["duration_ms"], summary["failed"])
    if not notify:
        log.warning("event=notify_url_unset detail='ADVERTISE_URL is empty: daemons are not told "
                    "where to post records'")
    store.add_run(summary)
    return summary


def _alerts(settings: Settings, cluster: Cluster, store: NodeStateStore,
            states: dict[str, NodeState], pauses: dict[str, set[str]]) -> int:
    """Alert on backup items that stopped being ok (only when ``ALERT_WEBHOOK_URL`` is set: the
    status routes assess on demand); never fails the run that pushed the jobs."""
    if not settings.alert_webhook_url:
        return 0
    try:
        items = status.assess(settings, cluster, store, RecordStore(store.table), states, pauses)
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
        "nodes": [p.to_dict() for p in seen.plans],
    }
