"""DynamoDB's units, the notify herd per key and the monthly bill, modelled from counted figures.

Pure: no I/O, no clock, no boto3. ``scripts/bench.py`` counts (calls, items, bytes, seconds) with
the instruments of ``scripts/benchtable.py``; this module turns counts into units, keys into peak
writes, and units into dollars, so each step can be checked by hand (``tests/unit/test_costmodel.py``).

**Sizes** follow DynamoDB's rules: an item is the sum of its attribute names' UTF-8 lengths and
their values' sizes; a string its UTF-8 length, a binary its byte length, a number about one byte
per two significant digits plus one, a boolean or null one byte, a list or map 3 bytes plus one
per element plus the elements (a map's keys too), a set the sum of its elements. Items are in
DynamoDB's wire form (``{"S": "…"}``), as the API carries them.

**Units**: a write is 1 WRU per started KB of the item (per index the item lands in, too, of its
projection there; a transaction's write costs double); a read 1 RRU per started 4 KB of the item,
half of that when eventually consistent; a Query or a Scan page is priced by the total size of the
items it read, rounded up to 4 KB once for the page.
"""

from __future__ import annotations

import base64
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

KB = 1024
WRITE_UNIT_BYTES = 1 * KB
READ_UNIT_BYTES = 4 * KB
STORAGE_OVERHEAD_BYTES = 100  # DynamoDB adds 100 bytes per item (and per index entry) to storage
PARTITION_WRITE_UNITS = 1000  # one partition takes at most 1,000 WRU/s (and 3,000 RRU/s)
API_GATEWAY_RPS = 10_000  # the account's default REST API throttle (steady rate), per region
LAMBDA_CONCURRENCY = 1000  # the account's default concurrent executions, per region
DAYS_PER_MONTH = 30
RUNS_PER_MONTH = 60 * 24 * DAYS_PER_MONTH  # the scheduled function runs every minute: 43,200


# -- sizes -------------------------------------------------------------------------------------------

def number_size(text: str) -> int:
    """A number's size: one byte per two significant digits, plus one (DynamoDB's rule)."""
    digits = text.lstrip("+-").replace(".", "").split("e")[0].split("E")[0].strip("0")
    return (len(digits) + 1) // 2 + 1 if digits else 1


def value_size(value: Mapping[str, Any]) -> int:
    """The size of one wire-form attribute value (``{"S": "x"}``, ``{"L": [...]}``, …)."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return number_size(str(inner))
    if kind == "B":
        return _blob_size(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(v.encode()) for v in inner)
    if kind == "NS":
        return sum(number_size(str(v)) for v in inner)
    if kind == "BS":
        return sum(_blob_size(v) for v in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in inner.items())
    raise ValueError(f"not a DynamoDB attribute value: {kind!r}")


def _blob_size(blob: Any) -> int:
    """Bytes of a binary: parsed answers carry bytes, request bodies base64 text."""
    if isinstance(blob, bytes | bytearray):
        return len(blob)
    return len(base64.b64decode(blob))


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """An item's size: its attribute names plus their values."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def python_value(value: Any) -> dict[str, Any]:
    """A plain Python value (as boto3's Table takes it) in wire form, for sizing."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | float | Decimal):
        return {"N": str(value)}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if hasattr(value, "value") and isinstance(value.value, bytes):  # boto3's Binary
        return {"B": value.value}
    if isinstance(value, Mapping):
        return {"M": {str(k): python_value(v) for k, v in value.items()}}
    if isinstance(value, set | frozenset):
        first = next(iter(value))
        kind = "SS" if isinstance(first, str) else "BS" if isinstance(first, bytes) else "NS"
        return {kind: [python_value(v)[kind[0]] for v in value]}
    if isinstance(value, list | tuple):
        return {"L": [python_value(v) for v in value]}
    raise TypeError(f"cannot size {type(value).__name__}")


def python_item_size(item: Mapping[str, Any]) -> int:
    return item_size({k: python_value(v) for k, v in item.items()})


# -- units -------------------------------------------------------------------------------------------

def write_units(size: int) -> int:
    """WRU of writing one item of ``size`` bytes: 1 per started KB, at least 1."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, consistent: bool = False) -> float:
    """RRU of reading ``size`` bytes in one go (one item, or one Query page): 1 per started 4 KB,
    at least 1, half when eventually consistent."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


@dataclass(frozen=True)
class Index:
    """A secondary index as the table declares it: its key attributes and its projection."""

    name: str
    keys: tuple[str, ...]  # hash key first, then the range key if any
    projection: str = "ALL"  # ALL | KEYS_ONLY | INCLUDE
    include: tuple[str, ...] = ()

    def projected(self, item: Mapping[str, Any], table_keys: Sequence[str]) -> dict[str, Any] | None:
        """The item as this index holds it, or None when it lacks the index's keys (not indexed)."""
        if not all(k in item for k in self.keys):
            return None
        if self.projection == "ALL":
            return dict(item)
        keep = {*self.keys, *table_keys, *(self.include if self.projection == "INCLUDE" else ())}
        return {k: v for k, v in item.items() if k in keep}


