"""Job records in DynamoDB: each record a fact, written once and finished once; the queries routes need.

Each record is one item keyed by its rid (``RID#<rid>``/``RECORD``). The first post of a run fixes
what the run is (owner app, job id, action, args, start: its *identity*); later posts may only add
the outcome. So, as single conditional writes:

* a new rid is stored;
* ``success``/``failed`` replaces ``running`` only when the identity matches;
* anything else is either harmless (an identical repeat, or a ``running`` post that arrives after
  the result, which the daemons really do) and answered as unchanged, or a contradiction (another
  owner or job for the rid, a second and different result) and refused with 409, changing nothing.

A node's every-minute ``backup_expire`` job is the exception: its ``running`` posts are not kept, a
success only as its list's last run (``EXPIRE#<digest>`` / ``last``, one per node), a failure also
as a record, as any other; 95 % of posts were those, each a record kept forever.

The record is kept verbatim (``record``, JSON) so answers carry the daemon's field names and Go
time strings. Index ``gsi1`` serves "newest records of an app in a month". Each backup job's newest
run, newest success and newest good success are kept in one slim item per job, in a partition per
node (``FRESH#<ip>``), with only what is read of them: freshness and the retention floor (rid,
state, start, end, reason, suspect; a success's archive and size, why a good one is ``gone``)
and the next success's judgment (the recent good sizes, the suspect streak). A scheduled run reads
them with one Query per node, a quarter of the bytes the whole records were, and no key is written
by every post. Older controllers kept the three as whole records in one ``JOBLAST`` partition
(a key every post wrote: 1,000 writes a second is a partition's limit); a table from then is read
that way, and posts write both, until the first scheduled run has built the slim items
(:meth:`RecordStore.build_fresh`). Nothing scans.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from logging import WARNING
from typing import Any, cast

from chalicelib.core.formats.recordschema import identity, record_app
from chalicelib.core.gotime import parse_go_time, sort_key
from chalicelib.core.jobs import BACKUP_ACTION, EXPIRE_ACTION, node_of_job_id
from chalicelib.core.retention import archive_of
from chalicelib.core.sizes import Baseline, Judgment, archive_size, median, suspect
from chalicelib.core.types import JobRecord, Latest
from chalicelib.edges.dynamo import Dynamo
from chalicelib.edges.table import FRESH_READY, GSI_BY_APP_MONTH, TTL_ATTRIBUTE
from chalicelib.errors import Conflict, NotFound
from chalicelib.logs import event, log

LATEST = "JOBLAST"  # an older table's partition of every job's newest run, success, good success
FRESH = "FRESH#"  # + node IP: partition of its jobs' slim freshness items
EXPIRE_LAST = "EXPIRE#"  # + digest of an expire job's list: that list's (so its node's) last run
EXPIRE_SUCCESS_MINUTES = 10  # an expire success is kept as its node's last run every 10 minutes
KINDS = ("last", "success", "good")
BRIEF = ("start", "end", "reason")  # what freshness reads of a run, besides its rid and state
MAX_REASON = 1000  # a failure's reason kept on the slim item (the record keeps all of it)
READ_WORKERS = 16  # per-node Queries at once: 2,000 nodes in about a second
CHANGED = "~changed"  # sk, after every job id, of a FRESH partition's change mark (``v``)
MAX_KEPT_NODES = 20_000
# What this process read of each node's slim items, with the node's change mark then, by table:
# a warm function (the schedule runs every minute) reads again only the nodes written since
# (their mark renewed) and a few hundred bytes per node otherwise. Never changed once kept (the
# runs are read only), replaced whole when their node is read again.
_KEPT: dict[str, dict[str, tuple[str, dict[str, dict[str, JobRecord]]]]] = {}


def _key(rid: str) -> dict[str, str]:
    return {"pk": f"RID#{rid}", "sk": "RECORD"}


class RecordStore:
    """Records on a DynamoDB ``Table`` resource (passed in: tests use moto, the app the real one)."""

    def __init__(self, table: Any, retention_days: int = 0) -> None:
        self.db = Dynamo(table)
        self.retention_days = retention_days
        self._ready = False  # every job's slim freshness item exists (FRESH_READY seen)

    def baseline(self, job_id: str) -> Baseline:
        """What the job's next success is judged against (:func:`chalicelib.core.sizes.judge`):
        its recent good sizes, and the streak of agreeing suspect sizes on its newest success."""
        if self.fresh_ready():
            fresh = _fresh_key(job_id)
            item = (self.db.get(fresh) if fresh else None) or {}
            good = _raw_run(item, "good") if "good" in item else {}
            newest = _raw_run(item, "success") if "success" in item else {}
            return Baseline(tuple(int(s) for s in good.get("sizes", [])),
                            tuple(int(s) for s in newest.get("streak", []))
                            if newest.get("suspect") else ())
        good = self.db.get({"pk": LATEST, "sk": f"{job_id}#good"}) or {}
        latest = self.db.get({"pk": LATEST, "sk": f"{job_id}#success"}) or {}
        return Baseline(tuple(int(s) for s in good.get("sizes", [])),
                        tuple(int(s) for s in latest.get("streak", [])) if latest.get("suspect")
                        else ())

    def put(self, record: JobRecord, judgment: Judgment | None = None) -> bool:
        """Store a validated record, with the controller's ``judgment`` of a backup's success;
        False if it changed nothing, :class:`Conflict` if it contradicts the stored one."""
        state = record["state"]
        if record["action"] == EXPIRE_ACTION:
            kept = state != "running" and self._put_expire_last(record)
            if state != "failed":
                return kept
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
        if record["action"] == BACKUP_ACTION and record["id"] and self.fresh_ready():
            # the slim item is all a job's latest runs are (no key every post writes); also for
            # a repeat: the daemon posts again after a 5xx, which may have come after the record
            # was written but before the slim item was (a throttled write); its ordering rule
            # makes writing it again harmless
            self._put_fresh(record, key, _kinds(state, judged.suspect), judged.suspect,
                            list(judged.good_sizes), list(judged.streak) if judged.suspect else None)
        elif record["action"] == BACKUP_ACTION and record["id"]:
            # a table from before the slim items: the whole ones too, until they are built (the
            # build reads them again to catch posts that land meanwhile); also for a repeat
            kinds = ["last"] if self._put_latest(record, key, "last", judged.suspect) else []
            if state == "success" and self._put_latest(
                    record, key, "success", judged.suspect,
                    run=list(judged.streak) if judged.suspect else None):
                kinds.append("success")
            if state == "success" and not judged.suspect and self._put_latest(
                    record, key, "good", "", list(judged.good_sizes)):
                kinds.append("good")  # the newest *good* backup, its sizes
            if not stored:  # the whole items may be written and the slim one not
                kinds = _kinds(state, judged.suspect)
            if kinds:
                self._put_fresh(record, key, kinds, judged.suspect, list(judged.good_sizes),
                                list(judged.streak) if judged.suspect else None)
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

    def _put_expire_last(self, record: JobRecord) -> bool:
        """An expire run's outcome, kept as its list's last run (one item per node, since each
        node's list names its own volume dirs), instead of a record per minute per node: the
        daemon's expire record says nothing of what it deleted (its result is null), so a
        success is the same fact every minute, and is written only for runs started in a
        minute divisible by ``EXPIRE_SUCCESS_MINUTES`` (one write in ten: 86 million write
        units a month at 2,000 nodes → 8.6). A failure is always kept, and also stored as a
        record, as any other. The list itself is the node's pushed one; the item says how many
        dirs it had."""
        info = record["args"].get("info") or []
        digest = hashlib.sha256(json.dumps(info).encode()).hexdigest()[:16]
        key = sort_key(record["start"], record["rid"])
        if record["state"] == "success" and int(key[14:16]) % EXPIRE_SUCCESS_MINUTES:
            return False  # the same fact as a minute ago: kept at every 10th minute only
        run = {k: record.get(k) for k in ("rid", "state", "start", "end", "reason")}
        item: dict[str, Any] = {"pk": f"{EXPIRE_LAST}{digest}", "sk": "last", "skey": key,
                                "state": record["state"], "dirs": len(info) // 2,
                                "run": _dumps(run)}
        if self.retention_days:
            expires = parse_go_time(record["start"])[0] + timedelta(days=self.retention_days)
            item[TTL_ATTRIBUTE] = int(expires.timestamp())
        return self.db.put_if(item, "attribute_not_exists(pk) OR skey < :k", {":k": key})

    def _put_latest(self, record: JobRecord, key: str, kind: str, flag: str = "",
                    sizes: list[int] | None = None, run: list[int] | None = None) -> bool:
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
        return self.db.put_if(item, condition, values,
                              {"#s": "state"} if "#s" in condition else None)

    def _put_fresh(self, record: JobRecord, key: str, kinds: list[str], flag: str = "",
                   sizes: list[int] | None = None, streak: list[int] | None = None) -> None:
        """The job's slim item takes ``record`` as its newest ``kinds`` (those whose whole item
        it just became): one UpdateItem, under the same ordering rule as the whole items, so a
        post that lands late never puts an older run back. When one kind's rule does not hold
        (two posts of the job at once), each kind is tried on its own."""
        fresh = _fresh_key(record["id"])
        if fresh is None:
            return
        self._take_newer(fresh, {kind: (_dumps(_slim(record, flag if kind != "good" else "", kind,
                                                     sizes, streak)), key, record["state"])
                                 for kind in kinds},
                         over_running=record["state"] != "running")

    def _take_newer(self, fresh: dict[str, str], runs: Mapping[str, tuple[str, str, str]], *,
                    over_running: bool = False, also: Mapping[str, str] | None = None) -> bool:
        """The slim item ``fresh`` takes each kind's run of ``runs`` (its JSON, ordering key and
        state) where it has none newer (``over_running``: nor its own ``running`` post of the
        same key, which a run's end replaces), with the attributes ``also``: one UpdateItem. When
        the kinds' rules do not all hold (two posts of the job at once), each kind is tried on
        its own. Whether any kind was written."""
        order = {kind: n for n, kind in enumerate(runs)}

        def write(kinds: list[str]) -> bool:
            names = {f"#a{n}": name for n, name in enumerate(also or {})}
            values: dict[str, Any] = {f":a{n}": v for n, v in enumerate((also or {}).values())}
            sets = [f"#a{n} = :a{n}" for n in range(len(names))]
            rules = []
            for kind in kinds:
                n, (run, key, state) = order[kind], runs[kind]
                names |= {f"#v{n}": kind, f"#k{n}": f"{kind}_k", f"#s{n}": f"{kind}_s"}
                values |= {f":v{n}": run, f":k{n}": key, f":s{n}": state}
                sets.append(f"#v{n} = :v{n}, #k{n} = :k{n}, #s{n} = :s{n}")
                later = f" OR (#k{n} = :k{n} AND #s{n} = :running)" if over_running else ""
                rules.append(f"(attribute_not_exists(#k{n}) OR #k{n} < :k{n}{later})")
            if over_running:
                values[":running"] = "running"
            return self._fresh_update(fresh, "SET " + ", ".join(sets), " AND ".join(rules),
                                      values, names)

        if write(list(runs)):
            return True
        return len(runs) > 1 and sum(write([kind]) for kind in runs) > 0

    def _fresh_update(self, key: dict[str, str], update: str, condition: str,
                      values: dict[str, Any], names: dict[str, str] | None = None) -> bool:
        """Every write of a slim item: the conditional UpdateItem, then its node's change mark
        renewed (whether or not the condition held: a post retried after a 503 may find its
        item written and the mark not), so a reader's kept copy of that node is read again."""
        try:
            return self.db.update_if(key, update, condition, values, names)
        finally:
            self._mark_changed({key["pk"]})

    def _mark_changed(self, partitions: Iterable[str]) -> None:
        """Renew the change mark of each ``FRESH#<ip>`` partition: a token no write repeats. This
        process forgets what it kept of those nodes first: it may read them again at once (a
        scheduled run's archive check, accept-size then the status), and an eventually
        consistent read of the mark may still return the token it kept them with."""
        pks = sorted(set(partitions))
        kept = _KEPT.get(self.db.table.name, {})
        for pk in pks:
            kept.pop(pk[len(FRESH):], None)
        self.db.put_many({"pk": pk, "sk": CHANGED, "v": os.urandom(12).hex()} for pk in pks)

    def latest_by_job(self, nodes: Iterable[str]) -> Latest:
        """``{job id: {"last": run, "success": run, "good": run}}`` for every job of ``nodes``
        with a record: each run's few fields freshness and the retention floor read (rid, state,
        start, end, reason, suspect; a good one's archive, size and why it is ``gone``), from
        the slim items, one Query per node. A table whose slim items are not all built yet (see
        :meth:`build_fresh`) is read the old way: every job's whole latest records."""
        if not self.fresh_ready():
            return {job: _runs_of(item)
                    for job, item in self._fresh_from_whole().items()}
        out: Latest = {}
        wanted = sorted(set(nodes))
        if not wanted:
            return out
        kept = _KEPT.setdefault(self.db.table.name, {})
        if len(kept) > MAX_KEPT_NODES:  # nodes long gone: start afresh
            kept.clear()
        marks = {i["pk"][len(FRESH):]: str(i.get("v", "")) for i in self.db.get_many(
            [{"pk": f"{FRESH}{n}", "sk": CHANGED} for n in wanted])}
        marks = {n: v for n, v in marks.items() if v}  # a mark without its token: no mark
        # this read's own view of the kept copies: a write in another thread of the process (a
        # notify served while the run reads) takes its node out of ``kept`` at any moment
        have = {n: entry for n in wanted if (entry := kept.get(n)) is not None}
        stale = [n for n in wanted if n not in marks or n not in have or have[n][0] != marks[n]]

        def read(node: str) -> dict[str, dict[str, JobRecord]]:
            # a node with a mark is read consistently: a write the mark does not show yet is
            # seen, or it renews the mark after this read (the next run reads the node again)
            items = self.db.query(f"{FRESH}{node}", consistent=node in marks)
            return {i["sk"]: _runs_of(i) for i in items if i["sk"] != CHANGED}

        if stale:
            with ThreadPoolExecutor(max_workers=min(READ_WORKERS, len(stale))) as pool:
                for node, runs in zip(stale, pool.map(read, stale), strict=True):
                    have[node] = (marks.get(node, ""), runs)
                    if node in marks:  # no mark yet (no write since this version): read every time
                        kept[node] = have[node]
        for node in wanted:
            out.update(have[node][1])
        return out

    def _fresh_from_whole(self) -> dict[str, dict[str, Any]]:
        """Every job's slim item as its whole latest items (``JOBLAST``) make it, by job; each
        whole item is let go as soon as it is read."""
        out: dict[str, dict[str, Any]] = {}
        for item in self.db.query(LATEST):
            job_id, _, kind = item["sk"].rpartition("#")
            fresh = _fresh_key(job_id)
            if fresh is None or kind not in KINDS:
                continue
            slim = out.setdefault(job_id, dict(fresh))
            whole = _slim(_with_flag(item), "", kind, [int(s) for s in item.get("sizes", [])],
                          [int(s) for s in item.get("streak", [])])
            slim |= {kind: _dumps(whole), f"{kind}_k": item["skey"],
                     f"{kind}_s": item["state"]}
        return out

    def fresh_ready(self) -> bool:
        """Whether every job's slim item exists (remembered once seen: it stays so)."""
        if not self._ready:
            self._ready = self.db.get(dict(FRESH_READY)) is not None
        return self._ready

    def build_fresh(self, passes: int = 3) -> int | None:
        """A table from before the slim items: build every job's from its whole latest items;
        the number of jobs, or None when the table has them already (or notify kept changing
        them: the next run tries again). Posts go on meanwhile and write both: the whole items
        are read again after the slim ones are written, and the jobs that changed in between are
        written again, until a pass finds none changed; then ``FRESH`` / ``ready`` is set."""
        if self.fresh_ready():
            return None
        before: dict[str, dict[str, Any]] = {}
        for _ in range(passes):
            now = self._fresh_from_whole()
            changed = [item for job, item in now.items() if before.get(job) != item]
            if not changed:
                self.db.put(dict(FRESH_READY))
                self._ready = True
                event(log, "fresh_items_built", jobs=len(now))
                return len(now)
            self.db.put_many(changed)
            self._mark_changed({item["pk"] for item in changed})
            before = now
        return None

    def carry(self, pairs: Mapping[str, str]) -> int:
        """History follows the item (:mod:`chalicelib.core.lineage`): each new job ID (key) of
        ``pairs`` continues the old one (value) on the same node, so it takes the old job's slim
        runs (newest run, newest success with its suspect streak, newest good success with the
        recent good sizes: the next success is judged against them) of each kind it has no newer
        run of. Once per ID change, by the reconcile, before the node gets the new list: one
        BatchGetItem per 100 old jobs and one conditional UpdateItem per job with a history; done
        again (the push failed, or the item's ID changed back), the rule keeps whatever is newer.
        The number of jobs that took a history. A table whose slim items are not built yet
        carries nothing (the whole items are read until then)."""
        pairs = {new: old for new, old in pairs.items()
                 if node_of_job_id(new) is not None and node_of_job_id(new) == node_of_job_id(old)}
        if not pairs or not self.fresh_ready():
            return 0
        keys = [k for old in dict.fromkeys(pairs.values()) if (k := _fresh_key(old)) is not None]
        olds = {i["sk"]: i for i in self.db.get_many(keys, consistent=True)}
        carried = 0
        for new, old in sorted(pairs.items()):
            item, fresh = olds.get(old), _fresh_key(new)
            kinds = [k for k in KINDS if item and k in item and f"{k}_k" in item]
            if item is None or fresh is None or not kinds:
                continue
            carried += self._take_newer(
                fresh, {k: (item[k], item[f"{k}_k"], item[f"{k}_s"]) for k in kinds},
                also={"carried_from": old})
        if carried:
            event(log, "history_carried", jobs=carried,
                  pairs=dict(sorted(pairs.items())[:10]), of=len(pairs))
        return carried

    def accept_size(self, job_id: str) -> dict[str, Any]:
        """Take the job's latest success as its good baseline now: it becomes the newest good
        success, the recent sizes are its size alone, and its suspect flag goes from the job's
        latest items (the record itself keeps what was judged when it came). 409 when the job has
        no success, or its latest one has no size or is 0 bytes."""
        if self.fresh_ready():
            return self._accept_slim(job_id)
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
        self._accept_fresh(job_id, record, skey)
        event(log, "size_accepted", job=job_id, rid=record["rid"], accepted_size=size,
              previous_median=before)
        return {"job": job_id, "accepted_size": size, "record": record["rid"],
                "previous_median": before or None}

    def _accept_slim(self, job_id: str) -> dict[str, Any]:
        """accept-size on the slim item, in one conditional write: it still has the success read
        (a post meanwhile: read again, a few times, then 409)."""
        fresh = _fresh_key(job_id)
        for _ in range(3):
            item = (self.db.get(fresh, consistent=True) if fresh else None) or {}
            if "success" not in item:
                raise Conflict(f"job {job_id} has no successful backup on record: there is no "
                               "size to accept (run it: actions/run)", code="no_success")
            success = _raw_run(item, "success")
            size = archive_size(success.get("result"))
            if size is None:
                raise Conflict(f"the latest success of job {job_id} (record {success['rid']}, "
                               f"started {success.get('start')}): "
                               f"{suspect(success.get('result'), [], 0)}, which cannot be a "
                               "baseline; accept a success with an archive (run the job again: "
                               "actions/run)", code="no_size")
            good = _raw_run(item, "good") if "good" in item else {}
            before = median([int(s) for s in good.get("sizes", [])])
            skey = item["success_k"]
            clean = {k: v for k, v in success.items() if k not in ("suspect", "streak")}
            sets = ["#g = :g, good_k = :k, good_s = :st, #s = :s"]
            values = {":g": _stored({**clean, "sizes": [size]}), ":k": skey,
                      ":st": success["state"], ":s": _stored(clean), ":old": item["success"]}
            rule = ("success_k = :k AND #s = :old AND (attribute_not_exists(good_k) OR "
                    "good_k <= :k)")
            names = {"#g": "good", "#s": "success"}
            if item.get("last_k") == skey:  # the newest run is that success: not suspect either
                last = _raw_run(item, "last")
                sets.append("#l = :l")
                values |= {":l": _stored({k: v for k, v in last.items() if k != "suspect"}),
                           ":oldl": item["last"]}
                rule += " AND last_k = :k AND #l = :oldl"
                names["#l"] = "last"
            if fresh and self._fresh_update(fresh, "SET " + ", ".join(sets), rule, values, names):
                event(log, "size_accepted", job=job_id, rid=success["rid"], accepted_size=size,
                      previous_median=before)
                return {"job": job_id, "accepted_size": size, "record": success["rid"],
                        "previous_median": before or None}
        raise Conflict(f"the latest runs of job {job_id} kept changing; try again",
                       code="changed")

    def goods(self, job_ids: list[str]) -> dict[str, JobRecord]:
        """``{job id: its newest good success}`` of those of ``job_ids`` that have one, as last
        written (one BatchGetItem per 100 jobs); ``gone`` says why its archive is known deleted."""
        if self.fresh_ready():
            keys = [k for j in dict.fromkeys(job_ids) if (k := _fresh_key(j)) is not None]
            return {i["sk"]: _run_of(i, "good") for i in self.db.get_many(keys, consistent=True)
                    if "good" in i}
        keys = [{"pk": LATEST, "sk": f"{j}#good"} for j in dict.fromkeys(job_ids)]
        return {i["sk"].rpartition("#")[0]: _with_flag(i)
                for i in self.db.get_many(keys, consistent=True)}

    def mark_gone(self, job_id: str, file: str, why: str) -> bool:
        """Mark the job's newest good success as no good any more: its archive ``file`` was
        deleted (``why``). False when that is not (or no longer) the job's newest good success,
        or it is marked already. The next good success replaces the mark."""
        if self.fresh_ready():
            fresh = _fresh_key(job_id)
            slim = (self.db.get(fresh, consistent=True) if fresh else None) or {}
            good = _raw_run(slim, "good") if "good" in slim else None
            if not fresh or not good or good.get("gone") or archive_of(good) != file:
                return False
            return self._fresh_update(fresh, "SET #g = :new", "good_k = :k AND #g = :old",
                                     {":new": _stored({**good, "gone": why}),
                                      ":old": slim["good"], ":k": slim["good_k"]}, {"#g": "good"})
        item = self.db.get({"pk": LATEST, "sk": f"{job_id}#good"}, consistent=True)
        if not item or item.get("gone") or archive_of(_with_flag(item)) != file:
            return False
        if not self.db.put_if({**item, "gone": why}, "skey = :k AND attribute_not_exists(gone)",
                              {":k": item["skey"]}):
            return False
        self._edit_fresh(job_id, "good", item["skey"], lambda run: {**run, "gone": why})
        return True

    def _edit_fresh(self, job_id: str, kind: str, skey: str,
                    change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Change the job's slim ``kind`` run if it is still the one at ``skey`` and nothing
        wrote it meanwhile (else the newer write stands)."""
        fresh = _fresh_key(job_id)
        item = self.db.get(fresh, consistent=True) if fresh else None
        if not fresh or not item or item.get(f"{kind}_k") != skey or kind not in item:
            return
        self._fresh_update(fresh, "SET #v = :new", "#k = :k AND #v = :old",
                          {":new": _dumps(change(json.loads(item[kind]))), ":old": item[kind],
                           ":k": skey}, {"#v": kind, "#k": f"{kind}_k"})

    def _accept_fresh(self, job_id: str, record: JobRecord, skey: str) -> None:
        """accept-size on the slim item: the success is its newest good one, and neither it nor
        the newest run (if it is that success) is suspect any more."""
        fresh = _fresh_key(job_id)
        if fresh is None:
            return
        self._fresh_update(fresh, "SET #v = :v, good_k = :k, good_s = :st",
                          "attribute_not_exists(good_k) OR good_k <= :k",
                          {":v": _dumps(_slim(record, "", "good")), ":k": skey,
                           ":st": record["state"]}, {"#v": "good"})
        for kind in ("success", "last"):
            self._edit_fresh(job_id, kind, skey,
                             lambda run: {k: v for k, v in run.items() if k != "suspect"})

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


def _fresh_key(job_id: str) -> dict[str, str] | None:
    """Where a job's slim item is: its node's partition (the job ID starts with the node's IP)."""
    node = node_of_job_id(job_id)
    return {"pk": f"{FRESH}{node}", "sk": job_id} if node else None


def _slim(record: Mapping[str, Any], flag: str, kind: str, sizes: list[int] | None = None,
          streak: list[int] | None = None) -> dict[str, Any]:
    """What freshness, the retention floor and the next success's judgment read of a run: its
    brief (a failure's reason cut at MAX_REASON), why it is suspect; of the newest success its
    archive and size and the ``streak`` of agreeing suspect sizes; of the newest good one its
    archive and size, the recent good ``sizes`` and why it is ``gone``."""
    out: dict[str, Any] = {k: record[k] for k in BRIEF if k in record}
    if isinstance(out.get("reason"), str):
        out["reason"] = out["reason"][:MAX_REASON]
    suspect = flag or record.get("suspect")
    if suspect and kind != "good":
        out["suspect"] = suspect
    result = record.get("result")
    if kind != "last" and isinstance(result, dict):
        out["result"] = {k: result[k] for k in ("file", "size") if k in result}
    if kind == "success" and suspect and streak:
        out["streak"] = streak
    if kind == "good":
        if record.get("gone"):
            out["gone"] = record["gone"]
        if sizes:
            out["sizes"] = sizes
    return out


def _kinds(state: str, suspect: str) -> list[str]:
    """Which of a job's latest runs a run of that state (and judgment) may become."""
    return ["last", *(["success"] if state == "success" else []),
            *(["good"] if state == "success" and not suspect else [])]


def _stored(run: Mapping[str, Any]) -> str:
    """A slim run as written back: without the rid and state that live beside it."""
    return _dumps({k: v for k, v in run.items() if k not in ("rid", "state")})


def _dumps(run: Mapping[str, Any]) -> str:
    """A slim run as one string attribute: DynamoDB bills the same bytes as a map, and reading
    it back is one JSON parse instead of boto3 deserializing each field."""
    return json.dumps(run, separators=(",", ":"))


def _raw_run(item: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The slim ``kind`` run of a job's slim item, with its rid and state (kept beside it, in
    its ordering key and its state, which the writes' conditions compare)."""
    run: dict[str, Any] = json.loads(item[kind])
    run["rid"] = str(item[f"{kind}_k"]).rpartition("#")[2]
    run["state"] = item[f"{kind}_s"]
    return run


def _run_of(item: Mapping[str, Any], kind: str) -> JobRecord:
    """The slim ``kind`` run as the record fields freshness reads."""
    return cast(JobRecord, _raw_run(item, kind))


def _runs_of(item: Mapping[str, Any]) -> dict[str, JobRecord]:
    """A job's slim runs, each kind it has. One run is often its newest, its newest success and
    its newest good one at once: the strings and the archive the kinds share are kept once (a
    warm process keeps every job's runs: ~1 KB a job less, 160 MB at 160,000 jobs)."""
    runs: dict[str, JobRecord] = {}
    strings: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    for kind in KINDS:
        if kind not in item:
            continue
        run = _raw_run(item, kind)
        for key, value in run.items():
            if type(value) is str:
                run[key] = strings.setdefault(value, value)
        result = run.get("result")
        if type(result) is dict:
            run["result"] = next((r for r in results if r == result), result)
            if run["result"] is result:
                results.append(result)
                if type(result.get("file")) is str:
                    result["file"] = strings.setdefault(result["file"], result["file"])
        runs[kind] = cast(JobRecord, run)
    return runs


def _with_flag(item: dict[str, Any]) -> JobRecord:
    """The stored record as the daemon posted it, with ``suspect`` (why) if the controller judged
    the success suspicious, and ``gone`` (why) if its archive is known deleted."""
    record: JobRecord = json.loads(item["record"])
    if item.get("suspect"):
        record["suspect"] = item["suspect"]
    if item.get("gone"):
        record["gone"] = item["gone"]
    return record
