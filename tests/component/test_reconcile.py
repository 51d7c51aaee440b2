"""Reconcile against a lainlet stand-in, stand-in daemons on loopback and moto."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.core.types import Pause
from chalicelib.deps import Deps
from chalicelib.errors import Conflict, LainletError
from chalicelib.usecases import reconcile
from scripts.simcluster.backupd import GO_ZERO

HELLO_DATA = "7f00000bb19d69edd273f3535f5cd42e6fcbd556"


@pytest.fixture
def store(deps):
    return deps.state


def pushes(daemons):
    """Nodes that received a job-list push so far, and forget them."""
    out = sorted(ip for ip, d in daemons.items() if d.received("/api/v1/cron/jobs", "PUT"))
    for d in daemons.values():
        d.requests.clear()
    return out


def run(deps_or_settings, store=None):
    """One run's summary (``run(settings, store)`` reads as the scheduled run does)."""
    deps = deps_or_settings if store is None else Deps(deps_or_settings, table=store.db.table)
    return reconcile.run(deps).summary


def test_first_run_pushes_each_node_once_then_nothing(settings, store, daemons):
    summary = run(settings, store)
    assert summary["pushed"] == ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
    assert [len(d.received("/api/v1/cron/jobs", "PUT")) for d in daemons.values()] == [1, 1, 1]
    assert daemons["127.0.0.11"].job_ids()[0] == HELLO_DATA
    assert summary["problems"] == 3
    pushes(daemons)
    again = run(settings, store)
    assert again["pushed"] == [] and again["unchanged"] == 3
    assert pushes(daemons) == []


def test_notify_address_is_set_with_token(settings, store, daemons):
    import dataclasses

    settings = dataclasses.replace(settings, advertise_url="http://ctl.example:8000",
                                   notify_token="s3cret")
    run(settings, store)
    assert daemons["127.0.0.13"].notify == ["http://ctl.example:8000/api/v2/system/notify?token=s3cret"]


def test_changing_one_apps_schedule_pushes_only_its_nodes(settings, store, daemons, lainlet):
    run(settings, store)
    pushes(daemons)
    pod = lainlet.spec["mysql.worker.master"][0]
    pod["Annotation"] = pod["Annotation"].replace("0 0 1 * * *", "0 30 2 * * *")
    summary = run(settings, store)
    assert summary["pushed"] == ["127.0.0.13"] and pushes(daemons) == ["127.0.0.13"]


def test_moving_an_app_pushes_the_new_node_and_clears_the_old(settings, store, daemons, lainlet):
    run(settings, store)
    pushes(daemons)
    lainlet.spec["mysql.worker.master"][0]["Containers"][0]["NodeIp"] = "127.0.0.12"
    summary = run(settings, store)
    assert summary["pushed"] == ["127.0.0.12", "127.0.0.13"]
    assert summary["cleared"] == ["127.0.0.13"]
    assert daemons["127.0.0.13"].jobs == []
    assert any(j["args"].get("app") == "mysql" for j in daemons["127.0.0.12"].jobs)
    pushes(daemons)
    assert run(settings, store)["pushed"] == []  # cleared once, not every run


@pytest.mark.parametrize("break_lainlet", [
    lambda ll: ll.stop(),
    lambda ll: setattr(ll, "spec", {}),
    lambda ll: setattr(ll, "raw_body", b"<html>garbage"),
    lambda ll: setattr(ll, "raw_body", b'{"a.web.web": "not a list"}'),
    lambda ll: setattr(ll, "fail_status", 500),
])
def test_broken_lainlet_changes_nothing(settings, store, daemons, lainlet, break_lainlet):
    run(settings, store)
    before = store.states()
    pushes(daemons)
    break_lainlet(lainlet)
    with pytest.raises(LainletError):
        run(settings, store)
    assert pushes(daemons) == []
    assert store.states() == before
    assert all(d.jobs for d in daemons.values())
    assert store.runs(1)[0]["ok"] is False and store.runs(1)[0]["error"]


def test_restarted_daemon_gets_its_list_and_pauses_back(settings, store, daemons):
    run(settings, store)
    daemons["127.0.0.11"].jobs[0]["sleep"] = True  # a user paused it through the API…
    store.set_pause("127.0.0.11", HELLO_DATA, Pause("2099-01-01T00:00:00Z"))  # …which also remembers it
    daemons["127.0.0.11"].restart()
    assert daemons["127.0.0.11"].jobs == [] and daemons["127.0.0.11"].update_time == GO_ZERO
    pushes(daemons)
    summary = run(settings, store)
    assert summary["restarted"] == ["127.0.0.11"] and summary["pushed"] == ["127.0.0.11"]
    assert daemons["127.0.0.11"].sleeping() == {HELLO_DATA}
    assert summary["repaused"] == {"127.0.0.11": [HELLO_DATA]}


