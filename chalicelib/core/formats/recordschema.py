"""What a job record posted by a daemon must look like before it is stored. Pure: time comes in.

A record is a fact about one run, so everything that can be checked is, against the daemon's own
``JobRecord`` (``crond/crond.go``): its fields and their types, its ``rid`` (the daemon writes
``<unix seconds><32 hex>`` just before the run starts), its times, its size, and for a backup job
that its ``id`` is the hash of its own spec and args (a post naming mysql's job with
``args.app=hello`` contradicts itself). A refused record is a 400/413 naming the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from chalicelib.core.formats.inputs import KIB, load_json, preview
from chalicelib.core.gotime import GO_ZERO, parse_go_time
from chalicelib.core.jobs import BACKUP_ACTION, EXPIRE_ACTION, job_id, node_of_job_id
from chalicelib.core.naming import is_app_name
from chalicelib.core.types import STATES, JobRecord
from chalicelib.errors import BadRequest

SYSTEM_APP = "backupctl"  # backup_expire records belong here
RECOVER_ACTION = "backup_recover"
MAX_RECORD = 64 * KIB  # a record is ~1 KB; DynamoDB's item limit is 400 KB
_RID = re.compile(r"^([0-9]{9,11})[0-9a-f]{32}$")
_JOB_ID = re.compile(r"^[0-9a-f]{40}$")
_FACT_FREE = ("state", "result", "end", "reason")  # what may change from running to finished

_TOP: dict[str, tuple[type, ...]] = {
    "id": (str,), "spec": (str,), "action": (str,), "args": (dict,), "type": (str,),
    "sleep": (bool,), "rid": (str,), "result": (dict, type(None)), "state": (str,),
    "start": (str,), "end": (str,), "reason": (str,),
}
_REQUIRED = ("id", "action", "args", "rid", "state", "start")
_STR, _STRS, _INT = "string", "list of strings", "whole number"
_ARGS: dict[str, dict[str, str]] = {
    BACKUP_ACTION: {"app": _STR, "archive": _STR, "containers": _STRS, "instanceNo": _INT,
                    "mode": _STR, "path": _STR, "postRun": _STR, "preRun": _STR, "proc": _STR,
                    "volume": _STR},
    EXPIRE_ACTION: {"info": _STRS},
    RECOVER_ACTION: {"namespace": _STR, "backup": _STR, "files": _STRS, "destDir": _STR,
                     "app": _STR, "proc": _STR},
}


def record_app(record: Mapping[str, Any]) -> str:
    """The app a record belongs to: ``args.app``; ``backup_expire`` records belong to backupctl."""
    if record.get("action") == EXPIRE_ACTION:
        return SYSTEM_APP
    args = record.get("args")
    app = args.get("app") if isinstance(args, dict) else None
    return app if isinstance(app, str) and app else SYSTEM_APP


def identity(record: Mapping[str, Any]) -> str:
    """A digest of what the first post of a run fixes for good: everything but the outcome."""
    fixed = {k: v for k, v in record.items() if k not in _FACT_FREE}
    return hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest()[:32]


def parse_record(body: bytes | str | None, *, now: datetime, skew: timedelta) -> JobRecord:
    """Validate a notify body against the record schema; the record, or a 400/413 naming why."""
    record = load_json(body, what="record", max_bytes=MAX_RECORD, max_depth=8, code="bad_record")
    if not isinstance(record, dict):
        raise _bad("record must be a JSON object")
    unknown = sorted(set(record) - set(_TOP))
    if unknown:
        raise _bad(f"record has fields a daemon never sends: {', '.join(map(preview, unknown))}")
    rid = record.get("rid")
    if not isinstance(rid, str) or not _RID.fullmatch(rid):
        raise _bad(f"record has no valid rid (<unix seconds><32 hex digits>): {preview(rid)}")
    for name in _REQUIRED:
        if name not in record:
            raise _bad(f"record {rid}: {name} is missing")
    for name, types in _TOP.items():
        if name in record and not isinstance(record[name], types):
            raise _bad(f"record {rid}: {name} must be "
                       f"{' or '.join('null' if t is type(None) else t.__name__ for t in types)}, "
                       f"got {preview(record[name])}")
    if record["state"] not in STATES:
        raise _bad(f"record {rid}: state {preview(record['state'])} is not one of {', '.join(STATES)}")
    _check_args(record, rid)
    _check_times(record, rid, now, skew)
    _check_result(record, rid)
    return cast(JobRecord, record)


def _bad(message: str) -> BadRequest:
    return BadRequest(message, code="bad_record")


def _check_args(record: dict[str, Any], rid: str) -> None:
    action, args = record["action"], record["args"]
    shape = _ARGS.get(action)
    if shape is None:
        raise _bad(f"record {rid}: action {preview(action)} is not one of {', '.join(_ARGS)}")
    unknown = sorted(set(args) - set(shape))
    if unknown:
        raise _bad(f"record {rid}: args has keys a {action} job never has: "
                   f"{', '.join(map(preview, unknown))}")
    for key, kind in shape.items():
        value = args.get(key)
        if value is None and (kind == _STRS and action == RECOVER_ACTION):
            continue  # the daemon sends files: null when none were named
        if not _is(value, kind):
            raise _bad(f"record {rid}: args.{key} must be a {kind}, got {preview(value)}")
    app = record_app(record)
    if not is_app_name(app):
        raise _bad(f"record {rid}: app {preview(app)} is not an app name")
    job = record["id"]
    if action != BACKUP_ACTION:
        if job:
            raise _bad(f"record {rid}: a {action} record has no job id, got {preview(job)}")
        return
    node = node_of_job_id(job) if _JOB_ID.fullmatch(job) else None
    if node is None or job_id(node, record.get("spec", ""), action, args) != job:
        raise _bad(f"record {rid}: id {preview(job)} is not the id of the job it describes "
                   f"(app {app}, spec {preview(record.get('spec', ''))}): refused")


def _is(value: Any, kind: str) -> bool:
    if kind == _STR:
        return isinstance(value, str)
    if kind == _STRS:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100_000


def _check_times(record: dict[str, Any], rid: str, now: datetime, skew: timedelta) -> None:
    try:
        start, start_ns = parse_go_time(record["start"])
    except ValueError as e:
        raise _bad(f"record {rid}: start: {e}") from None
    if record["start"] == GO_ZERO or start.year < 2000:
        raise _bad(f"record {rid}: start is unset")
    if start > now + skew:
        raise _bad(f"record {rid}: start {record['start']} is in the future "
                   f"(more than {skew.total_seconds():g} s after this controller's clock)")
    created = datetime.fromtimestamp(int(_RID.fullmatch(rid).group(1)), start.tzinfo)  # type: ignore[union-attr]
    if not created - skew <= start <= created + skew:
        raise _bad(f"record {rid}: start {record['start']} is not when the rid says the run was "
                   f"created ({created:%Y-%m-%dT%H:%M:%SZ})")
    end_text = record.get("end", GO_ZERO)
    if end_text == GO_ZERO:
        if record["state"] != "running":
            raise _bad(f"record {rid}: a {record['state']} record needs its end time")
        return
    try:
        end, end_ns = parse_go_time(end_text)
    except ValueError as e:
        raise _bad(f"record {rid}: end: {e}") from None
    if (end, end_ns) < (start, start_ns):
        raise _bad(f"record {rid}: end {end_text} is before start {record['start']}")
    if end > now + skew:
        raise _bad(f"record {rid}: end {end_text} is in the future")


def _check_result(record: dict[str, Any], rid: str) -> None:
    result = record.get("result")
    if not isinstance(result, dict):
        return
    if "file" in result and not isinstance(result["file"], str):
        raise _bad(f"record {rid}: result.file must be a string")
    size = result.get("size")
    if "size" in result and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise _bad(f"record {rid}: result.size must be a whole number of bytes, got {preview(size)}")
