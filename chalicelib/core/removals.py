"""Which job removals a reconcile may apply now, and which it holds. Pure: no I/O, no clock.

lainlet can answer wrongly and still well-formed: without one app's pods, with one app's
annotation garbled, or with most of the cluster missing. Obeying such an answer removes backup
jobs that should exist, and a removed job backs nothing up. So a run holds (keeps on the daemons,
as they are) the removals that look like a wrong answer rather than a change of spec:

* every removal, when together they would remove more than ``REMOVAL_GUARD_PERCENT`` of the
  cluster's backup jobs;
* the removals that would leave a node that holds backup jobs with none;
* the removals of a proc whose part of lainlet's answer could not be read this run.

A *removal* is a backup job whose volume dir gets no job at all in the new lists, on any node; a
job replaced by another job for the same volume (a new schedule, a new container, an instance
that moved to another node) is a change and goes out at once. Held removals take effect when the
same set is held for ``REMOVAL_CONFIRM_RUNS`` consecutive runs, or when an operator confirms them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.core.drill import PROOF_SPEC
from chalicelib.core.jobs import BACKUP_ACTION, EXPIRE_ACTION, expire_job
from chalicelib.core.types import Job


@dataclass(frozen=True)
class Removal:
    """A backup job that the new lists would take off ``node`` with nothing in its place."""

    node: str
    job_id: str
    app: str = ""
    proc: str = ""
    volume: str = ""
    instance: int | None = None


@dataclass
class Verdict:
    """The removals a run holds, and why (each reason names what looked wrong)."""

    held: list[Removal] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        """Stable for the same held set: consecutive runs holding it count towards applying it."""
        ids = sorted(f"{r.node}/{r.job_id}" for r in self.held)
        return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:24] if ids else ""

    def by_node(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for r in self.held:
            out.setdefault(r.node, set()).add(r.job_id)
        return out


def _backups(jobs: Iterable[Job]) -> list[Job]:
    """The volumes' backup jobs (a drill's proof job comes and goes with its drill: not one)."""
    return [j for j in jobs if j.get("action") == BACKUP_ACTION and j.get("id")
            and j.get("spec") != PROOF_SPEC]


def _path(job: Job) -> str:
    args = job.get("args")
    return str(args.get("path", "")) if isinstance(args, dict) else ""


def lost(generated: Mapping[str, Sequence[Job]],
         old_lists: Mapping[str, Sequence[Job] | None],
         old_ids: Mapping[str, Sequence[str]]) -> list[Removal]:
    """Backup jobs whose volume dir gets no job anywhere in the new lists. ``old_lists[node]`` is
    the node's last pushed list (None if unknown: every id that disappears from it counts)."""
    out: list[Removal] = []
    new_paths = {_path(j) for node_jobs in generated.values() for j in _backups(node_jobs)}
    for node in sorted(set(old_lists) | set(old_ids)):
        new_ids = {j["id"] for j in _backups(generated.get(node, []))}
        if node in old_ids and all(not i or i in new_ids for i in old_ids[node]):
            continue  # every job it had it keeps: its old list need not be read
        old = old_lists.get(node)
        if old is None:
            out.extend(Removal(node, i) for i in old_ids.get(node, ()) if i and i not in new_ids)
            continue
        for j in _backups(old):
            if j["id"] not in new_ids and _path(j) not in new_paths:
                args = j.get("args") if isinstance(j.get("args"), dict) else {}
                instance = args.get("instanceNo")
                out.append(Removal(node, j["id"], str(args.get("app", "")), str(args.get("proc", "")),
                                   str(args.get("volume", "")),
                                   instance if isinstance(instance, int) else None))
    return out


def judge(removals: list[Removal], generated: Mapping[str, Sequence[Job]],
          old_counts: Mapping[str, int], unreadable: Iterable[str], guard_percent: float) -> Verdict:
    """Which of ``removals`` to hold this run (see the module's rules)."""
    verdict = Verdict()
    if not removals:
        return verdict
    total = sum(old_counts.values())
    too_many = bool(total) and len(removals) * 100 > guard_percent * total
    unreadable = set(unreadable)
    cleared = {node for node, count in old_counts.items()
               if count and not _backups(generated.get(node, []))}
    verdict.held = [r for r in removals if too_many or r.node in cleared or r.proc in unreadable]
    if too_many:
        verdict.reasons.append(f"lainlet's answer would remove {len(removals)} of {total} backup "
                               f"jobs ({len(removals) * 100 / total:.0f}% > {guard_percent:g}%)")
    for node in sorted(cleared & {r.node for r in removals}):
        verdict.reasons.append(f"lainlet's answer would leave {node} without any backup job")
    for proc in sorted(unreadable & {r.proc for r in removals}):
        verdict.reasons.append(f"lainlet's answer for {proc} is unreadable")
    return verdict


def keep_held(new: Sequence[Job], old: Sequence[Job], held_ids: set[str]) -> list[Job]:
    """The node's list with held jobs kept: the new backup jobs, the held old ones, and an expire
    job whose info keeps the held jobs' dirs (their old backups keep expiring as before)."""
    kept = [j for j in _backups(old) if j["id"] in held_ids]
    backups = list({j["id"]: j for j in [*_backups(new), *kept]}.values())
    kept_paths = {_path(j) for j in kept}
    pairs = _expire_pairs(new)
    seen = {p[0] for p in pairs}
    pairs += [p for p in _expire_pairs(old)
              if p[0].removesuffix("@increment") in kept_paths and p[0] not in seen]
    has_expire = any(j.get("action") == EXPIRE_ACTION for j in [*new, *old])
    return backups + ([expire_job([x for pair in pairs for x in pair])] if has_expire else [])


def _expire_pairs(jobs: Sequence[Job]) -> list[tuple[str, str]]:
    for j in jobs:
        if j.get("action") == EXPIRE_ACTION:
            info: Any = j.get("args", {}).get("info", [])
            return list(zip(info[::2], info[1::2], strict=False))
    return []

