"""An app's backup jobs on the daemons: list, inspect, run, pause and wake up.

A job id must be one of the app's generated jobs before any daemon is asked; the app filter of a
listing is forced after the user's filters, so no query shows another app's jobs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from logging import WARNING
from typing import Any

from chalicelib.core.drill import PROOF_SPEC
from chalicelib.core.formats.answers import Partial
from chalicelib.core.formats.inputs import preview
from chalicelib.core.gotime import format_time, parse_go_time
from chalicelib.core.jobs import generate, node_of_job_id, public_job
from chalicelib.core.types import Job, Pause
from chalicelib.deps import Deps
from chalicelib.edges.backupd import BackupdClient, BackupdError, BackupdGarbage, may_have_acted
from chalicelib.errors import BadRequest, ControllerError, NotFound, UpstreamTimeout
from chalicelib.logs import event, log

JOB_ACTIONS = ("run", "sleep", "wakeup", "accept-size")
JOB_QUERY = re.compile(r"^(action|type|id|args_\w+)$")
MAX_REASON = 500


def _owned_job(deps: Deps, app: str, job_id: str) -> str:
    """The node of ``job_id`` if it is one of the app's backup jobs now, else 404."""
    cluster = deps.cluster(app)
    cluster.procs_of(app)  # 404 for an unknown app first
    ids = {j["id"] for node_jobs in generate(cluster).values() for j in node_jobs if j["id"]}
    if job_id not in ids:
        raise NotFound(f"job {job_id!r} is not a backup job of app {app!r}", code="unknown_job")
    return node_of_job_id(job_id) or ""


def app_jobs(deps: Deps, app: str, query: Mapping[str, str]) -> Partial:
    """The app's jobs as the daemons hold them (``args.path``/``args.archive`` hidden)."""
    cluster = deps.cluster(app)
    params = {k: v for k, v in query.items() if JOB_QUERY.fullmatch(k)}
    params["args_app"] = app  # after the user's filters: never another app's jobs
    result = deps.fan_out(cluster.node_ips_of_app(app), lambda c: c.jobs(params))
    body = [{**entry, "job": public_job(entry["job"])}
            for entries in result.results.values() for entry in entries
            if entry["job"].get("args", {}).get("app") == app
            and entry["job"].get("spec") != PROOF_SPEC]  # a drill's own job is no job of the app
    return Partial(body, result.unreachable)


def _on_daemon[T](deps: Deps, app: str, job_id: str, call: Callable[[BackupdClient], T],
                  node: str | None = None) -> T:
    """Run ``call`` on the daemon of one of the app's jobs; "no such job" there becomes a 404."""
    node = node or _owned_job(deps, app, job_id)
    try:
        return call(deps.daemon(node))
    except BackupdError as e:
        if e.upstream_status == 400:
            raise NotFound(f"job {job_id} of app {app} is not on {node} yet (it is pushed on the "
                           f"next reconcile): {e.message}", code="job_not_pushed") from None
        raise


def app_job(deps: Deps, app: str, job_id: str) -> Job:
    """One of the app's jobs as its daemon holds it: the job asked for, and the app's, or a 502
    (a daemon that answers with another job, another app's maybe, is not passed on)."""
    node = _owned_job(deps, app, job_id)
    job = _on_daemon(deps, app, job_id, lambda c: c.job(job_id), node)
    if job.get("id") != job_id or job["args"].get("app") != app:
        raise BackupdGarbage(f"backupd on {node} answered job {preview(job.get('id'))} of app "
                             f"{preview(job['args'].get('app'))} when asked for job {job_id} of "
                             f"app {app}", node=node, status=200)
    return public_job(job)  # type: ignore[arg-type]


