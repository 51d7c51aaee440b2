"""Recover and migrate as operations that can be undone, followed and believed.

An in-place restore replaces a volume; the daemon cannot undo it, and it reports ``success`` even
when its copy step failed and it put the old content back. So a restore here is an operation
(:mod:`chalicelib.core.operation` holds its phases and every legal move): by default the target
volume is first backed up as it is now (the *snapshot*, the undo), the restore starts only after
a snapshot that can be trusted, and a full restore the daemon reports done is checked by backing
the target up once more and comparing that archive with the source backup.

This module performs what the state machine decides: it stores each next state with a
conditional write *before* asking a daemon anything (so of two workers only one asks), then asks,
and feeds the answer back. A second restore into a dir with an open operation is refused (409)
by a lock item taken in the same transaction as the operation. Records reach an operation through
notify (:func:`check_record` before a record is stored, :func:`advance` after), and the schedule
looks at every open operation each minute (:func:`tick`): one that finished unseen moves on, one
that stayed too long in a phase ends, one whose item or handling breaks fails alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from logging import INFO, WARNING
from typing import Any

from chalicelib.core import drill as drills
from chalicelib.core import operation as machine
from chalicelib.core.cluster import Cluster
from chalicelib.core.formats.inputs import bounded_int
from chalicelib.core.gotime import format_time, parse_go_time
from chalicelib.core.jobs import Placement, placements
from chalicelib.core.naming import check_files, check_volume, owned_backup
from chalicelib.core.operation import (
    Accepted,
    AskRestore,
    Effect,
    Event,
    Listed,
    ListFiles,
    Operation,
    Phase,
    RecordArrived,
    Refused,
    RestorePlan,
    Rules,
    RunJob,
    Step,
    Tick,
    Unanswered,
)
from chalicelib.core.paths import volume_dir
from chalicelib.core.types import JobRecord
from chalicelib.deps import Deps
from chalicelib.edges import fleet, webhook
from chalicelib.edges.backupd import may_have_acted
from chalicelib.edges.operations import LockHeld, Unreadable
from chalicelib.errors import BadRequest, Conflict, ControllerError, NotFound, StoreUnavailable, UpstreamError
from chalicelib.logs import event, log

RUN_DONE = ("success", "failed")  # the states of a run's record once it finished
MAX_LISTED_FILES = 1000  # source file sizes kept with an increment restore, for its verification


def restore(deps: Deps, app: str, proc: str, name: str, files: list[str], to: int | None = None,
            volume: str | None = None, *, snapshot: bool = True, dry_run: bool = False,
            verify: bool = True) -> dict[str, Any]:
    """``recover`` (or ``migrate`` with ``to``/``volume``) as an operation: see the module."""
    return start(deps, plan_restore(deps, app, proc, name, files, to, volume), snapshot=snapshot,
                 dry_run=dry_run, verify=verify)


def plan_restore(deps: Deps, app: str, proc: str, name: str, files: list[str],
                 to: int | None = None, volume: str | None = None) -> RestorePlan:
    """Check a recover (or, with ``to``/``volume``, a migrate into another instance) and work out
    where it goes; nothing is changed. Refused up front (before any snapshot) what the daemon
    cannot do: a full restore into a dir whose name is not the archive's top dir, and a restore
    from another node's namespace (unless ``ALLOW_CROSS_NODE_RESTORE``)."""
    cluster = deps.cluster(app)
    p = cluster.proc(app, proc)
    owned_backup(p.app, p.full_name, name)  # 403 for another app's or proc's backup, before anything
    increment = not name.endswith(".tar.gz")
    if increment and not files:
        raise BadRequest(f"files: {name} is an increment backup; name the files to restore "
                         "(list them with ?open=true)", code="no_files")
    if files and not increment:
        raise BadRequest(f"files: {name} is a full backup, restored whole; files apply to "
                         "increment backups only", code="files_of_full_backup")
    check_files(files)
    dest_dir, target_volume = "", ""
    if to is not None:
        if volume is None:
            raise BadRequest("volume: the declared volume to migrate into is required",
                             code="no_volume")
        item = p.item(check_volume(volume))
        if item is None:
            raise BadRequest(f"volume {volume!r} is not a backup volume of {p.full_name} "
                             f"(volumes: {', '.join(p.volumes) or 'none'})", code="unknown_volume")
        p.pod(to)  # 400 naming the instances if it does not exist
        dest_dir, target_volume = volume_dir(p.app, p.full_name, to, item.volume), item.volume
    namespace, entity = fleet.locate(deps.fan_out, p, name)
    instance = to if to is not None else int(entity.get("instanceNo") or 0)
    source_dir = str(entity.get("source", ""))
    source_volume = str(entity.get("volume", ""))
    declared = p.item(source_volume) if source_volume else None
    target_volume = target_volume or (declared.volume if declared else source_volume)
    node = cluster.node_of(p, instance)
    if not increment and dest_dir and machine.base_name(dest_dir) != machine.base_name(source_dir):
        same = [v for v in p.volumes if machine.base_name(v) == machine.base_name(source_dir)]
        raise BadRequest(
            f"{name} holds {source_dir} under its top dir {machine.base_name(source_dir)!r} (the "
            f"daemon archives a volume dir by its name) and {target_volume} is named "
            f"{machine.base_name(dest_dir)!r}: the daemon would report success and restore "
            f"nothing. Migrate it into a volume named {machine.base_name(source_dir)!r} "
            f"(declared: {', '.join(same) or 'none'})", code="base_name_mismatch")
    if namespace != node and not deps.settings.allow_cross_node_restore:
        here = [pod.instance_no for pod in p.pods if namespace in pod.node_ips]
        raise Conflict(
            f"{name} is stored in the namespace of {namespace} and instance {instance} runs on "
            f"{node}: backupd cannot restore from another node's namespace (its backup_recover "
            "fails with a nil pointer dereference, the target left as it was). Restore into an "
            f"instance on {namespace} (instances there: {', '.join(map(str, here)) or 'none'}), "
            "or set ALLOW_CROSS_NODE_RESTORE=true if this cluster's daemons are fixed",
            code="cross_node_restore")
    target = _target(cluster, p.full_name, instance, target_volume, node)
    return RestorePlan(
        app=p.app, proc=p.full_name, kind="migrate" if to is not None else "recover", name=name,
        increment=increment, files=list(files), namespace=namespace, node=node, instance=instance,
        volume=target_volume, dest_dir=dest_dir, source_dir=source_dir,
        created=str(entity.get("created", "")), size=int(entity.get("size") or 0),
        file_sizes=_file_sizes(deps, namespace, name, files) if increment else {},
        target_job=target.job["id"] if target and target.job else "",
        target_archive=str(target.job["args"].get("archive", "")) if target and target.job else "",
        target_expire=target.item.expire if target and target.item.expire_ok else "")


