"""Restore drills: where they go, which ones the schedule starts, and the drill area's setup.

A drill is a restore operation (:mod:`chalicelib.usecases.operations` starts and follows it) of
kind ``drill`` into the node's drill area; :mod:`chalicelib.core.drill` says what it proves. This
module makes the plans: one asked for by a user (a named backup), and the scheduler's, which
keeps every item of the cluster proven within ``DRILL_CYCLE_DAYS``: in the ``DRILL_WINDOW``
hours, one drill per node, none on a node whose daemon has tasks running, within
``DRILL_BYTES_PER_NIGHT``, the items verified longest ago first.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from logging import WARNING
from typing import Any

from chalicelib.core import drill
from chalicelib.core.cluster import Cluster
from chalicelib.core.gotime import format_time
from chalicelib.core.jobs import Placement, placements
from chalicelib.core.naming import owned_backup
from chalicelib.core.operation import RestorePlan
from chalicelib.core.paths import archive_name
from chalicelib.core.types import Latest
from chalicelib.deps import Deps
from chalicelib.edges import fleet
from chalicelib.errors import BadRequest, ControllerError
from chalicelib.logs import event, log
from chalicelib.settings import SettingsError


def root(deps: Deps) -> str:
    """``DRILL_ROOT``, checked; a 400 saying how to turn drills on while it is not set."""
    raw = deps.settings.drill_root
    if not raw:
        raise BadRequest("drills are off: set DRILL_ROOT to a dir that exists on every node "
                         "(e.g. /data/lain/drills), then create the dirs GET "
                         "/api/v2/system/drills/setup names", code="drills_off")
    try:
        return drill.check_root(raw)
    except drill.DrillRootError as e:
        raise SettingsError(str(e)) from None


def window(deps: Deps) -> tuple[int, int] | None:
    try:
        return drill.parse_window(deps.settings.drill_window)
    except ValueError as e:
        raise SettingsError(str(e)) from None


def setup(deps: Deps) -> dict[str, Any]:
    """Per node, the drill dirs its volumes need and the one command that makes them."""
    base = root(deps)
    by_node: dict[str, list[str]] = {}
    for p in placements(deps.cluster()):
        by_node.setdefault(p.node, []).append(p.path)
    nodes = drill.setup(by_node, base)
    return {"root": base, "nodes": nodes,
            "script": "\n".join(f"ssh {node} {_quote(n['command'])}" for node, n in nodes.items()),
            "detail": "run each node's command once (as root); a drill whose dir is missing ends "
                      "drill_area_missing and restores nothing. A drill needs free space there of "
                      "about three times the volume while it runs (the restore's .recovering and "
                      ".bak copies) and keeps one copy per dir afterwards"}


def _quote(command: str) -> str:
    return "'" + command.replace("'", "'\\''") + "'"


def plan(deps: Deps, app: str, proc: str, name: str) -> RestorePlan:
    """A drill of the backup ``name`` of the proc: on the node whose daemon holds it."""
    base = root(deps)
    p = deps.cluster(app).proc(app, proc)
    owned_backup(p.app, p.full_name, name)  # 403 for another app's or proc's backup, before anything
    node, entity = fleet.locate(deps.fan_out, p, name)
    instance = int(entity.get("instanceNo") or 0)
    volume, source = str(entity.get("volume") or ""), str(entity.get("source") or "")
    if drill.base_name(source) in ("", ".", "..") or not source.startswith("/"):
        raise BadRequest(f"{name}: its daemon names no source dir to drill it into a dir of the "
                         f"same name ({source[:200]!r})", code="no_source")
    return _plan(deps, base, p.app, p.full_name, instance, volume, node, name, source,
                 str(entity.get("created", "")), int(entity.get("size") or 0),
                 _archives(deps.cluster(p.app)))


def _archives(cluster: Cluster) -> set[str]:
    """The archive names of every item of ``cluster``: a drill's proof archive is none of them."""
    return {archive_name(p.proc.app, p.proc.full_name, p.pod.instance_no, p.item.volume)
            for p in placements(cluster)}


def _plan(deps: Deps, base: str, app: str, proc: str, instance: int, volume: str, node: str,
          name: str, source: str, created: str, size: int, taken: set[str]) -> RestorePlan:
    increment = not name.endswith(".tar.gz")
    proof = drill.proof_archive(archive_name(app, proc, instance, volume))
    dest = drill.drill_dir(base, source)
    _proof_name_free(deps, node, name, proof, dest, increment, taken)
    files, sizes = _sample(deps, node, name, drill.item_key(app, proc, volume, instance)) \
        if increment else ([], {})
    job = drill.proof_job(node, app, proc, instance, proof, dest, increment)
    return RestorePlan(app=app, proc=proc, kind=drill.KIND, name=name, increment=increment,
                       files=files, namespace=node, node=node, instance=instance, volume=volume,
                       dest_dir=dest, source_dir=source, created=created, size=size,
                       file_sizes=sizes, target_job=job["id"], target_archive=proof)


def _proof_name_free(deps: Deps, node: str, name: str, proof: str, dest: str, increment: bool,
                     taken: set[str]) -> None:
    """A 400 when the proof archive's name is a real backup's: the archive of another volume
    (``/data`` and ``/data.drill`` of one instance), or, for an increment drill, a mirror on the
    node made from another dir (a volume gone from the spec). The proof runs would write into
    that backup and the drill's end would delete it."""
    clash = proof in taken
    if not clash and increment:
        try:
            entity = deps.daemon(node).backup_info(proof)
        except ControllerError as e:
            if not fleet.is_not_found(e):
                raise
        else:
            clash = str(entity.get("source") or "") != dest
    if clash:
        raise BadRequest(f"{name} cannot be drilled: its proof archive {proof} is the name of "
                         f"another backup on {node}, which the drill would overwrite and delete",
                         code="proof_name_taken")


