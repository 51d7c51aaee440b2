"""Deploy config: every setting reaches every stage, secrets reach none, and every stage packages
with chalice (Python 3.13) and passes cfn-lint with no rule ignored."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from scripts import render_config
from tests.reference import ROOT

SUBNETS = "subnet-0123456789abcdef0,subnet-0fedcba9876543210"
GROUPS = "sg-0123456789abcdef0"
VPC = "vpc-0123456789abcdef0"
ROUTES = "rtb-0123456789abcdef0,rtb-0fedcba9876543210"
# functions in these subnets reach DynamoDB and SSM some way of the VPC's own (NAT, endpoints)
NETWORK = ["--subnet-ids", SUBNETS, "--security-group-ids", GROUPS, "--endpoints", "none"]
VPCE = "vpce-0123456789abcdef0"
RELAY = "http://10.106.0.9:9001"  # a lainlet relay the functions reach (docs/operating.md)
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
SECRETS = {"NOTIFY_TOKEN": "notify-7d1f0c2e9a", "API_TOKEN": "api-5b8e3a61cc"}
PROD = ["--stage", "prod", *NETWORK,
        "--advertise-url", "https://backupctl.lain.example", "--lainlet-url", RELAY,
        "--notify-token-param", "/backupctl/prod/notify-token"]


def tool(name: str) -> str:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name) or name


def rendered(tmp_path, args, env=None):
    """Render into a fresh project dir: (its .chalice/, the stages of its config)."""
    out = tmp_path / "project"
    assert render_config.main(["--out", str(out), *args], env=env or {}) == 0
    return out / ".chalice", json.loads((out / ".chalice" / "config.json").read_text())["stages"]


def test_committed_local_config_is_current(tmp_path):
    out, stages = rendered(tmp_path, [])
    assert list(stages) == ["local"]
    for name in ("config.json", "policy-local.json", "resources-local.json"):
        assert (out / name).read_text() == (ROOT / ".chalice" / name).read_text(), name
    committed = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]
    assert list(committed) == ["local"]  # a deployed stage lives in deploy/<stage>/, never here


DEPLOYED = ["--stage", "prod", *NETWORK,
            "--advertise-url", "https://backupctl.lain.example", "--lainlet-url", RELAY,
            "--notify-token-param", "/backupctl/prod/notify-token", "--open-api"]


def test_a_deployed_stage_renders_into_a_project_of_its_own(tmp_path, capsys):
    """deploy/<stage>/ by default (git-ignored): the app, chalicelib, the requirements and a
    .chalice/ holding that stage only; rendering again replaces it (no module left behind)."""
    assert render_config.project_dir("prod", None) == ROOT / "deploy" / "prod"
    assert render_config.project_dir("local", None) == ROOT
    assert "/deploy/" in (ROOT / ".gitignore").read_text().splitlines()
    out = tmp_path / "prod"
    assert render_config.main([*DEPLOYED, "--out", str(out)], env={}) == 0
    assert f"(cd {out} && chalice package --stage prod" in capsys.readouterr().out
    assert sorted(p.name for p in (out / ".chalice").iterdir()) == [
        "config.json", "policy-prod.json", "resources-prod.json"]
    assert list(json.loads((out / ".chalice" / "config.json").read_text())["stages"]) == ["prod"]
    for name in render_config.PROJECT_FILES:
        assert (out / name).read_bytes() == (ROOT / name).read_bytes()
    assert (out / "chalicelib" / "edges" / "table.py").read_bytes() == \
        (ROOT / "chalicelib" / "edges" / "table.py").read_bytes()
    assert not list(out.joinpath("chalicelib").rglob("__pycache__"))
    (out / "chalicelib" / "gone.py").write_text("")
    assert render_config.main([*DEPLOYED, "--stage", "dev", "--out", str(out)], env={}) == 0
    assert not (out / "chalicelib" / "gone.py").exists()
    assert sorted(p.name for p in (out / ".chalice").iterdir()) == [
        "config.json", "policy-dev.json", "resources-dev.json"]


@pytest.mark.parametrize("where, words", [
    (lambda tmp: ROOT, "tracked .chalice/config.json holds the local stage only"),
    (lambda tmp: ROOT / "chalicelib", "deploy/<stage>/ (git-ignored), nowhere else"),
    (lambda tmp: tmp / "elsewhere", "did not render"),
])
def test_a_deployed_stage_never_overwrites_files_it_did_not_render(tmp_path, capsys, where, words):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "notes.txt").write_text("mine")
    before = {p: p.read_bytes() for p in (ROOT / ".chalice").iterdir() if p.is_file()}
    assert render_config.main([*DEPLOYED, "--out", str(where(tmp_path))], env={}) == 2
    assert words in capsys.readouterr().err
    assert {p: p.read_bytes() for p in (ROOT / ".chalice").iterdir() if p.is_file()} == before
    assert (tmp_path / "elsewhere" / "notes.txt").read_text() == "mine"


def test_local_stage_ignores_the_renderers_flags_and_environment(tmp_path):
    _, stages = rendered(tmp_path, ["--lainlet-url", "http://flag:1"], {"LAINLET_URL": "http://mine:1"})
    assert stages["local"]["environment_variables"] == {"TABLE_NAME": "backupctl-local"}


@pytest.mark.parametrize("args, words", [
    (["--stage", "prod"], "subnet-ids"),
    (["--stage", "prod", "--subnet-ids", SUBNETS, "--security-group-ids", GROUPS], "advertise-url"),
    (PROD[:-2], "notify-token-param"),
    ([*PROD, "--open-api", "--lainlet-url", "http://lainlet.lain:9001"], "relay reachable from the subnets"),
    (["--stage", "prod", "--subnet-ids", SUBNETS, "--security-group-ids", GROUPS, "--open-api",
      "--advertise-url", "https://b.x", "--lainlet-url", RELAY, "--notify-token-param", "/n"],
     "--endpoints dynamodb,ssm --vpc-id"),
    (["--stage", "dev", "--lainlet-url", RELAY, "--endpoints", "ssm"], "serve functions in a VPC"),
    ([*PROD, "--open-api", "--endpoints", "dynamodb,s3"], "name dynamodb, ssm (or both), or none"),
    ([*PROD, "--open-api", "--endpoints", "none,ssm"], "or none alone"),
    ([*PROD, "--open-api", "--endpoints", "ssm"], "needs --vpc-id vpc-"),
    ([*PROD, "--open-api", "--endpoints", "dynamodb", "--vpc-id", VPC], "needs --route-table-ids rtb-"),
    ([*PROD, "--open-api", "--endpoints", "ssm", "--vpc-id", VPC, "--route-table-ids", ROUTES],
     "nothing would use them"),
    (PROD, "--api-token-param"),
    ([*PROD, "--private-api"], "--vpc-endpoint"),
    ([*PROD, "--api-token-param", "/p", "--domain", "backupctl.x"], "certificate-arn"),
    ([*PROD, "--api-token-param", "/p", "--api-timeout", "60"], "at most 29"),
    ([*PROD, "--api-token-param", "/p", "--node-timeout-seconds", "abc"], "NODE_TIMEOUT_SECONDS"),
    ([*PROD, "--api-token-param", "/p", "--alarm-email", "ops"], "not an e-mail address"),
    ([*PROD, "--api-token-param", "/p", "--alarm-webhook", "http://hooks.x/"], "https:// URL"),
    ([*PROD, "--api-token-param", "/p", "--alarm-failed-runs", "0"], "1 to 1440 minutes"),
    ([*PROD, "--open-api", "--reconcile-timeout", "900", "--reconcile-lease-seconds", "300"],
     "shorter than the reconcile function's timeout (900 s)"),
])
def test_prod_refuses_what_cannot_work_or_is_unsafe(tmp_path, capsys, args, words):
    assert render_config.main(["--out", str(tmp_path), *args], env={}) == 2
    assert words in capsys.readouterr().err


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_a_deployed_stage_needs_a_lainlet_its_functions_can_resolve(tmp_path, capsys, stage):
    """Without --lainlet-url a stage would ask lainlet.lain, which only the cluster's DNS knows."""
    args = ["--stage", stage, *NETWORK, "--advertise-url", "https://backupctl.lain.example",
            "--notify-token-param", "/n", "--open-api"]
    assert render_config.main(["--out", str(tmp_path), *args], env={}) == 2
    err = capsys.readouterr().err
    assert "--lainlet-url" in err and "cannot resolve lainlet.lain" in err and "lainlet access" in err
    _, stages = rendered(tmp_path, args, {"LAINLET_URL": RELAY})  # the environment serves too
    assert stages[stage]["environment_variables"]["LAINLET_URL"] == RELAY


