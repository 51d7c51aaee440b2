"""The notify function behind the stack's function URL (``app.notify_ingress``): a daemon's post as
Lambda hands it over (payload format 2.0) is answered exactly as the REST route answers the same
post (status, ``{"error", "code"}`` body), records land in the same table (moto), and a record not
stored is a 5xx, which the daemon posts again."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from chalicelib.settings import get_settings
from tests import reference
from tests.component.test_records import NOTIFY, nothing_stored

TOKEN = "EXAMPLE-notify-token"
RUNNING = reference.notify_samples()[0][1]  # mysql's running post, as captured
FAILED = reference.notify_samples()[1][1]


def url_event(body: str | bytes | None, *, query: str = "", encoded: bool = False,
              method: str = "POST", content_type: str = "application/json") -> dict[str, Any]:
    """What Lambda hands the function for a request to its URL (payload format 2.0), as a
    daemon's Go client sends it."""
    text = (base64.b64encode(body).decode() if isinstance(body, bytes) else body) if encoded else (
        body.decode() if isinstance(body, bytes) else body)
    headers = {"host": "abcdefghij.lambda-url.us-east-1.on.aws", "user-agent": "Go-http-client/1.1",
               "accept-encoding": "gzip", "x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.11",
               "x-forwarded-port": "443", "x-amzn-trace-id": "Root=1-68f0c9a1-0123456789abcdef01234567"}
    if content_type:
        headers["content-type"] = content_type
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous", "apiId": "abcdefghij",
            "domainName": "abcdefghij.lambda-url.us-east-1.on.aws", "domainPrefix": "abcdefghij",
            "http": {"method": method, "path": "/", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.11", "userAgent": "Go-http-client/1.1"},
            "requestId": "3b6f0e1c-5d2a-4c1e-9a57-0c2f5d8e9b10", "routeKey": "$default",
            "stage": "$default", "time": "24/Nov/2026:23:46:54 +0000", "timeEpoch": 1795564014000},
        "isBase64Encoded": encoded,
    }
    if query:
        event["queryStringParameters"] = dict(p.split("=", 1) for p in query.split("&"))
    if text is not None:
        event["body"] = text
    return event


