"""The last good copy is not deleted by accident: deleting a volume's newest good backup is a 409
naming it and the next newest backup (?force=true deletes it), and a newest good backup deleted
by force or outside the controller stops counting as good for the retention floor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from chalicelib.core import jobs as joblib
from chalicelib.core.cluster import Cluster
from chalicelib.settings import get_settings
from tests import reference
from tests.component.apiclient import error_of, post_form

HELLO = "/api/v2/app/hello/proc/web/backups"
NODE = "127.0.0.11"
OLD = "hello-hello.web.web-1-data-1795563919.tar.gz"  # the fixture's, made 2026-11-24T23:45:19Z
INCR = "hello-hello.web.web-1-var-log-hello"
DATA_DIR = "/data/lain/volumes/hello/hello.web.web/1/data"


def job_of(node: str, volume: str, instance: int) -> dict:
    generated = joblib.generate(Cluster.from_backupspec(reference.backupspec()))
    return next(j for j in generated[node] if j["id"] and j["args"]["volume"] == volume
                and j["args"]["instanceNo"] == instance)


def record_good(api, job: dict, file: str, start: datetime, size: int = 154) -> None:
    """A daemon's success post for ``file``, through the notify route."""
    record = reference.record_of(job, "success", start, result={"file": file, "size": size})
    resp = api.http.post("/api/v2/system/notify", headers={"Content-Type": "application/json"},
                         body=json.dumps(record))
    assert resp.status_code == 200 and resp.json_body["stored"], resp.body


def newest_backup(api, daemons, days_old: float = 1.0) -> str:
    """A backup of hello web instance 1 /data on 127.0.0.11 made ``days_old`` ago, recorded as
    its job's newest good one."""
    made = datetime.now(UTC) - timedelta(days=days_old)
    name = daemons[NODE].add_backup("hello", "hello.web.web", 1, "/data",
                                    created=int(made.timestamp()))["name"]
    record_good(api, job_of(NODE, "/data", 1), name, made)
    return name


def expire_lists_data_dir(daemons) -> bool:
    [expire] = [j for j in daemons[NODE].jobs if j["action"] == "backup_expire"]
    return DATA_DIR in expire["args"]["info"]


def held(api) -> dict:
    """hello's dirs the retention floor holds, and why."""
    plan = api.http.get("/api/v2/system/reconcile/plan").json_body
    return {(h["node"], h["dir"]): h["reason"] for h in plan["expiry_held"]
            if "/hello/" in h["dir"]}


def test_the_newest_good_backup_is_not_deleted_without_force(api, ddb, daemons):
    newest = newest_backup(api, daemons)
    resp = post_form(api, f"{HELLO}/actions/delete", [("files", newest)])
    assert resp.status_code == 409
    error = error_of(resp)
    assert error["code"] == "newest_good_backup"
    assert f"{newest} is the newest good backup of hello.web.web instance 1 volume /data" in \
        error["error"]
    age = (datetime.now(UTC) - datetime(2026, 11, 24, 23, 45, 19, tzinfo=UTC)) / timedelta(days=1)
    ages = {f"{age:.1f}", f"{age - 0.05:.1f}"}  # the answer was worked out a moment ago
    assert any(f"the next newest backup of it, {OLD}, is {a} days old" in error["error"] for a in ages)
    assert "?force=true" in error["error"] and "Nothing was deleted" in error["error"]
    assert not daemons[NODE].received("/api/v1/backup/delete")
    assert post_form(api, f"{HELLO}/actions/delete", [("files", OLD)]).status_code == 204  # older
    resp = post_form(api, f"{HELLO}/actions/delete", [("files", newest)])
    assert resp.status_code == 409 and "there is no other backup of it" in error_of(resp)["error"]
    assert {b["name"] for b in daemons[NODE].backups} >= {newest}


