"""Filtered dead-letter listings on a large table: `dead-letters --error-type T` and
`--source K` end to end, in-process, against the local stack.

    python benchmarks/dead_letters.py [--entries 50000] [--runs 3]

The table gets `--entries` entries (batch writes of 25, as Route writes them): 500 sources,
10 error types spread evenly, one rare type with 50 entries. Each listing runs the CLI
command (click's runner, JSON output) and is timed from invocation to its last line; the
whole-table listing (no filter, which still scans) is timed once beside them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

for name, value in {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ.setdefault(name, value)

from click.testing import CliRunner  # noqa: E402

from predictflow.cli import cli  # noqa: E402
from predictflow.local.stack import LocalStack  # noqa: E402
from predictflow.pipeline.stores import DeadLetter, DeadLetterStore, now  # noqa: E402

TYPES = [f"Type{i}" for i in range(10)]
RAW = "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 0, 0"


def fill(stack: LocalStack, entries: int) -> float:
    store = DeadLetterStore(stack.client("dynamodb"), stack.outputs["DeadLetterTableName"])
    bucket = stack.outputs["InputBucketName"]
    started = time.perf_counter()
    batch = []
    for n in range(entries):
        source, line = divmod(n, entries // 500)
        error_type = "Rare" if n % (entries // 50) == 0 else TYPES[n % len(TYPES)]
        batch.append(DeadLetter(bucket, f"incoming/source-{source:03d}.csv", "v1", line + 1, RAW, error_type,
                                "the value is out of range", "arn:bench", now()))  # fmt: skip
        if len(batch) == 2500:
            store.put(batch)
            batch = []
    store.put(batch)
    return time.perf_counter() - started


def timed(*args: str) -> tuple[float, int]:
    started = time.perf_counter()
    result = CliRunner().invoke(cli, ["--stack-name", "predictflow-local", "dead-letters", *args, "--json"])
    seconds = time.perf_counter() - started
    if result.exit_code != 0:
        raise SystemExit(result.output)
    return seconds, len(result.stdout.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    with LocalStack() as stack:
        print(f"wrote {options.entries:,} entries in {fill(stack, options.entries):.1f} s")
        for label, args in (
            ("--error-type Rare", ("--error-type", "Rare")),
            ("--error-type Type3", ("--error-type", "Type3")),
            ("--source incoming/source-123.csv", ("--source", "incoming/source-123.csv")),
        ):
            runs = [timed(*args) for _ in range(options.runs)]
            median = statistics.median(seconds for seconds, _ in runs)
            print(f"dead-letters {label}: {runs[0][1]:,} entries, median {median:.2f} s of {options.runs}")
        seconds, count = timed()
        print(f"dead-letters (no filter, scans): {count:,} entries, {seconds:.2f} s")


if __name__ == "__main__":
    main()
