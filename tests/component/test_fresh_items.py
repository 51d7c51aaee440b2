"""Each job's slim freshness item: what a scheduled run reads instead of every job's whole records,
and the upgrade of a table from before it (built once by a run, posts going on meanwhile)."""

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from unittest.mock import ANY

from chalicelib.core import jobs
from chalicelib.core.cluster import Cluster
from chalicelib.deps import Deps
from chalicelib.edges.records import RecordStore
from chalicelib.settings import Settings
from chalicelib.usecases import health, schedule
from chalicelib.usecases import records as records_flow
from tests import reference

HELLO_DATA = "7f00000bb19d69edd273f3535f5cd42e6fcbd556"  # on 127.0.0.11
MYSQL = "7f00000d021a80f569807176a366a7fac5c3ba76"  # on 127.0.0.13


def job(job_id: str) -> dict:
    """The reference cluster's job of that ID, as generated (and pushed)."""
    cluster = Cluster.from_backupspec(reference.backupspec())
    return next(j for js in jobs.generate(cluster).values() for j in js if j["id"] == job_id)


def post(deps: Deps, job_id: str, state: str, start: datetime, reason: str = "") -> None:
    records_flow.store(deps, reference.record_of(
        job(job_id), state, start, reason=reason,
        result={"file": f"f{start:%d}", "size": 1000} if state == "success" else None))


def as_before(table) -> None:
    """The table as a controller from before the slim items left it: whole items only."""
    with table.batch_writer() as batch:
        for item in table.scan(ProjectionExpression="pk, sk")["Items"]:
            if item["pk"].startswith("FRESH"):
                batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})


def statuses(deps: Deps) -> list[dict]:
    """What the items say, without what moves with the clock or with a scheduled run's own push
    (the next run; the reason, which names when the job reached its node, a time a run that
    finds a node's list drifted on its rotating check renews)."""
    cluster = Cluster.from_backupspec(reference.backupspec())
    return [{k: v for k, v in i.to_dict().items() if k not in ("next_run", "reason")}
            for i in health.assess(deps, cluster)]


def test_an_upgraded_table_answers_the_same_before_and_after_its_first_run(settings, ddb,
                                                                           pushed):
    # the stand-in daemons do not list the archives posted here: the scheduled run's rotating
    # archive check (a slice of the nodes every minute) would mark a good backup gone, and the
    # answer change, in the minutes its slice held 127.0.0.11 or .13 (a flake in CI): a slice of
    # one node in a million minutes keeps this test to what it checks, the upgrade
    settings = dataclasses.replace(settings, node_check_minutes=1_000_003)
    now = datetime.now(UTC)
    schedule._run(Deps(settings, table=ddb))  # the jobs reach their nodes
    as_before(ddb)
    old = Deps(settings, table=ddb)  # an older controller: the whole latest items
    post(old, HELLO_DATA, "success", now - timedelta(days=1, minutes=5))
    post(old, HELLO_DATA, "success", now - timedelta(minutes=5))
    post(old, MYSQL, "failed", now - timedelta(minutes=3), reason="preRun exited 1")
    as_before(ddb)
    expected = statuses(Deps(settings, table=ddb))
    assert {i["status"] for i in expected if i["job_id"] in (HELLO_DATA, MYSQL)} == {"ok",
                                                                                     "failing"}
    upgraded = Deps(settings, table=ddb)
    assert statuses(upgraded) == expected  # read the old way until the slim items are built
    assert schedule.scheduled(upgraded)["ok"]
    assert ddb.get_item(Key={"pk": "FRESH", "sk": "ready"}).get("Item")
    slim = ddb.get_item(Key={"pk": "FRESH#127.0.0.13", "sk": MYSQL})["Item"]
    assert json.loads(slim["last"]) == {"start": ANY, "end": ANY, "reason": "preRun exited 1"}
    assert statuses(Deps(settings, table=ddb)) == expected
    whole = [i for i in ddb.scan()["Items"] if i["pk"] == "JOBLAST"]
    post(upgraded, MYSQL, "success", now - timedelta(minutes=1))  # and notify keeps them
    assert {i["status"] for i in statuses(Deps(settings, table=ddb))
            if i["job_id"] == MYSQL} == {"ok"}
    # ... alone: no post writes the one partition every job's whole items shared (a hot key)
    assert [i for i in ddb.scan()["Items"] if i["pk"] == "JOBLAST"] == whole


