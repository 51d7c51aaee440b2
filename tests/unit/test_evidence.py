"""The evidence report's numbers on a fixture history with known gaps (pure: records, pauses and
operations in, the report out; the clock is a given ``now``)."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.core import cron, evidence
from chalicelib.core.evidence import AppInputs, Declared, PauseSeen, Targets
from chalicelib.core.formats import evidence as render
from chalicelib.core.operation import Operation, Phase, RestorePlan

NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
GIB, MIB = 1024**3, 1024**2
PROC, VOLUME = "hello.web.web", "/data"
JOB = "7f00000bb19d69edd273f3535f5cd42e6fcbd556"
ITEM = Declared("hello", PROC, 1, VOLUME, "full", "0 */6 * * *", "0 */6 * * *", ("127.0.0.11",),
                (JOB,))


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def record(when: datetime, state: str = "success", size: int = 100 * GIB, *, suspect: str = "",
           reason: str = "", instance: int = 1) -> dict:
    rec = {"id": JOB, "action": "backup", "rid": f"{int(when.timestamp())}{'a' * 32}",
           "args": {"app": "hello", "proc": PROC, "volume": VOLUME, "instanceNo": instance},
           "state": state, "start": stamp(when), "end": stamp(when + timedelta(minutes=3)),
           "result": {"file": "f.tar.gz", "size": size} if state == "success" else None,
           "reason": reason}
    if suspect:
        rec["suspect"] = suspect
    return rec


def history(skip: range = range(0), *, failed_at: int | None = None) -> list[dict]:
    """Every 6 hours for 30 days up to NOW (runs 0..119 from the window start, each 2 s after
    its due time), except ``skip``."""
    start = NOW - timedelta(days=30)
    out = []
    for k in range(121):
        when = start + timedelta(hours=6 * k, seconds=2)
        if when > NOW - timedelta(minutes=10):
            break
        if k == failed_at:
            out.append(record(when, "failed", reason="preRun failed: exit 1"))
        elif k not in skip:
            out.append(record(when))
    return out


def plan(kind: str, name: str = "hello-hello.web.web-1-data-x.tar.gz") -> RestorePlan:
    return RestorePlan(app="hello", proc=PROC, kind=kind, name=name, increment=False, files=[],
                       namespace="127.0.0.11", node="127.0.0.11", instance=1, volume=VOLUME,
                       dest_dir="", source_dir="/data/lain/volumes/hello/hello.web.web/1/data",
                       created="2026-11-30T00:00:00Z")


def op(op_id: str, kind: str, created: datetime, drill: dict | None = None,
       phase: Phase = Phase.COMPLETED) -> Operation:
    return Operation(id=op_id, app="hello", plan=plan(kind), phase=phase, created=stamp(created),
                     updated=stamp(created + timedelta(minutes=30)), since=stamp(created),
                     drill=drill)


def drill(when: datetime, outcome: str = "verified", size: int = 50 * MIB * 100,
          seconds: float = 100.0, fault: str = "") -> dict:
    return {"outcome": outcome, "fault": fault, "bytes": size, "seconds": seconds, "at": stamp(when)}


def inputs(records: list[dict], **kw) -> AppInputs:
    return AppInputs(**{"app": "hello", "items": [ITEM], "records": records, "latest_good": {},
                        **kw})


def build(app_inputs: AppInputs, days: int = 30) -> dict:
    body = evidence.report([evidence.app_report(app_inputs, now=NOW, days=days, grace=600)],
                           scope="hello", now=NOW, days=days, grace=600)
    return evidence.signed(body)


def only_item(answer: dict) -> dict:
    [app] = answer["report"]["apps"]
    [item] = app["items"]
    return item


# -- the numbers -----------------------------------------------------------------------------------

def test_a_30_hour_gap_is_an_achieved_rpo_of_30_hours():
    item = only_item(build(inputs(history(skip=range(40, 44)))))  # 4 runs of 6 h missing
    assert item["achieved_rpo"]["seconds"] == 30 * 3600
    assert item["achieved_rpo"]["hours"] == 30.0
    start = NOW - timedelta(days=30)
    assert item["achieved_rpo"]["from"] == f"{start + timedelta(hours=6 * 39, seconds=2):%Y-%m-%dT%H:%M:%SZ}"
    assert item["achieved_rpo"]["to"] == f"{start + timedelta(hours=6 * 44, seconds=2):%Y-%m-%dT%H:%M:%SZ}"
    assert item["target_rpo"] == {"seconds": 6 * 3600, "hours": 6.0}
    assert item["controls"]["rpo"]["status"] == "fail"  # 30 h over 6 h + the 10 min grace
    assert "30.0 h over the target 6.2 h" in item["controls"]["rpo"]["why"]


def test_without_gaps_the_rpo_is_met_and_every_due_run_succeeded():
    item = only_item(build(inputs(history())))
    assert item["achieved_rpo"]["seconds"] == 6 * 3600  # the window's start to the first run too
    assert item["since_last_good"]["seconds"] == 6 * 3600 - 2
    assert item["due_runs"] == {"due": 120, "succeeded": 120, "percent": 100.0}
    assert item["controls"]["rpo"]["status"] == item["controls"]["success_share"]["status"] == "pass"


def test_missed_and_failed_runs_lower_the_share_and_are_exceptions():
    item = only_item(build(inputs(history(skip=range(40, 44), failed_at=90))))
    assert item["due_runs"] == {"due": 120, "succeeded": 115, "percent": 95.83}
    [failed] = item["exceptions"]
    assert failed["kind"] == "failed_run" and failed["detail"] == "preRun failed: exit 1"
    strict = build(inputs(history(skip=range(40, 44), failed_at=90),
                          targets=Targets(success_percent=99)))
    assert only_item(strict)["controls"]["success_share"]["status"] == "fail"
    assert "115 of 120 due runs succeeded" in only_item(strict)["controls"]["success_share"]["why"]


def test_a_suspect_success_is_no_good_backup_and_is_an_exception():
    records = history()
    records[-1] = {**records[-1], "suspect": "the archive is 0 bytes"}
    item = only_item(build(inputs(records)))
    assert item["since_last_good"]["seconds"] == 12 * 3600 - 2
    assert [e["kind"] for e in item["exceptions"]] == ["suspect_run"]
    assert item["runs"] == {"good": 119, "failed": 0, "suspect": 1}


def test_the_newest_good_backup_as_the_store_keeps_it_counts():
    """The store keeps a job's newest good success as a few fields (no action, no args: the job
    says whose it is), possibly carried from the item's former job ID: it is the newest good
    backup, and the item existed before its job's recorded first push."""
    old = record(NOW - timedelta(days=3), size=GIB)
    kept = {k: old[k] for k in ("rid", "state", "start", "end", "result")}
    pushed = dataclasses.replace(ITEM, first_seen=stamp(NOW - timedelta(hours=1)))
    item = only_item(build(inputs([], items=[pushed], latest_good={JOB: kept}), days=1))
    assert item["last_good"]["bytes"] == GIB
    assert item["since_last_good"]["seconds"] == 3 * 86400
    assert item["counted_from"] == "2026-12-02T12:00:00Z"  # the window, not the push an hour ago
    assert item["achieved_rpo"]["seconds"] == 86400
    assert item["controls"]["rpo"]["status"] == "fail"


