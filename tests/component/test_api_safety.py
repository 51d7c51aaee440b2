"""Nothing under /app/{app} reaches another app's backups or jobs; nothing reaches an unnamed IP."""

import pytest

from tests.component.apiclient import error_of, post_form

MYSQL_FILE = "mysql-mysql.worker.master-1-var-lib-mysql-1795563919.tar.gz"
MYSQL_JOB = "7f00000d021a80f569807176a366a7fac5c3ba76"
HELLO_JOB = "7f00000bb19d69edd273f3535f5cd42e6fcbd556"


def nothing_reached(daemons, prefix="/api/v1"):
    return not any(d.received(prefix) for d in daemons.values())


@pytest.mark.parametrize("method, path, data, status", [
    ("GET", f"/api/v2/app/hello/proc/web/backups/{MYSQL_FILE}", None, 403),
    ("GET", "/api/v2/app/hello/proc/web/backups/mysql-mysql.worker.master-1-var-lib-mysql?open=true",
     None, 403),
    ("POST", f"/api/v2/app/hello/proc/web/backups/{MYSQL_FILE}/actions/recover", [], 403),
    ("POST", f"/api/v2/app/hello/proc/web/backups/{MYSQL_FILE}/actions/migrate",
     [("volume", "/data"), ("to", "1")], 403),
    ("POST", "/api/v2/app/hello/proc/web/backups/actions/delete", [("files", MYSQL_FILE)], 403),
    ("POST", "/api/v2/app/hello/proc/web/backups/actions/delete",
     [("files", "hello-hello.web.web-1-data-1.tar.gz/../../" + MYSQL_FILE)], 400),
    ("POST", f"/api/v1/backup/recover/app/hello/proc/hello.web.web/file/{MYSQL_FILE}", [], 403),
    # a proc of another app named in full is not this app's proc
    ("GET", "/api/v2/app/hello/proc/mysql.worker.master/backups", None, 404),
    # app "hello" must not match files of the hello proc's sibling name
    ("GET", "/api/v2/app/hello/proc/web/backups/hello-hello.web.webx-1-data.tar.gz", None, 403),
    # the proc's prefix but no instance number: not one of its backups' names
    ("GET", "/api/v2/app/hello/proc/web/backups/hello-hello.web.web-data.tar.gz", None, 403),
    ("GET", f"/api/v2/app/hello/cron/jobs/{MYSQL_JOB}", None, 404),
    ("POST", f"/api/v2/app/hello/cron/jobs/{MYSQL_JOB}/actions/run", [], 404),
    ("POST", f"/api/v2/app/hello/cron/jobs/{MYSQL_JOB}/actions/sleep", [], 404),
    ("POST", f"/api/v1/cron/once/app/hello/id/{MYSQL_JOB}", [], 404),
    ("POST", "/api/v1/cron/once/app/hello/id/7f00000b0000", [], 404),
    ("GET", "/api/v2/server/10.1.2.3/debug", None, 404),
    ("GET", "/api/v2/server/169.254.169.254/cron/jobs", None, 404),
    ("PUT", "/api/v2/server/127.0.0.99/cron/actions/stop", None, 404),
    ("GET", "/api/v2/server/lainlet.lain/debug", None, 400),
    ("GET", "/api/v2/app/hello/proc/web/backups/..", None, 400),
    ("GET", "/api/v2/app/hello/proc/web/backups/hello-hello.web.web-1..x", None, 400),
    ("GET", "/api/v2/app/hel%2Flo/proc/web/backups", None, 400),
])
def test_cross_app_and_unnamed_targets_never_reach_a_daemon(api, daemons, method, path, data,
                                                             status):
    if method == "POST":
        resp = post_form(api, path, data)
    else:
        resp = api.http.request(method, path, headers={}, body=b"")
    assert resp.status_code == status, resp.body
    assert error_of(resp)["error"]
    assert nothing_reached(daemons)


def test_api_token_guards_mutations_only(api, daemons, monkeypatch):
    from chalicelib.settings import get_settings

    monkeypatch.setenv("API_TOKEN", "t0ken")
    get_settings.cache_clear()
    path = f"/api/v2/app/hello/cron/jobs/{HELLO_JOB}/actions/run"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "t0ken"}):
        resp = post_form(api, path, headers=headers)
        assert resp.status_code == 401 and "Bearer" in error_of(resp)["error"]
    assert nothing_reached(daemons)
    resp = post_form(api, path, headers={"Authorization": "Bearer t0ken"})
    assert resp.status_code == 404  # authorised, then: not pushed to its daemon yet
    assert api.http.get("/api/v2/app/hello/proc/web/backups").status_code == 200  # reads stay open


def test_bad_json_body_is_400(api, daemons):
    resp = api.http.post("/api/v2/app/hello/proc/web/backups/actions/delete",
                         headers={"Content-Type": "application/json"}, body=b"{nope")
    assert resp.status_code == 400 and error_of(resp)["code"] == "bad_body"


def test_listing_keeps_only_the_procs_backups_even_if_a_daemon_ignores_the_filter(api, daemons):
    node = daemons["127.0.0.11"]
    node.add_backup("mysql", "mysql.worker.master", 1, "/var/lib/mysql")
    node._backups = lambda dirs: node.backups  # a daemon answering every backup it has
    names = {e["name"] for e in api.http.get("/api/v2/app/hello/proc/web/backups").json_body}
    assert names and all(n.startswith("hello-hello.web.web-") for n in names)