def test_a_post_while_the_slim_items_are_built_is_not_lost(ddb, monkeypatch):
    now = datetime.now(UTC)
    as_before(ddb)
    deps = Deps(Settings(), table=ddb)  # an older controller, posting on while the run builds
    post(deps, HELLO_DATA, "success", now - timedelta(days=1))
    as_before(ddb)
    store = RecordStore(ddb)
    read = store._fresh_from_whole
    calls = []

    def read_then_a_post() -> dict:
        found = read()
        if not calls:  # the run read the whole items; a failure is posted before it writes
            post(deps, HELLO_DATA, "failed", now - timedelta(minutes=2), reason="disk full")
        calls.append(1)
        return found

    monkeypatch.setattr(store, "_fresh_from_whole", read_then_a_post)
    assert store.build_fresh() == 1 and len(calls) == 3  # built, the change written, then calm
    latest = store.latest_by_job(["127.0.0.11"])[HELLO_DATA]
    assert latest["last"]["state"] == "failed" and latest["last"]["reason"] == "disk full"
    assert latest["success"]["start"] == latest["good"]["start"] != latest["last"]["start"]
    assert store.build_fresh() is None  # once


class Queries:
    """Counts the Queries a table's client sends, by partition (botocore's own event hook)."""

    def __init__(self, table) -> None:
        self.partitions: list[str] = []
        self.events = table.meta.client.meta.events
        self.events.register("before-call.dynamodb.Query", self._count)

    def _count(self, params, **_) -> None:
        self.partitions.append(json.loads(params["body"])["ExpressionAttributeValues"][":v0"]["S"])

    def stop(self) -> None:
        self.events.unregister("before-call.dynamodb.Query", self._count)


def test_a_warm_reader_reads_again_only_the_nodes_written_since(settings, ddb):
    """The scheduled function runs every minute in a warm process: it keeps what it read of
    each node's slim items and reads again only the nodes whose change mark a write renewed —
    written by another process (notify), a retried post, or an edit of a run."""
    now = datetime.now(UTC)
    writer = Deps(settings, table=ddb)  # notify, another function
    post(writer, HELLO_DATA, "success", now - timedelta(minutes=5))
    post(writer, MYSQL, "success", now - timedelta(minutes=5))
    nodes = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
    reader = RecordStore(ddb)
    assert reader.latest_by_job(nodes)[MYSQL]["last"]["state"] == "success"
    queries = Queries(ddb)
    try:
        again = reader.latest_by_job(nodes)
        assert queries.partitions == ["FRESH#127.0.0.12"]  # no items, no mark: asked each time
        assert again[HELLO_DATA]["good"]["start"] == again[HELLO_DATA]["last"]["start"]
        post(writer, MYSQL, "failed", now - timedelta(minutes=1), reason="preRun exited 1")
        queries.partitions.clear()
        seen = RecordStore(ddb).latest_by_job(nodes)  # a new store in the same process: kept too
        assert sorted(queries.partitions) == ["FRESH#127.0.0.12", "FRESH#127.0.0.13"]
        assert seen[MYSQL]["last"]["reason"] == "preRun exited 1"
        assert seen[HELLO_DATA] == again[HELLO_DATA]
        # a post the daemon sends again (after a 503) writes no run, but renews the mark
        post(writer, MYSQL, "failed", now - timedelta(minutes=1), reason="preRun exited 1")
        queries.partitions.clear()
        reader.latest_by_job(nodes)
        assert "FRESH#127.0.0.13" in queries.partitions
        # a good backup known gone (an edit of the run) is seen by the warm reader
        good = seen[MYSQL]["good"]
        assert RecordStore(ddb).mark_gone(MYSQL, good["result"]["file"], "deleted by hand")
        assert reader.latest_by_job(nodes)[MYSQL]["good"]["gone"] == "deleted by hand"
    finally:
        queries.stop()