@pytest.mark.parametrize("choice", [["--api-token-param", "/backupctl/prod/api-token"],
                                    ["--private-api", "--vpc-endpoint", VPCE], ["--open-api"]])
def test_prod_renders_with_an_api_token_a_private_api_or_an_open_api_on_purpose(tmp_path, choice):
    _, stages = rendered(tmp_path, [*PROD, *choice])
    assert stages["prod"]["environment_variables"]["NOTIFY_TOKEN_PARAM"] == "/backupctl/prod/notify-token"


def test_the_reconcile_lease_lasts_as_long_as_the_reconcile_may_run(tmp_path):
    _, stages = rendered(tmp_path, [*PROD, "--open-api", "--reconcile-timeout", "900"])
    assert stages["prod"]["lambda_functions"]["scheduled_reconcile"]["lambda_timeout"] == 900
    assert stages["prod"]["environment_variables"]["RECONCILE_LEASE_SECONDS"] == "900"


def distinct_value(field):
    if isinstance(field.default, bool):
        return str(not field.default).lower()
    if field.name == "evidence_app_targets":  # checked when read: a value of its own grammar
        return "v-app:rpo_hours=1.5,drill_days=3"
    if isinstance(field.default, str):
        return "http://x-" + field.name.replace("_", "-") if field.name.endswith("url") \
            else "v-" + field.name.replace("_", "-")
    return str(int(field.default) + 7 if isinstance(field.default, int) else field.default + 1.5)


