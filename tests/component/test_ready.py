"""GET /system/ready: the operator's first command after a deploy, one check per dependency."""

from __future__ import annotations

from urllib.parse import urlsplit

import boto3
import pytest

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


REMOTE_LAINLET = "http://192.0.2.10:9001"  # TEST-NET-1: a lainlet that is not this machine


@pytest.mark.parametrize("advertise, lainlet_url, ok", [
    ("http://127.0.0.1:8000", REMOTE_LAINLET, False),  # the local runner without --advertise
    ("http://localhost:8000", REMOTE_LAINLET, False),
    ("http://0.0.0.0:8000", REMOTE_LAINLET, False),  # --host 0.0.0.0 is no address to post to
    ("http://[::1]:8000", "http://[2001:db8::10]:9001", False),
    ("http://10.0.0.5:8000", REMOTE_LAINLET, True),  # the runner's recipe: an address nodes reach
    ("http://127.0.0.1:8000", "http://127.0.0.1:9001", True),  # all on this machine (simulated)
])
def test_a_loopback_notify_url_is_not_ready_while_lainlet_is_not_local(
        api, ddb, monkeypatch, advertise, lainlet_url, ok):
    """The nodes are told ADVERTISE_URL: a loopback address there while lainlet (and so the
    nodes) is elsewhere means each node posts its records to itself, and they are all lost."""
    monkeypatch.setenv("ADVERTISE_URL", advertise)
    monkeypatch.setenv("LAINLET_URL", lainlet_url)
    monkeypatch.setenv("LAINLET_TIMEOUT_SECONDS", "0.2")  # nothing answers there: not waited for
    get_settings.cache_clear()
    status, body = ready(api)
    check = body["checks"]["notify_url"]
    assert check["ok"] is ok, check
    assert f"{advertise}/api/v2/system/notify" in check["detail"]
    if not ok:
        assert status == 503 and body["ready"] is False
        assert check["code"] == "notify_url_loopback"
        assert "loopback" in check["detail"] and urlsplit(lainlet_url).hostname in check["detail"]
        assert "--advertise" in check["detail"]
