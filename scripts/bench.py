#!/usr/bin/env python3
"""Benchmarks of the controller on synthetic clusters of stand-ins; prints one table.

    python scripts/bench.py            # every row, medians over 5 runs or more
    python scripts/bench.py --quick    # 100 nodes, 10,000 records, 200 posts, a 500-node scale run

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

from chalicelib.core import backupspec, cron, jobs, naming, paths  # noqa: E402
from chalicelib.core.cluster import Cluster  # noqa: E402
from chalicelib.deps import Deps  # noqa: E402
from chalicelib.edges import table as table_schema  # noqa: E402
from chalicelib.edges.records import RecordStore  # noqa: E402
from chalicelib.settings import Settings  # noqa: E402
from chalicelib.usecases import backups, reconcile  # noqa: E402
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
    """A proc's listing on 10 nodes against one node, each daemon 50 ms away and in a process of
    its own (real daemons are other machines: stand-ins sharing one process would add their own
    GIL contention to the figure); then one node black-holed (in-process stand-ins, which can).
    A listing also reads its jobs' newest good backups: from a table (moto, in-process)."""
    from moto import mock_aws

    with mock_aws():
        import boto3

        table_schema.create_table(boto3.client("dynamodb"), "bench-fanout")
        table = boto3.resource("dynamodb").Table("bench-fanout")
        return _fanout_rows(settings, table)


def _fanout_rows(settings: Settings, table: Any) -> list[Row]:
    ips = node_ips(10, "127.0.0.21")
    port = free_port(ips)
    lainlet = LainletStandIn({**spec_for(1, 10, ips, items=1), **{
        "one.web.web": spec_for(1, 1, ips[:1], items=1)["app0.web.web"]}}).start()
    lainlet.spec["one.web.web"][0]["Annotation"] = lainlet.spec["one.web.web"][0][
        "Annotation"].replace("app0.web.web", "one.web.web")
    s = dataclasses.replace(settings, lainlet_url=lainlet.url, backupd_port=port,
                            node_timeout_seconds=1.0)
    try:
        processes = [DaemonsProcess([ip], port, delay=0.05) for ip in ips]
        try:
            backups.list_backups(Deps(s, table=table), "app0", "web", None)  # a warm function
            one = median_seconds(lambda: backups.list_backups(Deps(s, table=table), "one", "web",
                                                              None), runs=21)
            ten = median_seconds(lambda: backups.list_backups(Deps(s, table=table), "app0", "web",
                                                              None), runs=21)
            raw = median_seconds(lambda: _raw_gets(ips, port), runs=21)
        finally:
            for process in processes:
                process.stop()
        daemons = start_daemons(ips, port, delay=0.05)
        try:
            daemons[4].blackhole = True
            answer = backups.list_backups(Deps(s, table=table), "app0", "web", None)
            dead = median_seconds(lambda: backups.list_backups(Deps(s, table=table), "app0", "web",
                                                               None))
        finally:
            for d in daemons:
                d.stop()
    finally:
        lainlet.stop()
    assert answer.unreachable == [ips[4]], answer.unreachable
    limit = s.node_timeout_seconds * 1.1
    return [
        Row("fan-out", "list backups of a proc on 10 nodes, each 50 ms away (warm function)",
            f"{ten * 1000:.1f} ms (1 node: {one * 1000:.1f} ms, {ten / one:.3f}x; ten bare "
            f"concurrent GETs of the same daemons: {raw * 1000:.1f} ms)",
            "<= 1.10x one node", ten <= 1.10 * one),
        Row("dead node", "same, one node black-holed (NODE_TIMEOUT_SECONDS=1)",
            f"{dead * 1000:.0f} ms, 200, names {ips[4]}", f"<= {limit * 1000:.0f} ms",
            dead <= limit),
    ]


def _raw_gets(ips: list[str], port: int) -> None:
    """The machine's own floor for ten concurrent answers: bare GETs of the daemons from ten
    threads (no lainlet, no controller code), on this 2-core machine that also runs them."""
    import threading
    import urllib.request

    def get(ip: str) -> None:
        with urllib.request.urlopen(f"http://{ip}:{port}/api/v1/debug", timeout=5) as resp:
            resp.read()

    threads = [threading.Thread(target=get, args=(ip,)) for ip in ips]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


GO_GENERATE_MS = 466  # the Go original on this machine, same spec (issue 16): no Go toolchain here


def bench_generate() -> Row:
    """CPU time of parse + generate from lainlet's decoded answer, caches cold as in a fresh
    Lambda, the job lists kept until the clock stops (freeing them is not generation), and the
    collector's pass over what generation made counted."""
    import gc

    ips = node_ips(500)
    spec = spec_for(5000, 4, ips)
    caches = (backupspec._decode, backupspec._parse_cached, backupspec._expire_error,
              cron._parse_cached, naming.is_node_ip, jobs._ip_hex, paths._tail)
    samples = []
    for _ in range(RUNS * 3):
        for cache in caches:
            cache.cache_clear()
        gc.collect()
        start = time.process_time()
        lists = jobs.generate(Cluster.from_backupspec(spec))
        gc.collect(0)  # the young-generation pass generation's objects cost, made now
        samples.append(time.process_time() - start)
        count = sum(len(v) for v in lists.values())
        del lists
    cpu = statistics.median(samples)
    return Row("generate", f"parse + generate: 5,000 procs / 20,000 pods / 500 nodes ({count:,} jobs)",
               f"{cpu * 1000:.0f} ms CPU (Go original: {GO_GENERATE_MS} ms)", "<= 400 ms CPU",
               cpu <= 0.4)


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

                table_schema.create_table(boto3.client("dynamodb"), s.table_name)
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


