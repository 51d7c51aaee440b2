"""Schemathesis drives every operation of the served OpenAPI document (its coverage phase, then
generated requests) through the app, against real stand-ins and moto: the only answers allowed are
a 2xx, or a 4xx whose body is ``{"error", "code"}``. The run's figures go to
``artifacts/openapi-fuzz.json``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

ARTIFACT = Path(__file__).resolve().parents[2] / "artifacts" / "openapi-fuzz.json"
HTTP_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"}  # API Gateway answers the rest itself
SENT: Counter[str] = Counter()

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def api_schema(api):
    return schemathesis.openapi.from_dict(json.loads(api.http.get("/api/v2/openapi.json").body))


@pytest.fixture(scope="module", autouse=True)
def figures():
    yield
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text(json.dumps({"requests": sum(SENT.values()), "by_status": dict(SENT)},
                                   indent=1, sort_keys=True))


@pytest.mark.timeout(600)
@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_every_documented_operation_answers_2xx_or_a_4xx_with_the_error_shape(case, api, ddb,
                                                                                pushed):
    if case.method.upper() not in HTTP_METHODS:
        return  # OPTIONS, TRACE, QUERY…: the gateway answers them before the app
    # requests only serialises the case (query, form or JSON body) here; nothing is sent with it
    kwargs = case.as_transport_kwargs(base_url="http://backupctl")
    prepared = requests.Request(**{k: v for k, v in kwargs.items()
                                   if k in ("method", "url", "headers", "params", "data", "json")}
                                ).prepare()
    body = prepared.body or b""
    resp = api.http.request(case.method.upper(), prepared.path_url, headers=dict(prepared.headers),
                            body=body.encode() if isinstance(body, str) else body)
    SENT[str(resp.status_code)] += 1
    where = (case.method, prepared.path_url[:200], resp.status_code, resp.body[:300])
    if case.path == "/api/v2/system/ready" and resp.status_code == 503:
        assert json.loads(resp.body)["ready"] is False, where  # "not ready" is its answer
        return
    assert resp.status_code < 500, where
    if resp.status_code >= 400:
        error = json.loads(resp.body)
        assert set(error) == {"error", "code"} and all(isinstance(v, str) and v
                                                       for v in error.values()), where
