"""Node problems: what is wrong with a node's daemon, since when, and how to fix it. Pure: what
the reconcile saw this run comes in.

A backup that did not run is a symptom; its cause is often the node: its cron is stopped, its
daemon does not answer, it runs a list other than the one pushed, or it was never told where to
post its records (so its runs are invisible). The reconcile reads each from what it asks anyway
(``/debug`` of the nodes it does not push, the push itself, and on its rotating slice of nodes the
job list and the notify addresses) and keeps each problem with the time it was first seen, so
every surface can name the cause: "crond on 127.0.0.12 is stopped since …".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

CROND_STOPPED, UNREACHABLE, LIST_DRIFT, NOTIFY_MISSING = (
    "crond_stopped", "unreachable", "list_drift", "notify_missing")
KINDS = (CROND_STOPPED, UNREACHABLE, LIST_DRIFT, NOTIFY_MISSING)
STOPS_BACKUPS = (CROND_STOPPED, UNREACHABLE)  # no job of the node runs while these last


@dataclass(frozen=True)
class NodeProblem:
    """One problem of one node: its kind, since when (RFC 3339), and what was seen."""

    node: str
    kind: str
    since: str
    detail: str

    @property
    def fix(self) -> str:
        return {
            CROND_STOPPED: f"start it: PUT /api/v2/server/{self.node}/cron/actions/start",
            UNREACHABLE: (f"check backupd on {self.node} (its port BACKUPD_PORT) and the network "
                          "from the controller"),
            LIST_DRIFT: "the next reconcile pushes the node's list again",
            NOTIFY_MISSING: "the next reconcile gives the daemon the notify address again",
        }.get(self.kind, "")

    def words(self) -> str:
        """The problem in one sentence, with since when and the fix."""
        return f"{self.detail} since {self.since}; {self.fix}"

    def to_dict(self) -> dict[str, str]:
        return {"node": self.node, "kind": self.kind, "since": self.since, "detail": self.detail,
                "fix": self.fix, "words": self.words()}


Kept = tuple[tuple[str, str, str], ...]  # (kind, since, detail), as a node's state keeps them


def seen(node: str, *, crond: str | None = None, unreachable: str = "",
         missing: int | None = None, extra: int | None = None,
         notified: bool | None = None) -> dict[str, str]:
    """The problems this run saw on ``node`` (kind → detail): its cron's status from ``/debug``
    (None: not asked), why it did not answer (""), how many pushed jobs it lacks and how many it
    runs that were not pushed (None: its list was not read), whether its notify addresses hold
    this controller's (None: not read, or no address to give)."""
    found: dict[str, str] = {}
    if unreachable:
        found[UNREACHABLE] = f"the daemon on {node} does not answer ({unreachable})"
    if crond is not None and crond != "started":
        found[CROND_STOPPED] = f"crond on {node} is {crond}"
    if missing or extra:
        found[LIST_DRIFT] = (f"the daemon on {node} runs a list other than the one pushed "
                             f"({missing or 0} pushed jobs missing, {extra or 0} not pushed)")
    if notified is False:
        found[NOTIFY_MISSING] = (f"the daemon on {node} is not told to post its records to this "
                                 "controller (its runs go unrecorded)")
    return found


def carry(before: Kept, found: Mapping[str, str], asked: set[str] | frozenset[str], now: str
          ) -> Kept:
    """The node's problems after this run: what was ``found`` (since when it was first seen;
    ``now`` for a new one), and what was not ``asked`` this run kept as it was."""
    previous = {kind: (since, detail) for kind, since, detail in before}
    out: list[tuple[str, str, str]] = []
    for kind in KINDS:
        if kind in found:
            out.append((kind, previous.get(kind, (now, ""))[0], found[kind]))
        elif kind not in asked and kind in previous:
            out.append((kind, *previous[kind]))
    return tuple(out)


def problems(node: str, kept: Kept) -> list[NodeProblem]:
    return [NodeProblem(node, kind, since, detail) for kind, since, detail in kept]
