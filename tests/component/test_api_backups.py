"""Backup routes (v1 and v2) against stand-in daemons, with lain-cli's request shapes."""

import json
from datetime import UTC, datetime

import pytest

from tests.component.apiclient import error_of, post_form, post_json
from tests.reference import backupd_sample

HELLO = "/api/v2/app/hello/proc/web/backups"
HELLO_DATA = "7f00000bb19d69edd273f3535f5cd42e6fcbd556"
FULL = "hello-hello.web.web-1-data-1795563919.tar.gz"
INCR = "hello-hello.web.web-1-var-log-hello"
ENTITY_KEYS = ["volume", "name", "size", "created", "instanceNo"]


def test_list_all_declared_volumes_on_every_node(api, daemons):
    resp = api.http.get(HELLO)
    assert resp.status_code == 200
    names = {e["name"] for e in resp.json_body}
    assert names == {FULL, INCR, "hello-hello.web.web-2-data-1795560000.tar.gz"}
    assert all(list(e) == ENTITY_KEYS for e in resp.json_body)
    assert "X-Backupctl-Unreachable" not in resp.headers
    asked = daemons["127.0.0.11"].received("/api/v1/backup/json")[0].query["dir"]
    assert asked == ["/data/lain/volumes/hello/hello.web.web/1/data",
                     "/data/lain/volumes/hello/hello.web.web/2/data",
                     "/data/lain/volumes/hello/hello.web.web/1/var/log/hello",
                     "/data/lain/volumes/hello/hello.web.web/2/var/log/hello"]
    assert not daemons["127.0.0.13"].received()  # mysql's node is never asked about hello


def test_list_by_volume_matches_the_daemon_sample(api, daemons):
    resp = api.http.get(HELLO + "?volume=/data&volume=/var/log/hello")
    _, sample = backupd_sample(
        "GET /api/v1/backup/json?dir=/data/lain/volumes/hello/hello.web.web/1/data"
        "&dir=/data/lain/volumes/hello/hello.web.web/1/var/log/hello")
    assert [e for e in resp.json_body if e["instanceNo"] == 1] == \
        [{k: s[k] for k in ENTITY_KEYS} for s in sample]


def test_v1_list(api, daemons):
    resp = api.http.get("/api/v1/backup/json/app/hello/proc/hello.web.web?volume=/var/log/hello")
    assert [e["name"] for e in resp.json_body] == [INCR]
    assert api.http.get("/api/v1/backup/json/app/hello/proc/web").json_body == []  # no volume


def test_info(api, daemons):
    resp = api.http.get(f"{HELLO}/{FULL}")
    assert resp.status_code == 200
    _, sample = backupd_sample(f"GET /api/v1/backup/info/file/{FULL}")
    assert resp.json_body == {k: sample[k] for k in ENTITY_KEYS}


def test_info_of_missing_backup_is_404(api, daemons):
    resp = api.http.get(f"{HELLO}/hello-hello.web.web-1-data-1.tar.gz")
    assert resp.status_code == 404
    assert "hello-hello.web.web-1-data-1.tar.gz" in error_of(resp)["error"]


def test_open_increment_dir(api, daemons):
    resp = api.http.get(f"{HELLO}/{INCR}?open=true")
    assert resp.status_code == 200
    assert [f["name"] for f in resp.json_body] == ["x.log"]
    v1 = api.http.get(f"/api/v1/backup/filelist/app/hello/proc/hello.web.web/dir/{INCR}")
    assert v1.json_body == resp.json_body
    assert api.http.get(f"{HELLO}/{FULL}?open=true").status_code == 400
    missing = api.http.get(f"{HELLO}/hello-hello.web.web-9-data?open=true")
    assert missing.status_code == 404


def test_recover_full_in_place_without_a_snapshot(api, ddb, daemons):
    resp = post_form(api, f"{HELLO}/{FULL}/actions/recover?snapshot=false")
    assert resp.status_code == 200
    op = resp.json_body
    assert op["phase"] == "Restoring" and op["snapshot"] is None and op["restore"]["rid"]
    call = daemons["127.0.0.11"].received("/api/v1/backup/full/recover/file/")[0]
    assert call.path.endswith(FULL)
    assert call.form == {"namespace": ["127.0.0.11"], "destDir": [""], "app": ["hello"],
                         "proc": ["hello.web.web"], "instanceNo": ["1"]}


def test_recover_takes_a_snapshot_of_the_volume_first(api, ddb, pushed):
    resp = post_form(api, f"{HELLO}/{FULL}/actions/recover")
    assert resp.status_code == 200
    op = resp.json_body
    assert op["phase"] == "Snapshotting" and op["snapshot"]["job"] == HELLO_DATA
    assert pushed["127.0.0.11"].runs == [(op["snapshot"]["rid"], HELLO_DATA)]  # run once, now
    assert not pushed["127.0.0.11"].received("/api/v1/backup/full/recover")  # not yet
    assert op["url"] == f"/api/v2/app/hello/operations/{op['operation']}"


