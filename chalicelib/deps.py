"""What a use case needs, built once per process: settings, a clock, lainlet, the daemons, stores.

Use cases take a :class:`Deps` instead of reaching for module globals, so a test can hand them a
fixed clock or its own table, and production builds everything lazily: a route that never asks
for DynamoDB never imports boto3, one that never asks a daemon never imports requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from chalicelib.settings import Settings, get_settings

if TYPE_CHECKING:
    from chalicelib.core.cluster import Cluster
    from chalicelib.edges.audit import AuditStore
    from chalicelib.edges.backupd import BackupdClient, FanOut
    from chalicelib.edges.metrics import Metrics
    from chalicelib.edges.operations import OperationStore
    from chalicelib.edges.records import RecordStore
    from chalicelib.edges.secrets import Secrets
    from chalicelib.edges.state import NodeStateStore


def utc_now() -> datetime:
    return datetime.now(UTC)


class Deps:
    """Dependencies of the use cases; the I/O ones are made on first use."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utc_now,
                 table: Any = None) -> None:
        self.settings = settings
        self.clock = clock
        self._table = table

    def cluster(self, app: str | None = None) -> Cluster:
        """The cluster (or one app of it) as lainlet sees it now."""
        from chalicelib.edges.lainlet import fetch_cluster

        return fetch_cluster(self.settings, app)

    def daemon(self, node: str) -> BackupdClient:
        from chalicelib.edges.backupd import BackupdClient

        return BackupdClient(node, self.settings)

    def fan_out[T](self, nodes: Iterable[str], call: Callable[[BackupdClient], T]) -> FanOut[T]:
        """``call`` on every node's daemon concurrently; per-node results and errors."""
        from chalicelib.edges.backupd import fan_out

        return fan_out(nodes, call, self.settings)

    @cached_property
    def table(self) -> Any:
        if self._table is not None:
            return self._table
        from chalicelib.edges.dynamo import table_for

        return table_for(self.settings)

    @cached_property
    def records(self) -> RecordStore:
        from chalicelib.edges.records import RecordStore

        return RecordStore(self.table, self.settings.record_retention_days)

    @cached_property
    def operations(self) -> OperationStore:
        from chalicelib.edges.operations import OperationStore

        return OperationStore(self.table, self.settings.undo_days)

    @cached_property
    def audit(self) -> AuditStore:
        from chalicelib.edges.audit import AuditStore

        return AuditStore(self.table, self.settings.audit_retention_days)

    @cached_property
    def secrets(self) -> Secrets:
        from chalicelib.edges.secrets import Secrets

        return Secrets(self.settings, self.clock)

    @cached_property
    def metrics(self) -> Metrics:
        from chalicelib.edges.metrics import Metrics

        return Metrics(self.settings.metrics_namespace, self.clock)

    @cached_property
    def state(self) -> NodeStateStore:
        from chalicelib.edges.state import NodeStateStore

        return NodeStateStore(self.table)


@lru_cache(maxsize=4)
def _deps_for(settings: Settings) -> Deps:
    return Deps(settings)


def get_deps() -> Deps:
    """This process's dependencies (rebuilt only if the settings were re-read, as tests do)."""
    return _deps_for(get_settings())
