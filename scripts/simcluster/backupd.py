"""backupd stand-in: the daemon's v1 API over in-memory state, answering like the real daemon.

Answers and error bodies follow ``tests/fixtures/backupd-v1-samples.txt`` (errors are a JSON
string ``"Title: cause"``). A restart forgets the jobs, pause states and notify addresses and
reports Go's zero ``updateTime``, as the real daemon does.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from scripts.simcluster import minicron
from scripts.simcluster.server import Recorded, Reply, StandIn

GO_ZERO = "0001-01-01T00:00:00Z"
PREFIX = "/api/v1"
_counter = itertools.count(1)


def go_time(when: datetime | None = None) -> str:
    when = when or datetime.now(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def new_rid() -> str:
    return f"{int(time.time())}{hashlib.md5(str(next(_counter)).encode()).hexdigest()}"


def _bad(cause: str) -> Reply:
    return Reply(400, f"Unvalid Argument: {cause}")


def _failed(cause: str) -> Reply:
    return Reply(503, f"Error happend when doing backup action: {cause}")


class BackupdStandIn(StandIn):
    """One node's daemon. ``backups`` holds entities; ``files`` the file lists of increment dirs."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9002) -> None:
        super().__init__(host, port)
        self.backups: list[dict[str, Any]] = []
        self.files: dict[str, list[dict[str, Any]]] = {}
        self.start_time = go_time()
        self.running_tasks = 0  # runs in progress, as /debug reports them (a worker counts its own)
        self.on_restart()

    def on_restart(self) -> None:
        self.push_hold = 0.0  # seconds a job-list push waits, as the daemon waits for an idle moment
        self.push_gate: threading.Event | None = None  # set: a push waits until the gate opens
        self.jobs: list[dict[str, Any]] = []
        self.version = ""
        self.update_time = GO_ZERO
        self.notify: list[str] = []
        self.crond_status = "started"
        self.runs: list[tuple[str, str]] = []  # (rid, job id) of every run asked for

    # -- test helpers --------------------------------------------------------------------------
    def add_backup(self, app: str, proc: str, instance: int, volume: str, mode: str = "full",
                   created: int = 1795563919, files: list[str] | None = None,
                   containers: list[str] | None = None, created_at: str = "") -> dict[str, Any]:
        """Record a backup the daemon made (metadata only) and return its entity."""
        archive = minicron.archive(app, proc, instance, volume)
        name = f"{archive}-{created}.tar.gz" if mode == "full" else archive
        entity = {
            "mode": mode, "source": minicron.volume_path(app, proc, instance, volume), "volume": volume,
            "name": name, "server": self.host, "size": 154 if mode == "full" else 0,
            "created": created_at or go_time(datetime.fromtimestamp(created, UTC)),
            "containers": containers or [], "instanceNo": instance,
        }
        self.backups.append(entity)
        if mode == "increment":
            self.files[name] = [{"name": f, "size": 6, "mod_time": entity["created"], "dir": False}
                                for f in files or []]
        return entity

    def job_ids(self) -> list[str]:
        return [j["id"] for j in self.jobs]

    def sleeping(self) -> set[str]:
        return {j["id"] for j in self.jobs if j.get("sleep")}

    # -- the API -------------------------------------------------------------------------------
    def handle(self, req: Recorded) -> Reply:
        if not req.path.startswith(PREFIX):
            return Reply(404, "404 page not found")
        parts = [unquote(p) for p in req.path[len(PREFIX):].strip("/").split("/")]
        route = (req.method, *parts)
        match route:
            case ("GET", "cron", "jobs"):
                return Reply(200, self._entries(req.query))
            case ("PUT", "cron", "jobs"):
                return self._set_jobs(req.form)
            case ("GET", "cron", "jobs", job_id):
                job = self._job(job_id)
                return Reply(200, job) if job else _bad(f'Job not found with id="{job_id}"')
            case ("POST", "cron", "once", job_id):
                return self._run(job_id)
            case ("POST", "cron", "jobs", job_id, "actions", action):
                return self._action(job_id, action)
            case ("PUT", "cron", ("start" | "stop") as action):
                self.crond_status = "started" if action == "start" else "stopped"
                return Reply(200, "OK")
            case ("GET", "backup", "json"):
                return Reply(200, self._backups(req.query.get("dir", [])))
            case ("GET", "backup", "info", "file", name):
                entity = self._entity(name)
                return Reply(200, entity) if entity else _failed(f"backup named {name} not found")
            case ("GET", "backup", "filelist", "dir", name):
                if name not in self.files:
                    return _failed(f"open {name}: no such file or directory")
                return Reply(200, self.files[name])
            case ("POST", "backup", "delete"):
                self.delete(req.form.get("files", []))
                return Reply(200, "OK")
            case ("POST", "backup", "full" | "increment", "recover", "file" | "dir", name):
                if req.form.get("namespace", [""])[0] in ("", self.host) and not self._entity(name):
                    return _failed(f"Unkown backup file {name}")
                form = {k: v if k == "files" else v[0] for k, v in req.form.items()}
                return Reply(202, {"rid": self.recover(name, form)})
            case ("PUT", "notify"):
                addr = req.form.get("addr", [""])[0]
                if addr and addr not in self.notify:
                    self.notify.append(addr)
                return Reply(200, "OK")
            case ("GET", "notify"):
                return Reply(200, {"addr": self.notify})
            case ("POST", "notify", "actions", "remove"):
                addr = req.form.get("addr", [""])[0]
                self.notify = [a for a in self.notify if a != addr]
                return Reply(200, "OK")
            case ("GET", "debug"):
                return Reply(200, {"crond_status": self.crond_status, "goroutines": 12,
                                   "running_tasks": self.running_tasks, "startTime": self.start_time,
                                   "updateTime": self.update_time})
        return Reply(404, "404 page not found")

    def _job(self, job_id: str) -> dict[str, Any] | None:
        return next((j for j in self.jobs if j["id"] == job_id), None)

    def _entity(self, name: str) -> dict[str, Any] | None:
        return next((b for b in self.backups if b["name"] == name), None)

    def _backups(self, dirs: list[str]) -> list[dict[str, Any]]:
        """Entities of those volume dirs (full files and the increment dir), or all without dirs."""
        wanted = {d.removesuffix("@increment") for d in dirs}
        return [b for b in self.backups if not wanted or b["source"] in wanted]

    def _entries(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        out = []
        for job in self.jobs:
            if not all(self._matches(job, k, v[0]) for k, v in query.items()):
                continue
            try:
                nxt = minicron.Spec(job["spec"]).next_after(now)
            except ValueError:
                continue
            out.append({"prev": GO_ZERO, "next": go_time(nxt) if nxt else GO_ZERO, "job": job})
        return out

    @staticmethod
    def _matches(job: dict[str, Any], key: str, value: str) -> bool:
        if key in ("id", "type", "action"):
            return job.get(key) == value
        if key.startswith("args_"):
            return job["args"].get(key[5:]) == value
        return True

    def _set_jobs(self, form: dict[str, list[str]]) -> Reply:
        try:
            jobs = json.loads(form.get("data", ["[]"])[0])
        except ValueError as e:
            return _bad(f"data is not JSON: {e}")
        version = form.get("version", [""])[0]
        if version and version == self.version:
            return Reply(200, "OK")
        if any(_fires_every_5s(j.get("spec", "")) for j in self.jobs):
            # crond.Update waits for its nearest job to be 5 s away; with such a job it never is
            self._released.wait(120)
            return Reply(503, "still waiting for an idle moment")
        time.sleep(self.push_hold)
        if self.push_gate is not None:
            self.push_gate.wait(60)
        paused = self.sleeping()
        for job in jobs:
            job["type"] = "cron"
            job["sleep"] = job["id"] in paused
        self.jobs = [j for j in jobs if minicron.valid(j["spec"])]  # the daemon drops bad specs
        self.version = version
        self.update_time = go_time()
        return Reply(200, "OK")

    def _run(self, job_id: str) -> Reply:
        job = self._job(job_id)
        if not job:
            return _bad(f'Job not found with id="{job_id}"')
        rid = new_rid()
        self.runs.append((rid, job_id))
        self.execute({**job, "type": "once"}, rid)
        return Reply(202, {"rid": rid})

    # -- what a working daemon does (overridden by scripts.simcluster.worker) -------------------
    def execute(self, job: dict[str, Any], rid: str) -> None:
        """Run a job now (this stand-in only records that it was asked to)."""

    def recover(self, name: str, form: dict[str, Any]) -> str:
        """Start a recover of backup ``name``; the record id."""
        return new_rid()

    def delete(self, files: list[str]) -> None:
        names = {f.split("/")[0] for f in files}
        self.backups = [b for b in self.backups if b["name"] not in names]

    def _action(self, job_id: str, action: str) -> Reply:
        job = self._job(job_id)
        if not job:
            return _bad(f'Job not found with id="{job_id}"')
        if action == "run":
            return self._run(job_id)
        if action in ("sleep", "wakeup"):
            job["sleep"] = action == "sleep"
            return Reply(201, "") if action == "sleep" else Reply(204, b"")
        return _bad(f"Unknown action {action}")


def _fires_every_5s(spec: str) -> bool:
    """Whether a spec fires every 5 s or more often (the daemon then never accepts another list):
    ``@every`` of at most 5 s, or a seconds field of ``*`` or ``*/n`` with n <= 5."""
    if spec.startswith("@every "):
        text = spec[len("@every "):].strip()
        for unit, scale in (("ms", 0.001), ("s", 1.0)):
            number = text.removesuffix(unit)
            if number != text and number.replace(".", "", 1).isdigit():
                return float(number) * scale <= 5
        return False
    fields = spec.split()
    if len(fields) != 6:
        return False
    second = fields[0]
    return second == "*" or (second.startswith("*/") and second[2:].isdigit() and int(second[2:]) <= 5)
