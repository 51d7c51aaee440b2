"""Recover and migrate as operations that can be undone and followed.

An in-place restore replaces a volume, and the daemon deletes its own safety copy once it
succeeds: a restore from the wrong backup cannot be undone by the daemon. So by default a restore
of a full backup first backs the target volume up as it is now (a *snapshot*: the target's own
backup job, run once), and starts only when that snapshot's success record arrives (through
notify: event-driven, no waiting inside a request). Phases:

``Snapshotting`` → ``Snapshotted`` (the snapshot exists; the restore is being started) →
``Restoring`` → ``Completed`` or ``Failed`` (with the reason). ``?snapshot=false`` skips the
snapshot; increment restores never take one (an increment backup of the volume is rsynced into the
very dir being restored from). ``?dry_run=true`` answers what would be restored where and touches
nothing. Every phase change is a conditional write, so a record posted twice moves nothing twice,
and all state is in DynamoDB: a controller restarted between phases carries on. A daemon may post a
run's result before the run's id reaches the operation (a small volume is archived in
milliseconds); whoever stores the id then looks for the result once, and the schedule looks every
minute, so no result goes unseen. The restore is claimed (the move to ``Restoring``) before the
daemon is asked, so it starts once. An operation that stays in a phase longer than
``OPERATION_PHASE_MINUTES`` fails with that reason (the schedule looks).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from logging import INFO, WARNING
from typing import Any

from chalicelib.core import jobs as joblib
from chalicelib.core.gotime import format_time, parse_go_time
from chalicelib.core.inputs import bounded_int
from chalicelib.deps import Deps
from chalicelib.edges.operations import FINISHED
from chalicelib.errors import BadRequest, Conflict, ControllerError, NotFound
from chalicelib.logs import event, log
from chalicelib.usecases.backups import RestorePlan, plan_restore

RUN_DONE = ("success", "failed")  # the states of a run's record once it finished


def restore(deps: Deps, app: str, proc: str, name: str, files: list[str], to: int | None = None,
            volume: str | None = None, *, snapshot: bool = True, dry_run: bool = False
            ) -> dict[str, Any]:
    """``recover`` (or ``migrate`` with ``to``/``volume``) as an operation: see the module."""
    return start(deps, plan_restore(deps, app, proc, name, files, to, volume), snapshot=snapshot,
                 dry_run=dry_run)


def start(deps: Deps, plan: RestorePlan, *, snapshot: bool = True, dry_run: bool = False
          ) -> dict[str, Any]:
    """Begin the restore ``plan`` (or, ``dry_run``, say what it would do)."""
    now = deps.clock()
    snapshot_job = _snapshot_job(deps, plan) if snapshot and not plan.increment else ""
    if snapshot and not plan.increment and not snapshot_job:
        raise BadRequest(f"{plan.volume} of {plan.proc} instance {plan.instance} has no backup job "
                         f"on {plan.node} to take the pre-restore snapshot with; restore without "
                         "one with ?snapshot=false", code="no_snapshot_job")
    if snapshot_job and plan.in_place and _made_this_second(plan.created, now):
        raise Conflict(f"{plan.name} was made this very second: a snapshot now would get its name "
                       "and overwrite it; try again in a second", code="too_soon")
    what = {"node": plan.node, "source_backup": plan.name, "source_node": plan.namespace,
            "target_dir": plan.dest_dir or plan.source_dir, "instance": plan.instance,
            "files": plan.files or "all", "snapshot": bool(snapshot_job)}
    if dry_run:
        return {"dry_run": True, "would_restore": what}
    op: dict[str, Any] = {
          "id": f"{now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}", "app": plan.app, "proc": plan.proc,
          "kind": plan.kind, "phase": "Snapshotting" if snapshot_job else "Restoring",
          "created": format_time(now), "updated": format_time(now), "restore_plan": plan.to_dict(),
          **what, "snapshot": {"job": snapshot_job} if snapshot_job else None, "restore": None,
          "error": ""}
    deps.operations.create(op, now)  # the intent first: whatever happens next is on record
    expected = str(op["phase"])
    try:
        if snapshot_job:
            rid = deps.daemon(plan.node).run_once(snapshot_job)
            op["snapshot"]["rid"] = rid
        else:
            rid = _begin_restore(deps, op)
    except ControllerError as e:
        op |= {"phase": "Failed", "error": f"{expected}: {e.message}"}
        deps.operations.move(op, expected, now)
        e.message += f" (operation {op['id']} failed; nothing was restored)"
        raise
    try:  # the daemon runs it now: a failure from here on must not say that nothing happened
        _track(deps, op, rid, expected)
    except ControllerError as e:
        run = "pre-restore snapshot" if snapshot_job else "restore"
        e.message += (f" (operation {op['id']}: {plan.node} runs its {run} as record {rid}, which "
                      "the operation could not be told; follow that record)")
        raise
    event(log, "operation", id=op["id"], app=op["app"], phase=op["phase"], kind=op["kind"],
          backup=plan.name, node=plan.node)
    return _answer(op)


def _track(deps: Deps, op: dict[str, Any], rid: str, phase: str) -> None:
    """Store that the daemon run ``rid`` is ``op``'s (in ``phase``), then look once whether that
    run already finished: a fast daemon posts a run's result before its id reaches the operation,
    and that notify found nothing to move. The schedule looks again (:func:`tick`)."""
    deps.operations.watch(rid, op)
    deps.operations.move(op, phase, deps.clock())
    try:
        _catch_up(deps, op)
    except ControllerError as e:  # the run is tracked: the schedule catches up
        event(log, "operation_not_advanced", level=WARNING, id=op["id"], error=e.message)


def advance(deps: Deps, record: dict[str, Any]) -> None:
    """A daemon finished a run: if it belongs to an operation, move the operation on."""
    if record.get("state") not in RUN_DONE:
        return
    found = deps.operations.by_run(record["rid"])
    op = deps.operations.get(*found) if found else None
    if op is not None:
        _on_record(deps, op, record)


def _on_record(deps: Deps, op: dict[str, Any], record: dict[str, Any]) -> bool:
    """Move ``op`` on by the finished ``record`` of its snapshot or its restore; whether it moved
    (a record of another phase, or one that was seen already, moves nothing)."""
    now = deps.clock()
    snapshot = op.get("snapshot") or {}
    if snapshot.get("rid") == record["rid"] and op["phase"] == "Snapshotting":
        if record["state"] == "failed":
            return _move(deps, op, "Snapshotting", "Failed", now,
                         error=f"the pre-restore snapshot failed: {record.get('reason')}; nothing "
                               "was restored")
        snapshot["file"] = (record.get("result") or {}).get("file", "")
        if not _move(deps, op, "Snapshotting", "Snapshotted", now):
            return False
        _try_restore(deps, op, now)
        return True
    if (op.get("restore") or {}).get("rid") == record["rid"] and op["phase"] == "Restoring":
        if record["state"] == "success":
            return _move(deps, op, "Restoring", "Completed", now)
        return _move(deps, op, "Restoring", "Failed", now,
                     error=f"the restore failed: {record.get('reason')}")
    return False


def _catch_up(deps: Deps, op: dict[str, Any]) -> bool:
    """Move ``op`` on if the run of its phase has already finished (its record is stored)."""
    run = {"Snapshotting": op.get("snapshot"), "Restoring": op.get("restore")}.get(op["phase"])
    rid = (run or {}).get("rid")
    if not rid:
        return False
    try:
        record = deps.records.get(op["app"], rid, consistent=True)
    except NotFound:
        return False
    return record.get("state") in RUN_DONE and _on_record(deps, op, record)


def tick(deps: Deps) -> int:
    """The schedule's look at open operations: start restores whose snapshot is done, move on
    those whose run finished unseen, fail those stuck in a phase too long. How many moved."""
    moved = 0
    now = deps.clock()
    limit = timedelta(minutes=deps.settings.operation_phase_minutes)
    for app, op_id in deps.operations.open_ones():
        try:
            moved += _tick_one(deps, app, op_id, now, limit)
        except ControllerError as e:  # one operation's trouble stays its own: the next look retries
            event(log, "operation_not_advanced", level=WARNING, id=op_id, error=e.message)
    return moved


def _tick_one(deps: Deps, app: str, op_id: str, now: datetime, limit: timedelta) -> bool:
    op = deps.operations.get(app, op_id)
    if op is None or op["phase"] in FINISHED:
        return False
    went_on = _try_restore(deps, op, now) if op["phase"] == "Snapshotted" else _catch_up(deps, op)
    if went_on:
        return True
    if now - parse_go_time(op["updated"])[0] > limit:  # in any phase, a restore not started too
        return _move(deps, op, op["phase"], "Failed", now,
                     error=f"stuck in {op['phase']} since {op['updated']}, longer than "
                           f"OPERATION_PHASE_MINUTES ({limit.total_seconds() / 60:g} min)")
    return False


def get(deps: Deps, app: str, op_id: str) -> dict[str, Any]:
    op = deps.operations.get(app, op_id)
    if op is None:
        raise NotFound(f"operation {op_id!r} of app {app!r} not found", code="unknown_operation")
    return _answer(op)


def of_app(deps: Deps, app: str, total: str) -> list[dict[str, Any]]:
    """The app's operations, newest first."""
    count = bounded_int(total or "50", "total", 1, 1000)
    return [_answer(op) for op in deps.operations.of_app(app, count)]


