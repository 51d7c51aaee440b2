"""GET /system/ready: the operator's first command after a deploy, one check per dependency."""

from __future__ import annotations

import boto3

from chalicelib.edges import secrets
from chalicelib.settings import get_settings
from scripts.simcluster.server import Reply


def ready(api):
    resp = api.http.get("/api/v2/system/ready")
    return resp.status_code, resp.json_body


def test_everything_reachable_is_ready(api, ddb, daemons, monkeypatch):
    monkeypatch.setenv("ADVERTISE_URL", "http://ctl:8000")
    get_settings.cache_clear()
    status, body = ready(api)
    assert status == 200 and body["ready"] is True
    assert set(body["checks"]) == {"lainlet", "dynamodb", "ssm", "backupd 127.0.0.11",
                                   "backupd 127.0.0.12", "backupd 127.0.0.13", "nodes", "notify_url"}
    assert "procs on 3 nodes" in body["checks"]["lainlet"]["detail"]


def test_each_failure_is_named(api, ddb, daemons, lainlet, monkeypatch):
    boto3.client("ssm").put_parameter(Name="/t/notify", Value="n", Type="SecureString",
                                      Overwrite=True)
    monkeypatch.setenv("NOTIFY_TOKEN_PARAM", "/t/notify")
    monkeypatch.setenv("API_TOKEN_PARAM", "/t/nosuch")
    get_settings.cache_clear()
    secrets._client.cache_clear()
    daemons["127.0.0.12"].stop()
    status, body = ready(api)
    assert status == 503 and body["ready"] is False
    checks = body["checks"]
    assert checks["lainlet"]["ok"] and checks["dynamodb"]["ok"]
    assert not checks["ssm"]["ok"] and "/t/nosuch" in checks["ssm"]["detail"]
    assert not checks["backupd 127.0.0.12"]["ok"] and checks["backupd 127.0.0.11"]["ok"]
    assert not checks["notify_url"]["ok"] and "ADVERTISE_URL" in checks["notify_url"]["detail"]


def test_lainlet_refusing_a_non_super_caller_is_named(api, ddb, lainlet):
    lainlet.handle = lambda req: Reply(403, b"authorize failed, super required")
    status, body = ready(api)
    assert status == 503
    check = body["checks"]["lainlet"]
    assert check["code"] == "lainlet_refused" and "super" in check["detail"]
    assert "docs/operating.md: lainlet access" in check["detail"]
