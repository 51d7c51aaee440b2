"""Metrics that leave the functions: EMF in the one line of a reconcile run, of a notify post and
of a status pass (read back as CloudWatch would: the ``_aws`` member names the metrics of the
line), and the Prometheus scrape, read by prometheus_client's parser."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chalicelib.core.freshness import BAD
from chalicelib.usecases import health, schedule
from tests import reference

METRICS = "/api/v2/system/metrics"


def emf_values(line: dict, namespace: str = "backupctl") -> dict[str, float]:
    """The metrics CloudWatch extracts from one EMF log line (checked the way it checks them)."""
    directive = line["_aws"]["CloudWatchMetrics"]
    assert isinstance(line["_aws"]["Timestamp"], int)
    assert [d["Namespace"] for d in directive] == [namespace]
    assert directive[0]["Dimensions"] == [["Service"]] and line["Service"] == "backupctl"
    names = [m["Name"] for m in directive[0]["Metrics"]]
    assert all(isinstance(line[n], (int, float)) and not isinstance(line[n], bool) for n in names)
    return {n: line[n] for n in names}


def test_a_reconcile_run_emits_its_nodes_and_the_status_of_every_item(deps, pushed, logs):
    summary = schedule._run(deps)
    [line] = logs.events("reconcile")
    values = emf_values(line)
    items = health.assess(deps, deps.cluster())
    assert values["ReconcileFailed"] == 0
    assert values["NodesPushed"] == len(summary["pushed"]) and values["NodesFailed"] == 0
    assert values["ItemsBad"] == sum(1 for i in items if i.status in BAD)
    assert values["ItemsPending"] == sum(1 for i in items if i.status == "pending") > 0  # just pushed
    assert values["ItemsPending"] + values["ItemsInvalid"] == len(items)
    assert next(u["Unit"] for u in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                if u["Name"] == "RunDuration") == "Milliseconds"


def test_a_failed_run_emits_reconcile_failed(deps, pushed, lainlet, logs):
    lainlet.stop()
    assert schedule.scheduled(deps)["ok"] is False
    assert [emf_values(line) for line in logs.events("reconcile")] == [{"ReconcileFailed": 1}]


def test_a_run_kept_out_by_the_lease_is_not_a_failure(deps, pushed, logs):
    deps.state.acquire_lease("other", deps.clock(), 300)
    assert schedule.scheduled(deps)["ok"] is False
    assert logs.events("reconcile") == []


def test_the_namespace_is_the_setting(deps, pushed, logs):
    import dataclasses

    from chalicelib.deps import Deps

    other = Deps(dataclasses.replace(deps.settings, metrics_namespace="backupctl/prod"),
                 table=deps.table)
    schedule._run(other)
    emf_values(logs.events("reconcile")[0], namespace="backupctl/prod")


def test_notify_posts_count_as_accepted_or_refused(api, ddb, logs):
    _, record = reference.notify_samples()[1]
    ok = api.http.post("/api/v2/system/notify", headers={"Content-Type": "application/json"},
                       body=json.dumps(record))
    bad = api.http.post("/api/v2/system/notify", headers={"Content-Type": "application/json"},
                        body=b"{not json")
    assert (ok.status_code, bad.status_code) == (200, 400)
    [accepted] = logs.events("notify")  # one line per post: what it was, and the count
    assert emf_values(accepted) == {"NotifyAccepted": 1} and accepted["rid"] == record["rid"]
    assert accepted["state"] == "failed" and accepted["level"] == "WARNING"
    assert accepted["reason"] == record["reason"] and accepted["node"] == "127.0.0.13"
    assert (accepted["proc"], accepted["volume"], accepted["instance"]) == \
        ("mysql.worker.master", "/var/lib/mysql", 1)
    assert [emf_values(line) for line in logs.events("notify_refused_count")] == [{"NotifyRefused": 1}]


def test_the_first_page_of_the_system_status_is_a_status_pass(api, ddb, pushed, logs, monkeypatch):
    from chalicelib.core.formats import pages

    monkeypatch.setattr(pages, "MAX_PAGE_BYTES", 2000)
    first = api.http.get("/api/v2/system/backups/status")
    token = first.headers["X-Backupctl-Next"]
    assert api.http.get(f"/api/v2/system/backups/status?next={token}").status_code == 200
    [line] = logs.events("metrics_status")
    counts = first.json_body["counts"]
    assert emf_values(line)["ItemsNever"] == counts["never"] > 0  # never pushed: never backed up
    assert emf_values(line)["ItemsBad"] == sum(counts[s] for s in BAD)


def scrape(api, query=""):
    resp = api.http.get(METRICS + query)
    assert resp.status_code == 200, resp.body
    assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {f.name: f for f in text_string_to_metric_families(resp.body.decode())}


def test_the_scrape_has_every_item_of_the_status_route(api, ddb, pushed):
    status = api.http.get("/api/v2/system/backups/status").json_body
    found = scrape(api)
    scraped = {(s.labels["app"], s.labels["proc"], s.labels["volume"], int(s.labels["instance"]),
                s.labels["node"], s.labels["status"])
               for s in found["backupctl_backup_status"].samples}
    assert scraped == {(i["app"], i["proc"], i["volume"], i["instance"], i["node"], i["status"])
                       for i in status["items"]}
    counts = {s.labels["status"]: s.value for s in found["backupctl_backup_items"].samples}
    assert counts == {k: float(v) for k, v in status["counts"].items()}


def test_after_a_run_the_scrape_says_how_the_reconcile_went(api, deps, pushed):
    schedule._run(deps)
    found = scrape(api)
    assert found["backupctl_reconcile_last_run_success"].samples[0].value == 1
    assert found["backupctl_reconcile_consecutive_failures"].samples[0].value == 0


def test_one_app_can_be_scraped_alone(api, ddb, pushed):
    found = scrape(api, "?app=hello")
    assert {s.labels["app"] for s in found["backupctl_backup_status"].samples} == {"hello"}
    assert api.http.get(METRICS + "?app=nosuch").status_code == 404
    bad = api.http.get(METRICS + "?app=..%2Fx")
    assert bad.status_code == 400 and bad.json_body["code"] == "bad_app"


def test_a_scrape_too_large_for_one_answer_says_to_scrape_per_app(api, ddb, pushed, monkeypatch):
    monkeypatch.setattr(health, "MAX_PAGE_BYTES", 500)
    resp = api.http.get(METRICS)
    assert resp.status_code == 400 and resp.json_body["code"] == "too_large"
    assert "?app=" in resp.json_body["error"]


@pytest.mark.parametrize("path", ["/", "/api/v2/dashboard"])
def test_the_dashboard_page_is_served_with_a_policy_that_runs_only_its_own_script(api, path):
    resp = api.http.get(path)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    policy = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'sha256-" in policy
    assert "unsafe-inline" not in policy and "http" not in policy.replace("'self'", "")
    assert b"<script>" in resp.body and b"cdn" not in resp.body.lower()
