"""Job records on DynamoDB (moto): ordering rules, queries without scans, notify and its token."""

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.core.formats.recordschema import parse_record
from chalicelib.core.gotime import sort_key
from chalicelib.deps import Deps
from chalicelib.edges.records import RecordStore, record_item
from chalicelib.errors import Conflict
from chalicelib.settings import Settings
from chalicelib.usecases import records as records_flow
from chalicelib.usecases.records import month_query
from tests import reference
from tests.component.apiclient import error_of
from tests.conftest import OperationLog

NOTIFY = "/api/v2/system/notify"
MYSQL_RUN_A = "179556401404c0b51ec21af494d30508f8c1b0cafe"
MYSQL_RUN_B = "1795564014320543a0be79c0b68c1e817583f770a5"
EXPIRE_RUN = "17955640200e05ba002880a4a224078136de88f478"



def nothing_stored(table) -> bool:
    """No item but the table's own mark (every job's slim item exists: there is none)."""
    return [i for i in table.scan()["Items"] if i["pk"] != "FRESH"] == []

def post(api, record, token=None):
    path = NOTIFY + (f"?token={token}" if token is not None else "")
    body = record if isinstance(record, (bytes, str)) else json.dumps(record)
    return api.http.post(path, headers={"Content-Type": "application/json"}, body=body)


def replay_samples(api):
    for path, record in reference.notify_samples():
        assert path.startswith(NOTIFY)
        assert post(api, record).status_code == 200


def test_captured_sequence_keeps_terminal_states(api, ddb):
    replay_samples(api)
    states = {rid: api.http.get(f"/api/v2/app/{app}/cron/records/{rid}").json_body["state"]
              for app, rid in [("mysql", MYSQL_RUN_A), ("mysql", MYSQL_RUN_B)]}
    # MYSQL_RUN_B's "running" post arrived after its "failed" post: failed stays
    assert states == {MYSQL_RUN_A: "failed", MYSQL_RUN_B: "failed"}
    kept = api.http.get(f"/api/v2/app/mysql/cron/records/{MYSQL_RUN_B}").json_body
    assert kept == next(r for _, r in reference.notify_samples()
                        if r["rid"] == MYSQL_RUN_B and r["state"] == "failed")


def test_records_route_answers_the_month_newest_first(api, ddb):
    replay_samples(api)
    resp = api.http.get("/api/v2/app/mysql/cron/records?year=2026&month=11")
    assert resp.status_code == 200
    assert [r["rid"] for r in resp.json_body] == [MYSQL_RUN_B, MYSQL_RUN_A]
    assert [r["state"] for r in resp.json_body] == ["failed", "failed"]
    v1 = api.http.get("/api/v1/cron/records/app/mysql?year=2026&month=11&total=1")
    assert [r["rid"] for r in v1.json_body] == [MYSQL_RUN_B]
    assert api.http.get("/api/v2/app/mysql/cron/records?year=2026&month=10").json_body == []
    one = api.http.get(f"/api/v1/cron/record/app/mysql/id/{MYSQL_RUN_A}")
    assert one.json_body["action"] == "backup"


def test_state_filter(api, ddb):
    replay_samples(api)
    failed = api.http.get("/api/v2/app/mysql/cron/records?year=2026&month=11&state=failed")
    assert [r["rid"] for r in failed.json_body] == [MYSQL_RUN_B, MYSQL_RUN_A]
    assert api.http.get("/api/v2/app/mysql/cron/records?year=2026&month=11&state=success"
                        ).json_body == []


