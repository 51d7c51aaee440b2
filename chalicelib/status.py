"""Backup status from what the controller already knows (lainlet + DynamoDB, no daemon calls),
and alerts when an item goes from ``ok`` to ``late``/``failing``/``never``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from chalicelib.core import freshness
from chalicelib.core.cluster import Cluster
from chalicelib.edges.records import RecordStore
from chalicelib.edges.state import NodeState, NodeStateStore
from chalicelib.settings import Settings

log = logging.getLogger("backupctl")


def assess(settings: Settings, cluster: Cluster, nodes: NodeStateStore, records: RecordStore,
           states: dict[str, NodeState] | None = None,
           pauses: dict[str, set[str]] | None = None) -> list[freshness.ItemStatus]:
    """Status of every item of ``cluster``: at most three Queries (node states and pauses unless
    the caller already read them, and every job's latest records)."""
    states = nodes.states() if states is None else states
    first_seen = {(node, job_id): when for node, state in states.items()
                  for job_id, when in state.first_seen}
    return freshness.assess(cluster, first_seen=first_seen,
                            paused=nodes.pauses() if pauses is None else pauses,
                            latest=records.latest_by_job(), now=datetime.now(UTC),
                            grace=timedelta(seconds=settings.freshness_grace_seconds))


def answer(items: list[freshness.ItemStatus]) -> dict[str, Any]:
    by_app: dict[str, list[freshness.ItemStatus]] = {}
    for item in items:
        by_app.setdefault(item.app, []).append(item)
    return {"counts": freshness.counts(items),
            "apps": {app: freshness.counts(app_items) for app, app_items in sorted(by_app.items())},
            "items": [i.to_dict() for i in items]}


def alert_transitions(settings: Settings, items: list[freshness.ItemStatus],
                      nodes: NodeStateStore) -> int:
    """Post one message per item that went from ok to late/failing/never; the number posted.

    A status is remembered only once its alert was delivered, so a failed post is retried on the
    next run and a delivered one is never repeated while the item stays in that state.
    """
    before = nodes.statuses()
    changed: dict[str, str] = {}
    posted = 0
    for item in items:
        previous = before.get(item.key)
        if previous == item.status:
            continue
        if previous == "ok" and item.status in freshness.BAD and settings.alert_webhook_url:
            if not _post(settings.alert_webhook_url, item, previous):
                continue
            posted += 1
        changed[item.key] = item.status
    if changed:
        nodes.save_statuses(changed)
    return posted


def _post(url: str, item: freshness.ItemStatus, previous: str) -> bool:
    text = (f"backup of {item.app} {item.proc} instance {item.instance} volume {item.volume} "
            f"on {item.node} is {item.status} (was {previous}): {item.reason}")
    try:
        resp = requests.post(url, json={"text": text, "previous": previous, **item.to_dict()},
                             timeout=5)
        resp.raise_for_status()
    except requests.RequestException as e:
        log.warning("event=alert_failed key=%s status=%s error=%r", item.key, item.status, str(e))
        return False
    log.info("event=alert key=%s status=%s previous=%s", item.key, item.status, previous)
    return True
