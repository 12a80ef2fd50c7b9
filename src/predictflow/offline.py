"""Offline scoring of a record file with a bundle (`predictflow predict`): the pipeline's parser,
predictor and prediction lines, with no AWS in between.

With `jobs` above 1, worker processes parse, score and format the chunks this process plans and
reads, and this process writes their lines strictly in chunk order: the output, the rejects and
the metrics are byte for byte those of `jobs=1`, which scores every chunk in this process.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from predictflow.bundle import Bundle
from predictflow.memory import retain_freed_memory
from predictflow.metrics import encode_targets, evaluate_encoded
from predictflow.pipeline.chunks import cut_chunks
from predictflow.predictions import answers_of, prediction_lines
from predictflow.predictors.base import Predictor
from predictflow.records import Layout, ParsedBatch, Rejection, parse_chunk

if TYPE_CHECKING:
    from concurrent.futures import Future

BATCH_BYTES = 1024 * 1024  # about 9,500 census records per model call
PLAN_BLOCK_BYTES = 8 * 1024 * 1024
PARALLEL_MIN_BYTES = 8 * 1024 * 1024
"""Files smaller than this are scored in this process whatever `jobs` says: starting and stopping
the workers, and the first chunk read alone for the layout, cost about 50 ms, which a few chunks
do not earn back. Measured on two CPUs, 2 workers against 1 process: 2 MiB 101 against 53 ms,
4 MiB 105/84, 8 MiB 147/144, 16 MiB 231/264, 32 MiB 374/497."""
WINDOW_PER_JOB = 2
"""Chunks in flight per worker: enough to keep every worker busy while this process writes, few
enough that memory stays a few chunks per worker whatever the file's size."""

PredictorOf = Callable[[Bundle], Predictor]


class FileChanged(Exception):
    """The file's size changed between planning its chunks and reading them: its records
    would be numbered or read wrong."""


@dataclass
class BatchReport:
    predicted: int = 0
    rejected: int = 0
    quality: dict[str, float] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)
    ignored_columns: tuple[str, ...] = ()
    processes: set[int] = field(default_factory=set)
    """The process ids that scored the file's chunks: this one's alone with `jobs=1`."""


@dataclass
class ScoredChunk:
    """What scoring one chunk gives, all that the writing process needs of it."""

    lines: str
    predicted: int
    rejections: list[Rejection]
    layout: Layout | None
    ignored_columns: tuple[str, ...]
    truth: npt.NDArray[np.generic] | None
    """The known targets, as `encode_targets` encodes them; None when no record has one."""
    scored: npt.NDArray[np.float64] | None
    """The answers of the records whose target is known."""
    process: int


def _chunks(path: Path) -> Iterator[tuple[int, bytes]]:
    """The file's chunks as (first line number, bytes), read one at a time.

    The file is read twice, never held whole: a block at a time to cut it into chunks (Fetch's
    planner, so the chunks and their line numbers are the pipeline's), and chunk by chunk to
    parse, each chunk as soon as the planner has cut it (planning the whole file first kept
    the workers waiting 70 ms on 1M records). Holding it whole was half of the peak memory on
    a 1M-record file, for nothing a second read from the page cache does not give.

    Raises FileChanged when a chunk cannot be read whole or the file's size at the end is not
    where its last chunk ends: its records would be numbered or read wrong.
    """
    with path.open("rb") as planned, path.open("rb") as file:
        # The planner reads no further than the size the file had when it was opened, so a
        # file that grows or shrinks meanwhile is caught at the end, whatever was cut by then.
        size = os.fstat(planned.fileno()).st_size
        end = 0
        for chunk in cut_chunks(_blocks_of(planned, size), BATCH_BYTES):
            file.seek(chunk["start"])
            data = file.read(chunk["end"] - chunk["start"])
            if len(data) != chunk["end"] - chunk["start"]:
                raise FileChanged(f"{path} became shorter while it was read")
            end = chunk["end"]
            yield chunk["first_line"], data
        if end != size or os.fstat(file.fileno()).st_size != size:
            raise FileChanged(f"{path} changed while it was read")


def _blocks_of(file: IO[bytes], size: int) -> Iterator[bytes]:
    """The first `size` bytes of `file`, PLAN_BLOCK_BYTES at a time (fewer if it is shorter)."""
    left = size
    while left > 0:
        block = file.read(min(PLAN_BLOCK_BYTES, left))
        if not block:
            return
        left -= len(block)
        yield block


def batches(path: Path, predictor: Predictor) -> Iterator[ParsedBatch]:
    """The file's records batch by batch, every batch read with the layout of the file's head."""
    layout: Layout | None = None
    for first_line, data in _chunks(path):
        batch = _parse(predictor.bundle, first_line, data, layout)
        layout = layout or batch.layout
        yield batch


def _parse(bundle: Bundle, first_line: int, data: bytes, layout: Layout | None) -> ParsedBatch:
    # Until a chunk has said what the file is (its layout), the chunks before were blank: this
    # one opens the file, and its first line may be the header.
    return parse_chunk(data, bundle.schema, first_line, layout=layout, opens_file=layout is None)


