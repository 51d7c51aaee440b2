"""Job records in DynamoDB: each record a fact, written once and finished once; the queries routes need.

Each record is one item keyed by its rid (``RID#<rid>``/``RECORD``). The first post of a run fixes
what the run is (owner app, job id, action, args, start: its *identity*); later posts may only add
the outcome. So, as single conditional writes:

* a new rid is stored;
* ``success``/``failed`` replaces ``running`` only when the identity matches;
* anything else is either harmless (an identical repeat, or a ``running`` post that arrives after
  the result, which the daemons really do) and answered as unchanged, or a contradiction (another
  owner or job for the rid, a second and different result) and refused with 409, changing nothing.

The record is kept verbatim (``record``, JSON) so answers carry the daemon's field names and Go
time strings. Index ``gsi1`` serves "newest records of an app in a month"; each backup job's newest
record and newest success are also kept in the ``JOBLAST`` partition, so the freshness of every
job is one Query. Nothing scans.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from logging import WARNING
from typing import Any

from chalicelib.core.formats.recordschema import identity, record_app
from chalicelib.core.gotime import parse_go_time, sort_key
from chalicelib.core.jobs import BACKUP_ACTION
from chalicelib.core.retention import archive_of
from chalicelib.core.sizes import Baseline, Judgment, archive_size, median, suspect
from chalicelib.core.types import JobRecord, Latest
from chalicelib.edges.dynamo import Dynamo
from chalicelib.edges.table import GSI_BY_APP_MONTH, TTL_ATTRIBUTE
from chalicelib.errors import Conflict, NotFound
from chalicelib.logs import event, log

LATEST = "JOBLAST"  # partition of each job's newest record, newest success, newest good success


def _key(rid: str) -> dict[str, str]:
    return {"pk": f"RID#{rid}", "sk": "RECORD"}


class RecordStore:
    """Records on a DynamoDB ``Table`` resource (passed in: tests use moto, the app the real one)."""

    def __init__(self, table: Any, retention_days: int = 0) -> None:
        self.db = Dynamo(table)
        self.retention_days = retention_days

    def baseline(self, job_id: str) -> Baseline:
        """What the job's next success is judged against (:func:`chalicelib.core.sizes.judge`):
        its recent good sizes, and the streak of agreeing suspect sizes on its newest success."""
        good = self.db.get({"pk": LATEST, "sk": f"{job_id}#good"}) or {}
        latest = self.db.get({"pk": LATEST, "sk": f"{job_id}#success"}) or {}
        return Baseline(tuple(int(s) for s in good.get("sizes", [])),
                        tuple(int(s) for s in latest.get("streak", [])) if latest.get("suspect")
                        else ())

    def put(self, record: JobRecord, judgment: Judgment | None = None) -> bool:
        """Store a validated record, with the controller's ``judgment`` of a backup's success;
        False if it changed nothing, :class:`Conflict` if it contradicts the stored one."""
        state = record["state"]
        judged = judgment if judgment is not None and state == "success" else Judgment()
        item = record_item(record, judged.suspect, self.retention_days)
        key, ident = item["gsi1sk"], item["ident"]
        if state == "running":
            stored = self.db.put_if(item, "attribute_not_exists(pk)")
        else:
            stored = self.db.put_if(
                item, "attribute_not_exists(pk) OR (#s = :running AND ident = :ident)",
                {":running": "running", ":ident": ident}, {"#s": "state"})
        if not stored:
            stored = self._resolve(item, record)
        if stored and record["action"] == BACKUP_ACTION and record["id"]:
            self._put_latest(record, key, "last", judged.suspect)
            if state == "success":
                self._put_latest(record, key, "success", judged.suspect,
                                 run=list(judged.streak) if judged.suspect else None)
            if state == "success" and not judged.suspect:  # the newest *good* backup, its sizes
                self._put_latest(record, key, "good", "", list(judged.good_sizes))
        return stored

    def _resolve(self, item: dict[str, Any], record: JobRecord) -> bool:
        """The conditional write failed: a harmless repeat (False), or a contradiction (409)."""
        rid = record["rid"]
        existing = self.db.get(_key(rid), consistent=True)
        if existing is None:  # gone between the two calls (TTL): write it again
            return self.db.put_if(item, "attribute_not_exists(pk)")
        before = json.loads(existing["record"])
        if identity(before) != item["ident"]:
            event(log, "notify_refused", level=WARNING, reason="identity", rid=rid, app=item["app"],
                  stored_app=existing.get("app"), id=record.get("id"), stored_id=before.get("id"))
            raise Conflict(f"record {rid} belongs to app {existing.get('app')} "
                           f"(job {before.get('id') or before.get('action')}, started "
                           f"{before.get('start')}); a post that says otherwise is refused",
                           code="record_conflict")
        if record["state"] == "running" or before == record:
            return False  # a repeat, or the daemon's late "running" after the result
        if existing.get("state") == "running" and "ident" not in existing:  # written before idents
            return self.db.put_if(item, "#s = :running AND attribute_not_exists(ident)",
                                  {":running": "running"}, {"#s": "state"})
        event(log, "notify_refused", level=WARNING, reason="finished", rid=rid, app=item["app"],
              stored_state=before.get("state"), state=record["state"])
        raise Conflict(f"record {rid} already finished as {before.get('state')} at "
                       f"{before.get('end')}; a different {record['state']} post for it is refused",
                       code="record_finished")

    def _put_latest(self, record: JobRecord, key: str, kind: str, flag: str = "",
                    sizes: list[int] | None = None, run: list[int] | None = None) -> None:
        """Keep the job's newest record (``last``), newest success and newest good success, so
        freshness of every job is one Query; same ordering rule: a late ``running`` never replaces
        its own result. ``flag`` says why a success is suspect; ``sizes`` are the recent good
        successes' sizes (kept on ``good``)."""
        item: dict[str, Any] = {"pk": LATEST, "sk": f"{record['id']}#{kind}", "skey": key,
                                "state": record["state"], "record": json.dumps(record)}
        if flag:
            item["suspect"] = flag
        if sizes is not None:
            item["sizes"] = sizes
        if run:
            item["streak"] = run
        if record["state"] == "running":
            condition = "attribute_not_exists(pk) OR skey < :k"
            values: dict[str, Any] = {":k": key}
        else:
            condition = "attribute_not_exists(pk) OR skey < :k OR (skey = :k AND #s = :running)"
            values = {":k": key, ":running": "running"}
        self.db.put_if(item, condition, values, {"#s": "state"} if "#s" in condition else None)

    def latest_by_job(self) -> Latest:
        """``{job id: {"last": record, "success": record}}`` for every job with a record."""
        out: Latest = {}
        for item in self.db.query(LATEST):
            job_id, _, kind = item["sk"].rpartition("#")
            out.setdefault(job_id, {})[kind] = _with_flag(item)
        return out

    def accept_size(self, job_id: str) -> dict[str, Any]:
        """Take the job's latest success as its good baseline now: it becomes the newest good
        success, the recent sizes are its size alone, and its suspect flag goes from the job's
        latest items (the record itself keeps what was judged when it came). 409 when the job has
        no success, or its latest one has no size or is 0 bytes."""
        latest = self.db.get({"pk": LATEST, "sk": f"{job_id}#success"}, consistent=True)
        if not latest:
            raise Conflict(f"job {job_id} has no successful backup on record: there is no size "
                           "to accept (run it: actions/run)", code="no_success")
        record = json.loads(latest["record"])
        size = archive_size(record.get("result"))
        if size is None:
            raise Conflict(f"the latest success of job {job_id} (record {record['rid']}, started "
                           f"{record.get('start')}): {suspect(record.get('result'), [], 0)}, "
                           "which cannot be a baseline; accept a success with an archive (run "
                           "the job again: actions/run)", code="no_size")
        good = self.db.get({"pk": LATEST, "sk": f"{job_id}#good"}, consistent=True) or {}
        before = median([int(s) for s in good.get("sizes", [])])
        skey = latest["skey"]
        clean = {k: v for k, v in latest.items() if k not in ("suspect", "streak")}
        self.db.put_if({**clean, "sk": f"{job_id}#good", "sizes": [size]},
                       "attribute_not_exists(pk) OR skey <= :k", {":k": skey})
        self.db.put_if(clean, "skey = :k", {":k": skey})
        last = self.db.get({"pk": LATEST, "sk": f"{job_id}#last"}, consistent=True)
        if last and last.get("skey") == skey and last.get("suspect"):
            self.db.put_if({k: v for k, v in last.items() if k != "suspect"}, "skey = :k",
                           {":k": skey})
        event(log, "size_accepted", job=job_id, rid=record["rid"], accepted_size=size,
              previous_median=before)
        return {"job": job_id, "accepted_size": size, "record": record["rid"],
                "previous_median": before or None}

    def goods(self, job_ids: list[str]) -> dict[str, JobRecord]:
        """``{job id: its newest good success}`` of those of ``job_ids`` that have one, as last
        written (one BatchGetItem per 100 jobs); ``gone`` says why its archive is known deleted."""
        keys = [{"pk": LATEST, "sk": f"{j}#good"} for j in dict.fromkeys(job_ids)]
        return {i["sk"].rpartition("#")[0]: _with_flag(i)
                for i in self.db.get_many(keys, consistent=True)}

    def mark_gone(self, job_id: str, file: str, why: str) -> bool:
        """Mark the job's newest good success as no good any more: its archive ``file`` was
        deleted (``why``). False when that is not (or no longer) the job's newest good success,
        or it is marked already. The next good success replaces the mark."""
        item = self.db.get({"pk": LATEST, "sk": f"{job_id}#good"}, consistent=True)
        if not item or item.get("gone") or archive_of(_with_flag(item)) != file:
            return False
        return self.db.put_if({**item, "gone": why}, "skey = :k AND attribute_not_exists(gone)",
                              {":k": item["skey"]})

    def get(self, app: str, rid: str, *, consistent: bool = False) -> JobRecord:
        """One record of ``app`` (404 if unknown or another app's); ``consistent``: as last
        written, by whichever function wrote it."""
        item = self.db.get(_key(rid), consistent=consistent)
        if not item or item.get("app") != app:
            raise NotFound(f"record {rid!r} of app {app!r} not found", code="unknown_record")
        return _with_flag(item)

    def month(self, app: str, year: int, month: int, total: int,
              state: str | None = None) -> list[JobRecord]:
        """The newest ``total`` records of ``app`` started in that month, newest first."""
        items = self.db.query(f"{app}#{year:04d}-{month:02d}", index=GSI_BY_APP_MONTH,
                              newest_first=True, limit=total, state=state)
        return [_with_flag(i) for i in items]

    def window(self, app: str, start: datetime, end: datetime, limit: int) -> list[JobRecord]:
        """The records of ``app`` started from ``start`` to ``end``, oldest first, at most
        ``limit``: one Query per month of the window on ``gsi1``, the first one keyed from
        ``start`` (nothing before the window is read)."""
        out: list[JobRecord] = []
        month, after = date(start.year, start.month, 1), f"{start:%Y-%m-%dT%H:%M:%S}"
        while month <= end.date() and len(out) < limit:
            for item in self.db.query(f"{app}#{month:%Y-%m}", index=GSI_BY_APP_MONTH,
                                      after=after, limit=limit - len(out)):
                out.append(_with_flag(item))
            month, after = (month + timedelta(days=31)).replace(day=1), ""
        return out

    def backup(self, name: str) -> dict[str, Any]:
        """An on-demand DynamoDB backup of the whole table."""
        desc = self.db.create_backup(name)
        return {"backup": desc["BackupName"], "arn": desc["BackupArn"],
                "status": desc.get("BackupStatus", "")}


