"""Both tokens, in one place: the API token that mutating routes need (``Authorization: Bearer``)
and the notify token the daemons post with (``?token=``). Compared in constant time; only a
fingerprint of a token ever reaches the audit trail or a log."""

from __future__ import annotations

import hashlib
import hmac

from chalice.app import Request

from chalicelib.errors import Unauthorized


def require_api_token(req: Request) -> None:
    """With an API token configured, mutating routes need ``Authorization: Bearer <token>``."""
    from chalicelib.deps import get_deps  # the settings and the secrets: only when asked

    expected = get_deps().secrets.api_token()
    if not expected:
        return
    given = req.headers.get("authorization") or ""
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                              expected.encode()):
        raise Unauthorized("this route changes backups or jobs: send Authorization: Bearer <API_TOKEN>")


def require_notify_token(token: str) -> None:
    """With ``NOTIFY_TOKEN`` set (or its SSM parameter), a notify post must carry it (or, during
    its grace, the previous one)."""
    from chalicelib.deps import get_deps

    deps = get_deps()
    accepted = [t for t in deps.secrets.notify_tokens() if t]
    if accepted and not any(hmac.compare_digest(token.encode(), t.encode()) for t in accepted):
        deps.metrics.notify(accepted=False)  # a refused post, as those the notify flow refuses
        raise Unauthorized("notify needs ?token=<NOTIFY_TOKEN> (the URL the controller gave "
                           "the daemons)", code="bad_notify_token")


def token_identity(req: Request) -> str:
    """Who called, as far as the API token tells: a fingerprint of the token sent, never the token."""
    given = str(req.headers.get("authorization") or "").partition(" ")[2].strip()
    return "token:" + hashlib.sha256(given.encode()).hexdigest()[:8] if given else "none"
