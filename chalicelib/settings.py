"""Every setting of the controller, read from the environment in one place.

Handlers and scripts call :func:`get_settings` instead of reading ``os.environ`` themselves, so the
documented variable names (README, ``.chalice/config.json``) are the whole interface and a bad value
fails with one readable message instead of a ``ValueError`` deep inside a request.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from chalicelib.errors import ControllerError

NOTIFY_PATH = "/api/v2/system/notify"


class SettingsError(ControllerError):
    """A setting in the environment has a value the controller cannot use (answered as a 500 that
    names the variable, so the operator sees what to fix)."""

    code = "bad_setting"


@dataclass(frozen=True)
class Settings:
    """The controller's configuration; build it with :meth:`from_env`."""

    lainlet_url: str = "http://lainlet.lain:9001"
    lainlet_timeout_seconds: float = 10.0
    backupd_port: int = 9002
    backupd_api_prefix: str = "/api/v1"
    advertise_url: str = ""
    notify_token: str = ""
    api_token: str = ""
    table_name: str = "backupctl"
    dynamodb_endpoint_url: str = ""
    node_timeout_seconds: float = 3.0
    fanout_workers: int = 32
    record_retention_days: int = 0
    freshness_grace_seconds: float = 600.0
    alert_webhook_url: str = ""
    dynamodb_timeout_seconds: float = 1.5
    notify_clock_skew_seconds: float = 600.0
    push_timeout_seconds: float = 15.0
    removal_guard_percent: float = 20.0
    removal_confirm_runs: int = 3
    node_forget_hours: float = 24.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from ``env`` (default: the process environment), validating numbers."""
        env = os.environ if env is None else env
        d = cls()

        def text(name: str, default: str) -> str:
            return env.get(name, default).strip()

        def number(name: str, default: float, kind: type, minimum: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = kind(raw)
            except ValueError:
                what = "a whole number" if kind is int else "a number"
                raise SettingsError(f"{name}={raw!r} is not {what}") from None
            if not math.isfinite(value) or value < minimum:
                raise SettingsError(f"{name}={raw!r} must be at least {minimum:g} (and finite)")
            return value

        return cls(
            lainlet_url=text("LAINLET_URL", d.lainlet_url).rstrip("/"),
            lainlet_timeout_seconds=number(
                "LAINLET_TIMEOUT_SECONDS", d.lainlet_timeout_seconds, float, 0.1
            ),
            backupd_port=int(number("BACKUPD_PORT", d.backupd_port, int, 1)),
            backupd_api_prefix=_prefix(text("BACKUPD_API_PREFIX", d.backupd_api_prefix)),
            advertise_url=text("ADVERTISE_URL", d.advertise_url).rstrip("/"),
            notify_token=text("NOTIFY_TOKEN", d.notify_token),
            api_token=text("API_TOKEN", d.api_token),
            table_name=text("TABLE_NAME", d.table_name),
            dynamodb_endpoint_url=text("DYNAMODB_ENDPOINT_URL", d.dynamodb_endpoint_url),
            node_timeout_seconds=number(
                "NODE_TIMEOUT_SECONDS", d.node_timeout_seconds, float, 0.1
            ),
            fanout_workers=int(number("FANOUT_WORKERS", d.fanout_workers, int, 1)),
            record_retention_days=int(
                number("RECORD_RETENTION_DAYS", d.record_retention_days, int, 0)
            ),
            freshness_grace_seconds=number(
                "FRESHNESS_GRACE_SECONDS", d.freshness_grace_seconds, float, 0
            ),
            alert_webhook_url=text("ALERT_WEBHOOK_URL", d.alert_webhook_url),
            dynamodb_timeout_seconds=number(
                "DYNAMODB_TIMEOUT_SECONDS", d.dynamodb_timeout_seconds, float, 0.1
            ),
            notify_clock_skew_seconds=number(
                "NOTIFY_CLOCK_SKEW_SECONDS", d.notify_clock_skew_seconds, float, 0
            ),
            push_timeout_seconds=number("PUSH_TIMEOUT_SECONDS", d.push_timeout_seconds, float, 1),
            removal_guard_percent=number(
                "REMOVAL_GUARD_PERCENT", d.removal_guard_percent, float, 0
            ),
            removal_confirm_runs=int(
                number("REMOVAL_CONFIRM_RUNS", d.removal_confirm_runs, int, 1)
            ),
            node_forget_hours=number("NODE_FORGET_HOURS", d.node_forget_hours, float, 0),
        )


def _prefix(raw: str) -> str:
    """``api/v1/`` → ``/api/v1``; empty stays empty (the daemon's API at its root)."""
    raw = raw.strip("/")
    return "/" + raw if raw else ""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once (a Lambda's environment does not change)."""
    return Settings.from_env()
