"""Records survive an outage: a run that succeeded while DynamoDB was down (the controller's own
notify route, served over HTTP, answering 503 for longer than the daemon's three attempts a
minute apart) leaves an archive on the node and no record; the schedule's next run finds the
archive, recovers the record from it, and the item is ok again: no late alert, and the history
shows the run (marked recovered)."""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from chalice.config import Config
from chalice.local import LocalDevServer

from chalicelib.deps import Deps
from chalicelib.edges import dynamo
from chalicelib.settings import get_settings
from chalicelib.usecases import health, schedule
from chalicelib.usecases import records as records_flow
from scripts.simcluster.worker import WorkingBackupd, new_rid
from tests import reference
from tests.component.test_retention import DIR, NODE, spec


class Controller:
    """The app itself, on loopback, as `chalice local` serves it; ``down()`` takes its DynamoDB
    away (a port nothing listens on) and ``up()`` gives it back."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from app import app

        self.monkeypatch = monkeypatch
        self.server = LocalDevServer(app, Config.create(chalice_stage="dev", app_name="backupctl"),
                                     "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.store = os.environ.get("DYNAMODB_ENDPOINT_URL", "")

    def down(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        self._point(f"http://127.0.0.1:{dead}")

    def up(self) -> None:
        self._point(self.store)

    def _point(self, endpoint: str) -> None:
        self.monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", endpoint)
        get_settings.cache_clear()
        dynamo._table.cache_clear()

    def stop(self) -> None:
        self.server.shutdown()


class Sim:
    """One node's working daemon posting to the controller, and the schedule, on one clock the
    test moves (the daemon's archives are made at it; its posts carry the real time)."""

    def __init__(self, settings, ddb, lainlet, daemon_port, tmp_path, controller) -> None:
        lainlet.spec = spec(NODE)
        self.now = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
        settings = dataclasses.replace(settings, advertise_url=controller.url, node_check_minutes=60)
        self.deps = Deps(settings, lambda: self.now, ddb)
        self.daemon = WorkingBackupd(NODE, daemon_port, tmp_path, job_seconds=0)
        self.daemon.notify_retry_seconds = 0.05
        self.daemon.clock = lambda: self.now
        self.daemon.fs(DIR).mkdir(parents=True)
        (self.daemon.fs(DIR) / "rows").write_text("precious\n")
        self.daemon.start()

    def job(self) -> dict:
        return next(j for j in self.daemon.jobs if j["id"])

    def recorded_run(self) -> None:
        """A 03:00 run whose record arrived."""
        result = self.daemon._do_backup(self.job()["args"])
        records_flow.store(self.deps, reference.record_of(self.job(), "success", self.now,
                                                          result=result))

    def lost_run(self) -> str:
        """The next day's 03:00 run, by the daemon itself: its archive's name once every post of
        it was answered and given up on."""
        self.now += timedelta(days=1)
        before = len(self.daemon.daemon_log)
        self.daemon.execute(self.job(), new_rid())
        deadline = time.monotonic() + 20
        while given_up(self.daemon.daemon_log[before:]) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert given_up(self.daemon.daemon_log[before:]) == 2  # its running and success posts
        return max(self.daemon.backups, key=lambda b: b["created"])["name"]

    def item(self) -> dict:
        """db's one item, as the status route answers it."""
        [item] = health.app_status(self.deps, "db")["items"]
        return item

    def history(self) -> list[dict]:
        return self.deps.records.month("db", self.now.year, self.now.month, 100)


def given_up(daemon_log: list[str]) -> int:
    """Posts the daemon gave up on: its third failed attempt."""
    return sum(line.endswith("attempt 3") for line in daemon_log)


@pytest.fixture
def controller(env, ddb, monkeypatch) -> Iterator[Controller]:
    c = Controller(monkeypatch)
    yield c
    c.stop()


@pytest.fixture
def sim(settings, ddb, lainlet, daemon_port, tmp_path, controller) -> Iterator[Sim]:
    s = Sim(settings, ddb, lainlet, daemon_port, tmp_path, controller)
    schedule._run(s.deps)  # the jobs and the notify address reach the daemon
    yield s
    s.daemon.stop()


def test_a_run_whose_record_never_came_is_recovered_from_its_archive(sim, controller, logs):
    sim.recorded_run()
    controller.down()
    lost = sim.lost_run()
    # its running and success posts, three attempts each: 503, or a timeout when the machine is busy
    refused = [line for line in sim.daemon.daemon_log if line.startswith("Fail to notify")]
    assert len(refused) == 6, refused
    assert sum("return 503" in line for line in refused) >= 1
    controller.up()
    sim.now += timedelta(minutes=11)  # past the run's grace
    assert sim.item()["status"] == "late"  # without the archive: no success since the due run
    summary = schedule._run(sim.deps)
    assert summary["records_recovered"] == 1
    item = sim.item()
    assert item["status"] == "ok", item
    [recovered] = [r for r in sim.history() if r.get("recovered")]
    assert recovered["result"]["file"] == lost and recovered["state"] == "success"
    assert f"from the archive {lost} on {NODE}" in recovered["recovered"]
    assert recovered["result"]["size"] == next(b["size"] for b in sim.daemon.backups
                                               if b["name"] == lost)
    [line] = logs.events("records_recovered")
    assert line["level"] == "WARNING" and line["nodes"] == [NODE] and line["records"] == 1
    [run_line] = [e for e in logs.events("reconcile") if e.get("records_recovered")]
    assert run_line["RecordsRecovered"] == 1
    assert not logs.events("backup_bad")  # nobody was told of a late backup that was not late
    assert schedule._run(sim.deps)["records_recovered"] == 0  # once


def test_a_young_archive_is_left_to_its_own_post(sim, controller):
    """Within the daemon's retries the record may still come: nothing is made up for it."""
    controller.down()
    sim.lost_run()
    controller.up()
    sim.now += timedelta(minutes=2)
    assert sim.item()["status"] == "never"  # looked for: nothing on record
    assert schedule._run(sim.deps)["records_recovered"] == 0
    sim.now += timedelta(minutes=3)
    assert schedule._run(sim.deps)["records_recovered"] == 1
    assert sim.item()["status"] == "ok"


def test_an_archive_older_than_the_newest_record_adds_nothing(sim, controller):
    controller.down()
    sim.lost_run()  # a run whose posts were lost ...
    controller.up()
    sim.now += timedelta(hours=1)
    sim.recorded_run()  # ... and a newer one that was recorded
    sim.now += timedelta(days=1, minutes=11)
    assert schedule._run(sim.deps)["records_recovered"] == 0
    assert not [r for r in sim.history() if r.get("recovered")]


def test_an_unreachable_node_recovers_nothing_and_the_item_stays_late(sim, controller, logs):
    sim.recorded_run()
    controller.down()
    sim.lost_run()
    controller.up()
    sim.daemon.fail_status = 500
    sim.now += timedelta(minutes=11)
    summary = schedule._run(sim.deps)
    assert summary["records_recovered"] == 0
    [bad] = logs.events("backup_bad")
    assert bad["status"] == "late" and "does not answer" in bad["reason"]
    sim.daemon.fail_status = None
    sim.now += timedelta(minutes=1)
    assert schedule._run(sim.deps)["records_recovered"] == 1
    assert sim.item()["status"] == "ok"
    [back] = logs.events("backup_recovered")
    assert back["node"] == NODE and back["volume"] == "/data"
