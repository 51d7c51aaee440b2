#!/usr/bin/env python3
"""A hardening probe: the attacks and faults of issue 11, through HTTP only, against any checkout.

    python scripts/probe.py                       # this checkout
    python scripts/probe.py --checkout ../old     # another one (its own app.py and chalicelib/)

It starts moto's DynamoDB server, a lainlet stand-in serving the reference spec and three daemon
stand-ins on 127.0.0.11-13, then ``chalice local`` in the checkout (a subprocess, so any version of
the controller can be probed the same way), and counts what a user or an operator would see:
5xx answers to bad input, records taken over by forged posts, nodes wiped by a partial lainlet
answer, seconds to an answer with DynamoDB down. It prints one table (and ``--json`` the figures).
The suite asserts each behaviour; this gives the figures, side by side for two checkouts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.local import chalice_command  # noqa: E402
from scripts.simcluster.backupd import BackupdStandIn  # noqa: E402
from scripts.simcluster.lainlet import LainletStandIn  # noqa: E402
from scripts.simcluster.server import free_port  # noqa: E402
from tests import reference  # noqa: E402

TABLE = "backupctl-local"
NODES = ("127.0.0.11", "127.0.0.12", "127.0.0.13")
HELLO = "/api/v2/app/hello/proc/web/backups"
FULL = "hello-hello.web.web-1-data-1795563919.tar.gz"
SIBLING = "hello-hello.web.web-2-1-data-1795563919.tar.gz"  # proc hello.web.web-2's, same app
BIG, DEEP = "9" * 5000, "[" * 1500 + "]" * 1500
NOT_TIMES: list[Any] = [5, None, [], {"t": 1}, "yesterday"]  # a notify's start that is no time
JSON_TYPE = {"Content-Type": "application/json"}
FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}
AWS = {"AWS_ACCESS_KEY_ID": "probe", "AWS_SECRET_ACCESS_KEY": "probe", "AWS_DEFAULT_REGION": "us-east-1"}
CREATE_TABLE = """
import boto3, sys
try:
    from chalicelib.edges.table import create_table
except ImportError:
    from chalicelib.schema import create_table
create_table(boto3.client("dynamodb", endpoint_url=sys.argv[1]), sys.argv[2])
"""


class Cluster:
    """The stand-ins: lainlet with the reference spec, three daemons with the reference backups."""

    def __init__(self) -> None:
        self.lainlet = LainletStandIn(reference.backupspec()).start()
        self.port = free_port(NODES)
        self.daemons = {ip: BackupdStandIn(ip, self.port).start() for ip in NODES}
        self.reset()

    def reset(self) -> None:
        """Back to the reference spec and backups, every daemon answering and empty of jobs."""
        self.lainlet.spec, self.lainlet.raw_body = reference.backupspec(), None
        for d in self.daemons.values():
            d.restart()
            d.backups, d.files, d.garbage = [], {}, None
        d11 = self.daemons["127.0.0.11"]
        d11.add_backup("hello", "hello.web.web", 1, "/data")
        d11.add_backup("hello", "hello.web.web-2", 1, "/data")  # not the proc's: must survive
        d11.add_backup("hello", "hello.web.web", 1, "/var/log/hello", "increment", files=["x.log"])
        self.daemons["127.0.0.13"].add_backup("mysql", "mysql.worker.master", 1, "/var/lib/mysql")

    def backup_jobs(self) -> dict[str, int]:
        return {ip: sum(1 for j in d.jobs if j["id"]) for ip, d in self.daemons.items()}

    def stop(self) -> None:
        self.lainlet.stop()
        for d in self.daemons.values():
            d.stop()


class Controller:
    """``chalice local`` of ``checkout`` as a subprocess, with the given environment."""

    def __init__(self, checkout: Path, env: dict[str, str], log: Path, port: int = 0) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [chalice_command(), "local", "--stage", "local", "--port", str(self.port),
             "--no-autoreload"], cwd=checkout, env={**os.environ, **env}, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                requests.get(self.base + "/api/v2/app/x/cron/jobs", timeout=2)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise SystemExit(f"chalice local did not start; see {log}")

    def call(self, method: str, path: str, body: str | bytes = b"",
             headers: dict[str, str] | None = None, timeout: float = 120) -> requests.Response:
        return requests.request(method, self.base + path, data=body, headers=headers or {},
                                timeout=timeout)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def error_shaped(resp: requests.Response) -> bool:
    try:
        body = resp.json()
    except ValueError:
        return False
    return isinstance(body, dict) and bool(body.get("error")) and bool(body.get("code"))


def record(state: str, start: datetime, **fields: Any) -> dict[str, Any]:
    """A record of mysql's backup job (as the captured posts carry it), as its daemon would post it."""
    captured = reference.notify_samples()[0][1]
    job = {k: captured[k] for k in ("id", "spec", "action", "args", "type", "sleep")}
    return reference.record_of(job, state, start, **fields)


