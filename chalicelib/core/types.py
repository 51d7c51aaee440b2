"""The shapes that cross module boundaries, typed: a job, a job record, a backup entity, a run
summary, a pause. Pure data, no behaviour (answers' envelopes: :mod:`chalicelib.core.formats.answers`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict


class Job(TypedDict):
    """One entry of a daemon's job list (``crond.Job``); ``args`` depends on ``action``."""

    id: str
    spec: str
    action: str
    args: dict[str, Any]
    type: str
    sleep: bool


STATES = ("running", "success", "failed")  # a job record's states, in the order a run has them


class JobRecord(TypedDict):
    """What a daemon posts about one run of a job (``crond.JobRecord``)."""

    id: str
    spec: NotRequired[str]
    action: str
    args: dict[str, Any]
    type: NotRequired[str]
    sleep: NotRequired[bool]
    rid: str
    result: NotRequired[dict[str, Any] | None]
    state: str
    start: str
    end: NotRequired[str]
    reason: NotRequired[str]
    suspect: NotRequired[str]  # the controller's judgment: why a success is not trusted
    gone: NotRequired[str]  # the controller's knowledge: why its archive no longer exists
    recovered: NotRequired[str]  # made from the daemon's archive: its record never came


Latest = dict[str, dict[str, JobRecord]]  # job id -> "last"/"success"/"good" -> that record


class BackupEntity(TypedDict):
    """A backup as users see it: the original controller's five fields of the daemon's entity."""

    volume: str
    name: str
    size: int
    created: str
    instanceNo: int


class ReconcileSummary(TypedDict, total=False):
    """One run's summary, as answered, logged and kept in the history."""

    started: str
    ok: bool
    error: str
    nodes: int
    pushed: list[str]
    failed: dict[str, str]
    cleared: list[str]
    restarted: list[str]
    repaused: dict[str, list[str]]
    woken: dict[str, list[str]]
    pauses_checked: int
    pauses_adopted: dict[str, list[str]]
    pauses_reapplied: dict[str, list[str]]
    unchanged: int
    held: dict[str, list[str]]
    held_reasons: list[str]
    held_runs: int
    removals_applied: int
    carried: int  # jobs whose history followed their item to a new ID (core/lineage.py)
    forgotten: list[str]
    expiry_held: int
    problems: int
    notify_url_set: bool
    alerts: int
    operations_moved: int
    node_problems: int
    records_recovered: int
    drills_started: int
    drill_uncoverable: list[dict[str, Any]]
    duration_ms: int


@dataclass(frozen=True)
class Pause:
    """A user's pause of one job: until when (RFC 3339, UTC), why, and since when. ``confirmed``:
    the daemon is known to hold it (False after a request whose answer never came); ``adopted``:
    the reconcile found the job paused on its node with no pause on record and kept it, with an
    end."""

    until: str
    reason: str = ""
    paused_at: str = ""
    confirmed: bool = True
    adopted: bool = False


Pauses = dict[str, dict[str, Pause]]  # node -> job id -> its pause
