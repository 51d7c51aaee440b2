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


@pytest.mark.parametrize(("spec", "words"), [  # schedules as the spread and H make them
    ("57 0 0 * * *", "every day at 00:00:57 UTC"),
    ("57 0 * * * *", "every hour at :00:57"),
    ("57 */30 * * * *", "every 30 minutes at second 57"),
    ("57 11-59/15 * * * *", "every hour at :11:57, :26:57, :41:57, :56:57"),
    ("2 24 3 * * 4", "on Thu at 03:24:02 UTC"),
    ("TZ=Europe/Berlin 57 0 0 * * *", "every day at 00:00:57 Europe/Berlin"),
])
def test_a_pushed_schedule_in_words(spec, words):
    assert describe(spec) == words


def test_a_schedule_with_h_reads_as_chosen_per_item_or_as_why_it_cannot_be_resolved():
    assert describe("H 3 * * *").startswith("H: a time chosen per item")
    assert describe("H(40-20) 3 * * *") == (
        "invalid: minute 'H(40-20)': Beginning of range (40) beyond end of range (20)")
    assert describe("H 24 * * *") == "invalid: hour '24': End of range (24) above maximum (23)"