RECONCILE_TIMEOUT_S, RECONCILE_MEMORY_MB = 300, 1769  # the prod stage's reconcile function


def _scale_run(settings: Settings, out: Any) -> None:
    """Child process: the scheduled function's whole run (reconcile, status of every item, alerts,
    restores), first pushing every node, then with nothing changed; its own wall times and peak
    resident memory, as the function's memory limit counts it."""
    import logging

    from moto import mock_aws

    from chalicelib.usecases import schedule

    logging.disable(logging.WARNING)
    with mock_aws():
        import boto3

        table_schema.create_table(boto3.client("dynamodb"), settings.table_name)
        deps = Deps(settings, table=boto3.resource("dynamodb").Table(settings.table_name))
        start = time.perf_counter()
        first = schedule._run(deps)
        push = time.perf_counter() - start
        start = time.perf_counter()
        again = schedule._run(deps)
        noop = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.put((push, noop, peak_mb, len(first["pushed"]), len(first["failed"]), again["unchanged"]))


def bench_scale(settings: Settings, nodes: int, procs: int) -> list[Row]:
    """One invocation of the scheduled function on ``nodes`` nodes and ``procs`` x 4 pods x 2
    items backup jobs: within the function's timeout and memory?"""
    import multiprocessing

    ips = node_ips(nodes)
    port = free_port(ips)
    spec = spec_for(procs, 4, ips)
    jobs_count = procs * 4 * 2
    lainlet = LainletStandIn(spec).start()
    share = 500
    daemons = [DaemonsProcess(ips[i:i + share], port, delay=0.02) for i in range(0, nodes, share)]
    s = dataclasses.replace(settings, lainlet_url=lainlet.url, backupd_port=port,
                            advertise_url="http://127.0.0.1:8000", lainlet_timeout_seconds=60)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    try:
        child = ctx.Process(target=_scale_run, args=(s, out))
        child.start()
        push, noop, peak_mb, pushed, failed, unchanged = out.get(timeout=RECONCILE_TIMEOUT_S * 2)
        child.join(60)
    finally:
        for d in daemons:
            d.stop()
        lainlet.stop()
    assert pushed == nodes and failed == 0 and unchanged == nodes, (pushed, failed, unchanged)
    scenario = f"scheduled run, {nodes:,} nodes / {jobs_count:,} jobs, 20 ms per request"
    return [
        Row("scale push", f"{scenario}: first push of every node (+ status of every item)",
            f"{push:.1f} s, peak {peak_mb:,.0f} MB",
            f"<= {RECONCILE_TIMEOUT_S} s, <= {RECONCILE_MEMORY_MB:,} MB",
            push <= RECONCILE_TIMEOUT_S and peak_mb <= RECONCILE_MEMORY_MB),
        Row("scale no-op", f"{scenario}: nothing changed", f"{noop:.1f} s",
            f"<= {RECONCILE_TIMEOUT_S} s", noop <= RECONCILE_TIMEOUT_S),
    ]


LAMBDA_CALL = """
import app
event = {"resource": %(resource)r, "path": %(path)r, "httpMethod": "GET", "headers": {"Host": "x"},
         "multiValueHeaders": {}, "queryStringParameters": None,
         "multiValueQueryStringParameters": None, "pathParameters": %(params)r,
         "stageVariables": None, "body": None, "isBase64Encoded": False,
         "requestContext": {"resourcePath": %(resource)r, "httpMethod": "GET", "requestId": "r",
                            "path": %(path)r, "stage": "live", "identity": {"sourceIp": "10.0.0.1"}}}
class Context:
    aws_request_id, function_name, memory_limit_in_mb = "r", "backupctl", 1024
answer = app.app(event, Context())
assert answer["statusCode"] == 200, answer
"""
COLD_ROUTES = {  # name: (resource, path, path parameters, what the route truly needs to import)
    "health": ("/api/v2/system/health", "/api/v2/system/health", None, "import chalice.app"),
    "listing": ("/api/v2/app/{app_name}/proc/{proc}/backups", "/api/v2/app/app0/proc/web/backups",
                {"app_name": "app0", "proc": "web"}, "import chalice.app, requests, boto3"),
    "records": ("/api/v2/app/{app_name}/cron/records", "/api/v2/app/app0/cron/records",
                {"app_name": "app0"}, "import chalice.app, boto3"),
}
TABLE_FLOOR = ("import chalice.app, boto3; boto3.resource('dynamodb', endpoint_url=%r)"
               ".Table('bench-cold').load()")


