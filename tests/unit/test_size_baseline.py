"""When agreeing suspect sizes become a new baseline (the pure part of the rule)."""

from __future__ import annotations

from chalicelib.core.sizes import archive_size, median, streak


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
