"""The bench's model (``scripts/costmodel.py``): DynamoDB's sizes and units, the keys a post writes
and how hot they get in the herd, and the bill's arithmetic."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from chalicelib.edges import table as table_schema
from scripts import costmodel as cm

SCHEMA = cm.Schema.from_create_table(table_schema.create_table_kwargs("t"))


def s(text: str) -> dict[str, str]:
    return {"S": text}


# -- sizes -----------------------------------------------------------------------------------------

def test_sizes_follow_dynamodbs_rules():
    assert cm.item_size({"name": s("abc")}) == 4 + 3
    assert cm.value_size(s("é")) == 2  # UTF-8 bytes, not characters
    assert cm.value_size({"N": "12345"}) == 4  # 5 significant digits: 3 bytes + 1
    assert cm.value_size({"N": "100"}) == 2  # trailing zeros are not significant
    assert cm.value_size({"N": "0.0012"}) == 2
    assert cm.value_size({"BOOL": True}) == cm.value_size({"NULL": True}) == 1
    assert cm.value_size({"B": b"\x00" * 10}) == 10
    assert cm.value_size({"B": "AAAA"}) == 3  # base64 in a request body
    assert cm.value_size({"SS": ["ab", "c"]}) == 3
    assert cm.value_size({"L": [s("ab"), {"N": "1"}]}) == 3 + (1 + 2) + (1 + 2)
    assert cm.value_size({"M": {"k": s("v")}}) == 3 + 1 + 1 + 1
    with pytest.raises(ValueError):
        cm.value_size({"X": 1})


def test_python_values_size_as_their_wire_form():
    item = {"pk": "A", "n": 7, "flag": False, "tags": ["x"], "meta": {"a": 1}, "blob": b"xy"}
    assert cm.python_item_size(item) == cm.item_size({
        "pk": s("A"), "n": {"N": "7"}, "flag": {"BOOL": False}, "tags": {"L": [s("x")]},
        "meta": {"M": {"a": {"N": "1"}}}, "blob": {"B": b"xy"}})


# -- units -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("size", "units"), [(0, 1), (1, 1), (1024, 1), (1025, 2), (4000, 4)])
def test_a_write_costs_one_unit_per_started_kb(size, units):
    assert cm.write_units(size) == units


def test_a_read_costs_one_unit_per_started_4_kb_half_when_eventually_consistent():
    assert cm.read_units(0) == 0.5
    assert cm.read_units(4096) == 0.5 and cm.read_units(4096, consistent=True) == 1
    assert cm.read_units(4097) == 1 and cm.read_units(4097, consistent=True) == 2


def test_the_table_definition_gives_the_keys_and_the_index():
    assert SCHEMA.keys == ("pk", "sk")
    assert [(i.name, i.keys, i.projection) for i in SCHEMA.indexes] == [
        ("gsi1", ("gsi1pk", "gsi1sk"), "ALL")]


def record_item(pk: str, size: int, app: str = "app1") -> dict[str, dict[str, str]]:
    item = {"pk": s(pk), "sk": s("RECORD"), "gsi1pk": s(f"{app}#2026-01"), "gsi1sk": s("k")}
    item["record"] = s("x" * (size - cm.item_size(item) - len("record")))
    assert cm.item_size(item) == size
    return item


def test_a_put_writes_the_table_and_every_index_it_lands_in():
    units = cm.call_units("PutItem", {"Item": record_item("RID#r1", 1500)}, {}, SCHEMA)
    assert units.wru == 4
    assert units.keys == Counter({("table", "RID#r1"): 2, ("gsi1", "app1#2026-01"): 2})
    plain = {"pk": s("JOBLAST"), "sk": s("j#last"), "record": s("x" * 900)}
    assert cm.call_units("PutItem", {"Item": plain}, {}, SCHEMA).keys == Counter(
        {("table", "JOBLAST"): 1})


def test_a_failed_conditional_put_still_costs_its_table_write():
    failed = {"Error": {"Code": "ConditionalCheckFailedException"}}
    units = cm.call_units("PutItem", {"Item": record_item("RID#r1", 1500)}, failed, SCHEMA)
    assert units.wru == 2 and set(units.keys) == {("table", "RID#r1")}


def test_a_query_page_is_priced_by_its_items_total_size():
    items = [record_item(f"RID#r{i}", 1000) for i in range(5)]  # 5,000 B: two started 4 KB
    assert cm.call_units("Query", {}, {"Items": items}, SCHEMA).rru == 1
    assert cm.call_units("Query", {"ConsistentRead": True}, {"Items": items}, SCHEMA).rru == 2
    filtered = {"Items": items[:1], "ScannedCount": 5}  # a filter read 5, kept 1
    assert cm.call_units("Query", {}, filtered, SCHEMA).rru == 1


def test_reads_of_single_items_round_each_item():
    assert cm.call_units("GetItem", {}, {}, SCHEMA).rru == 0.5  # nothing found still costs
    assert cm.call_units("GetItem", {"ConsistentRead": True}, {"Item": record_item("a", 5000)},
                         SCHEMA).rru == 2
    answer = {"Responses": {"t": [record_item("a", 100), record_item("b", 100)]}}
    assert cm.call_units("BatchGetItem", {"RequestItems": {"t": {"Keys": []}}}, answer,
                         SCHEMA).rru == 1


def test_batch_writes_count_what_was_processed_and_transactions_double():
    puts = [{"PutRequest": {"Item": record_item(f"RID#r{i}", 500)}} for i in range(3)]
    request = {"RequestItems": {"t": puts}}
    assert cm.call_units("BatchWriteItem", request, {}, SCHEMA).wru == 6
    left = {"UnprocessedItems": {"t": puts[2:]}}
    assert cm.call_units("BatchWriteItem", request, left, SCHEMA).wru == 4
    transaction = {"TransactItems": [{"Put": {"Item": record_item("RID#r1", 500)}},
                                     {"Delete": {"Key": {"pk": s("LOCK"), "sk": s("x")}}}]}
    assert cm.call_units("TransactWriteItems", transaction, {}, SCHEMA).wru == 2 * 2 + 2


def test_an_update_writes_the_larger_item_and_moves_its_index_entry():
    before, after = record_item("RID#r1", 900, "old"), record_item("RID#r1", 1500, "new")
    units = cm.call_units("UpdateItem", {"Key": {"pk": s("RID#r1"), "sk": s("RECORD")}}, {},
                          SCHEMA, before, after)
    # table: 2 (1,500 B); index: the old entry deleted (1) and the new one put (2)
    assert units.wru == 2 + 1 + 2
    assert units.keys[("gsi1", "old#2026-01")] == 1 and units.keys[("gsi1", "new#2026-01")] == 2
    same = cm.call_units("UpdateItem", {"Key": {"pk": s("RID#r1")}}, {}, SCHEMA, before,
                         record_item("RID#r1", 1500, "old"))
    assert same.wru == 2 + 2
    unknown = cm.call_units("DeleteItem", {"Key": {"pk": s("LEASE")}}, {}, SCHEMA)
    assert unknown.wru == 1 and unknown.keys == Counter({("table", "LEASE"): 1})


def test_stored_bytes_count_each_item_and_index_entry_with_its_overhead():
    item = record_item("RID#r1", 1000)
    assert cm.stored_bytes(item, SCHEMA) == 2 * (1000 + cm.STORAGE_OVERHEAD_BYTES)
    plain = {"pk": s("JOBLAST"), "sk": s("j")}
    assert cm.stored_bytes(plain, SCHEMA) == cm.item_size(plain) + 100
    assert cm.retained(per_day=10, fixed=5, days=30) == 305


# -- keys in the herd ------------------------------------------------------------------------------

def test_a_key_is_read_as_its_records_jobs_nodes_apps_or_shared():
    rid, job = "1767225600" + "a" * 32, "7f000001" + "b" * 32
    marks = ("127.0.0.1", "7f000001")
    assert cm.key_scope(f"RID#{rid}", rid, job, marks, "app1") == "record"
    assert cm.key_scope(f"LAST#{job}", rid, job, marks, "app1") == "job"
    assert cm.key_scope("NODE#7f000001", rid, job, marks, "app1") == "node"
    assert cm.key_scope("app1#2026-01", rid, job, marks, "app1") == "app"
    assert cm.key_scope("app12#2026-01", rid, job, marks, "app1") == "shared"  # a piece, whole
    assert cm.key_scope("JOBLAST", rid, job, marks, "app1") == "shared"
    assert cm.key_scope("backupctl#2026-01", rid, "", marks, "") == "shared"


def writes(kind: str, **keys: tuple[float, str]) -> cm.JobWrites:
    return cm.JobWrites(kind, {("table", k): wru for k, (wru, _) in keys.items()},
                        {("table", k): scope for k, (_, scope) in keys.items()})


def test_a_shared_key_takes_every_starting_jobs_share():
    sample = [writes("backup", JOBLAST=(8, "shared"), r1=(4, "record")),
              writes("backup", JOBLAST=(8, "shared"), r2=(4, "record")),
              writes("backup", SHARD1=(8, "shared"), r3=(4, "record"))]
    peaks = cm.key_peaks(sample, {"backup": {0: 3000, 60: 30}}, nodes=10, apps=100)
    top = {p.key: p for p in peaks}
    assert top["JOBLAST"].wru_per_second == pytest.approx(3000 * 8 * 2 / 3)
    assert top["JOBLAST"].second == 0
    assert top["SHARD1"].wru_per_second == pytest.approx(3000 * 8 / 3)
    assert top["<record>"].wru_per_second == 4  # one record's posts: one job's
    assert peaks[0].key == "JOBLAST"


def test_a_nodes_or_apps_key_takes_the_jobs_starting_there():
    sample = [writes("backup", node=(2, "node"), app=(3, "app"))]
    peaks = {p.key: p.wru_per_second for p in cm.key_peaks(sample, {"backup": {5: 1000}},
                                                           nodes=300, apps=125)}
    assert peaks == {"<node>": 2 * math.ceil(1000 / 300), "<app>": 3 * 8}


def test_kinds_add_up_on_a_key_they_share_in_the_same_second():
    sample = [writes("backup", GSI=(2, "shared")), writes("expire", GSI=(16, "shared"))]
    peaks = cm.key_peaks(sample, {"backup": {0: 100}, "expire": {0: 10, 60: 10}}, 1, 1)
    assert [(p.key, p.wru_per_second, p.second) for p in peaks] == [("GSI", 360, 0)]


def test_peak_requests_and_concurrency():
    assert cm.peak_requests({"backup": {0: 100, 7: 500}, "expire": {0: 300}}) == (1000, 7)
    assert cm.peak_requests({}) == (0, 0)
    assert cm.concurrency(10_000, 0.025) == 250


# -- the bill --------------------------------------------------------------------------------------

def test_posts_a_month():
    posts = cm.monthly_posts(200, 16_000)
    assert posts == {"backup": 960_000, "expire": 17_280_000}
    assert posts["expire"] / sum(posts.values()) == pytest.approx(0.947, abs=0.001)


def test_gb_seconds_are_billed_by_the_started_millisecond():
    assert cm.gb_seconds(1024, 0.0101) == pytest.approx(0.011)
    assert cm.gb_seconds(512, 2.0) == 1.0


def test_the_bill_is_quantities_times_unit_prices():
    w = cm.Workload(nodes=1, jobs=1, posts=(cm.Post("p", 1_000_000, wru=2, rru=0.5,
                                                    log_bytes=500, seconds=0.02),),
                    run_seconds=1.0, run_wru=10, run_rru=100, run_log_bytes=1000,
                    api_memory_mb=1024, reconcile_memory_mb=2048, storage_bytes=4e9, runs=1000,
                    platform_log_bytes=100)
    lines = {line.what.split(" (")[0]: line for line in cm.bill(w)}
    assert lines["Notify ingress: API Gateway REST"].dollars == pytest.approx(3.50)
    assert lines["Lambda requests"].quantity == 1_001_000
    assert lines["Lambda notify GB-s"].quantity == pytest.approx(20_000)
    assert lines["Lambda scheduled GB-s"].quantity == pytest.approx(2000)
    assert lines["DynamoDB write units"].quantity == 2_010_000
    assert lines["DynamoDB read units"].quantity == 600_000
    assert lines["DynamoDB storage"].dollars == pytest.approx(1.0)
    log_gb = (1_000_000 * 500 + 1000 * 1000 + 1_001_000 * 100) / 1e9
    assert lines["CloudWatch Logs ingested"].quantity == pytest.approx(log_gb)
    assert cm.total(cm.bill(w)) == pytest.approx(sum(line.dollars for line in lines.values()))
    assert cm.total(cm.bill(w)) == pytest.approx(
        3.5 + 1_001_000 * 0.2e-6 + 22_000 * 0.0000166667 + 2_010_000 * 0.625e-6
        + 600_000 * 0.125e-6 + 1.0 + log_gb * 0.5)


def test_the_notify_ingress_is_priced_by_what_the_daemons_post_through():
    """A function URL bills nothing per request beyond the invocation, an HTTP API $1.00 a
    million, REST $3.50; the notify function's own memory prices its GB-s, and its platform lines
    (left out at system log level WARN) its log bytes."""
    post = cm.Post("p", 1_000_000, wru=1, rru=0, log_bytes=0, seconds=0.05)
    base = dict(nodes=1, jobs=1, posts=(post,), run_seconds=0, run_wru=0, run_rru=0,
                run_log_bytes=0, api_memory_mb=1024, reconcile_memory_mb=1769, storage_bytes=0,
                runs=0, platform_log_bytes=330)
    ingress = {kind: cm.bill(cm.Workload(**base, ingress=kind))[0]
               for kind in ("rest", "http-api", "function-url")}
    assert {k: round(v.dollars, 2) for k, v in ingress.items()} == {
        "rest": 3.5, "http-api": 1.0, "function-url": 0.0}
    assert ingress["function-url"].what == "Notify ingress: Lambda function URL (notify posts)"
    url = {line.what.split(" (")[0]: line for line in cm.bill(cm.Workload(
        **base, ingress="function-url", notify_memory_mb=256, notify_platform_log_bytes=0))}
    assert url["Lambda notify GB-s"].quantity == pytest.approx(1_000_000 * 0.25 * 0.05)
    assert url["CloudWatch Logs ingested"].quantity == 0
    rest = {line.what.split(" (")[0]: line for line in cm.bill(cm.Workload(**base))}
    assert rest["Lambda notify GB-s"].quantity == pytest.approx(1_000_000 * 1.0 * 0.05)
    assert rest["CloudWatch Logs ingested"].quantity == pytest.approx(330 * 1_000_000 / 1e9)


def test_cpu_time_stretches_below_a_full_vcpu():
    assert cm.lambda_seconds(0.01, 0.015, 1769) == pytest.approx(0.025)
    assert cm.lambda_seconds(0.01, 0.015, 3538) == pytest.approx(0.025)  # no faster than a core
    assert cm.lambda_seconds(0.01, 0.015, 256) == pytest.approx(0.01 * 1769 / 256 + 0.015)
