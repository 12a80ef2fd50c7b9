"""The conservation promise, per line, under random files and random fault schedules.

Each example uploads a random file (valid records, invalid ones, blank lines, hostile bytes)
while a random schedule of faults hits the handlers' own AWS calls (S3 reads and writes,
DynamoDB writes, reads and queries) or makes them raise. Then, line by line:

- every non-blank line has exactly one outcome: one prediction, or one dead letter (its own,
  or the entry that stands for its unreadable chunk, or the file's own line-0 entry);
- no line is both predicted and dead-lettered;
- each prediction is the one its own line gets offline (`predictflow predict` on the same
  file), so a prediction can never be attached to another line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from predictflow.local.stack import LocalStack
from predictflow.pipeline.chunks import plan_chunks
from predictflow.predictions import answers_of
from predictflow.predictors import EmbeddedPredictor
from predictflow.records import detect_layout, first_record_line, parse_chunk, split_lines
from tests.conftest import running_stack
from tests.fixtures import ADULT, ARTICLE, HEADER, with_field
from tests.reliability.test_conservation import upload

CHUNK_BYTES = 4096

LINES = st.one_of(
    st.builds(
        lambda age, hours: with_field(12, str(hours), with_field(0, str(age))),
        st.integers(17, 100),
        st.integers(1, 99),
    ),
    st.sampled_from(
        [with_field(0, "abc"), with_field(8, "Martian"), "nonsense", f"{ARTICLE}, >50K", "", "  ", "\x1c"]
    ),
    st.just(HEADER),
    st.text(max_size=30).filter(lambda text: "\n" not in text and "\r" not in text),
)

OPERATIONS = st.sampled_from(
    [
        ("s3", "GetObject"),
        ("s3", "PutObject"),
        ("dynamodb", "BatchWriteItem"),
        ("dynamodb", "UpdateItem"),
        ("dynamodb", "PutItem"),
        ("dynamodb", "Query"),
    ]
)
# Counts sit around the retry budgets: Route and Finalize try 5 times, Dead-letter Chunk and
# Close Unfinished File 7, the status-change handler 3 (Lambda's asynchronous retries); a fault
# that outlasts every budget is a lasting outage, which leaves the execution FAILED and its
# alarm firing (README).
FAULTS = st.lists(
    st.tuples(OPERATIONS, st.sampled_from([1, 2, 4, 5, 6, 7, 12]), st.sampled_from(["throttle", "server"])),
    max_size=3,
)
"""Random schedules are of throttles and server errors; crashes (errors the state machine does
not retry) are in the pinned examples. Random crashes stacked on several operations along one
path exceed the retry budgets together and can leave a file RUNNING or without a ledger item:
a known gap, recorded in the issue's note, not a promise this test makes."""


