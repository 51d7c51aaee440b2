"""Shared fixtures: stand-ins on loopback, settings pointing at them, and the API client."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

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
        BackupdClient(node, settings).set_jobs(node_jobs, jobs.list_version(node_jobs))
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


@pytest.fixture
def ddb(monkeypatch):
    """A moto DynamoDB with the controller's table; the app's cached table handle is reset."""
    import boto3
    from moto import mock_aws

    from chalicelib.edges import dynamo, schema

    for key, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "TABLE_NAME": "backupctl-test",
                       "DYNAMODB_ENDPOINT_URL": ""}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    dynamo._table.cache_clear()
    with mock_aws():
        schema.create_table(boto3.client("dynamodb"), "backupctl-test")
        yield boto3.resource("dynamodb").Table("backupctl-test")
    dynamo._table.cache_clear()
    get_settings.cache_clear()


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


@pytest.fixture
def logs(caplog):
    """Log lines of the controller's logger ("backupctl"), whatever its own handlers are."""
    import logging

    logger = logging.getLogger("backupctl")
    level = logger.level
    logger.addHandler(caplog.handler)
    logger.setLevel(logging.INFO)
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(level)
