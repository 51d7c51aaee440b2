"""A restore operation as one pure state machine: typed phases, one transition function.

A restore replaces a volume's content, so what the controller says about it must be true. The
operation is data (:class:`Operation`, with a schema version) and :func:`step` is the only way
it moves: ``step(operation, event, rules)`` → the next state plus the *effects* the caller must
perform (ask a daemon to run a job, to restore, to list files). Events are what happened: a
finished record arrived, a daemon accepted / refused / did not answer a request, the schedule
looked at time T, or handling the operation broke. The caller (``usecases/operations.py``)
stores the next state with a conditional write *before* performing its effects, so of two
workers that see the same event only one asks the daemon, and it feeds each effect's outcome
back as an event. No I/O, no clock here: time comes in with each event.

Every legal move, in one table (:data:`MOVES`; anything else changes nothing)::

    Snapshotting  snapshot accepted            → Snapshotting (its record id kept)
                  snapshot record, trusted     → Restoring    + ask the restore
                  snapshot record, failed or   → Failed       ("nothing was restored; the
                   not trustworthy                              volume is as it was")
                  snapshot refused/unanswered  → Failed
                  snapshot record, busy        → Snapshotting (asked again on the next tick)
                  tick (snapshot not asked)    → Snapshotting + run it (a drill's first, a retry)
    Snapshotted   tick                         → Restoring    + ask the restore (a retry)
    Restoring     restore accepted             → Restoring    (its record id kept)
                  restore refused              → Snapshotted  (retried on the next tick), or
                                                 Failed when there is no snapshot to wait on
                  restore unanswered           → Failed       (it may be running: never asked twice)
                  restore record, busy         → Failed       ("nothing was restored; ask again")
                  restore record, failed       → Failed
                  restore record, success      → Verifying    + run the target's backup job once
                                                 Completed    (verification off or impossible)
    Verifying     tick (verify run not asked)  → Verifying    + run it (not in the snapshot's second)
                  verify accepted              → Verifying    (its record id kept)
                  verify record (full)         → Completed (verified / inconclusive) or Failed
                                                 ("matches the pre-restore snapshot: nothing was
                                                 restored")
                  verify record (increment)    → Verifying    + list the target's backup files
                  files listed                 → Completed or Failed (a file has another size)
                  verify record, busy          → Verifying    (asked again on the next tick)
                  verify refused/unanswered/   → Completed, verification "inconclusive" (why)
                   failed record
    any open      tick past the phase limit    → Failed (Verifying: Completed, inconclusive)
                  broken (any exception)       → Failed with the reason
    Completed, Failed: never move again.

*busy*: the record failed on the daemon's per-path lock ("Directory is now backuping, give up."):
the run did nothing, another run of the dir held it (the cron's own, for a moment). A backup run
(the snapshot, the verification) is asked again; the phase limit bounds the retries. A restore is
never repeated by the operation: a record that says busy while the restore runs (a forged post, a
replay) would otherwise start a second one over what the first restored and the app wrote since.

A record moves an operation only when it is the record of the run the operation asked for: its
rid, its action (``backup`` for the snapshot and the verification, ``backup_recover`` for the
restore), its app, its job and node (a backup job's id carries its node) or, for the restore,
the backup, namespace and target it was asked for. Anything else is *foreign* and changes
nothing (:func:`foreign` says why, for the log and the refusal).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from chalicelib.core import drill as drills
from chalicelib.core.cron import ScheduleError, parse_expire
from chalicelib.core.gotime import format_time, parse_go_time
from chalicelib.core.jobs import node_of_job_id

SCHEMA = 2  # 1: the untyped operations written before this module (read and upgraded)
BACKUP, RECOVER = "backup", "backup_recover"
DRILL = "drill"  # a restore into a node's drill area, to prove a backup restores (core/drill.py)
NAME_SECOND_GAP = 2  # seconds between two backups of one volume, so their names (by the second) differ
# backupd's per-path lock: a backup or restore of a dir another run holds fails at once with
# "Directory is now backuping, give up." before doing anything (the cron's own run of the volume,
# for a moment): such a backup (the snapshot, the verification) is asked again on the next look,
# never taken as the run's outcome; a restore is not (see _on_restore_record)
BUSY_WORDS = "is now backuping, give up"


class Phase(StrEnum):
    """Where an operation stands. Open phases wait for one thing each; finished ones never move."""

    SNAPSHOTTING = "Snapshotting"
    """The target volume's own backup job runs once (the undo); waiting for its record."""
    SNAPSHOTTED = "Snapshotted"
    """A trusted snapshot exists, and the daemon refused to start the restore: asked again on the
    schedule's next look (until the phase limit)."""
    RESTORING = "Restoring"
    """The restore is asked of (or claimed for asking) the target's daemon; waiting for its record."""
    VERIFYING = "Verifying"
    """The daemon reported the restore a success; the target's backup job runs once and its
    archive (full) or file list (increment) is compared with the source backup."""
    COMPLETED = "Completed"
    """Done: restored, and verified, or verification skipped or inconclusive (the answer says)."""
    FAILED = "Failed"
    """Done: nothing was restored, or the restore failed or was proven not to have happened."""


FINISHED = frozenset({Phase.COMPLETED, Phase.FAILED})
type Purpose = Literal["snapshot", "restore", "verify"]
WAITS_FOR: dict[Phase, Purpose] = {Phase.SNAPSHOTTING: "snapshot", Phase.RESTORING: "restore",
                                   Phase.VERIFYING: "verify"}  # whose record each phase waits for


