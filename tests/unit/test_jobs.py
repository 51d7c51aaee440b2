"""Job lists must be exactly the original controller's: IDs, args, expire job."""

import copy
import json

import pytest

from chalicelib.core import jobs
from chalicelib.core.cluster import Cluster
from tests import reference


def generated(spec=None):
    return jobs.generate(Cluster.from_backupspec(spec or reference.backupspec()))


def pod(app, volume="/data", schedule="0 3 * * *", expire="7d", mode="full", node="127.0.0.11",
        instance=1, containers=("c1",), **extra):
    item = {"procname": f"{app}.web.web", "volume": volume, "schedule": schedule,
            "expire": expire, "mode": mode, "preRun": "", "postRun": "", **extra}
    return {"Annotation": json.dumps({"backup": [item]}), "InstanceNo": instance,
            "Containers": [{"Id": c, "Ip": "172.20.0.1", "NodeIp": node, "NodeName": "n"}
                           for c in containers]}


def test_design_ids():
    by_node = generated()
    assert by_node["127.0.0.11"][0]["id"] == "7f00000bb19d69edd273f3535f5cd42e6fcbd556"
    assert by_node["127.0.0.13"][0]["id"] == "7f00000d021a80f569807176a366a7fac5c3ba76"


def test_node_11_list_is_what_the_original_pushed():
    """The reference daemon on 127.0.0.11 holds exactly these three jobs (its order is by next run)."""
    _, entries = reference.backupd_sample("GET /api/v1/cron/jobs")
    daemon_jobs = [e["job"] for e in entries]
    ours = generated()["127.0.0.11"]
    key = lambda j: (j["action"], j["id"])  # noqa: E731
    assert sorted(ours, key=key) == sorted(daemon_jobs, key=key)
    # the expire job is last and still expires badcron's dir although its schedule is invalid
    assert ours[-1]["action"] == "backup_expire"
    assert ours[-1]["args"]["info"] == [
        "/data/lain/volumes/badcron/badcron.web.web/1/data", "30d",
        "/data/lain/volumes/hello/hello.web.web/1/data", "7d",
        "/data/lain/volumes/hello/hello.web.web/1/var/log/hello@increment", "3d",
    ]


def test_single_job_sample_matches():
    _, job = reference.backupd_sample("GET /api/v1/cron/jobs/7f00000bb19d69edd273f3535f5cd42e6fcbd556")
    assert job in generated()["127.0.0.11"]


def test_bad_specs_take_nothing_else_down():
    by_node = generated()
    assert set(by_node) == {"127.0.0.11", "127.0.0.12", "127.0.0.13"}
    apps = {j["args"]["app"] for js in by_node.values() for j in js if j["action"] == "backup"}
    assert apps == {"hello", "mysql"}  # badcron: no backup job; badjson, ghost, plain: nothing
    assert [j["action"] for j in by_node["127.0.0.13"]] == ["backup", "backup_expire"]
    assert by_node["127.0.0.12"][-1]["args"]["info"] == [
        "/data/lain/volumes/hello/hello.web.web/2/data", "7d",
        "/data/lain/volumes/hello/hello.web.web/2/var/log/hello@increment", "3d",
    ]


def test_job_ip_prefix_is_the_node():
    for node, node_jobs in generated().items():
        for job in node_jobs:
            if job["action"] == "backup":
                assert jobs.node_of_job_id(job["id"]) == node
    assert jobs.node_of_job_id("") is None
    assert jobs.node_of_job_id("zz") is None


def test_go_format():
    assert jobs.go_format(["a", "", ["x", "y"], 3, True]) == "[a  [x y] 3 true]"


def test_generation_is_deterministic_and_input_order_free():
    spec = reference.backupspec()
    reordered = dict(reversed(list(copy.deepcopy(spec).items())))
    for pods in reordered.values():
        pods.reverse()
    assert generated(spec) == generated(reordered)