def _target(cluster: Cluster, proc: str, instance: int, volume: str, node: str) -> Placement | None:
    """The target volume on its node: its own backup job (run once: the snapshot, the
    verification) and its expire (how long the snapshot lasts)."""
    for p in placements(cluster):
        if (p.proc.full_name, p.pod.instance_no, p.item.volume, p.node) == (proc, instance, volume, node):
            return p
    return None


def _file_sizes(deps: Deps, node: str, name: str, files: list[str]) -> dict[str, int]:
    """The sizes of the files a restore names (or under the dirs it names; ``*``: all), as the
    daemon lists the backup now: what verification compares the restored target with."""
    try:
        listed = deps.daemon(node).file_list(name)
    except ControllerError:
        return {}
    wanted = set(files)
    out: dict[str, int] = {}
    for entry in listed:
        path = str(entry["name"])
        if entry.get("dir") or not ("*" in wanted or path in wanted
                                    or any(path.startswith(f.rstrip("/") + "/") for f in wanted)):
            continue
        out[path] = int(entry["size"])
        if len(out) >= MAX_LISTED_FILES:
            break
    return out


def start(deps: Deps, plan: RestorePlan, *, snapshot: bool = True, dry_run: bool = False,
          verify: bool = True) -> dict[str, Any]:
    """Begin the restore ``plan`` (or, ``dry_run``, say what it would do)."""
    now = deps.clock()
    if plan.is_drill:
        return _start_drill(deps, plan, now, dry_run)
    with_snapshot = snapshot and not plan.increment
    if with_snapshot and not plan.target_job:
        raise BadRequest(f"{plan.volume} of {plan.proc} instance {plan.instance} has no backup job "
                         f"on {plan.node} to take the pre-restore snapshot with; restore without "
                         "one with ?snapshot=false", code="no_snapshot_job")
    if with_snapshot and plan.in_place and _made_this_second(plan.created, now):
        raise Conflict(f"{plan.name} was made this very second: a snapshot now would get its name "
                       "and overwrite it; try again in a second", code="too_soon")
    if dry_run:
        return {"dry_run": True, "would_restore": {
            "node": plan.node, "source_backup": plan.name, "source_node": plan.namespace,
            "target_dir": plan.target_dir, "instance": plan.instance, "files": plan.files or "all",
            "snapshot": with_snapshot, "verify": verify and bool(plan.target_job),
            "undo": _undo(plan, with_snapshot, "")}}
    first = machine.begin(plan, f"{now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}", now,
                          snapshot=with_snapshot, verify=verify)
    _claim(deps, first.op, now)
    outcome, error = _perform(deps, first.effects[0])
    try:
        op = _drive(deps, first.op, machine.step(first.op, outcome, _rules(deps)))
    except ControllerError as e:
        if isinstance(outcome, Accepted):  # the daemon runs it now: never say nothing happened
            e.message += (f" (operation {first.op.id}: {plan.node} runs its {outcome.purpose} as "
                          f"record {outcome.rid}, which the operation could not be told; follow "
                          "that record)")
        raise
    if error is not None:  # the first ask failed: the operation ended; say how plainly
        error.message += (f" (operation {op.id} failed; nothing was restored)"
                          if isinstance(outcome, Refused) else f" (operation {op.id}: {op.error})")
        raise error
    event(log, "operation", id=op.id, app=op.app, phase=op.phase, kind=plan.kind,
          backup=plan.name, node=plan.node, target=plan.target_dir)
    return answer(op, deps.settings.undo_days)


