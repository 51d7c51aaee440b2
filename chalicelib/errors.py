"""Error types that carry their HTTP status, and the one place that turns them into responses.

Every failure a user can see is a :class:`ControllerError`: lain-cli prints the body of any answer
with status >= 300, so the body must say what went wrong and name the thing it went wrong with.
"""

from __future__ import annotations


class ControllerError(Exception):
    """Base error: ``status`` is the HTTP status, ``code`` a stable machine-readable name."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code

    def body(self) -> dict[str, str]:
        """The JSON body every error answer has."""
        return {"error": self.message, "code": self.code}


class BadRequest(ControllerError):
    status = 400
    code = "bad_request"


class Unauthorized(ControllerError):
    status = 401
    code = "unauthorized"


class Forbidden(ControllerError):
    status = 403
    code = "forbidden"


class NotFound(ControllerError):
    status = 404
    code = "not_found"


class Conflict(ControllerError):
    """The request contradicts what is already stored (a record's owner, a finished record)."""

    status = 409
    code = "conflict"


class PayloadTooLarge(ControllerError):
    status = 413
    code = "too_large"


class UnknownApp(NotFound):
    code = "unknown_app"


class UnknownProc(NotFound):
    code = "unknown_proc"


class UpstreamError(ControllerError):
    """A daemon or lainlet answered with an error or something unreadable."""

    status = 502
    code = "upstream_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class StoreUnavailable(ControllerError):
    """DynamoDB did not answer in time or refused the request; the caller may retry."""

    status = 503
    code = "store_unavailable"


class SecretUnavailable(ControllerError):
    """SSM did not give a secret the controller needs; the request can be retried."""

    status = 503
    code = "secret_unavailable"


class LainletError(UpstreamError):
    """lainlet is down, answered non-200, or sent something that is not a backupspec."""

    code = "lainlet_unavailable"


class LainletTimeout(LainletError):
    status = 504
    code = "lainlet_timeout"
