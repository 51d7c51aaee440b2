#!/usr/bin/env python3
"""Render ``.chalice/config.json``, the IAM policies and the package resources from jinja2 templates.

    python scripts/render_config.py                       # local stage only (committed)
    python scripts/render_config.py --stage prod \\
        --lainlet-url http://lainlet.lain:9001 --advertise-url https://backupctl.example \\
        --subnet-ids subnet-1,subnet-2 --security-group-ids sg-1

The local stage is always rendered. Values come from flags, else from the environment (the
setting names in the README, plus SUBNET_IDS / SECURITY_GROUP_IDS), else from the stage defaults.
``chalice local`` overwrites the process environment with a stage's variables, so the local stage
only sets values that are the same on every machine; the local runner supplies the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib.edges import schema  # noqa: E402

STAGES = ("local", "dev", "prod")
DEFAULTS: dict[str, dict[str, Any]] = {
    "local": {"table_name": "backupctl-local", "memory": 256, "timeout": 60},
    "dev": {"table_name": "backupctl-dev", "memory": 512, "timeout": 60,
            "lainlet_url": "http://lainlet.lain:9001"},
    "prod": {"table_name": "backupctl-prod", "memory": 1024, "timeout": 120,
             "lainlet_url": "http://lainlet.lain:9001"},
}
# flag/attribute name -> environment variable that fills the Lambda setting of the same meaning
PASSED_SETTINGS = {
    "lainlet_url": "LAINLET_URL",
    "advertise_url": "ADVERTISE_URL",
    "notify_token": "NOTIFY_TOKEN",
    "api_token": "API_TOKEN",
    "node_timeout_seconds": "NODE_TIMEOUT_SECONDS",
    "fanout_workers": "FANOUT_WORKERS",
}


class ConfigError(ValueError):
    """A stage cannot be rendered with the values given."""


def stage_values(stage: str, flags: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The template values of one stage: flag, else environment, else default."""
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    defaults = DEFAULTS[stage]
    from_env = stage != "local"  # the committed local config must not depend on who renders it

    def pick(name: str, env_name: str, default: Any = "") -> Any:
        value = flags.get(name)
        if value in (None, "") and from_env:
            value = env.get(env_name, "")
        return value if value not in (None, "") else defaults.get(name, default)

    table_name = pick("table_name", "TABLE_NAME")
    environment = {"TABLE_NAME": table_name}
    for name, env_name in PASSED_SETTINGS.items():
        value = pick(name, env_name)
        if value not in (None, ""):
            environment[env_name] = str(value)
    subnets = _split(pick("subnet_ids", "SUBNET_IDS"))
    groups = _split(pick("security_group_ids", "SECURITY_GROUP_IDS"))
    if stage == "prod":
        if not subnets or not groups:
            raise ConfigError("prod needs --subnet-ids and --security-group-ids: the functions "
                              "must run in the VPC that reaches the node IPs")
        if not environment.get("ADVERTISE_URL"):
            raise ConfigError("prod needs --advertise-url: the daemons post records there")
    if bool(subnets) != bool(groups):
        raise ConfigError(f"{stage}: give both subnet ids and security group ids, or neither")
    return {
        "name": stage,
        "table_name": table_name,
        "memory": int(pick("memory", "LAMBDA_MEMORY_MB")),
        "timeout": int(pick("timeout", "LAMBDA_TIMEOUT_SECONDS")),
        "subnet_ids": subnets,
        "security_group_ids": groups,
        "environment": environment,
        "policy_file": f"policy-{stage}.json",
    }


def _split(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v]
    return [v.strip() for v in str(value or "").split(",") if v.strip()]


def render(stages: Sequence[dict[str, Any]]) -> dict[str, str]:
    """File name (under .chalice/) -> content, for the given stage values."""
    jinja = Environment(loader=FileSystemLoader(ROOT / "scripts" / "templates"),
                        undefined=StrictUndefined, keep_trailing_newline=True)
    files = {"config.json": jinja.get_template("config.json.j2").render(stages=stages)}
    policy = jinja.get_template("policy.json.j2")
    for stage in stages:
        files[stage["policy_file"]] = policy.render(
            table_name=stage["table_name"], dynamodb_actions=schema.DYNAMODB_ACTIONS,
            vpc=bool(stage["subnet_ids"]))
        resources = {"Resources": schema.cloudformation_resources(stage["table_name"])}
        files[f"resources-{stage['name']}.json"] = json.dumps(resources, indent=2) + "\n"
    for text in files.values():
        json.loads(text)  # a template bug must fail here, not at deploy time
    return files


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", action="append", default=[], choices=STAGES,
                        help="stage to render besides local (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / ".chalice", help="output directory")
    for name in ("table_name", "lainlet_url", "advertise_url", "notify_token", "api_token",
                 "node_timeout_seconds", "fanout_workers", "subnet_ids", "security_group_ids",
                 "memory", "timeout"):
        parser.add_argument("--" + name.replace("_", "-"), dest=name)
    args = parser.parse_args(argv)
    flags = vars(args)
    env = os.environ if env is None else env
    names = ["local", *dict.fromkeys(s for s in args.stage if s != "local")]
    try:
        stages = [stage_values(s, flags if s != "local" else {}, env) for s in names]
    except ConfigError as e:
        print(f"render_config: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in render(stages).items():
        (args.out / name).write_text(text)
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
