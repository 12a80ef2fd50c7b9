"""The commands users run against a stack, deployed or local: upload, inspect, replay."""

from __future__ import annotations

import fnmatch
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from predictflow.cli.aws import Aws, aws_of, connection_options
from predictflow.cli.output import Column, Listing, Output, listing_options, output_option, print_table
from predictflow.pipeline.stores import uploaded_version
from predictflow.service import executions as executions_service
from predictflow.service import lookups

# Exit codes scripts can rely on (as they do on `sam` and `aws stepfunctions`); 1 is any other
# error (one line on stderr) and 2 a usage error, as click gives them.
EXIT_EXECUTION_FAILED = 3
"""An execution ended FAILED, TIMED_OUT or ABORTED (`local run`, `show`, `wait`, `upload --wait`)."""
EXIT_NOT_STARTED = 4
"""An upload's execution did not start within its timeout (`upload`, `replay`), or did not end
within it (`local run`, `wait`, `upload --wait`)."""
FAILED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
START_TIMEOUT = 30.0
"""Seconds `upload` and `replay` wait for their executions to start."""
END_TIMEOUT = 900.0
"""Seconds `wait` and `--wait` wait for executions to end (a Standard execution of a large
file takes minutes)."""


def execution_of(aws: Aws, name: str) -> str:
    """The ARN of the execution NAME (an ARN, a name, or a unique prefix of a name)."""
    try:
        return executions_service.resolve(aws.client("stepfunctions"), aws.names.state_machine_arn, name)
    except (executions_service.UnknownExecution, executions_service.AmbiguousExecution) as error:
        raise click.ClickException(str(error)) from error


def source_of(aws: Aws, given: str | None, known: Callable[[str], bool]) -> str | None:
    """A source key as given, or under the input prefix when only that one is known."""
    if given is None:
        return None
    return lookups.source_key(given, aws.names.input_prefix, known)


def error_type_of(aws: Aws, given: str | None) -> str | None:
    """The error type --error-type names, whatever its case; an unknown one is a usage error
    that lists the known ones (errors.py's and any other the table holds)."""
    if given is None:
        return None
    known = lookups.known_error_types()
    if not any(name.casefold() == given.casefold() for name in known):
        known |= aws.results.error_types()  # a Scan, only for a type errors.py does not name
    try:
        return lookups.error_type(given, known)
    except lookups.UnknownErrorType as error:
        raise click.BadParameter(str(error), param_hint="'--error-type'") from error


RECORD_PATTERNS = ("*.csv", "*.jsonl")
"""What `upload DIR` takes from a folder: record files, not the JSON events or notes beside them."""


def _files(paths: tuple[Path, ...], patterns: tuple[str, ...]) -> tuple[list[tuple[Path, str]], int]:
    """Each file to upload with its name under the input prefix, and how many files of the
    folders given matched no pattern. A file's name is its path relative to the folder given,
    or its own name for a file given (always taken, whatever its name). Names that would collide
    (`a/x.csv` and `b/x.csv` given as files) take their path relative to the files' common folder."""
    found: list[tuple[Path, str]] = []
    skipped = 0
    for path in paths:
        if not path.is_dir():
            found.append((path, path.name))
            continue
        for file in sorted(f for f in path.rglob("*") if f.is_file()):
            if any(fnmatch.fnmatch(file.name, pattern) for pattern in patterns):
                found.append((file, file.relative_to(path).as_posix()))
            else:
                skipped += 1
    return unique_names(found), skipped


