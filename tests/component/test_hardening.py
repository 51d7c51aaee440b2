"""Hostile and broken inputs, seen through HTTP: no forged record, no poisoned spec, no fault turns
into a 500 or a wipe (lainlet, daemons and DynamoDB behind real loopback servers and moto)."""

from __future__ import annotations

import copy
import json
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.edges.state import NodeStateStore
from chalicelib.settings import get_settings
from tests import reference
from tests.component.apiclient import error_of, post_form

HELLO = "/api/v2/app/hello/proc/web/backups"
FULL = "hello-hello.web.web-1-data-1795563919.tar.gz"
HELLO_JOB = "7f00000bb19d69edd273f3535f5cd42e6fcbd556"
MYSQL_JOB = "7f00000d021a80f569807176a366a7fac5c3ba76"
BIG = "9" * 5000
DEEP = "[" * 5000 + "]" * 5000


def reconcile(api, query=""):
    resp = api.http.post("/api/v2/system/reconcile" + query)
    assert resp.status_code == 200, resp.body
    return resp.json_body


def backup_jobs(daemons):
    return {ip: sorted(j["id"] for j in d.jobs if j["id"]) for ip, d in daemons.items()}


# -- 3. no 5xx for bad input ------------------------------------------------------------------------

BAD_INPUT = [
    ("GET", f"/api/v2/app/hello/cron/records?total={BIG}", None, None, 400),
    ("GET", f"/api/v2/app/hello/cron/records?month={BIG}", None, None, 400),
    ("GET", f"/api/v2/app/hello/cron/records?year={BIG}", None, None, 400),
    ("GET", f"/api/v2/system/reconcile/history?total={BIG}", None, None, 400),
    ("POST", f"{HELLO}/{FULL}/actions/migrate", f"volume=/data&to={BIG}", "form", 400),
    ("POST", f"{HELLO}/{FULL}/actions/migrate", json.dumps({"volume": "/data", "to": BIG}), "json", 400),
    ("POST", f"{HELLO}/actions/delete", '{"files":' + DEEP + "}", "json", 400),
    ("POST", f"{HELLO}/actions/delete", '{"files": ["\\ud800"]}', "json", 400),
    ("POST", f"{HELLO}/{FULL}/actions/recover", '{"files": ["\\ud800"]}', "json", 400),
    ("POST", f"{HELLO}/actions/delete", "files=%ff%fe", "form", 400),
    ("POST", f"{HELLO}/actions/delete", "files=" + "x" * 70_000, "form", 413),
    ("POST", "/api/v2/system/notify", DEEP, "json", 400),
    ("POST", f"{HELLO}/actions/delete", "files=x", "text/plain", 415),
    ("DELETE", HELLO, None, None, 405),
    ("PUT", "/api/v2/system/health", None, None, 405),
    ("HEAD", HELLO, None, None, 405),
    ("GET", "/api/v2/app/hello/proc/web/backups?volume=%00", None, None, 400),
    ("GET", "/api/v2/app/hello/proc/web/backups?volume=" + "v" * 5000, None, None, 400),
    ("GET", "/api/v2/app/" + "a" * 300 + "/cron/jobs", None, None, 400),
]
TYPES = {"form": "application/x-www-form-urlencoded", "json": "application/json"}


@pytest.mark.parametrize("method, path, body, kind, status", BAD_INPUT,
                         ids=[f"{m} {p[:50]} {(b or '')[:12]}" for m, p, b, _, _ in BAD_INPUT])
def test_bad_input_is_a_4xx_with_the_error_shape(api, ddb, daemons, method, path, body, kind, status):
    headers = {"Content-Type": TYPES.get(kind, kind)} if kind else {}
    resp = api.http.request(method, path, headers=headers, body=(body or "").encode())
    assert resp.status_code == status, resp.body[:300]
    assert error_of(resp)["error"] and len(resp.body) < 2000  # never the input echoed back whole
    assert not any(d.received("/api/v1/backup/delete") for d in daemons.values())


