"""Restore drills: proof that a backup restores, made through the daemon's own restore. Pure.

A drill restores a volume's newest good backup into the *drill area* of the node that holds it
(``DRILL_ROOT``/<the volume dir's base name>: the daemon copies ``.recovering/<base of destDir>``
over ``destDir``, so the base names must match, and it makes neither ``destDir`` nor its parent),
then proves the copy landed: a one-off full backup job of that dir (the *proof job*, pushed with
the node's list while the drill is open and never scheduled: Feb 30) runs before the restore (what
the dir held) and after it, and the archive after must be near the source backup's size and not
near the one before (the daemon reports success when its copy step fails and puts the old
content back). A drill is a restore operation of kind ``drill`` on the restore state machine
(:mod:`chalicelib.core.operation`); this module says where it goes, what its outcome means, and
which items the scheduler drills next so that every item is proven within ``DRILL_CYCLE_DAYS``.
"""

from __future__ import annotations

import bisect
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.core.gotime import parse_go_time
from chalicelib.core.jobs import BACKUP_ACTION, job_id
from chalicelib.core.types import Job

KIND = "drill"
RETRY_AFTER = timedelta(hours=12)  # an item's next drill after one that proved nothing
PROOF_SPEC = "0 0 30 2 *"  # Feb 30: accepted by robfig's parser, never due (Next is zero)
PROOF_SUFFIX = ".drill"  # the proof job's archive: the item's own archive name + this
VERIFIED, UNPROVEN, VERIFY_FAILED, AREA_MISSING, UNVERIFIED = (
    "verified", "unproven", "verify_failed", "drill_area_missing", "unverified")
OUTCOMES = (VERIFIED, UNPROVEN, VERIFY_FAILED, AREA_MISSING)
ARCHIVE_FAULT, NODE_FAULT = "archive", "node"


class DrillRootError(ValueError):
    """``DRILL_ROOT`` is not a dir drills may use."""


def check_root(root: str) -> str:
    """The drill root, cleaned: an absolute path, not ``/`` and not under the volumes (a drill
    never restores into a volume)."""
    clean = posixpath.normpath(root) if root else ""
    if clean.startswith("//"):  # normpath keeps a leading "//" (POSIX); Linux reads it as "/"
        clean = "/" + clean.lstrip("/")
    if not clean.startswith("/") or clean == "/" or ".." in clean.split("/"):
        raise DrillRootError(f"DRILL_ROOT={root!r} must be an absolute dir other than /")
    if clean == "/data/lain/volumes" or clean.startswith("/data/lain/volumes/") or \
            "/data/lain/volumes".startswith(clean + "/"):
        raise DrillRootError(f"DRILL_ROOT={root!r} must lie outside /data/lain/volumes (and not "
                             "above it): a drill never restores into a volume")
    return clean


def base_name(path: str) -> str:
    return posixpath.basename(posixpath.normpath(path)) if path else ""


def drill_dir(root: str, source_dir: str) -> str:
    """Where a drill of a backup of ``source_dir`` restores: the root + the source's base name."""
    return posixpath.join(root, base_name(source_dir))


def setup(dirs_by_node: Mapping[str, Iterable[str]], root: str) -> dict[str, dict[str, Any]]:
    """Per node, the drill dirs its volumes need (one per distinct base name) and the one
    command that makes them."""
    out: dict[str, dict[str, Any]] = {}
    for node, sources in sorted(dirs_by_node.items()):
        dirs = sorted({drill_dir(root, s) for s in sources if base_name(s)})
        if dirs:
            out[node] = {"dirs": dirs, "command": "mkdir -p " + " ".join(map(shlex.quote, dirs))}
    return out


def proof_archive(archive: str) -> str:
    return archive + PROOF_SUFFIX


def proof_job(node: str, app: str, proc: str, instance: int, archive: str, dest_dir: str,
              increment: bool) -> Job:
    """The one-off backup job of a drill's dir: the item's job with the drill dir as its path and
    volume (its records never count as backups of the volume: not in its history, freshness or
    evidence) and ``archive`` (:func:`proof_archive`) as its name, on a schedule that never
    comes due (run only on demand)."""
    args: dict[str, Any] = {"app": app, "archive": archive, "containers": [],
                            "instanceNo": instance, "mode": "increment" if increment else "full",
                            "path": dest_dir, "postRun": "", "preRun": "", "proc": proc,
                            "volume": dest_dir}  # not the volume's: its runs are no backups of it
    return {"id": job_id(node, PROOF_SPEC, BACKUP_ACTION, args), "spec": PROOF_SPEC,
            "action": BACKUP_ACTION, "args": args, "type": "cron", "sleep": False}


