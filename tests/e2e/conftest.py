"""The local runner (``scripts/local.py``: chalice local + simulated cluster + embedded DynamoDB)
as a subprocess, started once for every end-to-end test."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from scripts.simcluster.server import free_port
from tests.reference import ROOT


def require(tool: str) -> str:
    """The path of a system tool the test needs: CI (BACKUPCTL_REQUIRE_TOOLS=1) installs them and
    fails without; elsewhere a missing tool skips the test and says which to install."""
    path = shutil.which(tool)
    if path:
        return path
    if os.environ.get("BACKUPCTL_REQUIRE_TOOLS"):
        pytest.fail(f"{tool} is not installed (.ci/run installs it)")
    pytest.skip(f"{tool} is not installed: apt-get install -y {tool}")


class Runner:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.daemon_port = free_port(("127.0.0.11", "127.0.0.12", "127.0.0.13"))
        self.data = tmp
        self.api = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items()
               if k not in ("DYNAMODB_ENDPOINT_URL", "API_TOKEN", "NOTIFY_TOKEN", "LAINLET_URL")}
        # as a deployed stage: the daemons are handed …/notify?token=<it> and post with it
        self.notify_token = env["NOTIFY_TOKEN"] = "e2e-" + os.urandom(12).hex()
        self.log = open(tmp / "runner.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "scripts/local.py", "--port", str(self.port), "--daemon-port",
             str(self.daemon_port), "--data-dir", str(tmp / "cluster"), "--reconcile-every", "3600",
             "--job-seconds", "0.4"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def url(self, path: str) -> str:
        return self.api + path

    def output(self) -> str:
        """Everything the runner printed so far (what its operator sees)."""
        self.log.flush()
        return (self.data / "runner.log").read_text()

    def wait(self, what, seconds: float = 30.0, every: float = 0.1):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.data / "runner.log").read_text()
            try:
                found = what()
            except requests.RequestException:
                found = None
            if found:
                return found
            time.sleep(every)
        raise AssertionError(f"timed out; runner log:\n{(self.data / 'runner.log').read_text()}")

    def file(self, app: str, proc: str, n: int, volume: str, name: str) -> Path:
        return (self.data / "cluster" / "fs" / "data/lain/volumes" / app / proc / str(n)
                / volume.lstrip("/") / name)

    def record(self, app: str, rid: str) -> dict | None:
        resp = requests.get(self.url(f"/api/v2/app/{app}/cron/records/{rid}"), timeout=5)
        return resp.json() if resp.status_code == 200 else None

    def finished(self, app: str, rid: str, again: Callable[[], str] | None = None) -> dict:
        """The record of ``rid`` once it ended; it must have succeeded. A run that met the
        daemon's per-path lock ("now backuping": the simulated cron's own run of an
        every-minute job held the directory that second, as backupd's lock does) is asked
        ``again`` (a new run's rid), as its user would, at most twice."""
        for _ in range(3):
            record = self.wait(lambda rid=rid: (r := self.record(app, rid)) and r["state"] != "running" and r)
            if again is None or "now backuping" not in (record.get("reason") or ""):
                break
            time.sleep(1)
            rid = again()
        assert record["state"] == "success", record
        return record

    def stop(self) -> None:
        with_group = os.getpgid(self.proc.pid)
        os.killpg(with_group, signal.SIGTERM)
        try:
            self.proc.wait(20)
        finally:
            time.sleep(0.5)
            leftovers = True
            try:
                os.killpg(with_group, 0)
            except ProcessLookupError:
                leftovers = False
            if leftovers:
                os.killpg(with_group, signal.SIGKILL)
            self.log.close()
        assert not leftovers, "the runner left processes behind"


@pytest.fixture(scope="session")
def runner(tmp_path_factory):
    r = Runner(tmp_path_factory.mktemp("e2e"))
    try:
        # started, then the first reconcile pushed every node
        r.wait(lambda: any(h.get("ok") for h in requests.get(
            r.url("/api/v2/system/reconcile/history"), timeout=5).json()), seconds=90)
        yield r
    finally:
        r.stop()
