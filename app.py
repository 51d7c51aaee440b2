"""Route table of the backup controller (v1 and v2 of the original API) and its scheduled function.

Each handler is one line: it names the use case and its inputs; its docstring is its summary in
the OpenAPI document, and the decorator names the query and body fields it reads.
:class:`~chalicelib.web.router.Router` checks path pieces and the tokens, answers results and
errors as JSON, logs rejections and audits what changes; the use cases (``chalicelib/usecases/``)
are imported on first use, so a route pays at cold start only for what it calls, and mypy still
checks every call (the ``TYPE_CHECKING`` imports). The two flows with several steps have one
entrance each: :mod:`~chalicelib.usecases.schedule` and :mod:`~chalicelib.usecases.notify`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Chalice, Cron

from chalicelib import __version__, logs
from chalicelib.web.router import LazyModule, Router

if TYPE_CHECKING:  # mypy checks every handler's call against the real modules ...
    from chalicelib.deps import Deps
    from chalicelib.usecases import (
        backups,
        drills,
        evidence,
        health,
        jobs,
        nodes,
        notify,
        operations,
        reconcile,
        records,
        schedule,
    )
    from chalicelib.usecases import dashboard as dashboard_page
    from chalicelib.web import ingress
    from chalicelib.web import openapi as apidoc
else:  # ... which each route imports on first use (cold start pays only for what it calls)
    backups = LazyModule("chalicelib.usecases.backups")
    dashboard_page = LazyModule("chalicelib.usecases.dashboard")
    drills = LazyModule("chalicelib.usecases.drills")
    evidence = LazyModule("chalicelib.usecases.evidence")
    health = LazyModule("chalicelib.usecases.health")
    jobs = LazyModule("chalicelib.usecases.jobs")
    nodes = LazyModule("chalicelib.usecases.nodes")
    notify = LazyModule("chalicelib.usecases.notify")
    operations = LazyModule("chalicelib.usecases.operations")
    reconcile = LazyModule("chalicelib.usecases.reconcile")
    records = LazyModule("chalicelib.usecases.records")
    schedule = LazyModule("chalicelib.usecases.schedule")
    apidoc = LazyModule("chalicelib.web.openapi")
    ingress = LazyModule("chalicelib.web.ingress")

app = Chalice(app_name="backupctl", configure_logs=False)
logs.setup()
r = Router(app)
V1, V2 = "/api/v1", "/api/v2"


def deps() -> Deps:
    """The use cases' dependencies, built on the first call that needs them (the settings with
    them): the liveness route never does."""
    from chalicelib.deps import get_deps

    return get_deps()


# a job's own fields and the args a user sees (args.path and args.archive are hidden)
JOB_FILTERS = ("action", "type", "id", "args_app", "args_proc", "args_volume", "args_instanceNo",
               "args_mode", "args_containers", "args_preRun", "args_postRun")
RESTORE = ("snapshot", "dry_run", "verify")
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
EVIDENCE_TYPES = "application/json, text/csv; charset=utf-8, text/html; charset=utf-8"


@r.route(V2 + "/system/health")
def liveness() -> dict[str, str]:
    """Liveness: answers without touching lainlet, the daemons or DynamoDB."""
    return {"status": "ok", "version": __version__}


# -- backups ---------------------------------------------------------------------------------------

@r.route(V2 + "/app/{app_name}/proc/{proc}/backups", query=("volume",))
def v2_backups(app_name: str, proc: str) -> Any:
    """The proc's backups on every node it runs on (every declared volume, or ?volume=)."""
    return backups.list_backups(deps(), app_name, proc, r.query("volume") or None)


@r.route(V1 + "/backup/json/app/{app_name}/proc/{proc}", query=("volume",))
def v1_backups(app_name: str, proc: str) -> Any:
    """v1: the proc's backups of the volumes in ?volume=."""
    return backups.list_backups(deps(), app_name, proc, r.query("volume"))


