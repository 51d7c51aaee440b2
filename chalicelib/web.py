"""The web layer: the route decorator, request bodies and queries, tokens, and the one place that
turns use-case results and errors into HTTP answers.

Use cases return plain data (a :class:`~chalicelib.core.types.Partial` when some nodes did not
answer) and raise :class:`~chalicelib.errors.ControllerError`; this module picks the status, sets
the ``X-Backupctl-Unreachable`` header, and makes every error ``{"error", "code"}`` (lain-cli prints
that body to the user, so it is never empty and never a traceback). Every request gets a request id
and a correlation id on its log lines; rejected input is logged once, as one line.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable
from contextvars import ContextVar
from logging import INFO, WARNING
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs

from chalice import Chalice, Response
from chalice.app import Request

from chalicelib import logs
from chalicelib.core.answers import Partial, Text
from chalicelib.core.inputs import KIB, bounded_int, is_text, load_json, preview
from chalicelib.core.naming import check_name
from chalicelib.core.routedoc import RouteDoc
from chalicelib.errors import BadRequest, ControllerError, PayloadTooLarge, Unauthorized
from chalicelib.logs import event, log

UNREACHABLE_HEADER = "X-Backupctl-Unreachable"
CORRELATION_HEADER = "X-Correlation-Id"
NEXT_HEADER = "X-Backupctl-Next"  # more pages: ask again with ?next=<this>
BODY_TYPES = ["application/x-www-form-urlencoded", "application/json"]
MAX_BODY = 64 * KIB  # lain-cli's largest body is a list of backup names
MAX_FIELDS = 1000
MAX_VALUE = 4096
MAX_INSTANCE = 100_000


class LazyModule:
    """A module imported on first attribute access: a route pays at cold start only for the use
    cases (and their dependencies: requests, boto3) it calls."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        module: ModuleType = importlib.import_module(self._name)
        return getattr(module, attr)


def to_response(result: Any, status: int = 200) -> Response:
    if isinstance(result, Text):
        return Response(body=result.body, status_code=status,
                        headers={"Content-Type": result.content_type, **result.headers})
    headers: dict[str, str | list[str]] = {"Content-Type": "application/json"}
    if isinstance(result, Partial):
        if result.unreachable:
            headers[UNREACHABLE_HEADER] = ", ".join(result.unreachable)
        if result.next:
            headers[NEXT_HEADER] = result.next
        headers.update(result.headers)
        status = result.status or status
        result = result.body
    body = "" if status == 204 else json.dumps(result, separators=(",", ":"))
    return Response(body=body, status_code=status, headers=headers)


def error_response(err: ControllerError) -> Response:
    return Response(body=json.dumps(err.body()), status_code=err.status,
                    headers={"Content-Type": "application/json"})


_current: ContextVar[RouteDoc] = ContextVar("route")