def test_an_expire_run_is_a_record_only_when_it_failed(api, ddb):
    """Every node's expire job posts twice a minute, and its record never says what it deleted:
    a success is kept as the node's last expire run only, and only every tenth minute (the same
    fact every minute); a failure is kept at once, as a record too."""
    replay_samples(api)  # the expire job's running and success posts among them (at 23:47)
    assert api.http.get(f"/api/v2/app/backupctl/cron/records/{EXPIRE_RUN}").status_code == 404
    assert api.http.get("/api/v2/app/backupctl/cron/records?year=2026&month=11").json_body == []
    assert [i for i in ddb.scan()["Items"] if i["pk"].startswith("EXPIRE#")] == []
    success = reference.notify_samples()[5][1]

    def at(minute: int, **fields) -> dict:
        when = datetime(2026, 11, 24, 23, 47, tzinfo=UTC) + timedelta(minutes=minute)
        return {**success, "rid": EXPIRE_RUN.replace("1795564020", str(1795564020 + 60 * minute)),
                "start": f"{when:%Y-%m-%dT%H:%M}:00.000380974Z", "end": f"{when:%Y-%m-%dT%H:%M}:00.1Z",
                **fields}

    tenth = at(3)  # 23:50
    assert post(api, tenth).json_body["stored"] is True
    [last] = [i for i in ddb.scan()["Items"] if i["pk"].startswith("EXPIRE#")]
    assert json.loads(last["run"])["rid"] == tenth["rid"] and last["state"] == "success"
    later = at(4, state="failed", reason="rm: permission denied")  # 23:51
    running = {**later, "state": "running", "end": "0001-01-01T00:00:00Z", "reason": ""}
    assert post(api, running).json_body["stored"] is False
    assert post(api, later).json_body["stored"] is True
    listed = api.http.get("/api/v2/app/backupctl/cron/records?year=2026&month=11").json_body
    assert listed == [later]
    [last] = [i for i in ddb.scan()["Items"] if i["pk"].startswith("EXPIRE#")]
    assert json.loads(last["run"])["reason"] == "rm: permission denied"
    assert post(api, tenth).json_body["stored"] is False  # older than the last run
    assert post(api, at(5)).json_body["stored"] is False  # 23:52: not a tenth minute
    assert post(api, at(13)).json_body["stored"] is True  # 00:00 the next day: kept again


def test_duplicate_success_leaves_one_record(ddb):
    store = RecordStore(ddb)
    job = reference.job("7f00000bb19d69edd273f3535f5cd42e6fcbd556")
    start = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    record = reference.record_of(job, "success", start, result={"file": "f", "size": 3})
    assert store.put(record) is True
    assert store.put(copy.deepcopy(record)) is False  # same post again: harmless, unchanged
    running = {**record, "state": "running", "end": "0001-01-01T00:00:00Z", "result": None}
    assert store.put(running) is False
    assert store.month("hello", 2026, 11, 100) == [record]


def test_terminal_state_is_not_replaced_by_another_terminal_state(ddb):
    store = RecordStore(ddb)
    failed = reference.notify_samples()[1][1]
    assert store.put(failed)
    with pytest.raises(Conflict, match="already finished as failed"):
        store.put({**failed, "state": "success", "reason": ""})
    assert store.get("mysql", failed["rid"])["state"] == "failed"


def make_record(app, start, n):
    return {"id": f"7f00000b{n:032x}", "spec": "0 3 * * *", "action": "backup",
            "args": {"app": app, "n": n, "volume": f"/v{n}"}, "type": "cron", "sleep": False,
            "rid": f"r{n:06d}", "result": {"file": f"f{n}.tar.gz", "size": n + 1}, "state": "success",
            "start": start.strftime("%Y-%m-%dT%H:%M:%S.") + f"{n % 1000:03d}Z",
            "end": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "reason": ""}


def test_records_query_back_per_app_and_month(ddb):
    """Records stored one by one, as notify stores them, come back per app and month, newest
    first, each with its own args."""
    store = RecordStore(ddb)
    base = datetime(2026, 10, 20, tzinfo=UTC)
    made = []
    for n in range(120):  # every 12 hours: three apps over October and November
        record = make_record(("a", "b", "c")[n % 3], base + timedelta(hours=12 * n), n)
        made.append(record)
        store.put(record)
    ops = OperationLog(ddb)
    for app in ("a", "b", "c"):
        for year, month in ((2026, 10), (2026, 11)):
            got = store.month(app, year, month, 1000)
            expected = sorted((r for r in made if r["args"]["app"] == app
                               and r["start"].startswith(f"{year}-{month:02d}")),
                              key=lambda r: r["start"], reverse=True)
            assert got == expected and got
            assert all(r["result"]["size"] == r["args"]["n"] + 1 for r in got)  # each its own args
    assert set(ops.names) == {"Query"} and "Scan" not in ops.names


def test_the_newest_hundred_of_a_thousand_are_one_query_page(ddb):
    """Volume: 1,000 records of one app-month (written as the store writes them, in batches: the
    writing is not what this measures); the newest 100 are one Query, no Scan."""
    base = datetime(2026, 11, 1, tzinfo=UTC)
    made = [make_record("a", base + timedelta(minutes=40 * n), n) for n in range(1000)]
    with ddb.batch_writer() as batch:
        for record in made:
            batch.put_item(Item=record_item(record))
    store = RecordStore(ddb)
    ops = OperationLog(ddb)
    newest = store.month("a", 2026, 11, 100)
    assert newest == sorted(made, key=lambda r: r["start"], reverse=True)[:100]
    assert ops.names == ["Query"]  # the newest 100 are one page


