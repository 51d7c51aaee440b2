"""Shared fixtures: stand-ins on loopback, settings pointing at them, and the API client."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.settings import Settings, get_settings
from scripts.simcluster.backupd import BackupdStandIn
from scripts.simcluster.lainlet import LainletStandIn
from scripts.simcluster.server import free_port
from tests import reference

NODES = ("127.0.0.11", "127.0.0.12", "127.0.0.13")


@pytest.fixture
def lainlet() -> Iterator[LainletStandIn]:
    standin = LainletStandIn(reference.backupspec()).start()
    yield standin
    standin.stop()


@pytest.fixture
def daemon_port() -> int:
    return free_port(tuple(f"127.0.0.{i}" for i in range(11, 31)))


def start_daemons(hosts: list[str], port: int) -> dict[str, BackupdStandIn]:
    return {h: BackupdStandIn(h, port).start() for h in hosts}


@pytest.fixture
def daemons(daemon_port) -> Iterator[dict[str, BackupdStandIn]]:
    """Daemons of the reference cluster, holding the backups seen in the reference samples."""
    nodes = start_daemons(list(NODES), daemon_port)
    nodes["127.0.0.11"].add_backup("hello", "hello.web.web", 1, "/data", containers=["aa10"],
                                   created_at="2026-11-24T23:45:19.90123216Z")
    nodes["127.0.0.11"].add_backup("hello", "hello.web.web", 1, "/var/log/hello", "increment",
                                   files=["x.log"], containers=["aa10"],
                                   created_at="2026-11-24T23:45:19.909984971Z")
    nodes["127.0.0.12"].add_backup("hello", "hello.web.web", 2, "/data", created=1795560000)
    nodes["127.0.0.13"].add_backup("mysql", "mysql.worker.master", 1, "/var/lib/mysql")
    yield nodes
    for d in nodes.values():
        d.stop()


@pytest.fixture
def pushed(daemons, settings):
    """Every daemon holds the list generated from the reference spec (as a reconcile leaves it)."""
    from chalicelib.core import jobs
    from chalicelib.core.cluster import Cluster
    from chalicelib.edges.backupd import BackupdClient

    generated = jobs.generate(Cluster.from_backupspec(reference.backupspec()))
    for node, node_jobs in generated.items():
        BackupdClient(node, settings).set_jobs(node_jobs, jobs.list_version(node_jobs),
                                               timeout=settings.push_timeout_seconds)  # as pushed
    return daemons


@pytest.fixture
def settings(lainlet, daemon_port) -> Settings:
    return dataclasses.replace(Settings(), lainlet_url=lainlet.url, lainlet_timeout_seconds=1.0,
                               node_timeout_seconds=1.0, backupd_port=daemon_port)


@pytest.fixture
def env(monkeypatch, lainlet, daemon_port):
    """The process environment the handlers read, pointing at the stand-ins."""
    values = {"LAINLET_URL": lainlet.url, "LAINLET_TIMEOUT_SECONDS": "1",
              "BACKUPD_PORT": str(daemon_port), "NODE_TIMEOUT_SECONDS": "1", "API_TOKEN": "",
              "NOTIFY_TOKEN": ""}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()


@pytest.fixture
def api(env) -> Iterator[Client]:
    from app import app

    with Client(app) as client:
        yield client


MOTO_ENV = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "TABLE_NAME": "backupctl-test",
            "DYNAMODB_ENDPOINT_URL": ""}


def _one_call_at_a_time(patch: pytest.MonkeyPatch) -> None:
    """moto's in-process DynamoDB is not safe for two threads (a transaction deep-copies the table
    while another thread writes it: "dictionary changed size during iteration"); DynamoDB is.
    Tests that serve the app on loopback while the schedule runs in the test's thread (and the
    daemons post from theirs) get one moto call at a time, as the real service would serialize
    them per item."""
    import threading

    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.RLock()
    original = BotocoreStubber.__call__

    def serialized(self: BotocoreStubber, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    patch.setattr(BotocoreStubber, "__call__", serialized)


@pytest.fixture(scope="session")
def moto_table():
    """One moto DynamoDB and table for the whole session (creating one per test cost ~10 s)."""
    import boto3
    from moto import mock_aws

    from chalicelib.edges.table import create_table

    with pytest.MonkeyPatch.context() as patch:
        for key, value in MOTO_ENV.items():
            patch.setenv(key, value)
        _one_call_at_a_time(patch)
        with mock_aws():
            create_table(boto3.client("dynamodb"), "backupctl-test")
            yield boto3.resource("dynamodb").Table("backupctl-test")


@pytest.fixture
def ddb(moto_table, monkeypatch):
    """The session's moto table, emptied, with the environment pointing the app at it (as
    created: with the mark that every job's slim freshness item exists, since none does)."""
    from chalicelib.edges import dynamo
    from chalicelib.edges.table import FRESH_READY

    for key, value in MOTO_ENV.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    dynamo._table.cache_clear()
    kwargs: dict = {"ProjectionExpression": "pk, sk"}
    with moto_table.batch_writer() as batch:
        while True:
            page = moto_table.scan(**kwargs)
            for item in page["Items"]:
                batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    moto_table.put_item(Item=FRESH_READY)
    yield moto_table
    dynamo._table.cache_clear()
    get_settings.cache_clear()


@pytest.fixture
def deps(settings, ddb):
    """The use cases' dependencies on the stand-ins and the moto table, with the real clock."""
    from chalicelib.deps import Deps

    return Deps(settings, table=ddb)


class OperationLog:
    """Every DynamoDB operation a client issues, by name (to prove no Scan ever runs)."""

    def __init__(self, table) -> None:
        self.names: list[str] = []
        table.meta.client.meta.events.register("before-call.dynamodb", self._seen)

    def _seen(self, model, **_kwargs) -> None:
        self.names.append(model.name)


@pytest.fixture
def app_operations(ddb):
    from chalicelib.edges import dynamo

    return OperationLog(dynamo.table_for(get_settings()))


class JsonLog(list):
    """The controller's log lines, each parsed back from the JSON the operator would see."""

    def events(self, name: str) -> list[dict]:
        return [line for line in self if line.get("event") == name]


@pytest.fixture
def logs():
    import json
    import logging

    from chalicelib.logs import LOGGER, JsonLines, setup

    lines = JsonLog()

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(self.format(record)))

    handler = Capture()
    handler.setFormatter(JsonLines())
    logger = setup()
    logger.addHandler(handler)
    yield lines
    logging.getLogger(LOGGER).removeHandler(handler)


@pytest.fixture
def dynamodb_down(env, monkeypatch):
    """The app's DynamoDB endpoint is a port nothing listens on (connections refused)."""
    import socket

    from chalicelib.edges import dynamo

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in {"DYNAMODB_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "x",
                       "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    dynamo._table.cache_clear()
    yield
    dynamo._table.cache_clear()