def test_framework_errors_say_what_to_do(api):
    resp = api.http.request("DELETE", HELLO, headers={}, body=b"")
    assert error_of(resp) == {"error": "Unsupported method: DELETE; this route allows GET",
                              "code": "method_not_allowed"}
    resp = api.http.post(f"{HELLO}/actions/delete", headers={"Content-Type": "text/csv"}, body=b"x")
    assert error_of(resp)["code"] == "unsupported_media_type"
    assert "application/x-www-form-urlencoded" in error_of(resp)["error"]


# -- 1. records are facts: freshness only advances on valid records ----------------------------------

def test_a_forged_success_keeps_no_failing_backup_fresh(api, ddb, daemons):
    reconcile(api)
    job = next(j for j in daemons["127.0.0.13"].jobs if j["id"] == MYSQL_JOB)
    now = datetime.now(UTC)
    failed = reference.record_of(job, "failed", now - timedelta(minutes=1), reason="disk full")
    assert api.http.post("/api/v2/system/notify", body=json.dumps(failed),
                         headers={"Content-Type": "application/json"}).status_code == 200
    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    forged = [reference.record_of(job, "success", far, result={"file": "f", "size": 9}),
              {**reference.record_of(job, "success", now - timedelta(minutes=1),
                                     result={"file": "f", "size": 9}), "end": 123},
              {**failed, "state": "success", "reason": ""}]
    codes = [api.http.post("/api/v2/system/notify", body=json.dumps(f),
                           headers={"Content-Type": "application/json"}).status_code for f in forged]
    assert codes == [400, 400, 409]
    status = api.http.get("/api/v2/app/mysql/backups/status")
    assert status.status_code == 200
    assert [i["status"] for i in status.json_body["items"]] == ["failing"]
    assert api.http.get("/api/v2/system/backups/status").status_code == 200


# -- 2. one app can never take the others down ----------------------------------------------------

def poisoned_spec() -> dict:
    spec = reference.backupspec()
    items = [{"procname": "evil.web.web", "volume": f"/{n}", "schedule": schedule, "expire": expire}
             for n, (schedule, expire) in enumerate([
                 ("0 3 * * *", "1000000000d"), ("² * * * *", "1d"), ("@every " + "9" * 30 + "s", "1d"),
                 ("0 3 * * *", "9" * 5000 + "d"), ("@every 2s", "1d")])]
    node = {"Id": "e1", "Ip": "x", "NodeIp": "127.0.0.12", "NodeName": "n"}
    spec["evil.web.web"] = [{"Annotation": json.dumps({"backup": items}), "InstanceNo": 1,
                             "Containers": [node]}]
    spec["deep.web.web"] = [{"Annotation": "[" * 100_000 + "]" * 100_000, "InstanceNo": 1,
                             "Containers": [node]}]
    spec["broken.web.web"] = [{"InstanceNo": "x"}]
    return spec


def test_a_poisoned_spec_is_problems_and_everything_else_goes_on(api, ddb, daemons, lainlet):
    lainlet.spec = poisoned_spec()
    summary = reconcile(api)
    assert summary["ok"] is True and summary["pushed"] == ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
    assert HELLO_JOB in backup_jobs(daemons)["127.0.0.11"]
    assert MYSQL_JOB in backup_jobs(daemons)["127.0.0.13"]
    node12 = daemons["127.0.0.12"].jobs
    # evil's only good schedule runs; its dir with an expire the daemon would wrap never expires
    assert [j["args"]["volume"] for j in node12 if j["args"].get("app") == "evil"] == ["/0"]
    expiring = node12[-1]["args"]["info"][::2]
    evil = "/data/lain/volumes/evil/evil.web.web/1/"
    assert not [d for d in expiring if d.startswith(evil)]  # bad expire, or no good backup yet
    held = api.http.get("/api/v2/system/reconcile/plan").json_body["expiry_held"]
    assert [h["dir"] for h in held if h["dir"].startswith(evil)] == [evil + "1", evil + "2", evil + "4"]
    for path in ("/api/v2/system/cron/jobs", "/api/v2/system/problems", "/api/v2/system/backups/status",
                 "/api/v2/system/reconcile/plan", "/api/v2/system/reconcile/history"):
        assert api.http.get(path).status_code == 200, path
    kinds = {(p["app"], p["kind"]) for p in api.http.get("/api/v2/system/problems").json_body}
    assert {("evil", "bad_expire"), ("evil", "bad_schedule"), ("evil", "busy_schedule"),
            ("deep", "malformed_annotation"), ("broken", "malformed_pod")} <= kinds
    assert api.http.get("/api/v2/system/reconcile/history").json_body[0]["ok"] is True


