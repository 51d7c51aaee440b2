"""Schedules as pushed: ``H`` resolved per item, the spread's stable second, and what they change."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core import cron, spread
from chalicelib.core.backupspec import parse_annotation
from chalicelib.core.idlewindow import Load, matters
from tests.reference import ROOT

FAST = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
HELLO = spread.item_hash("hello", "hello.web.web", "/data", 1)  # sha256 b"hello/hello.web.web//data/1"
digests = st.binary(min_size=32, max_size=32)
NAMES = ("second", "minute", "hour", "day of month", "month", "day of week")


def values(spec: str, field: str) -> tuple[int, ...]:
    return cron.parse(spec).values[NAMES.index(field)]


# -- the hash --------------------------------------------------------------------------------------

def test_the_item_hash_is_sha256_of_app_proc_volume_instance():
    assert spread.item_hash("hello", "hello.web.web", "/data", 1) == hashlib.sha256(
        b"hello/hello.web.web//data/1").digest()
    assert spread.field_number(HELLO, 1) == int.from_bytes(HELLO[4:8], "big")
    assert spread.spread_second(HELLO) == int.from_bytes(HELLO[0:4], "big") % 60


def test_resolutions_are_pinned():
    """The values an item gets must never move: they are part of its jobs' ids."""
    assert spread.resolve("H 3 * * *", HELLO) == "41 3 * * *"
    assert spread.resolve("H H(1-5) * * *", HELLO) == "41 3 * * *"
    assert spread.resolve("H/15 * * * *", HELLO) == "11-59/15 * * * *"
    assert spread.resolve("0 0 * * *", HELLO, spread=True) == "57 0 0 * * *"
    assert spread.resolve("H H H H H H", HELLO) == "57 41 8 26 3 1"


def test_the_hash_is_the_same_in_another_process():
    """Not Python's hash(): another interpreter, with another hash seed, resolves the same."""
    code = ("from chalicelib.core import spread; d = spread.item_hash('hello', 'hello.web.web', "
            "'/data', 1); print(spread.resolve('H H * * *', d, spread=True))")
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": seed})
        assert out.stdout.strip() == spread.resolve("H H * * *", HELLO, spread=True)


def test_every_part_of_the_item_moves_its_values():
    keys = [("hello", "hello.web.web", "/data", 1), ("hello2", "hello.web.web", "/data", 1),
            ("hello", "hello.web.other", "/data", 1), ("hello", "hello.web.web", "/log", 1),
            ("hello", "hello.web.web", "/data", 2)]
    resolved = {spread.resolve("H H H * * *", spread.item_hash(*k)) for k in keys}
    assert len(resolved) == len(keys)


# -- H ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, field, allowed", [
    ("H * * * *", "minute", range(0, 60)),
    ("0 H * * *", "hour", range(0, 24)),
    ("0 0 H * *", "day of month", range(1, 29)),
    ("0 0 1 H *", "month", range(1, 13)),
    ("0 0 * * H", "day of week", range(0, 7)),
    ("H 0 0 * * *", "second", range(0, 60)),
    ("H(10-20) * * * *", "minute", range(10, 21)),
    ("0 H(1-5) * * *", "hour", range(1, 6)),
    ("0 0 * * H(MON-FRI)", "day of week", range(1, 6)),
    ("0 0 1 H(jun-aug) *", "month", range(6, 9)),
    ("0 0 H(1-31) * *", "day of month", range(1, 32)),
])
@FAST
@given(digest=digests)
def test_h_is_one_value_within_its_range(spec, field, allowed, digest):
    resolved = spread.resolve(spec, digest)
    assert "H" not in resolved and cron.validate(resolved) is None
    found = values(resolved, field)
    assert len(found) == 1 and found[0] in allowed
    assert spread.resolve(spec, digest) == resolved  # stable across calls


@pytest.mark.parametrize("spec, field, first, last, step", [
    ("H/15 * * * *", "minute", 0, 59, 15),
    ("H/7 * * * *", "minute", 0, 59, 7),
    ("0 H/6 * * *", "hour", 0, 23, 6),
    ("0 0 H/7 * *", "day of month", 1, 28, 7),
    ("H/20 * * * * *", "second", 0, 59, 20),
    ("H(0-29)/10 * * * *", "minute", 0, 29, 10),
    ("H(0-3)/10 * * * *", "minute", 0, 3, 10),
    ("0 H(8-18)/2 * * *", "hour", 8, 18, 2),
    ("H/1 3 * * *", "minute", 0, 59, 1),
    ("H/90 3 * * *", "minute", 0, 59, 90),
])
@FAST
@given(digest=digests)
def test_h_step_is_a_hashed_start_then_every_nth_value(spec, field, first, last, step, digest):
    found = values(spread.resolve(spec, digest), field)
    assert first <= found[0] < first + step and found[-1] <= last
    assert found == tuple(range(found[0], last + 1, step))