def test_the_newest_good_backup_may_be_older_than_the_window():
    old = record(NOW - timedelta(days=40), size=GIB)
    item = only_item(build(inputs([], latest_good={JOB: old})))
    assert item["since_last_good"]["seconds"] == 40 * 86400
    assert item["achieved_rpo"]["seconds"] == 30 * 86400  # none in the window: all of it
    assert item["last_good"]["bytes"] == GIB


def test_100_gib_at_50_mib_per_second_predicts_2048_seconds():
    """Binary units: 100 GiB / 50 MiB/s = 102,400 MiB / 50 MiB/s = 2,048 s, about 34 minutes."""
    ops = [op("op1", "drill", NOW - timedelta(days=2), drill(NOW - timedelta(days=2)))]
    item = only_item(build(inputs(history(), operations=ops)))
    assert item["throughput_mib_s"] == 50.0
    assert item["predicted_rto"] == {"seconds": 2048, "minutes": 34.1, "bytes": 100 * GIB}
    assert item["controls"]["rto"]["status"] == "pass"  # within the default 240 min
    tight = only_item(build(inputs(history(), operations=ops, targets=Targets(rto_minutes=30))))
    assert tight["controls"]["rto"] == {"status": "fail",
                                        "why": "predicted 34.1 min over the target 30 min"}
    assert item["controls"]["drill"]["status"] == "pass"
    assert item["last_verified_drill"]["operation"] == "op1"