def unique_names(files: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    names = [name for _, name in files]
    if len(set(names)) == len(names):
        return files
    resolved = [path.resolve() for path, _ in files]
    common = Path(os.path.commonpath([path.parent for path in resolved]))
    return [
        (path, full.relative_to(common).as_posix()) for (path, _), full in zip(files, resolved, strict=True)
    ]


def _wait_for_claims(aws: Aws, uploads: list[tuple[Path, str, str]], wait: float) -> dict[str, str]:
    """The execution that claimed each upload (Fetch records it in the ledger)."""
    deadline = time.monotonic() + wait
    found: dict[str, str] = {}
    while len(found) < len(uploads) and time.monotonic() < deadline:
        for _, key, version in uploads:
            if key not in found:
                outcome = aws.results.file(key, version)
                if outcome and outcome.get("execution_arn"):
                    found[key] = str(outcome["execution_arn"])
        if len(found) < len(uploads):
            time.sleep(0.2)
    return found


def _await(aws: Aws, arns: list[str], timeout: float) -> list[executions_service.Execution]:
    """Wait for the executions to end, showing progress on stderr: rich's on a terminal,
    a plain line per execution ended in a pipe or a log."""
    sfn = aws.client("stepfunctions")
    if not sys.stderr.isatty():
        click.echo(f"waiting up to {timeout:.0f} s for {len(arns)} execution(s) to end", err=True)
        return executions_service.wait(
            sfn,
            aws.results,
            arns,
            timeout,
            ended=lambda e: click.echo(f"ended: {e.name} {e.status}", err=True),
        )
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("executions ended", total=len(arns))
        return executions_service.wait(
            sfn, aws.results, arns, timeout, ended=lambda _: progress.advance(task)
        )


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def outcome_line(execution: executions_service.Execution, timeout: float) -> str:
    """How an execution ended, in one line: status and the file's counts (and why it failed)."""
    if execution.status == "RUNNING":
        return f"{execution.name}: still RUNNING after {timeout:g} s"
    line = (
        f"{execution.name}: {execution.status}, {_count(execution.count('records'))} records, "
        f"{_count(execution.count('predicted'))} predicted, "
        f"{_count(execution.count('dead_lettered'))} dead-lettered"
    )
    if execution.error:
        line += f" ({execution.error}: {execution.cause[:300]})"
    return line


def exit_status(outcomes: list[executions_service.Execution], all_started: bool = True) -> int:
    """3 if an execution failed; else 4 if one did not start or end in time; else 0."""
    if any(e.status in FAILED_STATUSES for e in outcomes):
        return EXIT_EXECUTION_FAILED
    if not all_started or any(e.status == "RUNNING" for e in outcomes):
        return EXIT_NOT_STARTED
    return 0


def _report(ctx: click.Context, aws: Aws, started: list[str], all_started: bool, wait: bool,
            timeout: float, deadline: float) -> None:  # fmt: skip
    """With --wait, the outcome of each execution started; then the exit status."""
    if not wait:
        if not all_started:
            ctx.exit(EXIT_NOT_STARTED)
        return
    outcomes = _await(aws, started, max(0.0, deadline - time.monotonic())) if started else []
    for outcome in outcomes:
        click.echo(outcome_line(outcome, timeout))
    status = exit_status(outcomes, all_started)
    if status:
        ctx.exit(status)


WAIT_HELP = "Wait for each execution to end, showing progress, and print its outcome."
TIMEOUT_HELP = (
    f"Seconds to wait for the executions to start [default: {START_TIMEOUT:g}] "
    f"or, with --wait, to end [default: {END_TIMEOUT:g}]."
)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--prefix", default="", help="Sub-folder under the input prefix.")
@click.option(
    "--include",
    "patterns",
    multiple=True,
    metavar="PATTERN",
    help=f"Also take a folder's files matching PATTERN (repeatable) [always: {', '.join(RECORD_PATTERNS)}].",
)
@click.option("--wait", is_flag=True, help=WAIT_HELP)
@click.option("--timeout", type=click.FloatRange(min=0), help=TIMEOUT_HELP)
@connection_options
@click.pass_context
def upload(ctx: click.Context, paths: tuple[Path, ...], prefix: str, patterns: tuple[str, ...],
           wait: bool, timeout: float | None) -> None:  # fmt: skip
    """Put FILES (or the record files under a DIR: *.csv and *.jsonl, plus --include; keeping
    sub-folders in the keys) under the input prefix; each starts an execution.

    Exit status: 0 once every file's execution started (with --wait: ended, dead letters
    included), 3 with --wait if one ended FAILED, 4 if one did not start (with --wait: end)
    within --timeout."""
    aws = aws_of(ctx)
    names = aws.names
    taken = (*RECORD_PATTERNS, *patterns)
    files, skipped = _files(paths, taken)
    if skipped:
        click.echo(f"skipped {skipped} files matching none of {', '.join(taken)} (see --include)", err=True)
    if not files:
        raise click.ClickException(f"no file to upload: none matches {', '.join(taken)}")
    s3 = aws.client("s3")
    uploads: list[tuple[Path, str, str]] = []
    with Progress(disable=not sys.stderr.isatty(), console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("uploading", total=sum(f.stat().st_size for f, _ in files))
        for path, name in files:
            key = f"{names.input_prefix}{prefix.strip('/') + '/' if prefix else ''}{name}"
            with path.open("rb") as body:
                response = s3.put_object(Bucket=names.input_bucket, Key=key, Body=body)
            uploads.append((path, key, uploaded_version(response)))
            progress.advance(task, path.stat().st_size)
    timeout = timeout if timeout is not None else (END_TIMEOUT if wait else START_TIMEOUT)
    deadline = time.monotonic() + timeout
    executions = _wait_for_claims(aws, uploads, timeout)
    for path, key, version in uploads:
        arn = executions.get(key, "(not started yet)")
        click.echo(f"{path} -> s3://{names.input_bucket}/{key} (version {version}) -> {arn}")
    started = [executions[key] for _, key, _ in uploads if key in executions]
    _report(ctx, aws, started, len(executions) == len(uploads), wait, timeout, deadline)


@click.command()
@click.argument("execution")
@click.option("--timeout", type=click.FloatRange(min=0), default=END_TIMEOUT, show_default=True,
              help="Seconds to wait for it to end.")  # fmt: skip
@connection_options
@click.pass_context
def wait(ctx: click.Context, execution: str, timeout: float) -> None:
    """Wait for EXECUTION (an ARN, a name, or a unique prefix of a name) to end, showing
    progress, and print its outcome: status, records, predicted, dead-lettered.

    Exit status: 0 it SUCCEEDED (dead letters included), 3 it ended FAILED, TIMED_OUT or
    ABORTED, 4 it was still running at --timeout."""
    aws = aws_of(ctx)
    arn = execution_of(aws, execution)
    [outcome] = _await(aws, [arn], timeout)
    click.echo(outcome_line(outcome, timeout))
    status = exit_status([outcome])
    if status:
        ctx.exit(status)


def _since(text: str | None) -> datetime | None:
    try:
        return executions_service.parse_since(text)
    except executions_service.BadTime as error:
        raise click.BadParameter(str(error)) from None


def _seconds_between(start: Any, end: Any) -> str:
    if not start or not end:
        return ""
    return f"{(datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))).total_seconds():.2f}"


def _execution_record(row: dict[str, Any]) -> dict[str, Any]:
    arn = str(row.get("execution_arn") or "")
    return {
        "source_key": row.get("source_key"),
        "version_id": str(row["pk"]).rsplit("#", 1)[-1] if row.get("pk") else None,
        "execution_name": arn.rsplit(":", 1)[-1] if arn else None,
        "execution_arn": arn or None,
        "status": row.get("status"),
        "records": row.get("records"),
        "predicted": row.get("predicted"),
        "dead_lettered": row.get("dead_lettered"),
        "claimed_at": row.get("claimed_at"),
        "finished_at": row.get("finished_at"),
        "seconds": _seconds_between(row.get("claimed_at"), row.get("finished_at")) or None,
    }


EXECUTION_COLUMNS = (
    Column("source", lambda r: r["source_key"]),
    Column("execution", lambda r: r["execution_name"], ident=True),
    Column("status", lambda r: r["status"]),
    Column("records", lambda r: r["records"]),
    Column("predicted", lambda r: r["predicted"]),
    Column("dead-lettered", lambda r: r["dead_lettered"]),
    Column("seconds", lambda r: r["seconds"]),
)


@click.command()
@click.option("--status", type=click.Choice(["RUNNING", "SUCCEEDED", "FAILED"]), help="Only this outcome.")
@click.option("--since", help="Only files claimed since: 30m, 2h, 1d or an ISO time.")
@listing_options
@connection_options
@click.pass_context
def executions(ctx: click.Context, status: str | None, since: str | None, listing: Listing) -> None:
    """Files processed and their executions, oldest first: source, execution, status,
    counts, duration."""
    rows = list(executions_service.files(aws_of(ctx).results, status=status, since=_since(since)))
    page = listing.page(rows, lambda row: [str(row.get("claimed_at", "")), str(row["pk"])], "executions")
    records = [_execution_record(row) for row in page.items]
    listing.emit("executions", records, EXECUTION_COLUMNS, page.next_token, title="executions")


timeline = executions_service.timeline


def _clock(value: datetime) -> str:
    return value.strftime("%H:%M:%S.%f")[:-3]


@click.command()
@click.argument("execution")
@output_option
@connection_options
@click.pass_context
def show(ctx: click.Context, execution: str, output: Output) -> None:
    """The state-by-state timeline of EXECUTION (an ARN, its name, or a unique prefix of the
    name); the states of the Map's iterations follow it, chunk by chunk (`chunk`: the
    iteration's index).

    Exit status: 0 for a running or succeeded execution (dead letters included), 3 for one that
    ended FAILED, TIMED_OUT or ABORTED."""
    aws = aws_of(ctx)
    sfn = aws.client("stepfunctions")
    arn = execution_of(aws, execution)
    described = executions_service.describe(sfn, None, arn)
    steps = [
        {
            "state": step["state"],
            "chunk": step["chunk"],
            "started": step["started"].isoformat(),
            "seconds": step["seconds"],
            # Retries are counted on Task states only: the others have no attempts to count.
            "retries": max(0, step["attempts"] - 1) if step["attempts"] else None,
            "error": step["error"],
            "cause": step["cause"],
            "_started": step["started"],
        }
        for step in timeline(executions_service.history(sfn, arn))
    ]
    document = {
        "execution": {
            "arn": arn,
            "name": described.name,
            "status": described.status,
            "started": described.started.isoformat(),
            "stopped": described.stopped.isoformat() if described.stopped else None,
            "source_key": described.source_key or None,
            "version_id": described.version_id or None,
            "error": described.error,
            "cause": described.cause,
        },
        "steps": [{k: v for k, v in step.items() if not k.startswith("_")} for step in steps],
    }

    def cells(step: dict[str, Any]) -> list[str]:
        seconds = "" if step["seconds"] is None else f"{step['seconds']:.3f}"
        retries = "" if step["retries"] is None else str(step["retries"])
        chunk = "" if step["chunk"] is None else str(step["chunk"])
        return [step["state"], chunk, _clock(step["_started"]), seconds, retries, step["error"]]

    def table() -> None:
        # The ARN on a line of its own, never wrapped: it is what users copy.
        click.echo(f"{arn}  {described.status}")
        if described.error:
            click.echo(f"error: {described.error}: {described.cause}")
        rendered = Table()
        for column in ("state", "chunk", "started", "seconds", "retries", "error", "cause"):
            rendered.add_column(column, no_wrap=column != "cause", overflow="fold")
        for step in steps:
            rendered.add_row(*cells(step), str(step["cause"])[:80])
        print_table(rendered)
        if not aws.is_local:
            click.echo(executions_service.console_url(aws.region_name, arn))

    text = [
        "\t".join(["EXECUTION", arn, described.status, described.error, _one_line(described.cause)]),
        *("\t".join(["STEP", *cells(step), _one_line(step["cause"])]) for step in steps),
    ]
    output.item(document, text, table)
    if described.status in FAILED_STATUSES:
        ctx.exit(EXIT_EXECUTION_FAILED)


def _one_line(text: str) -> str:
    return str(text).replace("\t", " ").replace("\n", " ")


@click.command()
@click.argument("source_key")
@click.option("--version", "version_id", help="The object version (default: the latest processed).")
@connection_options
@click.pass_context
def results(ctx: click.Context, source_key: str, version_id: str | None) -> None:
    """The predictions for one file (SOURCE_KEY, with or without the input prefix), as JSON lines.

    The file's own predictions come first, as stored; then the final predictions of its
    replayed lines, each with `origin`: the line of this file it stands for and the number of
    replays (`attempt`) it took.
    """
    aws = aws_of(ctx)
    files = aws.results.files()
    known = {str(f.get("source_key")) for f in files}
    source_key = str(source_of(aws, source_key, known.__contains__))
    processed = [f for f in files if f.get("source_key") == source_key]
    if not processed:
        raise click.ClickException(f"no processed file with key {source_key!r}")
    versions = [str(f["pk"]).rsplit("#", 1)[1] for f in processed]
    if version_id is None:
        version_id = versions[-1]
    elif version_id not in versions:
        # Printing nothing would read as "no predictions"; name what there is instead.
        raise click.ClickException(
            f"no version {version_id!r} of {source_key!r} was processed; "
            f"known versions: {', '.join(versions)}"
        )
    for line in aws.results.prediction_lines(source_key, version_id):
        click.echo(line)
    for prediction in aws.results.replayed_predictions(source_key, version_id):
        click.echo(json.dumps(prediction, separators=(",", ":")))


def _origin(entry: dict[str, Any]) -> dict[str, Any]:
    return entry.get("origin") or {}


DEAD_LETTER_COLUMNS = (
    Column("source", lambda e: _origin(e).get("source_key", e["source_key"])),
    Column("line", lambda e: _origin(e).get("line", e["line"])),
    Column("attempts", lambda e: e.get("attempts", 1)),
    Column("error type", lambda e: e["error_type"]),
    Column("message", lambda e: str(e["error_message"])[:100]),
    Column("last failed in", lambda e: f"{e['source_key']}:{e['line']}" if _origin(e) else ""),
    Column("replayed as", lambda e: e.get("replayed_as", "")),
)


@click.command("dead-letters")
@click.option("--error-type", help="Only entries with this error type (any case).")
@click.option(
    "--source", "source_key", help="Only entries from this source key (the input prefix may be left off)."
)
@click.option("--all", "include_replayed", is_flag=True, help="Include entries already replayed.")
@listing_options
@connection_options
@click.pass_context
def dead_letters(ctx: click.Context, error_type: str | None, source_key: str | None, include_replayed: bool,
                 listing: Listing) -> None:  # fmt: skip
    """Records that did not become predictions, and why: one row per chain of replays, where
    the line first came from and where it failed last."""
    aws = aws_of(ctx)
    entries = aws.results.dead_letters(
        source_key=source_of(aws, source_key, aws.results.has_chain),
        error_type=error_type_of(aws, error_type),
        include_replayed=include_replayed,
    )
    page = listing.page(entries, lambda e: [str(e["pk"]), str(e["sk"])], "dead-letters")
    records = [{k: v for k, v in e.items() if k not in ("pk", "sk", "origin_key")} for e in page.items]
    listing.emit("dead_letters", records, DEAD_LETTER_COLUMNS, page.next_token, title="dead letters")


@click.command()
@click.option("--error-type", help="Only entries with this error type (any case).")
@click.option(
    "--source",
    "source_key",
    help="Only entries of chains that started at this source key (the input prefix may be left off).",
)
@click.option(
    "--fixed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Submit this corrected records file in place of the selected entries' lines.",
)
@click.option("--all", "everything", is_flag=True, help="With --fixed and no filter: take every open entry.")
@click.option("--dry-run", is_flag=True, help="Show what would be replayed; change nothing.")
@click.option(
    "--redrive",
    "redrive_arn",
    metavar="EXECUTION",
    help="Redrive a FAILED Standard execution (an ARN, a name or a unique prefix of one) instead "
    "(on AWS; the local stack cannot).",
)
@click.option("--wait", is_flag=True, help=WAIT_HELP)
@click.option("--timeout", type=click.FloatRange(min=0), help=TIMEOUT_HELP)
@connection_options
@click.pass_context
def replay(ctx: click.Context, error_type: str | None, source_key: str | None, fixed: Path | None,
           everything: bool, dry_run: bool, redrive_arn: str | None, wait: bool,
           timeout: float | None) -> None:  # fmt: skip
    """Re-submit dead-lettered records as new files through the input prefix.

    Each replayed entry is marked, so replaying again, or at the same time, does not
    submit it twice; a replay stopped at any point hides no entry for longer than its
    claims' expiry (15 minutes). Exit status 4: a replay's execution did not start (with
    --wait: end) within --timeout; with --wait, 3: it ended FAILED.
    """
    from predictflow.service import replay as replays

    aws = aws_of(ctx)
    if redrive_arn and aws.is_local:
        # moto has no RedriveExecution: it answers with a server error page.
        raise click.ClickException(
            "the local stack cannot redrive an execution; upload the file again, or replay its dead letters"
        )
    if redrive_arn:
        redrive_arn = execution_of(aws, redrive_arn)
        started = aws.client("stepfunctions").redrive_execution(executionArn=redrive_arn)
        click.echo(f"redriven {redrive_arn} at {started['redriveDate']}")
        return
    if fixed is not None and source_key is None and error_type is None and not everything:
        # One corrected file standing in for every open entry of the table is almost never
        # what was meant; say so rather than mark them all.
        raise click.ClickException(
            "--fixed with no --source or --error-type would stand for every open entry: "
            "narrow it, or add --all"
        )
    entries = aws.results.dead_letters(
        source_key=source_of(aws, source_key, aws.results.has_chain),
        error_type=error_type_of(aws, error_type),
    )
    fixed_body = fixed.read_bytes() if fixed else None
    plan = replays.plan(aws.results, entries, fixed_body)
    for entry, reason in plan.skipped:
        click.echo(f"skip {entry['source_key']}:{entry['line']} ({entry['error_type']}): {reason}", err=True)
    if not plan.entries:
        click.echo("nothing to replay")
        return
    if dry_run:
        for entry in plan.entries:
            click.echo(f"would replay {entry['source_key']}:{entry['line']} ({entry['error_type']})")
        click.echo(f"{len(plan.entries)} entries would go to s3://{aws.names.input_bucket}/{plan.key}")
        return
    if fixed_body is not None and plan.files and not plan.files[0].lines:
        click.echo(
            f"note: {fixed} does not hold one line per entry ({len(plan.entries)}), so its lines "
            "are not linked to the entries one by one",
            err=True,
        )
    with Progress(disable=not sys.stderr.isatty(), console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("replaying", total=2 * len(plan.entries))
        try:
            outcome = replays.submit(
                aws.results, aws.client("s3"), aws.client("dynamodb"), plan, fixed_body,
                progress=lambda steps: progress.advance(task, steps),
            )  # fmt: skip
        except replays.ReplayRefused as refused:
            raise click.ClickException(str(refused)) from None
    if not outcome.taken:
        click.echo(f"nothing to replay: {outcome.note}")
        return
    uploads = [(Path(f.key), f.key, f.version) for f in outcome.uploaded]
    for replay_file in outcome.uploaded:
        click.echo(
            f"replayed {len(replay_file.entries)} entries as s3://{aws.names.input_bucket}/{replay_file.key}"
        )
    timeout = timeout if timeout is not None else (END_TIMEOUT if wait else START_TIMEOUT)
    deadline = time.monotonic() + timeout
    started_by = _wait_for_claims(aws, uploads, timeout)
    for _, key, _ in uploads:
        click.echo(f"execution: {started_by.get(key, '(not started yet)')}")
    started = [started_by[key] for _, key, _ in uploads if key in started_by]
    _report(ctx, aws, started, len(started_by) == len(uploads), wait, timeout, deadline)


@click.group()
@connection_options
def dlq() -> None:
    """Events the EventBridge rule could not deliver to the state machine."""


def _queue_url(aws: Aws) -> str:
    url = aws.names.event_dead_letter_queue_url
    if not url:
        raise click.ClickException(
            "this stack has no EventDeadLetterQueueUrl output: deploy the current template"
        )
    return url


UNDELIVERED_COLUMNS = (
    Column("key", lambda m: m["key"]),
    Column("version", lambda m: m["version"], ident=True),
    Column("reason", lambda m: m["reason"]),
    Column("message id", lambda m: m["message_id"], ident=True),
)


@dlq.command("list")
@listing_options
@connection_options
@click.pass_context
def dlq_list(ctx: click.Context, listing: Listing) -> None:
    """The undelivered events: object key, version and why delivery failed."""
    from predictflow.service.dlq import list_undelivered

    aws = aws_of(ctx)
    messages = [
        {"message_id": m.message_id, "key": m.key, "version": m.version, "reason": m.reason}
        for m in list_undelivered(aws.client("sqs"), _queue_url(aws))
    ]
    page = listing.page(messages, lambda m: [m["key"], m["version"], m["message_id"]], "dlq-list")
    listing.emit("events", page.items, UNDELIVERED_COLUMNS, page.next_token, title="undelivered events")


@dlq.command("redrive")
@connection_options
@click.pass_context
def dlq_redrive(ctx: click.Context) -> None:
    """Start an execution for each undelivered event, as the rule would, then remove it."""
    from predictflow.service.dlq import redrive

    aws = aws_of(ctx)
    started = redrive(
        aws.client("sqs"), aws.client("stepfunctions"), _queue_url(aws), aws.names.state_machine_arn
    )
    for message, arn in started:
        click.echo(f"{message.key} ({message.version}) -> {arn}")
    click.echo(f"redriven {len(started)} events")