def test_get_by_rid_is_one_getitem_and_no_scan(api, app_operations):
    replay_samples(api)
    app_operations.names.clear()
    api.http.get(f"/api/v2/app/mysql/cron/records/{MYSQL_RUN_A}")
    api.http.get("/api/v2/app/mysql/cron/records?year=2026&month=11")
    assert app_operations.names == ["GetItem", "Query"]


def test_unknown_or_other_apps_record_is_404(api, ddb):
    replay_samples(api)
    for path in (f"/api/v2/app/hello/cron/records/{MYSQL_RUN_A}",
                 "/api/v2/app/mysql/cron/records/nosuch",
                 f"/api/v1/cron/record/app/hello/id/{MYSQL_RUN_A}"):
        resp = api.http.get(path)
        assert resp.status_code == 404 and "not found" in error_of(resp)["error"]


@pytest.mark.parametrize("query, words", [
    ("total=0", "total"), ("total=abc", "total"), ("total=100000", "total"), ("month=13", "month"),
    ("month=-1", "month"), ("year=99", "year"), ("state=done", "state"),
])
def test_bad_query_is_400(api, ddb, query, words):
    resp = api.http.get(f"/api/v2/app/mysql/cron/records?{query}")
    assert resp.status_code == 400 and words in error_of(resp)["error"]


@pytest.mark.parametrize("body, words", [
    (b"{not json", "not valid JSON"),
    (b"[]", "JSON object"),
    (json.dumps({"state": "running", "start": "2026-11-24T23:46:54Z"}), "rid"),
    (json.dumps({"rid": "r1", "state": "running", "start": "2026-11-24T23:46:54Z"}), "rid"),
    (b"[" * 5000 + b"]" * 5000, "nested deeper"),
])
def test_malformed_notify_is_400_and_stores_nothing(api, ddb, body, words):
    resp = post(api, body)
    assert resp.status_code == 400 and words in error_of(resp)["error"]
    assert nothing_stored(ddb)  # (the test may scan; the app never does)


FAILED = reference.notify_samples()[1][1]  # mysql's failed run, as captured


@pytest.mark.parametrize("change, words", [
    ({"start": "yesterday"}, "start"),
    ({"start": 5}, "start must be str"),
    ({"start": "0001-01-01T00:00:00Z"}, "unset"),
    ({"start": "9999-12-31T23:59:59Z"}, "in the future"),
    ({"start": "2026-11-20T23:46:54Z"}, "not when the rid says"),
    ({"end": 123}, "end must be str"),
    ({"end": "2026-11-24T23:46:50Z"}, "before start"),
    ({"end": "9999-12-31T23:59:59Z"}, "in the future"),
    ({"end": "0001-01-01T00:00:00Z"}, "needs its end time"),
    ({"state": "weird"}, "state"),
    ({"state": None}, "state must be str"),
    ({"result": "ok"}, "result must be dict or null"),
    ({"reason": ["x"]}, "reason must be str"),
    ({"sleep": "no"}, "sleep must be bool"),
    ({"extra": 1}, "never sends"),
    ({"action": "rm -rf"}, "action"),
    ({"args": {**FAILED["args"], "instanceNo": "abc"}}, "args.instanceNo must be a whole number"),
    ({"args": {**FAILED["args"], "instanceNo": 10**30}}, "args.instanceNo"),
    ({"args": {**FAILED["args"], "app": "hello"}}, "is not the id of the job"),
    ({"args": {**FAILED["args"], "evil": "x"}}, "never has"),
    ({"id": "7f00000d" + "0" * 32}, "is not the id of the job"),
    ({"id": ""}, "is not the id"),
    ({"rid": "1795564014" + "g" * 32}, "rid"),
    ({"rid": "x" * 5000}, "rid"),
    ({"reason": "\ud800"}, None),  # the JSON escape itself: a lone surrogate
])
def test_notify_validates_every_field(api, ddb, change, words):
    body = json.dumps({**FAILED, **change})
    if words is None:
        body, words = body.replace("\\\\ud800", "\\ud800"), "not valid text"
    resp = post(api, body)
    assert resp.status_code == 400, resp.body
    assert words in error_of(resp)["error"] and error_of(resp)["code"] == "bad_record"
    assert nothing_stored(ddb)


