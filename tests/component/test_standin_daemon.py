"""The working backupd stand-in against what laincloud/backupd does (tasks/backup, crond), through
its HTTP API on loopback and on the files it leaves: the controller's restore logic is proved
against this double, so it must fail, and falsely succeed, where the real daemon does."""

from __future__ import annotations

import json
import os
import re
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from scripts.simcluster.server import Recorded, Reply, StandIn, free_port
from scripts.simcluster.worker import BUSY, NIL_POINTER, WorkingBackupd

NODE, OTHER = "127.0.0.21", "127.0.0.22"
VOLUMES = "/data/lain/volumes/hello/hello.web.web"
DIR = f"{VOLUMES}/1/data"
ARCHIVE = "hello-hello.web.web-1-data"
LOGS = f"{VOLUMES}/1/var/log/hello"
INCR = "hello-hello.web.web-1-var-log-hello"


class Receiver(StandIn):
    """The controller's notify route, reduced: records every post; answers ``status`` (to the
    records in ``state`` only, when set)."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0)
        self.status = 200
        self.state: str | None = None
        self.posts: list[dict[str, Any]] = []

    def handle(self, req: Recorded) -> Reply:
        record = json.loads(req.body)
        self.posts.append(record)
        return Reply(self.status if self.state in (None, record["state"]) else 200, "OK")

    def of(self, rid: str) -> list[dict[str, Any]]:
        return [p for p in list(self.posts) if p["rid"] == rid]

    def final(self, rid: str, seconds: float = 10.0) -> dict[str, Any]:
        """The run's success or failed record (waited for)."""
        return wait(lambda: next((p for p in self.of(rid) if p["state"] != "running"), None), seconds)


def wait(what: Callable[[], Any], seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := what():
            return found
        time.sleep(0.02)
    raise AssertionError("timed out")


class Daemon:
    """A working stand-in on ``host``, driven through its v1 API as the controller drives it."""

    def __init__(self, host: str, port: int, root: Path, receiver: Receiver) -> None:
        self.standin = WorkingBackupd(host, port, root, job_seconds=0.0)
        self.standin.notify_retry_seconds = 0.05
        self.standin.start()
        self.api = f"http://{host}:{port}/api/v1"
        self.receiver = receiver
        assert requests.put(f"{self.api}/notify", data={"addr": receiver.url}, timeout=5).ok

    def fs(self, path: str) -> Path:
        return self.standin.fs(path)

    def push(self, *jobs: dict[str, Any]) -> None:
        resp = requests.put(f"{self.api}/cron/jobs", data={"data": json.dumps(list(jobs))}, timeout=5)
        assert resp.status_code == 200, resp.text

    def run(self, job_id: str) -> str:
        resp = requests.post(f"{self.api}/cron/jobs/{job_id}/actions/run", timeout=5)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["rid"])

    def backup(self, job_id: str = "full") -> dict[str, Any]:
        record = self.receiver.final(self.run(job_id))
        assert record["state"] == "success", record
        return record

    def recover(self, name: str, **form: Any) -> str:
        kind = "increment/recover/dir" if name == INCR else "full/recover/file"
        resp = requests.post(f"{self.api}/backup/{kind}/{name}", data=form, timeout=5)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["rid"])

    def restore(self, name: str, **form: Any) -> dict[str, Any]:
        """Recover and wait for the run's final record."""
        return self.receiver.final(self.recover(name, **form))


def job(job_id: str, path: str, archive: str, mode: str = "full") -> dict[str, Any]:
    return {"id": job_id, "spec": "0 0 1 1 *", "action": "backup",
            "args": {"path": path, "archive": archive, "volume": "/data", "instanceNo": 1,
                     "mode": mode, "containers": []}}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    standin = Receiver().start()
    yield standin
    standin.stop()


@pytest.fixture
def port() -> int:
    return free_port((NODE, OTHER))


@pytest.fixture
def node(tmp_path, port, receiver) -> Iterator[Daemon]:
    daemon = Daemon(NODE, port, tmp_path, receiver)
    daemon.fs(DIR).mkdir(parents=True)
    (daemon.fs(DIR) / "hello.txt").write_text("backed up\n")
    daemon.push(job("full", DIR, ARCHIVE), job("incr", LOGS, INCR, "increment"))
    yield daemon
    daemon.standin.stop()