def test_pause_of_a_removed_job_is_dropped_and_of_a_changed_id_follows(settings, store, daemons,
                                                                         lainlet):
    """A pause of a job no longer on the node goes; one whose item got a new id (its schedule
    edited) moves to the new id (history follows the item: core/lineage.py)."""
    run(settings, store)
    gone = "7f00000b" + "0" * 32
    store.set_pause("127.0.0.11", HELLO_DATA, Pause("2099-01-01T00:00:00Z", "migration"))
    store.set_pause("127.0.0.11", gone, Pause("2099-01-01T00:00:00Z"))
    pod = lainlet.spec["hello.web.web"][0]
    pod["Annotation"] = pod["Annotation"].replace('"0 3 * * *"', '"0 4 * * *"')  # new id
    summary = run(settings, store)
    [new] = [j["id"] for j in daemons["127.0.0.11"].jobs if j["spec"] == "0 4 * * *"
             and j["args"]["volume"] == "/data"]
    assert {n: {j: p.reason for j, p in ids.items()} for n, ids in store.pauses().items()} == \
        {"127.0.0.11": {new: "migration"}}
    assert summary["repaused"] == {"127.0.0.11": [new]}
    assert daemons["127.0.0.11"].sleeping() == {new}


def test_down_node_is_retried_after_it_returns(settings, store, daemons):
    daemons["127.0.0.12"].stop()
    summary = run(settings, store)
    assert summary["pushed"] == ["127.0.0.11", "127.0.0.13"]
    assert list(summary["failed"]) == ["127.0.0.12"]
    assert "127.0.0.12" not in store.states()
    pushes(daemons)
    daemons["127.0.0.12"].start()
    summary = run(settings, store)
    assert summary["pushed"] == ["127.0.0.12"] and summary["failed"] == {}
    assert pushes(daemons) == ["127.0.0.12"]


def test_plan_predicts_the_next_run(settings, store, daemons, lainlet):
    run(settings, store)
    lainlet.spec["mysql.worker.master"][0]["Containers"][0]["NodeIp"] = "127.0.0.12"
    daemons["127.0.0.11"].restart()
    predicted = reconcile.plan_answer(reconcile.observe(Deps(settings, table=store.db.table)))
    assert predicted["push"] == ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
    assert predicted["clear"] == ["127.0.0.13"] and predicted["restarted"] == ["127.0.0.11"]
    node12 = next(n for n in predicted["nodes"] if n["node"] == "127.0.0.12")
    assert len(node12["added"]) == 1 and node12["added"][0].startswith("7f00000c")  # mysql, moved
    assert node12["removed"] == [] and node12["reasons"] == ["changed"]
    node13 = next(n for n in predicted["nodes"] if n["node"] == "127.0.0.13")
    assert node13["removed"] == ["7f00000d021a80f569807176a366a7fac5c3ba76"] and node13["jobs"] == 0
    pushes(daemons)
    summary = run(settings, store)
    assert summary["pushed"] == predicted["push"] and summary["cleared"] == predicted["clear"]


def test_routes(api, ddb, daemons, lainlet, monkeypatch):
    plan = api.http.get("/api/v2/system/reconcile/plan")
    assert plan.status_code == 200 and plan.json_body["push"] == ["127.0.0.11", "127.0.0.12",
                                                                   "127.0.0.13"]
    assert not any(d.received("/api/v1/cron/jobs", "PUT") for d in daemons.values())
    resp = api.http.post("/api/v2/system/reconcile")
    assert resp.status_code == 200 and resp.json_body["pushed"] == plan.json_body["push"]
    history = api.http.get("/api/v2/system/reconcile/history").json_body
    assert [h["pushed"] for h in history] == [plan.json_body["push"]]
    problems = api.http.get("/api/v2/system/problems").json_body
    # a fresh controller knows no good backup yet: that is each item's state, not a spec problem
    assert sorted(p["kind"] for p in problems) == [
        "bad_node_ip", "bad_schedule", "malformed_annotation"]
    items = api.http.get("/api/v2/system/backups/status").json_body["items"]
    held = [i for i in items if i["expiry_held"]]
    assert len(held) == 4 and all("no good backup recorded yet" in i["expiry_held"] for i in held)
    lainlet.stop()
    resp = api.http.post("/api/v2/system/reconcile")
    assert resp.status_code == 502 and "lainlet" in json.loads(resp.body)["error"]
    from chalicelib.settings import get_settings

    monkeypatch.setenv("API_TOKEN", "t")
    get_settings.cache_clear()
    assert api.http.post("/api/v2/system/reconcile").status_code == 401


