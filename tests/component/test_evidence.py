"""The evidence report through HTTP: records stored as notify stores them, a pause through the
sleep route (so the audit trail says who), drills and restores as operations in the store, and
the report read back as JSON, CSV and the printable page; bad input is a 4xx that says why."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.core.gotime import format_time
from chalicelib.core.operation import Operation, Phase, RestorePlan
from chalicelib.usecases import evidence as evidence_flow
from chalicelib.usecases import records as records_flow
from tests import reference
from tests.component.apiclient import error_of, post_form

HELLO_DATA = "7f00000bb19d69edd273f3535f5cd42e6fcbd556"  # hello.web.web instance 1 /data, 0 3 * * *
EVIDENCE = "/api/v2/app/hello/evidence"
GIB, MIB = 1024**3, 1024**2


def daily_history(deps, now: datetime, missing: int) -> None:
    """hello's /data on 127.0.0.11 at 03:00:05 each of the last 10 days, but ``missing`` days ago
    (a 48 h gap), and a failed run 3 days ago; sizes 100 GiB."""
    today = now.replace(hour=3, minute=0, second=5, microsecond=0)
    if today > now - timedelta(minutes=15):
        today -= timedelta(days=1)
    job = reference.job(HELLO_DATA)
    for k in range(10):
        when = today - timedelta(days=k)
        if k == missing:
            continue
        records_flow.store(deps, reference.record_of(job, "success", when, end=when + timedelta(minutes=4),
                                                     result={"file": f"b{k}.tar.gz", "size": 100 * GIB}))
    failed = today - timedelta(days=3, hours=-2)
    records_flow.store(deps, reference.record_of(job, "failed", failed, reason="preRun failed: exit 3"))


def drill_op(deps, now: datetime, op_id: str, kind: str = "drill", outcome: str | None = "verified"
             ) -> None:
    """An operation of hello /data instance 1, created then finished through the store; a drill
    of 50 MiB/s (5,000 MiB in 100 s) when ``outcome`` is given."""
    plan = RestorePlan(app="hello", proc="hello.web.web", kind=kind, name="hello-hello.web.web-1-data-x",
                       increment=False, files=[], namespace="127.0.0.11", node="127.0.0.11",
                       instance=1, volume="/data", dest_dir="/drill/data" if kind == "drill" else "",
                       source_dir="/data/lain/volumes/hello/hello.web.web/1/data", created="")
    made = format_time(now - timedelta(days=1))
    op = Operation(id=op_id, app="hello", plan=plan, phase=Phase.RESTORING, created=made,
                   updated=made, since=made)
    deps.operations.create(op, now)
    drill = {"outcome": outcome, "fault": "", "bytes": 50 * MIB * 100, "seconds": 100.0,
             "at": made} if outcome else None
    assert deps.operations.move(op, dataclasses.replace(op, phase=Phase.COMPLETED, drill=drill), now)


def steady(api, path: str):
    """The same report twice in the same second (its window ends at ``now``, to the second)."""
    for _ in range(5):
        first, second = api.http.get(path), api.http.get(path)
        if first.body == second.body:
            return first, second
    raise AssertionError("the report's bytes changed between two reads in the same second")


@pytest.fixture
def history(api, deps, ddb, daemons):
    now = datetime.now(UTC)
    assert api.http.post("/api/v2/system/reconcile").status_code == 200
    daily_history(deps, now, missing=5)
    drill_op(deps, now, "20261202T000000-drill")
    drill_op(deps, now, "20261202T000001-restore", kind="recover", outcome=None)
    resp = post_form(api, f"/api/v2/app/hello/cron/jobs/{HELLO_DATA}/actions/sleep",
                     [("until", "2h"), ("reason", "moving <the> disk")])
    assert resp.status_code == 200
    return now


def data_item(report: dict) -> dict:
    [hello] = report["apps"]
    return next(i for i in hello["items"] if (i["proc"], i["instance"], i["volume"])
                == ("hello.web.web", 1, "/data"))


def test_the_json_report_says_the_gaps_the_drill_the_rto_and_every_exception(api, history):
    first, again = steady(api, EVIDENCE + "?days=30")
    assert first.body == again.body  # the same records, the same bytes
    assert first.status_code == 200 and first.headers["Content-Type"] == "application/json"
    answer = json.loads(first.body)
    canonical = json.dumps(answer["report"], sort_keys=True, separators=(",", ":"))
    assert answer["sha256"] == hashlib.sha256(canonical.encode()).hexdigest()  # as a reader checks
    assert first.headers["X-Backupctl-Sha256"] == answer["sha256"]
    report = answer["report"]
    assert report["scope"] == "hello" and report["window"]["days"] == 30
    item = data_item(report)
    assert item["schedule"] == "0 3 * * *" and item["target_rpo"]["hours"] == 24.0
    assert item["achieved_rpo"]["hours"] == 48.0  # the missing day
    assert item["controls"]["rpo"]["status"] == "fail"
    assert item["throughput_mib_s"] == 50.0
    assert item["predicted_rto"] == {"seconds": 2048, "minutes": 34.1, "bytes": 100 * GIB}
    assert item["controls"]["drill"]["status"] == item["controls"]["rto"]["status"] == "pass"
    kinds = {e["kind"]: e for e in item["exceptions"]}
    assert kinds["failed_run"]["detail"] == "preRun failed: exit 3"
    assert kinds["pause"]["detail"] == "moving <the> disk" and kinds["pause"]["by"].startswith("no token")
    assert kinds["restore"]["operation"] == "20261202T000001-restore"
    assert report["apps"][0]["result"] == "fail"
    assert item["exception_counts"] == {"failed_run": 1, "pause": 1, "restore": 1}  # the pause once
    until = datetime.fromisoformat(kinds["pause"]["until"].replace("Z", "+00:00"))
    assert timedelta(hours=1, minutes=59) < until - history <= timedelta(hours=2, minutes=1)


def test_a_pause_woken_early_ends_when_it_was_woken(api, history):
    assert post_form(api, f"/api/v2/app/hello/cron/jobs/{HELLO_DATA}/actions/wakeup").status_code == 200
    item = data_item(json.loads(api.http.get(EVIDENCE).body)["report"])
    [pause] = [e for e in item["exceptions"] if e["kind"] == "pause"]
    until = datetime.fromisoformat(pause["until"].replace("Z", "+00:00"))
    assert until - history < timedelta(minutes=1) and pause["detail"] == "moving <the> disk"


def test_the_csv_has_one_row_per_volume_and_instance_and_ends_with_its_sha256(api, history):
    resp, _ = steady(api, EVIDENCE + "?days=30&format=csv")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
    text = resp.body.decode()
    body, _, last = text.rstrip("\n").rpartition("\n")
    assert last == "sha256," + hashlib.sha256((body + "\n").encode()).hexdigest()
    assert resp.headers["X-Backupctl-Sha256"] == last.partition(",")[2]
    rows = {(r["proc"], r["instance"], r["volume"]): r for r in csv.DictReader(io.StringIO(body))}
    assert len(rows) == 4  # two instances × two volumes
    data = rows[("hello.web.web", "1", "/data")]
    assert data["achieved_rpo_hours"] == "48.0" and data["predicted_rto_minutes"] == "34.1"
    assert data["rpo"] == "fail" and data["drill"] == "pass"
    assert "failed_run:1" in data["exception_kinds"] and "pause:1" in data["exception_kinds"]


def test_the_printable_page_runs_nothing_and_links_the_same_report(api, history):
    resp = api.http.get(EVIDENCE + "?days=14&format=html")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    policy = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    page = resp.body.decode()
    assert "Backup evidence: hello" in page and "<script" not in page
    assert "moving &lt;the&gt; disk" in page  # what a user wrote is escaped
    assert 'href="?days=14&amp;format=csv"' in page and "14 days" in page
    home = api.http.get("/").body.decode()
    assert 'data-api="api/v2/system/evidence?format=html"' in home  # linked from the dashboard


def test_the_system_report_comes_in_pages_of_whole_apps(api, history, monkeypatch):
    whole = json.loads(api.http.get("/api/v2/system/evidence").body)["report"]
    assert [a["app"] for a in whole["apps"]] == ["badcron", "badjson", "ghost", "hello", "mysql",
                                                 "plain"]
    assert whole["page"] == {"first": "badcron", "last": "plain", "next": ""}
    monkeypatch.setattr(evidence_flow, "PAGE_APPS", 4)
    first = api.http.get("/api/v2/system/evidence?days=7")
    assert first.headers["X-Backupctl-Next"] == "mysql"
    report = json.loads(first.body)["report"]
    assert report["page"] == {"first": "badcron", "last": "hello", "next": "mysql"}
    rest = json.loads(api.http.get("/api/v2/system/evidence?days=7&next=mysql").body)["report"]
    assert [a["app"] for a in rest["apps"]] == ["mysql", "plain"] and rest["page"]["next"] == ""
    assert data_item({"apps": [a for a in report["apps"] if a["app"] == "hello"]})["achieved_rpo"]


def test_an_app_with_too_many_records_is_told_to_ask_fewer_days(api, history, monkeypatch):
    monkeypatch.setattr(evidence_flow, "MAX_RECORDS", 3)
    resp = api.http.get(EVIDENCE)
    assert resp.status_code == 413 and "ask for fewer days" in error_of(resp)["error"]
    system = json.loads(api.http.get("/api/v2/system/evidence").body)["report"]
    hello = next(a for a in system["apps"] if a["app"] == "hello")
    assert hello["items"] == [] and hello["result"] == "incomplete"
    assert hello["exceptions"][0]["kind"] == "not_evaluated"


def test_an_answer_too_large_for_lambda_is_refused_or_paged(api, history, monkeypatch):
    monkeypatch.setattr(evidence_flow, "MAX_BYTES", 1)
    resp = api.http.get(EVIDENCE)
    assert resp.status_code == 413 and "bytes of JSON" in error_of(resp)["error"]
    page = api.http.get("/api/v2/system/evidence")
    assert page.status_code == 200 and page.headers["X-Backupctl-Next"] == "badjson"
    [alone] = json.loads(page.body)["report"]["apps"]
    assert alone["app"] == "badcron" and alone["exceptions"][0]["kind"] == "not_evaluated"


def test_an_unreadable_operation_is_an_exception_not_a_500(api, history, ddb):
    ddb.put_item(Item={"pk": "OP#hello", "sk": "20261202T000002-bad", "op": "{not json",
                       "phase": "Completed"})
    resp = api.http.get(EVIDENCE)
    assert resp.status_code == 200
    [hello] = json.loads(resp.body)["report"]["apps"]
    assert [e["operation"] for e in hello["exceptions"] if e["kind"] == "operation_unreadable"] == [
        "20261202T000002-bad"]


@pytest.mark.parametrize("path, status, code", [
    (EVIDENCE + "?days=0", 400, "bad_days"),
    (EVIDENCE + "?days=401", 400, "bad_days"),
    (EVIDENCE + "?days=thirty", 400, "bad_days"),
    (EVIDENCE + "?days=" + "9" * 50, 400, "bad_days"),
    (EVIDENCE + "?format=xml", 400, "bad_format"),
    ("/api/v2/system/evidence?format=pdf", 400, "bad_format"),
    ("/api/v2/system/evidence?next=..", 400, "bad_next"),
    ("/api/v2/app/nosuchapp/evidence", 404, "unknown_app"),
])
def test_bad_input_is_a_4xx_that_says_why(api, ddb, daemons, path, status, code):
    resp = api.http.get(path)
    assert resp.status_code == status, resp.body
    error = error_of(resp)
    assert error["code"] == code and error["error"]


def test_the_contract_documents_the_three_answers_and_the_bounds(api):
    document = json.loads(api.http.get("/api/v2/openapi.json").body)
    for path in ("/api/v2/app/{app_name}/evidence", "/api/v2/system/evidence"):
        get = document["paths"][path]["get"]
        assert list(get["responses"]["200"]["content"]) == [
            "application/json", "text/csv; charset=utf-8", "text/html; charset=utf-8"]
        params = {p["name"]: p["schema"] for p in get["parameters"]}
        assert params["days"] == {"type": "integer", "minimum": 1, "maximum": 400}
        assert params["format"]["enum"] == ["json", "csv", "html"]
    assert "next" in {p["name"] for p in document["paths"]["/api/v2/system/evidence"]["get"]["parameters"]}
