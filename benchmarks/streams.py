"""Records through the SQS stream source on the local stack: every record ends exactly once.

    python benchmarks/streams.py [--records 20000] [--per-message 100] [--duplicates 0.1]
                                 [--batch-size 10] [--window 0] [--paced] [--to sqs|kinesis] [--json]

N census records (every 50th made invalid) go on the stack's stream queue with `send_to_sqs`,
`--per-message` to a message; the local stream bridge delivers them to the real handler as the
event source mapping would. A fraction `--duplicates` of the deliveries is delivered again
(a redelivery burst, as SQS's at-least-once delivery may do). At the end, every record id,
(message id, position in the message), must appear exactly once among the prediction lines and
dead letters, and nothing else may.

Also priced per million records from what was counted (SQS requests, Lambda invocations and
CPU seconds, S3 PUTs, dead-letter writes), with cost_model.py's prices, for the event source
mapping this stack uses and for EventBridge Pipes into an Express state machine (docs/streams.md).
Timings come from a shared two-core machine and overstate.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from cost_model import ONE_VCPU_MB, PRICES, REQUEST_LATENCY_S  # noqa: E402

STREAM_PRICES = {
    "sqs_request": 0.40 / 1e6,  # per 64 KiB chunk of a request's payload
    "pipes_request": 0.40 / 1e6,  # per 64 KiB chunk of an event, after filtering
}
SQS_CHUNK = 64 * 1024
MEMORY_MB = 1024


def sent_ms(record: dict[str, Any]) -> float:
    """When the record was put on the queue or stream, in epoch milliseconds."""
    if "kinesis" in record:
        return float(record["kinesis"]["approximateArrivalTimestamp"]) * 1000
    return float(record["attributes"]["SentTimestamp"])


def census_records(count: int, bad_every: int) -> list[str]:
    lines = [line.strip() for line in (ROOT / "model" / "data" / "adult.data").read_text().splitlines()]
    lines = [line for line in lines if line]
    records = []
    for n in range(count):
        line = lines[n % len(lines)]
        if bad_every and n % bad_every == bad_every - 1:
            line = "abc" + line[line.index(",") :]
        records.append(line)
    return records


def run(args: argparse.Namespace) -> dict[str, Any]:
    from predictflow.local.moto_bridge import Invocation, LocalFunction
    from predictflow.local.stack import LocalStack
    from predictflow.sources.sender import Sent, send_to_kinesis, send_to_sqs

    records = census_records(args.records, args.bad_every)
    parameters = {
        "StreamBatchSize": str(args.batch_size),
        "StreamBatchingWindowSeconds": str(args.window),
        "LogLevel": "WARNING",
    }
    rng = random.Random(13)
    latencies: list[float] = []
    calls: Counter[str] = Counter()
    sqs_billed: Counter[str] = Counter()
    usage = {"invocations": 0, "cpu_seconds": 0.0, "redeliveries": 0}
    lock = threading.Lock()
    with LocalStack(parameters=parameters, retry_wait_scale=0.0, streams=True) as stack:
        assert stack.deployment is not None
        assert stack.stream_bridge is not None
        mapping = next(m for m in stack.deployment.stream_mappings if f":{args.to}:" in m.source_arn)
        function = stack.invoker._lookup(mapping.function_name)
        assert function is not None
        real = function.handler

        def handler(event: dict[str, Any], context: Any) -> Any:
            answer = real(event, context)
            with lock:
                redeliver = rng.random() < args.duplicates
            if redeliver:  # the same messages once more: their keys are rewritten, nothing added
                real(event, context)
            done = time.time() * 1000
            with lock:
                usage["redeliveries"] += len(event["Records"]) if redeliver else 0
                latencies.extend(done - sent_ms(r) for r in event["Records"])
            return answer

        stack.invoker.register(
            LocalFunction(function.name, function.arn, handler, function.timeout_seconds, function.memory_mb)
        )

        def counted(invocation: Invocation) -> None:
            if invocation.function == function.name:
                with lock:
                    usage["invocations"] += 1
                    usage["cpu_seconds"] += invocation.cpu_seconds

        stack.invoker.on_invoke(counted)

        def count_call(event_name: str, parsed: dict[str, Any], model: Any, **_: Any) -> None:
            # SQS bills a request per 64 KiB of payload: sent bodies, or received messages.
            operation = model.name
            if operation == "GetQueueAttributes":
                return  # the benchmark's own polling, not the mapping's
            with lock:
                calls[f"sqs:{operation}"] += 1
                payload = sum(len(m["Body"]) for m in parsed.get("Messages", [])) + sending.get(operation, 0)
                sqs_billed[operation] += max(1, math.ceil(payload / SQS_CHUNK))

        sending: dict[str, int] = {}

        def count_sent(params: dict[str, Any], model: Any, **_: Any) -> None:
            if model.name == "SendMessageBatch":
                sending[model.name] = sum(len(entry["MessageBody"]) for entry in params["Entries"])

        stack.client("sqs").meta.events.register("provide-client-params.sqs.*", count_sent)
        stack.client("sqs").meta.events.register("after-call.sqs.*", count_call)
        s3_puts = Counter[str]()
        url = stack.outputs["StreamQueueUrl"] if args.to == "sqs" else stack.outputs["StreamName"]

        def put(batch: list[str]) -> Sent:
            if args.to == "sqs":
                return send_to_sqs(stack.client("sqs"), url, batch, args.per_message)
            return send_to_kinesis(stack.client("kinesis"), url, batch, args.per_message)

        started = time.perf_counter()
        if args.paced:
            # One message at a time, each sent once the one before is done: latency without a backlog.
            sent = Sent()
            for start in range(0, len(records), args.per_message):
                one = put(records[start : start + args.per_message])
                sent.message_ids += one.message_ids
                sent.records, sent.messages = sent.records + one.records, sent.messages + one.messages
                stack.stream_bridge.wait_until_drained(timeout=60)
        else:
            sent = put(records)
        sent_at = time.perf_counter()
        stack.stream_bridge.wait_until_drained(timeout=max(120.0, args.records / 50))
        drained = time.perf_counter()

        queue = url.rsplit("/", 1)[-1]
        seen: Counter[tuple[str, int]] = Counter()
        s3, bucket = stack.client("s3"), stack.outputs["OutputBucketName"]
        predicted = 0
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"predictions/_streams/{queue}/"
        ):
            for item in page.get("Contents", []):
                message_id = (
                    item["Key"].removeprefix(f"predictions/_streams/{queue}/").removesuffix(".jsonl.gz")
                )
                body = gzip.decompress(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
                s3_puts["objects"] += 1
                for line in body.splitlines():
                    seen[(message_id, json.loads(line)["line"])] += 1
                    predicted += 1
        dead = 0
        for page in (
            stack.client("dynamodb")
            .get_paginator("scan")
            .paginate(TableName=stack.outputs["DeadLetterTableName"])
        ):
            for item in page["Items"]:
                message_id = item["source_key"]["S"].split("/", 1)[1]
                seen[(message_id, int(item["line"]["N"]))] += 1
                dead += 1
    expected = {(message_id, line) for message_id, count in sent.message_ids for line in range(1, count + 1)}
    exactly_once = set(seen) == expected and all(n == 1 for n in seen.values())
    seconds = drained - started
    per_million = 1e6 / args.records
    invocations = usage["invocations"]
    lambda_seconds = usage["cpu_seconds"] * ONE_VCPU_MB / min(MEMORY_MB, ONE_VCPU_MB)
    lambda_seconds += s3_puts["objects"] * REQUEST_LATENCY_S["s3"] + dead / 25 * REQUEST_LATENCY_S["dynamodb"]
    sqs_requests = sum(sqs_billed.values())
    esm = {
        "sqs_requests": sqs_requests * STREAM_PRICES["sqs_request"] * per_million,
        "lambda_requests": invocations * PRICES["lambda_request"] * per_million,
        "lambda_duration": lambda_seconds * MEMORY_MB / 1024 * PRICES["lambda_arm64_gb_second"] * per_million,
        "s3_puts": s3_puts["objects"] * PRICES["s3_put"] * per_million,
        "dynamodb": dead * PRICES["dynamodb_write_unit"] * per_million,
    }
    # Pipes -> Express: the same SQS reads and the same Lambda work, plus a Pipes request per
    # 64 KiB of each batch and an Express execution per batch (64 MB, 100 ms units at least,
    # for the Lambda's duration and ~10 ms for its one state).
    batch_bytes = args.per_message * (len(records[0]) + 3) * args.batch_size
    pipes_requests = invocations * max(1, math.ceil(batch_bytes / SQS_CHUNK))
    per_execution = lambda_seconds / max(invocations, 1) + 0.010
    express_seconds = invocations * math.ceil(per_execution / 0.1) * 0.1
    pipes = esm | {
        "pipes_requests": pipes_requests * STREAM_PRICES["pipes_request"] * per_million,
        "express_requests": invocations * PRICES["sfn_express_request"] * per_million,
        "express_duration": express_seconds * 0.0625 * PRICES["sfn_express_gb_second"] * per_million,
    }
    latencies.sort()
    return {
        "source": args.to,
        "records": args.records,
        "messages": sent.messages,
        "records_per_message": args.per_message,
        "batch_size": args.batch_size,
        "window_s": args.window,
        "predicted": predicted,
        "dead_lettered": dead,
        "redelivered_messages": usage["redeliveries"],
        "exactly_once": exactly_once,
        "send_seconds": round(sent_at - started, 2),
        "total_seconds": round(seconds, 2),
        "records_per_second": round(args.records / seconds),
        "invocations": invocations,
        "message_latency_ms": {
            "p50": round(statistics.median(latencies)),
            "p99": round(latencies[int(len(latencies) * 0.99) - 1]),
        },
        "sqs_calls": dict(calls),
        # Kinesis bills by GB and stream-hour, not per request: only SQS is priced here.
        "cost_per_million_records": {"event_source_mapping": rounded(esm), "pipes_express": rounded(pipes)}
        if args.to == "sqs"
        else None,
    }


def rounded(costs: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 4) for name, value in costs.items()} | {"total": round(sum(costs.values()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--per-message", type=int, default=100)
    parser.add_argument("--duplicates", type=float, default=0.1, help="share of deliveries made twice")
    parser.add_argument("--bad-every", type=int, default=50, help="every Nth record is invalid (0: none)")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--window", type=int, default=0)
    parser.add_argument("--to", choices=["sqs", "kinesis"], default="sqs")
    parser.add_argument("--paced", action="store_true", help="send a message only once the last is done")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for name, value in result.items():
            print(f"{name:24} {value}")
    if not result["exactly_once"]:
        sys.exit("some record did not end exactly once")


if __name__ == "__main__":
    main()
