"""The Prometheus scrape (``GET /api/v2/system/metrics``): every backup item's status and times,
the counts per status, the reconcile's state, in the text format (:mod:`chalicelib.core.prometheus`).
The same figures CloudWatch gets as EMF (:mod:`chalicelib.usecases.metrics`), for clusters that
scrape instead."""

from __future__ import annotations

from chalicelib import __version__
from chalicelib.core import prometheus
from chalicelib.core.answers import Text
from chalicelib.core.naming import check_name
from chalicelib.core.pages import MAX_PAGE_BYTES
from chalicelib.deps import Deps
from chalicelib.errors import BadRequest
from chalicelib.usecases import health

HISTORY_RUNS = 50  # enough for "failed N runs in a row" at any sensible alarm setting


def prometheus_text(deps: Deps, app: str, content_type: str) -> Text:
    """The Prometheus scrape: every item's status and times, the counts, the reconcile's state;
    one app's items with ``app``."""
    cluster = deps.cluster(check_name(app, "app") if app else None)
    if app:
        cluster.procs_of(app)  # 404 for an unknown app
    items = health.assess(deps, cluster)
    text = prometheus.render(items, deps.state.runs(HISTORY_RUNS), len(cluster.problems),
                             __version__)
    if len(text) > MAX_PAGE_BYTES:
        raise BadRequest(f"the metrics of {len(items):,} backup items are {len(text):,} bytes, more "
                         f"than one answer carries ({MAX_PAGE_BYTES:,}): scrape each app with "
                         "?app=<name>", code="too_large")
    return Text(text, content_type)