def test_version_changes_iff_list_changes():
    spec = reference.backupspec()
    before = {n: jobs.list_version(js) for n, js in generated(spec).items()}
    assert before == {n: jobs.list_version(js) for n, js in generated(spec).items()}
    spec["mysql.worker.master"][0]["Annotation"] = spec["mysql.worker.master"][0][
        "Annotation"].replace("0 0 1 * * *", "0 0 2 * * *")
    after = {n: jobs.list_version(js) for n, js in generated(spec).items()}
    assert [n for n in before if before[n] != after[n]] == ["127.0.0.13"]


def test_invalid_expire_keeps_backup_but_not_expire():
    by_node = generated({"a.web.web": [pod("a", expire="7w")]})
    assert [j["action"] for j in by_node["127.0.0.11"]] == ["backup"]


def test_invalid_schedule_and_expire_gives_nothing():
    assert generated({"a.web.web": [pod("a", schedule="0 0 5 0 0", expire="x")]}) == {}


def test_every_container_node_gets_the_job_with_all_container_ids():
    spec = {"a.web.web": [pod("a", containers=("c1", "c2"))]}
    spec["a.web.web"][0]["Containers"][1]["NodeIp"] = "127.0.0.12"
    by_node = generated(spec)
    assert set(by_node) == {"127.0.0.11", "127.0.0.12"}
    for node_jobs in by_node.values():
        assert node_jobs[0]["args"]["containers"] == ["c1", "c2"]
    assert by_node["127.0.0.11"][0]["id"][:8] == "7f00000b"
    assert by_node["127.0.0.12"][0]["id"][:8] == "7f00000c"


def test_two_containers_on_one_node_give_one_job():
    by_node = generated({"a.web.web": [pod("a", containers=("c1", "c2"))]})
    assert [j["action"] for j in by_node["127.0.0.11"]] == ["backup", "backup_expire"]
    assert by_node["127.0.0.11"][1]["args"]["info"] == [
        "/data/lain/volumes/a/a.web.web/1/data", "7d"]


def test_empty_mode_is_expired_like_a_full_backup():
    by_node = generated({"a.web.web": [pod("a", mode="")]})
    assert by_node["127.0.0.11"][0]["args"]["mode"] == ""  # unchanged: it is part of the ID
    assert by_node["127.0.0.11"][1]["args"]["info"] == [
        "/data/lain/volumes/a/a.web.web/1/data", "7d"]


@pytest.mark.parametrize("volume, path, archive", [
    ("/var/log/hello", "/data/lain/volumes/a/a.web.web/1/var/log/hello", "a-a.web.web-1-var-log-hello"),
    ("data/", "/data/lain/volumes/a/a.web.web/1/data", "a-a.web.web-1-data"),
    ("//x//y", "/data/lain/volumes/a/a.web.web/1/x/y", "a-a.web.web-1-x-y"),
])
def test_paths_are_go_path_joined(volume, path, archive):
    args = generated({"a.web.web": [pod("a", volume=volume)]})["127.0.0.11"][0]["args"]
    assert (args["path"], args["archive"], args["volume"]) == (path, archive, volume)


def test_public_job_hides_path_and_archive_without_touching_the_original():
    job = generated()["127.0.0.11"][0]
    shown = jobs.public_job(job)
    assert "path" not in shown["args"] and "archive" not in shown["args"]
    assert shown["args"]["volume"] == "/data" and "path" in job["args"]
    expire = generated()["127.0.0.11"][-1]
    assert jobs.public_job(expire) == expire


def test_plan_is_pure_and_covers_every_case():
    import copy

    from chalicelib.core.jobs import list_version
    from chalicelib.core.plan import NodeState, plan, with_restarts

    generated = {"10.0.0.1": [{"id": "a", "x": 1}], "10.0.0.2": [{"id": "b"}]}
    v1 = list_version(generated["10.0.0.1"])
    states = {"10.0.0.1": NodeState("10.0.0.1", v1, ("a",), 1),
              "10.0.0.3": NodeState("10.0.0.3", "v", ("c",), 1),
              "10.0.0.4": NodeState("10.0.0.4", "v", (), 0)}
    plans = {p.node: p for p in with_restarts(plan(copy.deepcopy(generated), states), {"10.0.0.1"})}
    assert {n: p.reasons for n, p in plans.items()} == {
        "10.0.0.1": ["restarted"], "10.0.0.2": ["new"], "10.0.0.3": ["stale"], "10.0.0.4": []}
    assert plans["10.0.0.3"].removed == ["c"] and plans["10.0.0.2"].added == ["b"]


