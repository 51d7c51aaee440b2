"""DynamoDB, the one way the controller talks to it: bounded time, one paging loop, one conditional
put, and every failure a named 503 instead of a traceback.

boto3's defaults (60 s timeouts, up to 5 legacy retries) made a DynamoDB outage cost 25 s per
request, and a black-holed endpoint more than API Gateway's 29 s. Here each call gets
``DYNAMODB_TIMEOUT_SECONDS`` to connect and to read and at most two attempts (standard retry mode),
so an outage answers ``503 {"code": "store_unavailable"}`` within a few seconds and a daemon or a
user can retry. boto3 is imported on first use only: routes that never touch DynamoDB never pay
for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from logging import WARNING
from typing import Any

from chalicelib.errors import ControllerError, StoreUnavailable
from chalicelib.logs import event, log
from chalicelib.settings import Settings

ATTEMPTS = 2


# The services this process's AWS session may load: DynamoDB, and what botocore's credential
# providers may need to assume a role or use SSO locally.
SERVICES = ("dynamodb", "sts", "sso", "sso-oidc")


@lru_cache(maxsize=4)
def _table(table_name: str, endpoint_url: str, timeout: float) -> Any:
    import boto3
    import botocore.loaders
    import botocore.session
    from botocore.config import Config

    class KnownServices(botocore.loaders.Loader):
        """botocore checks a service name against every service it ships (400 directories
        listed and stat-ed: 27 of a resource's 68 ms at a cold start); this session only ever
        loads ``SERVICES``, so the check is against them."""

        def list_available_services(self, type_name: str) -> list[str]:
            return list(SERVICES)

    core = botocore.session.get_session()
    core.register_component("data_loader", KnownServices())
    config = Config(connect_timeout=timeout, read_timeout=timeout,
                    retries={"mode": "standard", "total_max_attempts": ATTEMPTS})
    session = boto3.session.Session(botocore_session=core)
    return session.resource("dynamodb", endpoint_url=endpoint_url or None, config=config).Table(table_name)


def table_for(settings: Settings) -> Any:
    """The table resource, made on first use in this process (never at import)."""
    try:
        return _table(settings.table_name, settings.dynamodb_endpoint_url,
                      settings.dynamodb_timeout_seconds)
    except Exception as e:  # no region, no credentials configured: DynamoDB cannot be asked at all
        event(log, "store_unavailable", level=WARNING, op="connect", table=settings.table_name,
              error=type(e).__name__)
        raise StoreUnavailable(f"DynamoDB table {settings.table_name} cannot be reached "
                               f"({type(e).__name__})") from None


@dataclass(frozen=True)
class Write:
    """One write of a transaction: ``put`` an item or ``delete`` a key, if ``condition`` holds."""

    kind: str  # put | delete
    target: dict[str, Any]  # the item (put) or its key (delete)
    condition: str = ""
    values: dict[str, Any] | None = None
    names: dict[str, str] | None = None


class Dynamo:
    """Calls on one table; every method raises :class:`StoreUnavailable` when DynamoDB fails."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def _failure(self, op: str, error: Exception) -> ControllerError:
        from botocore.exceptions import BotoCoreError, ClientError

        name = getattr(self.table, "name", "?")
        if isinstance(error, ClientError):
            code = error.response.get("Error", {}).get("Code", "")
            event(log, "store_error", level=WARNING, op=op, table=name, code=code)
            if code == "ValidationException":  # our request was wrong: retrying cannot help
                return ControllerError(f"DynamoDB refused a {op} on table {name} as invalid; "
                                       "the controller's log has the details", code="store_rejected")
            return StoreUnavailable(f"DynamoDB table {name} failed a {op} ({code}); retry later")
        if isinstance(error, BotoCoreError):
            event(log, "store_unavailable", level=WARNING, op=op, table=name,
                  error=type(error).__name__)
            return StoreUnavailable(f"DynamoDB did not answer a {op} on table {name} "
                                    f"({type(error).__name__}); retry later")
        raise error

    def _call(self, op: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.table, op)(**kwargs)
        except Exception as e:
            raise self._failure(op, e) from None

    def put(self, item: dict[str, Any]) -> None:
        self._call("put_item", Item=item)

    def put_if(self, item: dict[str, Any], condition: str, values: dict[str, Any] | None = None,
               names: dict[str, str] | None = None) -> bool:
        """Write ``item`` if ``condition`` holds; False when it did not (nothing written)."""
        return self._if("put_item", {"Item": item}, condition, values, names)

    def update_if(self, key: dict[str, str], update: str, condition: str,
                  values: dict[str, Any] | None = None, names: dict[str, str] | None = None
                  ) -> bool:
        """Apply ``update`` to the item at ``key`` if ``condition`` holds; False when it did not."""
        return self._if("update_item", {"Key": key, "UpdateExpression": update}, condition, values,
                        names)

    def delete_if(self, key: dict[str, str], condition: str, values: dict[str, Any]) -> bool:
        """Delete the item at ``key`` if ``condition`` holds; False when it did not."""
        return self._if("delete_item", {"Key": key}, condition, values, None)

    def _if(self, op: str, kwargs: dict[str, Any], condition: str, values: dict[str, Any] | None,
            names: dict[str, str] | None) -> bool:
        """The one conditional write: the condition failing is an answer, not an error."""
        from botocore.exceptions import ClientError

        kwargs = {**kwargs, "ConditionExpression": condition}
        if values:
            kwargs["ExpressionAttributeValues"] = values
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            getattr(self.table, op)(**kwargs)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise self._failure(op, e) from None
        except Exception as e:
            raise self._failure(op, e) from None
        return True

    def transact(self, writes: list[Write]) -> int | None:
        """All of ``writes`` or none of them (one TransactWriteItems); ``None`` when they were
        made, else the index of the first write whose condition did not hold."""
        from botocore.exceptions import ClientError

        actions = []
        for w in writes:
            action: dict[str, Any] = {"TableName": self.table.name,
                                      ("Item" if w.kind == "put" else "Key"): w.target}
            if w.condition:
                action["ConditionExpression"] = w.condition
            if w.values:
                action["ExpressionAttributeValues"] = w.values
            if w.names:
                action["ExpressionAttributeNames"] = w.names
            actions.append({"Put" if w.kind == "put" else "Delete": action})
        try:
            self.table.meta.client.transact_write_items(TransactItems=actions)
        except ClientError as e:
            reasons = e.response.get("CancellationReasons") or []
            failed = [i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"]
            if failed:
                return failed[0]
            raise self._failure("TransactWriteItems", e) from None
        except Exception as e:
            raise self._failure("TransactWriteItems", e) from None
        return None

    def get(self, key: dict[str, str], *, consistent: bool = False) -> dict[str, Any] | None:
        item = self._call("get_item", Key=key, ConsistentRead=consistent).get("Item")
        return item if isinstance(item, dict) else None

    def get_many(self, keys: list[dict[str, str]], *, consistent: bool = False
                 ) -> list[dict[str, Any]]:
        """The items at ``keys`` that exist (any order): BatchGetItem, 100 keys a request, the
        keys DynamoDB leaves unprocessed asked again (a few times, then a 503)."""
        client, name = self.table.meta.client, self.table.name
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), 100):
            request = {name: {"Keys": keys[start:start + 100], "ConsistentRead": consistent}}
            for _ in range(5):
                try:
                    page = client.batch_get_item(RequestItems=request)
                except Exception as e:
                    raise self._failure("BatchGetItem", e) from None
                found += page.get("Responses", {}).get(name, [])
                request = page.get("UnprocessedKeys") or {}
                if not request:
                    break
            if request:
                raise StoreUnavailable(f"DynamoDB left keys of table {name} unprocessed; retry "
                                       "later")
        return found

    def delete(self, key: dict[str, str]) -> None:
        self._call("delete_item", Key=key)

    def query(self, partition: str, *, index: str | None = None, newest_first: bool = False,
              limit: int | None = None, state: str | None = None, before: str = "",
              after: str = "", consistent: bool = False) -> Iterator[dict[str, Any]]:
        """Items of one partition (of the table or of ``index``), in sort-key order: the one paging
        loop. ``limit`` stops after that many items; ``state`` keeps only items in that state;
        ``before`` keeps only sort keys below it (a cursor), ``after`` only those above it;
        ``consistent``: every write acknowledged before the read is seen (twice the units)."""
        from boto3.dynamodb.conditions import Attr, Key

        key = f"{index}pk" if index else "pk"
        condition = Key(key).eq(partition)
        if before:
            condition = condition & Key(f"{index}sk" if index else "sk").lt(before)
        elif after:
            condition = condition & Key(f"{index}sk" if index else "sk").gt(after)
        kwargs: dict[str, Any] = {"KeyConditionExpression": condition,
                                  "ScanIndexForward": not newest_first}
        if index:
            kwargs["IndexName"] = index
        if consistent:
            kwargs["ConsistentRead"] = True
        if limit:
            kwargs["Limit"] = limit
        if state:
            kwargs["FilterExpression"] = Attr("state").eq(state)
        found = 0
        while True:
            page = self._call("query", **kwargs)
            for item in page.get("Items", []):
                yield item
                found += 1
                if limit and found >= limit:
                    return
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def put_many(self, items: Iterable[dict[str, Any]]) -> None:
        self._batch(items, lambda batch, item: batch.put_item(Item=item))

    def delete_many(self, keys: Iterable[dict[str, str]]) -> None:
        self._batch(keys, lambda batch, key: batch.delete_item(Key=key))

    def _batch(self, entries: Iterable[dict[str, Any]], write: Callable[[Any, dict[str, Any]], Any]
               ) -> None:
        """One batch writer (25 items a request, unprocessed ones retried) for many writes."""
        try:
            with self.table.batch_writer() as batch:
                for entry in entries:
                    write(batch, entry)
        except Exception as e:
            raise self._failure("BatchWriteItem", e) from None

    def create_backup(self, name: str) -> dict[str, Any]:
        client = self.table.meta.client
        try:
            return client.create_backup(TableName=self.table.name, BackupName=name)["BackupDetails"]
        except Exception as e:
            raise self._failure("CreateBackup", e) from None
