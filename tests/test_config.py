"""Config rendering: every stage renders, packages with chalice and passes cfn-lint."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import render_config
from tests.reference import ROOT

SUBNETS = "subnet-0123456789abcdef0,subnet-0fedcba9876543210"
GROUPS = "sg-0123456789abcdef0"
# E2533: cfn-lint 1.51 reports Lambda's python3.11 runtime as deprecated (creation disabled
# 2026-07-31). Chalice takes the runtime from the interpreter and the stack fixes Python 3.11,
# so this is reported to the team rather than hidden; every other check applies.
IGNORED_CHECKS = "E2533"


def tool(name: str) -> str:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name) or name


def test_committed_local_config_is_current(tmp_path):
    assert render_config.main(["--out", str(tmp_path)], env={}) == 0
    for name in ("config.json", "policy-local.json", "resources-local.json"):
        assert (tmp_path / name).read_text() == (ROOT / ".chalice" / name).read_text(), name


def test_local_stage_ignores_the_renderers_environment(tmp_path):
    render_config.main(["--out", str(tmp_path)], env={"LAINLET_URL": "http://mine:1"})
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["stages"]["local"]["environment_variables"] == {"TABLE_NAME": "backupctl-local"}


def test_prod_needs_vpc_and_advertise_url(tmp_path, capsys):
    assert render_config.main(["--out", str(tmp_path), "--stage", "prod"], env={}) == 2
    assert "subnet-ids" in capsys.readouterr().err
    args = ["--out", str(tmp_path), "--stage", "prod", "--subnet-ids", SUBNETS,
            "--security-group-ids", GROUPS]
    assert render_config.main(args, env={}) == 2
    assert "advertise-url" in capsys.readouterr().err


def test_values_from_flags_and_environment(tmp_path):
    env = {"SUBNET_IDS": SUBNETS, "SECURITY_GROUP_IDS": GROUPS, "ADVERTISE_URL": "https://ctl.x",
           "NOTIFY_TOKEN": "s3cret"}
    assert render_config.main(["--out", str(tmp_path), "--stage", "prod", "--table-name", "t1"],
                              env=env) == 0
    prod = json.loads((tmp_path / "config.json").read_text())["stages"]["prod"]
    assert prod["subnet_ids"] == SUBNETS.split(",") and prod["security_group_ids"] == [GROUPS]
    assert prod["environment_variables"]["TABLE_NAME"] == "t1"
    assert prod["environment_variables"]["NOTIFY_TOKEN"] == "s3cret"
    policy = json.loads((tmp_path / "policy-prod.json").read_text())
    table_stmt = next(s for s in policy["Statement"] if s["Sid"] == "ControllerTable")
    assert all(r.startswith("arn:aws:dynamodb:*:*:table/t1") for r in table_stmt["Resource"])
    assert not any(a in ("dynamodb:*", "dynamodb:Scan") for a in table_stmt["Action"])


@pytest.mark.timeout(600)
def test_every_stage_packages_and_lints(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "app.py", project)
    shutil.copy(ROOT / "requirements.txt", project)
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {"SUBNET_IDS": SUBNETS, "SECURITY_GROUP_IDS": GROUPS, "ADVERTISE_URL": "https://ctl.x"}
    assert render_config.main(["--out", str(project / ".chalice"), "--stage", "dev",
                               "--stage", "prod"], env=env) == 0
    run_env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    for stage in ("local", "dev", "prod"):
        out = tmp_path / f"out-{stage}"
        done = subprocess.run(
            [tool("chalice"), "package", "--stage", stage, "--merge-template",
             f".chalice/resources-{stage}.json", str(out)],
            cwd=project, env=run_env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        template = json.loads((out / "sam.json").read_text())
        assert template["Resources"]["ControllerTable"]["Properties"][
            "PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
        assert body["paths"]  # merged into chalice's API, not replacing it
        assert body["x-amazon-apigateway-gateway-responses"]["MISSING_AUTHENTICATION_TOKEN"][
            "statusCode"] == 404
        function = template["Resources"]["APIHandler"]["Properties"]
        assert ("VpcConfig" in function) == (stage != "local")
        lint = subprocess.run([tool("cfn-lint"), "--ignore-checks", IGNORED_CHECKS, "--",
                               str(out / "sam.json")], capture_output=True, text=True, timeout=120)
        assert lint.returncode == 0, f"{stage}: {lint.stdout}{lint.stderr}"
