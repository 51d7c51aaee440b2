"""Is the cluster's backup healthy? Freshness of every declared volume (from lainlet and DynamoDB
only, no daemon is asked, so it works while nodes are down) and the problems of the spec."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from chalicelib import reconcile
from chalicelib.core import freshness, retention
from chalicelib.core.answers import Partial
from chalicelib.core.cluster import Cluster
from chalicelib.core.jobs import placements
from chalicelib.core.pages import page
from chalicelib.core.plan import NodeState
from chalicelib.core.retention import Latest
from chalicelib.core.types import Pauses
from chalicelib.deps import Deps
from chalicelib.edges.secrets import Secrets
from chalicelib.errors import ControllerError
from chalicelib.usecases import metrics


def assess(deps: Deps, cluster: Cluster, states: dict[str, NodeState] | None = None,
           pauses: Pauses | None = None, latest: Latest | None = None) -> list[freshness.ItemStatus]:
    """Status of every item of ``cluster``: at most three Queries (node states, pauses and every
    job's latest records, unless the caller already read them), with the retention floor's holds."""
    states = deps.state.states() if states is None else states
    latest = deps.records.latest_by_job() if latest is None else latest
    first_seen = {(node, job_id): when for node, state in states.items()
                  for job_id, when in state.first_seen}
    now = deps.clock()
    return freshness.assess(cluster, first_seen=first_seen,
                            paused=deps.state.pauses() if pauses is None else pauses,
                            latest=latest, now=now,
                            grace=timedelta(seconds=deps.settings.freshness_grace_seconds),
                            expiry_held=retention.held_dirs(
                                cluster, latest, now, deps.settings.expiry_hold_margin_percent))


def _answer(items: list[freshness.ItemStatus]) -> dict[str, Any]:
    by_app: dict[str, list[freshness.ItemStatus]] = {}
    for item in items:
        by_app.setdefault(item.app, []).append(item)
    return {"counts": freshness.counts(items),
            "expiry_held": sum(1 for i in items if i.expiry_held),
            "apps": {app: freshness.counts(app_items) for app, app_items in sorted(by_app.items())},
            "items": [i.to_dict() for i in items]}


def app_status(deps: Deps, app: str) -> dict[str, Any]:
    cluster = deps.cluster(app)
    cluster.procs_of(app)  # 404 for an unknown app
    return _answer(assess(deps, cluster))


def system_status(deps: Deps, token: str = "") -> Partial:
    """Every app's status: counts of every item, the ``items`` a page at a time. The first page
    is a status pass of the whole cluster: its counts go out as metrics."""
    items = assess(deps, deps.cluster())
    if not token:
        metrics.status_pass(deps, items)
    answer = _answer(items)
    answer["items"], next_token = page(answer["items"], token)
    return Partial(answer, next=next_token)


SAMPLE_DAEMONS = 3


def ready(deps: Deps) -> Partial:
    """Is everything the controller needs reachable? Each dependency asked once: lainlet (its
    refusal named), the DynamoDB table, the SSM parameters, a few daemons, the notify URL."""
    checks: dict[str, dict[str, Any]] = {}

    def check(name: str, probe: Callable[[], str]) -> Any:
        try:
            checks[name] = {"ok": True, "detail": probe()}
        except ControllerError as e:
            checks[name] = {"ok": False, "detail": e.message, "code": e.code}

    cluster: list[Cluster] = []
    check("lainlet", lambda: _lainlet(deps, cluster))
    check("dynamodb", lambda: _table(deps))
    check("ssm", lambda: _parameters(deps))
    nodes = cluster[0].node_ips()[:SAMPLE_DAEMONS] if cluster else []
    for node in nodes:
        check(f"backupd {node}", lambda node=node: _daemon(deps, node))  # type: ignore[misc]
    advertise = deps.settings.advertise_url
    checks["notify_url"] = {"ok": bool(advertise),
                            "detail": f"daemons post records to {advertise}/api/v2/system/notify"
                            if advertise else "ADVERTISE_URL is empty: no daemon can post records"}
    ok = all(c["ok"] for c in checks.values())
    return Partial({"ready": ok, "checks": checks}, status=200 if ok else 503)


def _lainlet(deps: Deps, out: list[Cluster]) -> str:
    out.append(deps.cluster())
    return (f"{len(out[0].procs)} procs on {len(out[0].node_ips())} nodes, "
            f"{len(out[0].problems)} spec problems")


def _table(deps: Deps) -> str:
    deps.state.held_removals()  # one consistent GetItem
    return f"table {deps.settings.table_name} answers"


def _parameters(deps: Deps) -> str:
    names = [n for n in (deps.settings.notify_token_param, deps.settings.api_token_param) if n]
    if not names:
        return "no SSM parameter configured (tokens from the environment, or none)"
    fresh = Secrets(dataclasses.replace(deps.settings, secret_cache_seconds=0), deps.clock)
    fresh.notify_tokens()
    fresh.api_token()
    return f"{', '.join(names)} readable"


def _daemon(deps: Deps, node: str) -> str:
    debug = deps.daemon(node).debug()
    return f"crond {debug.get('crond_status', '?')}, jobs updated {debug.get('updateTime', '?')}"


def problems(deps: Deps, token: str = "") -> Partial:
    """Spec problems a page at a time (see :func:`all_problems`)."""
    found, next_token = page(all_problems(deps), token)
    return Partial(found, next=next_token)


def all_problems(deps: Deps) -> list[dict[str, Any]]:
    """Spec problems the original silently dropped (bad schedules, expires, annotations, IPs),
    jobs the reconcile found paused on their node with no pause on record, the dirs the retention
    floor keeps out of expire jobs, and the job removals the reconcile holds because lainlet's
    answer looks wrong."""
    cluster = deps.cluster()
    found = [p.to_dict() for p in cluster.problems] + _paused_on_node(deps, cluster)
    try:
        seen = reconcile.observe(deps, cluster=cluster, check_restarts=False)
    except reconcile.NothingToKeep as e:
        return [*found, {"kind": "refused_empty_spec", "app": "", "proc": "", "instance": None,
                         "reason": e.message, "volume": ""}]
    # held dirs come from this cluster's placements: each names its app, proc and instance
    owners = {(p.node, p.path): p for p in placements(cluster)} if seen.expiry_held else {}
    for (node, path), why in sorted(seen.expiry_held.items()):
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
