"""Suspect has an exit: a volume that really shrank gets a new baseline after SIZE_REBASELINE_RUNS
agreeing suspect successes, and an operator can accept a job's latest size at once."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.deps import Deps
from chalicelib.settings import get_settings
from chalicelib.usecases import health, reconcile
from chalicelib.usecases import records as records_flow
from tests import reference
from tests.component.apiclient import error_of, post_form
from tests.component.test_backup_status import Clock, Receiver

HELLO_DATA = "7f00000bb19d69edd273f3535f5cd42e6fcbd556"
MYSQL = "7f00000d021a80f569807176a366a7fac5c3ba76"
ACCEPT = f"/api/v2/app/hello/cron/jobs/{HELLO_DATA}/actions/accept-size"
DATA_DIR = "/data/lain/volumes/hello/hello.web.web/1/data"


def notify(api, size, start: datetime, n: int) -> dict:
    """hello's /data on 127.0.0.11 succeeded with an archive of ``size`` (None: no size)."""
    result = {"file": f"hello-{n}.tar.gz", **({"size": size} if size is not None else {})}
    record = reference.record_of(reference.job(HELLO_DATA), "success", start, result=result,
                                 salt=str(n))
    resp = api.http.post("/api/v2/system/notify", headers={"Content-Type": "application/json"},
                         body=json.dumps(record))
    assert resp.status_code == 200 and resp.json_body["stored"], resp.body
    return record


def sizes(api, *values) -> list[dict]:
    """Successes of these sizes, a minute apart and ending a minute ago; their records as stored."""
    now = datetime.now(UTC)
    posted = [notify(api, size, now - timedelta(minutes=len(values) - i), i)
              for i, size in enumerate(values)]
    stored = {r["rid"]: r for r in api.http.get("/api/v2/app/hello/cron/records?total=100").json_body}
    return [stored[r["rid"]] for r in posted]


def item(api) -> dict:
    items = api.http.get("/api/v2/app/hello/backups/status").json_body["items"]
    return next(i for i in items if i["job_id"] == HELLO_DATA)


@pytest.fixture
def hook(monkeypatch):
    receiver = Receiver().start()
    monkeypatch.setenv("ALERT_WEBHOOK_URL", receiver.url + "/hook")
    get_settings.cache_clear()
    yield receiver
    receiver.stop()


def test_a_volume_that_really_shrank_gets_a_new_baseline(api, ddb, pushed, logs, hook):
    """3 good backups of 1,000,000 bytes, then 12 of 50,000: before, all 12 stayed suspect for
    good (and the retention floor held the dir); now the third agreeing one is the baseline."""
    assert api.http.post("/api/v2/system/reconcile").status_code == 200
    records = sizes(api, *[1_000_000] * 3, *[50_000] * 12)
    assert [bool(r.get("suspect")) for r in records] == [False] * 3 + [True] * 2 + [False] * 10
    [line] = logs.events("size_rebaselined")
    assert (line["level"], line["app"], line["proc"], line["volume"], line["instance"]) == \
        ("WARNING", "hello", "hello.web.web", "/data", 1)
    assert (line["job"], line["old_median"], line["new_size"], line["rid"]) == \
        (HELLO_DATA, 1_000_000, 50_000, records[5]["rid"])
    [message] = hook.messages
    assert message["status"] == "size_rebaselined" and message["job"] == HELLO_DATA
    assert "50000 bytes" in message["text"] and "1000000" in message["text"]
    assert item(api)["status"] == "ok"


def test_the_count_needs_agreeing_sizes_in_a_row(api, ddb, pushed, logs):
    records = sizes(api, *[1_000_000] * 3,
                    50_000, 50_000, 1_000_000,  # a good one in between starts the count again
                    50_000, 50_000, 0, None,  # nor do 0 bytes or no size count: again
                    50_000, 50_000, 30_000,  # 30,000 disagrees with 50,000: the 50,000s drop out
                    31_000, 30_500)  # three that agree: the new baseline
    assert [bool(r.get("suspect")) for r in records] == \
        [False] * 3 + [True, True, False] + [True] * 4 + [True] * 3 + [True, False]
    assert item(api)["status"] == "ok"
    [line] = logs.events("size_rebaselined")
    assert (line["old_median"], line["new_size"]) == (1_000_000, 30_500)
    assert not sizes(api, 31_000)[0].get("suspect")  # measured against the new sizes now
    assert sizes(api, 2_000)[0].get("suspect")


