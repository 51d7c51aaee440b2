"""What reaches the operator: one JSON line per event on stdout, with the request's ids, and no
secret in any line."""

from __future__ import annotations

import json

from chalicelib.logs import event, log
from tests.component.apiclient import post_form


def test_a_rejected_request_is_one_line_with_its_ids(api, daemons, logs):
    resp = api.http.get("/api/v2/app/hello/cron/records?total=abc",
                        headers={"X-Correlation-Id": "lain-cli-42"})
    assert resp.status_code == 400 and resp.headers["X-Correlation-Id"] == "lain-cli-42"
    [line] = logs.events("rejected")
    assert (line["level"], line["status"], line["code"], line["correlation_id"]) == \
        ("INFO", 400, "bad_total", "lain-cli-42")
    assert line["request_id"] and line["path"] == "/api/v2/app/{app_name}/cron/records"


def test_the_reconcile_summary_is_one_line(api, ddb, daemons, logs):
    resp = api.http.post("/api/v2/system/reconcile")
    assert resp.status_code == 200
    [line] = logs.events("reconcile")
    assert line["ok"] is True and line["pushed"] == 3 and line["nodes"] == 3
    assert line["request_id"] and line["correlation_id"]
    assert line["duration_ms"] == resp.json_body["duration_ms"]


def test_lines_are_json_on_stdout_and_never_carry_a_token(api, daemons, capsys):
    event(log, "probe", url="http://ctl/api/v2/system/notify?token=s3cret&x=1")
    post_form(api, "/api/v2/app/hello/cron/jobs/nosuch/actions/run?token=t0ken")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [line["url"] for line in lines if line["event"] == "probe"] == \
        ["http://ctl/api/v2/system/notify?token=***&x=1"]
    assert not any("s3cret" in json.dumps(line) or "t0ken" in json.dumps(line) for line in lines)
    assert {line["event"] for line in lines} >= {"probe", "rejected"}
