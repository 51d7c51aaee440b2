"""Go times: the daemons' own form takes a path without the regex; it must read every time as
the general parser does, and refuse what it refuses."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.core.gotime import _parse_go_time, parse_go_time


@given(st.datetimes(), st.integers(0, 999_999_999))
def test_the_daemons_form_reads_as_the_general_parser_reads_it(when, nanos):
    text = f"{when.year:04d}-{when:%m-%dT%H:%M:%S}.{nanos:09d}Z"  # Go's zero year too: 0001
    assert parse_go_time(text) == _parse_go_time(text)
    assert parse_go_time(text)[1] == nanos


@pytest.mark.parametrize("text", ["2026-11-24 23:47:00.000380974Z", "2026-13-24T23:47:00.000380974Z",
                                  "2026-11-24T23:47:0a.000380974Z", "2026-11-24T23:47:00.00038097aZ",
                                  "2026-11-24T23:47:00.-00380974Z", 20261124, None])
def test_what_is_not_a_go_time_is_refused(text):
    with pytest.raises(ValueError):
        parse_go_time(text)


@pytest.mark.parametrize("text", ["2026-W49-4T13:09:14.000000000Z",  # an ISO week date
                                  "2026-12-03T13:09+01.000000000Z",  # an offset in the seconds
                                  "2026-12-03T13+01:00.000000000Z"])
def test_the_fast_path_refuses_what_the_regex_refuses(text):
    """fromisoformat reads more 19-character forms than ``YYYY-MM-DDTHH:MM:SS`` (a week date, a
    time with an offset, whose zone was then replaced by UTC): the fast path must not."""
    with pytest.raises(ValueError):
        _parse_go_time(text)
    with pytest.raises(ValueError):
        parse_go_time(text)
