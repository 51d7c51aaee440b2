"""Backups of a proc: list, inspect, open and delete (recover and migrate: ``operations``).

Ownership is checked before any daemon is asked to act: a backup name must carry the proc's
archive prefix, and the daemon's entity for it must come from the proc's own volume dirs
(``hello.web.web-2`` shares ``hello.web.web``'s prefix). Lists answer with the nodes that replied
and name the ones that did not; single-target actions fail with the daemon's error (502/504).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from logging import WARNING
from typing import Any

from chalicelib.core.cluster import Cluster, Proc
from chalicelib.core.formats.answers import Partial
from chalicelib.core.gotime import format_time, parse_go_time
from chalicelib.core.jobs import placements
from chalicelib.core.naming import check_files, check_volume, made_from, owned_backup
from chalicelib.core.retention import archive_of
from chalicelib.core.types import BackupEntity
from chalicelib.deps import Deps
from chalicelib.edges import fleet
from chalicelib.edges.backupd import BackupdClient, BackupdError, dirs_query
from chalicelib.errors import BadRequest, Conflict, NotFound, UpstreamError
from chalicelib.logs import event, log

ENTITY_FIELDS = ("volume", "name", "size", "created", "instanceNo")  # the original's BackupEntity
MAX_DELETE = 100


def _proc(deps: Deps, app: str, proc: str) -> tuple[Cluster, Proc]:
    """The cluster (of ``app``) and the proc, or 404 naming what is unknown."""
    cluster = deps.cluster(app)
    return cluster, cluster.proc(app, proc)


def _entity(entity: Mapping[str, Any]) -> BackupEntity:
    return {k: entity.get(k) for k in ENTITY_FIELDS}  # type: ignore[return-value]


def _owned(p: Proc, name: str) -> str:
    return owned_backup(p.app, p.full_name, name)


def list_backups(deps: Deps, app: str, proc: str, volumes: list[str] | None) -> Partial:
    """Backups of the given volumes (None: every declared volume) on every node of the proc."""
    _, p = _proc(deps, app, proc)
    wanted = p.volumes if volumes is None else [check_volume(v) for v in volumes]
    undeclared = [v for v in wanted if p.item(v) is None]
    if undeclared:
        raise NotFound(f"{p.full_name} declares no backup of {', '.join(undeclared)} (declared: "
                       f"{', '.join(p.volumes) or 'none'})", code="unknown_volume")
    if not wanted:
        return Partial([])
    query = dirs_query(p.volume_dirs(wanted))  # encoded once for every node
    result = deps.fan_out(p.node_ips, lambda c: c.backups(query))
    body = [_entity(e) for entities in result.results.values() for e in entities
            if made_from(p.app, p.full_name, e)]
    return Partial(body, result.unreachable)


def backup_info(deps: Deps, app: str, proc: str, name: str) -> BackupEntity:
    _, p = _proc(deps, app, proc)
    return _entity(fleet.locate(deps.fan_out, p, _owned(p, name))[1])


def file_list(deps: Deps, app: str, proc: str, name: str) -> list[dict[str, Any]]:
    """Files inside an increment backup dir (``?open=true``), asked of the node that holds it."""
    _, p = _proc(deps, app, proc)
    _owned(p, name)
    if name.endswith(".tar.gz"):
        raise BadRequest(f"{name} is a full backup; open=true lists the files of increment backups",
                         code="not_increment")
    node, _ = fleet.locate(deps.fan_out, p, name)
    return deps.daemon(node).file_list(name)


def delete(deps: Deps, app: str, proc: str, files: list[str], force: bool = False) -> None:
    """Delete backups (or files inside increment backups) of the proc, each on the nodes that hold it.

    Every name is checked first, the way GET and recover check them: if any is unknown or another
    proc's, nothing is deleted (404 naming them). A backup that is the newest good one of its
    job (volume × instance on its node) is refused (409 ``newest_good_backup``) unless ``force``;
    a forced one is marked gone before it is deleted, so the retention floor stops counting it."""
    cluster, p = _proc(deps, app, proc)
    if not files:
        raise BadRequest("files: name at least one backup to delete", code="no_files")
    if len(files) > MAX_DELETE:
        raise BadRequest(f"files: at most {MAX_DELETE} names per request, got {len(files)}",
                         code="too_many_files")
    names = list(dict.fromkeys(_owned(p, f.split("/")[0]) for f in check_files(files)))

    def held(client: BackupdClient) -> dict[str, dict[str, Any]]:
        out = {}
        for name in names:
            try:
                entity = client.backup_info(name)
                if made_from(p.app, p.full_name, entity):
                    out[name] = entity
            except BackupdError as e:
                if not fleet.is_not_found(e):
                    raise
        return out

    found = deps.fan_out(p.node_ips, held)
    holders = {n: [node for node, have in found.results.items() if n in have] for n in names}
    missing = [n for n in names if not holders[n]]
    if missing and found.errors and not fleet.not_found_everywhere(found.errors):
        fleet.raise_unreachable(f"cannot tell whether {', '.join(missing)} exist", found.errors)
    for f in files:
        name, _, path = f.partition("/")
        if path and name not in missing:
            listing = {e["name"] for e in deps.daemon(holders[name][0]).file_list(name)}
            if path not in listing and path.split("/")[0] not in listing:
                missing.append(f)
    if missing:
        raise NotFound(f"no backup {', '.join(missing)} of {p.full_name} (app {p.app}) on "
                       f"{', '.join(p.node_ips) or 'any node'}; nothing was deleted",
                       code="unknown_backup")
    whole = {f: found.results[holders[f][0]][f] for f in dict.fromkeys(files) if f in holders}
    newest = _newest_good(deps, cluster, p, whole)
    if newest and not force:
        raise Conflict(_why_kept(deps, p, [whole[n] for n in sorted(newest)], set(whole)),
                       code="newest_good_backup")
    for name, job_ids in newest.items():
        for job_id in job_ids:
            deps.records.mark_gone(job_id, name, f"deleted with force=true at "
                                                 f"{format_time(deps.clock())}")
    if newest:
        event(log, "newest_good_deleted", level=WARNING, app=p.app, proc=p.full_name,
              files=sorted(newest), jobs=sorted(j for ids in newest.values() for j in ids))
    per_node: dict[str, list[str]] = {}
    for f in files:
        for node in holders[f.split("/")[0]]:
            per_node.setdefault(node, []).append(f)
    result = deps.fan_out(per_node, lambda c: c.delete(per_node[c.node]))
    if result.errors:
        done = ", ".join(result.results) or "no node"
        raise UpstreamError(f"delete of {', '.join(files)} done on {done} but failed on: "
                            + "; ".join(e.message for e in result.errors.values()))


def _newest_good(deps: Deps, cluster: Cluster, p: Proc, entities: Mapping[str, dict[str, Any]]
                 ) -> dict[str, list[str]]:
    """``{name: [job id]}`` of the backups in ``entities`` (deleted whole: an archive, or an
    increment backup's one dir) that are the newest good backup of a job of their volume dir and
    instance (the daemon's entity: ``source``, ``instanceNo``; the job's ``args.path``)."""
    wanted = {(str(e.get("source", "")), e.get("instanceNo")) for e in entities.values()}
    jobs = {pl.job["id"]: (pl.path, pl.pod.instance_no) for pl in placements(cluster)
            if pl.job and pl.proc.full_name == p.full_name
            and (pl.path, pl.pod.instance_no) in wanted}
    out: dict[str, list[str]] = {}
    for job_id, good in (deps.records.goods(list(jobs)) if jobs else {}).items():
        name = archive_of(good)
        entity = entities.get(name)
        if entity and not good.get("gone") and jobs[job_id] == (entity.get("source"),
                                                                  entity.get("instanceNo")):
            out.setdefault(name, []).append(job_id)
    return out


def _why_kept(deps: Deps, p: Proc, kept: list[dict[str, Any]], deleting: set[str]) -> str:
    """The 409's words: each newest good backup (``kept``: their entities), the age of the next
    newest backup of its volume and instance (asked of the proc's nodes), how to delete it anyway."""
    now = deps.clock()
    dirs = sorted({str(e["source"]) for e in kept})
    found = deps.fan_out(p.node_ips, lambda c: c.backups(dirs))
    listed = [e for entities in found.results.values() for e in entities
              if made_from(p.app, p.full_name, e) and e["name"] not in deleting]
    parts = []
    for entity in kept:
        others = sorted((e for e in listed if e["source"] == entity["source"]
                         and e["instanceNo"] == entity["instanceNo"]),
                        key=lambda e: _created(e) or now, reverse=True)
        what = (f"{entity['name']} is the newest good backup of {p.full_name} instance "
                f"{entity['instanceNo']} volume {entity['volume']} (made {entity['created']})")
        if others:
            when = _created(others[0])
            age = f"{_age(now - when)} old" if when else "of unknown age"
            what += f"; the next newest backup of it, {others[0]['name']}, is {age}"
        else:
            what += "; there is no other backup of it"
            if found.errors:
                what += f" on the nodes that answered (not {', '.join(found.errors)})"
        parts.append(what)
    return ("; ".join(parts) + ". Deleting it leaves no good backup of it on record (its dir is "
            "then kept out of the expire job until a new good backup exists); to delete it "
            "anyway, POST again with ?force=true. Nothing was deleted")


def _created(entity: Mapping[str, Any]) -> datetime | None:
    try:
        return parse_go_time(str(entity.get("created", "")))[0]
    except ValueError:
        return None


def _age(delta: timedelta) -> str:
    """``12 minutes``, ``5.0 hours``, ``3.2 days``."""
    seconds = max(0.0, delta.total_seconds())
    if seconds < 3600:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"
