"""The alert webhook: one JSON POST (Slack-compatible ``{"text": …}``) per message."""

from __future__ import annotations

from typing import Any

import requests

TIMEOUT_SECONDS = 5


def post(url: str, payload: dict[str, Any]) -> str:
    """POST ``payload``; an empty string when delivered, else why not (never raises)."""
    try:
        resp = requests.post(url, json=payload, timeout=TIMEOUT_SECONDS)
        resp.raise_for_status()
    except requests.RequestException as e:
        return type(e).__name__ + (f" (HTTP {e.response.status_code})" if e.response is not None else "")
    return ""
