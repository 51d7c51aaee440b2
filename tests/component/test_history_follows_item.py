"""History follows the item across a job-ID change (issue 24, bullet 4): a job's ID is the md5 of
what is pushed, its schedule included, so turning ``SPREAD_SECONDS`` on or editing a schedule gives
hello's /data instance 1 on 127.0.0.11 a new ID. Before, everything kept per job started afresh
under it: the scheduled run after the change showed the item ``pending`` with no last run and no
last success (its expire held as if never backed up), the next day ``never`` if that run was
missed, and a first archive of 50,000 bytes after three of 1,000,000 was taken as good (no size
baseline). Now the reconcile carries the old job's kept runs to the new ID once, before the node
gets the new list, and the item goes on as before. Records are stored as notify stores them, time
passed in as a clock; real stand-ins on loopback, DynamoDB in moto."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.core import jobs
from chalicelib.deps import Deps
from chalicelib.usecases import evidence as evidence_flow
from chalicelib.usecases import health, schedule
from chalicelib.usecases import jobs as jobs_flow
from chalicelib.usecases import records as records_flow
from tests import reference
from tests.component.test_backup_status import Clock

HELLO_DATA = "7f00000bb19d69edd273f3535f5cd42e6fcbd556"  # instance 1 /data, 0 3 * * *, 127.0.0.11
MYSQL = "7f00000d021a80f569807176a366a7fac5c3ba76"
HELLO_2 = "127.0.0.12"  # hello instance 2's node


def job_of(deps: Deps, node: str, volume: str, instance: int = 1) -> dict:
    """The backup job of hello's ``volume`` of ``instance`` on ``node``, as the controller
    generates it now."""
    for job in jobs.generate(deps.cluster())[node]:
        args = job.get("args", {})
        if job["id"] and args.get("volume") == volume and args.get("instanceNo") == instance:
            return job
    raise AssertionError(f"no job of {volume} on {node}")


def backup(deps: Deps, job: dict, when: datetime, size: int, state: str = "success",
           daemons: dict | None = None) -> dict:
    """A run of ``job`` started at ``when``, four minutes long, posted through notify's store
    (a success's archive also listed by its node's stand-in); the record as stored (with the
    controller's judgment)."""
    args = job["args"]
    result = None
    if state == "success":
        result = {"file": f"{args['archive']}-{int(when.timestamp())}.tar.gz", "size": size}
        if daemons is not None:
            daemons[job_node(job)].add_backup(args["app"], args["proc"], args["instanceNo"],
                                              args["volume"], created=int(when.timestamp()))
    record = reference.record_of(job, state, when, end=when + timedelta(minutes=4), result=result)
    assert records_flow.store(deps, record).stored
    return records_flow.record(deps, job["args"]["app"], record["rid"])


def job_node(job: dict) -> str:
    return str(jobs.node_of_job_id(job["id"]))


def item(deps: Deps, volume: str = "/data", instance: int = 1) -> dict:
    items = health.app_status(deps, "hello")["items"]
    return next(i for i in items if i["volume"] == volume and i["instance"] == instance
                and i["node"] == "127.0.0.11")


def slim(ddb, node: str) -> dict[str, dict]:
    """Every slim item of ``node``'s partition, by job ID, as stored (not its change mark)."""
    from boto3.dynamodb.conditions import Key

    return {i["sk"]: i for i in ddb.query(KeyConditionExpression=Key("pk").eq(f"FRESH#{node}"))["Items"]
            if i["sk"] != "~changed"}


@pytest.fixture
def hook(receiver, settings):
    return dataclasses.replace(settings, alert_webhook_url=receiver.url + "/hook")


@pytest.fixture
def receiver():
    from tests.component.test_backup_status import Receiver

    r = Receiver().start()
    yield r
    r.stop()


def three_good_days(deps: Deps, clock: Clock, daemons: dict) -> list[dict]:
    """Pushed on Nov 1 at 00:10; good backups of 1,000,000 bytes at 03:00:05 on Nov 1-3 (and one
    of instance 2 and one of mysql, the items whose IDs do not change); the clock ends Nov 3 at
    12:00 after a scheduled run that found hello's /data ok."""
    clock.now = datetime(2026, 11, 1, 0, 10, tzinfo=UTC)
    schedule._run(deps)
    job = job_of(deps, "127.0.0.11", "/data")
    assert job["id"] == HELLO_DATA  # the golden ID, with the setting off
    stored = []
    for day in (1, 2, 3):
        when = datetime(2026, 11, day, 3, 0, 5, tzinfo=UTC)
        clock.now = when + timedelta(minutes=5)
        stored.append(backup(deps, job, when, 1_000_000, daemons=daemons))
    backup(deps, job_of(deps, HELLO_2, "/data", 2), datetime(2026, 11, 3, 3, 0, 6, tzinfo=UTC), 700,
           daemons=daemons)
    mysql = job_of(deps, "127.0.0.13", "/var/lib/mysql")
    assert mysql["id"] == MYSQL
    backup(deps, mysql, datetime(2026, 11, 3, 0, 0, 1, tzinfo=UTC), 9_000, daemons=daemons)
    clock.now = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
    assert schedule._run(deps)["alerts"] == 0
    assert item(deps)["status"] == "ok"
    return stored


def test_turning_spread_seconds_on_keeps_each_items_history(hook, ddb, daemons, receiver):
    clock = Clock(datetime(2026, 11, 1, tzinfo=UTC))
    before = Deps(hook, clock, ddb)
    stored = three_good_days(before, clock, daemons)
    others = {n: slim(ddb, n) for n in (HELLO_2, "127.0.0.13")}

    after = Deps(dataclasses.replace(hook, spread_seconds=True), clock, ddb)
    new = job_of(after, "127.0.0.11", "/data")
    assert new["id"] != HELLO_DATA and new["spec"] == "57 0 3 * * *"  # the item's own second
    clock.now += timedelta(minutes=1)
    summary = schedule._run(after)
    assert summary["carried"] == 2  # hello's /data of instances 1 and 2 had a history; mysql's
    assert receiver.messages == []  # 6-field schedule is pushed as written: its ID stays

    now = item(after)  # before: pending, no last run, no last success, expiry held
    assert (now["job_id"], now["status"], now["schedule_pushed"]) == (new["id"], "ok", new["spec"])
    assert now["last_success"]["rid"] == stored[-1]["rid"] == now["last_run"]["rid"]
    assert "no run was due since the job reached 127.0.0.11" in now["reason"]
    assert now["due"] == "2026-11-03T03:00:57Z" and now["next_run"] == "2026-11-04T03:00:57Z"
    assert now["expiry_held"] == ""

    # the next day's run, under the new ID and at the new second, meets the old baseline
    first = backup(after, new, datetime(2026, 11, 4, 3, 0, 57, tzinfo=UTC), 1_000_000,
                   daemons=daemons)
    assert not first.get("suspect")
    clock.now = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)
    assert schedule._run(after)["alerts"] == 1  # instance 2 missed its run: told, as before the
    [late] = receiver.messages                   # change (before: pending, then never, untold)
    assert late["text"].startswith("backup of hello hello.web.web instance 2 volume /data on "
                                   "127.0.0.12 is late (was ok)")
    assert item(after)["status"] == "ok"
    small = backup(after, new, datetime(2026, 11, 5, 3, 0, 57, tzinfo=UTC), 50_000,
                   daemons=daemons)
    assert small["suspect"] == "the archive is 50000 bytes, under 10% of the recent median " \
                               "(1000000 bytes)"  # before: taken as the first good size

    clock.now = datetime(2026, 11, 5, 3, 10, tzinfo=UTC)
    report = json.loads(evidence_flow.app_evidence(after, "hello", "30", "json").body)["report"]
    [data] = [i for i in report["apps"][0]["items"] if i["volume"] == "/data" and i["instance"] == 1]
    assert data["runs"] == {"good": 4, "failed": 0, "suspect": 1}
    assert data["last_good"]["rid"] == first["rid"]
    assert data["achieved_rpo"]["hours"] < 25  # a day between good backups, across the change

    # nothing else moved: mysql's slim items are as they were; instance 2's took its own history
    assert slim(ddb, "127.0.0.13") == others["127.0.0.13"]
    moved = {k: v for k, v in slim(ddb, HELLO_2).items() if k not in others[HELLO_2]}
    [(_, carried)] = moved.items()
    [(old_id, old)] = others[HELLO_2].items()
    assert carried["carried_from"] == old_id and carried["good"] == old["good"]


