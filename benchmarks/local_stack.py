"""The local stack's numbers: start-up, single-record latency, and large-file throughput.

    python benchmarks/local_stack.py [--records 200000] [--latency-files 30] [--runs 3]

- start-up: `LocalStack().start()` (moto, the bridge, and the deploy of template.yaml, with
  its Outputs published as `local up` does), in a fresh process: once with an empty cache
  (the SAM transform runs) and then with the translated template cached;
- latency: single-record files uploaded one after another; upload to the file's ledger item
  saying SUCCEEDED (its predictions are stored by then), p50 and p95;
- throughput: one file of N records, `predictflow local run FILE` against
  `predictflow predict FILE -o /dev/null --jobs 1`, both as whole processes on one interpreter
  (the ratio issue 14 sets a goal for), with `predict` on every core beside them, run in turns
  so that all see the same machine; and where the local run's time goes (per function, from
  the invoker's timings). With `--baseline TREE` (another checkout, e.g. a `git worktree` of an
  earlier commit), that tree's `local run` runs in the same turns, so a change is measured
  against its baseline on the same machine at the same moments;
- the floor: `local run` of a one-record file in the same turns, the fixed cost (imports,
  moto's start, the deploy) that any file pays before its first record.

Every tree's sources are compiled first (`compileall`), so that no run pays for compiling
them where PYTHONDONTWRITEBYTECODE keeps the interpreter from caching its bytecode.

The benchmark keeps its own cache folder (PREDICTFLOW_CACHE_DIR), so runs are comparable.
"""

from __future__ import annotations

import argparse
import collections
import compileall
import itertools
import os
import resource
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
DENOMINATOR = "predict --jobs 1"

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
    """A stack started as `local run` starts it (but as the second stack of this process, after
    the latency one: its imports are done): seconds to start and deploy, then upload to
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


def whole_process(command: list[str], tree: Path = ROOT) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of `command` run with `tree`'s sources first on
    the path. CPU is the steadier figure where other work shares the machine."""
    environment = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(tree / "src"), os.environ.get("PYTHONPATH", "")])
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=tree, env=environment)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--latency-files", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--baseline", type=Path, help="Another checkout whose `local run` runs in the same turns."
    )
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
    for tree in [ROOT, *([args.baseline] if args.baseline else [])]:
        compileall.compile_dir(tree / "src", quiet=1)
        compileall.compile_dir(tree / "functions", quiet=1)
    with tempfile.TemporaryDirectory() as scratch:
        path = records_file(Path(scratch), args.records)
        one = records_file(Path(scratch), 1)
        runs: list[dict[str, tuple[float, float]]] = []
        for _ in range(args.runs):
            turn = {
                "predict --jobs 1": whole_process(
                    [*PREDICTFLOW, "predict", str(path), "-o", "/dev/null", "--jobs", "1"]
                ),
                "local run": whole_process([*PREDICTFLOW, "local", "run", str(path)]),
                "predict, every core": whole_process([*PREDICTFLOW, "predict", str(path), "-o", "/dev/null"]),
                "local run, 1 record": whole_process([*PREDICTFLOW, "local", "run", str(one)]),
            }
            if args.baseline is not None:
                turn["baseline"] = whole_process([*PREDICTFLOW, "local", "run", str(path)], args.baseline)
            runs.append(turn)
        profile = where_the_time_goes(path)
    names = list(runs[0])
    print(
        f"{args.records:,} records, {args.runs} runs in turns, wall s / CPU s "
        "(ratio to `predict --jobs 1`'s):"
    )
    print("  " + " | ".join(f"{name:>24}" for name in names))
    for turn in runs:
        cells = []
        for name in names:
            (wall, cpu), (predict_wall, predict_cpu) = turn[name], turn[DENOMINATOR]
            cells.append(f"{wall:5.2f} / {cpu:5.2f} ({wall / predict_wall:4.2f}, {cpu / predict_cpu:4.2f})")
        print("  " + " | ".join(f"{cell:>24}" for cell in cells))
    best = {name: (min(t[name][0] for t in runs), min(t[name][1] for t in runs)) for name in names}
    for name in names:
        wall, cpu = best[name]
        print(f"best {name}: {wall:.2f} s wall (ratio {wall / best[DENOMINATOR][0]:.2f}), ", end="")
        print(f"{cpu:.2f} s CPU (ratio {cpu / best[DENOMINATOR][1]:.2f})")
    print("(local run's target: <= 4 times predict's wall time; issue 14's goal: <= 2)")
    if args.baseline is not None:
        print(f"baseline: `local run` of {args.baseline}")
    print(f"inside a local run: start and deploy {profile['start']:.2f} s, then upload to SUCCEEDED ", end="")
    print(f"{profile['wall']:.2f} s of wall time, {profile['cpu']:.2f} s of CPU on {os.cpu_count()} cores:")
    for name, seconds in sorted(profile["cpu_by_part"].items(), key=lambda item: -item[1]):
        print(f"  {name:46} {seconds:6.2f} s CPU")


if __name__ == "__main__":
    main()
