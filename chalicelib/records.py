"""Job records in DynamoDB: ordered, idempotent writes and the queries the routes need.

Each record is one item keyed by its rid (``RID#<rid>``/``RECORD``), so the ordering rule is a
single conditional write: a ``running`` post never replaces an existing record (it can arrive
after the ``success``/``failed`` post of the same run), a terminal post replaces ``running``, and
a repeat of the same post is harmless. The record itself is kept verbatim (``record``, JSON) so
answers carry the daemon's field names and Go time strings unchanged. Index ``gsi1`` serves
"newest records of an app in a month", ``gsi2`` "latest records of a job"; nothing scans.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from chalicelib import schema
from chalicelib.errors import BadRequest, NotFound
from chalicelib.inputs import bounded_int
from chalicelib.settings import Settings

LATEST = "JOBLAST"  # partition of each job's newest record and newest success
SYSTEM_APP = "backupctl"  # backup_expire records (and records naming no app) belong here
STATES = ("running", "success", "failed")
GO_ZERO = "0001-01-01T00:00:00Z"
MAX_TOTAL = 1000
_GO_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")


def parse_go_time(text: str) -> tuple[datetime, int]:
    """A Go RFC 3339 time → (UTC datetime to the second, nanoseconds). ValueError if malformed."""
    m = _GO_TIME.match(text or "")
    if not m:
        raise ValueError(f"{text!r} is not an RFC 3339 time")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    when = datetime.fromisoformat(m.group(1) + zone).astimezone(UTC)
    return when, int((m.group(2) or "").ljust(9, "0"))


def sort_key(text: str, rid: str) -> str:
    """Fixed-width UTC time + rid: sorts chronologically whatever precision the daemon wrote."""
    when, nanos = parse_go_time(text)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z#{rid}"


def record_app(record: dict[str, Any]) -> str:
    """The app a record belongs to: ``args.app``; ``backup_expire`` records belong to backupctl."""
    args = record.get("args") if isinstance(record.get("args"), dict) else {}
    app = args.get("app") if isinstance(args.get("app"), str) else ""
    return SYSTEM_APP if record.get("action") == "backup_expire" or not app else app


def parse_record(body: bytes | str | None) -> dict[str, Any]:
    """Validate a notify body; a :class:`BadRequest` names what is wrong and nothing is stored."""
    try:
        record = json.loads(body or b"")
    except ValueError as e:
        raise BadRequest(f"record is not valid JSON: {e}", code="bad_record") from None
    if not isinstance(record, dict):
        raise BadRequest("record must be a JSON object", code="bad_record")
    rid = record.get("rid")
    if not isinstance(rid, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,128}", rid):
        raise BadRequest("record has no valid rid", code="bad_record")
    if record.get("state") not in STATES:
        raise BadRequest(f"record {rid}: state {record.get('state')!r} is not one of "
                         f"{', '.join(STATES)}", code="bad_record")
    start = record.get("start")
    try:
        when, _ = parse_go_time(start)
    except ValueError as e:
        raise BadRequest(f"record {rid}: start: {e}", code="bad_record") from None
    if start == GO_ZERO or when.year < 2000:
        raise BadRequest(f"record {rid}: start is unset", code="bad_record")
    if not isinstance(record.get("args", {}), dict) or not isinstance(record.get("id", ""), str):
        raise BadRequest(f"record {rid}: args must be an object and id a string", code="bad_record")
    return record


@lru_cache(maxsize=4)
def _table(table_name: str, endpoint_url: str) -> Any:
    import boto3  # deferred: importing the app must stay cheap and quiet (cold starts)

    return boto3.resource("dynamodb", endpoint_url=endpoint_url or None).Table(table_name)


def table_for(settings: Settings) -> Any:
    """The table resource, made on first use in this process (never at import)."""
    return _table(settings.table_name, settings.dynamodb_endpoint_url)


class RecordStore:
    """Records on a DynamoDB ``Table`` resource (passed in: tests use moto, the app the real one)."""

    def __init__(self, table: Any, retention_days: int = 0) -> None:
        self.table = table
        self.retention_days = retention_days

    def put(self, record: dict[str, Any]) -> bool:
        """Store a validated record under the ordering rules; False if an existing one was kept."""
        rid, state = record["rid"], record["state"]
        key = sort_key(record["start"], rid)
        app = record_app(record)
        item: dict[str, Any] = {
            "pk": f"RID#{rid}", "sk": "RECORD", "rid": rid, "app": app, "state": state,
            "gsi1pk": f"{app}#{key[:7]}", "gsi1sk": key, "record": json.dumps(record),
        }
        if record.get("id"):
            item |= {"gsi2pk": f"JOB#{record['id']}", "gsi2sk": key}
        if self.retention_days:
            expires = parse_go_time(record["start"])[0] + timedelta(days=self.retention_days)
            item[schema.TTL_ATTRIBUTE] = int(expires.timestamp())
        if state == "running":
            condition, values = "attribute_not_exists(pk)", {}
        else:
            condition = "attribute_not_exists(pk) OR #s = :running OR #s = :same"
            values = {":running": "running", ":same": state}
        stored = self._put_if(item, condition, values)
        if stored and record.get("action") == "backup" and record.get("id"):
            self._put_latest(record, key, "last")
            if state == "success":
                self._put_latest(record, key, "success")
        return stored

    def _put_if(self, item: dict[str, Any], condition: str, values: dict[str, Any]) -> bool:
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"Item": item, "ConditionExpression": condition}
        if values:
            kwargs["ExpressionAttributeValues"] = values
        if "#s" in condition:
            kwargs["ExpressionAttributeNames"] = {"#s": "state"}
        try:
            self.table.put_item(**kwargs)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _put_latest(self, record: dict[str, Any], key: str, kind: str) -> None:
        """Keep the job's newest record (``last``) and newest success, so freshness of every job
        is one Query; same ordering rule: a late ``running`` never replaces its own result."""
        item = {"pk": LATEST, "sk": f"{record['id']}#{kind}", "skey": key, "state": record["state"],
                "record": json.dumps(record)}
        if record["state"] == "running":
            condition = "attribute_not_exists(pk) OR skey < :k"
            values: dict[str, Any] = {":k": key}
        else:
            condition = "attribute_not_exists(pk) OR skey < :k OR (skey = :k AND #s = :running)"
            values = {":k": key, ":running": "running"}
        self._put_if(item, condition, values)

    def latest_by_job(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``{job id: {"last": record, "success": record}}`` for every job with a record."""
        from boto3.dynamodb.conditions import Key

        out: dict[str, dict[str, dict[str, Any]]] = {}
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(LATEST)}
        while True:
            page = self.table.query(**kwargs)
            for item in page.get("Items", []):
                job_id, _, kind = item["sk"].rpartition("#")
                out.setdefault(job_id, {})[kind] = json.loads(item["record"])
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get(self, app: str, rid: str) -> dict[str, Any]:
        """One record of ``app`` (404 if unknown or another app's)."""
        item = self.table.get_item(Key={"pk": f"RID#{rid}", "sk": "RECORD"}).get("Item")
        if not item or item.get("app") != app:
            raise NotFound(f"record {rid!r} of app {app!r} not found", code="unknown_record")
        return json.loads(item["record"])

    def month(self, app: str, year: int, month: int, total: int,
              state: str | None = None) -> list[dict[str, Any]]:
        """The newest ``total`` records of ``app`` started in that month, newest first."""
        return list(self._query(schema.GSI_BY_APP_MONTH, f"{app}#{year:04d}-{month:02d}", total,
                                state))

    def of_job(self, job_id: str, total: int = 1, state: str | None = None) -> list[dict[str, Any]]:
        """The newest records of one job (e.g. its last run, its last success)."""
        return list(self._query(schema.GSI_BY_JOB, f"JOB#{job_id}", total, state))

    def _query(self, index: str, partition: str, total: int,
               state: str | None) -> Iterator[dict[str, Any]]:
        from boto3.dynamodb.conditions import Attr, Key

        kwargs: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": Key(f"{index}pk").eq(partition),
            "ScanIndexForward": False,
            "Limit": total,
        }
        if state:
            kwargs["FilterExpression"] = Attr("state").eq(state)
        found = 0
        while True:
            page = self.table.query(**kwargs)
            for item in page.get("Items", []):
                yield json.loads(item["record"])
                found += 1
                if found >= total:
                    return
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def backup(self, name: str) -> dict[str, Any]:
        """An on-demand DynamoDB backup of the whole table."""
        client = self.table.meta.client
        desc = client.create_backup(TableName=self.table.name, BackupName=name)["BackupDetails"]
        return {"backup": desc["BackupName"], "arn": desc["BackupArn"],
                "status": desc.get("BackupStatus", "")}


def month_query(total: str | None, month: str | None, year: str | None,
                now: datetime | None = None) -> tuple[int, int, int]:
    """``total``/``month``/``year`` of a records query, defaults 100 / this month / this year."""
    now = now or datetime.now(UTC)

    def number(name: str, raw: str | None, default: int, lo: int, hi: int) -> int:
        return default if raw in (None, "") else bounded_int(raw, name, lo, hi)

    return (number("total", total, 100, 1, MAX_TOTAL), number("month", month, now.month, 1, 12),
            number("year", year, now.year, 2000, 9999))
