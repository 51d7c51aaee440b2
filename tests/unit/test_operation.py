"""The restore operation's state machine, pure: its moves one by one, and random event sequences
(duplicates, reordering, foreign records, lost writes, crashes between an effect and its outcome)
against the invariants a user relies on."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core import operation as m
from chalicelib.core.gotime import parse_go_time
from chalicelib.core.operation import (
    Accepted,
    AskRestore,
    Broken,
    Listed,
    Phase,
    RecordArrived,
    Refused,
    RestorePlan,
    Rules,
    RunJob,
    Tick,
    Unanswered,
)

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
JOB = "7f00000bb19d69edd273f3535f5cd42e6fcbd556"
RULES = Rules(phase_limit=timedelta(minutes=360), verify_tolerance_percent=10)
SOURCE = "hello-hello.web.web-1-data-1795563919.tar.gz"
ARCHIVE = "hello-hello.web.web-1-data"


def plan(increment: bool = False) -> RestorePlan:
    return RestorePlan(
        app="hello", proc="hello.web.web", kind="recover",
        name="hello-hello.web.web-1-var-log-hello" if increment else SOURCE, increment=increment,
        files=["x.log"] if increment else [], namespace="127.0.0.11", node="127.0.0.11", instance=1,
        volume="/var/log/hello" if increment else "/data", dest_dir="",
        source_dir="/data/lain/volumes/hello/hello.web.web/1/data", created="2026-11-24T23:45:19Z",
        size=1000, file_sizes={"x.log": 6} if increment else {}, target_job=JOB,
        target_archive=ARCHIVE)


def backup_record(rid: str, state: str = "success", size: int | None = 500,
                  file: str = f"{ARCHIVE}-1796000000.tar.gz", **changes: object) -> dict:
    record = {"id": JOB, "action": "backup", "rid": rid, "state": state, "reason": "",
              "args": {"app": "hello", "archive": ARCHIVE},
              "result": {"file": file, "size": size} if state == "success" else None}
    return {**record, **changes}


def recover_record(rid: str, state: str = "success", **changes: object) -> dict:
    record = {"id": "", "action": "backup_recover", "rid": rid, "state": state,
              "reason": "" if state == "success" else "tar: broken",
              "args": {"app": "hello", "backup": SOURCE, "namespace": "127.0.0.11", "destDir": ""},
              "result": None}
    return {**record, **changes}


def started(snapshot: bool = True, verify: bool = True, increment: bool = False) -> m.Operation:
    return m.begin(plan(increment), "op1", T0, snapshot=snapshot, verify=verify).op


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# -- the moves, one by one ---------------------------------------------------------------------

def test_the_snapshot_is_kept_for_its_volumes_expire_and_never_less_than_the_undo_days():
    made = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    snap = m.Run(job=JOB, rid="r", asked=True, file=f"{ARCHIVE}-{int(made.timestamp())}.tar.gz")
    op = replace(started(), snapshot=snap, plan=replace(plan(), target_expire="30d"))
    assert m.snapshot_taken(op) == made
    assert m.snapshot_kept(op, timedelta(days=7)) == (made + timedelta(days=30),
                                                       "/data's expire 30d")
    short = replace(op, plan=replace(op.plan, target_expire="2d"))
    assert m.snapshot_kept(short, timedelta(days=7)) == (
        made + timedelta(days=7), "held past /data's expire 2d until UNDO_DAYS (7) after it was made")
    none = replace(op, plan=replace(op.plan, target_expire=""))
    assert m.snapshot_kept(none, timedelta(days=7))[0] is None
    assert "never deletes it" in m.snapshot_kept(none, timedelta(days=7))[1]
    assert m.snapshot_kept(started(), timedelta(days=7)) == (None, "no snapshot")



def test_a_trusted_snapshot_asks_the_restore_once():
    op = started()
    op = m.step(op, Accepted("snapshot", "r1", at(1)), RULES).op
    step = m.step(op, RecordArrived(backup_record("r1", size=400), at(2)), RULES)
    assert step.op.phase is Phase.RESTORING and step.effects == (AskRestore(op.plan),)
    assert step.op.snapshot == m.Run(job=JOB, rid="r1", asked=True,
                                     file=f"{ARCHIVE}-1796000000.tar.gz", size=400)
    again = m.step(step.op, RecordArrived(backup_record("r1", size=400), at(3)), RULES)
    assert again.op == step.op and again.effects == ()  # a repeat moves nothing


def test_an_untrusted_snapshot_ends_the_operation_before_any_restore():
    op = m.step(started(), Accepted("snapshot", "r1", at(1)), RULES).op
    for record, why in [(backup_record("r1", size=0), "0 bytes"),
                        (backup_record("r1", result=None), "result is null"),
                        (backup_record("r1", suspect="far smaller"), "judged suspect"),
                        (backup_record("r1", file="mysql-1.tar.gz"), "not one of its volume's")]:
        step = m.step(op, RecordArrived(record, at(2)), RULES)
        assert step.op.phase is Phase.FAILED and step.effects == ()
        assert why in step.op.error and "the volume is as it was" in step.op.error


def test_foreign_records_move_nothing():
    op = m.step(started(), Accepted("snapshot", "r1", at(1)), RULES).op
    foreign = [backup_record("r2"), backup_record("r1", args={"app": "mysql", "archive": ARCHIVE}),
               backup_record("r1", action="backup_recover"),
               backup_record("r1", id="7f00000c" + JOB[8:]),  # the same job hash on another node
               backup_record("r1", id="7f00000b" + "0" * 32)]
    for record in foreign:
        step = m.step(op, RecordArrived(record, at(2)), RULES)
        assert step.op == op and step.ignored, record
    restoring = m.step(op, RecordArrived(backup_record("r1"), at(2)), RULES).op
    restoring = m.step(restoring, Accepted("restore", "r9", at(3)), RULES).op
    for record in [recover_record("r9", args={"app": "mysql", "backup": SOURCE,
                                              "namespace": "127.0.0.11", "destDir": ""}),
                   recover_record("r9", args={"app": "hello", "backup": "other.tar.gz",
                                              "namespace": "127.0.0.11", "destDir": ""}),
                   recover_record("r9", action="backup")]:
        assert m.step(restoring, RecordArrived(record, at(4)), RULES).op == restoring


def test_verification_tells_a_restore_from_a_false_success():
    op = m.step(started(), Accepted("snapshot", "r1", at(1)), RULES).op
    op = m.step(op, RecordArrived(backup_record("r1", size=400), at(2)), RULES).op
    op = m.step(op, Accepted("restore", "r2", at(3)), RULES).op
    step = m.step(op, RecordArrived(recover_record("r2"), at(4)), RULES)
    assert step.op.phase is Phase.VERIFYING and step.effects == (RunJob("verify", "127.0.0.11", JOB),)
    verifying = m.step(step.op, Accepted("verify", "r3", at(5)), RULES).op
    cases = {990: (Phase.COMPLETED, {"source_size": 1000, "after_size": 990, "snapshot_size": 400}),
             410: (Phase.FAILED, {"source_size": 1000, "after_size": 410, "snapshot_size": 400}),
             5000: (Phase.COMPLETED, "inconclusive")}
    for after, (phase, verified) in cases.items():
        done = m.step(verifying, RecordArrived(backup_record("r3", size=after), at(6)), RULES).op
        assert (done.phase, done.verified) == (phase, verified), after


def test_the_verification_waits_out_the_snapshots_second():
    """Backups are named by the second: a verification backup started in the snapshot's second
    would overwrite the undo. It is asked on a later look instead."""
    op = m.step(started(), Accepted("snapshot", "r1", T0), RULES).op
    named_now = f"{ARCHIVE}-{int(T0.timestamp())}.tar.gz"
    op = m.step(op, RecordArrived(backup_record("r1", file=named_now), T0), RULES).op
    op = m.step(op, Accepted("restore", "r2", T0), RULES).op
    step = m.step(op, RecordArrived(recover_record("r2"), T0 + timedelta(seconds=1)), RULES)
    assert step.op.phase is Phase.VERIFYING and step.effects == ()
    later = m.step(step.op, Tick(T0 + timedelta(seconds=5)), RULES)
    assert later.effects == (RunJob("verify", "127.0.0.11", JOB),)


def test_increment_verification_compares_the_files():
    op = started(increment=True)
    assert op.snapshot is None and op.phase is Phase.RESTORING
    op = m.step(op, Accepted("restore", "r2", at(1)), RULES).op
    args = {"app": "hello", "backup": "hello-hello.web.web-1-var-log-hello", "namespace": "127.0.0.11",
            "destDir": ""}
    op = m.step(op, RecordArrived(recover_record("r2", args=args), at(2)), RULES).op
    op = m.step(op, Accepted("verify", "r3", at(3)), RULES).op
    step = m.step(op, RecordArrived(backup_record("r3", size=0, file=ARCHIVE), at(4)), RULES)
    assert step.effects == (m.ListFiles("127.0.0.11", ARCHIVE),)
    good = m.step(step.op, Listed([{"name": "x.log", "size": 6}], at(5)), RULES).op
    assert good.phase is Phase.COMPLETED and good.verified == {"files_checked": 1}
    bad = m.step(step.op, Listed([{"name": "x.log", "size": 60}], at(5)), RULES).op
    assert bad.phase is Phase.FAILED and "x.log is 60 bytes" in bad.error


def test_a_refused_restore_waits_for_the_next_look_an_unanswered_one_never_retries():
    op = m.step(started(), Accepted("snapshot", "r1", at(1)), RULES).op
    op = m.step(op, RecordArrived(backup_record("r1"), at(2)), RULES).op
    waiting = m.step(op, Refused("restore", "503", at(3)), RULES).op
    assert waiting.phase is Phase.SNAPSHOTTED
    retried = m.step(waiting, Tick(at(4)), RULES)
    assert retried.op.phase is Phase.RESTORING and retried.effects == (AskRestore(op.plan),)
    gone = m.step(op, Unanswered("restore", "timed out", at(3)), RULES).op
    assert gone.phase is Phase.FAILED and "may be restoring now" in gone.error


BUSY = "Directory is now backuping, give up."  # backupd's per-path lock, word for word


def test_a_run_that_meets_the_daemons_lock_is_asked_again_on_the_next_look():
    """The cron's own run of the volume holds its dir for a moment: a snapshot or verification
    that meets it did nothing, so it is asked again, not taken as the outcome; a restore that
    meets it fails (never repeated by the operation)."""
    op = m.step(started(), Accepted("snapshot", "r1", at(1)), RULES).op
    busy = m.step(op, RecordArrived(backup_record("r1", "failed", reason=BUSY), at(2)), RULES)
    assert busy.op.phase is Phase.SNAPSHOTTING and busy.effects == ()
    assert "asked again on the next look" in busy.op.error and BUSY in busy.op.error
    again = m.step(busy.op, Tick(at(3)), RULES)
    assert again.effects == (RunJob("snapshot", "127.0.0.11", JOB),)
    op = m.step(again.op, Accepted("snapshot", "r4", at(3)), RULES).op
    op = m.step(op, RecordArrived(backup_record("r4", size=400), at(4)), RULES).op
    assert op.phase is Phase.RESTORING and op.error == ""
    restoring = m.step(op, Accepted("restore", "r5", at(4)), RULES).op
    # a restore is never repeated by the operation: a "busy" record while it runs (a forged post)
    # would otherwise start a second one
    refused = m.step(restoring, RecordArrived(recover_record("r5", "failed", reason=BUSY), at(5)),
                     RULES)
    assert refused.op.phase is Phase.FAILED and refused.effects == ()
    assert "nothing was restored; ask again" in refused.op.error and "held it" in refused.op.error
    assert m.step(refused.op, Tick(at(6)), RULES).effects == ()
    op = m.step(restoring, RecordArrived(recover_record("r5"), at(7)), RULES).op
    op = m.step(op, Accepted("verify", "r7", at(7)), RULES).op
    verifying = m.step(op, RecordArrived(backup_record("r7", "failed", reason=BUSY), at(8)), RULES).op
    assert verifying.phase is Phase.VERIFYING and verifying.verify == m.Run(job=JOB)
    asked = m.step(verifying, Tick(at(9)), RULES)
    assert asked.effects == (RunJob("verify", "127.0.0.11", JOB),)
    op = m.step(asked.op, Accepted("verify", "r8", at(9)), RULES).op
    done = m.step(op, RecordArrived(backup_record("r8", size=990), at(10)), RULES).op
    assert done.phase is Phase.COMPLETED and isinstance(done.verified, dict) and done.error == ""
    # a lock held past the phase limit ends the operation, saying what it met last
    ended = m.step(busy.op, Tick(at(400)), RULES).op
    assert ended.phase is Phase.FAILED and BUSY in ended.error
    # only the daemon's own words count as busy: a reason merely containing them is a failure
    near = backup_record("r8", "failed", reason="preRun: backup.sh: now backuping the db")
    assert m.step(op, RecordArrived(near, at(8)), RULES).op.phase is Phase.COMPLETED
    # any other failure still ends the run's phase at once
    other = m.step(verifying, Accepted("verify", "r9", at(9)), RULES).op
    other = m.step(other, RecordArrived(backup_record("r9", "failed", reason="exit status 2"),
                                        at(10)), RULES).op
    assert other.phase is Phase.COMPLETED and other.verified == "inconclusive"


def test_every_phase_ends_at_its_limit():
    op = started()
    late = at(361)
    assert m.step(op, Tick(late), RULES).op.phase is Phase.FAILED
    op = m.step(op, Accepted("snapshot", "r1", at(1)), RULES).op
    op = m.step(op, RecordArrived(backup_record("r1"), at(2)), RULES).op
    op = m.step(op, Accepted("restore", "r2", at(3)), RULES).op
    assert m.step(op, Tick(at(363)), RULES).op.phase is Phase.FAILED
    op = m.step(op, RecordArrived(recover_record("r2"), at(4)), RULES).op
    done = m.step(op, Tick(at(365)), RULES).op
    assert done.phase is Phase.COMPLETED and done.verified == "inconclusive"


def test_a_broken_operation_fails_with_the_reason_and_a_finished_one_never_moves():
    op = m.step(started(), Broken("KeyError: 'x'", at(1)), RULES).op
    assert op.phase is Phase.FAILED and "KeyError" in op.error
    for event in (Tick(at(999)), RecordArrived(backup_record("r1"), at(2)), Broken("again", at(3)),
                  Accepted("snapshot", "r1", at(4))):
        assert m.step(op, event, RULES).op == op


def drill_plan() -> RestorePlan:
    return replace(plan(), kind="drill", dest_dir="/data/lain/drills/data",
                   target_archive=f"{ARCHIVE}.drill")


def test_a_broken_drill_still_has_an_outcome():
    op = m.begin(drill_plan(), "op1", T0, snapshot=False, verify=True).op
    op = m.step(op, Broken("KeyError: 'x'", at(1)), RULES).op
    assert op.phase is Phase.FAILED and op.drill is not None
    assert op.drill["outcome"] == "unproven" and "KeyError" in op.drill["why"]


def test_a_failed_drill_never_offers_its_proof_archive_as_an_undo():
    op = m.begin(drill_plan(), "op1", T0, snapshot=False, verify=True).op
    op = m.step(op, Tick(at(1)), RULES).op
    op = m.step(op, Accepted("snapshot", "r1", at(1)), RULES).op
    op = m.step(op, RecordArrived(backup_record("r1", file=f"{ARCHIVE}.drill-1.tar.gz"), at(2)),
                RULES).op
    op = m.step(op, Accepted("restore", "r2", at(2)), RULES).op
    op = m.step(op, RecordArrived(recover_record(
        "r2", state="failed", args={"app": "hello", "backup": SOURCE, "namespace": "127.0.0.11",
                                    "destDir": "/data/lain/drills/data"}), at(3)), RULES).op
    assert op.phase is Phase.FAILED and op.drill is not None
    assert op.drill["outcome"] == "verify_failed", op.drill
    assert "undoes" not in op.error and ".drill-1.tar.gz" not in op.error


def test_the_stored_form_round_trips_and_reads_the_previous_version():
    op = m.step(started(), Accepted("snapshot", "r1", at(1)), RULES).op
    assert m.parse(op.to_dict()) == op
    v1 = {"id": "x", "app": "hello", "phase": "Restoring", "created": "2026-12-01T00:00:00Z",
          "updated": "2026-12-01T00:01:00Z", "restore_plan": {k: v for k, v in vars(plan()).items()
                                                               if k not in ("created", "size")},
          "snapshot": {"job": JOB, "rid": "r1", "file": "f"}, "restore": {"rid": "r2"}, "error": ""}
    old = m.parse(v1)
    assert old.phase is Phase.RESTORING and old.restore == m.Run(rid="r2", asked=True)
    for bad in ({**op.to_dict(), "schema": 3}, {**op.to_dict(), "phase": "Dancing"}, [], {"id": 1}):
        try:
            m.parse(bad)
        except ValueError:
            continue
        raise AssertionError(f"parsed {bad!r}")


# -- random sequences against the invariants ---------------------------------------------------

OWN, FOREIGN, STRANGER = "own", "foreign", "stranger"


def rid_of(n: int) -> str:
    return hashlib.md5(str(n).encode()).hexdigest()


# "next": the natural next thing (the oldest asked effect's answer, else the waited run's own
# record), drawn most often so that sequences reach the deep phases; the others perturb it.
OUTCOMES = st.sampled_from(["accepted"] * 3 + ["refused", "unanswered", "crash"])
STATES = st.sampled_from(["success"] * 3 + ["failed", "busy"])  # busy: failed on the daemon's lock
SIZES = st.sampled_from([0, None, 400, 990, 1000, 5000])
KINDS = {
    "next": st.tuples(st.just("next"), OUTCOMES, STATES, SIZES),
    "deliver": st.tuples(st.just("deliver"), OUTCOMES),
    "record": st.tuples(st.just("record"),
                        st.sampled_from(["current"] * 4 + ["snapshot", "restore", "verify"]),
                        st.sampled_from([OWN] * 3 + [FOREIGN, STRANGER]), STATES, SIZES),
    "tick": st.tuples(st.just("tick"), st.sampled_from([0, 1, 10, 100, 359, 361, 800])),
    "listed": st.tuples(st.just("listed"), st.sampled_from([6, 60])),
    "broken": st.tuples(st.just("broken")),
    "lose": st.tuples(st.just("lose")),  # the next transition is never stored (a lost write)
}
events = st.lists(st.sampled_from(["next"] * 8 + ["deliver", "record", "record", "tick", "tick",
                                                  "listed", "broken", "lose"])
                  .flatmap(lambda kind: KINDS[kind]), max_size=40)


@settings(max_examples=1500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["snapshot", "no-snapshot", "increment"]), verify=st.booleans(),
       script=events)
def test_random_event_sequences_keep_the_invariants(kind, verify, script):
    op = m.begin(plan(kind == "increment"), "op1", T0, snapshot=kind == "snapshot", verify=verify).op
    pending = list(m.begin(plan(kind == "increment"), "op1", T0, snapshot=kind == "snapshot",
                           verify=verify).effects)
    now, counter = T0, 0
    rids: dict[str, str] = {}  # purpose -> the rid the daemon gave it
    restores_asked, restores_refused = sum(isinstance(e, AskRestore) for e in pending), 0
    trusted_snapshot = False
    lose_next = False

    for item in script:
        event: m.Event | None = None
        foreign = False
        if item[0] == "next":
            item = ("deliver", item[1]) if pending else ("record", "current", OWN, item[2], item[3])
        if item[0] == "deliver" and pending:
            effect = pending.pop(0)
            purpose = "restore" if isinstance(effect, AskRestore) else \
                "verify" if isinstance(effect, m.ListFiles) else effect.purpose
            outcome = item[1]
            if isinstance(effect, m.ListFiles):
                event = Listed([{"name": "x.log", "size": 6}], now) if outcome == "accepted" else None
            elif outcome == "accepted":
                counter += 1
                rids[purpose] = rid_of(counter)
                event = Accepted(purpose, rids[purpose], now)
            elif outcome == "refused":
                event = Refused(purpose, "503", now)
                restores_refused += purpose == "restore"
            elif outcome == "unanswered":
                event = Unanswered(purpose, "timed out", now)
            # crash: the effect ran, its outcome is never stored
        elif item[0] == "record":
            _, purpose, variant, state, size = item
            if purpose == "current":
                purpose = m.WAITS_FOR.get(op.phase, "restore")
            rid = rids.get(purpose, rid_of(10_000)) if variant != STRANGER else rid_of(99_999)
            busy = state == "busy"
            state = "failed" if busy else state
            if purpose == "restore":
                record = recover_record(rid, state, **({"reason": BUSY} if busy else {}))
                if kind == "increment":
                    record["args"]["backup"] = "hello-hello.web.web-1-var-log-hello"
            else:
                record = backup_record(rid, state, size=size, **({"reason": BUSY} if busy else {}))
            if variant == FOREIGN:
                record["args"] = {**record["args"], "app": "mysql"}
                foreign = True
            event = RecordArrived(record, now)
            if (purpose == "snapshot" and variant == OWN and state == "success" and size
                    and rids.get("snapshot") == rid):
                trusted_snapshot = True
        elif item[0] == "tick":
            now += timedelta(minutes=item[1])
            event = Tick(now)
        elif item[0] == "listed":
            event = Listed([{"name": "x.log", "size": item[1]}], now)
        elif item[0] == "broken":
            event = Broken("boom", now)
        elif item[0] == "lose":
            lose_next = True
        if event is None:
            continue
        step = m.step(op, event, RULES)
        # a finished operation never moves
        if op.finished:
            assert step.op == op and not step.effects
        # a foreign record moves nothing
        if foreign:
            assert step.op == op and not step.effects
        # a tick past the limit ends any open operation
        if isinstance(event, Tick) and not op.finished and \
                now - parse_go_time(op.since)[0] > RULES.phase_limit:
            assert step.op.finished
        for effect in step.effects:  # never a restore without a trusted snapshot, when one was asked
            if isinstance(effect, AskRestore) and op.snapshot is not None:
                assert trusted_snapshot and step.op.snapshot and step.op.snapshot.size
                assert step.op.snapshot.file
        assert len(step.effects) <= 1
        if lose_next:  # the conditional write lost: nothing stored, nothing performed
            lose_next = False
            continue
        op = step.op
        for effect in step.effects:
            pending.append(effect)
            restores_asked += isinstance(effect, AskRestore)
        # at most one restore that may have run: every ask but those the daemon refused
        assert restores_asked - restores_refused <= 1
    # whatever happened, a tick long after ends it (each phase has its limit)
    final = op
    for _ in range(4):
        now += timedelta(minutes=400)
        final = m.step(final, Tick(now), RULES).op
    assert final.finished


def test_the_phases_table_covers_what_the_docstring_says():
    phases_moving = {phase for phase, _ in m.MOVES}
    assert phases_moving == {Phase.SNAPSHOTTING, Phase.SNAPSHOTTED, Phase.RESTORING, Phase.VERIFYING}
    assert not any(phase in m.FINISHED for phase, _ in m.MOVES)
    assert replace(started(), phase=Phase.COMPLETED).finished
