"""Fan-out: nodes are asked concurrently, and a dead or silent node is named, not waited on."""

import json

import pytest

from tests.conftest import start_daemons

NODES = [f"127.0.0.{i}" for i in range(21, 31)]


def big_proc_spec():
    annotation = json.dumps({"backup": [{"procname": "big.web.web", "volume": "/data",
                                         "schedule": "0 3 * * *", "expire": "7d", "mode": "full"}]})
    return {"big.web.web": [
        {"Annotation": annotation, "InstanceNo": i + 1,
         "Containers": [{"Id": f"c{i}", "Ip": "172.20.0.1", "NodeIp": ip, "NodeName": ip}]}
        for i, ip in enumerate(NODES)]}


@pytest.fixture
def big(lainlet, daemon_port):
    lainlet.spec = big_proc_spec()
    nodes = start_daemons(NODES, daemon_port)
    for i, daemon in enumerate(nodes.values()):
        daemon.add_backup("big", "big.web.web", i + 1, "/data")
    yield nodes
    for d in nodes.values():
        d.stop()


def test_nodes_are_asked_concurrently(api, big):
    for daemon in big.values():
        daemon.delay = 0.2
    resp = api.http.get("/api/v2/app/big/proc/web/backups")
    assert resp.status_code == 200 and len(resp.json_body) == 10
    calls = [d.received("/api/v1/backup/json")[0] for d in big.values()]
    # every request started before any answered: all ten were in flight together
    assert max(c.started for c in calls) < min(c.finished for c in calls)


def test_black_holed_node_is_named_and_the_rest_answered(api, big):
    big["127.0.0.25"].blackhole = True
    resp = api.http.get("/api/v2/app/big/proc/web/backups")
    assert resp.status_code == 200
    assert resp.headers["X-Backupctl-Unreachable"] == "127.0.0.25"
    assert sorted(e["instanceNo"] for e in resp.json_body) == [1, 2, 3, 4, 6, 7, 8, 9, 10]


def test_dead_nodes_are_named(api, big):
    big["127.0.0.22"].stop()
    big["127.0.0.29"].stop()
    resp = api.http.get("/api/v2/app/big/cron/jobs")
    assert resp.status_code == 200 and resp.json_body == []  # no jobs pushed in this test
    assert resp.headers["X-Backupctl-Unreachable"] == "127.0.0.22, 127.0.0.29"


def test_silent_node_fails_a_lookup_that_may_be_on_it(api, big):
    big["127.0.0.21"].blackhole = True
    resp = api.http.get("/api/v2/app/big/proc/web/backups/big-big.web.web-1-data-1.tar.gz")
    assert resp.status_code == 504
    assert "127.0.0.21 did not answer" in json.loads(resp.body)["error"]