def test_two_containers_of_one_pod_on_one_node_give_one_job():
    pod = {"Annotation": json.dumps({"backup": [{"procname": "a.web.web", "volume": "/data",
                                                 "schedule": "0 3 * * *", "expire": "1d"}]}),
           "InstanceNo": 1, "Containers": [
               {"Id": "c1", "Ip": "", "NodeIp": "10.0.0.1", "NodeName": ""},
               {"Id": "c2", "Ip": "", "NodeIp": "10.0.0.1", "NodeName": ""}]}
    generated = jobs.generate(Cluster.from_backupspec({"a.web.web": [pod]}))
    backups = [j for j in generated["10.0.0.1"] if j["id"]]
    assert len(backups) == 1 and backups[0]["args"]["containers"] == ["c1", "c2"]


BEFORE_SPREAD = reference.REFERENCE / "jobs-generated-before-spread.json"
SCHEDULES_SPEC = reference.REFERENCE / "lainlet-backupspec-schedules.json"


@pytest.mark.parametrize("name", ["reference", "schedules"])
def test_every_job_is_byte_identical_to_the_lists_captured_before_the_spread(name):
    """The job lists generated before schedules could be resolved (H) or spread, captured into
    ``tests/fixtures/jobs-generated-before-spread.json``: the reference cluster, and a cluster with
    every schedule form the daemon reads (5 and 6 fields, descriptors, ``@every``, ``TZ=``, names,
    odd spacing, invalid and busy ones). With no ``H`` in a spec and the spread off, every list is
    still the same, byte for byte, in the same order."""
    before = json.loads(BEFORE_SPREAD.read_text())[name]
    spec = reference.backupspec() if name == "reference" else json.loads(SCHEDULES_SPEC.read_text())
    now = generated(spec)
    assert list(now) == list(before)
    for node, node_jobs in now.items():
        assert [json.dumps(j, sort_keys=True) for j in node_jobs] == \
            [json.dumps(j, sort_keys=True) for j in before[node]], node
        assert jobs.list_version(node_jobs) == jobs.list_version(before[node])


def _written_and_pushed(spec, on):
    """[(node, job as generated with the spread on/off, the schedule its item has written)]."""
    from chalicelib.core.jobs import placements

    cluster = Cluster.from_backupspec(spec, spread_seconds=on)
    return [(p.node, p.job, p.item.schedule_written) for p in placements(cluster) if p.job]


@pytest.mark.parametrize("name", ["reference", "schedules"])
def test_with_the_spread_a_job_is_the_job_of_its_schedule_as_pushed(name):
    """The daemon computes nothing: a job's id is the original's GenerateID of the job with the
    schedule the controller pushes, and only a job whose schedule changes changes its id."""
    from chalicelib.core import spread

    before = json.loads(BEFORE_SPREAD.read_text())[name]
    spec = reference.backupspec() if name == "reference" else json.loads(SCHEDULES_SPEC.read_text())
    now = generated_with_spread = jobs.generate(Cluster.from_backupspec(spec, spread_seconds=True))
    assert list(now) == list(before)
    changed = 0
    for node, node_jobs in generated_with_spread.items():
        assert len(node_jobs) == len(before[node])
        for job, old in zip(node_jobs, before[node], strict=True):
            assert job["args"] == old["args"]  # app, proc, volume, instanceNo: the item, kept
            if job["action"] == jobs.EXPIRE_ACTION:
                assert job == old
                continue
            args = job["args"]
            item = spread.item_hash(args["app"], args["proc"], args["volume"], args["instanceNo"])
            assert job["spec"] == spread.resolve(old["spec"], item, spread=True)
            assert job["id"] == jobs.job_id(node, job["spec"], "backup", args)
            assert (job["id"] == old["id"]) == (job["spec"] == old["spec"])
            changed += job["spec"] != old["spec"]
    # reference: hello's 4 jobs (mysql's schedule has its seconds); schedules: 21 of the 33 items
    # of each of 4 instances on 2 nodes (not: seconds chosen, @every, every minute, invalid, busy)
    assert changed == (4 if name == "reference" else 21 * 4 * 2)
    for node, job, written in _written_and_pushed(spec, True):
        assert job in now[node] and written in {j["spec"] for j in before[node]}