@r.route(V2 + "/app/{app_name}/proc/{proc}/backups/{name}", query=("open",))
def v2_backup(app_name: str, proc: str, name: str) -> Any:
    """One backup: its node, volume and size; with ?open=true the files inside it."""
    return (backups.file_list if r.flag("open", False) else backups.backup_info)(
        deps(), app_name, proc, name)


@r.route(V1 + "/backup/filelist/app/{app_name}/proc/{proc}/dir/{name}")
def v1_file_list(app_name: str, proc: str, name: str) -> Any:
    """v1: the files inside an incremental backup."""
    return backups.file_list(deps(), app_name, proc, name)


@r.route(V2 + "/app/{app_name}/proc/{proc}/backups/actions/delete", method="POST", mutating=True,
         status=204, form=("files",), query=("force",))
def v2_delete(app_name: str, proc: str) -> Any:
    """Delete the named backups of the proc (?force=true: even a volume's newest good one)."""
    return backups.delete(deps(), app_name, proc, r.form().getlist("files"), r.flag("force", False))


@r.route(V2 + "/app/{app_name}/proc/{proc}/backups/{name}/actions/recover",
         V1 + "/backup/recover/increment/app/{app_name}/proc/{proc}/dir/{name}",
         method="POST", mutating=True, query=RESTORE, form=("files",))
def v2_recover(app_name: str, proc: str, name: str) -> Any:
    """Restore a backup (or files of an incremental one) in place, after a snapshot to undo it."""
    return operations.restore(deps(), app_name, proc, name, r.form().getlist("files"),
                              **r.restore_options())


@r.route(V1 + "/backup/recover/app/{app_name}/proc/{proc}/file/{name}", method="POST", mutating=True,
         query=RESTORE)
def v1_recover(app_name: str, proc: str, name: str) -> Any:
    """v1: restore a full backup in place, after a snapshot to undo it."""
    return operations.restore(deps(), app_name, proc, name, [], **r.restore_options())


@r.route(V2 + "/app/{app_name}/proc/{proc}/backups/{name}/actions/migrate",
         V1 + "/backup/migrate/increment/app/{app_name}/proc/{proc}/dir/{name}",
         method="POST", mutating=True, query=RESTORE, form=("files", "to", "volume"))
def v2_migrate(app_name: str, proc: str, name: str) -> Any:
    """Restore a backup into another instance (?to=) of the proc, after a snapshot there."""
    form = r.form()
    return operations.restore(deps(), app_name, proc, name, form.getlist("files"),
                              to=form.get_int("to"), volume=form.get("volume"), **r.restore_options())


@r.route(V1 + "/backup/migrate/app/{app_name}/proc/{proc}/file/{name}", method="POST", mutating=True,
         query=RESTORE, form=("to", "volume", "from"))
def v1_migrate(app_name: str, proc: str, name: str) -> Any:
    """v1: restore a full backup into another instance (from: ignored, the node is asked)."""
    form = r.form()
    return operations.restore(deps(), app_name, proc, name, [], to=form.get_int("to"),
                              volume=form.get("volume"), **r.restore_options())


@r.route(V2 + "/app/{app_name}/proc/{proc}/backups/{name}/actions/drill", method="POST",
         mutating=True, query=("dry_run",))
def v2_drill(app_name: str, proc: str, name: str) -> Any:
    """Prove a backup restores: restore it into its node's drill area (never a volume), checked."""
    return operations.start(deps(), drills.plan(deps(), app_name, proc, name),
                            dry_run=r.flag("dry_run", False))


@r.route(V2 + "/system/drills/setup")
def v2_drills_setup() -> Any:
    """The drill dirs each node needs under DRILL_ROOT, and the mkdir that makes them."""
    return drills.setup(deps())


@r.route(V2 + "/app/{app_name}/operations", query=("total",))
def v2_operations(app_name: str) -> Any:
    """The app's restores and migrations, newest first, with their phase."""
    return operations.of_app(deps(), app_name, r.one("total"))


