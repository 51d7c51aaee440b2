"""What runs where: the generated job lists, one node's daemon, and the reconcile that pushes the
lists (run now, on schedule, planned, and its history)."""

from __future__ import annotations

from logging import WARNING
from typing import Any

from chalicelib import alerts, reconcile
from chalicelib.core import jobs as joblib
from chalicelib.core.answers import Partial
from chalicelib.core.cluster import Cluster
from chalicelib.core.freshness import ItemStatus
from chalicelib.core.inputs import bounded_int
from chalicelib.core.naming import is_node_ip
from chalicelib.core.pages import page, page_mapping
from chalicelib.core.types import Job, ReconcileSummary
from chalicelib.deps import Deps
from chalicelib.errors import BadRequest, Conflict, ControllerError, NotFound
from chalicelib.logs import event, log
from chalicelib.usecases import health, metrics, operations

CONFIRMATIONS = ("removals",)
CROND_ACTIONS = ("start", "stop")


def generated(deps: Deps, node: str = "", token: str = "") -> Partial:
    """Every node's job list as generated from lainlet now, a page at a time (or one node's)."""
    if node:
        return Partial({node: joblib.generate(_known_node(deps, node)).get(node, [])})
    lists, next_token = page_mapping(joblib.generate(deps.cluster()), token)
    return Partial(lists, next=next_token)


def _known_node(deps: Deps, ip: str) -> Cluster:
    if not is_node_ip(ip):
        raise BadRequest(f"{ip[:40]!r} is not an IPv4 address", code="bad_ip")
    cluster = deps.cluster()
    if ip not in cluster.node_ips():
        raise NotFound(f"{ip} is not a node lainlet names", code="unknown_node")
    return cluster


def server_jobs(deps: Deps, ip: str) -> list[Job]:
    return joblib.generate(_known_node(deps, ip)).get(ip, [])


def server_crond(deps: Deps, ip: str, action: str) -> str:
    if action not in CROND_ACTIONS:
        raise BadRequest(f"action {action!r} is not start or stop", code="bad_action")
    _known_node(deps, ip)
    deps.daemon(ip).crond(action)
    return "OK"


def server_debug(deps: Deps, ip: str) -> dict[str, Any]:
    _known_node(deps, ip)
    return deps.daemon(ip).debug()


def _run(deps: Deps, confirm: bool = False) -> ReconcileSummary:
    """The reconcile, then on what it read: the status of every item (alerts and metrics), and the
    restores under way moved on. Each a concern of its own, called in turn."""
    try:
        done = reconcile.run(deps, confirm=confirm)
    except Conflict:  # another run holds the lease: not a failure of the reconcile
        raise
    except Exception:
        metrics.reconcile_run(deps, None)
        raise
    try:
        items: list[ItemStatus] | None = health.assess(deps, done.cluster, done.states,
                                                       done.pauses, done.latest)
    except ControllerError as e:
        event(log, "status_not_assessed", level=WARNING, error=e.message)
        items = None
    done.summary["alerts"] = alerts.check(deps, items, done.pauses) if items is not None else 0
    try:  # tick never raises by design; this guards the summary and metrics against a bug in it
        done.summary["operations_moved"] = operations.tick(deps)
    except Exception as e:
        event(log, "operations_not_ticked", level=WARNING, exc=True, error=type(e).__name__)
        done.summary["operations_moved"] = 0
    metrics.reconcile_run(deps, done.summary, items)
    return done.summary


def reconcile_now(deps: Deps, confirm: list[str] | None = None) -> ReconcileSummary:
    """Run the reconcile now; ``?confirm=removals`` applies the removals it holds."""
    unknown = [c for c in confirm or [] if c not in CONFIRMATIONS]
    if unknown:
        raise BadRequest(f"confirm: {', '.join(map(repr, unknown))} is not one of "
                         f"{', '.join(CONFIRMATIONS)}", code="bad_confirm")
    return _run(deps, confirm=bool(confirm))


def scheduled(deps: Deps) -> dict[str, Any]:
    """The scheduled run's result; every failure becomes ``{"ok": false, "error"}``, never raised."""
    try:
        return dict(_run(deps))
    except ControllerError as e:
        return {"ok": False, "error": e.message}
    except Exception as e:  # the run already logged it and kept it in the history
        return {"ok": False, "error": f"internal error ({type(e).__name__})"}


def plan(deps: Deps, token: str = "") -> Partial:
    """What the next run would do; ``nodes`` a page at a time."""
    answer = reconcile.plan_answer(reconcile.observe(deps))
    answer["nodes"], next_token = page(answer["nodes"], token)
    return Partial(answer, next=next_token)


def history(deps: Deps, total: str | None) -> list[dict[str, Any]]:
    return deps.state.runs(bounded_int(total or "20", "total", 1, 1000))