def test_h_is_resolved_per_instance_the_same_on_every_node_of_the_instance():
    spec = {"a.web.web": [pod("a", schedule="H H(1-5) * * *", instance=i, containers=("c1", "c2"))
                          for i in (1, 2, 3)]}
    for i, p in enumerate(spec["a.web.web"]):
        p["Containers"][1]["NodeIp"] = f"127.0.0.{20 + i}"
    placed = _written_and_pushed(spec, False)
    by_instance = {}
    for node, job, written in placed:
        assert written == "H H(1-5) * * *"
        assert job["id"] == jobs.job_id(node, job["spec"], "backup", job["args"])
        by_instance.setdefault(job["args"]["instanceNo"], set()).add(job["spec"])
    assert all(len(specs) == 1 for specs in by_instance.values())  # one schedule an instance
    # u_i = bytes 4i..4i+4 of sha256("a/a.web.web//data/<instance>"): minute u_1 % 60, hour
    # 1 + u_2 % 5, the spread's second u_0 % 60 (worked out with hashlib alone)
    assert by_instance == {1: {"24 3 * * *"}, 2: {"17 1 * * *"}, 3: {"5 2 * * *"}}
    assert {j["spec"] for _, j, _ in _written_and_pushed(spec, True)} == {
        "2 24 3 * * *", "41 17 1 * * *", "54 5 2 * * *"}


def test_an_h_that_cannot_be_resolved_gets_no_job_but_its_dir_is_still_expired():
    by_node = generated({"a.web.web": [pod("a", schedule="H(30-20) * * * *")]})
    assert [j["action"] for j in by_node["127.0.0.11"]] == ["backup_expire"]
    problems = Cluster.from_backupspec({"a.web.web": [pod("a", schedule="H(30-20) * * * *")]}).problems
    assert [(p.kind, p.volume) for p in problems] == [("bad_schedule", "/data")]
    assert "Beginning of range (30) beyond end of range (20)" in problems[0].reason


def test_the_spread_and_h_take_no_schedule_into_the_busy_ones():
    """A node's every-minute schedules are not spread: 15 of them stay at second 0 (with the
    expire job), not at 15 seconds that would leave the daemon no idle moment."""
    spec = {"a.web.web": [pod("a", volume=f"/v{n}", schedule="* * * * *", instance=n)
                          for n in range(1, 16)]}
    for on in (False, True):
        cluster = Cluster.from_backupspec(spec, spread_seconds=on)
        assert not cluster.busy and not cluster.problems
        assert {j["spec"] for j in jobs.generate(cluster)["127.0.0.11"]} == {"* * * * *"}
    # H seconds are the schedules' own: resolved, the node's check sees each at its second
    from chalicelib.core import cron
    from chalicelib.core.idlewindow import Load

    hashed = {"a.web.web": [pod("a", volume=f"/v{n}", schedule="H * * * * *", instance=n)
                            for n in range(1, 61)]}
    cluster = Cluster.from_backupspec(hashed)
    assert cluster.busy and {p.kind for p in cluster.problems} == {"busy_schedule"}
    assert "'H * * * * *' (pushed as '" in cluster.problems[0].reason
    kept = [j["spec"] for j in jobs.generate(cluster)["127.0.0.11"] if j["id"]]
    load = Load()
    for spec in kept:
        load = load.add(cron.parse(spec))
    assert len(kept) + len(cluster.busy) == 60 and not load.blocked
