"""Parsing and validating record files against a bundle's schema.

A record file is one of three layouts (`Layout`):

- CSV without a header: the bundle's fields in order, the target column optional;
- CSV with a header: columns matched by name in any order, the target optional, columns the
  bundle does not know ignored (and named once);
- JSON Lines: one object per line, keyed by field name.

What a line is, decided once for the whole project: lines end at LF; a CR right before the LF
belongs to the line break (CRLF); any other CR, and every other control character, is part of
the line's content. A line is blank when it holds nothing but spaces and tabs; blank lines are
not records. Every other line ends as an accepted record or as a `Rejection` naming the line,
the field and the value: nothing is dropped. Fetch's chunk planner cuts at the same LF.

UTF-8 with or without a BOM; a line that is not UTF-8 is rejected on its own, keeping its bytes.

`check_record` is the definition of a valid record. `parse_chunk` runs it on every line that
the vectorised fast path does not accept outright, so the two agree by construction (and
tests/unit/test_records.py checks that they do on arbitrary input).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from predictflow.bundle.format import BINARY_SPELLINGS
from predictflow.bundle.schema import ID_SLOT, IGNORED_SLOT, TARGET_SLOT, CompiledSchema
from predictflow.errors import MissingColumns, RecordError, RejectReason

FeatureMatrix = npt.NDArray[np.float32]
Actual = str | float | None

MAX_LINE_CHARS: Final = 65_536
"""A record of even a wide table is a few kilobytes; a line this long is not one."""

RAW_EXCERPT_CHARS: Final = 4_096
"""How much of a rejected line a dead-letter entry carries. The whole line stays in the
versioned source object, addressed by its line number."""

BOM: Final = b"\xef\xbb\xbf"
HEADER_HINT: Final = "predictflow-header"
"""S3 user metadata naming whether a file's first line is a header (`present` or `absent`):
replay sets it, so that a dead-lettered header-like line is never taken for a header."""

_NUMBER_TEXT: Final = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER: Final = re.compile(_NUMBER_TEXT, re.ASCII)
_NUMBERS: Final = re.compile(rf"{_NUMBER_TEXT}(?:,{_NUMBER_TEXT})*", re.ASCII)
"""A column of numbers joined by commas, each as `_NUMBER` accepts it: one regex call."""
_INTEGERS: Final = re.compile(r"[+-]?\d+(?:,[+-]?\d+)*", re.ASCII)
UNKNOWN_CODE: Final = -1.0


@dataclass(frozen=True, slots=True)
class Layout:
    """How a file's lines map to fields. Travels between steps as `as_dict()`."""

    format: Literal["csv", "jsonl"] = "csv"
    header: tuple[str, ...] | None = None
    """The header row's column names as the file spells them; None for a headerless CSV."""
    header_line: str | None = None
    """The header row as the file holds it, so that a replay can put it back above its lines."""

    def as_dict(self) -> dict[str, Any]:
        header = list(self.header) if self.header is not None else None
        return {"format": self.format, "header": header, "header_line": self.header_line}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Layout | None:
        if not data:
            return None
        header = data.get("header")
        return cls(data["format"], tuple(header) if header is not None else None, data.get("header_line"))


@dataclass(frozen=True, slots=True)
class Rejection:
    """A line that is not a valid record, with a reason a person can act on."""

    line: int
    raw: str
    reason: RejectReason
    message: str
    raw_bytes: bytes | None = None
    """The line's own bytes when they are not UTF-8 text, so that a replay sends them unchanged."""


@dataclass(slots=True)
class ParsedBatch:
    """The outcome of parsing some lines: accepted records (columnar) and rejections."""

    lines: list[int]
    features: FeatureMatrix
    actual: list[Actual] | None = None
    """Per record, the target value a labelled file carries; None when no line had one."""
    ids: list[str] | None = None
    """Per record, the row id, when the bundle names a row-id field."""
    rejections: list[Rejection] = field(default_factory=list)
    layout: Layout | None = None
    ignored_columns: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.lines)


def excerpt(raw: str) -> str:
    return raw if len(raw) <= RAW_EXCERPT_CHARS else raw[:RAW_EXCERPT_CHARS] + "…"


