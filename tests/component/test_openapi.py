"""The OpenAPI document: generated from the route table, valid, complete both ways, and the views
can read only what it documents."""

from __future__ import annotations

import json

import pytest
from chalice import Chalice
from chalice.test import Client
from openapi_spec_validator import validate

from app import app, r


@pytest.fixture(scope="module")
def document():
    with Client(app) as client:
        resp = client.http.get("/api/v2/openapi.json")
    assert resp.status_code == 200
    return json.loads(resp.body)


def test_the_document_is_valid_openapi_3(document):
    validate(document)
    assert document["openapi"].startswith("3.0")


def test_every_registered_route_is_documented_and_every_documented_route_exists(document):
    registered = {(path, method.lower()) for path, methods in app.routes.items() for method in methods}
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert registered == documented
    assert len(registered) >= 40  # v1 and v2


def test_v1_twins_are_documented_under_their_own_paths(document):
    v1 = document["paths"]["/api/v1/backup/recover/increment/app/{app_name}/proc/{proc}/dir/{name}"]
    v2 = document["paths"]["/api/v2/app/{app_name}/proc/{proc}/backups/{name}/actions/recover"]
    assert v1["post"]["tags"] == ["v1"] and v2["post"]["tags"] == ["v2"]
    assert v1["post"]["operationId"] != v2["post"]["operationId"]
    assert {p["name"] for p in v2["post"]["parameters"]} == {"app_name", "proc", "name", "snapshot",
                                                             "dry_run", "verify"}
    body = v2["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert set(body["properties"]) == {"files"}


def test_every_operation_documents_its_errors_and_mutations_their_token(document):
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            assert op["summary"], (method, path)
            assert op["responses"]["4XX"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"}
            if method in ("post", "put") and not path.endswith("/system/notify"):
                assert {"apiToken": []} in op["security"], (method, path)


def test_non_json_answers_are_documented_with_their_type(document):
    assert "text/html" in document["paths"]["/"]["get"]["responses"]["200"]["content"]
    metrics = document["paths"]["/api/v2/system/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain; version=0.0.4; charset=utf-8"]


def test_a_view_that_reads_an_undeclared_query_parameter_fails_loudly(env):
    """The completeness above holds because a view cannot read what its route did not declare."""
    from chalicelib.web.router import Router

    local = Chalice(app_name="t")
    router = Router(local)

    @router.route("/declared", query=("a",))
    def declared():
        return {"a": router.one("a")}

    @router.route("/undeclared", query=("a",))
    def undeclared():
        return {"b": router.one("b")}

    with Client(local) as client:
        assert json.loads(client.http.get("/declared?a=1").body) == {"a": "1"}
        resp = client.http.get("/undeclared?b=1")
    assert resp.status_code == 500 and json.loads(resp.body)["code"] == "internal_error"


def test_the_routes_docs_are_the_registered_handlers():
    names = {doc.name for doc in r.docs}
    assert {"v2_backups", "v1_recover", "dashboard", "openapi", "v2_metrics"} <= names
