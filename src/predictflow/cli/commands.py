"""The commands users run against a stack, deployed or local: upload, inspect, replay."""

from __future__ import annotations

import fnmatch
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from predictflow.cli.aws import Aws
from predictflow.pipeline.stores import uploaded_version
from predictflow.service import executions as executions_service

# Exit codes scripts can rely on (as they do on `sam` and `aws stepfunctions`); 1 is any other
# error (one line on stderr) and 2 a usage error, as click gives them.
EXIT_EXECUTION_FAILED = 3
"""An execution ended FAILED, TIMED_OUT or ABORTED (`local run`, `show`)."""
EXIT_NOT_STARTED = 4
"""An upload's execution did not start within --wait (`upload`, `replay`), or did not end
within --timeout (`local run`)."""
FAILED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")


def console() -> Console:
    # Made per command so that the terminal's width (or COLUMNS) at that moment applies; a
    # pipe gets 120 columns rather than 80, so names and ARNs stay whole.
    return Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 120)


def aws_of(ctx: click.Context) -> Aws:
    return ctx.find_object(Aws) or ctx.fail("internal: no AWS context")  # type: ignore[return-value]


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
@click.option("--wait", default=30.0, show_default=True, help="Seconds to wait for each file's execution.")
@click.pass_context
def upload(ctx: click.Context, paths: tuple[Path, ...], prefix: str, patterns: tuple[str, ...],
           wait: float) -> None:  # fmt: skip
    """Put FILES (or the record files under a DIR: *.csv and *.jsonl, plus --include; keeping
    sub-folders in the keys) under the input prefix; each starts an execution.

    Exit status: 0 once every file's execution started (whatever its outcome), 4 if one did not
    start within --wait."""
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
    executions = _wait_for_claims(aws, uploads, wait)
    for path, key, version in uploads:
        arn = executions.get(key, "(not started yet)")
        click.echo(f"{path} -> s3://{names.input_bucket}/{key} (version {version}) -> {arn}")
    if len(executions) < len(uploads):
        ctx.exit(EXIT_NOT_STARTED)


def _since(text: str | None) -> datetime | None:
    try:
        return executions_service.parse_since(text)
    except executions_service.BadTime as error:
        raise click.BadParameter(str(error)) from None


def _seconds_between(start: Any, end: Any) -> str:
    if not start or not end:
        return ""
    return f"{(datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))).total_seconds():.2f}"


@click.command()
@click.option("--status", type=click.Choice(["RUNNING", "SUCCEEDED", "FAILED"]), help="Only this outcome.")
@click.option("--since", help="Only files claimed since: 30m, 2h, 1d or an ISO time.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def executions(ctx: click.Context, status: str | None, since: str | None, as_json: bool) -> None:
    """Recent files and their executions: source, status, counts, duration."""
    rows = list(executions_service.files(aws_of(ctx).results, status=status, since=_since(since)))
    if as_json:
        keep = (
            "source_key",
            "execution_arn",
            "status",
            "records",
            "predicted",
            "dead_lettered",
            "claimed_at",
            "finished_at",
        )
        click.echo(json.dumps([{k: row.get(k) for k in keep} for row in rows], indent=2))
        return
    table = Table(title="executions")
    for column in ("source", "execution", "status", "records", "predicted", "dead-lettered", "seconds"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row.get("source_key", "")), str(row.get("execution_arn", "")).rsplit(":", 1)[-1],
            str(row.get("status", "")), str(row.get("records", "")), str(row.get("predicted", "")),
            str(row.get("dead_lettered", "")),
            _seconds_between(row.get("claimed_at"), row.get("finished_at")),
        )  # fmt: skip
    console().print(table)


timeline = executions_service.timeline


@click.command()
@click.argument("execution")
@click.pass_context
def show(ctx: click.Context, execution: str) -> None:
    """The state-by-state timeline of EXECUTION (an ARN, or the name at its end); the states
    of the Map's iterations follow it, chunk by chunk (`chunk`: the iteration's index).

    Exit status: 0 for a running or succeeded execution (dead letters included), 3 for one that
    ended FAILED, TIMED_OUT or ABORTED."""
    aws = aws_of(ctx)
    sfn = aws.client("stepfunctions")
    arn = executions_service.execution_arn(aws.names.state_machine_arn, execution)
    described = executions_service.describe(sfn, None, arn)
    console().print(f"[bold]{arn}[/]  {described.status}")
    if described.error:
        console().print(f"error: {described.error}: {described.cause}")
    table = Table()
    for column in ("state", "chunk", "started", "seconds", "retries", "error", "cause"):
        table.add_column(column, no_wrap=column != "cause")
    for step in timeline(executions_service.history(sfn, arn)):
        retries = max(0, step["attempts"] - 1)
        seconds = "" if step["seconds"] is None else f"{step['seconds']:.3f}"
        started = step["started"].strftime("%H:%M:%S.%f")[:-3]
        retried = str(retries) if step["attempts"] else ""
        label = "" if step["chunk"] is None else str(step["chunk"])
        table.add_row(step["state"], label, started, seconds, retried, step["error"], str(step["cause"])[:80])
    console().print(table)
    if not aws.is_local:
        console().print(executions_service.console_url(aws.region_name, arn))
    if described.status in FAILED_STATUSES:
        ctx.exit(EXIT_EXECUTION_FAILED)


