"""The cluster model: lookups, ownership, problems, and refusal of malformed lainlet answers."""

import json

import pytest

from chalicelib.core.cluster import Cluster
from chalicelib.core.paths import archive_name, volume_dir
from chalicelib.errors import BadRequest, LainletError, UnknownApp, UnknownProc, UpstreamError
from tests import reference


@pytest.fixture
def cluster():
    return Cluster.from_backupspec(reference.backupspec())


@pytest.mark.parametrize("name", ["web", "web.web", "hello.web.web"])
def test_proc_names_resolve_within_the_app(cluster, name):
    assert cluster.proc("hello", name).full_name == "hello.web.web"


def test_short_name_with_type(cluster):
    assert cluster.proc("mysql", "master").full_name == "mysql.worker.master"


def test_another_apps_proc_is_unknown(cluster):
    with pytest.raises(UnknownProc, match=r"'mysql\.worker\.master' not found in app 'hello'"):
        cluster.proc("hello", "mysql.worker.master")


def test_unknown_app_and_proc_name_them(cluster):
    with pytest.raises(UnknownApp, match="'nosuch'"):
        cluster.proc("nosuch", "web")
    with pytest.raises(UnknownProc, match="'worker' not found in app 'hello'"):
        cluster.proc("hello", "worker")


def test_nodes(cluster):
    assert cluster.node_ips() == ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
    assert cluster.node_ips_of_app("hello") == ["127.0.0.11", "127.0.0.12"]
    hello = cluster.proc("hello", "web")
    assert cluster.node_of(hello, 2) == "127.0.0.12"
    assert cluster.proc("ghost", "web").node_ips == []  # "not-an-ip" is never a node
    with pytest.raises(BadRequest, match="no instance 3"):
        cluster.node_of(hello, 3)


def test_volumes_and_dirs(cluster):
    hello = cluster.proc("hello", "web")
    assert hello.volumes == ["/data", "/var/log/hello"]
    assert hello.volume_dirs(["/data"]) == ["/data/lain/volumes/hello/hello.web.web/1/data",
                                            "/data/lain/volumes/hello/hello.web.web/2/data"]
    assert hello.item("/var/log/hello/").mode == "increment"
    assert hello.item("/etc") is None
    assert cluster.proc("plain", "web").volumes == []
    assert volume_dir("hello", "hello.web.web", 1, "/var/log/hello") == \
        "/data/lain/volumes/hello/hello.web.web/1/var/log/hello"
    assert archive_name("hello", "hello.web.web", 1, "/var/log/hello") == \
        "hello-hello.web.web-1-var-log-hello"


def test_problems_name_app_proc_instance(cluster):
    found = {(p.kind, p.app, p.proc, p.instance) for p in cluster.problems}
    assert found == {
        ("bad_schedule", "badcron", "badcron.web.web", 1),
        ("malformed_annotation", "badjson", "badjson.web.web", 1),
        ("bad_node_ip", "ghost", "ghost.web.web", 1),
    }
    bad = next(p for p in cluster.problems if p.kind == "bad_schedule")
    assert "0 0 5 0 0" in bad.reason and bad.volume == "/data"


def test_bad_proc_key_is_a_problem_not_a_failure():
    c = Cluster.from_backupspec({"nodots": [], "a.b.c.d": []})
    assert c.procs == {} and {p.kind for p in c.problems} == {"bad_proc_name"}


@pytest.mark.parametrize("data", [[], "x", None, 5])
def test_an_answer_that_is_not_an_object_is_refused_whole(data):
    with pytest.raises(LainletError, match="lainlet sent"):
        Cluster.from_backupspec(data)


@pytest.mark.parametrize("bad", [
    {"not": "a list"},
    ["not a pod"],
    [{"InstanceNo": "1", "Annotation": "", "Containers": []}],
    [{"InstanceNo": 10**40, "Annotation": "", "Containers": []}],
    [{"InstanceNo": True, "Annotation": "", "Containers": []}],
    [{"InstanceNo": 1, "Annotation": 5, "Containers": []}],
    [{"InstanceNo": 1, "Annotation": "", "Containers": ["x"]}],
    [{"InstanceNo": 1, "Annotation": "", "Containers": [{"NodeIp": 5}]}],
    [{"InstanceNo": 1, "Annotation": "", "Containers": [{"Id": "x" * 5000}]}],
])
def test_one_malformed_proc_is_a_problem_and_the_others_stay(bad):
    data = {**reference.backupspec(), "evil.web.web": bad}
    c = Cluster.from_backupspec(data)
    assert "evil.web.web" not in c.procs and "evil.web.web" in c.unreadable
    assert c.proc("hello", "web").full_name == "hello.web.web"  # the others are unaffected
    [problem] = [p for p in c.problems if p.app == "evil"]
    assert problem.kind == "malformed_pod" and "kept" in problem.reason
    with pytest.raises(UpstreamError, match=r"evil\.web\.web is unreadable"):
        c.proc("evil", "web")


@pytest.mark.parametrize("key", ["x/y.web.web", "a..web", "a.b.c.d", "", "a.web.w\u00e9b"])
def test_proc_names_that_could_reach_other_paths_are_refused(key):
    c = Cluster.from_backupspec({key: []})
    assert c.procs == {} and [p.kind for p in c.problems] == ["bad_proc_name"]


def pod(proc, instance, node, *items):
    annotation = json.dumps({"backup": [{"procname": proc, "volume": v, "schedule": s,
                                         "expire": "1d"} for v, s in items]})
    return {"Annotation": annotation, "InstanceNo": instance,
            "Containers": [{"Id": f"c{instance}", "Ip": "", "NodeIp": node, "NodeName": ""}]}


def test_schedules_that_together_keep_a_daemon_busy_are_not_pushed():
    from chalicelib.core import jobs

    spec = {"a.web.web": [pod("a.web.web", 1, "10.0.0.1", ("/x", "0/10 * * * * *"))],
            "b.web.web": [pod("b.web.web", 1, "10.0.0.1", ("/y", "5/10 * * * * *")),
                          pod("b.web.web", 2, "10.0.0.2", ("/y", "5/10 * * * * *"))]}
    c = Cluster.from_backupspec(spec)
    assert c.busy == {("10.0.0.1", "b.web.web", 1, "/y")}
    [problem] = c.problems
    assert (problem.kind, problem.app, problem.instance) == ("busy_schedule", "b", 1)
    assert "10.0.0.1" in problem.reason
    generated = jobs.generate(c)
    assert [j["args"]["app"] for j in generated["10.0.0.1"] if j["id"]] == ["a"]
    assert [j["args"]["app"] for j in generated["10.0.0.2"] if j["id"]] == ["b"]
    # the busy item's dir still expires on its node
    assert "/data/lain/volumes/b/b.web.web/1/y" in generated["10.0.0.1"][-1]["args"]["info"]
