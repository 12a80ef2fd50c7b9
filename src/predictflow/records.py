"""Parsing and validating record files.

A record file is the census extract's own format: comma plus optional space, 14 fields, `?`
for a missing value, optionally a header row and a 15th `income` column (`<=50K` / `>50K`,
with or without the trailing period of the published test split), CRLF or LF, UTF-8 with or
without a BOM. Blank lines are not records. Every other line ends up either as an accepted
record or as a `Rejection` that names the line, the field and the value: nothing is dropped.

`check_fields` is the definition of a valid record. `parse_chunk` runs it on every line that
the vectorised fast path does not accept outright, so the two agree by construction (and
tests/test_records.py checks that they do on arbitrary input).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import repeat
from typing import Final

import numpy as np

from predictflow.features import CODES, NUMERIC_COLUMNS, UNKNOWN_CODE, FeatureMatrix, Value
from predictflow.features import decode as decode_features
from predictflow.features import encode as encode_values
from predictflow.schema import FEATURE_NAMES, FIELDS, LABEL_FIELD, LABELS, NumericField

MAX_LINE_CHARS: Final = 4096
"""A census record is about 110 characters; a line this long is not one."""

RAW_EXCERPT_CHARS: Final = 1024
"""How much of a rejected line a dead-letter entry carries. The whole line stays in the
versioned source object, addressed by its line number."""

BOM: Final = b"\xef\xbb\xbf"


class RejectReason(StrEnum):
    """Why a line is not a record. The values are the `error_type` of dead-letter entries."""

    ENCODING = "EncodingError"
    LINE_TOO_LONG = "LineTooLong"
    FIELD_COUNT = "FieldCountError"
    INVALID_VALUE = "InvalidValue"
    UNKNOWN_CATEGORY = "UnknownCategory"


class RecordError(ValueError):
    """A value that breaks the schema, naming the field and the offending value."""

    def __init__(self, reason: RejectReason, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field


@dataclass(frozen=True, slots=True)
class Rejection:
    """A line that is not a valid record, with a reason a person can act on."""

    line: int
    raw: str
    reason: RejectReason
    message: str


@dataclass(slots=True)
class ParsedBatch:
    """The outcome of parsing some lines: accepted records (columnar) and rejections."""

    lines: list[int]
    features: FeatureMatrix
    actual: list[str | None]
    rejections: list[Rejection] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lines)

    def rows(self) -> list[tuple[Value, ...]]:
        """The accepted records' typed values, in schema order."""
        return decode_features(self.features)


_FIELD_COUNT: Final = len(FIELDS)
_NUMERIC: Final = tuple((index, f) for index, f in enumerate(FIELDS) if isinstance(f, NumericField))
_LABEL_SPELLINGS: Final = {label: label for label in LABELS} | {f"{label}.": label for label in LABELS}
_HEADERS: Final = (FEATURE_NAMES, (*FEATURE_NAMES, LABEL_FIELD))
_MINIMA: Final = np.array([FIELDS[i].minimum for i, _ in _NUMERIC], dtype=np.int64)  # type: ignore[union-attr]
_MAXIMA: Final = np.array([FIELDS[i].maximum for i, _ in _NUMERIC], dtype=np.int64)  # type: ignore[union-attr]


def excerpt(raw: str) -> str:
    return raw if len(raw) <= RAW_EXCERPT_CHARS else raw[:RAW_EXCERPT_CHARS] + "…"


def _whole_number(text: str) -> int | None:
    digits = text[1:] if text[:1] in "+-" else text
    if not (digits.isascii() and digits.isdigit()):
        return None
    return int(text)


