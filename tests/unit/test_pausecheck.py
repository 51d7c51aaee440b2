"""Which nodes a run compares for pause drift, and what it makes of a daemon's list."""

from __future__ import annotations

from collections import Counter

from chalicelib.core.pausecheck import Drift, compare, due
from chalicelib.core.types import Pause


def test_every_node_is_due_exactly_once_in_any_window_of_the_setting():
    nodes = [f"10.{i // 250}.{i % 250}.{i % 7 + 1}" for i in range(2000)]
    for start in (0, 29_000_003):
        seen = Counter(n for minute in range(start, start + 10) for n in nodes if due(n, minute, 10))
        assert set(seen) == set(nodes) and set(seen.values()) == {1}
    per_run = [sum(due(n, minute, 10) for n in nodes) for minute in range(10)]
    assert max(per_run) <= 260  # about a tenth of 2,000 each run, not all of them


def test_a_window_of_one_minute_checks_every_node_every_run():
    assert all(due(f"10.0.0.{i}", 7, 1) for i in range(1, 50))


def entry(job_id: str, sleep: bool) -> dict:
    return {"prev": "", "next": "", "job": {"id": job_id, "spec": "0 3 * * *", "action": "backup",
                                            "args": {}, "sleep": sleep}}


def test_what_a_daemons_list_says_of_the_pauses_on_record():
    on_record = {"a": Pause("2026-12-10T00:00:00Z"), "b": Pause("2026-12-10T00:00:00Z"),
                 "c": Pause("2026-12-10T00:00:00Z", confirmed=False),
                 "d": Pause("2026-12-10T00:00:00Z"), "e": Pause("2026-12-01T00:00:00Z")}
    entries = [entry("a", True), entry("b", False), entry("c", True), entry("x", True),
               entry("y", False), entry("e", False), entry("", True)]  # "": the expire job
    assert compare(entries, on_record, {"e"}) == Drift(adopt=("x",), reapply=("b",), confirm=("c",))
    assert not compare([entry("a", True)], {"a": Pause("2026-12-10T00:00:00Z")})
    assert compare([entry("e", True)], on_record, {"e"}) == Drift()  # being woken, not adopted
    unsaid = entry("b", False)
    del unsaid["job"]["sleep"]
    assert compare([unsaid], on_record) == Drift()  # no flag: nothing to compare
