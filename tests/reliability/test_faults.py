"""Faults injected through the real code paths: the handlers' own AWS clients fail, the
predictor throttles, a Lambda overruns its timeout. Retries absorb what is transient (and
show in the history); what persists is dead-lettered with its cause."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from predictflow.local.moto_bridge import LocalFunction
from predictflow.local.stack import LocalStack
from tests.conftest import running_stack
from tests.fixtures import EVENTS, ROOT
from tests.reliability.test_conservation import outcome, upload
from tests.statemachine.mocks import use_test_case_with_real_handlers


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    """A stack of its own: the faults go into clients the handlers have not made yet."""
    with running_stack(retry_wait_scale=0.001) as local:
        try:
            yield local
        finally:
            boto3.DEFAULT_SESSION = None  # drop the injected faults with the session


class Faults:
    """Fails the first `count` calls of one operation (S3 unless `service` says) made from a
    Lambda thread."""

    def __init__(
        self, operation: str, count: int, code: str = "SlowDown", status: int = 503, service: str = "s3"
    ) -> None:
        self.operation, self.left, self.code, self.status = operation, count, code, status
        self.service = service
        self.raised = 0
        self.lock = threading.Lock()

    def __call__(self, **_: Any) -> None:
        if not threading.current_thread().name.startswith("lambda-"):
            return
        with self.lock:
            if self.left == 0:
                return
            self.left -= 1
            self.raised += 1
        raise ClientError(
            {
                "Error": {"Code": self.code, "Message": "injected"},
                "ResponseMetadata": {"HTTPStatusCode": self.status},
            },
            self.operation,
        )


def inject(faults: Faults) -> None:
    boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register(f"before-call.{faults.service}.{faults.operation}", faults)


def failures(stack: LocalStack, arn: str) -> list[str]:
    events = stack.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [e["taskFailedEventDetails"]["error"] for e in events if e["type"] == "TaskFailed"]


def test_transient_s3_read_errors_are_retried(stack: LocalStack) -> None:
    faults = Faults("GetObject", 2)
    inject(faults)
    key, version, execution = upload(stack, (EVENTS / "records-mixed.csv").read_bytes())
    assert execution["status"] == "SUCCEEDED"
    assert faults.raised == 2
    assert failures(stack, execution["executionArn"]) == ["StorageUnavailable", "StorageUnavailable"]
    predictions, dead = outcome(stack, key, version)
    assert (len(predictions), len(dead)) == (3, 2)


def test_transient_s3_write_errors_are_retried(stack: LocalStack) -> None:
    faults = Faults("PutObject", 1)
    inject(faults)
    body = b"".join((ROOT / "model" / "data" / "adult.data").read_bytes().splitlines(keepends=True)[:50])
    key, version, execution = upload(stack, body)
    assert execution["status"] == "SUCCEEDED"
    assert faults.raised == 1
    assert failures(stack, execution["executionArn"]) == ["StorageUnavailable"]
    assert len(outcome(stack, key, version)[0]) == 50


def test_persistent_s3_read_errors_dead_letter_the_file_with_their_cause(stack: LocalStack) -> None:
    inject(Faults("GetObject", 1000))
    key, version, execution = upload(stack, (EVENTS / "records-mixed.csv").read_bytes())
    assert execution["status"] == "FAILED"
    assert failures(stack, execution["executionArn"]) == ["StorageUnavailable"] * 5
    _, dead = outcome(stack, key, version)
    (entry,) = dead
    assert (entry["line"], entry["error_type"]) == (0, "StorageUnavailable")
    assert "SlowDown" in entry["error_message"]


def test_a_lambda_that_overruns_its_timeout_is_retried(stack: LocalStack) -> None:
    predict = next(f for name, f in stack.invoker._functions.items() if "PredictFunction" in name)
    calls = {"n": 0}
    real = predict.handler

    def slow_once(event: dict[str, Any], context: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            time.sleep(1.0)
        return real(event, context)

    stack.invoker.register(LocalFunction(predict.name, predict.arn, slow_once, 0.3, predict.memory_mb))
    key, version, execution = upload(stack, (EVENTS / "records-good.csv").read_bytes())
    assert execution["status"] == "SUCCEEDED"
    assert failures(stack, execution["executionArn"]) == ["Sandbox.Timedout"]
    assert len(outcome(stack, key, version)[0]) == 5


def test_a_predictor_throttling_a_third_of_its_calls_loses_nothing(stack: LocalStack, tmp_path: Any) -> None:
    throttled = [n for n in range(60) if n % 3 == 0]
    mocks = {
        "StateMachines": {
            "PredictionStateMachine": {"TestCases": {"Throttling": {"Predict": "EveryThirdCall"}}}
        },
        "MockedResponses": {
            "EveryThirdCall": {
                str(n): {"Throw": {"Error": "PredictorThrottled", "Cause": "Rate exceeded"}}
                for n in throttled
            }
        },
    }
    path = tmp_path / "MockConfigFile.json"
    path.write_text(json.dumps(mocks))
    stack.use_mocks(path, "Throttling")
    lines = (ROOT / "model" / "data" / "adult.data").read_bytes().splitlines(keepends=True)
    runs = [upload(stack, b"".join(lines[start : start + 7])) for start in range(0, 70, 7)]
    stack.clear_mocks()
    for key, version, execution in runs:
        assert execution["status"] == "SUCCEEDED"
        assert len(outcome(stack, key, version)[0]) == 7
    retried = sum(
        failures(stack, execution["executionArn"]).count("PredictorThrottled") for _, _, execution in runs
    )
    # Calls 0, 3, 6, 9 and 12 of the 15 that ten files then need (10 + 5 retries) throttle.
    assert retried == 5


def test_an_endpoint_down_for_a_while_is_ridden_out_by_the_retries(stack: LocalStack) -> None:
    use_test_case_with_real_handlers(stack, "PredictorDownForAWhile")
    try:
        key, version, execution = upload(stack, (EVENTS / "records-mixed.csv").read_bytes())
    finally:
        stack.clear_mocks()
    assert execution["status"] == "SUCCEEDED"
    assert failures(stack, execution["executionArn"]) == ["PredictorUnavailable"] * 3
    predictions, dead = outcome(stack, key, version)
    assert (len(predictions), len(dead)) == (3, 2)
