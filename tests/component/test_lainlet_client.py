"""The lainlet client against a real HTTP stand-in: answers, filters and every way lainlet fails."""

import dataclasses
import socket

import pytest

from chalicelib.edges import lainlet as lainlet_client
from chalicelib.errors import LainletError, LainletTimeout


def test_fetches_whole_cluster(lainlet, settings):
    cluster = lainlet_client.fetch_cluster(settings)
    assert "hello.web.web" in cluster.procs and len(cluster.problems) == 3
    req = lainlet.received("/v2/backupspec")[0]
    assert req.query == {"watch": ["0"]}


def test_fetches_one_app(lainlet, settings):
    cluster = lainlet_client.fetch_cluster(settings, "hello")
    assert list(cluster.procs) == ["hello.web.web"] and cluster.problems == []
    assert lainlet.received()[0].query == {"watch": ["0"], "appname": ["hello"]}


def test_app_filter_never_leaks_a_prefix_sibling(lainlet, settings):
    # lainlet filters by key prefix: "hello" must not return a proc of app "hello2"
    lainlet.spec["hello2.web.web"] = lainlet.spec["hello.web.web"]
    assert lainlet_client.fetch_cluster(settings, "hello").apps() == ["hello"]


def test_down(settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = dataclasses.replace(settings, lainlet_url=f"http://127.0.0.1:{port}")
    with pytest.raises(LainletError, match=r"lainlet at http://127.0.0.1:\d+ is unreachable"):
        lainlet_client.fetch_cluster(down)


def test_error_status(lainlet, settings):
    lainlet.fail_status = 503
    with pytest.raises(LainletError, match="answered HTTP 503"):
        lainlet_client.fetch_cluster(settings)


def test_timeout(lainlet, settings):
    lainlet.delay = 1.5
    with pytest.raises(LainletTimeout, match="did not answer within 1s") as e:
        lainlet_client.fetch_cluster(settings)
    assert e.value.status == 504


@pytest.mark.parametrize("body, message", [
    (b"<html>oops", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    (b'{"a": "\xff"}', "not JSON"),
])
def test_garbage(lainlet, settings, body, message):
    lainlet.raw_body = body
    with pytest.raises(LainletError, match=message) as e:
        lainlet_client.fetch_cluster(settings)
    assert e.value.status == 502


def test_one_unreadable_proc_does_not_fail_the_answer(lainlet, settings):
    lainlet.spec["evil.web.web"] = [{"InstanceNo": "x"}]
    cluster = lainlet_client.fetch_cluster(settings)
    assert "hello.web.web" in cluster.procs and "evil.web.web" in cluster.unreadable


def test_a_spec_too_large_is_refused_and_the_next_fetch_is_whole(lainlet, settings, monkeypatch):
    """The rest of a refused answer must not be read as the answer to the next fetch (even when
    the pool's own check cannot see it yet)."""
    import urllib3.connectionpool

    monkeypatch.setattr(lainlet_client, "MAX_ANSWER", 100_000)
    monkeypatch.setattr(urllib3.connectionpool, "is_connection_dropped", lambda conn: False)
    for _ in range(3):
        lainlet.raw_body = b'{"x": "' + b"y" * 4_000_000 + b'"}'
        with pytest.raises(LainletError, match="more than 100,000 bytes") as e:
            lainlet_client.fetch_cluster(settings)
        assert e.value.status == 502
        lainlet.raw_body = None
        assert "hello.web.web" in lainlet_client.fetch_cluster(settings).procs


def test_spread_seconds_reaches_every_cluster_fetched(lainlet, settings):
    """SPREAD_SECONDS is applied where the cluster is built, so every route (the reconcile's
    push, the status, an app's jobs and its job-id check) sees the same schedules and ids."""
    from chalicelib.core.jobs import generate

    spread = dataclasses.replace(settings, spread_seconds=True)
    whole, one_app = generate(lainlet_client.fetch_cluster(spread)), generate(
        lainlet_client.fetch_cluster(spread, "hello"))
    ids = {j["id"]: j["spec"] for node_jobs in whole.values() for j in node_jobs if j["id"]}
    app_ids = {j["id"]: j["spec"] for node_jobs in one_app.values() for j in node_jobs if j["id"]}
    assert app_ids and app_ids.items() <= ids.items()
    assert all(len(spec.split()) == 6 for spec in app_ids.values())
    plain = generate(lainlet_client.fetch_cluster(settings, "hello"))
    assert not {j["id"] for js in plain.values() for j in js if j["id"]} & app_ids.keys()


def test_a_warm_process_builds_the_cluster_again_only_when_lainlets_answer_changed(lainlet,
                                                                                    settings):
    """Every run asks lainlet; a process whose answer is byte for byte the one it built its last
    cluster from keeps that cluster (with its placements and jobs worked out): at 2,000 nodes the
    parse and the build are ~3 s CPU of every minute's run."""
    from chalicelib.core.jobs import placements

    first = lainlet_client.fetch_cluster(settings)
    worked_out = list(placements(first))
    again = lainlet_client.fetch_cluster(settings)
    assert again is first and list(placements(again)) == worked_out
    assert len(lainlet.received("/v2/backupspec")) == 2  # still asked every time
    lainlet.spec["evil.web.web"] = [{"InstanceNo": "x"}]  # lainlet's answer changes
    changed = lainlet_client.fetch_cluster(settings)
    assert changed is not first and "evil.web.web" in changed.unreadable
    assert "evil.web.web" not in first.unreadable  # the cluster handed out before is untouched
    one_app = lainlet_client.fetch_cluster(settings, "hello")  # an app's own filtered copy
    assert one_app is not changed and list(one_app.procs) == ["hello.web.web"]
    assert lainlet_client.fetch_cluster(settings) is changed and len(changed.procs) > 1
    spread = lainlet_client.fetch_cluster(dataclasses.replace(settings, spread_seconds=True))
    assert spread is not changed  # built with other schedules
    lainlet.fail_status = 503  # a failed answer is never served from what was kept
    with pytest.raises(LainletError, match="answered HTTP 503"):
        lainlet_client.fetch_cluster(dataclasses.replace(settings, spread_seconds=True))