# -- what a drill's outcome means -------------------------------------------------------------

_AREA = ("not exist", "no such file or directory", "exit status 23")
_ARCHIVE = ("gzip", "tar:", "unexpected eof", "invalid header", "unkown backup", "unknown backup",
            "open ")
_NODE = ("no space", "mkdir", "permission denied", "backuping", "nil pointer", "read-only")
_TAR_FAILED = {1, 2}  # tar -zxf: 2 a fatal error (a corrupt or truncated archive), 1 files differ
_EXIT = re.compile(r"exit status (\d+)")


def fault(reason: str) -> str:
    """Whose fault a failed drill restore is, from the daemon's words: the archive's (it could
    not be read or extracted: gzip's CRC and length, tar's structure; tar exits 2) or the node's
    (disk, dirs, a busy path; rsync's exit statuses 11, 23…). Unknown words are the node's: a
    bad backup is never claimed without evidence."""
    words = reason.lower()
    if any(w in words for w in _NODE):
        return NODE_FAULT
    status = _EXIT.search(words)
    if status:
        return ARCHIVE_FAULT if int(status.group(1)) in _TAR_FAILED else NODE_FAULT
    return ARCHIVE_FAULT if any(w in words for w in _ARCHIVE) else NODE_FAULT


def area_missing(reason: str, dest_dir: str) -> bool:
    """The daemon's words say the drill dir (or its parent) is not there."""
    words = reason.lower()
    return (dest_dir.lower() in words and any(w in words for w in _AREA)) or (
        f"mkdir {dest_dir}.recovering".lower() in words)


@dataclass(frozen=True)
class Result:
    """What a finished drill proved, kept per item (the newest, and when it was last verified)."""

    outcome: str
    at: str
    why: str
    fault: str = ""
    bytes: int = 0
    seconds: float | None = None
    operation: str = ""
    verified_at: str = ""  # the last verified drill of the item (this one's ``at`` if verified)
    sample_after: str = ""  # an increment item: the last file its newest drill sampled

    @property
    def throughput(self) -> float | None:
        """Bytes of the backup restored per second (the archive's size over the restore's time)."""
        return self.bytes / self.seconds if self.seconds and self.bytes else None

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "at": self.at, "why": self.why, "fault": self.fault,
                "bytes": self.bytes, "seconds": self.seconds, "throughput": self.throughput,
                "operation": self.operation, "verified_at": self.verified_at,
                **({"sample_after": self.sample_after} if self.sample_after else {})}


def sample(listed: list[tuple[str, int]], count: int, after: str) -> list[tuple[str, int]]:
    """The next ``count`` files of an increment backup (``listed``: (name, size), sorted by name)
    after the one the item's previous drill sampled last (from the start when none), wrapping:
    successive drills cover the whole mirror whenever they happen."""
    count = min(count, len(listed))
    start = bisect.bisect_right([name for name, _ in listed], after) % len(listed) if after else 0
    return (listed + listed)[start:start + count]


def item_key(app: str, proc: str, volume: str, instance: int) -> str:
    """A volume x instance, as drills and their results know it (any node of its pod)."""
    return f"{app}#{proc}#{volume}#{instance}"


def item_of(key: str) -> dict[str, Any]:
    """:func:`item_key` read back: app, proc, volume and instance (None when not a number)."""
    app, proc, rest = [*key.split("#", 2), "", ""][:3]
    volume, _, instance = rest.rpartition("#")
    return {"app": app, "proc": proc, "volume": volume,
            "instance": int(instance) if instance.isdigit() else None}


def _time(text: str) -> datetime | None:
    try:
        return parse_go_time(text)[0] if text else None
    except ValueError:
        return None


def verified_time(result: Result | None) -> datetime | None:
    """When a drill last verified the item (None: never, or not readable)."""
    return _time(result.verified_at) if result else None


def attempted_time(result: Result | None) -> datetime | None:
    """When the item's newest drill ended, whatever it proved (None: never, or not readable)."""
    return _time(result.at) if result else None


def verification(result: Result | None, now: datetime, cycle: timedelta) -> dict[str, Any]:
    """An item's verification as its status shows it: the newest drill's outcome, or
    ``unverified`` when no drill verified it within the cycle (and none failed since)."""
    last_verified = verified_time(result)
    if result is not None and result.outcome != VERIFIED:
        return {"state": result.outcome, **result.to_dict()}
    if last_verified is None or now - last_verified > cycle:
        since = "never" if last_verified is None else f"not since {last_verified:%Y-%m-%d %H:%M} UTC"
        return {"state": UNVERIFIED, "why": f"no drill verified it within the cycle ({since})",
                **({"verified_at": result.verified_at} if result else {})}
    assert result is not None
    return {"state": VERIFIED, **result.to_dict()}


