"""Schedules as robfig/cron v2 reads them (the daemons' parser), next/previous runs via croniter."""

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.core import cron

NOW = datetime(2026, 11, 24, 23, 47, 10, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    "spec, expected_next, expected_prev",
    [
        # 5 fields: min hour dom month dow (the reference daemon's "next" for these specs)
        ("0 3 * * *", utc(2026, 11, 25, 3, 0), utc(2026, 11, 24, 3, 0)),
        ("*/30 * * * *", utc(2026, 11, 25, 0, 0), utc(2026, 11, 24, 23, 30)),
        # 6 fields: seconds FIRST
        ("0 0 1 * * *", utc(2026, 11, 25, 1, 0), utc(2026, 11, 24, 1, 0)),
        ("30 */10 * * * *", utc(2026, 11, 24, 23, 50, 30), utc(2026, 11, 24, 23, 40, 30)),
        ("15 47 23 * * *", utc(2026, 11, 24, 23, 47, 15), utc(2026, 11, 23, 23, 47, 15)),
        # descriptors
        ("@daily", utc(2026, 11, 25), utc(2026, 11, 24)),
        ("@midnight", utc(2026, 11, 25), utc(2026, 11, 24)),
        ("@hourly", utc(2026, 11, 25), utc(2026, 11, 24, 23)),
        ("@weekly", utc(2026, 11, 29), utc(2026, 11, 22)),
        ("@monthly", utc(2026, 12, 1), utc(2026, 11, 1)),
        ("@yearly", utc(2027, 1, 1), utc(2026, 1, 1)),
        ("@annually", utc(2027, 1, 1), utc(2026, 1, 1)),
        # @every counts from the reference time, in whole seconds
        ("@every 1h30m", utc(2026, 11, 25, 1, 17, 10), utc(2026, 11, 24, 22, 17, 10)),
        ("@every 90s", utc(2026, 11, 24, 23, 48, 40), utc(2026, 11, 24, 23, 45, 40)),
        # TZ prefix: 03:00 in Shanghai is 19:00 UTC
        ("TZ=Asia/Shanghai 0 3 * * *", utc(2026, 11, 25, 19), utc(2026, 11, 24, 19)),
        # names, ranges, ? and robfig's day rules
        ("0 0 * * MON-FRI", utc(2026, 11, 25), utc(2026, 11, 24)),
        ("0 0 ? * sun", utc(2026, 11, 29), utc(2026, 11, 22)),
        ("0 0 1 jan ?", utc(2027, 1, 1), utc(2026, 1, 1)),
        ("0 0 1 * MON", utc(2026, 11, 30), utc(2026, 11, 23)),  # neither a star: dom OR dow
        ("0 0 */2 * 1", utc(2026, 12, 7), utc(2026, 11, 23)),  # star with step: dom AND dow
        ("0 12 5/10 * *", utc(2026, 11, 25, 12), utc(2026, 11, 15, 12)),  # N/step = N-max/step
        ("0 0 30 2 *", None, None),  # valid for robfig, never fires
    ],
)
def test_valid_schedules(spec, expected_next, expected_prev):
    assert cron.validate(spec) is None
    schedule = cron.parse(spec)
    assert schedule.next_after(NOW) == expected_next
    assert schedule.prev_before(NOW) == expected_prev


@pytest.mark.parametrize(
    "spec, message",
    [
        ("0 0 5 0 0", "Beginning of range (0) below minimum (1)"),  # the seed's own example
        ("61 * * * *", "End of range (61) above maximum (59)"),
        ("", "Empty spec string"),
        ("   ", "Empty spec string"),
        ("* * * *", "Expected 5 or 6 fields, found 4"),
        ("0 1 2 3 4 5 6", "Expected 5 or 6 fields, found 7"),
        ("0 0 * * 7", "End of range (7) above maximum (6)"),
        ("0 24 * * *", "End of range (24) above maximum (23)"),
        ("0 0 32 * *", "End of range (32) above maximum (31)"),
        ("5-1 * * * *", "Beginning of range (5) beyond end of range (1)"),
        ("*/0 * * * *", "Step of range (0) must be positive"),
        ("1/2/3 * * * *", "Too many slashes"),
        ("x * * * *", "Failed to parse int"),
        ("-1 * * * *", "Failed to parse int"),
        ("0 0 * FOO *", "Failed to parse int"),
        ("@often", "Unrecognized descriptor"),
        ("@every 500ms", "less than a second"),
        ("@every soon", "Failed to parse duration"),
        ("@every -1h", "Negative duration"),
        ("TZ=Mars/Olympus 0 3 * * *", "bad location"),
        ("TZ=UTC", "Empty spec string"),
    ],
)
def test_invalid_schedules(spec, message):
    reason = cron.validate(spec)
    assert reason is not None and message in reason
    with pytest.raises(cron.ScheduleError):
        cron.parse(spec)


@pytest.mark.parametrize("expire, seconds", [("30d", 30 * 86400), ("3h", 10800), ("45m", 2700)])
def test_valid_expire(expire, seconds):
    assert cron.parse_expire(expire) == timedelta(seconds=seconds)


@pytest.mark.parametrize("expire", ["", "7", "d", "7w", "1.5d", "-1d", "7 d", "0d", "0m"])
def test_invalid_expire(expire):
    with pytest.raises(cron.ScheduleError):
        cron.parse_expire(expire)


@pytest.mark.parametrize("spec, message", [
    ("² * * * *", "Failed to parse int"),  # "²".isdigit() is True, int("²") raises
    ("1٢ * * * *", "Failed to parse int"),
    ("NINES * * * *", "Failed to parse int"),
    ("@every NINESs", "invalid duration"),
    ("@every 2562048h", "invalid duration"),  # over Go's int64 nanoseconds
    ("@every .5s", "less than a second"),
    ("@every 1.", "Failed to parse duration"),  # Go: missing unit
    ("@every .", "Failed to parse duration"),
    ("@every 5mss", "Failed to parse duration"),
    ("TZ=LONG 0 3 * * *", "bad location"),
    ("TZ=../../etc/passwd 0 3 * * *", "bad location"),
])
def test_specs_that_used_to_raise_are_refused_with_a_reason(spec, message):
    spec = spec.replace("NINES", "9" * 5000).replace("LONG", "x" * 5000)
    reason = cron.validate(spec)
    assert reason is not None and message in reason and len(reason) < 200


def test_every_at_the_edge_of_go_durations():
    assert cron.parse("@every 2562047h47m16s").every == timedelta(seconds=9223372036)
    assert cron.parse("@every 1.5s").every == timedelta(seconds=1)  # robfig keeps whole seconds
    assert cron.parse("@every 90s").every == timedelta(seconds=90)


@pytest.mark.parametrize("expire", ["1000000000d", "106752d", "2562048h", "153722868m",
                                    "NINESd", "00"])
def test_expire_that_would_wrap_the_daemons_duration_is_refused(expire):
    with pytest.raises(cron.ScheduleError):
        cron.parse_expire(expire.replace("NINES", "9" * 5000))


def test_expire_messages_stay_short():
    with pytest.raises(cron.ScheduleError) as e:
        cron.parse_expire("9" * 5000 + "d")
    assert "overflows" in str(e.value) and len(str(e.value)) < 200


def test_longest_expire_the_daemon_can_hold():
    assert cron.parse_expire("106751d") == timedelta(days=106751)
    assert cron.parse_expire("0007d") == timedelta(days=7)