@click.command()
@click.argument("source_key")
@click.option("--version", "version_id", help="The object version (default: the latest processed).")
@click.pass_context
def results(ctx: click.Context, source_key: str, version_id: str | None) -> None:
    """The predictions for one file, as JSON lines.

    The file's own predictions come first, as stored; then the final predictions of its
    replayed lines, each with `origin`: the line of this file it stands for and the number of
    replays (`attempt`) it took.
    """
    aws = aws_of(ctx)
    processed = [f for f in aws.results.files() if f.get("source_key") == source_key]
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


@click.command("dead-letters")
@click.option("--error-type", help="Only entries with this error type.")
@click.option("--source", "source_key", help="Only entries from this source key.")
@click.option("--all", "include_replayed", is_flag=True, help="Include entries already replayed.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def dead_letters(ctx: click.Context, error_type: str | None, source_key: str | None, include_replayed: bool,
                 as_json: bool) -> None:  # fmt: skip
    """Records that did not become predictions, and why."""
    entries = aws_of(ctx).results.dead_letters(
        source_key=source_key, error_type=error_type, include_replayed=include_replayed
    )
    if as_json:
        for entry in entries:
            click.echo(json.dumps({k: v for k, v in entry.items() if k not in ("pk", "sk", "origin_key")}))
        return
    # One row per chain of replays: where the line first came from, where it failed last.
    table = Table(title=f"{len(entries)} dead letters")
    for column in ("source", "line", "attempts", "error type", "message", "last failed in", "replayed as"):
        table.add_column(column)
    for entry in entries:
        origin = entry.get("origin") or {}
        last = f"{entry['source_key']}:{entry['line']}" if origin else ""
        table.add_row(
            str(origin.get("source_key", entry["source_key"])), str(origin.get("line", entry["line"])),
            str(entry.get("attempts", 1)), str(entry["error_type"]), str(entry["error_message"])[:100],
            last, str(entry.get("replayed_as", "")),
        )  # fmt: skip
    console().print(table)


@click.command()
@click.option("--error-type", help="Only entries with this error type.")
@click.option("--source", "source_key", help="Only entries of chains that started at this source key.")
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
    help="Redrive a FAILED Standard execution instead (on AWS; the local stack cannot).",
)
@click.option("--wait", default=30.0, show_default=True, help="Seconds to wait for the new execution.")
@click.pass_context
def replay(ctx: click.Context, error_type: str | None, source_key: str | None, fixed: Path | None,
           everything: bool, dry_run: bool, redrive_arn: str | None, wait: float) -> None:  # fmt: skip
    """Re-submit dead-lettered records as new files through the input prefix.

    Each replayed entry is marked, so replaying again, or at the same time, does not
    submit it twice; a replay stopped at any point hides no entry for longer than its
    claims' expiry (15 minutes). Exit status 4: a replay's execution did not start within --wait.
    """
    from predictflow.service import replay as replays

    aws = aws_of(ctx)
    if redrive_arn and aws.is_local:
        # moto has no RedriveExecution: it answers with a server error page.
        raise click.ClickException(
            "the local stack cannot redrive an execution; upload the file again, or replay its dead letters"
        )
    if redrive_arn:
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
    entries = aws.results.dead_letters(source_key=source_key, error_type=error_type)
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
    started_by = _wait_for_claims(aws, uploads, wait)
    for _, key, _ in uploads:
        click.echo(f"execution: {started_by.get(key, '(not started yet)')}")
    if len(started_by) < len(uploads):
        ctx.exit(EXIT_NOT_STARTED)


@click.group()
def dlq() -> None:
    """Events the EventBridge rule could not deliver to the state machine."""


def _queue_url(aws: Aws) -> str:
    url = aws.names.event_dead_letter_queue_url
    if not url:
        raise click.ClickException(
            "this stack has no EventDeadLetterQueueUrl output: deploy the current template"
        )
    return url


@dlq.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def dlq_list(ctx: click.Context, as_json: bool) -> None:
    """The undelivered events: object key, version and why delivery failed."""
    from predictflow.service.dlq import list_undelivered

    aws = aws_of(ctx)
    messages = list_undelivered(aws.client("sqs"), _queue_url(aws))
    if as_json:
        for message in messages:
            click.echo(json.dumps({"message_id": message.message_id, "key": message.key,
                                   "version": message.version, "reason": message.reason}))  # fmt: skip
        return
    table = Table(title=f"{len(messages)} undelivered events")
    for column in ("key", "version", "reason"):
        table.add_column(column)
    for message in messages:
        table.add_row(message.key, message.version, message.reason)
    console().print(table)


@dlq.command("redrive")
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
