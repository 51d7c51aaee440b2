"""What the reconcile remembers between runs, in DynamoDB: each node's last good push, the pauses
users asked for, and a bounded history of run summaries.

The daemons forget pause states when they restart; keeping pauses here lets every push re-apply
them, so a pause lasts until the user wakes the job up.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from logging import WARNING
from typing import Any, NamedTuple, overload

from chalicelib.core.gotime import format_time
from chalicelib.core.plan import NodeState
from chalicelib.core.types import Job, Pause, Pauses
from chalicelib.edges.dynamo import Dynamo
from chalicelib.edges.table import TTL_ATTRIBUTE
from chalicelib.errors import Conflict
from chalicelib.logs import event, log

NODES, PAUSES, RUNS, STATUSES, SAID = "NODES", "PAUSES", "RECONCILE", "STATUS", "SAID"
SEEN = "SEEN"  # what the runs saw, one item per node: {key: [status, since, owed, told]}
HELD = {"pk": "HELD", "sk": "removals"}  # the removals the last runs held, and for how many runs
LEASE = {"pk": "LEASE", "sk": "reconcile"}  # which run may reconcile now, and until when
RUN_HISTORY_DAYS = 7
PAUSE_MEMORY = "pause:"  # what the alerts remember of a pause: pause:<node>#<job id>


class NodeStateStore:
    """Node states, pauses and run summaries on the controller's table."""

    def __init__(self, table: Any) -> None:
        self.db = Dynamo(table)

    # -- node states --------------------------------------------------------------------------
    def states(self) -> dict[str, NodeState]:
        out = {}
        for i in self.db.query(NODES):
            ids = _ids(i)
            out[i["sk"]] = NodeState(i["sk"], i["version"], tuple(ids["job_ids"]),
                                     int(i.get("job_count", 0)), i.get("pushed_at", ""),
                                     tuple(sorted(ids["first_seen"].items())),
                                     _unpack(i.get("jobs_z")), i.get("unreachable_since", ""),
                                     i.get("notify_digest", ""), _problems(i.get("problems")))
        return out

    def save(self, states: list[NodeState]) -> None:
        self.db.put_many(_pack(s) for s in states)

    def forget(self, nodes: list[str]) -> None:
        """Drop what is kept about nodes that left the cluster (their state and pauses)."""
        pauses = self.pauses()
        self.db.delete_many([{"pk": NODES, "sk": n} for n in nodes]
                            + [{"pk": PAUSES, "sk": f"{n}#{j}"} for n in nodes
                               for j in pauses.get(n, ())])

    # -- one reconcile at a time ------------------------------------------------------------------
    def acquire_lease(self, run: str, now: datetime, seconds: float) -> None:
        """Take the reconcile lease for ``run`` until ``now + seconds``; :class:`Conflict` naming
        the holder if another run has it (a crashed run's lease simply expires)."""
        until = now + timedelta(seconds=seconds)
        item = {**LEASE, "holder": run, "started": format_time(now), "expires": format_time(until)}
        if self.db.put_if(item, "attribute_not_exists(pk) OR expires < :now",
                          {":now": format_time(now)}):
            return
        held = self.db.get(LEASE, consistent=True) or {}
        raise Conflict(f"a reconcile is already running: run {held.get('holder', '?')}, started "
                       f"{held.get('started', '?')} (its lease ends {held.get('expires', '?')}); "
                       "try again when it is done", code="reconcile_running")

    def release_lease(self, run: str) -> None:
        """Give the lease back, if this run still holds it (if it expired and another run took it
        meanwhile, there is nothing of ours to give back)."""
        self.db.delete_if(LEASE, "holder = :run", {":run": run})

    # -- removals held by the last runs ---------------------------------------------------------
    def held_removals(self) -> dict[str, Any]:
        """``{"fingerprint", "runs", "since"}`` of the removals the last runs held, or {}."""
        item = self.db.get(HELD, consistent=True)
        return {k: item[k] for k in ("fingerprint", "runs", "since")} if item else {}

    def save_held_removals(self, fingerprint: str, runs: int, since: str) -> None:
        if fingerprint:
            self.db.put({**HELD, "fingerprint": fingerprint, "runs": runs, "since": since})
        else:
            self.db.delete(HELD)

    # -- pauses -------------------------------------------------------------------------------
    def pauses(self) -> Pauses:
        """Every pause, by node and job id."""
        out: Pauses = {}
        for item in self.db.query(PAUSES):
            node, _, job_id = item["sk"].partition("#")
            out.setdefault(node, {})[job_id] = _pause(item)
        return out

    def pause_of(self, node: str, job_id: str) -> Pause | None:
        item = self.db.get({"pk": PAUSES, "sk": f"{node}#{job_id}"}, consistent=True)
        return _pause(item) if item else None

    def set_pause(self, node: str, job_id: str, pause: Pause | None) -> None:
        """Keep ``pause`` of the job (None: the job is not paused)."""
        key = {"pk": PAUSES, "sk": f"{node}#{job_id}"}
        if pause:
            self.db.put(_pause_item(node, job_id, pause))
        else:
            self.db.delete(key)

    def adopt_pause(self, node: str, job_id: str, pause: Pause) -> bool:
        """Keep ``pause`` unless the job has one on record by now (a user's sleep that landed
        meanwhile is theirs); False when it had."""
        return self.db.put_if(_pause_item(node, job_id, pause), "attribute_not_exists(pk)")

    def confirm_pause(self, node: str, job_id: str, pause: Pause) -> bool:
        """Mark ``pause`` confirmed, if it is still the one on record (a user may have changed it
        meanwhile); False when it was not."""
        return self.db.put_if(_pause_item(node, job_id, replace(pause, confirmed=True)),
                              "paused_at = :p AND #u = :u",
                              {":p": pause.paused_at, ":u": pause.until}, {"#u": "until"})

    def drop_pauses(self, node: str, job_ids: set[str]) -> None:
        self.db.delete_many({"pk": PAUSES, "sk": f"{node}#{job_id}"} for job_id in job_ids)

    # -- what the last runs saw and said (transitions, alerts, repeated log lines) ---------------
    def statuses(self) -> Memory:
        """Every remembered item and pause: its status (or fingerprint), since when, the message
        still owed to chat and whether its episode was told. Kept as one item per node (``SEEN``,
        its keys' memories in one JSON string): a run reads a few hundred small items, not one
        per backup item (16,000 at 200 nodes took botocore ~2 s to parse every minute). Items of
        the one-per-key form a version before this one wrote (``STATUS``) are read too, until
        the next save moves them."""
        memory = Memory()
        legacy = list(self.db.query(STATUSES))
        for i in legacy:
            memory[i["sk"]] = Seen(str(i.get("status", "")), str(i.get("since", "")),
                                   str(i.get("owed", "")), bool(i.get("told", False)))
        texts: dict[str, Any] = {}
        for shard in self.db.query(SEEN):
            memory.update(_shard(shard.get("seen")))
            texts[shard["sk"]] = shard.get("seen")
        memory.legacy = frozenset(i["sk"] for i in legacy)
        memory.texts = texts
        return memory

    def save_statuses(self, changed: dict[str, Seen], gone: frozenset[str] | set[str] = frozenset(),
                      before: Mapping[str, Seen] | None = None) -> None:
        """Remember what changed and forget what no longer exists: the nodes whose memory
        changed are written whole (``before``: what :meth:`statuses` read this run; every node
        when it still held one-per-key items, which are then deleted)."""
        before = before if before is not None else self.statuses()
        legacy: frozenset[str] = getattr(before, "legacy", frozenset())
        touched = {seen_node(k) for k in (*changed, *gone)} | (
            {seen_node(k) for k in (*before, *changed)} if legacy else set())
        shards: dict[str, dict[str, Seen]] = {node: {} for node in touched}
        for key, seen in {**before, **changed}.items():
            node = seen_node(key)
            if node in shards and key not in gone:
                shards[node][key] = seen
        texts: dict[str, Any] | None = getattr(before, "texts", None)
        for node, memory in sorted(shards.items()):
            self._write_shard(node, memory, texts, changed, gone)
        if legacy:
            self.db.delete_many({"pk": STATUSES, "sk": key} for key in sorted(legacy))

    def _write_shard(self, node: str, memory: dict[str, Seen], texts: dict[str, Any] | None,
                     changed: Mapping[str, Seen], gone: frozenset[str] | set[str]) -> None:
        """One node's memory written whole, only over the one ``texts`` says this run read (the
        alerts run after the reconcile's lease: two runs' may overlap, and the reconcile moves a
        carried pause's memory meanwhile); else the node's memory as it is now, with this run's
        ``changed`` and ``gone`` keys of that node applied, a few times, then left to the next
        run."""
        key = _seen_key(node)
        known = texts is not None
        expected = texts.get(key["sk"]) if texts is not None else None
        for _ in range(5):
            if not known:  # what the node's memory is now, with this run's changes on it
                item = self.db.get(key, consistent=True) or {}
                expected = item.get("seen")
                memory = {k: v for k, v in _shard(expected).items() if k not in gone}
                memory |= {k: v for k, v in changed.items() if seen_node(k) == node}
            rule, values = (("seen = :old", {":old": expected}) if expected is not None
                            else ("attribute_not_exists(seen)", {}))
            if memory:
                done = self.db.put_if({**key, "seen": _shard_text(memory)}, rule, values or None)
            else:
                done = expected is None or self.db.delete_if(key, rule, values)
            if done:
                return
            known = False
        event(log, "alert_memory_not_saved", level=WARNING, node=node)

    def carry_pause_memory(self, node: str, new: str, old: str) -> None:
        """What the alerts remember of the pause of job ``old`` on ``node`` (its start told, its
        end's notice owed) is kept for job ``new``, which carries that pause now (its ID
        changed: :mod:`chalicelib.core.lineage`): no second "paused" message, no "over" for a
        pause that goes on. The node's memory is rewritten only if no run changed it meanwhile."""
        was, now = f"{PAUSE_MEMORY}{node}#{old}", f"{PAUSE_MEMORY}{node}#{new}"
        legacy = {"pk": STATUSES, "sk": was}  # the one-per-key form of a version before
        item = self.db.get(legacy, consistent=True)
        if item is not None:
            self.db.put_if({**item, "sk": now}, "attribute_not_exists(pk)")
            self.db.delete(legacy)
        key = _seen_key(node)
        shard = self.db.get(key, consistent=True)
        memory = _shard(shard.get("seen")) if shard else {}
        if was not in memory:
            return
        seen = memory.pop(was)
        memory.setdefault(now, seen)
        self.db.put_if({**key, "seen": _shard_text(memory)}, "seen = :old",
                       {":old": shard["seen"]} if shard else None)

    # -- a line that would repeat every run ------------------------------------------------------
    def say(self, name: str, fingerprint: str, now: datetime, every: timedelta) -> str:
        """Whether a line that would repeat every run is to be logged now: ``"new"`` when what it
        says changed (its ``fingerprint``), ``"again"`` when ``every`` has passed since it was
        last logged (a periodic count), ``""`` otherwise."""
        key = {"pk": SAID, "sk": name}
        item = self.db.get(key) or {}
        if item.get("fingerprint") != fingerprint:
            how = "new"
        elif format_time(now - every) >= str(item.get("said_at", "")):
            how = "again"
        else:
            return ""
        self.db.put({**key, "fingerprint": fingerprint, "said_at": format_time(now)})
        return how

    def unsay(self, name: str) -> None:
        """The line has nothing to say any more (the next time it has, it is new)."""
        self.db.delete({"pk": SAID, "sk": name})

    # -- run history --------------------------------------------------------------------------
    def add_run(self, summary: dict[str, Any], now: datetime) -> None:
        """Keep a run's summary for ``RUN_HISTORY_DAYS`` (DynamoDB TTL)."""
        expires = now + timedelta(days=RUN_HISTORY_DAYS)
        self.db.put({"pk": RUNS, "sk": summary["started"], "summary": json.dumps(summary),
                     TTL_ATTRIBUTE: int(expires.timestamp())})

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return [json.loads(i["summary"]) for i in self.db.query(RUNS, newest_first=True, limit=limit)]


