"""`predictflow predict --jobs N`: worker processes score the chunks, and the output, the rejects
and the metrics are byte for byte those of `--jobs 1`; a worker's error is the sequential
path's error, and no worker outlives the run. Also the metrics from encoded targets, as
`predict_file` keeps them, against the metrics computed from the records' own values."""

from __future__ import annotations

import io
import itertools
import json
import math
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from predictflow import offline
from predictflow.bundle import Bundle, TargetSpec, load_bundle
from predictflow.cli import cli
from predictflow.cli.train import train
from predictflow.errors import RecordError, RejectReason
from predictflow.metrics import (
    encode_targets,
    evaluate,
    evaluate_encoded,
    macro_f1,
    multiclass_log_loss,
    roc_auc,
)
from predictflow.metrics import log_loss as binary_log_loss
from predictflow.predictors import EmbeddedPredictor, PredictorModelError
from predictflow.predictors.base import Predictor
from predictflow.records import Actual
from tests.fixtures import ADULT, ADULT_DATA, ARTICLE, HEADER, write_table

LABELLED = [line for line in ADULT_DATA.read_text().splitlines()[:1500] if line.strip()]
UNLABELLED = [line.rsplit(",", 1)[0] for line in LABELLED]
JOBS = 3


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 4 KiB and workers for any file: a test file of 100 KB is 25 chunks or more."""
    monkeypatch.setattr(offline, "BATCH_BYTES", 4096)
    monkeypatch.setattr(offline, "PARALLEL_MIN_BYTES", 0)


def run(
    path: Path, bundle: Bundle, jobs: int, predictor_of: offline.PredictorOf | None = None
) -> tuple[str, str, offline.BatchReport]:
    out, rejects = io.StringIO(), io.StringIO()
    report = offline.predict_file(path, out, rejects, bundle, jobs=jobs, predictor_of=predictor_of)
    return out.getvalue(), rejects.getvalue(), report


def same_as_sequential(path: Path, bundle: Bundle = ADULT) -> offline.BatchReport:
    """Run `path` with one job and with JOBS; assert the same bytes and report; return the latter."""
    lines, rejects, one = run(path, bundle, 1)
    parallel_lines, parallel_rejects, report = run(path, bundle, JOBS)
    assert parallel_lines == lines
    assert parallel_rejects == rejects
    assert (report.predicted, report.rejected, report.ignored_columns) == (
        one.predicted,
        one.rejected,
        one.ignored_columns,
    )
    assert report.quality == one.quality
    assert one.processes == {os.getpid()}
    assert os.getpid() not in report.processes, "the chunks were scored in the main process"
    return report


def write(path: Path, lines: Sequence[str | bytes], head: bytes = b"") -> Path:
    encoded = [line.encode() if isinstance(line, str) else line for line in lines]
    path.write_bytes(head + b"\n".join(encoded) + b"\n")
    return path


@pytest.mark.parametrize("records", ["json lines", "a header in another column order"])
def test_chunks_of_blank_lines_before_the_first_record_do_not_decide_the_layout(
    tmp_path: Path, records: str
) -> None:
    """Blank lines alone say nothing of a file: the chunk that holds its first line decides (a
    file that began with a chunk of them was read as plain CSV, its JSON lines all rejected)."""
    names = HEADER.split(", ")
    if records == "json lines":
        lines = [json.dumps(dict(zip(names, ARTICLE.split(", "), strict=True)))] * 20
    else:
        order = list(reversed(range(len(names))))
        lines = [", ".join(names[i] for i in order)] + [", ".join(ARTICLE.split(", ")[i] for i in order)] * 20
    report = same_as_sequential(write(tmp_path / "blank-first", lines, head=b"\n" * 10_000))
    assert (report.predicted, report.rejected) == (20, 0)


def test_a_labelled_headerless_file_gives_the_same_lines_and_metrics(tmp_path: Path) -> None:
    report = same_as_sequential(write(tmp_path / "labelled.csv", LABELLED))
    assert report.predicted == len(LABELLED)
    assert report.quality["records"] == len(LABELLED)
    assert report.quality["roc_auc"] > 0.8
    assert len(report.processes) >= 2, "one worker scored every chunk"


def test_a_file_with_a_header_gives_the_same_lines(tmp_path: Path) -> None:
    # The header is in the first chunk only: the later chunks are read with its layout (the
    # columns in the header's order), which the workers are given.
    names = HEADER.split(", ")
    order = list(reversed(range(len(names))))
    rows = [", ".join(line.split(", ")[i] for i in order) for line in UNLABELLED]
    report = same_as_sequential(
        write(tmp_path / "header.csv", [", ".join(names[i] for i in order), *rows], head=b"\xef\xbb\xbf")
    )
    assert (report.predicted, report.rejected) == (len(rows), 0)


def test_json_lines_give_the_same_lines(tmp_path: Path) -> None:
    names = HEADER.split(", ")
    records = [json.dumps(dict(zip(names, line.split(", "), strict=True))) for line in UNLABELLED]
    report = same_as_sequential(write(tmp_path / "records.jsonl", records))
    assert (report.predicted, report.rejected) == (len(records), 0)


def test_rejected_lines_are_reported_in_file_order(tmp_path: Path) -> None:
    bad: list[str | bytes] = [
        ARTICLE.replace("White", "Martian"),
        ARTICLE.replace("108435", "abc"),
        b"\xff\xfe not utf-8",
        "x" * 5000,  # longer than a chunk: a chunk of its own
        "",
    ]
    lines: list[str | bytes] = [item for i, line in enumerate(LABELLED) for item in (line, bad[i % 5])][:2000]
    path = write(tmp_path / "mixed.csv", lines)
    report = same_as_sequential(path)
    assert report.rejected == 4 * 200
    _, rejects, _ = run(path, ADULT, JOBS)
    numbers = [int(line.split(":")[1]) for line in rejects.splitlines()]
    assert numbers == sorted(numbers)
    assert len(numbers) == report.rejected


def test_an_empty_file_is_no_records(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    report = same_as_sequential(path)
    assert (report.predicted, report.rejected, report.quality) == (0, 0, {})


def test_a_small_file_is_scored_in_this_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "small.csv", LABELLED[:200])
    monkeypatch.setattr(offline, "PARALLEL_MIN_BYTES", path.stat().st_size + 1)
    _, _, report = run(path, ADULT, JOBS)
    assert report.processes == {os.getpid()}


def test_workers_are_forked_on_linux_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS offers fork, but its system libraries are not safe in a forked child."""
    path = write(tmp_path / "records.csv", LABELLED)
    monkeypatch.setattr(offline, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(sys, "platform", "darwin")
    _, _, report = run(path, ADULT, JOBS)
    assert report.processes == {os.getpid()}


def test_the_main_process_holds_a_few_chunks_not_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most WINDOW_PER_JOB chunks per worker are in flight: the main process reads the file no
    faster than the workers score it (8 MB of records in 64 KiB chunks, two workers)."""
    path = tmp_path / "big.csv"
    body = ("\n".join(UNLABELLED) + "\n").encode()  # no metrics: their arrays follow the file
    path.write_bytes(body * (8_000_000 // len(body)))
    size = path.stat().st_size
    monkeypatch.setattr(offline, "BATCH_BYTES", 64 * 1024)
    monkeypatch.setattr(offline, "PLAN_BLOCK_BYTES", 256 * 1024)
    with (tmp_path / "out.jsonl").open("w") as out:
        tracemalloc.start()
        try:
            report = offline.predict_file(path, out, None, ADULT, jobs=2)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert os.getpid() not in report.processes
    assert peak < size / 4, f"peak {peak / 1e6:.1f} MB reading {size / 1e6:.1f} MB"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Bundle]]:
    """A multiclass and a regression bundle, with the labelled table each was trained on."""
    folder = tmp_path_factory.mktemp("bundles")
    out = {}
    for task in ("multiclass", "regression"):
        data = write_table(folder / f"{task}.csv", task, rows=1200)
        options = ["--target", "y", "--id", "id", "--task", task, "--folds", "3", "--max-settings", "1"]
        result = CliRunner().invoke(
            train,
            [str(data), *options, "--out", str(folder / task)],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        out[task] = (data, load_bundle(folder / task))
    return out


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_other_tasks_give_the_same_lines_and_metrics(
    trained: dict[str, tuple[Path, Bundle]], task: str
) -> None:
    data, bundle = trained[task]
    report = same_as_sequential(data, bundle)
    assert report.predicted == 1200
    assert report.quality["records"] == 1200  # every row of the table has its y
    assert ("macro_f1" if task == "multiclass" else "rmse") in report.quality


# ------------------------------------------------------------------------------- errors


def no_workers_left() -> bool:
    return multiprocessing.active_children() == []


class Failing:
    """The embedded predictor, failing as `fail` says on the chunk that starts past line 500."""

    def __init__(self, bundle: Bundle, fail: Callable[[], None]) -> None:
        self._inner = EmbeddedPredictor(bundle)
        self._fail = fail
        self._rows = 0

    @property
    def bundle(self) -> Bundle:
        return self._inner.bundle

    @property
    def model_version(self) -> str:
        return self._inner.model_version

    def scores(self, features: Any, *, validated: bool = False) -> Any:
        self._rows += len(features)
        if self._rows > 500:
            self._fail()
        return self._inner.scores(features, validated=validated)


def failing(fail: Callable[[], None]) -> offline.PredictorOf:
    def make(bundle: Bundle) -> Predictor:
        return Failing(bundle, fail)  # type: ignore[return-value]

    return make


def raise_model_error() -> None:
    raise PredictorModelError("the model answered 3 columns for 2 labels")


def raise_record_error() -> None:
    raise RecordError(RejectReason.INVALID_VALUE, "age: -3 is below 0", "age")


@pytest.mark.parametrize("fail", [raise_model_error, raise_record_error])
def test_a_predictor_error_in_a_worker_is_the_sequential_error(
    tmp_path: Path, fail: Callable[[], None]
) -> None:
    path = write(tmp_path / "labelled.csv", LABELLED)
    raised = []
    for jobs in (1, JOBS):
        with pytest.raises((PredictorModelError, RecordError)) as error:
            run(path, ADULT, jobs, failing(fail))
        raised.append(error.value)
        assert no_workers_left()
    sequential, parallel = raised
    assert type(parallel) is type(sequential)
    assert str(parallel) == str(sequential)
    assert vars(parallel) == vars(sequential)  # a RecordError's reason and field too


def test_a_predictor_that_cannot_be_made_is_the_sequential_error(tmp_path: Path) -> None:
    path = write(tmp_path / "labelled.csv", LABELLED)

    def no_model(bundle: Bundle) -> Predictor:
        raise PredictorModelError(f"bundle {bundle.model_version} needs ONNX Runtime")

    for jobs in (1, JOBS):
        with pytest.raises(PredictorModelError, match="needs ONNX Runtime"):
            run(path, ADULT, jobs, no_model)
        assert no_workers_left()


def test_a_file_that_shrinks_while_workers_score_it_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "labelled.csv", LABELLED)

    def shrink() -> None:  # in the worker: the main process reads what is left
        path.write_bytes(path.read_bytes()[:10_000])

    for jobs in (1, JOBS):
        write(path, LABELLED)
        # Caught when a chunk is read short, or at the end if the planner met the new end first.
        with pytest.raises(offline.FileChanged, match=r"became shorter|changed while it was read"):
            run(path, ADULT, jobs, failing(shrink))
        assert no_workers_left()


def test_a_worker_that_dies_breaks_the_run_rather_than_hanging(tmp_path: Path) -> None:
    path = write(tmp_path / "labelled.csv", LABELLED)
    with pytest.raises(BrokenProcessPool):
        run(path, ADULT, JOBS, failing(lambda: os._exit(9)))
    assert no_workers_left()


def predict_with_two_workers(tmp_path: Path, **popen: Any) -> tuple[subprocess.Popen[str], list[str]]:
    """`predictflow predict --jobs 2` as a user runs it, on 325,610 records (a second or more on
    two cores), once both its workers are running; and their process ids."""
    path = tmp_path / "large.csv"
    path.write_bytes(ADULT_DATA.read_bytes() * 10)
    command = [sys.executable, "-c", "from predictflow.cli import main; main()", "predict", str(path)]
    run = subprocess.Popen(
        [*command, "--jobs", "2", "-o", str(tmp_path / "out.jsonl")],
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        **popen,
    )
    workers: list[str] = []
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline and run.poll() is None:
        workers = Path(f"/proc/{run.pid}/task/{run.pid}/children").read_text().split()
        time.sleep(0.005)
    assert len(workers) == 2, "the workers did not start"
    return run, workers


def test_ctrl_c_stops_the_workers_with_the_run(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group: the run ends as an interrupted command does, no
    worker prints a traceback, and none is left running."""
    run, workers = predict_with_two_workers(tmp_path, start_new_session=True, stderr=subprocess.PIPE)
    os.killpg(run.pid, signal.SIGINT)
    _, stderr = run.communicate(timeout=30)
    assert run.returncode == 1
    assert stderr.strip() == "Aborted!"
    assert [pid for pid in workers if Path(f"/proc/{pid}").exists()] == []


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_workers_end_with_a_main_process_that_is_killed(tmp_path: Path, signal_number: int) -> None:
    """A scheduler's SIGTERM (or `timeout`, or the OOM killer's SIGKILL) ends the main process
    without its cleanup: its workers must end with it, not wait on their pipes for ever."""
    run, workers = predict_with_two_workers(tmp_path, stderr=subprocess.DEVNULL)
    run.send_signal(signal_number)
    run.wait(timeout=30)
    deadline = time.monotonic() + 10
    while [pid for pid in workers if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in workers if alive(pid)] == []


def alive(pid: str) -> bool:
    """Running, or stopped: not gone, and not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_record_error_pickles_whole() -> None:
    error = RecordError(RejectReason.UNKNOWN_CATEGORY, "race: 'Martian' is not a known category", "race")
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), str(again), again.reason, again.field) == (
        RecordError,
        str(error),
        error.reason,
        error.field,
    )


# ---------------------------------------------------------------------------------- CLI


def test_the_cli_writes_the_same_bytes_with_any_number_of_jobs(tmp_path: Path) -> None:
    path = write(tmp_path / "labelled.csv", LABELLED)
    runner = CliRunner()
    results = [
        runner.invoke(cli, ["predict", str(path), "--jobs", str(jobs), "-o", str(tmp_path / f"{jobs}.jsonl")])
        for jobs in (1, 2)
    ]
    assert [r.exit_code for r in results] == [0, 0], results[1].output
    assert (tmp_path / "1.jsonl").read_bytes() == (tmp_path / "2.jsonl").read_bytes()
    assert results[0].stderr == results[1].stderr
    assert "on 1500 labelled records: accuracy" in results[1].stderr


def test_jobs_is_refused_with_remote() -> None:
    result = CliRunner().invoke(cli, ["predict", str(ADULT_DATA), "--remote", "--jobs", "2"])
    assert result.exit_code == 2
    assert "--jobs is for offline use" in result.stderr


# ------------------------------------------------------------------------------ metrics


def evaluate_before(target: TargetSpec, actual: Sequence[Actual], answers: npt.NDArray[np.float64]) -> Any:
    """`evaluate` as it was before targets were encoded into arrays (a Python list walked)."""
    known = np.array([value is not None for value in actual], dtype=bool)
    if not known.any():
        return {}
    values = [value for value in actual if value is not None]
    scored = answers[known]
    if target.task == "regression":
        errors = scored - np.asarray(values, dtype=np.float64)
        return {
            "records": len(values),
            "rmse": float(np.sqrt(np.mean(errors**2))),
            "mae": float(np.mean(np.abs(errors))),
        }
    if target.task == "binary":
        assert target.threshold is not None
        labels = np.array([value == target.positive for value in values], dtype=np.int64)
        return {
            "records": len(values),
            "accuracy": float(np.mean((scored >= target.threshold) == (labels == 1))),
            "roc_auc": roc_auc(labels, scored),
            "log_loss": binary_log_loss(labels, scored),
        }
    index = {label: i for i, label in enumerate(target.labels)}
    classes = np.array([index[str(value)] for value in values], dtype=np.int64)
    predicted = np.argmax(scored, axis=1)
    return {
        "records": len(values),
        "accuracy": float(np.mean(predicted == classes)),
        "log_loss": multiclass_log_loss(classes, scored),
        "macro_f1": macro_f1(classes, predicted, len(target.labels)),
    }


TARGETS = {
    "binary": TargetSpec("income", "binary", ("<=50K", ">50K"), ">50K", 0.5),
    "multiclass": TargetSpec("species", "multiclass", ("Adelie", "Chinstrap", "Gentoo")),
    "regression": TargetSpec("price", "regression"),
}


def same(one: dict[str, float], other: dict[str, float]) -> bool:
    return one.keys() == other.keys() and all(
        one[k] == other[k] or (math.isnan(one[k]) and math.isnan(other[k])) for k in one
    )


@settings(max_examples=150, deadline=None)
@given(
    task=st.sampled_from(sorted(TARGETS)),
    draws=st.lists(st.tuples(st.integers(-1, 2), st.floats(-3, 3)), max_size=80),
    cuts=st.lists(st.integers(0, 80), max_size=6),
    seed=st.integers(0, 2**32 - 1),
)
def test_metrics_from_encoded_batches_are_the_metrics_before(
    task: str, draws: list[tuple[int, float]], cuts: list[int], seed: int
) -> None:
    """-1 draws an unknown target; the answers are random; the records are cut into batches at
    `cuts`, encoded batch by batch and joined, as predict_file does."""
    target = TARGETS[task]
    rng = np.random.default_rng(seed)
    actual: list[Actual]
    if task == "regression":
        actual = [None if code < 0 else value for code, value in draws]
        answers = rng.normal(size=len(draws))
    elif task == "binary":
        actual = [None if code < 0 else target.labels[code % 2] for code, _ in draws]
        answers = rng.choice([0.0, 0.2, 0.5, 0.7, 1.0, rng.random()], size=len(draws))
    else:
        actual = [None if code < 0 else target.labels[code] for code, _ in draws]
        answers = rng.dirichlet([1, 1, 1], size=len(draws))
    before = evaluate_before(target, actual, answers)
    assert same(evaluate(target, actual, answers), before)
    bounds = [0, *sorted(c for c in cuts if c < len(actual)), len(actual)]
    truths, scores = [], []
    for start, end in itertools.pairwise(bounds):
        known, truth = encode_targets(target, actual[start:end])
        truths.append(truth)
        scores.append(answers[start:end][known])
    joined = evaluate_encoded(target, np.concatenate(truths), np.concatenate(scores))
    assert same(joined, before)


def test_a_label_the_bundle_does_not_have_is_an_error_not_a_class() -> None:
    with pytest.raises(ValueError, match="'Emperor' is not one of the labels"):
        encode_targets(TARGETS["multiclass"], ["Adelie", None, "Emperor"])
