"""The four Lambda handlers, called as Lambda calls them, on the sample events in events/
(the ones `sam local invoke -e` takes), against S3 and DynamoDB in moto."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws

from predictflow.local.moto_bridge import LambdaContext, load_handler
from predictflow.pipeline.chunks import plan_chunks
from predictflow.pipeline.payloads import matrix_from_text
from predictflow.pipeline.stores import INLINE_PAYLOAD_LIMIT, ObjectRef, PredictionStore
from tests.fixtures import ADULT, ADULT_DATA, ARTICLE, EVENTS, HEADER, ROOT
from tests.fixtures import HANDLER_ENVIRONMENT as ENVIRONMENT

Handler = Callable[[dict[str, Any], Any], Any]


def table(name: str, *keys: str) -> None:
    boto3.client("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
        KeySchema=[
            {"AttributeName": k, "KeyType": kind} for k, kind in zip(keys, ("HASH", "RANGE"), strict=False)
        ],
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The stack's storage in moto, the mixed sample uploaded; yields its version id."""
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in ("predictflow-input-bucket", "predictflow-output-bucket"):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        table("dead-letters", "pk", "sk")
        table("ledger", "pk")
        body = (EVENTS / "records-mixed.csv").read_bytes()
        yield s3.put_object(Bucket="predictflow-input-bucket", Key="incoming/records-mixed.csv", Body=body)[
            "VersionId"
        ]


def handler(name: str) -> Handler:
    return load_handler(ROOT / "functions" / name, "app.lambda_handler", f"test_handler_{name}")


def context(name: str) -> LambdaContext:
    return LambdaContext(name, f"arn:aws:lambda:us-east-1:123456789012:function:{name}", 1024, 120)


def sample(name: str, version: str) -> dict[str, Any]:
    """A sample event, pointed at the object this test uploaded."""
    text = (EVENTS / f"{name}.json").read_text()
    original = json.loads((EVENTS / "s3-object-created.json").read_text())["detail"]["object"]
    size = len((EVENTS / "records-mixed.csv").read_bytes())
    text = text.replace(original["version-id"], version).replace('"size": 789', f'"size": {size}')
    return dict(json.loads(text.replace('"end": 789', f'"end": {size}')))


def test_the_sample_events_run_through_all_four_handlers(aws: str) -> None:
    plan = handler("fetch")(sample("fetch", aws), context("fetch"))
    assert plan["duplicate"] is False
    assert plan["chunks"] == [{"index": 1, "first_line": 1, "start": 0, "end": plan["object"]["size"]}]
    assert plan["model_version"] == ADULT.model_version
    step = {key: plan[key] for key in ("object", "execution_arn", "model_version", "layout")}
    step["chunk"] = plan["chunks"][0]
    validated = handler("validate")(step, context("validate"))
    assert validated["inline"]["lines"] == [2, 3, 5]
    assert [r[0] for r in validated["inline"]["rejections"]] == [4, 6]
    predicted = handler("predict")(step | {"batch": validated}, context("predict"))
    assert len(matrix_from_text(predicted["inline"]["answers"], np.float64)) == 3
    assert predicted["inline"]["model_version"] == ADULT.model_version
    route_chunk = {"action": "route_chunk", **step, "batch": validated, "predicted": predicted}
    counts = handler("route")(route_chunk, context("route"))
    assert (counts["records"], counts["predicted"], counts["dead_lettered"]) == (5, 3, 2)
    summary = handler("route")(
        {
            "action": "finalize",
            "object": plan["object"],
            "execution_arn": plan["execution_arn"],
            "model_version": plan["model_version"],
            "chunk_counts": [counts],
        },
        context("route"),
    )
    assert summary["status"] == "SUCCEEDED"
    ledger = boto3.client("dynamodb").scan(TableName="ledger")["Items"]
    assert [item["status"]["S"] for item in ledger] == ["SUCCEEDED"]
    assert ledger[0]["model_version"]["S"] == ADULT.model_version
    assert summary["model_version"] == ADULT.model_version


@pytest.mark.parametrize("name", ["validate", "predict", "route", "route-finalize"])
def test_each_sample_event_is_accepted_by_its_handler(aws: str, name: str) -> None:
    function = name.split("-")[0]
    result = handler(function)(sample(name, aws), context(function))
    assert isinstance(result, dict)


def test_fetch_refuses_a_second_claim_on_the_same_object_version(aws: str) -> None:
    fetch = handler("fetch")
    first = fetch(sample("fetch", aws), context("fetch"))
    again = fetch(sample("fetch", aws), context("fetch"))  # a retry of the same execution
    other = fetch(
        sample("fetch", aws) | {"execution_arn": first["execution_arn"] + "-other"}, context("fetch")
    )
    assert first["duplicate"] is False
    assert again["duplicate"] is False
    assert other["duplicate"] is True
    assert other["claimed_by"] == first["execution_arn"]


