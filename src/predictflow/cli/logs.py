"""`predictflow logs EXECUTION`: the Lambda log lines of one execution, as `sam logs` shows a
function's, read from CloudWatch Logs on AWS and on the local stack alike."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from predictflow.cli.aws import aws_of, connection_options
from predictflow.cli.commands import execution_of
from predictflow.service import logs as logs_service

FOLLOW_SECONDS = 2.0
"""How often --follow asks for new lines (CloudWatch Logs shows a line a few seconds after it
is written)."""


@click.command()
@click.argument("execution")
@click.option("--step", help="Only this state's lines (Fetch, Validate, Predict, Route, Finalize, …).")
@click.option("--follow", "-f", is_flag=True, help="Print new lines as they come, until the execution ends.")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "table", "json"]),
    default="text",
    show_default=True,
    help="json: each line as the function logged it (powertools' JSON), one a line.",
)
@click.option("--json", "as_json", is_flag=True, help="The same as --output json.")
@connection_options
@click.pass_context
def logs(
    ctx: click.Context, execution: str, step: str | None, follow: bool, output: str, as_json: bool
) -> None:
    """The log lines the functions wrote for EXECUTION (an ARN, a name or a unique prefix), oldest
    first: time, state (with the chunk of a Map iteration), level, message and the counts it
    logged. On AWS they come from the functions' CloudWatch Logs groups; the local stack keeps
    its functions' lines there too (`local up --log-level`).

    Lines are found by the execution's ARN, which every line of the pipeline's functions
    carries (`execution_arn`); a record's content is never logged."""
    aws = aws_of(ctx)
    sfn = aws.client("stepfunctions")
    arn = execution_of(aws, execution)
    described = sfn.describe_execution(executionArn=arn)
    # The definition this execution ran, which names its functions.
    definition = json.loads(sfn.describe_state_machine_for_execution(executionArn=arn)["definition"])
    steps = logs_service.steps_of(definition)
    try:
        wanted = logs_service.select(steps, step) if step else None
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    lambda_client = aws.client("lambda")
    groups = {
        function: logs_service.log_group_of(lambda_client, function)
        for function in dict.fromkeys(s.function for s in (wanted or steps))
    }
    width = max(len(s.state) for s in steps) + 4
    printed: set[str] = set()
    running = described["status"] == "RUNNING"
    while True:
        for line in logs_service.execution_lines(
            aws.client("logs"), groups, steps, arn, described["startDate"], wanted
        ):
            if line.event_id in printed:
                continue
            printed.add(line.event_id)
            click.echo(line.raw if as_json or output == "json" else _text(line, width))
        if not (follow and running):
            break
        time.sleep(FOLLOW_SECONDS)
        # One more read after the execution ends: its last lines arrive after its status.
        running = sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    if not printed:
        click.echo(
            f"nothing found: no log lines of {arn.rsplit(':', 1)[-1]}"
            + (f" from {step}" if step else "")
            + " (the functions log INFO and above unless the stack's LogLevel says otherwise)",
            err=True,
        )


def _text(line: logs_service.LogLine, width: int) -> str:
    step = line.step if line.chunk is None else f"{line.step}[{line.chunk}]"
    extra = " ".join(f"{key}={_value(value)}" for key, value in line.extra.items())
    clock = line.timestamp.astimezone().strftime("%H:%M:%S.%f")[:-3]
    return f"{clock}  {step:{width}} {line.level:8} {line.message}" + (f"  {extra}" if extra else "")


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