def test_recover_increment_needs_files(api, ddb, daemons):
    resp = post_form(api, f"{HELLO}/{INCR}/actions/recover")
    assert resp.status_code == 400 and "open=true" in error_of(resp)["error"]
    resp = post_form(api, f"{HELLO}/{INCR}/actions/recover", [("files", "x.log"), ("files", "y")])
    assert resp.status_code == 200 and resp.json_body["phase"] == "Restoring"  # never a snapshot
    call = daemons["127.0.0.11"].received("/api/v1/backup/increment/recover/dir/")[0]
    assert call.form["files"] == ["x.log", "y"] and call.form["destDir"] == [""]


def test_v1_recover_routes(api, ddb, pushed):
    v1 = "/api/v1/backup/recover"
    assert post_form(api, f"{v1}/app/hello/proc/hello.web.web/file/{FULL}").status_code == 200
    resp = post_form(api, f"{v1}/increment/app/hello/proc/hello.web.web/dir/{INCR}",
                     [("instanceNo", "1"), ("files", "x.log")])
    assert resp.status_code == 200


@pytest.fixture
def fixed_daemons(monkeypatch):
    """A cluster whose daemons restore from another node's namespace (the reference cluster's
    two hello instances run on two nodes; backupd as released cannot migrate between them)."""
    from chalicelib.settings import get_settings

    monkeypatch.setenv("ALLOW_CROSS_NODE_RESTORE", "true")
    get_settings.cache_clear()


@pytest.mark.parametrize("send", [
    lambda api, path: post_form(api, path, [("volume", "/data"), ("to", "2")]),
    lambda api, path: post_json(api, path, {"volume": "/data", "to": 2}),
])
def test_migrate_full_to_another_instance(api, ddb, pushed, fixed_daemons, send):
    resp = send(api, f"{HELLO}/{FULL}/actions/migrate?snapshot=false&verify=false")
    assert resp.status_code == 200, resp.body
    assert not pushed["127.0.0.11"].received("/api/v1/backup/full/recover")
    call = pushed["127.0.0.12"].received("/api/v1/backup/full/recover/file/")[0]
    assert call.form["namespace"] == ["127.0.0.11"]  # where the backup is
    assert call.form["destDir"] == ["/data/lain/volumes/hello/hello.web.web/2/data"]
    assert call.form["instanceNo"] == ["2"]
    api.http.post("/api/v2/system/notify", headers={"Content-Type": "application/json"},
                  body=json.dumps(_recover_done(call, resp.json_body["restore"]["rid"])))
    snap = send(api, f"{HELLO}/{FULL}/actions/migrate").json_body  # the target's own job
    assert snap["phase"] == "Snapshotting" and snap["snapshot"]["job"].startswith("7f00000c")
    assert pushed["127.0.0.12"].runs[-1][1] == snap["snapshot"]["job"]


