"""Restore operations in DynamoDB: each one item, moved by conditional writes on its version, and
one lock per target so that at most one operation restores into a dir at a time.

* operation   ``OP#<app>`` / ``<id>`` (ids sort by creation time): ``op`` (JSON), ``phase``,
              ``version``, ``lock`` (its lock's key, readable even when ``op`` is not)
* by run      ``OPRID#<rid>`` / ``OP`` → the operation's app and id, and what the run is for
* open ones   ``OPOPEN`` / ``<app>#<id>`` while it is not finished (the schedule looks at these)
* target lock ``OPLOCK#<node>#<dir>`` / ``LOCK`` → the open operation restoring into that dir
* undo        ``UNDO`` / ``<made>#<node>#<dir>#<app>#<id>`` → an operation's pre-restore snapshot,
              kept ``UNDO_DAYS`` (as set now) after it was made by the retention floor, which
              reads the ones made since then: one Query a run; gone by TTL with the operation
* drill job   ``DRILLJOB`` / ``<app>#<id>`` → an open drill's proof job and its node: the reconcile
              adds it to that node's list (one Query a run); gone with the drill's lock
* drilled     ``DRILLED`` / ``<app>#<proc>#<volume>#<instance>`` → the item's newest drill result
              and when a drill last verified it (one Query for every status)
* budget      ``DRILLBUDGET`` / ``<night>`` → bytes the scheduler's drills took that night;
              ``DRILLBUDGET`` / ``UNCOVERABLE`` → the items the budget cannot cover in a cycle

A drill's lock is its node's drill root (:attr:`RestorePlan.lock_dir`): one drill per node.

Creating an operation (its item, its open marker and its lock) and finishing one (its item, the
marker and the lock gone) are each one transaction: a lock is never left behind by a crash
between two writes, and two requests on two Lambdas cannot both take it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from chalicelib.core import drill
from chalicelib.core.gotime import format_time, parse_go_time
from chalicelib.core.operation import Operation, parse, snapshot_taken
from chalicelib.core.retention import Undo
from chalicelib.core.types import Job
from chalicelib.edges.dynamo import Dynamo, Write
from chalicelib.edges.table import TTL_ATTRIBUTE

RETENTION_DAYS = 400
OPEN = "OPOPEN"
UNDO = "UNDO"
DRILL_JOBS, DRILLED, BUDGET = "DRILLJOB", "DRILLED", "DRILLBUDGET"
UNCOVERABLE = "UNCOVERABLE"  # the budget partition's item of the items no night can fit


class Unreadable(ValueError):
    """A stored operation that cannot be read (malformed, or written by a newer controller)."""

    def __init__(self, app: str, op_id: str, reason: str, phase: str = "", lock: str = "") -> None:
        super().__init__(reason)
        self.app, self.op_id, self.reason, self.phase, self.lock = app, op_id, reason, phase, lock


class LockHeld(Exception):
    """Another open operation restores into the same dir (its app and id)."""

    def __init__(self, app: str, op_id: str) -> None:
        super().__init__(f"{app}/{op_id}")
        self.app, self.op_id = app, op_id


def lock_key(node: str, target_dir: str) -> dict[str, str]:
    return {"pk": f"OPLOCK#{node}#{target_dir}", "sk": "LOCK"}


class OperationStore:
    def __init__(self, table: Any, undo_days: float = 0) -> None:
        self.db = Dynamo(table)
        self.undo = timedelta(days=undo_days)

    @staticmethod
    def _key(app: str, op_id: str) -> dict[str, str]:
        return {"pk": f"OP#{app}", "sk": op_id}

    def _item(self, op: Operation, now: datetime) -> dict[str, Any]:
        return {**self._key(op.app, op.id), "op": json.dumps(op.to_dict()), "phase": op.phase.value,
                "version": op.version, "lock": lock_key(op.plan.node, op.plan.lock_dir)["pk"],
                TTL_ATTRIBUTE: _expires(now)}

    def create(self, op: Operation, now: datetime) -> None:
        """Store a new operation with its open marker and its target's lock, all or nothing;
        :class:`LockHeld` naming the holder when another open operation has the lock."""
        lock = lock_key(op.plan.node, op.plan.lock_dir)
        writes = [
            Write("put", {**lock, "app": op.app, "op_id": op.id}, "attribute_not_exists(pk)"),
            Write("put", self._item(op, now)),
            Write("put", {"pk": OPEN, "sk": f"{op.app}#{op.id}"}),
        ]
        if op.plan.is_drill:
            p = op.plan
            job = drill.proof_job(p.node, p.app, p.proc, p.instance, p.target_archive, p.dest_dir,
                                  p.increment)
            writes.append(Write("put", {"pk": DRILL_JOBS, "sk": f"{op.app}#{op.id}", "node": p.node,
                                        "job": json.dumps(job), TTL_ATTRIBUTE: _expires(now)}))
        failed = self.db.transact(writes)
        if failed is not None:
            holder = self.db.get(lock, consistent=True) or {}
            raise LockHeld(str(holder.get("app", "")), str(holder.get("op_id", "")))

    def get(self, app: str, op_id: str) -> Operation | None:
        """The operation, as last written; :class:`Unreadable` when its item cannot be read."""
        item = self.db.get(self._key(app, op_id), consistent=True)
        return _read(item, app, op_id) if item else None

    def of_app(self, app: str, total: int) -> list[Operation | Unreadable]:
        out: list[Operation | Unreadable] = []
        for item in self.db.query(f"OP#{app}", newest_first=True, limit=total):
            try:
                out.append(_read(item, app, item["sk"]))
            except Unreadable as e:
                out.append(e)
        return out

    def open_ones(self) -> list[tuple[str, str]]:
        """(app, id) of every operation not finished yet."""
        out = []
        for item in self.db.query(OPEN):
            app, _, op_id = item["sk"].partition("#")
            out.append((app, op_id))
        return out

    def undos(self, now: datetime) -> list[Undo]:
        """The pre-restore snapshots still to be kept: made less than ``UNDO_DAYS`` ago."""
        if not self.undo:
            return []
        out = []
        for item in self.db.query(UNDO, after=format_time(now - self.undo)):
            try:
                made, node, rest = item["sk"].split("#", 2)
                target, app, op_id = rest.rsplit("#", 2)
                taken = parse_go_time(made)[0]
            except (KeyError, ValueError):
                continue  # not one this controller wrote: nothing to keep for it
            out.append(Undo(node, target, str(item.get("file", "")), taken, taken + self.undo,
                            app, op_id))
        return out

    def drill_jobs(self) -> dict[str, list[Job]]:
        """The proof jobs of the open drills, per node (in the order the drills were made)."""
        out: dict[str, list[Job]] = {}
        for item in self.db.query(DRILL_JOBS):
            try:
                out.setdefault(str(item["node"]), []).append(json.loads(item["job"]))
            except (KeyError, TypeError, ValueError):
                continue  # not one this controller wrote: nothing to push for it
        return out

    def drilled(self) -> dict[str, drill.Result]:
        """Every item's newest drill result, by its key."""
        out = {}
        for item in self.db.query(DRILLED):
            try:
                out[str(item["sk"])] = drill.Result(**json.loads(item["result"]))
            except (KeyError, TypeError, ValueError):
                continue
        return out

    def drilled_one(self, key: str) -> drill.Result | None:
        """The item's newest drill result (None: none, or not readable)."""
        item = self.db.get({"pk": DRILLED, "sk": key}, consistent=True)
        try:
            return drill.Result(**json.loads(item["result"])) if item else None
        except (KeyError, TypeError, ValueError):
            return None

    def remember_drill(self, key: str, result: drill.Result) -> drill.Result:
        """Keep ``result`` as the item's newest drill, carrying when it was last verified and
        the last file an increment drill sampled."""
        before = self.drilled_one(key)
        verified_at = result.at if result.outcome == drill.VERIFIED else ""
        kept = replace(result, verified_at=verified_at or (before.verified_at if before else ""),
                       sample_after=result.sample_after or (before.sample_after if before else ""))
        self.db.put({"pk": DRILLED, "sk": key, "result": json.dumps(_result_fields(kept))})
        return kept

    def uncoverable(self) -> list[dict[str, Any]]:
        """The items the drill scheduler last found it can never cover within the cycle."""
        item = self.db.get({"pk": BUDGET, "sk": UNCOVERABLE})
        try:
            return list(json.loads(item["items"])) if item else []
        except (KeyError, TypeError, ValueError):
            return []

    def note_uncoverable(self, items: list[dict[str, Any]]) -> None:
        """Keep what the scheduler found uncoverable (written only when it changed)."""
        if items == self.uncoverable():
            return
        if items:
            self.db.put({"pk": BUDGET, "sk": UNCOVERABLE, "items": json.dumps(items)})
        else:
            self.db.delete({"pk": BUDGET, "sk": UNCOVERABLE})

    def spent(self, night: str) -> int:
        item = self.db.get({"pk": BUDGET, "sk": night}, consistent=True)
        return int(item.get("bytes", 0)) if item else 0

    def spend(self, night: str, size: int, now: datetime) -> None:
        self.db.put({"pk": BUDGET, "sk": night, "bytes": self.spent(night) + size,
                     TTL_ATTRIBUTE: int((now + timedelta(days=30)).timestamp())})

    def by_run(self, rid: str) -> tuple[str, str] | None:
        """(app, id) of the operation that asked for the daemon run ``rid``."""
        item = self.db.get({"pk": f"OPRID#{rid}", "sk": "OP"})
        return (item["app"], item["op_id"]) if item else None

    def lock_holder(self, node: str, target_dir: str) -> tuple[str, str] | None:
        item = self.db.get(lock_key(node, target_dir), consistent=True)
        return (str(item.get("app", "")), str(item.get("op_id", ""))) if item else None

    def move(self, before: Operation, after: Operation, now: datetime) -> Operation | None:
        """Store ``after`` if the stored operation is still ``before`` (its version): the stored
        operation (version bumped), or None when another writer moved it first. New record ids
        are indexed in the same transaction; a finished operation leaves the open ones and gives
        its lock back."""
        stored = _bump(after, before.version + 1)
        writes = [Write("put", self._item(stored, now),
                        "#ver = :v" if before.version else "attribute_not_exists(#ver) OR #ver = :v",
                        {":v": before.version}, {"#ver": "version"})]
        for purpose, run in (("snapshot", after.snapshot), ("restore", after.restore),
                             ("verify", after.verify)):
            known = getattr(before, purpose)
            if run and run.rid and (known is None or known.rid != run.rid):
                writes.append(Write("put", {"pk": f"OPRID#{run.rid}", "sk": "OP", "app": after.app,
                                            "op_id": after.id, "purpose": purpose,
                                            TTL_ATTRIBUTE: _expires(now)}))
        taken = None if after.plan.is_drill else snapshot_taken(after)  # a drill undoes nothing
        if taken is not None and not (before.snapshot and before.snapshot.file):
            writes.append(Write("put", {
                "pk": UNDO, "sk": f"{format_time(taken)}#{after.plan.node}#{after.plan.target_dir}"
                                  f"#{after.app}#{after.id}",
                "file": after.snapshot.file if after.snapshot else "", TTL_ATTRIBUTE: _expires(now)}))
        if after.finished:
            writes += self._release(after.app, after.id, lock_key(after.plan.node,
                                                                  after.plan.lock_dir)["pk"])
        return stored if self.db.transact(writes) is None else None

    def forget_open(self, app: str, op_id: str) -> None:
        """Drop the open marker of an operation that is finished or gone."""
        self.db.delete({"pk": OPEN, "sk": f"{app}#{op_id}"})

    def fail_unreadable(self, e: Unreadable, now: datetime) -> bool:
        """Mark an operation whose item cannot be read as failed (its ``phase`` and ``error``
        attributes; ``op`` is kept as it was for whoever looks), out of the open ones, its lock
        given back. False when the item changed meanwhile."""
        item = self.db.get(self._key(e.app, e.op_id), consistent=True)
        if item is None:
            self.forget_open(e.app, e.op_id)
            return True
        writes = [Write("put", {**item, "phase": "Failed", "unreadable": e.reason,
                                TTL_ATTRIBUTE: _expires(now)},
                        "attribute_not_exists(unreadable)")]
        return self.db.transact(writes + self._release(e.app, e.op_id, str(item.get("lock", "")))) \
            is None

    def _release(self, app: str, op_id: str, lock_pk: str) -> list[Write]:
        writes = [Write("delete", {"pk": OPEN, "sk": f"{app}#{op_id}"}),
                  Write("delete", {"pk": DRILL_JOBS, "sk": f"{app}#{op_id}"})]  # a drill's, if any
        if lock_pk:
            writes.append(Write("delete", {"pk": lock_pk, "sk": "LOCK"},
                                "attribute_not_exists(pk) OR op_id = :me", {":me": op_id}))
        return writes


def _result_fields(result: drill.Result) -> dict[str, Any]:
    """A drill result as stored: its fields, not what is derived from them."""
    return {k: v for k, v in result.to_dict().items() if k != "throughput"}


def _expires(now: datetime) -> int:
    return int((now + timedelta(days=RETENTION_DAYS)).timestamp())


def _bump(op: Operation, version: int) -> Operation:
    return replace(op, version=version)


def _read(item: dict[str, Any], app: str, op_id: str) -> Operation:
    phase = str(item.get("phase", ""))
    if item.get("unreadable"):
        raise Unreadable(app, op_id, str(item["unreadable"]), phase, str(item.get("lock", "")))
    try:
        op = parse(json.loads(item["op"]))
    except (KeyError, TypeError, ValueError) as e:  # JSONDecodeError is a ValueError
        raise Unreadable(app, op_id, str(e)[:300] or type(e).__name__, phase,
                         str(item.get("lock", ""))) from None
    version = item.get("version")
    return _bump(op, int(version)) if version is not None else op
