"""Restores as operations, moved on by the daemons' records through notify: the snapshot, then the
restore, then Completed or Failed; a controller restarted between phases carries on."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import deps as deps_module
from chalicelib.deps import Deps
from chalicelib.errors import StoreUnavailable
from chalicelib.settings import get_settings
from chalicelib.usecases import operations, records
from tests import reference
from tests.component.apiclient import post_form
from tests.component.test_backup_status import Clock

HELLO = "/api/v2/app/hello/proc/web/backups"
FULL = "hello-hello.web.web-1-data-1795563919.tar.gz"
HELLO_DATA = "7f00000bb19d69edd273f3535f5cd42e6fcbd556"


def notify(api, record):
    resp = api.http.post("/api/v2/system/notify", body=json.dumps(record),
                         headers={"Content-Type": "application/json"})
    assert resp.status_code == 200, resp.body
    return resp


def run_record(job, rid, state, **extra):
    """The record a daemon posts for a run it gave the rid ``rid``."""
    start = datetime.fromtimestamp(int(rid[:10]), UTC)
    return {**reference.record_of(job, state, start, **extra), "rid": rid}


def recover_record(rid, state, reason=""):
    job = {"id": "", "spec": "", "action": "backup_recover", "type": "once", "sleep": False,
           "args": {"namespace": "127.0.0.11", "backup": FULL, "files": None, "destDir": "",
                    "app": "hello", "proc": "hello.web.web"}}
    return run_record(job, rid, state, reason=reason)


def restart():
    """What a restart leaves: nothing in memory (every cache and the dependencies rebuilt)."""
    get_settings.cache_clear()
    deps_module._deps_for.cache_clear()


def operation(api, op_id):
    return api.http.get(f"/api/v2/app/hello/operations/{op_id}").json_body


def test_a_restore_followed_from_request_to_completed_across_a_restart(api, ddb, pushed):
    daemon = pushed["127.0.0.11"]
    op = post_form(api, f"{HELLO}/{FULL}/actions/recover").json_body
    snapshot_rid = op["snapshot"]["rid"]
    restart()
    job = {**reference.job(HELLO_DATA), "type": "once"}
    notify(api, run_record(job, snapshot_rid, "running"))
    assert operation(api, op["operation"])["phase"] == "Snapshotting"
    notify(api, run_record(job, snapshot_rid, "success",
                           result={"file": "hello-hello.web.web-1-data-1795600000.tar.gz", "size": 99}))
    restoring = operation(api, op["operation"])
    assert restoring["phase"] == "Restoring"
    assert restoring["snapshot"]["file"] == "hello-hello.web.web-1-data-1795600000.tar.gz"
    [call] = daemon.received("/api/v1/backup/full/recover/file/")
    assert call.path.endswith(FULL)
    restart()
    notify(api, run_record(job, snapshot_rid, "success",  # the same post again: moves nothing
                           result={"file": "hello-hello.web.web-1-data-1795600000.tar.gz", "size": 99}))
    assert len(daemon.received("/api/v1/backup/full/recover/file/")) == 1
    notify(api, recover_record(restoring["restore"]["rid"], "success"))
    done = operation(api, op["operation"])
    assert done["phase"] == "Completed" and done["error"] == ""
    assert [o["operation"] for o in api.http.get("/api/v2/app/hello/operations").json_body] == \
        [op["operation"]]


@pytest.mark.parametrize("fail", ["snapshot", "restore"])
def test_a_failed_run_fails_the_operation_with_its_reason(api, ddb, pushed, fail):
    daemon = pushed["127.0.0.11"]
    op = post_form(api, f"{HELLO}/{FULL}/actions/recover").json_body
    job = {**reference.job(HELLO_DATA), "type": "once"}
    if fail == "snapshot":
        notify(api, run_record(job, op["snapshot"]["rid"], "failed", reason="disk full"))
        failed = operation(api, op["operation"])
        assert failed["phase"] == "Failed" and "snapshot failed: disk full" in failed["error"]
        assert "nothing was restored" in failed["error"]
        assert not daemon.received("/api/v1/backup/full/recover")
        return
    notify(api, run_record(job, op["snapshot"]["rid"], "success", result={"file": "f", "size": 9}))
    rid = operation(api, op["operation"])["restore"]["rid"]
    notify(api, recover_record(rid, "failed", reason="tar: broken"))
    failed = operation(api, op["operation"])
    assert failed["phase"] == "Failed" and "restore failed: tar: broken" in failed["error"]


def test_a_restore_the_daemon_cannot_start_is_retried_then_a_stuck_one_fails(settings, ddb, pushed):
    clock = Clock(datetime.now(UTC))
    deps = Deps(settings, clock, ddb)
    plan = operations.plan_restore(deps, "hello", "web", FULL, [])
    op = operations.start(deps, plan)
    daemon = pushed["127.0.0.11"]
    daemon.fail_status = 503  # the restore cannot start when the snapshot is done
    job = {**reference.job(HELLO_DATA), "type": "once"}
    operations.advance(deps, run_record(job, op["snapshot"]["rid"], "success",
                                        result={"file": "f", "size": 9}))
    assert deps.operations.get("hello", op["operation"])["phase"] == "Snapshotted"
    daemon.fail_status = None
    assert operations.tick(deps) == 1  # the schedule starts it
    assert deps.operations.get("hello", op["operation"])["phase"] == "Restoring"
    clock.now += timedelta(minutes=settings.operation_phase_minutes + 1)
    assert operations.tick(deps) == 1
    stuck = deps.operations.get("hello", op["operation"])
    assert stuck["phase"] == "Failed" and "stuck in Restoring" in stuck["error"]
    assert deps.operations.open_ones() == []


def test_an_unknown_operation_is_404(api, ddb):
    resp = api.http.get("/api/v2/app/hello/operations/nosuch")
    assert resp.status_code == 404 and json.loads(resp.body)["code"] == "unknown_operation"


def test_runs_that_finish_before_their_request_returns_still_complete_the_restore(settings, ddb, pushed):
    """A fast daemon posts a run's result before the controller has stored the run's id with the
    operation (another Lambda serves that notify): the operation still moves on, to Completed."""
    deps = Deps(settings, table=ddb)
    other = Deps(settings, table=ddb)  # the function instance that serves the daemon's posts
    daemon = pushed["127.0.0.11"]
    job = {**reference.job(HELLO_DATA), "type": "once"}

    def snapshot_done_at_once(job_, rid):
        record = run_record(job, rid, "success", result={"file": "f", "size": 9})
        records.notify(other, json.dumps(record).encode(), "")

    def restore_done_at_once(name, form):
        rid = f"{int(time.time())}{uuid.uuid4().hex}"
        records.notify(other, json.dumps(recover_record(rid, "success")).encode(), "")
        return rid  # answered after the record was posted

    daemon.execute = snapshot_done_at_once
    daemon.recover = restore_done_at_once
    op = operations.start(deps, operations.plan_restore(deps, "hello", "web", FULL, []))
    assert deps.operations.get("hello", op["operation"])["phase"] == "Completed"


def test_the_schedule_moves_on_an_operation_whose_run_finished_unseen(settings, ddb, pushed):
    """The snapshot's record is stored, but nothing moved the operation (its notify failed to):
    the schedule's next look starts the restore."""
    deps = Deps(settings, table=ddb)
    op = operations.start(deps, operations.plan_restore(deps, "hello", "web", FULL, []))
    job = {**reference.job(HELLO_DATA), "type": "once"}
    deps.records.put(run_record(job, op["snapshot"]["rid"], "success", result={"file": "f", "size": 9}))
    assert deps.operations.get("hello", op["operation"])["phase"] == "Snapshotting"
    assert operations.tick(deps) == 1
    assert deps.operations.get("hello", op["operation"])["phase"] == "Restoring"
    assert len(pushed["127.0.0.11"].received("/api/v1/backup/full/recover/file/")) == 1


