"""The cluster as lainlet describes it: procs, pods, containers, nodes, and where volumes live.

Built from one ``/v2/backupspec`` answer by :meth:`Cluster.from_backupspec` (pure). Every lookup a
route needs goes through here, so "does this proc belong to this app" and "is this a node lainlet
named" have one answer each.
"""

from __future__ import annotations

import gc
import ipaddress
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from chalicelib.core import cron, spread
from chalicelib.core.backupspec import BackupItem, Problem, parse_annotation
from chalicelib.core.idlewindow import HOLD, Load, matters
from chalicelib.core.naming import is_node_ip, is_proc_name
from chalicelib.core.paths import go_path_join, volume_dir
from chalicelib.errors import BadRequest, LainletError, UnknownApp, UnknownProc, UpstreamError


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around allocation-heavy pure steps (building a cluster,
    generating its jobs): they create tens of thousands of acyclic objects, and the collector
    would rescan them and the whole spec many times over for nothing (measured: up to 2x)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Pod(NamedTuple):
    """One instance of a proc: its backup items, the distinct valid node IPs of its containers
    (in container order) and their ids (what jobs carry). A tuple built once per pod, by
    :meth:`Cluster._pod` only; the containers' other fields are checked there, not kept."""

    instance_no: int
    items: tuple[BackupItem, ...]
    node_ips: list[str]
    container_ids: list[str]


@dataclass(frozen=True)
class Proc:
    full_name: str  # app.type.name
    app: str
    name: str
    pods: tuple[Pod, ...]

    @property
    def volumes(self) -> list[str]:
        """Declared backup volumes of the proc, in declaration order, each once."""
        return list(dict.fromkeys(item.volume for pod in self.pods for item in pod.items))

    @property
    def node_ips(self) -> list[str]:
        return list(dict.fromkeys(ip for pod in self.pods for ip in pod.node_ips))

    def pod(self, instance_no: int) -> Pod:
        for pod in self.pods:
            if pod.instance_no == instance_no:
                return pod
        raise BadRequest(
            f"{self.full_name} has no instance {instance_no} "
            f"(instances: {', '.join(str(p.instance_no) for p in self.pods) or 'none'})",
            code="unknown_instance",
        )

    def volume_dirs(self, volumes: Iterable[str]) -> list[str]:
        """Volume dirs of every pod for each of ``volumes``."""
        return [volume_dir(self.app, self.full_name, pod.instance_no, v)
                for v in volumes for pod in self.pods]

    def item(self, volume: str) -> BackupItem | None:
        """The declared backup item for ``volume`` (path-normalised), if any."""
        wanted = go_path_join("/", volume)
        for pod in self.pods:
            for item in pod.items:
                if go_path_join("/", item.volume) == wanted:
                    return item
        return None


def _pushed(item: BackupItem, app: str, proc: str, instance: int, spread_seconds: bool
            ) -> BackupItem:
    """``item`` of one instance with the schedule its jobs are pushed with (see
    :mod:`chalicelib.core.spread`); the item itself when that is the schedule written."""
    if not item.schedule_ok:
        return item
    pushed = spread.resolve(item.schedule, spread.item_hash(app, proc, item.volume, instance),
                            spread=spread_seconds)
    return item if pushed == item.schedule else item._replace(schedule=pushed, written=item.schedule)


def _shown(item: BackupItem) -> str:
    """The schedule of ``item`` as written, and as pushed when that differs."""
    if item.written:
        return f"{item.written!r} (pushed as {item.schedule!r})"
    return repr(item.schedule)


class _Unreadable(ValueError):
    """One proc's part of lainlet's answer has the wrong shape (that proc is skipped)."""


MAX_INSTANCE = 100_000
MAX_CONTAINER_ID, MAX_IP, MAX_NODE_NAME = 128, 64, 256  # longest container fields accepted


