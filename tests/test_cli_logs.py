"""`predictflow logs EXECUTION`: one execution's Lambda log lines, read from the local stack's
CloudWatch Logs as they are read from AWS's; and the local stack's `--log-level`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from predictflow.cli import cli
from predictflow.local.stack import LocalStack
from predictflow.pipeline.runtime import log_keys
from tests.conftest import running_stack
from tests.fixtures import EVENTS


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # Lines in CloudWatch Logs only, as on Lambda; INFO, the template's default level.
    with running_stack(log_level="INFO", function_logs="none") as local:
        yield local


@pytest.fixture(scope="module")
def two_executions(stack: LocalStack) -> tuple[str, str]:
    """A mixed file's execution and a good file's, which ran beside it."""
    mixed = stack.upload(EVENTS / "records-mixed.csv", key="incoming/logs/mixed.csv")
    stack.upload(EVENTS / "records-good.csv", key="incoming/logs/good.csv")
    described = stack.wait_for_executions(len(stack.started_executions))
    arns = {json.loads(d["input"])["detail"]["object"]["key"]: d["executionArn"] for d in described}
    return arns[mixed], arns["incoming/logs/good.csv"]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--stack-name", "predictflow-local", *args])


def test_logs_shows_each_step_of_one_execution_and_nothing_of_another(
    two_executions: tuple[str, str],
) -> None:
    mixed, good = two_executions
    shown = run("logs", mixed.rsplit(":", 1)[-1])  # the name at the ARN's end, as `show` takes it
    assert shown.exit_code == 0, shown.output
    rows = [line.split() for line in shown.stdout.splitlines()]
    assert [row[1] for row in rows] == ["Fetch", "Validate[1]", "Predict[1]", "Route[1]", "Finalize"]
    assert all(row[2] == "INFO" for row in rows)
    assert "valid=3 rejected=2" in shown.stdout  # the counts each step logged, after its message
    raw = [json.loads(line) for line in run("logs", mixed, "--output", "json").stdout.splitlines()]
    assert len(raw) == 5
    assert {line["execution_arn"] for line in raw} == {mixed}
    assert {line["source_key"] for line in raw} == {"incoming/logs/mixed.csv"}
    assert {
        line["execution_arn"] for line in map(json.loads, run("logs", good, "--json").stdout.splitlines())
    } == {good}


def test_logs_step_picks_one_state_even_of_a_shared_function(two_executions: tuple[str, str]) -> None:
    mixed, _ = two_executions
    validate = run("logs", mixed, "--step", "validate")
    assert [line.split()[1] for line in validate.stdout.splitlines()] == ["Validate[1]"]
    # Route and Finalize are one function; the payload's action tells their lines apart.
    finalize = run("logs", mixed, "--step", "Finalize", "--json")
    assert [json.loads(line)["action"] for line in finalize.stdout.splitlines()] == ["finalize"]
    unknown = run("logs", mixed, "--step", "Nope")
    assert unknown.exit_code == 2
    assert "the steps are: " in unknown.output
    assert "Validate" in unknown.output


def test_each_function_logs_to_its_own_group_in_a_stream_per_container(
    stack: LocalStack, two_executions: tuple[str, str]
) -> None:
    logs = stack.client("logs")
    fetch = stack.deployment.physical_ids["FetchFunction"] if stack.deployment else ""
    streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{fetch}")["logStreams"]
    assert streams
    assert all("/[$LATEST]" in stream["logStreamName"] for stream in streams)
    # Two Fetch invocations ran; a container serves one invocation at a time, never two at once.
    events = logs.filter_log_events(logGroupName=f"/aws/lambda/{fetch}")["events"]
    assert {json.loads(event["message"])["execution_arn"] for event in events} >= set(two_executions)


def test_a_step_without_lines_says_nothing_found(two_executions: tuple[str, str]) -> None:
    mixed, _ = two_executions
    result = run("logs", mixed, "--step", "Dead-letter File")  # the file was read: that state never ran
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "nothing found" in result.stderr


def test_the_execution_status_event_names_its_execution_in_the_log_keys() -> None:
    arn = "arn:aws:states:us-east-1:123456789012:execution:machine:run-1"
    event = {"detail-type": "Step Functions Execution Status Change", "detail": {"executionArn": arn}}
    assert log_keys(event)["execution_arn"] == arn
