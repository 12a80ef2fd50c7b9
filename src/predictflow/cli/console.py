"""`predictflow console`: the web console for the stack the global options name."""

from __future__ import annotations

import webbrowser

import click

from predictflow.cli.aws import aws_of, connection_options


@click.command("console")
@click.option("--port", default=8765, show_default=True, help="Port (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--open", "open_browser", is_flag=True, help="Open the console in the browser.")
@connection_options
@click.pass_context
def console(ctx: click.Context, port: int, host: str, open_browser: bool) -> None:
    """Serve the web console: executions state by state, dead letters and replay, upload,
    predictions. It listens on 127.0.0.1 and prints its address with a one-time token."""
    from predictflow.console import LOOPBACK, serve

    aws = aws_of(ctx)
    if host != LOOPBACK:
        click.echo(
            f"warning: listening on {host}: anyone who can reach it and learns the token can read "
            "this stack's records and replay them with your credentials",
            err=True,
        )
    try:
        served = serve(aws, host=host, port=port)
    except OSError as error:
        raise click.ClickException(f"cannot serve on {host}:{port}: {error.strerror}") from error
    click.echo(f"console for stack {aws.stack_name}: {served.url}")
    click.echo("(Ctrl-C stops)")
    if open_browser:
        webbrowser.open(served.url)
    try:
        served.server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopping")
