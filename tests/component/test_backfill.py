"""Records survive an outage: a run that succeeded while its posts could not be stored (a
controller answering 503 for longer than the daemon's three attempts) leaves an archive on the
node and no record; the schedule's next run finds the archive, recovers the record from it, and
the item is ok again: no late alert, and the history shows the run (marked recovered)."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.deps import Deps
from chalicelib.usecases import health, schedule
from chalicelib.usecases import records as records_flow
from scripts.simcluster.server import Recorded, Reply, StandIn
from scripts.simcluster.worker import WorkingBackupd, new_rid
from tests import reference
from tests.component.test_retention import DIR, NODE, spec


class Controller(StandIn):
    """What the daemon sees of the controller during the outage: every post answered 503."""

    def handle(self, req: Recorded) -> Reply:
        return Reply(200, "{}")


class Sim:
    """One node's working daemon posting to an unreachable store, the controller's schedule,
    one clock: the test moves it, the daemon's archives are made at it."""

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

    def good_day(self) -> None:
        """A 03:00 run whose record arrived."""
        result = self.daemon._do_backup(self.job()["args"])
        records_flow.store(self.deps, reference.record_of(self.job(), "success", self.now,
                                                          result=result))

    def lost_run(self) -> str:
        """A 03:00 run by the daemon itself, every post of it refused: its archive's name."""
        before = len(self.daemon.daemon_log)
        self.daemon.execute(self.job(), new_rid())
        deadline = time.monotonic() + 10
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
def outage():
    controller = Controller()
    controller.fail_status = 503
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def sim(settings, ddb, lainlet, daemon_port, tmp_path, outage):
    s = Sim(settings, ddb, lainlet, daemon_port, tmp_path, outage)
    schedule._run(s.deps)  # the jobs and the notify address reach the daemon
    yield s
    s.daemon.stop()


def test_a_run_whose_record_never_came_is_recovered_from_its_archive(sim, outage, logs):
    sim.good_day()
    sim.now += timedelta(days=1)
    lost = sim.lost_run()
    assert len(outage.received("/api/v2/system/notify", "POST")) == 6  # 2 posts x 3 attempts
    sim.now += timedelta(minutes=11)  # the run is past its grace: without the archive, late
    assert sim.item()["status"] == "late"
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
    assert not logs.events("backup_bad")  # nobody was told of a late backup that was not late
    assert schedule._run(sim.deps)["records_recovered"] == 0  # once


def test_a_young_archive_is_left_to_its_own_post(sim, outage):
    """Within the daemon's retries the record may still come: nothing is made up for it."""
    sim.good_day()
    sim.now += timedelta(days=1)
    sim.lost_run()
    sim.now += timedelta(minutes=2)
    assert schedule._run(sim.deps)["records_recovered"] == 0


def test_an_archive_older_than_the_newest_record_adds_nothing(sim, outage):
    sim.now += timedelta(days=1)
    sim.lost_run()  # a run whose post was lost ...
    sim.now += timedelta(hours=1)
    sim.good_day()  # ... and a newer one that was recorded
    sim.now += timedelta(days=1, minutes=11)
    assert schedule._run(sim.deps)["records_recovered"] == 0
    assert not [r for r in sim.history() if r.get("recovered")]


def test_an_unreachable_node_recovers_nothing_and_the_item_stays_late(sim, outage, logs):
    sim.good_day()
    sim.now += timedelta(days=1)
    sim.lost_run()
    sim.daemon.fail_status = 500
    sim.now += timedelta(minutes=11)
    summary = schedule._run(sim.deps)
    assert summary["records_recovered"] == 0 and logs.events("backup_bad")
    sim.daemon.fail_status = None
    sim.now += timedelta(minutes=1)
    assert schedule._run(sim.deps)["records_recovered"] == 1
    assert sim.item()["status"] == "ok"
    [back] = logs.events("backup_recovered")
    assert back["node"] == NODE and back["volume"] == "/data"
