"""Schedules in words: what the daemon will do, read from the values its parser accepts."""

import pytest

from chalicelib.core.formats.cronwords import describe


@pytest.mark.parametrize(("spec", "words"), [
    ("0 0 2 * * *", "every day at 02:00 UTC"),
    ("0 3 * * *", "every day at 03:00 UTC"),
    ("15 0 2 * * *", "every day at 02:00:15 UTC"),
    ("0 */5 * * * *", "every 5 minutes"),
    ("*/10 * * * * *", "every 10 seconds"),
    ("* * * * *", "every minute"),
    ("@hourly", "every hour at :00"),
    ("@daily", "every day at 00:00 UTC"),
    ("@yearly", "on day 1 of the month in Jan at 00:00 UTC"),
    ("0 30 2 * * 1", "on Mon at 02:30 UTC"),
    ("0 30 2 * * sat,SUN", "on Sun, Sat at 02:30 UTC"),
    ("0 0 */6 * * *", "every 6 hours at :00 from 00:00"),
    ("0 0,30 1,13 * * *", "every day at 01:00, 01:30, 13:00, 13:30 UTC"),
    ("0 0 0 1 * 1", "on day 1 of the month or on Mon at 00:00 UTC"),  # robfig ORs them
    ("0 0 0 1-31 * 1", "every day at 00:00 UTC"),  # ...so a full day-of-month means every day
    ("0 0 0 * * 1-5", "on Mon, Tue, Wed, Thu, Fri at 00:00 UTC"),
    ("TZ=Asia/Shanghai 0 0 3 * * *", "every day at 03:00 Asia/Shanghai"),
    ("@every 1h30m", "every 1h 30m, counted from when the daemon loaded the job"),
    ("0 0-59/20 0-3 * * *",
     "every day at minutes :00, :20, :40 of hours 00, 01, 02, 03 UTC"),
])
def test_schedule_in_words(spec, words):
    assert describe(spec) == words


def test_an_invalid_spec_reads_as_the_reason_the_daemon_drops_it():
    assert describe("61 * * * *") == "invalid: minute '61': End of range (61) above maximum (59)"
    assert describe("@every 10ms").startswith("invalid: Delays of less than a second")