@r.route(V2 + "/app/{app_name}/operations/{op_id}")
def v2_operation(app_name: str, op_id: str) -> Any:
    """One restore or migration: its phase, its snapshot, how to undo it."""
    return operations.get(deps(), app_name, op_id)


# -- jobs ------------------------------------------------------------------------------------------

@r.route(V2 + "/app/{app_name}/cron/jobs", V1 + "/cron/jobs/app/{app_name}", query=JOB_FILTERS)
def v2_jobs(app_name: str) -> Any:
    """The app's jobs as the daemons hold them, filtered by job fields."""
    return jobs.app_jobs(deps(), app_name, r.first_values())


@r.route(V2 + "/app/{app_name}/cron/jobs/{job_id}")
def v2_job(app_name: str, job_id: str) -> Any:
    """One of the app's jobs, from its daemon."""
    return jobs.app_job(deps(), app_name, job_id)


@r.route(V2 + "/app/{app_name}/cron/jobs/{job_id}/actions/{action}", method="POST", mutating=True,
         form=("until", "reason"))
def v2_job_action(app_name: str, job_id: str, action: str) -> Any:
    """run the job now, sleep it (until=, reason=), wake it up, or accept-size (its latest size)."""
    return jobs.action(deps(), app_name, job_id, action, r.form().get("until"), r.form().get("reason"))


@r.route(V1 + "/cron/once/app/{app_name}/id/{job_id}", method="POST", mutating=True)
def v1_run_once(app_name: str, job_id: str) -> Any:
    """v1: run the job now; answers the new record's id."""
    return jobs.run_once(deps(), app_name, job_id)


# -- nodes and the reconcile -----------------------------------------------------------------------

@r.route(V2 + "/server/{ip}/cron/jobs")
def v2_server_jobs(ip: str) -> Any:
    """The job list generated for one node."""
    return nodes.server_jobs(deps(), ip)


@r.route(V2 + "/server/{ip}/cron/actions/{action}", method="PUT", mutating=True)
def v2_server_crond(ip: str, action: str) -> Any:
    """start or stop one node's cron."""
    return nodes.server_crond(deps(), ip, action)


@r.route(V2 + "/server/{ip}/debug")
def v2_server_debug(ip: str) -> Any:
    """One node's daemon state (its cron and when its jobs were last replaced)."""
    return nodes.server_debug(deps(), ip)


@r.route(V2 + "/system/cron/jobs", V1 + "/cron/jobs/all", query=("node", "next"))
def v2_system_jobs() -> Any:
    """Every node's generated job list (a page at a time), or one node's (?node=)."""
    return nodes.generated(deps(), r.one("node"), r.one("next"))


@app.schedule(Cron("*", "*", "*", "*", "?", "*"))
def scheduled_reconcile(event: Any) -> dict[str, Any]:
    """At the top of every minute (every node's expire job has just run, so no daemon holds the
    push for its 5 s rule): push changed job lists. Never raises: a failed run is logged and kept
    in the history, and Lambda does not retry it on top of the next scheduled run."""
    return schedule.scheduled(deps())


@r.route(V2 + "/system/reconcile", method="POST", mutating=True, query=("confirm",))
def v2_reconcile() -> Any:
    """Run the reconcile now (?confirm=removals applies the removals it holds)."""
    return schedule.run_now(deps(), confirm=r.query("confirm"))


@r.route(V2 + "/system/reconcile/plan", query=("next",))
def v2_reconcile_plan() -> Any:
    """What the next reconcile would push, hold and clear; changes nothing."""
    return reconcile.next_plan(deps(), r.one("next"))


@r.route(V2 + "/system/reconcile/history", query=("total",))
def v2_reconcile_history() -> Any:
    """The last reconcile runs, newest first: pushed, failed and held nodes."""
    return reconcile.history(deps(), r.one("total"))


# -- records ---------------------------------------------------------------------------------------

@r.route(V2 + "/system/notify", method="POST", notify=True, query=("token",), body="JobRecord")
def v2_notify() -> Any:
    """Where the daemons post each job record (with the notify token)."""
    return notify.notify(deps(), r.request().raw_body)


