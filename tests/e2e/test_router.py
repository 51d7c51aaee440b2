"""The cluster router's rendered nginx config, for real: Debian's nginx in front of the local
runner's ``chalice local``, driven with lain-cli's request shapes (plain HTTP, no credentials,
form bodies with ``files`` repeated). Nothing may be redirected: requests turns a redirected POST
into a GET."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import requests

from scripts.render_router import render
from scripts.simcluster.server import free_port
from tests.e2e.conftest import Runner, require
from tests.e2e.test_local_runner import HELLO, hello_job

DOMAIN = "backupctl.lain.test"


@pytest.fixture(scope="module")
def router(runner: Runner, tmp_path_factory):
    nginx = require("nginx")
    home = tmp_path_factory.mktemp("nginx")
    port = free_port()
    server = render(DOMAIN, runner.api, resolver="127.0.0.1", listen=f"127.0.0.1:{port}")
    (home / "backupctl.conf").write_text(server)
    (home / "nginx.conf").write_text(f"""
user root;
worker_processes 1;
pid {home}/nginx.pid;
error_log {home}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {home}/access.log;
    client_body_temp_path {home}/body;
    proxy_temp_path {home}/proxy;
    include {home}/backupctl.conf;
}}
""")
    proc = subprocess.Popen([nginx, "-p", str(home), "-c", str(home / "nginx.conf"),
                             "-g", "daemon off;"], stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(base, timeout=1)
            break
        except requests.ConnectionError:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.1)
    yield Router(base)
    proc.terminate()
    proc.wait(10)


class Router:
    """lain-cli's view: ``http://backupctl.<domain>/…``, plain requests, redirects never followed."""

    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str) -> requests.Response:
        return self._send("GET", path)

    def post(self, path: str, data: object = None) -> requests.Response:
        return self._send("POST", path, data)

    def _send(self, method: str, path: str, data: object = None) -> requests.Response:
        resp = requests.request(method, self.base + path, data=data, headers={"Host": DOMAIN},
                                timeout=30, allow_redirects=False)
        assert not 300 <= resp.status_code < 400, f"{method} {path} was redirected"
        return resp


def test_lain_cli_through_the_router(runner: Runner, router: Router):
    jobs = router.get("/api/v2/app/hello/cron/jobs")
    assert jobs.status_code == 200 and len(jobs.json()) == 4
    job = hello_job(runner, "/var/log/hello", 1)
    rid = router.post(f"/api/v2/app/hello/cron/jobs/{job}/actions/run").json()["rid"]  # lain backup run
    record = runner.finished("hello", rid)
    name = record["result"]["file"]
    opened = router.get(f"{HELLO}/{name}?open=true")  # lain backup get … (increment dir)
    assert opened.status_code == 200 and [f["name"] for f in opened.json()] == ["app.log"]
    records = router.get("/api/v2/app/hello/cron/records?total=1")  # lain backup records -n 1
    assert records.status_code == 200 and len(records.json()) == 1
    def run_data() -> str:
        return router.post(
            f"/api/v2/app/hello/cron/jobs/{hello_job(runner, '/data', 2)}/actions/run").json()["rid"]

    full = runner.finished("hello", run_data(), again=run_data)  # every minute: may meet the cron
    # lain backup delete: files repeated, a form (force: it is the volume's newest good backup)
    deleted = router.post(f"{HELLO}/actions/delete?force=true",
                          data=[("files", full["result"]["file"]), ("files", f"{name}/app.log")])
    assert deleted.status_code == 204, deleted.text
    names = {e["name"] for e in router.get(HELLO).json()}
    assert full["result"]["file"] not in names


def test_errors_come_through_readable(router: Router):
    resp = router.get("/api/v2/app/nosuch/proc/web/backups")
    assert resp.status_code == 404 and "nosuch" in resp.json()["error"]
    resp = router.post(f"{HELLO}/actions/delete", data=[("files", "x" * 70_000)])
    assert resp.status_code == 413 and resp.json()["code"] == "too_large"


def test_the_rendered_config_forwards_and_never_redirects(tmp_path: Path):
    nginx = require("nginx")
    conf = render(DOMAIN, "https://a1b2c3.execute-api.us-east-1.amazonaws.com", resolver="10.0.0.2",
                  path_prefix="/live", listen="127.0.0.1:8999")
    assert "return 30" not in conf and "proxy_redirect off;" in conf
    assert "set $backupctl_api https://a1b2c3.execute-api.us-east-1.amazonaws.com;" in conf
    assert "rewrite ^/(.*)$ /live/$1 break;" in conf and "proxy_ssl_verify on;" in conf
    (tmp_path / "server.conf").write_text(conf)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/p;\nerror_log {tmp_path}/e;\nevents {{}}\n"
        f"http {{ include {tmp_path}/server.conf; }}\n")
    test = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                          capture_output=True, text=True, timeout=30)
    assert test.returncode == 0, test.stderr
