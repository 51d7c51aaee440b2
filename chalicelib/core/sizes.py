"""Can a backup's success be trusted by its archive's size, and when does a new size become the
baseline? Pure: the job's recent good sizes come in.

A success is *suspect* when its archive has no size, is 0 bytes, or is far below the job's recent
good ones (under ``SUSPECT_SIZE_PERCENT`` of their median): a daemon reports ``success`` for a
backup of an emptied or unmounted volume. A volume that really shrank would stay suspect for good,
so ``SIZE_REBASELINE_RUNS`` suspect successes in a row whose sizes agree make that size the new
baseline. Increment backups are not judged by size: backupd reports every increment backup as 0
bytes (``Entity.Size`` is never set in that mode).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SUSPECT_PERCENT = 10.0  # a success under this share of the recent median size is suspect
RECENT_SIZES = 10  # a success is compared with the sizes of the job's last 10 good ones


@dataclass(frozen=True)
class Baseline:
    """What a job's next success is judged against: its recent good sizes, and the sizes of the
    latest suspect successes that agree with each other (the streak towards a new baseline)."""

    sizes: tuple[int, ...] = ()
    streak: tuple[int, ...] = ()


@dataclass(frozen=True)
class Judgment:
    """What the store keeps of a success: why it is suspect ("" if good), the streak it leaves,
    the recent good sizes once it is good, and whether it made a new baseline."""

    suspect: str = ""
    streak: tuple[int, ...] = ()
    good_sizes: tuple[int, ...] = field(default=())
    rebaselined: bool = False


def archive_size(result: Any) -> int | None:
    """The archive size a success reports, or None when it reports none (or 0 bytes)."""
    size = result.get("size") if isinstance(result, dict) else None
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        return None
    return size


def median(sizes: list[int]) -> int:
    """The median the suspect rule compares with (the upper one of an even count); 0 if none."""
    return sorted(sizes)[len(sizes) // 2] if sizes else 0


def streak(before: list[int], size: int, percent: float) -> list[int]:
    """The sizes of the job's latest suspect successes, ``size`` last, that agree with each other
    (largest minus smallest at most ``percent`` of the largest): the older ones that disagree
    with a newer size drop out. A volume that really shrank gives
    a run of agreeing sizes; once it is ``SIZE_REBASELINE_RUNS`` long, that size is the new
    baseline."""
    out = [*before, size]
    while (max(out) - min(out)) * 100 > percent * max(out):
        out.pop(0)
    return out


def suspect(result: Any, recent_sizes: list[int], percent: float) -> str:
    """Why a backup's success cannot be trusted ("" if it can): no size, 0 bytes, or far below
    the sizes of the job's recent good backups (under ``percent`` of their median)."""
    size = result.get("size") if isinstance(result, dict) else None
    if not isinstance(size, int) or isinstance(size, bool):
        return "the daemon reported no archive size"
    if size <= 0:
        return "the archive is 0 bytes"
    if recent_sizes:
        median = sorted(recent_sizes)[len(recent_sizes) // 2]
        if size * 100 < percent * median:
            return (f"the archive is {size} bytes, under {percent:g}% of the recent median "
                    f"({median} bytes)")
    return ""




def judge(record: Mapping[str, Any], baseline: Baseline, percent: float, rebaseline_runs: int
          ) -> Judgment:
    """The judgment of a backup job's ``success`` record against the job's ``baseline``."""
    result = record.get("result")
    args = record.get("args")
    if isinstance(args, Mapping) and args.get("mode") == "increment":
        return Judgment(good_sizes=baseline.sizes)  # backupd reports increments as 0 bytes
    reason = suspect(result, list(baseline.sizes), percent)
    size = archive_size(result)
    if not reason and size is not None:
        return Judgment(good_sizes=(*baseline.sizes, size)[-RECENT_SIZES:])
    run = tuple(streak(list(baseline.streak), size, percent)) if size and rebaseline_runs else ()
    if run and len(run) >= rebaseline_runs:
        return Judgment(good_sizes=run, rebaselined=True)
    return Judgment(suspect=reason, streak=run)
