"""Where volumes live on a node and how the daemons name their backups (compatibility facts). Pure.

Volume dir = ``/data/lain/volumes/<app>/<fullproc>/<instanceNo>/<volume>``, path-joined the way
Go's ``path.Join`` joins (the volume's leading slash collapses); archive name = the same four
parts joined without the root, every ``/`` turned into ``-``.
"""

from __future__ import annotations

import posixpath

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
    return go_path_join(VOLUME_ROOT, app, proc, str(instance), volume)


def archive_name(app: str, proc: str, instance: int, volume: str) -> str:
    """The daemon's backup name stem: ``hello-hello.web.web-1-var-log-hello``."""
    return go_path_join(app, proc, str(instance), volume).replace("/", "-")


def archive_prefix(app: str, proc: str) -> str:
    """Every backup file or dir of ``proc`` starts with this."""
    return f"{app}-{proc}-"


def proc_root(app: str, proc: str) -> str:
    """The dir every volume of ``proc`` lives under (with a trailing slash)."""
    return posixpath.join(VOLUME_ROOT, app, proc) + "/"
