"""What the stream tests share: sending to the local stack's queue and reading what came out."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

from botocore.exceptions import ClientError

from predictflow.local.stack import LocalStack
from predictflow.local.stream_bridge import SqsPoller
from predictflow.pipeline.stores import DeadLetterStore


def queue(stack: LocalStack) -> tuple[str, str]:
    url = stack.outputs["StreamQueueUrl"]
    return url, url.rsplit("/", 1)[-1]


def send(stack: LocalStack, *bodies: str) -> list[str]:
    url, _ = queue(stack)
    sqs = stack.client("sqs")
    answer = sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies)]
    )
    ids = {entry["Id"]: entry["MessageId"] for entry in answer["Successful"]}
    assert stack.stream_bridge is not None
    stack.stream_bridge.wait_until_drained(60)
    return [ids[str(n)] for n in range(len(bodies))]


def stream_predictions(stack: LocalStack, message_id: str, source: str = "") -> list[dict[str, Any]] | None:
    name = source or queue(stack)[1]
    key = f"predictions/_streams/{name}/{message_id}.jsonl.gz"
    try:
        body = stack.client("s3").get_object(Bucket=stack.outputs["OutputBucketName"], Key=key)["Body"].read()
    except ClientError:
        return None
    return [json.loads(line) for line in gzip.decompress(body).splitlines()]


def stream_dead_letters(
    stack: LocalStack, message_id: str, source: str = "", kind: str = "sqs"
) -> list[dict[str, Any]]:
    name = source or queue(stack)[1]
    items = stack.client("dynamodb").query(
        TableName=stack.outputs["DeadLetterTableName"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={
            ":pk": {"S": DeadLetterStore.partition(kind, f"{name}/{message_id}", None)}
        },
        ConsistentRead=True,
    )["Items"]
    return [{name: next(iter(value.values())) for name, value in item.items()} for item in items]


def as_file(
    stack: LocalStack, lines: list[str], suffix: str = "csv"
) -> tuple[list[dict[str, Any]], list[Any]]:
    key = f"{stack.outputs['InputPrefix']}streams/{uuid.uuid4().hex[:8]}.{suffix}"
    before = len(stack.started_executions)
    version = stack.client("s3").put_object(
        Bucket=stack.outputs["InputBucketName"], Key=key, Body="\n".join(lines).encode() + b"\n"
    )["VersionId"]
    assert stack.wait_for_executions(before + 1, timeout=120)[before]["status"] == "SUCCEEDED"
    results = stack.results()
    return list(results.predictions(key, version)), results.dead_letters(source_key=key, version=version)


def essentials(entries: list[dict[str, Any]]) -> list[tuple[int, str, str, str]]:
    return sorted((int(e["line"]), e["raw"], e["error_type"], e["error_message"]) for e in entries)


def sqs_poller(stack: LocalStack) -> SqsPoller:
    assert stack.stream_bridge is not None
    return next(p for p in stack.stream_bridge.pollers if isinstance(p, SqsPoller))
