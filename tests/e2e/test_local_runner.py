"""End to end: the README's local runner (chalice local + simulated cluster + embedded DynamoDB)
as a subprocess, driven the way lain-cli drives the controller (plain requests, form bodies)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from scripts import local
from scripts.simcluster.server import free_port
from tests.e2e.conftest import Runner
from tests.reference import ROOT

HELLO = "/api/v2/app/hello/proc/web/backups"


def hello_job(runner: Runner, volume: str, instance: int) -> str:
    jobs = requests.get(runner.url("/api/v2/app/hello/cron/jobs"), timeout=10).json()
    return next(e["job"]["id"] for e in jobs
                if e["job"]["args"]["volume"] == volume and e["job"]["args"]["instanceNo"] == instance)


def run_job(runner: Runner, job_id: str) -> dict:
    """``lain backup run``: POST …/actions/run → a record id, whose record ends in success."""
    def ask() -> str:
        resp = requests.post(runner.url(f"/api/v2/app/hello/cron/jobs/{job_id}/actions/run"),
                             timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()["rid"]

    return runner.finished("hello", ask(), again=ask)


def test_jobs(runner):
    jobs = requests.get(runner.url("/api/v2/app/hello/cron/jobs"), timeout=10).json()
    assert len(jobs) == 4 and {e["job"]["args"]["volume"] for e in jobs} == {"/data", "/var/log/hello"}
    assert all("path" not in e["job"]["args"] for e in jobs)


WAITS_FOR = {"Snapshotting": "snapshot", "Restoring": "restore", "Verifying": "verify"}


def finished(runner: Runner, resp: requests.Response) -> dict:
    """Follow an operation (its url) until it is done. The runner's schedule is off (the tests
    drive it): while the operation waits for a look of the schedule (a verification deferred
    out of its snapshot's second, or a run that met the daemon's lock because the simulated
    cron's own run held the dir, asked again), the test runs the reconcile, as the minute's
    schedule would."""
    assert resp.status_code == 200, resp.text
    url = runner.url(resp.json()["url"])

    def done() -> dict | None:
        op = requests.get(url, timeout=5).json()
        run = op.get(WAITS_FOR.get(op["phase"], "")) or {}
        if op["phase"] == "Snapshotted" or (op["phase"] in WAITS_FOR and not run.get("rid")):
            requests.post(runner.url("/api/v2/system/reconcile"), timeout=30)
        return op if op["phase"] in ("Completed", "Failed") else None

    return runner.wait(done, every=0.5)


def completed(runner: Runner, url: str, **form: list[str]) -> dict:
    """POST ``url`` (a recover), follow the operation until it is done; it must have completed,
    verified. A restore that met the daemon's lock (the simulated cron's own run of the volume
    held it) fails with nothing restored and the operation never repeats it: asked again, as a
    user would, at most twice."""
    for _ in range(3):
        op = finished(runner, requests.post(runner.url(url), data=form or None, timeout=10))
        if "nothing was restored; ask again" not in (op.get("error") or ""):
            break
        time.sleep(1)
    assert op["phase"] == "Completed", op
    return op


def past_the_second_of(name: str) -> None:
    """Wait until the second that names the full backup ``name`` is over: a run of the same job
    that started in it (the simulated cron's, which looks 5 times a second) would archive into
    the same name, and with the volume damaged meanwhile, the backup would hold the damage (as
    backupd does: its names are by the second)."""
    second = int(name.removesuffix(".tar.gz").rpartition("-")[2])
    time.sleep(max(0.0, second + 1.5 - time.time()))


def test_run_get_recover_and_undo(runner):
    """lain backup recover, as an operation: the volume is snapshotted, then restored; restoring
    the snapshot undoes it."""
    record = run_job(runner, hello_job(runner, "/data", 1))
    name = record["result"]["file"]
    info = requests.get(runner.url(f"{HELLO}/{name}"), timeout=10)
    assert info.status_code == 200 and info.json()["instanceNo"] == 1
    data = runner.file("hello", "hello.web.web", 1, "/data", "hello.txt")
    damaged = "damaged " + os.urandom(8000).hex() + "\n"  # unlike the backup, in size too
    past_the_second_of(name)
    data.write_text(damaged)
    time.sleep(2)  # the snapshot is named by the second: not the same second as the backup
    op = completed(runner, f"{HELLO}/{name}/actions/recover")
    assert data.read_text() == "hello from instance 1\n"  # the backed-up content is back
    assert isinstance(op["verified"], dict), op  # and the target, archived again, proves it
    snapshot = runner.finished("hello", op["snapshot"]["rid"])["result"]["file"]
    assert op["snapshot"]["file"] == snapshot and snapshot != name
    restored = runner.record("hello", op["restore"]["rid"])
    assert restored["state"] == "success" and restored["action"] == "backup_recover"
    time.sleep(2)  # the verification's backup is named by the second too
    undo = completed(runner, f"{HELLO}/{snapshot}/actions/recover?snapshot=false")
    assert undo["snapshot"] is None and "cannot be undone" in undo["undo"]
    assert data.read_text() == damaged  # the undo: the volume as it was before the restore


def test_increment_list_open_and_recover(runner):
    run_job(runner, hello_job(runner, "/var/log/hello", 1))
    listing = requests.get(runner.url(f"{HELLO}?volume=/var/log/hello"), timeout=10).json()
    name = next(e["name"] for e in listing if e["instanceNo"] == 1)
    files = requests.get(runner.url(f"{HELLO}/{name}?open=true"), timeout=10).json()
    assert [f["name"] for f in files] == ["app.log"]
    log = runner.file("hello", "hello.web.web", 1, "/var/log/hello", "app.log")
    log.unlink()
    completed(runner, f"{HELLO}/{name}/actions/recover", files=["app.log"])
    assert log.read_text() == "started instance 1\n"


def test_migrate_across_nodes_is_refused_before_anything_runs(runner):
    """hello's instances run on two nodes; backupd cannot restore from another node's namespace
    (its run fails with a nil pointer dereference), so the controller says so up front."""
    name = run_job(runner, hello_job(runner, "/data", 1))["result"]["file"]
    before = runner.file("hello", "hello.web.web", 2, "/data", "hello.txt").read_text()
    resp = requests.post(runner.url(f"{HELLO}/{name}/actions/migrate"),
                         data={"volume": "/data", "to": 2}, timeout=10)
    assert resp.status_code == 409 and resp.json()["code"] == "cross_node_restore"
    assert "instances there: 1" in resp.json()["error"]
    assert runner.file("hello", "hello.web.web", 2, "/data", "hello.txt").read_text() == before


def test_delete(runner):
    name = run_job(runner, hello_job(runner, "/data", 2))["result"]["file"]
    resp = requests.post(runner.url(f"{HELLO}/actions/delete"), data={"files": [name]}, timeout=10)
    assert resp.status_code == 409 and resp.json()["code"] == "newest_good_backup", resp.text
    resp = requests.post(runner.url(f"{HELLO}/actions/delete?force=true"), data={"files": [name]},
                         timeout=10)
    assert resp.status_code == 204, resp.text
    names = {e["name"] for e in requests.get(runner.url(HELLO), timeout=10).json()}
    assert name not in names


def test_records_total(runner):
    """``lain backup records -n 2``: the newest two of the month's records (the simulated cron
    may add its own at any second, so they are compared with the whole month's list)."""
    rids = {run_job(runner, hello_job(runner, "/data", n))["rid"] for n in (1, 2)}

    def both() -> tuple[list[str], list[dict]] | None:
        newest = requests.get(runner.url("/api/v2/app/hello/cron/records?total=2"), timeout=10)
        assert newest.status_code == 200
        month = requests.get(runner.url("/api/v2/app/hello/cron/records?total=1000"), timeout=10)
        two = [r["rid"] for r in newest.json()]
        return (two, month.json()) if two == [r["rid"] for r in month.json()[:2]] else None

    _, month = runner.wait(both)  # a cron record landing between the two reads: read again
    assert rids <= {r["rid"] for r in month}
    starts = [r["start"] for r in month]
    assert starts == sorted(starts, reverse=True)


def test_the_notify_token_never_reaches_the_runners_output(runner):
    """The daemons post every record to …/notify?token=<NOTIFY_TOKEN>, and chalice local prints
    each request's query string: what the runner prints has the token redacted."""
    run_job(runner, hello_job(runner, "/data", 1))
    output = runner.output()
    assert "/api/v2/system/notify?token=*** HTTP/1.1" in output
    assert runner.notify_token not in output


def test_errors_are_readable(runner):
    resp = requests.get(runner.url("/api/v2/app/nosuch/proc/web/backups"), timeout=10)
    assert resp.status_code == 404 and "nosuch" in resp.json()["error"]
    resp = requests.post(runner.url(
        f"{HELLO}/mysql-mysql.worker.master-1-var-lib-mysql-1.tar.gz/actions/recover"), timeout=10)
    assert resp.status_code == 403 and "does not belong" in resp.json()["error"]


REAL = "http://10.106.0.9:9001"  # a real cluster's lainlet (or its relay): not this machine


@pytest.mark.parametrize("argv, problems", [
    ([], []),  # the simulated cluster lives on this machine
    (["--lainlet", REAL], ["--advertise http://<this host", "--host 0.0.0.0"]),
    (["--lainlet", REAL, "--host", "0.0.0.0"], ["--advertise http://<this host"]),
    (["--lainlet", REAL, "--host", "0.0.0.0", "--advertise", "http://127.0.0.1:8000"],
     ["--advertise http://<this host"]),
    (["--lainlet", REAL, "--host", "0.0.0.0", "--advertise", "http://0.0.0.0:8000"],
     ["--advertise http://<this host"]),
    (["--lainlet", REAL, "--advertise", "http://10.106.0.5:8000"], ["--host 0.0.0.0"]),
    (["--lainlet", REAL, "--host", "0.0.0.0", "--advertise", "http://10.106.0.5:8000"], []),
])
def test_the_runner_says_when_the_nodes_records_cannot_reach_it(argv, problems):
    """Against a real cluster the nodes post to --advertise on --host: a loopback address in
    either loses every record without a word, so the runner warns of each when it starts."""
    found = local.advertise_warnings(local.parser().parse_args(argv))
    assert len(found) == len(problems) and all(p in f for p, f in zip(problems, found, strict=True))
    if problems and "--advertise" in problems[0]:
        assert "10.106.0.9" in found[0] and "notify_url" in found[0]  # and ready says so too


def test_the_api_listens_on_host_and_is_called_on_loopback():
    args = local.parser().parse_args(["--host", "0.0.0.0", "--port", "8123"])
    command = local.chalice_local(args)
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] == "8123"
    assert local.api_url("0.0.0.0", 8123) == "http://127.0.0.1:8123"  # where the runner polls it
    assert local.api_url("::", 8123) == "http://[::1]:8123"
    assert local.api_url("10.106.0.5", 8123) == "http://10.106.0.5:8123"
    assert local.parser().parse_args([]).host == "127.0.0.1"


