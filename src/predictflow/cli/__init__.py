"""The `predictflow` command line.

    predictflow predict FILE              score a record file offline with the embedded model
    predictflow local run FILE...         the whole pipeline on this machine, one shot
    predictflow local up                  the local stack as an endpoint, for the commands below

Errors reach the user as one line; `--debug` shows the traceback.
"""

from __future__ import annotations

from typing import Any

import click

from predictflow.cli.local import local
from predictflow.cli.predict import predict


class Cli(click.Group):
    """Turns any error into one line on stderr (and exit 1) unless --debug is given."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as error:
            if ctx.meta.get("predictflow.debug"):
                raise
            raise click.ClickException(f"{type(error).__name__}: {error}") from error


@click.group(cls=Cli)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="predictflow")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Predictions for every record of every file dropped in S3."""
    ctx.meta["predictflow.debug"] = debug


cli.add_command(predict)
cli.add_command(local)


def main() -> None:
    cli(prog_name="predictflow")


if __name__ == "__main__":
    main()
