#!/usr/bin/env python3
"""Render a stage's ``.chalice/`` (config, IAM policy, API resource policy, package resources)
from jinja2 templates: the local stage into the repository's own ``.chalice/`` (committed, the only
stage there), a deployed stage into ``deploy/<stage>/``, a chalice project of its own (the app,
``chalicelib/``, the requirements and ``.chalice/`` with that stage; git-ignored) to package from.

    python scripts/render_config.py                       # the local stage (committed)
    python scripts/render_config.py --stage prod \\
        --advertise-url https://backupctl.lain.example --lainlet-url http://10.0.0.9:9001 \\
        --subnet-ids subnet-1,subnet-2 --security-group-ids sg-1 \\
        --notify-token-param /backupctl/prod/notify-token \\
        --api-token-param /backupctl/prod/api-token [--domain backupctl.lain.example \\
        --certificate-arn arn:aws:acm:…] [--private-api --vpc-endpoint vpce-…]
    (cd deploy/prod && chalice package --stage prod --merge-template .chalice/resources-prod.json out/)

``--out DIR`` renders into another project dir; the repository's tracked ``.chalice/`` never takes a
deployed stage, and a non-empty dir this script did not render is never written over.

Every setting of ``chalicelib/settings.py`` has a flag (``--lainlet-url`` …) and is also read from
the environment variable of the same name; flags win, then the environment, then the stage's
defaults. The local stage takes neither (``chalice local`` replaces the
process environment with the stage's, so it only sets what is the same on every machine; the local
runner supplies the rest).

Secrets never reach a rendered file: ``NOTIFY_TOKEN``/``API_TOKEN`` have no flag and are not read
for any stage; a deployed stage names SSM parameters instead (``--notify-token-param``,
``--api-token-param``), and its policy may read just those. ``prod`` refuses to render without the
notify token's parameter, and without the API token's unless the API is private
(``--private-api``: only the named VPC endpoint reaches it) or ``--open-api`` says on purpose that
anyone who reaches the API may change backups.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib.edges import table as table_schema  # noqa: E402
from chalicelib.settings import Settings, SettingsError, parse  # noqa: E402
from scripts import alarms, vpc  # noqa: E402

STAGES = ("local", "dev", "prod")
APP_NAME = "backupctl"
DEPLOY_DIR = ROOT / "deploy"  # deploy/<stage>/: a deployed stage's own chalice project (git-ignored)
# beside chalicelib/, what a rendered project needs for chalice package (.python-version: pyenv
# picks 3.13 there too, and chalice takes the Lambda runtime from the Python it runs on)
PROJECT_FILES = ("app.py", "requirements.txt", ".python-version")
API_GATEWAY_STAGE = "live"  # the raw URL is …/live/api/v2/…; a domain or the router hides it
LAINLET_CLUSTER_HOST = "lainlet.lain"  # the default LAINLET_URL's host: the cluster's DNS only
API_GATEWAY_TIMEOUT = 29  # API Gateway's integration limit: the API function must answer within it
INGRESSES = ("function-url", "rest")  # where the daemons post records: the notify function's URL, or the API
DEFAULTS: dict[str, dict[str, Any]] = {
    "local": {"table_name": "backupctl-local", "api_memory": 256, "api_timeout": 28,
              "reconcile_memory": 256, "reconcile_timeout": 60, "notify_memory": 256,
              "notify_peak_posts": 100, "api_rate_limit": 25, "api_burst_limit": 50},
    "dev": {"table_name": "backupctl-dev", "api_memory": 512, "api_timeout": 28,
            "reconcile_memory": 1024, "reconcile_timeout": 300,
            "metrics_namespace": "backupctl/dev", "notify_memory": 256, "notify_peak_posts": 100,
            "api_rate_limit": 25, "api_burst_limit": 50},
    # sized from scripts/bench.py: a 2,000-node reconcile peaks under 700 MB and runs in seconds;
    # the notify herd of 200 nodes with SPREAD_SECONDS on is about 1,000 posts/s (2,000 nodes: 9,130)
    "prod": {"table_name": "backupctl-prod", "api_memory": 1024, "api_timeout": 28,
             "reconcile_memory": 1769, "reconcile_timeout": 300,
             "metrics_namespace": "backupctl/prod", "notify_memory": 256,
             "notify_peak_posts": 1000, "api_rate_limit": 25, "api_burst_limit": 50},
}
# The notify function, sized from the modelled herd (scripts/bench.py, herd and notify rows)
NOTIFY_TIMEOUT = 10  # s: a post is a few DynamoDB calls, each given up after ~4 s (2 attempts)
NOTIFY_POST_SECONDS = 0.08  # a post's modelled duration at 256 MB (bench: 61-79 ms a backup post)
LAMBDA_RPS_PER_CONCURRENCY = 10  # Lambda takes at most 10 requests/s per unit of a function's concurrency
NOTIFY_HEADROOM = 1.25  # above the modelled peak: a throttled post through a function URL is a 429, lost
WRU_PER_POST = 5  # DynamoDB write units of a backup post (running: 5; success: 5), counted by the bench
TABLE_WARM_WRITES = 4000  # an on-demand table takes this many WRU/s at once before it scales
UNRESERVED_FLOOR = 100  # Lambda keeps this much of the account's concurrency unreserved
LAMBDA_ACCOUNT_CONCURRENCY = 1000  # an account's default quota of concurrent executions, per region
API_GATEWAY_ACCOUNT_RPS, API_GATEWAY_ACCOUNT_BURST = 10_000, 5000  # the account's default throttle
ALARM_DEFAULTS = {"alarm_failed_runs": 3, "alarm_unreachable_minutes": 5}
DEPLOY_OPTIONS = {  # flag -> help; values also come from the environment (upper-case names)
    "subnet_ids": "VPC subnets the functions run in (comma-separated; prod needs them)",
    "security_group_ids": "security groups of the functions (comma-separated)",
    "api_memory": "API function memory, MB", "api_timeout": "API function timeout, s (<= 29)",
    "reconcile_memory": "reconcile function memory, MB",
    "reconcile_timeout": "reconcile function timeout, s",
    "notify_ingress": "where the daemons post records: function-url (the notify function's own "
                      "URL, the stack output NotifyURL; default) or rest (the API's notify route, "
                      "for nodes that reach only a private API)",
    "notify_memory": "notify function memory, MB",
    "notify_peak_posts": "the most notify posts a second the stack must take (the bench's herd "
                         "rows): sizes the notify function's reserved concurrency, the REST notify "
                         "route's throttle and the table's warm write throughput",
    "api_rate_limit": "the REST API's steady requests/s for every route but notify (stage throttle)",
    "api_burst_limit": "the REST API's burst for every route but notify (stage throttle)",
    "log_retention_days": "CloudWatch log retention of every function, days",
    "domain": "custom domain of the API, e.g. backupctl.<lain domain> (with --certificate-arn)",
    "certificate_arn": "ACM certificate of --domain",
    "vpc_endpoint": "the execute-api VPC endpoint allowed to call a --private-api",
    "endpoints": "how functions in --subnet-ids reach DynamoDB and SSM: dynamodb,ssm (the stack "
                 "creates those VPC endpoints) or none (a NAT gateway or endpoints of the VPC's own)",
    "vpc_id": "the VPC of --subnet-ids (for --endpoints)",
    "route_table_ids": "route tables of --subnet-ids (comma-separated; for --endpoints dynamodb)",
    "kms_key_arn": "customer-managed KMS key of the SSM parameters (none: aws/ssm)",
    "alarm_email": "e-mail addresses the alarms notify (comma-separated; each confirms by mail)",
    "alarm_webhook": "HTTPS endpoints the alarms notify (comma-separated; each confirms first)",
    "alarm_failed_runs": "minutes of failed (or missing) reconcile runs before it alarms",
    "alarm_unreachable_minutes": "minutes a node misses its pushes before it alarms",
}
SWITCHES = {"private_api": "a PRIVATE API reached only through --vpc-endpoint",
            "open_api": "render prod without an API token (anyone who reaches the API may mutate)"}


class ConfigError(ValueError):
    """A stage cannot be rendered with the values given."""


def setting_fields() -> list[Any]:
    """The settings a stage may carry (secret values never)."""
    return [f for f in fields(Settings) if not f.metadata["secret"]]


def stage_values(stage: str, flags: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The template values of one stage: flag, else environment, else stage default."""
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    defaults = DEFAULTS[stage]
    deployed = stage != "local"  # the committed local config must not depend on who renders it

    def pick(name: str, default: Any = "") -> Any:
        value = flags.get(name) if deployed else None
        if value in (None, "", False) and deployed:
            value = env.get(name.upper(), "")
        return value if value not in (None, "") else defaults.get(name, default)

    environment = {"TABLE_NAME": str(pick("table_name"))}
    for f in setting_fields():
        value = pick(f.name)
        if value in (None, "") or f.name == "table_name":
            continue
        try:
            parse(f.metadata["env"], str(value), f.default, f.metadata)
        except SettingsError as e:
            raise ConfigError(e.message) from None
        environment[f.metadata["env"]] = str(value)
    private = bool(pick("private_api", False)) and str(pick("private_api", "")).lower() not in ("0", "false")
    open_api = bool(pick("open_api", False)) and str(pick("open_api", "")).lower() not in ("0", "false")
    subnets, groups = _split(pick("subnet_ids")), _split(pick("security_group_ids"))
    domain, certificate = str(pick("domain")), str(pick("certificate_arn"))
    vpce = str(pick("vpc_endpoint"))
    if bool(subnets) != bool(groups):
        raise ConfigError(f"{stage}: give both subnet ids and security group ids, or neither")
    if private and not vpce:
        raise ConfigError(f"{stage}: --private-api needs --vpc-endpoint vpce-…, the only way in")
    if domain and not private and not certificate:
        raise ConfigError(f"{stage}: --domain needs --certificate-arn (an ACM certificate of it)")
    reconcile_timeout = int(pick("reconcile_timeout"))
    ingress = str(pick("notify_ingress", "function-url" if deployed else "rest"))
    if ingress not in INGRESSES:
        raise ConfigError(f"{stage}: --notify-ingress {ingress!r}: one of {', '.join(INGRESSES)}")
    sizing = notify_sizing(_positive(stage, "notify_peak_posts", pick("notify_peak_posts")))
    api_rate = _positive(stage, "api_rate_limit", pick("api_rate_limit"))
    api_burst = _positive(stage, "api_burst_limit", pick("api_burst_limit"))
    if deployed:  # a run still going when its lease ends would let a second run start beside it
        lease = environment.setdefault("RECONCILE_LEASE_SECONDS", str(reconcile_timeout))
        if float(lease) < reconcile_timeout:
            raise ConfigError(f"{stage}: --reconcile-lease-seconds {lease} is shorter than the "
                              f"reconcile function's timeout ({reconcile_timeout} s): a run still "
                              "going when its lease ends would let a second one start")
    if int(pick("api_timeout")) > API_GATEWAY_TIMEOUT:
        raise ConfigError(f"{stage}: --api-timeout must be at most {API_GATEWAY_TIMEOUT} s: API "
                          "Gateway gives up on the function after 29 s")
    if stage == "prod":
        if not subnets:
            raise ConfigError("prod needs --subnet-ids and --security-group-ids: the functions "
                              "must run in the VPC that reaches the node IPs")
        if not environment.get("ADVERTISE_URL"):
            raise ConfigError("prod needs --advertise-url: the daemons post records there")
        if not environment.get("NOTIFY_TOKEN_PARAM"):
            raise ConfigError("prod needs --notify-token-param: the SSM parameter of the token "
                              "daemons must send with every record")
        if not environment.get("API_TOKEN_PARAM") and not (private or open_api):
            raise ConfigError("prod needs --api-token-param (an SSM parameter), or --private-api "
                              "(only a VPC endpoint reaches the API), or --open-api (on purpose: "
                              "anyone who reaches the API may delete, restore or stop backups)")
    if deployed:
        _check_lainlet(stage, environment.get("LAINLET_URL", ""))
    endpoints = _endpoints(stage, _split(pick("endpoints")), str(pick("vpc_id")), subnets,
                           _split(pick("route_table_ids"))) if deployed else []
    params = [environment[k] for k in ("NOTIFY_TOKEN_PARAM", "API_TOKEN_PARAM") if k in environment]
    emails, webhooks = _split(pick("alarm_email")), _split(pick("alarm_webhook"))
    for email in emails:
        if "@" not in email.strip("@"):
            raise ConfigError(f"{stage}: --alarm-email {email!r} is not an e-mail address")
    for hook in webhooks:
        if not hook.startswith("https://"):
            raise ConfigError(f"{stage}: --alarm-webhook {hook!r} must be an https:// URL")
    alarm_periods = {}
    for name, default in ALARM_DEFAULTS.items():
        raw = str(pick(name, default))
        if not raw.isdigit() or not 1 <= int(raw) <= 1440:
            raise ConfigError(f"{stage}: --{name.replace('_', '-')} {raw!r} must be 1 to 1440 minutes")
        alarm_periods[name] = int(raw)
    return {
        "name": stage,
        "table_name": environment["TABLE_NAME"],
        "api_memory": int(pick("api_memory")),
        "api_timeout": int(pick("api_timeout")),
        "reconcile_memory": int(pick("reconcile_memory")),
        "reconcile_timeout": reconcile_timeout,
        "notify_memory": _positive(stage, "notify_memory", pick("notify_memory")),
        "notify_timeout": NOTIFY_TIMEOUT,
        "notify_ingress": ingress,
        "sizing": sizing,
        "api_rate_limit": api_rate,
        "api_burst_limit": api_burst,
        "deployed": deployed,
        "log_retention_days": int(pick("log_retention_days", 30)),
        "subnet_ids": subnets,
        "security_group_ids": groups,
        "environment": environment,
        "policy_file": f"policy-{stage}.json",
        "ssm_parameters": [p.lstrip("/") for p in params],
        "kms_key_arn": str(pick("kms_key_arn")),
        "domain": domain if not private else "",
        "certificate_arn": certificate,
        "vpc_endpoint": vpce if private else "",
        "gateway_stage": API_GATEWAY_STAGE,
        "network": vpc.resources(stage, endpoints, str(pick("vpc_id")), subnets, groups,
                                 _split(pick("route_table_ids"))),
        "alarms": alarms.resources(stage, environment.get("METRICS_NAMESPACE", "backupctl"), emails,
                                   webhooks, alarm_periods["alarm_failed_runs"],
                                   alarm_periods["alarm_unreachable_minutes"]) if deployed else {},
    }


