"""Pauses that cannot drift: a sleep or wakeup whose answer never came is kept on record (202,
unconfirmed), and every reconcile compares the pauses on record with the daemons' sleep flags on
the nodes with pauses and on a rotating slice of the others: a job found paused with no pause on
record is adopted with an end, a pause whose job runs is applied again."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from chalicelib.deps import Deps
from chalicelib.edges.backupd import BackupdClient
from chalicelib.edges.state import NodeStateStore
from chalicelib.usecases import jobs, reconcile
from tests.component.apiclient import error_of, post_form
from tests.component.test_backup_status import Clock

HELLO_DATA = "7f00000bb19d69edd273f3535f5cd42e6fcbd556"
ACTIONS = f"/api/v2/app/hello/cron/jobs/{HELLO_DATA}/actions"
NODE = "127.0.0.11"


def until_true(check, seconds: float = 10.0) -> None:
    """Wait for something a stand-in does on its own thread (not a timing window: the deadline
    only bounds a hang)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the stand-in never got there"
        time.sleep(0.02)


def status_item(api) -> dict:
    items = api.http.get("/api/v2/app/hello/backups/status").json_body["items"]
    return next(i for i in items if i["job_id"] == HELLO_DATA)


def paused_on_node(api) -> list[dict]:
    return [p for p in api.http.get("/api/v2/system/problems").json_body
            if p["kind"] == "paused_on_node"]


def test_a_sleep_the_daemon_applied_after_the_timeout_is_kept_and_confirmed(api, ddb, daemons):
    """The observed case: the daemon applied the sleep 1.6 s later (node timeout 1 s). Before,
    the answer was a 504 "nothing was changed" and the pause was rolled back: the job stayed
    paused on the daemon with nothing on record to end it."""
    assert api.http.post("/api/v2/system/reconcile").status_code == 200
    daemon = daemons[NODE]
    daemon.delay = 1.6
    resp = post_form(api, ACTIONS + "/sleep", [("until", "6h"), ("reason", "disk migration")])
    daemon.delay = 0
    assert resp.status_code == 202
    body = resp.json_body
    assert body["paused"] == HELLO_DATA and body["reason"] == "disk migration"
    assert body["confirmed"] is False and body["until"] and body["paused_at"]
    assert body["detail"] == (f"the daemon on {NODE} did not answer in time; the pause is kept "
                              "and checked on the next reconcile")
    until_true(lambda: daemon.sleeping() == {HELLO_DATA})  # it applied it after all
    item = status_item(api)
    # never backed up: "never" (a pause does not make a missing backup less missing), the pause shown
    assert item["status"] == "never" and item["pause"]["until"] == body["until"]
    assert "not confirmed" in item["reason"]
    summary = api.http.post("/api/v2/system/reconcile").json_body
    assert summary["pauses_reapplied"] == {} and summary["pauses_adopted"] == {}
    assert NodeStateStore(ddb).pause_of(NODE, HELLO_DATA).confirmed
    assert "not confirmed" not in status_item(api)["reason"]
    assert paused_on_node(api) == []
    assert len(daemon.received(f"/api/v1/cron/jobs/{HELLO_DATA}/actions/sleep", "POST")) == 1


def test_a_sleep_the_daemon_never_applied_is_applied_by_the_next_reconcile(api, ddb, daemons):
    assert api.http.post("/api/v2/system/reconcile").status_code == 200
    daemon = daemons[NODE]
    daemon.blackhole = True  # the request goes out; no answer, and the daemon never acts on it
    resp = post_form(api, ACTIONS + "/sleep", [("reason", "maintenance")])
    daemon.blackhole = False
    assert resp.status_code == 202 and resp.json_body["confirmed"] is False
    assert daemon.sleeping() == set()
    summary = api.http.post("/api/v2/system/reconcile").json_body
    assert summary["pauses_reapplied"] == {NODE: [HELLO_DATA]}
    assert daemon.sleeping() == {HELLO_DATA}
    assert NodeStateStore(ddb).pause_of(NODE, HELLO_DATA).confirmed
    again = api.http.post("/api/v2/system/reconcile").json_body
    assert again["pauses_reapplied"] == {} and again["pauses_adopted"] == {}


def test_a_refused_sleep_still_changes_nothing(api, ddb, daemons):
    assert api.http.post("/api/v2/system/reconcile").status_code == 200
    daemons[NODE].fail_status = 500
    resp = post_form(api, ACTIONS + "/sleep", [("reason", "maintenance")])
    daemons[NODE].fail_status = None
    assert resp.status_code == 502 and "nothing was changed" in error_of(resp)["error"]
    assert NodeStateStore(ddb).pauses() == {} and daemons[NODE].sleeping() == set()


def test_a_wakeup_whose_answer_never_came_ends_the_pause_and_the_reconcile_wakes_it(api, ddb,
                                                                                   daemons):
    assert api.http.post("/api/v2/system/reconcile").status_code == 200
    assert post_form(api, ACTIONS + "/sleep").status_code == 200
    daemon = daemons[NODE]
    daemon.blackhole = True
    resp = post_form(api, ACTIONS + "/wakeup")
    daemon.blackhole = False
    assert resp.status_code == 202
    assert resp.json_body["woken"] == HELLO_DATA and resp.json_body["confirmed"] is False
    assert NODE in resp.json_body["detail"] and "next reconcile wakes" in resp.json_body["detail"]
    assert daemon.sleeping() == {HELLO_DATA}  # the wakeup never reached it
    summary = api.http.post("/api/v2/system/reconcile").json_body
    assert summary["woken"] == {NODE: [HELLO_DATA]} and summary["pauses_adopted"] == {}
    assert daemon.sleeping() == set() and NodeStateStore(ddb).pauses() == {}
    assert status_item(api)["status"] != "paused"