@dataclass(frozen=True)
class RestorePlan:
    """What a recover or migrate does: which backup, from which node's storage (``namespace``),
    onto which node and dir (``dest_dir`` empty: the backup's own dir), which files (increment
    backups); the source backup's size and, for increments, its files' sizes (what verification
    compares with); the target volume's own backup job and its archive name (the snapshot and the
    verification run it once)."""

    app: str
    proc: str
    kind: str  # recover | migrate
    name: str
    increment: bool
    files: list[str]
    namespace: str
    node: str
    instance: int
    volume: str
    dest_dir: str
    source_dir: str
    created: str
    size: int = 0
    file_sizes: dict[str, int] = field(default_factory=dict)
    target_job: str = ""
    target_archive: str = ""
    target_expire: str = ""  # the target volume's expire: how long its backups (the snapshot) last

    @property
    def target_dir(self) -> str:
        return self.dest_dir or self.source_dir

    @property
    def is_drill(self) -> bool:
        return self.kind == DRILL

    @property
    def lock_dir(self) -> str:
        """The dir whose lock the operation holds: its target; a drill, its node's drill root
        (one drill per node at a time)."""
        return posixpath.dirname(self.dest_dir) if self.is_drill else self.target_dir

    @property
    def in_place(self) -> bool:
        return not self.dest_dir or self.dest_dir == self.source_dir

    def form(self) -> list[tuple[str, str]]:
        """The daemon's recover form (files repeated for increment backups)."""
        return [("namespace", self.namespace), ("destDir", self.dest_dir), ("app", self.app),
                ("proc", self.proc), ("instanceNo", str(self.instance)),
                *(("files", f) for f in self.files)]


@dataclass(frozen=True)
class Run:
    """One daemon run the operation asked for: its job (none for a restore), its record id once
    the daemon answered, and what its record reported (archive and size)."""

    job: str = ""
    rid: str = ""
    asked: bool = False  # the request went out (or was claimed for going out): never asked twice
    file: str = ""
    size: int | None = None
    seconds: float | None = None  # how long the run took, by its record (the restore's: the RTO)


@dataclass(frozen=True)
class Operation:
    """A recover or migrate, as stored. ``since``: when it entered its phase (the stuck clock; a
    restore retried from Snapshotted keeps it). ``version`` guards every conditional write."""

    id: str
    app: str
    plan: RestorePlan
    phase: Phase
    created: str
    updated: str
    since: str
    version: int = 0
    snapshot: Run | None = None
    restore: Run | None = None
    verify: Run | None = None  # None: not verified (?verify=false, or no backup job to run)
    verified: dict[str, int] | str | None = None  # sizes compared, or "inconclusive"/"skipped"
    verification: str = ""  # in words: what was proven, or why nothing could be
    error: str = ""
    # a drill's outcome: verified | verify_failed | drill_area_missing | unproven, fault, bytes, seconds
    drill: dict[str, Any] | None = None
    schema: int = SCHEMA

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED

    def waiting_for(self) -> tuple[Purpose, str] | None:
        """The run whose record this phase waits for, once its rid is known."""
        purpose = WAITS_FOR.get(self.phase)
        run = _run_of(self, purpose) if purpose else None
        return (purpose, run.rid) if purpose and run and run.rid else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- events ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RecordArrived:
    """A finished (``success``/``failed``) record of a run, as stored (with ``suspect`` if judged so)."""

    record: Mapping[str, Any]
    now: datetime


@dataclass(frozen=True)
class Accepted:
    """The daemon accepted a request and named the run's record id."""

    purpose: Purpose
    rid: str
    now: datetime


@dataclass(frozen=True)
class Refused:
    """The daemon answered that it will not do it (or could not be reached at all): nothing ran."""

    purpose: Purpose
    reason: str
    now: datetime


@dataclass(frozen=True)
class Unanswered:
    """The request went out and no answer came in time: the daemon may be doing it now."""

    purpose: Purpose
    reason: str
    now: datetime


@dataclass(frozen=True)
class Listed:
    """The files of the target's increment backup, as the daemon listed them."""

    entries: Sequence[Mapping[str, Any]]
    now: datetime


@dataclass(frozen=True)
class Tick:
    """The schedule looks at the operation."""

    now: datetime


@dataclass(frozen=True)
class Broken:
    """Handling the operation raised: it fails with the reason instead of stopping the others."""

    reason: str
    now: datetime


Event = RecordArrived | Accepted | Refused | Unanswered | Listed | Tick | Broken


# -- effects -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunJob:
    """Run the backup job ``job`` once on ``node`` (the snapshot, or the verification)."""

    purpose: Literal["snapshot", "verify"]
    node: str
    job: str


@dataclass(frozen=True)
class AskRestore:
    """Ask the target's daemon to restore ``plan``."""

    plan: RestorePlan


@dataclass(frozen=True)
class ListFiles:
    """List the files of the increment backup ``name`` on ``node``."""

    node: str
    name: str


Effect = RunJob | AskRestore | ListFiles


@dataclass(frozen=True)
class Rules:
    """The settings a move depends on."""

    phase_limit: timedelta
    verify_tolerance_percent: float = 10.0


@dataclass(frozen=True)
class Step:
    """What :func:`step` decided: the next state, the effects to perform after storing it, and,
    when nothing moved, why (a foreign record, an event of another phase)."""

    op: Operation
    effects: tuple[Effect, ...] = ()
    ignored: str = ""