def action(deps: Deps, app: str, job_id: str, name: str, until: str = "", reason: str = "") -> Any:
    """run → the record id; sleep → "OK" (or, with ``until``/``reason``, the pause); wakeup → "OK";
    accept-size → the job's new baseline size (its latest success is taken as good).

    A pause lives in two places, DynamoDB (so every later push and a restarted daemon get it
    back, and the reconcile ends it at ``until``) and the daemon. The intent is written first, so
    a DynamoDB failure changes nothing. If the daemon then refuses, the intent is rolled back and
    the answer says so; if its answer never came (it may still apply it), the intent stays on
    record unconfirmed and the answer is a 202 naming the node: the next reconcile compares it
    with the daemon. A pause without ``until`` ends after ``PAUSE_MAX_DAYS``."""
    if name not in JOB_ACTIONS:
        raise BadRequest(f"action {name!r} is not one of {', '.join(JOB_ACTIONS)}",
                         code="bad_action")
    if name == "run":
        rid = _on_daemon(deps, app, job_id, lambda c: c.run(job_id))
        return {"rid": rid, "url": f"/api/v2/app/{app}/cron/records/{rid}"}
    if name == "accept-size":
        _owned_job(deps, app, job_id)
        return deps.records.accept_size(job_id)
    if len(reason) > MAX_REASON:
        raise BadRequest(f"reason: at most {MAX_REASON} characters", code="bad_reason")
    node = _owned_job(deps, app, job_id)
    store, now = deps.state, deps.clock()
    pause = None
    if name == "sleep":
        pause = Pause(format_time(pause_end(until, now, deps.settings.pause_max_days)), reason,
                      format_time(now))
    before = store.pause_of(node, job_id)
    store.set_pause(node, job_id, pause)
    try:
        _on_daemon(deps, app, job_id, lambda c: c.job_action(job_id, name), node)
    except ControllerError as e:
        if may_have_acted(e):
            return _unconfirmed(deps, node, job_id, name, pause, before, e)
        try:
            store.set_pause(node, job_id, before)
            e.message += f"; nothing was changed (the job is {'paused' if before else 'running'})"
        except ControllerError:
            e.message += (f"; the {name} is recorded but could not be undone: the next push to "
                          f"{node} applies it")
        raise
    event(log, "job_" + name, node=node, job=job_id, until=pause.until if pause else "",
          reason=reason)
    if pause and (until or reason):
        return {"paused": job_id, **_shown(pause)}
    if name == "wakeup" and before is None:
        return {"woken": job_id, "was_paused": False,
                "detail": f"job {job_id} was not paused on record; the daemon on {node} was asked "
                          "to wake it anyway"}
    return "OK"


def _shown(pause: Pause) -> dict[str, Any]:
    return {"until": pause.until, "reason": pause.reason, "paused_at": pause.paused_at,
            "confirmed": pause.confirmed}


def _unconfirmed(deps: Deps, node: str, job_id: str, name: str, pause: Pause | None,
                 before: Pause | None, error: ControllerError) -> Partial:
    """The daemon may have carried out the sleep or wakeup without answering: keep the intent on
    record, unconfirmed (a wakeup: the pause ends now, so the reconcile's wakeup of ended pauses
    wakes the job and drops it), and answer 202 naming the node."""
    now = format_time(deps.clock())
    kept = (replace(pause, confirmed=False) if pause else
            Pause(now, before.reason if before else "", before.paused_at if before else now,
                  confirmed=False))
    why = ("did not answer in time" if isinstance(error, UpstreamTimeout)
           else "dropped the connection after the request went out")
    try:
        deps.state.set_pause(node, job_id, kept)
    except ControllerError as e:  # a sleep's pause stands as written; a job a wakeup left
        # paused with no pause on record is adopted (with an end) by the reconcile's check
        event(log, "pause_not_marked", level=WARNING, node=node, job=job_id, error=e.message)
    event(log, f"job_{name}_unconfirmed", level=WARNING, node=node, job=job_id, until=kept.until,
          error=error.message)
    if name == "sleep":
        body = {"paused": job_id, **_shown(kept),
                "detail": f"the daemon on {node} {why}; the pause is kept and checked on the next "
                          "reconcile"}
    else:
        body = {"woken": job_id, "until": kept.until, "confirmed": False,
                "detail": f"the daemon on {node} {why}; the pause ends now on record and the "
                          "next reconcile wakes the job"}
    return Partial(body, status=202)


def pause_end(until: str, now: datetime, max_days: float) -> datetime:
    """When a pause asked for with ``until`` (a time, or a duration such as ``6h`` or ``2d``) ends:
    never later than ``max_days`` from now, never in the past."""
    longest = now + timedelta(days=max_days)
    if not until:
        return longest
    units = {"m": 60, "h": 3600, "d": 86400}
    try:
        if until[-1:] in units and until[:-1].isascii() and until[:-1].isdigit():
            amount = int(until[:-1]) if len(until) <= 10 else 10**9  # bounded before int()
            end = now + timedelta(seconds=min(amount * units[until[-1]], 10**10))
        else:
            end = parse_go_time(until)[0]
    except (ValueError, OverflowError):
        raise BadRequest(f"until: {preview(until)} is neither a time (2026-12-01T00:00:00Z) nor a "
                         "duration in minutes, hours or days (30m, 6h, 2d)", code="bad_until") from None
    if end <= now:
        raise BadRequest(f"until: {preview(until)} is not in the future", code="bad_until")
    if end > longest:
        raise BadRequest(f"until: a pause lasts at most {max_days:g} days (PAUSE_MAX_DAYS)",
                         code="bad_until")
    return end


def run_once(deps: Deps, app: str, job_id: str) -> str:
    return _on_daemon(deps, app, job_id, lambda c: c.run_once(job_id))