def tree(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): p.read_text() for p in sorted(directory.rglob("*"))
            if p.is_file()}


def leftovers(target: Path) -> list[str]:
    return [p.name for p in target.parent.iterdir() if p.name.endswith((".recovering", ".bak"))]


# -- backups -------------------------------------------------------------------------------------
def test_a_full_backup_holds_the_dir_under_its_base_name(node):
    record = node.backup()
    name = record["result"]["file"]
    assert re.fullmatch(rf"{ARCHIVE}-\d+\.tar\.gz", name)
    archive = node.standin.storage() / name
    assert record["result"]["size"] == archive.stat().st_size
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert names[0] == "data" and "data/hello.txt" in names  # as tar -Szcf - data, run in 1/
    assert not any(n.startswith(".") for n in names)


def test_a_backup_of_a_missing_dir_fails(node):
    gone = f"{VOLUMES}/9/data"
    node.push(job("gone", gone, "hello-hello.web.web-9-data"))
    record = node.receiver.final(node.run("gone"))
    assert record["state"] == "failed" and record["reason"] == f"Directory {gone} not exist"
    assert record["result"] is None


def test_a_busy_dir_refuses_another_backup_and_a_restore(node):
    name = node.backup()["result"]["file"]
    node.standin.job_seconds = 1.0
    first = node.run("full")
    wait(lambda: node.standin.running_tasks)
    time.sleep(0.2)  # the first run holds the dir now
    second, restore = node.run("full"), node.recover(name, namespace=NODE)
    for rid in (second, restore):
        record = node.receiver.final(rid)
        assert record["state"] == "failed" and record["reason"] == BUSY
    assert node.receiver.final(first)["state"] == "success"
    assert node.restore(name)["state"] == "success"  # free again


# -- full restores -------------------------------------------------------------------------------
def test_a_full_restore_in_place_restores_exactly_the_backup(node):
    name = node.backup()["result"]["file"]
    target = node.fs(DIR)
    (target / "hello.txt").write_text("damaged\n")
    (target / "new.txt").write_text("made after the backup\n")
    rid = node.recover(name, namespace=NODE, destDir="", app="hello", proc="hello.web.web")
    record = node.receiver.final(rid)
    assert record["state"] == "success" and record["result"] is None and record["reason"] == ""
    assert record["action"] == "backup_recover" and record["id"] == "" and record["type"] == "once"
    assert record["args"] == {"namespace": NODE, "backup": name, "files": None, "destDir": "",
                              "app": "hello", "proc": "hello.web.web"}
    assert sorted(p["state"] for p in node.receiver.of(rid)) == ["running", "success"]
    assert tree(target) == {"hello.txt": "backed up\n"}
    assert leftovers(target) == []


def test_a_restore_into_a_dir_of_another_base_name_succeeds_and_restores_nothing(node):
    """The archive's top dir is ``data``; ``.recovering/other`` does not exist, so the copy
    fails, ``.bak`` is copied back, and the daemon reports success."""
    name = node.backup()["result"]["file"]
    other = node.fs(f"{VOLUMES}/1/other")
    other.mkdir()
    (other / "kept.txt").write_text("untouched\n")
    record = node.restore(name, namespace=NODE, destDir=f"{VOLUMES}/1/other")
    assert record["state"] == "success" and record["reason"] == ""
    assert tree(other) == {"kept.txt": "untouched\n"}
    assert leftovers(other) == []


def test_a_failing_copy_is_reported_as_a_success_and_the_target_is_put_back(node):
    name = node.backup()["result"]["file"]
    target = node.fs(DIR)
    (target / "hello.txt").write_text("current\n")
    (target / "new.txt").write_text("not in the backup\n")  # the delete pass removes it first
    node.standin.copy_fails = True
    record = node.restore(name)
    assert record["state"] == "success" and record["reason"] == ""
    assert tree(target) == {"hello.txt": "current\n", "new.txt": "not in the backup\n"}
    assert leftovers(target) == []
    assert any("now recover" in line for line in node.standin.daemon_log)


