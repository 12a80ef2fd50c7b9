"""How fast the console's two heaviest pages render, in-process, against the local stack.

    python benchmarks/console_speed.py [--executions 10000] [--chunks 100] [--runs 5]

1. The executions page, first page, with `--executions` executions of the state machine:
   they are started with moto's execution engine off (so they stay RUNNING and cost no
   Lambda work), each with an S3 event as input and a ledger item with counts, as Fetch and
   Finalize write them. The page reads one ListExecutions page and joins its rows only.
2. The execution page of one real execution of a file cut into `--chunks` chunks (ChunkBytes
   at its minimum, 4 KiB): graph, every iteration's status, the event history table.

Each page is requested through Flask's test client (with the session cookie), `--runs`
times; the median and the worst are printed (the first request of the execution page
is the cold one: a finished execution's history is then kept). Goal: both <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

for name, value in {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ.setdefault(name, value)

from predictflow.cli.aws import Aws  # noqa: E402
from predictflow.console.app import create_app  # noqa: E402
from predictflow.local.stack import LocalStack  # noqa: E402

TOKEN = "benchmark"
RECORD = b"39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 0, 0, 40, United-States, <=50K\n"  # noqa: E501


def timed(client: object, path: str, runs: int) -> tuple[float, float, int]:
    seconds = []
    size = 0
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)  # type: ignore[attr-defined]
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
        size = len(response.data)
    return statistics.median(seconds), max(seconds), size


def many_executions(stack: LocalStack, count: int) -> None:
    from moto.stepfunctions.models import StepFunctionBackend
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    outputs = stack.outputs
    # The executing backend holds the state machine; its base class's start_execution
    # records an execution without running it.
    backend = stepfunctions_parser_backends["123456789012"]["us-east-1"]
    dynamodb = stack.client("dynamodb")
    items = []
    for i in range(count):
        key, version = f"{outputs['InputPrefix']}bench/file-{i:05d}.csv", f"v{i:05d}"
        obj = {"key": key, "version-id": version, "etag": "e", "size": 1}
        event = {"detail": {"bucket": {"name": outputs["InputBucketName"]}, "object": obj}}
        execution = StepFunctionBackend.start_execution(
            backend, outputs["StateMachineArn"], f"bench-{i:05d}", json.dumps(event)
        )
        execution.start_date = execution.start_date.replace(tzinfo=UTC)  # as the engine's are
        items.append({"PutRequest": {"Item": {
                "pk": {"S": f"s3://{outputs['InputBucketName']}/{key}#{version}"},
                "execution_arn": {"S": execution.execution_arn}, "source_key": {"S": key},
                "status": {"S": "SUCCEEDED"}, "records": {"N": "100"}, "predicted": {"N": "98"},
                "dead_lettered": {"N": "2"}, "model_version": {"S": "adult-income-bench"},
            }}})  # fmt: skip
    for start in range(0, len(items), 25):
        dynamodb.batch_write_item(RequestItems={outputs["LedgerTableName"]: items[start : start + 25]})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--chunks", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with LocalStack(
        parameters={"ChunkBytes": "4096", "MaxFileBytes": str(4096 * 1000)}, retry_wait_scale=0.001
    ) as stack:
        client = create_app(Aws(stack_name=stack.stack_name, region="us-east-1"), TOKEN).test_client()
        client.get(f"/?token={TOKEN}")

        body = RECORD * (args.chunks * 4096 // len(RECORD) - 1)
        stack.upload(Path("large.csv"), key=f"{stack.outputs['InputPrefix']}large.csv", body=body)
        (described,) = stack.wait_for_executions(1, timeout=600)
        name = described["executionArn"].rsplit(":", 1)[-1]
        history = stack.client("stepfunctions").get_paginator("get_execution_history")
        events = sum(len(p["events"]) for p in history.paginate(executionArn=described["executionArn"]))
        median, worst, size = timed(client, f"/executions/{name}", args.runs)
        print(f"execution page, {args.chunks} chunks ({events} events, {described['status']}): "
              f"median {median:.3f} s, worst {worst:.3f} s, {size / 1024:.0f} KB")  # fmt: skip

        started = time.perf_counter()
        many_executions(stack, args.executions)
        print(f"{args.executions} executions and ledger items made in {time.perf_counter() - started:.1f} s")
        median, worst, size = timed(client, "/executions", args.runs)
        print(f"executions page 1 of {args.executions + 1}: median {median:.3f} s, worst {worst:.3f} s, "
              f"{size / 1024:.0f} KB")  # fmt: skip
        median, worst, _ = timed(client, "/executions/rows?status=SUCCEEDED", args.runs)
        print(f"executions rows (auto-refresh), status filter: median {median:.3f} s, worst {worst:.3f} s")


if __name__ == "__main__":
    main()