def test_h_terms_mix_with_robfig_terms_and_names():
    assert spread.resolve("H(0-29),H(30-59) * * * *", HELLO) == "11,41 * * * *"
    assert spread.resolve("H 3 * * MON-THU", HELLO) == "41 3 * * MON-THU"  # THU is no H
    assert spread.resolve("H,30 */2 * * *", HELLO) == "41,30 */2 * * *"
    assert spread.resolve("TZ=Asia/Hong_Kong H 3 * * *", HELLO) == "TZ=Asia/Hong_Kong 41 3 * * *"


@pytest.mark.parametrize("spec", ["0 3 * * *", "  0   3 * *  *  ", "@daily", "@every 1h",
                                  "TZ=Asia/Hong_Kong 0 3 * * THU", "0 0 1 * * *", "bad", ""])
def test_a_spec_without_h_is_left_as_written(spec):
    assert spread.resolve(spec, HELLO) is spec
    assert not spread.has_h(spec)


@pytest.mark.parametrize("spec, why", [
    ("H(5-1) * * * *", "Beginning of range (5) beyond end of range (1)"),
    ("H(0-99) * * * *", "End of range (99) above maximum (59)"),
    ("0 0 H(0-5) * *", "Beginning of range (0) below minimum (1)"),
    ("H/0 * * * *", "Step of range (0) must be positive"),
    ("H/x * * * *", "Failed to parse int from 'x'"),
    ("H(a-b) * * * *", "Failed to parse int from 'a'"),
    ("HH * * * *", "is not H, H(a-b), H/n or H(a-b)/n"),
    ("H-5 * * * *", "is not H, H(a-b), H/n or H(a-b)/n"),
    ("H(1-5 * * * *", "is not H, H(a-b), H/n or H(a-b)/n"),
    ("H() * * * *", "is not H, H(a-b), H/n or H(a-b)/n"),
    ("H(1-5)/3/2 * * * *", "is not H, H(a-b), H/n or H(a-b)/n"),
    ("H(1-2)(3-4) * * * *", "is not H, H(a-b), H/n or H(a-b)/n"),
])
def test_an_h_the_rules_cannot_resolve_is_refused(spec, why):
    with pytest.raises(cron.ScheduleError, match=r"^minute|^day of month"):
        spread.check(spec)
    with pytest.raises(cron.ScheduleError) as refused:
        spread.resolve(spec, HELLO)
    assert why in str(refused.value)


@pytest.mark.parametrize("spec, kind, why", [
    ("H(5-1) * * * *", "bad_schedule", "beyond end of range"),
    ("H 24 * * *", "bad_schedule", "End of range (24) above maximum (23)"),
    ("H 3 * *", "bad_schedule", "Expected 5 or 6 fields"),
    ("1-H * * * *", "bad_schedule", "Failed to parse int from 'H'"),
    ("H/2 * * * * *", "busy_schedule", "fires every 5 s or more often"),
])
def test_an_item_whose_h_cannot_be_pushed_is_a_problem_of_that_item(spec, kind, why):
    annotation = json.dumps({"backup": [
        {"procname": "a.web.web", "volume": "/data", "schedule": spec, "expire": "7d"},
        {"procname": "a.web.web", "volume": "/logs", "schedule": "H 3 * * *", "expire": "7d"}]})
    items, problems = parse_annotation(annotation, app="a", proc="a.web.web", instance=1)
    assert [(i.volume, i.schedule_ok) for i in items] == [("/data", False), ("/logs", True)]
    assert [(p.kind, p.volume) for p in problems] == [(kind, "/data")]
    assert why in problems[0].reason
    if kind == "bad_schedule" and spread.has_h(spec):
        assert "the controller cannot push it" in problems[0].reason


