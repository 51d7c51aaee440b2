"""Pauses that cannot drift: which nodes a reconcile run asks for their jobs' sleep flags, and what
it makes of the answer. Pure: the minute and the daemon's list come in.

A pause lives in DynamoDB (the record that ends it) and on the daemon (the flag that stops the
job). The two part when a daemon's answer never came (it may have paused or woken the job anyway),
when someone pauses or wakes a job on the node itself, or when a daemon lost a re-pause. Each run
compares them on the nodes with pauses on record, and on a rotating slice of the others: one GET
per node, so a 2,000-node cluster costs 2,000 / ``NODE_CHECK_MINUTES`` GETs a run, and every node
is compared within that many minutes.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from chalicelib.core.types import Pause

ADOPTED_REASON = "found paused on the node"


def due(node: str, minute: int, every: int) -> bool:
    """Whether ``node`` is in the slice of the run of ``minute`` (minutes since the epoch): each
    node once in any ``every`` consecutive minutes, by a stable hash of its IP."""
    return every <= 1 or zlib.crc32(node.encode()) % every == minute % every


@dataclass(frozen=True)
class Drift:
    """What one node's job list says of the pauses on record, as job ids.

    ``adopt``: paused on the node with no pause on record (nothing would ever end it);
    ``reapply``: a pause on record, not ended, whose job runs on the node;
    ``confirm``: an unconfirmed pause on record whose job is paused on the node."""

    adopt: tuple[str, ...] = ()
    reapply: tuple[str, ...] = ()
    confirm: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.adopt or self.reapply or self.confirm)


def compare(entries: list[dict[str, Any]], on_record: dict[str, Pause],
            ended: set[str] | frozenset[str] = frozenset()) -> Drift:
    """The drift between a daemon's ``GET /cron/jobs`` entries and the node's pauses on record
    (``ended``: pauses whose end came this run; they are being woken, not re-applied). A job on
    record but not on the node is left alone: the next push brings it, and its pause with it; so
    is a job whose entry does not say whether it sleeps."""
    sleeping = {e["job"]["id"]: e["job"]["sleep"] for e in entries
                if e["job"].get("id") and isinstance(e["job"].get("sleep"), bool)}
    active = {j: p for j, p in on_record.items() if j not in ended}
    return Drift(
        adopt=tuple(sorted(j for j, asleep in sleeping.items() if asleep and j not in on_record)),
        reapply=tuple(sorted(j for j in active if sleeping.get(j) is False)),
        confirm=tuple(sorted(j for j, p in active.items() if sleeping.get(j) and not p.confirmed)))
