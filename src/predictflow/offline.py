"""Offline scoring of a record file with a bundle (`predictflow predict`): the pipeline's parser,
predictor and prediction lines, with no AWS in between."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO

import numpy as np

from predictflow.metrics import evaluate
from predictflow.pipeline.chunks import plan_chunks
from predictflow.predictions import Answers, answers_of, prediction_lines
from predictflow.predictors.base import Predictor
from predictflow.records import Actual, Layout, ParsedBatch, Rejection, parse_chunk

BATCH_BYTES = 1024 * 1024  # about 9,500 census records per model call
PLAN_BLOCK_BYTES = 8 * 1024 * 1024


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


def batches(path: Path, predictor: Predictor) -> Iterator[ParsedBatch]:
    """The file's records batch by batch, every batch read with the layout of the file's head.

    The file is read twice, never held whole: once a block at a time to cut it into chunks
    (Fetch's planner, so the chunks and their line numbers are the pipeline's), then chunk by
    chunk to parse. Holding it whole was half of the peak memory on a 1M-record file, for
    nothing a second read from the page cache does not give for a few milliseconds.
    """
    schema = predictor.bundle.schema
    layout: Layout | None = None
    with path.open("rb") as file:
        chunks = plan_chunks(iter(partial(file.read, PLAN_BLOCK_BYTES), b""), BATCH_BYTES)
        planned = chunks[-1]["end"]
        for chunk in chunks:
            file.seek(chunk["start"])
            data = file.read(chunk["end"] - chunk["start"])
            if len(data) != chunk["end"] - chunk["start"]:
                raise FileChanged(f"{path} became shorter while it was read")
            batch = parse_chunk(data, schema, chunk["first_line"], layout=layout)
            layout = layout or batch.layout
            yield batch
        if os.fstat(file.fileno()).st_size != planned:
            raise FileChanged(f"{path} changed while it was read")


def predict_file(path: Path, out: IO[str], rejects: IO[str] | None, predictor: Predictor) -> BatchReport:
    """Write one JSON line per record of `path`; report each line that is not a record."""
    report = BatchReport()
    target = predictor.bundle.spec.target
    actual: list[Actual] = []
    answered: list[Answers] = []
    for batch in batches(path, predictor):
        # The parser built this matrix from values it validated one by one, against the same
        # schema (field count, category codes, ranges, whole numbers, missing markers: what
        # `check_matrix` checks), as the pipeline's and the API's matrices are: a second pass
        # would repeat those checks on the same data. A matrix from anywhere else is still
        # checked, as `scores` does without `validated`.
        answers = answers_of(target, predictor.scores(batch.features, validated=True))
        out.write(
            prediction_lines(
                target, predictor.model_version, batch.lines, answers, ids=batch.ids, actual=batch.actual
            )
        )
        if batch.actual is not None:
            actual.extend(batch.actual)
            answered.append(answers)
        report.ignored_columns = report.ignored_columns or batch.ignored_columns
        report.predicted += len(batch)
        report.rejected += len(batch.rejections)
        if rejects is not None:
            for rejection in batch.rejections:
                rejects.write(f"{path}:{rejection.line}: {rejection.reason.value}: {rejection.message}\n")
    if answered:
        report.quality = evaluate(target, actual, np.concatenate(answered))
    return report
