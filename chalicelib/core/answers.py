"""What a use case answers when plain data is not enough: part of an answer (some nodes did not
answer, or one page of many) or a text that is not JSON. Pure data, and light: the web layer
imports it on every cold start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Partial:
    """Part of an answer: gathered from several nodes (``unreachable`` names those that did not
    answer), or one page of it (``next`` is the token of the next page)."""

    body: Any
    unreachable: list[str] = field(default_factory=list)
    next: str = ""
    status: int | None = None  # when the answer's own status differs from the route's


@dataclass
class Text:
    """An answer that is not JSON: a page, the metrics' text format."""

    body: str
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