def test_the_evidence_of_a_day_without_a_backup_knows_the_newest_good_one(hook, ddb, daemons):
    """The newest good backup of any age follows too: a report of the last day, with no backup
    in it, after the change, counts from the window's start and knows the newest good one."""
    clock = Clock(datetime(2026, 11, 1, tzinfo=UTC))
    stored = three_good_days(Deps(hook, clock, ddb), clock, daemons)
    after = Deps(dataclasses.replace(hook, spread_seconds=True), clock, ddb)
    clock.now = datetime(2026, 11, 4, 3, 30, 5, tzinfo=UTC)  # the last good one is 24.5 h old
    schedule._run(after)
    assert item(after)["last_success"]["rid"] == stored[-1]["rid"]
    report = json.loads(evidence_flow.app_evidence(after, "hello", "1", "json").body)["report"]
    [data] = [i for i in report["apps"][0]["items"] if i["volume"] == "/data" and i["instance"] == 1]
    assert data["last_good"]["rid"] == stored[-1]["rid"]  # before: none, since_last_good null
    assert data["since_last_good"]["hours"] == 24.5
    # before: counted from the new job's push a moment ago, a largest gap of 0.0 h ("pass")
    assert data["counted_from"] == "2026-11-03T03:30:05Z" and data["achieved_rpo"]["hours"] == 24


