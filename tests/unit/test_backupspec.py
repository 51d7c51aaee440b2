"""Annotation parsing: validity rules, and problems instead of exceptions."""

import json

import pytest

from chalicelib.core.backupspec import parse_annotation


def parse(annotation):
    text = annotation if isinstance(annotation, str) else json.dumps(annotation)
    items, problems = parse_annotation(text, app="a", proc="a.web.web", instance=2)
    return list(items), problems


def item(**fields):
    base = {"procname": "a.web.web", "volume": "/data", "schedule": "0 3 * * *", "expire": "7d",
            "mode": "full", "preRun": "pre.sh", "postRun": ""}
    return {k: v for k, v in {**base, **fields}.items() if v is not ...}


def test_valid_item():
    items, problems = parse({"backup": [item()]})
    assert problems == []
    assert (items[0].volume, items[0].pre_run, items[0].schedule_ok, items[0].expire_ok) == \
        ("/data", "pre.sh", True, True)


@pytest.mark.parametrize("annotation", ["", "{}", {"mountpoint": ["a.lain"]}, {"backup": None},
                                        {"backup": []}])
def test_no_backup_section_is_not_a_problem(annotation):
    assert parse(annotation) == ([], [])


@pytest.mark.parametrize("annotation, reason", [
    ("{not json", "not valid JSON"),
    ("[1]", "not a JSON object"),
    ({"backup": "x"}, "'backup' is not a list"),
])
def test_malformed_annotation(annotation, reason):
    items, problems = parse(annotation)
    assert items == [] and len(problems) == 1
    p = problems[0]
    assert (p.kind, p.app, p.proc, p.instance) == ("malformed_annotation", "a", "a.web.web", 2)
    assert reason in p.reason


@pytest.mark.parametrize("fields, kind, reason", [
    ({"procname": ""}, "invalid_item", "missing procname"),
    ({"volume": ..., "expire": ""}, "invalid_item", "missing volume, expire"),
    ({"schedule": None}, "invalid_item", "missing schedule"),
    ({"expire": 7}, "invalid_item", "expire must be a string"),
    ({"procname": "b.web.web"}, "procname_mismatch", "'b.web.web'"),
    ({"volume": "/../../etc"}, "invalid_volume", "/../../etc"),
    ({"volume": "/"}, "invalid_volume", "must name a directory"),
])
def test_invalid_items_are_dropped_with_a_problem(fields, kind, reason):
    items, problems = parse({"backup": [item(**fields), item(volume="/ok")]})
    assert [i.volume for i in items] == ["/ok"]
    assert [p.kind for p in problems] == [kind]
    assert reason in problems[0].reason and problems[0].reason.startswith("backup[0]")


def test_not_an_object_item():
    items, problems = parse({"backup": ["x"]})
    assert items == [] and problems[0].kind == "invalid_item"


@pytest.mark.parametrize("fields, kind, schedule_ok, expire_ok", [
    ({"schedule": "0 0 5 0 0"}, "bad_schedule", False, True),
    ({"expire": "7w"}, "bad_expire", True, False),
    ({"mode": "snapshot"}, "unknown_mode", True, True),
])
def test_items_kept_with_a_problem(fields, kind, schedule_ok, expire_ok):
    items, problems = parse({"backup": [item(**fields)]})
    assert [p.kind for p in problems] == [kind]
    assert (items[0].schedule_ok, items[0].expire_ok) == (schedule_ok, expire_ok)
    assert problems[0].volume == "/data"


def test_busy_schedule_alone_is_a_problem_and_gets_no_job():
    items, problems = parse({"backup": [item(schedule="*/2 * * * * *"), item(volume="/ok")]})
    assert [(p.kind, p.volume) for p in problems] == [("busy_schedule", "/data")]
    assert "could never accept another job list" in problems[0].reason
    assert [(i.volume, i.schedule_ok, i.expire_ok) for i in items] == \
        [("/data", False, True), ("/ok", True, True)]


@pytest.mark.parametrize("fields, words", [
    ({"volume": "/" + "v" * 300}, "volume is 301 characters"),
    ({"preRun": "x" * 2000}, "preRun is 2000 characters"),
    ({"schedule": "0 3 * * *" + " " * 200}, "schedule is 209 characters"),
])
def test_oversize_fields_are_problems(fields, words):
    items, problems = parse({"backup": [item(**fields)]})
    assert items == [] and problems[0].kind == "invalid_item" and words in problems[0].reason


HOSTILE = {
    "deep": "[" * 5000 + "]" * 5000,
    "deeper": "[" * 100_000 + "]" * 100_000,
    "big": json.dumps({"backup": [item()], "pad": "x" * 70_000}),
    "surrogate": '{"backup": [{"volume": "\\ud800"}]}',
    "nan": '{"backup": [{"expire": NaN}]}',
}


@pytest.mark.parametrize("name, words", [
    ("deep", "nested deeper"), ("deeper", "at most 65,536"), ("big", "at most 65,536"),
    ("surrogate", "not valid text"), ("nan", "not valid JSON"),
])
def test_hostile_annotations_are_one_problem(name, words):
    items, problems = parse(HOSTILE[name])
    assert items == [] and [p.kind for p in problems] == ["malformed_annotation"]
    assert words in problems[0].reason


def test_items_beyond_the_limit_are_not_read():
    items, problems = parse({"backup": [item(volume=f"/v{n}") for n in range(150)]})
    assert len(items) == 100 and problems[0].kind == "malformed_annotation"


@pytest.mark.parametrize("fields, kind", [
    ({"expire": "1000000000d"}, "bad_expire"),
    ({"expire": "9" * 30 + "d"}, "bad_expire"),
    ({"expire": "9" * 50 + "d"}, "invalid_item"),  # longer than any expire field may be
    ({"schedule": "² * * * *"}, "bad_schedule"),
    ({"schedule": "@every 999999999999999999999999999999s"}, "bad_schedule"),
])
def test_values_that_used_to_crash_the_cluster_build_are_problems(fields, kind):
    _, problems = parse({"backup": [item(**fields)]})
    assert [p.kind for p in problems] == [kind]
