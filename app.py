"""Route table of the backup controller (v1 and v2 of the original API).

Handlers stay thin: :func:`route` validates every path piece, checks the API token on mutating
routes and turns errors into JSON; the handler parses its input and calls :mod:`chalicelib.service`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from chalice import Chalice, Cron

from chalicelib import __version__, service
from chalicelib.settings import Settings, get_settings
from chalicelib.web import (
    BODY_TYPES,
    Form,
    check_name,
    framework_errors,
    handled,
    query_lists,
    require_token,
)

app = Chalice(app_name="backupctl")
app.register_middleware(framework_errors, "http")
V1, V2 = "/api/v1", "/api/v2"


def _request() -> Any:
    return app.current_request


def route(*paths: str, method: str = "GET", mutating: bool = False) -> Callable[..., Any]:
    """Register the view on ``paths`` (a v2 route and its v1 twin share one view); path pieces
    other than ``ip`` must be plain names (no ``/``, no ``..``)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def checked(**params: str) -> Any:
            if mutating:
                require_token(app.current_request, get_settings())
            for key, value in params.items():
                if key != "ip":
                    check_name(value, key.replace("_name", ""))
            return view(**params)

        kwargs = {"content_types": BODY_TYPES} if method in ("POST", "PUT") else {}
        view_ = handled(_request)(checked)
        for path in paths:
            app.route(path, methods=[method], **kwargs)(view_)
        return view_

    return decorate


def _settings() -> Settings:
    return get_settings()


def _form() -> Form:
    return Form(app.current_request)


def _query(name: str) -> list[str]:
    return query_lists(app.current_request).get(name, [])


def _first_values() -> dict[str, str]:
    """One value per query key (the first), as the original read its filters."""
    return {k: v[0] for k, v in query_lists(app.current_request).items() if v}


@app.route(f"{V2}/system/health", methods=["GET"])
def health() -> dict:
    """Liveness: answers without touching lainlet, the daemons or DynamoDB."""
    return {"status": "ok", "version": __version__}


# -- v2: backups -----------------------------------------------------------------------------------

@route(V2 + "/app/{app_name}/proc/{proc}/backups")
def v2_backups(app_name: str, proc: str) -> Any:
    return service.list_backups(_settings(), app_name, proc, _query("volume") or None)


@route(V2 + "/app/{app_name}/backups/status")
def v2_app_backup_status(app_name: str) -> Any:
    return service.app_backup_status(_settings(), app_name)


@route(V2 + "/system/backups/status")
def v2_system_backup_status() -> Any:
    return service.system_backup_status(_settings())


@route(V2 + "/app/{app_name}/proc/{proc}/backups/{name}")
def v2_backup(app_name: str, proc: str, name: str) -> Any:
    if (_query("open") or ["false"])[0].lower() == "true":
        return service.backup_file_list(_settings(), app_name, proc, name)
    return service.backup_info(_settings(), app_name, proc, name)


@route(V2 + "/app/{app_name}/proc/{proc}/backups/actions/delete", method="POST", mutating=True)
def v2_delete(app_name: str, proc: str) -> Any:
    return service.delete_backups(_settings(), app_name, proc, _form().getlist("files"))


@route(V2 + "/app/{app_name}/proc/{proc}/backups/{name}/actions/recover",
       method="POST", mutating=True)
def v2_recover(app_name: str, proc: str, name: str) -> Any:
    return service.restore(_settings(), app_name, proc, name, _form().getlist("files"))


@route(V2 + "/app/{app_name}/proc/{proc}/backups/{name}/actions/migrate",
       V1 + "/backup/migrate/increment/app/{app_name}/proc/{proc}/dir/{name}",
       method="POST", mutating=True)
def v2_migrate(app_name: str, proc: str, name: str) -> Any:
    form = _form()
    return service.restore(_settings(), app_name, proc, name, form.getlist("files"),
                           to=form.get_int("to"), volume=form.get("volume"))


# -- v2: jobs --------------------------------------------------------------------------------------

@route(V2 + "/app/{app_name}/cron/jobs", V1 + "/cron/jobs/app/{app_name}")
def v2_jobs(app_name: str) -> Any:
    return service.app_jobs(_settings(), app_name, _first_values())


@route(V2 + "/app/{app_name}/cron/jobs/{job_id}")
def v2_job(app_name: str, job_id: str) -> Any:
    return service.app_job(_settings(), app_name, job_id)


