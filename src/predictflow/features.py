"""Feature encoding: typed record values to the float32 matrix the model was trained on.

Numeric fields pass through; a categorical field becomes its index in the schema's
vocabulary, and `?` becomes NaN, which the trees send down their learned missing-value
branch. Training, the record parser and the predictors all encode through this module, so
the model never sees an encoding it was not trained on.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from predictflow.schema import FIELDS, MISSING, CategoricalField, NumericField

Value = int | str
FeatureMatrix = npt.NDArray[np.float32]

UNKNOWN_CODE: Final = -1.0
"""What `CODES` gives a category outside the vocabulary; never reaches the model."""

CODES: Final[dict[int, dict[str, float]]] = {
    index: {category: float(code) for code, category in enumerate(field.categories)} | {MISSING: math.nan}
    for index, field in enumerate(FIELDS)
    if isinstance(field, CategoricalField)
}
"""Per categorical column: category -> model code, `?` -> NaN."""

NUMERIC_COLUMNS: Final = tuple(index for index in range(len(FIELDS)) if index not in CODES)
CATEGORICAL_COLUMNS: Final = tuple(CODES)


def encode(rows: Sequence[Sequence[Value]]) -> FeatureMatrix:
    """Encode typed rows (values in schema order) as an (n, 14) float32 matrix.

    A category outside the vocabulary is encoded as missing; `unknown_categories` names
    such values so callers can say so.
    """
    out = np.empty((len(rows), len(FIELDS)), dtype=np.float32)
    for index in NUMERIC_COLUMNS:
        out[:, index] = [row[index] for row in rows]
    for index, codes in CODES.items():
        out[:, index] = [codes.get(str(row[index]), math.nan) for row in rows]
    return out


def decode(matrix: FeatureMatrix) -> list[tuple[Value, ...]]:
    """The typed values behind an encoded matrix (exact: accepted values fit in float32)."""
    return list(zip(*decode_columns(matrix), strict=True))


def decode_columns(matrix: FeatureMatrix) -> list[list[Value]]:
    """Like `decode`, column by column (schema order)."""
    columns: list[list[Value]] = []
    for index, field in enumerate(FIELDS):
        column = matrix[:, index]
        if isinstance(field, CategoricalField):
            names = (*field.categories, MISSING)
            codes = np.where(np.isnan(column), len(field.categories), column).astype(np.int64)
            columns.append([names[code] for code in codes.tolist()])
        else:
            columns.append(column.astype(np.int64).tolist())
    return columns


def unknown_categories(row: Sequence[Value]) -> list[str]:
    """Describe each categorical value of `row` that the model has never seen."""
    return [
        f"{FIELDS[index].name}: {row[index]!r} is not a known category; scored as missing"
        for index, codes in CODES.items()
        if row[index] not in codes
    ]


def matrix_to_text(matrix: npt.NDArray[Any]) -> str:
    """A matrix as base64 of its little-endian bytes: how batches travel between steps
    (a tenth of the time and half the size of the same values as JSON numbers)."""
    return base64.b64encode(
        np.ascontiguousarray(matrix, dtype=matrix.dtype.newbyteorder("<")).tobytes()
    ).decode()


def matrix_from_text(text: str, dtype: type[np.generic], columns: int | None = None) -> npt.NDArray[Any]:
    values = np.frombuffer(base64.b64decode(text), dtype=np.dtype(dtype).newbyteorder("<"))
    return values.reshape(-1, columns) if columns else values


def check_matrix(matrix: FeatureMatrix) -> None:
    """Raise the typed validation error for the first value an encoded matrix should not hold.

    The pipeline only builds matrices from validated records; this guards every other
    caller, so that a bad value is reported by field and value rather than as a model error.
    """
    from predictflow.records import RecordError, RejectReason

    if matrix.ndim != 2 or matrix.shape[1] != len(FIELDS):
        raise RecordError(
            RejectReason.FIELD_COUNT, f"expected {len(FIELDS)} features, got shape {matrix.shape}"
        )
    for index, field in enumerate(FIELDS):
        column = matrix[:, index]
        if isinstance(field, CategoricalField):
            known = np.isnan(column) | (
                (column >= 0) & (column < len(field.categories)) & (column == np.floor(column))
            )
            bad_kind = RejectReason.UNKNOWN_CATEGORY
        else:
            assert isinstance(field, NumericField)
            known = (column >= field.minimum) & (column <= field.maximum) & (column == np.floor(column))
            bad_kind = RejectReason.INVALID_VALUE
        if not known.all():
            row = int(np.flatnonzero(~known)[0])
            raise RecordError(
                bad_kind,
                f"{field.name}: {column[row]!r} is not a valid encoded value (row {row})",
                field.name,
            )
