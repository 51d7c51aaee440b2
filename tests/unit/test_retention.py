"""The retention floor keeps a restore's undo: a dir whose pre-restore snapshot would expire
before UNDO_DAYS after it was made is held out of its expire job, and only then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.core.cluster import Cluster
from chalicelib.core.retention import Undo, held_dirs
from tests import reference

NODE = "127.0.0.11"
DATA = "/data/lain/volumes/hello/hello.web.web/1/data"  # hello /data: full, expire 7d
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def good_everywhere(cluster: Cluster) -> dict:
    """Every job's newest good backup made an hour ago: nothing held for want of one."""
    from chalicelib.core.jobs import placements

    fresh = {"start": "2026-12-03T11:00:00Z", "state": "success", "result": {"file": "f", "size": 1}}
    return {p.job["id"]: {"good": fresh, "success": fresh} for p in placements(cluster) if p.job}


def undo(days_old: float, undo_days: float = 7, node: str = NODE, target: str = DATA) -> Undo:
    taken = NOW - timedelta(days=days_old)
    return Undo(node, target, "hello-hello.web.web-1-data-1.tar.gz", taken,
                taken + timedelta(days=undo_days), "hello", "op1")


def test_a_snapshot_about_to_expire_inside_its_undo_days_holds_its_dir():
    cluster = Cluster.from_backupspec(reference.backupspec())
    latest = good_everywhere(cluster)
    before = held_dirs(cluster, latest, NOW, 25)
    assert (NODE, DATA) not in before
    held = held_dirs(cluster, latest, NOW, 25, [undo(6, undo_days=10)])
    assert set(held) - set(before) == {(NODE, DATA)}
    assert "the pre-restore snapshot hello-hello.web.web-1-data-1.tar.gz (the undo of operation " \
           "op1) would expire (expire 7d) before" in held[(NODE, DATA)]


def test_a_young_snapshot_a_lapsed_undo_or_another_dir_holds_nothing():
    cluster = Cluster.from_backupspec(reference.backupspec())
    latest = good_everywhere(cluster)
    before = held_dirs(cluster, latest, NOW, 25)
    for undos in ([undo(1, undo_days=10)],  # its 7d expire is far off
                  [undo(8, undo_days=7)],  # the undo lapsed
                  [undo(6, 10, target=DATA + "x")], [undo(6, 10, node="127.0.0.12")]):
        assert held_dirs(cluster, latest, NOW, 25, undos) == before
