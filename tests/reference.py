"""The payloads captured from the original system (copied from ``../shared/reference`` into
``tests/fixtures/``, so a plain clone runs its own suite)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "fixtures"
BACKUPSPEC = REFERENCE / "lainlet-backupspec-sample.json"


def backupspec() -> dict[str, Any]:
    return json.loads(BACKUPSPEC.read_text())


def backupd_sample(request_line: str) -> tuple[int, Any]:
    """Status and JSON body of the sample whose heading starts with ``### <request_line>``."""
    text = (REFERENCE / "backupd-v1-samples.txt").read_text()
    for block in text.split("### ")[1:]:
        head, _, body = block.partition("\n")
        if head.split(" -> ")[0].strip() == request_line:
            found = re.search(r"HTTP (\d+)", head)
            if found is None:
                raise ValueError(f"sample {head!r} names no HTTP status")
            status = int(found.group(1))
            body = body.strip()
            return status, json.loads(body) if body else None
    raise KeyError(request_line)


def notify_samples() -> list[tuple[str, dict[str, Any]]]:
    """(path with query, record) of every captured notify post, in arrival order."""
    lines = (REFERENCE / "notify-samples.txt").read_text().splitlines()
    return [(lines[i].split()[0], json.loads(lines[i + 1])) for i in range(0, len(lines) - 1, 2)]


def job(job_id: str) -> dict[str, Any]:
    """A job exactly as the reference daemon holds it (``GET /api/v1/cron/jobs/<id>``)."""
    _, body = backupd_sample(f"GET /api/v1/cron/jobs/{job_id}")
    return body


def record_of(job_: dict[str, Any], state: str, start: datetime, *, end: datetime | None = None,
              result: Any = None, reason: str = "", salt: str = "") -> dict[str, Any]:
    """A record the way a daemon posts it for a run of ``job_`` started at ``start``: the rid is
    ``<unix seconds><md5>``, a running record has Go's zero end."""
    rid = f"{int(start.timestamp())}{hashlib.md5(f'{job_["id"]}{start}{salt}'.encode()).hexdigest()}"

    def stamp(t: datetime) -> str:
        return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"

    return {**job_, "rid": rid, "result": result, "state": state, "start": stamp(start),
            "end": stamp(end or start) if state != "running" else "0001-01-01T00:00:00Z",
            "reason": reason}
