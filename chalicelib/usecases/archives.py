"""The daemons' archives against the records (:mod:`chalicelib.core.backfill`): runs whose record
never came (a DynamoDB outage longer than the daemon's retries, a wrong notify address), and good
backups deleted outside the controller.

The schedule reads the archive listing (``GET /backup/json`` of the node's volume dirs) of every
node with an item ``late`` or ``never`` this run, and of its rotating slice of the others
(``NODE_CHECK_MINUTES``: every node within that many minutes); the listings the users ask for
never touch DynamoDB for this.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from chalicelib.core import backfill, pausecheck
from chalicelib.core.cluster import Cluster
from chalicelib.core.freshness import ItemStatus
from chalicelib.core.jobs import Placement, placements
from chalicelib.core.types import JobRecord, Latest
from chalicelib.deps import Deps
from chalicelib.edges.backupd import dirs_query

UNRECORDED = ("late", "never")  # the statuses a run whose record was lost leaves behind


@dataclass
class Found:
    """What the listings said: success records to recover, good backups gone, nodes listed."""

    recovered: list[tuple[str, JobRecord]] = field(default_factory=list)  # node, record
    gone: list[tuple[Placement, str]] = field(default_factory=list)  # the job, its archive
    listed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def check(deps: Deps, cluster: Cluster, items: list[ItemStatus], latest: Latest) -> Found:
    """Read the archives of this run's nodes and compare them with the records."""
    minute = int(deps.clock().timestamp()) // 60
    by_node: dict[str, list[Placement]] = defaultdict(list)
    for p in placements(cluster):
        if p.job is not None:
            by_node[p.node].append(p)
    wanted = {(i.node, i.job_id) for i in items if i.status in UNRECORDED and i.job_id}
    behind = {node for node, _ in wanted}
    nodes = [n for n in by_node
             if n in behind or pausecheck.due(n, minute, deps.settings.node_check_minutes)]
    queries = {n: dirs_query(sorted({p.path for p in by_node[n]})) for n in nodes}
    listings = deps.fan_out(nodes, lambda c: c.backups(queries[c.node]))
    found = Found(listed=list(listings.results),
                  failed={n: e.message for n, e in listings.errors.items()})
    now = deps.clock()
    for node, entities in listings.results.items():
        jobs = frozenset(job for n, job in wanted if n == node)
        found.recovered += [(node, r) for r in backfill.recovered(by_node[node], entities, latest,
                                                                  now, jobs)]
        found.gone += backfill.gone(by_node[node], entities, latest)
    return found
