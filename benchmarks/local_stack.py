"""The local stack's numbers: start-up, single-record latency, and large-file throughput.

    python benchmarks/local_stack.py [--records 200000] [--latency-files 30] [--runs 3]

- start-up: `LocalStack().start()` (moto, the bridge, and the deploy of template.yaml, with
  its Outputs published as `local up` does), in a fresh process: once with an empty cache
  (the SAM transform runs) and then with the translated template cached;
- latency: single-record files uploaded one after another; upload to the file's ledger item
  saying SUCCEEDED (its predictions are stored by then), p50 and p95;
- throughput: one file of N records, `predictflow local run FILE` against
  `predictflow predict FILE -o /dev/null`, both as whole processes, run in turns so that both
  see the same machine, and where the local run's time goes (per function, from the
  invoker's timings).

The benchmark keeps its own cache folder (PREDICTFLOW_CACHE_DIR), so runs are comparable.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fresh_process import seconds_printed_by

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
PREDICTFLOW = [str(Path(sys.executable).parent / "predictflow")]  # the installed console script

START_UP = """
import time
started = time.perf_counter()
from predictflow.local.stack import LocalStack
stack = LocalStack()
stack.start()
print(time.perf_counter() - started)
stack.stop()
"""


def records_file(folder: Path, count: int) -> Path:
    lines = [
        line.rsplit(b",", 1)[0]
        for line in (ROOT / "model" / "data" / "adult.data").read_bytes().splitlines()
        if line
    ]
    path = folder / f"records-{count}.csv"
    path.write_bytes(b"".join(line + b"\n" for line in itertools.islice(itertools.cycle(lines), count)))
    return path


def start_up(runs: int) -> tuple[float, list[float]]:
    """Seconds to start: with nothing cached, then `runs` times with the template cached."""
    with tempfile.TemporaryDirectory() as cache:
        environment = os.environ | {"PREDICTFLOW_CACHE_DIR": cache}
        times = [seconds_printed_by(START_UP, ROOT, environment) for _ in range(runs + 1)]
    return times[0], times[1:]


def latency(files: int) -> list[float]:
    from predictflow.local.stack import LocalStack

    line = (ROOT / "events" / "records-good.csv").read_bytes().splitlines()[0] + b"\n"
    seconds = []
    with LocalStack() as stack:
        s3, results = stack.client("s3"), stack.results()
        for index in range(files):
            key = f"{stack.outputs['InputPrefix']}latency/{index}.csv"
            started = time.perf_counter()
            version = s3.put_object(Bucket=stack.outputs["InputBucketName"], Key=key, Body=line)["VersionId"]
            while (results.file(key, version) or {}).get("status") != "SUCCEEDED":
                if time.perf_counter() - started > 30:
                    raise TimeoutError(key)
                time.sleep(0.002)
            seconds.append(time.perf_counter() - started)
    return seconds


def where_the_time_goes(path: Path) -> dict[str, Any]:
    """A stack started as `local run` starts it: seconds to start and deploy, then upload to
    SUCCEEDED in wall seconds, CPU seconds of the whole process, and CPU seconds per function
    (its handler threads). The rest of the CPU is moto (S3, DynamoDB, EventBridge), the Step
    Functions interpreter and the Lambda invoke path around the handlers. Invocations
    overlap, so CPU, not wall time, is what adds up."""
    from predictflow.local.stack import LocalStack

    spent: dict[str, float] = collections.defaultdict(float)
    began = time.perf_counter()
    with LocalStack(publish_outputs=False) as stack:
        start_seconds = time.perf_counter() - began

        def record(invocation: Any) -> None:
            name = invocation.function.split("-")[2].removesuffix("Function")
            action = invocation.event.get("action", "")
            spent[f"{name} {action}".strip()] += invocation.cpu_seconds

        stack.invoker.on_invoke(record)
        started, cpu_started = time.perf_counter(), time.process_time()
        stack.upload(path)
        stack.wait_for_executions(1, timeout=600)
        total, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    spent["moto, Step Functions interpreter, invoke path"] = cpu - sum(spent.values())
    return {"start": start_seconds, "wall": total, "cpu": cpu, "cpu_by_part": dict(spent)}


def whole_process(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--latency-files", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    os.environ.setdefault("PREDICTFLOW_CACHE_DIR", tempfile.mkdtemp(prefix="predictflow-bench-"))
    cold, boots = start_up(args.runs)
    print(
        f"start-up (start + deploy of template.yaml): {cold:.2f} s with nothing cached; "
        f"then median {statistics.median(boots):.2f} s, max {max(boots):.2f} s"
    )
    waits = sorted(latency(args.latency_files))
    p95 = waits[int(len(waits) * 0.95) - 1]
    print(f"single-record file, upload to prediction: p50 {statistics.median(waits):.3f} s, p95 {p95:.3f} s")
    with tempfile.TemporaryDirectory() as scratch:
        path = records_file(Path(scratch), args.records)
        pairs = [
            (
                whole_process([*PREDICTFLOW, "predict", str(path), "-o", "/dev/null"]),
                whole_process([*PREDICTFLOW, "local", "run", str(path)]),
            )
            for _ in range(args.runs)
        ]
        profile = where_the_time_goes(path)
    predict, local = min(p for p, _ in pairs), min(r for _, r in pairs)
    print(f"{args.records:,} records, {args.runs} runs in turns (predict s, local run s, ratio):")
    for predict_seconds, local_seconds in pairs:
        print(f"  {predict_seconds:6.2f} {local_seconds:6.2f} {local_seconds / predict_seconds:5.2f}")
    print(f"best of each: predictflow predict {predict:.2f} s, ", end="")
    print(f"predictflow local run {local:.2f} s (ratio {local / predict:.2f}, target <= 4)")
    print(f"inside a local run: start and deploy {profile['start']:.2f} s, then upload to SUCCEEDED ", end="")
    print(f"{profile['wall']:.2f} s of wall time, {profile['cpu']:.2f} s of CPU on {os.cpu_count()} cores:")
    for name, seconds in sorted(profile["cpu_by_part"].items(), key=lambda item: -item[1]):
        print(f"  {name:46} {seconds:6.2f} s CPU")


if __name__ == "__main__":
    main()