def test_no_automatic_baseline_when_the_setting_is_zero(api, ddb, pushed, logs, monkeypatch):
    monkeypatch.setenv("SIZE_REBASELINE_RUNS", "0")
    get_settings.cache_clear()
    records = sizes(api, *[1_000_000] * 3, *[50_000] * 5)
    assert all(r.get("suspect") for r in records[3:]) and not logs.events("size_rebaselined")


def test_the_retention_floor_lets_go_once_the_new_size_is_the_baseline(settings, ddb, daemons):
    """Daily backups at 03:00: three of 1,000,000 bytes, then twelve of 50,000. Without a new
    baseline the last good backup ages past the 7-day expire's margin and the dir is held for
    good; with it the dir keeps expiring and the item is ok."""
    def run_days(deps, clock):
        reconcile.run(deps)
        job = reference.job(HELLO_DATA)
        for day, size in enumerate([1_000_000] * 3 + [50_000] * 12):
            clock.now = datetime(2026, 11, 1, 3, 0, tzinfo=UTC) + timedelta(days=day)
            records_flow.store(deps, reference.record_of(job, "success", clock.now,
                                                 result={"file": f"f{day}", "size": size}))
        clock.now += timedelta(hours=1)
        seen = reconcile.observe(deps, check_restarts=False)
        status = next(i for i in health.app_status(deps, "hello")["items"]
                      if i["job_id"] == HELLO_DATA)
        return ("127.0.0.11", DATA_DIR) in seen.expiry_held, status["status"]

    clock = Clock(datetime(2026, 10, 31, 3, 0, tzinfo=UTC))
    deps = Deps(dataclasses.replace(settings, size_rebaseline_runs=0), clock, ddb)
    assert run_days(deps, clock) == (True, "suspect")  # what happened before: held for good
    ddb_empty(ddb)
    clock = Clock(datetime(2026, 10, 31, 3, 0, tzinfo=UTC))
    assert run_days(Deps(settings, clock, ddb), clock) == (False, "ok")


def ddb_empty(table) -> None:
    with table.batch_writer() as batch:
        for entry in table.scan(ProjectionExpression="pk, sk")["Items"]:
            batch.delete_item(Key={"pk": entry["pk"], "sk": entry["sk"]})


def test_accept_size_makes_the_latest_size_the_baseline_at_once(api, ddb, pushed):
    assert api.http.post("/api/v2/system/reconcile").status_code == 200
    records = sizes(api, *[1_000_000] * 3, 50_000)
    assert records[-1].get("suspect") and item(api)["status"] == "suspect"
    resp = post_form(api, ACCEPT)
    assert resp.status_code == 200
    assert resp.json_body == {"job": HELLO_DATA, "accepted_size": 50_000,
                              "record": records[-1]["rid"], "previous_median": 1_000_000}
    assert item(api)["status"] == "ok"
    assert item(api)["last_success"]["rid"] == records[-1]["rid"]
    assert not sizes(api, 48_000)[0].get("suspect")  # the recent sizes are [50,000] now
    [entry] = [e for e in api.http.get("/api/v2/app/hello/audit").json_body
               if e["target"].get("action") == "accept-size"]
    assert entry["outcome"]["status"] == 200 and entry["target"]["job_id"] == HELLO_DATA


def test_accept_size_refuses_what_cannot_be_a_baseline(api, ddb, pushed):
    resp = post_form(api, ACCEPT)
    assert resp.status_code == 409 and error_of(resp)["code"] == "no_success"
    assert "no successful backup" in error_of(resp)["error"]
    zero = sizes(api, 1_000_000, 0)[-1]
    resp = post_form(api, ACCEPT)
    assert resp.status_code == 409 and error_of(resp)["code"] == "no_size"
    assert zero["rid"] in error_of(resp)["error"] and "0 bytes" in error_of(resp)["error"]
    sizes(api, None)
    resp = post_form(api, ACCEPT)
    assert resp.status_code == 409 and "no archive size" in error_of(resp)["error"]
    resp = post_form(api, f"/api/v2/app/hello/cron/jobs/{MYSQL}/actions/accept-size")
    assert resp.status_code == 404 and error_of(resp)["code"] == "unknown_job"
    resp = post_form(api, "/api/v2/app/hello/cron/jobs/nosuch/actions/accept-size")
    assert resp.status_code == 404
