"""Is the cluster's backup healthy? Freshness of every declared volume (from lainlet and DynamoDB
only, no daemon is asked, so it works while nodes are down), as JSON and as the Prometheus scrape,
and the readiness of what the controller depends on."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from chalicelib import __version__
from chalicelib.core import drill, freshness, nodehealth, retention
from chalicelib.core.cluster import Cluster
from chalicelib.core.formats import prometheus
from chalicelib.core.formats.answers import Partial, Text
from chalicelib.core.formats.pages import MAX_PAGE_BYTES, page
from chalicelib.core.naming import check_name
from chalicelib.core.plan import NodeState
from chalicelib.core.types import Latest, Pauses
from chalicelib.deps import Deps
from chalicelib.edges.secrets import Secrets
from chalicelib.errors import BadRequest, ControllerError


def assess(deps: Deps, cluster: Cluster, states: dict[str, NodeState] | None = None,
           pauses: Pauses | None = None, latest: Latest | None = None,
           expiry_held: dict[tuple[str, str], str] | None = None) -> list[freshness.ItemStatus]:
    """Status of every item of ``cluster``: node states and pauses (a Query each) and every job's
    slim latest runs (a Query per node), unless the caller already read them, with the retention
    floor's holds (``expiry_held``: those the run pushed, else worked out from ``latest``)."""
    states = deps.state.states() if states is None else states
    latest = deps.records.latest_by_job(cluster.node_ips()) if latest is None else latest
    first_seen = {(node, job_id): when for node, state in states.items()
                  for job_id, when in state.first_seen}
    now = deps.clock()
    items = freshness.assess(cluster, first_seen=first_seen,
                            paused=deps.state.pauses() if pauses is None else pauses,
                            latest=latest, now=now,
                            grace=timedelta(seconds=deps.settings.freshness_grace_seconds),
                            expiry_held=retention.held_dirs(
                                cluster, latest, now, deps.settings.expiry_hold_margin_percent)
                            if expiry_held is None else expiry_held,
                            node_problems={node: nodehealth.problems(node, state.problems)
                                           for node, state in states.items() if state.problems})
    return _verified(deps, items, now) if deps.settings.drill_root else items


def _verified(deps: Deps, items: list[freshness.ItemStatus], now: datetime
              ) -> list[freshness.ItemStatus]:
    """Each item with its restore drills' verification (one Query)."""
    drilled = deps.operations.drilled()
    cycle = timedelta(days=deps.settings.drill_cycle_days)
    return [dataclasses.replace(i, verification=drill.verification(
        drilled.get(drill.item_key(i.app, i.proc, i.volume, i.instance)), now, cycle))
        for i in items]


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
        deps.metrics.status_pass(items)
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
    check("nodes", lambda: _nodes(deps))
    checks["notify_url"] = _notify_url(deps.settings.notify_address, deps.settings.lainlet_url)
    ok = all(c["ok"] for c in checks.values())
    return Partial({"ready": ok, "checks": checks}, status=200 if ok else 503)


def _notify_url(notify: str, lainlet: str) -> dict[str, Any]:
    """Can the daemons post their records? Not with no ADVERTISE_URL, nor with one on a loopback
    address while lainlet, and so the nodes, is not local: each node would post to itself (a local
    runner started against a real cluster without ``--advertise``), and every record is lost."""
    import ipaddress
    from urllib.parse import urlsplit

    def loopback(url: str) -> bool:
        host = urlsplit(url).hostname or ""
        if host == "localhost" or host.endswith(".localhost"):
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return address.is_loopback or address.is_unspecified

    if not notify:  # NOTIFY_URL, else the REST route under ADVERTISE_URL
        return {"ok": False, "detail": "ADVERTISE_URL is empty: no daemon can post records"}
    if loopback(notify) and not loopback(lainlet):
        return {"ok": False, "code": "notify_url_loopback",
                "detail": f"the nodes are told to post records to {notify}, a loopback address, "
                          f"while lainlet ({urlsplit(lainlet).hostname}) is not local: each node "
                          "would post to itself and every record is lost; set ADVERTISE_URL to an "
                          "address the nodes reach (the local runner: --advertise "
                          "http://<this host>:<port> --host 0.0.0.0)"}
    return {"ok": True, "detail": f"daemons post records to {notify}"}


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
    crond = debug.get("crond_status", "?")
    if crond != "started":
        raise ControllerError(f"crond on {node} is {crond}: none of its jobs run (start it: PUT "
                              f"/api/v2/server/{node}/cron/actions/start)", code="crond_stopped")
    return f"crond {crond}, jobs updated {debug.get('updateTime', '?')}"


def _nodes(deps: Deps) -> str:
    """The node problems the last reconcile runs found (every node, not a sample)."""
    found = [p for node, state in sorted(deps.state.states().items())
             for p in nodehealth.problems(node, state.problems)]
    if found:
        raise ControllerError("; ".join(p.words() for p in found[:10])
                              + (f"; and {len(found) - 10} more" if len(found) > 10 else ""),
                              code="node_problems")
    return "no node problem seen by the last reconcile runs"


HISTORY_RUNS = 50  # enough for "failed N runs in a row" at any sensible alarm setting


def prometheus_text(deps: Deps, app: str, content_type: str) -> Text:
    """The Prometheus scrape: every item's status and times, the counts, the reconcile's state;
    one app's items with ``app``."""
    cluster = deps.cluster(check_name(app, "app") if app else None)
    if app:
        cluster.procs_of(app)  # 404 for an unknown app
    items = assess(deps, cluster)
    text = prometheus.render(items, deps.state.runs(HISTORY_RUNS), len(cluster.problems),
                             __version__)
    if len(text) > MAX_PAGE_BYTES:
        raise BadRequest(f"the metrics of {len(items):,} backup items are {len(text):,} bytes, more "
                         f"than one answer carries ({MAX_PAGE_BYTES:,}): scrape each app with "
                         "?app=<name>", code="too_large")
    return Text(text, content_type)