# -- the probes ---------------------------------------------------------------------------------

def bad_input(api: Controller) -> dict[str, Any]:
    """The six causes of 500s the issue found, and more of each kind."""
    sample = reference.notify_samples()[0][1]
    now = datetime.now(UTC)
    cases: list[tuple[str, str, str, dict[str, str]]] = [
        *[("GET", f"/api/v2/app/hello/cron/records?{q}={BIG}", "", {}) for q in ("total", "month", "year")],
        ("GET", f"/api/v2/system/reconcile/history?total={BIG}", "", {}),
        ("POST", f"{HELLO}/{FULL}/actions/migrate", f"volume=/data&to={BIG}", FORM_TYPE),
        ("POST", f"{HELLO}/{FULL}/actions/migrate", json.dumps({"volume": "/data", "to": BIG}), JSON_TYPE),
        *[("POST", path, '{"files":' + DEEP + "}", JSON_TYPE)
          for path in (f"{HELLO}/actions/delete", f"{HELLO}/{FULL}/actions/recover")],
        ("POST", "/api/v2/system/notify", DEEP, JSON_TYPE),
        *[("POST", path, '{"files": ["\\ud800"]}', JSON_TYPE)
          for path in (f"{HELLO}/actions/delete", f"{HELLO}/{FULL}/actions/recover")],
        ("POST", f"{HELLO}/actions/delete", "files=%ff%fe", FORM_TYPE),
        *[("POST", "/api/v2/system/notify", json.dumps({**sample, "start": start}), JSON_TYPE)
          for start in NOT_TIMES],
        ("POST", "/api/v2/system/notify", json.dumps(record("failed", now, reason="r" * 500_000)),
         JSON_TYPE),
        ("POST", "/api/v2/system/notify", json.dumps({**sample, "rid": "1" * 3000}), JSON_TYPE),
        ("POST", f"{HELLO}/actions/delete", "files=x", {"Content-Type": "text/plain"}),
        ("DELETE", HELLO, "", {}),
        ("GET", f"{HELLO}?volume=%00", "", {}),
        ("GET", f"{HELLO}?volume=" + "v" * 5000, "", {}),
        ("GET", "/api/v2/app/" + "a" * 300 + "/cron/jobs", "", {}),
    ]
    answers = [api.call(m, p, b, h) for m, p, b, h in cases]
    return {"requests": len(answers),
            "5xx": sum(r.status_code >= 500 for r in answers),
            "4xx without {error, code}": sum(400 <= r.status_code < 500 and not error_shaped(r)
                                             for r in answers)}


def forged_records(api: Controller, cluster: Cluster) -> dict[str, Any]:
    """Forged and broken notify posts for mysql's job: what sticks."""
    api.call("POST", "/api/v2/system/reconcile")
    now = datetime.now(UTC).replace(microsecond=0)
    post = lambda r: api.call("POST", "/api/v2/system/notify", json.dumps(r), JSON_TYPE)  # noqa: E731
    # a finished run of mysql, then the same rid claimed by hello
    done = record("success", now - timedelta(minutes=5), result={"file": "f", "size": 100})
    post(record("running", now - timedelta(minutes=5)))
    post(done)
    post({**done, "args": {**done["args"], "app": "hello"}})
    mysql_kept = api.call("GET", f"/api/v2/app/mysql/cron/records/{done['rid']}").status_code == 200
    hello_got = api.call("GET", f"/api/v2/app/hello/cron/records/{done['rid']}").status_code == 200
    # a failure's reason rewritten
    failed = record("failed", now - timedelta(minutes=2), reason="disk full", salt="f")
    post(failed)
    post({**failed, "reason": "all good"})
    stored = api.call("GET", f"/api/v2/app/mysql/cron/records/{failed['rid']}")
    rewritten = stored.status_code == 200 and stored.json().get("reason") != "disk full"
    # a success from the far future, then a success whose end is a number
    post(record("success", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), result={"file": "f", "size": 9},
                salt="future"))
    post({**record("success", now - timedelta(minutes=1), result={"file": "f", "size": 9}, salt="n"),
          "end": 123})
    status = api.call("GET", "/api/v2/app/mysql/backups/status")
    items = status.json().get("items", []) if status.status_code == 200 else []
    system = api.call("GET", "/api/v2/system/backups/status")
    return {"records taken over": int(hello_got or not mysql_kept),
            "failure reasons rewritten": int(rewritten),
            "mysql status after its failure": ", ".join(i["status"] for i in items) or "-",
            "status routes 5xx": int(status.status_code >= 500) + int(system.status_code >= 500)}


