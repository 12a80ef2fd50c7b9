"""The `predictflow` command line.

    predictflow predict FILE              score a record file offline with the embedded model
    predictflow local run FILE...         the whole pipeline on this machine, one shot
    predictflow local up                  the local stack as an endpoint, for the commands below
    predictflow upload | executions | show | results | dead-letters | replay | console
                                          against a deployed stack (--stack-name) or the local one (--local)

Errors reach the user as one line; `--debug` shows the traceback.

Exit status: 0 success (dead letters included), 1 an error, 2 a usage error, 3 an execution
FAILED (`local run`, `show`), 4 an execution did not start or end in time (`upload`, `replay`,
`local run`), 141 the reader of stdout went away (`| head`).
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from typing import Any

import click

from predictflow.cli.aws import DEFAULT_STACK, LOCAL_REGION, LOCAL_STACK, Aws, explain, local_endpoint
from predictflow.cli.commands import dead_letters, dlq, executions, replay, results, show, upload
from predictflow.cli.console import console
from predictflow.cli.local import local
from predictflow.cli.logs import logs
from predictflow.cli.model import model
from predictflow.cli.predict import predict
from predictflow.cli.send import send


class Cli(click.Group):
    """Turns any error into one line on stderr (and exit 1) unless --debug is given."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`| head`): end quietly with the status a shell gives a
            # process SIGPIPE ended, as Unix tools do, rather than "Error: BrokenPipeError".
            _discard_stdout()
            raise click.exceptions.Exit(128 + signal.SIGPIPE) from None
        except Exception as error:
            if ctx.meta.get("predictflow.debug"):
                raise
            message = explain(error) or f"{type(error).__name__}: {error}"
            raise click.ClickException(message) from error


@click.group(cls=Cli)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.option("--stack-name", envvar="PREDICTFLOW_STACK", help=f"Deployed stack [default: {DEFAULT_STACK}].")
@click.option(
    "--local",
    "use_local",
    is_flag=True,
    help="Use the local stack `local up` serves (any --port; default 4566).",
)
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", help="Any AWS-compatible endpoint.")
@click.option("--profile", envvar="AWS_PROFILE", help="AWS profile.")
@click.option("--region", envvar="AWS_REGION", help="AWS region.")
@click.version_option(package_name="predictflow")
@click.pass_context
def cli(ctx: click.Context, debug: bool, stack_name: str | None, use_local: bool, endpoint_url: str | None,
        profile: str | None, region: str | None) -> None:  # fmt: skip
    """Predictions for every record of every file dropped in S3.

    \b
    Exit status: 0 success (dead letters included), 1 an error, 2 a usage error,
    3 an execution ended FAILED (local run, show),
    4 an execution did not start or end in time (upload, replay, local run),
    141 the reader of the output went away (| head)."""
    ctx.meta["predictflow.debug"] = debug
    if use_local:
        endpoint_url = endpoint_url or local_endpoint()
        # The local stack lives in one region (its ARNs and Outputs say so); a region the
        # environment names for AWS (AWS_REGION, a profile's) must not send --local elsewhere.
        region = LOCAL_REGION
    custom_endpoint = endpoint_url is not None
    ctx.obj = Aws(
        stack_name=stack_name or (LOCAL_STACK if custom_endpoint else DEFAULT_STACK),
        endpoint_url=endpoint_url,
        profile=profile,
        region=region or (LOCAL_REGION if custom_endpoint else None),
    )


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush cannot fail on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (click's test runner)
        pass


for command in (predict, local, model, upload, executions, show, results, dead_letters, replay, dlq, console):
    cli.add_command(command)
cli.add_command(send)
cli.add_command(logs)


def main() -> None:
    try:
        cli(prog_name="predictflow")
    finally:
        # The process ends here. Left to itself, the interpreter's last garbage collection
        # walks everything a local run built (moto's state, every model parsed) only for
        # the OS to free it: a second after a large file. Frozen objects are skipped;
        # atexit handlers and stream flushes still run.
        gc.freeze()


if __name__ == "__main__":
    main()
