"""The `predictflow` command line.

    predictflow predict FILE              score a record file offline with the embedded model
    predictflow local run FILE...         the whole pipeline on this machine, one shot
    predictflow local up                  the local stack as an endpoint, for the commands below
    predictflow upload | wait | executions | show | results | dead-letters | replay | dlq | model | console
                                          against a deployed stack (--stack-name) or the local one (--local),
                                          the options before or after the command's name

Listings and `show` print --output table|json|text (docs/cli.md gives each JSON shape) and page
with --max-items/--starting-token. An execution is named by its ARN, its name or a unique
prefix of its name.

Errors reach the user as one line; `--debug` shows the traceback.

Exit status: 0 success (dead letters included), 1 an error, 2 a usage error, 3 an execution
FAILED (`local run`, `show`, `wait`, `upload --wait`, `replay --wait`), 4 an execution did not
start or end in time (`upload`, `replay`, `local run`, `wait`), 141 the reader of stdout went
away (`| head`).
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
import sys
from typing import Any

import click

from predictflow.cli.aws import aws_of, connection_options, explain

COMMANDS = {
    "predict": "predictflow.cli.predict",
    "local": "predictflow.cli.local",
    "model": "predictflow.cli.model",
    "upload": "predictflow.cli.commands",
    "wait": "predictflow.cli.commands",
    "executions": "predictflow.cli.commands",
    "show": "predictflow.cli.commands",
    "results": "predictflow.cli.commands",
    "dead-letters": "predictflow.cli.commands:dead_letters",
    "replay": "predictflow.cli.commands",
    "dlq": "predictflow.cli.commands",
    "console": "predictflow.cli.console",
    "send": "predictflow.cli.send",
    "logs": "predictflow.cli.logs",
}
"""Each command's module (and its name there, where it is not the command's): a command is
imported when it is run or listed, so that `predictflow predict` does not import boto3, rich,
the API or the local stack, which the other commands need (about 0.3 s of its start-up)."""


class Cli(click.Group):
    """Imports each command when it is wanted (see `COMMANDS`), and turns any error into one
    line on stderr (and exit 1) unless --debug is given."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, attribute = COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute or cmd_name)
            assert isinstance(command, click.Command), COMMANDS[cmd_name]
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

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
@connection_options
@click.version_option(package_name="predictflow")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Predictions for every record of every file dropped in S3.

    The options naming the stack (--local, --stack-name, --endpoint-url, --profile, --region)
    may also come after a command's name (`predictflow executions --local`); there they win.

    \b
    Exit status: 0 success (dead letters included), 1 an error, 2 a usage error,
    3 an execution ended FAILED (local run, show, wait, upload --wait),
    4 an execution did not start or end in time (upload, replay, local run, wait),
    141 the reader of the output went away (| head)."""
    ctx.meta["predictflow.debug"] = debug
    # Commands that take no connection options of their own (`predict --remote`) use the
    # group's; the others ask aws_of, which adds their own.
    ctx.obj = aws_of(ctx)


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush cannot fail on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (click's test runner)
        pass


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