def through_url(api, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer = api.lambda_.invoke("notify_ingress", event).payload
    assert answer["headers"]["Content-Type"] == "application/json"
    assert answer["headers"]["X-Correlation-Id"]
    return answer["statusCode"], json.loads(answer["body"])


def through_rest(api, body: str | bytes, query: str = "", method: str = "POST"
                 ) -> tuple[int, dict[str, Any]]:
    path = NOTIFY + (f"?{query}" if query else "")
    resp = getattr(api.http, method.lower())(path, headers={"Content-Type": "application/json"},
                                              body=body)
    return resp.status_code, json.loads(resp.body)


@pytest.fixture
def token(env, monkeypatch):
    monkeypatch.setenv("NOTIFY_TOKEN", TOKEN)
    get_settings.cache_clear()
    yield TOKEN
    get_settings.cache_clear()


def test_a_post_with_the_token_is_stored_as_through_the_rest_route(api, ddb, token, logs):
    body = json.dumps(RUNNING)
    assert through_url(api, url_event(body, query=f"token={token}")) == (
        200, {"rid": RUNNING["rid"], "stored": True})
    assert api.http.get(f"/api/v2/app/mysql/cron/records/{RUNNING['rid']}").json_body == RUNNING
    again = through_url(api, url_event(body, query=f"token={token}&x=1"))
    assert again == through_rest(api, body, f"token={token}") == (
        200, {"rid": RUNNING["rid"], "stored": False})
    [line] = [x for x in logs.events("notify") if x["stored"]]
    assert line["request_id"] == "3b6f0e1c-5d2a-4c1e-9a57-0c2f5d8e9b10"
    assert TOKEN not in json.dumps(list(logs))


@pytest.mark.parametrize("query, code", [("", "bad_notify_token"), ("token=WRONG", "bad_notify_token"),
                                         ("token=", "bad_notify_token"),
                                         ("tok=" + TOKEN, "bad_notify_token")])
def test_a_post_without_the_token_is_401_and_stores_nothing(api, ddb, token, query, code):
    body = json.dumps(RUNNING)
    status, answer = through_url(api, url_event(body, query=query))
    assert (status, answer["code"]) == (401, code)
    assert (status, answer) == through_rest(api, body, query)
    assert nothing_stored(ddb)


def test_a_base64_body_is_decoded(api, ddb, token):
    body = json.dumps(FAILED).encode()
    assert through_url(api, url_event(body, query=f"token={token}", encoded=True)) == (
        200, {"rid": FAILED["rid"], "stored": True})
    status, answer = through_url(api, url_event("not base64!", query=f"token={token}", encoded=True))
    assert (status, answer["code"]) == (400, "bad_record")


@pytest.mark.parametrize("body", [
    b"{not json", b"[]", b"", json.dumps({"rid": "r1", "state": "running"}).encode(),
    json.dumps({**FAILED, "state": "weird"}).encode(), b"[" * 5000 + b"]" * 5000,
    json.dumps({**FAILED, "reason": "x" * 70_000}).encode(),  # over 64 KiB: 413
])
@pytest.mark.parametrize("encoded", [False, True])
def test_a_refused_record_has_the_rest_routes_status_and_body(api, ddb, token, body, encoded):
    query = f"token={token}"
    status, answer = through_url(api, url_event(body, query=query, encoded=encoded))
    assert status in (400, 413) and set(answer) == {"error", "code"}
    assert (status, answer) == through_rest(api, body, query)
    assert nothing_stored(ddb)


def test_a_rewritten_record_is_409(api, ddb, token):
    query = f"token={token}"
    assert through_url(api, url_event(json.dumps(FAILED), query=query))[0] == 200
    rewritten = json.dumps({**FAILED, "reason": "all fine"})
    status, answer = through_url(api, url_event(rewritten, query=query))
    assert status == 409 and "already finished as failed" in answer["error"]
    assert (status, answer) == through_rest(api, rewritten, query)


def test_only_a_json_post_is_taken(api, ddb, token):
    status, answer = through_url(api, url_event(None, query=f"token={token}", method="GET"))
    assert (status, answer["code"]) == (405, "method_not_allowed")
    status, answer = through_url(api, url_event(json.dumps(RUNNING), query=f"token={token}",
                                                content_type="text/plain"))
    assert (status, answer["code"]) == (415, "unsupported_media_type")
    assert nothing_stored(ddb)
    # no content type: JSON, as the REST route reads it
    assert through_url(api, url_event(json.dumps(RUNNING), query=f"token={token}",
                                      content_type=""))[0] == 200


def test_a_record_not_stored_is_a_5xx_so_the_daemon_posts_it_again(api, dynamodb_down):
    status, answer = through_url(api, url_event(json.dumps(RUNNING)))
    assert status == 503 and answer["code"] == "store_unavailable"
    assert (status, answer) == through_rest(api, json.dumps(RUNNING))


def test_one_line_per_meaningful_post_none_for_an_expire_run_that_did_not_fail(api, ddb, token, logs):
    """Every node's expire job posts two records a minute that tell nothing (the daemon does not
    say what it deleted): no line for them; one for a backup record, a failure, a refusal."""
    expire_running, expire_success = (r for _, r in reference.notify_samples()[4:6])
    query = f"token={token}"
    for record in (expire_running, expire_success):
        assert through_url(api, url_event(json.dumps(record), query=query))[0] == 200
        assert through_rest(api, json.dumps(record), query)[0] == 200
    assert list(logs) == []
    failed_expire = {**expire_success, "rid": expire_success["rid"][:10] + "f" * 32,
                     "state": "failed", "reason": "rm: cannot remove: read-only file system"}
    assert through_url(api, url_event(json.dumps(failed_expire), query=query))[0] == 200
    assert through_url(api, url_event(json.dumps(RUNNING), query=query))[0] == 200
    assert through_url(api, url_event(b"{not json", query=query))[0] == 400
    said = [(x["event"], x["level"], x.get("state")) for x in logs]
    assert said == [("notify", "WARNING", "failed"), ("notify", "INFO", "running"),
                    ("notify_refused_count", "INFO", None), ("rejected", "INFO", None)]
