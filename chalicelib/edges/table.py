"""The one definition of the controller's DynamoDB table, used three ways: creating it (tests, the
local runner), declaring it in the ``chalice package`` output, and the IAM policy's allowed actions.

Single table, generic keys. Item kinds (``pk`` / ``sk``):

* job record      ``RID#<rid>`` / ``RECORD``; ``gsi1`` = ``<app>#<YYYY-MM>`` / ``<start>#<rid>``
                  (newest-first records of an app-month);
* job's latest    ``FRESH#<node ip>`` / ``<job id>``: one slim item per job (state, start, end,
                  size, suspect of its newest run, success and good success; the recent good
                  sizes), what a scheduled run reads, one Query per node; ``FRESH`` / ``ready``
                  says every job has one; before it, ``JOBLAST`` / ``<job id>#last``,
                  ``#success``, ``#good`` held them whole (read, and written, until then);
                  ``FRESH#<node ip>`` / ``~changed``: a token every write of the partition
                  renews (a warm run reads again only the nodes whose token changed);
* expire list     ``EXPIRE#<digest of its dirs>`` / ``last``: a node's expire job's last run (its
                  successes are not records, and are kept every 10th minute only: see
                  :mod:`chalicelib.edges.records`);
* node state      ``NODES`` / ``<ip>`` (version, job ids, time of the last good push);
* job pause       ``PAUSES`` / ``<ip>#<job id>``;
* reconcile run   ``RECONCILE`` / ``<time>`` (bounded by ``ttl``);
* held removals   ``HELD`` / ``removals``; alert memory ``SEEN`` / ``<node ip>`` (its items'
                  and pauses' last status, one JSON string; ``STATUS`` / ``<item key>`` before).

Node states, pauses and runs each sit in one partition so a reconcile reads all of them with one
Query each; a cluster has hundreds of nodes, far below a partition's limits.
"""

from __future__ import annotations

from typing import Any

TTL_ATTRIBUTE = "ttl"
# Written when every job's slim freshness item exists: by the first scheduled run that built them
# from the JOBLAST items (a table from before them), or at once when the table is created.
FRESH_READY = {"pk": "FRESH", "sk": "ready"}
GSI_BY_APP_MONTH = "gsi1"

KEY_SCHEMA = [
    {"AttributeName": "pk", "KeyType": "HASH"},
    {"AttributeName": "sk", "KeyType": "RANGE"},
]
ATTRIBUTE_DEFINITIONS = [
    {"AttributeName": name, "AttributeType": "S"}
    for name in ("pk", "sk", "gsi1pk", "gsi1sk")
]
GLOBAL_SECONDARY_INDEXES = [
    {
        "IndexName": index,
        "KeySchema": [
            {"AttributeName": f"{index}pk", "KeyType": "HASH"},
            {"AttributeName": f"{index}sk", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }
    for index in (GSI_BY_APP_MONTH,)
]

# Every DynamoDB action the code issues; the IAM policy allows these and nothing else.
DYNAMODB_ACTIONS = [
    "dynamodb:BatchGetItem",  # each listed job's newest good backup (listings, deletes)
    "dynamodb:BatchWriteItem",  # node states after a reconcile, dropped pauses, forgotten nodes
    "dynamodb:CreateBackup",  # POST /api/v2/system/backup
    "dynamodb:DeleteItem",  # wakeup removes a pause; held removals applied; an operation's lock
    # A TransactWriteItems (an operation created or finished with its lock) is authorized by the
    # PutItem and DeleteItem of its parts: IAM has no action of its own for it.
    "dynamodb:GetItem",  # a record by rid, a pause, the held removals
    "dynamodb:PutItem",  # conditional record writes (and the Puts of a TransactWriteItems)
    "dynamodb:Query",  # records of an app-month / of a job
    "dynamodb:UpdateItem",  # a job's slim freshness item, one kind of run at a time
]


def create_table_kwargs(table_name: str) -> dict[str, Any]:
    """Arguments of ``CreateTable`` for ``table_name`` (on-demand billing)."""
    return {
        "TableName": table_name,
        "KeySchema": KEY_SCHEMA,
        "AttributeDefinitions": ATTRIBUTE_DEFINITIONS,
        "GlobalSecondaryIndexes": GLOBAL_SECONDARY_INDEXES,
        "BillingMode": "PAY_PER_REQUEST",
    }


def create_table(client: Any, table_name: str) -> None:
    """Create the table with a DynamoDB *client* (tests, the local runner) and wait for it."""
    client.create_table(**create_table_kwargs(table_name))
    client.get_waiter("table_exists").wait(TableName=table_name)
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
    )
    client.put_item(TableName=table_name, Item={k: {"S": v} for k, v in FRESH_READY.items()})


def cloudformation_resources(table_name: str) -> dict[str, Any]:
    """Resources deep-merged into the ``chalice package`` output: the table, and the API's own
    answers in the app's error shape (an unknown route would otherwise be API Gateway's 403
    "Missing Authentication Token", a throttled call a bare ``{"message"}``). They go into the API's
    OpenAPI body, so the API and its responses cannot drift."""
    def answer(status: int | None, code: str, message: str) -> dict[str, Any]:
        template = f'{{"error": "{message}", "code": "{code}"}}'
        out: dict[str, Any] = {"responseTemplates": {"application/json": template}}
        if status:
            out["statusCode"] = status
        return out

    return {
        "ControllerTable": cloudformation_table(table_name),
        "RestAPI": {"Properties": {"DefinitionBody": {
            "x-amazon-apigateway-gateway-responses": {
                "MISSING_AUTHENTICATION_TOKEN": answer(
                    404, "unknown_route", "no such route: $context.httpMethod $context.path"),
                # a throttled call is a 503, not API Gateway's 429: a daemon posts a record
                # again only after a 5xx (or no answer), so a 429 would lose it
                "THROTTLED": answer(503, "throttled",
                                    "$context.error.messageString; retry later"),
                "DEFAULT_4XX": answer(None, "gateway_refused",
                                      "$context.error.messageString"),
                "DEFAULT_5XX": answer(None, "gateway_error",
                                      "$context.error.messageString; retry later"),
            },
        }}},
    }


def cloudformation_table(table_name: str) -> dict[str, Any]:
    """The ``AWS::DynamoDB::Table`` resource for the ``chalice package`` output."""
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            **create_table_kwargs(table_name),
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
        },
    }