def test_the_scheduled_run_never_raises_and_every_run_is_in_the_history(env, ddb, daemons, lainlet,
                                                                         monkeypatch):
    from chalice.test import Client

    from app import app
    from chalicelib.usecases import reconcile

    with Client(app) as client:
        event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event",
                                                detail={}, resources=[])
        lainlet.raw_body = b"[" * 100_000
        assert client.lambda_.invoke("scheduled_reconcile", event).payload["ok"] is False
        lainlet.raw_body = None
        monkeypatch.setattr(reconcile, "generate", lambda *args: 1 / 0)  # a bug in the run
        result = client.lambda_.invoke("scheduled_reconcile", event).payload
        assert result == {"ok": False, "error": "internal error (ZeroDivisionError)"}
        history = client.http.get("/api/v2/system/reconcile/history").json_body
    assert [h["ok"] for h in history] == [False, False]
    assert "ZeroDivisionError" in history[0]["error"] and "not JSON" in history[1]["error"]


def test_the_schedule_starts_at_the_top_of_every_minute():
    from app import app

    [source] = [s for s in app.event_sources if s.name == "scheduled_reconcile"]
    assert source.schedule_expression.to_string() == "cron(* * * * ? *)"


# -- 4. faults are fast and named -------------------------------------------------------------------



def test_dynamodb_down_is_a_503_naming_it(api, daemons, dynamodb_down):
    sample = reference.notify_samples()[1][1]
    for method, path, body in (("GET", "/api/v2/app/mysql/cron/records", b""),
                               ("POST", "/api/v2/system/notify", json.dumps(sample).encode()),
                               ("GET", "/api/v2/system/backups/status", b""),
                               ("POST", "/api/v2/system/reconcile", b"")):
        resp = api.http.request(method, path, headers={"Content-Type": "application/json"}, body=body)
        assert resp.status_code == 503, (path, resp.body)
        assert error_of(resp)["code"] == "store_unavailable" and "DynamoDB" in error_of(resp)["error"]


def test_sleep_with_dynamodb_down_leaves_the_daemon_alone(api, pushed, dynamodb_down):
    daemons = pushed
    resp = post_form(api, f"/api/v2/app/hello/cron/jobs/{HELLO_JOB}/actions/sleep")
    assert resp.status_code == 503
    assert daemons["127.0.0.11"].sleeping() == set()
    assert not daemons["127.0.0.11"].received(f"/api/v1/cron/jobs/{HELLO_JOB}/actions")


def test_sleep_that_the_daemon_refuses_is_rolled_back(api, ddb, daemons, settings):

    reconcile(api)
    daemons["127.0.0.11"].fail_status = 500
    resp = post_form(api, f"/api/v2/app/hello/cron/jobs/{HELLO_JOB}/actions/sleep")
    assert resp.status_code == 502
    assert "nothing was changed (the job is running)" in error_of(resp)["error"]
    assert NodeStateStore(ddb).pauses() == {}


@pytest.mark.parametrize("garbage", [b"5", b'"x"', b"[1,2]", b'[{"job": 5}]', b"null", b"<html>",
                                     b'[{"name": 5}]', b'{"rid": 5}', b"{}",
                                     b'{"crond_status": "started", "updateTime": 5}',
                                     b'[{"name":"n","source":"/s","volume":"/v","created":"c",'
                                     b'"size":1,"instanceNo":"abc"}]'])
