"""What a use case answers when plain data is not enough: part of an answer (some nodes did not
answer, or one page of many) or a text that is not JSON. Pure data, and light: the web layer
imports it on every cold start, so these are plain slotted classes (``dataclasses`` alone costs a
cold start 1.5 ms)."""

from __future__ import annotations

from typing import Any


class Partial:
    """Part of an answer: gathered from several nodes (``unreachable`` names those that did not
    answer), or one page of it (``next`` is the token of the next page). ``status``: when the
    answer's own status differs from the route's; ``headers``: more to say beside a body whose
    shape is fixed."""

    __slots__ = ("body", "headers", "next", "status", "unreachable")

    def __init__(self, body: Any, unreachable: list[str] | None = None, next: str = "",
                 status: int | None = None, headers: dict[str, str] | None = None) -> None:
        self.body = body
        self.unreachable: list[str] = unreachable or []
        self.next = next
        self.status = status
        self.headers: dict[str, str] = headers or {}


class Text:
    """An answer that is not JSON: a page, the metrics' text format."""

    __slots__ = ("body", "content_type", "headers")

    def __init__(self, body: str, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.body = body
        self.content_type = content_type
        self.headers: dict[str, str] = headers or {}
