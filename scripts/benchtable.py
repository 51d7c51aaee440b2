"""The bench's table instruments (``scripts/bench.py``): count what the controller asks of DynamoDB,
capture what it logs, and build the table a cluster has after days of records, at full size.

* :class:`Meter` counts every DynamoDB call of one boto3 table through botocore's own event
  hooks (``before-call`` / ``after-call``: whatever the store asks, by whatever item kinds) and
  prices each by DynamoDB's rules (:mod:`scripts.costmodel`): calls by operation, read and write
  units, the write units each partition key (and index key) took. Its own CPU time is kept apart.
* :class:`LogTap` counts the bytes of the controller's JSON log lines (what CloudWatch ingests).
* :func:`run_records` makes the records one run of a generated job posts (``running``, then its
  result), as the daemon writes them: the job's own fields (every arg) plus the run's.
* :class:`DictTable` is a boto3 ``Table`` in a dict (conditions, updates, queries, batches and
  transactions on plain Python values, no botocore): fast enough to post every record of 160,000
  jobs through the real notify flow (:func:`fill`). What that writes is the steady state, whatever
  items the store makes of a record.
* :class:`TableServer` serves that table from a process of its own: moto's server, its Query of
  one partition answered from that partition alone (moto reads the whole table per page, which
  at a million items takes minutes per run), so a measured process holds only its own memory.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from scripts.costmodel import Schema, Units, call_units, python_value

# -- counting the calls ------------------------------------------------------------------------------


@dataclass
class Tally:
    """Calls by operation and their units, since the meter was last taken."""

    calls: Counter[str] = field(default_factory=Counter)
    units: Units = field(default_factory=Units)
    instrument_cpu: float = 0.0  # CPU seconds the meter itself spent (sizing, looking up items)
    call_seconds: float = 0.0  # wall seconds inside the calls (DynamoDB's or its stand-in's share)

    def add(self, other: Tally) -> None:
        self.calls.update(other.calls)
        self.units.add(other.units)
        self.instrument_cpu += other.instrument_cpu
        self.call_seconds += other.call_seconds

    def calls_text(self) -> str:
        return ", ".join(f"{op} {n:,}" for op, n in sorted(self.calls.items(), key=lambda kv: -kv[1]))


class Meter:
    """Counts the DynamoDB calls of one boto3 ``Table`` resource (its client's event hooks)."""

    def __init__(self, table: Any, schema: Schema) -> None:
        self.table, self.schema = table, schema
        self.client = table.meta.client
        self._tally = Tally()
        self._lock = threading.Lock()
        self._local = threading.local()
        events = self.client.meta.events
        events.register_first("before-call.dynamodb", self._before, unique_id="bench-meter-before")
        # first: before boto3's own after-call handler turns the wire form into Python values
        events.register_first("after-call.dynamodb", self._after, unique_id="bench-meter-after")

    def take(self) -> Tally:
        """What was counted since the last take; counting starts again from zero."""
        with self._lock:
            tally, self._tally = self._tally, Tally()
        return tally

    def _muted(self) -> bool:
        return getattr(self._local, "muted", False)

    def _before(self, model: Any, params: Mapping[str, Any], context: dict[str, Any],
                **_: Any) -> None:
        if self._muted():
            return
        started = time.thread_time()
        body = params.get("body") or b"{}"
        request = json.loads(body.decode() if isinstance(body, bytes) else body)
        before = None
        if model.name in ("UpdateItem", "DeleteItem") and "Key" in request:
            before = self._look(request)
        context["bench_meter"] = (request, before, time.thread_time() - started,
                                  time.perf_counter())

    def _after(self, model: Any, parsed: Mapping[str, Any], context: dict[str, Any],
               **_: Any) -> None:
        if self._muted() or "bench_meter" not in context:
            return
        returned, started = time.perf_counter(), time.thread_time()
        request, before, spent, sent = context.pop("bench_meter")
        after = self._look(request) if model.name == "UpdateItem" and "Error" not in parsed else None
        units = call_units(model.name, request, parsed, self.schema, before, after)
        spent += time.thread_time() - started
        with self._lock:
            self._tally.calls[model.name] += 1
            self._tally.units.add(units)
            self._tally.instrument_cpu += spent
            self._tally.call_seconds += returned - sent

    def _look(self, request: Mapping[str, Any]) -> dict[str, Any] | None:
        """The item at the request's key as it is now (a strongly consistent read the meter does
        not count), in wire form: what a delete or an update writes is priced by its size."""
        from boto3.dynamodb.types import TypeDeserializer

        load = TypeDeserializer().deserialize
        key = {k: load(v) for k, v in request["Key"].items()}
        self._local.muted = True
        try:
            found = self.client.get_item(TableName=request["TableName"], Key=key,
                                         ConsistentRead=True).get("Item")
        finally:
            self._local.muted = False
        return {k: python_value(v) for k, v in found.items()} if found else None


class LogTap:
    """Counts the bytes and lines the controller logs (its JSON lines on stdout) while open; the
    lines themselves are dropped. Logging is switched on for the time (the bench keeps it off)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.lines = 0
        self.events: Counter[str] = Counter()

    def write(self, text: str) -> int:
        self.bytes += len(text.encode())
        self.lines += text.count("\n")
        return len(text)

    def flush(self) -> None:
        pass

    def __enter__(self) -> LogTap:
        from chalicelib import logs

        logs.setup()
        self._stdout, sys.stdout = sys.stdout, self
        self._disabled = logging.root.manager.disable
        logging.disable(logging.NOTSET)
        return self

    def __exit__(self, *_: Any) -> None:
        sys.stdout = self._stdout
        logging.disable(self._disabled)

    def take(self) -> tuple[int, int]:
        """(bytes, lines) since the last take."""
        out = (self.bytes, self.lines)
        self.bytes = self.lines = 0
        return out


# -- the records a run posts -------------------------------------------------------------------------

def go_time(when: datetime, nanos: int = 0) -> str:
    return f"{when:%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


def run_records(job: Mapping[str, Any], start: datetime, *, seconds: float = 30.0,
                size: int = 0, salt: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """The two records one run of ``job`` posts, as backupd writes them (``crond.go``): the job's
    fields plus ``rid`` (``<unix seconds><32 hex>``), ``result``, ``state``, ``start``, ``end``,
    ``reason``; ``running`` first, then ``success`` after ``seconds``. A full backup's result names
    its archive file and ``size``; an increment's size is 0; an expire run has none."""
    import hashlib

    unix = int(start.timestamp())
    tail = hashlib.md5(f"{job['id']}|{json.dumps(job['args'], sort_keys=True)}|{unix}|{salt}"
                       .encode()).hexdigest()
    nanos = int(tail[:6], 16) % 1_000_000_000
    common = {**job, "rid": f"{unix}{tail}", "start": go_time(start, nanos), "reason": ""}
    running = {**common, "result": None, "state": "running", "end": "0001-01-01T00:00:00Z"}
    end = start + timedelta(seconds=seconds)
    result = None
    if job.get("action") == "backup":
        args = job["args"]
        result = ({"file": f"{args['archive']}-{unix}.tar.gz", "size": size}
                  if args.get("mode") == "full" else {"file": args["archive"], "size": 0})
    done = {**common, "result": result, "state": "success", "end": go_time(end, nanos)}
    return running, done


# -- a table in a dict ----------------------------------------------------------------------------------

class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()
_TOKEN = re.compile(r"\s*(?:(#[A-Za-z0-9_]+)|(:[A-Za-z0-9_]+)|([A-Za-z_][A-Za-z0-9_]*)|(\d+)"
                    r"|(<>|<=|>=|=|<|>|\(|\)|,|\.|\[|\]|\+|-))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, text.strip()
    kinds = ("name", "value", "word", "number", "op")
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise NotImplementedError(f"DictTable cannot read {text[pos:pos + 20]!r} of {text!r}")
        kind = next(k for k, g in zip(kinds, m.groups(), strict=True) if g is not None)
        out.append((kind, m.group(m.lastindex or 0)))
        pos = m.end()
    return out


Path = tuple[str | int, ...]


class _Parser:
    """DynamoDB's condition and update expressions over plain Python items: comparisons, BETWEEN,
    IN, AND/OR/NOT, the functions attribute_exists, attribute_not_exists, attribute_type,
    begins_with, contains, size; SET (with +, -, if_not_exists, list_append), REMOVE, ADD, DELETE.
    Anything else: NotImplementedError naming it (teach it here)."""

    def __init__(self, text: str, names: Mapping[str, str]) -> None:
        self.toks, self.i, self.names, self.text = _tokens(text), 0, names, text

    def peek(self, upper: bool = True) -> str:
        if self.i >= len(self.toks):
            return ""
        kind, tok = self.toks[self.i]
        return tok.upper() if upper and kind == "word" else tok

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise NotImplementedError(f"unexpected end of {self.text!r}")
        tok = self.toks[self.i]
        if expected is not None and tok[1].upper() != expected:
            raise NotImplementedError(f"expected {expected} at {tok[1]!r} in {self.text!r}")
        self.i += 1
        return tok

    # conditions
    def condition(self) -> Callable[[Mapping[str, Any], Mapping[str, Any]], bool]:
        left = self._and()
        while self.peek() == "OR":
            self.take()
            left = _either(left, self._and())
        return left

    def _and(self) -> Callable[[Mapping[str, Any], Mapping[str, Any]], bool]:
        left = self._not()
        while self.peek() == "AND":
            self.take()
            left = _both(left, self._not())
        return left

    def _not(self) -> Callable[[Mapping[str, Any], Mapping[str, Any]], bool]:
        if self.peek() == "NOT":
            self.take()
            inner = self._not()
            return lambda it, v: not inner(it, v)
        return self._primary()

    def _primary(self) -> Callable[[Mapping[str, Any], Mapping[str, Any]], bool]:
        if self.peek() == "(":
            self.take()
            inner = self.condition()
            self.take(")")
            return inner
        word = self.peek()
        if word in ("ATTRIBUTE_EXISTS", "ATTRIBUTE_NOT_EXISTS", "ATTRIBUTE_TYPE", "BEGINS_WITH",
                    "CONTAINS"):
            self.take()
            self.take("(")
            path = self.path()
            other = None
            if self.peek() == ",":
                self.take()
                other = self.operand()
            self.take(")")
            return _function(word, path, other)
        left = self.operand()
        op = self.peek()
        if op == "BETWEEN":
            self.take()
            low = self.operand()
            self.take("AND")
            high = self.operand()
            return lambda it, v: _between(left(it, v), low(it, v), high(it, v))
        if op == "IN":
            self.take()
            self.take("(")
            options = [self.operand()]
            while self.peek() == ",":
                self.take()
                options.append(self.operand())
            self.take(")")
            return lambda it, v: any(_compare("=", left(it, v), o(it, v)) for o in options)
        if op not in ("=", "<>", "<", "<=", ">", ">="):
            raise NotImplementedError(f"DictTable does not know {op!r} in {self.text!r}")
        self.take()
        right = self.operand()
        return lambda it, v: _compare(op, left(it, v), right(it, v))

    def operand(self) -> Callable[[Mapping[str, Any], Mapping[str, Any]], Any]:
        kind, tok = self.toks[self.i] if self.i < len(self.toks) else ("", "")
        if kind == "value":
            self.take()
            return lambda it, v: v[tok]
        if kind == "word" and tok.upper() == "SIZE":
            self.take()
            self.take("(")
            path = self.path()
            self.take(")")
            return lambda it, v: _size(_get(it, path))
        if kind == "word" and tok.upper() in ("IF_NOT_EXISTS", "LIST_APPEND"):
            self.take()
            self.take("(")
            first = self.path() if tok.upper() == "IF_NOT_EXISTS" else None
            a = self.operand() if first is None else None
            self.take(",")
            b = self.operand()
            self.take(")")
            if first is not None:
                return lambda it, v: (b(it, v) if _get(it, first) is MISSING else _get(it, first))
            assert a is not None
            return lambda it, v: [*a(it, v), *b(it, v)]
        path = self.path()
        return lambda it, v: _get(it, path)

    def value(self) -> Callable[[Mapping[str, Any], Mapping[str, Any]], Any]:
        """An update's value: an operand, or two joined by + or -."""
        left = self.operand()
        if self.peek() in ("+", "-"):
            sign = self.take()[1]
            right = self.operand()
            return lambda it, v: left(it, v) + right(it, v) if sign == "+" else \
                left(it, v) - right(it, v)
        return left

    def path(self) -> Path:
        parts: list[str | int] = [self._name()]
        while self.peek() in (".", "["):
            if self.take()[1] == ".":
                parts.append(self._name())
            else:
                parts.append(int(self.take()[1]))
                self.take("]")
        return tuple(parts)

    def _name(self) -> str:
        kind, tok = self.take()
        if kind == "name":
            return self.names[tok]
        if kind == "word":
            return tok
        raise NotImplementedError(f"expected an attribute at {tok!r} in {self.text!r}")

    # updates
    def update(self) -> list[tuple[str, Path, Any]]:
        actions: list[tuple[str, Path, Any]] = []
        while self.i < len(self.toks):
            clause = self.take()[1].upper()
            if clause not in ("SET", "REMOVE", "ADD", "DELETE"):
                raise NotImplementedError(f"DictTable does not know {clause!r} in {self.text!r}")
            while True:
                path = self.path()
                if clause == "SET":
                    self.take("=")
                    actions.append((clause, path, self.value()))
                elif clause == "REMOVE":
                    actions.append((clause, path, None))
                else:
                    actions.append((clause, path, self.operand()))
                if self.peek() != ",":
                    break
                self.take()
        return actions


Cond = Callable[[Mapping[str, Any], Mapping[str, Any]], bool]


def _either(a: Cond, b: Cond) -> Cond:
    return lambda it, v: a(it, v) or b(it, v)


def _both(a: Cond, b: Cond) -> Cond:
    return lambda it, v: a(it, v) and b(it, v)


def _get(item: Any, path: Path) -> Any:
    for part in path:
        try:
            item = item[part]
        except (KeyError, IndexError, TypeError):
            return MISSING
    return item


def _compare(op: str, a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return op == "<>" and not (a is MISSING and b is MISSING)
    if op in ("=", "<>"):
        return (a == b) == (op == "=")
    try:
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    except TypeError:  # different types never compare in DynamoDB
        return False


def _between(a: Any, low: Any, high: Any) -> bool:
    return _compare(">=", a, low) and _compare("<=", a, high)


def _size(value: Any) -> Any:
    if value is MISSING:
        return MISSING
    return len(value.encode() if isinstance(value, str) else value)


def _function(word: str, path: Path, other: Any) -> Callable[[Mapping[str, Any], Mapping[str, Any]],
                                                               bool]:
    if word == "ATTRIBUTE_EXISTS":
        return lambda it, v: _get(it, path) is not MISSING
    if word == "ATTRIBUTE_NOT_EXISTS":
        return lambda it, v: _get(it, path) is MISSING
    if word == "ATTRIBUTE_TYPE":
        return lambda it, v: (_get(it, path) is not MISSING
                              and next(iter(python_value(_get(it, path)))) == other(it, v))
    if word == "BEGINS_WITH":
        return lambda it, v: (isinstance(_get(it, path), str | bytes)
                              and _get(it, path).startswith(other(it, v)))
    return lambda it, v: (_get(it, path) is not MISSING and other(it, v) in _get(it, path))


_COMPILED: dict[tuple[str, tuple[tuple[str, str], ...], str], Any] = {}


def _compiled(kind: str, text: str, names: Mapping[str, str] | None) -> Any:
    key = (text, tuple(sorted((names or {}).items())), kind)
    if key not in _COMPILED:
        parser = _Parser(text, names or {})
        _COMPILED[key] = parser.condition() if kind == "condition" else parser.update()
        if parser.i != len(parser.toks):
            raise NotImplementedError(f"DictTable stopped at {parser.peek()!r} in {text!r}")
    return _COMPILED[key]


def _set_path(item: dict[str, Any], path: Path, value: Any) -> None:
    target: Any = item
    for part in path[:-1]:
        target = target[part]
    if value is MISSING:
        if isinstance(target, dict):
            target.pop(path[-1], None)
        elif isinstance(path[-1], int) and path[-1] < len(target):
            del target[path[-1]]
        return
    target[path[-1]] = value


def _conditional_failure(op: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": "ConditionalCheckFailedException",
                                  "Message": "The conditional request failed"}}, op)


def _expression(value: Any, names: dict[str, str], values: dict[str, Any], *,
                key: bool = False) -> str:
    """A condition as text: as given, or a boto3 condition object built as boto3 builds it."""
    if value is None or isinstance(value, str):
        return value or ""
    from boto3.dynamodb.conditions import ConditionExpressionBuilder

    built = ConditionExpressionBuilder().build_expression(value, is_key_condition=key)
    names.update(built.attribute_name_placeholders)
    values.update(built.attribute_value_placeholders)
    return str(built.condition_expression)


class DictTable:
    """A boto3 DynamoDB ``Table`` resource held in a dict, for building a table fast: the calls the
    store makes (``put_item``, ``get_item``, ``delete_item``, ``update_item``, ``query``, ``scan``,
    ``batch_writer``, ``meta.client.batch_get_item`` / ``batch_write_item`` /
    ``transact_write_items``) with their conditions, on plain Python values. Queries answer in one
    page; numbers come back as written. Not DynamoDB: a tool to write many items through the
    store's own code."""

    def __init__(self, name: str, schema: Schema) -> None:
        self.name, self.schema = name, schema
        self.hash_key = schema.keys[0]
        self.range_key = schema.keys[1] if len(schema.keys) > 1 else None
        self.items: dict[Any, dict[Any, dict[str, Any]]] = {}
        self.meta = _Meta(_DictClient(self))

    def _key(self, key: Mapping[str, Any]) -> tuple[Any, Any]:
        return key[self.hash_key], key[self.range_key] if self.range_key else None

    def _current(self, key: Mapping[str, Any]) -> dict[str, Any] | None:
        h, r = self._key(key)
        return self.items.get(h, {}).get(r)

    def _check(self, op: str, current: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> None:
        names = dict(kwargs.get("ExpressionAttributeNames") or {})
        values = dict(kwargs.get("ExpressionAttributeValues") or {})
        text = _expression(kwargs.get("ConditionExpression"), names, values)
        if text and not _compiled("condition", text, names)(current or {}, values):
            raise _conditional_failure(op)

    def put_item(self, Item: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        self._check("PutItem", self._current(Item), kwargs)
        h, r = self._key(Item)
        self.items.setdefault(h, {})[r] = copy.deepcopy(dict(Item))
        return {}

    def get_item(self, Key: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        found = self._current(Key)
        return {"Item": copy.deepcopy(found)} if found is not None else {}

    def delete_item(self, Key: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        self._check("DeleteItem", self._current(Key), kwargs)
        h, r = self._key(Key)
        self.items.get(h, {}).pop(r, None)
        return {}

    def update_item(self, Key: Mapping[str, Any], UpdateExpression: str,
                    **kwargs: Any) -> dict[str, Any]:
        current = self._current(Key)
        self._check("UpdateItem", current, kwargs)
        names = dict(kwargs.get("ExpressionAttributeNames") or {})
        values = dict(kwargs.get("ExpressionAttributeValues") or {})
        item = copy.deepcopy(current) if current is not None else dict(Key)
        for clause, path, value in _compiled("update", UpdateExpression, names):
            if clause == "SET":
                _set_path(item, path, value(current or {}, values))
            elif clause == "REMOVE":
                _set_path(item, path, MISSING)
            else:
                now, change = _get(item, path), value(item, values)
                if clause == "ADD":
                    new = change if now is MISSING else (now | change if isinstance(now, set)
                                                         else now + change)
                else:
                    new = MISSING if now is MISSING else (now - change) or MISSING
                _set_path(item, path, new)
        h, r = self._key(Key)
        self.items.setdefault(h, {})[r] = item
        return {"Attributes": copy.deepcopy(item)} if kwargs.get("ReturnValues") == "ALL_NEW" else {}

    def query(self, KeyConditionExpression: Any, **kwargs: Any) -> dict[str, Any]:
        names = dict(kwargs.get("ExpressionAttributeNames") or {})
        values = dict(kwargs.get("ExpressionAttributeValues") or {})
        text = _expression(KeyConditionExpression, names, values, key=True)
        keys: tuple[str, ...] = self.schema.keys
        index = kwargs.get("IndexName")
        if index:
            keys = next(i.keys for i in self.schema.indexes if i.name == index)
        match = _compiled("condition", text, names)
        found = [i for i in self._all(partition=None if index else
                                      _hash_value(text, names, values, keys[0]))
                 if keys[0] in i and match(i, values)]
        return self._page(found, keys, kwargs, names, values)

    def scan(self, **kwargs: Any) -> dict[str, Any]:
        names = dict(kwargs.get("ExpressionAttributeNames") or {})
        values = dict(kwargs.get("ExpressionAttributeValues") or {})
        return self._page(list(self._all()), self.schema.keys, kwargs, names, values)

    def _all(self, partition: Any = MISSING) -> Iterator[dict[str, Any]]:
        if partition is not MISSING and partition is not None:
            yield from self.items.get(partition, {}).values()
            return
        for part in self.items.values():
            yield from part.values()

    def _page(self, found: list[dict[str, Any]], keys: tuple[str, ...], kwargs: Mapping[str, Any],
              names: dict[str, str], values: dict[str, Any]) -> dict[str, Any]:
        if len(keys) > 1:
            found.sort(key=lambda i: (i.get(keys[1], ""), i[self.hash_key],
                                      i.get(self.range_key, "") if self.range_key else ""))
        if kwargs.get("ScanIndexForward") is False:
            found.reverse()
        start = kwargs.get("ExclusiveStartKey")
        if start:
            at = next(n for n, i in enumerate(found) if all(i.get(k) == v for k, v in start.items()))
            found = found[at + 1:]
        limit: int = kwargs.get("Limit") or 0
        page, more = (found[:limit], len(found) > limit) if limit else (found, False)
        scanned = len(page)
        text = _expression(kwargs.get("FilterExpression"), names, values)
        if text:
            keep = _compiled("condition", text, names)
            page = [i for i in page if keep(i, values)]
        out: dict[str, Any] = {"Items": copy.deepcopy(page), "Count": len(page),
                               "ScannedCount": scanned}
        if more:
            last = found[limit - 1]
            out["LastEvaluatedKey"] = {k: last[k] for k in {*keys, *self.schema.keys} if k in last}
        return out

    def batch_writer(self, **_: Any) -> _BatchWriter:
        return _BatchWriter(self)

    def load(self) -> None:
        pass

    def __len__(self) -> int:
        return sum(len(p) for p in self.items.values())

    def drain(self) -> Iterator[dict[str, Any]]:
        """Every item, each forgotten as it is handed out (to move a large table elsewhere)."""
        while self.items:
            _, part = self.items.popitem()
            while part:
                yield part.popitem()[1]


def _hash_value(text: str, names: Mapping[str, str], values: Mapping[str, Any], key: str) -> Any:
    """The partition a key condition names (``<key> = :v`` somewhere in it), or None (unknown)."""
    for name in [key, *(p for p, n in names.items() if n == key)]:
        m = re.search(rf"(?<![#\w]){re.escape(name)}\s*=\s*(:\w+)", text)
        if m:
            return values[m.group(1)]
    return None


@dataclass
class _Meta:
    client: Any


class _BatchWriter:
    """``Table.batch_writer()``: each write made as it comes (a dict has nothing to batch)."""

    def __init__(self, table: DictTable) -> None:
        self.table = table

    def put_item(self, Item: Mapping[str, Any]) -> None:
        self.table.put_item(Item=Item)

    def delete_item(self, Key: Mapping[str, Any]) -> None:
        self.table.delete_item(Key=Key)

    def __enter__(self) -> _BatchWriter:
        return self

    def __exit__(self, *_: Any) -> None:
        pass


class _DictClient:
    """The resource's client, as the store uses it: batches and transactions of one table."""

    def __init__(self, table: DictTable) -> None:
        self.table = table

    def batch_get_item(self, RequestItems: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        out = {}
        for name, ask in RequestItems.items():
            found = [self.table.get_item(Key=k).get("Item") for k in ask["Keys"]]
            out[name] = [i for i in found if i is not None]
        return {"Responses": out, "UnprocessedKeys": {}}

    def batch_write_item(self, RequestItems: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        for writes in RequestItems.values():
            for w in writes:
                if "PutRequest" in w:
                    self.table.put_item(Item=w["PutRequest"]["Item"])
                else:
                    self.table.delete_item(Key=w["DeleteRequest"]["Key"])
        return {"UnprocessedItems": {}}

    def transact_write_items(self, TransactItems: list[Mapping[str, Any]], **_: Any
                             ) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        reasons, ok = [], True
        for action in TransactItems:
            (kind, body), = action.items()
            key = body.get("Item") or body.get("Key") or {}
            try:
                self.table._check(kind, self.table._current(key), body)
                reasons.append({"Code": "None"})
            except ClientError:
                reasons.append({"Code": "ConditionalCheckFailed"})
                ok = False
        if not ok:
            raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "x"},
                               "CancellationReasons": reasons}, "TransactWriteItems")
        for action in TransactItems:
            (kind, body), = action.items()
            plain = {k: v for k, v in body.items() if k not in ("ConditionExpression", "TableName")}
            if kind == "Put":
                self.table.put_item(**plain)
            elif kind == "Delete":
                self.table.delete_item(**plain)
            elif kind == "Update":
                self.table.update_item(**plain)
        return {}


# -- the steady state ------------------------------------------------------------------------------------

@dataclass
class Filled:
    """What :func:`fill` posted and what the table holds after it."""

    posts: int = 0
    jobs: int = 0
    nodes: int = 0
    items: int = 0
    seconds: float = 0.0
    kinds: Counter[str] = field(default_factory=Counter)  # items by partition-key prefix
    bytes: Counter[str] = field(default_factory=Counter)  # their wire bytes, by the same
    archives: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by node: what its
    # daemon lists (``GET /backup/json``), one entity per backup posted

    def summary(self) -> str:
        parts = ", ".join(f"{k} {n:,} ({self.bytes[k] / n:,.0f} B each)"
                          for k, n in self.kinds.most_common())
        return (f"{self.items:,} items from {self.posts:,} posts of {self.jobs:,} jobs on "
                f"{self.nodes:,} nodes in {self.seconds:.0f} s: {parts}")


def key_kind(pk: Any) -> str:
    """A partition key's kind for the summaries: its text up to the first ``#`` (a record's
    ``RID#…`` is ``RID``), or the key itself when it is short and has none."""
    text = str(pk)
    head = text.split("#", 1)[0]
    return head if "#" in text or len(text) <= 16 else "other"


def fill(table: Any, settings: Any, lists: Mapping[str, Sequence[Mapping[str, Any]]],
         now: datetime, *,
         days: int = 2, expire_minutes: int = 10, size: int = 512 * 2**20) -> Filled:
    """Post, through the real notify flow (:func:`chalicelib.usecases.notify.notify`), the records
    of the last ``days`` runs of every backup job in ``lists`` (``{node: jobs}``, as generated)
    and of the last ``expire_minutes`` runs of every node's expire job, oldest first, each
    ``running`` then ``success``, with the clock at each post: the table a cluster has after
    days of runs. Full backups are ``size`` bytes, a few bytes more each day."""
    from chalicelib.core import cron
    from chalicelib.deps import Deps

    clock = [now]
    deps = Deps(settings, clock=lambda: clock[0], table=table)
    out = Filled(nodes=len(lists))
    started = time.perf_counter()
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)  # a post's line is the log rows' business, not the fill's
    try:
        for day in range(days - 1, -1, -1):
            for node, jobs in lists.items():
                for job in jobs:
                    if job.get("action") != "backup":
                        continue
                    last = cron.parse(job["spec"]).prev_before(now)
                    if last is None:
                        continue
                    start = last - timedelta(days=day)
                    seconds = min(30.0, max((now - start).total_seconds() - 1, 0.0))
                    done = _post_run(deps, clock, job, start, seconds, size + 4096 * (days - day))
                    out.posts += 2
                    out.jobs += day == 0
                    out.archives.setdefault(node, []).append(_entity(node, job, done))
        minute = now.replace(second=0, microsecond=0)
        for back in range(expire_minutes - 1, -1, -1):
            for jobs in lists.values():
                for job in jobs:
                    if job.get("action") == "backup_expire":
                        _post_run(deps, clock, job, minute - timedelta(minutes=back), 0.2, 0)
                        out.posts += 2
    finally:
        logging.disable(previous)
    from chalicelib.edges.table import FRESH_READY

    table.put_item(Item=dict(FRESH_READY))  # a table past the slim items' upgrade
    out.seconds = time.perf_counter() - started
    return out


def _post_run(deps: Any, clock: list[datetime], job: Mapping[str, Any], start: datetime,
              seconds: float, size: int) -> dict[str, Any]:
    """Post one run's two records; its success record."""
    from chalicelib.usecases import notify

    running, done = run_records(job, start, seconds=seconds, size=size)
    clock[0] = start + timedelta(seconds=0.1)
    notify.notify(deps, json.dumps(running))
    clock[0] = start + timedelta(seconds=seconds + 0.1)
    notify.notify(deps, json.dumps(done))
    return done


def _entity(node: str, job: Mapping[str, Any], done: Mapping[str, Any]) -> dict[str, Any]:
    """The backup a run left on its node, as the daemon lists it (``backup.go``'s entity): the
    archives the records name exist, as on a cluster whose backups nobody deleted."""
    args = job["args"]
    return {"mode": args.get("mode") or "full", "source": args.get("path", ""),
            "volume": args.get("volume", ""), "name": done["result"]["file"],
            "server": node, "size": done["result"]["size"], "created": done["end"],
            "containers": args.get("containers", []), "instanceNo": args.get("instanceNo", 0)}


def census(items: Iterable[Mapping[str, Any]], hash_key: str, into: Filled) -> None:
    """Count ``items`` (Python values) by kind of partition key, with their wire bytes."""
    from scripts.costmodel import python_item_size

    for item in items:
        kind = key_kind(item.get(hash_key))
        into.kinds[kind] += 1
        into.bytes[kind] += python_item_size(item)
        into.items += 1


# -- the table, served from a process of its own ------------------------------------------------------

def _fast_query() -> None:
    """moto's ``Table.query`` walks every item of the table (all partitions, sorted anew) for each
    page: at a million items a page takes seconds. This answers a Query on the table's own keys
    from its one partition, in an order kept between pages while the partition keeps its items,
    with moto's own page-size rule, filters and projections; index queries stay moto's."""
    import bisect

    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, Table

    original = Table.query
    orders: dict[tuple[int, Any], tuple[int, list[Any], list[Any]]] = {}

    def query(self: Table, hash_key: Any, range_comparison: Any, range_objs: Any, limit: Any,
              exclusive_start_key: Any, scan_index_forward: Any, projection_expressions: Any,
              index_name: Any = None, consistent_read: bool = False, filter_expression: Any = None,
              hash_key_conditions: Any = None, range_key_conditions: Any = None,
              **filter_kwargs: Any) -> Any:
        if (index_name or filter_kwargs or hash_key is None or not self.range_key_attr
                or len(range_key_conditions or []) > 1):
            return original(self, hash_key, range_comparison, range_objs, limit,
                            exclusive_start_key, scan_index_forward, projection_expressions,
                            index_name, consistent_read, filter_expression,
                            hash_key_conditions=hash_key_conditions,
                            range_key_conditions=range_key_conditions, **filter_kwargs)
        part = self.items.get(hash_key, {})
        cached = orders.get((id(self), hash_key))
        if cached is None or cached[0] != len(part):
            order = sorted(part, key=lambda k: k.cast_value)
            cached = (len(part), order, [k.cast_value for k in order])
            orders[(id(self), hash_key)] = cached
        _, order, values = cached
        forward = scan_index_forward is not False
        if exclusive_start_key:
            from moto.dynamodb.models.dynamo_type import DynamoType

            start = DynamoType(exclusive_start_key[self.range_key_attr]).cast_value
            at = bisect.bisect_right(values, start) if forward else \
                bisect.bisect_left(values, start) - 1
        else:
            at = 0 if forward else len(order) - 1
        step = 1 if forward else -1
        results: list[Any] = []
        size, scanned, last = 0, 0, None
        while 0 <= at < len(order):
            item = part.get(order[at])
            at += step
            if item is None:
                continue
            if range_comparison and not item.range_key.compare(range_comparison, range_objs):
                continue
            item_size = item.size()
            if (limit and len(results) == limit) or size + item_size > RESULT_SIZE_LIMIT:
                last = self._get_last_evaluated_key(results[-1], None)
                break
            results.append(item)
            size += item_size
            scanned += 1
        if filter_expression is not None:  # moto's items are answered as copies (dynamo_to_dict)
            results = [i for i in results if filter_expression.expr(i)]
        if projection_expressions:
            results = [r.project(projection_expressions) for r in results]
        return results, scanned, last

    Table.query = query  # type: ignore[method-assign]
    _plain_answers()


def _plain_answers() -> None:
    """moto writes each answer through its generic, model-driven serializer: 2 s for one 1 MB
    page of items. DynamoDB's answers are plain JSON of the wire form, which ``json.dumps`` writes
    in milliseconds: every action's result is answered so."""
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoHandler

    def plain(method: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def answer(self: Any) -> Any:
            result = method(self)
            if isinstance(result, ActionResult):
                return json.dumps(result.result, default=_base64)
            return result
        return answer

    for name in ("query", "scan", "get_item", "batch_get_item", "put_item", "update_item",
                 "delete_item", "batch_write_item", "transact_write_items", "transact_get_items"):
        setattr(DynamoHandler, name, plain(getattr(DynamoHandler, name)))


ACCOUNT, REGION = "123456789012", "us-east-1"


def _serve(name: str, build: Callable[[Any], Filled], ready: Any, stop: Any) -> None:
    """Child process: build the table (``build`` fills a :class:`DictTable`), move it into moto's
    backend, answer DynamoDB's API on a loopback port until told to stop."""
    from boto3.dynamodb.types import TypeSerializer
    from moto.dynamodb.models import dynamodb_backends
    from moto.server import ThreadedMotoServer

    from chalicelib.edges import table as table_schema

    _fast_query()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    kwargs = table_schema.create_table_kwargs(name)
    schema = Schema.from_create_table(kwargs)
    local = DictTable(name, schema)
    filled = build(local)
    census(_all_items(local), schema.keys[0], filled)
    backend = dynamodb_backends[ACCOUNT][REGION]
    backend.create_table(name, schema=kwargs["KeySchema"], throughput=None,
                         attr=kwargs["AttributeDefinitions"],
                         global_indexes=kwargs.get("GlobalSecondaryIndexes"), indexes=None,
                         streams=None, billing_mode="PAY_PER_REQUEST", sse_specification=None,
                         tags=[], deletion_protection_enabled=None, warm_throughput=None)
    table = backend.get_table(name)
    serialize = TypeSerializer().serialize
    for item in local.drain():
        table.put_item({k: serialize(_wire_safe(v)) for k, v in item.items()})
    del local
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ready.put((f"http://{host}:{port}", filled, peak))
    stop.wait()
    server.stop()


def _base64(value: Any) -> str:
    """Binary values travel as base64 text in DynamoDB's JSON."""
    import base64

    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _all_items(table: DictTable) -> Iterator[dict[str, Any]]:
    for part in table.items.values():
        yield from part.values()


def _wire_safe(value: Any) -> Any:
    """Floats as DynamoDB numbers (boto3's serializer refuses floats)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, list):
        return [_wire_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _wire_safe(v) for k, v in value.items()}
    return value


class TableServer:
    """A DynamoDB stand-in in a process of its own, holding the table ``build`` makes."""

    def __init__(self, name: str, build: Callable[[Any], Filled], timeout: float = 1800) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.ready, self.stop_event = ctx.Queue(), ctx.Event()
        self.process = ctx.Process(target=_serve, args=(name, build, self.ready, self.stop_event),
                                   daemon=True)
        self.process.start()
        self.url, self.filled, self.peak_mb = self.ready.get(timeout=timeout)

    def stop(self) -> None:
        self.stop_event.set()
        self.process.join(60)
        if self.process.is_alive():
            self.process.kill()


def peak_since_reset() -> float | None:
    """This process's peak resident MB since :func:`reset_peak` (Linux's VmHWM), or None."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """Start this process's peak resident size again from what it holds now (Linux: writing 5 to
    ``/proc/self/clear_refs``); False where that cannot be done."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
