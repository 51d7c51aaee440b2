"""The audit trail's entrance: one entry per mutating call, whatever its outcome (route, app,
target, caller, outcome, the record or operation id). Writing it never changes the answer."""

from __future__ import annotations

import json
from logging import WARNING
from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib import logs
from chalicelib.errors import ControllerError
from chalicelib.logs import event, log
from chalicelib.web.auth import token_identity
from chalicelib.web.body import Form, query_lists

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