def test_large_batches_travel_by_reference_not_through_the_state(aws: str) -> None:
    lines = ADULT_DATA.read_bytes().splitlines(keepends=True)[:2000]
    body = b"".join(lines)
    s3 = boto3.client("s3")
    version = s3.put_object(Bucket="predictflow-input-bucket", Key="incoming/big.csv", Body=body)["VersionId"]
    obj = {
        "bucket": "predictflow-input-bucket",
        "key": "incoming/big.csv",
        "version_id": version,
        "etag": "x",
        "size": len(body),
    }
    step = {
        "object": obj,
        "execution_arn": "arn:aws:states:us-east-1:1:execution:m:big",
        "model_version": ADULT.model_version,
        "layout": None,
        "chunk": {"index": 1, "first_line": 1, "start": 0, "end": len(body)},
    }
    validated = handler("validate")(step, context("validate"))
    assert set(validated) == {"s3"}
    assert validated["s3"]["bytes"] > INLINE_PAYLOAD_LIMIT
    assert len(json.dumps(validated)) < 1024
    stored = json.loads(
        s3.get_object(Bucket="predictflow-output-bucket", Key=validated["s3"]["key"])["Body"].read()
    )
    assert stored["lines"] == list(range(1, 2001))


def test_chunk_plans_cover_the_object_exactly_at_line_breaks() -> None:
    data = ADULT_DATA.read_bytes()[:300_000]
    data = data[: data.rindex(b"\n") + 1]
    blocks = [data[i : i + 7_777] for i in range(0, len(data), 7_777)]
    chunks = plan_chunks(blocks, 4096)
    assert chunks[0]["start"] == 0
    assert chunks[-1]["end"] == len(data)
    for before, after in itertools.pairwise(chunks):
        assert before["end"] == after["start"]
        assert data[before["end"] - 1 : before["end"]] == b"\n"
        assert after["first_line"] == data[: after["start"]].count(b"\n") + 1


def test_a_prediction_part_is_gzipped_json_lines_and_the_same_bytes_when_rewritten(aws: str) -> None:
    import gzip

    s3 = boto3.client("s3")
    store = PredictionStore(s3, "predictflow-output-bucket", "predictions/")
    ref = ObjectRef("predictflow-input-bucket", "incoming/records-mixed.csv", aws, "etag", 789)
    jsonl = '{"line":1,"label":"<=50K"}\n{"line":2,"label":">50K"}\n'
    key = store.write_part(ref, 3, jsonl)
    first = s3.get_object(Bucket="predictflow-output-bucket", Key=key)
    again = store.write_part(ref, 3, jsonl)  # a retried Route
    second = s3.get_object(Bucket="predictflow-output-bucket", Key=again)["Body"].read()
    body = first["Body"].read()
    assert key == f"predictions/incoming/records-mixed.csv/{aws}/part-00003.jsonl.gz"
    assert first["ContentType"] == "application/gzip"
    assert gzip.decompress(body).decode() == jsonl
    assert second == body
    assert [json.loads(line)["line"] for line in PredictionStore.part_lines(body)] == [1, 2]


@pytest.mark.parametrize(
    "before",
    [b"\n" * 65_500, b"\n" * 65_536, b"\xff\xfe not UTF-8\n" * 8_000],
    ids=["a 64-KiB run of blank lines", "more blank lines than a chunk holds", "lines not UTF-8"],
)
def test_fetch_finds_the_header_where_validate_would(
    aws: str, monkeypatch: pytest.MonkeyPatch, before: bytes
) -> None:
    """Fetch reads a file of several chunks for its layout: past a head of blank lines, and
    skipping lines that are not UTF-8, as Validate does when it reads a file's first chunk.
    (It read 64 KiB and took a line cut at its end, or a line not UTF-8, for the header.)"""
    monkeypatch.setenv("PREDICTFLOW_CHUNK_BYTES", str(4 * 1024 * 1024))
    monkeypatch.setenv("PREDICTFLOW_MAX_FILE_BYTES", str(100_000_000))
    monkeypatch.setattr("predictflow.pipeline.chunks.MAX_CHUNK_LINES", 8_000 if b"\xff" in before else 65_536)
    order = list(reversed(range(len(HEADER.split(", ")))))
    header = ", ".join(HEADER.split(", ")[i] for i in order)
    row = ", ".join(ARTICLE.split(", ")[i] for i in order)
    body = before + (header + "\n").encode() + (row + "\n").encode() * 50
    put = boto3.client("s3").put_object(
        Bucket="predictflow-input-bucket", Key="incoming/records-mixed.csv", Body=body
    )
    event = sample("fetch", put["VersionId"])
    event["event"]["detail"]["object"] |= {"size": len(body), "etag": put["ETag"].strip('"')}
    plan = handler("fetch")(event, context("fetch"))
    assert len(plan["chunks"]) > 1
    assert plan["layout"]["header"] == [HEADER.split(", ")[i] for i in order]
