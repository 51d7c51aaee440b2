"""Backup status routes and transition alerts, with records written the way notify writes them and
time passed in as a clock (nothing in DynamoDB is rewritten to fake it)."""

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.deps import Deps
from chalicelib.edges.state import Seen
from chalicelib.usecases import reconcile, schedule
from chalicelib.usecases import records as records_flow
from scripts.simcluster.server import Recorded, Reply, StandIn
from tests import reference

HELLO_DATA = "7f00000bb19d69edd273f3535f5cd42e6fcbd556"


class Receiver(StandIn):
    """A Slack-compatible incoming webhook on loopback; ``fail_status`` makes it fail."""

    def handle(self, req: Recorded) -> Reply:
        return Reply(200, "ok")

    @property
    def messages(self) -> list[dict]:
        return [json.loads(r.body) for r in self.received("/hook", "POST")]


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


class Clock:
    """A clock a test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def post(deps, state, start, reason=""):
    """A run of hello's /data job on 127.0.0.11, stored as notify stores it."""
    job = reference.job(HELLO_DATA)
    records_flow.store(deps, reference.record_of(job, state, start, reason=reason,
                                         result={"file": "f", "size": 5} if state == "success" else None))


def cycle(deps):
    """What the schedule does: a reconcile, then the alert check on what it read."""
    return schedule._run(deps)["alerts"]


def test_ok_to_failing_posts_exactly_one_message(settings, ddb, daemons, receiver):
    now = datetime.now(UTC)
    clock = Clock(now - timedelta(days=3))  # the jobs were pushed three days ago
    deps = Deps(dataclasses.replace(settings, alert_webhook_url=receiver.url + "/hook"), clock, ddb)
    assert cycle(deps) == 0
    clock.now = now
    post(deps, "success", now - timedelta(minutes=1))  # hello's /data on 127.0.0.11: ok
    assert cycle(deps) == 0 and receiver.messages == []
    post(deps, "failed", now, reason="preHook failed")
    assert cycle(deps) == 1
    [message] = receiver.messages
    assert message["status"] == "failing" and "(was ok)" in message["text"]
    assert message["text"].startswith("backup of hello hello.web.web instance 1 volume /data on "
                                      "127.0.0.11 is failing")  # in words first, the item after
    assert message["item"]["job_id"] == HELLO_DATA and "preHook failed" in message["text"]
    assert cycle(deps) == 0
    assert len(receiver.messages) == 1
    clock.now += timedelta(minutes=30)
    post(deps, "success", clock.now - timedelta(minutes=1))  # back: the recovery is said once
    assert cycle(deps) == 1 and cycle(deps) == 0
    recovered = receiver.messages[-1]
    assert recovered["event"] == "recovered" and recovered["status"] == "ok"
    assert "is ok again after 30 min" in recovered["text"]


def test_no_alert_on_first_sight(settings, ddb, daemons, receiver):
    """An item first seen already failing has no 'ok' to fall from: it is remembered, not posted."""
    deps = Deps(dataclasses.replace(settings, alert_webhook_url=receiver.url + "/hook"), table=ddb)
    post(deps, "failed", datetime.now(UTC) - timedelta(seconds=30))
    assert cycle(deps) == 0 and receiver.messages == []
    assert deps.state.statuses()["hello.web.web/1/data@127.0.0.11"].status == "failing"


def test_undelivered_alert_is_retried(settings, ddb, daemons, receiver):
    deps = Deps(dataclasses.replace(settings, alert_webhook_url=receiver.url + "/hook"), table=ddb)
    cycle(deps)
    deps.state.save_statuses({"hello.web.web/1/data@127.0.0.11": Seen("ok")})
    post(deps, "failed", datetime.now(UTC) - timedelta(seconds=30))
    receiver.fail_status = 500
    assert cycle(deps) == 0
    receiver.fail_status = None
    assert cycle(deps) == 1
    assert cycle(deps) == 0


def test_alert_memory_of_removed_items_is_forgotten(settings, ddb, daemons, lainlet, receiver):
    deps = Deps(dataclasses.replace(settings, alert_webhook_url=receiver.url + "/hook"), table=ddb)
    cycle(deps)
    assert any(k.startswith("mysql.worker.master/") for k in deps.state.statuses())
    lainlet.spec["mysql.worker.master"][0]["Annotation"] = "{}"  # mysql declares no backup any more
    reconcile.run(deps, confirm=True)
    cycle(deps)
    assert not any(k.startswith("mysql.worker.master/") for k in deps.state.statuses())


