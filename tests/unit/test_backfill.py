"""The archives a node lists against the records: which runs' records are recovered, which good
backups are gone. The listing is the one captured from the original daemon."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

from chalicelib.core import backfill
from chalicelib.core.cluster import Cluster
from chalicelib.core.formats.recordschema import parse_record
from chalicelib.core.jobs import placements
from tests import reference

NODE = "127.0.0.11"
LISTING = ("GET /api/v1/backup/json?dir=/data/lain/volumes/hello/hello.web.web/1/data"
           "&dir=/data/lain/volumes/hello/hello.web.web/1/var/log/hello")
FULL = "hello-hello.web.web-1-data-1795563919.tar.gz"  # made 2026-11-24T23:45:19.90123216Z
INCR = "hello-hello.web.web-1-var-log-hello"
MADE = datetime(2026, 11, 24, 23, 45, 19, tzinfo=UTC)


def node_placements():
    cluster = Cluster.from_backupspec(reference.backupspec())
    return [p for p in placements(cluster) if p.node == NODE and p.job is not None
            and p.pod.instance_no == 1 and p.proc.full_name == "hello.web.web"]


def listing() -> list[dict]:
    status, body = reference.backupd_sample(LISTING)
    assert status == 200
    return copy.deepcopy(body)


def job_of(volume: str) -> dict:
    return next(p.job for p in node_placements() if p.item.volume == volume)


def everything() -> set[str]:
    return {p.job["id"] for p in node_placements()}


def success(volume: str, file: str, start: datetime) -> dict:
    return reference.record_of(job_of(volume), "success", start, result={"file": file, "size": 1})


def test_an_archive_with_no_record_becomes_its_runs_success_record():
    now = MADE + timedelta(hours=1)
    made = backfill.recovered(node_placements(), listing(), {}, now, everything())
    by_file = {r["result"]["file"]: r for r in made}
    assert set(by_file) == {FULL, INCR}
    full = by_file[FULL]
    assert full["id"] == job_of("/data")["id"] and full["state"] == "success"
    assert full["result"]["size"] == 154 and full["start"] == "2026-11-24T23:45:19.90123216Z"
    assert f"from the archive {FULL} on {NODE}" in full["recovered"]
    assert by_file[INCR]["args"]["mode"] == "increment"
    # but for the controller's note, it is a record a daemon could have posted
    daemons = {k: v for k, v in full.items() if k != "recovered"}
    stored = parse_record(json.dumps(daemons), now=now, skew=timedelta(minutes=10))
    assert stored["rid"] == full["rid"]
    again = backfill.recovered(node_placements(), listing(), {}, now, everything())
    assert [r["rid"] for r in again] == [r["rid"] for r in made]  # the same archive, the same rid


def test_only_the_wanted_jobs_and_their_own_dirs_and_modes():
    now = MADE + timedelta(hours=1)
    only_data = {job_of("/data")["id"]}
    [made] = backfill.recovered(node_placements(), listing(), {}, now, only_data)
    assert made["result"]["file"] == FULL
    entities = listing()
    entities[0]["mode"] = "increment"  # /data is backed up full: an increment of it is not its run
    entities[0]["source"] = entities[0]["source"] + "-other"
    assert backfill.recovered(node_placements(), entities[:1], {}, now, only_data) == []


def test_a_recorded_or_newer_run_or_a_young_archive_adds_nothing():
    data = job_of("/data")["id"]
    recorded = {data: {"success": success("/data", FULL, MADE - timedelta(seconds=1))}}
    now = MADE + timedelta(hours=1)
    assert backfill.recovered(node_placements(), listing()[:1], recorded, now, {data}) == []
    older = {data: {"success": success("/data", "x", MADE - timedelta(days=1))}}
    assert len(backfill.recovered(node_placements(), listing()[:1], older, now, {data})) == 1
    young = MADE + backfill.SETTLE - timedelta(seconds=1)  # its post may still be on its way
    assert backfill.recovered(node_placements(), listing()[:1], {}, young, {data}) == []


def test_garbage_in_a_listing_is_skipped():
    now = MADE + timedelta(hours=1)
    entities = listing()[:1]
    bad = [{**entities[0], "created": "yesterday"}, {**entities[0], "created": None},
           {**entities[0], "size": "big", "name": "n.tar.gz"}, {"source": 3}]
    made = backfill.recovered(node_placements(), bad, {}, now, everything())
    assert [(r["result"]["file"], r["result"]["size"]) for r in made] == [("n.tar.gz", 0)]


def test_at_most_twenty_runs_of_a_job_are_recovered_at_once_newest_first():
    entity = listing()[0]
    many = [{**entity, "name": f"a-{n}.tar.gz",
             "created": (MADE + timedelta(hours=n)).strftime("%Y-%m-%dT%H:%M:%SZ")}
            for n in range(30)]
    made = backfill.recovered(node_placements(), many, {}, MADE + timedelta(days=2), everything())
    assert len(made) == backfill.MAX_PER_JOB == 20
    assert made[0]["result"]["file"] == "a-29.tar.gz"


def test_a_good_backup_its_node_no_longer_lists_is_gone():
    data = job_of("/data")["id"]
    latest = {data: {"good": success("/data", FULL, MADE)}}
    assert backfill.gone(node_placements(), listing(), latest) == []
    [(p, file)] = backfill.gone(node_placements(), listing()[1:], latest)
    assert (p.job["id"], file) == (data, FULL)
    marked = {data: {"good": {**success("/data", FULL, MADE), "gone": "already"}}}
    assert backfill.gone(node_placements(), listing()[1:], marked) == []
