"""SQS as a source, through the local stack: moto's queue, the stream bridge as the event source
mapping, the real stream handler, and the outputs a file's records get."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from predictflow.local.stack import LocalStack
from predictflow.local.stream_bridge import sqs_event
from tests.conftest import running_stack
from tests.fixtures import ARTICLE, EVENTS, SCHEMA
from tests.streams.outputs import (
    as_file,
    essentials,
    queue,
    send,
    sqs_poller,
    stream_dead_letters,
    stream_predictions,
)

MIXED = (EVENTS / "records-mixed.csv").read_text().splitlines()[1:]  # 3 good, 2 bad, no header


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with running_stack(retry_wait_scale=0.0, streams=True) as local:
        yield local


def test_a_batch_of_good_and_bad_records_ends_as_the_same_records_of_a_file(stack: LocalStack) -> None:
    (message_id,) = send(stack, json.dumps({"records": MIXED}))
    file_predictions, file_dead = as_file(stack, MIXED)
    assert stream_predictions(stack, message_id) == file_predictions
    assert len(file_predictions) == 3
    dead = stream_dead_letters(stack, message_id)
    assert essentials(dead) == essentials(file_dead)
    assert [e["error_type"] for e in dead] == ["InvalidValue", "UnknownCategory"]
    assert {e["source_bucket"] for e in dead} == {"sqs"}


def test_records_as_objects_by_field_name_match_a_json_lines_file(stack: LocalStack) -> None:
    names = SCHEMA.feature_names
    records = [dict(zip(names, (cell.strip() for cell in ARTICLE.split(",")), strict=True)), {"age": 5}]
    (message_id,) = send(stack, json.dumps({"records": records}))
    file_predictions, file_dead = as_file(
        stack, [json.dumps(record, separators=(",", ":")) for record in records], "jsonl"
    )
    assert stream_predictions(stack, message_id) == file_predictions
    assert essentials(stream_dead_letters(stack, message_id)) == essentials(file_dead)


def test_one_record_per_message_as_a_csv_line_or_an_object(stack: LocalStack) -> None:
    names = SCHEMA.feature_names
    as_object = json.dumps(dict(zip(names, (cell.strip() for cell in ARTICLE.split(",")), strict=True)))
    line_id, object_id = send(stack, ARTICLE, as_object)
    by_line, by_object = stream_predictions(stack, line_id), stream_predictions(stack, object_id)
    assert by_line is not None
    assert by_object is not None
    assert by_line == by_object
    assert by_line[0]["line"] == 1
    assert by_line[0]["label"] in ("<=50K", ">50K")


def test_a_redelivered_message_rewrites_the_same_keys(stack: LocalStack) -> None:
    _url, name = queue(stack)
    (message_id,) = send(stack, json.dumps({"records": MIXED}))
    s3, bucket = stack.client("s3"), stack.outputs["OutputBucketName"]
    prefix = f"predictions/_streams/{name}/{message_id}"

    def state() -> tuple[list[tuple[str, str]], list[tuple[int, str]]]:
        objects = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        dead = stream_dead_letters(stack, message_id)
        return sorted((o["Key"], o["ETag"]) for o in objects), sorted((int(e["line"]), e["sk"]) for e in dead)

    before = state()
    message = {
        "MessageId": message_id,
        "ReceiptHandle": "redelivered",
        "Body": json.dumps({"records": MIXED}),
        "MD5OfBody": "",
        "Attributes": {"ApproximateReceiveCount": "2"},
    }
    arn = f"arn:aws:sqs:us-east-1:123456789012:{name}"
    for _ in range(3):  # a burst of redeliveries
        payload, errored = stack.invoker.invoke(
            sqs_poller(stack).mapping.function_name,
            sqs_event([message], arn, "us-east-1"),
        )
        assert not errored
        assert json.loads(payload) == {"batchItemFailures": []}
    assert state() == before
    assert len(before[0]) == 1
    assert len(before[1]) == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2, 3]", "holds one record"),
        ('{"records": 7}', '"records" must be a list'),
        ('{"records": []}', '"records" is empty'),
        (json.dumps({"records": [ARTICLE] * 1001}), "at most 1000"),
        ("   ", "is empty"),
    ],
)
def test_a_poison_message_is_dead_lettered_and_does_not_block_the_next(
    stack: LocalStack, body: str, reason: str
) -> None:
    poison_id, next_id = send(stack, body, ARTICLE)
    (entry,) = stream_dead_letters(stack, poison_id)
    assert (int(entry["line"]), entry["error_type"]) == (0, "MalformedMessage")
    assert reason in entry["error_message"]
    assert stream_predictions(stack, poison_id) is None
    assert stream_predictions(stack, next_id) is not None
    assert stack.stream_bridge is not None
    assert all(not failed for _, failed in sqs_poller(stack).deliveries)


def test_a_record_longer_than_the_record_limit_is_dead_lettered_alone(stack: LocalStack) -> None:
    long_record = ARTICLE + "," + "x" * 70_000
    (message_id,) = send(stack, json.dumps({"records": [long_record, ARTICLE]}))
    (entry,) = stream_dead_letters(stack, message_id)
    assert (int(entry["line"]), entry["error_type"]) == (1, "LineTooLong")
    predictions = stream_predictions(stack, message_id)
    assert predictions is not None
    assert [p["line"] for p in predictions] == [2]
