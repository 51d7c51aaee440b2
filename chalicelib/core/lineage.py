"""History follows the item across a job-ID change. Pure: no I/O.

A job's ID is the md5 of what is pushed, its schedule included (:mod:`chalicelib.core.jobs`), so
editing a schedule, ``SPREAD_SECONDS`` or an ``H`` that resolves differently gives the same item
(app, proc, volume, instance) on the same node a new ID. Everything kept per job (its newest run,
success and good success, the size baseline of the next success, its pause) would start afresh
under it. A reconcile that pushes a node knows the node's list as last pushed and the new one:
:func:`successors` says which new job continues which old one, and the run carries the old job's
kept runs over to the new ID once (:meth:`chalicelib.edges.records.RecordStore.carry`), under the
same "newest wins" rule as every write of them (:func:`merged`).

Only the same node: the archives of an item are listed and restored per node (namespace), so an
instance that moved to another node starts its history there afresh, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib.core.gotime import sort_key
from chalicelib.core.jobs import BACKUP_ACTION
from chalicelib.core.types import Job

ItemKey = tuple[str, str, str, int]  # app, full proc name, volume as written, instance number


def item_of(job: Mapping[str, Any]) -> ItemKey | None:
    """The item a backup job backs up, or None for any other job (the expire job, a job with no
    ID or with args that do not say)."""
    args = job.get("args")
    if job.get("action") != BACKUP_ACTION or not job.get("id") or not isinstance(args, Mapping):
        return None
    app, proc, volume, instance = (args.get(k) for k in ("app", "proc", "volume", "instanceNo"))
    if not (isinstance(app, str) and isinstance(proc, str) and isinstance(volume, str)
            and isinstance(instance, int) and not isinstance(instance, bool)):
        return None
    return app, proc, volume, instance


def successors(old: Iterable[Job], new: Iterable[Job]) -> dict[str, str]:
    """``{new ID: old ID}`` of one node: each backup job of ``new`` whose ID ``old`` did not hold
    and whose item exactly one job of ``old`` backed up, under an ID ``new`` no longer holds.
    An item with two IDs on either side (never generated so; a list kept from a bug) is left
    alone rather than guessed; the items of different apps never meet (the app is in the key)."""
    old_ids: dict[ItemKey, set[str]] = {}
    new_ids: dict[ItemKey, set[str]] = {}
    for jobs, into in ((old, old_ids), (new, new_ids)):
        for job in jobs:
            item = item_of(job)
            if item is not None:
                into.setdefault(item, set()).add(str(job["id"]))
    before = {i for ids in old_ids.values() for i in ids}
    after = {i for ids in new_ids.values() for i in ids}
    out: dict[str, str] = {}
    for item, ids in new_ids.items():
        was = old_ids.get(item, set())
        if len(ids) == 1 and len(was) == 1:
            (now,), (then,) = ids, was
            if now != then and now not in before and then not in after:
                out[now] = then
    return out


def merged(older: Mapping[str, Mapping[str, Any]], newer: Mapping[str, Mapping[str, Any]]
           ) -> dict[str, Any]:
    """A job's kept runs (``{"last"|"success"|"good": run}``) with those of the job it continues:
    of each kind the newer run (by start, then rid: the order the store keeps them in) wins."""
    out: dict[str, Any] = dict(newer)
    for kind, run in older.items():
        mine = out.get(kind)
        if mine is None or _order(run) > _order(mine):
            out[kind] = run
    return out


def _order(run: Mapping[str, Any]) -> str:
    try:
        return sort_key(str(run.get("start", "")), str(run.get("rid", "")))
    except ValueError:
        return ""
