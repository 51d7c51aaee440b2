"""A backupd stand-in that really does the work, on local directories, for the local runner and
the end-to-end tests.

Layout under ``root``: ``fs/`` is every node's filesystem (volume dirs live at
``fs/data/lain/volumes/...``), ``storage/<node ip>/`` the shared backup storage of each daemon's
namespace. Full backups are ``<archive>-<unixtime>.tar.gz`` files, increment backups a copied
``<archive>`` dir. Jobs run on their cron schedule (and on demand); every run posts a ``running``
record, then ``success``/``failed``, to the notify addresses, as the real daemon does. Pre/post
hooks would ``docker exec`` into containers; here they are noted in the result and skipped.
"""

from __future__ import annotations

import contextlib
import shutil
import tarfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import requests

from scripts.simcluster import minicron
from scripts.simcluster.backupd import GO_ZERO, BackupdStandIn, go_time, new_rid


class WorkingBackupd(BackupdStandIn):
    def __init__(self, host: str, port: int, root: Path, job_seconds: float = 0.5) -> None:
        super().__init__(host, port)
        self.root = Path(root)
        self.job_seconds = job_seconds
        self._work_lock = threading.RLock()
        self._created: dict[str, datetime] = {}
        self._next: dict[str, datetime] = {}
        self._ticking = threading.Event()
        self._ticker: threading.Thread | None = None
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # tests move time by hand

    # -- paths ---------------------------------------------------------------------------------
    def fs(self, path: str) -> Path:
        return self.root / "fs" / path.lstrip("/")

    def storage(self, namespace: str | None = None) -> Path:
        return self.root / "storage" / (namespace or self.host)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Self:
        super().start()
        self._ticking.set()
        self._ticker = threading.Thread(target=self._tick, daemon=True, name=f"cron-{self.host}")
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._ticking.clear()
        super().stop()

    def on_restart(self) -> None:
        super().on_restart()
        self._next = {}

    def _tick(self) -> None:
        """The daemon's cron: start every due, unpaused job in its own thread."""
        while self._ticking.is_set():
            now = datetime.now(UTC)
            if self.crond_status == "started":
                for job in list(self.jobs):
                    due = self._next.get(job["id"] or "expire")
                    if due is None or (due <= now and not job.get("sleep")):
                        if due is not None:
                            self.execute(job, new_rid())
                        self._next[job["id"] or "expire"] = (
                            minicron.Spec(job["spec"]).next_after(now) or now + timedelta(days=3650))
            time.sleep(0.2)

    # -- running jobs ----------------------------------------------------------------------------
    def execute(self, job: dict[str, Any], rid: str) -> None:
        threading.Thread(target=self._perform, args=(dict(job), rid), daemon=True).start()

    def _perform(self, job: dict[str, Any], rid: str) -> None:
        record = {**job, "rid": rid, "result": None, "state": "running", "start": go_time(),
                  "end": GO_ZERO, "reason": ""}
        self._post(record)
        time.sleep(self.job_seconds)
        try:
            action = getattr(self, "_do_" + job["action"])
            with self._work_lock:
                record["result"] = action(job["args"])
            record["state"] = "success"
        except Exception as e:  # the daemon reports any failure as the record's reason
            record["state"], record["reason"] = "failed", str(e)
        record["end"] = go_time()
        self._post(record)

    def _post(self, record: dict[str, Any]) -> None:
        for addr in list(self.notify):
            with contextlib.suppress(requests.RequestException):  # the daemon does not retry either
                requests.post(addr, json=record, timeout=5)

    def _do_backup(self, args: dict[str, Any]) -> dict[str, Any]:
        source = self.fs(args["path"])
        if not source.is_dir():
            raise RuntimeError(f"Directory {args['path']} not exist")
        store = self.storage()
        store.mkdir(parents=True, exist_ok=True)
        now = self.clock()
        if args.get("mode") == "increment":
            name = args["archive"]
            shutil.copytree(source, store / name, dirs_exist_ok=True)
            size = sum(f.stat().st_size for f in (store / name).rglob("*") if f.is_file())
            self.files[name] = self._listing(store / name)
        else:
            name = f"{args['archive']}-{int(now.timestamp())}.tar.gz"
            with tarfile.open(store / name, "w:gz") as tar:
                tar.add(source, arcname=".")
            size = (store / name).stat().st_size
        self.backups = [b for b in self.backups if b["name"] != name]
        self.backups.append({
            "mode": args.get("mode") or "full", "source": args["path"], "volume": args["volume"],
            "name": name, "server": self.host, "size": size, "created": go_time(now),
            "containers": args.get("containers", []), "instanceNo": args.get("instanceNo", 0)})
        self._created[name] = now
        hooks = [h for h in (args.get("preRun"), args.get("postRun")) if h]
        return {"file": name, "size": size, **({"skipped_hooks": hooks} if hooks else {})}

    def _do_backup_expire(self, args: dict[str, Any]) -> None:
        info = args.get("info", [])
        expires = {}
        for path, expire in zip(info[::2], info[1::2], strict=False):
            units = {"m": 60, "h": 3600, "d": 86400}
            if expire[:-1].isdigit() and expire[-1:] in units:  # the daemon skips what it cannot read
                expires[path] = timedelta(seconds=int(expire[:-1]) * units[expire[-1]])
        now = self.clock()
        for entity in list(self.backups):
            limit = expires.get(entity["source"])
            created = self._created.get(entity["name"])
            if entity["mode"] == "full" and limit and created and now - created > limit:
                self.delete([entity["name"]])

    def _do_backup_recover(self, args: dict[str, Any]) -> None:
        name, namespace = args["backup"], args.get("namespace") or self.host
        source = self.storage(namespace) / name
        if not source.exists():
            raise RuntimeError(f"Unkown backup file {name} in {namespace}")
        entity = self._entity(name)
        dest_dir = args.get("destDir") or (entity["source"] if entity else "")
        if not dest_dir:
            raise RuntimeError(f"no destination for {name}")
        dest = self.fs(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            for f in args.get("files") or []:
                target = dest / f
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / f, target)
        else:
            with tarfile.open(source, "r:gz") as tar:
                tar.extractall(dest, filter="data")

    def recover(self, name: str, form: dict[str, Any]) -> str:
        rid = new_rid()
        # the args the real daemon gives its backup_recover task (api/v1 BackupRecover)
        args = {"namespace": form.get("namespace", ""), "backup": name,
                "files": form.get("files") or None, "destDir": form.get("destDir", ""),
                "app": form.get("app", ""), "proc": form.get("proc", "")}
        self.execute({"id": "", "spec": "", "action": "backup_recover", "args": args,
                      "type": "once", "sleep": False}, rid)
        return rid

    def delete(self, files: list[str]) -> None:
        with self._work_lock:
            for f in files:
                name, _, inner = f.partition("/")
                target = self.storage() / f
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
                if inner:
                    self.files[name] = self._listing(self.storage() / name)
            super().delete([f for f in files if "/" not in f])

    @staticmethod
    def _listing(directory: Path) -> list[dict[str, Any]]:
        return [{"name": str(p.relative_to(directory)), "size": p.stat().st_size,
                 "mod_time": go_time(datetime.fromtimestamp(p.stat().st_mtime, UTC)),
                 "dir": p.is_dir()} for p in sorted(directory.rglob("*"))]
