"""Pauses that expire: sleep with a reason and an end, the status says so, the reconcile wakes the
job when the pause ends, and a pause about to end is announced."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.deps import Deps
from chalicelib.usecases import reconcile, schedule
from tests.component.apiclient import error_of, post_form
from tests.component.test_backup_status import Clock, Receiver

HELLO_DATA = "7f00000bb19d69edd273f3535f5cd42e6fcbd556"
SLEEP = f"/api/v2/app/hello/cron/jobs/{HELLO_DATA}/actions/sleep"


def test_sleep_with_a_reason_and_an_end_shows_in_the_status(api, ddb, daemons):
    assert api.http.post("/api/v2/system/reconcile").status_code == 200
    resp = post_form(api, SLEEP, [("until", "6h"), ("reason", "disk migration")])
    assert resp.status_code == 200
    assert resp.json_body["paused"] == HELLO_DATA and resp.json_body["reason"] == "disk migration"
    until = datetime.fromisoformat(resp.json_body["until"].replace("Z", "+00:00"))
    assert timedelta(hours=5, minutes=59) < until - datetime.now(UTC) <= timedelta(hours=6)
    assert daemons["127.0.0.11"].sleeping() == {HELLO_DATA}
    items = api.http.get("/api/v2/app/hello/backups/status").json_body["items"]
    [item] = [i for i in items if i["job_id"] == HELLO_DATA]
    assert item["status"] == "never" and "disk migration" in item["reason"]  # never backed up
    assert item["pause"]["reason"] == "disk migration"
    assert item["pause"] == {"until": resp.json_body["until"], "reason": "disk migration"}
    assert post_form(api, SLEEP).json_body == "OK"  # lain-cli's sleep, as the original answered


@pytest.mark.parametrize("until, words", [("tomorrow", "neither a time"), ("0h", "not in the future"),
                                          ("2020-01-01T00:00:00Z", "not in the future"),
                                          ("45d", "at most 30 days"), ("9" * 100 + "d", "at most 30 days"),
                                          ("-1h", "neither")])
def test_a_pause_end_that_cannot_be_is_a_400(api, ddb, daemons, until, words):
    api.http.post("/api/v2/system/reconcile")
    resp = post_form(api, SLEEP, [("until", until)])
    assert resp.status_code == 400 and words in error_of(resp)["error"]
    assert daemons["127.0.0.11"].sleeping() == set()


def test_the_reconcile_wakes_a_job_whose_pause_ended(settings, ddb, daemons):
    from chalicelib.usecases import jobs

    clock = Clock(datetime.now(UTC))
    deps = Deps(settings, clock, ddb)
    reconcile.run(deps)
    jobs.action(deps, "hello", HELLO_DATA, "sleep", "2h", "maintenance")
    assert reconcile.run(deps).summary["woken"] == {}
    assert daemons["127.0.0.11"].sleeping() == {HELLO_DATA}
    clock.now += timedelta(hours=2, seconds=1)
    summary = reconcile.run(deps).summary
    assert summary["woken"] == {"127.0.0.11": [HELLO_DATA]}
    assert daemons["127.0.0.11"].sleeping() == set() and deps.state.pauses() == {}
    daemons["127.0.0.11"].restart()
    assert reconcile.run(deps).summary["repaused"] == {}  # not paused again after a restart


def test_a_pause_without_an_end_ends_after_the_maximum(settings, ddb, daemons):
    from chalicelib.usecases import jobs

    clock = Clock(datetime.now(UTC))
    deps = Deps(dataclasses.replace(settings, pause_max_days=1), clock, ddb)
    reconcile.run(deps)
    jobs.action(deps, "hello", HELLO_DATA, "sleep")
    clock.now += timedelta(hours=23)
    assert reconcile.run(deps).summary["woken"] == {}
    clock.now += timedelta(hours=1, seconds=1)
    assert reconcile.run(deps).summary["woken"] == {"127.0.0.11": [HELLO_DATA]}


def test_a_pause_about_to_end_is_announced_once(settings, ddb, daemons):
    from chalicelib.usecases import jobs

    hook = Receiver().start()
    try:
        clock = Clock(datetime.now(UTC))
        deps = Deps(dataclasses.replace(settings, alert_webhook_url=hook.url + "/hook",
                                        pause_notice_hours=24), clock, ddb)
        reconcile.run(deps)
        jobs.action(deps, "hello", HELLO_DATA, "sleep", "3d", "migration")

        def cycle():
            return schedule._run(deps)["alerts"]

        cycle()
        [started] = [m for m in hook.messages if m["event"] == "pause_start"]
        assert started["text"].startswith("backup of hello hello.web.web instance 1 volume /data "
                                          "on 127.0.0.11 is paused until")  # words first
        assert "(paused for: migration)" in started["text"] and started["item"]["job_id"] == HELLO_DATA
        assert not [m for m in hook.messages if m["event"] == "pause_ending"]
        clock.now += timedelta(days=2, hours=1)  # now it ends within a day
        cycle()
        cycle()
        notices = [m for m in hook.messages if m["event"] == "pause_ending"]
        assert len(notices) == 1 and "migration" in notices[0]["text"]
        assert notices[0]["text"].startswith("the pause of backup of hello hello.web.web instance 1")
        assert notices[0]["node"] == "127.0.0.11" and notices[0]["job_id"] == HELLO_DATA
        clock.now += timedelta(days=1)  # ended: the job is woken, and that is said too
        cycle()
        assert [m["event"] for m in hook.messages].count("pause_ended") == 1
    finally:
        hook.stop()
