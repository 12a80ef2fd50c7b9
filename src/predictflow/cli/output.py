"""How listings and `show` print, as the AWS CLI's users expect: `--output table|json|text`
(`--json` is `--output json`), `--max-items`/`--starting-token` paging, and "nothing found".

- json: one document per command, `{"<items>": [...]}` plus `"NextToken"` when more remain
  (docs/cli.md gives each command's keys); an empty listing is `{"<items>": []}`.
- text: one line per item, its fields separated by tabs, no header or decoration (as
  `aws --output text`), for `cut` and `while read`.
- table: rich's table. Identifiers (execution names) are never cut or wrapped; the table is
  made wider than the terminal rather than cut them. Into a pipe, nothing wraps at all.

What is not the listing (nothing found, how to get the next page) goes to stderr, except in
json, where scripts read NextToken beside the items.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import click
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from predictflow.service import paging

OUTPUTS = ("table", "json", "text")
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def console(stderr: bool = False) -> Console:
    # Made per command so that the terminal's width (or COLUMNS) at that moment applies.
    return Console(stderr=stderr, width=None if _interactive() else 100_000)


def _interactive() -> bool:
    """A terminal is there to fit (or COLUMNS says how wide one is); a pipe is not."""
    return sys.stdout.isatty() or "COLUMNS" in os.environ


def print_table(table: Table) -> None:
    """The table at the terminal's width, or wider if its identifiers need it (a line the
    terminal wraps can still be copied; a cut id cannot); into a pipe, as wide as its widest
    row, so that no cell wraps."""
    out = Console(width=100_000)
    measured = Measurement.get(out, out.options, table)
    width = max(Console().width, measured.minimum) if _interactive() else measured.maximum
    Console(width=width).print(table)


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[dict[str, Any]], Any]
    ident: bool = False
    """An identifier users copy (an execution's name): never cut or wrapped."""


@dataclass(frozen=True)
class Output:
    """What --output (or --json) asked for."""

    format: str

    def item(self, document: dict[str, Any], text_lines: list[str], render_table: Callable[[], None]) -> None:
        """A single thing (`show`): one JSON document, tab-separated lines, or a table."""
        if self.format == "json":
            click.echo(json.dumps(document, indent=2, default=str))
        elif self.format == "text":
            for line in text_lines:
                click.echo(line)
        else:
            render_table()


@dataclass(frozen=True)
class Listing(Output):
    """What --output, --max-items and --starting-token asked of a listing."""

    max_items: int | None = None
    starting_token: str | None = None

    def page(self, items: Sequence[T], key: Callable[[T], paging.SortKey], name: str) -> paging.Page[T]:
        try:
            return paging.page(
                items, key, listing=name, max_items=self.max_items, starting_token=self.starting_token
            )
        except paging.BadToken as error:
            raise click.BadParameter(str(error), param_hint="'--starting-token'") from None

    def emit(
        self,
        name: str,
        records: list[dict[str, Any]],
        columns: Sequence[Column],
        next_token: str | None,
        title: str = "",
    ) -> None:
        """Print one page: `records` as JSON under `name`, or their `columns` as a table or text."""
        if self.format == "json":
            document: dict[str, Any] = {name: records}
            if next_token:
                document["NextToken"] = next_token
            click.echo(json.dumps(document, indent=2, default=str))
            return
        if not records:
            click.echo("nothing found", err=True)
        elif self.format == "text":
            for record in records:
                click.echo("\t".join(_text(column.value(record)) for column in columns))
        else:
            table = Table(title=title or None)
            for column in columns:
                if column.ident:
                    table.add_column(column.header, no_wrap=True, min_width=_widest(column, records))
                else:
                    table.add_column(column.header, overflow="fold")
            for record in records:
                table.add_row(*(_text(column.value(record)) for column in columns))
            print_table(table)
        if next_token:
            click.echo(f"more found: add --starting-token {next_token} for the next page", err=True)


def _text(value: Any) -> str:
    # One line per item in text output: a field's own newlines and tabs would split it.
    return "" if value is None else str(value).replace("\t", " ").replace("\n", " ")


def _widest(column: Column, records: list[dict[str, Any]]) -> int:
    return max([len(column.header), *(len(_text(column.value(r))) for r in records)])


def _output_options(command: F) -> F:
    command = click.option("--json", "as_json", is_flag=True, help="The same as --output json.")(command)
    return click.option(
        "--output",
        "-o",
        "output_format",
        type=click.Choice(OUTPUTS),
        default="table",
        show_default=True,
        help="json: one document (docs/cli.md); text: tab-separated lines, no decoration.",
    )(command)


def output_option(command: F) -> F:
    """--output/-o and --json, given to the command as `output: Output`."""

    @functools.wraps(command)
    def wrapper(*args: Any, output_format: str, as_json: bool, **kwargs: Any) -> Any:
        return command(*args, output=Output("json" if as_json else output_format), **kwargs)

    return cast(F, _output_options(wrapper))


def listing_options(command: F) -> F:
    """--output/-o, --json, --max-items and --starting-token, given to the command as
    `listing: Listing`."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        output_format: str,
        as_json: bool,
        max_items: int | None,
        starting_token: str | None,
        **kwargs: Any,
    ) -> Any:
        listing = Listing("json" if as_json else output_format, max_items, starting_token)
        return command(*args, listing=listing, **kwargs)

    wrapped = click.option(
        "--starting-token", metavar="TOKEN", help="Go on from the NextToken a previous page printed."
    )(wrapper)
    wrapped = click.option(
        "--max-items",
        type=click.IntRange(min=1),
        metavar="N",
        help="At most N items, then a NextToken for the rest [default: all].",
    )(wrapped)
    return cast(F, _output_options(wrapped))