def is_blank(text: str) -> bool:
    """A line with nothing but spaces and tabs (the one definition of blank)."""
    return not text.strip(" \t")


def split_lines(text: str) -> list[str]:
    """Lines end at LF; a CR right before it is part of the line break (see the module doc)."""
    return (text.replace("\r\n", "\n") if "\r" in text else text).split("\n")


# ---------------------------------------------------------------------------------- layout


def detect_layout(first_line: str, schema: CompiledSchema, hint: str | None = None) -> Layout:
    """The layout of a file, from its first non-blank line (BOM removed) and the uploader's hint.

    A first line is a header when at least half of its cells are field names of the bundle
    (case and spaces aside); `hint` (`present` / `absent`, from S3 metadata) overrides that.
    """
    stripped = first_line.lstrip(" \t")
    if stripped.startswith("{"):
        return Layout("jsonl")
    if hint == "absent" or len(first_line) > MAX_LINE_CHARS:
        return Layout("csv")
    try:
        cells = [cell.strip() for cell in split_fields(first_line)]
    except RecordError:
        return Layout("csv")
    if hint == "present" or _looks_like_header(cells, schema):
        return Layout("csv", tuple(cells), first_line)
    return Layout("csv")


def _looks_like_header(cells: Sequence[str], schema: CompiledSchema) -> bool:
    known = sum(cell.lower() in schema.names_by_lower for cell in cells)
    return known > 0 and 2 * known >= len(cells)


def header_slots(layout: Layout, schema: CompiledSchema) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Each header column's slot, and the columns the bundle does not know.

    Raises `MissingColumns` naming every required column the header lacks.
    """
    assert layout.header is not None
    slots = tuple(schema.slot_of(schema.names_by_lower.get(name.lower(), "")) for name in layout.header)
    present = {schema.names_by_lower.get(name.lower()) for name in layout.header}
    missing = [name for name in schema.required if name not in present]
    if missing:
        raise MissingColumns(
            f"the header lacks {len(missing)} column(s) the model needs: {', '.join(missing)} "
            f"(the header has: {', '.join(layout.header)})"
        )
    repeated = sorted({n for n in layout.header if [h.lower() for h in layout.header].count(n.lower()) > 1})
    if repeated:
        raise MissingColumns(f"the header names a column more than once: {', '.join(repeated)}")
    ignored = tuple(name for name, slot in zip(layout.header, slots, strict=True) if slot == IGNORED_SLOT)
    return slots, ignored


def first_record_line(data: bytes) -> tuple[int, str] | None:
    """The first non-blank line of a file's head (offset in lines, text), BOM removed."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    for offset, raw in enumerate(data.split(b"\n")):
        text = raw.removesuffix(b"\r").decode("utf-8", errors="replace")
        if not is_blank(text):
            return offset, text
    return None


# ----------------------------------------------------------------------------- validity


def split_fields(text: str) -> list[str]:
    if '"' not in text:
        return text.split(",")
    # Quoted fields are rare; the csv module gives them their usual meaning, so a quoted comma
    # stays inside its field. Its own errors (an unclosed quote, a field over its size limit)
    # are a malformed line, never an exception that escapes.
    try:
        return next(csv.reader([text], skipinitialspace=True), [])
    except csv.Error as error:
        raise RecordError(RejectReason.MALFORMED, f"line is not valid CSV: {error}") from error


def _whole_number(text: str) -> int | None:
    digits = text[1:] if text[:1] in "+-" else text
    if not (digits.isascii() and digits.isdigit()):
        return None
    return int(text)


