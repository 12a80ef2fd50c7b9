"""Every way an execution can end leaves its file closed in the ledger, with the reason, and
the file accounted for: Finalize failing past its retries, the chunks' Map failing, and an
execution aborted from outside (which runs no state of its own: the status-change event does)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from predictflow.local.stack import LocalStack
from tests.conftest import running_stack
from tests.fixtures import EVENTS
from tests.reliability.test_conservation import outcome, upload
from tests.reliability.test_faults import Faults, inject


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    with running_stack(retry_wait_scale=0.001) as local:
        try:
            yield local
        finally:
            boto3.DEFAULT_SESSION = None


def ledger_item(stack: LocalStack, key: str, version: str, *, until_not: str = "", wait: float = 10.0) -> Any:
    deadline = time.monotonic() + wait
    while True:
        item = stack.results().file(key, version)
        if item is None or item.get("status") != until_not or time.monotonic() > deadline:
            return item
        time.sleep(0.05)


def execution_error(stack: LocalStack, arn: str) -> str:
    return str(stack.client("stepfunctions").describe_execution(executionArn=arn).get("error", ""))


def test_finalize_failing_past_its_retries_closes_the_file_and_uncommits_its_outputs(
    stack: LocalStack,
) -> None:
    # Finalize makes one ledger write per attempt: all five attempts fail, the close succeeds.
    faults = Faults(
        "UpdateItem", 5, code="ProvisionedThroughputExceededException", status=400, service="dynamodb"
    )
    inject(faults)
    body = b"".join((EVENTS / "records-good.csv").read_bytes().splitlines(keepends=True)) * 2
    key, version, execution = upload(stack, body)
    assert execution["status"] == "FAILED"
    assert execution_error(stack, execution["executionArn"]) == "FileNotFinished"
    assert faults.raised == 5
    item = ledger_item(stack, key, version)
    assert (item["status"], item["error_type"]) == ("FAILED", "FileNotFinished")
    predictions, dead = outcome(stack, key, version)
    assert predictions == []  # the manifest Finalize wrote before its ledger write failed is gone
    assert [(d["line"], d["error_type"]) for d in dead] == [(0, "FileNotFinished")]
    assert "StorageUnavailable" in dead[0]["error_message"]


def test_a_map_that_fails_closes_the_file_instead_of_leaving_it_running(stack: LocalStack) -> None:
    # Route (5 attempts) and Dead-letter Chunk (7 attempts) each write dead letters first and
    # fail; the Map fails; closing the file writes its one entry.
    faults = Faults("BatchWriteItem", 12, code="InternalServerError", status=500, service="dynamodb")
    inject(faults)
    key, version, execution = upload(stack, (EVENTS / "records-mixed.csv").read_bytes())
    assert execution["status"] == "FAILED"
    assert execution_error(stack, execution["executionArn"]) == "FileNotFinished"
    item = ledger_item(stack, key, version)
    assert (item["status"], item["error_type"]) == ("FAILED", "FileNotFinished")
    predictions, dead = outcome(stack, key, version)
    assert predictions == []
    assert [(d["line"], d["error_type"]) for d in dead] == [(0, "FileNotFinished")]


def test_an_aborted_execution_leaves_its_file_closed_by_the_status_change_event(stack: LocalStack) -> None:
    release = threading.Event()
    held = threading.Event()

    def hold_after_claim(**_: Any) -> None:
        # Fetch has claimed the file (its ledger item is RUNNING) and has not returned yet.
        if threading.current_thread().name.startswith("lambda-") and not release.is_set():
            held.set()
            release.wait(10)

    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("after-call.dynamodb.PutItem", hold_after_claim)
    s3, sfn = stack.client("s3"), stack.client("stepfunctions")
    key = f"{stack.outputs['InputPrefix']}aborted.csv"
    version = s3.put_object(
        Bucket=stack.outputs["InputBucketName"], Key=key, Body=(EVENTS / "records-good.csv").read_bytes()
    )["VersionId"]
    assert held.wait(10)
    (arn,) = stack.started_executions[-1:]
    sfn.stop_execution(executionArn=arn, error="Operator", cause="stopped by hand")
    release.set()
    item = ledger_item(stack, key, version, until_not="RUNNING")
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    assert (item["status"], item["error_type"]) == ("ABORTED", "ExecutionAborted")
    dead = stack.results().dead_letters(source_key=key, version=version)
    assert [(d["line"], d["error_type"]) for d in dead] == [(0, "ExecutionAborted")]
    assert "ABORTED" in dead[0]["error_message"]


def test_an_execution_that_fails_its_own_way_is_not_closed_twice(stack: LocalStack) -> None:
    key, version, execution = upload(stack, b"")  # NoRecords: Finalize closes it, then FAILED
    assert execution["status"] == "FAILED"
    time.sleep(0.5)  # the status-change event's Route invocation runs asynchronously
    stack.invoker.wait_until_idle(10)
    item = ledger_item(stack, key, version)
    assert item["status"] == "FAILED"
    assert "error_type" not in item or item["error_type"] != "ExecutionFailed"
    dead = stack.results().dead_letters(source_key=key, version=version)
    assert [(d["line"], d["error_type"]) for d in dead] == [(0, "NoRecords")]
