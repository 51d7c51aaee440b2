"""How a view was registered (paths, method, the query and body fields it reads): what the route
decorator records and the OpenAPI document is built from. A tuple: made once per route at every
cold start."""

from __future__ import annotations

from typing import NamedTuple


class RouteDoc(NamedTuple):
    """One view as the route decorator registered it."""

    name: str
    paths: tuple[str, ...]
    method: str
    summary: str
    query: tuple[str, ...] = ()  # query parameters the view reads
    form: tuple[str, ...] = ()  # body fields the view reads (form-encoded or JSON)
    body: str = ""  # a whole-body schema instead of fields (e.g. the daemon's job record)
    status: int = 200
    mutating: bool = False
    produces: str = "application/json"  # the answer's type; several, comma-separated: by query
