"""The use cases behind the user routes: ask lainlet once, check ownership, ask the right daemons.

Ownership is checked here, before any daemon is contacted: a backup name must carry the archive
prefix of the app and proc in the URL, a job id must be one of the app's generated jobs, a node
must be one lainlet names. Lists answer with the nodes that replied and name the ones that did
not; single-target actions fail with the daemon's error (502/504).
"""

from __future__ import annotations

import hmac
import logging
import posixpath
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from chalicelib import reconcile, status
from chalicelib.core import jobs as joblib
from chalicelib.core.backupspec import is_volume_path
from chalicelib.core.cluster import VOLUME_ROOT, Cluster, Proc, archive_prefix, is_node_ip, volume_dir
from chalicelib.core.recordschema import STATES, parse_record, record_app
from chalicelib.edges.backupd import BackupdClient, BackupdError, fan_out
from chalicelib.edges.dynamo import table_for
from chalicelib.edges.lainlet import fetch_cluster
from chalicelib.edges.records import RecordStore, month_query
from chalicelib.edges.state import NodeStateStore
from chalicelib.errors import (
    BadRequest,
    ControllerError,
    Forbidden,
    NotFound,
    Unauthorized,
    UpstreamError,
    UpstreamTimeout,
)
from chalicelib.settings import Settings
from chalicelib.web import Answer, check_name

ENTITY_FIELDS = ("volume", "name", "size", "created", "instanceNo")  # the original's BackupEntity
JOB_ACTIONS = ("run", "sleep", "wakeup")
JOB_QUERY = re.compile(r"^(action|type|id|args_\w+)$")
_NOT_FOUND_STATUSES = (400, 404, 503)  # how the daemon says "no such backup/job"
T = TypeVar("T")
log = logging.getLogger("backupctl")


def _proc(settings: Settings, app: str, proc: str) -> tuple[Cluster, Proc]:
    cluster = fetch_cluster(settings, app)
    return cluster, cluster.proc(app, proc)


def _entity(entity: Mapping[str, Any]) -> dict[str, Any]:
    return {k: entity.get(k) for k in ENTITY_FIELDS}


def _check_volume(volume: str) -> str:
    if not is_volume_path(volume):
        raise BadRequest(f"volume {volume!r} is not a volume path such as /data", code="bad_volume")
    return volume


def owned_backup(proc: Proc, name: str) -> str:
    """``name`` if it is a backup (file or increment dir) of ``proc``, else 403 naming the owner rule."""
    check_name(name, "backup name")
    prefix = archive_prefix(proc.app, proc.full_name)
    if not re.fullmatch(re.escape(prefix) + r"[0-9]+-.+", name):
        raise Forbidden(f"backup {name!r} does not belong to {proc.full_name} of app {proc.app} "
                        f"(its backups are named {prefix}<instance>-…)", code="not_your_backup")
    return name


def _relative_files(files: list[str]) -> list[str]:
    for f in files:
        if f.startswith("/") or ".." in f.split("/") or "\x00" in f:
            raise BadRequest(f"file {f!r} must be a path inside the backup, without '..'",
                             code="bad_file")
    return files


def _is_not_found(error: ControllerError) -> bool:
    return isinstance(error, BackupdError) and error.upstream_status in _NOT_FOUND_STATUSES


def _not_found_everywhere(errors: Mapping[str, ControllerError]) -> bool:
    return all(_is_not_found(e) for e in errors.values())


def _raise_unreachable(what: str, errors: Mapping[str, ControllerError]) -> None:
    """Some nodes failed and the answer may be on one of them: fail naming each node and why."""
    failed = [e for e in errors.values() if not _is_not_found(e)]
    kind = UpstreamTimeout if all(isinstance(e, UpstreamTimeout) for e in failed) else UpstreamError
    raise kind(f"{what}: " + "; ".join(e.message for e in failed))


