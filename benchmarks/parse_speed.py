"""Parse + validate + encode speed on one core: the byte-level path against the text path.

    python benchmarks/parse_speed.py [--records 1000000] [--rounds 5] [--profile] [--json]

1M Adult records (the training split, repeated, without its income column, as the pipeline
scores them) in chunks of 10,000 lines. Each round times the text path (`path="text"`: the
parser before the byte-level path, text fast path then `check_record`) and the byte-level path
(`parse_chunk`) over every chunk, in turns, so that both see the same machine. Before timing,
every chunk is checked to give the same outcome on both paths (matrix bit for bit).

Then the byte-level path stage by stage (`stages` of `_byte_path`), and with `--profile` the
functions the remaining time goes to.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from predictflow.bundle import default_bundle  # noqa: E402
from predictflow.records import Layout, _byte_path, _csv_layouts, parse_chunk, parse_chunk_reference  # noqa: E402

BATCH = 10_000
DATA = ROOT / "model" / "data" / "adult.data"


def chunks(records: int) -> list[bytes]:
    lines = [line.rsplit(b",", 1)[0] for line in DATA.read_bytes().splitlines() if line]
    lines = (lines * (records // len(lines) + 1))[:records]
    return [b"\n".join(lines[start : start + BATCH]) + b"\n" for start in range(0, records, BATCH)]


def text_path(data: bytes) -> object:
    return parse_chunk_reference(data, SCHEMA, path="text")


def byte_path(data: bytes) -> object:
    return parse_chunk(data, SCHEMA)


SCHEMA = default_bundle().schema
PATHS = {"text path (before)": text_path, "byte path": byte_path}


def seen(batch: object) -> tuple[object, ...]:
    return (
        batch.lines,  # type: ignore[attr-defined]
        batch.features.tobytes(),  # type: ignore[attr-defined]
        batch.rejections,  # type: ignore[attr-defined]
        batch.actual,  # type: ignore[attr-defined]
        batch.ids,  # type: ignore[attr-defined]
    )


def in_turns(data: list[bytes], rounds: int) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {name: [] for name in PATHS}
    for _ in range(rounds):
        for name, parse in PATHS.items():
            started = time.perf_counter()
            for chunk in data:
                parse(chunk)
            seconds[name].append(time.perf_counter() - started)
    return seconds


def stages(data: list[bytes], rounds: int) -> dict[str, float]:
    """Seconds per stage of the byte-level path over all chunks (median of rounds), and the
    rest of `parse_chunk` (handing back lines, merging) as what the stages do not cover."""
    by_width, _ = _csv_layouts(Layout("csv"), SCHEMA)
    totals: list[dict[str, float]] = []
    for _ in range(rounds):
        total: dict[str, float] = {}
        for chunk in data:
            _byte_path(chunk, SCHEMA, by_width, None, 1, stages=total)
        totals.append(total)
    return {name: statistics.median(total[name] for total in totals) for name in totals[0]}


def profile(data: list[bytes]) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for chunk in data:
        byte_path(chunk)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    data = chunks(args.records)
    for chunk in data[:3]:
        assert seen(byte_path(chunk)) == seen(text_path(chunk)), "the paths disagree"
        assert len(byte_path(chunk).lines) == BATCH  # type: ignore[attr-defined]
    seconds = in_turns(data, args.rounds)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    results: dict[str, object] = {
        "records": args.records,
        "rounds": args.rounds,
        "seconds_median": medians,
        "seconds_all": seconds,
        "speedup": medians["text path (before)"] / medians["byte path"],
        "byte_path_stages_seconds": stages(data, args.rounds),
    }
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"parse + validate + encode, {args.records:,} Adult records, chunks of {BATCH:,}, 1 core")
        for name, median in medians.items():
            runs = ", ".join(f"{value:.3f}" for value in seconds[name])
            print(f"  {name:20s} {median:6.3f} s  ({args.records / median:,.0f} records/s; runs: {runs})")
        print(f"  speed-up: {results['speedup']:.2f}x")
        print("byte path by stage (seconds over all records, median of rounds):")
        stage_seconds = results["byte_path_stages_seconds"]
        assert isinstance(stage_seconds, dict)
        for name, value in stage_seconds.items():
            print(f"  {name:28s} {value:6.3f} s")
    if args.profile:
        print(profile(data))


if __name__ == "__main__":
    main()
