"""The backup section of a pod annotation (an app's lain.yaml), parsed into items and problems.

A broken annotation or item never raises: it becomes a :class:`Problem` naming the app, proc and
instance, so one app's typo cannot stop the jobs of every other app (the original logged and
dropped these; here they are listed at ``/api/v2/system/problems``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from chalicelib.core import cron, spread
from chalicelib.core.formats.inputs import KIB, load_json
from chalicelib.core.idlewindow import HOLD, Load, matters
from chalicelib.core.naming import MAX_VOLUME, is_volume_path
from chalicelib.errors import ControllerError

MODES = ("full", "increment")
_REQUIRED = ("procname", "volume", "expire", "schedule")
# Each field's longest accepted value: far above any real spec, far below what could hurt.
_TEXT_FIELDS = {"procname": 256, "volume": MAX_VOLUME, "schedule": 128, "expire": 32, "mode": 32,
                "preRun": 1024, "postRun": 1024}
MAX_ANNOTATION = 64 * KIB
MAX_DEPTH = 16
MAX_ITEMS = 100


@dataclass(frozen=True)
class Problem:
    """Something in the spec that keeps (part of) a volume from being backed up or expired."""

    kind: str
    app: str
    proc: str
    instance: int | None
    reason: str
    volume: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class BackupItem(NamedTuple):
    """One valid entry of ``backup:``; ``schedule_ok``/``expire_ok`` say which jobs it may get.
    (A tuple: one is built per item of every annotation of the cluster.)

    ``schedule`` is the schedule its jobs are pushed with. Parsed from an annotation it is the one
    written (an ``H`` in it is only checked); each instance's copy in the cluster has it resolved
    for that instance (:mod:`chalicelib.core.spread`), the one written then kept in ``written``."""

    procname: str
    volume: str
    schedule: str
    expire: str
    mode: str
    pre_run: str
    post_run: str
    schedule_ok: bool = True
    expire_ok: bool = True
    written: str = ""  # the schedule as written, when the one pushed differs (H, the spread)

    @property
    def schedule_written(self) -> str:
        """The schedule as lain.yaml has it."""
        return self.written or self.schedule

    @property
    def expire_mode(self) -> str:
        """How the expire job lists this volume: the daemon backs up anything but increment fully."""
        return "increment" if self.mode == "increment" else "full"


def parse_annotation(
    annotation: str, *, app: str, proc: str, instance: int
) -> tuple[tuple[BackupItem, ...], list[Problem]]:
    """Items and problems of one pod's annotation; ``proc`` is the full proc name from lainlet."""
    items, found = _parse_cached(annotation, proc)
    return items, [Problem(kind, app, proc, instance, reason, volume)
                   for kind, reason, volume in found] if found else []


@lru_cache(maxsize=8192)
def _parse_cached(annotation: str, proc: str) -> tuple[tuple[BackupItem, ...],
                                                       tuple[tuple[str, str, str], ...]]:
    """Items and (kind, reason, volume) problems; every pod of a proc shares its annotation."""
    decoded = _decode(annotation)
    if isinstance(decoded, str):
        return (), (("malformed_annotation", decoded, ""),)
    items: list[BackupItem] = []
    problems: list[tuple[str, str, str]] = []
    if len(decoded) > MAX_ITEMS:
        problems.append(("malformed_annotation", f"{len(decoded)} backup items; only the first "
                                                 f"{MAX_ITEMS} are read", ""))
    for index, raw in enumerate(decoded[:MAX_ITEMS]):
        try:
            item, reasons = _parse_item(raw, proc)
        except Exception as e:  # one unreadable item must never stop the others (or other apps)
            item, reasons = None, [("invalid_item", f"cannot be read ({type(e).__name__})")]
        for kind, reason in reasons:
            volume = raw.get("volume", "") if isinstance(raw, dict) else ""
            problems.append((kind, f"backup[{index}]: {reason}",
                             volume if isinstance(volume, str) else ""))
        if item is not None:
            items.append(item)
    return tuple(items), tuple(problems)


@lru_cache(maxsize=1024)
def _decode(annotation: str) -> tuple[Any, ...] | str:
    """The raw ``backup`` list, or the reason it cannot be read. Pods of a proc share annotations."""
    if not annotation.strip():
        return ()
    try:
        data = load_json(annotation, what="annotation", max_bytes=MAX_ANNOTATION,
                         max_depth=MAX_DEPTH)
    except ControllerError as e:
        return e.message
    if not isinstance(data, dict):
        return "annotation is not a JSON object"
    backup = data.get("backup")
    if backup is None:
        return ()
    if not isinstance(backup, list):
        return "annotation field 'backup' is not a list"
    return tuple(backup)


def _parse_item(raw: Any, proc: str) -> tuple[BackupItem | None, list[tuple[str, str]]]:
    if not isinstance(raw, dict):
        return None, [("invalid_item", "is not a JSON object")]
    fields: dict[str, str] = {}
    for name, longest in _TEXT_FIELDS.items():
        value = raw.get(name)
        if value is None:
            value = ""
        if not isinstance(value, str):
            return None, [("invalid_item", f"{name} must be a string, got {json.dumps(value)[:40]}")]
        if len(value) > longest:
            return None, [("invalid_item", f"{name} is {len(value)} characters; at most {longest}")]
        fields[name] = value
    missing = [name for name in _REQUIRED if not fields[name]]
    if missing:
        return None, [("invalid_item", f"missing {', '.join(missing)}")]
    if fields["procname"] != proc:
        return None, [("procname_mismatch",
                       f"procname {fields['procname']!r} is not this proc ({proc!r})")]
    volume = fields["volume"]
    if not is_volume_path(volume):
        return None, [("invalid_volume", f"volume {volume!r} must name a directory inside the proc")]
    problems = []
    schedule_error: str | None = None
    try:
        schedule = cron.parse(spread.check(fields["schedule"]))
    except cron.ScheduleError as e:
        schedule_error = str(e)
        who = ("the controller cannot push it" if spread.has_h(fields["schedule"])
               else "the daemon would drop this job")
        problems.append(("bad_schedule", f"schedule {fields['schedule']!r}: {schedule_error}; "
                                         f"{who}, so no backup runs"))
    else:
        if matters(schedule) and Load().add(schedule).blocked:
            schedule_error = "busy"
            problems.append(("busy_schedule", f"schedule {fields['schedule']!r} fires every {HOLD} "
                                              "s or more often: its daemon could never accept "
                                              "another job list, so it is not pushed"))
    expire_error = _expire_error(fields["expire"])
    if expire_error:
        problems.append(("bad_expire", f"{expire_error}; old backups of this volume are not expired"))
    if fields["mode"] not in ("", *MODES):
        problems.append(("unknown_mode", f"mode {fields['mode']!r} is not full or increment; "
                                          "the daemon makes a full backup"))
    item = BackupItem(
        procname=fields["procname"],
        volume=volume,
        schedule=fields["schedule"],
        expire=fields["expire"],
        mode=fields["mode"],
        pre_run=fields["preRun"],
        post_run=fields["postRun"],
        schedule_ok=schedule_error is None,
        expire_ok=not expire_error,
    )
    return item, problems


@lru_cache(maxsize=1024)
def _expire_error(expire: str) -> str:
    """Why the daemon's expire job cannot use ``expire`` ("" if it can); few distinct values."""
    try:
        cron.parse_expire(expire)
    except cron.ScheduleError as e:
        return str(e)
    return ""