@dataclass(frozen=True)
class Schema:
    """What the meter needs of a table's definition: its keys and its indexes."""

    keys: tuple[str, ...]  # hash key first
    indexes: tuple[Index, ...] = ()

    @classmethod
    def from_create_table(cls, kwargs: Mapping[str, Any]) -> Schema:
        """From ``CreateTable``'s arguments (``chalicelib.edges.table.create_table_kwargs``)."""
        def keys(schema: Sequence[Mapping[str, str]]) -> tuple[str, ...]:
            return tuple(k["AttributeName"] for k in sorted(schema, key=lambda k: k["KeyType"]))

        indexes = []
        for index in [*kwargs.get("GlobalSecondaryIndexes", []),
                      *kwargs.get("LocalSecondaryIndexes", [])]:
            projection = index.get("Projection", {})
            indexes.append(Index(index["IndexName"], keys(index["KeySchema"]),
                                 projection.get("ProjectionType", "ALL"),
                                 tuple(projection.get("NonKeyAttributes", ()))))
        return cls(keys(kwargs["KeySchema"]), tuple(indexes))


@dataclass
class Units:
    """What some calls cost: read and write units, and the write units each key took (``(space,
    partition key)``: space ``table`` or an index name), the units a conditional write that failed
    took among them."""

    rru: float = 0.0
    wru: float = 0.0
    keys: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, other: Units) -> None:
        self.rru += other.rru
        self.wru += other.wru
        self.keys.update(other.keys)


def _key_text(value: Mapping[str, Any]) -> str:
    (_, inner), = value.items()
    return inner if isinstance(inner, str) else str(inner)


def item_write(item: Mapping[str, Any], schema: Schema, *, indexed: bool = True,
               factor: int = 1) -> Units:
    """A write of ``item`` (wire form): its table write and, with ``indexed``, one per index it
    lands in; ``factor`` 2 for a transaction."""
    out = Units()
    units = write_units(item_size(item)) * factor
    out.wru += units
    if schema.keys[0] in item:
        out.keys[("table", _key_text(item[schema.keys[0]]))] += units
    if indexed:
        for index in schema.indexes:
            projected = index.projected(item, schema.keys)
            if projected is not None:
                units = write_units(item_size(projected)) * factor
                out.wru += units
                out.keys[(index.name, _key_text(item[index.keys[0]]))] += units
    return out


def call_units(op: str, request: Mapping[str, Any], answer: Mapping[str, Any], schema: Schema,
               before: Mapping[str, Any] | None = None, after: Mapping[str, Any] | None = None
               ) -> Units:
    """The units one DynamoDB call took, from its request and its parsed answer (both wire form).

    A conditional write that failed still costs its table write (not its index writes). What a
    delete or an update writes is not in its request: ``before`` and ``after`` are the item as it
    was and became (when the caller looked; else 1 WRU, the least a write costs), and the larger
    is written (an index entry whose key changed is a delete and a put there). A Query or Scan page
    with a filter read ``ScannedCount`` items: priced at the returned items' mean size (1 KB each
    when it returned none)."""
    failed = "Error" in answer
    consistent = bool(request.get("ConsistentRead"))
    out = Units()
    if op == "GetItem":
        out.rru = read_units(item_size(answer.get("Item") or {}), consistent)
    elif op in ("Query", "Scan"):
        items = answer.get("Items") or []
        total = sum(item_size(i) for i in items)
        scanned = int(answer.get("ScannedCount", len(items)))
        if scanned > len(items):
            total = total * scanned // len(items) if items else scanned * KB
        out.rru = read_units(total, consistent)
    elif op == "BatchGetItem":
        for name, found in (answer.get("Responses") or {}).items():
            strong = bool(request.get("RequestItems", {}).get(name, {}).get("ConsistentRead"))
            out.rru += sum(read_units(item_size(i), strong) for i in found)
    elif op == "PutItem":
        out.add(item_write(request["Item"], schema, indexed=not failed))
    elif op in ("DeleteItem", "UpdateItem"):
        out.add(changed_write(request.get("Key", {}), before, None if failed else after, schema,
                              indexed=not failed))
    elif op == "BatchWriteItem":
        unprocessed = answer.get("UnprocessedItems") or {}
        for name, writes in (request.get("RequestItems") or {}).items():
            skipped = len(unprocessed.get(name, []))
            for write in writes[:len(writes) - skipped]:
                if "PutRequest" in write:
                    out.add(item_write(write["PutRequest"]["Item"], schema))
                else:
                    out.add(changed_write(write["DeleteRequest"]["Key"], None, None, schema))
    elif op == "TransactWriteItems":
        for action in request.get("TransactItems", []):
            (kind, body), = action.items()
            if kind == "Put":
                out.add(item_write(body["Item"], schema, indexed=not failed, factor=2))
            else:
                out.add(changed_write(body.get("Key", {}), None, None, schema, factor=2))
    return out