def _positive(stage: str, name: str, raw: Any) -> int:
    if not str(raw).isdigit() or int(raw) < 1:
        raise ConfigError(f"{stage}: --{name.replace('_', '-')} {raw!r} must be a whole number >= 1")
    return int(raw)


def notify_sizing(peak_posts: int) -> dict[str, int]:
    """What the stack needs to take ``peak_posts`` notify posts in one second without throttling
    one (a post a function URL throttles is a 429, which a daemon never posts again): the notify
    function's reserved concurrency (Lambda serves at most 10 requests/s per unit of it, and each
    post holds one for its duration), the REST notify route's throttle (the same posts, if the
    daemons post there), and the table's warm write throughput (each post's write units), with
    headroom; ``account_concurrency`` is the account quota that reservation needs."""
    need = max(peak_posts / LAMBDA_RPS_PER_CONCURRENCY, peak_posts * NOTIFY_POST_SECONDS)
    reserved = math.ceil(need * NOTIFY_HEADROOM)
    writes = math.ceil(peak_posts * WRU_PER_POST * NOTIFY_HEADROOM)
    return {"peak_posts": peak_posts, "reserved_concurrency": reserved,
            "rest_rate": math.ceil(peak_posts * NOTIFY_HEADROOM),
            "table_writes": writes if writes > TABLE_WARM_WRITES else 0,
            "account_concurrency": reserved + 1 + UNRESERVED_FLOOR}