def test_an_edited_schedule_keeps_the_history_and_the_pause(hook, ddb, daemons, lainlet, receiver):
    """hello's instance 1 /data goes from 0 3 * * * to 30 4 * * * in lain.yaml while paused: the
    item stays ok with its last success, its pause (reason and end) moves to the new job, which
    the push pauses on its daemon; before, the pause was dropped with the old ID and the new job
    ran."""
    clock = Clock(datetime(2026, 11, 1, tzinfo=UTC))
    deps = Deps(hook, clock, ddb)
    stored = three_good_days(deps, clock, daemons)
    paused = jobs_flow.action(deps, "hello", HELLO_DATA, "sleep", "3d", "disk migration")
    schedule._run(deps)
    [told] = receiver.messages
    assert told["event"] == "pause_start" and told["job_id"] == HELLO_DATA
    pod = lainlet.spec["hello.web.web"][0]
    pod["Annotation"] = pod["Annotation"].replace("0 3 * * *", "30 4 * * *", 1)
    new = job_of(deps, "127.0.0.11", "/data")
    assert new["id"] != HELLO_DATA and new["spec"] == "30 4 * * *"
    assert job_of(deps, HELLO_2, "/data", 2)["spec"] == "0 3 * * *"  # the other instance's pod

    clock.now += timedelta(minutes=1)
    summary = schedule._run(deps)
    assert summary["carried"] == 1 and summary["repaused"] == {"127.0.0.11": [new["id"]]}
    assert daemons["127.0.0.11"].sleeping() == {new["id"]}
    assert set(deps.state.pauses()["127.0.0.11"]) == {new["id"]}
    now = item(deps)
    assert (now["status"], now["job_id"]) == ("paused", new["id"])
    assert now["pause"] == {"until": paused["until"], "reason": "disk migration"}
    assert now["last_success"]["rid"] == stored[-1]["rid"]
    assert receiver.messages == [told], receiver.messages  # not "over", not "paused" again

    jobs_flow.action(deps, "hello", new["id"], "wakeup")
    clock.now = datetime(2026, 11, 4, 4, 0, tzinfo=UTC)  # the new 04:30 run is not due yet
    schedule._run(deps)
    told_now = [(m["event"], m["job_id"]) for m in receiver.messages if m["event"] != "bad"]
    assert told_now == [("pause_start", HELLO_DATA), ("pause_ended", new["id"])]  # the wakeup
    assert item(deps)["status"] == "ok"


def test_the_carry_is_once_and_never_puts_an_older_run_back(hook, ddb, daemons):
    """The new ID's own runs win over the old one's; carrying again (a push that failed, an ID
    that changed back) changes nothing of them."""
    clock = Clock(datetime(2026, 11, 1, tzinfo=UTC))
    three_good_days(Deps(hook, clock, ddb), clock, daemons)
    after = Deps(dataclasses.replace(hook, spread_seconds=True), clock, ddb)
    clock.now += timedelta(minutes=1)
    schedule._run(after)
    new = job_of(after, "127.0.0.11", "/data")
    failed = backup(after, new, datetime(2026, 11, 4, 3, 0, 57, tzinfo=UTC), 0, "failed")
    kept = slim(ddb, "127.0.0.11")[new["id"]]
    assert after.records.carry({new["id"]: HELLO_DATA}) == 0
    assert slim(ddb, "127.0.0.11")[new["id"]] == kept
    assert after.records.carry({"7f00000c" + HELLO_DATA[8:]: HELLO_DATA}) == 0  # another node
    clock.now = datetime(2026, 11, 4, 4, 0, tzinfo=UTC)
    now = item(after)
    assert (now["status"], now["last_run"]["rid"]) == ("failing", failed["rid"])
