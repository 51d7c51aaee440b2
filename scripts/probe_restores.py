#!/usr/bin/env python3
"""A restore probe: the attacks and faults on restores of issue 20, through HTTP only, against any
checkout (the same harness as ``scripts/probe.py``: moto's server, stand-ins, ``chalice local``).

    python scripts/probe_restores.py                     # this checkout
    python scripts/probe_restores.py --checkout ../old   # another one

It counts what a user would see: restores asked of the daemon for one volume under three
concurrent recovers, restores started after a snapshot that cannot undo anything, operations
moved by another app's record, the reconcile's answer with an odd operation item stored, false
successes (the daemon's copy step failing, a migrate into a volume of another name) reported
``Completed``, and pauses left on a daemon with no pause on record after a slow daemon. The suite
asserts each behaviour; this prints the figures, side by side for two checkouts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.probe import (  # noqa: E402
    FORM_TYPE,
    JSON_TYPE,
    TABLE,
    Cluster,
    Controller,
    controller_env,
    report,
    start_dynamodb,
)
from scripts.simcluster.cluster import SimCluster  # noqa: E402
from scripts.simcluster.server import free_port  # noqa: E402

HELLO = "/api/v2/app/hello/proc/web/backups"
FULL = "hello-hello.web.web-1-data-1795563919.tar.gz"
RECOVER_PATH = "/api/v1/backup/full/recover/file/"


def go_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def run_record(job: dict[str, Any], rid: str, state: str, result: Any = None,
               reason: str = "") -> dict[str, Any]:
    """What a daemon posts for run ``rid`` of ``job`` (now)."""
    now = go_time(datetime.now(UTC))
    return {**job, "type": "once", "rid": rid, "result": result, "state": state, "start": now,
            "end": now, "reason": reason}


def recover_record(app: str, backup: str, rid: str, state: str, namespace: str) -> dict[str, Any]:
    job = {"id": "", "spec": "", "action": "backup_recover", "sleep": False,
           "args": {"namespace": namespace, "backup": backup, "files": None, "destDir": "",
                    "app": app, "proc": f"{app}.web.web"}}
    return run_record(job, rid, state, reason="tar: broken" if state == "failed" else "")


class Table:
    """The probe's DynamoDB table, emptied between probes (an old controller never releases a
    target, a new one holds it while its operation is open)."""

    def __init__(self, endpoint: str) -> None:
        import boto3

        self.table = boto3.resource("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                                    aws_access_key_id="probe", aws_secret_access_key="probe"
                                    ).Table(TABLE)

    def wipe(self) -> None:
        items = self.table.scan(ProjectionExpression="pk, sk")["Items"]
        with self.table.batch_writer() as batch:
            for item in items:
                batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})


class Probe:
    def __init__(self, api: Controller, table: Table) -> None:
        self.api, self.table = api, table

    def post(self, path: str, body: str = "", headers: dict[str, str] | None = None
             ) -> requests.Response:
        return self.api.call("POST", path, body, headers or FORM_TYPE)

    def notify(self, record: dict[str, Any]) -> requests.Response:
        return self.api.call("POST", "/api/v2/system/notify", json.dumps(record), JSON_TYPE)

    def op(self, answer: dict[str, Any]) -> dict[str, Any]:
        return dict(self.api.call("GET", answer["url"]).json())

    def follow(self, answer: dict[str, Any], seconds: float = 60) -> dict[str, Any]:
        """The operation once it is done (the schedule's look run while it waits for one)."""
        deadline = time.monotonic() + seconds
        op = self.op(answer)
        while op.get("phase") not in ("Completed", "Failed") and time.monotonic() < deadline:
            if op.get("phase") in ("Verifying", "Snapshotted"):
                self.post("/api/v2/system/reconcile")
            time.sleep(0.5)
            op = self.op(answer)
        return op


# -- the probes on plain stand-ins (records posted by the probe) -----------------------------------

def concurrent_recovers(p: Probe, cluster: Cluster) -> dict[str, Any]:
    cluster.reset()
    p.table.wipe()
    p.post("/api/v2/system/reconcile")
    before = len(cluster.daemons["127.0.0.11"].received(RECOVER_PATH, "POST"))
    statuses: list[int] = []

    def recover() -> None:
        statuses.append(p.post(f"{HELLO}/{FULL}/actions/recover?snapshot=false").status_code)

    threads = [threading.Thread(target=recover) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    asked = len(cluster.daemons["127.0.0.11"].received(RECOVER_PATH, "POST")) - before
    return {"answers": ", ".join(map(str, sorted(statuses))),
            "restores asked of the daemon for one volume": asked}


def untrusted_snapshots(p: Probe, cluster: Cluster) -> dict[str, Any]:
    restored = 0
    for result in ({"file": "hello-hello.web.web-1-data-1796000000.tar.gz", "size": 0}, None):
        cluster.reset()
        p.table.wipe()
        p.post("/api/v2/system/reconcile")
        d11 = cluster.daemons["127.0.0.11"]
        before = len(d11.received(RECOVER_PATH, "POST"))
        answer = p.post(f"{HELLO}/{FULL}/actions/recover").json()
        job = next(j for j in d11.jobs if j["id"] == answer["snapshot"]["job"])
        p.notify(run_record(job, answer["snapshot"]["rid"], "success", result))
        restored += len(d11.received(RECOVER_PATH, "POST")) > before
    return {"restores started after an untrusted snapshot": f"{restored}/2"}


def foreign_record(p: Probe, cluster: Cluster) -> dict[str, Any]:
    cluster.reset()
    p.table.wipe()
    p.post("/api/v2/system/reconcile")
    answer = p.post(f"{HELLO}/{FULL}/actions/recover?snapshot=false").json()
    rid = answer["restore"]["rid"]
    forged = p.notify(recover_record("mysql", "mysql-mysql.worker.master-1-var-lib-mysql-1.tar.gz",
                                     rid, "success", "127.0.0.13"))
    moved = p.op(answer)["phase"]
    genuine = p.notify(recover_record("hello", FULL, rid, "failed", "127.0.0.11"))
    return {"forged record answered": forged.status_code,
            "operation after it": moved,
            "the daemon's genuine record answered": genuine.status_code,
            "operation after the genuine one": p.op(answer)["phase"]}


def odd_item(p: Probe, cluster: Cluster) -> dict[str, Any]:
    """A valid operation waiting for its restore to start, beside an operation item another
    version wrote without ``restore_plan.created``: does the schedule's run still work?"""
    cluster.reset()
    p.table.wipe()
    p.post("/api/v2/system/reconcile")
    d11 = cluster.daemons["127.0.0.11"]
    answer = p.post(f"{HELLO}/{FULL}/actions/recover").json()
    job = next(j for j in d11.jobs if j["id"] == answer["snapshot"]["job"])
    d11.fail_status = 503  # the restore cannot start when the snapshot is done: Snapshotted
    p.notify(run_record(job, answer["snapshot"]["rid"], "success",
                        {"file": "hello-hello.web.web-1-data-1796000000.tar.gz", "size": 150}))
    d11.fail_status = None
    odd_id = "20261201000000-0dd0dd00"
    odd = {"id": odd_id, "app": "mysql", "proc": "mysql.worker.master", "kind": "recover",
           "phase": "Snapshotted", "created": "2026-12-01T00:00:00.000000Z",
           "updated": "2026-12-01T00:00:00.000000Z", "snapshot": {"job": "x", "rid": "y", "file": "z"},
           "restore": None, "error": "",
           "restore_plan": {"app": "mysql", "proc": "mysql.worker.master", "kind": "recover",
                            "name": "n.tar.gz", "increment": False, "files": [],
                            "namespace": "127.0.0.13", "node": "127.0.0.13", "instance": 1,
                            "volume": "/var/lib/mysql", "dest_dir": "", "source_dir": "/s"}}
    p.table.table.put_item(Item={"pk": "OP#mysql", "sk": odd_id, "op": json.dumps(odd),
                                 "phase": "Snapshotted"})
    p.table.table.put_item(Item={"pk": "OPOPEN", "sk": f"mysql#{odd_id}"})
    run = p.post("/api/v2/system/reconcile")
    return {"reconcile answer with the odd item stored": run.status_code,
            "the valid operation after it": p.op(answer)["phase"]}


# -- the probes on working stand-ins (real files, records posted by the daemons) -------------------

def false_successes(checkout: Path, env: dict[str, str], logs: Path) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="probe-restores-"))
    cluster = SimCluster(root, daemon_port=free_port(("127.0.0.11", "127.0.0.12", "127.0.0.13")),
                         job_seconds=0.2).start()
    port = free_port()
    api = Controller(checkout, {**env, "LAINLET_URL": cluster.lainlet.url,
                                "BACKUPD_PORT": str(next(iter(cluster.daemons.values())).port),
                                "ADVERTISE_URL": f"http://127.0.0.1:{port}"}, logs / "chalice-working.log",
                     port=port)
    p = Probe(api, Table(env["DYNAMODB_ENDPOINT_URL"]))
    out: dict[str, Any] = {}
    try:
        p.table.wipe()
        p.post("/api/v2/system/reconcile")
        d11 = cluster.daemons["127.0.0.11"]
        job = next(j["id"] for j in d11.jobs if j["args"].get("volume") == "/data")
        rid = p.post(f"/api/v2/app/hello/cron/jobs/{job}/actions/run").json()
        rid = rid if isinstance(rid, str) else rid["rid"]  # {"rid", "url"} since the run says where
        name = wait_for(lambda: _finished_file(p, rid))
        volume = root / "fs/data/lain/volumes/hello/hello.web.web/1/data/hello.txt"
        volume.write_text("changed " + os.urandom(4000).hex())
        time.sleep(2)  # backups are named by the second
        d11.copy_fails = True
        answer = p.post(f"{HELLO}/{name}/actions/recover").json()
        done = p.follow(answer)
        d11.copy_fails = False
        out["copy step failed: operation says"] = done.get("phase")
        out["  … and the volume was restored"] = "yes" if volume.read_text().startswith("hello") else "no"
        log_before = volume.parent.parent / "var/log/hello/app.log"
        text = log_before.read_text()
        time.sleep(2)
        resp = p.post(f"{HELLO}/{name}/actions/migrate?snapshot=false", "volume=/var/log/hello&to=1")
        renamed = p.follow(resp.json())["phase"] if resp.status_code == 200 else f"refused {resp.status_code}"
        out["/data migrated into /var/log/hello: operation says"] = renamed
        out["  … and /var/log/hello changed"] = "no" if log_before.read_text() == text else "yes"
    finally:
        api.stop()
        cluster.stop()
    return out


