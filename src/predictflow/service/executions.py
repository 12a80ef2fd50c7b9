"""What an execution is, for the CLI (`executions`, `show`) and the console alike.

An execution is the Step Functions execution (status, dates, input, history) joined with
the ledger item of the file it processed (counts, model version): the execution's input is
the S3 event, which names the bucket, key and version, and so the ledger item's key. Only the
rows of one page are joined, so a listing costs one `ListExecutions` page plus one
`DescribeExecution` and one `GetItem` per row, however many executions the stack has run.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from predictflow.errors import MalformedEvent
from predictflow.pipeline.stores import ObjectRef
from predictflow.service.results import Results

STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
PAGE_SIZE = 25
JOIN_WORKERS = 8
"""Rows joined at once: on AWS each row is two round trips of tens of milliseconds."""


class BadTime(ValueError):
    """A time filter that is neither a duration (30m, 2h, 1d) nor an ISO time."""


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """`30m`, `2h`, `1d` (that long ago) or an ISO time (UTC unless it says otherwise)."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    match = re.fullmatch(r"(\d+)([smhd])", text)
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return (now or datetime.now(UTC)) - timedelta(**{unit: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadTime("use a duration such as 30m, 2h, 1d, or an ISO time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def execution_arn(state_machine_arn: str, name_or_arn: str) -> str:
    """An execution's ARN from its ARN or from the name at its end."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name_or_arn}"


class UnknownExecution(LookupError):
    """No execution of the state machine has the name (or a name starting with it) given."""


class AmbiguousExecution(LookupError):
    """More than one execution's name starts with the prefix given."""

    def __init__(self, prefix: str, candidates: list[str]) -> None:
        self.candidates = candidates
        shown = candidates[:CANDIDATES_SHOWN]
        more = len(candidates) - len(shown)
        super().__init__(
            f"{prefix!r} names {len(candidates)} executions: {', '.join(shown)}"
            + (f" and {more} more" if more > 0 else "")
            + "; give more of the name"
        )


CANDIDATES_SHOWN = 10


def resolve(sfn: Any, state_machine_arn: str, name: str) -> str:
    """The ARN of the execution `name` stands for: an ARN, a whole name, or a unique prefix
    of a name (as git takes a commit's), among the state machine's executions.

    A whole name costs one DescribeExecution; a prefix one ListExecutions per 1,000
    executions. Raises UnknownExecution or AmbiguousExecution (which lists the candidates)."""
    if name.startswith("arn:"):
        return name
    if not name:
        raise UnknownExecution("an execution's name (or the start of one) is needed")
    whole = execution_arn(state_machine_arn, name)
    try:
        sfn.describe_execution(executionArn=whole)
        return whole
    except sfn.exceptions.ExecutionDoesNotExist:
        pass  # not a whole name: look for the executions it is the start of
    candidates: list[str] = []
    pages = sfn.get_paginator("list_executions").paginate(
        stateMachineArn=state_machine_arn, PaginationConfig={"PageSize": 1000}
    )
    for listed in pages:
        candidates.extend(str(e["name"]) for e in listed["executions"] if str(e["name"]).startswith(name))
    if not candidates:
        raise UnknownExecution(
            f"no execution of {state_machine_arn.rsplit(':', 1)[-1]} is named {name!r} or starts with it"
        )
    if len(candidates) > 1:
        raise AmbiguousExecution(name, sorted(candidates))
    return execution_arn(state_machine_arn, candidates[0])


def console_url(region: str, arn: str) -> str:
    """The same execution in the AWS console (deployed stacks only)."""
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{arn}"


def source_of(execution_input: str | None) -> tuple[str, str, str] | None:
    """(bucket, key, version) of the S3 event an execution was started with, if it was (the
    version as the ledger keys it: the version id, or the ETag in an unversioned bucket)."""
    try:
        ref = ObjectRef.from_event(json.loads(execution_input or ""))
    except (ValueError, MalformedEvent):
        return None
    return ref.bucket, ref.key, ref.output_id


@dataclass
class Execution:
    """One execution and, once Fetch claimed its file, the file's outcome."""

    arn: str
    name: str
    status: str
    started: datetime
    stopped: datetime | None = None
    source_bucket: str = ""
    source_key: str = ""
    version_id: str = ""
    outcome: dict[str, Any] = field(default_factory=dict)
    """The ledger item of the file, when this execution owns it (else empty)."""
    duplicate_of: str = ""
    """Another execution that owns this file (this one skipped it as a duplicate event)."""
    error: str = ""
    cause: str = ""
    input: str = ""
    output: str = ""

    @property
    def seconds(self) -> float | None:
        if self.stopped is None:
            return None
        return (self.stopped - self.started).total_seconds()

    def count(self, name: str) -> int | None:
        value = self.outcome.get(name)
        return None if value is None else int(value)

    @property
    def model_version(self) -> str:
        return str(self.outcome.get("model_version", ""))


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def describe(sfn: Any, results: Results | None, arn: str) -> Execution:
    """DescribeExecution joined with the ledger item of its file."""
    described = sfn.describe_execution(executionArn=arn)
    execution = Execution(
        arn=arn,
        name=str(described["name"]),
        status=str(described["status"]),
        started=_as_utc(described["startDate"]),
        stopped=_as_utc(described["stopDate"]) if described.get("stopDate") else None,
        error=str(described.get("error", "")),
        cause=str(described.get("cause", "")),
        input=str(described.get("input", "")),
        output=str(described.get("output", "")),
    )
    source = source_of(execution.input)
    if source is not None:
        execution.source_bucket, execution.source_key, execution.version_id = source
        if results is not None:
            item = results.file(execution.source_key, execution.version_id) or {}
            if item and item.get("execution_arn") not in (None, arn):
                execution.duplicate_of = str(item["execution_arn"])
            elif item:
                execution.outcome = item
    return execution


@dataclass
class ExecutionPage:
    executions: list[Execution]
    next_token: str | None
    examined: int
    """Executions read for this page (more than shown when a filter drops some)."""


def list_page(
    sfn: Any,
    results: Results,
    state_machine_arn: str,
    *,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    prefix: str | None = None,
    token: str | None = None,
    page_size: int = PAGE_SIZE,
) -> ExecutionPage:
    """One page of executions, newest first, each joined with its file's outcome.

    `status` is ListExecutions' own filter. The time range and the key prefix are applied to
    the page read: a page can show fewer rows than `page_size`, never more reads. Executions
    come newest first, so the listing stops at the first one older than `since`."""
    arguments: dict[str, Any] = {"stateMachineArn": state_machine_arn, "maxResults": page_size}
    if status:
        arguments["statusFilter"] = status
    if token:
        arguments["nextToken"] = token
    response = sfn.list_executions(**arguments)
    listed = response.get("executions", [])
    next_token = response.get("nextToken")
    chosen = []
    for item in listed:
        started = _as_utc(item["startDate"])
        if since is not None and started < since:
            next_token = None
            break
        if until is not None and started > until:
            continue
        chosen.append(str(item["executionArn"]))
    with ThreadPoolExecutor(max_workers=JOIN_WORKERS) as pool:
        executions = list(pool.map(lambda arn: describe(sfn, results, arn), chosen))
    if prefix:
        executions = [e for e in executions if e.source_key.startswith(prefix)]
    return ExecutionPage(executions, next_token, len(listed))


ENDED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
POLL_SECONDS = 0.5


def wait(
    sfn: Any,
    results: Results | None,
    arns: list[str],
    timeout: float,
    *,
    ended: Callable[[Execution], None] = lambda _: None,
    poll: float = POLL_SECONDS,
) -> list[Execution]:
    """Each execution of `arns` once it ended, or as it was at `timeout` (status RUNNING),
    in the order given; `ended` is told of each as it ends. Polls DescribeExecution (Step
    Functions has no call that waits)."""
    deadline = time.monotonic() + timeout
    last: dict[str, Execution] = {}
    running = list(arns)
    while True:
        for arn in list(running):
            last[arn] = describe(sfn, results, arn)
            if last[arn].status in ENDED:
                running.remove(arn)
                ended(last[arn])
        if not running or time.monotonic() >= deadline:
            return [last[arn] for arn in arns]
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))


def history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    """Every event of an execution, oldest first."""
    events: list[dict[str, Any]] = []
    # 1,000 events a page, the API's most: a 100-chunk file's ~1,700 events in two requests
    # rather than eighteen.
    pages = sfn.get_paginator("get_execution_history").paginate(
        executionArn=arn, PaginationConfig={"PageSize": 1000}
    )
    for page in pages:
        events.extend(page["events"])
    return events


MAP_LEVEL_EVENTS = (
    "MapStateStarted",
    "MapStateSucceeded",
    "MapStateFailed",
    "MapStateAborted",
    "MapStateExited",
)
FAILURE_EVENTS = ("TaskFailed", "TaskTimedOut", "ExecutionFailed", "ExecutionTimedOut", "MapStateFailed")


def timeline(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """State by state: when it started, how long it took, how many retries, how it failed;
    a Map iteration's states carry the iteration's index (`chunk`) and follow their Map state,
    chunk by chunk.

    Iterations run at once, so their events interleave: each event is given to the state it
    belongs to by following its `previousEventId` chain, never by its place in the history.
    The Map state's own closing events point at an iteration's last event, so they go to the
    Map state still open instead."""
    steps: list[dict[str, Any]] = []
    owner: dict[int, dict[str, Any] | None] = {}
    chunk: dict[int, int | None] = {}
    open_maps: list[dict[str, Any]] = []
    for event in events:
        kind, event_id, previous = event["type"], int(event["id"]), int(event.get("previousEventId") or 0)
        details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
        step: dict[str, Any] | None
        if kind.endswith("StateEntered"):
            index = chunk.get(previous)
            step = {"state": details["name"], "started": event["timestamp"], "seconds": None, "attempts": 0,
                    "error": "", "cause": "", "chunk": index,
                    "map": open_maps[-1] if open_maps and index is not None else None}  # fmt: skip
            steps.append(step)
            if kind == "MapStateEntered":
                open_maps.append(step)
            owner[event_id], chunk[event_id] = step, step["chunk"]
            continue
        if kind in MAP_LEVEL_EVENTS:
            step = open_maps[-1] if open_maps else owner.get(previous)
            chunk[event_id] = step["chunk"] if step else None
        elif kind == "MapIterationStarted":
            step, chunk[event_id] = owner.get(previous), details.get("index")
        else:
            step, chunk[event_id] = owner.get(previous), chunk.get(previous)
        owner[event_id] = step
        if step is None:
            continue
        if kind == "TaskScheduled":
            step["attempts"] += 1
        elif kind in FAILURE_EVENTS:
            step["error"], step["cause"] = details.get("error", ""), details.get("cause", "")
        elif kind.endswith("StateExited") and step["seconds"] is None:
            step["seconds"] = (event["timestamp"] - step["started"]).total_seconds()
            if kind == "MapStateExited" and open_maps:
                open_maps.pop()
    ordered: list[dict[str, Any]] = []
    for step in steps:
        if step["map"] is None:
            ordered.append(step)
            inner = [s for s in steps if s["map"] is step]
            ordered.extend(sorted(inner, key=lambda s: s["chunk"]))  # stable: each chunk's own order
    for step in steps:
        step.pop("map")
    return ordered


def files(
    results: Results, status: str | None = None, since: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """The ledger's files (one per uploaded version), oldest claim first, filtered."""
    for item in results.files():
        claimed = item.get("claimed_at")
        if status and item.get("status") != status:
            continue
        if since and (not claimed or datetime.fromisoformat(str(claimed)) < since):
            continue
        yield item
