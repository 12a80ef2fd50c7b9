"""The Lambda log lines of one execution, from CloudWatch Logs (AWS's, or the local stack's,
which keeps its functions' lines there too): one code path for both.

Every line the pipeline's functions log carries the execution's ARN (`execution_arn`, a
powertools key each handler appends, `pipeline/runtime.py::log_keys`), so an execution's lines
are those of its functions' log groups whose `execution_arn` is its ARN. The state that wrote
a line is found from the state machine's definition: the function a state invokes and, for a
function several states share (Route), the `action` its payload names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

EXECUTION_KEY: Final = "execution_arn"
STANDARD_KEYS: Final = frozenset(
    {
        "level", "location", "message", "timestamp", "service", "cold_start", "function_name",
        "function_memory_size", "function_arn", "function_request_id", "xray_trace_id",
        "sampling_rate", "execution_arn", "source_key", "model_version", "chunk", "action",
    }
)  # fmt: skip
"""powertools' own keys and the ones every pipeline line carries: not repeated after the message."""
EARLIER: Final = timedelta(minutes=1)
"""Lines are looked for from a little before the execution started (clocks differ)."""


@dataclass(frozen=True)
class Step:
    state: str
    function: str
    action: str | None
    """The payload's `action`, where the function serves several states."""


@dataclass(frozen=True)
class LogLine:
    timestamp: datetime
    step: str
    level: str
    message: str
    chunk: int | None
    extra: dict[str, Any]
    raw: str
    """The line as the function logged it (powertools' JSON)."""
    event_id: str


def steps_of(definition: dict[str, Any]) -> list[Step]:
    """Each Task state that invokes a Lambda function, in the definition's order (Map
    iterations included)."""
    found: list[Step] = []

    def walk(states: dict[str, Any]) -> None:
        for name, state in states.items():
            parameters = state.get("Parameters") or {}
            function = parameters.get("FunctionName")
            if isinstance(function, str):
                payload = parameters.get("Payload")
                action = payload.get("action") if isinstance(payload, dict) else None
                found.append(Step(name, _function_name(function), action))
            for processor in (state.get("ItemProcessor"), state.get("Iterator")):
                if processor:
                    walk(processor["States"])
            for branch in state.get("Branches", []):
                walk(branch["States"])

    walk(definition["States"])
    return found


def _function_name(name_or_arn: str) -> str:
    # arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
    return name_or_arn.split(":")[6] if name_or_arn.startswith("arn:") else name_or_arn


def select(steps: list[Step], wanted: str | None) -> list[Step]:
    """The steps `--step` names (a state's name, any case); all of them for None."""
    if wanted is None:
        return steps
    chosen = [step for step in steps if step.state.lower() == wanted.lower()]
    if not chosen:
        known = ", ".join(dict.fromkeys(step.state for step in steps))
        raise ValueError(f"no step {wanted!r} invokes a function; the steps are: {known}")
    return chosen


def log_group_of(lambda_client: Any, function: str) -> str:
    """A function's log group: the one its logging configuration names, else Lambda's default."""
    configuration = lambda_client.get_function_configuration(FunctionName=function)
    return str(configuration.get("LoggingConfig", {}).get("LogGroup") or f"/aws/lambda/{function}")


def filter_pattern(execution_arn: str) -> str:
    return f'{{ $.{EXECUTION_KEY} = "{execution_arn}" }}'


def execution_lines(
    logs_client: Any,
    groups: dict[str, str],
    steps: list[Step],
    execution_arn: str,
    since: datetime,
    wanted: list[Step] | None = None,
) -> list[LogLine]:
    """The execution's lines, oldest first: of every step, or of the `wanted` ones (a function
    several states share is read once, its lines told apart by their `action`). `groups`:
    function name -> its log group."""
    state_of = {(step.function, step.action): step.state for step in steps}
    states = {step.state for step in wanted} if wanted is not None else None
    found: list[LogLine] = []
    for function in dict.fromkeys(step.function for step in (wanted or steps)):
        for event in _events(logs_client, groups[function], execution_arn, since):
            line = parse(event, function, state_of, execution_arn)
            if line is not None and (states is None or line.step in states):
                found.append(line)
    return sorted(found, key=lambda line: (line.timestamp, line.event_id))


def _events(logs_client: Any, group: str, execution_arn: str, since: datetime) -> Iterator[dict[str, Any]]:
    """The group's events that name the execution. CloudWatch Logs matches the JSON pattern
    itself; moto 5.2.5 does not (a pattern starting with `{` matches every event), so each
    line is checked again in `parse`: the same answer from either."""
    arguments: dict[str, Any] = {
        "logGroupName": group,
        "filterPattern": filter_pattern(execution_arn),
        "startTime": int((since - EARLIER).timestamp() * 1000),
    }
    while True:
        try:
            page = logs_client.filter_log_events(**arguments)
        except logs_client.exceptions.ResourceNotFoundException:
            return  # the function has logged nothing yet: Lambda makes its group on first output
        yield from page.get("events", [])
        token = page.get("nextToken")
        if not token:
            return
        arguments["nextToken"] = token


def parse(
    event: dict[str, Any],
    function: str,
    state_of: dict[tuple[str, str | None], str],
    execution_arn: str,
) -> LogLine | None:
    """One CloudWatch event as a line of the execution; None for a line of another execution
    or one that is not powertools' JSON (Lambda's START/END/REPORT lines)."""
    try:
        record = json.loads(event["message"])
    except ValueError:
        return None
    if not isinstance(record, dict) or EXECUTION_KEY not in record:
        return None
    if record[EXECUTION_KEY] != execution_arn:
        return None
    action = record.get("action")
    state = state_of.get((function, action)) or state_of.get((function, None)) or str(action or function)
    chunk = record.get("chunk")
    extra = {key: value for key, value in record.items() if key not in STANDARD_KEYS}
    return LogLine(
        timestamp=datetime.fromtimestamp(event["timestamp"] / 1000, UTC),
        step=state,
        level=str(record.get("level", "")),
        message=str(record.get("message", "")),
        chunk=chunk if isinstance(chunk, int) else None,
        extra=extra,
        raw=event["message"],
        event_id=str(event.get("eventId", "")),
    )
