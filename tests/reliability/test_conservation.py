"""Nothing is lost: every uploaded record ends as exactly one prediction or one dead-letter
entry with a specific error, whatever the file holds, however many times its event arrives,
and after a replay. Run against the local stack (the real template, state machine and
handlers)."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from predictflow.local.stack import LocalStack
from tests.conftest import running_stack
from tests.fixtures import ARTICLE, EVENTS, ROOT, upload_and_wait
from tests.reliability.corpus import CASES, Case
from tests.statemachine.mocks import use_test_case_with_real_handlers

MOCKS = ROOT / "tests" / "statemachine" / "MockConfigFile.json"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with running_stack(retry_wait_scale=0.001, log_level="INFO") as local:
        yield local


def upload(stack: LocalStack, body: bytes, key: str | None = None) -> tuple[str, str, dict[str, Any]]:
    key = key or f"{stack.outputs['InputPrefix']}reliability/{uuid.uuid4().hex[:8]}.csv"
    return upload_and_wait(stack, body, key)


def outcome(stack: LocalStack, key: str, version: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    results = stack.results()
    predictions = list(results.predictions(key, version))
    dead = results.dead_letters(source_key=key, version=version, include_replayed=True)
    return predictions, dead


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_every_hostile_input_ends_in_predictions_or_specific_dead_letters(
    stack: LocalStack, case: Case
) -> None:
    key, version, execution = upload(stack, case.body)
    assert execution["status"] in ("SUCCEEDED", "FAILED")
    predictions, dead = outcome(stack, key, version)
    assert len(predictions) == case.predicted
    assert Counter(d["error_type"] for d in dead) == Counter(case.dead_letters)
    lines = [p["line"] for p in predictions] + [d["line"] for d in dead if d["line"]]
    assert len(lines) == len(set(lines)), "a line was counted twice"
    for entry in dead:
        assert entry["error_message"], entry


@pytest.mark.parametrize(
    "name", ["with space.csv", "ünïcödé-名前.csv", "percent%20encoded+plus.csv", "deep/a b/c%2Fd.csv"]
)
def test_unusual_keys_are_processed_and_reported_under_their_real_name(stack: LocalStack, name: str) -> None:
    key = f"{stack.outputs['InputPrefix']}keys/{name}"
    key, version, execution = upload(stack, (EVENTS / "records-mixed.csv").read_bytes(), key)
    assert execution["status"] == "SUCCEEDED"
    predictions, dead = outcome(stack, key, version)
    assert [p["line"] for p in predictions] == [2, 3, 5]
    assert (len(predictions), len(dead)) == (3, 2)
    ledger = stack.results().file(key, version)
    assert ledger is not None
    assert ledger["source_key"] == key


def test_an_object_overwritten_mid_run_keeps_each_version_whole(stack: LocalStack) -> None:
    key = f"{stack.outputs['InputPrefix']}overwritten/{uuid.uuid4().hex[:8]}.csv"
    s3 = stack.client("s3")
    bucket = stack.outputs["InputBucketName"]
    before = len(stack.started_executions)
    first = s3.put_object(Bucket=bucket, Key=key, Body=(EVENTS / "records-good.csv").read_bytes())[
        "VersionId"
    ]
    second = s3.put_object(Bucket=bucket, Key=key, Body=(EVENTS / "records-mixed.csv").read_bytes())[
        "VersionId"
    ]
    executions = stack.wait_for_executions(before + 2)[before:]
    assert {e["status"] for e in executions} == {"SUCCEEDED"}
    assert len(outcome(stack, key, first)[0]) == 5
    predictions, dead = outcome(stack, key, second)
    assert (len(predictions), len(dead)) == (3, 2)


@pytest.mark.parametrize("copies", [2, 10])
def test_the_same_event_delivered_many_times_at_once_gives_one_set_of_outputs(
    stack: LocalStack, copies: int
) -> None:
    key, version, execution = upload(stack, (EVENTS / "records-mixed.csv").read_bytes())
    history = stack.client("stepfunctions").get_execution_history(executionArn=execution["executionArn"])
    event = json.loads(history["events"][0]["executionStartedEventDetails"]["input"])
    before = len(stack.started_executions)
    arns: list[str] = []
    threads = [threading.Thread(target=lambda: arns.append(stack.deliver(event))) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    finished = stack.wait_for_executions(before + copies)[before:]
    assert {e["status"] for e in finished} == {"SUCCEEDED"}
    for arn in arns:
        outputs = json.loads(next(e for e in finished if e["executionArn"] == arn).get("output") or "{}")
        assert outputs.get("duplicate") is True
    predictions, dead = outcome(stack, key, version)
    assert (len(predictions), len(dead)) == (3, 2)


def test_a_predictor_down_then_back_loses_nothing_and_replay_twice_changes_nothing(stack: LocalStack) -> None:
    from click.testing import CliRunner

    from predictflow.cli import cli

    body = (ROOT / "model" / "data" / "adult.data").read_bytes().splitlines(keepends=True)[:40]
    use_test_case_with_real_handlers(stack, "PredictorDown")
    try:
        key, version, execution = upload(stack, b"".join(body))
    finally:
        stack.clear_mocks()
    assert execution["status"] == "FAILED"
    predictions, dead = outcome(stack, key, version)
    assert (len(predictions), len(dead)) == (0, 40)
    assert {d["error_type"] for d in dead} == {"PredictorUnavailable"}

    before = len(stack.started_executions)
    replayed = CliRunner().invoke(cli, ["--stack-name", "predictflow-local", "replay", "--source", key])
    assert replayed.exit_code == 0, replayed.output
    (replay_execution,) = stack.wait_for_executions(before + 1)[before:]
    assert replay_execution["status"] == "SUCCEEDED"
    replay_key = replayed.stdout.split(f"s3://{stack.outputs['InputBucketName']}/", 1)[1].split()[0]
    replay_output = json.loads(replay_execution["output"])
    assert (replay_output["records"], replay_output["predicted"], replay_output["dead_lettered"]) == (
        40,
        40,
        0,
    )
    assert replay_output["source_key"] == replay_key
    again = CliRunner().invoke(cli, ["--stack-name", "predictflow-local", "replay", "--source", key])
    assert again.stdout.strip() == "nothing to replay"
    assert len(stack.started_executions) == before + 1


def test_info_logs_carry_no_record_content(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    buffer: list[str] = []
    service = logging.getLogger("predictflow")
    handler = logging.StreamHandler()
    handler.emit = lambda record: buffer.append(handler.format(record))  # type: ignore[method-assign]
    handler.setFormatter(service.handlers[0].formatter)
    service.addHandler(handler)
    try:
        upload(stack, f"{ARTICLE}\nabc, Private, 45781, Masters\n".encode())
    finally:
        service.removeHandler(handler)
    logged = "\n".join(buffer)
    assert "predicted chunk" in logged, "INFO logging was not captured"
    for value in ("Local-gov", "108435", "Married-civ-spouse", "45781", "abc, Private", "Masters"):
        assert value not in logged
    for secret in ("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key", "testing"):
        assert secret not in logged


@pytest.mark.parametrize("records", [3, 12], ids=["on-the-ledger", "in-parts"])
def test_a_source_key_near_s3s_limit_still_gets_outputs_that_fit(stack: LocalStack, records: int) -> None:
    prefix = f"{stack.outputs['InputPrefix']}long/"
    key = prefix + "k" * (1020 - len(prefix.encode())) + ".csv"  # 1,024 bytes: the longest S3 allows
    assert len(key.encode()) == 1024
    body = "".join(f"{ARTICLE}\n" for _ in range(records)).encode()
    key, version, execution = upload(stack, body, key)
    assert execution["status"] == "SUCCEEDED"
    predictions, dead = outcome(stack, key, version)
    assert ([p["line"] for p in predictions], dead) == (list(range(1, records + 1)), [])
    if records > 3:
        manifest = stack.results().manifest(key, version)
        assert manifest is not None
        assert manifest["source_key"] == key
        assert all(len(part.encode()) <= 1024 for part in manifest["parts"])


def test_the_local_stack_refuses_a_key_longer_than_s3_allows(stack: LocalStack) -> None:
    s3 = stack.client("s3")
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=stack.outputs["InputBucketName"], Key="x" * 1025, Body=b"")
    assert refused.value.response["Error"]["Code"] == "KeyTooLongError"