def changed_write(key: Mapping[str, Any], before: Mapping[str, Any] | None,
                  after: Mapping[str, Any] | None, schema: Schema, *, indexed: bool = True,
                  factor: int = 1) -> Units:
    """An update or a delete of the item at ``key``: the larger of ``before`` and ``after`` (1 WRU
    when neither is known), and in each index the entry that went, came or changed."""
    out = Units()
    size = max(item_size(before) if before else 0, item_size(after) if after else 0)
    units = write_units(size) * factor
    out.wru += units
    if schema.keys[0] in key:
        out.keys[("table", _key_text(key[schema.keys[0]]))] += units
    if not indexed:
        return out
    for index in schema.indexes:
        old = index.projected(before, schema.keys) if before else None
        new = index.projected(after, schema.keys) if after else None
        if old is not None and new is not None and all(old[k] == new[k] for k in index.keys):
            entries = [(new, max(item_size(old), item_size(new)))]  # the entry updated in place
        else:  # an entry gone, one come, or one moved (its key changed): a delete and a put
            entries = [(e, item_size(e)) for e in (old, new) if e is not None]
        for entry, entry_size in entries:
            units = write_units(entry_size) * factor
            out.wru += units
            out.keys[(index.name, _key_text(entry[index.keys[0]]))] += units
    return out


# -- the notify herd, per key --------------------------------------------------------------------------

SCOPES = ("record", "job", "node", "app", "shared")


def key_scope(key: str, rid: str, job_id: str, node_marks: Iterable[str], app: str) -> str:
    """Who shares a partition key a post wrote, read off the key itself: its ``record`` (the key
    holds the rid), its ``job`` (the job id), its ``node`` (the node's IP or its 8 hex digits),
    its ``app`` (the app's name as a whole piece of the key), or ``shared`` (none of those: a
    key other posts write too, such as one partition of every job's latest items)."""
    if rid and rid in key:
        return "record"
    if job_id and job_id in key:
        return "job"
    pieces = set(_pieces(key))
    if any(m and (m in pieces or m in key) for m in node_marks):
        return "node"
    if app and app in pieces:
        return "app"
    return "shared"


def _pieces(key: str) -> list[str]:
    out, piece = [], []
    for ch in key:
        if ch.isalnum() or ch in "-_.":
            piece.append(ch)
        else:
            out.append("".join(piece))
            piece = []
    out.append("".join(piece))
    return [p for p in out if p]


@dataclass(frozen=True)
class JobWrites:
    """What one sampled job's posts of one run (``running`` then its result) wrote, per key."""

    kind: str  # backup | expire
    keys: Mapping[tuple[str, str], float]  # (space, key) -> WRU
    scopes: Mapping[tuple[str, str], str]  # (space, key) -> one of SCOPES


@dataclass(frozen=True)
class KeyLoad:
    """One key's modelled load in one second."""

    space: str
    key: str
    scope: str
    wru_per_second: float
    second: int


def key_rates(sample: Sequence[JobWrites]) -> dict[tuple[str, str, str], tuple[str, float]]:
    """``{(kind, space, key-or-scope): (scope, WRU per job of that kind)}``: how much each job of
    a kind puts, on average, on each key its kind writes. Keys of one record, job, node or app are
    told apart from the sampled ones (another job has another key), so they are pooled by scope:
    the rate is what one job puts on its own such key; a shared key's rate is averaged over every
    sampled job of the kind (those that did not write it put 0 on it)."""
    jobs = Counter(s.kind for s in sample)
    pooled: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    scope_of: dict[tuple[str, str, str], str] = {}
    for s in sample:
        for (space, key), wru in s.keys.items():
            scope = s.scopes[(space, key)]
            name = key if scope == "shared" else f"<{scope}>"
            pooled[(s.kind, space, name)].append(wru)
            scope_of[(s.kind, space, name)] = scope
    out = {}
    for (kind, space, name), values in pooled.items():
        scope = scope_of[(kind, space, name)]
        per_job = sum(values) / jobs[kind] if scope == "shared" else max(values)
        out[(kind, space, name)] = (scope, per_job)
    return out


