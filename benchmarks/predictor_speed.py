"""Embedded predictor speed on one core, for the default Adult bundle or any other.

    python benchmarks/predictor_speed.py [--model BUNDLE_DIR --data FILE] [--json]

- throughput: raw record lines -> parse + validate + encode + predict, batches of 10,000, for
  the backend the bundle gets (`compiled-forest` where it carries a library for this machine)
  and for ONNX Runtime, measured in turns in the same process
- inference: 1M pre-encoded rows (the sample repeated), compiled forest against ONNX Runtime, in turns
- single record: p50 / p99 of `predict_rows(predictor, [row])` (validation included)
- cold start: a fresh interpreter importing the predict handler module and making the
  predictor of the bundle it serves (the packaged default), in Lambda's environment
  (LAMBDA_TASK_ROOT set, tracing on); with the modules' bytecode (compiled first, as the layer
  ships its cold-start modules), and without any (PYTHONPYCACHEPREFIX an empty folder): what
  each cold start costs when a layer ships none, since Lambda cannot write it to /opt

The process is pinned to one CPU (ONNX Runtime runs one thread anyway).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from fresh_process import seconds_printed_by  # noqa: E402

from predictflow.bundle import Bundle, default_bundle, load_bundle  # noqa: E402
from predictflow.features import decode  # noqa: E402
from predictflow.predictions import predict_rows  # noqa: E402
from predictflow.predictors import EmbeddedPredictor  # noqa: E402
from predictflow.records import parse_chunk  # noqa: E402

BATCH = 10_000


def sample_lines(data: Path, header: bool) -> list[bytes]:
    """Record lines without the target column: the benchmark scores unlabelled records, as the
    pipeline does. With `header`, the file's first line names the columns (kept aside)."""
    lines = [line for line in data.read_bytes().splitlines() if line]
    if header:
        return lines
    return [line.rsplit(b",", 1)[0] for line in lines]


def throughput(predictor: EmbeddedPredictor, lines: list[bytes], rounds: int = 20) -> dict[str, float]:
    schema = predictor.bundle.schema
    head, body = (lines[:1], lines[1:]) if lines and predictor.bundle is not default_bundle() else ([], lines)
    while len(body) < 3 * BATCH:
        body = body + body
    batches = [b"\n".join(head + body[start : start + BATCH]) for start in range(0, 3 * BATCH, BATCH)]
    for data in batches:  # warm-up
        predictor.scores(parse_chunk(data, schema).features)
    timings = []
    for round_ in range(rounds):
        data = batches[round_ % len(batches)]
        started = time.perf_counter()
        batch = parse_chunk(data, schema)
        predictor.scores(batch.features)
        timings.append(time.perf_counter() - started)
        assert len(batch) == BATCH, batch.rejections[:3]
    median = statistics.median(timings)
    return {"batch_ms_median": median * 1000, "records_per_second": BATCH / median}


def inference(
    predictors: dict[str, EmbeddedPredictor], lines: list[bytes], turns: int = 3
) -> dict[str, float]:
    """Seconds per 1M pre-encoded rows, median of `turns`, each backend in turn."""
    import numpy as np

    some = next(iter(predictors.values()))
    features = parse_chunk(b"\n".join(lines), some.bundle.schema).features
    rows = np.ascontiguousarray(np.resize(features, (1_000_000, features.shape[1])), dtype=np.float32)
    timings: dict[str, list[float]] = {name: [] for name in predictors}
    for _ in range(turns):
        for name, predictor in predictors.items():
            started = time.perf_counter()
            predictor.scores(rows, validated=True)
            timings[name].append(time.perf_counter() - started)
    return {f"{name}_s_per_1m": statistics.median(times) for name, times in timings.items()}


def single_record(predictor: EmbeddedPredictor, lines: list[bytes], calls: int = 2000) -> dict[str, float]:
    schema = predictor.bundle.schema
    rows = decode(schema, parse_chunk(b"\n".join(lines[: calls + 1]), schema).features)[:calls]
    for row in rows[:100]:
        predict_rows(predictor, [row])
    timings = []
    for row in rows:
        started = time.perf_counter()
        predict_rows(predictor, [row])
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
module.bundles.predictor(module.bundles.active_version())
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
        # As Lambda runs the handler, tracing on: outside Lambda (no LAMBDA_TASK_ROOT) the X-Ray
        # SDK's recorder builds a sampler that makes two botocore clients at import, about
        # 0.11 s that a Lambda container never spends (its recorder samples locally).
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "predict"),
        "AWS_LAMBDA_FUNCTION_NAME": "predict",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    }
    environment.pop("POWERTOOLS_TRACE_DISABLED", None)
    compileall.compile_dir(ROOT / "src", quiet=1)
    compileall.compile_dir(ROOT / "functions", quiet=1)
    seconds = [seconds_printed_by(COLD_START, ROOT, environment) for _ in range(runs)]
    with tempfile.TemporaryDirectory() as nothing:
        uncompiled = environment | {"PYTHONPYCACHEPREFIX": nothing, "PYTHONDONTWRITEBYTECODE": "1"}
        without = [seconds_printed_by(COLD_START, ROOT, uncompiled) for _ in range(runs)]
    return {
        "import_and_load_s_median": statistics.median(seconds),
        "import_and_load_s_max": max(seconds),
        "import_and_load_s_median_without_bytecode": statistics.median(without),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, help="a bundle folder [default: the Adult bundle]")
    parser.add_argument("--data", type=Path, help="a CSV with a header for --model")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    bundle: Bundle = load_bundle(args.model) if args.model else default_bundle()
    predictor = EmbeddedPredictor(bundle)
    predictors = {predictor.backend: predictor}
    if predictor.backend != "onnxruntime":
        predictors["onnxruntime"] = EmbeddedPredictor(bundle, compiled=False)
    lines = (
        sample_lines(args.data, header=True)
        if args.model
        else sample_lines(ROOT / "model" / "data" / "adult.data", False)
    )
    turns = {name: throughput(p, lines) for name, p in predictors.items()}  # warm both first
    turns = {name: throughput(p, lines) for name, p in predictors.items()}
    results: dict[str, Any] = {
        "backend": {"used": predictor.backend, "note": predictor.backend_note},
        "throughput": turns[predictor.backend],
        "throughput_by_backend": turns,
        "inference": inference(predictors, lines),
        "single_record": single_record(predictor, lines[1:] if args.model else lines),
        "cold_start": cold_start(),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    s, c = results["single_record"], results["cold_start"]
    print(
        f"backend: {predictor.backend}" + (f" ({predictor.backend_note})" if predictor.backend_note else "")
    )
    for name, t in turns.items():
        print(
            f"throughput, batches of {BATCH:,} (parse+encode+predict, 1 core), {name}: "
            f"{t['records_per_second']:,.0f} records/s ({t['batch_ms_median']:.1f} ms per batch)"
        )
    for key, seconds in results["inference"].items():
        print(f"inference, 1M pre-encoded rows, {key.removesuffix('_s_per_1m')}: {seconds:.3f} s")
    print(f"single record: p50 {s['p50_ms']:.3f} ms, p99 {s['p99_ms']:.3f} ms")
    print(
        f"predict handler import + model load, fresh process: median {c['import_and_load_s_median']:.3f} s, "
        f"max {c['import_and_load_s_max']:.3f} s; without bytecode: median "
        f"{c['import_and_load_s_median_without_bytecode']:.3f} s"
    )


if __name__ == "__main__":
    main()
