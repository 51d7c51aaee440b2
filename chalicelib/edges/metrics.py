"""What the controller measures, for CloudWatch: EMF log lines after each reconcile run, full
status pass and notify post (the stack's alarms watch them; the Prometheus scrape of
:mod:`chalicelib.usecases.health` answers the same figures).

EMF lines go through the one JSON logger (:mod:`chalicelib.logs`): CloudWatch reads the metrics out
of the ``_aws`` member of a line, the other members stay searchable log fields. No API call, no
client: emitting a metric costs a log line.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from logging import INFO, WARNING
from typing import TYPE_CHECKING, Any

from chalicelib.core.formats import emf
from chalicelib.logs import event, log

if TYPE_CHECKING:
    from chalicelib.core.freshness import ItemStatus
    from chalicelib.core.types import ReconcileSummary


def item_values(items: list[ItemStatus]) -> dict[str, float]:
    """Items per status (``ItemsOk`` …), ``ItemsBad`` and ``ExpiryHeld``."""
    from chalicelib.core.freshness import BAD, STATUSES  # its callers have imported it already

    values: dict[str, float] = {f"Items{s.capitalize()}": 0 for s in STATUSES}
    for item in items:
        values[f"Items{item.status.capitalize()}"] += 1
    values[emf.ITEMS_BAD] = sum(values[f"Items{s.capitalize()}"] for s in BAD)
    values["ExpiryHeld"] = sum(1 for i in items if i.expiry_held)
    return values


class Metrics:
    """The metrics of one process, in ``namespace``, stamped by ``clock``."""

    def __init__(self, namespace: str, clock: Callable[[], datetime]) -> None:
        self.namespace, self.clock = namespace, clock

    def _emit(self, name: str, values: dict[str, float], units: dict[str, str] | None = None
              ) -> None:
        event(log, name, **emf.document(self.namespace, values, units or {}, self.clock()))

    def status_pass(self, items: list[ItemStatus]) -> None:
        """Metrics of a status pass over the whole cluster."""
        self._emit("metrics_status", item_values(items))

    def reconcile_run(self, summary: ReconcileSummary | None,
                      items: list[ItemStatus] | None = None, *, error: str = "",
                      unexpected: bool = False) -> None:
        """The run's one line: its summary and its metrics (``summary`` None: the run failed with
        ``error``; ``unexpected``: a bug, whose traceback goes with the line), with the status of
        every item when the run could assess them."""
        if summary is None:
            event(log, "reconcile", level=WARNING, exc=unexpected, ok=False, error=error,
                  **emf.document(self.namespace, {emf.RECONCILE_FAILED: 1}, {}, self.clock()))
            return
        values: dict[str, float] = {
            emf.RECONCILE_FAILED: 0,
            "NodesPushed": len(summary.get("pushed", [])),
            emf.NODES_FAILED: len(summary.get("failed", {})),
            "NodesHeld": len(summary.get("held", {})),
            "NodesUnchanged": summary.get("unchanged", 0),
            "Problems": summary.get("problems", 0),
            "RecordsRecovered": summary.get("records_recovered", 0),
            "RunDuration": summary.get("duration_ms", 0),
            **(item_values(items) if items is not None else {}),
        }
        said: dict[str, Any] = {"ok": True, "nodes": summary.get("nodes", 0),
                                "pushed": len(summary.get("pushed", [])),
                "failed": summary.get("failed", {}), "cleared": len(summary.get("cleared", [])),
                "restarted": len(summary.get("restarted", [])),
                "held": sum(len(v) for v in summary.get("held", {}).values()),
                "forgotten": len(summary.get("forgotten", [])),
                "node_problems": summary.get("node_problems", 0),
                "pauses_adopted": sum(map(len, summary.get("pauses_adopted", {}).values())),
                "pauses_reapplied": sum(map(len, summary.get("pauses_reapplied", {}).values())),
                "alerts": summary.get("alerts", 0),
                "operations_moved": summary.get("operations_moved", 0),
                "records_recovered": summary.get("records_recovered", 0),
                "duration_ms": summary.get("duration_ms", 0)}
        event(log, "reconcile", **said, **emf.document(self.namespace, values,
                                                       {"RunDuration": "Milliseconds"}, self.clock()))

    def notify(self, accepted: bool, level: int = INFO, **said: Any) -> None:
        """One notify post: accepted (stored), its one ``notify`` line with what was said of it
        and the count; or refused (the refusal itself is logged where it happened)."""
        values = {"NotifyAccepted" if accepted else "NotifyRefused": 1.0}
        event(log, "notify" if accepted else "notify_refused_count", level=level, **said,
              **emf.document(self.namespace, values, {}, self.clock()))
