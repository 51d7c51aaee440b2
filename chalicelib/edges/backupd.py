"""Client for the backupd daemon on one node, and a concurrent fan-out over many nodes.

Only node IPs that lainlet named reach this module (the callers resolve them through
:class:`~chalicelib.core.cluster.Cluster`); every path piece is URL-encoded here, so a name can never
change which endpoint is called. Each request has its own connect/read timeout, so one dead node
costs at most ``NODE_TIMEOUT_SECONDS`` and never stalls an answer about the others.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from logging import WARNING
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import urllib3
from urllib3.util.retry import Retry

from chalicelib.core.formats.inputs import preview
from chalicelib.core.gotime import parse_go_time
from chalicelib.core.naming import is_node_ip
from chalicelib.core.types import Job
from chalicelib.errors import ControllerError, UpstreamError, UpstreamTimeout
from chalicelib.logs import event, log
from chalicelib.settings import Settings

T = TypeVar("T")


class BackupdError(UpstreamError):
    """A daemon answered with an error status (``upstream_status``), or could not be asked; the
    message carries the daemon's own words. ``may_have_acted``: the request may have reached the
    daemon and been carried out without the controller hearing so (a connection dropped after
    the request went out); an error *answer*, or a connection never made, means it was not."""

    code = "backupd_error"

    def __init__(self, message: str, *, node: str, status: int | None = None,
                 may_have_acted: bool = False) -> None:
        super().__init__(message)
        self.node = node
        self.upstream_status = status
        self.may_have_acted = may_have_acted


class BackupdGarbage(BackupdError):
    """A daemon answered, but not with what its API promises; nothing of it is passed on."""

    code = "backupd_garbage"


class BackupdTimeout(UpstreamTimeout):
    """The daemon did not answer in time. Unless the connection itself timed out, the request
    went out: the daemon may carry it out later (``may_have_acted``)."""

    code = "backupd_timeout"

    def __init__(self, message: str, *, node: str, may_have_acted: bool = True) -> None:
        super().__init__(message)
        self.node = node
        self.may_have_acted = may_have_acted


def may_have_acted(error: ControllerError) -> bool:
    """Whether a failed daemon request may still have been carried out: a timeout or a dropped
    connection after the request went out. Such an outcome is unknown, not a failure: an action
    must not be retried blindly, nor rolled back as if nothing happened."""
    return bool(getattr(error, "may_have_acted", False))


MAX_ANSWER = 32 * 1024 * 1024  # a daemon's largest real answer (a backup list) is far smaller
_RID = re.compile(r"^[A-Za-z0-9]{1,64}$")
HOST_POOLS = 2048  # keep a connection pool per node for a whole cluster, not just the last few
CONNECTIONS_PER_NODE = 4  # a fan-out talks to each node one request at a time


_RETRY = Retry(total=1, connect=1, read=False, status=0, other=0, redirect=False,
               allowed_methods={"GET"}, backoff_factor=0.05, raise_on_status=False)


@lru_cache(maxsize=HOST_POOLS)
def _connections(node: str, port: int) -> urllib3.HTTPConnectionPool:
    """One connection pool per node for the whole process: a node's follow-up requests (jobs,
    then notify) and the next warm invocation reuse its connection instead of connecting again.

    urllib3 (requests' own transport) is called directly, on the node's pool (no URL routing
    per request): 0.31 ms of CPU per daemon request instead of requests' 0.50 (measured, a
    10-dir listing), most of what a fan-out adds over one node. Node IPs are reached directly:
    no proxy from the environment applies. Only GETs are retried, and only when the connection
    itself failed, never a request the daemon may have acted on, and never a read timeout (that
    would double a dead node's cost); a redirect is answered as the error it is, never followed.
    """
    return urllib3.HTTPConnectionPool(node, port, maxsize=CONNECTIONS_PER_NODE, block=False,
                                      retries=_RETRY)


def dirs_query(dirs: Iterable[str]) -> str:
    """``dir=<d>&dir=<d>…``, the daemon's backup listing query."""
    return urlencode([("dir", d) for d in dirs])


def _p(piece: str | int) -> str:
    return quote(str(piece), safe="")


class BackupdClient:
    """The v1 API of the daemon on ``node`` (form-encoded bodies, JSON answers)."""

    def __init__(self, node: str, settings: Settings) -> None:
        if not is_node_ip(node):  # defence in depth: callers already resolved it through lainlet
            raise ValueError(f"not a node IP: {node!r}")
        self.node = node
        self.port, self.prefix = settings.backupd_port, settings.backupd_api_prefix
        self.timeout = (settings.node_timeout_seconds, settings.node_timeout_seconds)

    def request(self, method: str, path: str, *, params: Any = None, data: Any = None,
                timeout: float | None = None) -> Any:
        """Call the daemon; its JSON answer, or a :class:`BackupdError` / :class:`BackupdTimeout`.

        ``params`` (a mapping, pairs or an encoded string) go in the query, ``data`` form-encoded
        in the body."""
        target = self.prefix + path
        if params:
            target += "?" + (params if isinstance(params, str) else urlencode(params))
        limit = (self.timeout[0], timeout) if timeout else self.timeout
        body_bytes = urlencode(data).encode() if data is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body_bytes else None
        try:
            resp = _connections(self.node, self.port).urlopen(
                method, target, body=body_bytes, headers=headers, preload_content=False,
                timeout=urllib3.Timeout(connect=limit[0], read=limit[1]))
            try:
                content = b"".join(_chunks(resp, self.node))
            except BackupdGarbage:
                resp.close()  # the unread rest must never be taken for the next request's answer
                raise
            finally:
                resp.release_conn()
        except (urllib3.exceptions.HTTPError, OSError) as e:
            cause = getattr(e, "reason", None) or e  # a retried connect failure wraps its cause
            connected = not isinstance(cause, urllib3.exceptions.ConnectTimeoutError)
            if isinstance(cause, urllib3.exceptions.TimeoutError) and not isinstance(
                    cause, urllib3.exceptions.NewConnectionError):  # refused is no timeout
                raise BackupdTimeout(f"backupd on {self.node} did not answer within "
                                     f"{limit[1]:g}s ({method} {path})", node=self.node,
                                     may_have_acted=connected) from None
            raise BackupdError(f"backupd on {self.node} is unreachable ({type(cause).__name__})",
                               node=self.node, may_have_acted=connected and method != "GET") from None
        body: Any = None
        if content:
            try:
                body = json.loads(content)
            except (ValueError, RecursionError):
                body = content[:300].decode("utf-8", "replace")
        if resp.status >= 300:
            cause = body if isinstance(body, str) else json.dumps(body)[:300]
            raise BackupdError(f"backupd on {self.node} answered HTTP {resp.status}: {cause}",
                               node=self.node, status=resp.status)
        return body

    def _expect(self, body: Any, ok: bool, what: str) -> Any:
        """``body`` if ``ok``, else a 502 naming the node and what it sent instead of ``what``."""
        if not ok:
            raise BackupdGarbage(f"backupd on {self.node} sent {preview(body, 60)} where {what} "
                                 "was expected", node=self.node, status=200)
        return body

    def _rid(self, method: str, path: str, data: Any = None) -> str:
        body = self.request(method, path, data=data)
        ok = isinstance(body, dict) and isinstance(body.get("rid"), str) and _RID.fullmatch(body["rid"])
        return self._expect(body, bool(ok), "a record id")["rid"]

    # -- cron --------------------------------------------------------------------------------
    def jobs(self, query: dict[str, str] | None = None) -> list[dict[str, Any]]:
        body = _listed(self.request("GET", "/cron/jobs", params=query))
        ok = isinstance(body, list) and all(
            isinstance(e, dict) and is_job(e.get("job")) and isinstance(e.get("next", ""), str)
            and isinstance(e.get("prev", ""), str) for e in body)
        return self._expect(body, ok, "a list of cron entries")

    def job(self, job_id: str) -> dict[str, Any]:
        body = self.request("GET", f"/cron/jobs/{_p(job_id)}")
        return self._expect(body, is_job(body), "a job")

    def set_jobs(self, jobs: Sequence[Job], version: str, timeout: float | None = None) -> None:
        self.request("PUT", "/cron/jobs", data={"data": json.dumps(jobs), "version": version},
                     timeout=timeout)

    def run_once(self, job_id: str) -> str:
        return self._rid("POST", f"/cron/once/{_p(job_id)}")

    def run(self, job_id: str) -> str:
        """Run a cron job now (``actions/run``); the record id of that run."""
        return self._rid("POST", f"/cron/jobs/{_p(job_id)}/actions/run")

    def job_action(self, job_id: str, action: str) -> None:
        self.request("POST", f"/cron/jobs/{_p(job_id)}/actions/{_p(action)}")

    def crond(self, action: str) -> None:
        self.request("PUT", f"/cron/{_p(action)}")

    # -- backups -----------------------------------------------------------------------------
    def backups(self, dirs: Iterable[str] | str) -> list[dict[str, Any]]:
        """Backups of ``dirs`` (or of a query already encoded by :func:`dirs_query`, which a
        fan-out encodes once for every node)."""
        query = dirs if isinstance(dirs, str) else dirs_query(dirs)
        body = _listed(self.request("GET", "/backup/json", params=query))
        ok = isinstance(body, list) and all(is_entity(e) for e in body)
        return self._expect(body, ok, "a list of backups")

    def backup_info(self, name: str) -> dict[str, Any]:
        body = self.request("GET", f"/backup/info/file/{_p(name)}")
        return self._expect(body, is_entity(body), "a backup")

    def file_list(self, name: str) -> list[dict[str, Any]]:
        body = _listed(self.request("GET", f"/backup/filelist/dir/{_p(name)}"))
        ok = isinstance(body, list) and all(is_file_info(f) for f in body)
        return self._expect(body, ok, "a list of files")

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
        addrs = body.get("addr") if isinstance(body, dict) else None
        ok = addrs is None or (isinstance(addrs, list) and all(isinstance(a, str) for a in addrs))
        return list(self._expect(addrs, isinstance(body, dict) and ok, "notify addresses") or [])

    def remove_notify(self, addr: str) -> None:
        self.request("POST", "/notify/actions/remove", data={"addr": addr})

    def debug(self) -> dict[str, Any]:
        """The daemon's debug object, its known fields only, each checked (the original passed
        the map on as it came; a user would then see whatever a broken daemon sends)."""
        body = self.request("GET", "/debug")
        ok = isinstance(body, dict) and all(k in body for k in _DEBUG_REQUIRED) and all(
            check(body[k]) for k, check in _DEBUG_FIELDS.items() if k in body)
        return {k: v for k, v in self._expect(body, ok, "the daemon's debug object").items()
                if k in _DEBUG_FIELDS}


def _listed(body: Any) -> Any:
    """A list answer: Go writes an empty list as ``null`` (or nothing); anything else is checked
    as it came (``{}`` is no list)."""
    return [] if body is None else body


def _chunks(resp: urllib3.BaseHTTPResponse, node: str) -> Iterator[bytes]:
    """The answer's body, refusing to read more than ``MAX_ANSWER`` bytes of it."""
    read = 0
    for chunk in resp.stream(64 * 1024):
        read += len(chunk)
        if read > MAX_ANSWER:
            raise BackupdGarbage(f"backupd on {node} sent more than {MAX_ANSWER:,} bytes",
                                 node=node, status=resp.status)
        yield chunk


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_go_time(value: Any) -> bool:
    try:
        parse_go_time(value)
    except ValueError:
        return False
    return True


# the daemon's /debug: what the reconcile reads (crond_status, updateTime) must be there
_DEBUG_REQUIRED = ("crond_status", "updateTime")
_DEBUG_FIELDS: dict[str, Callable[[Any], bool]] = {
    "crond_status": lambda v: isinstance(v, str) and len(v) <= 64,
    "goroutines": _is_int, "running_tasks": _is_int,
    "startTime": _is_go_time, "updateTime": _is_go_time,
    "mem_stats": lambda v: isinstance(v, (dict, str)),  # Go's runtime.MemStats (or a summary)
}


def is_job(job: Any) -> bool:
    """The daemon's ``Job``: id, spec, action strings, an args object."""
    return (isinstance(job, dict) and all(isinstance(job.get(k), str) for k in ("id", "spec", "action"))
            and isinstance(job.get("args"), dict) and isinstance(job.get("sleep", False), bool))


def is_entity(entity: Any) -> bool:
    """The daemon's backup ``Entity`` (the fields the controller reads or passes on)."""
    return (isinstance(entity, dict)
            and all(isinstance(entity.get(k), str) for k in ("name", "source", "volume", "created"))
            and _is_int(entity.get("size")) and _is_int(entity.get("instanceNo"))
            and isinstance(entity.get("mode", ""), str))


def is_file_info(info: Any) -> bool:
    """One entry of ``/backup/filelist``: name, size, mod_time, dir."""
    return (isinstance(info, dict) and isinstance(info.get("name"), str) and _is_int(info.get("size"))
            and isinstance(info.get("mod_time"), str) and isinstance(info.get("dir"), bool))


@dataclass
class FanOut[T]:
    """Per-node results and per-node errors of one fan-out, in the order the nodes were given."""

    results: dict[str, T] = field(default_factory=dict)
    errors: dict[str, ControllerError] = field(default_factory=dict)

    @property
    def unreachable(self) -> list[str]:
        return list(self.errors)


def fan_out[T](nodes: Iterable[str], call: Callable[[BackupdClient], T], settings: Settings) -> FanOut[T]:
    """Run ``call`` against every node concurrently (at most ``FANOUT_WORKERS`` at once).

    The threads are the process's (:func:`_pool`), kept across warm invocations; one node is
    asked from the calling thread, and so is every node of a fan-out started inside a fan-out
    (its workers must never wait for their own pool)."""
    nodes = list(dict.fromkeys(nodes))
    out: FanOut[T] = FanOut()
    if not nodes:
        return out

    def one(node: str) -> tuple[str, T | None, ControllerError | None]:
        try:
            return node, call(BackupdClient(node, settings)), None
        except ControllerError as e:
            return node, None, e

    inline = len(nodes) == 1 or threading.current_thread().name.startswith(POOL_NAME)
    answers = map(one, nodes) if inline else _pool(settings.fanout_workers).map(one, nodes)
    for node, result, error in answers:
        if error is None:
            out.results[node] = result  # type: ignore[assignment]
        else:
            out.errors[node] = error
    silent = [n for n, e in out.errors.items() if getattr(e, "upstream_status", None) is None]
    if silent:  # an error *answer* (e.g. "no such backup") is routine; no answer at all is news
        event(log, "nodes_unreachable", level=WARNING, nodes=len(nodes), unreachable=silent,
              reasons=[out.errors[n].code for n in silent])
    return out


POOL_NAME = "fanout"


@lru_cache(maxsize=4)
def _pool(workers: int) -> ThreadPoolExecutor:
    """The process's fan-out threads (started as needed, up to ``workers``), kept for the next
    warm invocation instead of being started and joined by every fan-out."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix=POOL_NAME)
