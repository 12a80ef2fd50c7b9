"""The state machine, executed by moto's Step Functions engine with the real handlers.

Each test uploads a file to the deployed local stack (so the S3 event and the EventBridge
rule start the execution, as on AWS) and checks what a user would see: the execution's
status and output, the predictions, the dead-letter entries, and the history.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from predictflow.local.stack import LocalStack
from predictflow.pipeline import chunks as chunking
from predictflow.pipeline import settings as limits
from tests.conftest import running_stack
from tests.fixtures import ADULT, ARTICLE, EVENTS, HEADER, ROOT, upload_and_wait
from tests.statemachine.mocks import (
    MOCK_CONFIG,
    lambda_states_reached,
    load_case,
    use_test_case_with_real_handlers,
)

ASL = ROOT / "statemachine" / "predictflow.asl.json"
MOCK_CASES = json.loads(MOCK_CONFIG.read_text())["StateMachines"]["PredictionStateMachine"]["TestCases"]
CHUNK_BYTES = 4096


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    parameters = {"ChunkBytes": str(CHUNK_BYTES), "MaxFileBytes": str(CHUNK_BYTES * 1000)}
    with running_stack(parameters=parameters, retry_wait_scale=0.001) as local:
        yield local


@pytest.fixture(autouse=True)
def no_mocks(stack: LocalStack) -> Iterator[None]:
    yield
    stack.clear_mocks()


class Run:
    """One uploaded file and everything the pipeline made of it."""

    def __init__(self, stack: LocalStack, body: bytes, name: str = "records.csv") -> None:
        self.stack = stack
        self.key, self.version, self.execution = upload_and_wait(
            stack, body, f"{stack.outputs['InputPrefix']}{uuid.uuid4().hex[:8]}/{name}", timeout=60
        )

    @property
    def status(self) -> str:
        return str(self.execution["status"])

    @property
    def output(self) -> dict[str, Any]:
        return dict(json.loads(self.execution["output"]))

    def predictions(self) -> list[dict[str, Any]]:
        return list(self.stack.results().predictions(self.key, self.version))

    def outcome(self) -> dict[str, Any] | None:
        return self.stack.results().file(self.key, self.version)

    def dead_letters(self) -> list[dict[str, Any]]:
        return self.stack.results().dead_letters(source_key=self.key, version=self.version)

    def history(self) -> list[dict[str, Any]]:
        sfn = self.stack.client("stepfunctions")
        events: list[dict[str, Any]] = []
        for page in sfn.get_paginator("get_execution_history").paginate(
            executionArn=self.execution["executionArn"]
        ):
            events.extend(page["events"])
        return events

    def failures(self, state: str) -> list[str]:
        """The error of each failed attempt of `state`, in order."""
        names = {}
        errors = []
        for event in self.history():
            if event["type"] == "TaskStateEntered":
                names[event["id"]] = event["stateEnteredEventDetails"]["name"]
            if event["type"] == "TaskFailed":
                entered = max(i for i in names if i < event["id"])
                if names[entered] == state:
                    errors.append(event["taskFailedEventDetails"]["error"])
        return errors


def records_in(body: bytes) -> int:
    return sum(1 for line in body.decode("utf-8", errors="replace").splitlines() if line.strip())


def test_happy_path_predicts_every_record(stack: LocalStack) -> None:
    body = (EVENTS / "records-good.csv").read_bytes()
    run = Run(stack, body)
    assert run.status == "SUCCEEDED"
    assert run.output | {"records": 5, "predicted": 5, "dead_lettered": 0, "failed_chunks": 0} == run.output
    predictions = run.predictions()
    assert [p["line"] for p in predictions] == [1, 2, 3, 4, 5]
    first = predictions[0]
    assert set(first) == {"line", "model_version", "label", "probability"}
    assert first["label"] in (">50K", "<=50K")
    assert 0 < first["probability"] < 1
    assert first["model_version"] == ADULT.model_version
    manifest = run.stack.results().manifest(run.key, run.version)
    assert manifest is not None
    assert (manifest["source_key"], manifest["version_id"]) == (run.key, run.version)
    assert manifest["execution_arn"] == run.execution["executionArn"]
    assert manifest["model_version"] == ADULT.model_version
    assert run.dead_letters() == []


def test_mixed_file_routes_each_record_and_succeeds_with_the_counts(stack: LocalStack) -> None:
    run = Run(stack, (EVENTS / "records-mixed.csv").read_bytes())
    assert run.status == "SUCCEEDED"
    assert (run.output["records"], run.output["predicted"], run.output["dead_lettered"]) == (5, 3, 2)
    assert [p["line"] for p in run.predictions()] == [2, 3, 5]
    assert [p.get("actual") for p in run.predictions()] == ["<=50K", ">50K", ">50K"]
    bad_age, martian = run.dead_letters()
    assert (bad_age["line"], bad_age["error_type"]) == (4, "InvalidValue")
    assert bad_age["error_message"] == "age: 'abc' is not a whole number"
    assert bad_age["raw"].startswith("abc, Private")
    assert (martian["line"], martian["error_type"]) == (6, "UnknownCategory")
    assert "race: 'Martian'" in martian["error_message"]
    for entry in (bad_age, martian):
        assert entry["source_bucket"] == stack.outputs["InputBucketName"]
        assert entry["source_key"] == run.key
        assert entry["version_id"] == run.version
        assert entry["execution_arn"] == run.execution["executionArn"]
        assert entry["time"].endswith("+00:00")


def test_a_throttled_predictor_is_retried_and_the_retries_show_in_the_history(stack: LocalStack) -> None:
    use_test_case_with_real_handlers(stack, "PredictorThrottledTwice")
    run = Run(stack, (EVENTS / "records-good.csv").read_bytes())
    assert run.status == "SUCCEEDED"
    assert run.failures("Predict") == ["PredictorThrottled", "PredictorThrottled"]
    assert len(run.predictions()) == 5
    assert run.dead_letters() == []


def test_a_lambda_service_error_is_retried(stack: LocalStack) -> None:
    use_test_case_with_real_handlers(stack, "LambdaServiceErrorOnValidate")
    run = Run(stack, (EVENTS / "records-good.csv").read_bytes())
    assert run.status == "SUCCEEDED"
    assert run.failures("Validate") == ["Lambda.TooManyRequestsException"]
    assert len(run.predictions()) == 5


def test_a_predictor_that_stays_down_dead_letters_the_records_and_fails_the_execution(
    stack: LocalStack,
) -> None:
    use_test_case_with_real_handlers(stack, "PredictorDown")
    run = Run(stack, (EVENTS / "records-mixed.csv").read_bytes())
    assert run.status == "FAILED"
    assert run.execution["error"] == "ChunksDeadLettered"
    # The first attempt and the five retries the ASL allows.
    assert run.failures("Predict") == ["PredictorUnavailable"] * 6
    assert run.predictions() == []
    entries = run.dead_letters()
    assert [e["line"] for e in entries] == [2, 3, 4, 5, 6]
    assert {e["error_type"] for e in entries if e["line"] in (2, 3, 5)} == {"PredictorUnavailable"}
    assert all("endpoint is down" in e["error_message"] for e in entries if e["line"] in (2, 3, 5))
    assert [e["error_type"] for e in entries if e["line"] in (4, 6)] == ["InvalidValue", "UnknownCategory"]
    outcome = run.outcome()
    assert outcome is not None
    assert (outcome["status"], outcome["records"], outcome["predicted"], outcome["dead_lettered"]) == (
        "FAILED",
        5,
        0,
        5,
    )


def test_a_file_of_garbage_dead_letters_every_line(stack: LocalStack) -> None:
    body = b"\x1f\x8b\x08\x00garbage\n\xff\xfe\x00b\x00\nnot, a, record\n"
    run = Run(stack, body)
    assert run.status == "SUCCEEDED"
    assert run.predictions() == []
    assert [(e["line"], e["error_type"]) for e in run.dead_letters()] == [
        (1, "EncodingError"),
        (2, "EncodingError"),
        (3, "FieldCountError"),
    ]


@pytest.mark.parametrize(
    "body",
    [b"", b"\n \n\t\r\n", (HEADER + ", income\r\n").encode()],
    ids=["empty", "whitespace-only", "header-only"],
)
def test_a_file_without_records_is_dead_lettered_and_fails(stack: LocalStack, body: bytes) -> None:
    run = Run(stack, body)
    assert run.status == "FAILED"
    assert run.execution["error"] == "NoRecords"
    (entry,) = run.dead_letters()
    assert (entry["line"], entry["error_type"]) == (0, "NoRecords")


def test_an_object_gone_before_fetch_is_dead_lettered_as_a_whole(stack: LocalStack) -> None:
    event = json.loads((EVENTS / "s3-object-created.json").read_text())
    event["detail"]["bucket"]["name"] = stack.outputs["InputBucketName"]
    event["detail"]["object"]["key"] = key = f"incoming/{uuid.uuid4().hex}.csv"
    stack.deliver(event)
    described = stack.wait_for_executions(len(stack.started_executions))[-1]
    assert described["status"] == "FAILED"
    assert described["error"] == "ChunksDeadLettered"
    (entry,) = stack.results().dead_letters(source_key=key)
    assert (entry["line"], entry["error_type"]) == (0, "ObjectNotFound")
    assert entry["error_message"].startswith("the file could not be processed")


def test_a_file_above_the_size_limit_is_rejected_without_being_read(stack: LocalStack) -> None:
    body = (ARTICLE + "\n").encode() * (CHUNK_BYTES * 1000 // len(ARTICLE) + 10)
    validate_calls = sum(v for k, v in stack.invoker.invocations.items() if "Validate" in k)
    run = Run(stack, body)
    assert run.status == "FAILED"
    assert run.execution["error"] == "FileRejected"
    (entry,) = run.dead_letters()
    assert entry["error_type"] == "FileTooLarge"
    assert str(len(body)) in entry["error_message"]
    assert sum(v for k, v in stack.invoker.invocations.items() if "Validate" in k) == validate_calls


def test_the_same_event_delivered_twice_gives_one_set_of_outputs(stack: LocalStack) -> None:
    run = Run(stack, (EVENTS / "records-mixed.csv").read_bytes())
    event = json.loads(run.history()[0]["executionStartedEventDetails"]["input"])
    sfn = stack.client("stepfunctions")
    arn = stack.deliver(event)
    second = stack.wait_for_executions(len(stack.started_executions))[-1]
    assert second["status"] == "SUCCEEDED"
    states = [
        e["stateEnteredEventDetails"]["name"]
        for e in sfn.get_execution_history(executionArn=arn)["events"]
        if "stateEnteredEventDetails" in e
    ]
    assert states == ["Fetch", "Already Processed?", "Skip Duplicate Event"]
    assert len(run.predictions()) == 3
    assert len(run.dead_letters()) == 2


def test_a_large_file_is_chunked_and_every_record_is_accounted_for(stack: LocalStack) -> None:
    source = (ROOT / "model" / "data" / "adult.data").read_bytes().splitlines(keepends=True)[:1500]
    lines = list(source)
    lines[700] = b"not a record\n"
    body = b"".join(lines)
    run = Run(stack, body)
    assert run.status == "SUCCEEDED"
    assert run.output["chunks"] >= len(body) // CHUNK_BYTES
    assert (run.output["records"], run.output["predicted"], run.output["dead_lettered"]) == (1500, 1499, 1)
    predicted_lines = [p["line"] for p in run.predictions()]
    assert predicted_lines == [n for n in range(1, 1501) if n != 701]
    assert [e["line"] for e in run.dead_letters()] == [701]
    history = run.history()
    assert len(history) < 25_000
    largest_state = max(len(json.dumps(e, default=str)) for e in history)
    assert largest_state < 256 * 1024


def test_a_file_of_many_short_bad_lines_is_cut_by_its_lines_and_each_is_dead_lettered(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each line can be a dead letter that Route writes: a chunk holds at most MAX_CHUNK_LINES
    lines however few bytes they take (here 40 lines of a 400-byte file, far under a chunk's
    bytes), so that no Route has more dead letters to write than its timeout allows."""
    monkeypatch.setattr(chunking, "MAX_CHUNK_LINES", 40)
    run = Run(stack, b"x\n" * 200)
    assert run.status == "SUCCEEDED"
    assert run.output["chunks"] == 5
    assert (run.output["records"], run.output["predicted"], run.output["dead_lettered"]) == (200, 0, 200)
    assert [e["line"] for e in run.dead_letters()] == list(range(1, 201))
    assert {e["error_type"] for e in run.dead_letters()} == {"FieldCountError"}