def key_peaks(sample: Sequence[JobWrites], crowds: Mapping[str, Mapping[int, int]],
              nodes: int, apps: int) -> list[KeyLoad]:
    """The busiest second of each key (or kind of key), modelled: ``crowds[kind]`` is how many jobs
    of a kind start in each second (:func:`chalicelib.core.spread.crowd`) and post both their
    records in it. A shared key takes every starting job's share; a node's key the jobs starting
    on one node (the crowd spread evenly over ``nodes``); an app's key one app's (over ``apps``); a
    record's or a job's key one job's. Busiest first."""
    rates = key_rates(sample)
    seconds = sorted({s for crowd in crowds.values() for s in crowd})
    loads: dict[tuple[str, str], KeyLoad] = {}
    for second in seconds:
        per_key: dict[tuple[str, str], float] = defaultdict(float)
        scope_of: dict[tuple[str, str], str] = {}
        for (kind, space, name), (scope, per_job) in rates.items():
            starting = crowds.get(kind, {}).get(second, 0)
            if not starting:
                continue
            sharers = {"shared": starting, "node": math.ceil(starting / max(nodes, 1)),
                       "app": math.ceil(starting / max(apps, 1))}.get(scope, 1)
            per_key[(space, name)] += sharers * per_job
            scope_of[(space, name)] = scope
        for key, load in per_key.items():
            if key not in loads or load > loads[key].wru_per_second:
                loads[key] = KeyLoad(key[0], key[1], scope_of[key], load, second)
    return sorted(loads.values(), key=lambda k: -k.wru_per_second)


def peak_requests(crowds: Mapping[str, Mapping[int, int]], posts_per_job: int = 2) -> tuple[int, int]:
    """(the most notify posts in one second, that second): every starting job posts
    ``posts_per_job`` records in its starting second."""
    total: Counter[int] = Counter()
    for crowd in crowds.values():
        for second, jobs in crowd.items():
            total[second] += jobs * posts_per_job
    if not total:
        return 0, 0
    second, posts = max(total.items(), key=lambda kv: (kv[1], -kv[0]))
    return posts, second


def concurrency(requests_per_second: float, seconds_per_request: float) -> float:
    """Lambda executions in flight at that rate (Little's law: arrivals times time in system)."""
    return requests_per_second * seconds_per_request


# -- the bill ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prices:
    """us-east-1 list prices, no free tier."""

    lambda_gb_second: float = 0.0000166667
    lambda_request: float = 0.20 / 1e6
    api_request: float = 3.50 / 1e6  # REST API, first 333 million a month
    http_api_request: float = 1.00 / 1e6  # HTTP API, first 300 million a month
    function_url_request: float = 0.0  # a Lambda function URL: only the invocation is billed
    wru: float = 0.625 / 1e6  # on-demand
    rru: float = 0.125 / 1e6
    storage_gb_month: float = 0.25
    log_gb: float = 0.50  # CloudWatch Logs, ingested


@dataclass(frozen=True)
class Post:
    """One kind of notify post as counted: its units, its log bytes and its billed seconds."""

    name: str
    per_month: float
    wru: float
    rru: float
    log_bytes: float
    seconds: float


@dataclass(frozen=True)
class Workload:
    """A month of one cluster: the notify posts by kind, the scheduled runs, what is stored."""

    nodes: int
    jobs: int
    posts: tuple[Post, ...]
    run_seconds: float
    run_wru: float
    run_rru: float
    run_log_bytes: float
    api_memory_mb: int
    reconcile_memory_mb: int
    storage_bytes: float
    runs: int = RUNS_PER_MONTH
    platform_log_bytes: int = 0  # Lambda's own START/END/REPORT lines, per invocation
    ingress: str = "rest"  # what the daemons post through: rest | http-api | function-url
    notify_memory_mb: int = 0  # the function serving the posts (0: the API function's)
    notify_platform_log_bytes: int | None = None  # its platform lines per post (None: as any)


@dataclass(frozen=True)
class Line:
    what: str
    quantity: float
    unit: str
    price: float  # per unit
    dollars: float