def _start_drill(deps: Deps, plan: RestorePlan, now: datetime, dry_run: bool) -> dict[str, Any]:
    """A drill waits for the schedule's next look (its proof job goes out with the next push)."""
    if dry_run:
        return {"dry_run": True, "would_drill": {
            "node": plan.node, "source_backup": plan.name, "target_dir": plan.dest_dir,
            "instance": plan.instance, "files": plan.files or "all", "proof_job": plan.target_job,
            "detail": f"restores {plan.name} into {plan.dest_dir} on {plan.node} (the drill "
                      "area, never a volume), after and before archiving that dir once with a "
                      "one-off job pushed with the node's list; nothing else on the node changes"}}
    op = machine.begin(plan, f"{now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}", now, snapshot=False,
                       verify=True).op
    _claim(deps, op, now)
    event(log, "operation", id=op.id, app=op.app, phase=op.phase, kind=plan.kind,
          backup=plan.name, node=plan.node, target=plan.dest_dir)
    return answer(op, deps.settings.undo_days)


def _claim(deps: Deps, op: Operation, now: datetime) -> None:
    """Store the new operation with its target's lock: a 409 naming the operation already
    restoring into that dir."""
    try:
        deps.operations.create(op, now)
    except LockHeld as held:
        raise Conflict(_held_message(deps, op, held), code="restore_in_progress") from None


def _held_message(deps: Deps, op: Operation, held: LockHeld) -> str:
    if op.plan.is_drill:
        return (f"a drill on {op.plan.node} is under way (one drill per node at a time): try again "
                "once it is Completed or Failed" + (
                    f"; follow it at /api/v2/app/{op.app}/operations/{held.op_id}"
                    if held.app == op.app else ""))
    where = f"{op.plan.target_dir} on {op.plan.node}"
    if held.app != op.app:  # another app's operation: not named
        return (f"another restore into {where} is under way (another app's operation); one "
                "restore per volume at a time")
    try:
        other = deps.operations.get(held.app, held.op_id)
        phase = f"{other.phase} since {other.since}" if other else "just started"
    except Unreadable:
        phase = "unreadable"
    return (f"a restore into {where} is under way: operation {held.op_id} ({phase}); one restore "
            f"per volume at a time: follow it at /api/v2/app/{op.app}/operations/{held.op_id} and "
            "try again once it is Completed or Failed")