def test_a_restore_into_a_missing_target_fails(node):
    name = node.backup()["result"]["file"]
    gone = node.fs(f"{VOLUMES}/1/gone")
    record = node.restore(name, destDir=f"{VOLUMES}/1/gone")
    assert record["state"] == "failed" and record["reason"] == "exit status 23"  # rsync gone/ gone.bak/
    assert not gone.exists() and leftovers(gone) == []


def test_a_restore_whose_target_parent_is_missing_fails(node):
    name = node.backup()["result"]["file"]
    dest = f"{VOLUMES}/7/data"
    record = node.restore(name, destDir=dest)
    assert record["state"] == "failed"
    assert record["reason"] == f"mkdir {dest}.recovering: no such file or directory"
    assert not node.fs(f"{VOLUMES}/7").exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_archive_fails_with_tar_s_exit_status_and_leaves_the_target(node, damage):
    """Go's error of a failed tar is only its exit status; tar's words go to the log."""
    name = node.backup()["result"]["file"]
    archive = node.standin.storage() / name
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"no gzip here" * 20)
    (node.fs(DIR) / "hello.txt").write_text("current\n")
    record = node.restore(name)
    assert record["state"] == "failed" and record["reason"] == "exit status 2"
    words = r"truncated|ended|unexpected end" if damage == "truncated" else "not a gzip file"
    assert any(re.search(words, line) for line in node.standin.daemon_log), node.standin.daemon_log
    assert tree(node.fs(DIR)) == {"hello.txt": "current\n"} and leftovers(node.fs(DIR)) == []


def test_a_restore_of_a_missing_archive_fails_with_the_open_error(node):
    name = node.backup()["result"]["file"]
    (node.standin.storage() / name).unlink()
    record = node.restore(name)
    assert record["state"] == "failed"
    assert record["reason"] == f"open {NODE}/{name}: no such file or directory"


def test_a_restore_from_another_nodes_namespace(node, port, tmp_path, receiver):
    """A migrate: the real daemon dereferences a nil meta (a shadowed variable); a fixed one
    reads the other node's meta and storage."""
    name = node.backup()["result"]["file"]
    other = Daemon(OTHER, port, tmp_path, receiver)
    try:
        target = other.fs(f"{VOLUMES}/2/data")
        target.mkdir(parents=True)
        (target / "hello.txt").write_text("instance 2\n")
        form = {"namespace": NODE, "destDir": f"{VOLUMES}/2/data"}
        record = other.restore(name, **form)
        assert record["state"] == "failed" and record["reason"] == NIL_POINTER
        assert tree(target) == {"hello.txt": "instance 2\n"} and leftovers(target) == []
        other.standin.cross_node_fixed = True
        assert other.restore(name, **form)["state"] == "success"
        assert tree(target) == {"hello.txt": "backed up\n"} and leftovers(target) == []
        # a node that never synced a meta file: its load fails before the nil pointer
        record = node.restore(name, namespace="127.0.0.29")
        assert record["state"] == "failed" and record["reason"].startswith(
            "Fail to read meta data from backend, ") and "127.0.0.29/.meta" in record["reason"]
    finally:
        other.standin.stop()


# -- increment restores --------------------------------------------------------------------------
@pytest.fixture
def logs(node) -> Path:
    """The increment backup of a log dir (``a.log``, ``sub/b.log``), then the dir emptied."""
    directory = node.fs(LOGS)
    (directory / "sub").mkdir(parents=True)
    (directory / "a.log").write_text("a\n")
    (directory / "sub" / "b.log").write_text("b\n")
    os.chmod(directory / "a.log", 0o640)
    os.utime(directory / "a.log", (1_700_000_000, 1_700_000_000))
    assert node.backup("incr")["result"]["file"] == INCR
    for f in ("a.log", "sub/b.log"):
        (directory / f).unlink()
    (directory / "sub").rmdir()
    return directory


