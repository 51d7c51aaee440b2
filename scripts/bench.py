#!/usr/bin/env python3
"""Benchmarks of the controller on synthetic clusters of stand-ins; prints one table.

    python scripts/bench.py            # every row, medians over 5 runs or more
    python scripts/bench.py --quick    # 100 nodes, 10,000 records, 200 posts, the scale rows at 200
    python scripts/bench.py --only scale,cost   # some groups of rows only (see --help)

Each row is the median of >= 5 runs against its target; the script exits 1 when a target is
missed, so it can run in CI. Targets are for a 2-core machine. Timings are never asserted in tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import ipaddress
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import date
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
from chalicelib.edges.records import EXPIRE_LAST, RecordStore  # noqa: E402
from chalicelib.settings import Settings  # noqa: E402
from chalicelib.usecases import backups, reconcile  # noqa: E402
from scripts import benchtable, costmodel  # noqa: E402
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


def spec_for(procs: int, pods_per_proc: int, nodes: list[str], items: int = 2,
             realistic: bool = False) -> dict:
    """``procs`` apps of one proc each, pods spread round-robin over ``nodes``. ``realistic``: the
    names a real cluster has (a worker proc, a volume under /var/lib, pre- and post-run scripts,
    64-hex container ids), so each job's records are about 1 KB, as real ones are."""
    spec = {}
    for p in range(procs):
        app = f"app{p}"
        full = f"{app}.worker.mysql-master" if realistic else f"{app}.web.web"
        extra = {"preRun": "/lain/app/backup/pre-run.sh --flush-tables",
                 "postRun": "/lain/app/backup/post-run.sh --unlock-tables"} if realistic else {}
        volume = "/var/lib/mysql/data{i}" if realistic else "/data{i}"
        annotation = json.dumps({"backup": [
            {"procname": full, "volume": volume.format(i=i), "schedule": "0 3 * * *",
             "expire": "7d", "mode": "full" if i % 2 == 0 else "increment", **extra}
            for i in range(items)]})
        spec[full] = [{"Annotation": annotation, "InstanceNo": n + 1, "Containers": [
            {"Id": hashlib.sha256(f"c{p}-{n}".encode()).hexdigest() if realistic else f"c{p}-{n}",
             "Ip": "172.20.0.1", "NodeIp": nodes[(p * pods_per_proc + n) % len(nodes)],
             "NodeName": "n"}]}
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


def _serve_daemons(ips: list[str], port: int, delay: float, ready: Any, stop: Any,
                   archives: dict[str, list[dict[str, Any]]]) -> None:
    """Child process: the stand-in daemons, so they do not share the controller's GIL (real
    daemons run on other machines), each holding its node's ``archives``."""
    from concurrent.futures import ThreadPoolExecutor

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    daemons = start_daemons(ips, port, delay, poll=0.5)
    for d in daemons:
        d.backups.extend(archives.get(d.host, ()))
    ready.set()
    stop.wait()
    with ThreadPoolExecutor(64) as pool:
        list(pool.map(lambda d: d.stop(), daemons))


class DaemonsProcess:
    def __init__(self, ips: list[str], port: int, delay: float,
                 archives: dict[str, list[dict[str, Any]]] | None = None) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.ready, self.stop_event = ctx.Event(), ctx.Event()
        mine = {ip: (archives or {}).get(ip, []) for ip in ips}
        self.process = ctx.Process(target=_serve_daemons, args=(
            ips, port, delay, self.ready, self.stop_event, mine), daemon=True)
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
API_MEMORY_MB = 1024  # the prod stage's API function (it answered the notify posts before)
NOTIFY_MEMORY_MB = 256  # the prod stage's notify function (behind its function URL): posts' peak RSS ~95 MB
SCALE_DAYS, SCALE_EXPIRE_MINUTES = 2, 10  # the steady state: 2 days of every job's records, the
# last 10 minutes of every node's expire runs (what a run reads does not grow with more of them)
JOBS_PER_NODE = 80  # 4 pods x 2 items per proc, one proc per 10 nodes: 160,000 jobs on 2,000


def _steady_table(settings: Settings, nodes: int, procs: int, now: str, table: Any
                  ) -> benchtable.Filled:
    """Table server's child: the scale cluster's jobs, generated as the reconcile generates them,
    and every record of their last days posted through the real notify flow."""
    from datetime import datetime

    lists = jobs.generate(Cluster.from_backupspec(spec_for(procs, 4, node_ips(nodes),
                                                           realistic=True)))
    return benchtable.fill(table, settings, lists, datetime.fromisoformat(now), days=SCALE_DAYS,
                           expire_minutes=SCALE_EXPIRE_MINUTES)


@dataclasses.dataclass
class ScaleRun:
    """One scheduled run as measured in its own process: wall and CPU seconds (the meter's own
    CPU taken out), peak resident MB (and what the process held when the run began), the
    DynamoDB calls and units counted, the log bytes and lines, the run's answer."""

    name: str
    wall: float
    cpu: float
    peak_mb: float
    start_mb: float
    tally: benchtable.Tally
    log_bytes: int
    log_lines: int
    answer: dict[str, Any]

    def text(self) -> str:
        units = self.tally.units
        return (f"{self.wall:.1f} s wall, {self.cpu:.1f} s CPU, peak {self.peak_mb:,.0f} MB; "
                f"DynamoDB {self.tally.calls_text()}: {units.rru:,.0f} RRU, {units.wru:,.0f} WRU; "
                f"log {self.log_bytes / 1024:,.0f} KB")


def _scale_run(settings: Settings, endpoint: str, out: Any, profile: str = "") -> None:
    """Child process: the scheduled function's whole run (reconcile, status of every item, alerts,
    restores, its log lines) against the steady-state table, first pushing every node, then with
    nothing changed; per run its wall and CPU seconds, its own peak resident memory (Linux's
    high-water mark, reset before each run), its DynamoDB calls and units."""
    import gc

    from chalicelib.edges import dynamo
    from chalicelib.usecases import schedule

    table = dynamo._table(settings.table_name, endpoint, settings.dynamodb_timeout_seconds)
    schema = costmodel.Schema.from_create_table(table_schema.create_table_kwargs(settings.table_name))
    meter = benchtable.Meter(table, schema)
    deps = Deps(settings, table=table)
    runs = []
    with benchtable.LogTap() as tap:

        def measure(name: str, call: Callable[[], Any]) -> None:
            gc.collect()
            reset = benchtable.reset_peak()
            start_mb = benchtable.resident_mb()
            cpu, start = benchtable.cpu_seconds(), time.perf_counter()
            answer = call()
            wall, cpu = time.perf_counter() - start, benchtable.cpu_seconds() - cpu
            peak = benchtable.peak_since_reset() if reset else None
            if peak is None:
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            tally = meter.take()
            log_bytes, log_lines = tap.take()
            if not isinstance(answer, dict) or "ok" not in answer:
                answer = {"ok": True, "jobs": answer if isinstance(answer, int)
                          else len(answer or ())}  # a read's jobs, or the jobs the upgrade built
            runs.append(ScaleRun(name, wall, cpu - tally.instrument_cpu, peak, start_mb, tally,
                                 log_bytes, log_lines,
                                 {k: answer.get(k) for k in ("ok", "error", "unchanged", "jobs")}
                                 | {"pushed": len(answer.get("pushed") or []),
                                    "failed": len(answer.get("failed") or {})}))
            del answer

        measure("push", lambda: schedule.scheduled(deps))
        measure("no-op", lambda: schedule.scheduled(deps))  # warm: nothing written since
        # a typical minute of a warm function: notify wrote the slim items of some nodes since
        # the last run (every job daily at its own H minute: 80 jobs' two posts on a node touch
        # it in about 1 minute in 9), here every 8th node's
        from chalicelib.edges import lainlet as lainlet_edge
        from chalicelib.edges import records as records_edge

        ips = deps.cluster().node_ips()

        def notify_wrote_every_8th_node() -> None:
            deps.records._mark_changed(f"{records_edge.FRESH}{n}" for n in ips[::8])
            meter.take()  # the marks' writes are notify's, not the measured run's

        notify_wrote_every_8th_node()
        measure("no-op, 1/8 changed", lambda: schedule.scheduled(deps))
        records_edge._KEPT.clear()  # a cold start: nothing kept, nothing built
        lainlet_edge._BUILT.clear()
        measure("no-op, cold", lambda: schedule.scheduled(deps))
        from chalicelib.usecases import health

        # GET /api/v2/system/backups/status (its first page), in a function that answered before
        measure("status", lambda: {"ok": bool(health.system_status(deps).body)})
        if profile:  # a no-op run once more under the profiler, apart from the measured one (and
            # after it: the profiled run is minutes long, and a later minute inspects other nodes)
            import cProfile

            cProfile.runctx("schedule.scheduled(deps)", globals(), locals(), profile)
            meter.take()
            tap.take()
        # the read a run made before the slim items (every job's whole latest items), and now:
        # a warm function's typical minute (every 8th node written since its last run)
        measure("whole read", deps.records._fresh_from_whole)
        notify_wrote_every_8th_node()
        measure("slim read", lambda: deps.records.latest_by_job(ips))
        table.delete_item(Key=dict(table_schema.FRESH_READY))  # a table from before them
        deps.records._ready = False
        measure("upgrade", deps.records.build_fresh)
    out.put([{f.name: getattr(r, f.name) for f in dataclasses.fields(r)} for r in runs])


def bench_scale(settings: Settings, nodes: int, profile: str = "") -> tuple[list[Row], ScaleRun]:
    """One invocation of the scheduled function on ``nodes`` nodes of 80 backup jobs each, with
    the table as it is after days of runs (every job's latest items and its recent records, at
    full size): within the function's timeout and memory? Its no-op run, for the cost model."""
    import multiprocessing
    from datetime import UTC, datetime
    from functools import partial

    procs = nodes * JOBS_PER_NODE // 8
    ips = node_ips(nodes)
    port = free_port(ips)
    lainlet = LainletStandIn(spec_for(procs, 4, ips, realistic=True)).start()
    share = 500
    s = dataclasses.replace(settings, lainlet_url=lainlet.url, backupd_port=port,
                            advertise_url="http://127.0.0.1:8000", lainlet_timeout_seconds=60,
                            dynamodb_timeout_seconds=60)
    server = None
    daemons: list[DaemonsProcess] = []
    try:
        server = benchtable.TableServer(s.table_name, partial(
            _steady_table, s, nodes, procs, datetime.now(UTC).isoformat()))
        archives = server.filled.archives  # the daemons hold the archives the records name
        daemons = [DaemonsProcess(ips[i:i + share], port, 0.02, archives)
                   for i in range(0, nodes, share)]
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        child = ctx.Process(target=_scale_run, args=(s, server.url, out,
                                                     f"{profile}.{nodes}" if profile else ""))
        child.start()
        found = out.get(timeout=RECONCILE_TIMEOUT_S * 4)
        child.join(60)
    finally:
        if server is not None:
            server.stop()
        for d in daemons:
            d.stop()
        lainlet.stop()
    push, warm, noop, cold, status, whole, slim, upgrade = (ScaleRun(**r) for r in found)
    assert push.answer["ok"] and noop.answer["ok"], (push.answer, noop.answer)
    assert push.answer["pushed"] == nodes and not push.answer["failed"], push.answer
    assert all(r.answer["unchanged"] == nodes for r in (warm, noop, cold)), (warm, noop, cold)
    filled = server.filled
    scenario = (f"scheduled run, {nodes:,} nodes / {procs * 8:,} jobs, steady-state table "
                f"({filled.items:,} items: {_kinds(filled)}), 20 ms per request")
    rows = [
        Row("scale push", f"{scenario}: first push of every node (+ status of every item)",
            push.text(), f"<= {RECONCILE_TIMEOUT_S} s, <= {RECONCILE_MEMORY_MB:,} MB",
            push.wall <= RECONCILE_TIMEOUT_S and push.peak_mb <= RECONCILE_MEMORY_MB),
        Row("scale no-op", f"{scenario}: nothing to push, a warm function (the schedule runs "
            "every minute), the slim items of every 8th node written since its last run (a "
            "typical minute)", noop.text(), f"<= {RECONCILE_TIMEOUT_S} s",
            noop.wall <= RECONCILE_TIMEOUT_S),
        Row("scale no-op warm", f"{scenario}: nothing to push, nothing written since the last "
            "run", warm.text(), f"<= {RECONCILE_TIMEOUT_S} s", warm.wall <= RECONCILE_TIMEOUT_S),
        Row("scale no-op cold", f"{scenario}: nothing to push, the first run of a new process "
            "(every node's slim items read)", cold.text(), f"<= {RECONCILE_TIMEOUT_S} s",
            cold.wall <= RECONCILE_TIMEOUT_S),
        Row("scale status", f"{scenario}: GET /api/v2/system/backups/status (the status of "
            "every item, its first page), a warm function", status.text(), "<= 29 s (the API's "
            "timeout)", status.wall <= 29),
    ]
    rows += [
        Row("scale latest read", f"{scenario}: what a run reads of every job's latest runs, "
            "in a warm function's typical minute (the change marks of every node, the slim "
            "items of every 8th node, written since) vs the whole latest items (JOBLAST, as "
            "before)",
            f"{slim.tally.units.rru:,.0f} RRU, {slim.cpu:.2f} s CPU, +{slim.peak_mb - slim.start_mb:,.0f}"
            f" MB peak, {slim.tally.calls_text()} vs {whole.tally.units.rru:,.0f} RRU, "
            f"{whole.cpu:.2f} s CPU, +{whole.peak_mb - whole.start_mb:,.0f} MB, "
            f"{whole.tally.calls_text()} ({whole.tally.units.rru / max(slim.tally.units.rru, 1):.1f}x"
            " the units)", "<= 1/5 of the whole read's RRU",
            slim.tally.units.rru * 5 <= whole.tally.units.rru),
        Row("scale upgrade", f"{scenario}: the one run that builds every job's slim item from a "
            "table from before them (+ its read of the whole latest items, twice)", upgrade.text(),
            f"<= {RECONCILE_TIMEOUT_S} s, <= {RECONCILE_MEMORY_MB:,} MB",
            upgrade.answer["jobs"] == procs * 8 and upgrade.wall <= RECONCILE_TIMEOUT_S
            and upgrade.peak_mb <= RECONCILE_MEMORY_MB),
    ]
    if nodes >= 2000:  # issue 24's targets at 2,000 nodes
        peak = max(r.peak_mb for r in (push, warm, noop, cold))
        rows += [
            Row("scale memory", f"{scenario}: the largest peak of the runs (each measured "
                "from its own start)", f"{peak:,.0f} MB (push {push.peak_mb:,.0f}, no-op "
                f"{noop.peak_mb:,.0f}, cold {cold.peak_mb:,.0f})", "<= 1,024 MB", peak <= 1024),
            Row("scale cpu", f"{scenario}: the no-op run's CPU (a typical minute; the cold "
                "one in brackets)", f"{noop.cpu:.1f} s CPU ({noop.wall:.1f} s wall; cold "
                f"{cold.cpu:.1f} s)", "<= 15 s CPU", noop.cpu <= 15),
        ]
    elif nodes == 200:
        rows.append(Row("scale cpu 200", f"{scenario}: the no-op run's CPU (a typical minute; "
                        "the cold one in brackets)",
                        f"{noop.cpu:.2f} s CPU ({noop.wall:.1f} s wall, peak "
                        f"{noop.peak_mb:,.0f} MB; cold {cold.cpu:.2f} s)", "<= 2 s CPU",
                        noop.cpu <= 2))
    return rows, noop


def _kinds(filled: benchtable.Filled) -> str:
    return ", ".join(f"{k} {n:,} of {filled.bytes[k] / n:,.0f} B" for k, n in filled.kinds.most_common())


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


# -- issue 24: the notify herd per key, and the monthly bill ---------------------------------------

HERD_NODES = 2000  # the cluster the herd is modelled on: 2,000 nodes, 160,000 backup jobs
HERD_SAMPLE_JOBS, HERD_SAMPLE_NODES = 160, 20  # posted for real: jobs spread over the whole
# cluster, and the expire jobs of nodes spread over it
HERD_MIX = {"0 0 * * *": 1.0}  # every backup job's schedule, by share: all of them at midnight
HERD_DAY = date(2026, 1, 1)  # a day every daily, weekly, monthly and yearly schedule fires
DYNAMODB_CALL_SECONDS = 0.005  # a DynamoDB call from Lambda in its region (assumed, typical)
LAMBDA_PLATFORM_LOG_BYTES = 330  # Lambda's own START, END and REPORT lines per invocation (none
# for the notify function: its system log level is WARN, scripts/render_config.py)
RETENTION_EXAMPLE_DAYS = 30  # the bill with records kept that long (RECORD_RETENTION_DAYS)
COST_TARGETS = {200: 30, 2000: 300}  # dollars a month (issue 24)
COST_MONTH = 12  # the month billed: records kept for ever have grown for a year by then


@dataclasses.dataclass
class PostFigures:
    """The posts of one kind (backup or expire; running or its result) as counted: per post, its
    DynamoDB calls and units, its log bytes, its wall time through the handler and its modelled
    Lambda duration at NOTIFY_MEMORY_MB (the time outside DynamoDB calls, stretched to the share of a
    vCPU that memory buys, plus each call at DYNAMODB_CALL_SECONDS)."""

    posts: int = 0
    calls: float = 0.0
    wru: float = 0.0
    rru: float = 0.0
    log_bytes: float = 0.0
    wall: float = 0.0
    seconds: float = 0.0

    def add(self, wall: float, tally: benchtable.Tally, log_bytes: int) -> None:
        n = self.posts
        calls = sum(tally.calls.values())
        seconds = costmodel.lambda_seconds(wall - tally.call_seconds, calls * DYNAMODB_CALL_SECONDS,
                                           NOTIFY_MEMORY_MB)
        for name, value in (("calls", calls), ("wru", tally.units.wru), ("rru", tally.units.rru),
                            ("log_bytes", log_bytes), ("wall", wall), ("seconds", seconds)):
            setattr(self, name, (getattr(self, name) * n + value) / (n + 1))
        self.posts += 1


@dataclasses.dataclass
class HerdSample:
    """What the sampled posts counted, and what they left stored."""

    lists: dict[str, list[Any]]
    posts: dict[str, PostFigures]
    writes: list[costmodel.JobWrites]
    fixed_per_job: float  # stored bytes a backup job keeps whatever its age (its latest items)
    growth_per_job_day: float  # stored bytes a backup job's daily run adds
    growth_per_expire_run: float  # stored bytes an expire run adds


def herd_sample(nodes: int = HERD_NODES) -> HerdSample:
    """Post the records of one run of a sample of the 2,000-node cluster's jobs (and of its nodes'
    expire jobs) through the notify handler, DynamoDB played by moto in-process, each post's
    calls, units, keys and log lines counted (:class:`scripts.benchtable.Meter`,
    :class:`~scripts.benchtable.LogTap`). Each sampled job posted yesterday's run first (its
    baseline, not counted); each node's expire job ran once before too. The table is weighed
    (DynamoDB's stored bytes) before and after, for the storage the records add."""
    from datetime import UTC, datetime, timedelta

    from chalice.test import Client
    from moto import mock_aws

    from chalicelib import deps as deps_module
    from chalicelib.core.formats.recordschema import record_app
    from chalicelib.edges import dynamo
    from chalicelib.settings import get_settings

    lists = jobs.generate(Cluster.from_backupspec(spec_for(nodes * JOBS_PER_NODE // 8, 4,
                                                           node_ips(nodes), realistic=True)))
    backups = [(n, j) for n, js in lists.items() for j in js if j["action"] == "backup"]
    chosen = backups[::max(1, len(backups) // HERD_SAMPLE_JOBS)][:HERD_SAMPLE_JOBS]
    expiring = [(n, js[-1]) for n, js in list(lists.items())[::max(1, len(lists) // HERD_SAMPLE_NODES)]
                if js and js[-1]["action"] == "backup_expire"][:HERD_SAMPLE_NODES]
    os.environ.update(TABLE_NAME="bench-herd", DYNAMODB_ENDPOINT_URL="", NOTIFY_TOKEN="")
    get_settings.cache_clear()
    dynamo._table.cache_clear()
    deps_module._deps_for.cache_clear()
    from app import app

    schema = costmodel.Schema.from_create_table(table_schema.create_table_kwargs("bench-herd"))
    figures: dict[str, PostFigures] = {}
    writes: list[costmodel.JobWrites] = []
    with mock_aws():
        import boto3

        table_schema.create_table(boto3.client("dynamodb"), "bench-herd")
        meter = benchtable.Meter(deps_module.get_deps().table, schema)
        weigh = boto3.client("dynamodb")

        def stored() -> int:
            pages = weigh.get_paginator("scan").paginate(TableName="bench-herd")
            return sum(costmodel.stored_bytes(i, schema) for p in pages for i in p["Items"])

        with Client(app) as client, benchtable.LogTap() as tap:
            def post(record: dict[str, Any], kind: str = "") -> costmodel.Units:
                meter.take()
                tap.take()
                start = time.perf_counter()
                resp = client.http.post("/api/v2/system/notify", body=json.dumps(record),
                                        headers={"Content-Type": "application/json"})
                wall = time.perf_counter() - start
                assert resp.status_code == 200, resp.body
                tally, (log_bytes, _) = meter.take(), tap.take()
                if kind:
                    figures.setdefault(f"{kind} {record['state']}", PostFigures()).add(
                        wall, tally, log_bytes)
                return tally.units

            now = datetime.now(UTC).replace(microsecond=0)
            today = now - timedelta(seconds=90)
            for _, job in chosen:  # yesterday's run: each job's baseline
                for record in benchtable.run_records(job, today - timedelta(days=1), size=2**29):
                    post(record)
            before = stored()
            for node, job in chosen:
                units = costmodel.Units()
                rid = ""
                for record in benchtable.run_records(job, today, size=2**29 + 4096):
                    units.add(post(record, "backup"))
                    rid = record["rid"]
                writes.append(_job_writes("backup", units, rid, job["id"], node,
                                          record_app(job)))
            after_backups = stored()
            # each node's expire job, every minute at second 0: the runs of ten minutes in a
            # row (what is kept of an expire success depends on its minute), counted per run
            minute = now.replace(second=0, microsecond=0)
            before_run = minute - timedelta(minutes=11)
            before_run -= timedelta(minutes=before_run.minute % 10)  # a kept one: its item exists
            for _, job in expiring:  # each node's expire job ran before
                for record in benchtable.run_records(job, before_run, seconds=0.2):
                    post(record)
            before_expire = stored()
            for node, job in expiring:
                units = costmodel.Units()
                for back in range(EXPIRE_RUNS, 0, -1):
                    for record in benchtable.run_records(job, minute - timedelta(minutes=back),
                                                         seconds=0.2):
                        units.add(post(record, "expire"))
                        rid = record["rid"]
                writes.append(_job_writes("expire", _per_run(units, EXPIRE_RUNS), rid, "", node,
                                          ""))
            after_expire = stored()
    dynamo._table.cache_clear()
    deps_module._deps_for.cache_clear()
    growth = (after_backups - before) / len(chosen)
    return HerdSample(lists, figures, writes, before / len(chosen) - growth, growth,
                      (after_expire - before_expire) / len(expiring) / EXPIRE_RUNS)


EXPIRE_RUNS = 10  # the sampled expire runs per node, one a minute


def _per_run(units: costmodel.Units, runs: int) -> costmodel.Units:
    """``runs`` runs' units as one run's mean."""
    return costmodel.Units(units.rru / runs, units.wru / runs,
                           Counter({k: v / runs for k, v in units.keys.items()}))


def _job_writes(kind: str, units: costmodel.Units, rid: str, job_id: str, node: str, app: str
                ) -> costmodel.JobWrites:
    marks = (node, f"{int(ipaddress.IPv4Address(node)):08x}")
    return costmodel.JobWrites(kind, dict(units.keys), {
        k: "node" if k[1].startswith(EXPIRE_LAST) else  # the digest of the node's own dirs
        costmodel.key_scope(k[1], rid, job_id, marks, app) for k in units.keys})


def herd_crowds(lists: dict[str, list[Any]], spread_on: bool) -> dict[str, Counter[int]]:
    """Jobs starting in each second of HERD_DAY, by kind: every backup job on a schedule of
    HERD_MIX (shares taken in job order), spread by the item's hash when ``spread_on``
    (:func:`chalicelib.core.spread.resolve`, as SPREAD_SECONDS pushes it); every node's expire
    job, every minute (the spread leaves it at second 0)."""
    from chalicelib.core import spread

    mix: Counter[str] = Counter()
    expire: Counter[str] = Counter()
    backups = [j for js in lists.values() for j in js if j["action"] == "backup"]
    shares = [(spec, round(share * len(backups))) for spec, share in HERD_MIX.items()]
    specs = [spec for spec, count in shares for _ in range(count)]
    for job, spec in zip(backups, specs, strict=False):
        args = job["args"]
        digest = spread.item_hash(args["app"], args["proc"], args["volume"], args["instanceNo"])
        mix[spread.resolve(spec, digest, spread=spread_on)] += 1
    for js in lists.values():
        for job in js:
            if job["action"] == "backup_expire":
                expire[spread.resolve(job["spec"], bytes(32), spread=spread_on)] += 1
    return {"backup": spread.crowd(mix, HERD_DAY), "expire": spread.crowd(expire, HERD_DAY)}


def _clock(second: int) -> str:
    return f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"


def herd_rows(sample: HerdSample) -> list[Row]:
    """Per-key peak writes and peak notify requests at 2,000 nodes, spread off and on."""
    lists = sample.lists
    nodes = len(lists)
    apps = len({j["args"]["app"] for js in lists.values() for j in js if j["action"] == "backup"})
    backups = sum(1 for js in lists.values() for j in js if j["action"] == "backup")
    seconds = statistics.fmean(f.seconds for f in sample.posts.values())
    rows = []
    for spread_on in (False, True):
        crowds = herd_crowds(lists, spread_on)
        peaks = costmodel.key_peaks(sample.writes, crowds, nodes, apps)
        over = [p for p in peaks if p.wru_per_second > costmodel.PARTITION_WRITE_UNITS]
        label, how = (" (spread)", "SPREAD_SECONDS on") if spread_on else ("", "spread off")
        scenario = (f"notify posts of {nodes:,} nodes / {backups:,} backup jobs, every job at "
                    f"{', '.join(HERD_MIX)} ({how}), both records of a run in its first second, "
                    "and every node's expire job every minute: keys counted on "
                    f"{len(sample.writes)} sampled jobs' posts")
        rows.append(Row(
            f"herd keys{label}", scenario,
            "; ".join(f"{p.space} {p.key}: {p.wru_per_second:,.0f} WRU/s at {_clock(p.second)} "
                      f"({p.scope})" for p in peaks[:3])
            + f"; {len(over)} key{'s' if len(over) != 1 else ''} over 1,000",
            "<= 1,000 WRU/s per key (a partition's limit)", not over))
        rps, second = costmodel.peak_requests(crowds)
        running = costmodel.concurrency(rps, seconds)
        rows.append(Row(
            f"herd requests{label}", f"same: notify posts in the busiest second ({how})",
            f"{rps:,} posts/s at {_clock(second)}; {running:,.0f} notify functions at once "
            f"({seconds * 1000:.0f} ms a post)",
            f"<= {costmodel.API_GATEWAY_RPS:,} posts/s, <= {costmodel.LAMBDA_CONCURRENCY:,} at once",
            rps <= costmodel.API_GATEWAY_RPS and running <= costmodel.LAMBDA_CONCURRENCY))
    return rows


def cost_rows(sample: HerdSample, runs: dict[int, ScaleRun]) -> tuple[list[Row], list[str]]:
    """The month's bill at 200 and 2,000 nodes from the counted figures: the sampled posts' units,
    log bytes and durations, the no-op scheduled run measured at that size (or scaled by the
    nodes from the nearest size measured), the records' stored bytes; and its lines."""
    rows, details = [], []
    for nodes, target in COST_TARGETS.items():
        jobs_count = nodes * JOBS_PER_NODE
        measured = min(runs, key=lambda n: abs(n - nodes))
        run, scale = runs[measured], nodes / measured
        monthly = costmodel.monthly_posts(nodes, jobs_count)
        posts = tuple(costmodel.Post(kind, monthly[kind.split()[0]] / 2, f.wru, f.rru, f.log_bytes,
                                     f.seconds) for kind, f in sorted(sample.posts.items()))
        per_day = (jobs_count * sample.growth_per_job_day
                   + nodes * 24 * 60 * sample.growth_per_expire_run)
        fixed = jobs_count * sample.fixed_per_job

        def workload(days: float, posts: tuple[costmodel.Post, ...] = posts, run: ScaleRun = run,
                     scale: float = scale, per_day: float = per_day, fixed: float = fixed,
                     nodes: int = nodes, jobs_count: int = jobs_count) -> costmodel.Workload:
            return costmodel.Workload(
                nodes, jobs_count, posts, run.wall * scale, run.tally.units.wru * scale,
                run.tally.units.rru * scale, run.log_bytes * scale, API_MEMORY_MB,
                RECONCILE_MEMORY_MB, costmodel.retained(per_day, fixed, days),
                platform_log_bytes=LAMBDA_PLATFORM_LOG_BYTES, ingress="function-url",
                notify_memory_mb=NOTIFY_MEMORY_MB, notify_platform_log_bytes=0)

        retention = Settings().record_retention_days  # the store's default (0: for ever)
        kept_days = min(retention or COST_MONTH * costmodel.DAYS_PER_MONTH,
                        COST_MONTH * costmodel.DAYS_PER_MONTH)
        lines = costmodel.bill(workload(kept_days))
        total = costmodel.total(lines)
        first = costmodel.total(costmodel.bill(workload(min(kept_days, costmodel.DAYS_PER_MONTH))))
        kept = costmodel.total(costmodel.bill(workload(RETENTION_EXAMPLE_DAYS)))
        rest = costmodel.total(costmodel.bill(dataclasses.replace(  # as before: REST, API function
            workload(kept_days), ingress="rest", notify_memory_mb=0, notify_platform_log_bytes=None)))
        groups = {"Notify ingress": 0.0, "Lambda": 0.0, "DynamoDB": 0.0, "CloudWatch": 0.0}
        for line in lines:
            groups[next(g for g in groups if line.what.startswith(g))] += line.dollars
        source = (f"the no-op run measured at {measured:,} nodes" if measured == nodes else
                  f"the no-op run measured at {measured:,} nodes x {scale:g}")
        stored = (f"records kept {retention} days" if retention else "records kept for ever")
        rows.append(Row(
            f"cost {nodes:,}", f"a month of {nodes:,} nodes / {jobs_count:,} jobs, every job daily "
            f"(us-east-1 list prices, no free tier; {source}; {stored} (RECORD_RETENTION_DAYS="
            f"{retention}): the bill of month {COST_MONTH})",
            f"${total:,.0f}/month (" + ", ".join(f"{g} ${d:,.0f}" for g, d in groups.items())
            + f"); month 1: ${first:,.0f}; records kept {RETENTION_EXAMPLE_DAYS} days: "
            f"${kept:,.0f}; the posts through the REST API instead: ${rest:,.0f}",
            f"<= ${target}/month", total <= target))
        details += [f"\ncost {nodes:,} nodes ({source}):\n",
                    "| line | quantity | unit price | $/month |", "|---|---|---|---|"]
        details += [f"| {line.what} | {line.quantity:,.1f} {line.unit} | ${line.price:.10g} | "
                    f"{line.dollars:,.2f} |" for line in lines]
        details.append(f"| total | | | {total:,.2f} |")
    details += ["\nper post, as counted (means of the sampled posts):\n",
                "| post | DynamoDB calls | WRU | RRU | log bytes | through the handler | "
                "modelled Lambda duration |", "|---|---|---|---|---|---|---|"]
    details += [f"| {kind} | {f.calls:.1f} | {f.wru:.1f} | {f.rru:.1f} | {f.log_bytes:,.0f} | "
                f"{f.wall * 1000:.1f} ms | {f.seconds * 1000:.1f} ms |"
                for kind, f in sorted(sample.posts.items())]
    details.append(f"\nstored: {sample.fixed_per_job:,.0f} B per job whatever its age, "
                   f"{sample.growth_per_job_day:,.0f} B more per job-day, "
                   f"{sample.growth_per_expire_run:,.0f} B more per expire run (DynamoDB's "
                   "stored bytes: items and index entries, 100 B overhead each)")
    return rows, details


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


GROUPS = ("fanout", "generate", "reconcile", "cold", "scale", "pages", "records", "notify", "herd",
          "cost")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="100 nodes instead of 500, 10,000 records, 200 posts, the scale rows "
                             "at 200 nodes only: a few minutes")
    parser.add_argument("--only", default="", help="comma-separated groups of rows to run, of "
                        f"{', '.join(GROUPS)} (cost also runs scale and herd, not showing them)")
    parser.add_argument("--scale-nodes", default="", help="comma-separated cluster sizes of the "
                        "scale rows (default 200,2000; --quick 200)")
    parser.add_argument("--profile", default="", help="write the cProfile stats of each scale "
                        "size's no-op run to this path (suffixed with the nodes)")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else set(GROUPS)
    if only - set(GROUPS):
        parser.error(f"--only: unknown {', '.join(sorted(only - set(GROUPS)))}")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))  # 500 nodes' connections
    import logging

    logging.disable(logging.WARNING)  # a black-holed node is logged on purpose; keep the table clean
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    settings = dataclasses.replace(Settings(), table_name="bench", fanout_workers=64)
    started = time.perf_counter()
    rows: list[Row] = []
    if "fanout" in only:
        rows += bench_fanout(settings)
    if "generate" in only:
        rows.append(bench_generate())
    if "reconcile" in only:
        rows += bench_reconcile(settings, 100 if args.quick else 500)
    if "cold" in only:
        rows += bench_cold()
    scale_runs: dict[int, ScaleRun] = {}
    if only & {"scale", "cost"}:
        sizes = ([int(n) for n in args.scale_nodes.split(",")] if args.scale_nodes
                 else [200] if args.quick else [200, 2000])
        for nodes in sizes:
            found, scale_runs[nodes] = bench_scale(settings, nodes, args.profile)
            rows += found if "scale" in only else []
    if "pages" in only:
        rows.append(bench_pages())
    if "records" in only:
        rows.append(bench_records(10_000 if args.quick else 100_000))
    if "notify" in only:
        rows.append(bench_notify(200 if args.quick else 1000))
    details: list[str] = []
    if only & {"herd", "cost"}:
        sample = herd_sample()
        rows += herd_rows(sample) if "herd" in only else []
        if "cost" in only:
            found, details = cost_rows(sample, scale_runs)
            rows += found
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {platform.system()}; medians of {RUNS} runs; "
          f"{(time.perf_counter() - started) / 60:.1f} min\n")
    print("| row | scenario | measured | target | met |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.name} | {r.scenario} | {r.measured} | {r.target} | {'yes' if r.met else 'NO'} |")
    if details:
        prices = costmodel.Prices()
        print("\nunit prices (us-east-1, no free tier): " + ", ".join(
            f"{f.name} ${getattr(prices, f.name):.10g}" for f in dataclasses.fields(prices)))
        print("\n".join(details))
    missed = [r.name for r in rows if not r.met]
    if missed:
        print(f"\nmissed: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