def _range_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def check_value(schema: CompiledSchema, index: int, raw: str) -> float:
    """The model code of one feature's text, or a `RecordError` naming the field and value."""
    spec = schema.features[index]
    text = raw.strip()
    if text in schema.missing[index]:
        return math.nan
    if spec.type == "category":
        code = schema.codes[index].get(text)
        if code is None:
            raise RecordError(
                RejectReason.UNKNOWN_CATEGORY,
                f"{spec.name}: {excerpt(text)!r} is not a known category",
                spec.name,
            )
        return code
    if spec.type == "binary":
        binary = BINARY_SPELLINGS.get(text.lower())
        if binary is None:
            raise RecordError(
                RejectReason.INVALID_VALUE,
                f"{spec.name}: {excerpt(text)!r} is not a yes/no value (0/1, y/n, yes/no, t/f, true/false)",
                spec.name,
            )
        return float(binary)
    if spec.type == "integer":
        number = _whole_number(text)
        if number is None:
            raise RecordError(
                RejectReason.INVALID_VALUE, f"{spec.name}: {excerpt(text)!r} is not a whole number", spec.name
            )
        value = float(number)
        shown = str(number)
    else:
        if not _NUMBER.fullmatch(text) or not math.isfinite(value := float(text)):
            raise RecordError(
                RejectReason.INVALID_VALUE, f"{spec.name}: {excerpt(text)!r} is not a number", spec.name
            )
        shown = text
    if spec.range is not None and not spec.range[0] <= value <= spec.range[1]:
        low, high = spec.range
        raise RecordError(
            RejectReason.INVALID_VALUE,
            f"{spec.name}: {shown} is outside {_range_text(low)}..{_range_text(high)}",
            spec.name,
        )
    return value


def check_actual(schema: CompiledSchema, raw: str) -> Actual:
    """The target value a labelled record carries (None when it is empty or marked missing)."""
    text = raw.strip()
    if text in schema.target_missing:
        return None
    target = schema.target
    if target.task == "regression":
        if not _NUMBER.fullmatch(text) or not math.isfinite(value := float(text)):
            raise RecordError(
                RejectReason.INVALID_VALUE, f"{target.name}: {excerpt(text)!r} is not a number", target.name
            )
        return value
    label = schema.labels.get(text)
    if label is None:
        raise RecordError(
            RejectReason.INVALID_VALUE,
            f"{target.name}: {excerpt(text)!r} is not one of {', '.join(target.labels)}",
            target.name,
        )
    return label


def check_record(
    schema: CompiledSchema, texts: Sequence[str], slots: Sequence[int]
) -> tuple[list[float], str | None, Actual]:
    """Validate one record given as texts with their slots; return its model codes, row id and
    target value. Raises `RecordError` naming the first field, and its value, that breaks the
    schema (fields in the model's order)."""
    feature_texts: list[str | None] = [None] * schema.width
    row_id: str | None = None
    actual_text: str | None = None
    for text, slot in zip(texts, slots, strict=True):
        if slot >= 0:
            feature_texts[slot] = text
        elif slot == ID_SLOT:
            row_id = text.strip()
        elif slot == TARGET_SLOT:
            actual_text = text
    codes = []
    for index, feature_text in enumerate(feature_texts):
        if feature_text is None:
            name = schema.feature_names[index]
            raise RecordError(RejectReason.MISSING_FIELD, f"{name}: the field is missing", name)
        codes.append(check_value(schema, index, feature_text))
    actual = check_actual(schema, actual_text) if actual_text is not None else None
    return codes, row_id, actual


def _field_count_message(schema: CompiledSchema, allowed: Sequence[int], count: int) -> str:
    if len(allowed) == 2:
        return (
            f"expected {allowed[1]} fields (or {allowed[0]} with {schema.target.name}), got {count}"
            if allowed[0] > allowed[1]
            else f"expected {allowed[0]} fields (or {allowed[1]} with {schema.target.name}), got {count}"
        )
    return f"expected {allowed[0]} fields, got {count}"


# ------------------------------------------------------------------------------ parsing


