"""What a cold start imports, as facts (not times: those are in scripts/bench.py). Each check runs
in a fresh interpreter, so nothing this test process imported can hide an import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.reference import ROOT

HEAVY = ("boto3", "botocore", "croniter", "requests", "urllib3", "s3transfer", "dateutil")


def imported_by(module: str) -> set[str]:
    code = (f"import sys, json, {module}; "
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    return set(json.loads(out)) & set(HEAVY)


def test_importing_the_app_imports_no_aws_sdk_no_http_client_and_no_croniter():
    assert imported_by("app") == set()


@pytest.mark.parametrize(("usecase", "allowed"), [
    ("backups", {"urllib3"}),  # listings ask lainlet and the daemons: no DynamoDB, no schedules
    ("jobs", {"urllib3"}),
    ("records", {"urllib3"}),  # boto3 is imported when the table is first used, not before
    ("health", {"urllib3"}),
])
def test_a_use_case_imports_only_what_it_uses(usecase, allowed):
    assert imported_by(f"chalicelib.usecases.{usecase}") <= allowed
