"""Routes: the decorator every view is registered with, and the one place that turns use-case
results and errors into HTTP answers.

Use cases return plain data (a :class:`~chalicelib.core.formats.answers.Partial` when some nodes
did not answer, or for one page) and raise :class:`~chalicelib.errors.ControllerError`; this module
picks the status, sets the ``X-Backupctl-Unreachable`` and ``X-Backupctl-Next`` headers, and makes
every error ``{"error", "code"}`` (lain-cli prints that body to the user, so it is never empty and
never a traceback). Rejected input is logged once, as one line; every mutating call is audited.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable
from contextvars import ContextVar
from logging import INFO, WARNING
from types import ModuleType
from typing import Any, TypedDict

from chalice import Chalice, Response
from chalice.app import Request

from chalicelib.core.formats.answers import Partial, Text
from chalicelib.core.naming import check_name
from chalicelib.errors import ControllerError
from chalicelib.logs import event, log
from chalicelib.web.audit import audit
from chalicelib.web.auth import require_api_token, require_notify_token
from chalicelib.web.body import Form, flag, query_lists
from chalicelib.web.middleware import framework_errors, request_context
from chalicelib.web.routedoc import RouteDoc

UNREACHABLE_HEADER = "X-Backupctl-Unreachable"
NEXT_HEADER = "X-Backupctl-Next"  # more pages: ask again with ?next=<this>
BODY_TYPES = ["application/x-www-form-urlencoded", "application/json"]


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


class RestoreOptions(TypedDict):
    """The query flags of a recover or migrate."""

    snapshot: bool
    dry_run: bool
    verify: bool


class Router:
    """Registers views on a Chalice app: a v2 path and its identical v1 twins share one view.

    Each view declares the query parameters and body fields it reads; reading an undeclared one is
    a programming error, so the OpenAPI document (:mod:`chalicelib.web.openapi`, built from
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

    def route(self, *paths: str, method: str = "GET", mutating: bool = False, notify: bool = False,
              status: int = 200,
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
                        require_api_token(self.request())
                    if notify:  # the daemons' posts carry the token they were given
                        require_notify_token(self.one("token"))
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

    def restore_options(self) -> RestoreOptions:
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
