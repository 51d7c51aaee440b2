"""The notify route on a function of its own, behind the stack's Lambda function URL: a daemon's
post arrives as a function-URL event (payload format 2.0: ``rawQueryString``, ``body``,
``isBase64Encoded``, ``headers``, ``requestContext.http.method``) and is answered as the REST
route ``POST /api/v2/system/notify`` answers it: the same token check
(:func:`~chalicelib.web.auth.require_notify_token`), the same use case (app.py hands it in:
:func:`chalicelib.usecases.notify.notify`), the same statuses and ``{"error", "code"}`` bodies
(a record not stored is a 5xx, which the daemon posts again; a 4xx it drops).

A function URL costs nothing per request beyond the function's own invocation (API Gateway REST
charges $3.50 a million), and this function imports only what a post needs: no route table, no
router, no Chalice request object.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from logging import INFO, WARNING
from typing import Any
from urllib.parse import parse_qs

from chalicelib import logs
from chalicelib.core.formats.inputs import is_text
from chalicelib.errors import BadRequest, ControllerError
from chalicelib.logs import event, log

CORRELATION_HEADER = "X-Correlation-Id"
BODY_TYPES = ("application/json", "application/x-www-form-urlencoded")  # as the REST route takes


class NotAllowed(ControllerError):
    status = 405
    code = "method_not_allowed"


class UnsupportedType(ControllerError):
    status = 415
    code = "unsupported_media_type"


Notify = Callable[[bytes | str | None], dict[str, Any]]


def handle(event_: dict[str, Any], context: Any, notify: Notify) -> dict[str, Any]:
    """One function-URL request: the record it carries handed to ``notify`` (the use case, with
    its dependencies) once its token is checked, answered as the REST route would answer it."""
    logs.setup()
    request = event_.get("requestContext") or {}
    method = str((request.get("http") or {}).get("method") or "")
    path = str(event_.get("rawPath") or "/")
    headers = {str(k).lower(): str(v) for k, v in (event_.get("headers") or {}).items()}
    correlation = headers.get(CORRELATION_HEADER.lower(), "")[:100]
    logs.bind_request(str(request.get("requestId") or getattr(context, "aws_request_id", "")),
                      correlation if is_text(correlation) else "")
    try:
        result = _checked(method, headers, event_, notify)
        response = _answer(200, result)
    except ControllerError as e:
        event(log, "rejected", level=INFO if e.status < 500 else WARNING, method=method,
              path=path, status=e.status, code=e.code, error=e.message)
        response = _answer(e.status, e.body())
    except Exception as e:  # never a bare 500 or a traceback to the daemon
        event(log, "internal_error", level=WARNING, exc=True, error=type(e).__name__)
        response = _answer(500, ControllerError(
            f"internal error ({type(e).__name__}); the controller's log has the details").body())
    response["headers"][CORRELATION_HEADER] = logs.current()["correlation_id"]
    return response


def _checked(method: str, headers: dict[str, str], event_: dict[str, Any], notify: Notify
             ) -> dict[str, Any]:
    if method != "POST":
        raise NotAllowed(f"Unsupported method: {method[:20]}; this URL allows POST (a daemon's "
                         "job record)")
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type not in BODY_TYPES:
        raise UnsupportedType(f"Unsupported media type: {content_type[:100]}; send the record "
                              "as application/json")
    from chalicelib.web.auth import require_notify_token

    query = parse_qs(str(event_.get("rawQueryString") or ""), keep_blank_values=True)
    require_notify_token((query.get("token") or [""])[0])
    body: bytes | str | None = event_.get("body")
    if body and event_.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("request body is not valid base64", code="bad_record") from None
    return notify(body)


def _answer(status: int, body: Any) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body, separators=(",", ":")), "isBase64Encoded": False}
