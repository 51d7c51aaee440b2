#!/usr/bin/env python3
"""Run the controller locally in one command: embedded DynamoDB, a simulated Lain cluster and
``chalice local``, with the reconcile triggered every minute (chalice local runs no schedules).

    python scripts/local.py                          # simulated cluster, API on :8000
    python scripts/local.py --host 0.0.0.0 --lainlet http://10.0.0.9:9001 \\
        --advertise http://10.0.0.5:8000                # a real cluster (this host: 10.0.0.5)

With ``--lainlet`` no cluster is simulated: the daemons are the real nodes, the API must listen
where they reach it (``--host 0.0.0.0``) and ``--advertise`` must be this host's address as they
reach it; without either the runner warns loudly when it starts (every record would be lost), and
``/api/v2/system/ready`` fails its notify_url check. Settings from the environment still apply
(``DYNAMODB_ENDPOINT_URL`` set: no embedded DynamoDB is started, and one that does not answer
stops the runner with one line). Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib.edges import table as table_schema  # noqa: E402
from chalicelib.logs import redact  # noqa: E402
from scripts.simcluster.cluster import DRILL_ROOT, NODES, SimCluster  # noqa: E402
from scripts.simcluster.server import free_port  # noqa: E402

LOCAL_TABLE = "backupctl-local"  # the local stage's TABLE_NAME (.chalice/config.json)


def start_dynamodb(env: dict[str, str]) -> Any:
    """moto's threaded server on loopback, unless DYNAMODB_ENDPOINT_URL points elsewhere."""
    for key, value in (("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        env.setdefault(key, value)
    server = None
    if not env.get("DYNAMODB_ENDPOINT_URL"):
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per DynamoDB call
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        env["DYNAMODB_ENDPOINT_URL"] = f"http://{host}:{port}"
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    endpoint = env["DYNAMODB_ENDPOINT_URL"]
    try:
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=env["AWS_DEFAULT_REGION"],
                              aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                              config=Config(connect_timeout=3, read_timeout=10,
                                            retries={"mode": "standard", "total_max_attempts": 2}))
        if LOCAL_TABLE not in client.list_tables()["TableNames"]:
            table_schema.create_table(client, LOCAL_TABLE)
    except (BotoCoreError, ClientError, ValueError) as e:  # ValueError: not a URL at all
        if server is not None:
            server.stop()
        if isinstance(e, ClientError):
            said = f"refused the table's calls ({e.response.get('Error', {}).get('Code', '?')})"
        elif isinstance(e, ValueError):
            said = "is not a URL (http://host:port)"
        else:
            said = f"does not answer ({type(e).__name__})"
        raise SystemExit(f"local.py: DynamoDB at {endpoint} (DYNAMODB_ENDPOINT_URL) {said}: start "
                         "DynamoDB there (DynamoDB Local, moto_server), or unset "
                         "DYNAMODB_ENDPOINT_URL and the runner starts one of its own") from None
    return server


def _only_here(host: str) -> bool:
    """Only this machine reaches ``host`` (a loopback name or address)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _unspecified(host: str) -> bool:
    """``host`` is 0.0.0.0 or ::, every address to listen on, none to be called at."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def api_url(host: str, port: int) -> str:
    """Where this machine calls the API it started: 0.0.0.0 (every address) is called on loopback."""
    host = "::1" if host == "::" else "127.0.0.1" if _unspecified(host) or not host else host
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def advertise_warnings(args: argparse.Namespace) -> list[str]:
    """Why the nodes of a real cluster (``--lainlet``) would not reach this controller with their
    records: each one is lost without a word, so the runner says so loudly when it starts."""
    if not args.lainlet:
        return []  # the simulated nodes are on this machine
    lainlet = urlsplit(args.lainlet).hostname or args.lainlet
    notify = f"{args.advertise or api_url(args.host, args.port)}/api/v2/system/notify"
    found = []
    advertised = urlsplit(args.advertise or "").hostname or ""
    if not args.advertise or _only_here(advertised) or _unspecified(advertised):
        found.append(f"the nodes are told to post their records to {notify}, a loopback address, "
                     f"while lainlet ({lainlet}) is not on this machine: each node posts to itself. "
                     f"Give --advertise http://<this host, as the nodes reach it>:{args.port} "
                     "(GET /api/v2/system/ready fails its notify_url check meanwhile)")
    if _only_here(args.host):
        found.append(f"the API listens on {args.host} only: no node can reach it. Give "
                     "--host 0.0.0.0 (or an address of this host the nodes reach)")
    return found


def warn(problems: list[str]) -> None:
    if not problems:
        return
    bar = "!" * 78
    lines = "\n".join(f"  - {p}" for p in problems)
    print(f"{bar}\nWARNING: the nodes' records will not reach this controller; they are lost.\n"
          f"{lines}\n  The recipe: docs/operating.md, The local runner against a real cluster.\n"
          f"{bar}", file=sys.stderr, flush=True)


def wait_until_up(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"chalice local exited with {proc.returncode}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"chalice local did not answer {url} within {seconds:g}s")


def reconcile_forever(api: str, every: float, stop: threading.Event, token: str) -> None:
    """What the deployed schedule does: POST /system/reconcile now, then every ``every`` s."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    while not stop.is_set():
        try:
            resp = requests.post(f"{api}/api/v2/system/reconcile", headers=headers, timeout=120)
            body = resp.json()
            if resp.status_code == 200:
                print(f"reconcile: pushed={body['pushed']} failed={list(body['failed'])} "
                      f"problems={body['problems']}", flush=True)
            else:
                print(f"reconcile: HTTP {resp.status_code}: {body.get('error')}", flush=True)
        except (requests.RequestException, ValueError) as e:
            print(f"reconcile: {e}", flush=True)
        stop.wait(every)


def chalice_command() -> str:
    local = Path(sys.executable).parent / "chalice"
    return str(local) if local.exists() else shutil.which("chalice") or "chalice"


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1",
                        help="address the API listens on (default %(default)s: this machine only; "
                             "0.0.0.0 for a real cluster's nodes)")
    parser.add_argument("--port", type=int, default=8000, help="port of the API (default %(default)s)")
    parser.add_argument("--lainlet", help="a real lainlet URL instead of the simulated cluster")
    parser.add_argument("--advertise", help="base URL the daemons post records to (default "
                                            "http://HOST:PORT; with --lainlet: this host's address "
                                            "as the nodes reach it)")
    parser.add_argument("--daemon-port", type=int, default=int(os.environ.get("BACKUPD_PORT") or 9002),
                        help="port of the (simulated) daemons (default %(default)s)")
    parser.add_argument("--data-dir", type=Path, help="where the simulated nodes keep volumes and "
                                                      "backups (default: a temporary dir)")
    parser.add_argument("--reconcile-every", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--job-seconds", type=float, default=0.5,
                        help="how long each simulated job takes (default %(default)s)")
    return parser


def chalice_local(args: argparse.Namespace) -> list[str]:
    """The ``chalice local`` command of the API, on ``--host`` and ``--port``."""
    return [chalice_command(), "local", "--stage", "local", "--host", args.host, "--port",
            str(args.port), "--no-autoreload"]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    env = dict(os.environ)
    api = api_url(args.host, args.port)
    problems = advertise_warnings(args)
    warn(problems)  # before anything starts, and again once it runs
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.ExitStack() as cleanup:
        dynamo = start_dynamodb(env)
        if dynamo is not None:
            cleanup.callback(dynamo.stop)
        if args.lainlet:
            env["LAINLET_URL"] = args.lainlet
            where = f"lainlet      {args.lainlet} (real cluster; daemons on port {args.daemon_port})"
        else:
            data = args.data_dir or Path(cleanup.enter_context(tempfile.TemporaryDirectory(
                prefix="backupctl-sim-")))
            sim = SimCluster(data, args.daemon_port, job_seconds=args.job_seconds).start()
            cleanup.callback(sim.stop)
            env["LAINLET_URL"] = sim.lainlet.url
            env.setdefault("DRILL_ROOT", DRILL_ROOT)  # its nodes have their drill area
            where = (f"lainlet      {sim.lainlet.url} (simulated)\n"
                     f"daemons      {', '.join(f'{n}:{args.daemon_port}' for n in NODES)}"
                     f" (simulated; files under {data})")
        env.update(BACKUPD_PORT=str(args.daemon_port), ADVERTISE_URL=args.advertise or api)
        proc = subprocess.Popen(chalice_local(args), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
        cleanup.callback(_terminate, proc)
        threading.Thread(target=relay, args=(proc.stdout,), daemon=True).start()
        wait_until_up(f"{api}/api/v2/system/health", proc)
        ticker = threading.Thread(target=reconcile_forever, daemon=True,
                                  args=(api, args.reconcile_every, stop, env.get("API_TOKEN", "")))
        ticker.start()
        cleanup.callback(stop.set)
        listening = "" if api == f"http://{args.host}:{args.port}" else f" (listening on {args.host})"
        print(f"""
backupctl is running
  API          {api}{listening}
  {where.replace(chr(10), chr(10) + '  ')}
  DynamoDB     {env['DYNAMODB_ENDPOINT_URL']} (table {LOCAL_TABLE})
  records to   {env['ADVERTISE_URL']}/api/v2/system/notify

try:
  curl {api}/api/v2/app/hello/cron/jobs
  curl {api}/api/v2/app/hello/proc/web/backups
  curl {api}/api/v2/app/hello/cron/records
Ctrl-C stops everything.
""", flush=True)
        warn(problems)
        try:
            while not stop.is_set() and proc.poll() is None:
                stop.wait(0.5)
        except KeyboardInterrupt:
            pass
        print("stopping", flush=True)
    return 0


def relay(lines: Iterable[str]) -> None:
    """chalice local's output, with every ``token=`` redacted: its access log prints each
    request's query string, and the daemons post records to ``…/notify?token=<NOTIFY_TOKEN>``."""
    for line in lines:
        sys.stdout.write(redact(line))
        sys.stdout.flush()


def _terminate(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