def test_drills_old_failed_open_or_without_outcome_do_not_prove_anything():
    ops = [op("old", "drill", NOW - timedelta(days=20), drill(NOW - timedelta(days=20))),
           op("bad", "drill", NOW - timedelta(days=1),
              drill(NOW - timedelta(days=1), "verify_failed", fault="archive")),
           op("none", "drill", NOW - timedelta(hours=3), None, phase=Phase.FAILED),
           op("open", "drill", NOW - timedelta(hours=1), None, phase=Phase.RESTORING)]
    item = only_item(build(inputs(history(), operations=ops)))
    assert item["last_drill"]["operation"] == "open" and item["last_drill"]["outcome"] == "open"
    assert item["last_verified_drill"]["operation"] == "old"
    assert item["controls"]["drill"]["status"] == "fail"
    assert "over the 7-day cycle" in item["controls"]["drill"]["why"]
    kinds = {(e["kind"], e.get("operation"), e["detail"]) for e in item["exceptions"]}
    assert ("drill_not_verified", "bad", "verify_failed (archive fault)") in kinds
    assert ("drill_not_verified", "none", "no outcome") in kinds
    never = only_item(build(inputs(history())))
    assert never["controls"]["drill"] == {"status": "fail", "why": "never verified by a drill"}
    assert never["controls"]["rto"]["status"] == "unknown"


def test_pauses_and_restores_are_exceptions_with_who():
    pauses = [PauseSeen(JOB, stamp(NOW - timedelta(days=3)), stamp(NOW - timedelta(days=2)),
                        "disk migration", "token:1a2b3c4d from 10.0.0.5"),
              PauseSeen(JOB, stamp(NOW - timedelta(days=45)), stamp(NOW - timedelta(days=44)),
                        "before the window"),
              PauseSeen("ffffffff" + "0" * 32, stamp(NOW - timedelta(days=1)),
                        stamp(NOW + timedelta(days=1)), "", "")]
    ops = [op("r1", "recover", NOW - timedelta(days=5)),
           op("r0", "migrate", NOW - timedelta(days=50))]
    answer = build(inputs(history(), pauses=pauses, operations=ops, callers={"r1": "token:9f"},
                          unreadable=[("r9", "written by a newer controller")]))
    item = only_item(answer)
    [pause, restore] = sorted(item["exceptions"], key=lambda e: e["kind"])
    assert pause["detail"] == "disk migration" and pause["by"] == "token:1a2b3c4d from 10.0.0.5"
    assert restore["operation"] == "r1" and restore["by"] == "token:9f"
    assert restore["detail"].startswith("recover of hello-hello.web.web-1-data-x.tar.gz: Completed")
    loose = answer["report"]["apps"][0]["exceptions"]
    assert {e["kind"] for e in loose} == {"pause", "operation_unreadable"}
    assert [e["by"] for e in loose if e["kind"] == "pause"] == ["unknown"]


def test_a_job_pushed_inside_the_window_is_counted_from_then():
    first = NOW - timedelta(days=2, hours=1)
    item = dataclasses.replace(ITEM, first_seen=stamp(first))
    records = [r for r in history() if r["start"] > stamp(first)]
    got = only_item(build(dataclasses.replace(inputs(records), items=[item])))
    assert got["due_runs"]["due"] == 8 and got["due_runs"]["succeeded"] == 8
    assert got["achieved_rpo"]["seconds"] <= 6 * 3600


