"""`show` on a file of several chunks: the Map's iterations run at once and their events interleave."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from predictflow.cli import cli
from predictflow.local.stack import LocalStack
from tests.conftest import running_stack
from tests.fixtures import ARTICLE, ROOT
from tests.statemachine.mocks import use_test_case_with_real_handlers

MOCKS = ROOT / "tests" / "statemachine" / "MockConfigFile.json"
CHUNK_BYTES = 4096


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    parameters = {"ChunkBytes": str(CHUNK_BYTES), "MaxFileBytes": str(CHUNK_BYTES * 1000)}
    with running_stack(parameters=parameters, retry_wait_scale=0.001) as local:
        yield local


def test_show_labels_map_iterations_by_chunk_and_pairs_each_retry_with_its_chunk(
    stack: LocalStack, tmp_path: Path
) -> None:
    line = (ARTICLE + "\n").encode()
    six = tmp_path / "six.csv"
    six.write_bytes(line * (CHUNK_BYTES * 6 // len(line) - 2))
    use_test_case_with_real_handlers(
        stack, "LambdaServiceErrorOnValidate"
    )  # the first Validate call is throttled once
    try:
        stack.upload(six)
        described = stack.wait_for_executions(len(stack.started_executions))[-1]
    finally:
        stack.clear_mocks()
    assert described["status"] == "SUCCEEDED"
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        cli, ["--stack-name", "predictflow-local", "show", described["executionArn"]]
    )
    assert result.exit_code == 0, result.output
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in result.stdout.splitlines()
        if line.count("│") > 5
    ]
    header = next(line for line in result.stdout.splitlines() if "┃" in line)
    assert [cell.strip() for cell in header.split("┃")[1:6]] == [
        "state",
        "chunk",
        "started",
        "seconds",
        "retries",
    ]
    in_chunks = [(row[1], row[0]) for row in rows if row[1]]
    # Each chunk's states in order, the chunks one after another.
    assert in_chunks == [(str(c), state) for c in range(6) for state in ("Validate", "Predict", "Route")]
    validates = [row for row in rows if row[0] == "Validate"]
    assert sorted(row[4] for row in validates) == ["0", "0", "0", "0", "0", "1"]
    [retried] = [row for row in validates if row[4] == "1"]
    assert retried[5] == "Lambda.TooManyRequestsException"
    assert all(row[5] == "" for row in rows if row is not retried)
    assert all(row[3] for row in rows)  # every state ended, each with its own duration
    top = [row[0] for row in rows if not row[1]]
    assert top[:3] == ["Fetch", "Already Processed?", "Process Chunks"]
    assert top[-1] == "Done"
