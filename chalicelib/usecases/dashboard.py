"""The coverage dashboard: one static page (HTML, CSS and a small script under
``chalicelib/dashboard/``, no build step, nothing from a CDN) that reads the API's own JSON routes.

The style and script are inlined and allowed by their hashes in the Content-Security-Policy, so
the page runs nothing else: no other script, no inline handler, no request outside this API.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from pathlib import Path

from chalicelib.core.formats.answers import Text

FILES = Path(__file__).resolve().parent.parent / "dashboard"


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@lru_cache(maxsize=1)
def page() -> Text:
    """The page, with its security headers (read once per process)."""
    style = (FILES / "page.css").read_text()
    script = (FILES / "page.js").read_text()
    html = ((FILES / "page.html").read_text()
            .replace("/*STYLE*/", style).replace("/*SCRIPT*/", script))
    policy = (f"default-src 'none'; script-src {_sha256(script)}; style-src {_sha256(style)}; "
              "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'none'")
    return Text(html, "text/html; charset=utf-8",
                {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff",
                 "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"})