def test_oversize_record_is_413(api, ddb):
    resp = post(api, {**FAILED, "reason": "x" * 70_000})
    assert resp.status_code == 413 and "65,536" in error_of(resp)["error"]
    assert nothing_stored(ddb)


def test_a_record_cannot_be_moved_to_another_app_or_rewritten(api, ddb):
    assert post(api, FAILED).status_code == 200
    # hello's job, internally consistent, but posted under mysql's rid
    hello = reference.record_of(reference.job("7f00000bb19d69edd273f3535f5cd42e6fcbd556"),
                                "success", datetime(2026, 11, 24, 23, 46, 54, tzinfo=UTC))
    resp = post(api, {**hello, "rid": FAILED["rid"]})
    assert resp.status_code == 409 and "belongs to app mysql" in error_of(resp)["error"]
    for change in ({"reason": "all fine, nothing to see"}, {"state": "success", "reason": ""},
                   {"end": "2026-11-24T23:46:55Z"}):
        resp = post(api, {**FAILED, **change})
        assert resp.status_code == 409 and "already finished as failed" in error_of(resp)["error"]
    assert api.http.get(f"/api/v2/app/mysql/cron/records/{FAILED['rid']}").json_body == FAILED
    assert api.http.get(f"/api/v2/app/hello/cron/records/{FAILED['rid']}").status_code == 404
    repeat = post(api, FAILED)  # an identical repeat is harmless
    assert (repeat.status_code, repeat.json_body) == (200, {"rid": FAILED["rid"], "stored": False})
    late = post(api, {**FAILED, "state": "running", "end": "0001-01-01T00:00:00Z", "reason": ""})
    assert (late.status_code, late.json_body["stored"]) == (200, False)


def test_a_result_must_match_the_run_it_finishes(api, ddb):
    running = reference.notify_samples()[0][1]
    assert post(api, running).json_body["stored"] is True
    forged = {**running, "state": "success", "end": running["start"], "sleep": True}
    resp = post(api, forged)
    assert resp.status_code == 409 and "belongs to app mysql" in error_of(resp)["error"]
    assert api.http.get(f"/api/v2/app/mysql/cron/records/{running['rid']}").json_body == running


def test_notify_token(api, ddb, monkeypatch):
    from chalicelib.settings import get_settings

    record = reference.notify_samples()[0][1]
    monkeypatch.setenv("NOTIFY_TOKEN", "EXAMPLE")
    get_settings.cache_clear()
    assert post(api, record).status_code == 401
    assert post(api, record, token="WRONG").status_code == 401
    assert nothing_stored(ddb)
    resp = post(api, record, token="EXAMPLE")  # the daemon posts to the URL it was given
    assert resp.status_code == 200 and resp.json_body == {"rid": record["rid"], "stored": True}
    monkeypatch.setenv("NOTIFY_TOKEN", "")
    get_settings.cache_clear()
    assert post(api, {**record, "rid": record["rid"][:10] + "f" * 32}).status_code == 200


def test_backup_of_the_store(api, ddb, monkeypatch):
    resp = api.http.post("/api/v2/system/backup")
    assert resp.status_code == 201
    assert resp.json_body["backup"].startswith("backupctl-test-")
    backups = ddb.meta.client.list_backups(TableName="backupctl-test")["BackupSummaries"]
    assert [b["BackupName"] for b in backups] == [resp.json_body["backup"]]
    from chalicelib.settings import get_settings

    monkeypatch.setenv("API_TOKEN", "t")
    get_settings.cache_clear()
    assert api.http.post("/api/v2/system/backup").status_code == 401


def test_retention_sets_ttl(ddb):
    RecordStore(ddb, retention_days=30).put(reference.notify_samples()[0][1])
    item = ddb.get_item(Key={"pk": f"RID#{MYSQL_RUN_A}", "sk": "RECORD"})["Item"]
    started = datetime(2026, 11, 24, 23, 46, 54, tzinfo=UTC)
    assert int(item["ttl"]) == int((started + timedelta(days=30)).timestamp())
    RecordStore(ddb).put({**reference.notify_samples()[2][1]})
    assert "ttl" not in ddb.get_item(Key={"pk": f"RID#{MYSQL_RUN_B}", "sk": "RECORD"})["Item"]


def test_records_are_kept_400_days_unless_told_otherwise():
    assert Settings().record_retention_days == 400
    assert Settings.from_env({"RECORD_RETENTION_DAYS": "0"}).record_retention_days == 0