def _of_proc(proc: Proc, entity: Any) -> bool:
    """Whether a daemon's backup entity was made from one of ``proc``'s volumes; daemons are
    asked by name or dir, and this keeps a wrong answer from showing another app's backup."""
    root = posixpath.join(VOLUME_ROOT, proc.app, proc.full_name) + "/"
    return isinstance(entity, dict) and str(entity.get("source", "")).startswith(root)


def locate_backup(settings: Settings, proc: Proc, name: str) -> tuple[str, dict[str, Any]]:
    """The node whose daemon knows backup ``name`` (its namespace), and the daemon's entity."""
    found = fan_out(proc.node_ips, lambda c: c.backup_info(name), settings)
    for node, entity in found.results.items():
        if _of_proc(proc, entity):
            return node, entity
    if found.errors and not _not_found_everywhere(found.errors):
        _raise_unreachable(f"cannot tell whether backup {name!r} exists", found.errors)
    raise NotFound(f"backup {name!r} of {proc.full_name} (app {proc.app}) not found on "
                   f"{', '.join(proc.node_ips) or 'any node'}", code="unknown_backup")


# -- backups ---------------------------------------------------------------------------------------

def list_backups(settings: Settings, app: str, proc: str, volumes: list[str] | None) -> Answer:
    """Backups of the given volumes (None: every declared volume) on every node of the proc."""
    _, p = _proc(settings, app, proc)
    wanted = p.volumes if volumes is None else [_check_volume(v) for v in volumes]
    if not wanted:
        return Answer([])
    dirs = p.volume_dirs(wanted)
    result = fan_out(p.node_ips, lambda c: c.backups(dirs), settings)
    body = [_entity(e) for entities in result.results.values() for e in entities if _of_proc(p, e)]
    return Answer(body, unreachable=result.unreachable)


def backup_info(settings: Settings, app: str, proc: str, name: str) -> Answer:
    _, p = _proc(settings, app, proc)
    _, entity = locate_backup(settings, p, owned_backup(p, name))
    return Answer(_entity(entity))


def backup_file_list(settings: Settings, app: str, proc: str, name: str) -> Answer:
    """Files inside an increment backup dir (``?open=true``), asked of the node that holds it
    once its entity says it is this proc's (as GET and recover check)."""
    _, p = _proc(settings, app, proc)
    owned_backup(p, name)
    if name.endswith(".tar.gz"):
        raise BadRequest(f"{name} is a full backup; open=true lists the files of increment backups",
                         code="not_increment")
    node, _ = locate_backup(settings, p, name)
    return Answer(BackupdClient(node, settings).file_list(name))


MAX_DELETE = 100


def delete_backups(settings: Settings, app: str, proc: str, files: list[str]) -> Answer:
    """Delete backups (or files inside increment backups) of the proc, each on the nodes that hold it.

    Every name is checked first, the way GET and recover check them (the daemon's entity must come
    from this proc's volumes): if any is unknown or another proc's, nothing is deleted (404)."""
    _, p = _proc(settings, app, proc)
    if not files:
        raise BadRequest("files: name at least one backup to delete", code="no_files")
    if len(files) > MAX_DELETE:
        raise BadRequest(f"files: at most {MAX_DELETE} names per request, got {len(files)}",
                         code="too_many_files")
    names = list(dict.fromkeys(owned_backup(p, f.split("/")[0]) for f in _relative_files(files)))

    def held(client: BackupdClient) -> set[str]:
        out = set()
        for name in names:
            try:
                if _of_proc(p, client.backup_info(name)):
                    out.add(name)
            except BackupdError as e:
                if not _is_not_found(e):
                    raise
        return out

    found = fan_out(p.node_ips, held, settings)
    holders = {n: [node for node, have in found.results.items() if n in have] for n in names}
    missing = [n for n in names if not holders[n]]
    if missing and found.errors and not _not_found_everywhere(found.errors):
        _raise_unreachable(f"cannot tell whether {', '.join(missing)} exist", found.errors)
    inner = [f for f in files if "/" in f and f.split("/")[0] not in missing]
    for f in inner:
        name, _, path = f.partition("/")
        listing = {e["name"] for e in BackupdClient(holders[name][0], settings).file_list(name)}
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
    result = fan_out(per_node, lambda c: c.delete(per_node[c.node]), settings)
    if result.errors:
        done = ", ".join(result.results) or "no node"
        raise UpstreamError(f"delete of {', '.join(files)} done on {done} but failed on: "
                            + "; ".join(e.message for e in result.errors.values()))
    return Answer(None, status=204)


