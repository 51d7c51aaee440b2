"""Route table of the backup controller (v1 and v2 of the original API) and its scheduled function.

Each handler is one line: it names the use case and its inputs. :class:`~chalicelib.web.Router`
checks path pieces and the API token, answers results and errors as JSON and logs rejections; the
use cases (``chalicelib/usecases/``) are imported on first use, so a route pays at cold start only
for what it calls.
"""

from __future__ import annotations

from typing import Any

from chalice import Chalice, Cron

from chalicelib import __version__, logs
from chalicelib.deps import get_deps as deps
from chalicelib.web import LazyModule, Router

app = Chalice(app_name="backupctl", configure_logs=False)
logs.setup()
r = Router(app)
backups = LazyModule("chalicelib.usecases.backups")
jobs = LazyModule("chalicelib.usecases.jobs")
nodes = LazyModule("chalicelib.usecases.nodes")
records = LazyModule("chalicelib.usecases.records")
health = LazyModule("chalicelib.usecases.health")
operations = LazyModule("chalicelib.usecases.operations")
V1, V2 = "/api/v1", "/api/v2"


@app.route(f"{V2}/system/health", methods=["GET"])
def liveness() -> dict[str, str]:
    """Liveness: answers without touching lainlet, the daemons or DynamoDB."""
    return {"status": "ok", "version": __version__}


# -- backups ---------------------------------------------------------------------------------------

@r.route(V2 + "/app/{app_name}/proc/{proc}/backups")
def v2_backups(app_name: str, proc: str) -> Any:
    return backups.list_backups(deps(), app_name, proc, r.query("volume") or None)


@r.route(V1 + "/backup/json/app/{app_name}/proc/{proc}")
def v1_backups(app_name: str, proc: str) -> Any:
    return backups.list_backups(deps(), app_name, proc, r.query("volume"))


@r.route(V2 + "/app/{app_name}/proc/{proc}/backups/{name}")
def v2_backup(app_name: str, proc: str, name: str) -> Any:
    opened = (r.query("open") or ["false"])[0].lower() == "true"
    return (backups.file_list if opened else backups.backup_info)(deps(), app_name, proc, name)


@r.route(V1 + "/backup/filelist/app/{app_name}/proc/{proc}/dir/{name}")
def v1_file_list(app_name: str, proc: str, name: str) -> Any:
    return backups.file_list(deps(), app_name, proc, name)


@r.route(V2 + "/app/{app_name}/proc/{proc}/backups/actions/delete", method="POST", mutating=True,
         status=204)
def v2_delete(app_name: str, proc: str) -> Any:
    return backups.delete(deps(), app_name, proc, r.form().getlist("files"))


@r.route(V2 + "/app/{app_name}/proc/{proc}/backups/{name}/actions/recover",
         V1 + "/backup/recover/increment/app/{app_name}/proc/{proc}/dir/{name}",
         method="POST", mutating=True)
def v2_recover(app_name: str, proc: str, name: str) -> Any:
    return operations.restore(deps(), app_name, proc, name, r.form().getlist("files"),
                              **r.restore_options())


@r.route(V1 + "/backup/recover/app/{app_name}/proc/{proc}/file/{name}", method="POST", mutating=True)
def v1_recover(app_name: str, proc: str, name: str) -> Any:
    return operations.restore(deps(), app_name, proc, name, [], **r.restore_options())


@r.route(V2 + "/app/{app_name}/proc/{proc}/backups/{name}/actions/migrate",
         V1 + "/backup/migrate/increment/app/{app_name}/proc/{proc}/dir/{name}",
         method="POST", mutating=True)
def v2_migrate(app_name: str, proc: str, name: str) -> Any:
    form = r.form()
    return operations.restore(deps(), app_name, proc, name, form.getlist("files"),
                              to=form.get_int("to"), volume=form.get("volume"), **r.restore_options())


@r.route(V1 + "/backup/migrate/app/{app_name}/proc/{proc}/file/{name}", method="POST", mutating=True)
def v1_migrate(app_name: str, proc: str, name: str) -> Any:
    form = r.form()  # "from" is not needed: the backup's own node is found by asking the daemons
    return operations.restore(deps(), app_name, proc, name, [], to=form.get_int("to"),
                              volume=form.get("volume"), **r.restore_options())


@r.route(V2 + "/app/{app_name}/operations")
def v2_operations(app_name: str) -> Any:
    return operations.of_app(deps(), app_name, r.one("total"))


@r.route(V2 + "/app/{app_name}/operations/{op_id}")
def v2_operation(app_name: str, op_id: str) -> Any:
    return operations.get(deps(), app_name, op_id)


