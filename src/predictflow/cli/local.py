"""`predictflow local`: the whole pipeline on this machine, deployed from template.yaml."""

from __future__ import annotations

import gc
import hashlib
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click

from predictflow.local.persistence import DEFAULT_STATE_DIR


@dataclass
class FileResult:
    file: str
    key: str
    execution: str
    status: str
    records: int
    predicted: int
    dead_lettered: int
    seconds: float
    error: str = ""
    cause: str = ""


LOG_LEVELS = ("INFO", "WARNING", "ERROR")
"""The template's LogLevel values: the functions' level (POWERTOOLS_LOG_LEVEL) comes from it."""


@click.group()
def local() -> None:
    """Run the pipeline locally: no AWS account, no Docker."""


@local.command("up")
@click.option("--port", default=4566, show_default=True, help="Port on 127.0.0.1.")
@click.option("--console-port", default=8765, show_default=True, help="The web console's port (0: any).")
@click.option("--no-console", is_flag=True, help="Do not serve the web console.")
@click.option(
    "--state-dir",
    default=str(DEFAULT_STATE_DIR),
    show_default=True,
    help="Keep buckets, tables, executions and logs here across restarts ('' : keep nothing).",
)
@click.option("--no-persist", is_flag=True, help="Keep nothing: the stack starts empty and forgets on stop.")
@click.option(
    "--fresh", is_flag=True, help="Start empty: the saved state is moved aside (kept, renamed *.old)."
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="INFO",
    show_default=True,
    help="The functions' log level (the template's LogLevel); read the lines with `predictflow logs`.",
)
def up(
    port: int,
    console_port: int,
    no_console: bool,
    state_dir: str,
    no_persist: bool,
    fresh: bool,
    log_level: str,
) -> None:
    """Serve the local stack as an AWS endpoint until Ctrl-C, and the web console beside it.

    Point the other commands at it with --local (or AWS_ENDPOINT_URL); any AWS SDK works too.
    The console runs in this process on a port of its own: under a path of the stack's port
    it would share moto's routes, where any first path segment is an S3 bucket name.

    The stack's data (buckets, tables, executions with their histories, dead letters, the
    functions' logs) is saved under --state-dir (relative to this folder) after executions
    end and on Ctrl-C, and taken up again on the next start. The functions' log lines go to
    the stack's CloudWatch Logs, as on Lambda: `predictflow --local logs EXECUTION`.
    """
    from predictflow.local.persistence import StateError, StateMismatch
    from predictflow.local.stack import LocalStack

    for wanted, role in ((port, ""), (port + 1, " (the API's, --port + 1)")):
        if _port_in_use(wanted):
            raise click.ClickException(f"port {wanted}{role} is in use; use --port")
    from predictflow.cli.aws import clear_local_state, write_local_state

    started = time.monotonic()
    persist = None if no_persist or not state_dir else Path(state_dir)
    # The stream pollers run only where streams are sent to: the served stack.
    stack = LocalStack(
        server_port=port,
        api_port=port + 1,
        streams=True,
        state_dir=persist,
        log_level=log_level.upper(),
        function_logs="none",
    )
    if fresh and persist is not None:
        kept = stack.discard_state()
        if kept is not None:
            click.echo(f"starting empty; the saved state is kept as {kept}")
    endpoint = f"http://127.0.0.1:{port}"
    # SIGTERM (a service manager, `kill`) stops as Ctrl-C does: the state is saved.
    signal.signal(signal.SIGTERM, _interrupt)
    # `--local` commands find this endpoint, and while it deploys they say it is starting.
    write_local_state(endpoint, ready=False)
    try:
        stack.start()
    except OSError as error:
        clear_local_state()
        raise click.ClickException(f"cannot serve on 127.0.0.1:{port}: {error.strerror}") from error
    except StateError as error:
        clear_local_state()
        stack.stop()
        fix = "start empty with --fresh (the old state is kept aside) or without it: --no-persist"
        if isinstance(error, StateMismatch):
            fix = f"{fix}; or go back to what saved it"
        raise click.ClickException(f"{error}\n  {fix}") from error
    except BaseException:
        clear_local_state()
        raise
    served = None
    running: dict[str, str] = {}
    lock = threading.Lock()

    def started_execution(arn: str, event: dict[str, Any]) -> None:
        key = event["detail"]["object"]["key"]
        with lock:
            running[arn] = key
        click.echo(f"{_clock()} started  {arn.rsplit(':', 1)[-1]}  {key}")

    # From here on, Ctrl-C (or SIGTERM) at any moment stops the stack and saves its state: the
    # banner says Ctrl-C stops it before the loop below has started.
    try:
        write_local_state(endpoint, ready=True)
        # The deployed stack's objects live as long as this process: left out of collections,
        # the first execution does not pay a pass over all of them (about 0.2 s).
        gc.freeze()
        click.echo(
            f"local stack on {stack.endpoint_url}, deployed from template.yaml "
            f"in {time.monotonic() - started:.1f}s"
        )
        if stack.restored is not None:
            click.echo(f"state taken up from {persist} (saved {stack.restored.header['saved_at']})")
        elif persist is not None:
            click.echo(f"state kept in {persist} across restarts (--no-persist: keep nothing)")
        for arn in stack.aborted_on_restore:
            click.echo(f"note: {arn.rsplit(':', 1)[-1]} was running when the stack stopped: now ABORTED")
        for name, value in stack.outputs.items():
            click.echo(f"  {name:26} {value}")
        for note in stack.deployment.notes if stack.deployment else []:
            click.echo(f"note: {note}")
        if stack.api_server is not None:
            click.echo(
                f"prediction API on {stack.api_url}  "
                "(POST /predict, POST /aml/predict; IAM not checked locally)"
            )
            click.echo(
                f"  curl -X POST {stack.api_url}/predict -H 'Content-Type: application/json' "
                """-d '{"records": ["22, Local-gov, 108435, Masters, 14, Married-civ-spouse, """
                """Prof-specialty, Husband, White, Male, 0, 0, 80, United-States"]}'"""
            )
        if not no_console:
            from predictflow.cli.aws import Aws
            from predictflow.console import serve

            aws = Aws(stack_name=stack.stack_name, endpoint_url=stack.endpoint_url, region="us-east-1")
            try:
                served = serve(aws, port=console_port, background=True)
            except OSError as error:
                # The stack is up and is what most users came for: take any free port instead.
                click.echo(f"note: console port {console_port}: {error.strerror}; using another")
                served = serve(aws, port=0, background=True)
            click.echo(f"console: {served.url}")
        click.echo("try: predictflow --local upload events/records-mixed.csv   (Ctrl-C stops)")
        if port != 4566:
            click.echo(
                f"  (--local finds port {port} while this runs; any AWS tool: --endpoint-url {endpoint})"
            )
        stack.on_execution_started(started_execution)
        seen = stack.changes
        while True:
            seen = stack.wait_for_change(seen, 0.5)
            with lock:
                ended = {arn: key for arn, key in running.items() if arn in stack.finished_executions}
                for arn in ended:
                    running.pop(arn)
            for arn, key in ended.items():
                status = stack.finished_executions[arn]
                click.echo(f"{_clock()} {status.lower():8} {arn.rsplit(':', 1)[-1]}  {key}")
    except KeyboardInterrupt:
        click.echo("stopping" + (f"; saving the state to {persist}" if persist is not None else ""))
    finally:
        clear_local_state()
        if served is not None:
            served.stop()
        try:
            stack.stop()
        except StateError as error:
            raise click.ClickException(str(error)) from error


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _port_in_use(port: int) -> bool:
    """Whether something listens on 127.0.0.1:PORT. The moto server binds in a thread of its
    own, whose failure would leave this process waiting for nothing; so ask first, binding as
    the server does (SO_REUSEADDR: a port left in TIME_WAIT is free)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _clock() -> str:
    return time.strftime("%H:%M:%S")


@local.command("run")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write predictions and dead-letter entries as JSON lines under this folder.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for all executions.")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A bundle folder to serve [default: the packaged Adult income bundle].",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="WARNING",
    show_default=True,
    help="The functions' log level (the template's LogLevel); their lines go to stderr.",
)
def run(
    files: tuple[Path, ...],
    out_dir: Path | None,
    as_json: bool,
    timeout: float,
    model_dir: Path | None,
    log_level: str,
) -> None:
    """Start the local stack, upload FILES under the input prefix and wait for every
    execution: the S3 event starts each one through the EventBridge rule, as on AWS.

    With --model, the bundle is first deployed into this run's own model store (checked as
    `model deploy` checks it), so the files are scored by it; nothing outside the run changes.

    Exit status: 0 when every execution succeeded (dead letters included), 3 when one ended
    FAILED, 4 when one did not end within --timeout."""
    from predictflow.cli.commands import unique_names
    from predictflow.pipeline.stores import uploaded_version

    started = time.monotonic()
    with _deployed(log_level.upper()) as stack:
        deploy_seconds = time.monotonic() - started
        if not as_json:
            click.echo(f"local stack deployed from template.yaml in {deploy_seconds:.1f}s", err=True)
            for note in stack.deployment.notes if stack.deployment else []:
                click.echo(f"note: {note}", err=True)
        if model_dir is not None:
            version = _deploy_model(stack, model_dir)
            if not as_json:
                click.echo(f"serving model {version} from {model_dir}", err=True)
        started_at: dict[str, float] = {}
        finished: dict[str, FileResult] = {}
        by_key: dict[str, str] = {}
        lock = threading.Lock()

        def record(arn: str, event: dict[str, Any]) -> None:
            with lock:
                by_key[event["detail"]["object"]["key"]] = arn

        stack.on_execution_started(record)
        uploads: list[tuple[Path, str, str]] = []
        s3 = stack.client("s3")
        prefix = stack.outputs["InputPrefix"]
        for path, name in unique_names([(path, path.name) for path in files]):
            key = f"{prefix}{name}"
            started_at[key] = time.monotonic()
            response = s3.put_object(Bucket=stack.outputs["InputBucketName"], Key=key, Body=path.read_bytes())
            uploads.append((path, key, uploaded_version(response)))
        _wait(
            stack,
            uploads,
            by_key,
            started_at,
            finished,
            timeout,
            show_progress=sys.stderr.isatty() and not as_json,
        )
        results = [finished[key] for _, key, _ in uploads]
        unwritten = None
        if out_dir is not None:
            try:
                _write_outputs(stack, uploads, prefix, out_dir)
            except OSError as error:  # the summary still matters more than the copy
                unwritten = f"cannot write under {out_dir}: {error.strerror}: {error.filename}"
    _report(results, prefix, as_json)
    if unwritten:
        raise click.ClickException(unwritten)
    from predictflow.cli.commands import EXIT_EXECUTION_FAILED, EXIT_NOT_STARTED, FAILED_STATUSES

    if any(result.status in FAILED_STATUSES for result in results):
        raise SystemExit(EXIT_EXECUTION_FAILED)
    if any(result.status != "SUCCEEDED" for result in results):
        raise SystemExit(EXIT_NOT_STARTED)


def _deploy_model(stack: Any, model_dir: Path) -> str:
    """`model deploy` into the local stack's model store; a bundle that fails its check stops
    the run before any file is uploaded."""
    from predictflow.bundle import BundleError
    from predictflow.bundle.store import ModelStore
    from predictflow.service.models import deploy

    try:
        done = deploy(ModelStore(stack.client("s3"), stack.outputs["ModelBucketName"]), model_dir)
    except BundleError as error:
        raise click.ClickException(str(error)) from error
    return done.version


@contextmanager
def _deployed(log_level: str) -> Iterator[Any]:
    """The started stack, as `local run` uses it, with the garbage collector kept off the
    stack's own objects. The start (moto's import, the deploy) makes millions of objects that
    live as long as the stack, over which the collector made three full passes, about a
    quarter of a second: it is paused until the start ends. Then what exists is left out of
    collections until the block ends (a full pass over it cost a tenth of a second in the
    middle of a large run); the little cyclic garbage the start left stays until then."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        from predictflow.local.stack import LocalStack

        # Nothing outside this process can ask for the stack's Outputs by name, so they are
        # not published to CloudFormation (which would cost moto's CloudFormation start-up).
        # The functions' lines go to stderr: stdout is the summary's.
        stack = LocalStack(publish_outputs=False, log_level=log_level, function_logs="stderr")
        stack.start()
        gc.freeze()
    finally:
        if was_enabled:
            gc.enable()
    try:
        yield stack
    finally:
        gc.unfreeze()
        stack.stop()