def wait_for(what: Callable[[], Any], seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.2)
    raise SystemExit("the probe timed out waiting for the simulated cluster")


def _finished_file(p: Probe, rid: str) -> str:
    resp = p.api.call("GET", f"/api/v2/app/hello/cron/records/{rid}")
    if resp.status_code != 200 or resp.json().get("state") != "success":
        return ""
    return str(resp.json()["result"]["file"])


def slow_pause(p: Probe, cluster: Cluster) -> dict[str, Any]:
    """``sleep`` to a daemon that applies it 1.6 s later, with a 1 s node timeout."""
    cluster.reset()
    p.table.wipe()
    p.post("/api/v2/system/reconcile")
    d11 = cluster.daemons["127.0.0.11"]
    job = next(j["id"] for j in d11.jobs if j["id"])
    d11.delay = 1.6
    answer = p.post(f"/api/v2/app/hello/cron/jobs/{job}/actions/sleep", "until=2h")
    time.sleep(1)
    d11.delay = 0
    status = p.api.call("GET", "/api/v2/app/hello/backups/status").json()
    on_record = any(i["job_id"] == job and i["status"] == "paused" for i in status.get("items", []))
    p.post("/api/v2/system/reconcile")
    status = p.api.call("GET", "/api/v2/app/hello/backups/status").json()
    after_run = any(i["job_id"] == job and i["status"] == "paused" for i in status.get("items", []))
    paused_on_daemon = job in d11.sleeping()
    return {"answer": answer.status_code,
            "paused on the daemon, no pause on record (after the next reconcile)":
                int(paused_on_daemon and not after_run),
            "pause shown right after the answer": "yes" if on_record else "no"}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the controller to probe")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    checkout = args.checkout.resolve()
    logs = Path(tempfile.mkdtemp(prefix="probe-restores-logs-"))
    moto, endpoint = start_dynamodb(checkout)
    cluster = Cluster()
    env = controller_env(cluster, endpoint)
    figures: dict[str, dict[str, Any]] = {}
    api = Controller(checkout, env, logs / "chalice.log")
    try:
        p = Probe(api, Table(endpoint))
        figures["3 concurrent recovers"] = concurrent_recovers(p, cluster)
        figures["an untrusted snapshot (0 bytes; no archive)"] = untrusted_snapshots(p, cluster)
        figures["another app's record with the restore's rid"] = foreign_record(p, cluster)
        figures["an odd operation item"] = odd_item(p, cluster)
        figures["a slow daemon (sleep)"] = slow_pause(p, cluster)
    finally:
        api.stop()
        cluster.stop()
    try:
        figures["false successes (working stand-ins)"] = false_successes(checkout, env, logs)
    finally:
        moto.stop()
    report(checkout, figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