# -- starting ----------------------------------------------------------------------------------

def begin(plan: RestorePlan, op_id: str, now: datetime, *, snapshot: bool, verify: bool) -> Step:
    """A new operation for ``plan`` and its first effect: the snapshot when one is wanted (full
    restores with the target's backup job), else the restore itself. A drill asks nothing yet:
    its proof job reaches the node with the next push, and the schedule's next look starts it."""
    at = format_time(now)
    if plan.is_drill:
        baseline = not plan.increment  # a full drill's proof job runs before the restore too
        return Step(Operation(
            id=op_id, app=plan.app, plan=plan,
            phase=Phase.SNAPSHOTTING if baseline else Phase.RESTORING, created=at, updated=at,
            since=at, snapshot=Run(job=plan.target_job, asked=False) if baseline else None,
            restore=None if baseline else Run(asked=False), verify=Run(job=plan.target_job)))
    take_snapshot = snapshot and not plan.increment and bool(plan.target_job)
    op = Operation(id=op_id, app=plan.app, plan=plan,
                   phase=Phase.SNAPSHOTTING if take_snapshot else Phase.RESTORING,
                   created=at, updated=at, since=at,
                   snapshot=Run(job=plan.target_job, asked=True) if take_snapshot else None,
                   restore=None if take_snapshot else Run(asked=True),
                   verify=Run(job=plan.target_job) if verify and plan.target_job else None,
                   verified=None if verify and plan.target_job else "skipped",
                   verification="" if verify and plan.target_job else _no_verify(plan, verify))
    first: Effect = (RunJob("snapshot", plan.node, plan.target_job) if take_snapshot
                     else AskRestore(plan))
    return Step(op, (first,))


def _no_verify(plan: RestorePlan, wanted: bool) -> str:
    if not wanted:
        return "not verified (?verify=false)"
    return (f"not verified: {plan.volume} of {plan.proc} instance {plan.instance} has no backup "
            f"job on {plan.node} to check the restored volume with")


# -- the transition function -------------------------------------------------------------------

def step(op: Operation, event: Event, rules: Rules) -> Step:
    """The next state of ``op`` after ``event``, and the effects to perform once it is stored."""
    if op.finished:
        return Step(op, ignored=f"the operation is {op.phase} already")
    if isinstance(event, Broken):
        return _drilled(_fail(op, event.now, f"the operation could not be handled: {event.reason}"),
                        event)
    if isinstance(event, Tick) and _overdue(op, event.now, rules):
        return _drilled(_stuck(op, event.now, rules), event)
    move = MOVES.get((op.phase, type(event)))
    if move is None:
        return Step(op, ignored=f"{type(event).__name__} means nothing in {op.phase}")
    return _drilled(move(op, event, rules), event)


def _drilled(done: Step, event: Event) -> Step:
    """A drill that just finished gets its outcome (:mod:`chalicelib.core.drill`): verified,
    unproven, verify_failed (with whose fault) or drill_area_missing."""
    op = done.op
    if not op.plan.is_drill or not op.finished or op.drill is not None:
        return done
    reason, rid = "", None
    if isinstance(event, RecordArrived) and event.record.get("state") == "failed":
        reason, rid = str(event.record.get("reason") or ""), event.record.get("rid")
    plan, words = op.plan, op.error or op.verification
    if reason and drills.area_missing(reason, plan.dest_dir):
        outcome, fault = drills.AREA_MISSING, drills.NODE_FAULT
        words = (f"the drill dir {plan.dest_dir} (or its parent) is missing on {plan.node} "
                 f"({reason}): create it once (GET /api/v2/system/drills/setup); nothing was "
                 "restored anywhere")
    elif op.phase is Phase.COMPLETED and isinstance(op.verified, dict):
        outcome, fault = drills.VERIFIED, ""
    elif reason and op.restore is not None and op.restore.rid == rid:
        fault = drills.fault(reason)
        outcome = drills.VERIFY_FAILED
        whose = ("the archive could not be read or extracted: the backup is bad"
                 if fault == drills.ARCHIVE_FAULT else
                 "a fault of the node (disk, dirs, a busy path), not of the backup")
        words = (f"the restore of {plan.name} into {plan.dest_dir} on {plan.node} failed: "
                 f"{reason} ({whose})")
    else:
        outcome, fault = drills.UNPROVEN, drills.NODE_FAULT
    restore = op.restore
    result = {"outcome": outcome, "fault": fault, "why": words, "bytes": plan.size,
              "seconds": restore.seconds if restore else None, "at": op.updated}
    return replace(done, op=replace(op, drill=result))


def _overdue(op: Operation, now: datetime, rules: Rules) -> bool:
    try:
        since = parse_go_time(op.since)[0]
    except ValueError:
        return True  # a stuck clock that cannot be read never ends the operation otherwise
    return now - since > rules.phase_limit


def _stuck(op: Operation, now: datetime, rules: Rules) -> Step:
    limit = f"longer than OPERATION_PHASE_MINUTES ({rules.phase_limit.total_seconds() / 60:g} min)"
    last = f" (last: {op.error})" if op.error else ""
    if op.phase is Phase.VERIFYING:
        return _complete(op, now, "inconclusive",
                         f"the verification did not finish {limit}; the daemon reported the "
                         f"restore a success{last}")
    undo = _undo_hint(op)
    why = {Phase.SNAPSHOTTING: "the pre-restore snapshot never reported; nothing was restored",
           Phase.SNAPSHOTTED: "the daemon never accepted the restore; nothing was restored",
           Phase.RESTORING: ("the restore never reported (it may still run on "
                             f"{op.plan.node}){undo}")}[op.phase]
    return _fail(op, now, f"stuck in {op.phase} since {op.since}, {limit}: {why}{last}")