@pytest.mark.parametrize("stage", ["dev", "prod"])
@pytest.mark.parametrize("source", ["flag", "env"])
def test_every_setting_reaches_every_stage(tmp_path, stage, source):
    fields = render_config.setting_fields()
    values = {f.metadata["env"]: distinct_value(f) for f in fields}
    args = ["--stage", stage, *NETWORK, "--open-api"]
    if source == "flag":
        args += [x for f in fields for x in ("--" + f.name.replace("_", "-"), values[f.metadata["env"]])]
        env = {}
    else:
        env = values
    _, stages = rendered(tmp_path, args, env)
    environment = stages[stage]["environment_variables"]
    assert {k: environment.get(k) for k in values} == values
    assert not {"NOTIFY_TOKEN", "API_TOKEN"} & set(environment)


VARIANTS = {
    "local": [],
    "dev": ["--stage", "dev", *NETWORK, "--lainlet-url", RELAY,
            "--alarm-email", "ops@lain.example,oncall@lain.example",
            "--alarm-webhook", "https://hooks.lain.example/backupctl", "--alarm-failed-runs", "5"],
    # the stack makes both endpoints its functions need in the subnets
    "prod": [*PROD, "--api-token-param", "/backupctl/prod/api-token",
             "--domain", "backupctl.lain.example", "--certificate-arn", CERT,
             "--endpoints", "dynamodb,ssm", "--vpc-id", VPC, "--route-table-ids", ROUTES],
    "prod-private": [*PROD, "--api-token-param", "/backupctl/prod/api-token", "--private-api",
                     "--endpoints", "ssm", "--vpc-id", VPC,
                     "--vpc-endpoint", VPCE, "--domain", "backupctl.lain.example",
                     "--kms-key-arn", "arn:aws:kms:us-east-1:123456789012:key/abcd"],
}