# -- the scheduler -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    """An item with a good backup to drill: where it is, its size, when it was last verified."""

    key: str  # app#proc#volume#instance
    node: str
    size: int
    last_verified: datetime | None = None
    last_attempt: datetime | None = None  # the newest drill, whatever it proved

    def due(self, now: datetime, cycle: timedelta) -> bool:
        """Drilled again once half the cycle passed since it was last verified (so one failed
        or skipped attempt still leaves time within the cycle), never twice within
        :data:`RETRY_AFTER`."""
        if self.last_attempt is not None and now - self.last_attempt < RETRY_AFTER:
            return False
        return self.last_verified is None or now - self.last_verified >= cycle / 2


@dataclass(frozen=True)
class Choice:
    """The drills to start now, and the items the budget can never fit in one cycle."""

    start: list[Candidate]
    uncoverable: list[tuple[Candidate, str]]


def in_window(window: tuple[int, int] | None, now: datetime) -> bool:
    """``(start, end)`` UTC hours, the end excluded and wrapping past midnight; None: any time."""
    if window is None:
        return True
    start, end = window
    return start <= now.hour < end if start < end else (now.hour >= start or now.hour < end)


def night_of(window: tuple[int, int] | None, now: datetime) -> str:
    """The budget period ``now`` belongs to: the date the window opened (a UTC day without one)."""
    opened = now - timedelta(hours=window[0]) if window else now
    return f"{opened:%Y-%m-%d}"


def parse_window(raw: str) -> tuple[int, int] | None:
    """``"1-5"`` → (1, 5); empty → None. ``ValueError`` naming the accepted form."""
    if not raw.strip():
        return None
    start, _, end = raw.partition("-")
    try:
        hours = int(start), int(end)
    except ValueError:
        raise ValueError(f"DRILL_WINDOW={raw!r} must be two UTC hours, start-end (e.g. 1-5)") from None
    if not all(0 <= h <= 23 for h in hours) or hours[0] == hours[1]:
        raise ValueError(f"DRILL_WINDOW={raw!r} must be two different UTC hours 0-23, start-end")
    return hours


def choose(candidates: Iterable[Candidate], busy_nodes: set[str], budget_left: int | None,
           budget_per_night: int | None, cycle_days: float, now: datetime) -> Choice:
    """Pure: the drills to start now: of the items due (:meth:`Candidate.due`), those verified
    longest ago first (never-verified ones first of all, then the smaller), at most one per node
    and none on a busy node (a drill open there, or tasks running), within what is left of
    tonight's byte budget, strictly in that order (an item that does not fit tonight stops the
    night: younger ones never take its place night after night). Items the budget can never fit
    within the cycle are named, the largest first: the cycle is impossible for them."""
    cycle = timedelta(days=cycle_days)
    every = list(candidates)
    pool = sorted((c for c in every if c.due(now, cycle)),
                  key=lambda c: (c.last_verified is not None,
                                 c.last_verified.timestamp() if c.last_verified else 0.0,
                                 c.size, c.key))
    uncoverable: list[tuple[Candidate, str]] = []
    if budget_per_night is not None:
        capacity = int(budget_per_night * max(cycle_days, 1))
        used = 0
        for c in sorted(every, key=lambda c: (c.size, c.key)):
            if c.size > budget_per_night:
                uncoverable.append((c, f"{c.size} bytes exceed DRILL_BYTES_PER_NIGHT "
                                       f"({budget_per_night}): no night can drill it"))
            elif used + c.size > capacity:
                uncoverable.append((c, f"the items of the cluster need more than DRILL_BYTES_PER_NIGHT "
                                       f"x DRILL_CYCLE_DAYS ({capacity} bytes) per cycle"))
            else:
                used += c.size
        uncoverable.sort(key=lambda u: (-u[0].size, u[0].key))
    start: list[Candidate] = []
    taken = set(busy_nodes)
    left = budget_left
    never = {c.key for c, _ in uncoverable if budget_per_night is not None
             and c.size > budget_per_night}
    for c in pool:
        if c.key in never or c.node in taken:
            continue
        if left is not None and c.size > left:
            break  # the oldest first, strictly: what is left tonight is not spent on younger ones
        start.append(c)
        taken.add(c.node)
        if left is not None:
            left -= c.size
    return Choice(start, uncoverable)
