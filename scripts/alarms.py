"""The stack's CloudWatch alarms and their SNS topic, as CloudFormation resources merged into the
packaged template by ``scripts/render_config.py``.

Three alarms, on the EMF metrics the functions emit (:mod:`chalicelib.edges.metrics`, names in
:mod:`chalicelib.core.formats.emf`), all notifying the topic when they fire and when they clear:

* **BackupsNotFresh**: any backup item late, failing, suspect or never backed up (``ItemsBad`` > 0,
  the maximum over 5 minutes);
* **ReconcileFailing**: the reconcile failed in each of the last N minutes, or did not run at all
  (``ReconcileFailed`` >= 1 in N of N one-minute periods; no data counts as failing);
* **NodesUnreachable**: a node refused or missed its push in each of the last M minutes
  (``NodesFailed`` >= 1 in M of M periods).

Subscriptions are render options: e-mail addresses (each confirms by mail) and HTTPS endpoints
(each must confirm the subscription SNS posts first). The topic is not KMS-encrypted: CloudWatch
cannot publish to a topic under the AWS-managed ``aws/sns`` key, and alarm messages carry no
secret.
"""

from __future__ import annotations

from typing import Any

from chalicelib.core.formats.emf import ITEMS_BAD, NODES_FAILED, RECONCILE_FAILED, SERVICE

TOPIC = "AlarmTopic"


def _alarm(namespace: str, description: str, metric: str, statistic: str, period: int,
           periods: int, threshold: float, comparison: str, missing: str) -> dict[str, Any]:
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmDescription": description, "Namespace": namespace, "MetricName": metric,
        "Dimensions": [{"Name": "Service", "Value": SERVICE}], "Statistic": statistic,
        "Period": period, "EvaluationPeriods": periods, "DatapointsToAlarm": periods,
        "Threshold": threshold, "ComparisonOperator": comparison, "TreatMissingData": missing,
        "AlarmActions": [{"Ref": TOPIC}], "OKActions": [{"Ref": TOPIC}]}}


def resources(stage: str, namespace: str, emails: list[str], webhooks: list[str],
              failed_runs: int, unreachable_minutes: int) -> dict[str, Any]:
    """The topic, its subscriptions and the three alarms of one stage."""
    out: dict[str, Any] = {TOPIC: {"Type": "AWS::SNS::Topic", "Properties": {
        "DisplayName": f"backupctl {stage} alarms"}}}
    for i, (protocol, endpoint) in enumerate([("email", e) for e in emails]
                                             + [("https", w) for w in webhooks], start=1):
        out[f"AlarmSubscription{i}"] = {"Type": "AWS::SNS::Subscription", "Properties": {
            "TopicArn": {"Ref": TOPIC}, "Protocol": protocol, "Endpoint": endpoint}}
    out["BackupsNotFreshAlarm"] = _alarm(
        namespace, f"backupctl {stage}: a backup is late, failing, suspect or was never made "
        "(see /api/v2/system/backups/status or the dashboard)", ITEMS_BAD, "Maximum", 300, 1, 0,
        "GreaterThanThreshold", "notBreaching")
    out["ReconcileFailingAlarm"] = _alarm(
        namespace, f"backupctl {stage}: the reconcile failed (or did not run) {failed_runs} "
        "minutes in a row (see /api/v2/system/reconcile/history)", RECONCILE_FAILED, "Maximum",
        60, failed_runs, 1, "GreaterThanOrEqualToThreshold", "breaching")
    out["NodesUnreachableAlarm"] = _alarm(
        namespace, f"backupctl {stage}: a node's daemon missed its job push {unreachable_minutes} "
        "minutes in a row (see the reconcile history's failed nodes)", NODES_FAILED, "Maximum",
        60, unreachable_minutes, 1, "GreaterThanOrEqualToThreshold", "notBreaching")
    return out
