"""Job, server and system routes against stand-in daemons holding the generated job lists."""


from chalicelib.core import jobs as joblib
from chalicelib.edges.state import NodeStateStore
from tests import reference
from tests.component.apiclient import error_of, post_form

HELLO_DATA = "7f00000bb19d69edd273f3535f5cd42e6fcbd556"
MYSQL = "7f00000d021a80f569807176a366a7fac5c3ba76"


def test_app_jobs_hide_path_and_archive(api, pushed):
    resp = api.http.get("/api/v2/app/hello/cron/jobs")
    assert resp.status_code == 200
    entries = resp.json_body
    assert {e["job"]["id"] for e in entries} == {
        HELLO_DATA, "7f00000b6a0ce136f0bf369c544aee5050b67bf0",
        "7f00000c399834392760c2758a2b4d762a28f33d", "7f00000c348b83552a3e350194baea474e986aec"}
    for e in entries:
        assert set(e) == {"prev", "next", "job"}
        assert set(e["job"]["args"]) == {"app", "containers", "instanceNo", "mode", "postRun",
                                         "preRun", "proc", "volume"}
    assert not pushed["127.0.0.13"].received("/api/v1/cron/jobs", "GET")


def test_app_jobs_filters_pass_through_but_app_is_forced(api, pushed):
    resp = api.http.get("/api/v1/cron/jobs/app/hello?action=backup&args_volume=/data&args_app=mysql"
                        "&secret=x")
    assert {e["job"]["id"][:8] for e in resp.json_body} == {"7f00000b", "7f00000c"}
    query = pushed["127.0.0.11"].received("/api/v1/cron/jobs", "GET")[0].query
    assert query == {"action": ["backup"], "args_volume": ["/data"], "args_app": ["hello"]}


def test_every_visible_arg_filters_but_hidden_args_do_not(api, pushed):
    """A user may filter on each arg a job shows; ``args.path``/``archive`` are hidden, so a filter
    on them would tell what they hold: it is not passed on."""
    api.http.get("/api/v2/app/hello/cron/jobs?args_preRun=&args_mode=full&args_path=/data"
                 "&args_archive=x")
    query = pushed["127.0.0.11"].received("/api/v1/cron/jobs", "GET")[0].query
    assert query == {"args_preRun": [""], "args_mode": ["full"], "args_app": ["hello"]}


def test_one_job(api, pushed):
    resp = api.http.get(f"/api/v2/app/hello/cron/jobs/{HELLO_DATA}")
    assert resp.status_code == 200
    _, sample = reference.backupd_sample(f"GET /api/v1/cron/jobs/{HELLO_DATA}")
    assert resp.json_body == joblib.public_job(sample)


def test_job_not_yet_on_its_daemon_is_404(api, daemons):
    resp = api.http.get(f"/api/v2/app/hello/cron/jobs/{HELLO_DATA}")
    assert resp.status_code == 404 and "not on 127.0.0.11 yet" in error_of(resp)["error"]


def test_run_answers_rid(api, pushed):
    resp = post_form(api, f"/api/v2/app/hello/cron/jobs/{HELLO_DATA}/actions/run")
    assert resp.status_code == 200
    rid = resp.json_body["rid"]
    assert pushed["127.0.0.11"].runs[0] == (rid, HELLO_DATA)
    assert resp.json_body["url"] == f"/api/v2/app/hello/cron/records/{rid}"  # where its record lands
    resp = api.http.post(f"/api/v1/cron/once/app/mysql/id/{MYSQL}")
    assert resp.status_code == 200 and pushed["127.0.0.13"].runs[0] == (resp.json_body, MYSQL)


def test_sleep_and_wakeup_are_remembered(api, pushed, ddb):

    path = f"/api/v2/app/hello/cron/jobs/{HELLO_DATA}/actions"
    resp = post_form(api, path + "/sleep")
    assert (resp.status_code, resp.json_body) == (200, "OK")
    assert pushed["127.0.0.11"].sleeping() == {HELLO_DATA}
    assert set(NodeStateStore(ddb).pauses()["127.0.0.11"]) == {HELLO_DATA}
    assert post_form(api, path + "/wakeup").json_body == "OK"
    assert pushed["127.0.0.11"].sleeping() == set()
    assert NodeStateStore(ddb).pauses() == {}
    resp = post_form(api, path + "/explode")
    assert resp.status_code == 400 and "run, sleep, wakeup" in error_of(resp)["error"]


def test_generated_jobs_of_the_system(api, lainlet):
    for path in ("/api/v2/system/cron/jobs", "/api/v1/cron/jobs/all"):
        resp = api.http.get(path)
        assert resp.status_code == 200
        assert list(resp.json_body) == ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
        assert resp.json_body["127.0.0.13"][0]["id"] == MYSQL


def test_server_routes(api, pushed):
    resp = api.http.get("/api/v2/server/127.0.0.13/cron/jobs")
    assert [j["id"] for j in resp.json_body] == [MYSQL, ""]
    resp = api.http.get("/api/v2/server/127.0.0.11/debug")
    assert resp.status_code == 200 and resp.json_body["crond_status"] == "started"
    resp = api.http.put("/api/v2/server/127.0.0.11/cron/actions/stop")
    assert (resp.status_code, resp.json_body) == (200, "OK")
    assert pushed["127.0.0.11"].crond_status == "stopped"
    assert api.http.put("/api/v2/server/127.0.0.11/cron/actions/start").status_code == 200
    assert pushed["127.0.0.11"].crond_status == "started"


def test_one_nodes_generated_list(api, lainlet):
    resp = api.http.get("/api/v2/system/cron/jobs?node=127.0.0.13")
    assert resp.status_code == 200 and list(resp.json_body) == ["127.0.0.13"]
    assert api.http.get("/api/v2/system/cron/jobs?node=10.9.9.9").status_code == 404
    assert api.http.get("/api/v2/system/cron/jobs?next=bogus").status_code == 400


def test_a_large_clusters_lists_come_in_pages_under_lambdas_limit(api, lainlet):
    """40,500 jobs (the benchmark's cluster) are ~18 MB of JSON: pages of at most 5 MB each."""
    from scripts.bench import node_ips, spec_for

    lainlet.spec = spec_for(5000, 4, node_ips(500))
    pages, path = [], "/api/v2/system/cron/jobs"
    while True:
        resp = api.http.get(path)
        assert resp.status_code == 200
        pages.append(resp)
        token = resp.headers.get("X-Backupctl-Next")
        if not token:
            break
        path = f"/api/v2/system/cron/jobs?next={token}"
    assert len(pages) >= 4 and max(len(p.body) for p in pages) <= 5 * 1024 * 1024
    nodes = [n for p in pages for n in p.json_body]
    assert len(nodes) == len(set(nodes)) == 500
    assert sum(len(j) for p in pages for j in p.json_body.values()) == 40_500
