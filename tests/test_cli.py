"""The CLI's stack commands, run with click's runner against the local stack (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from click.testing import CliRunner, Result

from predictflow.cli import cli
from predictflow.cli.aws import Aws
from predictflow.local.stack import LocalStack
from tests.conftest import running_stack
from tests.fixtures import EVENTS, ROOT
from tests.statemachine.mocks import use_test_case_with_real_handlers

MOCKS = ROOT / "tests" / "statemachine" / "MockConfigFile.json"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with running_stack(retry_wait_scale=0.001) as local:
        yield local


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, ["--stack-name", "predictflow-local", *args])
    return result


def dead_letters(*args: str) -> list[dict[str, Any]]:
    result = run("dead-letters", *args, "--json")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout)["dead_letters"])


def uploaded(stack: LocalStack, path: Path, name: str) -> tuple[str, str]:
    """Upload through the CLI; returns (key, execution ARN) once the execution finished."""
    copy = path.parent / name if path.name != name else path
    result = run("upload", str(path), "--prefix", name.split(".")[0])
    assert result.exit_code == 0, result.output
    line = result.stdout.strip().splitlines()[-1]
    arn = line.rsplit(" -> ", 1)[1]
    assert arn.startswith("arn:aws:states:")
    stack.wait_for_executions(len(stack.started_executions))
    key = line.split(" -> ")[1].split(" ")[0].split("/", 3)[3]
    assert copy
    return key, arn


def test_upload_starts_an_execution_and_reports_it(stack: LocalStack) -> None:
    key, arn = uploaded(stack, EVENTS / "records-good.csv", "upload-good.csv")
    assert key.endswith("records-good.csv")
    assert stack.describe(arn)["status"] == "SUCCEEDED"


def test_upload_takes_a_directory(stack: LocalStack, tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_bytes((EVENTS / "records-good.csv").read_bytes())
    result = run("upload", str(tmp_path), "--prefix", "folder")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()) == 2
    assert all("arn:aws:states:" in line for line in result.stdout.splitlines())


def test_upload_keeps_sub_folders_in_the_keys(stack: LocalStack, tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.csv").write_bytes((EVENTS / "records-good.csv").read_bytes())
    result = run("upload", str(tmp_path), "--prefix", "tree")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert [line.split(" -> ")[1].split(" ")[0].split("/", 3)[3] for line in lines] == [
        "incoming/tree/a/x.csv",
        "incoming/tree/b/x.csv",
    ]
    arns = [line.rsplit(" -> ", 1)[1] for line in lines]
    assert len(set(arns)) == 2
    stack.wait_for_executions(len(stack.started_executions))


def test_upload_of_a_folder_takes_record_files_only_unless_included(
    stack: LocalStack, tmp_path: Path
) -> None:
    for name in ("records.csv", "more.jsonl", "event.json", "notes.txt"):
        (tmp_path / name).write_bytes((EVENTS / "records-good.csv").read_bytes())
    result = run("upload", str(tmp_path), "--prefix", "patterns")
    assert result.exit_code == 0, result.output
    keys = [line.split(" -> ")[1].split("/", 3)[3].split(" ")[0] for line in result.stdout.splitlines()]
    assert keys == ["incoming/patterns/more.jsonl", "incoming/patterns/records.csv"]
    assert "skipped 2 files matching none of *.csv, *.jsonl (see --include)" in result.stderr
    included = run("upload", str(tmp_path), "--prefix", "patterns-txt", "--include", "*.txt")
    assert included.exit_code == 0, included.output
    assert len(included.stdout.splitlines()) == 3
    assert "*.csv, *.jsonl" in run("upload", "--help").stdout
    stack.wait_for_executions(len(stack.started_executions))


def test_executions_lists_files_with_status_and_counts(stack: LocalStack) -> None:
    key, arn = uploaded(stack, EVENTS / "records-mixed.csv", "listed.csv")
    result = run("executions", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["source_key"]: row for row in json.loads(result.stdout)["executions"]}
    row = rows[key]
    assert (row["status"], row["records"], row["predicted"], row["dead_lettered"]) == ("SUCCEEDED", 5, 3, 2)
    assert rows[key]["execution_arn"] == arn
    failed_only = json.loads(run("executions", "--json", "--status", "FAILED").stdout)["executions"]
    assert key not in {row["source_key"] for row in failed_only}
    assert run("executions", "--since", "1h").exit_code == 0
    assert "use a duration" in run("executions", "--since", "yesterday-ish").output


def test_show_gives_the_timeline_with_retries_and_errors(stack: LocalStack) -> None:
    use_test_case_with_real_handlers(stack, "PredictorThrottledTwice")
    try:
        _, arn = uploaded(stack, EVENTS / "records-good.csv", "throttled.csv")
    finally:
        stack.clear_mocks()
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        cli, ["--stack-name", "predictflow-local", "show", arn.rsplit(":", 1)[1]]
    )
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 5}
    assert {"Fetch", "Process Chunks", "Validate", "Predict", "Route", "Finalize", "Done"} <= set(rows)
    assert rows["Predict"].split("│")[5].strip() == "2"
    assert "PredictorThrottled" in rows["Predict"]
    assert "SUCCEEDED" in result.stdout


def test_show_exits_3_for_a_failed_execution_and_0_for_one_with_dead_letters(
    stack: LocalStack, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    _, failed = uploaded(stack, empty, "empty.csv")
    shown = run("show", failed.rsplit(":", 1)[1])
    assert "FAILED" in shown.stdout
    assert shown.exit_code == 3
    _, mixed = uploaded(stack, EVENTS / "records-mixed.csv", "shown-mixed.csv")
    assert run("show", mixed).exit_code == 0
    assert "Exit status" in run("show", "--help").stdout


def test_upload_exits_4_when_an_execution_did_not_start_within_wait(stack: LocalStack) -> None:
    result = run("upload", str(EVENTS / "records-good.csv"), "--prefix", "impatient", "--timeout", "0")
    assert "(not started yet)" in result.stdout
    assert result.exit_code == 4
    stack.wait_for_executions(len(stack.started_executions))


def test_results_prints_the_predictions_of_a_file(stack: LocalStack) -> None:
    key, _ = uploaded(stack, EVENTS / "records-mixed.csv", "results.csv")
    result = run("results", key)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["line"] for line in lines] == [2, 3, 5]
    assert {line["actual"] for line in lines} == {"<=50K", ">50K"}
    assert "no processed file" in run("results", "incoming/never-uploaded.csv").output


def test_results_of_an_unknown_version_is_an_error_naming_the_known_ones(stack: LocalStack) -> None:
    key, _ = uploaded(stack, EVENTS / "records-good.csv", "versioned.csv")
    [known] = [str(f["pk"]).rsplit("#", 1)[1] for f in stack.results().files() if f["source_key"] == key]
    assert run("results", key, "--version", known).stdout.count("\n") == 5
    bogus = run("results", key, "--version", "bogus")
    assert bogus.exit_code == 1
    assert bogus.stdout == ""
    assert f"no version 'bogus' of {key!r} was processed; known versions: {known}" in bogus.output


def test_dead_letters_filters_and_replay_marks_what_it_replayed(stack: LocalStack, tmp_path: Path) -> None:
    key, _ = uploaded(stack, EVENTS / "records-mixed.csv", "replayed.csv")
    listed = dead_letters("--source", key)
    assert [(e["line"], e["error_type"]) for e in listed] == [(4, "InvalidValue"), (6, "UnknownCategory")]
    only_unknown = dead_letters("--source", key, "--error-type", "UnknownCategory")
    assert [entry["line"] for entry in only_unknown] == [6]

    dry = run("replay", "--source", key, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "2 entries would go to" in dry.stdout
    assert len(dead_letters("--source", key)) == 2

    fixed = tmp_path / "fixed.csv"
    good = (EVENTS / "records-good.csv").read_text().splitlines()
    fixed.write_text(f"{good[0]}\n{good[1]}\n")
    before = len(stack.started_executions)
    replayed = run("replay", "--source", key, "--fixed", str(fixed))
    assert replayed.exit_code == 0, replayed.output
    assert "replayed 2 entries as" in replayed.stdout
    arn = replayed.stdout.strip().splitlines()[-1].removeprefix("execution: ")
    stack.wait_for_executions(before + 1)
    assert stack.describe(arn)["status"] == "SUCCEEDED"
    assert dead_letters("--source", key) == []
    marked = dead_letters("--source", key, "--all")
    assert all(entry["replayed_as"].startswith("incoming/replay/") for entry in marked)
    again = run("replay", "--source", key)
    assert again.stdout.strip() == "nothing to replay"


def test_replay_redrive_calls_redrive_execution(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    arn = "arn:aws:states:us-east-1:123456789012:execution:machine:failed-run"
    from datetime import datetime

    import boto3

    client = boto3.client("stepfunctions", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_response(
        "redrive_execution", {"redriveDate": datetime(2026, 1, 1, tzinfo=UTC)}, {"executionArn": arn}
    )
    original = Aws.client

    def stubbed(self: Aws, service: str) -> Any:
        return client if service == "stepfunctions" else original(self, service)

    monkeypatch.setattr(Aws, "client", stubbed)
    with stubber:
        result = run("replay", "--redrive", arn)
        stubber.assert_no_pending_responses()
    assert result.exit_code == 0, result.output
    assert f"redriven {arn}" in result.stdout


def test_replay_redrive_on_the_local_stack_says_in_one_line_it_cannot() -> None:
    arn = "arn:aws:states:us-east-1:123456789012:execution:machine:failed-run"
    result = CliRunner().invoke(cli, ["--local", "replay", "--redrive", arn])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert result.output.startswith("Error: the local stack cannot redrive an execution;")


def test_errors_are_one_clear_line(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = CliRunner().invoke(cli, ["--stack-name", "no-such-stack", "executions"])
    assert missing.exit_code == 1
    assert (
        missing.output.strip()
        == "Error: no stack named 'no-such-stack' here; deploy it (sam deploy) or name it with --stack-name"
    )
    unreachable = CliRunner().invoke(cli, ["--endpoint-url", "http://127.0.0.1:9", "executions"])
    assert unreachable.exit_code == 1
    assert "cannot reach http://127.0.0.1:9" in unreachable.output
    assert "Traceback" not in unreachable.output
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    no_credentials = CliRunner().invoke(cli, ["executions"])
    assert no_credentials.exit_code == 1
    assert "no AWS credentials" in no_credentials.output
    debug = CliRunner().invoke(cli, ["--debug", "--stack-name", "no-such-stack", "executions"])
    assert debug.exit_code == 1