def monthly_posts(nodes: int, jobs: int, *, posts_per_run: int = 2, runs_per_day: float = 1,
                  expire_runs_per_day: int = 24 * 60) -> dict[str, float]:
    """Notify posts a month: every backup job's runs (``running`` and the result each), and every
    node's every-minute expire job (its two records)."""
    return {"backup": jobs * runs_per_day * posts_per_run * DAYS_PER_MONTH,
            "expire": nodes * expire_runs_per_day * posts_per_run * DAYS_PER_MONTH}


FULL_VCPU_MB = 1769  # Lambda gives a function one vCPU at 1,769 MB, and CPU in proportion to memory
INGRESSES = {"rest": ("API Gateway REST", "api_request"),
             "http-api": ("API Gateway HTTP API", "http_api_request"),
             "function-url": ("Lambda function URL", "function_url_request")}


def lambda_seconds(cpu_seconds: float, wait_seconds: float, memory_mb: int) -> float:
    """An invocation's duration at ``memory_mb``: its CPU time measured on a full core, stretched
    below 1,769 MB (a share of a vCPU), plus the time it waits on calls."""
    return cpu_seconds * max(1.0, FULL_VCPU_MB / memory_mb) + wait_seconds


def gb_seconds(memory_mb: int, seconds: float) -> float:
    """Lambda's GB-s of one invocation: its memory times its duration, billed by the started ms."""
    return memory_mb / 1024 * math.ceil(seconds * 1000) / 1000


def bill(w: Workload, prices: Prices = Prices()) -> list[Line]:
    """The month's lines, each a quantity times a unit price; :func:`total` adds them up."""
    posts = sum(p.per_month for p in w.posts)
    invocations = posts + w.runs
    memory = w.notify_memory_mb or w.api_memory_mb
    notify_gb_s = sum(p.per_month * gb_seconds(memory, p.seconds) for p in w.posts)
    run_gb_s = w.runs * gb_seconds(w.reconcile_memory_mb, w.run_seconds)
    wru = sum(p.per_month * p.wru for p in w.posts) + w.runs * w.run_wru
    rru = sum(p.per_month * p.rru for p in w.posts) + w.runs * w.run_rru
    post_platform = (w.platform_log_bytes if w.notify_platform_log_bytes is None
                     else w.notify_platform_log_bytes)
    log_gb = (sum(p.per_month * p.log_bytes for p in w.posts) + w.runs * w.run_log_bytes
              + posts * post_platform + w.runs * w.platform_log_bytes) / 1e9
    storage_gb = w.storage_bytes / 1e9
    ingress, price_name = INGRESSES[w.ingress]
    ingress_price = getattr(prices, price_name)
    return [
        Line(f"Notify ingress: {ingress} (notify posts)", posts, "request", ingress_price,
             posts * ingress_price),
        Line("Lambda requests (posts + scheduled runs)", invocations, "request",
             prices.lambda_request, invocations * prices.lambda_request),
        Line(f"Lambda notify GB-s ({memory} MB)", notify_gb_s, "GB-s",
             prices.lambda_gb_second, notify_gb_s * prices.lambda_gb_second),
        Line(f"Lambda scheduled GB-s ({w.reconcile_memory_mb} MB x {w.run_seconds:.2f} s x "
             f"{w.runs:,})", run_gb_s, "GB-s", prices.lambda_gb_second,
             run_gb_s * prices.lambda_gb_second),
        Line("DynamoDB write units", wru, "WRU", prices.wru, wru * prices.wru),
        Line("DynamoDB read units", rru, "RRU", prices.rru, rru * prices.rru),
        Line("DynamoDB storage", storage_gb, "GB-month", prices.storage_gb_month,
             storage_gb * prices.storage_gb_month),
        Line("CloudWatch Logs ingested", log_gb, "GB", prices.log_gb, log_gb * prices.log_gb),
    ]


def total(lines: Iterable[Line]) -> float:
    return sum(line.dollars for line in lines)


def stored_bytes(item: Mapping[str, Any], schema: Schema) -> int:
    """Bytes DynamoDB bills as stored for one item (wire form): the item and each index entry it
    makes, each with its 100 bytes of overhead."""
    size = item_size(item) + STORAGE_OVERHEAD_BYTES
    for index in schema.indexes:
        projected = index.projected(item, schema.keys)
        if projected is not None:
            size += item_size(projected) + STORAGE_OVERHEAD_BYTES
    return size


def retained(per_day: float, fixed: float, days: float) -> float:
    """Bytes kept after ``days`` of records at ``per_day`` bytes a day, plus what does not grow."""
    return fixed + per_day * days
