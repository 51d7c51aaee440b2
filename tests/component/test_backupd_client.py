"""The daemon client over real HTTP: answers, the daemon's error words, timeouts, encoding."""

import dataclasses

import pytest
import urllib3.connectionpool

from chalicelib.edges import backupd
from chalicelib.edges.backupd import BackupdClient, BackupdError, BackupdGarbage, BackupdTimeout, fan_out
from scripts.simcluster.backupd import BackupdStandIn
from scripts.simcluster.server import Recorded, Reply, StandIn, free_port
from tests.reference import backupd_sample


@pytest.fixture
def client(daemons, settings):
    return BackupdClient("127.0.0.11", settings)


def test_notify_round_trip(client, daemons):
    client.set_notify("http://ctl:8000/api/v2/system/notify?token=x")
    assert client.notify_addrs() == ["http://ctl:8000/api/v2/system/notify?token=x"]
    client.remove_notify("http://ctl:8000/api/v2/system/notify?token=x")
    assert client.notify_addrs() == []


def test_error_words_of_the_daemon_are_kept(client):
    status, words = backupd_sample("GET /api/v1/cron/jobs/nosuchid")
    with pytest.raises(BackupdError) as e:
        client.job("nosuchid")
    assert e.value.upstream_status == status and words in e.value.message


def test_path_pieces_are_encoded(client, daemons):
    with pytest.raises(BackupdError):
        client.backup_info("../../cron/jobs")
    assert daemons["127.0.0.11"].received()[-1].path == "/api/v1/backup/info/file/..%2F..%2Fcron%2Fjobs"


def test_timeout_is_a_timeout(client, daemons):
    daemons["127.0.0.11"].blackhole = True
    with pytest.raises(BackupdTimeout, match=r"127\.0\.0\.11 did not answer"):
        client.debug()


def test_a_refused_connection_is_unreachable_not_a_timeout(settings, daemons):
    """urllib3 files a refused connection under its timeouts; the user must not be told "timed
    out" (504) about a node whose daemon is simply not listening (502)."""
    daemons["127.0.0.11"].stop()
    with pytest.raises(BackupdError, match=r"127\.0\.0\.11 is unreachable") as e:
        BackupdClient("127.0.0.11", settings).debug()
    assert not isinstance(e.value, BackupdTimeout) and e.value.status == 502


class Redirecting(StandIn):
    """A "daemon" that sends every request elsewhere."""

    def handle(self, req: Recorded) -> Reply:
        return Reply(302, "", {"Location": f"http://127.0.0.99:{self.port}/api/v1/debug"})


def test_a_redirect_is_not_followed_to_an_address_lainlet_did_not_name(settings):
    port = free_port(["127.0.0.41", "127.0.0.99"])
    redirecting = Redirecting("127.0.0.41", port).start()
    elsewhere = BackupdStandIn("127.0.0.99", port).start()
    try:
        with pytest.raises(BackupdError, match="answered HTTP 302"):
            BackupdClient("127.0.0.41", dataclasses.replace(settings, backupd_port=port)).debug()
        assert elsewhere.received() == []
    finally:
        redirecting.stop()
        elsewhere.stop()


class Oversized(StandIn):
    """A "daemon" whose backup list is far too big; everything else it answers normally."""

    def handle(self, req: Recorded) -> Reply:
        if req.path.endswith("/backup/json"):
            return Reply(200, b"[" + b" " * 4_000_000 + b"]")
        return Reply(200, {"crond_status": "started", "updateTime": "0001-01-01T00:00:00Z"})


def test_an_answer_refused_as_too_big_leaves_nothing_for_the_next_request(settings, monkeypatch):
    """The rest of a refused answer must not be read as the answer to the node's next request
    (which would report a push that reached the daemon as failed)."""
    monkeypatch.setattr(backupd, "MAX_ANSWER", 100_000)
    # as when the rest is still on its way: the pool's own check sees nothing pending
    monkeypatch.setattr(urllib3.connectionpool, "is_connection_dropped", lambda conn: False)
    port = free_port(["127.0.0.42"])
    daemon = Oversized("127.0.0.42", port).start()
    try:
        client = BackupdClient("127.0.0.42", dataclasses.replace(settings, backupd_port=port))
        for _ in range(3):
            with pytest.raises(BackupdGarbage, match="more than 100,000 bytes"):
                client.backups(["/data"])
            assert client.debug()["crond_status"] == "started"
    finally:
        daemon.stop()


class Debugging(StandIn):
    """A daemon whose ``/debug`` is the captured one, plus a field no daemon sends."""

    def handle(self, req: Recorded) -> Reply:
        return Reply(200, {**backupd_sample("GET /api/v1/debug")[1], "token": "s3cret"})


def test_debug_answers_the_daemons_known_fields_only(settings):
    port = free_port(["127.0.0.43"])
    daemon = Debugging("127.0.0.43", port).start()
    try:
        debug = BackupdClient("127.0.0.43", dataclasses.replace(settings, backupd_port=port)).debug()
    finally:
        daemon.stop()
    assert debug == backupd_sample("GET /api/v1/debug")[1]
    assert "token" not in debug


def test_refuses_non_ip_targets(settings):
    for target in ("lainlet.lain", "127.0.0.1:22/x", ""):
        with pytest.raises(ValueError):
            BackupdClient(target, settings)


def test_fan_out_results_and_errors(daemons, settings):
    daemons["127.0.0.12"].stop()
    out = fan_out(["127.0.0.11", "127.0.0.12", "127.0.0.11"], lambda c: c.debug()["crond_status"],
                  settings)
    assert out.results == {"127.0.0.11": "started"}
    assert out.unreachable == ["127.0.0.12"]


def test_an_action_whose_answer_never_came_may_have_been_carried_out(settings, daemons):
    """A timed-out POST went out: the daemon may apply it later, so its outcome is unknown. A
    refused connection or an error answer means the daemon did nothing."""
    client = BackupdClient("127.0.0.11", settings)
    daemons["127.0.0.11"].delay = 1.5  # above the 1 s node timeout
    with pytest.raises(BackupdTimeout) as late:
        client.job_action("x", "sleep")
    assert backupd.may_have_acted(late.value)
    daemons["127.0.0.11"].delay = 0
    daemons["127.0.0.11"].fail_status = 503
    with pytest.raises(BackupdError) as refused:
        client.job_action("x", "sleep")
    assert not backupd.may_have_acted(refused.value)
    daemons["127.0.0.11"].stop()
    with pytest.raises(BackupdError) as down:
        client.job_action("x", "sleep")
    assert not backupd.may_have_acted(down.value)