def score_chunk(predictor: Predictor, first_line: int, data: bytes, layout: Layout | None) -> ScoredChunk:
    """Parse, score and format one chunk: the same work whichever process does it."""
    bundle = predictor.bundle
    target = bundle.spec.target
    batch = _parse(bundle, first_line, data, layout)
    # The parser built this matrix from values it validated one by one, against the same
    # schema (field count, category codes, ranges, whole numbers, missing markers: what
    # `check_matrix` checks), as the pipeline's and the API's matrices are: a second pass
    # would repeat those checks on the same data. A matrix from anywhere else is still
    # checked, as `scores` does without `validated`.
    answers = answers_of(target, predictor.scores(batch.features, validated=True))
    lines = prediction_lines(
        target, predictor.model_version, batch.lines, answers, ids=batch.ids, actual=batch.actual
    )
    truth = scored = None
    if batch.actual is not None:
        known, truth = encode_targets(target, batch.actual)
        scored = answers[known]
    return ScoredChunk(
        lines, len(batch), batch.rejections, batch.layout, batch.ignored_columns, truth, scored, os.getpid()
    )


def predict_file(
    path: Path,
    out: IO[str],
    rejects: IO[str] | None,
    bundle: Bundle,
    *,
    jobs: int = 1,
    predictor_of: PredictorOf | None = None,
) -> BatchReport:
    """Write one JSON line per record of `path`; report each line that is not a record.

    `predictor_of` makes the predictor (the embedded one by default), once in this process with
    `jobs=1` or a small file, else once in each of `jobs` worker processes."""
    make = predictor_of or _embedded
    target = bundle.spec.target
    report = BatchReport()
    truths: list[npt.NDArray[np.generic]] = []
    scores: list[npt.NDArray[np.float64]] = []

    def write(chunk: ScoredChunk) -> None:
        out.write(chunk.lines)
        if chunk.truth is not None and chunk.scored is not None:
            truths.append(chunk.truth)
            scores.append(chunk.scored)
        report.ignored_columns = report.ignored_columns or chunk.ignored_columns
        report.predicted += chunk.predicted
        report.rejected += len(chunk.rejections)
        report.processes.add(chunk.process)
        if rejects is not None:
            for rejection in chunk.rejections:
                rejects.write(f"{path}:{rejection.line}: {rejection.reason.value}: {rejection.message}\n")

    if jobs > 1 and path.stat().st_size >= PARALLEL_MIN_BYTES and _can_fork():
        _score_in_workers(path, bundle, make, jobs, write)
    else:
        predictor = make(bundle)
        layout: Layout | None = None
        for first_line, data in _chunks(path):
            chunk = score_chunk(predictor, first_line, data, layout)
            layout = layout or chunk.layout
            write(chunk)
    if truths:
        report.quality = evaluate_encoded(target, np.concatenate(truths), np.concatenate(scores))
    return report


def _embedded(bundle: Bundle) -> Predictor:
    from predictflow.predictors import EmbeddedPredictor

    return EmbeddedPredictor(bundle)


def _can_fork() -> bool:
    """Workers are forked on Linux only: macOS offers fork, but its system libraries (numpy's
    Accelerate among them) are not safe in a forked child, which is why Python spawns there."""
    if not sys.platform.startswith("linux"):
        return False
    # multiprocessing and concurrent.futures are imported only for a file workers score: they
    # are 20 ms of a small file's run.
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def _score_in_workers(
    path: Path, bundle: Bundle, make: PredictorOf, jobs: int, write: Callable[[ScoredChunk], None]
) -> None:
    """Score the chunks in `jobs` worker processes and hand them to `write` in the file's order.

    The first chunk decides the layout the later ones are read with (a header, JSON Lines), as
    in `batches`: until a chunk has given one, each chunk is waited for before the next is sent.
    A worker's exception is raised here as the sequential path raises it (concurrent.futures
    sends it back whole); a worker that dies breaks the pool (BrokenProcessPool) rather than
    leaving a chunk unanswered. Fork, so that the workers start without importing anything
    again and take the bundle as it is in memory; each makes its own predictor."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_start_worker, initargs=(bundle, make, os.getpid())
    )
    pending: deque[Future[ScoredChunk]] = deque()
    layout: Layout | None = None
    try:
        for first_line, data in _chunks(path):
            pending.append(pool.submit(_score_in_worker, first_line, data, layout))
            if layout is None:
                chunk = pending.popleft().result()
                layout = chunk.layout
                write(chunk)
            elif len(pending) >= WINDOW_PER_JOB * jobs:
                write(pending.popleft().result())
        while pending:
            write(pending.popleft().result())
    finally:
        # On an error or Ctrl-C: drop the chunks not started, let the running ones end (a few
        # milliseconds each) and reap every worker, so that none outlives this process.
        pool.shutdown(wait=True, cancel_futures=True)


_worker: Predictor | Exception | None = None
"""This worker process's predictor, or the exception making it raised."""


PR_SET_PDEATHSIG: Final = 1  # prctl(2)


def _start_worker(bundle: Bundle, make: PredictorOf, parent: int) -> None:
    global _worker
    # Ctrl-C reaches the whole process group: the main process stops the pool; a worker that
    # took it too would print its own traceback mid-chunk.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A main process ended by SIGTERM or SIGKILL (a scheduler, `timeout`, the OOM killer) runs
    # no cleanup: its workers would wait on their pipes for ever. The kernel ends them with it.
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it ended before the line above took effect
        os._exit(1)
    retain_freed_memory()
    try:
        _worker = make(bundle)
    except Exception as error:  # noqa: BLE001 - kept, and raised for each chunk
        # Raised again for every chunk this worker is given (`_score_in_worker`): an exception
        # in an initializer only marks the pool broken, with a generic message.
        _worker = error


def _score_in_worker(first_line: int, data: bytes, layout: Layout | None) -> ScoredChunk:
    if isinstance(_worker, Exception):
        raise _worker
    assert _worker is not None, "a worker's predictor is made by _start_worker"
    return score_chunk(_worker, first_line, data, layout)