def test_an_increment_restore_of_one_file_keeps_its_mode_and_mtime(node, logs):
    record = node.restore(INCR, namespace=NODE, files=["a.log"])
    assert record["state"] == "success" and record["args"]["files"] == ["a.log"]
    assert tree(logs) == {"a.log": "a\n"}
    info = (logs / "a.log").stat()
    assert info.st_mode & 0o777 == 0o640 and info.st_mtime == 1_700_000_000


@pytest.mark.parametrize("files, restored", [
    (["*"], {"a.log": "a\n", "sub/b.log": "b\n"}),
    (["sub"], {"sub/b.log": "b\n"}),
])
def test_an_increment_restore_of_every_file_or_a_dir(node, logs, files, restored):
    assert node.restore(INCR, files=files)["state"] == "success"
    assert tree(logs) == restored


def test_an_increment_restore_of_a_missing_file_fails_before_copying_any(node, logs):
    record = node.restore(INCR, files=["a.log", "nope.log"])
    assert record["state"] == "failed"
    assert record["reason"] == f"stat {NODE}/{INCR}/nope.log: no such file or directory"
    assert tree(logs) == {}


def test_an_increment_restore_from_another_namespace_fails_like_a_full_one(node, port, tmp_path,
                                                                            receiver, logs):
    other = Daemon(OTHER, port, tmp_path, receiver)
    try:
        record = other.restore(INCR, namespace=NODE, files=["*"])
        assert record["state"] == "failed" and record["reason"] == NIL_POINTER
    finally:
        other.standin.stop()


# -- records, notify, /debug ---------------------------------------------------------------------
@pytest.mark.parametrize("status, attempts", [(503, 3), (500, 3), (400, 1), (409, 1)])
def test_notify_retries_a_5xx_answer_only(node, status, attempts):
    node.receiver.status = status
    rid = node.run("full")
    node.receiver.final(rid)
    time.sleep(0.5)  # room for any retry
    states = [p["state"] for p in node.receiver.of(rid)]
    assert states.count("running") == attempts and states.count("success") == attempts


def test_notify_retries_an_address_that_does_not_answer(node):
    dead = f"http://127.0.0.1:{free_port()}/notify"
    assert requests.put(f"{node.api}/notify", data={"addr": dead}, timeout=5).ok
    rid = node.run("full")
    node.receiver.final(rid)
    failures = lambda: [line for line in node.standin.daemon_log if dead in line]  # noqa: E731
    assert len(wait(lambda: len(failures()) >= 6 and failures())) == 6  # running, success: 3 each
    time.sleep(0.3)
    assert len(failures()) == 6


def test_a_retried_post_does_not_hold_the_run_up(node):
    """Each post runs apart: with the running post waiting a minute to retry, the final record
    still arrives at once (and the running one would arrive after it). Even without retries the
    two posts race, as the daemon's goroutines do."""
    node.standin.notify_retry_seconds = 60.0
    node.receiver.status, node.receiver.state = 503, "running"
    rid = node.run("full")
    assert node.receiver.final(rid, seconds=5)["state"] == "success"
    assert sorted(p["state"] for p in node.receiver.of(rid)) == ["running", "success"]


def test_debug_counts_the_runs_in_progress(node):
    debug = lambda: requests.get(f"{node.api}/debug", timeout=5).json()["running_tasks"]  # noqa: E731
    assert debug() == 0
    node.standin.job_seconds = 1.0
    rid = node.run("full")
    assert wait(lambda: debug() == 1)
    node.receiver.final(rid)
    assert wait(lambda: debug() == 0)


def test_parallel_backups_of_different_dirs_both_run(node):
    """Only the same dir is refused; the daemon runs other tasks side by side."""
    node.fs(f"{VOLUMES}/2/data").mkdir(parents=True)
    node.push(job("full", DIR, ARCHIVE), job("two", f"{VOLUMES}/2/data", "hello-hello.web.web-2-data"))
    node.standin.job_seconds = 0.5
    rids: list[str] = []
    threads = [threading.Thread(target=lambda j=j: rids.append(node.run(j))) for j in ("full", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(node.receiver.final(rid)["state"] == "success" for rid in rids)
