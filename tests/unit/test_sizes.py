"""When agreeing suspect sizes become a new baseline (the pure part of the rule)."""

from __future__ import annotations

from chalicelib.core.sizes import Baseline, Judgment, archive_size, judge, median, streak


def test_sizes_agree_within_the_percent_of_each_other():
    assert streak([], 50_000, 10) == [50_000]
    assert streak([50_000, 50_000], 46_000, 10) == [50_000, 50_000, 46_000]
    assert streak([50_000, 50_000], 44_000, 10) == [44_000]  # 12% apart: the older ones drop
    assert streak([30_000, 50_000], 52_000, 10) == [50_000, 52_000]
    assert streak([50_000], 50_000, 0) == [50_000, 50_000]


def test_only_a_real_archive_has_a_size():
    assert [archive_size(r) for r in ({"size": 5}, {"size": 0}, {}, None, {"size": True},
                                      {"size": "5"})] == [5, None, None, None, None, None]
    assert (median([]), median([3, 1, 2]), median([4, 1, 2, 3])) == (0, 2, 3)


def backup(size, mode="full"):
    return {"action": "backup", "args": {"mode": mode}, "result": {"file": "f", "size": size}}


def test_a_success_is_judged_against_the_recent_good_sizes():
    good = judge(backup(950), Baseline((1000, 1100, 900)), 10, 3)
    assert good == Judgment(good_sizes=(1000, 1100, 900, 950))
    small = judge(backup(50), Baseline((1000, 1100, 900)), 10, 3)
    assert small.suspect.startswith("the archive is 50 bytes") and small.streak == (50,)
    assert judge(backup(0), Baseline((1000,)), 10, 3).suspect == "the archive is 0 bytes"


def test_the_third_agreeing_suspect_size_is_the_new_baseline():
    third = judge(backup(51), Baseline((1000, 1000), streak=(50, 49)), 10, 3)
    assert third == Judgment(good_sizes=(50, 49, 51), rebaselined=True)
    assert judge(backup(51), Baseline((1000,), streak=(50, 49)), 10, 0).suspect  # 0: never by itself


def test_increment_backups_are_not_judged_by_size():
    """backupd reports every increment backup as 0 bytes: that is no reason to distrust it."""
    judged = judge(backup(0, mode="increment"), Baseline((1000,)), 10, 3)
    assert judged.suspect == "" and judged.good_sizes == (1000,)