def check_fields(fields: Sequence[str]) -> tuple[tuple[Value, ...], str | None]:
    """Validate one line's fields; return its typed values and its `income` label, if any.

    Raises `RecordError` naming the first field, and its value, that breaks the schema.
    """
    count = len(fields)
    if count not in (_FIELD_COUNT, _FIELD_COUNT + 1):
        raise RecordError(
            RejectReason.FIELD_COUNT,
            f"expected {_FIELD_COUNT} fields (or {_FIELD_COUNT + 1} with income), got {count}",
        )
    values: list[Value] = [text.strip() for text in fields[:_FIELD_COUNT]]
    for index, numeric in _NUMERIC:
        text = str(values[index])
        number = _whole_number(text)
        if number is None:
            raise RecordError(
                RejectReason.INVALID_VALUE,
                f"{numeric.name}: {excerpt(text)!r} is not a whole number",
                numeric.name,
            )
        if not numeric.minimum <= number <= numeric.maximum:
            raise RecordError(
                RejectReason.INVALID_VALUE,
                f"{numeric.name}: {number} is outside {numeric.minimum}..{numeric.maximum}",
                numeric.name,
            )
        values[index] = number
    for index, codes in CODES.items():
        if values[index] not in codes:
            name = FIELDS[index].name
            raise RecordError(
                RejectReason.UNKNOWN_CATEGORY,
                f"{name}: {excerpt(str(values[index]))!r} is not a known category",
                name,
            )
    actual = None
    if count > _FIELD_COUNT:
        spelled = fields[_FIELD_COUNT].strip()
        actual = _LABEL_SPELLINGS.get(spelled)
        if actual is None:
            raise RecordError(
                RejectReason.INVALID_VALUE,
                f"{LABEL_FIELD}: {excerpt(spelled)!r} is not one of {', '.join(LABELS)}",
                LABEL_FIELD,
            )
    return tuple(values), actual


def split_fields(text: str) -> list[str]:
    if '"' not in text:
        return text.split(",")
    # Quoted fields are rare; the csv module gives them their usual meaning, so a quoted
    # comma stays inside its field and the error names that field.
    return next(csv.reader([text], skipinitialspace=True), [])


def parse_chunk(data: bytes, first_line: int = 1, *, allow_header: bool = True) -> ParsedBatch:
    """Parse a run of whole lines from a record file.

    `first_line` is the 1-based number of the first line in `data` (chunks of a large file
    start mid-file); `allow_header` lets the first non-blank line be a header row.
    """
    if first_line == 1 and data.startswith(BOM):
        data = data[len(BOM) :]
    rejections: list[Rejection] = []
    try:
        text = data.decode("utf-8")
        texts = (text.replace("\r\n", "\n") if "\r" in text else text).split("\n")
    except UnicodeDecodeError:
        texts = _decode_line_by_line(data, first_line, rejections)
    return _parse_texts(texts, first_line, rejections, allow_header=allow_header)


def _decode_line_by_line(data: bytes, first_line: int, rejections: list[Rejection]) -> list[str]:
    """Decode what can be decoded; each line that is not UTF-8 becomes a rejection."""
    texts: list[str] = []
    for offset, raw in enumerate(data.split(b"\n")):
        try:
            texts.append(raw.removesuffix(b"\r").decode("utf-8"))
        except UnicodeDecodeError as error:
            texts.append("")
            rejections.append(
                Rejection(
                    first_line + offset,
                    excerpt(raw.decode("utf-8", errors="backslashreplace")),
                    RejectReason.ENCODING,
                    f"line is not valid UTF-8 (bad byte at position {error.start})",
                )
            )
    return texts


def _parse_texts(
    texts: list[str], first_line: int, rejections: list[Rejection], *, allow_header: bool
) -> ParsedBatch:
    first = next((i for i, text in enumerate(texts) if text and not text.isspace()), None)
    if first is None:
        return _slow_path([], rejections)
    first_is_header = (
        allow_header
        and not any(rejection.line < first_line + first for rejection in rejections)
        and tuple(name.strip().lower() for name in split_fields(texts[first])) in _HEADERS
    )
    # Lines are grouped by field count so that each group can be cut into columns at once.
    widths = np.fromiter(map(str.count, texts, repeat(",")), np.int64, len(texts)) + 1
    if first_is_header:
        widths[first] = 0
    if '"' in "".join(texts):
        widths[[i for i, text in enumerate(texts) if '"' in text]] = 0
    parts: list[ParsedBatch] = []
    retry: list[int] = np.flatnonzero((widths != _FIELD_COUNT) & (widths != _FIELD_COUNT + 1)).tolist()
    for width in (_FIELD_COUNT, _FIELD_COUNT + 1):
        positions = np.flatnonzero(widths == width).tolist()
        if positions:
            accepted, rejected_positions = _fast_path(texts, positions, width, first_line)
            parts.append(accepted)
            retry.extend(rejected_positions)
    if first_is_header:
        retry.remove(first)
    slow = [(first_line + i, texts[i]) for i in sorted(retry) if texts[i] and not texts[i].isspace()]
    parts.append(_slow_path(slow, rejections))
    return _merge(parts)