def _recover_done(call, rid):
    """The daemon's success record of the restore ``call`` asked for (frees the target)."""
    start = datetime.fromtimestamp(int(rid[:10]), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    form = {k: v[0] for k, v in call.form.items()}
    return {"id": "", "spec": "", "action": "backup_recover", "type": "once", "sleep": False,
            "args": {"namespace": form["namespace"], "backup": call.path.rsplit("/", 1)[1],
                     "files": None, "destDir": form["destDir"], "app": form["app"],
                     "proc": form["proc"]},
            "rid": rid, "result": None, "state": "success", "start": start, "end": start,
            "reason": ""}


def test_migrate_across_nodes_is_refused_as_the_daemon_cannot_do_it(api, ddb, pushed):
    resp = post_form(api, f"{HELLO}/{FULL}/actions/migrate", [("volume", "/data"), ("to", "2")])
    assert resp.status_code == 409 and error_of(resp)["code"] == "cross_node_restore"
    assert not any(d.received("/api/v1/backup", "POST") or d.runs for d in pushed.values())


def test_migrate_increment_v1(api, ddb, daemons, fixed_daemons):
    path = f"/api/v1/backup/migrate/increment/app/hello/proc/hello.web.web/dir/{INCR}"
    resp = post_form(api, path, [("from", "1"), ("to", "2"), ("volume", "/var/log/hello"),
                                 ("files", "x.log")])
    assert resp.status_code == 200
    call = daemons["127.0.0.12"].received("/api/v1/backup/increment/recover/dir/")[0]
    assert call.form["destDir"] == ["/data/lain/volumes/hello/hello.web.web/2/var/log/hello"]
    assert call.form["files"] == ["x.log"]


def test_a_dry_run_says_what_would_happen_and_touches_nothing(api, ddb, pushed, fixed_daemons):
    resp = post_form(api, f"{HELLO}/{FULL}/actions/migrate?dry_run=true",
                     [("volume", "/data"), ("to", "2")])
    assert resp.status_code == 200
    assert resp.json_body == {"dry_run": True, "would_restore": {
        "node": "127.0.0.12", "source_backup": FULL, "source_node": "127.0.0.11",
        "target_dir": "/data/lain/volumes/hello/hello.web.web/2/data", "instance": 2,
        "files": "all", "snapshot": True, "verify": True,
        "undo": "the pre-restore snapshot is being taken; it names the undo once it exists"}}
    assert not any(d.received(p, "POST") for d in pushed.values()
                   for p in ("/api/v1/backup", "/api/v1/cron/once"))
    assert api.http.get("/api/v2/app/hello/operations").json_body == []


@pytest.mark.parametrize("data, status, words", [
    ([("volume", "/data")], 400, "to: an instance number"),
    ([("volume", "/data"), ("to", "two")], 400, "'two'"),
    ([("volume", "/data"), ("to", "7")], 400, "no instance 7"),
    ([("to", "2")], 400, "volume"),
    ([("volume", "/etc"), ("to", "2")], 400, "'/etc' is not a backup volume"),
    ([("volume", "/../../mysql"), ("to", "2")], 400, "not a volume path"),
])
def test_migrate_bad_input(api, daemons, data, status, words):
    resp = post_form(api, f"{HELLO}/{FULL}/actions/migrate", data)
    assert resp.status_code == status and words in error_of(resp)["error"]
    assert not any(d.received("/api/v1/backup/full") for d in daemons.values())


def test_delete(api, ddb, daemons):
    resp = post_form(api, f"{HELLO}/actions/delete", [("files", FULL), ("files", f"{INCR}/x.log")])
    assert resp.status_code == 204
    assert daemons["127.0.0.11"].received("/api/v1/backup/delete")[0].form["files"] == \
        [FULL, f"{INCR}/x.log"]
    assert not daemons["127.0.0.12"].received("/api/v1/backup/delete")  # holds neither
    assert FULL not in {b["name"] for b in daemons["127.0.0.11"].backups}
    assert not daemons["127.0.0.13"].received()


@pytest.mark.parametrize("files, named", [
    ([FULL, "hello-hello.web.web-1-data-1.tar.gz"], "hello-hello.web.web-1-data-1.tar.gz"),
    ([f"{INCR}/nosuch.log"], f"{INCR}/nosuch.log"),
    (["hello-hello.web.web-2-1-data-1795563919.tar.gz"], "hello-hello.web.web-2-1-data"),
])
def test_delete_of_unknown_or_foreign_names_is_404_and_deletes_nothing(api, daemons, files, named):
    # a same-app proc whose name extends web's: its backups carry web's archive prefix
    daemons["127.0.0.11"].add_backup("hello", "hello.web.web-2", 1, "/data")
    resp = post_form(api, f"{HELLO}/actions/delete", [("files", f) for f in files])
    assert resp.status_code == 404, resp.body
    assert named in error_of(resp)["error"] and "nothing was deleted" in error_of(resp)["error"]
    assert not any(d.received("/api/v1/backup/delete") for d in daemons.values())
    assert len(daemons["127.0.0.11"].backups) == 3


def test_delete_needs_files(api, daemons):
    resp = post_form(api, f"{HELLO}/actions/delete")
    assert resp.status_code == 400 and error_of(resp)["code"] == "no_files"


def test_unknown_app_and_proc_are_named(api, daemons):
    resp = api.http.get("/api/v2/app/nosuch/proc/web/backups")
    assert resp.status_code == 404 and "'nosuch'" in error_of(resp)["error"]
    resp = api.http.get("/api/v2/app/hello/proc/worker/backups")
    assert resp.status_code == 404 and "'worker'" in error_of(resp)["error"]


def test_lainlet_down_is_502_naming_lainlet(api, daemons, lainlet):
    lainlet.stop()
    resp = api.http.get(HELLO)
    assert resp.status_code == 502
    assert error_of(resp)["error"].startswith(f"lainlet at {lainlet.url}")


def test_lainlet_slow_is_504(api, daemons, lainlet):
    lainlet.delay = 1.5
    resp = api.http.get(HELLO)
    assert resp.status_code == 504 and "lainlet" in error_of(resp)["error"]


def test_daemon_error_on_single_target_action_is_502_with_its_words(api, daemons):
    daemons["127.0.0.11"].fail_status = 500
    resp = post_form(api, f"{HELLO}/{FULL}/actions/recover")
    assert resp.status_code == 502
    assert "127.0.0.11" in error_of(resp)["error"]


def test_files_with_a_full_backup_are_refused_and_nothing_is_restored(api, daemons):
    resp = post_form(api, f"{HELLO}/{FULL}/actions/recover", [("files", "hello.txt")])
    assert resp.status_code == 400 and "increment backups only" in error_of(resp)["error"]
    assert not any(d.received("/api/v1/backup") for d in daemons.values())


def test_an_undeclared_volume_is_404_naming_the_declared_ones(api, daemons):
    resp = api.http.get(f"{HELLO}?volume=/nosuch")
    assert resp.status_code == 404
    assert error_of(resp) == {"error": "hello.web.web declares no backup of /nosuch (declared: "
                                       "/data, /var/log/hello)", "code": "unknown_volume"}
    assert not any(d.received() for d in daemons.values())
