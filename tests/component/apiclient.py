"""Request shapes of lain-cli (plain ``requests``: form-encoded POST bodies, ``files`` repeated)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def post_form(api: Any, path: str, data: list[tuple[str, Any]] | None = None,
              headers: dict[str, str] | None = None) -> Any:
    return api.http.post(path, headers={**FORM, **(headers or {})}, body=urlencode(data or []))


def post_json(api: Any, path: str, data: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return api.http.post(path, headers={"Content-Type": "application/json", **(headers or {})},
                         body=json.dumps(data))


def error_of(resp: Any) -> dict[str, str]:
    body = json.loads(resp.body)
    assert set(body) == {"error", "code"}, body
    return body