class Schedule:
    """Fails the first `count` calls of each listed operation made from a Lambda thread.

    It wraps botocore's one entry point for every API call, so it reaches the handlers' clients
    whenever they were made (the stack lives for the module; its clients outlive an example).
    Every call it does not fail goes to moto unchanged."""

    def __init__(self, faults: list[tuple[tuple[str, str], int, str]]) -> None:
        self.left = {(service, op): (count, kind) for (service, op), count, kind in faults}
        self.lock = threading.Lock()

    @contextmanager
    def installed(self) -> Iterator[None]:
        original = BaseClient._make_api_call
        schedule = self

        def make_api_call(client: Any, operation: str, params: Any) -> Any:
            schedule.maybe_fail(client.meta.service_model.service_name, operation)
            return original(client, operation, params)

        BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
        try:
            yield
        finally:
            BaseClient._make_api_call = original  # type: ignore[method-assign]

    def maybe_fail(self, service: str, operation: str) -> None:
        if not threading.current_thread().name.startswith("lambda-") or (service, operation) not in self.left:
            return
        with self.lock:
            count, kind = self.left[(service, operation)]
            if count == 0:
                return
            self.left[(service, operation)] = (count - 1, kind)
        if kind == "crash":
            raise RuntimeError(f"injected crash in {operation}")
        code, status = ("SlowDown", 503) if kind == "throttle" else ("InternalError", 500)
        error = {
            "Error": {"Code": code, "Message": "injected"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        raise ClientError(error, operation)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    parameters = {"ChunkBytes": str(CHUNK_BYTES), "MaxFileBytes": str(CHUNK_BYTES * 1000)}
    with running_stack(parameters=parameters, retry_wait_scale=0.0001) as local:
        yield local


def offline(body: bytes) -> dict[int, float]:
    """What `predictflow predict` gives each line: P(positive) by line number."""
    predictor = EmbeddedPredictor(ADULT)
    out: dict[int, float] = {}
    layout = None
    for chunk in plan_chunks([body], CHUNK_BYTES):
        batch = parse_chunk(
            body[chunk["start"] : chunk["end"]], ADULT.schema, chunk["first_line"], layout=layout
        )
        layout = layout or batch.layout
        answers = answers_of(ADULT.spec.target, predictor.scores(batch.features))
        out |= dict(zip(batch.lines, answers.tolist(), strict=True))
    return out


def settle(stack: LocalStack, key: str, version: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        stack.invoker.wait_until_idle(5)
        item = stack.results().file(key, version)
        if (item and item.get("status") != "RUNNING") or time.monotonic() > deadline:
            assert item is not None
            return item
        time.sleep(0.05)


MIXED = [*[ARTICLE] * 5, with_field(0, "abc"), "", with_field(8, "Martian"), *[ARTICLE] * 3]
LONG = MIXED * 40


@example(lines=MIXED, faults=[(("dynamodb", "BatchWriteItem"), 6, "server")])  # Route's dead letters fail
@example(lines=MIXED, faults=[(("dynamodb", "BatchWriteItem"), 12, "throttle")])  # ... and the chunk's
@example(lines=LONG, faults=[(("dynamodb", "UpdateItem"), 5, "throttle")])  # Finalize fails
@example(lines=LONG, faults=[(("s3", "GetObject"), 6, "server")])  # a chunk cannot be read
@example(lines=LONG, faults=[(("s3", "PutObject"), 1, "crash")])  # Validate crashes once
@example(lines=LONG, faults=[(("dynamodb", "Query"), 2, "crash"), (("s3", "PutObject"), 5, "throttle")])
@settings(
    max_examples=25,
    deadline=None,
    # The same examples on every run: a schedule that fails is a finding to keep, not a flake.
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=st.lists(LINES, min_size=0, max_size=220), faults=FAULTS)
def test_every_line_ends_exactly_once_whatever_fails(
    stack: LocalStack, lines: list[str], faults: list[Any]
) -> None:
    body = "\n".join(lines).encode()
    with Schedule(faults).installed():
        key, version, execution = upload(stack, body)
        item = settle(stack, key, version)
    assert execution["status"] in ("SUCCEEDED", "FAILED")
    assert item["status"] in ("SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT")
    results = stack.results()
    predicted = {p["line"]: p for p in results.predictions(key, version)}
    dead = results.dead_letters(source_key=key, version=version, include_replayed=True)
    texts = split_lines(body.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")) if body else []
    non_blank = {number for number, text in enumerate(texts, start=1) if text.strip(" \t")}

    outcomes: dict[int, int] = dict.fromkeys(non_blank, 0)
    if any(entry["line"] == 0 for entry in dead):
        # The file as a whole is dead-lettered: nothing of it may be predicted.
        assert predicted == {}
        assert len([e for e in dead if e["line"] == 0]) == 1
        return
    chunks = plan_chunks([body], CHUNK_BYTES)
    for entry in dead:
        if entry["raw"] == "" and entry["error_message"].startswith("lines from"):
            # An unreadable chunk: its first line's entry stands for all its lines.
            (chunk,) = [c for c in chunks if c["first_line"] == entry["line"]]
            for number in range(
                chunk["first_line"],
                chunk["first_line"] + body[chunk["start"] : chunk["end"]].count(b"\n") + 1,
            ):
                if number in outcomes:
                    outcomes[number] += 1
        else:
            assert entry["line"] in outcomes, entry
            outcomes[entry["line"]] += 1
    for number in predicted:
        assert number in outcomes, number
        outcomes[number] += 1
    first = first_record_line(body)
    if first is not None and detect_layout(first[1], ADULT.schema).header is not None:
        outcomes.pop(first[0] + 1)  # the header row is not a record
    assert {number: count for number, count in outcomes.items() if count != 1} == {}
    expected = offline(body)
    for number, prediction in predicted.items():
        assert np.isclose(prediction["probability"], expected[number], rtol=0, atol=1e-12), number
