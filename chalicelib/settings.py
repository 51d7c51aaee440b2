"""Every setting of the controller, read from the environment in one place.

Each field of :class:`Settings` names its environment variable, its minimum (numbers) and whether it
is a secret; reading (:meth:`Settings.from_env`), rendering the deploy config
(``scripts/render_config.py``) and the settings table of docs/operating.md all go by that one list. Handlers
and scripts call :func:`get_settings` instead of reading ``os.environ`` themselves, and a bad value
fails with one readable message naming the variable.

Secrets (``NOTIFY_TOKEN``, ``API_TOKEN``) are never rendered into a deployed stage: there the
config carries the *names* of SSM parameters (``*_TOKEN_PARAM``) and the functions read the values
at run time (:mod:`chalicelib.edges.secrets`). The plain variables serve the local runner and tests.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any

from chalicelib.errors import ControllerError

NOTIFY_PATH = "/api/v2/system/notify"


class SettingsError(ControllerError):
    """A setting in the environment has a value the controller cannot use (answered as a 500 that
    names the variable, so the operator sees what to fix)."""

    code = "bad_setting"


def _prefix(raw: str) -> str:
    """``api/v1/`` → ``/api/v1``; empty stays empty (the daemon's API at its root)."""
    raw = raw.strip("/")
    return "/" + raw if raw else ""


def _url(raw: str) -> str:
    return raw.rstrip("/")


def _app_targets(raw: str) -> str:
    """``EVIDENCE_APP_TARGETS`` checked when read (a typo fails at once, naming the variable,
    instead of an audit silently judged against the defaults)."""
    from chalicelib.core.evidence import parse_targets

    try:
        parse_targets(raw)
    except ValueError as e:
        raise SettingsError(f"EVIDENCE_APP_TARGETS: {e}") from None
    return raw


def setting(default: Any, env: str, *, minimum: float | None = None, secret: bool = False,
            normalize: Callable[[str], str] | None = None) -> Any:
    """A field of :class:`Settings` read from the variable ``env``."""
    return field(default=default, metadata={"env": env, "minimum": minimum, "secret": secret,
                                             "normalize": normalize})


@dataclass(frozen=True)
class Settings:
    """The controller's configuration; build it with :meth:`from_env`."""

    lainlet_url: str = setting("http://lainlet.lain:9001", "LAINLET_URL", normalize=_url)
    lainlet_timeout_seconds: float = setting(10.0, "LAINLET_TIMEOUT_SECONDS", minimum=0.1)
    backupd_port: int = setting(9002, "BACKUPD_PORT", minimum=1)
    backupd_api_prefix: str = setting("/api/v1", "BACKUPD_API_PREFIX", normalize=_prefix)
    advertise_url: str = setting("", "ADVERTISE_URL", normalize=_url)
    notify_url: str = setting("", "NOTIFY_URL")
    notify_token: str = setting("", "NOTIFY_TOKEN", secret=True)
    api_token: str = setting("", "API_TOKEN", secret=True)
    notify_token_param: str = setting("", "NOTIFY_TOKEN_PARAM")
    api_token_param: str = setting("", "API_TOKEN_PARAM")
    secret_cache_seconds: float = setting(300.0, "SECRET_CACHE_SECONDS", minimum=0)
    notify_token_grace_seconds: float = setting(3600.0, "NOTIFY_TOKEN_GRACE_SECONDS", minimum=0)
    table_name: str = setting("backupctl", "TABLE_NAME")
    dynamodb_endpoint_url: str = setting("", "DYNAMODB_ENDPOINT_URL")
    dynamodb_timeout_seconds: float = setting(1.5, "DYNAMODB_TIMEOUT_SECONDS", minimum=0.1)
    node_timeout_seconds: float = setting(3.0, "NODE_TIMEOUT_SECONDS", minimum=0.1)
    push_timeout_seconds: float = setting(15.0, "PUSH_TIMEOUT_SECONDS", minimum=1)
    fanout_workers: int = setting(32, "FANOUT_WORKERS", minimum=1)
    record_retention_days: int = setting(400, "RECORD_RETENTION_DAYS", minimum=0)
    notify_clock_skew_seconds: float = setting(600.0, "NOTIFY_CLOCK_SKEW_SECONDS", minimum=0)
    freshness_grace_seconds: float = setting(600.0, "FRESHNESS_GRACE_SECONDS", minimum=0)
    spread_seconds: bool = setting(False, "SPREAD_SECONDS")
    alert_webhook_url: str = setting("", "ALERT_WEBHOOK_URL")
    removal_guard_percent: float = setting(20.0, "REMOVAL_GUARD_PERCENT", minimum=0)
    removal_confirm_runs: int = setting(3, "REMOVAL_CONFIRM_RUNS", minimum=1)
    node_forget_hours: float = setting(24.0, "NODE_FORGET_HOURS", minimum=0)
    pause_max_days: float = setting(30.0, "PAUSE_MAX_DAYS", minimum=0.01)
    pause_notice_hours: float = setting(24.0, "PAUSE_NOTICE_HOURS", minimum=0)
    node_check_minutes: int = setting(10, "NODE_CHECK_MINUTES", minimum=1)
    expiry_hold_margin_percent: float = setting(25.0, "EXPIRY_HOLD_MARGIN_PERCENT", minimum=0)
    suspect_size_percent: float = setting(10.0, "SUSPECT_SIZE_PERCENT", minimum=0)
    size_rebaseline_runs: int = setting(3, "SIZE_REBASELINE_RUNS", minimum=0)
    operation_phase_minutes: float = setting(360.0, "OPERATION_PHASE_MINUTES", minimum=1)
    verify_size_percent: float = setting(10.0, "VERIFY_SIZE_PERCENT", minimum=0)
    undo_days: float = setting(7.0, "UNDO_DAYS", minimum=0)
    allow_cross_node_restore: bool = setting(False, "ALLOW_CROSS_NODE_RESTORE")
    drill_root: str = setting("", "DRILL_ROOT")
    drill_cycle_days: float = setting(7.0, "DRILL_CYCLE_DAYS", minimum=1)
    drill_window: str = setting("", "DRILL_WINDOW")
    drill_bytes_per_night: int = setting(0, "DRILL_BYTES_PER_NIGHT", minimum=0)
    drill_sample_files: int = setting(20, "DRILL_SAMPLE_FILES", minimum=1)
    audit_retention_days: int = setting(400, "AUDIT_RETENTION_DAYS", minimum=0)
    reconcile_lease_seconds: float = setting(300.0, "RECONCILE_LEASE_SECONDS", minimum=10)
    metrics_namespace: str = setting("backupctl", "METRICS_NAMESPACE")
    evidence_rpo_hours: float = setting(0.0, "EVIDENCE_RPO_HOURS", minimum=0)
    evidence_rto_minutes: float = setting(240.0, "EVIDENCE_RTO_MINUTES", minimum=0)
    evidence_success_percent: float = setting(95.0, "EVIDENCE_SUCCESS_PERCENT", minimum=0)
    evidence_app_targets: str = setting("", "EVIDENCE_APP_TARGETS", normalize=_app_targets)

    @property
    def notify_address(self) -> str:
        """Where the daemons post their records (without the token): ``NOTIFY_URL`` (a deployed
        stack's function URL), else the REST route under ``ADVERTISE_URL``; "" with neither."""
        if self.notify_url:
            return self.notify_url
        return self.advertise_url + NOTIFY_PATH if self.advertise_url else ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from ``env`` (default: the process environment), validating numbers."""
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"], "").strip()
            if raw:
                values[f.name] = parse(f.metadata["env"], raw, f.default, f.metadata)
        return cls(**values)


def parse(name: str, raw: str, default: Any, meta: Mapping[str, Any]) -> Any:
    """One setting's value from its text, typed like its default; :class:`SettingsError` if not."""
    if isinstance(default, str):
        return meta["normalize"](raw) if meta["normalize"] else raw
    if isinstance(default, bool):
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise SettingsError(f"{name}={raw!r} is not true or false")
    kind = type(default)
    try:
        value = kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise SettingsError(f"{name}={raw!r} is not {what}") from None
    minimum = meta["minimum"]
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise SettingsError(f"{name}={raw!r} must be at least {minimum:g} (and finite)")
    return value


def env_names(*, secrets: bool = True) -> dict[str, str]:
    """Field name → environment variable, for every setting (without the secrets if asked)."""
    return {f.name: f.metadata["env"] for f in fields(Settings) if secrets or not f.metadata["secret"]}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once (a Lambda's environment does not change)."""
    return Settings.from_env()
