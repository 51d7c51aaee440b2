"""Restores as operations, moved on by the daemons' records through notify: the snapshot (the undo,
trusted only when it really is one), then the restore, then its verification, then Completed or
Failed; one restore per target at a time; a record moves only its own operation; one broken
operation never stops the others; a controller restarted between phases carries on."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import deps as deps_module
from chalicelib.deps import Deps
from chalicelib.errors import Conflict, StoreUnavailable
from chalicelib.settings import get_settings
from chalicelib.usecases import notify as notify_flow
from chalicelib.usecases import operations
from chalicelib.usecases import records as records_flow
from tests import reference
from tests.component.apiclient import error_of, post_form
from tests.component.test_backup_status import Clock

HELLO = "/api/v2/app/hello/proc/web/backups"
FULL = "hello-hello.web.web-1-data-1795563919.tar.gz"  # 154 bytes on the stand-in
INCR = "hello-hello.web.web-1-var-log-hello"
HELLO_DATA = "7f00000bb19d69edd273f3535f5cd42e6fcbd556"
SNAPSHOT_FILE = "hello-hello.web.web-1-data-1795600000.tar.gz"
TARGET = "/data/lain/volumes/hello/hello.web.web/1/data"
RECOVERS = "/api/v1/backup/full/recover/file/"


def notify(api, record, status=200):
    resp = api.http.post("/api/v2/system/notify", body=json.dumps(record),
                         headers={"Content-Type": "application/json"})
    assert resp.status_code == status, resp.body
    return resp


def run_record(job, rid, state, **extra):
    """The record a daemon posts for a run it gave the rid ``rid``."""
    start = datetime.fromtimestamp(int(rid[:10]), UTC)
    return {**reference.record_of(job, state, start, **extra), "rid": rid}


def once(job_id=HELLO_DATA):
    return {**reference.job(job_id), "type": "once"}


def snapshot_done(rid, size=99, file=SNAPSHOT_FILE, state="success", reason=""):
    return run_record(once(), rid, state, reason=reason,
                      result={"file": file, "size": size} if state == "success" else None)


def recover_record(rid, state, reason="", app="hello", backup=FULL, namespace="127.0.0.11"):
    job = {"id": "", "spec": "", "action": "backup_recover", "type": "once", "sleep": False,
           "args": {"namespace": namespace, "backup": backup, "files": None, "destDir": "",
                    "app": app, "proc": f"{app}.web.web"}}
    return run_record(job, rid, state, reason=reason)


def restart():
    """What a restart leaves: nothing in memory (every cache and the dependencies rebuilt)."""
    get_settings.cache_clear()
    deps_module._deps_for.cache_clear()


def operation(api, op_id):
    return api.http.get(f"/api/v2/app/hello/operations/{op_id}").json_body


def recover(api, query=""):
    resp = post_form(api, f"{HELLO}/{FULL}/actions/recover{query}")
    assert resp.status_code == 200, resp.body
    return resp.json_body


def verify_rid(daemon, op):
    """The record id the daemon gave the verification run (the second run of the job)."""
    return daemon.runs[-1][0]


def through_restore(api, daemon, op):
    """Snapshot done (99 bytes), restore done: the operation is Verifying."""
    notify(api, snapshot_done(op["snapshot"]["rid"]))
    restoring = operation(api, op["operation"])
    notify(api, recover_record(restoring["restore"]["rid"], "success"))
    return operation(api, op["operation"])


def test_a_restore_followed_from_request_to_verified_across_a_restart(api, ddb, pushed):
    daemon = pushed["127.0.0.11"]
    op = recover(api)
    assert op["phase"] == "Snapshotting" and op["snapshot"]["job"] == HELLO_DATA
    assert "being taken" in op["undo"]
    restart()
    notify(api, run_record(once(), op["snapshot"]["rid"], "running"))
    assert operation(api, op["operation"])["phase"] == "Snapshotting"
    notify(api, snapshot_done(op["snapshot"]["rid"]))
    restoring = operation(api, op["operation"])
    assert restoring["phase"] == "Restoring"
    assert restoring["snapshot"] == {"job": HELLO_DATA, "rid": op["snapshot"]["rid"],
                                     "file": SNAPSHOT_FILE, "size": 99,
                                     # made at 1795600000 (its name), hello /data expires in 7d
                                     "kept_until": "2026-12-02T09:46:40.000000Z",
                                     "kept": "/data's expire 7d"}
    assert SNAPSHOT_FILE in restoring["undo"] and "snapshot=false" in restoring["undo"]
    assert "(kept until 2026-12-02 09:46 UTC: /data's expire 7d)" in restoring["undo"]
    [call] = daemon.received(RECOVERS)
    assert call.path.endswith(FULL) and call.form["namespace"] == ["127.0.0.11"]
    restart()
    notify(api, snapshot_done(op["snapshot"]["rid"]))  # the same post again: moves nothing
    assert len(daemon.received(RECOVERS)) == 1
    notify(api, recover_record(restoring["restore"]["rid"], "success"))
    verifying = operation(api, op["operation"])
    assert verifying["phase"] == "Verifying"
    assert [job for _, job in daemon.runs] == [HELLO_DATA, HELLO_DATA]  # snapshot, verification
    notify(api, run_record(once(), verify_rid(daemon, op), "success",
                           result={"file": "hello-hello.web.web-1-data-1795700000.tar.gz", "size": 150}))
    done = operation(api, op["operation"])
    assert done["phase"] == "Completed" and done["error"] == ""
    assert done["verified"] == {"source_size": 154, "after_size": 150, "snapshot_size": 99}
    assert "150 bytes" in done["verification"] and "154 bytes" in done["verification"]
    assert [o["operation"] for o in api.http.get("/api/v2/app/hello/operations").json_body] == \
        [op["operation"]]


def test_a_false_success_is_caught_by_the_verification(api, ddb, pushed):
    """The daemon reports the restore a success, but the volume re-archived is the size of the
    pre-restore snapshot, not of the source: the daemon put the old content back."""
    daemon = pushed["127.0.0.11"]
    op = recover(api)
    assert through_restore(api, daemon, op)["phase"] == "Verifying"
    notify(api, run_record(once(), verify_rid(daemon, op), "success",
                           result={"file": "hello-hello.web.web-1-data-1795700000.tar.gz", "size": 101}))
    failed = operation(api, op["operation"])
    assert failed["phase"] == "Failed"
    assert "the daemon reported success but the volume after the restore matches the " \
           "pre-restore snapshot" in failed["error"] and "nothing was restored" in failed["error"]
    assert failed["verified"] == {"source_size": 154, "after_size": 101, "snapshot_size": 99}


@pytest.mark.parametrize("snapshot, after, result", [
    (150, 152, "inconclusive"),  # source and snapshot of one size: nothing can be told
    (99, 500, "inconclusive"),  # neither: the app wrote to it since
])
def test_a_verification_that_cannot_tell_says_so(api, ddb, pushed, snapshot, after, result):
    daemon = pushed["127.0.0.11"]
    op = recover(api)
    notify(api, snapshot_done(op["snapshot"]["rid"], size=snapshot))
    notify(api, recover_record(operation(api, op["operation"])["restore"]["rid"], "success"))
    notify(api, run_record(once(), verify_rid(daemon, op), "success",
                           result={"file": "hello-hello.web.web-1-data-1795700000.tar.gz", "size": after}))
    done = operation(api, op["operation"])
    assert done["phase"] == "Completed" and done["verified"] == result
    assert f"{after} bytes" in done["verification"]


def test_verify_false_skips_the_check(api, ddb, pushed):
    daemon = pushed["127.0.0.11"]
    op = recover(api, "?verify=false")
    notify(api, snapshot_done(op["snapshot"]["rid"]))
    notify(api, recover_record(operation(api, op["operation"])["restore"]["rid"], "success"))
    done = operation(api, op["operation"])
    assert done["phase"] == "Completed" and done["verified"] == "skipped"
    assert "verify=false" in done["verification"]
    assert len(daemon.runs) == 1  # the snapshot only


@pytest.mark.parametrize("fail", ["snapshot", "restore", "verify"])
def test_a_failed_run_says_why(api, ddb, pushed, fail):
    daemon = pushed["127.0.0.11"]
    op = recover(api)
    if fail == "snapshot":
        notify(api, snapshot_done(op["snapshot"]["rid"], state="failed", reason="disk full"))
        failed = operation(api, op["operation"])
        assert failed["phase"] == "Failed" and "snapshot failed: disk full" in failed["error"]
        assert "nothing was restored" in failed["error"]
        assert not daemon.received("/api/v1/backup/full/recover")
        return
    notify(api, snapshot_done(op["snapshot"]["rid"]))
    rid = operation(api, op["operation"])["restore"]["rid"]
    if fail == "restore":
        notify(api, recover_record(rid, "failed", reason="tar: broken"))
        failed = operation(api, op["operation"])
        assert failed["phase"] == "Failed" and "restore failed: tar: broken" in failed["error"]
        assert SNAPSHOT_FILE in failed["error"]  # what undoes whatever was changed
        return
    notify(api, recover_record(rid, "success"))
    notify(api, run_record(once(), verify_rid(daemon, op), "failed", reason="exit status 2"))
    done = operation(api, op["operation"])
    assert done["phase"] == "Completed" and done["verified"] == "inconclusive"
    assert "verification backup failed (exit status 2)" in done["verification"]


BUSY = "Directory is now backuping, give up."  # backupd's per-path lock


def test_runs_that_meet_the_daemons_lock_are_asked_again_by_the_schedule(settings, ddb, pushed):
    """The cron's own run of the volume held its dir the moment the snapshot and the
    verification each ran: each did nothing, so each is asked again on the schedule's next look,
    and the restore still ends verified. A restore that meets it is not repeated: it fails,
    saying nothing was restored, and no second restore is asked."""
    clock = Clock(datetime.now(UTC))
    deps = Deps(settings, clock, ddb)
    daemon = pushed["127.0.0.11"]
    op_id = operations.restore(deps, "hello", "web", FULL, [])["operation"]

    def now(): return deps.operations.get("hello", op_id)

    def tick():
        clock.now += timedelta(seconds=61)
        operations.tick(deps)

    operations.advance(deps, _stored(deps, snapshot_done(now().snapshot.rid, state="failed",
                                                         reason=BUSY)))
    assert now().phase == "Snapshotting" and "asked again on the next look" in now().error
    tick()
    assert len(daemon.runs) == 2  # the snapshot, asked again
    operations.advance(deps, _stored(deps, snapshot_done(now().snapshot.rid)))
    operations.advance(deps, _stored(deps, recover_record(now().restore.rid, "success")))
    assert now().phase == "Verifying"
    operations.advance(deps, _stored(deps, run_record(once(), now().verify.rid, "failed", reason=BUSY)))
    assert now().phase == "Verifying" and not now().verify.asked
    tick()
    operations.advance(deps, _stored(deps, run_record(
        once(), now().verify.rid, "success",
        result={"file": "hello-hello.web.web-1-data-1795800000.tar.gz", "size": now().plan.size})))
    done = now()
    assert done.phase == "Completed" and isinstance(done.verified, dict), done
    assert len(daemon.runs) == 4  # the snapshot twice, the verification twice
    assert len(daemon.received(RECOVERS)) == 1

    op_id = operations.restore(deps, "hello", "web", FULL, [])["operation"]
    operations.advance(deps, _stored(deps, snapshot_done(now().snapshot.rid)))
    operations.advance(deps, _stored(deps, recover_record(now().restore.rid, "failed", reason=BUSY)))
    failed = now()
    assert failed.phase == "Failed" and "nothing was restored; ask again" in failed.error
    tick()
    assert len(daemon.received(RECOVERS)) == 2  # this operation's one restore, never a second


def test_a_snapshot_of_a_missing_dir_names_the_way_out(api, ddb, pushed):
    op = recover(api)
    notify(api, snapshot_done(op["snapshot"]["rid"], state="failed",
                              reason=f"Directory {TARGET} not exist"))
    failed = operation(api, op["operation"])
    assert failed["phase"] == "Failed"
    assert f"{TARGET} does not exist on 127.0.0.11" in failed["error"]
    assert f"mkdir -p {TARGET}" in failed["error"] and "?snapshot=false" in failed["error"]


@pytest.mark.parametrize("result, why", [
    ({"file": SNAPSHOT_FILE, "size": 0}, "its archive is 0 bytes"),
    (None, "names no archive"),
    ({"file": "", "size": 99}, "names no archive"),
    ({"file": "mysql-mysql.worker.master-1-var-lib-mysql-1795600000.tar.gz", "size": 99},
     "is not one of its volume's"),
    ({"file": SNAPSHOT_FILE}, "gives no archive size"),
])
def test_no_restore_without_a_trusted_undo(api, ddb, pushed, result, why):
    daemon = pushed["127.0.0.11"]
    op = recover(api)
    notify(api, run_record(once(), op["snapshot"]["rid"], "success", result=result))
    failed = operation(api, op["operation"])
    assert failed["phase"] == "Failed" and why in failed["error"]
    assert "nothing was restored; the volume is as it was" in failed["error"]
    assert not daemon.received(RECOVERS)


def test_a_suspect_snapshot_is_no_undo(api, ddb, deps, pushed):
    """Ten good backups of ~1 MB: a 1 KB snapshot is judged suspect, and no restore follows."""
    for n in range(10):
        start = datetime.now(UTC) - timedelta(days=10 - n)
        records_flow.store(deps, reference.record_of(reference.job(HELLO_DATA), "success", start,
                                             result={"file": f"x-{n}", "size": 1_000_000}))
    op = recover(api)
    notify(api, snapshot_done(op["snapshot"]["rid"], size=1000))
    failed = operation(api, op["operation"])
    assert failed["phase"] == "Failed" and "judged suspect" in failed["error"]
    assert not pushed["127.0.0.11"].received(RECOVERS)


def test_a_record_moves_only_its_own_operation(api, ddb, pushed):
    """mysql's restore record carrying hello's restore rid is refused and stored nowhere; the
    daemon's real record for that rid then lands and moves the operation."""
    op = recover(api)
    notify(api, snapshot_done(op["snapshot"]["rid"]))
    rid = operation(api, op["operation"])["restore"]["rid"]
    forged = recover_record(rid, "success", app="mysql",
                            backup="mysql-mysql.worker.master-1-var-lib-mysql-1.tar.gz",
                            namespace="127.0.0.13")
    refused = notify(api, forged, 409)
    assert error_of(refused)["code"] == "not_the_operations_record"
    assert "'mysql'" in error_of(refused)["error"]
    assert operation(api, op["operation"])["phase"] == "Restoring"
    assert api.http.get(f"/api/v2/app/mysql/cron/records/{rid}").status_code == 404
    other_action = {**snapshot_done(rid), "rid": rid}  # a backup record with the restore's rid
    notify(api, other_action, 409)
    notify(api, recover_record(rid, "failed", reason="runtime error"))  # the genuine one
    failed = operation(api, op["operation"])
    assert failed["phase"] == "Failed" and "runtime error" in failed["error"]


