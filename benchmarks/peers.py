"""`predictflow predict` against the script a competent user would write instead: whole processes,
1M Adult records, run in turns.

    python benchmarks/peers.py [--runs 3] [--records 1000000] [--data-dir DIR] [--one-cpu] [--json]
                               [--baseline SRC] [--jobs N]

The records are the training rows of model/data/adult.data repeated (headerless, the bundle's
field order, the income column included, as the census extract has it), made once and kept in
--data-dir (a folder in the temporary directory by default).

Contestants, each a fresh process, timed from outside (wall seconds) with its CPU seconds and
peak RSS as GNU time (or, without it, a small wrapper calling `os.wait4`) reports them (see
`measuring`): the CPU seconds of the process and its workers, the peak RSS of the largest one
alone. `predictflow predict` is a tree of processes (its workers, `--jobs`), so the tree is also
polled in /proc every 20 ms (`TreeSampler`) for each process's own peak (VmHWM; the largest
process's is wait4's): their sum is an upper bound of the tree's peak (each process at its own
peak at once, and the pages a forked worker shares with its parent counted once per process),
give or take what a worker added in its last 20 ms.

- `predictflow predict FILE -o OUT`, the console script, with this checkout's `src` first on the path,
  on every CPU the run may use (or `--jobs N`);
- `predictflow predict --jobs 1 FILE -o OUT`, the same in one process, whose output must be byte for
  byte the first one's;
- the polars peer (`peers.py peer polars FILE OUT`): `polars.read_csv` (no header, the bundle's
  field names, every column as text), each feature stripped of its surrounding spaces and encoded
  as predictflow encodes it (features.py): a category as its index in the bundle's vocabulary
  (read from bundle.json), a missing marker (`?`) as NaN, a number as float32; the float32 matrix
  through ONNX Runtime on one intra-op thread, as the embedded predictor runs it; then one JSON
  line per record, label (by the bundle's threshold) and probability, by `write_ndjson`;
- the pyarrow peer (when pyarrow is installed): the same, with `pyarrow.csv.read_csv` as the reader;
- with `--baseline SRC`, `predictflow predict` once more with SRC first on the path instead (another
  checkout's `src`, e.g. `git archive main src | tar -x -C /tmp/base`), to measure a change against
  the code before it in the same turns; its output must be byte for byte predictflow's.

Turns go predictflow, predictflow --jobs 1, polars, pyarrow, predictflow, ... after one untimed
warm-up turn, whose
outputs are checked to agree: as many predictions as records, probabilities within 1e-6, the same
labels (except where a probability is within 1e-6 of the threshold). The figures are only
comparable within one run: the turns are there because the machine may be shared.

The peers take no shortcut predictflow does not: every column is read and parsed, every feature
is stripped and looked up, an unknown category or a value that is not a number stops them (polars'
strict replace and cast), as a competent user's script would. What predictflow does that they do
not:

- it validates every value against the bundle (whole numbers, ranges, spellings), and a line that
  fails goes to the rejects with its line number and reason while the run goes on; a peer stops at
  the first value it cannot encode, takes any number in any range, and (polars' reader) scores an
  empty field as missing;
- it reads any layout (a header in any column order, JSON Lines, a BOM, CRLF, quoted fields,
  blank lines), decided from the file's head;
- it writes `line`, `model_version` and `actual` on every line besides label and probability
  (the probability as the float64 repr, 17 digits, where the peers write float32's shortest repr);
- it scores a labelled file's quality (accuracy, ROC AUC, log-loss) at the end;
- it reads, parses, scores and writes 1 MiB of the file at a time (holding neither the file nor
  its columns), where the peers hold every column of the file as text, then the whole matrix.
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import polars as pl

ROOT = Path(__file__).resolve().parent.parent
BUNDLE_DIR = ROOT / "src" / "predictflow" / "bundles" / "adult-income"
SOURCE = ROOT / "model" / "data" / "adult.data"
RECORDS = 1_000_000
TOLERANCE = 1e-6
PREDICTFLOW = "predictflow"
SEQUENTIAL = "predictflow-jobs-1"
BASELINE = "baseline"
PEERS = {"polars": "polars + ONNX Runtime", "pyarrow": "pyarrow CSV + polars + ONNX Runtime"}

# --------------------------------------------------------------------------------- the peers
# What a user who knows polars and ONNX Runtime writes to score the file; bundle.json is read
# for the field names, the vocabularies and the threshold, as it is the model's description.

BINARY_CODES = {"0": 0.0, "n": 0.0, "no": 0.0, "f": 0.0, "false": 0.0}
BINARY_CODES |= {"1": 1.0, "y": 1.0, "yes": 1.0, "t": 1.0, "true": 1.0}


def read_polars(path: Path, names: Sequence[str]) -> pl.DataFrame:
    import polars as pl

    return pl.read_csv(path, has_header=False, new_columns=list(names), infer_schema=False)


def read_pyarrow(path: Path, names: Sequence[str]) -> pl.DataFrame:
    import polars as pl
    import pyarrow as pa  # type: ignore[import-not-found, import-untyped, unused-ignore]
    from pyarrow import csv  # type: ignore[import-not-found, import-untyped, unused-ignore]

    table = csv.read_csv(
        path,
        read_options=csv.ReadOptions(column_names=list(names)),
        convert_options=csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
    )
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def features(fields: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [spec for spec in fields if spec.get("role", "feature") == "feature"]


def encode(frame: pl.DataFrame, fields: Sequence[Mapping[str, Any]]) -> npt.NDArray[np.float32]:
    """The model's float32 matrix from the file's text columns, as predictflow encodes them."""
    import numpy as np
    import polars as pl

    columns = []
    for spec in features(fields):
        text = pl.col(spec["name"]).str.strip_chars()
        missing = list(spec.get("missing", []))
        if spec["type"] == "category":
            codes = {category: float(code) for code, category in enumerate(spec["categories"])}
        elif spec["type"] == "binary":
            codes, text = BINARY_CODES, text.str.to_lowercase()
        elif spec["type"] in ("integer", "number"):
            codes = None
        else:
            raise SystemExit(f"{spec['name']}: this peer does not encode {spec['type']} fields")
        if codes is not None:
            value = text.replace_strict(codes | dict.fromkeys(missing, None), return_dtype=pl.Float32)
        elif missing:
            value = pl.when(text.is_in(missing)).then(None).otherwise(text).cast(pl.Float32)
        else:
            value = text.cast(pl.Float32)
        columns.append(value.fill_null(float("nan")) if missing else value)
    return np.ascontiguousarray(frame.select(columns).to_numpy(), dtype=np.float32)


def positive_probability(
    matrix: npt.NDArray[np.float32], bundle: Mapping[str, Any], bundle_dir: Path
) -> npt.NDArray[np.float32]:
    """P(positive label) per row, by ONNX Runtime on one thread, as the embedded predictor runs it."""
    import numpy as np
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    model = bundle["model"]
    session = onnxruntime.InferenceSession(
        str(bundle_dir / model["path"]), options, providers=["CPUExecutionProvider"]
    )
    (scores,) = session.run([model["output"]], {model["input"]: matrix})
    target = bundle["target"]
    return np.asarray(scores[:, target["labels"].index(target["positive"])])


def write_predictions(out: Path, probability: npt.NDArray[np.float32], target: Mapping[str, Any]) -> None:
    import polars as pl

    negative = next(label for label in target["labels"] if label != target["positive"])
    frame = pl.DataFrame({"probability": probability}).select(
        label=pl.when(pl.col("probability") >= target["threshold"])
        .then(pl.lit(target["positive"]))
        .otherwise(pl.lit(negative)),
        probability=pl.col("probability"),
    )
    frame.write_ndjson(out)


def peer(reader: str, path: Path, out: Path, bundle_dir: Path = BUNDLE_DIR) -> None:
    """The whole peer script."""
    bundle = json.loads((bundle_dir / "bundle.json").read_text())
    if bundle["target"]["task"] != "binary":
        raise SystemExit("this peer scores binary bundles")
    names = [spec["name"] for spec in bundle["fields"]]
    frame = (read_pyarrow if reader == "pyarrow" else read_polars)(path, names)
    matrix = encode(frame, bundle["fields"])
    del frame
    write_predictions(out, positive_probability(matrix, bundle, bundle_dir), bundle["target"])


# ------------------------------------------------------------------------------- the data


def make_data(folder: Path, records: int = RECORDS, source: Path = SOURCE) -> Path:
    """`records` lines of `source`'s records repeated, made once per folder."""
    data = source.read_bytes()
    path = folder / f"adult-{records}-{hashlib.sha256(data).hexdigest()[:12]}.csv"
    if path.exists():
        return path
    lines = [line for line in data.split(b"\n") if line.strip()]
    repeated = lines * (records // len(lines)) + lines[: records % len(lines)]
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    partial.write_bytes(b"\n".join(repeated) + b"\n")
    partial.replace(path)
    return path


# --------------------------------------------------------------------------- measuring


@dataclass
class Usage:
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    """The largest process's own peak (wait4's ru_maxrss, as GNU time's %M)."""
    tree_peak_rss_mib: float
    """The sum of every process's own peak, as `TreeSampler` last saw them, the largest's as
    wait4 gives it (0 without /proc)."""
    processes: int


@dataclass
class Measured:
    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    peak_rss_mib: list[float] = field(default_factory=list)
    tree_peak_rss_mib: list[float] = field(default_factory=list)
    processes: list[float] = field(default_factory=list)

    def add(self, usage: Usage) -> None:
        for name, value in asdict(usage).items():
            getattr(self, name).append(value)

    def medians(self) -> dict[str, float]:
        return {name: statistics.median(values) for name, values in asdict(self).items()}


GNU_TIME = Path("/usr/bin/time")
USAGE_FORMAT = "%M %U %S"
WRAPPER = """
import os, sys
report, command = sys.argv[1], sys.argv[2:]
pid = os.posix_spawn(command[0], command, os.environ)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as out:
    out.write(f"{usage.ru_maxrss} {usage.ru_utime} {usage.ru_stime}\\n")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""
"""Reports a command's peak RSS (KiB) and CPU seconds as `USAGE_FORMAT` does, where GNU time is not."""


def measuring(report: Path, wrapper: bool | None = None) -> list[str]:
    """What to put before a command so that its own usage lands in `report`.

    Not `os.wait4` on a child of this process: Linux keeps a process's peak RSS across `exec`, so
    a child spawned by a large parent (this one, once it has read the outputs) reports at least
    the parent's peak. GNU time, or a small wrapper, spawns the command from a small process."""
    if wrapper is None:
        wrapper = not GNU_TIME.exists()
    if wrapper:
        return [sys.executable, "-S", "-c", WRAPPER, str(report)]
    return [str(GNU_TIME), "-f", USAGE_FORMAT, "-o", str(report)]


PROC = Path("/proc")


class TreeSampler(threading.Thread):
    """Every `interval` seconds, each descendant of `root` and its own peak RSS so far (VmHWM,
    KiB), kept per process id: the last value seen is the process's peak, up to what it reached
    in its last `interval` (a worker's memory is steady by the time the run ends).

    The root itself (GNU time, or the wrapper) is not counted. Polled from another thread, so
    that the wall time is the command's, not rounded up to the next poll."""

    def __init__(self, root: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peaks: dict[int, int] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            self.sample()
            if self.done.wait(self.interval):
                return

    def sample(self) -> None:
        for pid in descendants(self.root):
            try:
                status = (PROC / str(pid) / "status").read_text()
            except OSError:  # ended since it was listed: its last sample stands
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self.peaks[pid] = max(self.peaks.get(pid, 0), int(line.split()[1]))

    def stop(self) -> None:
        self.done.set()
        self.join()


def descendants(root: int) -> list[int]:
    """The processes below `root` (any of their threads' children), from /proc."""
    found: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            tasks = list((PROC / str(pid) / "task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
            found.extend(children)
            todo.extend(children)
    return found


def run_measured(
    command: Sequence[str], environment: Mapping[str, str], log: Path, *, wrapper: bool | None = None
) -> Usage:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one fresh process and its tree."""
    report = log.with_suffix(".usage")
    with log.open("wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            [*measuring(report, wrapper), *command],
            env=dict(environment),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        sampler = TreeSampler(process.pid)
        if PROC.is_dir():
            sampler.start()
        try:
            returncode = process.wait()
            wall = time.perf_counter() - started
        finally:
            if sampler.is_alive():
                sampler.stop()
    if returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"{' '.join(command)} ended with {returncode}:\n" + "\n".join(tail))
    kib, user, system = report.read_text().split()[-3:]  # GNU time puts a note before a failure's
    peaks = sorted(sampler.peaks.values())
    if peaks:
        # The largest process's peak is known exactly (wait4); a poll may have missed its last
        # 20 ms. The others' are as last polled.
        peaks[-1] = max(peaks[-1], int(kib))
    return Usage(
        wall_s=wall,
        cpu_s=float(user) + float(system),
        peak_rss_mib=int(kib) / 1024,
        tree_peak_rss_mib=sum(peaks) / 1024,
        processes=len(peaks),
    )


def commands(
    data: Path,
    work: Path,
    readers: Sequence[str],
    baseline: Path | None = None,
    jobs: int | None = None,
    sequential: bool = True,
) -> dict[str, list[str]]:
    """Each contestant's command. `jobs` goes to this checkout's predictflow only (a baseline
    from before `--jobs` would refuse it); `sequential` adds predictflow with `--jobs 1`."""
    script = Path(sys.executable).parent / "predictflow"
    cli = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from predictflow.cli import main; main()"]
    )
    parallel = ["--jobs", str(jobs)] if jobs is not None else []
    out = {PREDICTFLOW: [*cli, "predict", str(data), *parallel, "-o", str(work / f"{PREDICTFLOW}.jsonl")]}
    if sequential:
        out[SEQUENTIAL] = [*cli, "predict", str(data), "--jobs", "1", "-o", str(work / f"{SEQUENTIAL}.jsonl")]
    if baseline is not None:
        out[BASELINE] = [*cli, "predict", str(data), "-o", str(work / f"{BASELINE}.jsonl")]
    for reader in readers:
        out[reader] = [sys.executable, __file__, "peer", reader, str(data), str(work / f"{reader}.jsonl")]
    return out


def agreement(ours: Path, theirs: Path, records: int) -> dict[str, float]:
    """How the peer's output compares with predictflow's; raises SystemExit when they disagree."""
    import polars as pl

    mine = pl.read_ndjson(ours, schema={"line": pl.Int64, "label": pl.String, "probability": pl.Float64})
    other = pl.read_ndjson(theirs, schema={"label": pl.String, "probability": pl.Float64})
    if not len(mine) == len(other) == records:
        raise SystemExit(f"{len(mine)} predictions from predictflow, {len(other)} from {theirs.name}")
    if not mine["line"].is_sorted():
        raise SystemExit("predictflow's lines are not in file order")
    gap = (mine["probability"] - other["probability"]).abs()
    near = (mine["probability"] - 0.5).abs() <= TOLERANCE  # the Adult bundle's threshold
    labels_differ = int(((mine["label"] != other["label"]) & ~near).sum())
    largest = float(gap.to_numpy().max())
    if largest > TOLERANCE or labels_differ:
        raise SystemExit(
            f"{theirs.name}: probabilities differ by up to {largest:.3g}, {labels_differ} labels differ"
        )
    return {"max_abs_probability_gap": largest, "labels_differ": labels_differ}


def same_bytes(one: Path, other: Path) -> bool:
    """Whether two files hold the same bytes, read a block at a time."""
    if one.stat().st_size != other.stat().st_size:
        return False
    with one.open("rb") as first, other.open("rb") as second:
        while block := first.read(1 << 20):
            if block != second.read(len(block)):
                return False
    return True


def readers_available() -> list[str]:
    import importlib.util

    return ["polars"] + (["pyarrow"] if importlib.util.find_spec("pyarrow") else [])


def with_source(src: Path) -> dict[str, str]:
    """This process's environment with `src` first on the path."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])])
    return environment


def benchmark(
    data: Path,
    records: int,
    work: Path,
    runs: int,
    readers: Sequence[str],
    log: Any = sys.stderr,
    baseline: Path | None = None,
    jobs: int | None = None,
) -> dict[str, Any]:
    # Compiled first, so that no turn pays for compiling the package where the environment keeps
    # the interpreter from caching bytecode (PYTHONDONTWRITEBYTECODE).
    for src in [ROOT / "src", *([baseline] if baseline is not None else [])]:
        compileall.compile_dir(src, quiet=1)
    environment = with_source(ROOT / "src")
    environments = {BASELINE: with_source(baseline)} if baseline is not None else {}
    to_run = commands(data, work, readers, baseline, jobs, sequential=jobs != 1)
    measured = {name: Measured() for name in to_run}
    checks: dict[str, dict[str, float]] = {}
    load_before = os.getloadavg()
    for turn in range(runs + 1):  # turn 0 warms the caches, and its outputs are checked
        for name, command in to_run.items():
            Path(command[-1]).unlink(missing_ok=True)
            usage = run_measured(command, environments.get(name, environment), work / f"{name}.stderr")
            print(
                f"{'warm-up' if turn == 0 else f'turn {turn}'}: {name} {usage.wall_s:.2f} s, "
                f"{usage.peak_rss_mib:.0f} MiB; {usage.processes} process(es), "
                f"{usage.tree_peak_rss_mib:.0f} MiB at their peaks",
                file=log,
            )
            if turn:
                measured[name].add(usage)
        if turn == 0:
            if SEQUENTIAL in to_run and not same_bytes(
                Path(to_run[PREDICTFLOW][-1]), Path(to_run[SEQUENTIAL][-1])
            ):
                raise SystemExit("predictflow's output differs with --jobs 1")
            if baseline is not None and not same_bytes(
                Path(to_run[PREDICTFLOW][-1]), Path(to_run[BASELINE][-1])
            ):
                raise SystemExit(f"predictflow's output differs from the baseline's ({baseline})")
            for reader in readers:
                checks[reader] = agreement(Path(to_run[PREDICTFLOW][-1]), Path(to_run[reader][-1]), records)
    medians = {name: m.medians() for name, m in measured.items()}
    ours = medians[PREDICTFLOW]["wall_s"]
    compared = {reader: ours / medians[reader]["wall_s"] for reader in readers}
    for other in (SEQUENTIAL, BASELINE):
        if other in medians:
            compared[other] = ours / medians[other]["wall_s"]
    return {
        "records": records,
        "data": str(data),
        "runs": runs,
        "cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "median": medians,
        "ratio_predictflow_to": compared,
        "jobs": jobs,
        **({"baseline": str(baseline)} if baseline is not None else {}),
        "each_run": {name: asdict(m) for name, m in measured.items()},
        "agreement": checks,
    }


def table(results: Mapping[str, Any]) -> str:
    rows = [
        f"{results['records']:,} records, median of {results['runs']} runs in turns, whole processes "
        f"(CPUs {results['cpus']}, load average {results['load_average_before_after']})",
        f"{'':36} {'wall s':>7} {'predictflow/this':>17} {'CPU s':>7} {'peak RSS MiB':>13} "
        f"{'processes':>9} {'sum of peaks MiB':>17}",
    ]
    jobs = f" --jobs {results['jobs']}" if results.get("jobs") is not None else ""
    labels = {
        PREDICTFLOW: f"predictflow predict{jobs}",
        SEQUENTIAL: "predictflow predict --jobs 1",
        BASELINE: "predictflow predict, baseline",
    }
    for name, median in results["median"].items():
        label = labels.get(name, PEERS.get(name, name))
        ratio = "" if name == PREDICTFLOW else f"{results['ratio_predictflow_to'][name]:.2f}x"
        wall, cpu, rss = median["wall_s"], median["cpu_s"], median["peak_rss_mib"]
        tree = f"{median['tree_peak_rss_mib']:17.0f}" if median["processes"] else f"{'n/a':>17}"
        rows.append(
            f"{label:36} {wall:7.2f} {ratio:>17} {cpu:7.2f} {rss:13.0f} {median['processes']:9.0f} {tree}"
        )
    rows.append(
        "peak RSS: the largest process's own; sum of peaks: each process's own peak (the largest's "
        "as above, the others' polled every 20 ms) added up, an upper bound of the tree's peak "
        "(pages a worker shares with its parent count once per process)"
    )
    for reader, check in results["agreement"].items():
        rows.append(
            f"{PEERS[reader]} agrees with predictflow: probabilities within "
            f"{check['max_abs_probability_gap']:.2g}, {check['labels_differ']} labels differ"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["peer"]:
        parser = argparse.ArgumentParser(prog="peers.py peer", description="One peer script run.")
        parser.add_argument("reader", choices=sorted(PEERS))
        parser.add_argument("file", type=Path)
        parser.add_argument("out", type=Path)
        parser.add_argument("--model", type=Path, default=BUNDLE_DIR)
        args = parser.parse_args(argv[1:])
        peer(args.reader, args.file, args.out, args.model)
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="timed turns [default: 3]")
    parser.add_argument("--records", type=int, default=RECORDS, help="records in the file [default: 1M]")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "predictflow-peers",
        help="where the record file is made once and kept [default: a folder in the temporary directory]",
    )
    parser.add_argument("--one-cpu", action="store_true", help="pin every process to one CPU")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also run `predictflow predict` with this `src` folder first on the path, in the same turns",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        help="predictflow's --jobs [default: its own, every CPU]; other than 1, predictflow --jobs 1 "
        "runs too, in the same turns",
    )
    args = parser.parse_args(argv)
    if args.one_cpu:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # inherited by every child
    data = make_data(args.data_dir, args.records)
    with tempfile.TemporaryDirectory(prefix="predictflow-peers-", dir=args.data_dir) as work:
        results = benchmark(
            data,
            args.records,
            Path(work),
            args.runs,
            readers_available(),
            baseline=args.baseline,
            jobs=args.jobs,
        )
    print(json.dumps(results, indent=2) if args.json else table(results))


if __name__ == "__main__":
    main()