def test_sort_key_orders_mixed_precision():
    a = sort_key("2026-11-24T23:45:19.9Z", "x")
    b = sort_key("2026-11-24T23:45:19.10123216Z", "x")
    c = sort_key("2026-11-25T07:45:19+08:00", "x")
    assert b < a and c.startswith("2026-11-24T23:45:19.000000000Z")


def test_month_query_defaults():
    assert month_query(None, "", None, now=datetime(2027, 3, 5, tzinfo=UTC)) == (100, 3, 2027)


def test_parse_record_accepts_every_captured_post():
    now = datetime(2026, 11, 25, tzinfo=UTC)
    for _, record in reference.notify_samples():
        assert parse_record(json.dumps(record), now=now, skew=timedelta(minutes=10)) == record




def test_a_run_that_claims_the_future_is_refused(api, ddb):
    """A rid and start that agree with each other but lie ahead of the controller's clock."""
    ahead = datetime.now(UTC) + timedelta(hours=1)
    job = reference.job("7f00000bb19d69edd273f3535f5cd42e6fcbd556")
    resp = post(api, reference.record_of(job, "running", ahead))
    assert resp.status_code == 400 and "in the future" in error_of(resp)["error"]


def test_a_late_running_post_never_hides_its_own_result(ddb):
    store = RecordStore(ddb)
    job = reference.job("7f00000bb19d69edd273f3535f5cd42e6fcbd556")
    start = datetime.now(UTC) - timedelta(minutes=5)
    done = reference.record_of(job, "success", start, result={"file": "f", "size": 3})
    store.put(done)
    store.put({**done, "state": "running", "end": "0001-01-01T00:00:00Z", "result": None})
    node = ["127.0.0.11"]
    latest = store.latest_by_job(node)[job["id"]]
    assert latest["last"]["state"] == "success" and latest["success"]["rid"] == done["rid"]
    # the race: "running" stored first, its result next, then "running"'s write of the job's
    # latest lands last; the ordering rule of the latest items must still keep the result
    running = {**done, "state": "running", "end": "0001-01-01T00:00:00Z", "result": None}
    key = sort_key(running["start"], running["rid"])
    store._put_latest(running, key, "last")
    store._put_fresh(running, key, ["last"])
    assert store.latest_by_job(node)[job["id"]]["last"]["state"] == "success"


def test_suspicious_successes_are_flagged_and_never_count_as_good(api, ddb):
    job = reference.job("7f00000bb19d69edd273f3535f5cd42e6fcbd556")
    base = datetime.now(UTC) - timedelta(days=5)
    deps = Deps(Settings(suspect_size_percent=10), table=ddb)
    store = deps.records
    for day, size in enumerate([1000, 1100, 900]):
        records_flow.store(deps, reference.record_of(job, "success", base + timedelta(days=day),
                                                    result={"file": f"f{day}", "size": size}))
    tiny = reference.record_of(job, "success", base + timedelta(days=3), result={"file": "t", "size": 50})
    records_flow.store(deps, tiny)
    zero = reference.record_of(job, "success", base + timedelta(days=4), result={"file": "z", "size": 0})
    records_flow.store(deps, zero)
    latest = store.latest_by_job(["127.0.0.11"])[job["id"]]
    assert latest["last"]["rid"] == zero["rid"] and latest["last"]["suspect"] == "the archive is 0 bytes"
    assert latest["good"]["rid"] != tiny["rid"] and latest["good"]["result"]["size"] == 900
    answered = api.http.get(f"/api/v2/app/hello/cron/records/{tiny['rid']}").json_body
    assert "under 10% of the recent median (1000 bytes)" in answered["suspect"]
    assert {k: v for k, v in answered.items() if k != "suspect"} == tiny  # the record itself, as posted


def test_an_increment_backup_reported_as_0_bytes_is_not_suspect(api, ddb):
    """backupd reports every increment backup's size as 0: its success is a good one."""
    _, entries = reference.backupd_sample("GET /api/v1/cron/jobs")
    job = next(e["job"] for e in entries if e["job"].get("args", {}).get("mode") == "increment")
    record = reference.record_of(job, "success", datetime.now(UTC) - timedelta(minutes=1),
                                 result={"file": job["args"]["archive"], "size": 0})
    assert post(api, record).status_code == 200
    stored = api.http.get(f"/api/v2/app/hello/cron/records/{record['rid']}").json_body
    assert "suspect" not in stored
