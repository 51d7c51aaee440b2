"""The daemons of one proc, asked as one: which node holds a backup, and whether a fan-out that
failed on some nodes means "no such backup" or "could not tell".

The daemon says "no such backup or job" with an error status (400, 404, 503, see
``tests/fixtures/backupd-v1-samples.txt``); no answer at all, or another error, means the backup
may well be on that node. Several use cases ask this question; it is the daemons' API, so it
lives with the client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from chalicelib.core.cluster import Proc
from chalicelib.core.naming import made_from
from chalicelib.edges.backupd import BackupdClient, BackupdError, FanOut
from chalicelib.errors import ControllerError, NotFound, UpstreamError, UpstreamTimeout

NOT_FOUND_STATUSES = (400, 404, 503)  # how the daemon says "no such backup/job"
type FanOutCall = Callable[[Iterable[str], Callable[[BackupdClient], Any]], FanOut[Any]]


def is_not_found(error: ControllerError) -> bool:
    return isinstance(error, BackupdError) and error.upstream_status in NOT_FOUND_STATUSES


def not_found_everywhere(errors: Mapping[str, ControllerError]) -> bool:
    return all(is_not_found(e) for e in errors.values())


def raise_unreachable(what: str, errors: Mapping[str, ControllerError]) -> None:
    """Some nodes failed and the answer may be on one of them: fail naming each node and why."""
    failed = [e for e in errors.values() if not is_not_found(e)]
    kind = UpstreamTimeout if all(isinstance(e, UpstreamTimeout) for e in failed) else UpstreamError
    raise kind(f"{what}: " + "; ".join(e.message for e in failed))


def locate(fan_out: FanOutCall, p: Proc, name: str) -> tuple[str, dict[str, Any]]:
    """The node whose daemon holds backup ``name`` of ``p`` (its namespace), and its entity
    (made from one of the proc's own volume dirs, not only named like them)."""
    found = fan_out(p.node_ips, lambda c: c.backup_info(name))
    for node, entity in found.results.items():
        if made_from(p.app, p.full_name, entity):
            return node, entity
    if found.errors and not not_found_everywhere(found.errors):
        raise_unreachable(f"cannot tell whether backup {name!r} exists", found.errors)
    raise NotFound(f"backup {name!r} of {p.full_name} (app {p.app}) not found on "
                   f"{', '.join(p.node_ips) or 'any node'}", code="unknown_backup")
