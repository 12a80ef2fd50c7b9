"""Small files predicted whole by Fetch: one Lambda invocation and one ledger write, with the
same outcome, record for record, as the chunk path gives; anything else takes the chunk path."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from predictflow.bundle import default_bundle
from predictflow.bundle.store import ModelStore
from predictflow.local.stack import LocalStack
from predictflow.pipeline.bundles import Bundles
from predictflow.pipeline.runtime import build_stores
from predictflow.pipeline.settings import Settings, SettingsError
from predictflow.pipeline.steps import SMALL_FILE_RECORDS
from predictflow.pipeline.stores import ObjectRef
from tests.conftest import running_stack
from tests.fixtures import ADULT_DATA, HANDLER_ENVIRONMENT, upload_and_wait

RECORDS = [line + b"\n" for line in ADULT_DATA.read_bytes().splitlines() if line.strip()][:8]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with running_stack(retry_wait_scale=0.001) as local:
        yield local


@pytest.fixture
def handler_requests() -> Iterator[Counter[str]]:
    """The AWS requests the functions make (their threads only), by service:operation."""
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def count(event_name: str, **_: Any) -> None:
        if threading.current_thread().name.startswith("lambda-"):
            service, operation = event_name.split(".")[1:]
            with lock:
                seen[f"{service}:{operation}"] += 1

    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-call", count)
    yield seen
    boto3.DEFAULT_SESSION.events.unregister("before-call", count)


def upload(stack: LocalStack, body: bytes) -> tuple[str, str, dict[str, Any]]:
    return upload_and_wait(stack, body, f"{stack.outputs['InputPrefix']}{uuid.uuid4().hex[:8]}/r.csv", 60)


def lambda_tasks(stack: LocalStack, execution_arn: str) -> list[str]:
    """The function each Lambda task of the execution invoked, in order."""
    sfn = stack.client("stepfunctions")
    events = [e for p in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
              for e in p["events"]]  # fmt: skip
    return [
        json.loads(e["taskScheduledEventDetails"]["parameters"])["FunctionName"].rsplit(":", 1)[-1]
        for e in events
        if e["type"] == "TaskScheduled"
    ]


def test_a_one_record_file_is_predicted_by_fetch_in_one_invocation_and_one_write(
    stack: LocalStack, handler_requests: Counter[str]
) -> None:
    key, version, execution = upload(stack, RECORDS[0])
    assert execution["status"] == "SUCCEEDED"
    (task,) = lambda_tasks(stack, execution["executionArn"])
    assert "FetchFunction" in task
    writes = {op: n for op, n in handler_requests.items() if op.split(":")[1] in ("PutItem", "UpdateItem")}
    assert writes == {"dynamodb:PutItem": 1}
    output = json.loads(execution["output"])
    assert (output["status"], output["records"], output["predicted"]) == ("SUCCEEDED", 1, 1)
    item = stack.results().file(key, version)
    assert item is not None
    counts = (item["status"], item["records"], item["predicted"], item["dead_lettered"])
    assert counts == ("SUCCEEDED", 1, 1, 0)
    assert item["execution_arn"] == execution["executionArn"]
    assert item["claimed_at"] <= item["finished_at"]


def test_the_whole_file_path_gives_the_prediction_the_chunk_path_gives(stack: LocalStack) -> None:
    whole_key, whole_version, _ = upload(stack, RECORDS[0])
    chunk_key, chunk_version, execution = upload(stack, b"".join(RECORDS[: SMALL_FILE_RECORDS + 1]))
    assert any("ValidateFunction" in task for task in lambda_tasks(stack, execution["executionArn"]))
    (whole,) = stack.results().predictions(whole_key, whole_version)
    first = next(iter(stack.results().predictions(chunk_key, chunk_version)))
    assert whole == first
    assert whole["model_version"] == default_bundle().model_version


def test_a_small_file_with_a_bad_record_takes_the_chunk_path_and_loses_nothing(stack: LocalStack) -> None:
    bad = b"39, State-gov, not-a-number, Bachelors\n"
    key, version, execution = upload(stack, RECORDS[0] + bad)
    assert execution["status"] == "SUCCEEDED"
    assert any("ValidateFunction" in task for task in lambda_tasks(stack, execution["executionArn"]))
    predictions = list(stack.results().predictions(key, version))
    dead = stack.results().dead_letters(source_key=key, version=version)
    assert [p["line"] for p in predictions] == [1]
    assert [d["line"] for d in dead] == [2]


def test_an_empty_small_file_is_still_dead_lettered_as_no_records(stack: LocalStack) -> None:
    key, version, execution = upload(stack, b"\n \n")
    assert (execution["status"], execution.get("error")) == ("FAILED", "NoRecords")
    assert [d["error_type"] for d in stack.results().dead_letters(source_key=key, version=version)] == [
        "NoRecords"
    ]


def test_the_same_event_twice_gives_one_prediction(stack: LocalStack) -> None:
    key, version, execution = upload(stack, RECORDS[1])
    sfn = stack.client("stepfunctions")
    event = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    stack.deliver(event)
    second = stack.wait_for_executions(len(stack.started_executions))[-1]
    assert second["status"] == "SUCCEEDED"
    assert json.loads(second["output"])["duplicate"] is True
    assert len(list(stack.results().predictions(key, version))) == 1
    item = stack.results().file(key, version)
    assert item is not None
    assert item["execution_arn"] == execution["executionArn"]


def test_a_retried_fetch_may_rewrite_its_own_item_but_never_another_executions(stack: LocalStack) -> None:
    """Fetch's Retry runs it again with the same execution: its own earlier write is superseded
    (that attempt's result never reached the state machine); another execution's is not."""
    key, version, execution = upload(stack, RECORDS[2])
    ledger = stack.results()
    before = ledger.file(key, version)
    assert before is not None
    assert stack.deployment is not None
    settings = Settings.from_env(stack.deployment.function_environment)
    stores = build_stores(settings)
    ref = ObjectRef(stack.outputs["InputBucketName"], key, version, "etag", len(RECORDS[2]))
    common = {"claimed_at": before["claimed_at"], "counts": {"records": 1}, "compact_predictions": "x",
              "model_version": "v"}  # fmt: skip
    assert stores.ledger.claim_finished(ref, execution["executionArn"], **common) is None
    other = execution["executionArn"] + "-other"
    assert stores.ledger.claim_finished(ref, other, **common) == execution["executionArn"]
    assert stores.ledger.claim(ref, other) == execution["executionArn"]
    # Closed for this execution after it ended (an abort's status-change event): a late attempt
    # of its Fetch reopens nothing.
    arn = execution["executionArn"]
    assert stores.ledger.close_unfinished(ref, arn, "FAILED", "ExecutionAborted") is False
    closed = ObjectRef(ref.bucket, ref.key + ".closed", version, "etag", ref.size)
    assert stores.ledger.close_unfinished(closed, arn, "ABORTED", "ExecutionAborted")
    assert stores.ledger.claim(closed, arn) == arn
    assert stores.ledger.claim_finished(closed, arn, **common) == arn
    reopened = stack.results().file(closed.key, version)
    assert reopened is not None
    assert reopened["status"] == "ABORTED"


def test_the_active_model_pointer_is_read_once_per_cache_period(tmp_path: Any) -> None:
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        reads: list[str] = []
        s3.meta.events.register(
            "provide-client-params.s3.GetObject", lambda params, **_: reads.append(params["Key"])
        )
        now = [100.0]
        bundles = Bundles(ModelStore(s3, "models"), pointer_seconds=10, clock=lambda: now[0])
        default = default_bundle().model_version
        assert bundles.active_version() == default  # nothing deployed yet
        now[0] += 9.9
        assert bundles.active_version() == default
        assert reads == ["active.json"]
        now[0] += 0.2
        bundles.active_version()
        assert reads == ["active.json", "active.json"]
        uncached = Bundles(ModelStore(s3, "models"))
        uncached.active_version()
        uncached.active_version()
        assert len(reads) == 4


@pytest.mark.parametrize("value", ["-1", "ten", "1.5"])
def test_a_malformed_pointer_cache_setting_is_refused_at_cold_start(value: str) -> None:
    environment = HANDLER_ENVIRONMENT | {"PREDICTFLOW_ACTIVE_MODEL_CACHE_SECONDS": value}
    with pytest.raises(SettingsError, match="PREDICTFLOW_ACTIVE_MODEL_CACHE_SECONDS"):
        Settings.from_env(environment)
    assert Settings.from_env(HANDLER_ENVIRONMENT).active_model_cache_seconds == 0