def test_the_wakeup_of_a_job_not_paused_on_record_says_so(api, ddb, pushed):
    resp = post_form(api, ACTIONS + "/wakeup")
    assert resp.status_code == 200 and resp.json_body["was_paused"] is False
    assert "was not paused on record" in resp.json_body["detail"]
    assert post_form(api, ACTIONS + "/sleep").status_code == 200
    resp = post_form(api, ACTIONS + "/wakeup")
    assert resp.json_body == "OK"


def test_a_job_paused_on_its_node_with_no_pause_on_record_is_adopted_and_ends(api, settings, ddb,
                                                                             daemons, logs):
    clock = Clock(datetime(2026, 12, 3, 6, 0, tzinfo=UTC))
    deps = Deps(settings, clock, ddb)
    reconcile.run(deps)
    BackupdClient(NODE, settings).job_action(HELLO_DATA, "sleep")  # someone, on the node itself
    runs = []
    while len(runs) < 20 and not (runs and runs[-1]["pauses_adopted"]):
        clock.now += timedelta(minutes=1)
        runs.append(reconcile.run(deps).summary)
    assert runs[-1]["pauses_adopted"] == {NODE: [HELLO_DATA]} and len(runs) <= 10
    [line] = logs.events("pause_adopted")
    assert line["level"] == "WARNING" and line["jobs"] == {NODE: [HELLO_DATA]}
    pause = deps.state.pause_of(NODE, HELLO_DATA)
    assert pause.reason == "found paused on the node" and pause.adopted
    assert pause.until.startswith("2027-01-02")  # now + PAUSE_MAX_DAYS (30)
    [problem] = paused_on_node(api)
    assert (problem["app"], problem["proc"], problem["instance"], problem["volume"]) == \
        ("hello", "hello.web.web", 1, "/data")
    assert HELLO_DATA in problem["reason"] and pause.until in problem["reason"]
    item = status_item(api)
    assert item["status"] == "never" and "no pause on record" in item["reason"] and item["pause"]
    assert reconcile.run(deps).summary["pauses_adopted"] == {}  # once
    clock.now += timedelta(days=30)
    assert reconcile.run(deps).summary["woken"] == {NODE: [HELLO_DATA]}
    assert daemons[NODE].sleeping() == set() and deps.state.pauses() == {}
    assert paused_on_node(api) == []


def test_a_pause_on_record_whose_job_runs_on_its_node_is_applied_again(settings, ddb, daemons):
    deps = Deps(settings, table=ddb)
    reconcile.run(deps)
    jobs.action(deps, "hello", HELLO_DATA, "sleep", "2d", "migration")
    BackupdClient(NODE, settings).job_action(HELLO_DATA, "wakeup")  # someone, on the node itself
    summary = reconcile.run(deps).summary
    assert summary["pauses_reapplied"] == {NODE: [HELLO_DATA]} and summary["pauses_adopted"] == {}
    assert daemons[NODE].sleeping() == {HELLO_DATA}
    assert deps.state.pause_of(NODE, HELLO_DATA).reason == "migration"


def test_each_node_is_compared_once_in_the_window_and_paused_ones_every_run(settings, ddb, daemons):
    """One GET /cron/jobs per node: nodes with pauses on record every run, every other node once
    in any NODE_CHECK_MINUTES consecutive runs, not every run (2,000 nodes every minute)."""
    clock = Clock(datetime(2026, 12, 3, 6, 0, tzinfo=UTC))
    deps = Deps(settings, clock, ddb)
    reconcile.run(deps)
    jobs.action(deps, "hello", HELLO_DATA, "sleep", "2d")
    for d in daemons.values():
        d.requests.clear()
    for _ in range(settings.node_check_minutes):
        clock.now += timedelta(minutes=1)
        reconcile.run(deps)
    asked = {ip: len(d.received("/api/v1/cron/jobs", "GET")) for ip, d in daemons.items()}
    assert asked == {"127.0.0.11": 10, "127.0.0.12": 1, "127.0.0.13": 1}


def test_a_node_pushed_this_run_is_not_paused_twice(settings, ddb, daemons):
    deps = Deps(settings, table=ddb)
    reconcile.run(deps)
    jobs.action(deps, "hello", HELLO_DATA, "sleep", "2d")
    daemons[NODE].restart()  # it lost its jobs and their pause states
    for d in daemons.values():
        d.requests.clear()
    summary = reconcile.run(deps).summary
    assert summary["repaused"] == {NODE: [HELLO_DATA]} and summary["pauses_reapplied"] == {}
    assert len(daemons[NODE].received(f"/api/v1/cron/jobs/{HELLO_DATA}/actions/sleep")) == 1
    assert daemons[NODE].sleeping() == {HELLO_DATA}
