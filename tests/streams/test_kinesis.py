"""Kinesis as a source, through the local stack: the same handler and outputs as SQS, each
record identified by its shard and sequence number."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from predictflow.local.stack import LocalStack
from predictflow.local.stream_bridge import KinesisPoller
from tests.conftest import running_stack
from tests.fixtures import ARTICLE, EVENTS
from tests.streams.outputs import as_file, essentials, stream_dead_letters, stream_predictions

MIXED = (EVENTS / "records-mixed.csv").read_text().splitlines()[1:]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with running_stack(retry_wait_scale=0.0, streams=True) as local:
        yield local


def put(stack: LocalStack, *bodies: str) -> list[str]:
    answer = stack.client("kinesis").put_records(
        StreamName=stack.outputs["StreamName"],
        Records=[{"Data": body.encode(), "PartitionKey": str(n)} for n, body in enumerate(bodies)],
    )
    assert stack.stream_bridge is not None
    stack.stream_bridge.wait_until_drained(60)
    return [f"{r['ShardId']}/{r['SequenceNumber']}" for r in answer["Records"]]


def poller(stack: LocalStack) -> KinesisPoller:
    assert stack.stream_bridge is not None
    return next(p for p in stack.stream_bridge.pollers if isinstance(p, KinesisPoller))


def outputs(stack: LocalStack, record_id: str) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]]]:
    stream = stack.outputs["StreamName"]
    return (
        stream_predictions(stack, record_id, source=stream),
        stream_dead_letters(stack, record_id, source=stream, kind="kinesis"),
    )


def test_a_batch_of_good_and_bad_records_ends_as_the_same_records_of_a_file(stack: LocalStack) -> None:
    (record_id,) = put(stack, json.dumps({"records": MIXED}))
    predictions, dead = outputs(stack, record_id)
    file_predictions, file_dead = as_file(stack, MIXED)
    assert predictions == file_predictions
    assert essentials(dead) == essentials(file_dead)
    assert {e["source_bucket"] for e in dead} == {"kinesis"}


def test_a_poison_record_is_dead_lettered_and_does_not_block_its_shard(stack: LocalStack) -> None:
    poison_id, next_id = put(stack, "{not json", ARTICLE)
    poison_predictions, (entry,) = outputs(stack, poison_id)
    assert poison_predictions is None
    assert (int(entry["line"]), entry["error_type"]) == (0, "MalformedMessage")
    assert outputs(stack, next_id)[0] is not None
    assert all(not failed for _, failed in poller(stack).deliveries)


def test_a_redelivered_batch_rewrites_the_same_keys(stack: LocalStack) -> None:
    (record_id,) = put(stack, json.dumps({"records": MIXED}))
    before = outputs(stack, record_id)
    shard, sequence = record_id.split("/")
    mapping = poller(stack).mapping
    event = {
        "Records": [
            {
                "kinesis": {"partitionKey": "0", "sequenceNumber": sequence, "kinesisSchemaVersion": "1.0",
                            "data": base64.b64encode(json.dumps({"records": MIXED}).encode()).decode(),
                            "approximateArrivalTimestamp": 0.0},
                "eventSource": "aws:kinesis", "eventID": f"{shard}:{sequence}",
                "eventSourceARN": mapping.source_arn,
                "eventName": "aws:kinesis:record", "eventVersion": "1.0", "awsRegion": "us-east-1",
            }
        ]
    }  # fmt: skip
    for _ in range(3):
        payload, errored = stack.invoker.invoke(mapping.function_name, event)
        assert not errored
        assert json.loads(payload) == {"batchItemFailures": []}
    after = outputs(stack, record_id)
    assert after[0] == before[0]
    assert sorted(int(e["line"]) for e in after[1]) == sorted(int(e["line"]) for e in before[1]) == [3, 5]
