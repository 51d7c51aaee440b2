"""What a reconcile run does to each node, decided from the lists it wants and the states it read.
Pure: no I/O, no clock.

A node is pushed when its wanted list's version differs from the one of its last accepted push
(``changed``), when it has no state yet (``new``), when lainlet names no job for it while it still
holds some (``stale``: it gets an empty list), or when its daemon restarted and lost its jobs. A pushed job
that continues a job of the node's last pushed list under a new ID (its schedule changed) is
``carried``: its history follows it (:mod:`chalicelib.core.lineage`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from chalicelib.core.jobs import list_version
from chalicelib.core.lineage import successors
from chalicelib.core.types import Job

DRIFTED = "drifted:"  # a node state's version while its node must get its list again (+ since)


@dataclass(frozen=True)
class NodeState:
    """A node's list as of its last accepted push (``jobs``: that list, None if not kept), and
    since when pushes to it fail (empty while it answers)."""

    node: str
    version: str
    job_ids: tuple[str, ...] = ()
    job_count: int = 0
    pushed_at: str = ""
    first_seen: tuple[tuple[str, str], ...] = ()  # (job id, time it was first pushed)
    jobs: Sequence[Job] | None = None  # (read lazily from the store: see edges/state.PackedJobs)
    unreachable_since: str = ""
    notify_digest: str = ""  # which notify URL the daemon was given (its token rotates)
    problems: tuple[tuple[str, str, str], ...] = ()  # (kind, since, detail): core.nodehealth

    def first_seen_of(self, job_id: str) -> str:
        return dict(self.first_seen).get(job_id, "")


@dataclass
class NodePlan:
    """What a run does to one node; ``reasons`` empty means nothing to do."""

    node: str
    version: str
    jobs: list[Job] = field(repr=False)
    reasons: list[str]
    added: list[str]
    removed: list[str]
    unchanged: int
    notify_stale: bool = False  # the daemon posts to an older notify URL: hand it the current one
    drifted: str = ""  # since when the node ran another list than the one pushed (a re-push)
    carried: dict[str, str] = field(default_factory=dict)  # new job ID -> the old one it continues

    @property
    def push(self) -> bool:
        return bool(self.reasons)

    @property
    def sent_version(self) -> str:
        """The version the daemon is sent: a drifted node's list is the list it was already
        sent, and the daemon ignores a list whose version it holds, so it gets a version of its
        own (the state keeps the list's version)."""
        return f"{self.version}~{self.drifted}" if self.drifted else self.version

    @property
    def job_ids(self) -> list[str]:
        return [j["id"] for j in self.jobs if j["id"]]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["jobs"]
        out["jobs"] = len(self.jobs)
        return out


def plan(generated: dict[str, list[Job]], states: dict[str, NodeState],
         restarted: frozenset[str] | set[str] = frozenset(), notify_digest: str = "") -> list[NodePlan]:
    """Pure: the per-node actions of a run, in node order.

    new/changed: the list's version differs from the last accepted push; drifted: the node ran
    another list than the one pushed, or does not post to us (its list goes again); stale: the node had jobs
    and lainlet names none for it now (it gets an empty list); restarted: the daemon lost its jobs;
    notify: the node was given another notify URL (the notify token rotated since).
    """
    plans = []
    for node in sorted(set(generated) | set(states), key=ipaddress.IPv4Address):
        node_jobs = generated.get(node, [])
        version = list_version(node_jobs)
        state = states.get(node)
        new_ids = [j["id"] for j in node_jobs if j["id"]]
        old_ids = list(state.job_ids) if state else []
        reasons = []
        if node not in generated:
            if state and state.job_count:
                reasons.append("stale")
        elif state is None:
            reasons.append("new")
        elif state.version.startswith(DRIFTED):
            reasons.append("drifted")
        elif state.version != version:
            reasons.append("changed")
        if node in restarted and node_jobs:
            reasons.append("restarted")
        stale_url = node in generated and (state is None or state.notify_digest != notify_digest)
        if stale_url and not reasons and node_jobs:
            reasons.append("notify")
        plans.append(NodePlan(
            node=node, version=version, jobs=node_jobs, reasons=reasons,
            added=[i for i in new_ids if i not in old_ids],
            removed=[i for i in old_ids if i not in new_ids],
            unchanged=len([i for i in new_ids if i in old_ids]), notify_stale=stale_url,
            drifted=state.version.removeprefix(DRIFTED) if state and "drifted" in reasons else "",
            carried=successors(state.jobs, node_jobs)
            if reasons and state and state.jobs is not None else {},
        ))
    return plans


def with_restarts(plans: list[NodePlan], restarted: set[str]) -> list[NodePlan]:
    """Mark nodes whose daemon restarted (and lost its jobs) to be pushed again."""
    for p in plans:
        if p.node in restarted and p.jobs and "restarted" not in p.reasons:
            p.reasons.append("restarted")
    return plans


