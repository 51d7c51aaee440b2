"""The dict table the bench builds its steady state in (``scripts/benchtable.py``): its
conditions, updates and queries must be DynamoDB's, and a run's records the daemon's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from chalicelib.edges import table as table_schema
from scripts import costmodel as cm
from scripts.benchtable import DictTable, run_records

SCHEMA = cm.Schema.from_create_table(table_schema.create_table_kwargs("t"))


def test_the_dict_table_holds_conditions_as_dynamodb_does():
    t = DictTable("t", SCHEMA)
    key = {"pk": "JOBLAST", "sk": "j#last"}
    t.put_item(Item={**key, "skey": "2", "state": "running"},
               ConditionExpression="attribute_not_exists(pk) OR skey < :k",
               ExpressionAttributeValues={":k": "2"})
    with pytest.raises(ClientError) as e:
        t.put_item(Item={**key, "skey": "1"}, ConditionExpression="attribute_not_exists(pk) OR "
                   "skey < :k OR (skey = :k AND #s = :running)",
                   ExpressionAttributeValues={":k": "1", ":running": "running"},
                   ExpressionAttributeNames={"#s": "state"})
    assert e.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    t.put_item(Item={**key, "skey": "2", "state": "success"},
               ConditionExpression="attribute_not_exists(pk) OR skey < :k OR (skey = :k AND "
               "#s = :running)", ExpressionAttributeValues={":k": "2", ":running": "running"},
               ExpressionAttributeNames={"#s": "state"})
    assert t.get_item(Key=key)["Item"]["state"] == "success"
    assert not t.get_item(Key={"pk": "JOBLAST", "sk": "other"})


def test_the_dict_table_updates_queries_and_batches():
    from boto3.dynamodb.conditions import Attr, Key

    t = DictTable("t", SCHEMA)
    for n in range(5):
        t.put_item(Item={"pk": "P", "sk": f"{n}", "state": "odd" if n % 2 else "even", "n": n})
    t.update_item(Key={"pk": "P", "sk": "1"}, UpdateExpression="SET n = n + :one, #t = "
                  "if_not_exists(#t, :l) REMOVE #s ADD c :one", ExpressionAttributeNames={
                      "#t": "tags", "#s": "state"}, ExpressionAttributeValues={":one": 1,
                                                                                ":l": ["a"]})
    assert t.get_item(Key={"pk": "P", "sk": "1"})["Item"] == {"pk": "P", "sk": "1", "n": 2,
                                                               "tags": ["a"], "c": 1}
    page = t.query(KeyConditionExpression=Key("pk").eq("P") & Key("sk").lt("4"),
                   ScanIndexForward=False, Limit=2)
    assert [i["sk"] for i in page["Items"]] == ["3", "2"] and page["LastEvaluatedKey"]["sk"] == "2"
    rest = t.query(KeyConditionExpression=Key("pk").eq("P"), FilterExpression=Attr("state").eq(
        "even"), ExclusiveStartKey=page["LastEvaluatedKey"], ScanIndexForward=False)
    assert [i["sk"] for i in rest["Items"]] == ["0"]
    with t.batch_writer() as batch:
        batch.delete_item(Key={"pk": "P", "sk": "0"})
    assert len(t) == 4
    with pytest.raises(NotImplementedError):
        t.put_item(Item={"pk": "P", "sk": "9"}, ConditionExpression="size(x) ?? 1")


def test_run_records_are_a_jobs_fields_plus_the_runs():
    job = {"id": "7f000001" + "0" * 32, "spec": "0 3 * * *", "action": "backup", "args": {
        "app": "a", "archive": "a-x", "mode": "full"}, "type": "cron", "sleep": False}
    running, done = run_records(job, datetime(2026, 1, 1, 3, tzinfo=UTC), size=7)
    assert running["rid"] == done["rid"] and running["rid"].startswith("1767236400")
    assert running["state"] == "running" and running["result"] is None
    assert done["result"] == {"file": "a-x-1767236400.tar.gz", "size": 7}
    assert done["start"].startswith("2026-01-01T03:00:00.") and done["end"].startswith(
        "2026-01-01T03:00:30.")
    assert {k: done[k] for k in job} == job
