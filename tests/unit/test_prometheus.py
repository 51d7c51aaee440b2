"""The Prometheus text, read back by prometheus_client's own parser (not by our code)."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from chalicelib.core.formats.prometheus import render
from chalicelib.core.freshness import ItemStatus


def item(status="ok", volume="/data", instance=1, last_success="2026-11-25T03:00:00.5Z", **kw):
    record = {"rid": "r", "state": "success", "start": last_success} if last_success else None
    return ItemStatus(**{"app": "hello", "proc": "hello.web.web", "instance": instance,
                         "volume": volume, "mode": "full", "schedule": "0 3 * * *",
                         "node": "127.0.0.11", "job_id": "j", "status": status, "reason": "",
                         "last_run": record, "last_success": record, **kw})


def unix(*when):
    return datetime(*when, tzinfo=UTC).timestamp()


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


RUNS = [
    {"started": "2026-11-25T12:02:00Z", "ok": False, "error": "lainlet down", "duration_ms": 1500},
    {"started": "2026-11-25T12:01:00Z", "ok": False, "error": "lainlet down", "duration_ms": 900},
    {"started": "2026-11-25T12:00:00Z", "ok": True, "pushed": ["a", "b"], "failed": {"c": "x"},
     "held": {"d": ["j"]}, "unchanged": 4, "duration_ms": 250},
]


def test_every_item_has_its_status_and_its_last_success_time():
    text = render([item(), item("late", instance=2, last_success="2026-11-20T03:00:00Z"),
                   item("never", instance=3, last_success="")], RUNS, 2, "1.2.3")
    found = families(text)
    status = {(s.labels["instance"], s.labels["status"]): s.value
              for s in found["backupctl_backup_status"].samples}
    assert status == {("1", "ok"): 1, ("2", "late"): 1, ("3", "never"): 1}
    success = {s.labels["instance"]: s.value
               for s in found["backupctl_backup_last_success_timestamp_seconds"].samples}
    # none for the item never backed up
    assert success == {"1": unix(2026, 11, 25, 3) + 0.5, "2": unix(2026, 11, 20, 3)}
    sample = found["backupctl_backup_status"].samples[0]
    assert set(sample.labels) == {"app", "proc", "volume", "instance", "node", "status"}
    items = {s.labels["status"]: s.value for s in found["backupctl_backup_items"].samples}
    assert items["ok"] == items["late"] == items["never"] == 1 and items["failing"] == 0
    assert found["backupctl_spec_problems"].samples[0].value == 2
    assert found["backupctl_build_info"].samples[0].labels == {"version": "1.2.3"}
    assert all(f.type == "gauge" for f in found.values())


def test_the_reconcile_figures_come_from_the_history():
    found = families(render([], RUNS, 0, "v"))
    value = {name: f.samples[0].value for name, f in found.items() if len(f.samples) == 1}
    assert value["backupctl_reconcile_last_run_success"] == 0
    assert value["backupctl_reconcile_consecutive_failures"] == 2
    assert value["backupctl_reconcile_last_run_duration_seconds"] == 1.5
    assert value["backupctl_reconcile_last_run_timestamp_seconds"] == unix(2026, 11, 25, 12, 2)
    assert value["backupctl_reconcile_last_success_timestamp_seconds"] == unix(2026, 11, 25, 12)
    nodes = {s.labels["result"]: s.value
             for s in found["backupctl_reconcile_last_run_nodes"].samples}
    assert nodes == {"pushed": 0, "failed": 0, "held": 0, "unchanged": 0}  # of the failed last run
    ok_last = families(render([], RUNS[2:], 0, "v"))
    nodes = {s.labels["result"]: s.value
             for s in ok_last["backupctl_reconcile_last_run_nodes"].samples}
    assert nodes == {"pushed": 2, "failed": 1, "held": 1, "unchanged": 4}


def test_label_values_from_outside_are_escaped():
    odd = 'a"b\\c\nd'
    found = families(render([item(volume=odd)], [], 0, "v"))
    assert found["backupctl_backup_status"].samples[0].labels["volume"] == odd
    assert "backupctl_reconcile_last_run_success" not in found  # no run yet: no reconcile series
