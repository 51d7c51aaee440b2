"""Client for lainlet's ``/v2/backupspec`` (watch=0): one fetch per request or reconcile run.

Every failure becomes a :class:`LainletError` (502) or :class:`LainletTimeout` (504) that names
lainlet, so a user sees "lainlet at ... timed out", never a traceback, and the reconcile can tell
"lainlet failed" (change nothing) from "lainlet says this" (act on it).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from logging import WARNING
from typing import Any, NoReturn
from urllib.parse import urlencode

import urllib3

from chalicelib.core.cluster import Cluster
from chalicelib.errors import LainletError, LainletTimeout
from chalicelib.logs import event, log
from chalicelib.settings import Settings

REFUSED = ("; lainlet answers /v2/backupspec only to its own node and to containers of a "
           "\"super\" app: reach it through a relay app listed under /lain/config/super_apps "
           "(docs/operating.md: lainlet access)")
MAX_ANSWER = 256 * 1024 * 1024  # 20x the largest cluster benchmarked (40,500 jobs: ~12 MB)


@lru_cache(maxsize=1)
def _connections() -> urllib3.PoolManager:
    """One pool per process (made on first use, not at import), so warm Lambdas reuse sockets.
    urllib3, requests' own transport, directly: a listing route then never imports requests."""
    return urllib3.PoolManager(num_pools=4, retries=False)


# The last whole cluster built in this process, by (lainlet URL, spread): lainlet's answer's
# digest and the cluster built from it. A warm process whose answer did not change since skips
# the parse and the build (and keeps the placements and jobs worked out on that cluster): at
# 2,000 nodes ~3 s CPU a run. Readers never change a cluster (its jobs are shared already).
_BUILT: dict[tuple[str, bool], tuple[bytes, Cluster]] = {}


def fetch_backupspec(settings: Settings, appname: str | None = None) -> dict[str, Any]:
    """The raw backupspec JSON object, for the whole cluster or one app."""
    return _parsed(settings, _answer(settings, appname))


def _answer(settings: Settings, appname: str | None) -> bytes:
    """lainlet's answer's body, once it is known to be one (HTTP 200, within bounds)."""
    url = f"{settings.lainlet_url}/v2/backupspec"
    params = {"watch": "0"}
    if appname is not None:
        params["appname"] = appname
    try:
        resp = _connections().request("GET", f"{url}?{urlencode(params)}", preload_content=False,
                                      timeout=settings.lainlet_timeout_seconds)
        try:
            content = _bounded(resp, settings)
        except LainletError:
            resp.close()  # the unread rest must never be taken for the next request's answer
            raise
        finally:
            resp.release_conn()
    except urllib3.exceptions.TimeoutError as e:
        if isinstance(e, urllib3.exceptions.NewConnectionError):  # refused: urllib3 files it
            _unreachable(settings, url, e)                         # under TimeoutError
        event(log, "lainlet_timeout", level=WARNING, url=url, timeout=settings.lainlet_timeout_seconds)
        raise LainletTimeout(f"lainlet at {settings.lainlet_url} did not answer within "
                             f"{settings.lainlet_timeout_seconds:g}s") from None
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as e:  # ValueError: a bad URL
        _unreachable(settings, url, e)
    if resp.status != 200:
        text = content[:500].decode("utf-8", "replace")
        event(log, "lainlet_error", level=WARNING, url=url, status=resp.status)
        refused = resp.status in (401, 403) or "authorize" in text.lower()
        raise LainletError(
            f"lainlet at {settings.lainlet_url} answered HTTP {resp.status}: "
            f"{text[:200]!r}" + (REFUSED if refused else ""),
            code="lainlet_refused" if refused else None)
    return content


def _parsed(settings: Settings, content: bytes) -> dict[str, Any]:
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to be a backupspec
        raise LainletError(f"lainlet at {settings.lainlet_url} sent a backupspec that is not "
                           "JSON") from None
    if not isinstance(data, dict):
        raise LainletError(f"lainlet at {settings.lainlet_url} sent a backupspec that is not a "
                           "JSON object")
    return data


def _unreachable(settings: Settings, url: str, error: Exception) -> NoReturn:
    event(log, "lainlet_unreachable", level=WARNING, url=url, error=type(error).__name__)
    raise LainletError(f"lainlet at {settings.lainlet_url} is unreachable: "
                       f"{type(error).__name__}") from None


def _bounded(resp: urllib3.BaseHTTPResponse, settings: Settings) -> bytes:
    """The answer's body, refusing to read more than ``MAX_ANSWER`` bytes of it."""
    chunks, read = [], 0
    for chunk in resp.stream(1024 * 1024):
        read += len(chunk)
        if read > MAX_ANSWER:
            raise LainletError(f"lainlet at {settings.lainlet_url} sent more than "
                               f"{MAX_ANSWER:,} bytes; a backupspec that large is refused")
        chunks.append(chunk)
    return b"".join(chunks)


def fetch_cluster(settings: Settings, appname: str | None = None) -> Cluster:
    """The cluster (or one app of it) as lainlet sees it now; the whole cluster is the one this
    process built last when lainlet's answer is the same, byte for byte."""
    if appname is None:
        return _whole(settings)
    cluster = Cluster.from_backupspec(fetch_backupspec(settings, appname),
                                      spread_seconds=settings.spread_seconds)
    # lainlet filters by prefix; keep only this app so no other app's proc can be addressed.
    cluster.procs = {k: p for k, p in cluster.procs.items() if p.app == appname}
    cluster.problems = [p for p in cluster.problems if p.app == appname]
    return cluster


def _whole(settings: Settings) -> Cluster:
    content = _answer(settings, None)
    digest = hashlib.blake2b(content, digest_size=16).digest()
    key = (settings.lainlet_url, settings.spread_seconds)
    built = _BUILT.get(key)
    if built is not None and built[0] == digest:
        return built[1]
    _BUILT.clear()  # the old cluster is let go before the new one is built: one alive at a time
    cluster = Cluster.from_backupspec(_parsed(settings, content),
                                      spread_seconds=settings.spread_seconds)
    _BUILT[key] = (digest, cluster)
    return cluster