@route(V2 + "/app/{app_name}/cron/jobs/{job_id}/actions/{action}", method="POST", mutating=True)
def v2_job_action(app_name: str, job_id: str, action: str) -> Any:
    return service.job_action(_settings(), app_name, job_id, action)


# -- v2: servers and system ------------------------------------------------------------------------

@route(V2 + "/server/{ip}/cron/jobs")
def v2_server_jobs(ip: str) -> Any:
    return service.server_jobs(_settings(), ip)


@route(V2 + "/server/{ip}/cron/actions/{action}", method="PUT", mutating=True)
def v2_server_crond(ip: str, action: str) -> Any:
    return service.server_crond(_settings(), ip, action)


@route(V2 + "/server/{ip}/debug")
def v2_server_debug(ip: str) -> Any:
    return service.server_debug(_settings(), ip)


@route(V2 + "/system/cron/jobs", V1 + "/cron/jobs/all")
def v2_system_jobs() -> Any:
    return service.generated_jobs(_settings())


# -- v1 --------------------------------------------------------------------------------------------

@route(V1 + "/backup/json/app/{app_name}/proc/{proc}")
def v1_backups(app_name: str, proc: str) -> Any:
    return service.list_backups(_settings(), app_name, proc, _query("volume"))


@route(V1 + "/backup/filelist/app/{app_name}/proc/{proc}/dir/{name}")
def v1_file_list(app_name: str, proc: str, name: str) -> Any:
    return service.backup_file_list(_settings(), app_name, proc, name)


@route(V1 + "/backup/recover/app/{app_name}/proc/{proc}/file/{name}",
       method="POST", mutating=True)
def v1_recover(app_name: str, proc: str, name: str) -> Any:
    return service.restore(_settings(), app_name, proc, name, [])


@route(V1 + "/backup/recover/increment/app/{app_name}/proc/{proc}/dir/{name}", method="POST",
       mutating=True)
def v1_recover_increment(app_name: str, proc: str, name: str) -> Any:
    return service.restore(_settings(), app_name, proc, name, _form().getlist("files"))


@route(V1 + "/backup/migrate/app/{app_name}/proc/{proc}/file/{name}",
       method="POST", mutating=True)
def v1_migrate(app_name: str, proc: str, name: str) -> Any:
    form = _form()  # "from" is not needed: the backup's own node is found by asking the daemons
    return service.restore(_settings(), app_name, proc, name, [], to=form.get_int("to"),
                           volume=form.get("volume"))


@route(V1 + "/cron/once/app/{app_name}/id/{job_id}", method="POST", mutating=True)
def v1_run_once(app_name: str, job_id: str) -> Any:
    return service.run_once(_settings(), app_name, job_id)


# -- records ---------------------------------------------------------------------------------------

@route(V2 + "/system/notify", method="POST")
def v2_notify() -> Any:
    req = app.current_request
    return service.notify(_settings(), req.raw_body, (_query("token") or [""])[0])


@route(V2 + "/app/{app_name}/cron/records", V1 + "/cron/records/app/{app_name}")
def v2_records(app_name: str) -> Any:
    return service.records(_settings(), app_name, _first_values())


@route(V2 + "/app/{app_name}/cron/records/{rid}", V1 + "/cron/record/app/{app_name}/id/{rid}")
def v2_record(app_name: str, rid: str) -> Any:
    return service.record(_settings(), app_name, rid)


@route(V2 + "/system/backup", method="POST", mutating=True)
def v2_backup_records() -> Any:
    return service.backup_records(_settings())


# -- reconcile -------------------------------------------------------------------------------------

@app.schedule(Cron("*", "*", "*", "*", "?", "*"))
def scheduled_reconcile(event: Any) -> dict:
    """At the top of every minute (every node's expire job has just run, so no daemon holds the
    push for its 5 s rule): push changed job lists. Never raises: a failed run is logged and kept
    in the history, and Lambda does not retry it on top of the next scheduled run."""
    return service.scheduled_reconcile(_settings())


@route(V2 + "/system/reconcile", method="POST", mutating=True)
def v2_reconcile() -> Any:
    return service.reconcile_now(_settings(), confirm=_query("confirm"))


@route(V2 + "/system/reconcile/plan")
def v2_reconcile_plan() -> Any:
    return service.reconcile_plan(_settings())


@route(V2 + "/system/reconcile/history")
def v2_reconcile_history() -> Any:
    return service.reconcile_history(_settings(), (_query("total") or [None])[0])


@route(V2 + "/system/problems")
def v2_problems() -> Any:
    return service.problems(_settings())
