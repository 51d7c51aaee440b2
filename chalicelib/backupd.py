"""Client for the backupd daemon on one node, and a concurrent fan-out over many nodes.

Only node IPs that lainlet named reach this module (the callers resolve them through
:class:`~chalicelib.cluster.Cluster`); every path piece is URL-encoded here, so a name can never
change which endpoint is called. Each request has its own connect/read timeout, so one dead node
costs at most ``NODE_TIMEOUT_SECONDS`` and never stalls an answer about the others.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from chalicelib.cluster import is_node_ip
from chalicelib.errors import ControllerError, UpstreamError, UpstreamTimeout
from chalicelib.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


class BackupdError(UpstreamError):
    """A daemon answered with an error status; the message carries the daemon's own words."""

    code = "backupd_error"

    def __init__(self, message: str, *, node: str, status: int | None = None) -> None:
        super().__init__(message)
        self.node = node
        self.upstream_status = status


class BackupdTimeout(UpstreamTimeout):
    code = "backupd_timeout"

    def __init__(self, message: str, *, node: str) -> None:
        super().__init__(message)
        self.node = node


HOST_POOLS = 2048  # keep a connection pool per node for a whole cluster, not just the last few
CONNECTIONS_PER_NODE = 4  # a fan-out talks to each node one request at a time


@lru_cache(maxsize=1)
def _session() -> requests.Session:
    """One pooled session per process: a node's follow-up requests (jobs, then notify) and the
    next warm invocation reuse its connection instead of connecting again.

    urllib3 retries only GETs and only when the connection itself failed, never a request the
    daemon may have acted on, and never a read timeout (that would double a dead node's cost).
    """
    session = requests.Session()
    # Node IPs are reached directly: no proxy from the environment may apply, and skipping the
    # per-request proxy/.netrc lookups is most of requests' overhead in a 500-node fan-out.
    session.trust_env = False
    retry = Retry(total=1, connect=1, read=False, status=0, other=0, allowed_methods={"GET"},
                  backoff_factor=0.05, raise_on_status=False)
    session.mount("http://", HTTPAdapter(pool_connections=HOST_POOLS,
                                         pool_maxsize=CONNECTIONS_PER_NODE, max_retries=retry))
    return session


def _p(piece: str | int) -> str:
    return quote(str(piece), safe="")


