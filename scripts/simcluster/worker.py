"""A backupd stand-in that really does the work, on local directories, for the local runner and
the end-to-end tests.

Layout under ``root``: ``fs/`` is every node's filesystem (volume dirs live at
``fs/data/lain/volumes/...``), ``storage/<node ip>/`` the shared backup storage of each daemon's
namespace, with its ``.meta`` (the entities, as the daemon syncs them to its backend). Full
backups are ``<archive>-<unixtime>.tar.gz`` files, increment backups a copied ``<archive>`` dir.
Jobs run on their cron schedule (and on demand); every run posts a ``running`` record, then
``success``/``failed``, to the notify addresses. Pre/post hooks would ``docker exec`` into
containers; here they are noted in the result and skipped.

It does what laincloud/backupd does (tasks/backup, crond), down to its flaws, because the
controller must be proved against that daemon and not against a kinder one:

* an archive holds the volume dir under its base name (``tar -Szcf - <base>`` in its parent);
* a backup or restore of a dir refuses to start while another one of the same dir runs;
* a full restore extracts into ``<target>.recovering`` (made without its parents), copies the
  target to ``<target>.bak``, then copies ``.recovering/<base of target>`` over the target like
  ``rsync --delete-before``; when that last copy fails it copies ``.bak`` back and reports
  *success* -- so an archive whose top dir is not the target's base name "succeeds" and restores
  nothing;
* a restore from another node's namespace fails with a nil pointer dereference (a shadowed
  variable in ``backup_recover``), unless :attr:`WorkingBackupd.cross_node_fixed` is set;
* a failure's reason is what Go's error says: a failed ``tar`` or ``rsync`` is just
  ``exit status N``; what the tool printed goes to the daemon's log (:attr:`daemon_log`);
* each record is posted to each address from its own thread, up to 3 times, a minute apart,
  while the job goes on (so a ``running`` post may land after the job's final one).

Fault flags, like the server's ``delay`` and ``fail_status``: :attr:`copy_fails` (the restore's
copy over the target fails, as on a full disk), :attr:`cross_node_fixed`,
:attr:`notify_retry_seconds`, :attr:`notify_timeout_seconds`.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import shutil
import stat
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, Self

import requests

from scripts.simcluster import minicron
from scripts.simcluster.backupd import GO_ZERO, BackupdStandIn, go_time, new_rid

META = ".meta"
NOTIFY_ATTEMPTS = 3  # crond/notify.go: "retry 3 times"
NIL_POINTER = "runtime error: invalid memory address or nil pointer dereference"
BUSY = "Directory is now backuping, give up."  # restores mark the dir "backuping" too


class DaemonError(RuntimeError):
    """A task's error, worded as the Go daemon words it (it becomes the record's ``reason``)."""


def _go_errno(error: OSError) -> str:
    """Go's text for an errno: the C strerror, lower-cased (``no such file or directory``)."""
    text = os.strerror(error.errno) if error.errno else str(error)
    return text[:1].lower() + text[1:]