def _rules(deps: Deps) -> Rules:
    return Rules(phase_limit=timedelta(minutes=deps.settings.operation_phase_minutes),
                 verify_tolerance_percent=deps.settings.verify_size_percent)


def _drive(deps: Deps, op: Operation, step: Step) -> Operation:
    """Store each next state (conditionally on the stored one being ``op``), then perform its
    effect and feed the outcome back, until nothing is left to do. A run whose record id just
    became known is looked up once: a fast daemon may have posted its result before the id was
    stored, and that notify found nothing to move. Another writer that moved the operation
    first wins: this one stops."""
    rules = _rules(deps)
    while True:
        if step.op != op:
            stored = deps.operations.move(op, step.op, deps.clock())
            if stored is None:
                event(log, "operation_moved_elsewhere", id=op.id, app=op.app, phase=op.phase)
                return op
            _log_move(op, stored)
            if stored.finished and stored.plan.is_drill:
                _drill_done(deps, stored)
            waited, op = op.waiting_for(), stored
            if not step.effects and op.waiting_for() not in (None, waited):
                record = _finished_record(deps, op)
                if record is not None:
                    step = machine.step(op, RecordArrived(record, deps.clock()), rules)
                    continue
        if not step.effects:
            return op
        outcome, _ = _perform(deps, step.effects[0])
        step = machine.step(op, outcome, rules)


def _perform(deps: Deps, effect: Effect) -> tuple[Event, ControllerError | None]:
    """Ask the daemon what ``effect`` says; its outcome as an event (and the error, if any)."""
    purpose: machine.Purpose = "verify" if isinstance(effect, ListFiles) else \
        "restore" if isinstance(effect, AskRestore) else effect.purpose
    try:
        if isinstance(effect, RunJob):
            return Accepted(effect.purpose, deps.daemon(effect.node).run_once(effect.job),
                            deps.clock()), None
        if isinstance(effect, AskRestore):
            client, plan = deps.daemon(effect.plan.node), effect.plan
            rid = (client.recover_increment(plan.name, plan.form()) if plan.increment
                   else client.recover_full(plan.name, plan.form()))
            return Accepted("restore", rid, deps.clock()), None
        return Listed(deps.daemon(effect.node).file_list(effect.name), deps.clock()), None
    except ControllerError as e:
        if may_have_acted(e):
            return Unanswered(purpose, e.message, deps.clock()), e
        return Refused(purpose, e.message, deps.clock()), e


def _finished_record(deps: Deps, op: Operation) -> JobRecord | None:
    """The stored record of the run ``op`` waits for, if that run has finished."""
    waiting = op.waiting_for()
    if waiting is None:
        return None
    try:
        record = deps.records.get(op.app, waiting[1], consistent=True)
    except NotFound:
        return None
    return record if record.get("state") in RUN_DONE else None


def _log_move(before: Operation, after: Operation) -> None:
    if before.phase == after.phase:
        return
    failed = after.phase is Phase.FAILED
    done: dict[str, Any] = {"verified": after.verified, "verification": after.verification} \
        if after.phase is Phase.COMPLETED else {}
    event(log, "operation", level=WARNING if failed else INFO, id=after.id, app=after.app,
          phase=after.phase, was=before.phase, error=after.error, **done)


