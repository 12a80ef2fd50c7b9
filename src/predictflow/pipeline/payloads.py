"""What travels between the steps, as JSON through the state machine.

    Fetch     -> {object, execution_arn, model_version, layout, chunks: [Chunk], duplicate}
    Validate  -> ValidatedBatch, stashed (inline when small, else an S3 reference)
    Predict   -> ScoredBatch, stashed likewise
    Route     -> ChunkCounts

Arrays travel as base64 of their little-endian bytes: a tenth of the time and half the size of
the same values as JSON numbers.
"""

from __future__ import annotations

import base64
from typing import Any, NotRequired, TypedDict

import numpy as np
import numpy.typing as npt


class Chunk(TypedDict):
    index: int
    first_line: int
    start: int
    end: int


class ValidatedBatch(TypedDict):
    lines: list[int]
    features: str
    """base64 of the (n, features) float32 matrix."""
    rejections: list[list[Any]]
    """[line, raw, error_type, message, raw_base64 or None] per rejected line."""
    layout: dict[str, Any]
    actual: NotRequired[list[Any]]
    ids: NotRequired[list[str]]
    ignored_columns: NotRequired[list[str]]


class ScoredBatch(TypedDict):
    answers: str
    """base64 of the float64 answers (see `predictions.Answers`)."""
    columns: int
    model_version: str


def matrix_to_text(matrix: npt.NDArray[Any]) -> str:
    return base64.b64encode(
        np.ascontiguousarray(matrix, dtype=matrix.dtype.newbyteorder("<")).tobytes()
    ).decode()


def matrix_from_text(text: str, dtype: type[np.generic], columns: int | None = None) -> npt.NDArray[Any]:
    values = np.frombuffer(base64.b64decode(text), dtype=np.dtype(dtype).newbyteorder("<"))
    return values.reshape(-1, columns) if columns else values