def test_daemon_garbage_is_never_passed_on_or_a_500(api, ddb, daemons, garbage):
    reconcile(api)
    daemons["127.0.0.11"].garbage = garbage
    answers = {
        "list": api.http.get(HELLO),
        "info": api.http.get(f"{HELLO}/{FULL}"),
        "open": api.http.get(f"{HELLO}/hello-hello.web.web-1-var-log-hello?open=true"),
        "jobs": api.http.get("/api/v2/app/hello/cron/jobs"),
        "job": api.http.get(f"/api/v2/app/hello/cron/jobs/{HELLO_JOB}"),
        "run": post_form(api, f"/api/v2/app/hello/cron/jobs/{HELLO_JOB}/actions/run"),
        "recover": post_form(api, f"{HELLO}/{FULL}/actions/recover"),
        "debug": api.http.get("/api/v2/server/127.0.0.11/debug"),
    }
    for what, resp in answers.items():
        assert resp.status_code < 500 or resp.status_code == 502, (what, resp.status_code, resp.body)
        if resp.status_code == 502:
            assert "127.0.0.11" in error_of(resp)["error"], what
    for what in ("list", "jobs"):  # lists: the other node answers, the garbage one is named
        assert answers[what].status_code == 200
        if garbage != b"null":  # Go writes an empty list as null: that one is no garbage
            assert answers[what].headers["X-Backupctl-Unreachable"] == "127.0.0.11"
    assert answers["open"].status_code in (404, 502)  # never the garbage with a 200
    assert answers["debug"].status_code == 502  # none of it is a debug object


def test_a_daemon_answering_another_apps_job_is_not_passed_on(api, ddb, daemons):
    reconcile(api)
    mysql = next(j for j in daemons["127.0.0.13"].jobs if j["id"] == MYSQL_JOB)
    daemons["127.0.0.11"].garbage = json.dumps(mysql).encode()  # well-formed, and not hello's
    resp = api.http.get(f"/api/v2/app/hello/cron/jobs/{HELLO_JOB}")
    assert resp.status_code == 502 and error_of(resp)["code"] == "backupd_garbage"
    assert "127.0.0.11" in error_of(resp)["error"] and "mysql.worker.master" not in resp.body.decode()


# -- 5. never wipe on a partial answer --------------------------------------------------------------

def test_a_partial_answer_holds_its_removals_until_it_persists(api, ddb, daemons, lainlet, logs):
    reconcile(api)
    before = backup_jobs(daemons)
    del lainlet.spec["hello.web.web"]  # lainlet forgets one app
    first = reconcile(api)
    assert backup_jobs(daemons) == before  # nothing removed
    assert first["held"] == {"127.0.0.11": before["127.0.0.11"], "127.0.0.12": before["127.0.0.12"]}
    assert first["held_runs"] == 1 and first["held_reasons"] == [
        "lainlet's answer would remove 4 of 5 backup jobs (80% > 20%)",
        "lainlet's answer would leave 127.0.0.11 without any backup job",
        "lainlet's answer would leave 127.0.0.12 without any backup job"]
    [held_line] = logs.events("removals_held")
    assert held_line["jobs"] == 4 and held_line["runs"] == 1 and held_line["of"] == 3
    plan = api.http.get("/api/v2/system/reconcile/plan").json_body
    assert plan["held"] == first["held"] and plan["held_runs"] == 2
    held = [p for p in api.http.get("/api/v2/system/problems").json_body if p["kind"] == "held_removal"]
    assert {(p["app"], p["instance"], p["volume"]) for p in held} == {
        ("hello", 1, "/data"), ("hello", 1, "/var/log/hello"), ("hello", 2, "/data"),
        ("hello", 2, "/var/log/hello")}
    assert reconcile(api)["held_runs"] == 2 and backup_jobs(daemons) == before
    third = reconcile(api)  # the same answer for REMOVAL_CONFIRM_RUNS (3) runs: it is real
    assert third["held"] == {} and third["removals_applied"] == 4
    assert backup_jobs(daemons)["127.0.0.11"] == [] and backup_jobs(daemons)["127.0.0.13"] == [MYSQL_JOB]


