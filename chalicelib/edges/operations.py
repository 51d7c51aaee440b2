"""Restore operations in DynamoDB: each one item, moved from phase to phase by conditional writes
(so a notify arriving twice, or two workers, cannot move it twice), found by app, by id, by the
record ids of its daemon runs, and among the open ones.

* operation   ``OP#<app>`` / ``<id>`` (ids sort by creation time)
* by run      ``OPRID#<rid>`` / ``OP`` → the operation's app and id
* open ones   ``OPOPEN`` / ``<app>#<id>`` while it is not finished (the schedule looks at these)
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from chalicelib.core.gotime import format_time
from chalicelib.edges import schema
from chalicelib.edges.dynamo import Dynamo

FINISHED = ("Completed", "Failed")
RETENTION_DAYS = 400


class OperationStore:
    def __init__(self, table: Any) -> None:
        self.db = Dynamo(table)

    @staticmethod
    def _key(app: str, op_id: str) -> dict[str, str]:
        return {"pk": f"OP#{app}", "sk": op_id}

    def create(self, op: dict[str, Any], now: datetime) -> None:
        ttl = int((now + timedelta(days=RETENTION_DAYS)).timestamp())
        self.db.put({**self._key(op["app"], op["id"]), "op": json.dumps(op), "phase": op["phase"],
                     schema.TTL_ATTRIBUTE: ttl})
        self.db.put({"pk": "OPOPEN", "sk": f"{op['app']}#{op['id']}"})

    def get(self, app: str, op_id: str) -> dict[str, Any] | None:
        item = self.db.get(self._key(app, op_id), consistent=True)
        return json.loads(item["op"]) if item else None

    def of_app(self, app: str, total: int) -> list[dict[str, Any]]:
        return [json.loads(i["op"]) for i in self.db.query(f"OP#{app}", newest_first=True,
                                                           limit=total)]

    def open_ones(self) -> list[tuple[str, str]]:
        """(app, id) of every operation not finished yet."""
        out = []
        for item in self.db.query("OPOPEN"):
            app, _, op_id = item["sk"].partition("#")
            out.append((app, op_id))
        return out

    def by_run(self, rid: str) -> tuple[str, str] | None:
        item = self.db.get({"pk": f"OPRID#{rid}", "sk": "OP"})
        return (item["app"], item["op_id"]) if item else None

    def watch(self, rid: str, op: dict[str, Any]) -> None:
        """Remember that the daemon run ``rid`` belongs to ``op``."""
        self.db.put({"pk": f"OPRID#{rid}", "sk": "OP", "app": op["app"], "op_id": op["id"]})

    def move(self, op: dict[str, Any], expected_phase: str, now: datetime) -> bool:
        """Store ``op`` (its new phase set by the caller) if it is still in ``expected_phase``;
        False when another writer moved it first."""
        op["updated"] = format_time(now)
        item = {**self._key(op["app"], op["id"]), "op": json.dumps(op), "phase": op["phase"],
                schema.TTL_ATTRIBUTE: int((now + timedelta(days=RETENTION_DAYS)).timestamp())}
        if not self.db.put_if(item, "phase = :expected", {":expected": expected_phase}):
            return False
        if op["phase"] in FINISHED:
            self.db.delete({"pk": "OPOPEN", "sk": f"{op['app']}#{op['id']}"})
        return True