class Router:
    """Registers views on a Chalice app: a v2 path and its identical v1 twins share one view.

    Each view declares the query parameters and body fields it reads; reading an undeclared one is
    a programming error, so the OpenAPI document (:mod:`chalicelib.core.openapi`, built from
    ``docs``) is exactly what the code accepts."""

    def __init__(self, app: Chalice) -> None:
        self.app = app
        self.docs: list[RouteDoc] = []
        app.register_middleware(request_context, "http")
        app.register_middleware(framework_errors, "http")

    def request(self) -> Request:
        request = self.app.current_request
        assert request is not None  # only called inside a view
        return request

    def route(self, *paths: str, method: str = "GET", mutating: bool = False, status: int = 200,
              query: tuple[str, ...] = (), form: tuple[str, ...] = (), body: str = "",
              produces: str = "application/json"
              ) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
        """Register the view on ``paths``. Mutating routes need the API token when it is set; path
        pieces other than ``ip`` must be plain names (no ``/``, no ``..``); the view's result is
        answered with ``status``, its :class:`ControllerError` with the error's own. ``query`` and
        ``form`` name what the view reads, ``body`` a whole-body schema, ``produces`` a non-JSON
        answer's type (all for the OpenAPI document)."""

        def decorate(view: Callable[..., Any]) -> Callable[..., Response]:
            doc = RouteDoc(view.__name__, paths, method, (view.__doc__ or "").strip(), query, form,
                           body, status, mutating, produces)
            self.docs.append(doc)

            @functools.wraps(view)
            def handler(**params: str) -> Response:
                result: Any = None
                _current.set(doc)
                try:
                    if mutating:
                        require_token(self.request())
                    for key, value in params.items():
                        if key != "ip":
                            check_name(value, key.replace("_name", ""))
                    result = view(**params)
                    response = to_response(result, status)
                except ControllerError as e:
                    req = self.request()
                    event(log, "rejected", level=INFO if e.status < 500 else WARNING,
                          method=req.method, path=req.context.get("resourcePath", ""),
                          status=e.status, code=e.code, error=e.message)
                    response = error_response(e)
                except Exception as e:  # never a bare 500 or a traceback to the user
                    event(log, "internal_error", level=WARNING, exc=True, error=type(e).__name__)
                    response = error_response(ControllerError(
                        f"internal error ({type(e).__name__}); the controller's log has the details"))
                if mutating:
                    audit(self.request(), params, result, response)
                return response

            kwargs = {"content_types": BODY_TYPES} if method in ("POST", "PUT") else {}
            for path in paths:
                self.app.route(path, methods=[method], **kwargs)(handler)
            return handler

        return decorate

    def form(self) -> Form:
        return Form(self.request(), _current.get().form)

    def query(self, name: str) -> list[str]:
        if name not in _current.get().query:
            raise AssertionError(f"query {name!r} is not declared on {_current.get().name}")
        return query_lists(self.request()).get(name, [])

    def restore_options(self) -> dict[str, bool]:
        """``?snapshot=false``, ``?dry_run=true`` and ``?verify=false`` of a recover or migrate."""
        return {"snapshot": self.flag("snapshot", True), "dry_run": self.flag("dry_run", False),
                "verify": self.flag("verify", True)}

    def flag(self, name: str, default: bool) -> bool:
        """A true/false query flag (``default`` when absent); anything else is a 400."""
        return flag(self.one(name), name, default)

    def one(self, name: str) -> str:
        """The first value of query parameter ``name`` ("" if absent)."""
        return (self.query(name) or [""])[0]

    def first_values(self) -> dict[str, str]:
        """One value per declared query key (the first), as the original read its filters."""
        declared = _current.get().query
        return {k: v[0] for k, v in query_lists(self.request()).items() if v and k in declared}


AUDITED_FIELDS = ("files", "to", "volume", "from", "until", "reason")
AUDITED_QUERY = ("confirm", "snapshot", "dry_run", "verify", "force")


def audit(req: Request, params: dict[str, str], result: Any, response: Response) -> None:
    """One audit item per mutating call, whatever its outcome. Writing it never changes the
    answer: an audit that cannot be written (or read from a refused request) is logged."""
    from chalicelib.deps import get_deps  # the mutating routes' first call pays for the settings

    route = f"{req.method} {req.context.get('resourcePath', '')}"
    try:
        deps = get_deps()
        deps.audit.add(_audit_entry(req, route, params, result, response), deps.clock())
    except Exception as e:  # the call is done: its answer stands, the gap in the trail is logged
        event(log, "audit_failed", level=WARNING, route=route,
              error=getattr(e, "message", type(e).__name__))