def _on_first_tick(op: Operation, event: Tick, rules: Rules) -> Step:
    """A run not asked yet, on the schedule's look: a drill's first (its proof job was pushed by
    then: the proof run before the restore, or the restore of an increment drill), or a snapshot
    that met the daemon's per-path lock, asked again."""
    at = format_time(event.now)
    if op.phase is Phase.SNAPSHOTTING and op.snapshot and not op.snapshot.asked:
        return Step(replace(op, snapshot=replace(op.snapshot, asked=True), updated=at),
                    (RunJob("snapshot", op.plan.node, op.snapshot.job),))
    if op.phase is Phase.RESTORING and op.restore and not op.restore.asked:
        return Step(replace(op, restore=replace(op.restore, asked=True), updated=at),
                    (AskRestore(op.plan),))
    return Step(op, ignored=f"the {op.phase} run is asked already")


def _on_accepted(op: Operation, event: Accepted, rules: Rules) -> Step:
    run = _run_of(op, event.purpose)
    if run is None or run.rid or not _phase_waits_for(op.phase, event.purpose):
        return Step(op, ignored=f"{event.purpose} accepted, but the operation is {op.phase}")
    return Step(_with_run(op, event.purpose, replace(run, rid=event.rid), event.now))


def _on_refused(op: Operation, event: Refused | Unanswered, rules: Rules) -> Step:
    if not _phase_waits_for(op.phase, event.purpose):
        return Step(op, ignored=f"{event.purpose} refused, but the operation is {op.phase}")
    node = op.plan.node
    unanswered = isinstance(event, Unanswered)
    if op.plan.is_drill and event.purpose == "snapshot" and op.snapshot is not None:
        # its proof job may not be on the node yet (pushed by the next reconcile): next look
        return Step(replace(op, snapshot=replace(op.snapshot, asked=False, rid=""),
                            updated=format_time(event.now),
                            error=f"the daemon on {node} did not run the drill's proof job "
                                  f"({event.reason}); asked again on the next look"))
    if event.purpose == "snapshot":
        what = "did not answer the pre-restore snapshot in time" if unanswered else \
            "did not start the pre-restore snapshot"
        return _fail(op, event.now, f"the daemon on {node} {what} ({event.reason}); nothing was "
                                    "restored; the volume is as it was")
    if event.purpose == "verify":
        return _complete(op, event.now, "inconclusive",
                         f"the verification backup could not run on {node} ({event.reason}); the "
                         "daemon reported the restore a success")
    if unanswered:  # it may be restoring now: asking again could start a second restore
        return _fail(op, event.now, f"the daemon on {node} did not answer the restore request in "
                                    f"time ({event.reason}): it may be restoring now; the operation "
                                    f"cannot follow it and never asks twice{_undo_hint(op)}")
    if op.snapshot is not None:  # the snapshot is done: retried on the next look
        return Step(replace(op, phase=Phase.SNAPSHOTTED, restore=None, updated=format_time(event.now),
                            error=f"the daemon on {node} did not start the restore ({event.reason}); "
                                  "retried on the next scheduled look"))
    return _fail(op, event.now, f"the daemon on {node} did not start the restore ({event.reason}); "
                                "nothing was restored")


def _on_snapshot_record(op: Operation, event: RecordArrived, rules: Rules) -> Step:
    record = event.record
    why = foreign(op, record)
    if why:
        return Step(op, ignored=why)
    assert op.snapshot is not None  # foreign() matched the snapshot's rid
    target = op.plan.target_dir
    if _busy(record):
        return Step(replace(op, snapshot=replace(op.snapshot, asked=False, rid=""),
                            updated=format_time(event.now),
                            error=_busy_note(op, "pre-restore snapshot", record)))
    if op.plan.is_drill:
        return _on_drill_baseline(op, event)
    if record.get("state") == "failed":
        reason = str(record.get("reason") or "no reason given")
        if "not exist" in reason:
            return _fail(op, event.now, (
                f"the pre-restore snapshot failed: {target} does not exist on {op.plan.node} "
                f"({reason}); nothing was restored. The daemon restores only into an existing "
                f"dir: create it on the node (mkdir -p {target}) and retry; ?snapshot=false "
                "restores without a snapshot (nothing to undo it with)"))
        return _fail(op, event.now, f"the pre-restore snapshot failed: {reason}; nothing was "
                                    "restored; the volume is as it was")
    distrust = untrusted_snapshot(record)
    if distrust:
        return _fail(op, event.now, f"the pre-restore snapshot cannot be trusted ({distrust}): "
                                    "nothing was restored; the volume is as it was")
    result = record.get("result") or {}
    taken = replace(op.snapshot, file=str(result["file"]), size=int(result["size"]))
    moved = replace(op, phase=Phase.RESTORING, snapshot=taken, restore=Run(asked=True), error="",
                    updated=format_time(event.now), since=format_time(event.now))
    return Step(moved, (AskRestore(op.plan),))