class BackupdClient:
    """The v1 API of the daemon on ``node`` (form-encoded bodies, JSON answers)."""

    def __init__(self, node: str, settings: Settings) -> None:
        if not is_node_ip(node):  # defence in depth: callers already resolved it through lainlet
            raise ValueError(f"not a node IP: {node!r}")
        self.node = node
        self.base = f"http://{node}:{settings.backupd_port}{settings.backupd_api_prefix}"
        self.timeout = (settings.node_timeout_seconds, settings.node_timeout_seconds)
        self.session = _session()

    def request(self, method: str, path: str, *, params: Any = None, data: Any = None) -> Any:
        """Call the daemon; its JSON answer, or a :class:`BackupdError` / :class:`BackupdTimeout`."""
        url = self.base + path
        try:
            resp = self.session.request(method, url, params=params, data=data, timeout=self.timeout)
        except requests.Timeout:
            raise BackupdTimeout(f"backupd on {self.node} did not answer within "
                                 f"{self.timeout[1]:g}s ({method} {path})", node=self.node) from None
        except requests.RequestException as e:
            raise BackupdError(f"backupd on {self.node} is unreachable ({type(e).__name__})",
                               node=self.node) from None
        body: Any = None
        if resp.content:
            try:
                body = resp.json()
            except ValueError:
                body = resp.text[:300]
        if resp.status_code >= 300:
            cause = body if isinstance(body, str) else json.dumps(body)
            raise BackupdError(f"backupd on {self.node} answered HTTP {resp.status_code}: {cause}",
                               node=self.node, status=resp.status_code)
        return body

    def _rid(self, method: str, path: str, data: Any = None) -> str:
        body = self.request(method, path, data=data)
        if not isinstance(body, dict) or not isinstance(body.get("rid"), str):
            raise BackupdError(f"backupd on {self.node} sent an unexpected answer to {path}: "
                               f"{json.dumps(body)[:200]}", node=self.node)
        return body["rid"]

    # -- cron --------------------------------------------------------------------------------
    def jobs(self, query: dict[str, str] | None = None) -> list[dict[str, Any]]:
        return self.request("GET", "/cron/jobs", params=query) or []

    def job(self, job_id: str) -> dict[str, Any]:
        return self.request("GET", f"/cron/jobs/{_p(job_id)}")

    def set_jobs(self, jobs: list[dict[str, Any]], version: str) -> None:
        self.request("PUT", "/cron/jobs", data={"data": json.dumps(jobs), "version": version})

    def run_once(self, job_id: str) -> str:
        return self._rid("POST", f"/cron/once/{_p(job_id)}")

    def run(self, job_id: str) -> str:
        """Run a cron job now (``actions/run``); the record id of that run."""
        return self._rid("POST", f"/cron/jobs/{_p(job_id)}/actions/run")

    def job_action(self, job_id: str, action: str) -> Any:
        return self.request("POST", f"/cron/jobs/{_p(job_id)}/actions/{_p(action)}")

    def crond(self, action: str) -> None:
        self.request("PUT", f"/cron/{_p(action)}")

    # -- backups -----------------------------------------------------------------------------
    def backups(self, dirs: Iterable[str]) -> list[dict[str, Any]]:
        return self.request("GET", "/backup/json", params=[("dir", d) for d in dirs]) or []

    def backup_info(self, name: str) -> dict[str, Any]:
        return self.request("GET", f"/backup/info/file/{_p(name)}")

    def file_list(self, name: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/backup/filelist/dir/{_p(name)}") or []

    def delete(self, files: list[str]) -> None:
        self.request("POST", "/backup/delete", data=[("files", f) for f in files])

    def recover_full(self, name: str, form: list[tuple[str, str]]) -> str:
        return self._rid("POST", f"/backup/full/recover/file/{_p(name)}", form)

    def recover_increment(self, name: str, form: list[tuple[str, str]]) -> str:
        return self._rid("POST", f"/backup/increment/recover/dir/{_p(name)}", form)

    # -- daemon ------------------------------------------------------------------------------
    def set_notify(self, addr: str) -> None:
        self.request("PUT", "/notify", data={"addr": addr})

    def notify_addrs(self) -> list[str]:
        body = self.request("GET", "/notify")
        return list(body.get("addr") or []) if isinstance(body, dict) else []

    def remove_notify(self, addr: str) -> None:
        self.request("POST", "/notify/actions/remove", data={"addr": addr})

    def debug(self) -> dict[str, Any]:
        return self.request("GET", "/debug")


@dataclass
class FanOut(Generic[T]):
    """Per-node results and per-node errors of one fan-out, in the order the nodes were given."""

    results: dict[str, T] = field(default_factory=dict)
    errors: dict[str, ControllerError] = field(default_factory=dict)

    @property
    def unreachable(self) -> list[str]:
        return list(self.errors)


def fan_out(nodes: Iterable[str], call: Callable[[BackupdClient], T], settings: Settings) -> FanOut[T]:
    """Run ``call`` against every node concurrently (at most ``FANOUT_WORKERS`` at once)."""
    nodes = list(dict.fromkeys(nodes))
    out: FanOut[T] = FanOut()
    if not nodes:
        return out

    def one(node: str) -> tuple[str, T | None, ControllerError | None]:
        try:
            return node, call(BackupdClient(node, settings)), None
        except ControllerError as e:
            return node, None, e

    workers = min(settings.fanout_workers, len(nodes))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fanout") as pool:
        for node, result, error in pool.map(one, nodes):
            if error is None:
                out.results[node] = result  # type: ignore[assignment]
            else:
                out.errors[node] = error
    silent = [n for n, e in out.errors.items() if getattr(e, "upstream_status", None) is None]
    if silent:  # an error *answer* (e.g. "no such backup") is routine; no answer at all is news
        log.warning("event=nodes_unreachable nodes=%d unreachable=%s reasons=%r", len(nodes),
                    ",".join(silent), [out.errors[n].code for n in silent])
    return out
