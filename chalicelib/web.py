"""HTTP glue shared by every route: error → JSON response, request bodies, auth, path checks.

Every answer that is not a success is ``{"error": "...", "code": "..."}`` with the status of the
error type (see :mod:`chalicelib.errors`): lain-cli prints that body to the user, so it is never
empty and never a traceback.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from chalice import Response
from chalice.app import Request

from chalicelib.core.inputs import KIB, bounded_int, is_text, load_json, preview
from chalicelib.errors import BadRequest, ControllerError, PayloadTooLarge, Unauthorized
from chalicelib.settings import Settings

log = logging.getLogger("backupctl")
UNREACHABLE_HEADER = "X-Backupctl-Unreachable"
BODY_TYPES = ["application/x-www-form-urlencoded", "application/json"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
MAX_BODY = 64 * KIB  # lain-cli's largest body is a list of backup names
MAX_FIELDS = 1000
MAX_VALUE = 4096
MAX_INSTANCE = 100_000


@dataclass
class Answer:
    """What a use case returns: the body the original sent, and the nodes that did not reply."""

    body: Any
    status: int = 200
    unreachable: list[str] = field(default_factory=list)


def to_response(result: Any) -> Response:
    if not isinstance(result, Answer):
        result = Answer(result)
    headers = {"Content-Type": "application/json"}
    if result.unreachable:
        headers[UNREACHABLE_HEADER] = ", ".join(result.unreachable)
    body = "" if result.status == 204 else json.dumps(result.body)
    return Response(body=body, status_code=result.status, headers=headers)


def error_response(err: ControllerError) -> Response:
    return Response(body=json.dumps(err.body()), status_code=err.status,
                    headers={"Content-Type": "application/json"})


def handled(request: Callable[[], Request]) -> Callable[..., Callable[..., Response]]:
    """Decorator factory: run the view, map errors to JSON, log rejections once, one line each."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Response]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            try:
                return to_response(view(*args, **kwargs))
            except ControllerError as e:
                req = request()
                level = logging.INFO if e.status < 500 else logging.WARNING
                log.log(level, "event=rejected method=%s path=%s status=%s code=%s error=%r",
                        req.method, req.context.get("resourcePath", ""), e.status, e.code, e.message)
                return error_response(e)
            except Exception as e:  # never a bare 500 or a traceback to the user
                log.exception("event=internal_error error=%r", str(e))
                return error_response(ControllerError(
                    f"internal error ({type(e).__name__}); the controller's log has the details"))

        return wrapper

    return decorate


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


class Form:
    """A POST body, form-encoded (lain-cli, ``files`` repeated) or JSON; both read the same.

    Bounded like every untrusted input: at most ``MAX_BODY`` bytes, valid UTF-8, a JSON object of
    strings, numbers or lists of them (nothing nested deeper)."""

    def __init__(self, req: Request) -> None:
        self.values: dict[str, list[str]] = {}
        content_type = (req.headers.get("content-type") or "").lower()
        raw = req.raw_body or b""
        if len(raw) > MAX_BODY:
            raise PayloadTooLarge(f"request body is {len(raw):,} bytes; at most {MAX_BODY:,} "
                                  "are accepted", code="too_large")
        if not raw.strip():
            return
        if "application/x-www-form-urlencoded" in content_type:
            try:
                values = parse_qs(raw.decode("utf-8"), keep_blank_values=True, errors="strict",
                                  max_num_fields=MAX_FIELDS)
            except UnicodeDecodeError:
                raise BadRequest("request body is not valid UTF-8", code="bad_body") from None
            except ValueError:
                raise BadRequest(f"request body has more than {MAX_FIELDS} fields",
                                 code="bad_body") from None
            for key, items in values.items():
                self.values[key] = [_text(v, key) for v in items]
            return
        data = load_json(raw, what="request body", max_bytes=MAX_BODY, max_depth=2, code="bad_body")
        if not isinstance(data, dict):
            raise BadRequest("request body must be a JSON object", code="bad_body")
        for key, value in data.items():
            items = value if isinstance(value, list) else [value]
            if any(isinstance(v, (dict, list)) for v in items):
                raise BadRequest(f"{key}: must be a string, a number or a list of them",
                                 code="bad_body")
            self.values[key] = [_text(str(v), key) for v in items if v is not None]

    def get(self, name: str) -> str:
        return (self.values.get(name) or [""])[0].strip()

    def getlist(self, name: str) -> list[str]:
        return [v for v in self.values.get(name, []) if v != ""]

    def get_int(self, name: str) -> int:
        return bounded_int(self.get(name), name, 0, MAX_INSTANCE, code="bad_instance",
                           kind="an instance number")


def _text(value: str, name: str) -> str:
    """A body or query value: valid text, no NUL, at most ``MAX_VALUE`` characters."""
    if len(value) > MAX_VALUE or not is_text(value):
        raise BadRequest(f"{name}: {preview(value)} is not a value this API accepts (valid text "
                         f"of at most {MAX_VALUE} characters)", code="bad_value")
    return value


def require_token(req: Request, settings: Settings) -> None:
    """When ``API_TOKEN`` is set, mutating routes need ``Authorization: Bearer <token>``."""
    if not settings.api_token:
        return
    given = req.headers.get("authorization") or ""
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                              settings.api_token.encode()):
        raise Unauthorized("this route changes backups or jobs: send Authorization: Bearer <API_TOKEN>")


def check_name(value: str, what: str) -> str:
    """A single path piece (app, proc, backup name, job id): no ``/``, no ``..``, no oddities."""
    if not _NAME.fullmatch(value or "") or ".." in value:
        raise BadRequest(f"{what} {preview(value)} is not a valid name",
                         code=f"bad_{what.replace(' ', '_')}")
    return value


def query_lists(req: Request) -> dict[str, list[str]]:
    """All query values, repeated keys included (``?volume=a&volume=b``), each checked as text."""
    multi = getattr(req, "query_params", None)
    if multi is None:
        return {}
    return {_text(k, "query key"): [_text(v, k) for v in multi.getlist(k)] for k in multi}
