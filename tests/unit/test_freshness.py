"""Backup freshness from constructed histories; time is injected, never waited for."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.core import freshness, sizes
from chalicelib.core.cluster import Cluster
from chalicelib.core.jobs import placements
from chalicelib.core.types import Pause

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
GRACE = timedelta(minutes=10)
NODE = "127.0.0.11"


def cluster(schedule="0 3 * * *", node=NODE):
    item = {"procname": "a.web.web", "volume": "/data", "schedule": schedule, "expire": "7d",
            "mode": "full"}
    return Cluster.from_backupspec({"a.web.web": [{
        "Annotation": json.dumps({"backup": [item]}), "InstanceNo": 1,
        "Containers": [{"Id": "c1", "Ip": "x", "NodeIp": node, "NodeName": "n"}]}]})


def record(state, start, seconds=30, reason=""):
    end = start + timedelta(seconds=seconds)
    return {"rid": f"r{start:%H%M%S}{state}", "state": state, "reason": reason,
            "start": start.strftime("%Y-%m-%dT%H:%M:%S.123456789Z"),
            "end": end.strftime("%Y-%m-%dT%H:%M:%S.5Z") if state != "running" else
            "0001-01-01T00:00:00Z"}


def assess(c=None, last=None, success=None, first_seen=NOW - timedelta(days=30), paused=False,
           now=NOW):
    c = c or cluster()
    job_id = next(placements(c)).job["id"] if next(placements(c)).job else ""
    latest = {job_id: {k: v for k, v in (("last", last), ("success", success)) if v}}
    pause = {NODE: {job_id: Pause("2026-12-01T00:00:00Z", "migration")}} if paused else {}
    items = freshness.assess(
        c, first_seen={(NODE, job_id): first_seen.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        if first_seen else {}, paused=pause, latest=latest, now=now, grace=GRACE)
    assert len(items) == 1
    return items[0]


TODAY_3AM = datetime(2026, 11, 25, 3, 0, 0, tzinfo=UTC)


def test_success_on_time_is_ok():
    ok = record("success", TODAY_3AM)
    item = assess(last=ok, success=ok)
    assert (item.status, item.due) == ("ok", "2026-11-25T03:00:00Z")
    assert item.last_success["rid"] == ok["rid"]


def test_nothing_since_the_last_due_run_is_late():
    yesterday = record("success", TODAY_3AM - timedelta(days=1))
    item = assess(last=yesterday, success=yesterday)
    assert item.status == "late" and "2026-11-25T03:00:00Z" in item.reason


def test_within_grace_the_previous_success_still_counts():
    """``due`` is the last scheduled start (today's); it counts as missed only after the grace."""
    yesterday = record("success", TODAY_3AM - timedelta(days=1))
    item = assess(last=yesterday, success=yesterday, now=TODAY_3AM + timedelta(minutes=5))
    assert item.status == "ok" and item.due == "2026-11-25T03:00:00Z"
    assert "the run due at 2026-11-25T03:00:00Z is within its grace" in item.reason


def test_latest_run_failed_is_failing():
    yesterday = record("success", TODAY_3AM - timedelta(days=1))
    failed = record("failed", TODAY_3AM, reason="preHook backup.sh failed")
    item = assess(last=failed, success=yesterday)
    assert item.status == "failing" and "preHook backup.sh failed" in item.reason


def test_failure_shows_before_the_grace_period_ends():
    yesterday = record("success", TODAY_3AM - timedelta(days=1))
    failed = record("failed", TODAY_3AM)
    assert assess(last=failed, success=yesterday,
                  now=TODAY_3AM + timedelta(minutes=2)).status == "failing"


def test_no_success_ever_is_never():
    assert assess(last=None, success=None).status == "never"
    failed_long_ago = record("failed", TODAY_3AM - timedelta(days=3))
    assert assess(last=failed_long_ago, success=None).status == "never"


def test_job_that_never_reached_its_node_is_never():
    item = assess(first_seen=None)
    assert item.status == "never" and "not reached 127.0.0.11" in item.reason


def test_new_job_is_pending_until_its_first_run_is_due():
    item = assess(first_seen=NOW - timedelta(hours=1))
    assert item.status == "pending" and "2026-11-26T03:00:00Z" in item.reason


def test_paused_job_is_paused_with_its_reason_and_end():
    ok = record("success", TODAY_3AM - timedelta(days=1))
    item = assess(last=ok, success=ok, paused=True)
    assert item.status == "paused" and "until 2026-12-01T00:00:00Z: migration" in item.reason
    assert item.pause == {"until": "2026-12-01T00:00:00Z", "reason": "migration"}


def test_a_volume_never_backed_up_is_never_even_when_paused():
    item = assess(paused=True)
    assert item.status == "never" and "paused by a user until 2026-12-01" in item.reason
    assert "no successful backup ever recorded" in item.reason


def test_a_pause_that_ended_is_not_shown_active():
    """The reconcile wakes the job when the pause ends; until it runs, the status already says
    what is true: not paused."""
    ok = record("success", TODAY_3AM)
    item = assess(last=ok, success=ok, paused=True, now=datetime(2026, 12, 1, 0, 0, 39, tzinfo=UTC))
    assert item.status != "paused" and item.pause is None and item.next_run


@pytest.mark.parametrize("schedule", ["0 0 5 0 0", "61 * * * *"])
def test_bad_cron_is_invalid(schedule):
    item = assess(cluster(schedule))
    assert item.status == "invalid" and item.job_id == ""


def test_schedule_that_never_fires_is_invalid():
    assert assess(cluster("0 0 30 2 *")).status == "invalid"


def test_instance_without_a_valid_node_is_invalid():
    items = freshness.assess(cluster(node="not-an-ip"), first_seen={}, paused={}, latest={},
                             now=NOW, grace=GRACE)
    assert [(i.status, i.node) for i in items] == [("invalid", "")]


@pytest.mark.parametrize("schedule, due", [
    ("30 0 3 * * *", "2026-11-25T03:00:30Z"),  # 6 fields: seconds first
    ("0 */20 * * * *", "2026-11-25T11:40:00Z"),  # every 20 minutes, at second 0
    ("@every 2h", "2026-11-25T10:00:00Z"),  # now - 2h
    ("TZ=Asia/Shanghai 0 11 * * *", "2026-11-25T03:00:00Z"),
])
def test_due_times_follow_robfig_semantics(schedule, due):
    assert assess(cluster(schedule)).due == due


def test_run_time_of_the_job_extends_the_grace():
    slow = record("success", TODAY_3AM - timedelta(days=1), seconds=3600)
    # 03:50: past 10 min of grace, but the job takes an hour: today's run is not due yet
    assert assess(last=slow, success=slow, now=TODAY_3AM + timedelta(minutes=50)).status == "ok"
    assert assess(last=slow, success=slow, now=TODAY_3AM + timedelta(minutes=75)).status == "late"


def test_counts():
    ok = record("success", TODAY_3AM)
    items = [assess(last=ok, success=ok, paused=True), assess()]
    assert freshness.counts(items) == {"ok": 0, "pending": 0, "late": 0, "failing": 0,
                                       "suspect": 0, "never": 1, "paused": 1, "invalid": 0}


@pytest.mark.parametrize("early, status", [(4, "ok"), (5, "ok"), (6, "late")])
def test_a_daemon_clock_a_few_seconds_early_still_counts(early, status):
    """Daemon clocks and the expected start may differ by up to 5 s (SKEW); more is a miss."""
    run = record("success", TODAY_3AM - timedelta(seconds=early))
    assert assess(last=run, success=run).status == status


@pytest.mark.parametrize("early, status", [(4, "failing"), (6, "late")])
def test_a_failure_a_few_seconds_early_still_counts_as_this_run(early, status):
    yesterday = record("success", TODAY_3AM - timedelta(days=1))
    failed = record("failed", TODAY_3AM - timedelta(seconds=early), reason="disk full")
    assert assess(last=failed, success=yesterday).status == status


@pytest.mark.parametrize("result, recent, words", [
    (None, [], "no archive size"), ({"file": "f"}, [], "no archive size"),
    ({"size": True}, [], "no archive size"), ({"size": 0}, [100], "0 bytes"),
    ({"size": 9}, [100, 120, 90], "under 10% of the recent median (100 bytes)"),
    ({"size": 10}, [100, 120, 90], ""), ({"size": 1}, [], ""),
])
def test_which_successes_are_suspect(result, recent, words):
    reason = sizes.suspect(result, recent, 10)
    assert (words in reason) if words else reason == ""


def test_a_suspect_latest_success_is_not_fresh():
    good = record("success", TODAY_3AM - timedelta(days=1))
    tiny = {**record("success", TODAY_3AM), "suspect": "the archive is 0 bytes"}
    item = freshness.assess(
        cluster(), first_seen={}, paused={}, now=NOW, grace=GRACE,
        latest={next(placements(cluster())).job["id"]: {"last": tiny, "success": tiny, "good": good}})[0]
    assert item.status == "suspect" and "0 bytes" in item.reason


def test_each_item_says_its_schedule_in_words_and_its_next_run():
    ok = record("success", TODAY_3AM)
    item = assess(last=ok, success=ok)
    assert item.schedule_words == "every day at 03:00 UTC"
    assert item.next_run == "2026-11-26T03:00:00Z"


def test_a_paused_or_invalid_item_has_no_next_run():
    ok = record("success", TODAY_3AM)
    assert assess(last=ok, success=ok, paused=True).next_run == ""
    broken = assess(c=cluster(schedule="0 3 * *"))
    assert broken.status == "invalid" and broken.next_run == ""
    assert broken.schedule_words.startswith("invalid: Expected 5 or 6 fields")


def test_the_nodes_problem_is_the_cause_of_its_items():
    """crond stopped on the node: the item names it as the cause, and no next run is promised."""
    from chalicelib.core.nodehealth import NodeProblem

    yesterday = record("success", TODAY_3AM - timedelta(days=1))
    stopped = NodeProblem(NODE, "crond_stopped", "2026-11-25T02:00:00Z", f"crond on {NODE} is stopped")
    c = cluster()
    job_id = next(placements(c)).job["id"]
    [item] = freshness.assess(c, first_seen={(NODE, job_id): "2026-10-01T00:00:00Z"}, paused={},
                              latest={job_id: {"last": yesterday, "success": yesterday}}, now=NOW,
                              grace=GRACE, node_problems={NODE: [stopped]})
    assert item.status == "late"
    assert item.reason.startswith(f"crond on {NODE} is stopped since 2026-11-25T02:00:00Z; start it: "
                                  f"PUT /api/v2/server/{NODE}/cron/actions/start: a run was due")
    assert item.next_run == "" and item.node_problems == (stopped.words(),)


def test_ok_says_what_it_rests_on():
    """A job pushed after its last due run, with an earlier success: ok, and why."""
    earlier = record("success", TODAY_3AM - timedelta(days=3))
    item = assess(last=earlier, success=earlier, first_seen=NOW - timedelta(hours=1))
    assert item.status == "ok"
    assert item.reason.startswith("succeeded at 2026-11-22T03:00:00")
    assert f"no run was due since the job reached {NODE}" in item.reason


# -- schedules as pushed: H resolved, the spread -----------------------------------------------------
# the item a.web.web /data instance 1: sha256("a/a.web.web//data/1") gives the spread's second 2
# and an H minute 24 (tests/unit/test_jobs.py works them out with hashlib alone)

def spread_cluster(schedule="0 3 * * *", on=True):
    item = {"procname": "a.web.web", "volume": "/data", "schedule": schedule, "expire": "7d",
            "mode": "full"}
    return Cluster.from_backupspec({"a.web.web": [{
        "Annotation": json.dumps({"backup": [item]}), "InstanceNo": 1,
        "Containers": [{"Id": "c1", "Ip": "x", "NodeIp": NODE, "NodeName": "n"}]}]},
        spread_seconds=on)


def test_an_item_shows_its_schedule_as_written_and_as_pushed():
    item = assess(spread_cluster())
    assert (item.schedule, item.schedule_pushed) == ("0 3 * * *", "2 0 3 * * *")
    assert item.schedule_words == "every day at 03:00:02 UTC"
    assert item.next_run == "2026-11-26T03:00:02Z"
    plain = assess()
    assert (plain.schedule, plain.schedule_pushed) == ("0 3 * * *", "0 3 * * *")
    hashed = assess(spread_cluster("H 3 * * *", on=False))
    assert (hashed.schedule, hashed.schedule_pushed) == ("H 3 * * *", "24 3 * * *")
    assert (hashed.schedule_words, hashed.next_run) == ("every day at 03:24 UTC",
                                                         "2026-11-26T03:24:00Z")


def test_due_times_come_from_the_schedule_as_pushed():
    """The daemon runs the pushed schedule: its run at 03:24:02 is on time, and a run is due at
    03:24:02 (not at 03:00, as the schedule without its H would say, nor at 03:24:00)."""
    c = spread_cluster("H 3 * * *")
    on_time = record("success", TODAY_3AM + timedelta(minutes=24, seconds=2))
    item = assess(c, last=on_time, success=on_time)
    assert (item.status, item.due) == ("ok", "2026-11-25T03:24:02Z")
    yesterday = record("success", TODAY_3AM - timedelta(days=1) + timedelta(minutes=24, seconds=2))
    assert assess(c, last=yesterday, success=yesterday,
                  now=TODAY_3AM + timedelta(minutes=24 + 9)).status == "ok"  # within the grace
    late = assess(c, last=yesterday, success=yesterday, now=TODAY_3AM + timedelta(minutes=24 + 11))
    assert (late.status, late.due) == ("late", "2026-11-25T03:24:02Z")
    assert late.reason.startswith("a run was due at 2026-11-25T03:24:02Z")


def test_an_h_that_cannot_be_resolved_is_invalid_with_its_reason_in_words():
    item = assess(spread_cluster("H(5-1) 3 * * *"))
    assert (item.status, item.schedule, item.schedule_pushed) == ("invalid", "H(5-1) 3 * * *", "")
    assert item.schedule_words == ("invalid: minute 'H(5-1)': Beginning of range (5) beyond end of "
                                   "range (1)")
    assert item.next_run == "" and "'H(5-1) 3 * * *' is invalid" in item.reason
