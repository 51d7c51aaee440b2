"""Where volumes live on a node and how the daemons name their backups (compatibility facts). Pure.

Volume dir = ``/data/lain/volumes/<app>/<fullproc>/<instanceNo>/<volume>``, path-joined the way
Go's ``path.Join`` joins (the volume's leading slash collapses); archive name = the same four
parts joined without the root, every ``/`` turned into ``-``.
"""

from __future__ import annotations

import posixpath
from functools import lru_cache

VOLUME_ROOT = "/data/lain/volumes"


def go_path_join(*parts: str) -> str:
    """Go's ``path.Join``: join the non-empty parts with ``/`` and clean the result."""
    joined = "/".join(p for p in parts if p)
    if not joined:
        return ""
    cleaned = posixpath.normpath(joined)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def volume_dir(app: str, proc: str, instance: int, volume: str) -> str:
    """Where a pod's volume lives on its node: ``/data/lain/volumes/<app>/<proc>/<n>/<volume>``."""
    return dir_and_archive(app, proc, instance, volume)[0]


def archive_name(app: str, proc: str, instance: int, volume: str) -> str:
    """The daemon's backup name stem: ``hello-hello.web.web-1-var-log-hello``."""
    return dir_and_archive(app, proc, instance, volume)[1]


def dir_and_archive(app: str, proc: str, instance: int, volume: str) -> tuple[str, str]:
    """:func:`volume_dir` and :func:`archive_name` at once: this runs for every placement of a
    cluster. With plain segments (no "/", not "." or "..", not empty) and a volume without "..",
    Go's path.Join is the segments, "/", and the volume cleaned once (cached); anything else takes
    :func:`go_path_join` itself."""
    tail = _tail(volume)
    if tail is None or not (_plain(app) and _plain(proc)):
        return (go_path_join(VOLUME_ROOT, app, proc, str(instance), volume),
                go_path_join(app, proc, str(instance), volume).replace("/", "-"))
    if not tail:
        return f"{VOLUME_ROOT}/{app}/{proc}/{instance}", f"{app}-{proc}-{instance}"
    return (f"{VOLUME_ROOT}/{app}/{proc}/{instance}/{tail}",
            f"{app}-{proc}-{instance}-{tail.replace('/', '-')}")


def _plain(segment: str) -> bool:
    return bool(segment) and "/" not in segment and segment not in (".", "..")


@lru_cache(maxsize=4096)
def _tail(volume: str) -> str | None:
    """``volume`` cleaned, without leading slashes ("" for none), or None if it holds ``..``."""
    if ".." in volume.split("/"):
        return None
    return posixpath.normpath("/" + volume).lstrip("/") if volume.strip("/") else ""


def archive_prefix(app: str, proc: str) -> str:
    """Every backup file or dir of ``proc`` starts with this."""
    return f"{app}-{proc}-"


def proc_root(app: str, proc: str) -> str:
    """The dir every volume of ``proc`` lives under (with a trailing slash)."""
    return posixpath.join(VOLUME_ROOT, app, proc) + "/"
