"""The controller's two secrets, read from SSM Parameter Store at run time, never from the config.

A deployed stage's environment carries only parameter *names* (``NOTIFY_TOKEN_PARAM``,
``API_TOKEN_PARAM``); the value is fetched (SecureString, decrypted) on first use and kept for
``SECRET_CACHE_SECONDS``, so a rotated value is picked up without a redeploy. While a notify token
is new (``NOTIFY_TOKEN_GRACE_SECONDS`` since it changed), the one before it is accepted too: a
daemon keeps posting to the URL it was given until the next reconcile hands it the new one, and
its records must not be lost meanwhile. Where a plain ``NOTIFY_TOKEN``/``API_TOKEN`` is set (the
local runner, tests), that value is used as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from logging import WARNING
from typing import Any

from chalicelib.errors import SecretUnavailable
from chalicelib.logs import event, log
from chalicelib.settings import Settings


@lru_cache(maxsize=2)
def _client(timeout: float) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("ssm", config=Config(connect_timeout=timeout, read_timeout=timeout,
                                             retries={"mode": "standard", "total_max_attempts": 2}))


class Secrets:
    """The tokens of one process, cached for ``secret_cache_seconds``."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.clock = clock
        self._cache: dict[str, tuple[datetime, tuple[str, ...]]] = {}

    def notify_tokens(self) -> tuple[str, ...]:
        """Tokens a notify post may carry: the current one first (empty: none is required)."""
        if self.settings.notify_token or not self.settings.notify_token_param:
            return (self.settings.notify_token,)
        return self._values(self.settings.notify_token_param,
                            timedelta(seconds=self.settings.notify_token_grace_seconds))

    def notify_token(self) -> str:
        """The token to hand the daemons now."""
        return self.notify_tokens()[0]

    def api_token(self) -> str:
        if self.settings.api_token or not self.settings.api_token_param:
            return self.settings.api_token
        return self._values(self.settings.api_token_param, timedelta(0))[0]

    def _values(self, name: str, grace: timedelta) -> tuple[str, ...]:
        now = self.clock()
        cached = self._cache.get(name)
        if cached and now - cached[0] < timedelta(seconds=self.settings.secret_cache_seconds):
            return cached[1]
        values = self._fetch(name, now, grace)
        self._cache[name] = (now, values)
        return values

    def _fetch(self, name: str, now: datetime, grace: timedelta) -> tuple[str, ...]:
        client = _client(self.settings.dynamodb_timeout_seconds)
        try:
            current = client.get_parameter(Name=name, WithDecryption=True)["Parameter"]
            values = [current["Value"]]
            changed = current.get("LastModifiedDate") or now
            if changed.tzinfo is None:
                changed = changed.replace(tzinfo=UTC)
            if grace and current.get("Version", 1) > 1 and now - changed < grace:
                previous = client.get_parameter(Name=f"{name}:{current['Version'] - 1}",
                                                WithDecryption=True)["Parameter"]
                values.append(previous["Value"])
        except Exception as e:  # botocore's errors, a missing parameter, no access: all the same here
            event(log, "secret_unavailable", level=WARNING, parameter=name, error=type(e).__name__)
            raise SecretUnavailable(f"SSM parameter {name} could not be read "
                                    f"({type(e).__name__}); retry later") from None
        return tuple(values)