def parse_chunk(
    data: bytes,
    schema: CompiledSchema,
    first_line: int = 1,
    *,
    layout: Layout | None = None,
    header_hint: str | None = None,
) -> ParsedBatch:
    """Parse a run of whole lines from a record file.

    `first_line` is the 1-based number of the first line in `data` (chunks of a large file
    start mid-file). The layout is detected from the file's first line when `data` starts the
    file and none is given; a later chunk gets the layout Fetch detected. Raises
    `MissingColumns` when the header lacks a column the model needs.
    """
    if first_line == 1 and data.startswith(BOM):
        data = data[len(BOM) :]
    rejections: list[Rejection] = []
    try:
        texts = split_lines(data.decode("utf-8"))
    except UnicodeDecodeError:
        texts = _decode_line_by_line(data, first_line, rejections)
    header_at: int | None = None
    if layout is None or first_line == 1:
        first = next((i for i, text in enumerate(texts) if not is_blank(text)), None)
        if first is not None and not any(r.line == first_line + first for r in rejections):
            if layout is None:
                layout = detect_layout(texts[first], schema, header_hint if first_line == 1 else "absent")
            if layout.header is not None and first_line == 1:
                header_at = first
    layout = layout or Layout("csv")
    if layout.format == "jsonl":
        batch = _parse_json_lines(texts, first_line, rejections, schema)
    else:
        batch = _parse_csv(texts, first_line, rejections, schema, layout, header_at)
    batch.layout = layout
    return batch


def _decode_line_by_line(data: bytes, first_line: int, rejections: list[Rejection]) -> list[str]:
    """Decode what can be decoded; each line that is not UTF-8 becomes a rejection."""
    texts: list[str] = []
    for offset, raw in enumerate(data.split(b"\n")):
        raw = raw.removesuffix(b"\r")
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            texts.append("")
            rejections.append(
                Rejection(
                    first_line + offset,
                    excerpt(raw.decode("utf-8", errors="backslashreplace")),
                    RejectReason.ENCODING,
                    f"line is not valid UTF-8 (bad byte at position {error.start})",
                    raw_bytes=raw[: RAW_EXCERPT_CHARS * 4],
                )
            )
    return texts


def _parse_csv(
    texts: list[str],
    first_line: int,
    rejections: list[Rejection],
    schema: CompiledSchema,
    layout: Layout,
    header_at: int | None,
) -> ParsedBatch:
    ignored: tuple[str, ...] = ()
    if layout.header is not None:
        slots, ignored = header_slots(layout, schema)
        # As in a headerless file, a record may leave out the target when it is the last column.
        layouts: tuple[tuple[int, ...], ...] = (slots, slots[:-1]) if slots[-1] == TARGET_SLOT else (slots,)
    else:
        layouts = schema.headerless_slots
    by_width = {len(slots): slots for slots in layouts}
    # Lines are grouped by field count so that each group can be cut into columns at once.
    widths = np.fromiter(map(str.count, texts, repeat(",")), np.int64, len(texts)) + 1
    if header_at is not None:
        widths[header_at] = 0
    if '"' in "".join(texts):
        widths[[i for i, text in enumerate(texts) if '"' in text]] = 0
    parts: list[ParsedBatch] = []
    known_width = np.zeros(len(texts), dtype=bool)
    for width in by_width:
        known_width |= widths == width
    retry: list[int] = np.flatnonzero(~known_width).tolist()
    for width, slots in by_width.items():
        positions = np.flatnonzero(widths == width).tolist()
        if positions:
            accepted, rejected_positions = _fast_path(texts, positions, slots, first_line, schema)
            parts.append(accepted)
            retry.extend(rejected_positions)
    if header_at is not None:
        retry.remove(header_at)
    slow = [(first_line + i, texts[i]) for i in sorted(retry) if not is_blank(texts[i])]
    parts.append(_slow_path(slow, rejections, schema, by_width, layout))
    batch = _merge(parts, schema)
    batch.ignored_columns = ignored
    return batch