def _audit_entry(req: Request, route: str, params: dict[str, str], result: Any,
                 response: Response) -> dict[str, Any]:
    body = json.loads(response.body) if response.body and response.status_code >= 300 else {}
    try:
        form = Form(req).values
        query = query_lists(req)
    except ControllerError:  # the very input that was refused: the outcome says why
        form, query = {}, {}
    target: dict[str, Any] = {k: v for k, v in params.items() if k != "app_name"}
    target |= {k: form[k] if k == "files" else form[k][0] for k in AUDITED_FIELDS if form.get(k)}
    target |= {k: query[k][0] for k in AUDITED_QUERY if query.get(k)}
    return {
        "route": route,
        "app": params.get("app_name", ""),
        "target": target,
        "caller": {"ip": (req.context.get("identity") or {}).get("sourceIp", ""),
                   "user_agent": str(req.headers.get("user-agent", ""))[:200],
                   "token": token_identity(req)},
        "outcome": {"status": response.status_code, "code": body.get("code", "ok"),
                    **({"error": body.get("error")} if body.get("error") else {})},
        "id": _id_of(result),
        "request_id": logs.current()["request_id"],
    }


def _id_of(result: Any) -> str:
    """The record or operation id a mutating call answered with, if any."""
    if isinstance(result, str) and result != "OK":
        return result
    if isinstance(result, dict):
        return str(result.get("operation") or result.get("rid") or result.get("backup") or "")
    return ""


def token_identity(req: Request) -> str:
    """Who called, as far as the API token tells: a fingerprint of the token sent, never the token."""
    import hashlib

    given = str(req.headers.get("authorization") or "").partition(" ")[2].strip()
    return "token:" + hashlib.sha256(given.encode()).hexdigest()[:8] if given else "none"


def flag(raw: str, name: str, default: bool) -> bool:
    """A true/false query flag; anything else is a 400."""
    if not raw:
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise BadRequest(f"{name}: true or false, got {preview(raw)}", code=f"bad_{name}")


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


class Form:
    """A POST body, form-encoded (lain-cli, ``files`` repeated) or JSON; both read the same.

    Bounded like every untrusted input: at most ``MAX_BODY`` bytes, valid UTF-8, a JSON object of
    strings, numbers or lists of them (nothing nested deeper)."""

    def __init__(self, req: Request, declared: tuple[str, ...] = ()) -> None:
        self.values: dict[str, list[str]] = {}
        self.declared = declared
        content_type = (req.headers.get("content-type") or "").lower()
        raw = req.raw_body or b""
        if isinstance(raw, str):
            raw = raw.encode()
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
        return (self._declared(name) or [""])[0].strip()

    def getlist(self, name: str) -> list[str]:
        return [v for v in self._declared(name) if v != ""]

    def _declared(self, name: str) -> list[str]:
        if name not in self.declared:
            raise AssertionError(f"body field {name!r} is not declared on the route")
        return self.values.get(name, [])

    def get_int(self, name: str) -> int:
        return bounded_int(self.get(name), name, 0, MAX_INSTANCE, code="bad_instance",
                           kind="an instance number")


def _text(value: str, name: str) -> str:
    """A body or query value: valid text, no NUL, at most ``MAX_VALUE`` characters."""
    if len(value) > MAX_VALUE or not is_text(value):
        raise BadRequest(f"{name}: {preview(value)} is not a value this API accepts (valid text "
                         f"of at most {MAX_VALUE} characters)", code="bad_value")
    return value


def require_token(req: Request) -> None:
    """With an API token configured, mutating routes need ``Authorization: Bearer <token>``."""
    import hmac

    from chalicelib.deps import get_deps

    expected = get_deps().secrets.api_token()
    if not expected:
        return
    given = req.headers.get("authorization") or ""
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                              expected.encode()):
        raise Unauthorized("this route changes backups or jobs: send Authorization: Bearer <API_TOKEN>")


def query_lists(req: Request) -> dict[str, list[str]]:
    """All query values, repeated keys included (``?volume=a&volume=b``), each checked as text."""
    multi = getattr(req, "query_params", None)
    if multi is None:
        return {}
    return {_text(k, "query key"): [_text(v, k) for v in multi.getlist(k)] for k in multi}