def test_a_file_that_needs_too_many_chunks_is_rejected_whole_saying_why(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More chunks than MAX_CHUNKS would take a Standard execution past its history limit."""
    monkeypatch.setattr(chunking, "MAX_CHUNK_LINES", 10)
    monkeypatch.setattr(limits, "MAX_CHUNKS", 5)
    validate_calls = sum(v for k, v in stack.invoker.invocations.items() if "Validate" in k)
    run = Run(stack, b"x\n" * 100)
    assert run.status == "FAILED"
    assert run.execution["error"] == "FileRejected"
    (entry,) = run.dead_letters()
    assert entry["error_type"] == "FileTooLarge"
    assert "more than 5 chunks" in entry["error_message"]
    assert sum(v for k, v in stack.invoker.invocations.items() if "Validate" in k) == validate_calls


@pytest.mark.parametrize(
    ("long_line", "expected"),
    [(b"\r" * 300_000, [(3, "LineTooLong")]), (b" \t" * 150_000, [])],
    ids=["carriage-returns", "blank"],
)
def test_a_line_far_longer_than_a_chunk_is_read_as_a_stream_and_its_neighbours_scored(
    stack: LocalStack, long_line: bytes, expected: list[tuple[int, str]]
) -> None:
    body = f"{ARTICLE}\n{ARTICLE}\n".encode() + long_line + f"\n{ARTICLE}\n".encode()
    run = Run(stack, body)
    assert run.status == "SUCCEEDED"
    assert [p["line"] for p in run.predictions()] == [1, 2, 4]
    assert [(d["line"], d["error_type"]) for d in run.dead_letters()] == expected


@pytest.mark.parametrize("copies", [1, 200], ids=["one-chunk", "several-chunks"])
def test_a_header_without_a_needed_column_dead_letters_the_file_saying_which(
    stack: LocalStack, copies: int
) -> None:
    names = [name for name in HEADER.split(", ") if name != "age"]
    row = ", ".join(ARTICLE.split(", ")[1:])
    body = (", ".join(names) + "\n" + f"{row}\n" * copies).encode()
    run = Run(stack, body)
    assert run.status == "FAILED"
    assert run.predictions() == []
    (entry,) = run.dead_letters()
    assert (entry["line"], entry["error_type"]) == (0, "MissingColumns")
    # One chunk: its Validate names it; several: Fetch does, before any chunk is read.
    assert entry["error_message"].endswith(
        f"the header lacks 1 column(s) the model needs: age (the header has: {', '.join(names)})"
    )
    assert "errorType" not in entry["error_message"]


@pytest.mark.parametrize("name", MOCK_CASES)
def test_each_mock_test_case_answers_every_invocation_as_step_functions_local_requires(name: str) -> None:
    """Step Functions Local fails an execution at a Lambda invocation its test case does not
    answer: every state the case's path reaches must be listed, with an answer for each of its
    invocations, retries included, and nothing listed may go unused."""
    case = load_case(name)
    reached = list(lambda_states_reached(json.loads(ASL.read_text()), case))
    assert {state: reached.count(state) for state in case} == {
        state: len(answers) for state, answers in case.items()
    }
    assert reached[0] == "Fetch"
