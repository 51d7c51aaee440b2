"""Answers that grow with the cluster, cut into pages under Lambda's 6 MB response limit. Pure.

A page holds as many whole entries as fit in ``MAX_PAGE_BYTES`` of JSON (at least one); the next
page is asked for with the opaque token the previous one handed out (``X-Backupctl-Next``), so the
answer's own shape stays the original's. An entry larger than the budget still gets a page of its
own: nothing is ever cut in half.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from chalicelib.errors import BadRequest

MAX_PAGE_BYTES = 5 * 1024 * 1024  # Lambda's limit is 6 MB; headers and the envelope fit in the rest


def _token(index: int, total: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([index, total]).encode()).decode().rstrip("=")


def _start(token: str | None) -> tuple[int, int | None]:
    if not token:
        return 0, None
    try:
        index, total = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not (isinstance(index, int) and isinstance(total, int) and 0 <= index <= total):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, RecursionError):
        raise BadRequest("next: not a token this API handed out", code="bad_next") from None
    return index, total


def page[T](entries: Sequence[T], token: str | None, budget: int | None = None
            ) -> tuple[list[T], str]:
    """The entries of the page ``token`` names (the first without one), and the next page's token
    ("" on the last page); pages of ``budget`` bytes (default ``MAX_PAGE_BYTES``)."""
    start, _ = _start(token)
    budget = budget or MAX_PAGE_BYTES
    out: list[T] = []
    used = 2
    for index in range(start, len(entries)):
        size = len(json.dumps(entries[index], separators=(",", ":"))) + 1
        if out and used + size > budget:
            return out, _token(index, len(entries))
        out.append(entries[index])
        used += size
    return out, ""


def page_mapping(data: dict[str, Any], token: str | None, budget: int | None = None
                 ) -> tuple[dict[str, Any], str]:
    """:func:`page` over the items of a mapping, answered as a mapping again."""
    items, next_token = page(list(data.items()), token, budget)
    return dict(items), next_token