@dataclass
class Cluster:
    """All procs lainlet named, by full name, and the problems found in their specs.

    ``unreadable`` names the procs whose part of the answer (or whose annotation) could not be
    read (the reconcile keeps their jobs rather than removing them; a proc whose pods could not be
    read is also left out of ``procs``); ``busy`` holds the
    placements ``(node, proc, instance, volume)`` whose schedule, with the others on that node,
    would leave the daemon no idle moment to accept a new list (they get no backup job)."""

    procs: dict[str, Proc] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    busy: set[tuple[str, str, int, str]] = field(default_factory=set)
    placed: tuple[tuple[int, int], tuple[Any, ...]] | None = field(
        default=None, repr=False, compare=False)  # :func:`chalicelib.core.jobs.placements`, once

    @classmethod
    def from_backupspec(cls, data: Any, *, spread_seconds: bool = False) -> Cluster:
        """Build from lainlet's JSON; only an answer that is not an object raises (:class:`LainletError`).

        Anything wrong inside one proc (its pods' shape, an annotation, an item, a node IP) is a
        problem of that proc: the other procs are unaffected. Every instance's items carry the
        schedule its jobs are pushed with: ``H`` resolved for that instance and, with
        ``spread_seconds`` (the ``SPREAD_SECONDS`` setting), a stable second added
        (:mod:`chalicelib.core.spread`); everything built from the cluster (job lists and ids,
        freshness, the idle-window check) uses that one.
        """
        if not isinstance(data, Mapping):
            raise LainletError("lainlet sent a backupspec that is not a JSON object")
        with gc_paused():
            cluster = cls._build(data, spread_seconds)
            cluster._find_busy()
            return cluster

    @classmethod
    def _build(cls, data: Mapping[str, Any], spread_seconds: bool) -> Cluster:
        cluster = cls()
        for key in sorted(data):
            parts = key.split(".")
            app = parts[0][:100]
            if not is_proc_name(key):
                cluster.problems.append(
                    Problem("bad_proc_name", app, key[:300], None,
                            "proc name is not <app>.<type>.<proc>; its backups are ignored"))
                continue
            try:
                pods, problems = cls._pods(key, app, data[key], spread_seconds)
            except Exception as e:  # one proc's garbage never stops the others
                reason = str(e) if isinstance(e, _Unreadable) else f"cannot be read ({type(e).__name__})"
                cluster.unreadable[key] = reason
                cluster.problems.append(Problem("malformed_pod", app, key, None,
                                                f"lainlet's answer for this proc is unreadable: "
                                                f"{reason}; its jobs are kept as they are"))
                continue
            cluster.problems.extend(problems)
            garbled = next((p.reason for p in problems if p.kind == "malformed_annotation"), "")
            if garbled:  # its jobs are kept, not removed, while the annotation cannot be read
                cluster.unreadable[key] = garbled
            cluster.procs[key] = Proc(key, app, parts[2], tuple(sorted(pods, key=lambda p: p.instance_no)))
        return cluster

    @classmethod
    def _pods(cls, proc: str, app: str, raw: Any, spread_seconds: bool
              ) -> tuple[list[Pod], list[Problem]]:
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise _Unreadable("its value is not a list of pods")
        pods, problems = [], []
        for pod_raw in raw:
            pod, found = cls._pod(proc, app, pod_raw, spread_seconds)
            pods.append(pod)
            problems.extend(found)
        return pods, problems

    @staticmethod
    def _pod(proc: str, app: str, raw: Any, spread_seconds: bool) -> tuple[Pod, list[Problem]]:
        """One pod, checked field by field. Written out flat (no generators, plain ``dict`` checked
        before the ABC): this runs for every pod and container of the cluster."""
        if type(raw) is not dict and not isinstance(raw, Mapping):
            raise _Unreadable("a pod is not an object")
        instance = raw.get("InstanceNo")
        annotation = raw.get("Annotation") or ""
        containers_raw = raw.get("Containers") or []
        if (type(instance) is not int or not 0 <= instance <= MAX_INSTANCE
                or not isinstance(annotation, str) or not isinstance(containers_raw, list)):
            raise _Unreadable(f"a pod has no InstanceNo from 0 to {MAX_INSTANCE}, string "
                              "Annotation and Containers list")
        items, found = parse_annotation(annotation, app=app, proc=proc, instance=instance)
        if items and (spread_seconds or any(spread.has_h(item.schedule) for item in items)):
            items = tuple(_pushed(item, app, proc, instance, spread_seconds) for item in items)
        ids: list[str] = []
        node_ips: dict[str, None] = {}
        for c in containers_raw:
            if type(c) is not dict and not isinstance(c, Mapping):
                raise _Unreadable(f"a container of instance {instance} is not an object")
            cid, ip, node_ip, name = (c.get("Id", ""), c.get("Ip", ""), c.get("NodeIp", ""),
                                      c.get("NodeName", ""))
            if not (type(cid) is str and type(ip) is str and type(node_ip) is str
                    and type(name) is str and len(cid) <= MAX_CONTAINER_ID and len(ip) <= MAX_IP
                    and len(node_ip) <= MAX_IP and len(name) <= MAX_NODE_NAME):
                raise _Unreadable(f"a container of instance {instance} is not an object of "
                                  "short strings")
            ids.append(cid)
            if is_node_ip(node_ip):
                node_ips[node_ip] = None
            elif items:
                found.append(Problem("bad_node_ip", app, proc, instance,
                                     f"container {cid} has node IP {node_ip[:64]!r}; it gets no "
                                     "backup jobs"))
        return Pod(instance, items, list(node_ips), ids), found

    def _find_busy(self) -> None:
        """Mark placements whose schedule would, with those before it on the node, leave the
        daemon no idle moment (see :mod:`chalicelib.core.idlewindow`), first come first kept."""
        loads: dict[str, Load] = {}
        for proc in self.procs.values():
            for pod in proc.pods:
                for item in pod.items:
                    if not item.schedule_ok:
                        continue
                    schedule = cron.parse(item.schedule)
                    if not matters(schedule):  # most schedules: once a minute or less
                        continue
                    for node in pod.node_ips:
                        load = loads.get(node, Load())
                        grown = load.add(schedule)
                        key = (node, proc.full_name, pod.instance_no, item.volume)
                        if grown is load or key in self.busy:
                            continue
                        if grown.blocked:
                            self.busy.add(key)
                            self.problems.append(Problem(
                                "busy_schedule", proc.app, proc.full_name, pod.instance_no,
                                f"schedule {_shown(item)}, with the others on {node}, would "
                                f"leave its daemon no {HOLD} s without a job: no later job list "
                                "could be pushed there, so this job is not pushed", item.volume))
                        else:
                            loads[node] = grown

    # -- lookups -------------------------------------------------------------------------------

    def apps(self) -> list[str]:
        return sorted({p.app for p in self.procs.values()})

    def procs_of(self, app: str) -> list[Proc]:
        """Procs of ``app``; :class:`UnknownApp` if lainlet names none."""
        procs = [p for p in self.procs.values() if p.app == app]
        if not procs:
            self._unreadable_of(app, lambda full: True)
            raise UnknownApp(f"app {app!r} is unknown to lainlet (no proc with a backup spec)")
        return procs

    def proc(self, app: str, proc: str) -> Proc:
        """Resolve ``web``, ``web.web`` or ``hello.web.web`` within ``app`` (never another app's)."""
        procs = self.procs_of(app)
        parts = proc.split(".")
        wanted = proc if len(parts) == 3 else f"{app}.{proc}"

        def matches(full: str) -> bool:
            return full.rsplit(".", 1)[-1] == proc if len(parts) == 1 else full == wanted

        found = [p for p in procs if matches(p.full_name)]
        if len(found) > 1:
            raise BadRequest(f"proc {proc!r} of app {app!r} is ambiguous: "
                             f"{', '.join(p.full_name for p in found)}; use the full name",
                             code="ambiguous_proc")
        if not found:
            self._unreadable_of(app, matches)
            raise UnknownProc(f"proc {proc!r} not found in app {app!r} "
                              f"(procs: {', '.join(p.full_name for p in procs)})")
        return found[0]

    def _unreadable_of(self, app: str, matches: Callable[[str], bool]) -> None:
        """A 502 naming lainlet's unreadable answer for a proc of ``app`` that ``matches``."""
        for full, reason in self.unreadable.items():
            if full.split(".", 1)[0] == app and matches(full):
                raise UpstreamError(f"lainlet's answer for {full} is unreadable: {reason}",
                                    code="unreadable_proc")

    def node_ips(self) -> list[str]:
        """Every valid node IP lainlet names, sorted numerically."""
        ips = {ip for p in self.procs.values() for ip in p.node_ips}
        return sorted(ips, key=ipaddress.IPv4Address)

    def node_ips_of_app(self, app: str) -> list[str]:
        return list(dict.fromkeys(ip for p in self.procs_of(app) for ip in p.node_ips))

    def node_of(self, proc: Proc, instance_no: int) -> str:
        """The node of one instance (its first container with a valid node IP)."""
        ips = proc.pod(instance_no).node_ips
        if not ips:
            raise BadRequest(f"{proc.full_name} instance {instance_no} has no node with a valid IP",
                             code="no_node")
        return ips[0]