def run_local(argv: list[str], endpoint: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LAINLET_URL", "ADVERTISE_URL")}
    return subprocess.run([sys.executable, "scripts/local.py", *argv], cwd=ROOT, timeout=60,
                          env={**env, "DYNAMODB_ENDPOINT_URL": endpoint},
                          capture_output=True, text=True)


@pytest.mark.parametrize("endpoint, words", [
    ("http://127.0.0.1:{port}", "does not answer (EndpointConnectionError)"),  # nothing listens
    ("nothing", "is not a URL"),
])
def test_a_dynamodb_that_is_not_there_stops_the_runner_with_one_line(endpoint, words):
    endpoint = endpoint.format(port=free_port())
    done = run_local(["--port", str(free_port())], endpoint)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"local.py: DynamoDB at {endpoint} (DYNAMODB_ENDPOINT_URL) {words}")
    assert "unset DYNAMODB_ENDPOINT_URL" in done.stderr  # what to do


def test_the_warning_comes_first_when_the_runner_starts():
    """Before anything starts (here the DynamoDB it was given is not there, so it stops next)."""
    done = run_local(["--lainlet", REAL, "--port", str(free_port())],
                     f"http://127.0.0.1:{free_port()}")
    assert done.returncode != 0
    warning, _, last = done.stderr.rstrip("\n").rpartition("\n")
    assert "WARNING: the nodes' records will not reach this controller" in warning
    assert "--advertise" in warning and "--host 0.0.0.0" in warning
    assert last.startswith("local.py: DynamoDB at") and "Traceback" not in done.stderr