# -- jobs ------------------------------------------------------------------------------------------

@r.route(V2 + "/app/{app_name}/cron/jobs", V1 + "/cron/jobs/app/{app_name}")
def v2_jobs(app_name: str) -> Any:
    return jobs.app_jobs(deps(), app_name, r.first_values())


@r.route(V2 + "/app/{app_name}/cron/jobs/{job_id}")
def v2_job(app_name: str, job_id: str) -> Any:
    return jobs.app_job(deps(), app_name, job_id)


@r.route(V2 + "/app/{app_name}/cron/jobs/{job_id}/actions/{action}", method="POST", mutating=True)
def v2_job_action(app_name: str, job_id: str, action: str) -> Any:
    return jobs.action(deps(), app_name, job_id, action, r.form().get("until"), r.form().get("reason"))


@r.route(V1 + "/cron/once/app/{app_name}/id/{job_id}", method="POST", mutating=True)
def v1_run_once(app_name: str, job_id: str) -> Any:
    return jobs.run_once(deps(), app_name, job_id)


# -- nodes and the reconcile -----------------------------------------------------------------------

@r.route(V2 + "/server/{ip}/cron/jobs")
def v2_server_jobs(ip: str) -> Any:
    return nodes.server_jobs(deps(), ip)


@r.route(V2 + "/server/{ip}/cron/actions/{action}", method="PUT", mutating=True)
def v2_server_crond(ip: str, action: str) -> Any:
    return nodes.server_crond(deps(), ip, action)


@r.route(V2 + "/server/{ip}/debug")
def v2_server_debug(ip: str) -> Any:
    return nodes.server_debug(deps(), ip)


@r.route(V2 + "/system/cron/jobs", V1 + "/cron/jobs/all")
def v2_system_jobs() -> Any:
    return nodes.generated(deps(), r.one("node"), r.one("next"))


@app.schedule(Cron("*", "*", "*", "*", "?", "*"))
def scheduled_reconcile(event: Any) -> dict[str, Any]:
    """At the top of every minute (every node's expire job has just run, so no daemon holds the
    push for its 5 s rule): push changed job lists. Never raises: a failed run is logged and kept
    in the history, and Lambda does not retry it on top of the next scheduled run."""
    return nodes.scheduled(deps())


@r.route(V2 + "/system/reconcile", method="POST", mutating=True)
def v2_reconcile() -> Any:
    return nodes.reconcile_now(deps(), confirm=r.query("confirm"))


@r.route(V2 + "/system/reconcile/plan")
def v2_reconcile_plan() -> Any:
    return nodes.plan(deps(), r.one("next"))


@r.route(V2 + "/system/reconcile/history")
def v2_reconcile_history() -> Any:
    return nodes.history(deps(), r.one("total"))


# -- records ---------------------------------------------------------------------------------------

@r.route(V2 + "/system/notify", method="POST")
def v2_notify() -> Any:
    return records.notify(deps(), r.request().raw_body, r.one("token"))


@r.route(V2 + "/app/{app_name}/cron/records", V1 + "/cron/records/app/{app_name}")
def v2_records(app_name: str) -> Any:
    return records.month(deps(), app_name, r.first_values())


@r.route(V2 + "/app/{app_name}/cron/records/{rid}", V1 + "/cron/record/app/{app_name}/id/{rid}")
def v2_record(app_name: str, rid: str) -> Any:
    return records.one(deps(), app_name, rid)


@r.route(V2 + "/system/backup", method="POST", mutating=True, status=201)
def v2_backup_records() -> Any:
    return records.backup_table(deps())


# -- health ----------------------------------------------------------------------------------------

@r.route(V2 + "/app/{app_name}/backups/status")
def v2_app_backup_status(app_name: str) -> Any:
    return health.app_status(deps(), app_name)


@r.route(V2 + "/system/backups/status")
def v2_system_backup_status() -> Any:
    return health.system_status(deps(), r.one("next"))


@r.route(V2 + "/app/{app_name}/audit")
def v2_app_audit(app_name: str) -> Any:
    return records.audit(deps(), app_name, r.one("total"), r.one("next"))


@r.route(V2 + "/system/audit")
def v2_system_audit() -> Any:
    return records.audit(deps(), None, r.one("total"), r.one("next"))


@r.route(V2 + "/system/ready")
def v2_ready() -> Any:
    return health.ready(deps())


@r.route(V2 + "/system/problems")
def v2_problems() -> Any:
    return health.problems(deps(), r.one("next"))
