"""Backup freshness and the reconcile in Prometheus's text exposition format (0.0.4). Pure.

Names follow the conventions scrapers know (``_timestamp_seconds`` for times, one gauge per
state with a ``status`` label, ``backupctl_`` as the prefix), like Velero's
``velero_backup_last_successful_timestamp``:

* ``backupctl_backup_status{app,proc,volume,instance,node,status} 1`` per backup item;
* ``backupctl_backup_last_success_timestamp_seconds{app,proc,volume,instance,node}`` and
  ``backupctl_backup_last_run_timestamp_seconds{…}`` where a run was recorded;
* with restore drills on: ``backupctl_backup_last_verified_timestamp_seconds{…}``,
  ``backupctl_backup_verification{…,state}`` and ``backupctl_backup_restore_bytes_per_second{…}``;
* ``backupctl_backup_items{status}``, ``backupctl_backup_expiry_held_items``, ``backupctl_spec_problems``;
* ``backupctl_reconcile_last_run_timestamp_seconds``, ``…_last_success_timestamp_seconds``,
  ``…_last_run_success``, ``…_consecutive_failures``, ``…_last_run_duration_seconds``,
  ``…_last_run_nodes{result}``;
* ``backupctl_build_info{version} 1``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chalicelib.core.freshness import STATUSES, ItemStatus
from chalicelib.core.gotime import parse_go_time

ITEM_LABELS = ("app", "proc", "volume", "instance", "node")
NODE_RESULTS = ("pushed", "failed", "held", "unchanged")


def escape(value: str) -> str:
    """A label value as the format wants it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Iterable[tuple[str, Any]]) -> str:
    return "{" + ",".join(f'{k}="{escape(str(v))}"' for k, v in pairs) + "}"


def _family(out: list[str], name: str, help_text: str, samples: Iterable[tuple[str, float]]) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} gauge")
    out.extend(f"{name}{labels} {value}" for labels, value in samples)


def _seconds(record: dict[str, Any] | None) -> float | None:
    start = (record or {}).get("start")
    if not isinstance(start, str):
        return None
    try:
        when, nanos = parse_go_time(start)
    except ValueError:
        return None
    if when.year < 1970:  # Go's zero time: never
        return None
    return when.timestamp() + nanos / 1e9


def render(items: list[ItemStatus], runs: list[dict[str, Any]], problems: int, version: str) -> str:
    """The exposition text of ``items`` (the status of every backup item) and ``runs`` (the
    reconcile history, newest first)."""
    out: list[str] = []
    item_labels = [(i, _labels(zip(ITEM_LABELS, (i.app, i.proc, i.volume, i.instance, i.node),
                                   strict=True))) for i in items]
    _family(out, "backupctl_backup_status", "1 for the current status of each backup item",
            ((labels[:-1] + f',status="{i.status}"}}', 1) for i, labels in item_labels))
    for name, field, what in (("last_success", "last_success", "the last successful backup"),
                              ("last_run", "last_run", "the last backup run")):
        samples = [(labels, when) for i, labels in item_labels
                   if (when := _seconds(getattr(i, field))) is not None]
        _family(out, f"backupctl_backup_{name}_timestamp_seconds",
                f"start of {what} of each backup item (Unix time)", samples)
    _verification(out, item_labels)
    counts = {s: 0 for s in STATUSES}
    for i in items:
        counts[i.status] += 1
    _family(out, "backupctl_backup_items", "backup items per status",
            ((_labels([("status", s)]), n) for s, n in counts.items()))
    _family(out, "backupctl_backup_expiry_held_items",
            "backup items whose old backups the retention floor keeps past their expire",
            [("", sum(1 for i in items if i.expiry_held))])
    _family(out, "backupctl_spec_problems", "problems of the backup spec lainlet serves",
            [("", problems)])
    _reconcile(out, runs)
    _family(out, "backupctl_build_info", "the controller's version",
            [(_labels([("version", version)]), 1)])
    return "\n".join(out) + "\n"


def _verification(out: list[str], item_labels: list[tuple[ItemStatus, str]]) -> None:
    """Restore drills (when on): when a drill last verified each item, its newest drill's state,
    and the restore throughput it measured."""
    drilled = [(i.verification, labels) for i, labels in item_labels if i.verification]
    if not drilled:
        return
    _family(out, "backupctl_backup_last_verified_timestamp_seconds",
            "when a restore drill last verified each backup item (Unix time)",
            [(labels, when) for v, labels in drilled
             if (when := _seconds({"start": v.get("verified_at")})) is not None])
    _family(out, "backupctl_backup_verification",
            "1 for the verification state of each backup item (verified, unverified, unproven, "
            "verify_failed, drill_area_missing)",
            [(labels[:-1] + f',state="{escape(str(v.get("state")))}"}}', 1) for v, labels in drilled])
    _family(out, "backupctl_backup_restore_bytes_per_second",
            "restore throughput the newest verified drill of each item measured",
            [(labels, float(v["throughput"])) for v, labels in drilled
             if v.get("state") == "verified" and v.get("throughput")])


def _reconcile(out: list[str], runs: list[dict[str, Any]]) -> None:
    if not runs:
        return
    last = runs[0]
    started = _seconds({"start": last.get("started")})
    success = next((_seconds({"start": r.get("started")}) for r in runs if r.get("ok")), None)
    failures = next((n for n, r in enumerate(runs) if r.get("ok")), len(runs))
    if started is not None:
        _family(out, "backupctl_reconcile_last_run_timestamp_seconds",
                "start of the last reconcile run (Unix time)", [("", started)])
    if success is not None:
        _family(out, "backupctl_reconcile_last_success_timestamp_seconds",
                "start of the last reconcile run that succeeded (Unix time)", [("", success)])
    _family(out, "backupctl_reconcile_last_run_success", "1 if the last reconcile run succeeded",
            [("", 1 if last.get("ok") else 0)])
    _family(out, "backupctl_reconcile_consecutive_failures",
            "failed reconcile runs since the last one that succeeded (of the history kept)",
            [("", failures)])
    _family(out, "backupctl_reconcile_last_run_duration_seconds", "how long the last run took",
            [("", float(last.get("duration_ms") or 0) / 1000)])
    nodes = {"pushed": len(last.get("pushed") or []), "failed": len(last.get("failed") or {}),
             "held": len(last.get("held") or {}), "unchanged": int(last.get("unchanged") or 0)}
    _family(out, "backupctl_reconcile_last_run_nodes", "nodes of the last run, by what happened",
            ((_labels([("result", k)]), v) for k, v in nodes.items()))