def _wait(
    stack: Any,
    uploads: list[tuple[Path, str, str]],
    by_key: dict[str, str],
    started_at: dict[str, float],
    finished: dict[str, FileResult],
    timeout: float,
    show_progress: bool,
) -> None:
    from rich.progress import Progress

    sfn = stack.client("stepfunctions")
    deadline = time.monotonic() + timeout
    with Progress(disable=not show_progress, transient=True) as progress:
        task = progress.add_task("executions", total=len(uploads))
        seen = stack.changes
        while len(finished) < len(uploads):
            for path, key, version in uploads:
                arn = by_key.get(key)
                if key in finished or arn not in stack.finished_executions:
                    continue
                described = sfn.describe_execution(executionArn=arn)
                finished[key] = _result(
                    stack, path, key, version, described, time.monotonic() - started_at[key]
                )
                progress.advance(task)
            if len(finished) == len(uploads):
                return
            if time.monotonic() > deadline:
                for path, key, _ in uploads:
                    finished.setdefault(
                        key,
                        FileResult(
                            str(path), key, by_key.get(key, ""), "TIMED_OUT_WAITING", 0, 0, 0, timeout
                        ),
                    )
                return
            seen = stack.wait_for_change(seen, min(1.0, max(0.0, deadline - time.monotonic())))