def _fast_path(
    texts: list[str], positions: list[int], slots: tuple[int, ...], first_line: int, schema: CompiledSchema
) -> tuple[ParsedBatch, list[int]]:
    """Accept the lines at `positions` that are plainly valid, column by column.

    Anything unusual (a number that is not plain ASCII, an unknown or oddly spaced category, a
    value out of range) is handed back for `check_record` to accept or reject with its reason.
    """
    count = len(positions)
    width = len(slots)
    lines = ", ".join([texts[i] for i in positions])
    # Files written as "a, b, c" (the census extract) split whole on ", "; any other spacing
    # is normalised first. Every line here has width - 1 commas, so the count tells.
    flat = lines.split(", ")
    if len(flat) != count * width:
        flat = lines.replace(", ", ",").split(",")
    column_of = {slot: place for place, slot in enumerate(slots)}
    ok = np.ones(count, dtype=bool)
    matrix = np.empty((count, schema.width), dtype=np.float32)
    if schema.numeric:
        numbers = np.empty((count, len(schema.numeric)), dtype=np.float64)
        some_missing = False
        for place, index in enumerate(schema.numeric):
            column = flat[column_of[index] :: width]
            numbers[:, place], good = _numeric_column(column, schema, index)
            if good is not None:
                ok &= good
                some_missing = True
        inside = (numbers >= schema.minima) & (numbers <= schema.maxima)
        ok &= (inside | np.isnan(numbers) if some_missing else inside).all(axis=1)
        matrix[:, schema.numeric] = numbers
    for index, codes in schema.codes.items():
        column = flat[column_of[index] :: width]
        try:
            matrix[:, index] = np.fromiter(map(codes.__getitem__, column), np.float32, count)
        except KeyError:
            coded = np.array([codes.get(text, UNKNOWN_CODE) for text in column], dtype=np.float32)
            ok &= coded != UNKNOWN_CODE
            matrix[:, index] = coded
    ids = None
    if ID_SLOT in column_of:
        ids = [text.strip() for text in flat[column_of[ID_SLOT] :: width]]
    actual: list[Actual] | None = None
    if TARGET_SLOT in column_of:
        actual, good_labels = _actual_column(flat[column_of[TARGET_SLOT] :: width], schema)
        ok &= good_labels
    keep = np.flatnonzero(ok)
    kept = keep.tolist()
    accepted = ParsedBatch(
        lines=(np.array(positions, dtype=np.int64)[keep] + first_line).tolist(),
        features=matrix[keep],
        actual=[actual[i] for i in kept] if actual is not None else None,
        ids=[ids[i] for i in kept] if ids is not None else None,
    )
    return accepted, [positions[i] for i in np.flatnonzero(~ok).tolist()]


def _numeric_column(
    column: list[str], schema: CompiledSchema, index: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_] | None]:
    """A numeric column's values, and which are plainly valid (None: all of them).

    Missing markers are set aside first (NaN), so that a column with a few empty cells is still
    read by numpy's parser in one call; anything else unusual is read value by value."""
    spec = schema.features[index]
    missing = schema.missing[index]
    absent = np.fromiter(map(missing.__contains__, column), bool, len(column)) if missing else None
    if absent is None or not absent.any():
        parsed = _plain_numbers(column, spec.type == "integer", spec.range is not None)
        if parsed is not None:
            return parsed
    else:
        present = np.flatnonzero(~absent)
        parsed = _plain_numbers(
            [column[i] for i in present.tolist()], spec.type == "integer", spec.range is not None
        )
        if parsed is not None:
            values = np.full(len(column), math.nan)
            values[present] = parsed[0]
            # A mask even when every present value is plain: it tells the caller that NaNs here
            # are missing values, not failed checks.
            good = np.ones(len(column), dtype=bool)
            if parsed[1] is not None:
                good[present] = parsed[1]
            return values, good
    return _numbers_one_by_one(column, spec.type == "integer", missing)


def _plain_numbers(
    column: list[str], integer: bool, ranged: bool
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_] | None] | None:
    """numpy's parser over a column of plain ASCII numbers, or None when it is not one."""
    if not column:
        return np.empty(0, dtype=np.float64), None
    joined = ",".join(column)
    if not (all(column) and joined.isascii()):
        return None
    if integer and _INTEGERS.fullmatch(joined) and (ranged or max(map(len, column)) < 19):
        # Every field is a plain ASCII whole number, so numpy's own parser reads them exactly. It
        # clamps a number beyond int64 to its limit, which any range the bundle format allows
        # rejects; a field without a range checks the digit count instead.
        return np.fromstring(joined, dtype=np.int64, sep=",").astype(np.float64), None
    if not integer and _NUMBERS.fullmatch(joined):
        values = np.fromstring(joined, dtype=np.float64, sep=",")
        finite = np.isfinite(values)
        return values, None if finite.all() else finite
    return None


