"""The console's pages. Each reads through the modules the CLI uses: service.executions
(what an execution is), service.results (outcomes, predictions, dead letters) and
service.replay (claims and marks, so that no record is submitted twice)."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from typing import Any, Final

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from markupsafe import Markup, escape
from werkzeug.utils import secure_filename

from predictflow.cli.aws import Aws
from predictflow.console import graph
from predictflow.pipeline.stores import uploaded_version
from predictflow.service import executions as service
from predictflow.service.results import version_of

views = Blueprint("console", __name__)

PREVIEW_LINES: Final = 50
DEAD_LETTERS_SHOWN: Final = 500
COLLAPSE_CHARS: Final = 2000
CLAIM_WAIT_SECONDS: Final = 5.0


def stack() -> Aws:
    aws: Aws = current_app.extensions["predictflow.aws"]
    return aws


@views.app_context_processor
def common() -> dict[str, Any]:
    aws = stack()
    return {
        "csrf_token": g.get("csrf_token", ""),
        "stack_name": aws.stack_name,
        "is_local": aws.is_local,
        "colours": graph.COLOURS,
    }


@views.app_template_filter("when")
def when(value: datetime | str | None) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M:%S")


@views.app_template_filter("seconds")
def seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.2f} s" if value < 120 else f"{value / 60:.1f} min"


@views.app_template_filter("payload")
def payload(text: str) -> Markup:
    """A JSON payload pretty-printed; a large one collapsed behind its size."""
    if not text:
        return Markup('<span class="muted">(none)</span>')
    shown = graph.pretty(text)
    if len(shown) <= COLLAPSE_CHARS:
        return Markup("<pre>{}</pre>").format(shown)
    return Markup("<details><summary>{} KB, collapsed</summary><pre>{}</pre></details>").format(
        f"{len(shown) / 1024:.1f}", shown
    )


# ---------------------------------------------------------------------------- executions
@views.get("/")
def home() -> Response:
    return redirect(url_for("console.executions_page"))  # type: ignore[return-value]


def _execution_filters() -> tuple[dict[str, str], service.ExecutionPage | None, str]:
    filters = {
        name: request.args.get(name, "").strip() for name in ("status", "since", "until", "prefix", "page")
    }
    if filters["status"] and filters["status"] not in service.STATUSES:
        return filters, None, f"unknown status {filters['status']!r}"
    try:
        since = service.parse_since(filters["since"])
        until = service.parse_since(filters["until"])
    except service.BadTime as error:
        return filters, None, f"time filter: {error}"
    aws = stack()
    page = service.list_page(
        aws.client("stepfunctions"),
        aws.results,
        aws.names.state_machine_arn,
        status=filters["status"] or None,
        since=since,
        until=until,
        prefix=filters["prefix"] or None,
        token=filters["page"] or None,
    )
    return filters, page, ""


@views.get("/executions")
def executions_page() -> str:
    filters, page, error = _execution_filters()
    return render_template(
        "executions.html", filters=filters, page=page, error=error, statuses=service.STATUSES
    )


@views.get("/executions/rows")
def executions_rows() -> str:
    filters, page, error = _execution_filters()
    return render_template("_executions_rows.html", filters=filters, page=page, error=error)


@cache
def _definition_cached(arn: str, updated: str, text: str) -> dict[str, Any]:
    return dict(json.loads(text))


def _definition(aws: Aws) -> dict[str, Any]:
    described = aws.client("stepfunctions").describe_state_machine(
        stateMachineArn=aws.names.state_machine_arn
    )
    return _definition_cached(
        aws.names.state_machine_arn, str(described.get("updateDate", "")), str(described["definition"])
    )


def _map_of(machine: dict[str, Any]) -> dict[str, str]:
    """Inner state -> the Map state holding it."""
    found: dict[str, str] = {}
    for name, state in machine["States"].items():
        inner = graph.inner_machine(state)
        if inner is not None:
            found.update(dict.fromkeys(inner["States"], name))
    return found


_FINISHED_HISTORIES: dict[str, list[dict[str, Any]]] = {}


def _load(name: str) -> tuple[service.Execution, list[dict[str, Any]], dict[str, Any], graph.Runs]:
    aws = stack()
    sfn = aws.client("stepfunctions")
    arn = service.execution_arn(aws.names.state_machine_arn, name)
    try:
        execution = service.describe(sfn, aws.results, arn)
    except sfn.exceptions.ExecutionDoesNotExist:
        abort(404, f"no execution {name}")
    finished = execution.status not in ("RUNNING", "PENDING_REDRIVE")
    if finished and arn in _FINISHED_HISTORIES:
        events = _FINISHED_HISTORIES[arn]
    else:
        events = service.history(sfn, arn)
        if finished:
            # A finished execution's history never changes: clicking its states re-reads nothing.
            if len(_FINISHED_HISTORIES) >= 16:
                _FINISHED_HISTORIES.pop(next(iter(_FINISHED_HISTORIES)))
            _FINISHED_HISTORIES[arn] = events
    machine = _definition(aws)
    return execution, events, machine, graph.read_runs(events, execution.status)


def _iteration_arg() -> int | None:
    text = request.args.get("iteration", "")
    return int(text) if text.isdigit() else None


@views.get("/executions/<name>")
def execution_page(name: str) -> str:
    aws = stack()
    execution, events, machine, runs = _load(name)
    iteration = _iteration_arg()
    coloured = graph.statuses(machine, runs, iteration)
    maps = {
        map_name: sorted(
            (index, graph.status_of([run for state_runs in scoped.values() for run in state_runs])[0])
            for index, scoped in by_index.items()
        )
        for map_name, by_index in runs.iterations.items()
    }
    dead_letters: list[dict[str, Any]] = []
    if execution.source_key and execution.outcome:
        dead_letters = aws.results.dead_letters(
            source_key=execution.source_key, version=execution.version_id, include_replayed=True
        )
    started = events[0]["timestamp"] if events else execution.started
    event_rows = [_event_row(event, runs, started) for event in events]
    failed = [
        (scope_name, run)
        for scope_name, scoped in _named_scopes(runs)
        for state_runs in scoped.values()
        for run in state_runs
        if run.status == "failed" and run.error
    ]
    return render_template(
        "execution.html",
        execution=execution,
        graph_svg=graph.svg(machine, coloured),
        counts=Counter(status for status, _ in coloured.values()),
        maps=maps,
        iteration=iteration,
        events=event_rows,
        event_types=sorted({row["type"] for row in event_rows}),
        dead_letters=dead_letters,
        failed=failed[:5],
        aws_console=None if aws.is_local else service.console_url(aws.region_name, execution.arn),
    )


def _named_scopes(runs: graph.Runs) -> Iterator[tuple[str, dict[str, list[graph.Run]]]]:
    yield "", runs.top
    for map_name, by_index in runs.iterations.items():
        for index, scoped in sorted(by_index.items()):
            yield f"{map_name} #{index}", scoped


def _event_row(event: dict[str, Any], runs: graph.Runs, started: datetime) -> dict[str, Any]:
    details = graph._details(event)
    scope = runs.scope_of.get(int(event["id"]))
    return {
        "id": event["id"],
        "previous": event.get("previousEventId", ""),
        "offset": (event["timestamp"] - started).total_seconds(),
        "type": event["type"],
        "state": details.get("name", ""),
        "scope": "" if scope is None else f"{scope[0]} #{scope[1]}",
        "error": " ".join(str(details.get(k, "")) for k in ("error", "cause") if details.get(k))[:300],
    }


@views.get("/executions/<name>/state")
def state_detail(name: str) -> str:
    state = request.args.get("state", "")
    execution, _, machine, runs = _load(name)
    iteration = _iteration_arg()
    holder = _map_of(machine).get(state)
    if state not in machine["States"] and holder is None:
        abort(404, f"no state {state!r}")
    per_iteration: list[tuple[int, str]] = []
    if holder is None:
        chosen = runs.top.get(state, [])
    elif iteration is not None:
        chosen = runs.iterations.get(holder, {}).get(iteration, {}).get(state, [])
    else:
        by_index = runs.iterations.get(holder, {})
        per_iteration = [
            (index, graph.status_of(scoped.get(state, []))[0]) for index, scoped in sorted(by_index.items())
        ]
        everything = [run for scoped in by_index.values() for run in scoped.get(state, [])]
        worst = graph.status_of(everything)[0]
        chosen = [next(run for run in everything if run.status == worst)] if everything else []
    return render_template(
        "_state.html",
        execution=execution,
        state=state,
        holder=holder,
        iteration=iteration,
        runs=chosen,
        per_iteration=per_iteration,
    )


# ---------------------------------------------------------------------------- dead letters
FIELD_IN_MESSAGE: Final = re.compile(r"^\s*([A-Za-z_][\w.\- ]*?)\s*:\s")
VALUE_IN_MESSAGE: Final = re.compile(r"'([^']+)'")


@cache
def _bundle_fields() -> tuple[str, ...]:
    from predictflow.bundle import default_bundle

    return tuple(f.name for f in default_bundle().spec.fields)


def highlight(entry: dict[str, Any], header: str | None) -> Markup:
    """The raw line with the field the message names marked: its column in the CSV (by the
    header the file had, or the bundle's field order), its key in a JSON line, or else the
    offending value the message quotes."""
    raw = str(entry.get("raw", ""))
    message = str(entry.get("error_message", ""))
    found = FIELD_IN_MESSAGE.match(message)
    field_name = found.group(1).strip() if found else ""
    span: tuple[int, int] | None = None
    if field_name and raw.lstrip().startswith("{"):
        at = raw.find(f'"{field_name}"')
        if at >= 0:
            end = raw.find(",", at)
            span = (at, len(raw.rstrip("}")) if end < 0 else end)
    elif field_name:
        columns = [c.strip() for c in header.split(",")] if header else list(_bundle_fields())
        if field_name in columns:
            index = columns.index(field_name)
            cells = raw.split(",")
            if index < len(cells):
                start = sum(len(cell) + 1 for cell in cells[:index])
                span = (start, start + len(cells[index]))
    if span is None:
        quoted = VALUE_IN_MESSAGE.search(message)
        at = raw.find(quoted.group(1)) if quoted else -1
        if quoted and at >= 0:
            span = (at, at + len(quoted.group(1)))
    if span is None:
        return escape(raw)
    return Markup("{}<mark>{}</mark>{}").format(raw[: span[0]], raw[span[0] : span[1]], raw[span[1] :])


def _dead_letter_filters() -> dict[str, str]:
    names = ("error_type", "source", "since", "hide_replayed")
    source = request.form if request.method == "POST" else request.args
    return {name: source.get(name, "").strip() for name in names}


def _open_entries(filters: dict[str, str], include_replayed: bool) -> list[dict[str, Any]]:
    entries = stack().results.dead_letters(
        source_key=filters["source"] or None,
        error_type=filters["error_type"] or None,
        include_replayed=include_replayed,
    )
    since = service.parse_since(filters["since"]) if filters["since"] else None
    if since is not None:
        entries = [e for e in entries if datetime.fromisoformat(str(e["time"])) >= since]
    return entries


def entry_id(entry: dict[str, Any]) -> str:
    return f"{entry['pk']}|{int(entry['line'])}"


@views.get("/dead-letters")
def dead_letters_page() -> str:
    from predictflow.service.replay import replayable

    filters = _dead_letter_filters()
    error = ""
    try:
        entries = _open_entries(filters, include_replayed=not filters["hide_replayed"])
    except service.BadTime as bad:
        entries, error = [], f"time filter: {bad}"
    results = stack().results
    headers: dict[str, str | None] = {}
    rows = []
    for entry in entries[:DEAD_LETTERS_SHOWN]:
        pk = str(entry["pk"])
        if pk not in headers:
            headers[pk] = results.header(pk)
        rows.append(
            {
                "id": entry_id(entry),
                "entry": entry,
                "version": version_of(entry),
                "origin": entry.get("origin") or {},
                "line_html": highlight(entry, headers[pk]),
                "not_replayable": replayable(entry),
            }
        )
    return render_template(
        "dead_letters.html",
        filters=filters,
        rows=rows,
        total=len(entries),
        error=error,
        error_types=sorted({str(e["error_type"]) for e in entries}),
    )


def _back_to_dead_letters(filters: dict[str, str]) -> Response:
    kept = {name: value for name, value in filters.items() if value}
    return redirect(url_for("console.dead_letters_page", **kept), code=303)  # type: ignore[arg-type,return-value]


def _started_by(keys: list[tuple[str, str]]) -> dict[str, str]:
    """The execution that claimed each uploaded (key, version), waiting a little for it."""
    results = stack().results
    found: dict[str, str] = {}
    deadline = time.monotonic() + CLAIM_WAIT_SECONDS
    while len(found) < len(keys) and time.monotonic() < deadline:
        for key, version in keys:
            if key not in found:
                outcome = results.file(key, version)
                if outcome and outcome.get("execution_arn"):
                    found[key] = str(outcome["execution_arn"])
        if len(found) < len(keys):
            time.sleep(0.1)
    return found


def _submit(entries: list[dict[str, Any]], fixed: bytes | None) -> None:
    from predictflow.service import replay as replays

    aws = stack()
    plan = replays.plan(aws.results, entries, fixed)
    for entry, reason in plan.skipped:
        flash(f"skipped line {entry['line']} of {entry['source_key']}: {reason}", "warning")
    if not plan.entries:
        flash("nothing to replay", "warning")
        return
    try:
        outcome = replays.submit(aws.results, aws.client("s3"), aws.client("dynamodb"), plan, fixed)
    except replays.ReplayRefused as refused:
        flash(str(refused), "error")
        return
    if not outcome.taken:
        flash(f"nothing replayed: {outcome.note}", "warning")
        return
    started = _started_by([(f.key, f.version) for f in outcome.uploaded])
    for replay_file in outcome.uploaded:
        arn = started.get(replay_file.key, "")
        flash(
            f"replayed {len(replay_file.entries)} entries as {replay_file.key}"
            + (f"; execution {arn.rsplit(':', 1)[-1]}" if arn else "; its execution has not started yet"),
            "ok",
        )


@views.post("/dead-letters/replay")
def replay_selected() -> Response:
    filters = _dead_letter_filters()
    chosen = set(request.form.getlist("entry"))
    if not chosen:
        flash("select the entries to replay", "warning")
        return _back_to_dead_letters(filters)
    entries = [e for e in _open_entries(filters, include_replayed=False) if entry_id(e) in chosen]
    if len(entries) < len(chosen):
        flash(f"{len(chosen) - len(entries)} selected entries are replayed already or gone", "warning")
    if entries:
        _submit(entries, None)
    return _back_to_dead_letters(filters)


@views.post("/dead-letters/fix")
def replay_fixed() -> Response:
    """Replay one entry with its line corrected: a `--fixed` replay of that entry alone (the
    corrected line under the source's header, when it had one)."""
    filters = _dead_letter_filters()
    chosen = request.form.get("entry", "")
    text = request.form.get("line", "").strip("\r\n")
    if not text.strip():
        flash("the corrected line is empty", "warning")
        return _back_to_dead_letters(filters)
    pk, _, line = chosen.rpartition("|")
    results = stack().results
    entries = [e for e in _open_entries(filters, include_replayed=False) if entry_id(e) == chosen]
    if not entries or not line.isdigit():
        flash("that entry is replayed already or gone", "warning")
        return _back_to_dead_letters(filters)
    header = results.header(pk)
    body = (f"{header}\n" if header else "") + text + "\n"
    _submit(entries, body.encode())
    return _back_to_dead_letters(filters)


# ---------------------------------------------------------------------------- upload
@views.get("/upload")
def upload_page() -> str:
    return render_template("upload.html", prefix=stack().names.input_prefix)


@views.post("/upload")
def upload_files() -> Response:
    aws = stack()
    names = aws.names
    files = request.files.getlist("files")
    if not files:
        return jsonify({"error": "no files"}), 400  # type: ignore[return-value]
    sub = "/".join(secure_filename(part) for part in request.form.get("prefix", "").split("/") if part)
    uploads = []
    for upload in files:
        filename = secure_filename(upload.filename or "")
        if not filename:
            return jsonify({"error": f"unusable file name {upload.filename!r}"}), 400  # type: ignore[return-value]
        key = f"{names.input_prefix}{sub + '/' if sub else ''}{filename}"
        response = aws.client("s3").put_object(Bucket=names.input_bucket, Key=key, Body=upload.stream.read())
        uploads.append((filename, key, uploaded_version(response)))
    started = _started_by([(key, version) for _, key, version in uploads])
    return jsonify(  # type: ignore[return-value]
        {
            "uploads": [
                {
                    "file": filename,
                    "key": key,
                    "version": version,
                    "execution": started.get(key, ""),
                    "url": url_for("console.execution_page", name=started[key].rsplit(":", 1)[-1])
                    if key in started
                    else "",
                }
                for filename, key, version in uploads
            ]
        }
    )


# ---------------------------------------------------------------------------- predictions
def _file_args() -> tuple[str, str]:
    key, version = request.args.get("key", ""), request.args.get("version", "")
    if not key or not version:
        abort(400, "name the file: ?key=...&version=...")
    return key, version


@views.get("/predictions")
def predictions_page() -> str:
    key, version = _file_args()
    results = stack().results
    outcome = results.file(key, version)
    preview: list[dict[str, Any]] = []
    labels: Counter[str] = Counter()
    total = 0
    for line in results.prediction_lines(key, version):
        prediction = json.loads(line)
        total += 1
        if len(preview) < PREVIEW_LINES:
            preview.append(prediction)
        label = prediction.get("label")
        labels[str(label) if label is not None else "(value)"] += 1
    return render_template(
        "predictions.html",
        key=key,
        version=version,
        outcome=outcome,
        preview=preview,
        labels=labels.most_common(),
        total=total,
    )


@views.get("/predictions/download")
def predictions_download() -> Response:
    key, version = _file_args()
    results = stack().results

    def lines() -> Iterator[bytes]:
        for line in results.prediction_lines(key, version):
            yield line + b"\n"

    filename = secure_filename(key.rsplit("/", 1)[-1]) or "predictions"
    return Response(
        stream_with_context(lines()),
        mimetype="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{filename}.predictions.jsonl"'},
    )
