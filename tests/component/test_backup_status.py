"""Backup status routes and transition alerts, with records written the way notify writes them."""

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import reconcile
from chalicelib.edges.records import RecordStore
from chalicelib.edges.state import NodeStateStore
from scripts.simcluster.server import Recorded, Reply, StandIn

HELLO_DATA = "7f00000bb19d69edd273f3535f5cd42e6fcbd556"


class Receiver(StandIn):
    """A Slack-compatible incoming webhook on loopback; ``fail`` makes it answer 500."""

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


def put(ddb, state, start, rid, job_id=HELLO_DATA, reason=""):
    stamp = start.strftime("%Y-%m-%dT%H:%M:%S.000000001Z")
    RecordStore(ddb).put({"id": job_id, "spec": "0 3 * * *", "action": "backup",
                          "args": {"app": "hello"}, "type": "cron", "sleep": False, "rid": rid,
                          "result": None, "state": state, "start": stamp, "end": stamp,
                          "reason": reason})


def test_ok_to_failing_posts_exactly_one_message(settings, ddb, daemons, receiver):
    settings = dataclasses.replace(settings, alert_webhook_url=receiver.url + "/hook")
    store = NodeStateStore(ddb)
    now = datetime.now(UTC)
    reconcile.run(settings, store)  # pushes the jobs: every item is new
    first = now - timedelta(days=3)  # make the jobs old enough for runs to be due
    store.save([dataclasses.replace(s, first_seen=tuple((j, first.strftime("%Y-%m-%dT%H:%M:%SZ"))
                                                        for j, _ in s.first_seen))
                for s in store.states().values()])
    put(ddb, "success", now - timedelta(minutes=1), "r1")  # hello's /data on 127.0.0.11: ok
    assert reconcile.run(settings, store)["alerts"] == 0
    assert receiver.messages == []
    put(ddb, "failed", now, "r2", reason="preHook failed")
    assert reconcile.run(settings, store)["alerts"] == 1
    [message] = receiver.messages
    assert message["status"] == "failing" and message["previous"] == "ok"
    assert message["job_id"] == HELLO_DATA and "preHook failed" in message["text"]
    assert reconcile.run(settings, store)["alerts"] == 0
    assert len(receiver.messages) == 1


def test_undelivered_alert_is_retried(settings, ddb, daemons, receiver):
    settings = dataclasses.replace(settings, alert_webhook_url=receiver.url + "/hook")
    store = NodeStateStore(ddb)
    reconcile.run(settings, store)
    store.save_statuses({"hello.web.web/1/data@127.0.0.11": "ok"})
    put(ddb, "failed", datetime.now(UTC), "r3")
    receiver.fail_status = 500
    assert reconcile.run(settings, store)["alerts"] == 0
    receiver.fail_status = None
    assert reconcile.run(settings, store)["alerts"] == 1
    assert reconcile.run(settings, store)["alerts"] == 0


def test_status_routes(api, ddb, daemons):
    assert api.http.post("/api/v2/system/reconcile").status_code == 200
    put(ddb, "failed", datetime.now(UTC), "r4", reason="disk full")
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