def poisoned_spec(api: Controller, cluster: Cluster) -> dict[str, Any]:
    """One app with absurd items; does everyone else still get their jobs?"""
    cluster.reset()
    node = {"Id": "e1", "Ip": "x", "NodeIp": "127.0.0.12", "NodeName": "n"}
    items = [{"procname": "evil.web.web", "volume": f"/{n}", "schedule": s, "expire": e}
             for n, (s, e) in enumerate([("0 3 * * *", "1000000000d"), ("² * * * *", "1d"),
                                         ("@every " + "9" * 30 + "s", "1d"),
                                         ("0 3 * * *", "9" * 5000 + "d")])]
    cluster.lainlet.spec["evil.web.web"] = [{"Annotation": json.dumps({"backup": items}),
                                             "InstanceNo": 1, "Containers": [node]}]
    cluster.lainlet.spec["deep.web.web"] = [{"Annotation": "[" * 100_000 + "]" * 100_000,
                                             "InstanceNo": 1, "Containers": [node]}]
    run = api.call("POST", "/api/v2/system/reconcile")
    routes = ["/api/v2/system/cron/jobs", "/api/v2/system/problems", "/api/v2/system/backups/status",
              "/api/v2/system/reconcile/plan", "/api/v2/system/reconcile/history"]
    history = api.call("GET", "/api/v2/system/reconcile/history")
    kept = history.status_code == 200 and bool(history.json())
    return {"reconcile status": run.status_code,
            "nodes with backup jobs after it": sum(1 for n in cluster.backup_jobs().values() if n),
            "system routes 5xx": sum(api.call("GET", r).status_code >= 500 for r in routes),
            "run in the history": "yes" if kept else "no"}


def partial_answer(api: Controller, cluster: Cluster) -> dict[str, Any]:
    """lainlet forgets app hello for one run: how many nodes lose every backup job?"""
    cluster.reset()
    api.call("POST", "/api/v2/system/reconcile")
    before = cluster.backup_jobs()
    del cluster.lainlet.spec["hello.web.web"]
    run = api.call("POST", "/api/v2/system/reconcile")
    after = cluster.backup_jobs()
    return {"backup jobs before → after": f"{sum(before.values())} → {sum(after.values())}",
            "nodes wiped": sum(1 for ip in before if before[ip] and not after[ip]),
            "run said ok": run.status_code == 200 and run.json().get("ok") is True}


GARBAGE = [b"5", b'"x"', b"[1,2]", b'[{"job": 5}]', b"{}", b"<html>", b'[{"name": 5}]', b'{"rid": 5}',
           b'[{"name":"n","source":"/s","volume":"/v","created":"c","size":1,"instanceNo":"abc"}]',
           b'{"addr": 7}']


def daemon_garbage(api: Controller, cluster: Cluster) -> dict[str, Any]:
    """Node 127.0.0.11 answers 200 with garbage to everything the user routes ask it."""
    cluster.reset()
    api.call("POST", "/api/v2/system/reconcile")
    job = next(j["id"] for j in cluster.daemons["127.0.0.11"].jobs if j["id"])
    routes = [("GET", HELLO), ("GET", f"{HELLO}/{FULL}"),
              ("GET", f"{HELLO}/hello-hello.web.web-1-var-log-hello?open=true"),
              ("GET", "/api/v2/app/hello/cron/jobs"), ("GET", f"/api/v2/app/hello/cron/jobs/{job}"),
              ("POST", f"/api/v2/app/hello/cron/jobs/{job}/actions/run"),
              ("POST", f"{HELLO}/{FULL}/actions/recover?snapshot=false"),
              ("GET", "/api/v2/server/127.0.0.11/debug"), ("POST", "/api/v1/cron/once/app/hello/id/" + job)]
    d11 = cluster.daemons["127.0.0.11"]
    answers, passed = 0, 0
    five = 0
    for garbage in GARBAGE:
        d11.garbage = garbage
        for method, path in routes:
            resp = api.call(method, path, headers=FORM_TYPE if method == "POST" else {})
            answers += 1
            five += resp.status_code >= 500 and resp.status_code != 502
            passed += resp.status_code == 200 and resp.content.strip() == garbage
    d11.garbage = None
    return {"answers": answers, "5xx other than 502": five, "garbage passed on with 200": passed}