def _fast_path(
    texts: list[str], positions: list[int], width: int, first_line: int
) -> tuple[ParsedBatch, list[int]]:
    """Accept the lines at `positions` that are plainly valid, column by column.

    Anything unusual (a number that is not plain ASCII digits, an unknown or oddly spaced
    category, a value out of range) is handed back for `check_fields` to accept or reject
    with its reason.
    """
    count = len(positions)
    lines = ", ".join([texts[i] for i in positions])
    # The census format puts a space after every comma. Every line here has width - 1
    # commas, so the split comes out whole exactly when each comma has its space; any
    # other spacing is normalised first.
    flat = lines.split(", ")
    if len(flat) != count * width:
        flat = lines.replace(", ", ",").split(",")
    ok = np.ones(count, dtype=bool)
    matrix = np.empty((count, _FIELD_COUNT), dtype=np.float32)
    numbers = np.empty((count, len(NUMERIC_COLUMNS)), dtype=np.int64)
    for place, index in enumerate(NUMERIC_COLUMNS):
        column = flat[index::width]
        joined = ",".join(column)
        if all(column) and joined.isascii() and joined.replace(",", "").isdigit():
            # Every field is plain ASCII digits, so numpy's own parser reads them exactly.
            numbers[:, place] = np.fromstring(joined, dtype=np.int64, sep=",")
        else:
            plain = [text.isascii() and text.isdigit() for text in column]
            numbers[:, place] = [int(t) if good else 0 for t, good in zip(column, plain, strict=True)]
            ok &= plain
    ok &= ((numbers >= _MINIMA) & (numbers <= _MAXIMA)).all(axis=1)
    matrix[:, NUMERIC_COLUMNS] = numbers
    for index, codes in CODES.items():
        column = flat[index::width]
        try:
            matrix[:, index] = np.fromiter(map(codes.__getitem__, column), np.float32, count)
        except KeyError:
            coded = np.array([codes.get(text, UNKNOWN_CODE) for text in column])
            ok &= coded != UNKNOWN_CODE
            matrix[:, index] = coded
    actual: list[str | None] = [None] * count
    if width > _FIELD_COUNT:
        actual = [_LABEL_SPELLINGS.get(text.strip()) for text in flat[_FIELD_COUNT::width]]
        ok &= [label is not None for label in actual]
    keep = np.flatnonzero(ok)
    accepted = ParsedBatch(
        lines=(np.array(positions)[keep] + first_line).tolist(),
        features=matrix[keep],
        actual=[actual[i] for i in keep.tolist()],
    )
    return accepted, [positions[i] for i in np.flatnonzero(~ok).tolist()]


def _slow_path(lines: list[tuple[int, str]], rejections: list[Rejection]) -> ParsedBatch:
    numbers: list[int] = []
    rows: list[tuple[Value, ...]] = []
    actual: list[str | None] = []
    for number, text in lines:
        if "\x00" in text:
            # Valid UTF-8 but not text: what UTF-16 or binary data looks like line by line.
            rejections.append(
                Rejection(
                    number,
                    excerpt(text.replace("\x00", "\\x00")),
                    RejectReason.ENCODING,
                    "line contains NUL bytes: not UTF-8 text (UTF-16 or binary data?)",
                )
            )
            continue
        if len(text) > MAX_LINE_CHARS:
            rejections.append(
                Rejection(
                    number,
                    excerpt(text),
                    RejectReason.LINE_TOO_LONG,
                    f"line has {len(text)} characters; a record has at most {MAX_LINE_CHARS}",
                )
            )
            continue
        try:
            values, label = check_fields(split_fields(text))
        except RecordError as error:
            rejections.append(Rejection(number, excerpt(text), error.reason, str(error)))
            continue
        numbers.append(number)
        rows.append(values)
        actual.append(label)
    return ParsedBatch(numbers, encode_values(rows), actual, rejections)


def _merge(parts: list[ParsedBatch]) -> ParsedBatch:
    parts = [part for part in parts if len(part) or part.rejections]
    if len(parts) == 1:
        only = parts[0]
        only.rejections.sort(key=lambda rejection: rejection.line)
        return only
    lines = [line for part in parts for line in part.lines]
    order = np.argsort(np.array(lines, dtype=np.int64), kind="stable")
    features = (
        np.concatenate([part.features for part in parts])[order]
        if parts
        else np.empty((0, _FIELD_COUNT), dtype=np.float32)
    )
    actual = [label for part in parts for label in part.actual]
    rejections = sorted(
        (rejection for part in parts for rejection in part.rejections),
        key=lambda rejection: rejection.line,
    )
    return ParsedBatch(
        lines=[lines[i] for i in order.tolist()],
        features=features,
        actual=[actual[i] for i in order.tolist()],
        rejections=rejections,
    )
