"""Pages of growing answers: whole entries only, every entry exactly once, tokens checked."""

import json

import pytest

from chalicelib.core.formats.pages import page, page_mapping
from chalicelib.errors import BadRequest


def walk(entries, budget):
    pages, token = [], None
    while True:
        got, token = page(entries, token, budget)
        pages.append(got)
        if not token:
            return pages


def test_every_entry_once_in_order_and_each_page_within_budget():
    entries = [{"n": n, "pad": "x" * (n % 7 * 10)} for n in range(200)]
    pages = walk(entries, 500)
    assert [e for p in pages for e in p] == entries and len(pages) > 5
    assert all(len(json.dumps(p, separators=(",", ":"))) <= 500 for p in pages)


def test_an_entry_larger_than_the_budget_gets_a_page_of_its_own():
    entries = ["a", "b" * 100, "c"]
    assert walk(entries, 20) == [["a"], ["b" * 100], ["c"]]


def test_mappings_keep_their_shape():
    data = {f"10.0.0.{n}": [n] * 50 for n in range(1, 30)}
    merged, token = {}, None
    while True:
        got, token = page_mapping(data, token, 400)
        merged.update(got)
        if not token:
            break
    assert merged == data


@pytest.mark.parametrize("token", ["garbage", "W10", "WzEsMF0", "e30", "WyJ4IiwxXQ"])
def test_a_token_it_did_not_hand_out_is_a_400(token):
    with pytest.raises(BadRequest, match="not a token"):
        page([1, 2, 3], token)