def test_a_newcomer_sees_a_verified_restore_drill(runner):
    """The runner's nodes have their drill area: once a volume has a good backup, the schedule
    drills it (the test runs the schedule, as the minute would) and the status says verified."""
    run_job(runner, hello_job(runner, "/data", 2))  # instance 2 on 127.0.0.12: a node of its own

    def drilled() -> dict | None:
        requests.post(runner.url("/api/v2/system/reconcile"), timeout=30)
        ops = requests.get(runner.url("/api/v2/app/hello/operations"), timeout=10).json()
        done = [o for o in ops if o["kind"] == "drill" and o["instance"] == 2
                and o["volume"] == "/data" and o["phase"] in ("Completed", "Failed")]
        return done[0] if done else None

    op = runner.wait(drilled, seconds=60, every=1.0)
    assert op["drill"]["outcome"] == "verified", op
    assert op["target_dir"] == "/data/lain/drills/data" and op["node"] == "127.0.0.12"
    status = requests.get(runner.url("/api/v2/app/hello/backups/status"), timeout=10).json()
    [item] = [i for i in status["items"] if i["volume"] == "/data" and i["instance"] == 2]
    assert item["verification"]["state"] == "verified"
    setup = requests.get(runner.url("/api/v2/system/drills/setup"), timeout=10).json()
    assert setup["root"] == "/data/lain/drills" and "127.0.0.12" in setup["nodes"]


def test_an_increment_backup_is_drilled_on_a_sample_of_its_files(runner):
    run_job(runner, hello_job(runner, "/var/log/hello", 1))
    name = "hello-hello.web.web-1-var-log-hello"
    resp = requests.post(runner.url(f"{HELLO}/{name}/actions/drill"), timeout=10)
    assert resp.status_code == 200, resp.text
    url = runner.url(resp.json()["url"])

    def done() -> dict | None:
        requests.post(runner.url("/api/v2/system/reconcile"), timeout=30)
        op = requests.get(url, timeout=5).json()
        return op if op["phase"] in ("Completed", "Failed") else None

    op = runner.wait(done, seconds=60, every=1.0)
    assert op["drill"]["outcome"] == "verified", op
    assert op["files"] == ["app.log"] and op["verified"] == {"files_checked": 1}
    assert op["target_dir"] == "/data/lain/drills/hello"