def _sample(deps: Deps, node: str, name: str, key: str) -> tuple[list[str], dict[str, int]]:
    """A rotating sample of an increment backup's files (``DRILL_SAMPLE_FILES`` a drill, the
    next ones the next drill), so that drills cover the whole mirror over the cycles."""
    listed = sorted((str(e["name"]), int(e["size"])) for e in deps.daemon(node).file_list(name)
                    if not e.get("dir"))
    if not listed:
        raise BadRequest(f"{name} lists no files to drill", code="no_files")
    before = deps.operations.drilled_one(key)
    chosen = drill.sample(listed, deps.settings.drill_sample_files,
                          before.sample_after if before else "")
    return [f for f, _ in chosen], dict(chosen)


def due(deps: Deps, cluster: Cluster, latest: Latest) -> tuple[list[RestorePlan], dict[str, Any]]:
    """The scheduler: the drills to start now (none outside the window or without a root) and
    what it saw: how many items have a good backup to drill, the ones the budget cannot cover."""
    if not deps.settings.drill_root:
        return [], {}
    base, hours, now = root(deps), window(deps), deps.clock()
    if not drill.in_window(hours, now):
        return [], {"drills": "outside DRILL_WINDOW"}
    drilled = deps.operations.drilled()
    found: dict[str, tuple[Placement, str, int, str]] = {}  # key -> where, backup, size, made
    for p in placements(cluster):
        good: dict[str, Any] = dict((latest.get(p.job["id"], {}) if p.job else {}).get("good") or {})
        result = good.get("result")
        key = drill.item_key(p.proc.app, p.proc.full_name, p.item.volume, p.pod.instance_no)
        if isinstance(result, dict) and result.get("file") and not good.get("gone") \
                and key not in found:
            found[key] = (p, str(result["file"]), int(result.get("size") or 0),
                          str(good.get("start", "")))
    candidates = [drill.Candidate(key, p.node, size, drill.verified_time(drilled.get(key)),
                                  drill.attempted_time(drilled.get(key)))
                  for key, (p, _, size, _) in found.items()]
    budget = deps.settings.drill_bytes_per_night or None
    night = drill.night_of(hours, now)
    left = budget - deps.operations.spent(night) if budget else None
    busy = set(deps.operations.drill_jobs())
    choice = drill.choose(candidates, busy, left, budget, deps.settings.drill_cycle_days, now)
    idle = _idle(deps, [c.node for c in choice.start])
    plans = []
    taken: set[str] | None = None
    for c in choice.start:
        if c.node not in idle:
            continue
        p, name, size, made = found[c.key]
        taken = _archives(cluster) if taken is None else taken
        try:
            plans.append(_plan(deps, base, p.proc.app, p.proc.full_name, p.pod.instance_no,
                               p.item.volume, p.node, name, p.path, made, size, taken))
        except ControllerError as e:  # this item cannot be drilled now: never every other one
            _not_planned(deps, c.key, p, name, e, now)
            continue
    said = [f"{c.key}: {why}" for c, why in choice.uncoverable]
    digest = hashlib.sha256("\n".join(said).encode()).hexdigest()[:16]
    if said and deps.state.say("drill_cycle_impossible", digest, now, timedelta(hours=1)):
        event(log, "drill_cycle_impossible", level=WARNING, items=len(said), sample=said[:5],
              detail="DRILL_BYTES_PER_NIGHT x DRILL_CYCLE_DAYS cannot cover these items")
    uncovered = [{"item": c.key, "node": c.node, "size": c.size, "why": why}
                 for c, why in choice.uncoverable[:100]]
    deps.operations.note_uncoverable(uncovered)
    return plans, {"drill_candidates": len(candidates), "drill_uncoverable": uncovered[:20],
                   **({"night": night} if budget else {})}  # spent by each drill that starts


def _not_planned(deps: Deps, key: str, p: Placement, name: str, error: ControllerError,
                 now: datetime) -> None:
    """An item whose drill could not even be planned (its increment backup lists no files, its
    daemon did not answer the listing…): kept as an attempt that proved nothing, so the item
    waits :data:`drill.RETRY_AFTER` and the node's other items get their turn meanwhile."""
    event(log, "drill_not_planned", level=WARNING, app=p.proc.app, proc=p.proc.full_name,
          volume=p.item.volume, instance=p.pod.instance_no, node=p.node, backup=name,
          error=error.message)
    try:
        deps.operations.remember_drill(key, drill.Result(
            outcome=drill.UNPROVEN, at=format_time(now), fault=drill.NODE_FAULT,
            why=f"{name} could not be drilled: {error.message}"))
    except ControllerError as e:
        event(log, "drill_not_remembered", level=WARNING, node=p.node, backup=name,
              error=e.message)


def _idle(deps: Deps, nodes: list[str]) -> set[str]:
    """The nodes whose daemon answers ``/debug`` with no task running."""
    if not nodes:
        return set()
    found = deps.fan_out(nodes, lambda c: c.debug())
    return {n for n, d in found.results.items() if not d.get("running_tasks")}