def test_status_routes(api, deps, daemons):
    assert api.http.post("/api/v2/system/reconcile").status_code == 200
    post(deps, "failed", datetime.now(UTC) - timedelta(seconds=30), "disk full")
    for d in daemons.values():
        d.requests.clear()
    resp = api.http.get("/api/v2/app/hello/backups/status")
    assert resp.status_code == 200
    assert not any(d.requests for d in daemons.values())  # lainlet + DynamoDB only
    items = {(i["instance"], i["volume"]): i for i in resp.json_body["items"]}
    assert set(items) == {(1, "/data"), (1, "/var/log/hello"), (2, "/data"), (2, "/var/log/hello")}
    assert items[(1, "/data")]["status"] == "failing"
    assert items[(2, "/data")]["status"] == "pending"  # just pushed, first run not due yet
    assert resp.json_body["counts"]["failing"] == 1
    system = api.http.get("/api/v2/system/backups/status").json_body
    assert system["apps"]["badcron"]["invalid"] == 1
    assert system["apps"]["ghost"]["invalid"] == 1  # its only node IP is not an IP
    assert sum(system["counts"].values()) == len(system["items"])
    assert api.http.get("/api/v2/app/nosuch/backups/status").status_code == 404


def _memory_items(ddb, pk):
    return [i for i in ddb.scan()["Items"] if i["pk"] == pk]


def test_alert_memory_is_one_item_per_node_and_moves_the_older_form(settings, ddb, daemons, receiver):
    """What the runs saw is kept as one item per node (a run reads a few hundred items, not one per
    backup item); memory an earlier version kept one item per key is read, then moved, so an
    item that was ``ok`` before the upgrade still alerts when it fails after it."""
    deps = Deps(dataclasses.replace(settings, alert_webhook_url=receiver.url + "/hook"), table=ddb)
    key = "hello.web.web/1/data@127.0.0.11"
    ddb.put_item(Item={"pk": "STATUS", "sk": key, "status": "ok", "since": "2026-01-01T00:00:00Z",
                       "owed": "", "told": False})  # as the version before wrote it
    assert deps.state.statuses()[key] == Seen("ok", "2026-01-01T00:00:00Z")
    post(deps, "failed", datetime.now(UTC) - timedelta(seconds=30))
    assert cycle(deps) == 1 and "failed" in receiver.messages[-1]["text"]
    assert _memory_items(ddb, "STATUS") == []  # moved
    nodes = {i["sk"] for i in _memory_items(ddb, "SEEN")}
    assert nodes == {"127.0.0.11", "127.0.0.12", "127.0.0.13", "-"}  # "-": items placed nowhere
    seen = deps.state.statuses()
    assert seen[key].status == "failing" and seen[key].told
    assert len(seen) == sum(len(json.loads(i["seen"])) for i in _memory_items(ddb, "SEEN"))
    assert cycle(deps) == 0  # told once


def test_an_unreadable_node_memory_is_forgotten_not_fatal(settings, ddb, daemons, receiver):
    deps = Deps(dataclasses.replace(settings, alert_webhook_url=receiver.url + "/hook"), table=ddb)
    cycle(deps)
    ddb.put_item(Item={"pk": "SEEN", "sk": "127.0.0.11", "seen": "{not json"})
    ddb.put_item(Item={"pk": "SEEN", "sk": "127.0.0.12", "seen": json.dumps({"x@127.0.0.12": [1]})})
    assert not any(k.endswith("@127.0.0.11") for k in deps.state.statuses())
    cycle(deps)  # the run goes on and remembers those nodes' items afresh
    assert any(k.endswith("@127.0.0.11") for k in deps.state.statuses())


def test_a_node_memory_rewrite_keeps_what_an_overlapping_run_saved(deps):
    """The alerts run after the reconcile's lease is released, so two runs' alerts may overlap
    (a slow run's archive check, a run-now beside the schedule). The older run rewrites a node's
    memory from what it read: it must not put back what the newer run changed of another key
    of that node (was: one key per item, so only the same key could be lost)."""
    told = "hello.web.web/1/data@127.0.0.11"
    other = "hello.web.web/1/var/log/hello@127.0.0.11"
    deps.state.save_statuses({told: Seen("ok", "t0"), other: Seen("ok", "t0")})
    older = deps.state.statuses()  # run A reads the memory...
    newer = deps.state.statuses()  # ...and so does run B, which tells the item went bad
    deps.state.save_statuses({told: Seen("failing", "t1", "", True)}, set(), newer)
    deps.state.save_statuses({other: Seen("pending", "t2")}, set(), older)  # A, later
    seen = deps.state.statuses()
    assert seen[other] == Seen("pending", "t2")
    assert seen[told] == Seen("failing", "t1", "", True)  # not "ok" again: told once


def test_a_carried_pause_memory_survives_an_overlapping_save(deps):
    """The reconcile moves a pause's memory to its job's new ID under the lease; a previous run's
    alerts, still going, must not write the node's memory back as it read it before the move."""
    node, old, new = "127.0.0.11", "7f00000b" + "a" * 32, "7f00000b" + "b" * 32
    item = f"hello.web.web/1/data@{node}"
    deps.state.save_statuses({f"pause:{node}#{old}": Seen("2026-12-31T00:00:00Z", "t0", "", True),
                              item: Seen("ok", "t0")})
    older = deps.state.statuses()
    deps.state.carry_pause_memory(node, new, old)
    deps.state.save_statuses({item: Seen("failing", "t1")}, set(), older)
    seen = deps.state.statuses()
    assert seen[f"pause:{node}#{new}"] == Seen("2026-12-31T00:00:00Z", "t0", "", True)
