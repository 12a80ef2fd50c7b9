"""Compiled-forest inference on 1M pre-encoded rows, one core: the layouts of the generated C
against each other and against ONNX Runtime, in turns in one process.

    python benchmarks/forest_speed.py [--model BUNDLE_DIR --data FILE] [--turns 5] [--flags] [--json]

Each variant is generated from the bundle's model.onnx by `predictflow.forest.codegen` and built
by `predictflow.forest.build.compile_library` for this machine (the shipped flags), then every
variant scores the same 1M rows (the sample encoded and repeated) once per turn, in turn; the
figure is the median over turns. Every variant's raw sums must equal the goto layout's bit for
bit, or the script stops. `--flags` adds builds with -O3 and -march=native, to measure only: the
shipped libraries must run on any x86-64 and any arm64 machine, so they never get -march.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from predictflow.bundle import Bundle, default_bundle, load_bundle  # noqa: E402
from predictflow.forest.build import compile_library  # noqa: E402
from predictflow.forest.codegen import ROWS, c_source  # noqa: E402
from predictflow.forest.runtime import CompiledForest, platform_key  # noqa: E402
from predictflow.forest.trees import read_ensemble  # noqa: E402
from predictflow.predictors import EmbeddedPredictor  # noqa: E402
from predictflow.records import parse_chunk  # noqa: E402

ROWS_SCORED = 1_000_000
# (name, layout, rows walked together, extra compiler flags); the first is the reference.
VARIANTS: list[tuple[str, str, int, tuple[str, ...]]] = [
    ("goto, row by row (before)", "goto", 1, ()),
    *((f"branch-free, {n} rows together", "branch-free", n, ()) for n in (1, 2, 4, 8, 16)),
]
FLAG_VARIANTS: list[tuple[str, str, int, tuple[str, ...]]] = [
    ("goto, row by row, -O3", "goto", 1, ("-O3",)),
    ("goto, row by row, -march=native", "goto", 1, ("-march=native",)),
    (f"branch-free, {ROWS} rows, -O3", "branch-free", ROWS, ("-O3",)),
    (f"branch-free, {ROWS} rows, -march=native", "branch-free", ROWS, ("-march=native",)),
]


def encoded_rows(bundle: Bundle, data: Path, header: bool) -> np.ndarray:
    lines = [line for line in data.read_bytes().splitlines() if line]
    if not header:
        lines = [line.rsplit(b",", 1)[0] for line in lines]  # unlabelled, as the pipeline scores
    features = parse_chunk(b"\n".join(lines), bundle.schema).features
    return np.ascontiguousarray(np.resize(features, (ROWS_SCORED, features.shape[1])), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, help="a bundle folder [default: the Adult bundle]")
    parser.add_argument("--data", type=Path, help="a CSV with a header for --model")
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--flags", action="store_true", help="also -O3 and -march=native (measuring only)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    bundle = load_bundle(args.model) if args.model else default_bundle()
    assert bundle.model_bytes is not None, "the bundle has no ONNX model"
    model = bundle.model_bytes
    sha = hashlib.sha256(model).hexdigest()
    ensemble = read_ensemble(model, bundle.spec.model.input, bundle.spec.model.output)
    rows = encoded_rows(
        bundle, args.data or ROOT / "model" / "data" / "adult.data", header=args.data is not None
    )
    arch = platform_key().split("-", 1)[1]
    runs: dict[str, Callable[[], np.ndarray]] = {}
    sizes: dict[str, dict[str, int]] = {}
    for name, layout, together, extra in VARIANTS + (FLAG_VARIANTS if args.flags else []):
        source = c_source(ensemble, sha, layout, together)
        library = compile_library(source, arch, extra)
        assert library is not None, f"no C compiler for {arch}"
        forest = CompiledForest(library, sha)
        runs[name] = lambda forest=forest: forest.raw(rows)  # type: ignore[misc]
        sizes[name] = {"source_bytes": len(source.encode()), "library_bytes": len(library)}
    reference = next(iter(runs.values()))()
    for name, run in runs.items():
        assert np.array_equal(run(), reference), f"{name} sums differ from the goto layout's"
    ort = EmbeddedPredictor(bundle, compiled=False)
    runs["onnxruntime (scores, 1 thread)"] = lambda: ort.scores(rows, validated=True)
    timings: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.turns):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - started)
    results: dict[str, Any] = {
        name: {"s_per_1m_median": statistics.median(t), "s_min": min(t), "s_max": max(t)}
        | sizes.get(name, {})
        for name, t in timings.items()
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{len(ensemble.trees)} trees, {ROWS_SCORED:,} rows, {args.turns} turns, one core ({arch})")
    for name, result in results.items():
        size = (
            f", source {result['source_bytes']:,} B, library {result['library_bytes']:,} B"
            if name in sizes
            else ""
        )
        print(
            f"{name}: {result['s_per_1m_median']:.3f} s median "
            f"({result['s_min']:.3f}-{result['s_max']:.3f}){size}"
        )


if __name__ == "__main__":
    main()
