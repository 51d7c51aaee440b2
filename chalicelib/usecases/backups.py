"""Backups of a proc: list, inspect, open and delete (recover and migrate: ``operations``).

Ownership is checked before any daemon is asked to act: a backup name must carry the proc's
archive prefix, and the daemon's entity for it must come from the proc's own volume dirs
(``hello.web.web-2`` shares ``hello.web.web``'s prefix). Lists answer with the nodes that replied
and name the ones that did not; single-target actions fail with the daemon's error (502/504).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.core.answers import Partial
from chalicelib.core.cluster import Cluster, Proc
from chalicelib.core.naming import check_files, check_volume, made_from, owned_backup
from chalicelib.core.types import BackupEntity
from chalicelib.deps import Deps
from chalicelib.edges.backupd import BackupdClient, BackupdError, dirs_query
from chalicelib.errors import BadRequest, ControllerError, NotFound, UpstreamError, UpstreamTimeout

ENTITY_FIELDS = ("volume", "name", "size", "created", "instanceNo")  # the original's BackupEntity
MAX_DELETE = 100
_NOT_FOUND_STATUSES = (400, 404, 503)  # how the daemon says "no such backup/job"


def proc_of(deps: Deps, app: str, proc: str) -> tuple[Cluster, Proc]:
    """The cluster (of ``app``) and the proc, or 404 naming what is unknown."""
    cluster = deps.cluster(app)
    return cluster, cluster.proc(app, proc)


def _entity(entity: Mapping[str, Any]) -> BackupEntity:
    return {k: entity.get(k) for k in ENTITY_FIELDS}  # type: ignore[return-value]


def _owned(p: Proc, name: str) -> str:
    return owned_backup(p.app, p.full_name, name)


def _is_not_found(error: ControllerError) -> bool:
    return isinstance(error, BackupdError) and error.upstream_status in _NOT_FOUND_STATUSES


def _not_found_everywhere(errors: Mapping[str, ControllerError]) -> bool:
    return all(_is_not_found(e) for e in errors.values())


def _raise_unreachable(what: str, errors: Mapping[str, ControllerError]) -> None:
    """Some nodes failed and the answer may be on one of them: fail naming each node and why."""
    failed = [e for e in errors.values() if not _is_not_found(e)]
    kind = UpstreamTimeout if all(isinstance(e, UpstreamTimeout) for e in failed) else UpstreamError
    raise kind(f"{what}: " + "; ".join(e.message for e in failed))


def locate(deps: Deps, p: Proc, name: str) -> tuple[str, dict[str, Any]]:
    """The node whose daemon holds backup ``name`` of ``p`` (its namespace), and its entity."""
    found = deps.fan_out(p.node_ips, lambda c: c.backup_info(name))
    for node, entity in found.results.items():
        if made_from(p.app, p.full_name, entity):
            return node, entity
    if found.errors and not _not_found_everywhere(found.errors):
        _raise_unreachable(f"cannot tell whether backup {name!r} exists", found.errors)
    raise NotFound(f"backup {name!r} of {p.full_name} (app {p.app}) not found on "
                   f"{', '.join(p.node_ips) or 'any node'}", code="unknown_backup")


def list_backups(deps: Deps, app: str, proc: str, volumes: list[str] | None) -> Partial:
    """Backups of the given volumes (None: every declared volume) on every node of the proc."""
    _, p = proc_of(deps, app, proc)
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
    _, p = proc_of(deps, app, proc)
    return _entity(locate(deps, p, _owned(p, name))[1])


def file_list(deps: Deps, app: str, proc: str, name: str) -> list[dict[str, Any]]:
    """Files inside an increment backup dir (``?open=true``), asked of the node that holds it."""
    _, p = proc_of(deps, app, proc)
    _owned(p, name)
    if name.endswith(".tar.gz"):
        raise BadRequest(f"{name} is a full backup; open=true lists the files of increment backups",
                         code="not_increment")
    node, _ = locate(deps, p, name)
    return deps.daemon(node).file_list(name)


def delete(deps: Deps, app: str, proc: str, files: list[str]) -> None:
    """Delete backups (or files inside increment backups) of the proc, each on the nodes that hold it.

    Every name is checked first, the way GET and recover check them: if any is unknown or another
    proc's, nothing is deleted (404 naming them)."""
    _, p = proc_of(deps, app, proc)
    if not files:
        raise BadRequest("files: name at least one backup to delete", code="no_files")
    if len(files) > MAX_DELETE:
        raise BadRequest(f"files: at most {MAX_DELETE} names per request, got {len(files)}",
                         code="too_many_files")
    names = list(dict.fromkeys(_owned(p, f.split("/")[0]) for f in check_files(files)))

    def held(client: BackupdClient) -> set[str]:
        out = set()
        for name in names:
            try:
                if made_from(p.app, p.full_name, client.backup_info(name)):
                    out.add(name)
            except BackupdError as e:
                if not _is_not_found(e):
                    raise
        return out

    found = deps.fan_out(p.node_ips, held)
    holders = {n: [node for node, have in found.results.items() if n in have] for n in names}
    missing = [n for n in names if not holders[n]]
    if missing and found.errors and not _not_found_everywhere(found.errors):
        _raise_unreachable(f"cannot tell whether {', '.join(missing)} exist", found.errors)
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
    per_node: dict[str, list[str]] = {}
    for f in files:
        for node in holders[f.split("/")[0]]:
            per_node.setdefault(node, []).append(f)
    result = deps.fan_out(per_node, lambda c: c.delete(per_node[c.node]))
    if result.errors:
        done = ", ".join(result.results) or "no node"
        raise UpstreamError(f"delete of {', '.join(files)} done on {done} but failed on: "
                            + "; ".join(e.message for e in result.errors.values()))