def _check_lainlet(stage: str, url: str) -> None:
    """A deployed stage names lainlet by an address its functions reach: the default
    ``lainlet.lain`` is a name only the cluster's own DNS answers, never a Lambda's."""
    relay = ("point --lainlet-url at a relay reachable from the subnets (docs/operating.md, "
             "Deploying: lainlet access)")
    if not url:
        raise ConfigError(f"{stage} needs --lainlet-url (or LAINLET_URL): without it the stage uses "
                          f"http://{LAINLET_CLUSTER_HOST}:9001, and a Lambda cannot resolve "
                          f"{LAINLET_CLUSTER_HOST} (only the cluster's own DNS does); {relay}")
    if (urlsplit(url).hostname or "") == LAINLET_CLUSTER_HOST:
        raise ConfigError(f"{stage}: --lainlet-url {url}: a Lambda cannot resolve "
                          f"{LAINLET_CLUSTER_HOST} (only the cluster's own DNS does); {relay}")


def _endpoints(stage: str, names: list[str], vpc_id: str, subnets: list[str],
               route_tables: list[str]) -> list[str]:
    """The VPC endpoints to create. Functions in subnets reach DynamoDB and SSM only through a
    NAT gateway or VPC endpoints (else every table route answers 503 and no token can be read),
    so a stage with subnets must say which: ``--endpoints dynamodb,ssm`` or ``none``."""
    unknown = [n for n in names if n not in (*vpc.ENDPOINTS, "none")]
    if unknown or ("none" in names and len(names) > 1):
        raise ConfigError(f"{stage}: --endpoints {','.join(names)}: name dynamodb, ssm (or both), "
                          "or none alone")
    wanted = [n for n in vpc.ENDPOINTS if n in names]
    if not subnets:
        if wanted:
            raise ConfigError(f"{stage}: --endpoints {','.join(wanted)} serve functions in a VPC: "
                              "give --subnet-ids and --security-group-ids too")
    elif not names:
        raise ConfigError(
            f"{stage}: functions in --subnet-ids reach DynamoDB and SSM only through a NAT gateway "
            "or VPC endpoints (without either every table route answers 503 and no token can be "
            "read): give --endpoints dynamodb,ssm --vpc-id vpc-… --route-table-ids rtb-… (the "
            "stack creates the endpoints), or --endpoints none (the subnets already reach both; "
            "docs/operating.md, Deploying step 0)")
    if wanted and not vpc_id.startswith("vpc-"):
        raise ConfigError(f"{stage}: --endpoints {','.join(wanted)} needs --vpc-id vpc-…, the VPC "
                          "of the subnets")
    if "dynamodb" in wanted and (not route_tables
                                 or not all(r.startswith("rtb-") for r in route_tables)):
        raise ConfigError(f"{stage}: --endpoints dynamodb needs --route-table-ids rtb-…: the route "
                          "tables of the subnets, where the gateway endpoint adds its route")
    if (vpc_id and not wanted) or (route_tables and "dynamodb" not in wanted):
        raise ConfigError(f"{stage}: --vpc-id and --route-table-ids serve --endpoints "
                          "(route tables: --endpoints dynamodb); nothing would use them")
    return wanted