def restore(settings: Settings, app: str, proc: str, name: str, files: list[str],
            to: int | None = None, volume: str | None = None) -> Answer:
    """Recover a backup into its own instance, or (``to``/``volume``) migrate it into another.

    The daemon of the target instance's node does the work; ``namespace`` is the node whose
    daemon holds the backup, which is where the backup was made even if the instance moved since.
    """
    cluster, p = _proc(settings, app, proc)
    owned_backup(p, name)
    increment = not name.endswith(".tar.gz")
    if increment and not files:
        raise BadRequest(f"files: {name} is an increment backup; name the files to restore "
                         "(list them with ?open=true)", code="no_files")
    _relative_files(files)
    dest_dir = ""
    if to is not None:
        if volume is None:
            raise BadRequest("volume: the declared volume to migrate into is required",
                             code="no_volume")
        item = p.item(_check_volume(volume))
        if item is None:
            raise BadRequest(f"volume {volume!r} is not a backup volume of {p.full_name} "
                             f"(volumes: {', '.join(p.volumes) or 'none'})", code="unknown_volume")
        p.pod(to)  # 400 naming the instances if it does not exist
        dest_dir = volume_dir(p.app, p.full_name, to, item.volume)
    namespace, entity = locate_backup(settings, p, name)
    target_instance = to if to is not None else int(entity.get("instanceNo") or 0)
    target = cluster.node_of(p, target_instance)
    form = [("namespace", namespace), ("destDir", dest_dir), ("app", p.app),
            ("proc", p.full_name), ("instanceNo", str(target_instance))]
    client = BackupdClient(target, settings)
    if increment:
        form += [("files", f) for f in files]
        return Answer(client.recover_increment(name, form))
    return Answer(client.recover_full(name, form))


# -- jobs ------------------------------------------------------------------------------------------

def _owned_job(settings: Settings, app: str, job_id: str) -> str:
    """The node of ``job_id`` if it is one of the app's backup jobs now, else 404."""
    cluster = fetch_cluster(settings, app)
    cluster.procs_of(app)  # 404 for an unknown app first
    ids = {j["id"] for node_jobs in joblib.generate(cluster).values() for j in node_jobs if j["id"]}
    if job_id not in ids:
        raise NotFound(f"job {job_id!r} is not a backup job of app {app!r}", code="unknown_job")
    return joblib.node_of_job_id(job_id) or ""


def app_jobs(settings: Settings, app: str, query: Mapping[str, str]) -> Answer:
    """The app's jobs as the daemons hold them; filters pass through, the app filter is forced."""
    cluster = fetch_cluster(settings, app)
    nodes = cluster.node_ips_of_app(app)
    params = {k: v for k, v in query.items() if JOB_QUERY.fullmatch(k)}
    params["args_app"] = app  # after the user's filters: never another app's jobs
    result = fan_out(nodes, lambda c: c.jobs(params), settings)
    body = [{**entry, "job": joblib.public_job(entry["job"])}
            for entries in result.results.values() for entry in entries
            if isinstance(entry, dict) and isinstance(entry.get("job"), dict)
            and entry["job"].get("args", {}).get("app") == app]
    return Answer(body, unreachable=result.unreachable)


def _on_job_daemon[T](settings: Settings, app: str, job_id: str, call: Callable[[BackupdClient], T],
                   node: str | None = None) -> T:
    """Run ``call`` on the daemon of one of the app's jobs; "no such job" there becomes a 404."""
    node = node or _owned_job(settings, app, job_id)
    try:
        return call(BackupdClient(node, settings))
    except BackupdError as e:
        if e.upstream_status == 400:
            raise NotFound(f"job {job_id} of app {app} is not on {node} yet (it is pushed on the "
                           f"next reconcile): {e.message}", code="job_not_pushed") from None
        raise


