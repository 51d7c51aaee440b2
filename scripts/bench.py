#!/usr/bin/env python3
"""Benchmarks of the controller on synthetic clusters of stand-ins; prints one table.

    python scripts/bench.py            # every row, medians over 5 runs
    python scripts/bench.py --quick    # 100 nodes, 10,000 records, 200 posts: under a minute

Each row is the median of >= 5 runs against its target; the script exits 1 when a target is
missed, so it can run in CI. Targets are for a 2-core machine. Timings are never asserted in tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")

from chalicelib import reconcile  # noqa: E402
from chalicelib.core import (  # noqa: E402
    backupspec,
    cron,
    jobs,
    naming,
)
from chalicelib.core.cluster import Cluster  # noqa: E402
from chalicelib.deps import Deps  # noqa: E402
from chalicelib.edges import schema  # noqa: E402
from chalicelib.edges.records import RecordStore  # noqa: E402
from chalicelib.settings import Settings  # noqa: E402
from chalicelib.usecases import backups  # noqa: E402
from scripts.simcluster.backupd import BackupdStandIn  # noqa: E402
from scripts.simcluster.lainlet import LainletStandIn  # noqa: E402
from scripts.simcluster.server import free_port  # noqa: E402

RUNS = 5


@dataclasses.dataclass
class Row:
    name: str
    scenario: str
    measured: str
    target: str
    met: bool


def median_seconds(fn: Callable[[], object], runs: int = RUNS) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def node_ips(count: int, base: str = "127.0.1.1") -> list[str]:
    first = ipaddress.IPv4Address(base)
    return [str(first + i) for i in range(count)]


def spec_for(procs: int, pods_per_proc: int, nodes: list[str], items: int = 2) -> dict:
    """``procs`` apps of one proc each, pods spread round-robin over ``nodes``."""
    spec = {}
    for p in range(procs):
        app = f"app{p}"
        full = f"{app}.web.web"
        annotation = json.dumps({"backup": [
            {"procname": full, "volume": f"/data{i}", "schedule": "0 3 * * *", "expire": "7d",
             "mode": "full" if i % 2 == 0 else "increment"} for i in range(items)]})
        spec[full] = [{"Annotation": annotation, "InstanceNo": n + 1, "Containers": [
            {"Id": f"c{p}-{n}", "Ip": "172.20.0.1",
             "NodeIp": nodes[(p * pods_per_proc + n) % len(nodes)], "NodeName": "n"}]}
            for n in range(pods_per_proc)]
    return spec


def start_daemons(ips: list[str], port: int, delay: float, poll: float = 0.02) -> list[BackupdStandIn]:
    out: list[BackupdStandIn] = []
    for ip in ips:
        d = BackupdStandIn(ip, port)
        d.delay, d.poll_interval = delay, poll
        d.start()
        out.append(d)
    return out


def _serve_daemons(ips: list[str], port: int, delay: float, ready: Any, stop: Any) -> None:
    """Child process: the stand-in daemons, so they do not share the controller's GIL (real
    daemons run on other machines)."""
    from concurrent.futures import ThreadPoolExecutor

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    daemons = start_daemons(ips, port, delay, poll=0.5)
    ready.set()
    stop.wait()
    with ThreadPoolExecutor(64) as pool:
        list(pool.map(lambda d: d.stop(), daemons))


class DaemonsProcess:
    def __init__(self, ips: list[str], port: int, delay: float) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.ready, self.stop_event = ctx.Event(), ctx.Event()
        self.process = ctx.Process(target=_serve_daemons,
                                   args=(ips, port, delay, self.ready, self.stop_event), daemon=True)
        self.process.start()
        if not self.ready.wait(120):
            raise SystemExit("stand-in daemons did not start")

    def stop(self) -> None:
        self.stop_event.set()
        self.process.join(60)
        if self.process.is_alive():
            self.process.kill()


# -- rows ------------------------------------------------------------------------------------------

def bench_fanout(settings: Settings) -> list[Row]:
    ips = node_ips(10, "127.0.0.21")
    port = free_port(ips)
    lainlet = LainletStandIn({**spec_for(1, 10, ips, items=1), **{
        "one.web.web": spec_for(1, 1, ips[:1], items=1)["app0.web.web"]}}).start()
    lainlet.spec["one.web.web"][0]["Annotation"] = lainlet.spec["one.web.web"][0][
        "Annotation"].replace("app0.web.web", "one.web.web")
    daemons = start_daemons(ips, port, delay=0.05)
    s = dataclasses.replace(settings, lainlet_url=lainlet.url, backupd_port=port,
                            node_timeout_seconds=1.0)
    try:
        one = median_seconds(lambda: backups.list_backups(Deps(s), "one", "web", None))
        ten = median_seconds(lambda: backups.list_backups(Deps(s), "app0", "web", None))
        daemons[4].blackhole = True
        answer = backups.list_backups(Deps(s), "app0", "web", None)
        dead = median_seconds(lambda: backups.list_backups(Deps(s), "app0", "web", None))
    finally:
        for d in daemons:
            d.stop()
        lainlet.stop()
    assert answer.unreachable == [ips[4]], answer.unreachable
    limit = s.node_timeout_seconds * 1.1
    return [
        Row("fan-out", "list backups of a proc on 10 nodes, each 50 ms",
            f"{ten * 1000:.0f} ms (1 node: {one * 1000:.0f} ms, {ten / one:.2f}x)",
            "<= 1.5x one node", ten <= 1.5 * one),
        Row("dead node", "same, one node black-holed (NODE_TIMEOUT_SECONDS=1)",
            f"{dead * 1000:.0f} ms, 200, names {ips[4]}", f"<= {limit * 1000:.0f} ms",
            dead <= limit),
    ]


def bench_generate() -> Row:
    ips = node_ips(500)
    spec = spec_for(5000, 4, ips)

    def generate() -> None:
        backupspec._decode.cache_clear()  # measure cold caches, as in a fresh Lambda
        backupspec._parse_cached.cache_clear()
        cron._parse_cached.cache_clear()
        naming.is_node_ip.cache_clear()
        jobs._ip_hex.cache_clear()
        jobs.generate(Cluster.from_backupspec(spec))

    seconds = median_seconds(generate)
    count = sum(len(v) for v in jobs.generate(Cluster.from_backupspec(spec)).values())
    return Row("generate", f"parse + generate: 5,000 procs / 20,000 pods / 500 nodes ({count:,} jobs)",
               f"{seconds * 1000:.0f} ms", "<= 1000 ms", seconds <= 1.0)


def bench_reconcile(settings: Settings, nodes: int) -> list[Row]:
    from moto import mock_aws

    ips = node_ips(nodes)
    port = free_port(ips)
    lainlet = LainletStandIn(spec_for(nodes, 1, ips)).start()
    daemons = DaemonsProcess(ips, port, delay=0.02)
    s = dataclasses.replace(settings, lainlet_url=lainlet.url, backupd_port=port,
                            advertise_url="http://127.0.0.1:8000", lainlet_timeout_seconds=10)
    push_times, noop_times = [], []
    try:
        for _ in range(RUNS):
            with mock_aws():
                import boto3

                schema.create_table(boto3.client("dynamodb"), s.table_name)
                deps = Deps(s, table=boto3.resource("dynamodb").Table(s.table_name))
                start = time.perf_counter()
                first = reconcile.run(deps).summary
                push_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                again = reconcile.run(deps).summary
                noop_times.append(time.perf_counter() - start)
            assert len(first["pushed"]) == nodes and not first["failed"], first["failed"]
            assert again["pushed"] == [] and again["unchanged"] == nodes
    finally:
        daemons.stop()
        lainlet.stop()
    push, noop = statistics.median(push_times), statistics.median(noop_times)
    return [
        Row("push", f"reconcile pushing {nodes} stand-in nodes, 20 ms per request",
            f"{push * 1000:.0f} ms", "<= 2000 ms", push <= 2.0),
        Row("no-op", f"reconcile with nothing changed, {nodes} nodes (state read + debug checks)",
            f"{noop * 1000:.0f} ms", "<= 1500 ms", noop <= 1.5),
    ]


def bench_cold() -> Row:
    def run(code: str) -> float:
        return median_seconds(lambda: subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                                                     check=True))

    deps = run("import chalice, requests, croniter")
    full = run("import app")
    return Row("cold", "python -c 'import app' vs its dependencies alone",
               f"{full * 1000:.0f} ms vs {deps * 1000:.0f} ms ({full / deps:.2f}x)", "<= 1.5x",
               full <= 1.5 * deps)


def bench_records(total: int) -> Row:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        client = boto3.client("dynamodb", endpoint_url=f"http://{host}:{port}")
        schema.create_table(client, "bench")
        table = boto3.resource("dynamodb", endpoint_url=f"http://{host}:{port}").Table("bench")
        with table.batch_writer() as batch:
            for n in range(total):
                app = f"app{n % 10}"
                start = f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:00:00.{n:09d}Z"
                key = f"{start}#r{n}"
                batch.put_item(Item={"pk": f"RID#r{n}", "sk": "RECORD", "app": app,
                                     "state": "success", "gsi1pk": f"{app}#{start[:7]}",
                                     "gsi1sk": key, "record": json.dumps({"rid": f"r{n}"})})
        ops: list[str] = []
        table.meta.client.meta.events.register("before-call.dynamodb",
                                                lambda model, **_: ops.append(model.name))
        store = RecordStore(table)
        seconds = median_seconds(lambda: store.month("app3", 2026, 4, 100))
        ops.clear()
        got = store.month("app3", 2026, 4, 100)
    finally:
        server.stop()
    queries, scans = ops.count("Query"), ops.count("Scan")
    return Row("records", f"newest 100 of an app-month, {total:,} records (moto server)",
               f"{len(got)} records, {queries} Query page, {scans} Scans, {seconds * 1000:.0f} ms",
               "1 Query page, 0 Scans", queries == 1 and scans == 0 and len(got) == 100)


def bench_notify(posts: int) -> Row:
    from chalice.test import Client
    from moto import mock_aws

    from chalicelib.edges import dynamo
    from chalicelib.settings import get_settings

    os.environ.update(TABLE_NAME="bench-notify", DYNAMODB_ENDPOINT_URL="", NOTIFY_TOKEN="")
    get_settings.cache_clear()
    dynamo._table.cache_clear()
    from app import app

    sample = json.loads((ROOT / "tests/fixtures/notify-samples.txt").read_text()
                        .splitlines()[1])
    with mock_aws():
        import boto3

        schema.create_table(boto3.client("dynamodb"), "bench-notify")
        samples = []
        with Client(app) as client:
            for n in range(posts):
                body = json.dumps({**sample, "rid": sample["rid"][:10] + f"{n:032x}"})
                start = time.perf_counter()
                resp = client.http.post("/api/v2/system/notify", body=body,
                                        headers={"Content-Type": "application/json"})
                samples.append(time.perf_counter() - start)
                assert resp.status_code == 200, resp.body
    dynamo._table.cache_clear()
    per = statistics.median(samples)
    p95 = sorted(samples)[int(len(samples) * 0.95)]
    return Row("notify", f"{posts:,} notify posts through the handler (moto in-process)",
               f"median {per * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms per post", "report", True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="100 nodes instead of 500, 10,000 records, 200 posts: under a minute")
    args = parser.parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))  # 500 nodes' connections
    import logging

    logging.disable(logging.WARNING)  # a black-holed node is logged on purpose; keep the table clean
    settings = dataclasses.replace(Settings(), table_name="bench", fanout_workers=64)
    rows = [*bench_fanout(settings), bench_generate(),
            *bench_reconcile(settings, 100 if args.quick else 500), bench_cold(),
            bench_records(10_000 if args.quick else 100_000), bench_notify(200 if args.quick else 1000)]
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {platform.system()}; medians of {RUNS} runs\n")
    print("| row | scenario | measured | target | met |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.name} | {r.scenario} | {r.measured} | {r.target} | {'yes' if r.met else 'NO'} |")
    missed = [r.name for r in rows if not r.met]
    if missed:
        print(f"\nmissed: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
