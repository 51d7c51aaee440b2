"""Bounded parsing of untrusted numbers and JSON: every failure is a 400/413, never a 500."""

import json

import pytest

from chalicelib.core.formats.inputs import bounded_int, is_text, load_json
from chalicelib.errors import BadRequest, PayloadTooLarge


@pytest.mark.parametrize("raw, expected", [("7", 7), ("007", 7), (" 12 ", 12), ("1000", 1000)])
def test_bounded_int_reads_ascii_digits(raw, expected):
    assert bounded_int(raw, "total", 1, 1000) == expected


@pytest.mark.parametrize("raw", ["9" * 5000, "0" * 5000 + "1001", "²", "١٢", "-1", "1e3", "", "0",
                                 "1001", "0x10", " "])
def test_bounded_int_refuses_with_a_400_naming_the_field(raw):
    with pytest.raises(BadRequest, match="total: a whole number from 1 to 1000") as e:
        bounded_int(raw, "total", 1, 1000)
    assert e.value.code == "bad_total" and len(e.value.message) < 120


def test_load_json_accepts_plain_json():
    assert load_json(b'{"a": ["b", 1, null, true]}', what="x", max_bytes=100, max_depth=3) == \
        {"a": ["b", 1, None, True]}


@pytest.mark.parametrize("raw, words", [
    (b"[" * 5000 + b"]" * 5000, "nested deeper"),
    (b"[[[[1]]]]", "nested deeper"),
    (b'{"a": NaN}', "not valid JSON"),
    (b'{"a": -Infinity}', "not valid JSON"),
    (b'{"a": "\\ud800"}', "not valid text"),
    (b'{"\\udfff": 1}', "not valid text"),
    (b'{"a": "x\\u0000y"}', "not valid text"),
    (b'{"a": "\xff"}', "not valid UTF-8"),
    (b'{"a": ' + b"9" * 5000 + b"}", "not valid JSON"),
    (b"{", "not valid JSON"),
])
def test_load_json_refuses_with_a_400(raw, words):
    with pytest.raises(BadRequest, match=words):
        load_json(raw, what="the body", max_bytes=100_000, max_depth=3)


def test_load_json_refuses_oversize_with_a_413():
    with pytest.raises(PayloadTooLarge, match="at most 10 are accepted") as e:
        load_json(json.dumps("x" * 20), what="the body", max_bytes=10, max_depth=3)
    assert e.value.status == 413


def test_is_text():
    assert is_text("héllo") and not is_text("\ud800") and not is_text("a\x00")
