"""What runs where: the job lists generated for the nodes, and one node's daemon (its jobs, its
cron, its debug state)."""

from __future__ import annotations

from typing import Any

from chalicelib.core.cluster import Cluster
from chalicelib.core.formats.answers import Partial
from chalicelib.core.formats.pages import page_mapping
from chalicelib.core.jobs import generate
from chalicelib.core.naming import is_node_ip
from chalicelib.core.types import Job
from chalicelib.deps import Deps
from chalicelib.errors import BadRequest, NotFound

CROND_ACTIONS = ("start", "stop")


def generated(deps: Deps, node: str = "", token: str = "") -> Partial:
    """Every node's job list as generated from lainlet now, a page at a time (or one node's)."""
    if node:
        return Partial({node: generate(_known_node(deps, node)).get(node, [])})
    lists, next_token = page_mapping(generate(deps.cluster()), token)
    return Partial(lists, next=next_token)


def _known_node(deps: Deps, ip: str) -> Cluster:
    if not is_node_ip(ip):
        raise BadRequest(f"{ip[:40]!r} is not an IPv4 address", code="bad_ip")
    cluster = deps.cluster()
    if ip not in cluster.node_ips():
        raise NotFound(f"{ip} is not a node lainlet names", code="unknown_node")
    return cluster


def server_jobs(deps: Deps, ip: str) -> list[Job]:
    return generate(_known_node(deps, ip)).get(ip, [])


def server_crond(deps: Deps, ip: str, action: str) -> str:
    if action not in CROND_ACTIONS:
        raise BadRequest(f"action {action!r} is not start or stop", code="bad_action")
    _known_node(deps, ip)
    deps.daemon(ip).crond(action)
    return "OK"


def server_debug(deps: Deps, ip: str) -> dict[str, Any]:
    _known_node(deps, ip)
    return deps.daemon(ip).debug()
