"""The scheduled run, one entrance: who reacts to the minute's tick (and to ``POST
/api/v2/system/reconcile``), in order.

the reconcile pushes what changed (:mod:`reconcile`) → every item's status is assessed from what
the run read (:mod:`health`) → the archives on the nodes of the late and never items (and of a
rotating slice) recover the records a lost post left out (:mod:`archives`, stored through
:mod:`records`; then assessed again) → what went bad or came back is logged and told (:mod:`alerts`) → the
restore operations under way are looked at (:mod:`operations`) → the restore drills due are
started (:mod:`drills`, as operations) → the run's one line goes out: its
summary with its metrics (EMF). Each step is a concern of its own; one that fails is logged and
the next ones still run, and the line goes out whatever happened.
"""

from __future__ import annotations

from logging import WARNING
from typing import Any

from chalicelib.core.freshness import ItemStatus
from chalicelib.core.gotime import format_time
from chalicelib.core.types import JobRecord, ReconcileSummary
from chalicelib.deps import Deps
from chalicelib.errors import BadRequest, Conflict, ControllerError
from chalicelib.logs import event, log
from chalicelib.usecases import alerts, archives, drills, health, operations, reconcile, records

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
    items = _assess(deps, done, done.expiry_held)  # the holds the run pushed
    if items is not None:
        recovered = _archives(deps, done, items)
        done.summary["records_recovered"] = recovered
        if recovered:  # what the archives proved changes the status: assess again
            done.latest = deps.records.latest_by_job(done.cluster.node_ips())
            items = _assess(deps, done, None)
    done.summary["alerts"] = alerts.check(deps, items, done.pauses) if items is not None else 0
    try:  # tick never raises by design; this guards the summary and metrics against a bug in it
        done.summary["operations_moved"] = operations.tick(deps)
    except Exception as e:
        event(log, "operations_not_ticked", level=WARNING, exc=True, error=type(e).__name__)
        done.summary["operations_moved"] = 0
    done.summary["drills_started"] = _drills(deps, done)
    deps.metrics.reconcile_run(done.summary, items)
    return done.summary


def _drills(deps: Deps, done: reconcile.Run) -> int:
    """The restore drills due now (:mod:`drills`) started as operations (:mod:`operations`);
    their first run waits for the next push of their proof job. How many started."""
    try:
        plans, seen = drills.due(deps, done.cluster, done.latest)
    except ControllerError as e:
        event(log, "drills_not_scheduled", level=WARNING, error=e.message)
        return 0
    started = 0
    for plan in plans:
        try:
            operations.start(deps, plan)
            started += 1
        except ControllerError as e:  # a drill on that node already, a store outage: next run
            event(log, "drill_not_started", level=WARNING, node=plan.node, backup=plan.name,
                  error=e.message)
            continue
        if seen.get("night"):  # tonight's budget pays for the drills that started, only
            try:
                deps.operations.spend(seen["night"], plan.size, deps.clock())
            except ControllerError as e:
                event(log, "drill_not_counted", level=WARNING, node=plan.node, backup=plan.name,
                      bytes=plan.size, error=e.message)
    if seen.get("drill_uncoverable"):
        done.summary["drill_uncoverable"] = seen["drill_uncoverable"]
    return started


def _assess(deps: Deps, done: reconcile.Run, held: dict[tuple[str, str], str] | None
            ) -> list[ItemStatus] | None:
    try:
        return health.assess(deps, done.cluster, done.states, done.pauses, done.latest, held)
    except ControllerError as e:
        event(log, "status_not_assessed", level=WARNING, error=e.message)
        return None


def _archives(deps: Deps, done: reconcile.Run, items: list[ItemStatus]) -> int:
    """The archives on the nodes against the records (:mod:`archives`): the success records a
    lost post left out are recovered from the archives and stored as notify stores a record;
    a good backup deleted outside the controller stops counting. How many were recovered."""
    try:
        found = archives.check(deps, done.cluster, items, done.latest)
    except ControllerError as e:  # the run is done; the next one reads the archives again
        event(log, "archives_not_checked", level=WARNING, error=e.message)
        return 0
    recovered: list[tuple[str, JobRecord]] = []
    for node, record in found.recovered:
        try:
            kept = records.store(deps, record)
        except ControllerError as e:
            event(log, "record_not_recovered", level=WARNING, node=node, rid=record["rid"],
                  job=record["id"], error=e.message)
            continue
        if kept.stored:
            recovered.append((node, record))
        if kept.rebaseline:
            alerts.size_rebaselined(deps, record, *kept.rebaseline)
    if recovered:
        event(log, "records_recovered", level=WARNING, records=len(recovered),
              nodes=sorted({node for node, _ in recovered}),
              sample=[r.get("recovered", "") for _, r in recovered[:5]],
              detail="runs whose record never reached the controller (an outage longer than "
                     "the daemons' retries): recovered from their archives")
    for p, file in found.gone:
        assert p.job is not None
        why = f"{p.node} no longer listed it at {format_time(deps.clock())}"
        try:
            marked = deps.records.mark_gone(p.job["id"], file, why)
        except ControllerError as e:
            event(log, "good_backup_check_failed", level=WARNING, job=p.job["id"], error=e.message)
            continue
        if marked:
            event(log, "good_backup_gone", level=WARNING, app=p.proc.app, proc=p.proc.full_name,
                  volume=p.item.volume, job=p.job["id"], file=file, node=p.node,
                  detail="deleted outside the controller: its dir has no good backup on record "
                         "until the next one (the retention floor holds it)")
    return len(recovered)