def test_app_result_and_counts():
    ops = [op("d", "drill", NOW - timedelta(days=1), drill(NOW - timedelta(days=1)))]
    ok = build(inputs(history(), operations=ops))["report"]["apps"][0]
    assert ok["result"] == "pass"
    assert ok["controls"]["rpo"] == {"pass": 1, "fail": 0, "unknown": 0}
    bad = build(inputs(history(skip=range(40, 44)), operations=ops))["report"]["apps"][0]
    assert bad["result"] == "fail"


# -- schedules -------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, seconds", [
    ("0 */6 * * *", 6 * 3600),
    ("*/30 * * * *", 1800),
    ("0 2 * * 1-5", 3 * 86400),  # Friday 02:00 to Monday 02:00
    ("0 0 1 * *", 31 * 86400),
    ("0 0 29 2 *", 1461 * 86400),  # leap days only
    ("@every 90m", 5400),
    ("30 0 3,7 * * *", 20 * 3600),  # 03:00:30 and 07:00:30 daily: 07:00:30 to 03:00:30
    ("TZ=Europe/Berlin 0 3 * * *", 25 * 3600),  # the autumn night is an hour longer
])
def test_the_target_rpo_a_schedule_implies(spec, seconds):
    assert evidence.target_rpo(cron.parse(spec), NOW) == seconds


def test_due_runs_of_a_utc_schedule_match_croniter():
    schedule = cron.parse("17 */5 * * 1-5")
    start, end = int((NOW - timedelta(days=10)).timestamp()), int(NOW.timestamp())
    walked, when = [], datetime.fromtimestamp(start - 1, UTC)
    while (when := schedule.next_after(when)) and when.timestamp() <= end:
        walked.append(int(when.timestamp()))
    assert evidence.due_times(schedule, start, end) == walked and walked


# -- determinism -----------------------------------------------------------------------------------

def test_the_same_records_give_the_same_bytes_and_a_changed_record_another_hash():
    ops = [op("d", "drill", NOW - timedelta(days=1), drill(NOW - timedelta(days=1)))]
    records = history(skip=range(40, 44), failed_at=90)
    first = build(inputs(records, operations=ops))
    again = build(inputs(list(reversed(records)), operations=list(reversed(ops))))
    assert evidence.canonical(first) == evidence.canonical(again)
    assert first["sha256"] == hashlib.sha256(evidence.canonical(first["report"]).encode()).hexdigest()
    changed = [{**r, "reason": "preRun failed: exit 2"} if r["state"] == "failed" else r
               for r in records]
    assert build(inputs(changed, operations=ops))["sha256"] != first["sha256"]
    assert render.to_csv(first["report"]) == render.to_csv(again["report"])


def test_the_csv_ends_with_the_sha256_of_what_precedes_it():
    answer = build(inputs(history(skip=range(40, 44))))
    text = render.to_csv(answer["report"])
    body, _, last = text.rstrip("\n").rpartition("\n")
    assert last == "sha256," + hashlib.sha256((body + "\n").encode()).hexdigest()
    [row] = list(csv.DictReader(io.StringIO(body)))
    assert row["achieved_rpo_hours"] == "30.0" and row["target_rpo_hours"] == "6.0"
    assert row["rpo"] == "fail" and row["app_result"] == "fail"


def test_the_page_escapes_what_users_wrote():
    pauses = [PauseSeen(JOB, stamp(NOW - timedelta(days=1)), stamp(NOW + timedelta(days=1)),
                        "<script>alert(1)</script>", "me")]
    answer = build(inputs(history(), pauses=pauses))
    page = render.to_html(answer, {"JSON": "?format=json"})
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert answer["sha256"] in page


# -- targets ---------------------------------------------------------------------------------------