def package(project: Path, variant: str, *, requirements: bool) -> subprocess.CompletedProcess[str]:
    """Render ``variant`` into a project dir of its own, as the guide does (the secrets in the
    renderer's environment), and ``chalice package`` it there. Without ``requirements`` the
    bundle holds the app's own code only: the template is the same, and no package index is asked
    for the third-party wheels."""
    args = VARIANTS[variant]
    env_secrets = {**SECRETS, "NOTIFY_TOKEN_PARAM": "", "API_TOKEN_PARAM": ""}
    assert render_config.main(["--out", str(project), *args],
                              env={**env_secrets, "SUBNET_IDS": ""}) == 0
    if not requirements:
        (project / "requirements.txt").write_text("")
    stage = args[1] if args else "local"
    return subprocess.run(
        [tool("chalice"), "package", "--stage", stage, "--merge-template",
         f".chalice/resources-{stage}.json", str(project / "out")],
        cwd=project, env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1", **SECRETS},
        capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    """Each variant rendered and packaged (its template; no third-party wheels: offline too)."""
    out = {}
    for variant in VARIANTS:
        project = tmp_path_factory.mktemp(variant)
        done = package(project, variant, requirements=False)
        assert done.returncode == 0, done.stdout + done.stderr
        out[variant] = (project, json.loads((project / "out" / "sam.json").read_text()))
    return out


def index_unreachable() -> str:
    """Why requirements.txt's wheels cannot be had ("" when they can): the bundle needs them."""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                               "--disable-pip-version-check", "-r", str(ROOT / "requirements.txt"),
                               "-d", tmp], capture_output=True, text=True, timeout=180)
    return "" if done.returncode == 0 else (done.stderr.strip().splitlines() or ["no answer"])[-1]


@pytest.mark.timeout(600)
def test_the_bundle_builds_with_its_requirements_for_lambda(tmp_path):
    """The deploy bundle with its wheels (chalice fetches them for Lambda's platform from the
    package index). Offline there is no index to fetch from: skipped, saying so."""
    why = index_unreachable()
    if why:
        pytest.skip(f"chalice package fetches requirements.txt's wheels from the package index, "
                    f"which cannot be reached here ({why[:200]})")
    done = package(tmp_path, "prod", requirements=True)
    assert done.returncode == 0, done.stdout + done.stderr
    import zipfile

    names = zipfile.ZipFile(tmp_path / "out" / "deployment.zip").namelist()
    assert any(n.startswith("croniter/") for n in names) and "app.py" in names
    assert not any(n.startswith(("moto/", "pytest/", "hypothesis/")) for n in names)  # test tools