class WorkingBackupd(BackupdStandIn):
    def __init__(self, host: str, port: int, root: Path, job_seconds: float = 0.5) -> None:
        super().__init__(host, port)
        self.root = Path(root)
        self.job_seconds = job_seconds  # how long a task's work holds its dir
        self.notify_retry_seconds = 60.0  # the wait between a failed notify post and the next
        self.notify_timeout_seconds = 5.0  # Go's client waits forever; a test must not
        self.cross_node_fixed = False  # True: a restore from another node's namespace works
        self.copy_fails = False  # True: a full restore's copy over its target fails (disk full)
        self.private_dirs: tuple[str, ...] = ()  # dirs each node has its own of (see fs())
        self.daemon_log: list[str] = []  # what the daemon logs and never reports (tar's words)
        self._work_lock = threading.RLock()  # the metadata: backups, files, .meta
        self._busy_dirs: set[str] = set()  # the daemon's bstats: dirs being backed up or restored
        self._busy_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._created: dict[str, datetime] = {}
        self._next: dict[str, datetime] = {}
        self._ticking = threading.Event()
        self._ticker: threading.Thread | None = None
        self._alive = threading.Event()  # cleared by stop(): a dead process retries no post
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # tests move time by hand

    # -- paths ---------------------------------------------------------------------------------
    def fs(self, path: str) -> Path:
        """Where a node path lives: the nodes share one tree (volume paths never collide), but
        each has its own copy of :attr:`private_dirs` (drill areas, which would)."""
        if any(path == d or path.startswith(d.rstrip("/") + "/") for d in self.private_dirs):
            return self.root / "nodes" / self.host / path.lstrip("/")
        return self.root / "fs" / path.lstrip("/")

    def storage(self, namespace: str | None = None) -> Path:
        return self.root / "storage" / (namespace or self.host)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Self:
        super().start()
        self._alive = threading.Event()
        self._alive.set()
        self._ticking.set()
        self._ticker = threading.Thread(target=self._tick, daemon=True, name=f"cron-{self.host}")
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._ticking.clear()
        self._alive.clear()
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

    def _say(self, line: str) -> None:
        """A line of the daemon's log."""
        self.daemon_log.append(line)

    # -- running jobs ----------------------------------------------------------------------------
    def execute(self, job: dict[str, Any], rid: str) -> None:
        threading.Thread(target=self._perform, args=(dict(job), rid), daemon=True).start()

    def _perform(self, job: dict[str, Any], rid: str) -> None:
        """One run, as crond's WrapFunc: counted in ``running_tasks`` from its ``running`` record
        to its last one; any error fails the run with the error's words as its reason."""
        with self._count_lock:
            self.running_tasks += 1
        try:
            record = {**job, "rid": rid, "result": None, "state": "running", "start": go_time(),
                      "end": GO_ZERO, "reason": ""}
            self._post(record)
            try:
                action = getattr(self, "_do_" + job["action"])
                record["result"] = action(job["args"], hold=self.job_seconds)
                record["state"] = "success"
            except Exception as e:  # the daemon reports any failure as the record's reason
                record["state"], record["reason"] = "failed", str(e)
            record["end"] = go_time()
            self._post(record)
        finally:
            with self._count_lock:
                self.running_tasks -= 1

    def _post(self, record: dict[str, Any]) -> None:
        """Post the record as it is now to every notify address, each from its own thread."""
        body = json.dumps(record).encode()
        for addr in list(self.notify):
            if addr:
                threading.Thread(target=self._deliver, args=(addr, body, self._alive),
                                 daemon=True).start()

    def _deliver(self, addr: str, body: bytes, alive: threading.Event) -> None:
        """Up to 3 attempts; a transport error or a 5xx answer is tried again after
        ``notify_retry_seconds``, any other answer (a 4xx too) ends it."""
        for attempt in range(1, NOTIFY_ATTEMPTS + 1):
            try:
                resp = requests.post(addr, data=body, headers={"Content-Type": "application/json"},
                                     timeout=self.notify_timeout_seconds)
            except requests.RequestException as e:
                self._say(f"Fail to notify {addr}, {e}, attempt {attempt}")
            else:
                resp.close()
                if resp.status_code < 500:
                    return
                self._say(f"Fail to notify {addr}, return {resp.status_code}, attempt {attempt}")
            if attempt == NOTIFY_ATTEMPTS or not alive.is_set() or not self._wait_to_retry(alive):
                return

    def _wait_to_retry(self, alive: threading.Event) -> bool:
        """Sleep ``notify_retry_seconds``; False if the daemon stopped meanwhile."""
        deadline = time.monotonic() + self.notify_retry_seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.2))
            if not alive.is_set():
                return False
        return True

    @contextlib.contextmanager
    def _busy(self, path: str, hold: float) -> Iterator[None]:
        """Hold ``path`` (the exact string, as the daemon keys it) for one backup or restore:
        another one of it fails at once. ``hold`` is how long the work takes."""
        with self._busy_lock:
            if path in self._busy_dirs:
                raise DaemonError(BUSY)
            self._busy_dirs.add(path)
        try:
            time.sleep(hold)
            yield
        finally:
            with self._busy_lock:
                self._busy_dirs.discard(path)

    # -- backup ----------------------------------------------------------------------------------
    def _do_backup(self, args: dict[str, Any], hold: float = 0.0) -> dict[str, Any]:
        path = args.get("path", "")
        source = self.fs(path)
        if not source.exists():
            raise DaemonError(f"Directory {path} not exist")
        with self._busy(path, hold):
            store = self.storage()
            store.mkdir(parents=True, exist_ok=True)
            now = self.clock()
            if args.get("mode") == "increment":
                name = args["archive"]
                shutil.copytree(source, store / name, dirs_exist_ok=True)
                size = 0  # backupd never sets an increment backup's size: it reports 0
            else:
                name = f"{args['archive']}-{int(now.timestamp())}.tar.gz"
                self._archive(path, store / name)
                size = (store / name).stat().st_size
            with self._work_lock:
                if args.get("mode") == "increment":
                    self.files[name] = self._listing(store / name)
                self.backups = [b for b in self.backups if b["name"] != name]
                self.backups.append({
                    "mode": args.get("mode") or "full", "source": path, "volume": args.get("volume", ""),
                    "name": name, "server": self.host, "size": size, "created": go_time(now),
                    "containers": args.get("containers", []), "instanceNo": args.get("instanceNo", 0)})
                self._created[name] = now
                self._sync_meta()
        hooks = [h for h in (args.get("preRun"), args.get("postRun")) if h]
        return {"file": name, "size": size, **({"skipped_hooks": hooks} if hooks else {})}

    def _archive(self, path: str, archive: Path) -> None:
        """``tar -Szcf - <base>`` run in the dir's parent: the archive's top entry is the dir's
        base name (``data/hello.txt``), which a restore later looks for under that name."""
        base = posixpath.basename(posixpath.normpath(path))
        with tarfile.open(archive, "w:gz", format=tarfile.GNU_FORMAT) as tar:
            tar.add(self.fs(path), arcname=base)

    def _do_backup_expire(self, args: dict[str, Any], hold: float = 0.0) -> None:
        time.sleep(hold)
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

    # -- restore ---------------------------------------------------------------------------------
    def _do_backup_recover(self, args: dict[str, Any], hold: float = 0.0) -> None:
        """``backup_recover``: find the entity, hold its target dir, restore; no result."""
        name = args.get("backup") or ""
        if not name:
            raise DaemonError("Empty recover file")
        namespace, entity = self._locate(args.get("namespace") or "", name)
        target = args.get("destDir") or entity["source"]
        with self._busy(target, hold):
            if entity["mode"] == "increment":
                self._restore_files(namespace, name, args.get("files") or [], target)
            else:
                self._restore_full(namespace, name, target)

    def _locate(self, namespace: str, name: str) -> tuple[str, dict[str, Any]]:
        """The namespace to read and the backup's entity (a copy).

        Another node's namespace: the daemon loads that node's ``.meta`` into a variable that
        shadows the one it then reads, still nil -- a panic. Its load can fail first (that node
        never synced a meta file). ``cross_node_fixed`` reads the loaded one, as a fix would."""
        if namespace and namespace != self.host:
            meta = self._load_meta(namespace)
            if not self.cross_node_fixed:
                raise DaemonError(NIL_POINTER)
            entities = [e for group in meta.values() for e in group]
        else:
            namespace, entities = self.host, list(self.backups)
        entity = next((e for e in entities if e.get("name") == name), None)
        if entity is None:
            raise DaemonError(f"Unkown backup file {name} in {namespace}")
        return namespace, dict(entity)

    def _restore_full(self, namespace: str, name: str, target: str) -> None:
        """Entity.Recover: extract into ``<target>.recovering``, keep the target in
        ``<target>.bak``, copy ``.recovering/<base of target>`` over the target; if that copy
        fails, copy ``.bak`` back and succeed anyway. Both dirs go in every case."""
        local = self.fs(target)
        recovering, bak = Path(f"{local}.recovering"), Path(f"{local}.bak")
        if recovering.exists():
            shutil.rmtree(recovering)
        try:
            recovering.mkdir()  # not its parents: a target whose parent is gone fails here
        except OSError as e:
            raise DaemonError(f"mkdir {target}.recovering: {_go_errno(e)}") from e
        try:
            self._extract(namespace, name, recovering)
            if bak.exists():
                shutil.rmtree(bak)
            try:
                self._clone(local, bak)  # fails when the target does not exist
                try:
                    base = posixpath.basename(posixpath.normpath(target))
                    self._clone(recovering / base, local, fail=self.copy_fails)
                except DaemonError:
                    self._say(f"Recover action failed, now recover {target} from {target}.bak")
                    self._put_back(bak, local, target)
            finally:
                shutil.rmtree(bak, ignore_errors=True)
        finally:
            shutil.rmtree(recovering, ignore_errors=True)

    def _put_back(self, bak: Path, local: Path, target: str) -> None:
        """Copy ``.bak`` back over the target; if even that fails, rename it into place."""
        try:
            self._clone(bak, local)
        except DaemonError:
            try:
                bak.rename(local)
            except OSError as e:
                raise DaemonError(f"rename {target}.bak {target}: {_go_errno(e)}") from e

    def _extract(self, namespace: str, name: str, into: Path) -> None:
        """``tar -zxf - -C <into>`` fed from the storage: a missing archive fails with the open
        error; a corrupt or truncated one with tar's exit status (tar's words are only logged)."""
        archive = self.storage(namespace) / name
        try:
            stream = archive.open("rb")
        except OSError as e:
            raise DaemonError(f"open {namespace}/{name}: {_go_errno(e)}") from e
        try:
            with stream, tarfile.open(fileobj=stream, mode="r|gz") as tar:
                tar.extractall(into, filter=_as_gnu_tar)
        except (tarfile.TarError, EOFError, OSError, ValueError) as e:
            self._say(f"Command run failed, exit status 2, Output: tar: {type(e).__name__}: {e}")
            raise DaemonError("exit status 2") from e

    def _clone(self, src: Path, dest: Path, fail: bool = False) -> None:
        """``rsync -rIptgo --delete-before src/ dest/``: ``dest`` ends up holding exactly
        ``src``'s files and dirs (content always copied; mode, times, owner and group kept),
        and ``src``'s symlinks and special files are skipped (no ``-l``/``-D``). ``fail``
        injects a full disk after the delete pass. A failure is rsync's exit status."""
        if not src.is_dir():
            self._say(f'rsync: change_dir "{src}" failed: No such file or directory (2)')
            raise DaemonError("exit status 23")
        try:
            if not dest.is_dir():
                dest.mkdir()
            _mirror(src, dest, fail)
        except OSError as e:
            self._say(f"rsync: {e}")
            raise DaemonError("exit status 11") from e

    def _restore_files(self, namespace: str, name: str, files: list[str], target: str) -> None:
        """Entity.IncrementRecover: each named file (a dir: every file under it; ``*``: every
        file) of the increment dir goes to ``<target>/<its path in the dir>``, parents made,
        with its mode and mtime. A name that is not there fails the whole restore, before
        anything is copied."""
        base = self.storage(namespace) / name
        chosen: list[Path] = []
        for f in files:
            chosen += self._files_under(namespace, name, base, f)
        for src in chosen:
            rel = src.relative_to(base)
            dest = self.fs(target) / rel
            with contextlib.suppress(OSError):  # the daemon ignores this error
                dest.parent.mkdir(parents=True, exist_ok=True)
            info = src.stat()
            try:
                with src.open("rb") as fin, dest.open("wb") as fout:
                    shutil.copyfileobj(fin, fout)
            except OSError as e:
                raise DaemonError(f"open {posixpath.join(target, str(rel))}: {_go_errno(e)}") from e
            os.chmod(dest, stat.S_IMODE(info.st_mode))
            os.utime(dest, (time.time(), info.st_mtime))

    @staticmethod
    def _files_under(namespace: str, name: str, base: Path, f: str) -> list[Path]:
        """findAllFiles: ``*`` is every file of the dir, a dir every file under it; a name
        that is not there fails with the storage's words."""
        if f == "*":
            if not base.is_dir():
                raise DaemonError(f"open {namespace}/{name}: no such file or directory")
            where = base
        else:
            where = base / f
            try:
                info = where.stat()
            except OSError as e:
                raise DaemonError(f"stat {posixpath.join(namespace, name, f)}: {_go_errno(e)}") from e
            if not stat.S_ISDIR(info.st_mode):
                return [where]
        return sorted(p for p in where.rglob("*") if p.is_file())

    def recover(self, name: str, form: dict[str, Any]) -> str:
        rid = new_rid()
        # the args the real daemon gives its backup_recover task (api/v1 BackupRecover)
        args = {"namespace": form.get("namespace", ""), "backup": name,
                "files": form.get("files") or None, "destDir": form.get("destDir", ""),
                "app": form.get("app", ""), "proc": form.get("proc", "")}
        self.execute({"id": "", "spec": "", "action": "backup_recover", "args": args,
                      "type": "once", "sleep": False}, rid)
        return rid

    # -- metadata --------------------------------------------------------------------------------
    def add_backup(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        with self._work_lock:
            entity = super().add_backup(*args, **kwargs)
            self._sync_meta()
        return entity

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
            self._sync_meta()

    def _sync_meta(self) -> None:
        """Write the entities to ``storage/<ns>/.meta`` (by source dir, increment ones under
        ``<dir>@increment``), where another node's daemon reads them for a migrate."""
        grouped: dict[str, list[dict[str, Any]]] = {}
        for entity in self.backups:
            key = entity["source"] + ("@increment" if entity["mode"] == "increment" else "")
            grouped.setdefault(key, []).append(entity)
        store = self.storage()
        store.mkdir(parents=True, exist_ok=True)
        (store / META).write_text(json.dumps(grouped))

    def _load_meta(self, namespace: str) -> dict[str, list[dict[str, Any]]]:
        try:
            text = (self.storage(namespace) / META).read_bytes()
        except OSError as e:
            raise DaemonError("Fail to read meta data from backend, Fail to download the meta data "
                              f"from backend, open {namespace}/{META}: {_go_errno(e)}") from e
        meta: dict[str, list[dict[str, Any]]] = json.loads(text.strip(b"\0"))
        return meta

    @staticmethod
    def _listing(directory: Path) -> list[dict[str, Any]]:
        return [{"name": str(p.relative_to(directory)), "size": p.stat().st_size,
                 "mod_time": go_time(datetime.fromtimestamp(p.stat().st_mtime, UTC)),
                 "dir": p.is_dir()} for p in sorted(directory.rglob("*"))]


def _as_gnu_tar(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """What GNU tar (run as root) extracts: modes and owners as archived, leading ``/`` dropped;
    a member reaching out with ``..`` is an error (tar exits 2)."""
    name = member.name.lstrip("/")
    if ".." in PurePosixPath(name).parts:
        raise tarfile.OutsideDestinationError(member, os.path.join(dest, name))
    return tarfile.fully_trusted_filter(member.replace(name=name, deep=False), dest)


def _mirror(src: Path, dest: Path, fail: bool = False) -> None:
    """Make ``dest`` hold exactly ``src``'s regular files and dirs (rsync -rIptgo
    --delete-before): first delete what ``src`` lacks, then copy every file, then the dirs'
    attributes. ``fail``: raise ENOSPC right after the delete pass."""
    wanted = {e.name: e.is_dir(follow_symlinks=False) for e in os.scandir(src)
              if e.is_dir(follow_symlinks=False) or e.is_file(follow_symlinks=False)}
    for entry in os.scandir(dest):
        is_dir = entry.is_dir(follow_symlinks=False)
        if wanted.get(entry.name) is not is_dir or entry.is_symlink():
            if is_dir:
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
    if fail:
        raise OSError(28, f"write failed on {dest}: No space left on device")
    for name, is_dir in sorted(wanted.items()):
        if is_dir:
            if not (dest / name).is_dir():
                (dest / name).mkdir()
            _mirror(src / name, dest / name)
        else:
            partial = dest / f".{name}.partial"  # rsync writes aside, then renames
            shutil.copyfile(src / name, partial)
            _copy_attributes(src / name, partial)
            os.replace(partial, dest / name)
    _copy_attributes(src, dest)


def _copy_attributes(src: Path, dest: Path) -> None:
    """-p -t -g -o: mode, mtime, and owner and group (as far as this process may set them)."""
    info = src.stat()
    os.chmod(dest, stat.S_IMODE(info.st_mode))
    with contextlib.suppress(PermissionError):
        os.chown(dest, info.st_uid, info.st_gid)
    os.utime(dest, (dest.stat().st_atime, info.st_mtime))
