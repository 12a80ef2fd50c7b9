"""Load on the local stack: many files of mixed sizes at once, and conservation for each.

    python benchmarks/load.py [--files 1000] [--max-records 10000] [--workers 8]

File sizes are log-uniform between 1 and --max-records records (seeded), taken from the
training split with one bad line in every 50. All files are uploaded concurrently; each
file's latency runs from the start of its upload to its ledger item's `finished_at`.
Conservation: for every file, records == predicted + dead-lettered == the lines written.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import random
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def make_files(count: int, max_records: int, seed: int = 7) -> list[bytes]:
    lines = [
        line + b"\n" for line in (ROOT / "model" / "data" / "adult.data").read_bytes().splitlines() if line
    ]
    chooser = random.Random(seed)
    files = []
    for _ in range(count):
        size = round(10 ** chooser.uniform(0, math.log10(max_records)))
        start = chooser.randrange(0, len(lines) - size) if size < len(lines) else 0
        body = [lines[(start + i) % len(lines)] for i in range(size)]
        for i in range(49, size, 50):
            body[i] = b"not, a, record\n"
        files.append(b"".join(body))
    return files


def main() -> None:
    from predictflow.local.stack import LocalStack

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--max-records", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    files = make_files(args.files, args.max_records)
    expected = {f"incoming/load/{i:05d}.csv": body.count(b"\n") for i, body in enumerate(files)}
    with LocalStack() as stack:
        s3, results = stack.client("s3"), stack.results()
        bucket = stack.outputs["InputBucketName"]
        started_at: dict[str, float] = {}
        versions: dict[str, str] = {}

        def put(item: tuple[str, bytes]) -> None:
            key, body = item
            started_at[key] = time.time()
            versions[key] = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]

        began = time.time()
        with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(put, zip(expected, files, strict=True)))
        # The stack says when each execution ends; scanning the ledger while waiting would
        # take CPU from the run being measured.
        stack.wait_for_executions(len(expected), timeout=3600)
        elapsed = time.time() - began
        outcomes: dict[str, dict[str, Any]] = {
            item["source_key"]: item for item in results.files() if item["source_key"] in expected
        }
    latencies = sorted(
        datetime.fromisoformat(str(outcomes[key]["finished_at"])).timestamp() - started_at[key]
        for key in expected
    )

    def conserved(key: str, lines: int) -> bool:
        outcome = outcomes[key]
        return bool(outcome["records"] == lines == outcome["predicted"] + outcome["dead_lettered"])

    broken = [key for key, lines in expected.items() if not conserved(key, lines)]
    report = {
        "files": len(expected),
        "records": sum(expected.values()),
        "seconds": round(elapsed, 1),
        "records_per_second": round(sum(expected.values()) / elapsed),
        "files_per_second": round(len(expected) / elapsed, 2),
        "latency_p50_s": round(statistics.median(latencies), 2),
        "latency_p95_s": round(latencies[int(len(latencies) * 0.95) - 1], 2),
        "failed_executions": sum(1 for o in outcomes.values() if o["status"] != "SUCCEEDED"),
        "conservation_violations": broken,
    }
    print(json.dumps(report, indent=2))
    if broken:
        raise SystemExit(f"conservation broken for {len(broken)} files")


if __name__ == "__main__":
    main()