def test_held_removals_can_be_confirmed_by_an_operator(api, ddb, daemons, lainlet, monkeypatch):
    monkeypatch.setenv("REMOVAL_GUARD_PERCENT", "50")  # 2 of 5 jobs: only the garbled spec holds them
    get_settings.cache_clear()
    reconcile(api)
    pod = lainlet.spec["hello.web.web"][1]
    pod["Annotation"] = "{garbage"  # hello instance 2's annotation cannot be read
    held = reconcile(api)
    assert held["held"] == {"127.0.0.12": sorted(backup_jobs(daemons)["127.0.0.12"])}
    assert held["held_reasons"] == ["lainlet's answer would leave 127.0.0.12 without any backup job",
                                    "lainlet's answer for hello.web.web is unreadable"]
    resp = api.http.post("/api/v2/system/reconcile?confirm=everything")
    assert resp.status_code == 400 and error_of(resp)["code"] == "bad_confirm"
    monkeypatch.setenv("API_TOKEN", "t0ken")
    get_settings.cache_clear()
    assert api.http.post("/api/v2/system/reconcile?confirm=removals").status_code == 401
    resp = api.http.post("/api/v2/system/reconcile?confirm=removals",
                         headers={"Authorization": "Bearer t0ken"})
    assert resp.status_code == 200 and resp.json_body["removals_applied"] == 2
    assert backup_jobs(daemons)["127.0.0.12"] == []


def test_an_empty_answer_is_refused_unless_confirmed(api, ddb, daemons, lainlet):
    reconcile(api)
    lainlet.spec = {}
    resp = api.http.post("/api/v2/system/reconcile")
    assert resp.status_code == 502 and error_of(resp)["code"] == "refused_empty_spec"
    assert any(backup_jobs(daemons).values())
    assert reconcile(api, "?confirm=removals")["removals_applied"] == 5
    assert not any(backup_jobs(daemons).values())


def test_a_departed_node_that_stays_unreachable_is_forgotten(api, ddb, daemons, lainlet, monkeypatch):

    reconcile(api)
    lainlet.spec["mysql.worker.master"][0]["Containers"][0]["NodeIp"] = "127.0.0.12"  # moved
    daemons["127.0.0.13"].stop()  # and its old node is gone for good
    moved = reconcile(api)
    assert moved["held"] == {} and list(moved["failed"]) == ["127.0.0.13"]
    assert NodeStateStore(ddb).states()["127.0.0.13"].unreachable_since
    monkeypatch.setenv("NODE_FORGET_HOURS", "0")
    get_settings.cache_clear()
    forgotten = reconcile(api)
    assert forgotten["forgotten"] == ["127.0.0.13"] and forgotten["failed"] == {}
    assert "127.0.0.13" not in NodeStateStore(ddb).states()
    assert reconcile(api)["failed"] == {}  # no timeout paid for it any more


# -- 7. the daemon's own limits ---------------------------------------------------------------------

def test_a_push_the_daemon_holds_for_seconds_is_a_success(api, ddb, daemons, monkeypatch):
    monkeypatch.setenv("PUSH_TIMEOUT_SECONDS", "5")  # above the daemon's hold, unlike the 1 s node timeout
    get_settings.cache_clear()
    for d in daemons.values():
        d.push_hold = 1.5
    summary = reconcile(api)
    assert summary["pushed"] == ["127.0.0.11", "127.0.0.12", "127.0.0.13"] and summary["failed"] == {}


def test_busy_schedules_are_never_pushed_so_later_pushes_still_work(api, ddb, daemons, lainlet, settings):
    from chalicelib.edges.backupd import BackupdClient, BackupdTimeout

    spec = lainlet.spec["hello.web.web"][0]
    annotation = json.loads(spec["Annotation"])
    annotation["backup"].append({**annotation["backup"][0], "volume": "/busy", "schedule": "*/3 * * * * *"})
    spec["Annotation"] = json.dumps(annotation)
    summary = reconcile(api)
    assert summary["failed"] == {}
    assert not any(j["args"].get("volume") == "/busy" for j in daemons["127.0.0.11"].jobs if j["id"])
    problems = api.http.get("/api/v2/system/problems").json_body
    assert [p["volume"] for p in problems if p["kind"] == "busy_schedule"] == ["/busy"]
    # what would have happened: the stand-in, like the daemon, never takes another list after it
    client = BackupdClient("127.0.0.11", settings)
    client.set_jobs([{**daemons["127.0.0.11"].jobs[0], "spec": "*/3 * * * * *"}], "busy",
                    timeout=settings.push_timeout_seconds)
    with pytest.raises(BackupdTimeout) as e:
        client.set_jobs([], "next", timeout=2)
    assert e.value.node == "127.0.0.11"