# hypothesis: H written anywhere, any way the rules allow
def _h_term(index: int) -> st.SearchStrategy[str]:
    lo, hi = cron.FIELDS[index][1:3]
    ranged = st.tuples(st.integers(lo, hi), st.integers(lo, hi)).map(sorted).map(
        lambda ab: f"({ab[0]}-{ab[1]})")
    step = st.integers(1, 70).map(lambda n: f"/{n}")
    return st.tuples(st.just("H"), st.just("") | ranged, st.just("") | step).map("".join)


def _field(index: int) -> st.SearchStrategy[str]:
    lo, hi = cron.FIELDS[index][1:3]
    plain = st.sampled_from(["*", str(lo), f"{lo}-{hi}", f"*/{max(1, (hi - lo) // 3)}"])
    return st.lists(_h_term(index) | plain, min_size=1, max_size=3).map(",".join)


hashed_specs = st.one_of(
    st.tuples(*[_field(i) for i in range(1, 6)]).map(" ".join),
    st.tuples(*[_field(i) for i in range(6)]).map(" ".join),
).filter(spread.has_h)


@FAST
@given(spec=hashed_specs, digest=digests)
def test_any_h_the_rules_allow_resolves_for_every_item_into_a_schedule_robfig_reads(spec, digest):
    """Whether an H resolves never depends on the item: checked once per annotation, it resolves
    for every instance, within the field's range, the same every time."""
    spread.check(spec)
    resolved = spread.resolve(spec, digest)
    assert not spread.has_h(resolved) and cron.validate(resolved) is None
    assert resolved == spread.resolve(spec, bytes(digest))
    assert len(resolved.split()) == len(spec.split())


# -- the spread ------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, pushed", [
    ("0 0 * * *", "57 0 0 * * *"),
    ("0 3 * * *", "57 0 3 * * *"),
    ("  0   3 * *  *  ", "57 0 3 * * *"),
    ("*/30 * * * *", "57 */30 * * * *"),
    ("@hourly", "57 0 * * * *"),
    ("@daily", "57 0 0 * * *"),
    ("@midnight", "57 0 0 * * *"),
    ("@weekly", "57 0 0 * * 0"),
    ("@monthly", "57 0 0 1 * *"),
    ("@yearly", "57 0 0 1 1 *"),
    ("@annually", "57 0 0 1 1 *"),
    ("TZ=Asia/Shanghai 0 3 * * *", "TZ=Asia/Shanghai 57 0 3 * * *"),
    ("TZ=Europe/Berlin @daily", "TZ=Europe/Berlin 57 0 0 * * *"),
    ("H 3 * * *", "57 41 3 * * *"),
    # left as written: seconds already chosen, @every, every minute, minutes in a row
    ("0 0 1 * * *", "0 0 1 * * *"),
    ("30 * * * * *", "30 * * * * *"),
    ("@every 1h", "@every 1h"),
    ("* * * * *", "* * * * *"),
    ("* 3 * * *", "* 3 * * *"),
    ("0-5 3 * * *", "0-5 3 * * *"),
    ("0,59 * * * *", "0,59 * * * *"),
    ("bad", "bad"),
])
def test_the_spread_gives_a_five_field_schedule_its_stable_second(spec, pushed):
    assert spread.resolve(spec, HELLO, spread=True) == pushed


def test_a_schedule_robfig_refuses_stays_refused_when_spread():
    assert cron.validate(spread.resolve("0 0 5 0 0", HELLO, spread=True)) is not None


five_field = st.tuples(
    st.sampled_from(["0", "30", "*/15", "*/2", "5,35", "*", "0-5", "59", "H", "H/20"]),
    st.sampled_from(["0", "3", "*", "*/6", "9-17", "H(1-5)"]),
    st.sampled_from(["*", "1", "1,15", "?", "29"]),
    st.sampled_from(["*", "2", "JAN,JUL"]),
    st.sampled_from(["*", "?", "1-5", "SUN"]),
).map(" ".join) | st.sampled_from(sorted(spread.SPREAD_DESCRIPTORS))


@FAST
@given(spec=five_field, digest=digests)
def test_a_spread_schedule_fires_as_often_in_the_same_minutes(spec, digest):
    """The spread moves a schedule within its minutes: robfig reads the 6 fields seconds first,
    every other field's values are those of the schedule unspread (so it fires as often), and a
    schedule the idle-window rule looks at is never spread."""
    plain = cron.parse(spread.resolve(spec, digest))
    pushed = spread.resolve(spec, digest, spread=True)
    spread_ = cron.parse(pushed)
    assert spread_.values[1:] == plain.values[1:] and spread_.day_or == plain.day_or
    assert len(spread_.seconds) == 1
    if spread_.seconds != {0}:
        assert len(pushed.split()) == 6 and int(pushed.split()[0]) == spread.spread_second(digest)
        assert not matters(plain) and not matters(spread_)
    assert matters(spread_) == matters(plain)


