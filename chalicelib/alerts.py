"""Alerts on backups that stop being fresh: assess → transitions → notify. The schedule calls this
after each reconcile (with the run's cluster and states, so nothing is read twice).

A message goes out when an item goes from ``ok`` to ``late``/``failing``/``never``. A status is
remembered only once its alert was delivered, so a failed post is retried next run and a delivered
one is never repeated while the item stays in that state; statuses of items that no longer exist
are forgotten. Only with ``ALERT_WEBHOOK_URL`` set: the status routes assess on demand.
"""

from __future__ import annotations

from logging import WARNING

from chalicelib.core.cluster import Cluster
from chalicelib.core.freshness import BAD, ItemStatus
from chalicelib.core.plan import NodeState
from chalicelib.deps import Deps
from chalicelib.edges import webhook
from chalicelib.errors import ControllerError
from chalicelib.logs import event, log
from chalicelib.usecases.health import assess


def check(deps: Deps, cluster: Cluster, states: dict[str, NodeState],
          pauses: dict[str, set[str]]) -> int:
    """Post the alerts of this run; how many were delivered. Never fails the run that pushed."""
    if not deps.settings.alert_webhook_url:
        return 0
    try:
        return transitions(deps, assess(deps, cluster, states, pauses))
    except ControllerError as e:
        event(log, "alert_check_failed", level=WARNING, error=e.message)
        return 0


def transitions(deps: Deps, items: list[ItemStatus]) -> int:
    """Post one message per item that went from ok to a bad status; the number posted."""
    before = deps.state.statuses()
    changed: dict[str, str] = {}
    posted = 0
    for item in items:
        previous = before.get(item.key)
        if previous == item.status:
            continue
        if previous == "ok" and item.status in BAD:
            if not _deliver(deps.settings.alert_webhook_url, item, previous):
                continue
            posted += 1
        changed[item.key] = item.status
    gone = set(before) - {item.key for item in items}
    if changed or gone:
        deps.state.save_statuses(changed, gone)
    return posted


def _deliver(url: str, item: ItemStatus, previous: str) -> bool:
    text = (f"backup of {item.app} {item.proc} instance {item.instance} volume {item.volume} "
            f"on {item.node} is {item.status} (was {previous}): {item.reason}")
    error = webhook.post(url, {"text": text, "previous": previous, **item.to_dict()})
    if error:
        event(log, "alert_failed", level=WARNING, key=item.key, status=item.status, error=error)
        return False
    event(log, "alert", key=item.key, status=item.status, previous=previous)
    return True
