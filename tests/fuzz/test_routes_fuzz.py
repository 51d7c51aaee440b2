"""Every route, driven with generated paths, queries and bodies against real stand-ins and moto:
the only answers allowed are a 2xx, or a 4xx whose body is ``{"error", "code"}``."""

from __future__ import annotations

import json
import re
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import app
from tests.fuzz.test_core_fuzz import json_values

ROUTES = sorted((path, method) for path, methods in app.routes.items() for method in methods)
KNOWN = ["hello", "mysql", "web", "hello.web.web", "master", "127.0.0.11", "10.9.9.9",
         "hello-hello.web.web-1-data-1795563919.tar.gz", "hello-hello.web.web-1-var-log-hello",
         "7f00000bb19d69edd273f3535f5cd42e6fcbd556", "run", "sleep", "wakeup", "start", "stop",
         "1795564014320543a0be79c0b68c1e817583f770a5", "..", "%2F", "a" * 300]
pieces = st.one_of(st.sampled_from(KNOWN), st.text(min_size=1, max_size=30))
query_keys = st.sampled_from(["total", "month", "year", "state", "volume", "open", "action", "id",
                              "args_app", "args_volume", "token", "confirm", "type", "x"])
query_values = st.one_of(st.sampled_from(["1", "0", "true", "/data", "9" * 5000, "-1", "removals",
                                          "success", "\x00", ""]), st.text(max_size=20))
form_keys = st.sampled_from(["files", "to", "volume", "from", "instanceNo", "x"])
bodies = st.one_of(
    st.just((None, b"")),
    st.lists(st.tuples(form_keys, query_values), max_size=5).map(
        lambda pairs: ("application/x-www-form-urlencoded", urlencode(pairs).encode())),
    json_values.map(lambda v: ("application/json", json.dumps(v).encode())),
    st.dictionaries(form_keys, json_values, max_size=3).map(
        lambda d: ("application/json", json.dumps(d).encode())),
    st.tuples(st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain"]),
              st.binary(max_size=100)),
)


@pytest.mark.timeout(300)
@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(route=st.sampled_from(ROUTES), data=st.data(), query=st.dictionaries(query_keys, query_values,
                                                                             max_size=3),
       body=bodies)
def test_every_route_answers_2xx_or_a_4xx_with_the_error_shape(api, ddb, pushed, route, data, query,
                                                                body):
    template, method = route
    path = re.sub(r"\{(\w+)\}", lambda m: quote(data.draw(pieces, label=m.group(1)), safe=""), template)
    if query:
        path += "?" + urlencode(query)
    content_type, raw = body
    headers = {"Content-Type": content_type} if content_type else {}
    resp = api.http.request(method, path, headers=headers, body=raw)
    if template.endswith("/system/ready") and resp.status_code == 503:
        assert json.loads(resp.body)["ready"] is False  # "not ready" is the answer, not a failure
        return
    assert resp.status_code < 500, (method, path[:200], resp.status_code, resp.body[:300])
    if resp.status_code >= 400:
        error = json.loads(resp.body)
        assert set(error) == {"error", "code"} and error["error"], error
