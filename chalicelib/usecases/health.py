"""Is the cluster's backup healthy? Freshness of every declared volume (from lainlet and DynamoDB
only, no daemon is asked, so it works while nodes are down) and the problems of the spec."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib import reconcile
from chalicelib.core import freshness
from chalicelib.core.cluster import Cluster
from chalicelib.core.pages import page
from chalicelib.core.plan import NodeState
from chalicelib.core.types import Partial
from chalicelib.deps import Deps


def assess(deps: Deps, cluster: Cluster, states: dict[str, NodeState] | None = None,
           pauses: dict[str, set[str]] | None = None) -> list[freshness.ItemStatus]:
    """Status of every item of ``cluster``: at most three Queries (node states and pauses unless
    the caller already read them, and every job's latest records)."""
    states = deps.state.states() if states is None else states
    first_seen = {(node, job_id): when for node, state in states.items()
                  for job_id, when in state.first_seen}
    return freshness.assess(cluster, first_seen=first_seen,
                            paused=deps.state.pauses() if pauses is None else pauses,
                            latest=deps.records.latest_by_job(), now=deps.clock(),
                            grace=timedelta(seconds=deps.settings.freshness_grace_seconds))


def _answer(items: list[freshness.ItemStatus]) -> dict[str, Any]:
    by_app: dict[str, list[freshness.ItemStatus]] = {}
    for item in items:
        by_app.setdefault(item.app, []).append(item)
    return {"counts": freshness.counts(items),
            "apps": {app: freshness.counts(app_items) for app, app_items in sorted(by_app.items())},
            "items": [i.to_dict() for i in items]}


def app_status(deps: Deps, app: str) -> dict[str, Any]:
    cluster = deps.cluster(app)
    cluster.procs_of(app)  # 404 for an unknown app
    return _answer(assess(deps, cluster))


def system_status(deps: Deps, token: str = "") -> Partial:
    """Every app's status: counts of every item, the ``items`` a page at a time."""
    answer = _answer(assess(deps, deps.cluster()))
    answer["items"], next_token = page(answer["items"], token)
    return Partial(answer, next=next_token)


def problems(deps: Deps, token: str = "") -> Partial:
    """Spec problems a page at a time (see :func:`all_problems`)."""
    found, next_token = page(all_problems(deps), token)
    return Partial(found, next=next_token)


def all_problems(deps: Deps) -> list[dict[str, Any]]:
    """Spec problems the original silently dropped (bad schedules, expires, annotations, IPs),
    and the job removals the reconcile holds because lainlet's answer looks wrong."""
    cluster = deps.cluster()
    found = [p.to_dict() for p in cluster.problems]
    try:
        seen = reconcile.observe(deps, cluster=cluster, check_restarts=False)
    except reconcile.NothingToKeep as e:
        return [*found, {"kind": "refused_empty_spec", "app": "", "proc": "", "instance": None,
                         "reason": e.message, "volume": ""}]
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
