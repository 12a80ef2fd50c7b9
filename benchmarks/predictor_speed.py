"""Embedded predictor speed on one core: the numbers issue 2 asks for.

    python benchmarks/predictor_speed.py [--json]

- throughput: raw record lines -> parse + validate + encode + ONNX Runtime, batches of 10,000
- single record: p50 / p99 of `EmbeddedPredictor.predict([row])` (validation included)
- cold start: a fresh interpreter importing the predict handler module and loading the model

The process is pinned to one CPU (ONNX Runtime runs one thread anyway).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from fresh_process import seconds_printed_by  # noqa: E402

from predictflow.predictors import EmbeddedPredictor  # noqa: E402
from predictflow.records import parse_chunk  # noqa: E402

BATCH = 10_000


def sample_lines() -> list[bytes]:
    lines = (ROOT / "model" / "data" / "adult.data").read_bytes().splitlines()
    # Drop the label column: the benchmark scores unlabelled records, as the pipeline does.
    return [line.rsplit(b",", 1)[0] for line in lines if line]


def throughput(predictor: EmbeddedPredictor, lines: list[bytes], rounds: int = 20) -> dict[str, float]:
    batches = [b"\n".join(lines[start : start + BATCH]) for start in range(0, 3 * BATCH, BATCH)]
    for data in batches:  # warm-up
        predictor.probabilities(parse_chunk(data).features)
    timings = []
    for round_ in range(rounds):
        data = batches[round_ % len(batches)]
        started = time.perf_counter()
        batch = parse_chunk(data)
        predictor.probabilities(batch.features)
        timings.append(time.perf_counter() - started)
        assert len(batch) == BATCH
    median = statistics.median(timings)
    return {"batch_ms_median": median * 1000, "records_per_second": BATCH / median}


def single_record(predictor: EmbeddedPredictor, lines: list[bytes], calls: int = 2000) -> dict[str, float]:
    rows = parse_chunk(b"\n".join(lines[:calls])).rows()
    for row in rows[:100]:
        predictor.predict([row])
    timings = []
    for row in rows:
        started = time.perf_counter()
        predictor.predict([row])
        timings.append(time.perf_counter() - started)
    timings.sort()
    return {"p50_ms": timings[len(timings) // 2] * 1000, "p99_ms": timings[int(len(timings) * 0.99)] * 1000}


COLD_START = """
import time
started = time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("app", "functions/predict/app.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(time.perf_counter() - started)
"""


def cold_start(runs: int = 5) -> dict[str, float]:
    environment = os.environ | {
        "PREDICTFLOW_OUTPUT_BUCKET": "bench",
        "PREDICTFLOW_PREDICTIONS_PREFIX": "predictions/",
        "PREDICTFLOW_WORK_PREFIX": "work/",
        "PREDICTFLOW_DEAD_LETTER_TABLE": "bench",
        "PREDICTFLOW_LEDGER_TABLE": "bench",
        "PREDICTFLOW_MAX_FILE_BYTES": "1000000",
        "PREDICTFLOW_CHUNK_BYTES": "1000000",
        "PREDICTFLOW_PREDICTOR_BACKEND": "embedded",
        "POWERTOOLS_SERVICE_NAME": "predictflow",
        "POWERTOOLS_METRICS_NAMESPACE": "predictflow",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": str(ROOT / "src"),
    }
    seconds = [seconds_printed_by(COLD_START, ROOT, environment) for _ in range(runs)]
    return {"import_and_load_s_median": statistics.median(seconds), "import_and_load_s_max": max(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    predictor = EmbeddedPredictor()
    lines = sample_lines()
    results = {
        "throughput": throughput(predictor, lines),
        "single_record": single_record(predictor, lines),
        "cold_start": cold_start(),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    t, s, c = results["throughput"], results["single_record"], results["cold_start"]
    print(
        f"throughput, batches of {BATCH:,} (parse+encode+predict, 1 core): "
        f"{t['records_per_second']:,.0f} records/s ({t['batch_ms_median']:.1f} ms per batch)"
    )
    print(f"single record: p50 {s['p50_ms']:.3f} ms, p99 {s['p99_ms']:.3f} ms")
    print(
        f"predict handler import + model load, fresh process: median {c['import_and_load_s_median']:.3f} s, "
        f"max {c['import_and_load_s_max']:.3f} s"
    )


if __name__ == "__main__":
    main()
