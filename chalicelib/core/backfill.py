"""What the daemons' archives say that the records do not. Pure: a node's listing and the jobs'
latest records come in.

A daemon posts each run's record to the controller, retries three times a minute apart, then drops
it: a run that succeeded during a DynamoDB outage (or while the notify address was wrong) has an
archive on the node and no record, and freshness would call its item ``late`` or ``never``. The
archive is the remaining evidence (the daemon lists a backup only once it was uploaded): a
success record is made from it, marked as ``recovered`` from the archive. And the other way
round: a job's newest good backup that its node no longer lists was deleted (outside the
controller), and stops counting as good.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from chalicelib.core.gotime import parse_go_time
from chalicelib.core.jobs import Placement
from chalicelib.core.retention import archive_of
from chalicelib.core.types import JobRecord

MAX_PER_JOB = 20  # records recovered for one job in one run (the newest archives first)
SKEW = timedelta(seconds=5)  # a run's archive is made a moment after its record's start
# An archive is listed once uploaded, and its run's record is posted then, retried three times a
# minute apart: a younger archive's record may still be on its way, and is left to it.
SETTLE = timedelta(minutes=4)


def recovered(placements: Iterable[Placement], entities: Sequence[Mapping[str, Any]],
              latest: Mapping[str, Mapping[str, JobRecord]], now: datetime,
              wanted: set[str] | frozenset[str]) -> list[JobRecord]:
    """Success records for the archives of the jobs in ``wanted`` (job ids) that are newer than
    their newest stored success (or than nothing) and older than :data:`SETTLE`, as the daemon
    would have posted them.

    Only late and never items are wanted (the caller's choice): such an item is one grace
    (``FRESHNESS_GRACE_SECONDS``, 10 min) past its last run time, long after a record that was
    merely slow. A run far slower than the one before it can still race its own post; the
    cost is a second success record of that run in the history, never a lost one."""
    out: list[JobRecord] = []
    for p in placements:
        if p.job is None or p.job["id"] not in wanted:
            continue
        newest = _start(latest.get(p.job["id"], {}).get("success"))
        mode = p.item.mode or "full"
        found = []
        for entity in entities:
            created = _created(entity)
            if (entity.get("source") != p.path or (entity.get("mode") or "full") != mode
                    or created is None or created > now - SETTLE):
                continue
            if newest is None or created > newest + SKEW:
                found.append((created, entity))
        for created, entity in sorted(found, key=lambda f: f[0], reverse=True)[:MAX_PER_JOB]:
            out.append(_record(p, entity, created))
    return out


def gone(placements: Iterable[Placement], entities: Sequence[Mapping[str, Any]],
         latest: Mapping[str, Mapping[str, JobRecord]]) -> list[tuple[Placement, str]]:
    """(job, archive) of the jobs whose newest good backup their node no longer lists."""
    listed = {str(e.get("name")) for e in entities}
    out = []
    for p in placements:
        good = latest.get(p.job["id"], {}).get("good") if p.job else None
        if p.job is None or good is None or good.get("gone"):
            continue
        file = archive_of(good)
        if file and file not in listed:
            out.append((p, file))
    return out


def _record(p: Placement, entity: Mapping[str, Any], created: datetime) -> JobRecord:
    assert p.job is not None
    name = str(entity["name"])
    rid = f"{int(created.timestamp())}{hashlib.md5(f'{p.node}/{name}'.encode()).hexdigest()}"
    start = str(entity["created"])
    size = entity.get("size")
    return {**p.job, "type": "cron", "sleep": False, "rid": rid,
            "result": {"file": name, "size": size if isinstance(size, int) else 0},
            "state": "success", "start": start, "end": start, "reason": "",
            "recovered": f"from the archive {name} on {p.node}: its run's record never reached "
                         "the controller"}


def _created(entity: Mapping[str, Any]) -> datetime | None:
    try:
        return parse_go_time(str(entity.get("created", "")))[0]
    except ValueError:
        return None


def _start(record: JobRecord | None) -> datetime | None:
    try:
        return parse_go_time(record["start"])[0] if record else None
    except (KeyError, ValueError):
        return None
