"""The audit trail: one item per mutating call (who, what, on what, with which outcome), kept for
``AUDIT_RETENTION_DAYS`` and read newest first, per app or for the whole system.

Items sit in the app's partition (``AUDIT#<app>``; system-wide calls in ``AUDIT#-``) and, through
index ``gsi1``, in one partition per month (``AUDIT#<YYYY-MM>``), so both reads are Queries.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from chalicelib.core.gotime import format_time
from chalicelib.edges.dynamo import Dynamo
from chalicelib.edges.table import GSI_BY_APP_MONTH, TTL_ATTRIBUTE

SYSTEM = "-"  # the partition of calls that concern no single app (reconcile, a node's cron)


class AuditStore:
    def __init__(self, table: Any, retention_days: int) -> None:
        self.db = Dynamo(table)
        self.retention_days = retention_days

    def add(self, entry: dict[str, Any], now: datetime) -> None:
        key = f"{format_time(now)}#{entry.get('request_id', '')}"
        item: dict[str, Any] = {"pk": f"AUDIT#{entry.get('app') or SYSTEM}", "sk": key,
                                "gsi1pk": f"AUDIT#{now:%Y-%m}", "gsi1sk": key,
                                "entry": json.dumps({"time": format_time(now), **entry})}
        if self.retention_days:
            item[TTL_ATTRIBUTE] = int((now + timedelta(days=self.retention_days)).timestamp())
        self.db.put(item)

    def of_app(self, app: str, total: int, before: str = "", since: datetime | None = None
               ) -> list[dict[str, Any]]:
        """The app's newest ``total`` entries (older than the ``before`` cursor, when given; made
        at or after ``since``, when given)."""
        items = self.db.query(f"AUDIT#{app}", newest_first=True, limit=total, before=before,
                              after=format_time(since) if since and not before else "")
        return [self._entry(i) for i in items]

    def of_system(self, total: int, now: datetime, before: str = "") -> list[dict[str, Any]]:
        """Every app's newest ``total`` entries, month by month back to the retention's start."""
        out: list[dict[str, Any]] = []
        month = now.replace(day=1)
        oldest = now - timedelta(days=self.retention_days or 3660)
        while len(out) < total and month >= oldest.replace(day=1):
            items = self.db.query(f"AUDIT#{month:%Y-%m}", index=GSI_BY_APP_MONTH,
                                  newest_first=True, limit=total - len(out), before=before)
            out += [self._entry(i) for i in items]
            month = (month - timedelta(days=1)).replace(day=1)
        return out

    @staticmethod
    def _entry(item: dict[str, Any]) -> dict[str, Any]:
        return {**json.loads(item["entry"]), "cursor": item["sk"]}
