"""The scheduled run, one entrance: who reacts to the minute's tick (and to ``POST
/api/v2/system/reconcile``), in order.

the reconcile pushes what changed (:mod:`reconcile`) → every item's status is assessed from what
the run read (:mod:`health`) → what went bad or came back is logged and told (:mod:`alerts`) → the
restore operations under way are looked at (:mod:`operations`) → the run's one line goes out: its
summary with its metrics (EMF). Each step is a concern of its own; one that fails is logged and
the next ones still run, and the line goes out whatever happened.
"""

from __future__ import annotations

from logging import WARNING
from typing import Any

from chalicelib.core.freshness import ItemStatus
from chalicelib.core.types import ReconcileSummary
from chalicelib.deps import Deps
from chalicelib.errors import BadRequest, Conflict, ControllerError
from chalicelib.logs import event, log
from chalicelib.usecases import alerts, health, operations, reconcile

CONFIRMATIONS = ("removals",)


def scheduled(deps: Deps) -> dict[str, Any]:
    """The scheduled run's result; every failure becomes ``{"ok": false, "error"}``, never raised
    (a failed run is logged and kept in the history; Lambda must not retry it on top of the next
    scheduled one)."""
    try:
        result = dict(_run(deps))
    except ControllerError as e:
        result = {"ok": False, "error": e.message}
    except Exception as e:  # the run already logged it and kept it in the history
        result = {"ok": False, "error": f"internal error ({type(e).__name__})"}
    _build_fresh(deps)
    return result


def _build_fresh(deps: Deps) -> None:
    """On a table from before the slim freshness items, build them once (runs read the old way
    until then). Last, with the time the run leaves: on a large cluster it takes minutes, and if
    the function's timeout cuts it off, the run's own work is done and the next run tries again."""
    try:
        deps.records.build_fresh()
    except Exception as e:  # the scheduled run never raises
        event(log, "fresh_items_not_built", level=WARNING, exc=not isinstance(e, ControllerError),
              error=getattr(e, "message", type(e).__name__))


def run_now(deps: Deps, confirm: list[str] | None = None) -> ReconcileSummary:
    """Run now; ``?confirm=removals`` applies the removals the reconcile holds."""
    unknown = [c for c in confirm or [] if c not in CONFIRMATIONS]
    if unknown:
        raise BadRequest(f"confirm: {', '.join(map(repr, unknown))} is not one of "
                         f"{', '.join(CONFIRMATIONS)}", code="bad_confirm")
    return _run(deps, confirm=bool(confirm))


def _run(deps: Deps, confirm: bool = False) -> ReconcileSummary:
    try:
        done = reconcile.run(deps, confirm=confirm)
    except Conflict:  # another run holds the lease: not a failure of the reconcile
        raise
    except Exception as e:  # the run's one line: what failed (and the traceback of a bug)
        deps.metrics.reconcile_run(None, error=getattr(e, "message", None) or
                                   f"internal error ({type(e).__name__}: {str(e)[:200]})",
                                   unexpected=not isinstance(e, ControllerError))
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
    deps.metrics.reconcile_run(done.summary, items)
    return done.summary