def test_lists_from_a_spec_with_copies_of_the_same_item_are_stable(api, ddb, daemons, lainlet):
    """A re-read of an unchanged partial answer must not push again (the held list is stable)."""
    reconcile(api)
    lainlet.spec = copy.deepcopy(lainlet.spec)
    del lainlet.spec["mysql.worker.master"]
    first = reconcile(api)
    assert first["held"] == {"127.0.0.13": [MYSQL_JOB]} and first["pushed"] == []
    assert reconcile(api)["pushed"] == []


# -- 5. never a throttled record: a record not stored is a 5xx, which the daemon posts again --------


@contextmanager
def throttled(operation: str, times: int = 1, code: str = "ProvisionedThroughputExceededException"):
    """DynamoDB throttles the app's next ``times`` calls of ``operation``, answered as DynamoDB
    answers them (botocore raises them as it would)."""
    from botocore.awsrequest import AWSResponse

    from chalicelib.deps import get_deps

    left = [times]

    def refuse(**_: object) -> tuple[AWSResponse, dict] | None:
        if left[0] <= 0:
            return None
        left[0] -= 1
        return (AWSResponse("https://dynamodb.us-east-1.amazonaws.com", 400, {}, None),
                {"Error": {"Code": code, "Message": "Rate of requests exceeds the allowed "
                           "throughput"}, "ResponseMetadata": {"HTTPStatusCode": 400}})

    events = get_deps().table.meta.client.meta.events
    hook = f"before-call.dynamodb.{operation}"
    events.register_first(hook, refuse, unique_id="test-throttle")
    try:
        yield left
    finally:
        events.unregister(hook, unique_id="test-throttle")


def backup_success(api) -> dict:
    job = reference.job(HELLO_JOB)
    return reference.record_of(job, "success", datetime.now(UTC) - timedelta(minutes=2),
                               result={"file": "hello.tar.gz", "size": 1000})


def notify(api, record: dict):
    return api.http.post("/api/v2/system/notify", headers={"Content-Type": "application/json"},
                         body=json.dumps(record))


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException",
                                  "RequestLimitExceeded"])
def test_a_throttled_record_is_a_503_and_its_retry_stores_it(api, ddb, code):
    record = backup_success(api)
    with throttled("PutItem", code=code) as left:
        resp = notify(api, record)
    assert left == [0] and resp.status_code == 503, resp.body  # never a 4xx: the daemon retries
    assert error_of(resp)["code"] == "store_unavailable" and "retry" in error_of(resp)["error"]
    assert api.http.get(f"/api/v2/app/hello/cron/records/{record['rid']}").status_code == 404
    assert notify(api, record).json_body == {"rid": record["rid"], "stored": True}
    assert api.http.get(f"/api/v2/app/hello/cron/records/{record['rid']}").json_body == record


def test_a_retry_finishes_what_a_throttle_left_half_done(api, ddb, pushed):
    """The record was written, the job's latest run was throttled: the 503 brings the daemon's
    retry, which is a repeat (stored false) and still makes the run the job's latest."""
    assert api.http.post("/api/v2/system/reconcile").status_code == 200
    record = backup_success(api)
    with throttled("UpdateItem") as left:
        resp = notify(api, record)
    assert left == [0] and resp.status_code == 503, resp.body
    assert api.http.get(f"/api/v2/app/hello/cron/records/{record['rid']}").status_code == 200
    assert notify(api, record).json_body == {"rid": record["rid"], "stored": False}
    items = api.http.get("/api/v2/app/hello/backups/status").json_body
    [item] = [i for i in items["items"] if i["job_id"] == HELLO_JOB]
    assert item["last_success"]["rid"] == record["rid"] and item["status"] == "ok"
