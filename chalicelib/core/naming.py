"""Every rule that decides whether a name from outside may reach a daemon. Pure.

A path piece of a URL (app, proc, backup name, job id, rid), a volume, a file inside a backup, a
node address, a proc name in lainlet's answer, the owner of a backup and of a record: each has one
rule here, so "may this reach a daemon, and is it this app's" has one answer everywhere.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Any

from chalicelib.core.formats.inputs import preview
from chalicelib.core.paths import archive_prefix, proc_root
from chalicelib.errors import BadRequest, Forbidden

_PIECE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_PROC_PART = re.compile(r"^[A-Za-z0-9_-]{1,100}$")  # one dot-free part of app.type.proc
MAX_VOLUME = 256


def check_name(value: str, what: str) -> str:
    """A single path piece (app, proc, backup name, job id): no ``/``, no ``..``, no oddities."""
    if not _PIECE.fullmatch(value or "") or ".." in value:
        raise BadRequest(f"{what} {preview(value)} is not a valid name",
                         code=f"bad_{what.replace(' ', '_')}")
    return value


def is_app_name(app: str) -> bool:
    return bool(_PROC_PART.fullmatch(app))


def is_proc_name(key: str) -> bool:
    """A full proc name from lainlet, ``app.type.proc``, that cannot reach another app's dirs."""
    parts = key.split(".")
    return len(parts) == 3 and all(_PROC_PART.fullmatch(p) for p in parts)


def is_volume_path(volume: str) -> bool:
    """A volume path that stays inside its instance's dir once path-joined (no ``..``, not root)."""
    return bool(volume) and len(volume) <= MAX_VOLUME and volume.strip("/") != "" \
        and ".." not in volume.split("/") and "\x00" not in volume


def check_volume(volume: str) -> str:
    if not is_volume_path(volume):
        raise BadRequest(f"volume {preview(volume)} is not a volume path such as /data",
                         code="bad_volume")
    return volume


def check_files(files: list[str]) -> list[str]:
    """Paths inside a backup: relative, no ``..``, no NUL."""
    for f in files:
        if f.startswith("/") or ".." in f.split("/") or "\x00" in f:
            raise BadRequest(f"file {preview(f)} must be a path inside the backup, without '..'",
                             code="bad_file")
    return files


@lru_cache(maxsize=65536)
def is_node_ip(text: str) -> bool:
    """A dotted IPv4 address, the only kind of node address the controller will ever contact.
    Cached: a cluster has a few hundred nodes and every pod, job and request asks again."""
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def owned_backup(app: str, proc: str, name: str) -> str:
    """``name`` if it is named like a backup (file or increment dir) of ``proc``, else 403."""
    check_name(name, "backup name")
    prefix = archive_prefix(app, proc)
    if not re.fullmatch(re.escape(prefix) + r"[0-9]+-.+", name):
        raise Forbidden(f"backup {name!r} does not belong to {proc} of app {app} "
                        f"(its backups are named {prefix}<instance>-…)", code="not_your_backup")
    return name


def made_from(app: str, proc: str, entity: Any) -> bool:
    """Whether a daemon's backup entity was made from one of ``proc``'s volumes. A name only
    *looks* like the proc's (``hello.web.web-2`` shares ``hello.web.web``'s prefix): the entity's
    source dir is what the daemon archived."""
    return isinstance(entity, dict) and str(entity.get("source", "")).startswith(proc_root(app, proc))