@app.lambda_function(name="notify_ingress")
def notify_ingress(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The same notify post through the stack's function URL (its ``NotifyURL`` output), which the
    daemons are handed: no API Gateway charge per post (docs/operating.md, Deploying)."""
    return ingress.handle(event, context, lambda body: notify.notify(deps(), body))


@r.route(V2 + "/app/{app_name}/cron/records", V1 + "/cron/records/app/{app_name}",
         query=("total", "month", "year", "state"))
def v2_records(app_name: str) -> Any:
    """The app's job records of one month, newest first."""
    return records.month(deps(), app_name, r.first_values())


@r.route(V2 + "/app/{app_name}/cron/records/{rid}", V1 + "/cron/record/app/{app_name}/id/{rid}")
def v2_record(app_name: str, rid: str) -> Any:
    """One job record of the app."""
    return records.record(deps(), app_name, rid)


@r.route(V2 + "/system/backup", method="POST", mutating=True, status=201)
def v2_backup_records() -> Any:
    """An on-demand DynamoDB backup of the records table."""
    return records.backup_table(deps())


# -- health and what people look at ----------------------------------------------------------------

@r.route(V2 + "/app/{app_name}/backups/status")
def v2_app_backup_status(app_name: str) -> Any:
    """Is every declared volume of the app backed up on schedule? One item per instance."""
    return health.app_status(deps(), app_name)


@r.route(V2 + "/system/backups/status", query=("next",))
def v2_system_backup_status() -> Any:
    """Every app's backup status: counts, and the items a page at a time."""
    return health.system_status(deps(), r.one("next"))


@r.route(V2 + "/app/{app_name}/audit", query=("total", "next"))
def v2_app_audit(app_name: str) -> Any:
    """Every call that changed the app's backups or jobs, newest first."""
    return records.audit(deps(), app_name, r.one("total"), r.one("next"))


@r.route(V2 + "/system/audit", query=("total", "next"))
def v2_system_audit() -> Any:
    """Every call that changed backups, jobs or the system, newest first."""
    return records.audit(deps(), None, r.one("total"), r.one("next"))


@r.route(V2 + "/system/ready")
def v2_ready() -> Any:
    """Readiness: lainlet, DynamoDB, SSM, a few daemons and the notify URL, each checked."""
    return health.ready(deps())


@r.route(V2 + "/system/problems", query=("next",))
def v2_problems() -> Any:
    """Spec problems, held removals and held expiries, a page at a time."""
    return reconcile.problems(deps(), r.one("next"))


@r.route(V2 + "/system/metrics", query=("app",), produces=PROMETHEUS_TEXT)
def v2_metrics() -> Any:
    """Backup freshness and the reconcile in Prometheus's text format."""
    return health.prometheus_text(deps(), r.one("app"), PROMETHEUS_TEXT)


@r.route(V2 + "/app/{app_name}/evidence", query=("days", "format"), produces=EVIDENCE_TYPES)
def v2_app_evidence(app_name: str) -> Any:
    """The app's RPO/RTO evidence over ?days= per volume and instance, with its sha256."""
    return evidence.app_evidence(deps(), app_name, r.one("days"), r.one("format"))


@r.route(V2 + "/system/evidence", query=("days", "format", "next"), produces=EVIDENCE_TYPES)
def v2_system_evidence() -> Any:
    """Every app's RPO/RTO evidence, a page of whole apps at a time, each page with its sha256."""
    return evidence.system_evidence(deps(), r.one("days"), r.one("format"), r.one("next"))


@r.route("/", V2 + "/dashboard", produces="text/html")
def dashboard() -> Any:
    """The coverage dashboard: a page that reads the status, history and problems routes."""
    return dashboard_page.page()


@r.route(V2 + "/openapi.json")
def openapi() -> Any:
    """This document: every route of v1 and v2, generated from the route table."""
    return apidoc.document(r.docs, __version__)