class Memory(dict[str, "Seen"]):
    """What :meth:`NodeStateStore.statuses` read, and which of its keys are still one-per-key
    items of the form before (``legacy``: the next save moves them into the nodes' items)."""

    legacy: frozenset[str] = frozenset()
    texts: dict[str, Any] | None = None  # each node's memory item (``seen``) as read, by sort key


def _shard(text: Any) -> dict[str, Seen]:
    """One node's memory from its JSON string; an entry that does not read as one (a version
    after this one, a hand edit) is forgotten, as if never seen, rather than failing the run."""
    try:
        entries = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    out = {}
    for key, entry in (entries.items() if isinstance(entries, dict) else ()):
        if isinstance(entry, list) and len(entry) == 4 and isinstance(entry[0], str) and \
                isinstance(entry[1], str) and isinstance(entry[2], str):  # every item, every run
            out[str(key)] = Seen(entry[0], entry[1], entry[2], bool(entry[3]))
    return out


def _shard_text(memory: Mapping[str, Seen]) -> str:
    """One node's memory as the JSON string :func:`_shard` reads."""
    return json.dumps({k: [v.status, v.since, v.owed, v.told] for k, v in memory.items()},
                      separators=(",", ":"), sort_keys=True)


def _seen_key(node: str) -> dict[str, str]:
    """The item of a node's memory (``-``: keys of no node)."""
    return {"pk": SEEN, "sk": node or "-"}