def _answer(op: dict[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in op.items() if k != "restore_plan"}
    return {"operation": op["id"], **shown,
            "url": f"/api/v2/app/{op['app']}/operations/{op['id']}"}


def _move(deps: Deps, op: dict[str, Any], expected: str, phase: str, now: datetime,
          error: str = "") -> bool:
    op["phase"] = phase
    if error:
        op["error"] = error
    moved = deps.operations.move(op, expected, now)
    if moved:
        event(log, "operation", level=WARNING if phase == "Failed" else INFO, id=op["id"],
              app=op["app"], phase=phase, error=error)
    return moved


def _try_restore(deps: Deps, op: dict[str, Any], now: datetime) -> bool:
    """Start the restore of an operation whose snapshot is done. The move to ``Restoring`` comes
    first and is the claim: of a notify and the schedule reaching here at once, only one asks the
    daemon (two restores into one volume at once would be the damage this guards against). If the
    daemon cannot start it, the operation goes back to ``Snapshotted``, keeping the time it got
    there (so one that can never start still fails as stuck), and the schedule tries again."""
    since = op["updated"]
    if not _move(deps, op, "Snapshotted", "Restoring", now):
        return False
    try:
        rid = _begin_restore(deps, op)
    except ControllerError as e:
        event(log, "operation_restore_not_started", level=WARNING, id=op["id"], error=e.message)
        op |= {"phase": "Snapshotted", "restore": None}
        deps.operations.move(op, "Restoring", parse_go_time(since)[0])
        return False
    _track(deps, op, rid, "Restoring")
    return True


def _begin_restore(deps: Deps, op: dict[str, Any]) -> str:
    plan = RestorePlan(**op["restore_plan"])
    client = deps.daemon(plan.node)
    rid = (client.recover_increment(plan.name, plan.form()) if plan.increment
           else client.recover_full(plan.name, plan.form()))
    op["restore"] = {"rid": rid}
    return rid


def _snapshot_job(deps: Deps, plan: RestorePlan) -> str:
    """The target volume's own backup job on the target node (run once, it is the snapshot)."""
    cluster = deps.cluster(plan.app)
    for p in joblib.placements(cluster):
        if (p.proc.full_name, p.pod.instance_no, p.item.volume, p.node) == \
                (plan.proc, plan.instance, plan.volume, plan.node) and p.job:
            return p.job["id"]
    return ""


def _made_this_second(created: str, now: datetime) -> bool:
    try:
        return abs((now - parse_go_time(created)[0]).total_seconds()) < 2
    except ValueError:
        return False
