"""The API's OpenAPI 3 document, generated from the route table. Pure.

Every route is registered through :meth:`chalicelib.web.Router.route`, which records a
:class:`RouteDoc` (paths, method, the query and body fields the view may read, its status); the
views can only read the fields they declared, so the document cannot drift from what the code
accepts. This module only adds the words: what each parameter means and its type.
"""

from __future__ import annotations

import re
from typing import Any

from chalicelib.web.routedoc import RouteDoc

NEXT_HEADER = "X-Backupctl-Next"
UNREACHABLE_HEADER = "X-Backupctl-Unreachable"
_INT = {"type": "integer"}
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}


# name -> (schema, meaning); query parameters and body fields share the one list
FIELDS: dict[str, tuple[dict[str, Any], str]] = {
    "volume": ({"type": "array", "items": _STR},
               "a declared volume, e.g. /data (repeat for several; default every declared one); "
               "for a migrate, the volume to restore into"),
    "open": (_BOOL, "true: list the files inside the backup instead of describing it"),
    "total": ({"type": "integer", "minimum": 1, "maximum": 1000}, "how many entries, newest first"),
    "next": (_STR, f"the {NEXT_HEADER} header of the previous page"),
    "node": (_STR, "only this node's job list (an IPv4 address lainlet names)"),
    "confirm": ({"type": "array", "items": {"type": "string", "enum": ["removals"]}},
                "removals: apply the job removals the reconcile holds"),
    "snapshot": (_BOOL, "false: restore without a pre-restore snapshot (no undo)"),
    "dry_run": (_BOOL, "true: answer what would be restored, change nothing"),
    "verify": (_BOOL, "false: do not check a restore the daemon reports done (a backup of the "
                      "target, compared with the source)"),
    "force": (_BOOL, "true: delete even a volume's newest good backup (refused with 409 "
                     "newest_good_backup otherwise)"),
    "token": (_STR, "the notify token the controller gave the daemons"),
    "month": ({"type": "integer", "minimum": 1, "maximum": 12}, "records of this month"),
    "year": ({"type": "integer", "minimum": 2000, "maximum": 9999}, "records of this year"),
    "state": ({"type": "string", "enum": ["running", "success", "failed"]},
              "only records in this state"),
    "action": (_STR, "only jobs with this action (backup, expire)"),
    "type": (_STR, "only jobs of this type (cron)"),
    "id": (_STR, "only the job with this id"),
    "args_proc": (_STR, "only jobs of this proc"),
    "args_volume": (_STR, "only jobs of this volume"),
    "args_instanceNo": (_STR, "only jobs of this instance"),
    "args_mode": (_STR, "only jobs of this mode (full, increment)"),
    "args_app": (_STR, "ignored: always the app of the path"),
    "args_containers": (_STR, "only jobs whose container list prints as this"),
    "args_preRun": (_STR, "only jobs with this pre-run command"),
    "args_postRun": (_STR, "only jobs with this post-run command"),
    "app": (_STR, "only this app's series"),
    "files": ({"type": "array", "items": _STR},
              "names: backups to delete, or files inside an incremental backup to restore"),
    "to": ({"type": "integer", "minimum": 0, "maximum": 100000},
           "the instance to migrate the backup to"),
    "from": (_INT, "accepted for lain-cli, not used: the backup's node is found by asking"),
    "until": (_STR, "a sleep's end (RFC 3339, or a duration such as 12h); default and limit "
                    "PAUSE_MAX_DAYS"),
    "reason": (_STR, "why the job sleeps (shown in the status and the audit trail)"),
    "days": ({"type": "integer", "minimum": 1, "maximum": 400},
             "the report's window: the last this many days up to now (default 30)"),
    "format": ({"type": "string", "enum": ["json", "csv", "html"]},
               "json (default), csv (one row per volume and instance, ending with its sha256) or "
               "html (a printable page)"),
}

