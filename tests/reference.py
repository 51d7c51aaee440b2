"""Access to the payloads captured from the original system (``../shared/reference``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "reference"
BACKUPSPEC = REFERENCE / "lainlet-backupspec-sample.json"


def backupspec() -> dict[str, Any]:
    return json.loads(BACKUPSPEC.read_text())


def backupd_sample(request_line: str) -> tuple[int, Any]:
    """Status and JSON body of the sample whose heading starts with ``### <request_line>``."""
    text = (REFERENCE / "backupd-v1-samples.txt").read_text()
    for block in text.split("### ")[1:]:
        head, _, body = block.partition("\n")
        if head.split(" -> ")[0].strip() == request_line:
            status = int(re.search(r"HTTP (\d+)", head).group(1))
            body = body.strip()
            return status, json.loads(body) if body else None
    raise KeyError(request_line)


def notify_samples() -> list[tuple[str, dict[str, Any]]]:
    """(path with query, record) of every captured notify post, in arrival order."""
    lines = (REFERENCE / "notify-samples.txt").read_text().splitlines()
    return [(lines[i].split()[0], json.loads(lines[i + 1])) for i in range(0, len(lines) - 1, 2)]