def _on_drill_baseline(op: Operation, event: RecordArrived) -> Step:
    """A drill's proof run before the restore: what the drill dir holds now (its size is all
    that matters: no trust is needed, nothing is undone with it); a failed one means the dir
    cannot be read and nothing is restored."""
    assert op.snapshot is not None
    record, plan = event.record, op.plan
    if record.get("state") == "failed":
        reason = record.get("reason") or "no reason given"
        return _fail(op, event.now, f"the drill dir {plan.dest_dir} on {plan.node} could not be "
                                    f"archived before the restore ({reason}); nothing was restored")
    result = record.get("result")
    result = result if isinstance(result, Mapping) else {}
    taken = replace(op.snapshot, file=str(result.get("file") or ""), size=_size(result.get("size")))
    moved = replace(op, phase=Phase.RESTORING, snapshot=taken, restore=Run(asked=True), error="",
                    updated=format_time(event.now), since=format_time(event.now))
    return Step(moved, (AskRestore(plan),))


def _retry_restore(op: Operation, event: Tick, rules: Rules) -> Step:
    moved = replace(op, phase=Phase.RESTORING, restore=Run(asked=True), error="",
                    updated=format_time(event.now))  # ``since`` kept: a retry never resets the clock
    return Step(moved, (AskRestore(op.plan),))


def _on_restore_record(op: Operation, event: RecordArrived, rules: Rules) -> Step:
    record = event.record
    why = foreign(op, record)
    if why:
        return Step(op, ignored=why)
    if _busy(record):  # never asked again: a forged "busy" while it runs would mean two restores
        return _fail(op, event.now, (
            f"the daemon did not restore: another run of {op.plan.target_dir} held it "
            f"({str(record.get('reason'))[:120]}); nothing was restored; ask again "
            f"(the operation never repeats a restore by itself){_undo_hint(op)}"))
    if record.get("state") == "failed":
        return _fail(op, event.now, f"the restore failed: {record.get('reason') or 'no reason given'}"
                                    f"{_undo_hint(op)}")
    if op.restore is not None:
        op = replace(op, restore=replace(op.restore, seconds=_seconds(record)))
    if op.verify is None:
        return _complete(op, event.now, op.verified, op.verification)
    moved = replace(op, phase=Phase.VERIFYING, updated=format_time(event.now),
                    since=format_time(event.now))
    return _ask_verify(moved, event.now)


def _on_verify_tick(op: Operation, event: Tick, rules: Rules) -> Step:
    if op.verify is None or op.verify.asked:
        return Step(op, ignored="the verification run is asked already")
    return _ask_verify(op, event.now)


def _ask_verify(op: Operation, now: datetime) -> Step:
    """Run the target's backup job once, unless this second could give its archive the name of
    the snapshot (both are ``<archive>-<unix seconds>``): then on the next look."""
    assert op.verify is not None
    if not op.plan.increment and op.snapshot and op.snapshot.file:
        taken = _name_second(op.snapshot.file)
        if taken is not None and now.timestamp() < taken + NAME_SECOND_GAP:
            return Step(op)
    asked = replace(op, verify=replace(op.verify, asked=True), updated=format_time(now))
    return Step(asked, (RunJob("verify", op.plan.node, op.verify.job),))


def _on_verify_record(op: Operation, event: RecordArrived, rules: Rules) -> Step:
    record = event.record
    why = foreign(op, record)
    if why:
        return Step(op, ignored=why)
    assert op.verify is not None
    if _busy(record):
        return Step(replace(op, verify=Run(job=op.verify.job), updated=format_time(event.now),
                            error=_busy_note(op, "verification backup", record)))
    if record.get("state") == "failed":
        return _complete(op, event.now, "inconclusive",
                         f"the verification backup failed ({record.get('reason') or 'no reason'}); "
                         "the daemon reported the restore a success")
    result = record.get("result")
    file, size = (result.get("file"), result.get("size")) if isinstance(result, Mapping) else ("", None)
    checked = replace(op.verify, file=file if isinstance(file, str) else "", size=_size(size))
    op = replace(op, verify=checked, updated=format_time(event.now))
    if op.plan.increment:
        return Step(op, (ListFiles(op.plan.node, op.plan.target_archive),))
    if op.plan.is_drill:
        return _judge_drill(op, event.now, rules)
    return _judge_sizes(op, event.now, rules)


def _judge_drill(op: Operation, now: datetime, rules: Rules) -> Step:
    """A full drill: the drill dir archived after the restore is near the source backup's size
    (the archive was downloaded, extracted completely and copied into place), or it is near what
    the dir held before and not the source (the daemon's copy failed and it put the dir back)."""
    assert op.verify is not None
    after, source = op.verify.size, op.plan.size
    before = op.snapshot.size if op.snapshot else None
    tolerance = rules.verify_tolerance_percent

    def near(a: int, b: int) -> bool:
        return abs(a - b) * 100 <= tolerance * max(a, b)

    sizes = {"source_size": source, "after_size": after or 0,
             **({"before_size": before} if before is not None else {})}
    if not after or source <= 0:
        return _complete(op, now, "inconclusive", "the drill dir's archive or the source backup "
                                                  "has no size: nothing could be compared", sizes)
    if near(after, source):
        also = (f"; the dir held {before} bytes before, as close: a copy of this backup from an "
                "earlier drill" if before is not None and near(before, source) else
                f"; it held {before} bytes before" if before is not None else "")
        return _complete(op, now, sizes, (
            f"restored {op.plan.name} into {op.plan.dest_dir} on {op.plan.node}: the daemon "
            f"downloaded and extracted the whole archive, and the dir archived after it is {after} "
            f"bytes, the backup {source} (within {tolerance:g}%){also}. Proven: the backup "
            "restores with this daemon; not proven: that the app can use the data"))
    if before is not None and near(after, before):
        return _complete(op, now, "inconclusive", (
            f"the daemon reported success but the drill dir holds what it held before ({after} "
            f"bytes, {before} before, the backup {source}): the copy into place failed (a full "
            "disk?) and the daemon put the dir back; the archive itself extracted"), sizes)
    return _complete(op, now, "inconclusive", (
        f"the drill dir archived after the restore is {after} bytes, the backup {source}: "
        "they differ by more than the tolerance"), sizes)


