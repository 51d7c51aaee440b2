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
from datetime import timedelta
from logging import WARNING
from typing import Any

from chalicelib.core.freshness import SUSPECT_PERCENT, archive_size, median, streak, suspect
from chalicelib.core.gotime import parse_go_time, sort_key
from chalicelib.core.jobs import BACKUP_ACTION
from chalicelib.core.recordschema import identity, record_app
from chalicelib.core.retention import archive_of
from chalicelib.edges import schema
from chalicelib.edges.dynamo import Dynamo
from chalicelib.errors import Conflict, NotFound
from chalicelib.logs import event, log

LATEST = "JOBLAST"  # partition of each job's newest record, newest success, newest good success
RECENT_SIZES = 10  # a success is compared with the sizes of the job's last 10 good ones


def _key(rid: str) -> dict[str, str]:
    return {"pk": f"RID#{rid}", "sk": "RECORD"}


class RecordStore:
    """Records on a DynamoDB ``Table`` resource (passed in: tests use moto, the app the real one)."""

    def __init__(self, table: Any, retention_days: int = 0,
                 suspect_percent: float = SUSPECT_PERCENT, rebaseline_runs: int = 0,
                 alert_url: str = "") -> None:
        self.db = Dynamo(table)
        self.retention_days = retention_days
        self.suspect_percent = suspect_percent
        self.rebaseline_runs = rebaseline_runs  # 0: a new size is only ever accepted by hand
        self.alert_url = alert_url

    def put(self, record: dict[str, Any]) -> bool:
        """Store a validated record; False if it changed nothing, :class:`Conflict` if it
        contradicts the stored one."""
        rid, state = record["rid"], record["state"]
        key = sort_key(record["start"], rid)
        app, ident = record_app(record), identity(record)
        item: dict[str, Any] = {
            **_key(rid), "rid": rid, "app": app, "state": state, "ident": ident,
            "gsi1pk": f"{app}#{key[:7]}", "gsi1sk": key, "record": json.dumps(record),
        }
        if self.retention_days:
            expires = parse_go_time(record["start"])[0] + timedelta(days=self.retention_days)
            item[schema.TTL_ATTRIBUTE] = int(expires.timestamp())
        backup = record["action"] == BACKUP_ACTION and bool(record["id"])
        sizes: list[int] = []
        run: list[int] = []  # the sizes of the latest suspect successes that agree (a streak)
        rebaselined = False
        if backup and state == "success":
            good = self.db.get({"pk": LATEST, "sk": f"{record['id']}#good"})
            sizes = [int(s) for s in (good or {}).get("sizes", [])]
            reason = suspect(record.get("result"), sizes, self.suspect_percent)
            size = archive_size(record.get("result"))
            if reason and size and self.rebaseline_runs:
                run = streak(self._streak(record["id"]), size, self.suspect_percent)
                rebaselined = len(run) >= self.rebaseline_runs
            if reason and not rebaselined:
                item["suspect"] = reason
        if state == "running":
            stored = self.db.put_if(item, "attribute_not_exists(pk)")
        else:
            stored = self.db.put_if(
                item, "attribute_not_exists(pk) OR (#s = :running AND ident = :ident)",
                {":running": "running", ":ident": ident}, {"#s": "state"})
        if not stored:
            stored = self._resolve(item, record)
        if stored and backup:
            flag = item.get("suspect", "")
            self._put_latest(record, key, "last", flag)
            if state == "success":
                self._put_latest(record, key, "success", flag, run=run if flag else None)
            if state == "success" and not flag:  # the newest *good* backup, and the sizes it sets
                size = (record.get("result") or {}).get("size", 0)
                self._put_latest(record, key, "good", "",
                                 run if rebaselined else [*sizes, int(size)][-RECENT_SIZES:])
            if rebaselined:
                self._rebaselined(record, sizes, run)
        return stored

    def _streak(self, job_id: str) -> list[int]:
        """The agreeing sizes of the job's latest suspect successes, kept on its newest success
        (a good success, or one of no size, keeps none: the count starts again)."""
        latest = self.db.get({"pk": LATEST, "sk": f"{job_id}#success"}) or {}
        return [int(s) for s in latest.get("streak", [])] if latest.get("suspect") else []

    def _rebaselined(self, record: dict[str, Any], sizes: list[int], run: list[int]) -> None:
        """Say once that the job's archives have a new baseline size: a log line, and a webhook
        message when ``ALERT_WEBHOOK_URL`` is set (an undelivered one is logged, not retried)."""
        args = record.get("args") or {}
        where = {"app": args.get("app"), "proc": args.get("proc"), "volume": args.get("volume"),
                 "instance": args.get("instanceNo"), "job": record["id"]}
        event(log, "size_rebaselined", level=WARNING, **where, old_median=median(sizes),
              new_size=run[-1], runs=len(run), rid=record["rid"])
        if not self.alert_url:
            return
        from chalicelib.edges import webhook  # requests, only when there is something to post

        text = (f"backup of {where['app']} {where['proc']} instance {where['instance']} volume "
                f"{where['volume']}: {len(run)} backups in a row were about {run[-1]} bytes, "
                f"against a recent median of {median(sizes)}; that is its new baseline and its "
                "backups count as good again. If the volume did not really shrink, look now.")
        error = webhook.post(self.alert_url, {"text": text, "status": "size_rebaselined", **where,
                                              "old_median": median(sizes), "new_size": run[-1]})
        if error:
            event(log, "alert_failed", level=WARNING, key=record["id"], status="size_rebaselined",
                  error=error)

    def _resolve(self, item: dict[str, Any], record: dict[str, Any]) -> bool:
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

    def _put_latest(self, record: dict[str, Any], key: str, kind: str, flag: str = "",
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

    def latest_by_job(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``{job id: {"last": record, "success": record}}`` for every job with a record."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
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

    def goods(self, job_ids: list[str]) -> dict[str, dict[str, Any]]:
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

    def get(self, app: str, rid: str, *, consistent: bool = False) -> dict[str, Any]:
        """One record of ``app`` (404 if unknown or another app's); ``consistent``: as last
        written, by whichever function wrote it."""
        item = self.db.get(_key(rid), consistent=consistent)
        if not item or item.get("app") != app:
            raise NotFound(f"record {rid!r} of app {app!r} not found", code="unknown_record")
        return _with_flag(item)

    def month(self, app: str, year: int, month: int, total: int,
              state: str | None = None) -> list[dict[str, Any]]:
        """The newest ``total`` records of ``app`` started in that month, newest first."""
        items = self.db.query(f"{app}#{year:04d}-{month:02d}", index=schema.GSI_BY_APP_MONTH,
                              newest_first=True, limit=total, state=state)
        return [_with_flag(i) for i in items]

    def backup(self, name: str) -> dict[str, Any]:
        """An on-demand DynamoDB backup of the whole table."""
        desc = self.db.create_backup(name)
        return {"backup": desc["BackupName"], "arn": desc["BackupArn"],
                "status": desc.get("BackupStatus", "")}


def _with_flag(item: dict[str, Any]) -> dict[str, Any]:
    """The stored record as the daemon posted it, with ``suspect`` (why) if the controller judged
    the success suspicious, and ``gone`` (why) if its archive is known deleted."""
    record: dict[str, Any] = json.loads(item["record"])
    for flag in ("suspect", "gone"):
        if item.get(flag):
            record[flag] = item[flag]
    return record
