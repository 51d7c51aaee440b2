"""Restore drills, the pure part: where a drill restores (never a volume, never outside the drill
root, always the source's base name), whose fault a failure is, what an item's verification
says, and the scheduler over 60 simulated days: every item verified within its cycle where the
budget allows, and the items it cannot cover named."""

from __future__ import annotations

import itertools
import posixpath
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.core import drill
from chalicelib.core.cluster import Cluster
from chalicelib.core.jobs import placements
from chalicelib.core.paths import VOLUME_ROOT

NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=12
                  ).filter(lambda s: s not in (".", ".."))
volume = st.lists(segment, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
root = st.sampled_from(["/data/lain/drills", "/drills", "/var/lib/backupctl/drills", "/data/drills"])


def cluster_of(volumes: list[str], instances: int, nodes: int) -> Cluster:
    import json

    items = [{"procname": "app.web.web", "volume": v, "schedule": "0 3 * * *", "expire": "7d"}
             for v in volumes]
    spec = {"app.web.web": [{"Annotation": json.dumps({"backup": items}), "InstanceNo": n,
                             "Containers": [{"Id": f"c{n}", "Ip": "", "NodeIp": f"10.0.0.{n % nodes + 1}",
                                             "NodeName": ""}]} for n in range(1, instances + 1)]}
    return Cluster.from_backupspec(spec)


@settings(max_examples=200, deadline=None)
@given(st.lists(volume, min_size=1, max_size=6, unique=True), st.integers(1, 4), st.integers(1, 3),
       root)
def test_a_drill_dir_is_never_a_volume_never_outside_the_root_and_keeps_the_base_name(
        volumes, instances, nodes, base):
    cluster = cluster_of(volumes, instances, nodes)
    dirs = [p.path for p in placements(cluster)]
    assert dirs
    for source in dirs:
        dest = drill.drill_dir(drill.check_root(base), source)
        assert posixpath.basename(dest) == posixpath.basename(source)  # the daemon's copy needs it
        assert posixpath.dirname(dest) == base  # inside the root, one level down
        assert dest not in dirs and not any(dest.startswith(d + "/") for d in dirs)
        assert not dest.startswith(VOLUME_ROOT + "/")
    by_node: dict[str, list[str]] = {}
    for p in placements(cluster):
        by_node.setdefault(p.node, []).append(p.path)
    for node, setup in drill.setup(by_node, base).items():
        assert setup["dirs"] == sorted({drill.drill_dir(base, d) for d in by_node[node]})
        assert setup["command"].startswith("mkdir -p ")


@pytest.mark.parametrize("bad", ["", "relative/dir", "/", "/data/lain/volumes",
                                 "/data/lain/volumes/app", "/data/lain", "/data",
                                 # POSIX keeps a leading "//" through normpath; Linux reads it as "/"
                                 "//data/lain/volumes/db/db.web.web/1", "//data/lain", "//data"])
def test_a_drill_root_in_or_above_the_volumes_is_refused(bad):
    with pytest.raises(drill.DrillRootError):
        drill.check_root(bad)


def test_a_drill_root_is_cleaned_to_one_leading_slash():
    assert drill.check_root("//data/lain/drills/") == "/data/lain/drills"


@pytest.mark.parametrize(("reason", "fault"), [
    ("exit status 2", drill.ARCHIVE_FAULT),  # tar -zxf: a truncated or corrupt archive
    ("gzip: stdin: unexpected end of file", drill.ARCHIVE_FAULT),
    ("open 127.0.0.11/x.tar.gz: no such file or directory", drill.ARCHIVE_FAULT),
    ("Unkown backup file x in 127.0.0.11", drill.ARCHIVE_FAULT),
    ("exit status 23", drill.NODE_FAULT),  # rsync: a dir is missing
    ("exit status 11", drill.NODE_FAULT),  # rsync: no space left
    ("mkdir /d/data.recovering: no space left on device", drill.NODE_FAULT),
    ("Directory is now backuping, give up.", drill.NODE_FAULT),
    ("something nobody expected", drill.NODE_FAULT),  # never a bad backup without evidence
])
def test_whose_fault_a_failed_restore_is(reason, fault):
    assert drill.fault(reason) == fault


def test_a_missing_drill_dir_is_recognised_from_the_daemon_s_words():
    assert drill.area_missing("Directory /d/data not exist", "/d/data")
    assert drill.area_missing("mkdir /d/data.recovering: no such file or directory", "/d/data")
    assert not drill.area_missing("exit status 2", "/d/data")
    assert not drill.area_missing("Directory /other not exist", "/d/data")


def test_an_item_s_verification():
    cycle = timedelta(days=7)
    verified = drill.Result("verified", "2026-12-01T02:00:00Z", "ok", bytes=100 * 2**30,
                            seconds=2048.0, verified_at="2026-12-01T02:00:00Z")
    shown = drill.verification(verified, NOW, cycle)
    assert shown["state"] == "verified" and shown["throughput"] == 50 * 2**20  # 50 MiB/s
    assert drill.verification(verified, NOW + timedelta(days=6), cycle)["state"] == "unverified"
    assert drill.verification(None, NOW, cycle)["state"] == "unverified"
    failed = drill.Result("verify_failed", "2026-12-02T02:00:00Z", "bad", fault="archive",
                          verified_at="2026-12-01T02:00:00Z")
    assert drill.verification(failed, NOW, cycle)["state"] == "verify_failed"


def test_the_window_and_the_night():
    assert drill.parse_window("") is None
    assert drill.parse_window("1-5") == (1, 5)
    for bad in ("1", "a-b", "5-5", "0-24"):
        with pytest.raises(ValueError, match="DRILL_WINDOW"):
            drill.parse_window(bad)
    assert drill.in_window((1, 5), NOW) and not drill.in_window((3, 5), NOW)
    assert drill.in_window((22, 4), NOW) and drill.in_window((22, 4), NOW.replace(hour=23))
    assert drill.night_of((22, 4), NOW) == "2026-12-02"  # 02:00 belongs to the night that began
    assert drill.night_of(None, NOW) == "2026-12-03"


def test_one_drill_per_node_none_on_a_busy_node_and_within_the_budget():
    items = [drill.Candidate(f"a#p#/v{i}#1", f"10.0.0.{i % 3}", 10) for i in range(9)]
    choice = drill.choose(items, {"10.0.0.2"}, budget_left=15, budget_per_night=100,
                          cycle_days=7, now=NOW)
    assert [c.node for c in choice.start] == ["10.0.0.0"]  # 10.0.0.1's would pass the budget
    assert len({c.node for c in drill.choose(items, set(), None, None, 7, NOW).start}) == 3


Drills = dict[str, list[tuple[datetime, bool]]]


def simulate(sizes: list[int], nodes: int, budget: int | None, days: int = 60, cycle: float = 7,
             failure_rate: float = 0.15, seed: int = 7) -> tuple[Drills, list]:
    """60 nights of the scheduler with a 01-05 window, runs every 30 minutes, drills that take
    one run and fail at random: every drill per item (when, verified or not), and the items the
    scheduler named uncoverable."""
    rng = random.Random(seed)
    keys = [f"app#app.web.web#/v{i}#1" for i in range(len(sizes))]
    drills: dict[str, list[tuple[datetime, bool]]] = {k: [] for k in keys}
    uncoverable: list = []
    start = datetime(2026, 1, 1, tzinfo=UTC)
    spent: dict[str, int] = {}
    for step in range(days * 48):
        now = start + timedelta(minutes=30 * step)
        if not drill.in_window((1, 5), now):
            continue
        night = drill.night_of((1, 5), now)
        left = budget - spent.get(night, 0) if budget else None
        candidates = [drill.Candidate(k, f"10.0.0.{i % nodes}", sizes[i],
                                      max((t for t, ok in drills[k] if ok), default=None),
                                      drills[k][-1][0] if drills[k] else None)
                      for i, k in enumerate(keys)]
        choice = drill.choose(candidates, set(), left, budget, cycle, now)
        uncoverable = choice.uncoverable
        for c in choice.start:
            spent[night] = spent.get(night, 0) + c.size
            drills[c.key].append((now, rng.random() >= failure_rate))
    return drills, uncoverable


def gaps(times: list[datetime], days: int = 60) -> list[tuple[datetime, datetime]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    points = [start, *times, start + timedelta(days=days)]
    return list(itertools.pairwise(points))


def coverage(drills: list[tuple[datetime, bool]], cycle: timedelta = timedelta(days=7)) -> tuple:
    """The longest time between two drills, and the spells of more than a cycle without a
    verified drill that no failed drill reported (silence)."""
    longest = max(b - a for a, b in gaps([t for t, _ in drills]))
    silent = [(a, b) for a, b in gaps([t for t, ok in drills if ok]) if b - a > cycle
              and not any(a < t < b and not ok for t, ok in drills)]
    return longest, silent


def test_sixty_days_every_item_verified_within_its_cycle_when_the_budget_allows():
    sizes = [random.Random(i).randint(1, 50) * 2**30 for i in range(40)]  # 40 volumes, 1-50 GiB
    drills, uncoverable = simulate(sizes, nodes=5, budget=250 * 2**30)  # 250 GiB a night, 5 nodes
    assert uncoverable == []
    for key, made in drills.items():
        longest, silent = coverage(made)
        assert longest <= timedelta(days=7), (key, longest)  # drilled within every cycle
        assert silent == [], key  # unverified past the cycle only after a reported failure
    verified = sum(ok for made in drills.values() for _, ok in made)
    failed = sum(not ok for made in drills.values() for _, ok in made)
    assert 40 * 60 / 7 <= verified <= 40 * 60 / 3 and failed > 0


def test_a_budget_that_cannot_cover_the_cycle_names_the_items_it_leaves_out():
    sizes = [40 * 2**30] * 10 + [300 * 2**30]  # 150 GiB a night: the 300 GiB one never fits
    drills, uncoverable = simulate(sizes, nodes=3, budget=150 * 2**30)
    named = {c.key: why for c, why in uncoverable}
    assert list(named) == ["app#app.web.web#/v10#1"]
    assert "exceed DRILL_BYTES_PER_NIGHT" in named["app#app.web.web#/v10#1"]
    assert drills["app#app.web.web#/v10#1"] == []  # never started: it would take a whole night
    assert all(coverage(drills[f"app#app.web.web#/v{i}#1"])[0] <= timedelta(days=7)
               for i in range(10))  # the others still covered
    _, tight = simulate([40 * 2**30] * 30, nodes=3, budget=150 * 2**30)
    assert len(tight) == 4  # 30 x 40 GiB = 1,200 GiB > 7 x 150 = 1,050 GiB: 4 cannot fit
    assert all("DRILL_CYCLE_DAYS" in why for _, why in tight)


def test_increment_samples_cover_the_whole_mirror_whatever_days_the_drills_fall_on():
    listed = [(f"f{i:02d}", i) for i in range(40)]
    seen: set[str] = set()
    after = ""
    for _ in range(2):  # a drill every 4 days once sampled the same half forever (by day number)
        chosen = drill.sample(listed, 20, after)
        seen |= {name for name, _ in chosen}
        after = chosen[-1][0]
    assert len(seen) == 40
    assert [n for n, _ in drill.sample(listed, 3, "f39")] == ["f00", "f01", "f02"]  # wraps
    assert [n for n, _ in drill.sample(listed, 2, "f05x")] == ["f06", "f07"]  # its file is gone
    assert drill.sample(listed[:3], 20, "") == listed[:3]