def _judge_sizes(op: Operation, now: datetime, rules: Rules) -> Step:
    """Full restores: the target re-archived after the restore is near the source's size, not the
    snapshot's (an archive of the same content is about the same size)."""
    assert op.verify is not None
    after, source = op.verify.size, op.plan.size
    snap = op.snapshot.size if op.snapshot else None
    if after is None or after <= 0:
        return _complete(op, now, "inconclusive", "the verification backup reported no size")
    if source <= 0:
        return _complete(op, now, "inconclusive", "the source backup's size is unknown")
    tolerance = rules.verify_tolerance_percent

    def near(a: int, b: int) -> bool:
        return abs(a - b) * 100 <= tolerance * max(a, b)

    sizes = {"source_size": source, "after_size": after, **({"snapshot_size": snap} if snap else {})}
    like_source, like_snapshot = near(after, source), snap is not None and near(after, snap)
    if like_source and not like_snapshot:
        return _complete(op, now, sizes, f"the volume re-archived after the restore is {after} "
                                         f"bytes, the source backup {source} bytes (within "
                                         f"{tolerance:g}%)" + (f"; the snapshot was {snap}" if snap else ""))
    if like_snapshot and not like_source:
        return _fail(op, now, (
            f"the daemon reported success but the volume after the restore matches the "
            f"pre-restore snapshot ({after} bytes re-archived, snapshot {snap}), not the source "
            f"({source}): nothing was restored (the daemon puts the volume back when its copy "
            "step fails: a full disk, or an archive whose top dir is not the target's name)"),
            verified=sizes)
    if like_source:
        return _complete(op, now, "inconclusive", (
            f"the source ({source} bytes) and the snapshot ({snap} bytes) are indistinguishable "
            f"by size; the volume re-archived is {after} bytes"), sizes)
    other = f"nor the snapshot ({snap} bytes)" if snap else "(no snapshot to compare with)"
    return _complete(op, now, "inconclusive", (
        f"the volume re-archived after the restore is {after} bytes: it matches neither the "
        f"source ({source} bytes) {other}; the app may have written to it since"), sizes)


def _on_listed(op: Operation, event: Listed, rules: Rules) -> Step:
    """Increment restores: every restored file the source listing showed is in the target's
    fresh increment backup, with the source's size."""
    if op.verify is None or not op.verify.rid or not op.plan.increment:
        return Step(op, ignored="no file listing was asked for")
    after = {str(e.get("name")): e.get("size") for e in event.entries if isinstance(e, Mapping)}
    expected = op.plan.file_sizes
    if not expected:
        return _complete(op, event.now, "inconclusive",
                         "the source listing showed none of the restored files to compare with")
    differ = [f"{name} is {after[name]} bytes after the restore, the backup has {size}"
              for name, size in sorted(expected.items()) if name in after and after[name] != size]
    missing = sorted(name for name in expected if name not in after)
    if differ or missing:
        what = "; ".join(differ + [f"{m} is missing from the target" for m in missing])
        return _fail(op, event.now, f"the daemon reported success but {what}: the restore did not "
                                    f"land{_undo_hint(op)}")
    return _complete(op, event.now, {"files_checked": len(expected)},
                     f"{len(expected)} restored file(s) are in the target's backup with the "
                     "source's sizes")


# Every legal move: (phase, event) → the function that makes it. Anything else changes nothing.
type Move = Callable[[Operation, Any, Rules], Step]
MOVES: dict[tuple[Phase, type], Move] = {
    (Phase.SNAPSHOTTING, Tick): _on_first_tick,
    (Phase.RESTORING, Tick): _on_first_tick,
    (Phase.SNAPSHOTTING, Accepted): _on_accepted,
    (Phase.SNAPSHOTTING, Refused): _on_refused,
    (Phase.SNAPSHOTTING, Unanswered): _on_refused,
    (Phase.SNAPSHOTTING, RecordArrived): _on_snapshot_record,
    (Phase.SNAPSHOTTED, Tick): _retry_restore,
    (Phase.RESTORING, Accepted): _on_accepted,
    (Phase.RESTORING, Refused): _on_refused,
    (Phase.RESTORING, Unanswered): _on_refused,
    (Phase.RESTORING, RecordArrived): _on_restore_record,
    (Phase.VERIFYING, Tick): _on_verify_tick,
    (Phase.VERIFYING, Accepted): _on_accepted,
    (Phase.VERIFYING, Refused): _on_refused,
    (Phase.VERIFYING, Unanswered): _on_refused,
    (Phase.VERIFYING, RecordArrived): _on_verify_record,
    (Phase.VERIFYING, Listed): _on_listed,
}


# -- which records belong to the operation -------------------------------------------------------