def record_item(record: JobRecord, suspect: str = "", retention_days: int = 0) -> dict[str, Any]:
    """A record's item: keyed by its rid, in its app-month on ``gsi1``, with its identity (what
    its first post fixed), the controller's judgment, and its TTL when records are not kept
    forever."""
    rid = record["rid"]
    key = sort_key(record["start"], rid)
    app = record_app(record)
    item: dict[str, Any] = {**_key(rid), "rid": rid, "app": app, "state": record["state"],
                            "ident": identity(record), "gsi1pk": f"{app}#{key[:7]}", "gsi1sk": key,
                            "record": json.dumps(record)}
    if retention_days:
        expires = parse_go_time(record["start"])[0] + timedelta(days=retention_days)
        item[TTL_ATTRIBUTE] = int(expires.timestamp())
    if suspect:
        item["suspect"] = suspect
    return item


def _with_flag(item: dict[str, Any]) -> JobRecord:
    """The stored record as the daemon posted it, with ``suspect`` (why) if the controller judged
    the success suspicious, and ``gone`` (why) if its archive is known deleted."""
    record: JobRecord = json.loads(item["record"])
    if item.get("suspect"):
        record["suspect"] = item["suspect"]
    if item.get("gone"):
        record["gone"] = item["gone"]
    return record
