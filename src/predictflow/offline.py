"""Offline batch prediction of a record file with the embedded model (`predictflow predict`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from predictflow.metrics import Quality, quality
from predictflow.pipeline.chunks import plan_chunks
from predictflow.predictors import EmbeddedPredictor, labels_for
from predictflow.records import ParsedBatch, Rejection, parse_chunk
from predictflow.schema import POSITIVE_LABEL

BATCH_BYTES = 1024 * 1024  # about 9,500 census records per model call


@dataclass
class BatchReport:
    predicted: int = 0
    rejected: int = 0
    quality: Quality | None = None
    rejections: list[Rejection] = field(default_factory=list)


def batches(path: Path) -> Iterator[ParsedBatch]:
    data = path.read_bytes()
    for chunk in plan_chunks([data], BATCH_BYTES):
        first_line = chunk["first_line"]
        yield parse_chunk(data[chunk["start"] : chunk["end"]], first_line, allow_header=first_line == 1)


def predict_file(
    path: Path, out: IO[str], rejects: IO[str] | None, predictor: EmbeddedPredictor
) -> BatchReport:
    """Write one JSON line per record of `path`; report each line that is not a record."""
    report = BatchReport()
    labels: list[int] = []
    scores: list[np.ndarray] = []
    version = predictor.model_version
    for batch in batches(path):
        probabilities = predictor.probabilities(batch.features)
        lines = []
        rows = zip(batch.lines, probabilities.tolist(), labels_for(probabilities), batch.actual, strict=True)
        for line, probability, label, actual in rows:
            # Every field is a number or one of a few fixed strings, so no escaping is needed.
            tail = f',"actual":"{actual}"}}' if actual is not None else "}"
            lines.append(
                f'{{"line":{line},"label":"{label}","probability":{probability!r},'
                f'"model_version":"{version}"{tail}\n'
            )
        out.writelines(lines)
        known = [(label == POSITIVE_LABEL) for label in batch.actual if label is not None]
        if known:
            mask = np.array([label is not None for label in batch.actual])
            labels.extend(int(k) for k in known)
            scores.append(probabilities[mask])
        report.predicted += len(batch)
        report.rejected += len(batch.rejections)
        if rejects is not None:
            for rejection in batch.rejections:
                rejects.write(f"{path}:{rejection.line}: {rejection.reason.value}: {rejection.message}\n")
    if labels:
        report.quality = quality(np.array(labels), np.concatenate(scores))
    return report