def bench_cold() -> list[Row]:
    """Process start to the answer, the handler called as Lambda calls it (an API Gateway event),
    side by side in one run with a process importing only what that route truly needs. The
    controller's modules are byte-compiled first, as a deploy ships them (docs/operating.md: Deploying)."""
    import compileall
    import py_compile

    import boto3
    from moto.server import ThreadedMotoServer

    compileall.compile_dir(str(ROOT / "chalicelib"), quiet=1,
                           invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    ips = node_ips(3, "127.0.0.31")
    port = free_port(ips)
    lainlet = LainletStandIn(spec_for(1, 3, ips, items=1)).start()
    daemons = start_daemons(ips, port, delay=0)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, moto_port = moto.get_host_and_port()
    endpoint = f"http://{host}:{moto_port}"
    table_schema.create_table(boto3.client("dynamodb", endpoint_url=endpoint), "bench-cold")
    env = {**os.environ, "LAINLET_URL": lainlet.url, "BACKUPD_PORT": str(port),
           "DYNAMODB_ENDPOINT_URL": endpoint, "TABLE_NAME": "bench-cold", "API_TOKEN": "",
           "NOTIFY_TOKEN": ""}

    def once(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - start

    rows = []
    try:
        for name, (resource, path, params, floor) in COLD_ROUTES.items():
            call = LAMBDA_CALL % {"resource": resource, "path": path, "params": params}
            routes, floors, tables = [], [], []
            for _ in range(RUNS * 3):  # interleaved: drift on the machine hits both alike
                floors.append(once(floor))
                routes.append(once(call))
                if name in ("records", "listing"):  # both read the table
                    tables.append(once(TABLE_FLOOR % endpoint))
            route, base = statistics.median(routes), statistics.median(floors)
            measured = f"{route * 1000:.0f} ms vs {base * 1000:.0f} ms ({route / base:.2f}x)"
            met = route <= 1.2 * base
            if tables:  # a DynamoDB route must also build its table: that floor decides
                table = statistics.median(tables)
                measured += (f"; vs {table * 1000:.0f} ms with the table built "
                             f"({route / table:.2f}x)")
                met = route <= 1.2 * table
            rows.append(Row(f"cold {name}", f"GET {path}: a fresh process to the answer vs "
                            f"`{floor}`" + (" (+ the table)" if tables else ""),
                            measured, "<= 1.2x floor", met))
    finally:
        moto.stop()
        for d in daemons:
            d.stop()
        lainlet.stop()
    return rows


def bench_records(total: int) -> Row:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        client = boto3.client("dynamodb", endpoint_url=f"http://{host}:{port}")
        table_schema.create_table(client, "bench")
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

        table_schema.create_table(boto3.client("dynamodb"), "bench-notify")
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


LAMBDA_ANSWER_LIMIT = 6 * 1024 * 1024  # a synchronous invocation's largest answer


def bench_pages() -> Row:
    """``GET /api/v2/system/cron/jobs`` of the 40,500-job cluster through the handler, following
    its continuation tokens: each page must fit one Lambda answer, and together hold every job."""
    from chalice.test import Client

    from chalicelib.settings import get_settings

    lainlet = LainletStandIn(spec_for(5000, 4, node_ips(500))).start()
    os.environ.update(LAINLET_URL=lainlet.url, LAINLET_TIMEOUT_SECONDS="30", API_TOKEN="")
    get_settings.cache_clear()
    from app import app

    sizes, lists, start = [], 0, time.perf_counter()
    try:
        with Client(app) as client:
            path = "/api/v2/system/cron/jobs"
            while path:
                resp = client.http.get(path)
                assert resp.status_code == 200, resp.body[:300]
                sizes.append(len(resp.body))
                lists += sum(len(v) for v in json.loads(resp.body).values())
                token = resp.headers.get("X-Backupctl-Next")
                path = f"/api/v2/system/cron/jobs?next={token}" if token else ""
    finally:
        lainlet.stop()
        get_settings.cache_clear()
    seconds = time.perf_counter() - start
    return Row("pages", "GET /api/v2/system/cron/jobs of 500 nodes / 40,500 jobs, every page "
               "(through the handler)",
               f"{len(sizes)} pages, largest {max(sizes) / 2**20:.1f} MB, {sum(sizes) / 2**20:.1f} MB "
               f"and {lists:,} jobs in all, {seconds:.1f} s",
               "every page <= 6 MB, every job", max(sizes) <= LAMBDA_ANSWER_LIMIT and lists == 40_500)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="100 nodes instead of 500, 10,000 records, 200 posts: under a minute")
    args = parser.parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))  # 500 nodes' connections
    import logging

    logging.disable(logging.WARNING)  # a black-holed node is logged on purpose; keep the table clean
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    settings = dataclasses.replace(Settings(), table_name="bench", fanout_workers=64)
    rows = [*bench_fanout(settings), bench_generate(),
            *bench_reconcile(settings, 100 if args.quick else 500), *bench_cold(),
            *(bench_scale(settings, 500, 5000) if args.quick else bench_scale(settings, 2000, 20000)),
            bench_pages(), bench_records(10_000 if args.quick else 100_000),
            bench_notify(200 if args.quick else 1000)]
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
