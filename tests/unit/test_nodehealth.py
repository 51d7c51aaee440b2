"""Node problems, pure: what a run saw becomes a problem with since when; what it did not ask
stays as it was; a drifted node's list goes again under a version of its own."""

from __future__ import annotations

from chalicelib.core import nodehealth
from chalicelib.core.plan import DRIFTED, NodeState, plan

NODE = "127.0.0.12"


def test_a_problem_keeps_the_time_it_was_first_seen():
    first = nodehealth.carry((), nodehealth.seen(NODE, crond="stopped"), {"crond_stopped"}, "T1")
    again = nodehealth.carry(first, nodehealth.seen(NODE, crond="stopped"), {"crond_stopped"}, "T2")
    assert first == again == (("crond_stopped", "T1", f"crond on {NODE} is stopped"),)
    cleared = nodehealth.carry(again, nodehealth.seen(NODE, crond="started"), {"crond_stopped"}, "T3")
    assert cleared == ()


def test_what_was_not_asked_this_run_is_kept():
    drift = nodehealth.carry((), nodehealth.seen(NODE, missing=2, extra=0),
                             {"list_drift", "crond_stopped"}, "T1")
    kept = nodehealth.carry(drift, nodehealth.seen(NODE, crond="started"), {"crond_stopped"}, "T2")
    assert [k for k, _, _ in kept] == ["list_drift"]


def test_each_problem_says_its_fix():
    [problem] = nodehealth.problems(NODE, (("unreachable", "T1", "the daemon … does not answer"),))
    assert "check backupd on 127.0.0.12" in problem.words() and problem.words().startswith(
        "the daemon … does not answer since T1")


def test_a_drifted_node_gets_its_list_again_under_a_version_of_its_own():
    jobs = {NODE: [{"id": "7f00000c" + "0" * 32, "spec": "* * * * *", "action": "backup",
                    "args": {}, "type": "cron", "sleep": False}]}
    [same] = plan(jobs, {NODE: NodeState(NODE, plan(jobs, {})[0].version)})
    assert not same.push
    [again] = plan(jobs, {NODE: NodeState(NODE, f"{DRIFTED}2026-12-03T08:00:00Z")})
    assert again.reasons == ["drifted"] and again.sent_version == f"{again.version}~2026-12-03T08:00:00Z"