def _drill_done(deps: Deps, op: Operation) -> None:
    """A drill finished: its result kept with its item, its proof archives deleted, and the
    operator told when it proved nothing (a log line always; chat when a webhook is set)."""
    plan, outcome = op.plan, op.drill or {}
    result = drills.Result(
        outcome=str(outcome.get("outcome") or drills.UNPROVEN), at=op.updated,
        why=str(outcome.get("why") or op.error or op.verification), fault=str(outcome.get("fault") or ""),
        bytes=plan.size, seconds=op.restore.seconds if op.restore else None, operation=op.id,
        sample_after=plan.files[-1] if plan.increment and plan.files else "")
    key = drills.item_key(plan.app, plan.proc, plan.volume, plan.instance)
    where: dict[str, Any] = {"app": plan.app, "proc": plan.proc, "volume": plan.volume,
                             "instance": plan.instance, "node": plan.node}
    try:
        deps.operations.remember_drill(key, result)
    except ControllerError as e:
        event(log, "drill_not_remembered", level=WARNING, id=op.id, error=e.message, **where)
    proofs = [r.file for r in (op.snapshot, op.verify) if r and r.file]
    if plan.increment and op.verify and op.verify.rid:
        proofs.append(plan.target_archive)
    try:
        # and any other backup of the drill dir: only proof runs archive it (a run asked again
        # after a timeout, whose record the drill never knew; a drill that ended before its
        # cleanup): never a volume's backup, and never expired by the daemons otherwise
        proofs += [str(e["name"]) for e in deps.daemon(plan.node).backups([plan.dest_dir])
                   if e.get("source") == plan.dest_dir and e.get("name") not in proofs]
    except ControllerError as e:
        event(log, "drill_proofs_not_listed", level=WARNING, id=op.id, error=e.message, **where)
    try:
        if proofs:
            deps.daemon(plan.node).delete(proofs)
    except ControllerError as e:
        event(log, "drill_proof_left", level=WARNING, id=op.id, files=proofs, error=e.message,
              **where)
    good = result.outcome == drills.VERIFIED
    event(log, "drill", level=INFO if good else WARNING, id=op.id, outcome=result.outcome,
          fault=result.fault, backup=plan.name, seconds=result.seconds, bytes=result.bytes,
          why=result.why, **where)
    if deps.settings.alert_webhook_url and _drill_news(deps, key, result, plan.name):
        text = (f"restore drill of {plan.app} {plan.proc} instance {plan.instance} volume "
                f"{plan.volume} on {plan.node}: {result.outcome}"
                + (f" ({result.fault} fault)" if result.fault else "") + f": {result.why}")
        error = webhook.post(deps.settings.alert_webhook_url, {
            "text": text, "event": "drill", "outcome": result.outcome, "item": where,
            "operation": op.id})
        if error:
            event(log, "alert_failed", level=WARNING, kind="drill", id=op.id, error=error)


def _drill_news(deps: Deps, key: str, result: drills.Result, backup: str) -> bool:
    """Whether a drill's outcome is worth an alert: one that proved nothing, unless the item's
    last alert said the same of the same backup less than ``DRILL_CYCLE_DAYS`` ago (the
    scheduler drills a failed item again every ``RETRY_AFTER``); a verified one ends that."""
    name = f"drill_alert#{key}"
    try:
        if result.outcome == drills.VERIFIED:
            deps.state.unsay(name)
            return False
        return bool(deps.state.say(name, f"{result.outcome}#{result.fault}#{backup}", deps.clock(),
                                   timedelta(days=deps.settings.drill_cycle_days)))
    except ControllerError:
        return result.outcome != drills.VERIFIED  # the state store is down: rather twice than never


# -- records from notify --------------------------------------------------------------------------

def check_record(deps: Deps, record: Mapping[str, Any]) -> None:
    """Before a record is stored: one that names a run an operation asked for but is not that
    run's record (another app's, another action, job, node or target) is refused (409) and
    stored nowhere, so it can neither move the operation nor block the daemon's real post."""
    found = deps.operations.by_run(str(record.get("rid")))
    if found is None:
        return
    try:
        op = deps.operations.get(*found)
    except Unreadable:
        return
    why = machine.foreign(op, record, any_run=True) if op else ""
    if why:
        args = record.get("args") if isinstance(record.get("args"), Mapping) else {}
        event(log, "notify_refused", level=WARNING, reason="foreign_record", rid=record.get("rid"),
              app=str((args or {}).get("app", ""))[:64], operation=op.id if op else "",
              operation_app=found[0], why=why)
        raise Conflict(f"record {str(record.get('rid'))[:64]} names a run of another operation "
                       f"and is not its record ({why}); refused, nothing stored",
                       code="not_the_operations_record")


