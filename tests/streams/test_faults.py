"""A storage failure on one message of a batch: only that message (SQS) or the shard from that record
(Kinesis) is retried, and it succeeds."""

from __future__ import annotations

import json

import boto3

from predictflow.local.stack import LocalStack
from predictflow.local.stream_bridge import KinesisPoller, SqsPoller, StreamBridge
from tests.conftest import running_stack
from tests.fixtures import ARTICLE, EVENTS
from tests.reliability.test_faults import Faults, inject
from tests.streams.outputs import queue, stream_dead_letters, stream_predictions

MIXED = (EVENTS / "records-mixed.csv").read_text().splitlines()[1:]


def table_throttled_once() -> Faults:
    """Fails the first BatchWriteItem a Lambda thread makes, as a throttled table would."""
    faults = Faults(
        "BatchWriteItem", 1, code="ProvisionedThroughputExceededException", status=400, service="dynamodb"
    )
    inject(faults)
    return faults


def drained(local: LocalStack) -> StreamBridge:
    """The stack's stream mappings polled until every message and record is handled."""
    assert local.deployment is not None
    bridge = StreamBridge(
        local.deployment.stream_mappings, local.client, local.invoker.invoke, "us-east-1", 0.0
    ).start()
    try:
        bridge.wait_until_drained(60)
    finally:
        bridge.stop()
    return bridge


def test_a_transient_table_failure_retries_only_its_message() -> None:
    # No delivery until both messages are queued, so that they arrive in one batch.
    with running_stack(retry_wait_scale=0.0, streams=False) as local:
        try:
            faults = table_throttled_once()
            url, _ = queue(local)
            sqs = local.client("sqs")
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"records": MIXED}))
            sqs.send_message(QueueUrl=url, MessageBody=ARTICLE)
            bridge = drained(local)
        finally:
            boto3.DEFAULT_SESSION = None
        assert faults.raised == 1
        (first_ids, first_failed), *rest = next(
            p for p in bridge.pollers if isinstance(p, SqsPoller)
        ).deliveries
        assert len(first_ids) == 2
        assert len(first_failed) == 1
        (failed_id,) = first_failed
        (retry_ids, retry_failed), *_ = rest
        assert (retry_ids, retry_failed) == ([failed_id], [])
        assert len(stream_dead_letters(local, failed_id)) == 2
        assert len(stream_predictions(local, failed_id) or []) == 3
        (other,) = set(first_ids) - {failed_id}
        assert len(stream_predictions(local, other) or []) == 1


def test_a_transient_table_failure_on_kinesis_rereads_the_shard_from_that_record() -> None:
    with running_stack(retry_wait_scale=0.0, streams=False) as local:
        try:
            faults = table_throttled_once()
            stream = local.outputs["StreamName"]
            answer = local.client("kinesis").put_records(
                StreamName=stream,
                Records=[
                    {"Data": json.dumps({"records": MIXED}).encode(), "PartitionKey": "a"},
                    {"Data": ARTICLE.encode(), "PartitionKey": "a"},
                ],
            )
            ids = [f"{r['ShardId']}/{r['SequenceNumber']}" for r in answer["Records"]]
            bridge = drained(local)
        finally:
            boto3.DEFAULT_SESSION = None
        assert faults.raised == 1
        kinesis = next(p for p in bridge.pollers if isinstance(p, KinesisPoller))
        # The first record failed: the checkpoint stays before it, and the batch comes again.
        assert kinesis.deliveries == [(ids, [ids[0]]), (ids, [])]
        assert len(stream_dead_letters(local, ids[0], source=stream, kind="kinesis")) == 2
        assert len(stream_predictions(local, ids[0], source=stream) or []) == 3
        assert len(stream_predictions(local, ids[1], source=stream) or []) == 1