def test_scheduled_function_runs_the_reconcile(env, ddb, daemons, lainlet):
    from chalice.test import Client

    from app import app

    with Client(app) as client:
        event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event",
                                                detail={}, resources=[])
        result = client.lambda_.invoke("scheduled_reconcile", event).payload
        assert result["ok"] is True
        assert result["pushed"] == ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
        lainlet.stop()
        failed = client.lambda_.invoke("scheduled_reconcile", event).payload
        assert failed["ok"] is False and "lainlet" in failed["error"]


def test_first_seen_is_kept_across_pushes_of_a_changed_list(settings, ddb, daemons, lainlet):
    """A job's first push time survives later pushes of its node's list (freshness reads it)."""
    times = iter([datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)])
    deps = Deps(settings, lambda: now, ddb)
    now = next(times)
    reconcile.run(deps)
    pod = lainlet.spec["hello.web.web"][0]
    pod["Annotation"] = pod["Annotation"].replace("*/30 * * * *", "*/20 * * * *")  # new job on .11
    now = next(times)
    assert reconcile.run(deps).summary["pushed"] == ["127.0.0.11"]
    first_seen = dict(deps.state.states()["127.0.0.11"].first_seen)
    assert first_seen[HELLO_DATA] == "2026-11-01T00:00:00.000000Z"  # unchanged job: kept
    assert sorted(first_seen.values()) == ["2026-11-01T00:00:00.000000Z",
                                           "2026-11-02T00:00:00.000000Z"]


def test_run_history_expires_after_a_week(deps, daemons):
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    deps.state.add_run({"started": "2026-11-25T12:00:00.000000Z", "ok": True}, now)
    item = deps.table.get_item(Key={"pk": "RECONCILE", "sk": "2026-11-25T12:00:00.000000Z"})["Item"]
    assert int(item["ttl"]) == int(datetime(2026, 12, 2, 12, tzinfo=UTC).timestamp())


def test_one_reconcile_at_a_time(api, ddb, daemons):
    """A run that holds the lease (its pushes wait on the daemons) makes a second caller a 409."""
    import threading

    gate = threading.Event()  # the daemons accept no list until the second caller was answered
    for d in daemons.values():
        d.push_gate = gate
    first: dict = {}
    worker = threading.Thread(target=lambda: first.update(r=api.http.post("/api/v2/system/reconcile")))
    worker.start()
    deadline = time.monotonic() + 10
    while not any(d.received("/api/v1/cron/jobs", "PUT") for d in daemons.values()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    second = api.http.post("/api/v2/system/reconcile")
    gate.set()
    worker.join(30)
    assert first["r"].status_code == 200 and first["r"].json_body["pushed"]
    assert second.status_code == 409
    body = json.loads(second.body)
    assert body["code"] == "reconcile_running" and "started" in body["error"]
    history = api.http.get("/api/v2/system/reconcile/history").json_body
    assert len(history) == 1  # the refused caller ran nothing and recorded nothing
    assert api.http.post("/api/v2/system/reconcile").status_code == 200  # the lease was given back


def test_a_crashed_runs_lease_expires(deps, daemons):
    past = datetime.now(UTC) - timedelta(hours=1)
    deps.state.acquire_lease("crashed", past, 300)  # never released
    assert reconcile.run(deps).summary["ok"] is True
    with pytest.raises(Conflict, match="run holder"):
        deps.state.acquire_lease("holder", datetime.now(UTC), 300)
        deps.state.acquire_lease("other", datetime.now(UTC), 300)


def test_node_states_written_before_ids_were_compressed_are_still_read(deps):
    """A controller upgraded in place reads the states its previous version wrote (job ids and
    first-push times as a list and a map) and writes them back compressed."""
    deps.table.put_item(Item={"pk": "NODES", "sk": "127.0.0.11", "version": "v1",
                              "job_ids": ["a", "b"], "job_count": 3, "pushed_at": "t",
                              "first_seen": {"a": "2026-11-01T00:00:00Z"}})
    state = deps.state.states()["127.0.0.11"]
    assert (state.job_ids, state.first_seen) == (("a", "b"), (("a", "2026-11-01T00:00:00Z"),))
    deps.state.save([state])
    item = deps.table.get_item(Key={"pk": "NODES", "sk": "127.0.0.11"})["Item"]
    assert "ids_z" in item and "job_ids" not in item and "first_seen" not in item
    assert deps.state.states()["127.0.0.11"] == state