def test_per_app_targets_parse_and_a_typo_is_named():
    got = evidence.parse_targets("mysql:rpo_hours=4,rto_minutes=30; hello:drill_days=14")
    assert got == {"mysql": {"rpo_hours": 4.0, "rto_minutes": 30.0}, "hello": {"drill_days": 14.0}}
    assert evidence.targets_for("mysql", Targets(), got).rto_minutes == 30
    assert evidence.targets_for("other", Targets(), got) == Targets()
    for bad, words in [("mysql:rpo=4", "the key is one of"), ("mysql:rpo_hours=x", "not a number"),
                       ("rpo_hours=4", "is not <app>"), ("a:rpo_hours=-1", "at least 0")]:
        with pytest.raises(ValueError, match=words):
            evidence.parse_targets(bad)


def test_a_fixed_rpo_target_replaces_the_schedule_one():
    item = only_item(build(inputs(history(skip=range(40, 44)), targets=Targets(rpo_hours=36))))
    assert item["controls"]["rpo"]["status"] == "pass"
    assert json.loads(evidence.canonical(item))["target_rpo"]["hours"] == 6.0


def test_a_malformed_per_app_target_setting_fails_naming_the_variable():
    from chalicelib.settings import Settings, SettingsError

    assert Settings.from_env({"EVIDENCE_APP_TARGETS": "mysql:rto_minutes=30"}).evidence_app_targets
    with pytest.raises(SettingsError, match="EVIDENCE_APP_TARGETS: 'rto=30': the key is one of"):
        Settings.from_env({"EVIDENCE_APP_TARGETS": "mysql:rto=30"})


def test_a_streak_of_failures_is_one_entry_and_the_list_is_bounded():
    start = NOW - timedelta(days=30)
    records = [record(start + timedelta(minutes=30 * k), "failed", reason="disk full")
               for k in range(1, 1400)]
    records[700] = record(start + timedelta(minutes=30 * 701), "failed", reason="other")
    item = only_item(build(inputs(records)))
    assert [(e["detail"], e.get("count")) for e in item["exceptions"]] == [
        ("disk full", 700), ("other", None), ("disk full", 698)]
    assert item["exception_counts"] == {"failed_run": 1399} and item["exceptions_omitted"] == 0
    alternating = [record(start + timedelta(minutes=30 * k), "failed", reason=f"r{k % 2}")
                   for k in range(1, 1000)]
    item = only_item(build(inputs(alternating)))
    assert len(item["exceptions"]) == evidence.MAX_EXCEPTIONS
    assert item["exceptions_omitted"] == 999 - evidence.MAX_EXCEPTIONS
    assert item["exceptions"][-1]["at"] == f"{start + timedelta(minutes=30 * 999):%Y-%m-%dT%H:%M:%SZ}"


def test_an_invalid_schedule_has_no_target_and_no_due_runs_but_its_backups_still_count():
    broken = dataclasses.replace(ITEM, schedule="0 0 5 0 0", pushed="")
    app = build(dataclasses.replace(inputs(history()), items=[broken]))["report"]["apps"][0]
    [item] = app["items"]
    assert item["target_rpo"] is None and item["achieved_rpo"]["hours"] == 6.0
    assert item["due_runs"]["why"] == "the schedule '0 0 5 0 0' is invalid or never fires: no run is due"
    assert item["controls"]["rpo"]["status"] == item["controls"]["success_share"]["status"] == "unknown"
    assert app["result"] == "fail"  # never drilled
    fixed = build(dataclasses.replace(inputs(history()), items=[broken],
                                      targets=Targets(rpo_hours=24)))
    assert only_item(fixed)["controls"]["rpo"]["status"] == "pass"


def test_an_app_that_declares_nothing_says_so():
    empty = build(dataclasses.replace(inputs([]), items=[]))["report"]["apps"][0]
    assert empty["result"] == "nothing_declared" and empty["items"] == []


def test_a_good_backup_deleted_outside_the_controller_is_not_the_newest_one():
    records = history()
    newest = {**records[-1], "gone": "its archive is no longer on 127.0.0.11"}
    item = only_item(build(inputs(records, latest_good={JOB: newest})))
    assert item["since_last_good"]["seconds"] == 12 * 3600 - 2  # the one before it
    [gone] = item["exceptions"]
    assert gone["kind"] == "backup_gone" and gone["rid"] == records[-1]["rid"]
    assert gone["detail"] == "its archive is no longer on 127.0.0.11"
