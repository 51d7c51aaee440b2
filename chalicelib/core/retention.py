"""A retention floor the daemons cannot break: which volume dirs the expire jobs must leave alone.
Pure: time and the records come in.

A node's ``backup_expire`` job deletes every full backup of a listed dir older than its expire, by
age alone: when a volume's backups keep failing for longer than that, every copy goes. So a dir
whose newest *good* backup (a success that is not suspect) is at risk, that is older than its
expire minus ``EXPIRY_HOLD_MARGIN_PERCENT`` of it, or that has no good backup recorded at all (its
newest one deleted by hand counts as none), is held out of its node's expire job until a new good
backup exists. A dir is held too while a restore operation's pre-restore snapshot in it (the
operation's undo) would expire before ``UNDO_DAYS`` after it was made. Backup jobs (and their IDs)
are untouched; only what the expire job lists changes. Increment dirs are never expired by the
daemons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from chalicelib.core import cron
from chalicelib.core.cluster import Cluster
from chalicelib.core.gotime import parse_go_time
from chalicelib.core.jobs import placements
from chalicelib.core.types import JobRecord, Latest

NO_GOOD_YET = "no good backup recorded yet"  # an item's state (never), not a problem of the spec


class Undo(NamedTuple):
    """A restore operation's pre-restore snapshot, kept until ``until``."""

    node: str
    dir: str
    file: str
    taken: datetime
    until: datetime
    app: str
    op_id: str


def good_success(latest: dict[str, JobRecord]) -> JobRecord | None:
    """A job's newest good backup (records kept before "good" existed: its newest plain success);
    None when its archive is known deleted (``gone``): the dir then has no good backup on record
    until the next one."""
    good = latest.get("good")
    if good is not None:
        return None if good.get("gone") else good
    success = latest.get("success")
    return success if success and not success.get("suspect") else None


def archive_of(record: Mapping[str, Any]) -> str:
    """The archive a success record names (``result.file``, its last path piece), or ""."""
    result = record.get("result")
    file = result.get("file") if isinstance(result, dict) else ""
    return file.rpartition("/")[2] if isinstance(file, str) else ""


def held_dirs(cluster: Cluster, latest: Latest, now: datetime, margin_percent: float,
              undos: Sequence[Undo] = ()) -> dict[tuple[str, str], str]:
    """``{(node, volume dir): why}`` for every full-backup dir the expire job must skip now."""
    held: dict[tuple[str, str], str] = {}
    undo_of: dict[tuple[str, str], list[Undo]] = {}
    for u in undos:
        undo_of.setdefault((u.node, u.dir), []).append(u)
    for p in placements(cluster):
        if not p.item.expire_ok or p.item.expire_mode != "full" or (p.node, p.path) in held:
            continue
        expire = cron.parse_expire(p.item.expire)
        for u in undo_of.get((p.node, p.path), ()):
            if u.until > now and now - u.taken >= expire * (1 - margin_percent / 100):
                held[(p.node, p.path)] = (
                    f"the pre-restore snapshot {u.file} (the undo of operation {u.op_id}) would "
                    f"expire (expire {p.item.expire}) before {u.until:%Y-%m-%dT%H:%M:%SZ}, "
                    "UNDO_DAYS after it was made")
        if (p.node, p.path) in held:
            continue
        job_latest: dict[str, JobRecord] = latest.get(p.job["id"], {}) if p.job else {}
        good = good_success(job_latest)
        if good is None:
            gone = job_latest.get("good")
            held[(p.node, p.path)] = (
                f"its newest good backup {archive_of(gone)} was deleted ({gone['gone']}); no "
                "other good backup recorded" if gone and gone.get("gone")
                else NO_GOOD_YET)
            continue
        try:
            taken = parse_go_time(good["start"])[0]
        except (KeyError, ValueError):
            held[(p.node, p.path)] = "its newest good backup has no readable time"
            continue
        if now - taken >= expire * (1 - margin_percent / 100):
            age_days = (now - taken) / timedelta(days=1)
            held[(p.node, p.path)] = (f"its newest good backup ({good['start']}, {age_days:.1f} days "
                                      f"old) would expire soon (expire {p.item.expire})")
    return held