def advance(deps: Deps, record: Mapping[str, Any]) -> None:
    """A stored record finished a run: if an operation asked for that run, move it on."""
    if record.get("state") not in RUN_DONE:
        return
    found = deps.operations.by_run(str(record["rid"]))
    if found is None:
        return
    try:
        op = deps.operations.get(*found)
    except Unreadable as e:  # the schedule fails it; the record is stored either way
        event(log, "operation_not_advanced", level=WARNING, id=e.op_id, error=e.reason)
        return
    if op is None or op.finished:
        return
    try:  # as stored: with the controller's judgment (``suspect``) of it
        stored: Mapping[str, Any] = deps.records.get(op.app, str(record["rid"]), consistent=True)
    except NotFound:
        stored = record
    step = machine.step(op, RecordArrived(stored, deps.clock()), _rules(deps))
    if step.ignored and step.op == op:
        event(log, "operation_record_ignored", id=op.id, rid=record["rid"], why=step.ignored)
    _drive(deps, op, step)


# -- the schedule's look ----------------------------------------------------------------------------

def tick(deps: Deps) -> int:
    """The schedule's look at every open operation: one whose run finished unseen moves on, one
    whose restore was refused is asked again, one stuck in a phase past the limit ends. Never
    raises: an operation whose item or handling breaks fails alone (a DynamoDB or daemon outage
    is retried on the next look instead). How many operations moved."""
    try:
        open_ones = deps.operations.open_ones()
    except ControllerError as e:
        event(log, "operations_not_ticked", level=WARNING, error=e.message)
        return 0
    moved = 0
    for app, op_id in open_ones:
        try:
            moved += _tick_one(deps, app, op_id)
        except (StoreUnavailable, UpstreamError) as e:  # an outage: the next look retries
            event(log, "operation_not_advanced", level=WARNING, id=op_id, app=app, error=e.message)
        except Exception as e:  # this operation's own trouble: it fails, the others go on
            moved += _broken(deps, app, op_id, e)
    return moved


def _tick_one(deps: Deps, app: str, op_id: str) -> int:
    op = deps.operations.get(app, op_id)
    if op is None or op.finished:  # its open marker outlived it (a write of an older version)
        deps.operations.forget_open(app, op_id)
        return 0
    before = op
    record = _finished_record(deps, op)
    if record is not None:
        op = _drive(deps, op, machine.step(op, RecordArrived(record, deps.clock()), _rules(deps)))
    op = _drive(deps, op, machine.step(op, Tick(deps.clock()), _rules(deps)))
    return int(op.version != before.version)


def _broken(deps: Deps, app: str, op_id: str, error: Exception) -> int:
    """``error`` came from handling one operation: it fails with the reason (or, when its item
    cannot even be read, the item is marked failed as it is); a failure to do even that is
    logged, and the others go on."""
    reason = error.reason if isinstance(error, Unreadable) else \
        f"{type(error).__name__}: {str(error)[:200]}"
    event(log, "operation_broken", level=WARNING, id=op_id, app=app, error=reason,
          exc=not isinstance(error, (Unreadable, ControllerError)))
    try:
        if isinstance(error, Unreadable):
            return int(deps.operations.fail_unreadable(error, deps.clock()))
        op = deps.operations.get(app, op_id)
        if op is None:
            return 0
        failed = machine.step(op, machine.Broken(reason, deps.clock()), _rules(deps)).op
        stored = deps.operations.move(op, failed, deps.clock())
        if stored is not None and stored.plan.is_drill:
            _drill_done(deps, stored)
        return int(stored is not None)
    except Unreadable as e:
        return int(deps.operations.fail_unreadable(e, deps.clock()))
    except Exception as e:  # even failing it failed: the operator hears of it
        event(log, "operation_problem", level=WARNING, id=op_id, app=app,
              error=f"{type(e).__name__}: {str(e)[:200]}")
        return 0


# -- answers ---------------------------------------------------------------------------------------

def get(deps: Deps, app: str, op_id: str) -> dict[str, Any]:
    try:
        op = deps.operations.get(app, op_id)
    except Unreadable as e:
        return _unreadable_answer(e)
    if op is None:
        raise NotFound(f"operation {op_id!r} of app {app!r} not found", code="unknown_operation")
    return answer(op, deps.settings.undo_days)