def cross_proc_delete(api: Controller, cluster: Cluster) -> dict[str, Any]:
    """Through proc web, delete a backup of the same app's proc web-2."""
    cluster.reset()
    resp = api.call("POST", f"{HELLO}/actions/delete", f"files={SIBLING}", FORM_TYPE)
    gone = not any(b["name"] == SIBLING for b in cluster.daemons["127.0.0.11"].backups)
    missing = api.call("POST", f"{HELLO}/actions/delete", "files=hello-hello.web.web-1-nosuch", FORM_TYPE)
    return {"other proc's backup deleted": "yes" if gone else "no", "answer": resp.status_code,
            "unknown name answer": missing.status_code}


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


def dynamodb_down(checkout: Path, env: dict[str, str], cluster: Cluster, logs: Path) -> dict[str, Any]:
    """Seconds to an answer (and its status) with DynamoDB refusing connections, and black-holed."""
    out: dict[str, Any] = {}
    notify = json.dumps(reference.notify_samples()[0][1])
    refused = free_port()
    with black_hole() as hole:
        for kind, port in (("refused", refused), ("black-holed", hole)):
            api = Controller(checkout, {**env, "DYNAMODB_ENDPOINT_URL": f"http://127.0.0.1:{port}"},
                             logs / f"chalice-{kind}.log")
            try:
                for name, method, path, body in (("records", "GET", "/api/v2/app/mysql/cron/records", ""),
                                                 ("notify", "POST", "/api/v2/system/notify", notify)):
                    started = time.monotonic()
                    try:
                        status: Any = api.call(method, path, body, JSON_TYPE, timeout=100).status_code
                    except requests.Timeout:
                        status = "no answer"
                    out[f"{kind}: {name}"] = f"{status} after {time.monotonic() - started:.1f} s"
            finally:
                api.stop()
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the controller to probe")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--skip-dynamodb-down", action="store_true", help="skip the slow fault")
    args = parser.parse_args(argv)
    checkout = args.checkout.resolve()
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"probe-{os.getpid()}"
    logs.mkdir(parents=True, exist_ok=True)
    moto, endpoint = start_dynamodb(checkout)
    cluster = Cluster()
    env = controller_env(cluster, endpoint)
    figures: dict[str, dict[str, Any]] = {}
    api = Controller(checkout, env, logs / "chalice.log")
    try:
        figures["bad input"] = bad_input(api)
        figures["forged records"] = forged_records(api, cluster)
        figures["a poisoned spec"] = poisoned_spec(api, cluster)
        figures["a partial lainlet answer"] = partial_answer(api, cluster)
        figures["daemon garbage"] = daemon_garbage(api, cluster)
        figures["delete through another proc"] = cross_proc_delete(api, cluster)
    finally:
        api.stop()
    try:
        if not args.skip_dynamodb_down:
            figures["DynamoDB down"] = dynamodb_down(checkout, env, cluster, logs)
    finally:
        cluster.stop()
        moto.stop()
    report(checkout, figures, args.json)
    return 0


def start_dynamodb(checkout: Path) -> tuple[Any, str]:
    """moto's server on loopback with the table, created by ``checkout``'s own table code."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per DynamoDB call
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto.get_host_and_port()[1]}"
    subprocess.run([sys.executable, "-c", CREATE_TABLE, endpoint, TABLE], cwd=checkout,
                   env={**os.environ, **AWS}, check=True)
    return moto, endpoint


def controller_env(cluster: Cluster, endpoint: str) -> dict[str, str]:
    """The controller's environment: the stand-ins, the table, no token, no notify address."""
    return {**AWS, "LAINLET_URL": cluster.lainlet.url, "LAINLET_TIMEOUT_SECONDS": "2",
            "BACKUPD_PORT": str(cluster.port), "NODE_TIMEOUT_SECONDS": "1", "TABLE_NAME": TABLE,
            "DYNAMODB_ENDPOINT_URL": endpoint, "API_TOKEN": "", "NOTIFY_TOKEN": "",
            "ADVERTISE_URL": "", "REMOVAL_GUARD_PERCENT": "20"}


def report(checkout: Path, figures: dict[str, dict[str, Any]], json_path: Path | None) -> None:
    """The figures as one table (and as JSON in ``json_path``)."""
    print(f"| probe ({checkout.name}) | measure | figure |\n|---|---|---|")
    for probe, values in figures.items():
        for measure, value in values.items():
            print(f"| {probe} | {measure} | {value} |")
    if json_path:
        json_path.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