def _result(
    stack: Any, path: Path, key: str, version: str, described: dict[str, Any], seconds: float
) -> FileResult:
    outcome = stack.results().file(key, version) or {}
    return FileResult(
        file=str(path),
        key=key,
        execution=described["executionArn"],
        status=described["status"],
        records=int(outcome.get("records", 0)),
        predicted=int(outcome.get("predicted", 0)),
        dead_lettered=int(outcome.get("dead_lettered", 0)),
        seconds=round(seconds, 3),
        error=str(described.get("error", "")),
        cause=str(described.get("cause", "")),
    )


def output_name(name: str) -> str:
    """`NAME.jsonl`, its last part shortened (keeping a hash of it) where a file system's
    255-byte limit on a name would refuse it."""
    folder, _, base = name.rpartition("/")
    if len(f"{base}.jsonl".encode()) > 255:
        digest = hashlib.sha256(base.encode()).hexdigest()[:12]
        base = f"{base.encode()[:200].decode(errors='ignore')}-{digest}"
    return f"{folder}/{base}.jsonl" if folder else f"{base}.jsonl"


def _write_outputs(stack: Any, uploads: list[tuple[Path, str, str]], prefix: str, out_dir: Path) -> None:
    results = stack.results()
    for _, key, version in uploads:
        name = output_name(key.removeprefix(prefix))
        for kind in ("predictions", "dead-letter"):
            (out_dir / kind / name).parent.mkdir(parents=True, exist_ok=True)
        with (out_dir / "predictions" / name).open("wb") as out:
            for line in results.prediction_lines(key, version):
                out.write(line + b"\n")
        with (out_dir / "dead-letter" / name).open("w") as out:
            for entry in results.dead_letters(source_key=key, version=version):
                out.write(json.dumps({k: v for k, v in entry.items() if k not in ("pk", "sk")}) + "\n")


