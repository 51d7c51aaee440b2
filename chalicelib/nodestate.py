"""What the reconcile remembers between runs, in DynamoDB: each node's last good push, the pauses
users asked for, and a bounded history of run summaries.

The daemons forget pause states when they restart; keeping pauses here lets every push re-apply
them, so a pause lasts until the user wakes the job up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib import schema

NODES, PAUSES, RUNS, STATUSES = "NODES", "PAUSES", "RECONCILE", "STATUS"
RUN_HISTORY_DAYS = 7


@dataclass(frozen=True)
class NodeState:
    """A node's list as of its last accepted push."""

    node: str
    version: str
    job_ids: tuple[str, ...] = ()
    job_count: int = 0
    pushed_at: str = ""
    first_seen: tuple[tuple[str, str], ...] = ()  # (job id, time it was first pushed)

    def first_seen_of(self, job_id: str) -> str:
        return dict(self.first_seen).get(job_id, "")


class NodeStateStore:
    """Node states, pauses and run summaries on the controller's table."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def _partition(self, pk: str, *, newest_first: bool = False,
                   limit: int | None = None) -> list[dict[str, Any]]:
        from boto3.dynamodb.conditions import Key

        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(pk),
                                  "ScanIndexForward": not newest_first}
        if limit:
            kwargs["Limit"] = limit
        items: list[dict[str, Any]] = []
        while True:
            page = self.table.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page or (limit and len(items) >= limit):
                return items[:limit] if limit else items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- node states --------------------------------------------------------------------------
    def states(self) -> dict[str, NodeState]:
        return {i["sk"]: NodeState(i["sk"], i["version"], tuple(i.get("job_ids", [])),
                                   int(i.get("job_count", 0)), i.get("pushed_at", ""),
                                   tuple(sorted(i.get("first_seen", {}).items())))
                for i in self._partition(NODES)}

    def save(self, states: list[NodeState]) -> None:
        with self.table.batch_writer() as batch:
            for s in states:
                batch.put_item(Item={"pk": NODES, "sk": s.node, "version": s.version,
                                     "job_ids": list(s.job_ids), "job_count": s.job_count,
                                     "pushed_at": s.pushed_at, "first_seen": dict(s.first_seen)})

    # -- pauses -------------------------------------------------------------------------------
    def pauses(self) -> dict[str, set[str]]:
        """Paused job ids by node."""
        out: dict[str, set[str]] = {}
        for item in self._partition(PAUSES):
            node, _, job_id = item["sk"].partition("#")
            out.setdefault(node, set()).add(job_id)
        return out

    def set_pause(self, node: str, job_id: str, paused: bool) -> None:
        key = {"pk": PAUSES, "sk": f"{node}#{job_id}"}
        if paused:
            self.table.put_item(Item={**key, "paused_at": _now()})
        else:
            self.table.delete_item(Key=key)

    def drop_pauses(self, node: str, job_ids: set[str]) -> None:
        with self.table.batch_writer() as batch:
            for job_id in job_ids:
                batch.delete_item(Key={"pk": PAUSES, "sk": f"{node}#{job_id}"})

    # -- backup statuses seen by the last run (for alerts on transitions) ------------------------
    def statuses(self) -> dict[str, str]:
        return {i["sk"]: i["status"] for i in self._partition(STATUSES)}

    def save_statuses(self, changed: dict[str, str]) -> None:
        with self.table.batch_writer() as batch:
            for key, status in changed.items():
                batch.put_item(Item={"pk": STATUSES, "sk": key, "status": status})

    # -- run history --------------------------------------------------------------------------
    def add_run(self, summary: dict[str, Any]) -> None:
        expires = datetime.now(UTC) + timedelta(days=RUN_HISTORY_DAYS)
        self.table.put_item(Item={"pk": RUNS, "sk": summary["started"],
                                  "summary": json.dumps(summary),
                                  schema.TTL_ATTRIBUTE: int(expires.timestamp())})

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return [json.loads(i["summary"]) for i in self._partition(RUNS, newest_first=True,
                                                                   limit=limit)]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
