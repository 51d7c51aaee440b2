"""Shared fixtures: stand-ins on loopback and settings pointing at them."""

from __future__ import annotations

import dataclasses

import pytest

from chalicelib.settings import Settings
from scripts.simcluster.lainlet import LainletStandIn
from tests import reference


@pytest.fixture
def lainlet():
    standin = LainletStandIn(reference.backupspec()).start()
    yield standin
    standin.stop()


@pytest.fixture
def settings(lainlet) -> Settings:
    return dataclasses.replace(Settings(), lainlet_url=lainlet.url, lainlet_timeout_seconds=1.0,
                               node_timeout_seconds=1.0)