def _split(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v]
    return [v.strip() for v in str(value or "").split(",") if v.strip()]


def outputs(stage: Mapping[str, Any]) -> dict[str, Any]:
    """Stack outputs besides chalice's own (``RestAPIId``, ``APIHandlerName``, ``APIHandlerArn``,
    ``EndpointURL``): what the guide's router step reads (docs/operating.md, Deploying step 5)."""
    out: dict[str, Any] = {"RestAPIHost": {
        "Description": "the API's own host name (the Host a private API is called by)",
        "Value": {"Fn::Sub": "${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}}}
    if stage["notify_ingress"] == "function-url":
        out["NotifyURL"] = {
            "Description": "where the daemons post their records (NOTIFY_URL: the reconcile "
                           "hands each daemon this URL with ?token=<the notify token>)",
            "Value": {"Fn::GetAtt": [NOTIFY_URL_RESOURCE, "FunctionUrl"]}}
    if stage["domain"]:
        out["RegionalDomainName"] = {
            "Description": f"the regional target of {stage['domain']}: where its DNS name points, "
                           "and where the cluster's router connects",
            "Value": {"Fn::GetAtt": ["ApiGatewayCustomDomain", "RegionalDomainName"]}}
    return out


NOTIFY_FUNCTION = "NotifyIngress"  # chalice's name for app.py's notify_ingress function
NOTIFY_URL_RESOURCE = "NotifyIngressUrl"
NOTIFY_ROUTE = "/api/v2/system/notify"


def notify_resources(stage: Mapping[str, Any]) -> dict[str, Any]:
    """The notify function's URL (no auth at the URL: the function checks the notify token, as the
    REST route does), the two permissions a URL with ``AuthType: NONE`` needs (since October 2025
    a new function URL needs ``lambda:InvokeFunction`` as well as ``lambda:InvokeFunctionUrl``),
    the URL handed to the other functions as ``NOTIFY_URL``, and the function's logs as JSON with
    Lambda's own START/END/REPORT lines left out (system level WARN)."""
    function = {"Ref": NOTIFY_FUNCTION}
    out: dict[str, Any] = {NOTIFY_FUNCTION: {"Properties": {"LoggingConfig": {
        "LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "WARN"}}}}
    if stage["notify_ingress"] != "function-url":
        return out
    url = {"Fn::GetAtt": [NOTIFY_URL_RESOURCE, "FunctionUrl"]}
    out.update({
        NOTIFY_URL_RESOURCE: {"Type": "AWS::Lambda::Url", "Properties": {
            "AuthType": "NONE", "InvokeMode": "BUFFERED",
            "TargetFunctionArn": {"Fn::GetAtt": [NOTIFY_FUNCTION, "Arn"]}}},
        "NotifyIngressUrlPermission": {"Type": "AWS::Lambda::Permission", "Properties": {
            "Action": "lambda:InvokeFunctionUrl", "FunctionName": function, "Principal": "*",
            "FunctionUrlAuthType": "NONE"}},
        "NotifyIngressInvokePermission": {"Type": "AWS::Lambda::Permission", "Properties": {
            "Action": "lambda:InvokeFunction", "FunctionName": function, "Principal": "*",
            "InvokedViaFunctionUrl": True}},
    })
    for name in ("APIHandler", "ScheduledReconcile"):  # the reconcile hands it out; ready checks it
        if "NOTIFY_URL" in stage["environment"]:  # --notify-url: another address, on purpose
            break
        out[name] = {"Properties": {"Environment": {"Variables": {"NOTIFY_URL": url}}}}
    return out


def api_throttles(stage: Mapping[str, Any]) -> dict[str, Any]:
    """The REST API stage's throttles: every route at ``--api-rate-limit``/``--api-burst-limit``
    (people, lain-cli, the dashboard, a scrape: each call may fan out to the daemons), the notify
    route at the modelled herd (a throttled call is answered 503, which a daemon posts again)."""
    notify = stage["sizing"]["rest_rate"]
    return {"RestAPI": {"Properties": {"MethodSettings": [
        {"ResourcePath": "/*", "HttpMethod": "*", "ThrottlingRateLimit": stage["api_rate_limit"],
         "ThrottlingBurstLimit": stage["api_burst_limit"]},
        {"ResourcePath": "/" + NOTIFY_ROUTE.replace("/", "~1"), "HttpMethod": "POST",
         "ThrottlingRateLimit": min(notify, API_GATEWAY_ACCOUNT_RPS),
         "ThrottlingBurstLimit": min(notify, API_GATEWAY_ACCOUNT_BURST)},
    ]}}}


def table_resource(stage: Mapping[str, Any]) -> dict[str, Any]:
    """The table, warmed for the modelled peak of writes when an on-demand table's own start
    (4,000 WRU/s) is short of it: the table and its index (an index short of write capacity
    throttles the table's writes too). A one-time charge, nothing a month."""
    table = copy.deepcopy(table_schema.cloudformation_table(stage["table_name"]))
    writes = stage["sizing"]["table_writes"]
    if writes and stage["deployed"]:
        warm = {"WriteUnitsPerSecond": writes}
        table["Properties"]["WarmThroughput"] = warm
        for index in table["Properties"]["GlobalSecondaryIndexes"]:
            index["WarmThroughput"] = dict(warm)
    return table


def merged(*parts: Mapping[str, Any]) -> dict[str, Any]:
    """Resources deep-merged, later parts adding to (or replacing leaves of) earlier ones."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    return out


def render(stages: Sequence[dict[str, Any]]) -> dict[str, str]:
    """File name (under .chalice/) -> content, for the given stage values."""
    jinja = Environment(loader=FileSystemLoader(ROOT / "scripts" / "templates"),
                        undefined=StrictUndefined, keep_trailing_newline=True)
    files = {"config.json": jinja.get_template("config.json.j2").render(stages=stages)}
    policy = jinja.get_template("policy.json.j2")
    for stage in stages:
        files[stage["policy_file"]] = policy.render(
            stage=stage, dynamodb_actions=table_schema.DYNAMODB_ACTIONS, vpc=bool(stage["subnet_ids"]))
        deployed = {**notify_resources(stage), **api_throttles(stage)} if stage["deployed"] else {}
        resources: dict[str, Any] = {"Resources": merged(
            table_schema.cloudformation_resources(stage["table_name"]),
            {"ControllerTable": table_resource(stage),
             # chalice 1.34 names the API function APIHandler but its log group ${ApiHandler}
             "ApiHandlerLogGroup": {"Properties": {
                 "LogGroupName": {"Fn::Sub": "/aws/lambda/${APIHandler}"}}}},
            deployed, stage["network"], stage["alarms"])}
        if stage["name"] != "local":
            resources["Outputs"] = outputs(stage)
        files[f"resources-{stage['name']}.json"] = json.dumps(resources, indent=2) + "\n"
    for text in files.values():
        json.loads(text)  # a template bug must fail here, not at deploy time
    return files


def project_dir(stage: str, out: Path | None) -> Path:
    """Where ``stage`` renders: the local stage into the repository's own ``.chalice/`` (the
    committed files), a deployed stage into ``deploy/<stage>/`` (git-ignored), a chalice project
    of its own; ``out`` instead when given. The repository's tracked ``.chalice/`` never receives a
    deployed stage, and no dir is written over that this script did not render."""
    target = (out if out is not None else ROOT if stage == "local" else DEPLOY_DIR / stage).resolve()
    if target == ROOT:
        if stage != "local":
            raise ConfigError(
                f"--out {out}: the repository's tracked .chalice/config.json holds the local stage "
                f"only; render {stage} into deploy/{stage}/ (the default, git-ignored) or another "
                "--out dir, and package it from there")
        return target
    if ROOT in target.parents and DEPLOY_DIR not in target.parents:
        raise ConfigError(f"--out {out}: inside the repository a stage renders into "
                          "deploy/<stage>/ (git-ignored), nowhere else")
    if target.is_file() or (target.is_dir() and any(target.iterdir()) and not _ours(target)):
        raise ConfigError(f"--out {out} holds files this script did not render: give a new or "
                          "empty dir (or one it rendered before)")
    return target


def _ours(target: Path) -> bool:
    """A project dir rendered before: its ``.chalice/config.json`` is this app's."""
    try:
        return bool(json.loads((target / ".chalice" / "config.json").read_text())
                    .get("app_name") == APP_NAME)
    except (OSError, ValueError, AttributeError):
        return False


def write(target: Path, files: Mapping[str, str]) -> list[Path]:
    """Write the rendered ``.chalice/`` files into ``target``; anywhere but the repository, with
    what ``chalice package`` bundles beside them (the app, ``chalicelib/``, the requirements)."""
    config = target / ".chalice"
    if target != ROOT:
        config.mkdir(parents=True, exist_ok=True)
        for old in config.glob("*.json"):  # another stage rendered here before
            old.unlink()
        shutil.rmtree(target / "chalicelib", ignore_errors=True)  # no module left from before
        shutil.copytree(ROOT / "chalicelib", target / "chalicelib",
                        ignore=shutil.ignore_patterns("__pycache__"))
        for name in PROJECT_FILES:
            shutil.copy(ROOT / name, target / name)
    written = []
    for name, text in files.items():
        (config / name).write_text(text)
        written.append(config / name)
    return written


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stage", default="local", choices=STAGES,
                   help="the stage to render (default %(default)s, into the repository's .chalice/)")
    p.add_argument("--out", type=Path, help="the project dir to render into (default: the "
                                           "repository for local, deploy/<stage>/ otherwise)")
    for f in setting_fields():
        p.add_argument("--" + f.name.replace("_", "-"), dest=f.name,
                       help=f"{f.metadata['env']} (default {f.default!r})")
    for name, text in DEPLOY_OPTIONS.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, help=text)
    for name, text in SWITCHES.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, action="store_true", help=text)
    return p


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = parser().parse_args(argv)
    env = os.environ if env is None else env
    try:
        stage = stage_values(args.stage, vars(args), env)
        target = project_dir(args.stage, args.out)
    except ConfigError as e:
        print(f"render_config: {e}", file=sys.stderr)
        return 2
    for path in write(target, render([stage])):
        print(f"wrote {path}")
    needed = stage["sizing"]["account_concurrency"]
    if stage["deployed"] and needed > LAMBDA_ACCOUNT_CONCURRENCY:
        print(f"note: the notify function reserves {stage['sizing']['reserved_concurrency']:,} "
              f"concurrent executions for {stage['sizing']['peak_posts']:,} posts/s: the account's "
              f"Lambda concurrency quota in this region must be at least {needed:,} (default "
              f"{LAMBDA_ACCOUNT_CONCURRENCY:,}) before the deploy, or it fails")
    if target != ROOT:
        shown = os.path.relpath(target)
        shown = str(target) if shown.startswith("..") else shown
        stage_name = args.stage
        print(f"package it (with Python 3.13; docs/operating.md, Deploying step 4):\n"
              f"  python -m compileall -q --invalidation-mode checked-hash {shown}/chalicelib\n"
              f"  (cd {shown} && chalice package --stage {stage_name} --merge-template "
              f".chalice/resources-{stage_name}.json out/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