def _report(results: list[FileResult], prefix: str, as_json: bool) -> None:
    totals = {
        name: sum(getattr(r, name) for r in results) for name in ("records", "predicted", "dead_lettered")
    }
    if as_json:
        click.echo(json.dumps({"files": [asdict(r) for r in results], "totals": totals}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="predictflow local run")
    for column in ("file", "execution", "status", "records", "predicted", "dead-lettered", "seconds"):
        numeric = column in ("records", "predicted", "dead-lettered", "seconds")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    for r in results:
        style = "green" if r.status == "SUCCEEDED" else "red"
        table.add_row(
            r.key.removeprefix(prefix),
            r.execution.rsplit(":", 1)[-1][:8],
            f"[{style}]{r.status}[/]",
            str(r.records),
            str(r.predicted),
            str(r.dead_lettered),
            f"{r.seconds:.2f}",
        )
    table.add_row(
        "total", "", "", str(totals["records"]), str(totals["predicted"]), str(totals["dead_lettered"]), ""
    )
    # A pipe has no width; 120 columns keep every name whole in a log or a CI transcript.
    Console(width=None if sys.stdout.isatty() else 120).print(table)
    for r in results:
        if r.error or r.cause:
            click.echo(f"{r.key.removeprefix(prefix)}: {r.error}: {r.cause}", err=True)
