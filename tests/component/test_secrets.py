"""Tokens from SSM Parameter Store (moto): read at run time, rotated without a redeploy, the
previous notify token accepted for a grace period, the daemons handed the new notify URL."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from chalicelib.deps import Deps
from chalicelib.edges import secrets
from chalicelib.errors import SecretUnavailable
from chalicelib.settings import get_settings
from chalicelib.usecases import reconcile
from tests import reference
from tests.component.apiclient import error_of, post_form

NOTIFY_PARAM, API_PARAM = "/backupctl/test/notify-token", "/backupctl/test/api-token"


@pytest.fixture
def ssm(ddb):
    """SSM parameters in the session's moto (the ddb fixture keeps moto running)."""
    client = boto3.client("ssm")
    for name in (NOTIFY_PARAM, API_PARAM):
        client.delete_parameters(Names=[name])
    secrets._client.cache_clear()
    yield client


def put(ssm, name, value):
    ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def test_notify_tokens_rotate_with_a_grace_for_the_old_one(settings, ssm):
    put(ssm, NOTIFY_PARAM, "first")
    clock = Clock()
    s = secrets.Secrets(dataclasses.replace(settings, notify_token_param=NOTIFY_PARAM,
                                            secret_cache_seconds=60), clock)
    assert s.notify_tokens() == ("first",)
    put(ssm, NOTIFY_PARAM, "second")
    assert s.notify_tokens() == ("first",)  # cached for SECRET_CACHE_SECONDS
    clock.now += timedelta(seconds=61)
    assert s.notify_tokens() == ("second", "first")  # the old one, during the grace period
    assert s.notify_token() == "second"
    late = secrets.Secrets(dataclasses.replace(settings, notify_token_param=NOTIFY_PARAM,
                                               notify_token_grace_seconds=0), clock)
    assert late.notify_tokens() == ("second",)


def test_a_missing_parameter_is_a_503_naming_it(settings, ssm):
    s = secrets.Secrets(dataclasses.replace(settings, api_token_param="/nosuch"), Clock())
    with pytest.raises(SecretUnavailable, match="/nosuch") as e:
        s.api_token()
    assert e.value.status == 503


def test_routes_use_the_ssm_tokens(api, ssm, daemons, monkeypatch):
    put(ssm, API_PARAM, "api-secret")
    put(ssm, NOTIFY_PARAM, "notify-secret")
    monkeypatch.setenv("API_TOKEN_PARAM", API_PARAM)
    monkeypatch.setenv("NOTIFY_TOKEN_PARAM", NOTIFY_PARAM)
    get_settings.cache_clear()
    path = "/api/v2/app/hello/cron/jobs/7f00000bb19d69edd273f3535f5cd42e6fcbd556/actions/run"
    assert post_form(api, path).status_code == 401
    assert post_form(api, path, headers={"Authorization": "Bearer api-secret"}).status_code == 404
    record = json.dumps(reference.notify_samples()[1][1])
    post = lambda query: api.http.post("/api/v2/system/notify" + query, body=record,  # noqa: E731
                                       headers={"Content-Type": "application/json"})
    assert post("").status_code == 401 and post("?token=wrong").status_code == 401
    assert post("?token=notify-secret").status_code == 200
    monkeypatch.setenv("API_TOKEN_PARAM", "/nosuch")
    get_settings.cache_clear()
    resp = post_form(api, path, headers={"Authorization": "Bearer api-secret"})
    assert resp.status_code == 503 and error_of(resp)["code"] == "secret_unavailable"


def test_after_a_rotation_every_daemon_gets_the_new_notify_url(settings, ddb, ssm, daemons):
    put(ssm, NOTIFY_PARAM, "tok-6f1a")
    clock = Clock()
    deps = Deps(dataclasses.replace(settings, advertise_url="http://ctl:8000",
                                    notify_token_param=NOTIFY_PARAM, secret_cache_seconds=0),
                clock, ddb)
    reconcile.run(deps)
    url = "http://ctl:8000/api/v2/system/notify?token="
    assert all(d.notify == [url + "tok-6f1a"] for d in daemons.values())
    daemons["127.0.0.11"].notify.append("http://elsewhere:1/hook")  # not ours: left alone
    assert reconcile.run(deps).summary["pushed"] == []  # nothing changed
    put(ssm, NOTIFY_PARAM, "tok-93c2")
    summary = reconcile.run(deps).summary
    assert summary["pushed"] == ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
    assert daemons["127.0.0.11"].notify == ["http://elsewhere:1/hook", url + "tok-93c2"]
    assert daemons["127.0.0.13"].notify == [url + "tok-93c2"]
    assert reconcile.run(deps).summary["pushed"] == []
    stored = json.dumps([s.__dict__ for s in deps.state.states().values()], default=str)
    assert "tok-93c2" not in stored and "tok-6f1a" not in stored  # the state keeps a digest only
