"""The prediction API on the local stack: latency, throughput, and cost per million calls on AWS.

    python benchmarks/api_latency.py [--requests 1000] [--seconds 5] [--clients 4] [--json]

Everything goes over real HTTP on 127.0.0.1 through the local API bridge to the real handler
(keep-alive connections, as an SDK keeps them). Measured, warm:

- one record per request: p50 and p99 from request to response (targets 15 ms and 50 ms);
- one request of 1,000 records (target 100 ms);
- records per second with `--clients` concurrent clients sending 100-record requests for
  `--seconds` (bounded, loopback only, stops by itself; target 2,000/s per process).

Cost per million single-record calls on AWS, from what the run counted: API Gateway REST
requests ($3.50 per million), Lambda requests and duration (the handler thread's CPU seconds
per call, scaled to the function's share of a vCPU at its memory, arm64 price, as
benchmarks/cost_model.py prices it), the model pointer's S3 GET (once per container per 15 s:
counted as one per 1,500 calls, i.e. 100 calls/s), and CloudWatch Logs ingestion of the bytes
the handler logged plus Lambda's own lines. Compared with Amazon ML's $100 per million.
The machine has two cores shared with other work: figures are pessimistic.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import math
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from cost_model import ONE_VCPU_MB, PLATFORM_LOG_BYTES, PRICES  # noqa: E402

API_PRICES = {"apigateway_rest_request": 3.50 / 1e6, "aml_prediction": 100.0 / 1e6}
ARTICLE = (
    "22, Local-gov, 108435, Masters, 14, Married-civ-spouse, Prof-specialty, Husband, White, Male, "
    "0, 0, 80, United-States"
)
MEMORY_MB = 1024


class Client:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.path = parts.path
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)

    def predict(self, records: list[Any]) -> dict[str, Any]:
        body = json.dumps({"records": records})
        self.connection.request("POST", f"{self.path}/predict", body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {data[:200]!r}")
        return dict(json.loads(data))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def concurrent(url: str, clients: int, seconds: float, size: int) -> float:
    """Records per second that `clients` threads, each with its own connection, get answered
    with requests of `size` records for `seconds` (then they stop)."""
    counted = [0] * clients
    stop = time.monotonic() + seconds

    def load(index: int) -> None:
        own = Client(url)
        while time.monotonic() < stop:
            counted[index] += own.predict([ARTICLE] * size)["predicted"]

    threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return sum(counted) / (time.perf_counter() - began)


def run(requests: int, seconds: float, clients: int) -> dict[str, Any]:
    from predictflow.local.moto_bridge import Invocation
    from predictflow.local.stack import LocalStack

    logged = io.StringIO()
    saved_stdout = sys.stdout
    sys.stdout = logged  # the handler's logger binds to stdout at import: count what it writes
    try:
        with LocalStack(api_port=0, log_level="INFO", publish_outputs=False) as stack:
            cpu: list[float] = []
            stack.invoker.on_invoke(
                lambda i: cpu.append(i.cpu_seconds) if isinstance(i, Invocation) else None
            )
            client = Client(stack.api_url)
            for _ in range(50):
                client.predict([ARTICLE])
            cpu.clear()
            logged.seek(0)
            logged.truncate()
            single: list[float] = []
            for _ in range(requests):
                began = time.perf_counter()
                client.predict([ARTICLE])
                single.append(time.perf_counter() - began)
            single_cpu = statistics.mean(cpu)
            log_bytes = len(logged.getvalue().encode()) / requests
            thousand: list[float] = []
            for _ in range(20):
                began = time.perf_counter()
                answer = client.predict([ARTICLE] * 1000)
                thousand.append(time.perf_counter() - began)
                assert answer["predicted"] == 1000
            batched = concurrent(stack.api_url, clients, seconds, 100)
            singles = concurrent(stack.api_url, clients, seconds, 1)
    finally:
        sys.stdout = saved_stdout
    # Lambda bills whole milliseconds.
    duration = math.ceil(single_cpu / min(1.0, MEMORY_MB / ONE_VCPU_MB) * 1e3) / 1e3
    per_call = {
        "api_gateway": API_PRICES["apigateway_rest_request"],
        "lambda_requests": PRICES["lambda_request"],
        "lambda_duration": duration * MEMORY_MB / 1024 * PRICES["lambda_arm64_gb_second"],
        "s3_pointer_get": PRICES["s3_get"] / 1500,
        "logs": (log_bytes + PLATFORM_LOG_BYTES) / 1e9 * PRICES["logs_gb"],
    }
    return {
        "single_record_ms": {"p50": percentile(single, 0.5) * 1e3, "p99": percentile(single, 0.99) * 1e3},
        "thousand_records_ms": {"median": statistics.median(thousand) * 1e3, "max": max(thousand) * 1e3},
        "throughput": {
            "clients": clients,
            "records_per_second": batched,
            "single_record_calls_per_second": singles,
        },
        "handler_cpu_ms_per_single_call": single_cpu * 1e3,
        "logged_bytes_per_call": log_bytes,
        "cost_per_million_calls": {name: value * 1e6 for name, value in per_call.items()}
        | {"total": sum(per_call.values()) * 1e6, "amazon_ml": API_PRICES["aml_prediction"] * 1e6},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    figures = run(options.requests, options.seconds, options.clients)
    if options.json:
        print(json.dumps(figures, indent=2))
        return
    single, thousand, cost = (
        figures["single_record_ms"],
        figures["thousand_records_ms"],
        figures["cost_per_million_calls"],
    )
    print(f"one record:      p50 {single['p50']:.1f} ms, p99 {single['p99']:.1f} ms  (targets 15 / 50)")
    print(f"1,000 records:   median {thousand['median']:.1f} ms, max {thousand['max']:.1f} ms  (target 100)")
    rate = figures["throughput"]
    print(f"throughput:      {rate['records_per_second']:,.0f} rec/s ({rate['clients']} clients, 100 a call)")
    print(
        f"                 {rate['single_record_calls_per_second']:,.0f} records/s (1 a call; target 2,000)"
    )
    print(f"handler CPU:     {figures['handler_cpu_ms_per_single_call']:.2f} ms per single-record call")
    print("cost per million single-record calls on AWS:")
    for name, value in cost.items():
        print(f"  {name:18} ${value:8.2f}")


if __name__ == "__main__":
    main()
