"""The retention floor, simulated over 60 days against the working stand-in daemon's own expire:
a volume whose daily backups keep failing past its 7-day expire keeps its last good backup."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from chalicelib.deps import Deps
from chalicelib.usecases import reconcile
from chalicelib.usecases import records as records_flow
from scripts.simcluster.worker import WorkingBackupd
from tests import reference

NODE = "127.0.0.11"
DIR = "/data/lain/volumes/db/db.web.web/1/data"


def spec(node: str) -> dict:
    item = {"procname": "db.web.web", "volume": "/data", "schedule": "0 3 * * *", "expire": "7d",
            "mode": "full"}
    return {"db.web.web": [{"Annotation": json.dumps({"backup": [item]}), "InstanceNo": 1,
                            "Containers": [{"Id": "d1", "Ip": "", "NodeIp": node, "NodeName": ""}]}]}


class Sim:
    """One node's working daemon, the controller's records and reconcile, and one clock."""

    def __init__(self, settings, ddb, lainlet, daemon_port, tmp_path) -> None:
        lainlet.spec = spec(NODE)
        self.now = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
        self.deps = Deps(settings, lambda: self.now, ddb)
        self.daemon = WorkingBackupd(NODE, daemon_port, tmp_path)
        self.daemon.clock = lambda: self.now
        self.daemon.fs(DIR).mkdir(parents=True)
        (self.daemon.fs(DIR) / "rows").write_text("precious\n")
        self.daemon.start()

    def stop(self) -> None:
        self.daemon.stop()

    def job(self) -> dict:
        return next(j for j in self.daemon.jobs if j["id"])

    def backup(self, outcome: str) -> None:
        """The daily run at 03:00 ("good", "failed", or "empty": a success whose archive is 0
        bytes), and its record as notify would store it."""
        job = self.job()
        if outcome == "good":
            result = self.daemon._do_backup(job["args"])
            record = reference.record_of(job, "success", self.now, result=result)
        elif outcome == "empty":
            result = {"file": f"{job['args']['archive']}-{int(self.now.timestamp())}.tar.gz", "size": 0}
            record = reference.record_of(job, "success", self.now, result=result)
        else:
            record = reference.record_of(job, "failed", self.now, reason="disk full")
        records_flow.store(self.deps, record)

    def expire(self) -> None:
        """What the daemon's every-minute expire job does, with the list it holds now."""
        [expire_job] = [j for j in self.daemon.jobs if j["action"] == "backup_expire"]
        self.daemon._do_backup_expire(expire_job["args"])

    def backups(self) -> list[str]:
        return sorted(b["name"] for b in self.daemon.backups)

    def day(self, outcome: str) -> dict:
        self.now += timedelta(days=1)
        self.backup(outcome)
        self.now += timedelta(hours=1)
        summary = reconcile.run(self.deps).summary
        self.expire()
        self.now -= timedelta(hours=1)
        return summary


def test_sixty_days_of_failures_never_expire_the_last_good_backup(settings, ddb, lainlet, daemon_port,
                                                                  tmp_path):
    sim = Sim(settings, ddb, lainlet, daemon_port, tmp_path)
    try:
        reconcile.run(sim.deps)
        assert sim.job()["args"]["path"] == DIR
        sim.backup("good")  # day 0: one good backup
        good = sim.backups()
        assert len(good) == 1
        listed = []
        for _ in range(60):
            sim.day("failed")
            info = next(j for j in sim.daemon.jobs if j["action"] == "backup_expire")["args"]["info"]
            listed.append(DIR in info)
        assert sim.backups() == good  # day 60: the day-0 backup is still there
        assert listed[:4] == [True] * 4 and not any(listed[5:])  # held from day 6 (7d - 25%)
        [held] = reconcile.plan_answer(reconcile.observe(sim.deps, check_restarts=False))["expiry_held"]
        assert held["dir"] == DIR and "would expire soon" in held["reason"]
        summary = sim.day("good")  # day 61: a good backup again
        assert summary["expiry_held"] == 0
        assert len(sim.backups()) == 1 and sim.backups() != good  # expiry resumed: the old one went
    finally:
        sim.stop()


def test_without_the_floor_the_daemon_would_have_deleted_it(settings, ddb, lainlet, daemon_port,
                                                            tmp_path):
    """The same days with the floor's margin set so it never holds (control): the backup goes."""
    import dataclasses

    sim = Sim(dataclasses.replace(settings, expiry_hold_margin_percent=-10_000), ddb, lainlet,
              daemon_port, tmp_path)
    try:
        reconcile.run(sim.deps)
        sim.backup("good")
        for _ in range(9):
            sim.day("failed")
        assert sim.backups() == []  # every copy gone after 7 days of failures
    finally:
        sim.stop()


def test_successes_with_empty_archives_never_count_as_good_backups(settings, ddb, lainlet,
                                                                   daemon_port, tmp_path):
    """A backup made before the controller kept any record, then 60 days of "successes" whose
    archives are 0 bytes: each is suspect, none is good, so that backup is never expired."""
    sim = Sim(settings, ddb, lainlet, daemon_port, tmp_path)
    try:
        reconcile.run(sim.deps)
        sim.daemon._do_backup(sim.job()["args"])  # on the daemon, unknown to the controller
        before = sim.backups()
        for _ in range(60):
            sim.day("empty")
        assert sim.backups() == before
        [held] = reconcile.plan_answer(reconcile.observe(sim.deps, check_restarts=False))["expiry_held"]
        assert held["dir"] == DIR and held["reason"] == "no good backup recorded yet"
    finally:
        sim.stop()
