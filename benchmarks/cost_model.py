"""AWS cost per million records, from requests counted on the local stack and published prices.

    python benchmarks/cost_model.py [--json]

The local stack runs the real template, state machine and handlers. This script counts what
a run actually does (state transitions from the execution histories, Lambda invocations and
their durations, every S3 and DynamoDB request the handlers make, bytes logged) and prices
those counts. Nothing per file is estimated by hand.

Scenarios: single-record files (Standard and Express), 10,000-record files (Standard), and
the transitions per file as the record count grows.

Prices: us-east-1 as published (../shared/design-notes.md), plus three that note does not
list: DynamoDB on-demand writes ($0.625 per million write units), reads ($0.125 per million
read units) and CloudWatch Logs ingestion ($0.50 per GB). The user's own upload PUT and the
S3 -> EventBridge event (AWS service events on the default bus are free) are not counted.

Lambda duration is an estimate: the CPU seconds each handler thread used here (which include
moto's own work on the handler's requests, so they overstate), scaled to the function's share
of a vCPU (one vCPU at 1,769 MB), plus a typical service latency per request (S3 20 ms,
DynamoDB 5 ms). Express duration is the sum of its Lambda durations plus 10 ms per state.
Wall-clock times on this laptop are not used: hundreds of executions share two cores.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

PRICES = {
    "sfn_standard_transition": 0.025 / 1000,
    "sfn_express_request": 1.00 / 1e6,
    "sfn_express_gb_second": 0.00001667,
    "lambda_request": 0.20 / 1e6,
    "lambda_arm64_gb_second": 0.0000133334,
    "s3_put": 0.005 / 1000,
    "s3_get": 0.0004 / 1000,
    "dynamodb_write_unit": 0.625 / 1e6,
    "dynamodb_read_unit": 0.125 / 1e6,
    "logs_gb": 0.50,
}
S3_PUT_TIER = {"PutObject", "CopyObject", "ListObjectsV2", "CompleteMultipartUpload"}
DYNAMODB_WRITES = {"PutItem", "UpdateItem", "BatchWriteItem", "DeleteItem"}
ONE_VCPU_MB = 1769
REQUEST_LATENCY_S = {"s3": 0.020, "dynamodb": 0.005}
STATE_OVERHEAD_S = 0.010
PLATFORM_LOG_BYTES = 350
"""Lambda's own START, END and REPORT lines per invocation (JSON format); a SystemLogLevel
of WARN drops them."""


@dataclass
class Usage:
    """What the handlers did while the executions of one scenario ran."""

    api_calls: Counter[str] = field(default_factory=Counter)
    dynamodb_write_units: int = 0
    lambda_seconds: dict[str, float] = field(default_factory=dict)
    lambda_invocations: Counter[str] = field(default_factory=Counter)
    log_bytes: int = 0


class Meter:
    """Counts handler-side AWS requests (the invoker runs handlers on threads named lambda-*)."""

    def __init__(self) -> None:
        self.usage = Usage()
        self._lock = threading.Lock()

    def reset(self) -> Usage:
        with self._lock:
            usage, self.usage = self.usage, Usage()
        return usage

    def request(self, service: str, operation: str, body: bytes) -> None:
        if not threading.current_thread().name.startswith("lambda-"):
            return
        with self._lock:
            self.usage.api_calls[f"{service}:{operation}"] += 1
            if service == "dynamodb" and operation in DYNAMODB_WRITES:
                self.usage.dynamodb_write_units += _write_units(operation, json.loads(body or b"{}"))

    def invoked(self, invocation: Any) -> None:
        with self._lock:
            function = invocation.function
            self.usage.lambda_invocations[function] += 1
            self.usage.lambda_seconds[function] = (
                self.usage.lambda_seconds.get(function, 0.0) + invocation.cpu_seconds
            )

    def install(self) -> None:
        """Count every request the handlers send to moto (moto's stubber sees them all)."""
        from moto.core.botocore_stubber import BotocoreStubber

        original = BotocoreStubber.__call__
        meter = self

        def counting(stubber: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
            _, service, operation = event_name.split(".")[:3]
            meter.request(service, operation, request.body if isinstance(request.body, bytes) else b"")
            return original(stubber, event_name, request, **kwargs)

        BotocoreStubber.__call__ = counting  # type: ignore[method-assign, assignment]


def _write_units(operation: str, params: dict[str, Any]) -> int:
    """Write units as DynamoDB bills them: one per started KB of each item written."""
    if operation == "BatchWriteItem":
        items = [
            r["PutRequest"]["Item"] for rs in params["RequestItems"].values() for r in rs if "PutRequest" in r
        ]
    elif operation == "PutItem":
        items = [params["Item"]]
    else:  # UpdateItem: the written attributes approximate the item after the update
        items = [params.get("ExpressionAttributeValues", {}) | params["Key"]]
    return sum(max(1, math.ceil(len(json.dumps(item)) / 1024)) for item in items)


def transitions(history: list[dict[str, Any]]) -> int:
    """States entered, plus one per retry: what Standard workflows bill."""
    entered = sum(1 for e in history if e["type"].endswith("StateEntered"))
    scheduled = sum(1 for e in history if e["type"] == "TaskScheduled")
    tasks = sum(1 for e in history if e["type"] == "TaskStateEntered")
    return entered + (scheduled - tasks)


def run_scenario(stack: Any, meter: Meter, log: io.StringIO, files: list[bytes]) -> dict[str, Any]:
    meter.reset()
    log.seek(0)
    log.truncate()
    before = len(stack.started_executions)
    s3 = stack.client("s3")
    started = time.monotonic()
    for index, body in enumerate(files):
        key = f"{stack.outputs['InputPrefix']}bench/{time.time_ns()}-{index}.csv"
        s3.put_object(Bucket=stack.outputs["InputBucketName"], Key=key, Body=body)
    executions = stack.wait_for_executions(before + len(files), timeout=1800)[before:]
    wall = time.monotonic() - started
    assert all(e["status"] == "SUCCEEDED" for e in executions), [e["status"] for e in executions]
    sfn = stack.client("stepfunctions")
    histories = []
    for execution in executions:
        events: list[dict[str, Any]] = []
        for page in sfn.get_paginator("get_execution_history").paginate(
            executionArn=execution["executionArn"]
        ):
            events.extend(page["events"])
        histories.append(events)
    durations = [(e["stopDate"] - e["startDate"]).total_seconds() for e in executions]
    usage = meter.reset()
    usage.log_bytes = len(log.getvalue().encode())
    if "--show-log" in sys.argv:
        print(log.getvalue()[:600])
    records = sum(sum(1 for line in body.splitlines() if line.strip()) for body in files)
    return {
        "files": len(files),
        "records": records,
        "transitions": sum(transitions(h) for h in histories),
        "history_events_max": max(len(h) for h in histories),
        "execution_seconds": durations,
        "wall_seconds": wall,
        "usage": usage,
    }


def price(run: dict[str, Any], memory_mb: dict[str, int], express: bool) -> dict[str, float]:
    usage: Usage = run["usage"]
    per_million = 1e6 / run["records"]
    calls = usage.api_calls
    io_seconds = sum(n * REQUEST_LATENCY_S.get(op.split(":")[0], 0.0) for op, n in calls.items())
    invocations_total = sum(usage.lambda_invocations.values())
    lambda_gb_s = 0.0
    lambda_seconds = 0.0
    for function, cpu_seconds in usage.lambda_seconds.items():
        memory = memory_mb[function]
        invocations = usage.lambda_invocations[function]
        share = invocations / invocations_total
        seconds = cpu_seconds * ONE_VCPU_MB / min(memory, ONE_VCPU_MB) + io_seconds * share
        billed = max(0.001 * invocations, seconds)
        lambda_seconds += billed
        lambda_gb_s += billed * memory / 1024
    s3_put = sum(n for op, n in calls.items() if op.startswith("s3:") and op.split(":")[1] in S3_PUT_TIER)
    s3_get = sum(n for op, n in calls.items() if op.startswith("s3:") and op.split(":")[1] not in S3_PUT_TIER)
    dynamodb_reads = sum(n for op, n in calls.items() if op in ("dynamodb:GetItem", "dynamodb:Query"))
    cost = {
        "lambda_requests": sum(usage.lambda_invocations.values()) * PRICES["lambda_request"],
        "lambda_duration": lambda_gb_s * PRICES["lambda_arm64_gb_second"],
        "s3_requests": s3_put * PRICES["s3_put"] + s3_get * PRICES["s3_get"],
        "dynamodb": usage.dynamodb_write_units * PRICES["dynamodb_write_unit"]
        + dynamodb_reads * PRICES["dynamodb_read_unit"],
        "logs": usage.log_bytes / 1e9 * PRICES["logs_gb"],
    }
    if express:
        # Express bills each execution's duration in 64 MB / 100 ms units at least.
        per_execution = (lambda_seconds + run["transitions"] * STATE_OVERHEAD_S) / run["files"]
        billed_seconds = run["files"] * math.ceil(per_execution / 0.1) * 0.1
        express_duration = billed_seconds * 0.0625 * PRICES["sfn_express_gb_second"]
        cost["step_functions"] = run["files"] * PRICES["sfn_express_request"] + express_duration
    else:
        cost["step_functions"] = run["transitions"] * PRICES["sfn_standard_transition"]
    return {name: value * per_million for name, value in cost.items()}


def measure(level: str, single_files: int, large_files: int, growth: bool, show_log: bool) -> dict[str, Any]:
    """One log level, in this process (powertools configures its logger once per process)."""
    import logging

    from predictflow.local.stack import LocalStack
    from predictflow.local.template import load_template

    meter = Meter()
    meter.install()
    log = io.StringIO()
    lines = [line for line in (ROOT / "model" / "data" / "adult.data").read_bytes().splitlines() if line]
    result: dict[str, Any] = {}
    # Priced as deployed: the template's default pointer cache, which the local stack turns off.
    cache = load_template(ROOT / "template.yaml")["Parameters"]["ActiveModelCacheSeconds"]["Default"]
    with LocalStack(log_level=level, parameters={"ActiveModelCacheSeconds": str(cache)}) as stack:
        # Capture exactly what the handlers' powertools loggers write, in their JSON format.
        service_logger = logging.getLogger("predictflow")
        handler = logging.StreamHandler(log)
        handler.setFormatter(service_logger.handlers[0].formatter)
        service_logger.addHandler(handler)
        stack.invoker.on_invoke(meter.invoked)
        memory = {
            f["FunctionName"]: int(f["MemorySize"])
            for f in stack.client("lambda").list_functions()["Functions"]
        }
        platform_log_bytes = PLATFORM_LOG_BYTES if level == "INFO" else 0
        single = run_scenario(stack, meter, log, [lines[i % len(lines)] + b"\n" for i in range(single_files)])
        if show_log:
            print(log.getvalue()[:2000], file=sys.stderr)
        large = run_scenario(
            stack, meter, log, [b"\n".join(lines[:10_000]) + b"\n" for _ in range(large_files)]
        )
        for run in (single, large):
            run["usage"].log_bytes += platform_log_bytes * sum(run["usage"].lambda_invocations.values())
        result = {
            "single_standard": price(single, memory, express=False),
            "single_express": price(single, memory, express=True),
            "large_standard": price(large, memory, express=False),
            "single_calls": dict(single["usage"].api_calls),
            "large_calls": dict(large["usage"].api_calls),
            "single_dynamodb_write_units_per_file": single["usage"].dynamodb_write_units / single["files"],
            "single_log_bytes_per_file": single["usage"].log_bytes / single["files"],
            "single_transitions_per_file": single["transitions"] / single["files"],
            "large_transitions_per_file": large["transitions"] / large["files"],
        }
        if growth:
            rows = {}
            for count in (1, 100, 1_000, 10_000, 32_000):
                run = run_scenario(stack, meter, log, [b"\n".join(lines[:count]) + b"\n"])
                rows[count] = {"transitions": run["transitions"], "history_events": run["history_events_max"]}
            result["transitions_by_records"] = rows
        service_logger.removeHandler(handler)
    return result


def main() -> None:
    import subprocess

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--show-log", action="store_true")
    parser.add_argument("--single-files", type=int, default=200)
    parser.add_argument("--large-files", type=int, default=3)
    parser.add_argument("--level", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.level:
        print(
            json.dumps(
                measure(args.level, args.single_files, args.large_files, args.level == "INFO", args.show_log)
            )
        )
        return
    results: dict[str, Any] = {}
    for level in ("INFO", "WARNING"):
        command = [sys.executable, __file__, "--level", level]
        command += ["--single-files", str(args.single_files), "--large-files", str(args.large_files)]
        command += ["--show-log"] if args.show_log else []
        environment = os.environ | {"POWERTOOLS_METRICS_DISABLED": "true"}
        out = subprocess.run(command, capture_output=True, text=True, check=True, env=environment)
        if args.show_log:
            print(out.stderr[-4000:], file=sys.stderr)
        results[level] = json.loads(out.stdout.strip().splitlines()[-1])
    results["transitions_by_records"] = results["INFO"].pop("transitions_by_records")
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for level in ("INFO", "WARNING"):
        print(f"\nLog level {level}: $ per million records")
        print(
            f"{'scenario':18}"
            + "".join(f"{k:>16}" for k in results[level]["single_standard"])
            + f"{'total':>10}"
        )
        for scenario in ("single_standard", "single_express", "large_standard"):
            costs = results[level][scenario]
            print(
                f"{scenario:18}"
                + "".join(f"{v:16.3f}" for v in costs.values())
                + f"{sum(costs.values()):10.3f}"
            )
        units = results[level]["single_dynamodb_write_units_per_file"]
        log_bytes = results[level]["single_log_bytes_per_file"]
        print(f"  single-record file: {units:.1f} DynamoDB write units, {log_bytes:.0f} log bytes")
    print("\nTransitions per file (Standard), counted from execution histories:")
    for count, row in results["transitions_by_records"].items():
        transitions_, events = row["transitions"], row["history_events"]
        print(f"  {count:>7} records: {transitions_:>5} transitions, {events:>6} history events")
    print("\nHandler requests, single-record files:", results["INFO"]["single_calls"])
    print("Handler requests, 10,000-record files:", results["INFO"]["large_calls"])


if __name__ == "__main__":
    main()