def _numbers_one_by_one(
    column: list[str], integer: bool, missing: frozenset[str]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    values = np.empty(len(column), dtype=np.float64)
    good = np.ones(len(column), dtype=bool)
    for row, text in enumerate(column):
        if text in missing:
            values[row] = math.nan
        elif (text.isascii() and text.isdigit()) if integer else bool(_NUMBER.fullmatch(text)):
            values[row] = float(text)
            good[row] = math.isfinite(values[row])
        else:
            values[row] = math.nan
            good[row] = False
    return values, good


def _actual_column(column: list[str], schema: CompiledSchema) -> tuple[list[Actual], npt.NDArray[np.bool_]]:
    if schema.target.task == "regression":
        values: list[Actual] = []
        good = np.ones(len(column), dtype=bool)
        for row, text in enumerate(column):
            stripped = text.strip()
            if stripped in schema.target_missing:
                values.append(None)
            elif _NUMBER.fullmatch(stripped) and math.isfinite(number := float(stripped)):
                values.append(number)
            else:
                values.append(None)
                good[row] = False
        return values, good
    labels = schema.labels
    missing = schema.target_missing
    actual: list[Actual] = [labels.get(text.strip()) for text in column]
    good = np.array(
        [label is not None or text.strip() in missing for label, text in zip(actual, column, strict=True)],
        dtype=bool,
    )
    return actual, good


def _slow_path(
    lines: list[tuple[int, str]],
    rejections: list[Rejection],
    schema: CompiledSchema,
    by_width: Mapping[int, tuple[int, ...]],
    layout: Layout,
) -> ParsedBatch:
    numbers: list[int] = []
    rows: list[list[float]] = []
    ids: list[str | None] = []
    actual: list[Actual] = []
    allowed = sorted(by_width, reverse=True)
    for number, text in lines:
        try:
            _check_line_text(text)
            fields = split_fields(text)
            slots = by_width.get(len(fields))
            if slots is None:
                raise RecordError(
                    RejectReason.FIELD_COUNT, _field_count_message(schema, allowed, len(fields))
                )
            values, row_id, label = check_record(schema, fields, slots)
        except RecordError as error:
            reason, message = error.reason, str(error)
            if _looks_like_header([cell.strip() for cell in _cells_or_empty(text)], schema):
                reason = RejectReason.HEADER_ROW
                message = (
                    "this line is a header row (column names), not a record: a header belongs "
                    "on the file's first line only (were files joined together?)"
                )
            rejections.append(Rejection(number, excerpt(_printable(text)), reason, message))
            continue
        numbers.append(number)
        rows.append(values)
        ids.append(row_id)
        actual.append(label)
    return _batch_of(numbers, rows, ids, actual, schema, rejections)


def _check_line_text(text: str) -> None:
    if "\x00" in text:
        # Valid UTF-8 but not text: what UTF-16 or binary data looks like line by line.
        raise RecordError(
            RejectReason.ENCODING, "line contains NUL bytes: not UTF-8 text (UTF-16 or binary data?)"
        )
    if len(text) > MAX_LINE_CHARS:
        raise RecordError(
            RejectReason.LINE_TOO_LONG,
            f"line has {len(text)} characters; a record has at most {MAX_LINE_CHARS}",
        )
    if text.startswith("\ufeff"):
        raise RecordError(
            RejectReason.MALFORMED,
            "line starts with a byte-order mark (U+FEFF), which belongs only at the very start of a "
            "file (were files joined together?)",
        )


def _cells_or_empty(text: str) -> list[str]:
    if len(text) > MAX_LINE_CHARS:
        return []
    try:
        return split_fields(text)
    except RecordError:
        return []


def _printable(text: str) -> str:
    return text.replace("\x00", "\\x00")


def _batch_of(
    numbers: list[int],
    rows: list[list[float]],
    ids: list[str | None],
    actual: list[Actual],
    schema: CompiledSchema,
    rejections: list[Rejection],
) -> ParsedBatch:
    features = np.array(rows, dtype=np.float32).reshape(len(rows), schema.width)
    return ParsedBatch(
        lines=numbers,
        features=features,
        actual=actual if any(label is not None for label in actual) else None,
        ids=[row_id or "" for row_id in ids] if schema.row_id is not None else None,
        rejections=rejections,
    )


def _parse_json_lines(
    texts: list[str], first_line: int, rejections: list[Rejection], schema: CompiledSchema
) -> ParsedBatch:
    numbers: list[int] = []
    rows: list[list[float]] = []
    ids: list[str | None] = []
    actual: list[Actual] = []
    failed = {rejection.line for rejection in rejections}
    names = [spec.name for spec in schema.features]
    for offset, text in enumerate(texts):
        number = first_line + offset
        if number in failed or is_blank(text):
            continue
        try:
            _check_line_text(text)
            texts_by_slot, slots = _json_record(text, schema, names)
            values, row_id, label = check_record(schema, texts_by_slot, slots)
        except RecordError as error:
            rejections.append(Rejection(number, excerpt(_printable(text)), error.reason, str(error)))
            continue
        numbers.append(number)
        rows.append(values)
        ids.append(row_id)
        actual.append(label)
    return _merge([_batch_of(numbers, rows, ids, actual, schema, rejections)], schema)


def _json_record(text: str, schema: CompiledSchema, names: list[str]) -> tuple[list[str], list[int]]:
    try:
        record = json.loads(text)
    except ValueError as error:
        raise RecordError(RejectReason.MALFORMED, f"line is not valid JSON: {error}") from error
    if not isinstance(record, dict):
        raise RecordError(RejectReason.MALFORMED, f"line is JSON but not an object: {excerpt(text)!r}")
    texts: list[str] = []
    slots: list[int] = []
    wanted = [(name, index) for index, name in enumerate(names)]
    if schema.row_id is not None:
        wanted.append((schema.row_id.name, ID_SLOT))
    for name, slot in wanted:
        if name not in record:
            raise RecordError(RejectReason.MISSING_FIELD, f"{name}: the field is missing", name)
        texts.append(_json_text(record[name], name, schema.missing.get(slot, frozenset())))
        slots.append(slot)
    if schema.target.name in record and record[schema.target.name] is not None:
        texts.append(_json_text(record[schema.target.name], schema.target.name, frozenset()))
        slots.append(TARGET_SLOT)
    return texts, slots


def _json_text(value: Any, name: str, missing: frozenset[str]) -> str:
    """A JSON value as the text the CSV layouts would carry; null is the field's missing marker."""
    if value is None:
        if not missing:
            raise RecordError(
                RejectReason.INVALID_VALUE, f"{name}: null, and the field has no missing value", name
            )
        return min(missing)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, str):
        return value
    raise RecordError(
        RejectReason.INVALID_VALUE, f"{name}: {excerpt(json.dumps(value))} is not a single value", name
    )


def _merge(parts: list[ParsedBatch], schema: CompiledSchema) -> ParsedBatch:
    parts = [part for part in parts if len(part) or part.rejections]
    rejections = sorted((r for part in parts for r in part.rejections), key=lambda rejection: rejection.line)
    if not parts:
        return ParsedBatch([], np.empty((0, schema.width), dtype=np.float32), rejections=rejections)
    if len(parts) == 1:
        # The common case, a chunk of well-formed lines of one width: already in line order.
        only = parts[0]
        only.rejections = rejections
        return only
    lines = [line for part in parts for line in part.lines]
    order = np.argsort(np.array(lines, dtype=np.int64), kind="stable").tolist()
    with_actual = any(part.actual is not None for part in parts)
    actual = [label for part in parts for label in (part.actual or [None] * len(part))]
    ids = [row_id for part in parts for row_id in (part.ids or [""] * len(part))]
    return ParsedBatch(
        lines=[lines[i] for i in order],
        features=np.concatenate([part.features for part in parts])[order],
        actual=[actual[i] for i in order] if with_actual else None,
        ids=[ids[i] for i in order] if schema.row_id is not None else None,
        rejections=rejections,
    )
