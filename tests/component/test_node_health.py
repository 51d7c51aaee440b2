"""Causes, not symptoms: a node whose cron is stopped, whose daemon does not answer, that runs
another list than the one pushed, or that does not post to this controller is a node problem,
with since when and the fix, on /system/problems, the plan, /system/ready, in the reason of every
item on that node, and in the log; it clears when the node is right again."""

from __future__ import annotations

import pytest

from chalicelib.settings import get_settings

NODE = "127.0.0.12"


@pytest.fixture
def every_node_read_each_run(monkeypatch):
    monkeypatch.setenv("NODE_CHECK_MINUTES", "1")
    get_settings.cache_clear()


def reconcile(api):
    resp = api.http.post("/api/v2/system/reconcile")
    assert resp.status_code == 200, resp.body
    return resp.json_body


def node_problems(api):
    return [p for p in api.http.get("/api/v2/system/problems").json_body if p["kind"] == "node"]


def items_on(api, node):
    items = api.http.get("/api/v2/app/hello/backups/status").json_body["items"]
    return [i for i in items if i["node"] == node]


def test_a_stopped_cron_is_named_as_the_cause_everywhere(api, ddb, daemons, logs):
    reconcile(api)
    stop = api.http.put(f"/api/v2/server/{NODE}/cron/actions/stop")
    assert stop.status_code == 200 and daemons[NODE].crond_status == "stopped"
    summary = reconcile(api)  # the node is not pushed again: its /debug is read
    assert summary["node_problems"] == 1
    [problem] = node_problems(api)
    assert problem["node"] == NODE and problem["problem"] == "crond_stopped" and problem["since"]
    assert problem["reason"] == (f"crond on {NODE} is stopped since {problem['since']}; start it: "
                                 f"PUT /api/v2/server/{NODE}/cron/actions/start")
    ready = api.http.get("/api/v2/system/ready")
    assert ready.status_code == 503
    checks = ready.json_body["checks"]
    assert not checks["nodes"]["ok"] and f"crond on {NODE} is stopped" in checks["nodes"]["detail"]
    assert not checks[f"backupd {NODE}"]["ok"]
    plan = api.http.get("/api/v2/system/reconcile/plan").json_body
    assert [p["kind"] for p in plan["node_problems"]] == ["crond_stopped"]
    on_node = items_on(api, NODE)
    assert on_node and all(i["reason"].startswith(f"crond on {NODE} is stopped since") or
                           f"but crond on {NODE} is stopped" in i["reason"] for i in on_node)
    assert all(i["next_run"] == "" for i in on_node)  # no run is promised on a stopped cron
    assert all(i["next_run"] for i in items_on(api, "127.0.0.11"))
    [line] = logs.events("node_problem")
    assert line["level"] == "WARNING" and line["node"] == NODE and "start it" in line["fix"]
    assert api.http.put(f"/api/v2/server/{NODE}/cron/actions/start").status_code == 200
    reconcile(api)
    assert node_problems(api) == []
    assert api.http.get("/api/v2/system/ready").json_body["checks"]["nodes"]["ok"]
    assert [line["kind"] for line in logs.events("node_problem_cleared")] == ["crond_stopped"]
    assert not logs.events("node_problem")[1:]  # said once, not every run


def test_a_daemon_that_does_not_answer_is_a_node_problem(api, ddb, daemons):
    reconcile(api)
    daemons[NODE].stop()
    reconcile(api)
    [problem] = node_problems(api)
    assert problem["problem"] == "unreachable" and f"the daemon on {NODE} does not answer" in \
        problem["reason"]
    since = problem["since"]
    reconcile(api)
    assert node_problems(api)[0]["since"] == since  # since when, kept across runs


def test_a_list_or_an_address_that_drifted_is_pushed_again(api, ddb, daemons, every_node_read_each_run,
                                                            monkeypatch):
    monkeypatch.setenv("ADVERTISE_URL", "http://ctl.example:8000")
    get_settings.cache_clear()
    reconcile(api)
    daemon = daemons[NODE]
    pushed = list(daemon.jobs)
    daemon.jobs = pushed[:1]  # someone replaced the node's list behind the controller's back
    daemon.notify = []  # and its notify addresses
    reconcile(api)
    kinds = sorted(p["problem"] for p in node_problems(api))
    assert kinds == ["list_drift", "notify_missing"]
    assert "1 pushed jobs missing" in next(p["reason"] for p in node_problems(api)
                                           if p["problem"] == "list_drift")
    reconcile(api)  # pushed again: the node runs its list and posts to us again
    assert [j["id"] for j in daemon.jobs] == [j["id"] for j in pushed]
    assert daemon.notify == ["http://ctl.example:8000/api/v2/system/notify"]
    reconcile(api)
    assert node_problems(api) == []