def test_a_write_while_a_warm_read_is_under_way_never_breaks_it(settings, ddb, monkeypatch):
    """The local runner serves notify on other threads of the process that runs the schedule: a
    post stored while a status read is under way takes its node out of what the process keeps.
    The read answers whole all the same (was: KeyError, a 500 on the status route, in CI)."""
    from chalicelib.edges import dynamo, records

    monkeypatch.setattr(records, "READ_WORKERS", 1)  # moto in-process: one thread at a time
    now = datetime.now(UTC)
    deps = Deps(settings, table=ddb)
    post(deps, HELLO_DATA, "success", now - timedelta(minutes=5))
    post(deps, MYSQL, "success", now - timedelta(minutes=5))
    nodes = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
    store = RecordStore(ddb)
    store.latest_by_job(nodes)  # both marked nodes kept
    post(deps, MYSQL, "failed", now - timedelta(minutes=1), reason="preRun exited 1")
    real = dynamo.Dynamo.query

    def meanwhile(self, pk, **kw):  # while the run reads 127.0.0.13, a post for 127.0.0.11 lands
        if pk == "FRESH#127.0.0.13":
            post(deps, HELLO_DATA, "failed", now - timedelta(minutes=1), reason="exit status 2")
        return real(self, pk, **kw)

    monkeypatch.setattr(dynamo.Dynamo, "query", meanwhile)
    seen = store.latest_by_job(nodes)
    assert seen[MYSQL]["last"]["reason"] == "preRun exited 1"
    assert seen[HELLO_DATA]["last"]["state"] == "success"  # as it was when this read began
    monkeypatch.setattr(dynamo.Dynamo, "query", real)
    assert store.latest_by_job(nodes)[HELLO_DATA]["last"]["reason"] == "exit status 2"


def test_a_change_mark_without_its_token_does_not_break_the_read(settings, ddb):
    """A mark item without ``v`` (a hand edit, a partial restore) reads as no mark: the node is
    read, and the run goes on (was: KeyError in every run and every status read)."""
    deps = Deps(settings, table=ddb)
    post(deps, HELLO_DATA, "success", datetime.now(UTC) - timedelta(minutes=5))
    ddb.put_item(Item={"pk": "FRESH#127.0.0.11", "sk": "~changed"})
    assert HELLO_DATA in RecordStore(ddb).latest_by_job(["127.0.0.11"])
    ddb.put_item(Item={"pk": "FRESH#127.0.0.11", "sk": "~changed", "v": ""})
    assert HELLO_DATA in RecordStore(ddb).latest_by_job(["127.0.0.11"])


def test_a_write_of_this_process_is_read_back_by_it_whatever_the_replica_says(settings, ddb,
                                                                             monkeypatch):
    """The scheduled run marks a good backup gone (or recovers records from the archives) and
    reads the latest runs again at once, to assess what it just wrote. The marks are read
    eventually consistently: a replica that has not seen the renewed mark yet must not make the
    process serve the copy it kept from before its own write."""
    from chalicelib.edges import dynamo

    deps = Deps(settings, table=ddb)
    post(deps, HELLO_DATA, "success", datetime.now(UTC) - timedelta(minutes=5))
    store = RecordStore(ddb)
    assert "gone" not in store.latest_by_job(["127.0.0.11"])[HELLO_DATA]["good"]
    replica = {json.dumps(k, sort_keys=True): i for i in ddb.scan()["Items"]
               if i["sk"] == "~changed" for k in [{"pk": i["pk"], "sk": i["sk"]}]}
    real = dynamo.Dynamo.get_many

    def lagging(self, keys, *, consistent=False):  # the replica a quick read may hit
        if consistent:
            return real(self, keys, consistent=True)
        return [replica[json.dumps(k, sort_keys=True)] for k in keys
                if json.dumps(k, sort_keys=True) in replica]

    monkeypatch.setattr(dynamo.Dynamo, "get_many", lagging)
    assert store.mark_gone(HELLO_DATA, "f" + f"{datetime.now(UTC) - timedelta(minutes=5):%d}",
                           "deleted by hand")
    assert store.latest_by_job(["127.0.0.11"])[HELLO_DATA]["good"].get("gone") == "deleted by hand"
