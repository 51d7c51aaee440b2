"""The audit trail: every mutating call leaves one entry (who, what, on what, outcome, id), read
newest first per app and for the system, paged; never a token in it."""

from __future__ import annotations

from urllib.parse import quote

from chalicelib.settings import get_settings
from tests.component.apiclient import post_form

HELLO_DATA = "7f00000bb19d69edd273f3535f5cd42e6fcbd556"
FULL = "hello-hello.web.web-1-data-1795563919.tar.gz"
HELLO = "/api/v2/app/hello/proc/web/backups"


def test_every_mutating_call_is_audited(api, ddb, pushed, monkeypatch):
    monkeypatch.setenv("API_TOKEN", "t0ken-audit")
    get_settings.cache_clear()
    auth = {"Authorization": "Bearer t0ken-audit", "User-Agent": "lain-cli/2.1"}
    rid = post_form(api, f"/api/v2/app/hello/cron/jobs/{HELLO_DATA}/actions/run",
                    headers=auth).json_body["rid"]
    post_form(api, f"/api/v2/app/hello/cron/jobs/{HELLO_DATA}/actions/sleep",
              [("reason", "migration"), ("until", "2h")], headers=auth)
    post_form(api, f"{HELLO}/actions/delete", [("files", "hello-hello.web.web-1-data-7.tar.gz")],
              headers=auth)  # refused (unknown name): audited with its outcome
    post_form(api, f"{HELLO}/{FULL}/actions/recover")  # no token: 401, audited too
    api.http.get(HELLO)  # reads are not audited
    api.http.put("/api/v2/server/127.0.0.12/cron/actions/stop", headers=auth)

    entries = api.http.get("/api/v2/app/hello/audit").json_body
    assert [e["route"] for e in entries] == [
        "POST /api/v2/app/{app_name}/proc/{proc}/backups/{name}/actions/recover",
        "POST /api/v2/app/{app_name}/proc/{proc}/backups/actions/delete",
        "POST /api/v2/app/{app_name}/cron/jobs/{job_id}/actions/{action}",
        "POST /api/v2/app/{app_name}/cron/jobs/{job_id}/actions/{action}"]
    recover, delete, sleep, run = entries
    assert run["id"] == rid and run["target"] == {"job_id": HELLO_DATA, "action": "run"}
    assert run["outcome"] == {"status": 200, "code": "ok"} and run["app"] == "hello"
    assert run["caller"]["user_agent"] == "lain-cli/2.1"
    assert run["caller"]["token"].startswith("token:") and "t0ken" not in str(entries)
    assert sleep["target"] == {"job_id": HELLO_DATA, "action": "sleep", "until": "2h",
                               "reason": "migration"}
    assert delete["outcome"]["status"] == 404 and delete["target"]["files"] == [
        "hello-hello.web.web-1-data-7.tar.gz"]
    assert recover["outcome"]["code"] == "unauthorized" and recover["caller"]["token"] == "none"
    system = api.http.get("/api/v2/system/audit").json_body
    assert system[0]["route"] == "PUT /api/v2/server/{ip}/cron/actions/{action}" and system[0]["app"] == ""
    assert [e["cursor"] for e in system[1:]] == [e["cursor"] for e in entries]


def test_the_audit_pages_newest_first(api, ddb, pushed):
    for _ in range(5):
        post_form(api, f"/api/v2/app/hello/cron/jobs/{HELLO_DATA}/actions/run")
    first = api.http.get("/api/v2/app/hello/audit?total=2")
    token = first.headers["X-Backupctl-Next"]
    rest = api.http.get(f"/api/v2/app/hello/audit?total=10&next={quote(token)}").json_body
    ids = [e["id"] for e in first.json_body + rest]
    assert len(ids) == 5 == len(set(ids))
    cursors = [e["cursor"] for e in first.json_body + rest]
    assert cursors == sorted(cursors, reverse=True)
    assert api.http.get("/api/v2/app/hello/audit?next=bogus").status_code == 400