PATH_PARAMS = {
    "app_name": "the app's name", "proc": "a proc of the app (e.g. web or hello.web.web)",
    "name": "a backup's name (a directory of an incremental backup, or an archive)",
    "job_id": "a job id", "action": "what to do", "ip": "a node's IPv4 address",
    "rid": "a job record's id", "op_id": "an operation's id",
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {"type": "object", "required": ["error", "code"],
              "properties": {"error": {"type": "string", "description": "what went wrong, for a "
                                                                        "person"},
                             "code": {"type": "string", "description": "a stable code, for a "
                                                                       "program"}}},
    "JobRecord": {"type": "object", "required": ["id", "rid", "action", "state", "start"],
                  "description": "what a daemon posts about one run of a job",
                  "properties": {"id": _STR, "rid": _STR, "action": _STR, "args": {"type": "object"},
                                 "state": {"type": "string",
                                           "enum": ["running", "success", "failed"]},
                                 "start": _STR, "end": _STR, "reason": _STR,
                                 "result": {"type": "object", "nullable": True}}},
}

_ERROR = {"description": "the error, as {error, code}",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_PARAM = re.compile(r"\{(\w+)\}")


def document(routes: list[RouteDoc], version: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document of ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        for index, path in enumerate(route.paths):
            name = route.name if index == 0 else f"{route.name}_{index + 1}"
            paths.setdefault(path, {})[route.method.lower()] = _operation(route, path, name)
    return {
        "openapi": "3.0.3",
        "info": {"title": "backupctl: the backup controller of Lain clusters", "version": version,
                 "description": "v2 is the API; v1 keeps the original controller's paths for "
                                "lain-cli. Errors are always {error, code}. Answers that grow "
                                f"with the cluster come in pages ({NEXT_HEADER}); answers "
                                "gathered from nodes name the nodes that did not answer "
                                f"({UNREACHABLE_HEADER})."},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"apiToken": {"type": "http", "scheme": "bearer",
                                                        "description": "API_TOKEN, when set: "
                                                        "required by every route that changes "
                                                        "backups or jobs"}}},
    }


def _operation(route: RouteDoc, path: str, name: str) -> dict[str, Any]:
    version = "v1" if path.startswith("/api/v1") else "v2"
    params = [{"name": p, "in": "path", "required": True, "schema": _STR,
               "description": PATH_PARAMS[p]} for p in _PARAM.findall(path)]
    for q in route.query:
        schema, meaning = FIELDS[q]
        param = {"name": q, "in": "query", "required": False, "schema": schema,
                 "description": meaning}
        if schema.get("type") == "array":
            param |= {"style": "form", "explode": True}
        params.append(param)
    success: dict[str, Any] = {"description": "done"}
    kinds = route.produces.split(", ")  # several: the route answers the one its query asks for
    if route.status != 204:
        success["content"] = {kind: {"schema": _STR if kind != "application/json" else {}}
                              for kind in kinds}
    if route.method == "GET" and kinds[0] == "application/json":
        success["headers"] = {
            NEXT_HEADER: {"schema": _STR, "description": "more pages: ask again with ?next="},
            UNREACHABLE_HEADER: {"schema": _STR, "description": "nodes that did not answer"}}
    operation: dict[str, Any] = {
        "operationId": name, "summary": route.summary, "tags": [version],
        "parameters": params,
        "responses": {str(route.status): success, "4XX": _ERROR, "5XX": _ERROR},
    }
    if route.mutating:
        operation["security"] = [{"apiToken": []}, {}]
    if route.form:
        fields = {f: {**FIELDS[f][0], "description": FIELDS[f][1]} for f in route.form}
        schema = {"type": "object", "properties": fields}
        operation["requestBody"] = {"required": False, "content": {
            "application/x-www-form-urlencoded": {"schema": schema},
            "application/json": {"schema": schema}}}
    elif route.body:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{route.body}"}}}}
    return operation