def seen_node(key: str) -> str:
    """The node a memory key belongs to: an item's ``<proc>/<n><volume>@<node>``, a pause's
    ``pause:<node>#<job id>``; "" for anything else."""
    if key.startswith(PAUSE_MEMORY):
        return key[len(PAUSE_MEMORY):].partition("#")[0]
    return key.rpartition("@")[2] if "@" in key else ""


class Seen(NamedTuple):
    """What the runs remember of one item (or pause, or repeated log line): its last status, since
    when, the chat message still owed (``"bad"``, ``"ok"``, ``""``) and whether its bad episode
    was told. A tuple: every item's is read and compared every run (160,000 at 2,000 nodes)."""

    status: str
    since: str = ""
    owed: str = ""
    told: bool = False


def _pack(s: NodeState) -> dict[str, Any]:
    ids = {"job_ids": list(s.job_ids), "first_seen": dict(s.first_seen)}
    item: dict[str, Any] = {"pk": NODES, "sk": s.node, "version": s.version,
                            "ids_z": _z(ids), "job_count": s.job_count, "pushed_at": s.pushed_at}
    if isinstance(s.jobs, PackedJobs):  # as read: the same bytes
        item["jobs_z"] = s.jobs.blob
    elif s.jobs is not None:  # the list itself, compressed: held removals are kept from it
        item["jobs_z"] = _z(list(s.jobs))
    if s.unreachable_since:
        item["unreachable_since"] = s.unreachable_since
    if s.notify_digest:
        item["notify_digest"] = s.notify_digest
    if s.problems:
        item["problems"] = [list(p) for p in s.problems]
    return item