@FAST
@given(specs=st.lists(five_field | st.sampled_from(["*/5 * * * * *", "@every 20s", "10 * * * * *"]),
                      min_size=1, max_size=15),
       hashes=st.lists(digests, min_size=15, max_size=15))
def test_the_spread_never_changes_whether_a_node_can_accept_a_list(specs, hashes):
    """The daemon's idle-window rule (core/idlewindow.py): a node's schedules spread leave it
    exactly the idle moments they left it unspread."""
    def load(on: bool) -> Load:
        found = Load()
        for spec, digest in zip(specs, hashes, strict=False):
            found = found.add(cron.parse(spread.resolve(spec, digest, spread=on)))
        return found

    assert load(True) == load(False)
    assert load(True).blocked == load(False).blocked


# -- the herd, modelled ----------------------------------------------------------------------------

DAY = date(2026, 11, 25)  # a Wednesday
# 2,000 nodes x 80 jobs: 400 apps of 5 instances (one a node) with 80 volumes each
ITEMS = [spread.item_hash(f"app{a}", f"app{a}.web.web", f"/data{v}", i)
         for a in range(400) for i in range(1, 6) for v in range(80)]


def pushed(written, *, on: bool) -> dict[str, int]:
    """{schedule as pushed: jobs} for the 160,000 items, the n-th item's schedule written(n)."""
    found: dict[str, int] = {}
    for n, digest in enumerate(ITEMS):
        spec = spread.resolve(written(n), digest, spread=on)
        found[spec] = found.get(spec, 0) + 1
    return found


def test_the_herd_all_at_midnight():
    """160,000 jobs at 0 0 * * *: all in one second, or about 1/60th of them in each."""
    assert len(ITEMS) == 160_000
    assert spread.peak(pushed(lambda n: "0 0 * * *", on=False), DAY) == (160_000, 1)
    most, seconds = spread.peak(pushed(lambda n: "0 0 * * *", on=True), DAY)
    assert seconds == 60 and 160_000 // 60 <= most <= 2_900  # measured: 2,774
    assert spread.peak(pushed(lambda n: "@daily", on=True), DAY) == (most, 60)


def test_the_herd_of_a_mixed_cluster():
    """Half at midnight, a quarter at 03:00, a quarter every 30 minutes."""
    mix = ("0 0 * * *", "0 0 * * *", "0 3 * * *", "*/30 * * * *")
    assert spread.peak(pushed(lambda n: mix[n % 4], on=False), DAY) == (120_000, 48)
    most, seconds = spread.peak(pushed(lambda n: mix[n % 4], on=True), DAY)
    assert seconds == 48 * 60 and most <= 2_200  # measured: 2,089 (at 00:00)


def test_the_herd_with_h():
    """H minutes and hours spread the herd over the day, the seconds over each minute."""
    assert spread.peak(pushed(lambda n: "H 0 * * *", on=False), DAY) == (2_757, 60)
    assert spread.peak(pushed(lambda n: "H 0 * * *", on=True), DAY) == (83, 3_600)
    assert spread.peak(pushed(lambda n: "H H(1-5) * * *", on=False), DAY) == (604, 300)
    assert spread.peak(pushed(lambda n: "H H * * *", on=False), DAY) == (151, 1_440)
    most, seconds = spread.peak(pushed(lambda n: "H H * * *", on=True), DAY)
    assert most <= 15 and seconds > 70_000  # measured: 12 over 72,779 seconds


def test_the_model_counts_days_and_leaves_out_what_has_no_second():
    assert spread.crowd({"0 0 1 * *": 5}, DAY) == {}  # not the 1st
    assert spread.crowd({"0 0 * * 3": 5}, DAY) == {0: 5}  # a Wednesday
    assert spread.crowd({"0 0 1 * 3": 5}, DAY) == {0: 5}  # robfig ORs the days
    assert spread.crowd({"0 0 1 12 *": 5}, DAY) == {}
    assert spread.crowd([("@every 1h", 5), ("bad", 1)], DAY) == {}
    assert spread.crowd({"5 */30 1 * * *": 2}, DAY) == {3605: 2, 5405: 2}