def app_job(settings: Settings, app: str, job_id: str) -> Answer:
    return Answer(joblib.public_job(_on_job_daemon(settings, app, job_id, lambda c: c.job(job_id))))


def job_action(settings: Settings, app: str, job_id: str, action: str) -> Answer:
    """run → the record id; sleep/wakeup → "OK", as the original answered.

    A pause lives in two places, DynamoDB (so every later push and a restarted daemon get it
    back) and the daemon. The intent is written first, so a DynamoDB failure changes nothing; if
    the daemon then fails, the intent is rolled back and the answer says so."""
    if action not in JOB_ACTIONS:
        raise BadRequest(f"action {action!r} is not one of {', '.join(JOB_ACTIONS)}",
                         code="bad_action")
    if action == "run":
        return Answer(_on_job_daemon(settings, app, job_id, lambda c: c.run(job_id)))
    node = _owned_job(settings, app, job_id)
    store = _node_states(settings)
    before = store.is_paused(node, job_id)
    store.set_pause(node, job_id, action == "sleep")
    try:
        _on_job_daemon(settings, app, job_id, lambda c: c.job_action(job_id, action), node)
    except ControllerError as e:
        try:
            store.set_pause(node, job_id, before)
            e.message += f"; nothing was changed (the job is {'paused' if before else 'running'})"
        except ControllerError:
            e.message += (f"; the {action} is recorded but could not be undone: the next push to "
                          f"{node} applies it")
        raise
    return Answer("OK")


def run_once(settings: Settings, app: str, job_id: str) -> Answer:
    return Answer(_on_job_daemon(settings, app, job_id, lambda c: c.run_once(job_id)))


# -- cluster and servers ---------------------------------------------------------------------------