def test_a_forced_deletion_holds_the_dir_out_of_the_expire_job(api, ddb, daemons, logs):
    newest = newest_backup(api, daemons)
    assert api.http.post("/api/v2/system/reconcile").status_code == 200
    assert expire_lists_data_dir(daemons) and (NODE, DATA_DIR) not in held(api)
    resp = post_form(api, f"{HELLO}/actions/delete?force=true", [("files", newest)])
    assert resp.status_code == 204
    assert daemons[NODE].received("/api/v1/backup/delete")[0].form["files"] == [newest]
    [line] = logs.events("newest_good_deleted")
    assert line["files"] == [newest] and line["level"] == "WARNING"
    reason = held(api)[(NODE, DATA_DIR)]
    assert f"its newest good backup {newest} was deleted (deleted with force=true" in reason
    assert api.http.post("/api/v2/system/reconcile").json_body["expiry_held"] >= 1
    assert not expire_lists_data_dir(daemons)  # OLD can no longer age out
    item = next(i for i in api.http.get("/api/v2/app/hello/backups/status").json_body["items"]
                if i["node"] == NODE and i["volume"] == "/data")
    assert "was deleted" in item["expiry_held"]
    record_good(api, job_of(NODE, "/data", 1), "next.tar.gz", datetime.now(UTC))  # a new good one
    assert (NODE, DATA_DIR) not in held(api)
    api.http.post("/api/v2/system/reconcile")
    assert expire_lists_data_dir(daemons)  # expiry resumes by itself


def test_a_newest_good_backup_deleted_outside_the_controller_stops_counting(api, ddb, daemons,
                                                                           logs, monkeypatch):
    """The schedule's look at the nodes' archives (every node once per NODE_CHECK_MINUTES; one
    here) finds it; the listing users ask for never writes."""
    monkeypatch.setenv("NODE_CHECK_MINUTES", "1")
    get_settings.cache_clear()
    newest = newest_backup(api, daemons)
    other = daemons["127.0.0.12"].add_backup("hello", "hello.web.web", 2, "/data",
                                             created=int(datetime.now(UTC).timestamp()))["name"]
    record_good(api, job_of("127.0.0.12", "/data", 2), other, datetime.now(UTC))
    assert held(api) == {}
    daemons[NODE].delete([newest])  # someone, on the node itself
    daemons["127.0.0.12"].delete([other])
    resp = api.http.get(HELLO)
    assert resp.status_code == 200 and newest not in {e["name"] for e in resp.json_body}
    assert held(api) == {} and not logs.events("good_backup_gone")  # a listing only lists
    daemons["127.0.0.12"].fail_status = 500  # .12 does not answer: nothing is known of it
    assert api.http.post("/api/v2/system/reconcile").status_code == 200
    [line] = logs.events("good_backup_gone")
    assert (line["file"], line["node"], line["app"], line["volume"]) == (newest, NODE, "hello",
                                                                         "/data")
    assert list(held(api)) == [(NODE, DATA_DIR)]
    assert "no longer listed it" in held(api)[(NODE, DATA_DIR)]
    daemons["127.0.0.12"].fail_status = None
    api.http.post("/api/v2/system/reconcile")
    assert set(held(api)) == {(NODE, DATA_DIR), ("127.0.0.12",
                                                 "/data/lain/volumes/hello/hello.web.web/2/data")}
    api.http.post("/api/v2/system/reconcile")
    assert len(logs.events("good_backup_gone")) == 2  # each marked once


def test_an_increment_backups_one_dir_is_guarded_too(api, ddb, daemons):
    record_good(api, job_of(NODE, "/var/log/hello", 1), INCR, datetime.now(UTC) - timedelta(hours=1))
    resp = post_form(api, f"{HELLO}/actions/delete", [("files", INCR)])
    assert resp.status_code == 409 and error_of(resp)["code"] == "newest_good_backup"
    assert "volume /var/log/hello" in error_of(resp)["error"]
    assert "there is no other backup of it" in error_of(resp)["error"]
    assert post_form(api, f"{HELLO}/actions/delete?force=true",
                     [("files", INCR)]).status_code == 204
    assert INCR not in {b["name"] for b in daemons[NODE].backups}
    daemons[NODE].add_backup("hello", "hello.web.web", 1, "/var/log/hello", "increment",
                             files=["x.log"])
    record_good(api, job_of(NODE, "/var/log/hello", 1), INCR, datetime.now(UTC))
    resp = post_form(api, f"{HELLO}/actions/delete", [("files", f"{INCR}/x.log")])
    assert resp.status_code == 204  # a file inside it is not the backup
    assert post_form(api, f"{HELLO}/actions/delete?force=maybe",
                     [("files", OLD)]).status_code == 400


def test_with_dynamodb_down_listings_answer_and_deletions_wait(api, daemons, dynamodb_down, logs):
    resp = api.http.get(HELLO)
    assert resp.status_code == 200 and OLD in {e["name"] for e in resp.json_body}
    assert not logs  # a listing needs no DynamoDB: nothing went wrong to say
    resp = post_form(api, f"{HELLO}/actions/delete", [("files", OLD)])
    assert resp.status_code == 503 and error_of(resp)["code"] == "store_unavailable"
    assert not daemons[NODE].received("/api/v1/backup/delete")