def test_a_snapshot_record_of_another_job_or_node_is_refused(api, ddb, pushed):
    op = recover(api)
    mysql_job = {**pushed["127.0.0.13"].jobs[0], "type": "once"}
    notify(api, {**run_record(mysql_job, op["snapshot"]["rid"], "success",
                              result={"file": "mysql-mysql.worker.master-1-var-lib-mysql-1.tar.gz",
                                      "size": 9})}, 409)
    assert operation(api, op["operation"])["phase"] == "Snapshotting"
    assert not pushed["127.0.0.11"].received(RECOVERS)


@pytest.fixture
def atomic_moto(monkeypatch):
    """moto's in-process DynamoDB, each call atomic as DynamoDB's are (moto's own backend is not
    safe for calls from several threads at once); requests still interleave between calls."""
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.Lock()
    call = BotocoreStubber.__call__

    def atomic(self, event_name, request, **kwargs):
        with lock:
            return call(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", atomic)


def test_one_restore_per_target_under_concurrent_requests(settings, ddb, pushed, atomic_moto):
    """Three recovers of one backup at once, each on its own Lambda: one operation, one restore
    asked of the daemon, two 409s naming the open operation."""
    barrier = threading.Barrier(3)
    answers: list[object] = []

    def request() -> None:
        deps = Deps(settings, table=ddb)
        barrier.wait()
        try:
            answers.append(operations.restore(deps, "hello", "web", FULL, [], snapshot=False))
        except Conflict as e:
            answers.append(e)

    threads = [threading.Thread(target=request) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = [a for a in answers if isinstance(a, dict)]
    refused = [a for a in answers if isinstance(a, Conflict)]
    assert len(accepted) == 1 and len(refused) == 2
    assert len(pushed["127.0.0.11"].received(RECOVERS)) == 1
    assert all(e.code == "restore_in_progress" and accepted[0]["operation"] in e.message
               and "Restoring" in e.message for e in refused)


def test_the_target_is_free_again_once_its_operation_ends(api, ddb, pushed):
    op = recover(api, "?snapshot=false&verify=false")
    second = post_form(api, f"{HELLO}/{FULL}/actions/recover")
    assert second.status_code == 409 and op["operation"] in error_of(second)["error"]
    migrate_in = post_form(api, f"{HELLO}/{FULL}/actions/migrate?snapshot=false",
                           [("volume", "/data"), ("to", "1")])  # the same dir by another route
    assert migrate_in.status_code == 409
    notify(api, recover_record(op["restore"]["rid"], "success"))
    assert operation(api, op["operation"])["phase"] == "Completed"
    assert post_form(api, f"{HELLO}/{FULL}/actions/recover?snapshot=false").status_code == 200


def test_cross_node_and_renamed_restores_are_refused_before_any_snapshot(api, ddb, pushed):
    cross = post_form(api, f"{HELLO}/{FULL}/actions/migrate", [("volume", "/data"), ("to", "2")])
    assert cross.status_code == 409 and error_of(cross)["code"] == "cross_node_restore"
    assert "ALLOW_CROSS_NODE_RESTORE" in error_of(cross)["error"]
    assert "instances there: 1" in error_of(cross)["error"]
    renamed = post_form(api, f"{HELLO}/{FULL}/actions/migrate",
                        [("volume", "/var/log/hello"), ("to", "1")])
    assert renamed.status_code == 400 and error_of(renamed)["code"] == "base_name_mismatch"
    assert "'data'" in error_of(renamed)["error"] and "'hello'" in error_of(renamed)["error"]
    assert not any(d.runs or d.received("/api/v1/backup", "POST") for d in pushed.values())


def test_an_increment_restore_says_it_cannot_be_undone_and_checks_its_files(api, ddb, pushed):
    daemon = pushed["127.0.0.11"]
    resp = post_form(api, f"{HELLO}/{INCR}/actions/recover", [("files", "x.log")])
    op = resp.json_body
    assert op["phase"] == "Restoring" and op["snapshot"] is None
    assert "cannot be undone" in op["undo"]
    increment_job = next(j["id"] for j in daemon.jobs if j["args"]["volume"] == "/var/log/hello")
    job = {**next(j for j in daemon.jobs if j["id"] == increment_job), "type": "once"}
    rec = recover_record(op["restore"]["rid"], "success", backup=INCR)
    notify(api, rec)
    assert operation(api, op["operation"])["phase"] == "Verifying"
    assert daemon.runs[-1][1] == increment_job
    daemon.files[INCR] = [{"name": "x.log", "size": 5, "mod_time": "2026-11-24T23:45:19Z",
                           "dir": False}]  # the fresh backup of the target: 5 bytes, not 6
    notify(api, run_record(job, daemon.runs[-1][0], "success", result={"file": INCR, "size": 0}))
    failed = operation(api, op["operation"])
    assert failed["phase"] == "Failed"
    assert "x.log is 5 bytes after the restore, the backup has 6" in failed["error"]


def test_a_restore_the_daemon_cannot_start_is_retried_then_a_stuck_one_fails(settings, ddb, pushed):
    clock = Clock(datetime.now(UTC))
    deps = Deps(settings, clock, ddb)
    op = operations.restore(deps, "hello", "web", FULL, [])
    daemon = pushed["127.0.0.11"]
    daemon.fail_status = 503  # the restore cannot start when the snapshot is done
    operations.advance(deps, _stored(deps, snapshot_done(op["snapshot"]["rid"])))
    assert deps.operations.get("hello", op["operation"]).phase == "Snapshotted"
    daemon.fail_status = None
    assert operations.tick(deps) == 1  # the schedule starts it
    assert deps.operations.get("hello", op["operation"]).phase == "Restoring"
    clock.now += timedelta(minutes=settings.operation_phase_minutes + 1)
    assert operations.tick(deps) == 1
    stuck = deps.operations.get("hello", op["operation"])
    assert stuck.phase == "Failed" and "stuck in Restoring" in stuck.error
    assert deps.operations.open_ones() == []


def test_a_restore_request_that_timed_out_is_never_asked_again(settings, ddb, pushed):
    clock = Clock(datetime.now(UTC))
    deps = Deps(settings, clock, ddb)
    op = operations.restore(deps, "hello", "web", FULL, [])
    daemon = pushed["127.0.0.11"]
    daemon.delay = 1.5  # above the 1 s node timeout: the request went out, no answer came
    operations.advance(deps, _stored(deps, snapshot_done(op["snapshot"]["rid"])))
    daemon.delay = 0
    failed = deps.operations.get("hello", op["operation"])
    assert failed.phase == "Failed" and "may be restoring now" in failed.error
    assert SNAPSHOT_FILE in failed.error
    clock.now += timedelta(minutes=10)
    operations.tick(deps)
    assert len(daemon.received(RECOVERS)) == 1


def test_an_unknown_operation_is_404(api, ddb):
    resp = api.http.get("/api/v2/app/hello/operations/nosuch")
    assert resp.status_code == 404 and json.loads(resp.body)["code"] == "unknown_operation"


def _stored(deps, record):
    deps.records.put(record)
    return record


def test_runs_that_finish_before_their_request_returns_still_complete_the_restore(settings, ddb, pushed):
    """A fast daemon posts a run's result before the controller has stored the run's id with the
    operation (another Lambda serves that notify): the operation still moves on."""
    deps = Deps(settings, table=ddb)
    other = Deps(settings, table=ddb)  # the function instance that serves the daemon's posts
    daemon = pushed["127.0.0.11"]

    def snapshot_done_at_once(job_, rid):
        notify_flow.notify(other, json.dumps(snapshot_done(rid)).encode())

    def restore_done_at_once(name, form):
        rid = f"{int(time.time())}{uuid.uuid4().hex}"
        notify_flow.notify(other, json.dumps(recover_record(rid, "success")).encode())
        return rid  # answered after the record was posted

    daemon.execute = snapshot_done_at_once
    daemon.recover = restore_done_at_once
    op = operations.restore(deps, "hello", "web", FULL, [], verify=False)
    assert deps.operations.get("hello", op["operation"]).phase == "Completed"


def test_the_schedule_moves_on_an_operation_whose_run_finished_unseen(settings, ddb, pushed):
    deps = Deps(settings, table=ddb)
    op = operations.restore(deps, "hello", "web", FULL, [])
    deps.records.put(snapshot_done(op["snapshot"]["rid"]))
    assert deps.operations.get("hello", op["operation"]).phase == "Snapshotting"
    assert operations.tick(deps) == 1
    assert deps.operations.get("hello", op["operation"]).phase == "Restoring"
    assert len(pushed["127.0.0.11"].received(RECOVERS)) == 1


def test_a_restore_is_started_once_when_notify_and_the_schedule_meet(settings, ddb, pushed):
    deps, other = Deps(settings, table=ddb), Deps(settings, table=ddb)
    daemon = pushed["127.0.0.11"]
    op = operations.restore(deps, "hello", "web", FULL, [])
    starts = []

    def recover(name, form):
        starts.append(name)
        operations.tick(other)  # the schedule, meanwhile
        return f"{int(time.time())}{uuid.uuid4().hex}"

    daemon.recover = recover
    operations.advance(deps, _stored(deps, snapshot_done(op["snapshot"]["rid"])))
    assert starts == [FULL]
    assert deps.operations.get("hello", op["operation"]).phase == "Restoring"


def test_a_restore_that_can_never_start_fails_as_stuck_despite_the_retries(settings, ddb, pushed):
    clock = Clock(datetime.now(UTC))
    deps = Deps(settings, clock, ddb)
    op = operations.restore(deps, "hello", "web", FULL, [])
    pushed["127.0.0.11"].fail_status = 503  # for good
    operations.advance(deps, _stored(deps, snapshot_done(op["snapshot"]["rid"])))
    half = timedelta(minutes=settings.operation_phase_minutes / 2 + 1)
    for _ in range(2):  # a retry each time, neither of which starts the stuck clock again
        clock.now += half
        operations.tick(deps)
    stuck = deps.operations.get("hello", op["operation"])
    assert stuck.phase == "Failed" and "stuck in Snapshotted" in stuck.error
    assert "nothing was restored" in stuck.error


def test_one_operations_outage_does_not_stop_the_others(settings, ddb, pushed, monkeypatch):
    deps = Deps(settings, table=ddb)
    ops = [operations.restore(deps, "hello", "web", FULL, [])]
    pushed["127.0.0.12"].add_backup("hello", "hello.web.web", 2, "/data", created=1795560000)
    ops.append(operations.restore(deps, "hello", "web", "hello-hello.web.web-2-data-1795560000.tar.gz", []))
    deps.records.put(snapshot_done(ops[0]["snapshot"]["rid"]))  # both done, neither seen by notify
    deps.records.put(_on_instance_2(ops[1], pushed))
    read = deps.operations.get

    def flaky(app, op_id):
        if op_id == ops[0]["operation"]:
            raise StoreUnavailable("DynamoDB did not answer a GetItem")
        return read(app, op_id)

    monkeypatch.setattr(deps.operations, "get", flaky)
    assert operations.tick(deps) == 1
    assert read("hello", ops[1]["operation"]).phase == "Restoring"
    assert read("hello", ops[0]["operation"]).phase == "Snapshotting"  # the next look retries


def _on_instance_2(op, daemons):
    """The success record of an instance-2 snapshot (its job as the daemon on 127.0.0.12 holds it)."""
    job = next(j for j in daemons["127.0.0.12"].jobs if j["id"] == op["snapshot"]["job"])
    return run_record({**job, "type": "once"}, op["snapshot"]["rid"], "success",
                      result={"file": "hello-hello.web.web-2-data-1795600000.tar.gz", "size": 99})


@pytest.mark.parametrize("damage", [
    lambda item: {**item, "op": "{not json"},
    lambda item: {**item, "op": json.dumps({**json.loads(item["op"]), "schema": 99})},
    lambda item: {**item, "op": json.dumps({**json.loads(item["op"]), "plan": {"app": 5}})},
])
def test_a_malformed_operation_fails_alone_and_the_reconcile_goes_on(api, ddb, pushed, logs, damage):
    """An item another version wrote, or a broken one: that operation fails (or, unreadable, is
    marked failed as it is); the valid one beside it moves on; the reconcile answers 200 with its
    summary and its metrics."""
    deps = Deps(get_settings(), table=ddb)
    broken = operations.restore(deps, "hello", "web", FULL, [])
    pushed["127.0.0.12"].add_backup("hello", "hello.web.web", 2, "/data", created=1795560000)
    valid = operations.restore(deps, "hello", "web", "hello-hello.web.web-2-data-1795560000.tar.gz", [])
    deps.records.put(_on_instance_2(valid, pushed))
    key = {"pk": "OP#hello", "sk": broken["operation"]}
    ddb.put_item(Item=damage(ddb.get_item(Key=key)["Item"]))
    resp = api.http.post("/api/v2/system/reconcile")
    assert resp.status_code == 200, resp.body
    assert resp.json_body["operations_moved"] == 2
    assert logs.events("reconcile")
    assert deps.operations.get("hello", valid["operation"]).phase == "Restoring"
    shown = operation(api, broken["operation"])
    assert shown["phase"] == "Failed" and shown["error"]
    assert deps.operations.open_ones() == [("hello", valid["operation"])]
    assert post_form(api, f"{HELLO}/{FULL}/actions/recover?snapshot=false").status_code == 200  # lock freed


def test_an_operation_written_by_the_previous_version_is_carried_on(api, ddb, pushed):
    """An operation item of before this version (no schema, ``restore_plan``, no
    ``restore_plan.created``) still moves on its records."""
    daemon = pushed["127.0.0.11"]
    rid = f"{int(time.time())}{uuid.uuid4().hex}"
    old = {"id": "20261201000000-abcdef12", "app": "hello", "proc": "hello.web.web", "kind": "recover",
           "phase": "Snapshotting", "created": "2026-12-01T00:00:00.000000Z",
           "updated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
           "restore_plan": {"app": "hello", "proc": "hello.web.web", "kind": "recover", "name": FULL,
                            "increment": False, "files": [], "namespace": "127.0.0.11",
                            "node": "127.0.0.11", "instance": 1, "volume": "/data", "dest_dir": "",
                            "source_dir": TARGET},
           "snapshot": {"job": HELLO_DATA, "rid": rid}, "restore": None, "error": ""}
    ddb.put_item(Item={"pk": "OP#hello", "sk": old["id"], "op": json.dumps(old),
                       "phase": "Snapshotting"})
    ddb.put_item(Item={"pk": f"OPRID#{rid}", "sk": "OP", "app": "hello", "op_id": old["id"]})
    ddb.put_item(Item={"pk": "OPOPEN", "sk": f"hello#{old['id']}"})
    notify(api, snapshot_done(rid))
    moved = operation(api, old["id"])
    assert moved["phase"] == "Restoring" and len(daemon.received(RECOVERS)) == 1


def test_the_undo_is_kept_as_long_as_the_operation_can_be_undone(api, ddb, pushed, monkeypatch):
    """hello /data expires in 7d; its snapshot was made 2026-11-25. With UNDO_DAYS 30 the dir is
    held out of the expire job until 2026-12-25, and the answer says so; past that, it is not."""
    monkeypatch.setenv("UNDO_DAYS", "30")
    restart()
    op = recover(api)
    pushed["127.0.0.11"].add_backup("hello", "hello.web.web", 1, "/data", created=1795600000)
    notify(api, snapshot_done(op["snapshot"]["rid"]))  # the snapshot, on the node and recorded
    kept = operation(api, op["operation"])
    assert kept["snapshot"]["kept_until"] == "2026-12-25T09:46:40.000000Z"
    assert kept["snapshot"]["kept"] == ("held past /data's expire 7d until UNDO_DAYS (30) after "
                                        "it was made")
    assert "(kept until 2026-12-25 09:46 UTC: held past" in kept["undo"]

    def held() -> dict:
        plan = api.http.get("/api/v2/system/reconcile/plan").json_body
        return {(h["node"], h["dir"]): h["reason"] for h in plan["expiry_held"]}

    reason = held()[("127.0.0.11", TARGET)]
    assert f"the pre-restore snapshot {SNAPSHOT_FILE} (the undo of operation {op['operation']})" \
        in reason and "before 2026-12-25T09:46:40Z" in reason
    assert api.http.post("/api/v2/system/reconcile").status_code == 200
    [expire] = [j for j in pushed["127.0.0.11"].jobs if j["action"] == "backup_expire"]
    assert TARGET not in expire["args"]["info"]  # the daemon's expire job leaves it alone
    monkeypatch.setenv("UNDO_DAYS", "7")  # the undo was kept until 2026-12-02: that has passed
    restart()
    assert ("127.0.0.11", TARGET) not in held(), held().get(("127.0.0.11", TARGET))
    assert operation(api, op["operation"])["snapshot"]["kept_until"] == \
        "2026-12-02T09:46:40.000000Z"
