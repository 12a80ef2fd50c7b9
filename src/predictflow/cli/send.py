"""`predictflow send FILE --to sqs|kinesis`: put a file's records on the stack's queue or stream."""

from __future__ import annotations

from pathlib import Path

import click

from predictflow.cli.aws import aws_of, connection_options
from predictflow.sources.sender import Sent, file_records, send_to_kinesis, send_to_sqs


@click.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--to",
    "target",
    type=click.Choice(["sqs", "kinesis"]),
    default="sqs",
    show_default=True,
    help="The stream to put the records on.",
)
@click.option(
    "--records-per-message",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="Records in each message (a message is scored as one POST /predict).",
)
@connection_options
@click.pass_context
def send(ctx: click.Context, path: Path, target: str, records_per_message: int) -> None:  # fmt: skip
    """Put the records of PATH (CSV or JSON Lines) on the stack's stream queue or Kinesis stream;
    their predictions appear under predictions/_streams/, their dead letters in
    `predictflow dead-letters`."""
    aws = aws_of(ctx)
    stacks = aws.client("cloudformation").describe_stacks(StackName=aws.stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    output = "StreamQueueUrl" if target == "sqs" else "StreamName"
    destination = outputs.get(output)
    if not destination:
        raise click.ClickException(f"stack {aws.stack_name!r} has no {target} source ({output}): redeploy it")
    sent: Sent
    if target == "sqs":
        sent = send_to_sqs(aws.client("sqs"), destination, file_records(path), records_per_message)
    else:
        sent = send_to_kinesis(aws.client("kinesis"), destination, file_records(path), records_per_message)
    name = destination.rsplit("/", 1)[-1]
    click.echo(f"sent {sent.records} records in {sent.messages} messages to {name}", err=True)
