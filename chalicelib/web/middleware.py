"""Chalice middlewares of every route: request and correlation ids on every log line, and the
framework's own error answers (405, 415, an uncaught error) in the app's ``{"error", "code"}``
shape, so every error a client sees has one shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalice import Response

from chalicelib import logs
from chalicelib.core.formats.inputs import is_text

CORRELATION_HEADER = "X-Correlation-Id"


def request_context(event_: Any, get_response: Callable[[Any], Response]) -> Response:
    """Chalice middleware: tag this request's log lines with its ids and echo the correlation id."""
    context = getattr(event_, "context", None) or {}
    headers = getattr(event_, "headers", None) or {}
    correlation = str(headers.get(CORRELATION_HEADER.lower(), ""))[:100]
    logs.bind_request(str(context.get("requestId", "")), correlation if is_text(correlation) else "")
    response = get_response(event_)
    response.headers.setdefault(CORRELATION_HEADER, logs.current()["correlation_id"])
    return response


_FRAMEWORK_HINTS = {
    "MethodNotAllowedError": ("method_not_allowed", "this route allows {allow}"),
    "UnsupportedMediaType": ("unsupported_media_type",
                             "send the body form-encoded (application/x-www-form-urlencoded) or "
                             "as application/json"),
}


def framework_errors(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """Chalice middleware: the framework's own answers (405, 415, an uncaught error) get the app's
    ``{"error", "code"}`` body too, so every error a client sees has one shape."""
    response = get_response(event)
    body = response.body
    if isinstance(body, dict) and set(body) == {"Code", "Message"}:
        code, hint = _FRAMEWORK_HINTS.get(str(body["Code"]), ("internal_error", ""))
        allow = response.headers.get("Allow", "")
        message = str(body["Message"]) + ("; " + hint.format(allow=allow) if hint else "")
        if response.status_code >= 500:
            message = "internal error; the controller's log has the details"
        response.body = json.dumps({"error": message, "code": code})
        response.headers["Content-Type"] = "application/json"
    return response