def of_app(deps: Deps, app: str, total: str) -> list[dict[str, Any]]:
    """The app's operations, newest first."""
    count = bounded_int(total or "50", "total", 1, 1000)
    return [_unreadable_answer(o) if isinstance(o, Unreadable) else answer(o, deps.settings.undo_days)
            for o in deps.operations.of_app(app, count)]


def answer(op: Operation, undo_days: float) -> dict[str, Any]:
    """What a user sees of an operation: its phase and why, its runs, how to undo it and until
    when that undo is kept."""
    plan = op.plan
    kept, why = machine.snapshot_kept(op, timedelta(days=undo_days))

    def run(r: machine.Run | None, *keys: str) -> dict[str, Any] | None:
        return {k: getattr(r, k) for k in keys} if r else None

    snapshot = run(op.snapshot, "job", "rid", "file", "size")
    if snapshot is not None and op.snapshot and op.snapshot.file:
        snapshot["kept_until"] = format_time(kept) if kept else None
        snapshot["kept"] = why

    if plan.is_drill:
        return {"operation": op.id, "id": op.id, "app": op.app, "proc": plan.proc,
                "kind": plan.kind, "phase": op.phase.value, "created": op.created,
                "updated": op.updated, "since": op.since, "node": plan.node,
                "source_backup": plan.name, "target_dir": plan.dest_dir, "instance": plan.instance,
                "volume": plan.volume, "files": plan.files or "all",
                "proof": {"job": plan.target_job,
                          "before": run(op.snapshot, "rid", "file", "size"),
                          "after": run(op.verify, "rid", "file", "size")},
                "restore": run(op.restore, "rid", "seconds"), "drill": op.drill,
                "verified": op.verified, "verification": op.verification, "error": op.error,
                "undo": "nothing to undo: a drill restores into the drill area, never a volume",
                "url": f"/api/v2/app/{op.app}/operations/{op.id}"}
    return {"operation": op.id, "id": op.id, "app": op.app, "proc": plan.proc, "kind": plan.kind,
            "phase": op.phase.value, "created": op.created, "updated": op.updated, "since": op.since,
            "node": plan.node, "source_backup": plan.name, "source_node": plan.namespace,
            "target_dir": plan.target_dir, "instance": plan.instance, "files": plan.files or "all",
            "snapshot": snapshot,
            "restore": run(op.restore, "rid"),
            "verify": run(op.verify, "job", "rid", "file", "size"),
            "verified": op.verified, "verification": op.verification,
            "undo": _undo(plan, op.snapshot is not None, op.snapshot.file if op.snapshot else "")
            + (f" (kept until {kept:%Y-%m-%d %H:%M} UTC: {why})" if kept else
               f" ({why})" if op.snapshot and op.snapshot.file else ""),
            "error": op.error, "url": f"/api/v2/app/{op.app}/operations/{op.id}"}


def _undo(plan: RestorePlan, snapshot: bool, file: str) -> str:
    if file:
        short = plan.proc.split(".")[-1]
        return (f"restore the snapshot {file}: POST /api/v2/app/{plan.app}/proc/{short}/backups/"
                f"{file}/actions/recover?snapshot=false")
    if snapshot:
        return "the pre-restore snapshot is being taken; it names the undo once it exists"
    if plan.increment:
        return ("none: an increment restore overwrites the named files and takes no snapshot; it "
                "cannot be undone")
    return "none: restored without a snapshot (?snapshot=false); it cannot be undone"


def _unreadable_answer(e: Unreadable) -> dict[str, Any]:
    return {"operation": e.op_id, "id": e.op_id, "app": e.app, "phase": e.phase or "Failed",
            "error": f"the stored operation cannot be read: {e.reason}",
            "url": f"/api/v2/app/{e.app}/operations/{e.op_id}"}


def _made_this_second(created: str, now: datetime) -> bool:
    try:
        return abs((now - parse_go_time(created)[0]).total_seconds()) < 2
    except ValueError:
        return False
