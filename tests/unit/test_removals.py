"""Which removals a run holds: the share rule at its edge, cleared nodes, unreadable procs, and
lists that keep held jobs with their expire entries."""

from chalicelib.core.removals import Removal, judge, keep_held, lost

A, B = "10.0.0.1", "10.0.0.2"


def backup(node_hex: str, n: int, path: str, app: str = "a") -> dict:
    return {"id": f"{node_hex}{n:032x}", "spec": "0 3 * * *", "action": "backup", "type": "cron",
            "sleep": False, "args": {"app": app, "proc": f"{app}.web.web", "path": path,
                                     "volume": "/v", "instanceNo": 1}}


def expire(*pairs: str) -> dict:
    return {"id": "", "spec": "* * * * *", "action": "backup_expire", "type": "cron", "sleep": False,
            "args": {"info": list(pairs)}}


OLD = {A: [backup("0a000001", n, f"/d/{n}") for n in range(5)], B: [backup("0a000002", 9, "/d/9")]}


def removals_of(count: int) -> list[Removal]:
    return [Removal(A, OLD[A][n]["id"], "a", "a.web.web", "/v", 1) for n in range(count)]


def test_the_share_rule_at_its_edge():
    counts = {A: 5, B: 5}  # 10 backup jobs in the cluster
    assert judge(removals_of(2), OLD, counts, (), 20).held == []  # 20%: not more than 20%
    held = judge(removals_of(3), {A: OLD[A][3:], B: OLD[B]}, counts, (), 20)
    assert len(held.held) == 3 and held.reasons == [
        "lainlet's answer would remove 3 of 10 backup jobs (30% > 20%)"]


def test_a_cleared_node_and_an_unreadable_proc_hold_only_their_removals():
    gone = [Removal(B, OLD[B][0]["id"], "a", "a.web.web")]
    verdict = judge(gone, {A: OLD[A]}, {A: 50, B: 1}, (), 20)
    assert verdict.held == gone
    assert verdict.reasons == [f"lainlet's answer would leave {B} without any backup job"]
    other = [Removal(A, OLD[A][0]["id"], "b", "b.web.web")]
    assert judge(other, OLD, {A: 50, B: 50}, ["b.web.web"], 20).reasons == [
        "lainlet's answer for b.web.web is unreadable"]
    assert judge(other, OLD, {A: 50, B: 50}, ["c.web.web"], 20).held == []


def test_a_job_whose_volume_moved_is_a_change_not_a_removal():
    moved = {A: OLD[A][1:], B: [*OLD[B], {**OLD[A][0], "id": "0a000002" + "f" * 32}]}
    assert lost(moved, OLD, {}) == []
    assert [r.job_id for r in lost({A: OLD[A][1:], B: OLD[B]}, OLD, {})] == [OLD[A][0]["id"]]
    assert lost({}, {A: None}, {A: ["x", "y"]}) == [Removal(A, "x"), Removal(A, "y")]


def test_kept_lists_keep_the_held_jobs_and_their_expiry():
    old = [*OLD[A][:2], expire("/d/0", "7d", "/d/1", "3d")]
    new = [OLD[A][1], expire("/d/1", "3d")]
    kept = keep_held(new, old, {OLD[A][0]["id"]})
    assert [j["id"] for j in kept[:-1]] == [OLD[A][1]["id"], OLD[A][0]["id"]]
    assert kept[-1]["args"]["info"] == ["/d/1", "3d", "/d/0", "7d"]
