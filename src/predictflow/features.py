"""The model's input: a float32 matrix, one column per feature in the bundle's order.

The parser (`records.py`) encodes records straight into this matrix: numbers as themselves, a
category as its index in the bundle's vocabulary, a yes/no value as 0 or 1, a missing value as
NaN, which tree models send down their learned missing-value branch. Training encodes through
the same parser, so the model never sees an encoding it was not trained on. This module goes
the other way (`decode`, for backends that take records as text) and guards callers that build
a matrix themselves (`check_matrix`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from predictflow.bundle.schema import CompiledSchema
from predictflow.errors import RecordError, RejectReason
from predictflow.records import check_value

Value = int | float | str
FeatureMatrix = npt.NDArray[np.float32]

MISSING_TEXT = ""
"""How `decode` writes a missing value for a field that has no missing marker of its own."""


def decode_columns(schema: CompiledSchema, matrix: FeatureMatrix) -> list[list[Value]]:
    """The values behind an encoded matrix, column by column in the model's order: numbers,
    category names, and each field's own missing marker (exact: accepted whole numbers fit
    float32)."""
    columns: list[list[Value]] = []
    for index, spec in enumerate(schema.features):
        column = matrix[:, index]
        marker = spec.missing[0] if spec.missing else MISSING_TEXT
        if spec.type in ("category", "binary"):
            names: tuple[Value, ...] = (
                (*spec.categories, marker) if spec.type == "category" else (0, 1, marker)
            )
            codes = np.where(np.isnan(column), len(names) - 1, column).astype(np.int64)
            columns.append([names[code] for code in codes.tolist()])
        elif spec.type == "integer":
            columns.append([marker if math.isnan(v) else int(v) for v in column.tolist()])
        else:
            columns.append([marker if math.isnan(v) else v for v in column.astype(np.float64).tolist()])
    return columns


def decode(schema: CompiledSchema, matrix: FeatureMatrix) -> list[tuple[Value, ...]]:
    """Like `decode_columns`, row by row."""
    return list(zip(*decode_columns(schema, matrix), strict=True))


def encode_values(
    schema: CompiledSchema, rows: Sequence[Sequence[Value]], *, unknown_as_missing: bool = False
) -> tuple[FeatureMatrix, list[tuple[str, ...]]]:
    """Encode rows of values in the model's order (numbers or their text), checking each.

    Raises `RecordError` for a value that breaks the schema. With `unknown_as_missing`, a
    category the model has never seen is scored as missing instead, and named in that row's
    warnings: what a caller scoring records one by one usually wants.
    """
    out = np.empty((len(rows), schema.width), dtype=np.float32)
    warnings: list[tuple[str, ...]] = []
    for row_index, row in enumerate(rows):
        if len(row) != schema.width:
            raise RecordError(RejectReason.FIELD_COUNT, f"expected {schema.width} values, got {len(row)}")
        notes: list[str] = []
        for index, value in enumerate(row):
            try:
                out[row_index, index] = check_value(schema, index, str(value))
            except RecordError as error:
                if not (unknown_as_missing and error.reason is RejectReason.UNKNOWN_CATEGORY):
                    raise
                notes.append(f"{error}; scored as missing")
                out[row_index, index] = math.nan
        warnings.append(tuple(notes))
    return out, warnings


def check_matrix(schema: CompiledSchema, matrix: FeatureMatrix) -> None:
    """Raise the typed validation error for the first value an encoded matrix should not hold.

    The pipeline only builds matrices from validated records; this guards every other caller,
    so that a bad value is reported by field and value rather than as a model error.
    """
    if matrix.ndim != 2 or matrix.shape[1] != schema.width:
        raise RecordError(
            RejectReason.FIELD_COUNT, f"expected {schema.width} features, got shape {matrix.shape}"
        )
    for index, spec in enumerate(schema.features):
        column = matrix[:, index]
        whole = column == np.floor(column)
        if spec.type in ("category", "binary"):
            size = len(spec.categories) if spec.type == "category" else 2
            known = (column >= 0) & (column < size) & whole
            bad_kind = RejectReason.UNKNOWN_CATEGORY
        else:
            low, high = spec.range if spec.range is not None else (-math.inf, math.inf)
            known = (
                (column >= low)
                & (column <= high)
                & (whole if spec.type == "integer" else np.isfinite(column))
            )
            bad_kind = RejectReason.INVALID_VALUE
        known |= np.isnan(column) if spec.missing else False
        if not known.all():
            row = int(np.flatnonzero(~known)[0])
            raise RecordError(
                bad_kind, f"{spec.name}: {column[row]!r} is not a valid encoded value (row {row})", spec.name
            )
