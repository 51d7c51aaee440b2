"""Which new job continues which old one on a node, and whose kept runs win (pure)."""

from __future__ import annotations

import copy

from chalicelib.core import lineage
from chalicelib.core.cluster import Cluster
from chalicelib.core.jobs import generate
from tests import reference

NODE = "127.0.0.11"


def listed(spread: bool = False) -> dict[str, list]:
    return generate(Cluster.from_backupspec(reference.backupspec(), spread_seconds=spread))


def test_the_same_list_has_no_successors():
    assert lineage.successors(listed()[NODE], listed()[NODE]) == {}


def test_spread_seconds_maps_each_moved_item_to_its_old_job():
    old, new = listed()[NODE], listed(spread=True)[NODE]
    found = lineage.successors(old, new)
    by_item = {lineage.item_of(j): j["id"] for j in old if j["id"]}
    assert found and set(found.values()) <= {j["id"] for j in old}
    for job in new:
        if job["id"] in found:
            assert by_item[lineage.item_of(job)] == found[job["id"]] != job["id"]
    assert "7f00000bb19d69edd273f3535f5cd42e6fcbd556" in found.values()  # hello /data, golden ID
    mysql_old, mysql_new = listed()["127.0.0.13"], listed(spread=True)["127.0.0.13"]
    assert lineage.successors(mysql_old, mysql_new) == {}  # a 6-field schedule: pushed as written


def job(app: str, job_id: str, volume: str = "/data", instance: int = 1, proc: str = "") -> dict:
    return {"id": job_id, "action": "backup", "spec": "0 3 * * *",
            "args": {"app": app, "proc": proc or f"{app}.web.web", "volume": volume,
                     "instanceNo": instance}}


def test_only_the_same_item_and_only_once():
    old = [job("a", "1"), job("a", "2", "/logs"), job("b", "3"), job("a", "4", instance=2),
           {"id": "", "action": "backup_expire", "args": {"info": []}}]
    new = [job("a", "5"), job("b", "6", proc="a.web.web"),  # another app, same proc and volume
           job("a", "2", "/logs"), job("a", "7", instance=3),  # unchanged; a new instance
           {"id": "", "action": "backup_expire", "args": {"info": ["x", "7d"]}}]
    assert lineage.successors(old, new) == {"5": "1"}  # b's /data under a.web.web is another item


def test_an_item_with_two_ids_on_a_side_is_left_alone():
    assert lineage.successors([job("a", "1"), job("a", "2")], [job("a", "3")]) == {}
    assert lineage.successors([job("a", "1")], [job("a", "2"), job("a", "3")]) == {}
    assert lineage.successors([job("a", "1")], [job("a", "2"), job("a", "2")]) == {"2": "1"}


def test_an_old_id_still_pushed_is_not_continued():
    """A new job whose item's old ID stays in the list (another item took it: never generated
    so) or a new ID that was in the old list under another item: nothing is guessed."""
    assert lineage.successors([job("a", "1"), job("b", "2")], [job("a", "2"), job("b", "9")]) == {}
    assert lineage.successors([job("a", "1")], [job("a", "2"), job("b", "1")]) == {}


def test_odd_args_are_no_item():
    odd = copy.deepcopy(job("a", "1"))
    odd["args"]["instanceNo"] = "1"
    assert lineage.item_of(odd) is None
    assert lineage.item_of({"id": "1", "action": "backup"}) is None
    assert lineage.item_of({**job("a", "1"), "id": ""}) is None


def run(start: str, rid: str, state: str = "success") -> dict:
    return {"rid": rid, "state": state, "start": start}


def test_merged_keeps_the_newer_run_of_each_kind():
    older = {"last": run("2026-11-03T03:00:05.1Z", "a3", "failed"),
             "success": run("2026-11-02T03:00:05Z", "a2"), "good": run("2026-11-02T03:00:05Z", "a2")}
    newer = {"last": run("2026-11-04T03:00:57Z", "b1", "failed")}
    assert lineage.merged(older, newer) == {**older, "last": newer["last"]}
    assert lineage.merged(older, {}) == older and lineage.merged({}, newer) == newer
    same_time = {"last": run("2026-11-03T03:00:05.1Z", "a4")}
    assert lineage.merged(older, same_time)["last"]["rid"] == "a4"  # the store's order: rid next
    broken = {"last": {"rid": "x", "start": "yesterday"}}
    assert lineage.merged(broken, newer)["last"] == newer["last"]
