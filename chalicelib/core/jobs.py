"""Pure job generation: a :class:`Cluster` becomes one job list per node, as the Go controller made it.

The job IDs must be byte-for-byte the original's: pause state on the daemons, stored records and
lain-cli's ``run`` all key on them. ID = the node's 4 IPv4 bytes in hex + md5 of
``"<spec>/<action>/<values>"``, values being the args' values in sorted-key order written the way
Go's ``%v`` writes a ``[]interface{}``. No I/O here.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterator
from functools import lru_cache
from typing import Any, NamedTuple

from chalicelib.core.backupspec import BackupItem
from chalicelib.core.cluster import Cluster, Pod, Proc, gc_paused
from chalicelib.core.paths import dir_and_archive
from chalicelib.core.types import Job

BACKUP_ACTION = "backup"
EXPIRE_ACTION = "backup_expire"
EXPIRE_SCHEDULE = "* * * * *"


def go_format(value: Any) -> str:
    """``fmt.Sprintf("%v", value)`` for the JSON-ish values job args hold."""
    if isinstance(value, str):  # most values: checked first, this runs for every job of a cluster
        return value
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(map(go_format, value)) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def job_id(node_ip: str, spec: str, action: str, args: dict[str, Any]) -> str:
    """The Go controller's ``GenerateID`` for a job on ``node_ip``."""
    values = [args[key] for key in sorted(args)]
    digest = hashlib.md5(f"{spec}/{action}/{go_format(values)}".encode()).hexdigest()
    return _ip_hex(node_ip) + digest


def _backup_digest(spec: str, args: dict[str, Any], containers: str) -> str:
    """The md5 half of a backup job's id: :func:`job_id` without the node, written out for the
    args a backup job has (their keys in sorted order, every value a string but ``instanceNo`` and
    the ``containers`` list, given here already joined), so one digest serves every node of the
    pod. The golden IDs and a property test against :func:`job_id` hold it to the generic form."""
    return hashlib.md5(
        f"{spec}/{BACKUP_ACTION}/[{args['app']} {args['archive']} [{containers}] "
        f"{args['instanceNo']} {args['mode']} {args['path']} {args['postRun']} {args['preRun']} "
        f"{args['proc']} {args['volume']}]".encode()).hexdigest()


@lru_cache(maxsize=65536)
def _ip_hex(node_ip: str) -> str:
    return ipaddress.IPv4Address(node_ip).packed.hex()


def node_of_job_id(job_id_: str) -> str | None:
    """The node IP encoded in a backup job's first 8 hex digits, or None if it has none."""
    try:
        return str(ipaddress.IPv4Address(bytes.fromhex(job_id_[:8])))
    except ValueError:
        return None


class Placement(NamedTuple):
    """One backup item of one instance on one node, with its backup job (None: its schedule is
    invalid, or too busy for that node's daemon). A tuple: one is made per placement of the
    cluster, and a frozen dataclass costs several times as much to build."""

    node: str
    proc: Proc
    pod: Pod
    item: BackupItem
    path: str
    job: Job | None


def placements(cluster: Cluster) -> Iterator[Placement]:
    """Every (item, instance, node) in (proc, instance, item, container) order. Worked out once
    per cluster (a scheduled run walks them five times: the reconcile, the retention floor,
    the status, the archives, the drills), again only if its procs were replaced; the jobs are
    shared, so never changed by a reader."""
    key = (id(cluster.procs), len(cluster.busy))
    if cluster.placed is None or cluster.placed[0] != key:
        cluster.placed = (key, tuple(_placements(cluster)))
    return iter(cluster.placed[1])


def _placements(cluster: Cluster) -> Iterator[Placement]:
    busy = cluster.busy
    for proc in cluster.procs.values():
        app, full_name = proc.app, proc.full_name
        for pod in proc.pods:
            instance, nodes, containers = pod.instance_no, pod.node_ips, pod.container_ids
            joined = " ".join(containers)
            for item in pod.items:
                path, archive = dir_and_archive(app, full_name, instance, item.volume)
                args = {
                    "app": app,
                    "archive": archive,
                    "containers": containers,
                    "instanceNo": instance,
                    "mode": item.mode,
                    "path": path,
                    "postRun": item.post_run,
                    "preRun": item.pre_run,
                    "proc": full_name,
                    "volume": item.volume,
                }
                digest = _backup_digest(item.schedule, args, joined) if item.schedule_ok else ""
                for node in nodes:
                    job: Job | None = None
                    if digest and not (busy and (node, full_name, instance, item.volume) in busy):
                        job = {
                            "id": _ip_hex(node) + digest,
                            "spec": item.schedule,
                            "action": BACKUP_ACTION,
                            "args": args,
                            "type": "cron",
                            "sleep": False,
                        }
                    yield Placement(node, proc, pod, item, path, job)


def generate(cluster: Cluster, hold: frozenset[tuple[str, str]] | set[tuple[str, str]] = frozenset()
             ) -> dict[str, list[Job]]:
    """Every node's job list: backup jobs in (proc, instance, item, container) order, expire last.

    A backup item gets a backup job on the node of each container of its pod, unless its schedule
    is invalid (the daemon would drop it). Its dir joins the node's expire job whenever its expire
    is valid, unless ``hold`` names it ((node, dir) pairs: the retention floor,
    :mod:`chalicelib.core.retention`, which holds every dir without a recent good backup, a dir
    whose schedule broke among them: what was made before is kept, not aged out).
    """
    with gc_paused():
        return _generate(cluster, hold)


def _generate(cluster: Cluster, hold: frozenset[tuple[str, str]] | set[tuple[str, str]]
              ) -> dict[str, list[Job]]:
    backups: dict[str, list[Job]] = {}
    expire: dict[str, list[str]] = {}
    for node, _, _, item, path, job in placements(cluster):
        if job is not None:
            backups.setdefault(node, []).append(job)
        if item.expire_ok:
            entries = expire.setdefault(node, [])
            if not (hold and (node, path) in hold):
                entries += (path + "@increment" if item.mode == "increment" else path, item.expire)
    result: dict[str, list[Job]] = {}
    for node in sorted(set(backups) | set(expire), key=ipaddress.IPv4Address):
        jobs = backups.get(node, [])
        if node in expire:
            jobs.append(expire_job(_dedupe_pairs(expire[node])))
        result[node] = jobs
    return result


def expire_job(info: list[str]) -> Job:
    """The per-node ``backup_expire`` job (the Go controller left its id empty)."""
    return {
        "id": "",
        "spec": EXPIRE_SCHEDULE,
        "action": EXPIRE_ACTION,
        "args": {"info": info},
        "type": "cron",
        "sleep": False,
    }


def _dedupe_pairs(info: list[str]) -> list[str]:
    pairs = dict.fromkeys(zip(info[::2], info[1::2], strict=True))
    return [x for pair in pairs for x in pair]


def list_version(jobs: list[Job]) -> str:
    """A version string for a node's list that changes iff the list changes (the daemon compares it)."""
    canonical = json.dumps(jobs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def public_job(job: Job) -> Job:
    """A job as users see it: backup jobs hide ``args.path`` and ``args.archive``, as the original did."""
    if job.get("action") != BACKUP_ACTION or not isinstance(job.get("args"), dict):
        return job
    args = {k: v for k, v in job["args"].items() if k not in ("path", "archive")}
    return {**job, "args": args}