@pytest.mark.timeout(600)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_stage_packages_for_python_313_and_lints_clean(packaged, variant):
    project, template = packaged[variant]
    functions = {k: v["Properties"] for k, v in template["Resources"].items()
                 if v["Type"] == "AWS::Serverless::Function"}
    assert {f["Runtime"] for f in functions.values()} == {"python3.13"}
    api, reconcile = functions["APIHandler"], functions["ScheduledReconcile"]
    assert api["Timeout"] <= 29 and reconcile["ReservedConcurrentExecutions"] == 1
    assert reconcile["Timeout"] > api["Timeout"]
    assert template["Resources"]["ControllerTable"]["Properties"][
        "PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    assert body["paths"]  # merged into chalice's API, not replacing it
    assert set(body["x-amazon-apigateway-gateway-responses"]) == {
        "MISSING_AUTHENTICATION_TOKEN", "THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX"}
    assert body["x-amazon-apigateway-gateway-responses"]["THROTTLED"]["statusCode"] == 503
    assert ("VpcConfig" in api) == (variant != "local")
    lint = subprocess.run([tool("cfn-lint"), "--", str(project / "out" / "sam.json")],
                          capture_output=True, text=True, timeout=120)
    assert lint.returncode == 0 and lint.stdout.strip() == "", f"{variant}: {lint.stdout}{lint.stderr}"


def test_domain_and_private_api(packaged):
    public = packaged["prod"][1]["Resources"]
    assert public["ApiGatewayCustomDomain"]["Properties"]["DomainName"] == "backupctl.lain.example"
    assert public["ApiGatewayCustomDomainMapping"]["Properties"]["BasePath"] == "(none)"  # /api/v2 at root
    private = packaged["prod-private"][1]["Resources"]
    assert "ApiGatewayCustomDomain" not in private  # the cluster's router is the name lain-cli uses
    props = private["RestAPI"]["Properties"]
    assert props["EndpointConfiguration"] == "PRIVATE"
    [allow] = props["DefinitionBody"]["x-amazon-apigateway-policy"]["Statement"]
    assert allow["Effect"] == "Allow" and allow["Condition"] == {"StringEquals": {"aws:SourceVpce": VPCE}}


def test_the_stack_makes_the_vpc_endpoints_its_functions_need(packaged):
    """Functions in subnets with no NAT reach DynamoDB and SSM only through VPC endpoints:
    --endpoints dynamodb,ssm makes both, --endpoints none none (a NAT or the VPC's own)."""
    resources = packaged["prod"][1]["Resources"]
    endpoints = {k: v["Properties"] for k, v in resources.items()
                 if v["Type"] == "AWS::EC2::VPCEndpoint"}
    assert set(endpoints) == {"DynamoDbEndpoint", "SsmEndpoint"}
    table = endpoints["DynamoDbEndpoint"]
    assert table["VpcEndpointType"] == "Gateway" and table["VpcId"] == VPC
    assert table["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.dynamodb"}
    assert table["RouteTableIds"] == ROUTES.split(",")
    ssm = endpoints["SsmEndpoint"]
    assert ssm["VpcEndpointType"] == "Interface" and ssm["PrivateDnsEnabled"] is True
    assert ssm["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.ssm"}
    assert ssm["SubnetIds"] == SUBNETS.split(",")  # where the functions run
    assert ssm["SecurityGroupIds"] == [{"Ref": "SsmEndpointSecurityGroup"}]
    group = resources["SsmEndpointSecurityGroup"]["Properties"]
    assert group["VpcId"] == VPC
    assert [(r["IpProtocol"], r["FromPort"], r["ToPort"], r["SourceSecurityGroupId"])
            for r in group["SecurityGroupIngress"]] == [("tcp", 443, 443, GROUPS)]  # the functions
    functions = [v["Properties"] for v in resources.values() if v["Type"] == "AWS::Serverless::Function"]
    assert {tuple(f["VpcConfig"]["SubnetIds"]) for f in functions} == {tuple(SUBNETS.split(","))}
    private = packaged["prod-private"][1]["Resources"]
    assert {k for k, v in private.items() if v["Type"] == "AWS::EC2::VPCEndpoint"} == {"SsmEndpoint"}
    assert not [v for v in packaged["dev"][1]["Resources"].values()  # --endpoints none
                if v["Type"].startswith("AWS::EC2::")]


def test_the_alarms_watch_the_metrics_the_functions_emit(packaged):
    from chalicelib.core.formats import emf

    resources = packaged["dev"][1]["Resources"]
    alarms = {k: v["Properties"] for k, v in resources.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert {a["MetricName"] for a in alarms.values()} == {
        emf.ITEMS_BAD, emf.RECONCILE_FAILED, emf.NODES_FAILED}
    assert {a["Namespace"] for a in alarms.values()} == {"backupctl/dev"}  # the stage's setting
    assert packaged["dev"][0].joinpath(".chalice", "config.json").read_text().count(
        '"METRICS_NAMESPACE": "backupctl/dev"') == 1
    for alarm in alarms.values():
        assert alarm["Dimensions"] == [{"Name": "Service", "Value": emf.SERVICE}]
        assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": "AlarmTopic"}]
    failing = alarms["ReconcileFailingAlarm"]
    assert (failing["EvaluationPeriods"], failing["DatapointsToAlarm"]) == (5, 5)  # --alarm-failed-runs
    assert failing["TreatMissingData"] == "breaching"  # a reconcile that stops running alarms too
    assert alarms["BackupsNotFreshAlarm"]["ComparisonOperator"] == "GreaterThanThreshold"
    subscriptions = sorted((v["Properties"]["Protocol"], v["Properties"]["Endpoint"])
                           for v in resources.values() if v["Type"] == "AWS::SNS::Subscription")
    assert subscriptions == [("email", "oncall@lain.example"), ("email", "ops@lain.example"),
                             ("https", "https://hooks.lain.example/backupctl")]
    prod = packaged["prod"][1]["Resources"]
    assert len([v for v in prod.values() if v["Type"] == "AWS::CloudWatch::Alarm"]) == 3
    assert not [v for v in prod.values() if v["Type"] == "AWS::SNS::Subscription"]
    assert not [v for v in packaged["local"][1]["Resources"].values()
                if v["Type"] == "AWS::CloudWatch::Alarm"]


def test_the_role_may_read_only_its_own_parameters(packaged):
    project, _ = packaged["prod-private"]
    policy = json.loads((project / ".chalice" / "policy-prod.json").read_text())
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["TokensInSsm"]["Action"] == ["ssm:GetParameter"]
    assert by_sid["TokensInSsm"]["Resource"] == ["arn:aws:ssm:*:*:parameter/backupctl/prod/notify-token",
                                                  "arn:aws:ssm:*:*:parameter/backupctl/prod/api-token"]
    assert by_sid["DecryptTokens"]["Resource"] == "arn:aws:kms:us-east-1:123456789012:key/abcd"
    table = by_sid["ControllerTable"]
    assert all(r.startswith("arn:aws:dynamodb:*:*:table/backupctl-prod") for r in table["Resource"])
    assert not any(a in ("dynamodb:*", "dynamodb:Scan") for a in table["Action"])


def test_no_token_value_in_any_rendered_or_packaged_file(packaged):
    for variant, (project, _) in packaged.items():
        for path in [*project.joinpath(".chalice").rglob("*"), *project.joinpath("out").rglob("*")]:
            if path.is_file() and path.suffix in (".json", ".yaml", ".yml", ".txt", ".py", ""):
                text = path.read_text(errors="replace")
                for value in SECRETS.values():
                    assert value not in text, f"{variant}: {path.name} holds a token value"


GUIDE = (ROOT / "docs" / "operating.md").read_text()
README = (ROOT / "README.md").read_text()
LOCAL_RUNNER_SECTION = "The local runner against a real cluster"


def sections(text: str) -> dict[str, str]:
    """Each ``## `` section of a page by its title (what comes before the first: "")."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {"": parts[0], **dict(zip(parts[1::2], parts[2::2], strict=True))}


def commands(text: str) -> list[str]:
    """The shell commands ``text`` shows: each line of its ``sh`` blocks (continuations joined;
    a comment line of flags, the guide's alternatives, belongs to the command above it) and each
    inline ``python scripts/…`` span."""
    found: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = line.strip()
            if re.match(r"#\s+--", line) and found:
                found[-1] += " " + line.lstrip("# ").split(" #")[0]
            elif line and not line.startswith("#"):
                found.append(line.split(" #")[0])
    return found + re.findall(r"`(python3? scripts/[^`]+)`", text)


def flags_of(parser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def test_every_output_and_flag_the_guide_names_exists(packaged):
    """docs/operating.md (and the README's runner line) as written: every stack output it reads
    is in the packaged templates, every flag of every render, router, runner and chalice package
    command it shows (and every one it names in its prose) is an option of that command."""
    from chalice.cli import cli

    from scripts import local, render_router

    scripts = {"scripts/render_config.py": flags_of(render_config.parser()),
               "scripts/render_router.py": flags_of(render_router.parser()),
               "scripts/local.py": flags_of(local.parser()),
               "chalice package": {o for p in cli.commands["package"].params for o in p.opts}}
    checked = set()
    for command in commands(GUIDE) + commands(README):
        command = re.sub(r"\$\(output \w+\)", "OUTPUT", command)  # the guide's output reader
        for segment in re.split(r"&&|\|\||;|\(|\)|\|", command):
            tool = re.match(r"\s*(?:python3? (scripts/\w+\.py)|(chalice package))(.*)", segment)
            if not tool:
                continue
            name = tool[1] or tool[2]
            assert name in scripts, f"the guide runs {name}, which this test does not know"
            named = set(re.findall(r"(?<!\S)(--[a-z][a-z0-9-]*)", tool[3]))
            assert named <= scripts[name], f"{name} has no {named - scripts[name]}: {segment}"
            checked.add(name)
    assert checked == set(scripts)  # each is run somewhere, so the parse above works
    for title, text in {**sections(GUIDE), "README": README}.items():
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        named = set(re.findall(r"`(--[a-z][a-z0-9-]*)", prose))
        allowed = (scripts["scripts/local.py"] if title in (LOCAL_RUNNER_SECTION, "README") else
                   scripts["scripts/render_config.py"] | scripts["scripts/render_router.py"])
        assert named <= allowed, f"{title}: no such flag {named - allowed}"

    deploying = sections(GUIDE)["Deploying"]
    listed = re.search(r"The stack's outputs:(.*?)\n\n", deploying, re.S)
    assert listed, "the guide lists the stack's outputs"
    outputs_named = (set(re.findall(r"\$\(output (\w+)\)", deploying))
                     | set(re.findall(r"stack\s+outputs?\s+`?([A-Z]\w+)", deploying))
                     | set(re.findall(r"<([A-Z][A-Za-z]+)>", deploying))
                     | set(re.findall(r"`([A-Z][A-Za-z]+)`", listed[1])))
    assert {"RegionalDomainName", "RestAPIHost", "RestAPIId", "EndpointURL"} <= outputs_named
    deployed = {v: template["Outputs"] for v, (_, template) in packaged.items() if v != "local"}
    everywhere = set.intersection(*(set(o) for o in deployed.values()))
    missing = outputs_named - {"RegionalDomainName"} - everywhere
    assert not missing, f"the guide reads stack outputs no template has: {missing}"
    assert deployed["prod"]["RegionalDomainName"]["Value"] == {  # the public API's (--domain)
        "Fn::GetAtt": ["ApiGatewayCustomDomain", "RegionalDomainName"]}
    assert "RegionalDomainName" not in deployed["prod-private"]  # no custom domain there
    assert "AliasDomainName" not in GUIDE + (ROOT / "scripts" / "render_router.py").read_text()


def test_a_throttled_call_is_a_503_so_a_daemon_posts_its_record_again():
    """API Gateway answers a throttled call 429, which a daemon never retries (only a 5xx or no
    answer): the deployed API answers 503 instead."""
    from chalicelib.edges.table import cloudformation_resources

    responses = cloudformation_resources("t")["RestAPI"]["Properties"]["DefinitionBody"][
        "x-amazon-apigateway-gateway-responses"]
    assert responses["THROTTLED"]["statusCode"] == 503
    assert "retry later" in responses["THROTTLED"]["responseTemplates"]["application/json"]


def test_the_policy_allows_every_dynamodb_call_the_code_makes():
    """moto does not check IAM: a call the policy leaves out would fail only once deployed."""
    import re
    from pathlib import Path

    from chalicelib.edges.table import DYNAMODB_ACTIONS

    code = "".join(p.read_text() for p in Path("chalicelib").rglob("*.py"))
    calls = set(re.findall(r"\b(batch_get_item|batch_write_item|put_item|get_item|delete_item|"
                           r"update_item|query|scan|create_backup|batch_writer)\b", code))
    # a batch writer sends BatchWriteItem; a TransactWriteItems is authorized by its parts' actions
    actions = {"BatchWriteItem" if c == "batch_writer" else
               "".join(w.title() for w in c.split("_")) for c in calls}
    assert actions and {f"dynamodb:{a}" for a in actions} <= set(DYNAMODB_ACTIONS)


def test_the_daemons_post_to_the_notify_functions_url(packaged):
    """A deployed stage serves notify through the notify function's URL (no API Gateway charge
    per post): the URL (no auth at the URL: the function checks the token), both permissions a
    public URL needs since October 2025, the NotifyURL output, and NOTIFY_URL handed to the
    functions that tell the daemons and check it. The function's logs are JSON without Lambda's
    START/END/REPORT lines."""
    for variant in ("dev", "prod", "prod-private"):
        template = packaged[variant][1]
        resources = template["Resources"]
        function = resources["NotifyIngress"]["Properties"]
        assert function["Handler"] == "app.notify_ingress" and function["MemorySize"] == 256
        assert function["LoggingConfig"] == {"LogFormat": "JSON", "ApplicationLogLevel": "INFO",
                                             "SystemLogLevel": "WARN"}
        url = resources["NotifyIngressUrl"]
        assert url["Type"] == "AWS::Lambda::Url"
        assert url["Properties"] == {"AuthType": "NONE", "InvokeMode": "BUFFERED",
                                     "TargetFunctionArn": {"Fn::GetAtt": ["NotifyIngress", "Arn"]}}
        permissions = sorted((v["Properties"]["Action"], v["Properties"].get("FunctionUrlAuthType"),
                              v["Properties"].get("InvokedViaFunctionUrl"))
                             for v in resources.values() if v["Type"] == "AWS::Lambda::Permission"
                             and v["Properties"]["FunctionName"] == {"Ref": "NotifyIngress"})
        assert permissions == [("lambda:InvokeFunction", None, True),
                               ("lambda:InvokeFunctionUrl", "NONE", None)]
        given = {"Fn::GetAtt": ["NotifyIngressUrl", "FunctionUrl"]}
        assert template["Outputs"]["NotifyURL"]["Value"] == given
        for name in ("APIHandler", "ScheduledReconcile"):
            assert resources[name]["Properties"]["Environment"]["Variables"]["NOTIFY_URL"] == given
        assert "NOTIFY_URL" not in function["Environment"]["Variables"]
    local = packaged["local"][1]["Resources"]
    assert "NotifyIngressUrl" not in local and "NotifyURL" not in packaged["local"][1].get("Outputs", {})


def test_the_stack_is_sized_for_the_modelled_notify_peak(packaged, tmp_path):
    """The notify function reserves what the modelled herd needs (10 posts/s per unit of
    concurrency, or a post's duration), the REST API throttles every route but notify at the
    users' rate, and the table is warmed for the herd's writes when its own start is short."""
    prod = packaged["prod"][1]["Resources"]
    sizing = render_config.notify_sizing(1000)  # the prod default: 200 nodes, SPREAD_SECONDS on
    assert sizing == {"peak_posts": 1000, "reserved_concurrency": 125, "rest_rate": 1250,
                      "table_writes": 6250, "account_concurrency": 226}
    assert prod["NotifyIngress"]["Properties"]["ReservedConcurrentExecutions"] == 125
    assert prod["RestAPI"]["Properties"]["MethodSettings"] == [
        {"ResourcePath": "/*", "HttpMethod": "*", "ThrottlingRateLimit": 25, "ThrottlingBurstLimit": 50},
        {"ResourcePath": "/~1api~1v2~1system~1notify", "HttpMethod": "POST",
         "ThrottlingRateLimit": 1250, "ThrottlingBurstLimit": 1250}]
    table = prod["ControllerTable"]["Properties"]
    assert table["WarmThroughput"] == {"WriteUnitsPerSecond": 6250}
    assert [i["WarmThroughput"] for i in table["GlobalSecondaryIndexes"]] == [{"WriteUnitsPerSecond": 6250}]
    dev = packaged["dev"][1]["Resources"]  # 100 posts/s: the table's own start is enough
    assert dev["NotifyIngress"]["Properties"]["ReservedConcurrentExecutions"] == 13
    assert "WarmThroughput" not in dev["ControllerTable"]["Properties"]
    big = render_config.notify_sizing(9130)  # 2,000 nodes, SPREAD_SECONDS on
    assert (big["reserved_concurrency"], big["account_concurrency"]) == (1142, 1243)
    out = tmp_path / "big"
    _, stages = rendered(tmp_path, [*DEPLOYED, "--notify-peak-posts", "9130", "--api-rate-limit", "5",
                                    "--api-burst-limit", "9", "--notify-memory", "512"])
    notify = stages["prod"]["lambda_functions"]["notify_ingress"]
    assert (notify["reserved_concurrency"], notify["lambda_memory_size"]) == (1142, 512)
    resources = json.loads((tmp_path / "project" / ".chalice" / "resources-prod.json").read_text())
    settings = resources["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    assert [(m["ThrottlingRateLimit"], m["ThrottlingBurstLimit"]) for m in settings] == [
        (5, 9), (10_000, 5000)]  # at most the account's default API Gateway throttle
    assert out.parent.exists()


def test_the_rest_route_can_stay_the_daemons_notify_address(tmp_path, capsys):
    rendered(tmp_path, [*DEPLOYED, "--notify-ingress", "rest"])
    resources = json.loads((tmp_path / "project" / ".chalice" / "resources-prod.json").read_text())
    assert "NotifyIngressUrl" not in resources["Resources"] and "NotifyURL" not in resources["Outputs"]
    assert "NOTIFY_URL" not in json.dumps(resources)
    assert render_config.main(["--out", str(tmp_path / "x"), *DEPLOYED, "--notify-ingress", "queue"],
                              env={}) == 2
    assert "--notify-ingress 'queue'" in capsys.readouterr().err
    assert render_config.main(["--out", str(tmp_path / "y"), *DEPLOYED, "--notify-peak-posts", "0"],
                              env={}) == 2
    assert render_config.main(["--out", str(tmp_path / "z"), *DEPLOYED, "--notify-peak-posts", "20000"],
                              env={}) == 0
    assert "quota in this region must be at least 2,601" in capsys.readouterr().out