def generated_jobs(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Every node's job list as generated from lainlet now."""
    return joblib.generate(fetch_cluster(settings))


def _known_node(settings: Settings, ip: str) -> Cluster:
    if not is_node_ip(ip):
        raise BadRequest(f"{ip!r} is not an IPv4 address", code="bad_ip")
    cluster = fetch_cluster(settings)
    if ip not in cluster.node_ips():
        raise NotFound(f"{ip} is not a node lainlet names", code="unknown_node")
    return cluster


def server_jobs(settings: Settings, ip: str) -> Answer:
    return Answer(joblib.generate(_known_node(settings, ip)).get(ip, []))


def server_crond(settings: Settings, ip: str, action: str) -> Answer:
    if action not in ("start", "stop"):
        raise BadRequest(f"action {action!r} is not start or stop", code="bad_action")
    _known_node(settings, ip)
    BackupdClient(ip, settings).crond(action)
    return Answer("OK")


def server_debug(settings: Settings, ip: str) -> Answer:
    _known_node(settings, ip)
    return Answer(BackupdClient(ip, settings).debug())


# -- records ---------------------------------------------------------------------------------------

def _node_states(settings: Settings) -> NodeStateStore:
    return NodeStateStore(table_for(settings))


def _store(settings: Settings) -> RecordStore:
    return RecordStore(table_for(settings), settings.record_retention_days)


def notify(settings: Settings, body: bytes | None, token: str) -> Answer:
    """Store a record a daemon posted; with ``NOTIFY_TOKEN`` set, the post must carry it."""
    if settings.notify_token and not hmac.compare_digest(token.encode(),
                                                         settings.notify_token.encode()):
        raise Unauthorized("notify needs ?token=<NOTIFY_TOKEN> (the URL the controller gave the "
                           "daemons)", code="bad_notify_token")
    record = parse_record(body, now=datetime.now(UTC),
                          skew=timedelta(seconds=settings.notify_clock_skew_seconds))
    stored = _store(settings).put(record)
    log.info("event=notify rid=%s app=%s state=%s stored=%s", record["rid"], record_app(record),
             record["state"], stored)
    return Answer({"rid": record["rid"], "stored": stored})


def records(settings: Settings, app: str, query: Mapping[str, str]) -> Answer:
    total, month, year = month_query(query.get("total"), query.get("month"), query.get("year"))
    state = query.get("state") or None
    if state is not None and state not in STATES:
        raise BadRequest(f"state must be one of {', '.join(STATES)}, got {state!r}",
                         code="bad_state")
    return Answer(_store(settings).month(app, year, month, total, state))


def record(settings: Settings, app: str, rid: str) -> Answer:
    return Answer(_store(settings).get(app, rid))


def backup_records(settings: Settings) -> Answer:
    name = f"{settings.table_name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    return Answer(_store(settings).backup(name), status=201)


# -- reconcile -------------------------------------------------------------------------------------

CONFIRMATIONS = ("removals",)


def reconcile_now(settings: Settings, confirm: list[str] | None = None) -> Answer:
    """Run the reconcile now; ``?confirm=removals`` applies the removals it holds."""
    unknown = [c for c in confirm or [] if c not in CONFIRMATIONS]
    if unknown:
        raise BadRequest(f"confirm: {', '.join(map(repr, unknown))} is not one of "
                         f"{', '.join(CONFIRMATIONS)}", code="bad_confirm")
    return Answer(reconcile.run(settings, _node_states(settings), confirm=bool(confirm)))


def scheduled_reconcile(settings: Settings) -> dict[str, Any]:
    """The scheduled run's result; every failure becomes ``{"ok": false, "error"}``, never raised."""
    try:
        return reconcile.run(settings, _node_states(settings))
    except ControllerError as e:
        return {"ok": False, "error": e.message}
    except Exception as e:  # the run already logged it and kept it in the history
        return {"ok": False, "error": f"internal error ({type(e).__name__})"}


def reconcile_plan(settings: Settings) -> Answer:
    return Answer(reconcile.plan_answer(reconcile.observe(settings, _node_states(settings))))


def reconcile_history(settings: Settings, limit: str | None) -> Answer:
    total, _, _ = month_query(limit or "20", None, None)
    return Answer(_node_states(settings).runs(total))


def problems(settings: Settings) -> Answer:
    """Spec problems the original silently dropped (bad schedules, expires, annotations, IPs),
    and the job removals the reconcile holds because lainlet's answer looks wrong."""
    cluster = fetch_cluster(settings)
    found = [p.to_dict() for p in cluster.problems]
    try:
        seen = reconcile.observe(settings, _node_states(settings), cluster=cluster,
                                 check_restarts=False)
    except reconcile.NothingToKeep as e:
        return Answer([*found, {"kind": "refused_empty_spec", "app": "", "proc": "", "instance": None,
                                "reason": e.message, "volume": ""}])
    if seen.holding:
        why = "; ".join(seen.verdict.reasons)
        found += [{"kind": "held_removal", "app": r.app, "proc": r.proc, "instance": r.instance,
                   "volume": r.volume,
                   "reason": f"job {r.job_id} on {r.node} is kept although lainlet's answer drops "
                             f"it ({why}; held {seen.held_runs} of "
                             f"{settings.removal_confirm_runs} runs; POST "
                             "/api/v2/system/reconcile?confirm=removals applies it now)"}
                  for r in seen.verdict.held]
    return Answer(found)


# -- backup freshness ------------------------------------------------------------------------------

def _status(settings: Settings, cluster: Cluster) -> dict[str, Any]:
    return status.answer(status.assess(settings, cluster, _node_states(settings), _store(settings)))


def app_backup_status(settings: Settings, app: str) -> Answer:
    cluster = fetch_cluster(settings, app)
    cluster.procs_of(app)  # 404 for an unknown app
    return Answer(_status(settings, cluster))


def system_backup_status(settings: Settings) -> Answer:
    return Answer(_status(settings, fetch_cluster(settings)))