def test_a_restore_is_started_once_when_notify_and_the_schedule_meet(settings, ddb, pushed):
    """The schedule looks at the operation while the notify that finished its snapshot is still
    starting the restore: one restore reaches the daemon, not two."""
    deps, other = Deps(settings, table=ddb), Deps(settings, table=ddb)
    daemon = pushed["127.0.0.11"]
    op = operations.start(deps, operations.plan_restore(deps, "hello", "web", FULL, []))
    starts = []

    def recover(name, form):
        starts.append(name)
        operations.tick(other)  # the schedule, meanwhile
        return f"{int(time.time())}{uuid.uuid4().hex}"

    daemon.recover = recover
    job = {**reference.job(HELLO_DATA), "type": "once"}
    operations.advance(deps, run_record(job, op["snapshot"]["rid"], "success",
                                        result={"file": "f", "size": 9}))
    assert starts == [FULL]
    assert deps.operations.get("hello", op["operation"])["phase"] == "Restoring"


def test_a_restore_that_can_never_start_fails_as_stuck_despite_the_retries(settings, ddb, pushed):
    clock = Clock(datetime.now(UTC))
    deps = Deps(settings, clock, ddb)
    op = operations.start(deps, operations.plan_restore(deps, "hello", "web", FULL, []))
    pushed["127.0.0.11"].fail_status = 503  # for good
    job = {**reference.job(HELLO_DATA), "type": "once"}
    operations.advance(deps, run_record(job, op["snapshot"]["rid"], "success",
                                        result={"file": "f", "size": 9}))
    half = timedelta(minutes=settings.operation_phase_minutes / 2 + 1)
    for _ in range(2):  # a retry each time, neither of which starts the stuck clock again
        clock.now += half
        operations.tick(deps)
    stuck = deps.operations.get("hello", op["operation"])
    assert stuck["phase"] == "Failed" and "stuck in Snapshotted" in stuck["error"]


def test_one_operations_trouble_does_not_stop_the_others(settings, ddb, pushed, monkeypatch):
    deps = Deps(settings, table=ddb)
    job = {**reference.job(HELLO_DATA), "type": "once"}
    ops = [operations.start(deps, operations.plan_restore(deps, "hello", "web", FULL, []))
           for _ in range(2)]
    for op in ops:  # both snapshots done, neither seen by notify
        deps.records.put(run_record(job, op["snapshot"]["rid"], "success", result={"file": "f", "size": 9}))
    read = deps.operations.get

    def flaky(app, op_id):
        if op_id == ops[0]["operation"]:
            raise StoreUnavailable("DynamoDB did not answer a GetItem")
        return read(app, op_id)

    monkeypatch.setattr(deps.operations, "get", flaky)
    assert operations.tick(deps) == 1
    assert read("hello", ops[1]["operation"])["phase"] == "Restoring"
    assert read("hello", ops[0]["operation"])["phase"] == "Snapshotting"  # the next look retries