def _problems(value: Any) -> tuple[tuple[str, str, str], ...]:
    """A node's problems as kept (a list of [kind, since, detail]); anything else: none."""
    if not isinstance(value, list):
        return ()
    return tuple((str(p[0]), str(p[1]), str(p[2])) for p in value
                 if isinstance(p, list) and len(p) == 3)


def _z(value: Any) -> bytes:
    return zlib.compress(json.dumps(value, separators=(",", ":")).encode(), 6)


def _unz(blob: Any) -> Any:
    return json.loads(zlib.decompress(getattr(blob, "value", blob)))  # boto3 wraps binaries


class PackedJobs(Sequence[Job]):
    """A node's last pushed list as stored (zlib'd JSON), unpacked only when read: a run reads
    every node's state, but needs the list only of the nodes whose jobs changed (half a second
    of every minute at 200 nodes went to unpacking lists nobody read)."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self._jobs: tuple[Job, ...] | None = None

    def _unpacked(self) -> tuple[Job, ...]:
        if self._jobs is None:
            self._jobs = tuple(_unz(self.blob))
        return self._jobs

    @overload
    def __getitem__(self, index: int) -> Job: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Job]: ...

    def __getitem__(self, index: int | slice) -> Job | Sequence[Job]:
        return self._unpacked()[index]

    def __len__(self) -> int:
        return len(self._unpacked())

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, Sequence) else other)

    def __hash__(self) -> int:
        return hash(self._unpacked())


def _unpack(blob: Any) -> PackedJobs | None:
    return None if blob is None else PackedJobs(bytes(getattr(blob, "value", blob)))


def _ids(item: dict[str, Any]) -> dict[str, Any]:
    """A node's job ids and when each was first pushed: one compressed attribute (``ids_z``:
    a fifth of the bytes, and one attribute instead of a list and a map of a hundred entries
    each for DynamoDB to read every run), or the two attributes states written before it used."""
    if "ids_z" in item:
        return dict(_unz(item["ids_z"]))
    return {"job_ids": item.get("job_ids", []), "first_seen": item.get("first_seen", {})}


def _pause_item(node: str, job_id: str, pause: Pause) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": PAUSES, "sk": f"{node}#{job_id}", "until": pause.until,
                            "reason": pause.reason, "paused_at": pause.paused_at}
    if not pause.confirmed:
        item["confirmed"] = False
    if pause.adopted:
        item["adopted"] = True
    return item


def _pause(item: dict[str, Any]) -> Pause:
    return Pause(str(item.get("until", "")), str(item.get("reason", "")),
                 str(item.get("paused_at", "")), item.get("confirmed", True) is not False,
                 item.get("adopted", False) is True)
