"""`predictflow send FILE --to sqs` against the served local stack, end to end."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from predictflow.cli import cli
from predictflow.local.stack import LocalStack
from tests.conftest import running_stack
from tests.fixtures import EVENTS, free_port


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with running_stack(server_port=free_port(), retry_wait_scale=0.0, streams=True) as stack:
        yield stack


@pytest.fixture(autouse=True)
def served(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", str(stack.endpoint_url))


def test_send_puts_every_record_on_the_queue_and_each_ends_once(stack: LocalStack) -> None:
    result = CliRunner().invoke(
        cli,
        ["--endpoint-url", str(stack.endpoint_url), "send", str(EVENTS / "records-mixed.csv"),
         "--to", "sqs", "--records-per-message", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "sent 5 records in 3 messages" in result.stderr
    assert stack.stream_bridge is not None
    stack.stream_bridge.wait_until_drained(60)
    s3, bucket = stack.client("s3"), stack.outputs["OutputBucketName"]
    objects = s3.list_objects_v2(Bucket=bucket, Prefix="predictions/_streams/")["Contents"]
    predictions = [
        json.loads(line)
        for o in objects
        for line in gzip.decompress(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()).splitlines()
    ]
    dead = stack.client("dynamodb").scan(TableName=stack.outputs["DeadLetterTableName"])["Items"]
    assert len(predictions) == 3
    assert sorted(item["error_type"]["S"] for item in dead) == ["InvalidValue", "UnknownCategory"]


def test_send_to_kinesis_puts_every_record_on_the_stream(stack: LocalStack) -> None:
    result = CliRunner().invoke(
        cli,
        ["--endpoint-url", str(stack.endpoint_url), "send", str(EVENTS / "records-good.csv"),
         "--to", "kinesis", "--records-per-message", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "sent 5 records in 5 messages" in result.stderr
    assert stack.stream_bridge is not None
    stack.stream_bridge.wait_until_drained(60)
    s3, bucket = stack.client("s3"), stack.outputs["OutputBucketName"]
    prefix = f"predictions/_streams/{stack.outputs['StreamName']}/"
    objects = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    assert len(objects) == 5
    assert all(o["Key"].count("/") == 4 for o in objects)  # .../<stream>/<shard>/<sequence>.jsonl.gz


def test_send_to_a_stack_without_a_queue_says_so(stack: LocalStack) -> None:
    result = CliRunner().invoke(
        cli, ["--endpoint-url", str(stack.endpoint_url), "--stack-name", "nothing-here", "send",
              str(EVENTS / "records-good.csv")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
