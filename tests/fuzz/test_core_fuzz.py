"""Property tests of the pure core: whatever lainlet, an annotation or a daemon sends, parsing ends
in a value or a *named* refusal (a problem, a ScheduleError, a 4xx error), never another exception."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core import cron, spread
from chalicelib.core.backupspec import parse_annotation
from chalicelib.core.cluster import Cluster
from chalicelib.core.formats.recordschema import parse_record
from chalicelib.core.freshness import assess
from chalicelib.core.idlewindow import Load
from chalicelib.core.jobs import generate
from chalicelib.errors import BadRequest, LainletError, PayloadTooLarge

FAST = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

# JSON values a hostile or broken peer can send: odd strings, huge numbers, nesting, nulls
scalars = (st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
           | st.floats(allow_nan=False) | st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)
field_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["0 3 * * *", "*/2 * * * * *", "@every 2s", "@every 99999999999999999999h",
                     "² * * * *", "TZ=Asia/Shanghai 0 3 * * *", "0 0 5 0 0", "1000000000d", "7d",
                     "0d", "-1d", "/data", "/../etc", "full", "increment", "", "@daily",
                     "H 3 * * *", "H H(1-5) * * *", "H/15 * * * *", "H(5-1) * * * *", "H/0 * * * *",
                     "HH * * * *", "H/2 * * * * *", "H * * * * *", "0 0 H * THU", "TZ=Asia/Hong_Kong H"]),
)
items = st.fixed_dictionaries({}, optional={
    name: st.one_of(field_text, json_values)
    for name in ("procname", "volume", "schedule", "expire", "mode", "preRun", "postRun")})


@FAST
@given(st.text(max_size=200))
def test_any_schedule_text_is_valid_or_a_reason(spec):
    reason = cron.validate(spec)
    if reason is None:
        schedule = cron.parse(spec)
        schedule.next_after(datetime(2026, 11, 25, tzinfo=UTC))
        Load().add(schedule).blocked  # noqa: B018 - evaluated for its exceptions
    else:
        assert isinstance(reason, str) and len(reason) < 300


@FAST
@given(st.text(max_size=60))
def test_any_expire_is_a_duration_or_a_schedule_error(expire):
    with contextlib.suppress(cron.ScheduleError):
        assert cron.parse_expire(expire) > timedelta(0)


@FAST
@given(st.one_of(st.text(max_size=300), json_values.map(json.dumps),
                 st.lists(items, max_size=5).map(lambda backup: json.dumps({"backup": backup}))))
def test_any_annotation_gives_items_and_problems(annotation):
    found, problems = parse_annotation(annotation, app="a", proc="a.web.web", instance=1)
    assert all(p.app == "a" and p.proc == "a.web.web" for p in problems)
    assert all(i.volume for i in found)


pods = st.fixed_dictionaries({
    "Annotation": st.one_of(st.lists(items, max_size=3).map(lambda b: json.dumps({"backup": b})),
                            json_values),
    "InstanceNo": st.one_of(st.integers(-5, 5), json_values),
    "Containers": st.one_of(st.lists(st.fixed_dictionaries({
        "Id": st.text(max_size=8), "NodeIp": st.sampled_from(["10.0.0.1", "10.0.0.2", "x", ""]),
    }), max_size=2), json_values),
})


@FAST
@given(st.one_of(json_values, st.dictionaries(
    st.sampled_from(["a.web.web", "b.web.web", "c.worker.w", "bad", "x/y.web.web"]),
    st.one_of(st.lists(pods, max_size=3), json_values), max_size=4)))
def test_any_backupspec_builds_a_cluster_or_is_refused_whole(data):
    for spread_seconds in (False, True):
        try:
            cluster = Cluster.from_backupspec(data, spread_seconds=spread_seconds)
        except LainletError:
            assert not isinstance(data, dict)
            return
        lists = generate(cluster)
        assert all(j["id"] == "" or j["id"][:8] in ("0a000001", "0a000002")
                   for node_jobs in lists.values() for j in node_jobs)
        assert all(cron.validate(j["spec"]) is None and not spread.has_h(j["spec"])
                   for node_jobs in lists.values() for j in node_jobs if j["id"])
        assess(cluster, first_seen={}, paused={}, latest={},
               now=datetime(2026, 11, 25, tzinfo=UTC), grace=timedelta(minutes=10))


records = st.fixed_dictionaries({}, optional={
    k: json_values for k in ("id", "spec", "action", "args", "type", "sleep", "rid", "result",
                             "state", "start", "end", "reason", "extra")})


@FAST
@given(st.one_of(st.binary(max_size=200), records.map(json.dumps), json_values.map(json.dumps)))
def test_any_notify_body_is_a_record_or_a_4xx(body):
    try:
        parse_record(body, now=datetime(2026, 11, 25, tzinfo=UTC), skew=timedelta(minutes=10))
    except (BadRequest, PayloadTooLarge) as e:
        assert e.status in (400, 413) and e.code in ("bad_record", "too_large")


# -- the generation fast paths agree with the generic forms they stand in for ----------------------
segments = st.one_of(st.sampled_from(["a", "a.web.web", ".", "..", "", "x/y", "-"]),
                     st.text(min_size=0, max_size=12))
volumes = st.one_of(st.sampled_from(["/data", "data/", "//x//y", "/a/./b", "/a/../b", ".", "/",
                                     "/../etc", "a b/c"]), st.text(max_size=20))


@FAST
@given(app=segments, proc=segments, instance=st.integers(0, 100_000), volume=volumes)
def test_dir_and_archive_are_go_path_join(app, proc, instance, volume):
    from chalicelib.core.paths import dir_and_archive, go_path_join

    assert dir_and_archive(app, proc, instance, volume) == (
        go_path_join("/data/lain/volumes", app, proc, str(instance), volume),
        go_path_join(app, proc, str(instance), volume).replace("/", "-"))


@FAST
@given(spec=st.text(max_size=20), args=st.fixed_dictionaries({
    "app": st.text(max_size=10), "archive": st.text(max_size=10),
    "containers": st.lists(st.text(max_size=8), max_size=3), "instanceNo": st.integers(0, 10**5),
    "mode": st.text(max_size=10), "path": st.text(max_size=10), "postRun": st.text(max_size=10),
    "preRun": st.text(max_size=10), "proc": st.text(max_size=10), "volume": st.text(max_size=10)}))
def test_the_backup_digest_is_the_generic_job_id(spec, args):
    from chalicelib.core.jobs import _backup_digest, job_id

    assert "7f00000b" + _backup_digest(spec, args, " ".join(args["containers"])) == job_id(
        "127.0.0.11", spec, "backup", args)


def _croniter_run(schedule, when, *, forward):
    """What croniter answers for ``schedule`` itself: no shifted twin, no memory, a new iterator."""
    from croniter import croniter
    from croniter.croniter import CroniterBadDateError

    walker = croniter(schedule.expression, when.astimezone(schedule.tz), day_or=schedule.day_or)
    try:
        found = walker.get_next(datetime) if forward else walker.get_prev(datetime)
    except CroniterBadDateError:
        return None
    return found.astimezone(UTC)


@FAST
@given(spec=st.sampled_from(["0 3 * * *", "*/7 * * * *", "0 0 1 * * 1", "30 2 29 2 *",
                             "TZ=Asia/Shanghai 0 0 3 * * *", "0 0 0 30 2 *", "5 4 * * SUN",
                             # spread and hashed shapes: one second, one time of day, or neither
                             "57 0 3 * * *", "13 41 17 * * *", "59 59 23 31 12 *", "7 */30 * * * *",
                             "42 11-59/15 * * * *", "3 41 3 * * 4", "9 0 0 29 2 *",
                             "TZ=Europe/Berlin 30 30 2 * * *", "TZ=America/New_York 45 0 1 * * 0"]),
       offsets=st.lists(st.integers(-10**7, 10**7), min_size=1, max_size=25))
def test_remembered_runs_are_the_runs_croniter_finds(spec, offsets):
    """Schedules share one croniter per walked expression (one second, or one time of day, moved
    away: a spread or hashed cluster's schedules share a few) and remember recent answers; any
    sequence of questions gets what croniter answers for the schedule itself."""
    shared = cron.parse(spec)
    for offset in offsets:
        when = datetime(2026, 11, 25, 12, tzinfo=UTC) + timedelta(seconds=offset)
        assert shared.prev_before(when) == _croniter_run(shared, when, forward=False), when
        assert shared.next_after(when) == _croniter_run(shared, when, forward=True), when


@FAST
@given(second=st.integers(0, 59), minute=st.integers(0, 59), hour=st.integers(0, 23),
       days=st.sampled_from(["* * *", "1 * *", "* * 0", "29 2 *", "1,15 * 1-5", "31 * *"]),
       offsets=st.lists(st.integers(-10**8, 10**8), min_size=1, max_size=10))
def test_shifted_walks_are_exact_for_every_time_of_day(second, minute, hour, days, offsets):
    """Every time of day, the run found through the shared midnight schedule is croniter's."""
    schedule = cron.parse(f"{second} {minute} {hour} {days}")
    assert schedule.walk_expression.startswith("0 0 ") and schedule.shift == (
        hour * 3600 + minute * 60 + second)
    for offset in offsets:
        when = datetime(2026, 11, 25, 12, tzinfo=UTC) + timedelta(seconds=offset, microseconds=offset % 7)
        assert schedule.prev_before(when) == _croniter_run(schedule, when, forward=False), when
        assert schedule.next_after(when) == _croniter_run(schedule, when, forward=True), when
