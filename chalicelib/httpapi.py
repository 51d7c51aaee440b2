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

from chalicelib.errors import BadRequest, ControllerError, Unauthorized
from chalicelib.settings import Settings

log = logging.getLogger("backupctl")
UNREACHABLE_HEADER = "X-Backupctl-Unreachable"
BODY_TYPES = ["application/x-www-form-urlencoded", "application/json"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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


class Form:
    """A POST body, form-encoded (lain-cli, ``files`` repeated) or JSON; both read the same."""

    def __init__(self, req: Request) -> None:
        self.values: dict[str, list[str]] = {}
        content_type = (req.headers.get("content-type") or "").lower()
        raw = req.raw_body or b""
        if not raw.strip():
            return
        if "application/x-www-form-urlencoded" in content_type:
            self.values = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
            return
        try:
            data = json.loads(raw)
        except ValueError:
            raise BadRequest("request body is not valid JSON", code="bad_body") from None
        if not isinstance(data, dict):
            raise BadRequest("request body must be a JSON object", code="bad_body")
        for key, value in data.items():
            items = value if isinstance(value, list) else [value]
            if any(isinstance(v, (dict, list)) for v in items):
                raise BadRequest(f"{key}: must be a string, a number or a list of them",
                                 code="bad_body")
            self.values[key] = [str(v) for v in items if v is not None]

    def get(self, name: str) -> str:
        return (self.values.get(name) or [""])[0].strip()

    def getlist(self, name: str) -> list[str]:
        return [v for v in self.values.get(name, []) if v != ""]

    def get_int(self, name: str) -> int:
        raw = self.get(name)
        if not re.fullmatch(r"[0-9]+", raw):
            raise BadRequest(f"{name}: an instance number is required, got {raw!r}",
                             code="bad_instance")
        return int(raw)


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
        raise BadRequest(f"{what} {value!r} is not a valid name", code=f"bad_{what.replace(' ', '_')}")
    return value


def query_lists(req: Request) -> dict[str, list[str]]:
    """All query values, repeated keys included (``?volume=a&volume=b``)."""
    multi = getattr(req, "query_params", None)
    if multi is None:
        return {}
    return {k: multi.getlist(k) for k in multi}