def foreign(op: Operation, record: Mapping[str, Any], *, any_run: bool = False) -> str:
    """Why ``record`` is not the record of the run ``op`` waits for ("" when it is); with
    ``any_run``, of whichever of its runs has the record's rid. Its rid, action and app, and its
    job and node (backup runs) or its backup, namespace and target (the restore) must all be what
    the operation asked for."""
    rid = record.get("rid")
    if any_run:
        runs: list[tuple[Purpose, Run | None]] = [
            ("snapshot", op.snapshot), ("restore", op.restore), ("verify", op.verify)]
        purpose = next((p for p, r in runs if r and r.rid and r.rid == rid), None)
    else:
        waiting = op.waiting_for()
        purpose = waiting[0] if waiting and waiting[1] == rid else None
    if purpose is None:
        return f"record {str(rid)[:64]} is not the run operation {op.id} waits for"
    args = record.get("args")
    args = args if isinstance(args, Mapping) else {}
    if args.get("app") != op.app:
        return (f"record {rid} is of app {str(args.get('app'))[:64]!r}, operation {op.id} of app "
                f"{op.app!r}")
    if purpose == "restore":
        expected: dict[str, Any] = {"action": RECOVER}
        asked: dict[str, Any] = {"backup": op.plan.name, "namespace": op.plan.namespace,
                                 "destDir": op.plan.dest_dir}
    else:
        run = op.snapshot if purpose == "snapshot" else op.verify
        expected, asked = {"action": BACKUP, "id": run.job if run else ""}, {}
    for key, want in expected.items():
        if record.get(key) != want:
            return f"record {rid} has {key} {str(record.get(key))[:80]!r}, not {want!r}"
    for key, want in asked.items():
        if args.get(key) != want:
            return f"record {rid} has args.{key} {str(args.get(key))[:200]!r}, not {want!r}"
    if purpose != "restore" and node_of_job_id(str(record.get("id"))) != op.plan.node:
        return f"record {rid} is of a job on another node than {op.plan.node}"
    return ""


def untrusted_snapshot(record: Mapping[str, Any]) -> str:
    """Why a snapshot's success record cannot serve as the undo ("" when it can): judged suspect,
    no archive named (``result: null``), not an archive of the job's own volume, or no bytes."""
    result = record.get("result")
    if not isinstance(result, Mapping):
        return "its record names no archive (result is null)"
    file, size = result.get("file"), result.get("size")
    archive = (record.get("args") or {}).get("archive") if isinstance(record.get("args"), Mapping) \
        else None
    if not isinstance(file, str) or not file:
        return "its record names no archive"
    if not isinstance(archive, str) or not archive or not file.startswith(archive + "-"):
        return f"its archive {file[:200]!r} is not one of its volume's"
    if not isinstance(size, int) or isinstance(size, bool):
        return "its record gives no archive size"
    if size <= 0:
        return "its archive is 0 bytes"
    if record.get("suspect"):
        return f"it was judged suspect: {record.get('suspect')}"
    return ""


# -- helpers -----------------------------------------------------------------------------------

def _phase_waits_for(phase: Phase, purpose: Purpose) -> bool:
    return WAITS_FOR.get(phase) == purpose


def _run_of(op: Operation, purpose: Purpose) -> Run | None:
    return {"snapshot": op.snapshot, "restore": op.restore, "verify": op.verify}[purpose]


def _with_run(op: Operation, purpose: Purpose, run: Run, now: datetime) -> Operation:
    at = format_time(now)
    if purpose == "snapshot":
        return replace(op, snapshot=run, updated=at)
    if purpose == "restore":
        return replace(op, restore=run, updated=at)
    return replace(op, verify=run, updated=at)


def _fail(op: Operation, now: datetime, error: str, verified: dict[str, int] | None = None) -> Step:
    at = format_time(now)
    return Step(replace(op, phase=Phase.FAILED, error=error, updated=at, since=at,
                        verified=verified if verified is not None else op.verified))


def _complete(op: Operation, now: datetime, verified: dict[str, int] | str | None, words: str,
              sizes: dict[str, int] | None = None) -> Step:
    at = format_time(now)
    if verified == "inconclusive" and sizes:
        words += f" ({', '.join(f'{k} {v}' for k, v in sizes.items())})"
    return Step(replace(op, phase=Phase.COMPLETED, verified=verified, verification=words,
                        error="", updated=at, since=at))


def _busy(record: Mapping[str, Any]) -> bool:
    """The run failed on the daemon's per-path lock: it did nothing, another run held the dir."""
    return record.get("state") == "failed" and BUSY_WORDS in str(record.get("reason") or "")


def _busy_note(op: Operation, what: str, record: Mapping[str, Any]) -> str:
    return (f"the {what} met another run of {op.plan.target_dir} on {op.plan.node} "
            f"({str(record.get('reason'))[:120]}); asked again on the next look")


def _undo_hint(op: Operation) -> str:
    if op.snapshot and op.snapshot.file and not op.plan.is_drill:  # a drill's is a proof, deleted
        return f"; the pre-restore snapshot {op.snapshot.file} undoes whatever was changed"
    return ""


def snapshot_taken(op: Operation) -> datetime | None:
    """When the pre-restore snapshot was made: the second in its archive's name (the daemon
    names a full backup by the time its run began)."""
    second = _name_second(op.snapshot.file) if op.snapshot and op.snapshot.file else None
    return datetime.fromtimestamp(second, UTC) if second is not None else None


