"""The CLI's conventions, as a user of the AWS CLI expects them: execution names by prefix and
never cut, --output table|json|text with the shapes docs/cli.md gives, paging, "nothing
found", connection options after the command, forgiving lookups, and waiting."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from predictflow.cli import cli
from predictflow.local.stack import LocalStack
from tests.conftest import running_stack
from tests.fixtures import EVENTS, ROOT, free_port
from tests.statemachine.mocks import use_test_case_with_real_handlers

DOCS = ROOT / "docs" / "cli.md"
PREDICTFLOW = [sys.executable, "-c", "from predictflow.cli import main; main()"]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # Served on a port, so that a second process (a pipe, a later page) reaches the same stack;
    # retries wait as long as on AWS, so that a throttled execution runs for seconds.
    with running_stack(server_port=free_port()) as local:
        yield local


@pytest.fixture(autouse=True)
def served(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The handlers reach the served stack as `local up`'s do (conftest clears the variable)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", str(stack.endpoint_url))


def run(stack: LocalStack, *args: str, columns: int | None = None) -> Result:
    env = {"COLUMNS": str(columns)} if columns else {}
    with_endpoint = ["--endpoint-url", str(stack.endpoint_url), *args]
    return CliRunner(env=env).invoke(cli, with_endpoint)


def process(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as its own process, its stdout a pipe (as in `predictflow … | grep`)."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run(
        [*PREDICTFLOW, "--endpoint-url", str(stack.endpoint_url), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def uploaded(stack: LocalStack, body: bytes, name: str) -> tuple[str, str]:
    """(key, execution ARN) of a file put under the input prefix, once its execution ended."""
    key = f"{stack.outputs['InputPrefix']}{uuid.uuid4().hex[:8]}/{name}"
    before = len(stack.started_executions)
    stack.upload(Path(name), key=key, body=body)
    described = stack.wait_for_executions(before + 1, timeout=120)[before]
    return key, str(described["executionArn"])


@pytest.fixture(scope="module")
def mixed(stack: LocalStack) -> tuple[str, str]:
    """A file of 5 records, 3 predicted and 2 dead-lettered."""
    return uploaded(stack, (EVENTS / "records-mixed.csv").read_bytes(), "records-mixed.csv")


@pytest.fixture(scope="module")
def named(stack: LocalStack, mixed: tuple[str, str]) -> list[str]:
    """Executions named by hand, two sharing a prefix (the file they name is already done:
    each ends SUCCEEDED as a duplicate)."""
    sfn = stack.client("stepfunctions")
    event = stack.describe(mixed[1])["input"]
    names = [
        "batch-a1-" + uuid.uuid4().hex[:6],
        "batch-a2-" + uuid.uuid4().hex[:6],
        "solo-" + uuid.uuid4().hex,
    ]
    arns = [
        sfn.start_execution(stateMachineArn=stack.outputs["StateMachineArn"], name=name, input=event)[
            "executionArn"
        ]
        for name in names
    ]
    for arn in arns:
        CliRunner().invoke(cli, ["--endpoint-url", str(stack.endpoint_url), "wait", arn, "--timeout", "60"])
    return names


@pytest.fixture(scope="module")
def several(stack: LocalStack, mixed: tuple[str, str]) -> list[str]:
    """Four more files of one record each (keys)."""
    line = (EVENTS / "records-good.csv").read_text().splitlines()[0].encode() + b"\n"
    before = len(stack.started_executions)
    keys = [f"{stack.outputs['InputPrefix']}{uuid.uuid4().hex[:8]}/one-{n}.csv" for n in range(4)]
    for key in keys:
        stack.upload(Path(key), key=key, body=line)
    stack.wait_for_executions(before + len(keys), timeout=120)
    return keys


def documented_shapes() -> dict[str, dict[str, Any]]:
    """Each command's JSON example in docs/cli.md, by the command's heading."""
    text = DOCS.read_text()
    shapes = {}
    for heading, body in re.findall(r"### `predictflow ([^`]+)`\n(.*?)(?=\n### |\Z)", text, re.S):
        block = re.search(r"```json\n(.*?)```", body, re.S)
        assert block, f"docs/cli.md: no JSON example for {heading}"
        shapes[heading] = json.loads(block.group(1))
    return shapes


# ---------------------------------------------------------------- execution ids


def test_an_execution_is_named_by_a_unique_prefix_and_an_ambiguous_one_lists_the_candidates(
    stack: LocalStack, named: list[str]
) -> None:
    first, second, solo = named
    shown = run(stack, "show", solo[:9], "-o", "json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["execution"]["name"] == solo

    ambiguous = run(stack, "show", "batch-a")
    assert ambiguous.exit_code == 1
    assert f"'batch-a' names 2 executions: {first}, {second}; give more of the name" in ambiguous.output

    unknown = run(stack, "wait", "no-such-execution")
    assert unknown.exit_code == 1
    assert "is named 'no-such-execution' or starts with it" in unknown.output

    # A whole name is a name, even when it is also the start of another.
    assert run(stack, "wait", first).exit_code == 0


def test_tables_print_execution_names_whole_in_a_narrow_terminal_and_in_a_pipe(
    stack: LocalStack, mixed: tuple[str, str]
) -> None:
    key, arn = mixed
    name = arn.rsplit(":", 1)[1]
    for columns in (60, 40):  # 40: narrower than the name and the other columns' least
        narrow = run(stack, "executions", columns=columns)
        assert narrow.exit_code == 0, narrow.output
        # On one line, whole, and the row's other cells still there (the table grew instead).
        assert any(name in line and "SUCCEEDED" in line for line in narrow.stdout.splitlines()), columns

    shown = run(stack, "show", name, columns=60)
    assert arn in shown.stdout.splitlines()[0]

    piped = process(stack, "executions")
    assert piped.returncode == 0, piped.stderr
    # Into a pipe no cell wraps: the file's key and its execution's name share one row.
    assert any(key in line and name in line for line in piped.stdout.splitlines())


# ---------------------------------------------------------------- output


def test_every_listing_and_show_print_the_json_docs_cli_md_documents(
    stack: LocalStack, mixed: tuple[str, str]
) -> None:
    key, arn = mixed
    stack.client("sqs").send_message(  # an event the rule could not deliver, as EventBridge sends it
        QueueUrl=stack.outputs["EventDeadLetterQueueUrl"],
        MessageBody=json.dumps(
            {"id": "e1", "detail": {"object": {"key": "incoming/lost.csv", "version-id": "v1"}}}
        ),
        MessageAttributes={"ERROR_CODE": {"DataType": "String", "StringValue": "SDK_CLIENT_ERROR"}},
    )
    shapes = documented_shapes()
    assert set(shapes) == {"executions", "dead-letters", "dlq list", "model list", "show EXECUTION"}
    commands = {
        "executions": ["executions"],
        "dead-letters": ["dead-letters", "--source", key],
        "dlq list": ["dlq", "list"],
        "model list": ["model", "list"],
        "show EXECUTION": ["show", arn],
    }
    for heading, args in commands.items():
        for flag in (["--output", "json"], ["--json"]):
            result = run(stack, *args, *flag)
            assert result.exit_code == 0, result.output
            document = json.loads(result.stdout)
            documented = shapes[heading]
            assert set(document) == set(documented) - {"NextToken"}, heading
            for name, value in documented.items():
                if isinstance(value, list) and document[name]:
                    # Every documented key is there; dead letters add others where they apply.
                    assert set(value[0]) <= set(document[name][0]), (heading, name)
                    if heading != "dead-letters":
                        assert set(value[0]) == set(document[name][0]), (heading, name)
                elif isinstance(value, dict):
                    assert set(value) == set(document[name]), (heading, name)
    steps = json.loads(run(stack, "show", arn, "--json").stdout)["steps"]
    assert [s["chunk"] for s in steps if s["state"] == "Predict"] == [0]


def test_text_output_is_tab_separated_lines_without_decoration(
    stack: LocalStack, mixed: tuple[str, str]
) -> None:
    key, arn = mixed
    listed = run(stack, "executions", "-o", "text")
    assert listed.exit_code == 0, listed.output
    [row] = [line.split("\t") for line in listed.stdout.splitlines() if line.startswith(key + "\t")]
    assert row == [key, arn.rsplit(":", 1)[1], "SUCCEEDED", "5", "3", "2", row[6]]
    assert float(row[6]) > 0
    assert not re.search("[│┃━─]", listed.stdout)

    shown = run(stack, "show", arn, "-o", "text").stdout.splitlines()
    assert shown[0].split("\t")[:3] == ["EXECUTION", arn, "SUCCEEDED"]
    assert {line.split("\t")[1] for line in shown[1:]} >= {"Fetch", "Validate", "Predict", "Route", "Done"}
    assert all(line.startswith("STEP\t") and line.count("\t") == 7 for line in shown[1:])

    errors = run(stack, "dead-letters", "--source", key, "-o", "text").stdout.splitlines()
    assert [line.split("\t")[:4] for line in errors] == [
        [key, "4", "1", "InvalidValue"],
        [key, "6", "1", "UnknownCategory"],
    ]


def test_paging_gives_every_item_once_across_pages_and_processes(
    stack: LocalStack, several: list[str]
) -> None:
    everything = [
        row["execution_arn"] for row in json.loads(run(stack, "executions", "--json").stdout)["executions"]
    ]
    assert len(everything) >= 5

    seen: list[str] = []
    token: list[str] = []
    pages = 0
    while True:
        page = json.loads(run(stack, "executions", "--json", "--max-items", "2", *token).stdout)
        assert len(page["executions"]) <= 2
        seen += [row["execution_arn"] for row in page["executions"]]
        pages += 1
        if "NextToken" not in page:
            break
        token = ["--starting-token", page["NextToken"]]
    assert seen == everything
    assert pages == (len(everything) + 1) // 2

    # table and text: the token on stderr; each page a process of its own.
    first = process(stack, "executions", "-o", "text", "--max-items", "3")
    assert first.returncode == 0, first.stderr
    [hint] = [line for line in first.stderr.splitlines() if "--starting-token" in line]
    next_token = re.fullmatch(r"more found: add --starting-token (\S+) for the next page", hint)
    assert next_token
    rest = process(stack, "executions", "-o", "text", "--starting-token", next_token.group(1))
    assert rest.returncode == 0, rest.stderr
    assert "--starting-token" not in rest.stderr
    names = [line.split("\t")[1] for line in (first.stdout + rest.stdout).splitlines()]
    assert names == [arn.rsplit(":", 1)[1] for arn in everything]

    bogus = run(stack, "executions", "--starting-token", "not-a-token")
    assert bogus.exit_code == 2
    assert "not a NextToken this command printed" in bogus.output
    other = json.loads(run(stack, "dead-letters", "--json", "--max-items", "1").stdout)["NextToken"]
    assert "another listing" in run(stack, "executions", "--starting-token", other).output


def test_an_empty_listing_says_nothing_found_and_stays_parseable_json(stack: LocalStack) -> None:
    table = run(stack, "dead-letters", "--source", "incoming/never-uploaded.csv")
    assert table.exit_code == 0, table.output
    assert table.stdout == ""
    assert table.stderr.strip() == "nothing found"
    later = run(stack, "executions", "--since", "2999-01-01", "-o", "text")
    assert (later.exit_code, later.stdout, later.stderr.strip()) == (0, "", "nothing found")
    document = json.loads(
        run(stack, "dead-letters", "--source", "incoming/never-uploaded.csv", "--json").stdout
    )
    assert document == {"dead_letters": []}


# ---------------------------------------------------------------- options after the command


def test_connection_options_after_the_command_override_the_groups(
    stack: LocalStack, mixed: tuple[str, str]
) -> None:
    endpoint = str(stack.endpoint_url)
    runner = CliRunner()
    # No endpoint before the command; all of them after it.
    after = runner.invoke(
        cli,
        ["show", mixed[1].rsplit(":", 1)[1][:12], "--stack-name", "predictflow-local",
         "--region", "us-east-1", "--endpoint-url", endpoint, "-o", "json"],
    )  # fmt: skip
    assert after.exit_code == 0, after.output
    assert json.loads(after.stdout)["execution"]["arn"] == mixed[1]
    # The command's value wins over the group's, both ways.
    wrong_first = runner.invoke(
        cli,
        [
            "--endpoint-url",
            endpoint,
            "--stack-name",
            "nope",
            "executions",
            "--stack-name",
            "predictflow-local",
        ],
    )
    assert wrong_first.exit_code == 0, wrong_first.output
    wrong_last = runner.invoke(
        cli,
        [
            "--endpoint-url",
            endpoint,
            "--stack-name",
            "predictflow-local",
            "executions",
            "--stack-name",
            "nope",
        ],
    )
    assert wrong_last.exit_code == 1
    assert "no stack named 'nope'" in wrong_last.output
    # ... and over the environment; the group's --region over AWS_REGION too.
    elsewhere = CliRunner(env={"AWS_REGION": "eu-west-1"})
    assert elsewhere.invoke(cli, ["--endpoint-url", endpoint, "executions"]).exit_code == 1
    assert (
        elsewhere.invoke(cli, ["--endpoint-url", endpoint, "executions", "--region", "us-east-1"]).exit_code
        == 0
    )
    assert (
        elsewhere.invoke(cli, ["--endpoint-url", endpoint, "--region", "us-east-1", "dlq", "list"]).exit_code
        == 0
    )
    for args in (["dead-letters"], ["dlq", "list"], ["model", "list"], ["send"], ["upload"], ["console"]):
        assert "--endpoint-url" in runner.invoke(cli, [*args, "--help"]).stdout, args


# ---------------------------------------------------------------- forgiving lookups


def test_a_source_without_the_input_prefix_is_found(stack: LocalStack, mixed: tuple[str, str]) -> None:
    key, _ = mixed
    short = key.removeprefix(stack.outputs["InputPrefix"])
    assert short != key
    results = run(stack, "results", short)
    assert results.exit_code == 0, results.output
    assert [json.loads(line)["line"] for line in results.stdout.splitlines()] == [2, 3, 5]
    entries = json.loads(run(stack, "dead-letters", "--source", short, "--json").stdout)["dead_letters"]
    assert [(e["source_key"], e["line"]) for e in entries] == [(key, 4), (key, 6)]
    dry = run(stack, "replay", "--source", short, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"would replay {key}:4 (InvalidValue)" in dry.stdout
    assert "no processed file with key 'nothing-here.csv'" in run(stack, "results", "nothing-here.csv").output


def test_error_type_matches_in_any_case_and_an_unknown_one_lists_the_known(
    stack: LocalStack, mixed: tuple[str, str]
) -> None:
    key, _ = mixed
    entries = json.loads(
        run(stack, "dead-letters", "--source", key, "--error-type", "invalidVALUE", "--json").stdout
    )["dead_letters"]
    assert [(e["line"], e["error_type"]) for e in entries] == [(4, "InvalidValue")]
    unknown = run(stack, "dead-letters", "--error-type", "Invalid")
    assert unknown.exit_code == 2
    assert "no error type 'Invalid'; known types:" in unknown.output
    assert all(name in unknown.output for name in ("InvalidValue", "UnknownCategory", "FileTooLarge"))
    assert run(stack, "replay", "--error-type", "Invalid", "--dry-run").exit_code == 2


# ---------------------------------------------------------------- waiting


def test_upload_wait_ends_with_each_outcome_and_the_documented_exit_status(
    stack: LocalStack, tmp_path: Path
) -> None:
    mixed_file = tmp_path / "waited.csv"
    mixed_file.write_bytes((EVENTS / "records-mixed.csv").read_bytes())
    done = run(stack, "upload", str(mixed_file), "--prefix", uuid.uuid4().hex[:8], "--wait")
    assert done.exit_code == 0, done.output
    arn = done.stdout.splitlines()[0].rsplit(" -> ", 1)[1]
    assert done.stdout.splitlines()[1] == (
        f"{arn.rsplit(':', 1)[1]}: SUCCEEDED, 5 records, 3 predicted, 2 dead-lettered"
    )
    # Not a terminal: progress as plain lines on stderr.
    assert "waiting up to 900 s for 1 execution(s) to end" in done.stderr
    assert f"ended: {arn.rsplit(':', 1)[1]} SUCCEEDED" in done.stderr

    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    failed = run(stack, "upload", str(empty), "--prefix", uuid.uuid4().hex[:8], "--wait")
    assert failed.exit_code == 3
    assert ": FAILED, " in failed.stdout
    assert "NoRecords" in failed.stdout


def test_wait_exits_0_for_succeeded_3_for_failed_and_4_when_still_running(
    stack: LocalStack, mixed: tuple[str, str]
) -> None:
    succeeded = run(stack, "wait", mixed[1].rsplit(":", 1)[1][:10])
    assert succeeded.exit_code == 0, succeeded.output
    assert succeeded.stdout.strip().endswith(": SUCCEEDED, 5 records, 3 predicted, 2 dead-lettered")

    _, failed_arn = uploaded(stack, b"", "empty.csv")
    failed = run(stack, "wait", failed_arn)
    assert failed.exit_code == 3
    assert "FAILED" in failed.stdout

    # Predict is throttled twice, and its retries wait 2 s then 4 s: it runs for seconds.
    use_test_case_with_real_handlers(stack, "PredictorThrottledTwice")
    try:
        before, since = len(stack.started_executions), stack.changes
        stack.upload(Path("slow.csv"), key=f"{stack.outputs['InputPrefix']}{uuid.uuid4().hex[:8]}/slow.csv",
                     body=(EVENTS / "records-good.csv").read_bytes())  # fmt: skip
        while len(stack.started_executions) == before:
            stack.wait_for_change(since, timeout=30)
        running = stack.started_executions[before]
        impatient = run(stack, "wait", running, "--timeout", "0.5")
        assert impatient.exit_code == 4, impatient.output
        assert f"{running.rsplit(':', 1)[1]}: still RUNNING after 0.5 s" in impatient.stdout
        patient = run(stack, "wait", running)
        assert patient.exit_code == 0, patient.output
        assert ": SUCCEEDED, 5 records, 5 predicted, 0 dead-lettered" in patient.stdout
    finally:
        stack.clear_mocks()