def snapshot_kept(op: Operation, undo: timedelta) -> tuple[datetime | None, str]:
    """Until when the snapshot (the undo) is kept, and why: the target volume's ``expire`` (its
    expire job deletes it then), but never before ``undo`` after it was made (the retention
    floor holds the dir until then). (None, why) when no expiry applies or it is unknown."""
    taken = snapshot_taken(op)
    if taken is None:
        return None, "no snapshot"
    try:
        expire = parse_expire(op.plan.target_expire)
    except ScheduleError:
        return None, (f"kept until deleted: {op.plan.volume} has no valid expire, so its expire "
                      "job never deletes it")
    if expire >= undo:
        return taken + expire, f"{op.plan.volume}'s expire {op.plan.target_expire}"
    return taken + undo, (f"held past {op.plan.volume}'s expire {op.plan.target_expire} until "
                          f"UNDO_DAYS ({undo / timedelta(days=1):g}) after it was made")


def _name_second(file: str) -> int | None:
    """The unix second in a full backup's name ``<archive>-<seconds>.tar.gz``."""
    stem = file.removesuffix(".tar.gz")
    digits = stem.rpartition("-")[2]
    return int(digits) if digits.isdigit() and len(digits) <= 12 else None


def base_name(path: str) -> str:
    """The last element of a volume dir, Go's ``path.Base`` of a cleaned path."""
    return posixpath.basename(posixpath.normpath(path)) if path else ""


# -- stored form ---------------------------------------------------------------------------------

def parse(data: Any) -> Operation:
    """An operation from its stored JSON form; ``ValueError`` naming what is wrong. Reads the
    untyped items written before this module (schema 1) too; refuses a newer schema."""
    if not isinstance(data, Mapping):
        raise ValueError("the stored operation is not an object")
    schema = data.get("schema", 1)
    if not isinstance(schema, int) or schema > SCHEMA:
        raise ValueError(f"written by a newer controller (schema {str(schema)[:10]}); this one "
                         f"reads schema {SCHEMA} and older")
    try:
        return _parse_v1(data) if schema == 1 else _parse(data)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"the stored operation is malformed ({type(e).__name__}: {str(e)[:200]})") \
            from None


def _plan(data: Mapping[str, Any]) -> RestorePlan:
    def text(key: str) -> str:
        value = data.get(key, "")
        if not isinstance(value, str):
            raise TypeError(f"plan.{key} is not text")
        return value

    files = data.get("files") or []
    sizes = data.get("file_sizes") or {}
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise TypeError("plan.files is not a list of names")
    if not isinstance(sizes, Mapping):
        raise TypeError("plan.file_sizes is not an object")
    instance, size = data["instance"], data.get("size", 0)
    if not isinstance(instance, int) or not isinstance(size, int):
        raise TypeError("plan.instance/size are not numbers")
    return RestorePlan(app=text("app"), proc=text("proc"), kind=text("kind"), name=text("name"),
                       increment=bool(data["increment"]), files=list(files),
                       namespace=text("namespace"), node=text("node"), instance=instance,
                       volume=text("volume"), dest_dir=text("dest_dir"),
                       source_dir=text("source_dir"), created=text("created"), size=size,
                       file_sizes={str(k): int(v) for k, v in sizes.items()},
                       target_job=text("target_job"), target_archive=text("target_archive"),
                       target_expire=text("target_expire"))


def _run(data: Any) -> Run | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise TypeError("a run is not an object")
    seconds = data.get("seconds")
    return Run(job=str(data.get("job") or ""), rid=str(data.get("rid") or ""),
               asked=bool(data.get("asked", True)), file=str(data.get("file") or ""),
               size=_size(data.get("size")),
               seconds=float(seconds) if isinstance(seconds, (int, float)) and
               not isinstance(seconds, bool) else None)


def _seconds(record: Mapping[str, Any]) -> float | None:
    """How long a run took by its record's ``start`` and ``end``."""
    try:
        (start, start_ns), (end, end_ns) = (parse_go_time(str(record["start"])),
                                            parse_go_time(str(record["end"])))
    except (KeyError, ValueError):
        return None
    took = (end - start).total_seconds() + (end_ns - start_ns) / 1e9
    return round(took, 3) if took >= 0 else None


def _size(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _parse(data: Mapping[str, Any]) -> Operation:
    verified = data.get("verified")
    if verified is not None and not isinstance(verified, (str, dict)):
        raise TypeError("verified is neither text nor an object")
    return Operation(
        id=str(data["id"]), app=str(data["app"]), plan=_plan(data["plan"]),
        phase=Phase(data["phase"]), created=str(data["created"]), updated=str(data["updated"]),
        since=str(data["since"]), version=int(data.get("version", 0)),
        snapshot=_run(data.get("snapshot")), restore=_run(data.get("restore")),
        verify=_run(data.get("verify")), verified=verified,
        verification=str(data.get("verification") or ""), error=str(data.get("error") or ""),
        drill=dict(data["drill"]) if isinstance(data.get("drill"), Mapping) else None)


def _parse_v1(data: Mapping[str, Any]) -> Operation:
    """The operations of the controller before this module: ``restore_plan``, no verification,
    ``updated`` as the stuck clock."""
    plan = _plan(data["restore_plan"])
    snapshot = data.get("snapshot")
    return Operation(
        id=str(data["id"]), app=str(data["app"]),
        plan=replace(plan, target_job=str((snapshot or {}).get("job") or "")),
        phase=Phase(data["phase"]), created=str(data["created"]), updated=str(data["updated"]),
        since=str(data["updated"]), snapshot=_run(snapshot), restore=_run(data.get("restore")),
        verified="skipped", verification="not verified (started before restores were verified)",
        error=str(data.get("error") or ""))
