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
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from predictflow.bundle.format import BINARY_SPELLINGS
from predictflow.bundle.schema import (
    ID_SLOT,
    IGNORED_SLOT,
    MAX_SPELLING_BYTES,
    TARGET_SLOT,
    WORD_BYTES,
    ByteVocabulary,
    CompiledSchema,
    column_salt,
    spelling_key,
)
from predictflow.errors import MissingColumns, RecordError, RejectReason
from predictflow.pipeline.chunks import cut_chunks

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
    """The first line of a file's head that is UTF-8 and not blank (offset in lines, text), BOM
    removed: the line Validate detects the layout from when it reads the file's first chunk
    (`_first_non_blank`), so that Fetch, reading the head of a file of several chunks, finds
    the same one."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    return _first_non_blank(data, whole=False)


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
    opens_file: bool | None = None,
) -> ParsedBatch:
    """Parse a run of whole lines from a record file.

    `first_line` is the 1-based number of the first line in `data` (chunks of a large file
    start mid-file). The layout is detected from the file's first line when `data` starts the
    file and none is given; a later chunk gets the layout Fetch detected. `opens_file` says
    that no line before `data` holds anything (by default: `data` starts the file), so that its
    first non-blank line may be the header. Raises `MissingColumns` when the header lacks a
    column the model needs.

    CSV lines are read in three tiers, each handing what it is not sure of to the next: the
    byte-level path (`_byte_path`, plain ASCII lines straight from the chunk's bytes), the text
    fast path (`_fast_path`, column by column over decoded lines) and `check_record`, line by
    line, which gives every rejection its reason. `parse_chunk_reference` runs the later tiers
    alone, so that tests can hold the earlier ones to them.
    """
    opens = first_line == 1 if opens_file is None else opens_file
    return _parse(data, schema, first_line, layout, header_hint, "bytes", opens)


ParsePath = Literal["bytes", "text", "reference"]


def parse_chunk_reference(
    data: bytes,
    schema: CompiledSchema,
    first_line: int = 1,
    *,
    layout: Layout | None = None,
    header_hint: str | None = None,
    path: ParsePath = "reference",
    opens_file: bool | None = None,
) -> ParsedBatch:
    """`parse_chunk` with `check_record` on every line (`path="reference"`), or with the text fast
    path before it and no byte-level path (`path="text"`, the parser before the byte path)."""
    opens = first_line == 1 if opens_file is None else opens_file
    return _parse(data, schema, first_line, layout, header_hint, path, opens)


def _parse(
    data: bytes,
    schema: CompiledSchema,
    first_line: int,
    layout: Layout | None,
    header_hint: str | None,
    path: ParsePath,
    opens: bool,
) -> ParsedBatch:
    if first_line == 1 and data.startswith(BOM):
        data = data[len(BOM) :]
    whole = _is_utf8(data)
    header_at: int | None = None
    if layout is None or opens:
        found = _first_non_blank(data, whole)
        if found is not None:
            first, text = found
            if layout is None:
                layout = detect_layout(text, schema, header_hint if opens else "absent")
            if layout.header is not None and opens:
                header_at = first
    # A chunk of blank lines alone says nothing of the file: its batch's layout stays None (as
    # it came), so that the chunk after it, not a default, decides the file's layout.
    reading = layout or Layout("csv")
    rejections: list[Rejection] = []
    if reading.format == "jsonl":
        batch = _parse_json_lines(
            _all_texts(data, whole, first_line, rejections), first_line, rejections, schema
        )
    else:
        by_width, ignored = _csv_layouts(reading, schema)
        parts: list[ParsedBatch] = []
        if path == "bytes":
            accepted, leftover = _byte_path(data, schema, by_width, header_at, first_line)
            parts.append(accepted)
            numbers, texts = _texts_of(leftover, whole, first_line, rejections)
        else:
            texts = _all_texts(data, whole, first_line, rejections)
            numbers = [first_line + offset for offset in range(len(texts))]
            if header_at is not None:
                del numbers[header_at], texts[header_at]
        parts.extend(_parse_csv(numbers, texts, rejections, schema, by_width, fast=path != "reference"))
        batch = _merge(parts, schema)
        batch.ignored_columns = ignored
    if batch.actual is not None and all(label is None for label in batch.actual):
        # "None when no line had one", whichever tier accepted the lines: the text fast path
        # used to give a list of Nones for a target column that held only missing values.
        batch.actual = None
    batch.layout = layout
    return batch


def _is_utf8(data: bytes) -> bool:
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _line_text(raw: bytes, last: bool, whole: bool) -> str | None:
    """A line's text, None when it is not UTF-8. When the whole chunk is UTF-8 it is decoded
    at once and CRLF becomes LF, so a CR at the very end of the chunk stays in its line; a chunk
    that is not is read line by line, each line losing one trailing CR (`_decode_line_by_line`)."""
    if raw.endswith(b"\r") and (not last or not whole):
        raw = raw[:-1]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _first_non_blank(data: bytes, whole: bool) -> tuple[int, str] | None:
    """The first line that is UTF-8 and not blank (offset in lines, text)."""
    start = 0
    offset = 0
    while True:
        stop = data.find(b"\n", start)
        last = stop < 0
        text = _line_text(data[start : len(data) if last else stop], last, whole)
        if text is not None and not is_blank(text):
            return offset, text
        if last:
            return None
        start = stop + 1
        offset += 1


def _all_texts(data: bytes, whole: bool, first_line: int, rejections: list[Rejection]) -> list[str]:
    if whole:
        return split_lines(data.decode("utf-8"))
    return _decode_line_by_line(data, first_line, rejections)


def _texts_of(
    lines: list[tuple[int, bytes, bool]], whole: bool, first_line: int, rejections: list[Rejection]
) -> tuple[list[int], list[str]]:
    """Line numbers and texts of (offset, raw bytes, last line) triples; each line that is not
    UTF-8 becomes a rejection instead."""
    numbers: list[int] = []
    texts: list[str] = []
    for offset, raw, last in lines:
        text = _line_text(raw, last, whole)
        if text is None:
            rejections.append(_encoding_rejection(first_line + offset, raw.removesuffix(b"\r")))
        else:
            numbers.append(first_line + offset)
            texts.append(text)
    return numbers, texts


def _encoding_rejection(number: int, raw: bytes) -> Rejection:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return Rejection(
            number,
            excerpt(raw.decode("utf-8", errors="backslashreplace")),
            RejectReason.ENCODING,
            f"line is not valid UTF-8 (bad byte at position {error.start})",
            raw_bytes=raw[: RAW_EXCERPT_CHARS * 4],
        )
    raise AssertionError("only a line that is not UTF-8 is an encoding rejection")


def _decode_line_by_line(data: bytes, first_line: int, rejections: list[Rejection]) -> list[str]:
    """Decode what can be decoded; each line that is not UTF-8 becomes a rejection."""
    texts: list[str] = []
    for offset, raw in enumerate(data.split(b"\n")):
        raw = raw.removesuffix(b"\r")
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append("")
            rejections.append(_encoding_rejection(first_line + offset, raw))
    return texts


def _csv_layouts(
    layout: Layout, schema: CompiledSchema
) -> tuple[dict[int, tuple[int, ...]], tuple[str, ...]]:
    """The slots of each field count a record may have, and the header's ignored columns."""
    ignored: tuple[str, ...] = ()
    if layout.header is not None:
        slots, ignored = header_slots(layout, schema)
        # As in a headerless file, a record may leave out the target when it is the last column.
        layouts: tuple[tuple[int, ...], ...] = (slots, slots[:-1]) if slots[-1] == TARGET_SLOT else (slots,)
    else:
        layouts = schema.headerless_slots
    return {len(slots): slots for slots in layouts}, ignored


def _parse_csv(
    numbers: list[int],
    texts: list[str],
    rejections: list[Rejection],
    schema: CompiledSchema,
    by_width: Mapping[int, tuple[int, ...]],
    *,
    fast: bool,
) -> list[ParsedBatch]:
    """The text tiers: the fast path over lines grouped by field count, then `check_record`."""
    parts: list[ParsedBatch] = []
    retry: list[int] = list(range(len(texts)))
    if fast and texts:
        # Lines are grouped by field count so that each group can be cut into columns at once.
        widths = np.fromiter(map(str.count, texts, repeat(",")), np.int64, len(texts)) + 1
        joined = "".join(texts)
        if '"' in joined or "\x00" in joined or "\ufeff" in joined:
            # Quoted fields, and lines `_check_line_text` rejects whatever their fields hold (a
            # NUL, a byte-order mark), are for `check_record`; the fast path reads none of them.
            widths[
                [i for i, text in enumerate(texts) if '"' in text or "\x00" in text or "\ufeff" in text]
            ] = 0
        if max(map(len, texts)) > MAX_LINE_CHARS:
            widths[[i for i, text in enumerate(texts) if len(text) > MAX_LINE_CHARS]] = 0
        if 1 in by_width:
            # A blank line is not a record, even where a record may have a single field.
            widths[[i for i, text in enumerate(texts) if is_blank(text)]] = 0
        known_width = np.zeros(len(texts), dtype=bool)
        for width in by_width:
            known_width |= widths == width
        retry = np.flatnonzero(~known_width).tolist()
        for width, slots in by_width.items():
            positions = np.flatnonzero(widths == width).tolist()
            if positions:
                accepted, rejected_positions = _fast_path(texts, positions, slots, numbers, schema)
                parts.append(accepted)
                retry.extend(rejected_positions)
    slow = [(numbers[i], texts[i]) for i in sorted(retry) if not is_blank(texts[i])]
    parts.append(_slow_path(slow, rejections, schema, by_width))
    return parts


# ------------------------------------------------------------------------- byte-level path

_PAD: Final = MAX_SPELLING_BYTES + 2 * WORD_BYTES
"""Zero bytes after a chunk, so that a word read at any cell's start stays inside the buffer."""
_MASKS: Final = np.array([(1 << (8 * n)) - 1 for n in range(WORD_BYTES + 1)], dtype=np.uint64)
"""`_MASKS[n]` keeps the first n bytes of a little-endian word."""
_ZEROS: Final = np.uint64(0x3030303030303030)
_HIGH_NIBBLES: Final = np.uint64(0xF0F0F0F0F0F0F0F0)
_SIXES: Final = np.uint64(0x0606060606060606)
_MAX_DIGITS: Final = 2 * WORD_BYTES
"""Whole numbers of more digits are left to the text tiers (they exceed what float64 holds
exactly anyway)."""
_SPACE: Final = ord(" ")

Stages = dict[str, float]
"""Seconds per stage of the byte-level path, summed over calls (benchmarks/parse_speed.py)."""


def _lap(stages: Stages | None, name: str, started: float) -> float:
    now = time.perf_counter()
    if stages is not None:
        stages[name] = stages.get(name, 0.0) + now - started
    return now


@dataclass(slots=True)
class _Chunk:
    """A chunk's bytes as numpy views: bytes, and the 8 bytes starting at each offset as one
    little-endian word (an unaligned strided view, no copy per word)."""

    size: int
    padded: npt.NDArray[np.uint8]
    words: npt.NDArray[np.uint64]

    @classmethod
    def of(cls, data: bytes) -> _Chunk:
        padded = np.zeros(len(data) + _PAD, dtype=np.uint8)
        padded[: len(data)] = np.frombuffer(data, dtype=np.uint8)
        words = np.ndarray(
            shape=(len(padded) - WORD_BYTES + 1,), dtype="<u8", buffer=padded.data, strides=(1,)
        )
        return cls(len(data), padded, words)


BYTE_PATH_SLICE_BYTES: Final = 1024 * 1024
"""The byte path reads a chunk at most about this many bytes at a time, cut at line breaks.
Its arrays (several 8-byte values per cell) for a larger slice outgrow the caches and are
fresh pages on every allocation: 200,000 Adult records in chunks of 4 MiB took 0.30-0.33 s
of CPU read whole, 0.22 s in 1 MiB slices; whole chunks of 2 MiB 0.18 s, of 256 KiB 0.26 s
(on the 2-core development machine, 2026-11-29)."""


def _byte_path(
    data: bytes,
    schema: CompiledSchema,
    by_width: Mapping[int, tuple[int, ...]],
    header_at: int | None,
    first_line: int,
    stages: Stages | None = None,
) -> tuple[ParsedBatch, list[tuple[int, bytes, bool]]]:
    """`_byte_slice` over a chunk cut at line breaks into slices of about BYTE_PATH_SLICE_BYTES
    (as many as the chunk holds, rounded, of even size; a line longer than a slice is a slice of
    its own): the same lines accepted and handed back, in line order, with offsets and line
    numbers counted from the chunk's start. A chunk a little over the size (the planner's cut
    falls just past it) is read whole, not as a slice and a sliver."""
    slices = round(len(data) / BYTE_PATH_SLICE_BYTES)
    if slices <= 1:
        return _byte_slice(data, schema, by_width, header_at, first_line, stages)
    parts: list[ParsedBatch] = []
    leftover: list[tuple[int, bytes, bool]] = []
    # Cut as files are cut into chunks (the planner's rules: whole lines, a long line alone).
    for cut in cut_chunks([data], -(-len(data) // slices)):
        lines_before = cut["first_line"] - 1
        lines = data.count(b"\n", cut["start"], cut["end"]) + (cut["end"] == len(data))
        header = None
        if header_at is not None and 0 <= header_at - lines_before < lines:
            header = header_at - lines_before
        accepted, handed_back = _byte_slice(
            data[cut["start"] : cut["end"]], schema, by_width, header, first_line + lines_before, stages
        )
        parts.append(accepted)
        # Only the chunk's own last line is "last": every earlier slice ends with a line feed.
        leftover.extend((offset + lines_before, raw, last) for offset, raw, last in handed_back)
    return _merge(parts, schema), leftover


def _byte_slice(
    data: bytes,
    schema: CompiledSchema,
    by_width: Mapping[int, tuple[int, ...]],
    header_at: int | None,
    first_line: int,
    stages: Stages | None = None,
) -> tuple[ParsedBatch, list[tuple[int, bytes, bool]]]:
    """Accept the plainly valid lines of a CSV chunk straight from its bytes.

    A line is a candidate when it is printable ASCII without a quote (CRLF aside), has a
    field count the layout allows, and is not the header. Its cells are cut at the commas,
    stripped of spaces and read column by column: table spellings through `ByteVocabulary`,
    whole numbers eight digits per word, decimals by numpy's parser. Any line with a cell that
    is not plainly valid, and every line that is not a candidate, is handed back (offset, raw
    bytes, whether it is the chunk's last line) to the text tiers, which accept it or give
    the reason it is rejected. Empty lines are blank and dropped here.
    """
    started = time.perf_counter()
    chunk = _Chunk.of(data)
    buf = chunk.padded[: chunk.size]
    # Commas and line feeds in one pass: each line's commas lie between its line feed and the
    # previous one in `delimiters`.
    delimiters = np.flatnonzero((buf == ord(",")) | (buf == ord("\n")))
    breaks_at = np.flatnonzero(buf.take(delimiters) == ord("\n"))
    breaks = delimiters.take(breaks_at)
    count = len(breaks) + 1
    starts = np.empty(count, dtype=np.int64)
    starts[0] = 0
    starts[1:] = breaks + 1
    stops = np.empty(count, dtype=np.int64)
    stops[:-1] = breaks
    stops[-1] = chunk.size
    first_delimiter = np.empty(count, dtype=np.int64)
    first_delimiter[0] = 0
    first_delimiter[1:] = breaks_at + 1
    commas = np.empty(count, dtype=np.int64)
    commas[:-1] = breaks_at - first_delimiter[:-1]
    commas[-1] = len(delimiters) - first_delimiter[-1]
    ends = stops.copy()
    # The CR of a CRLF belongs to the line break; any other CR is an odd byte.
    crlf = np.flatnonzero((buf.take(np.maximum(breaks - 1, 0)) == ord("\r")) & (breaks > starts[:-1]))
    ends[crlf] -= 1
    odd = ((buf - 32) > 94) | (buf == ord('"'))
    irregular = np.zeros(count, dtype=bool)
    if np.count_nonzero(odd) > len(breaks) + len(crlf):  # more than line breaks
        odd[breaks] = False
        odd[ends[crlf]] = False
        irregular[np.searchsorted(breaks, np.flatnonzero(odd))] = True
    lengths = ends - starts
    irregular |= lengths > MAX_LINE_CHARS
    if header_at is not None:
        irregular[header_at] = True
    started = _lap(stages, "lines: delimiters, odd bytes", started)
    parts: list[ParsedBatch] = []
    taken = np.zeros(count, dtype=bool)
    for width, slots in by_width.items():
        rows = np.flatnonzero(~irregular & (commas == width - 1) & (lengths > 0))
        if rows.size:
            used = [place for place, slot in enumerate(slots) if slot != IGNORED_SLOT]
            cut = delimiters[first_delimiter[rows] + np.arange(width - 1, dtype=np.int64)[:, None]]
            cell_starts = np.empty((width, rows.size), dtype=np.int64)
            cell_starts[0] = starts[rows]
            cell_starts[1:] = cut + 1
            cell_ends = np.empty((width, rows.size), dtype=np.int64)
            cell_ends[:-1] = cut
            cell_ends[-1] = ends[rows]
            started = _lap(stages, "cells: cut at commas", started)
            cell_starts, cell_ends = _strip(chunk, cell_starts[used], cell_ends[used])
            started = _lap(stages, "cells: strip spaces", started)
            accepted, ok = _byte_columns(
                chunk, schema, [slots[place] for place in used], cell_starts, cell_ends - cell_starts, stages
            )
            started = time.perf_counter()
            accepted.lines = (rows[ok] + first_line).tolist()
            parts.append(accepted)
            taken[rows[ok]] = True
    left = ~taken & (lengths > 0)
    if header_at is not None:
        left[header_at] = False
    leftover = np.flatnonzero(left).tolist()
    lines = [(offset, data[starts[offset] : stops[offset]], offset == count - 1) for offset in leftover]
    batch = _merge(parts, schema)
    _lap(stages, "accepted lines, lines handed back", started)
    return batch, lines


def _byte_columns(
    chunk: _Chunk,
    schema: CompiledSchema,
    slots: list[int],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    stages: Stages | None,
) -> tuple[ParsedBatch, npt.NDArray[np.bool_]]:
    """Read stripped cells (one row per used column, in `slots`) of some lines; which lines are
    plainly valid."""
    started = time.perf_counter()
    count = starts.shape[1]
    row_of = {slot: row for row, slot in enumerate(slots)}
    ok = np.ones(count, dtype=bool)
    matrix = np.empty((count, schema.width), dtype=np.float32)
    coded = [index for index in range(schema.width) if index in schema.codes]
    if coded:
        rows = [row_of[index] for index in coded]
        values, found = _lookup(
            schema.byte_codes,
            chunk,
            starts[rows].ravel(),
            lengths[rows].ravel(),
            np.repeat(np.array(coded, dtype=np.int64), count),
        )
        matrix[:, coded] = values.reshape(len(coded), count).T
        ok &= found.reshape(len(coded), count).all(axis=0)
        started = _lap(stages, "categories: lookup", started)
    for kind in ("integer", "number"):
        indices = [index for index in schema.numeric if schema.features[index].type == kind]
        if indices:
            rows = [row_of[index] for index in indices]
            values, good = _numeric_cells(chunk, schema, kind, indices, starts[rows], lengths[rows])
            matrix[:, indices] = values.T
            ok &= good.all(axis=0)
            started = _lap(stages, f"numbers: {kind} parse and range", started)
    ids = None
    if ID_SLOT in row_of:
        ids = _cell_texts(chunk, starts[row_of[ID_SLOT]], lengths[row_of[ID_SLOT]])
    actual: list[Actual] | None = None
    if TARGET_SLOT in row_of:
        actual, good = _target_cells(chunk, schema, starts[row_of[TARGET_SLOT]], lengths[row_of[TARGET_SLOT]])
        ok &= good
    if ok.all():
        features = matrix
    else:
        keep = np.flatnonzero(ok)
        features = matrix[keep]
        kept = keep.tolist()
        actual = [actual[i] for i in kept] if actual is not None else None
        ids = [ids[i] for i in kept] if ids is not None else None
    _lap(stages, "ids, target, keep", started)
    return ParsedBatch(lines=[], features=features, actual=actual, ids=ids), ok


def _strip(
    chunk: _Chunk, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Cell bounds without leading and trailing spaces, as `str.strip` leaves a cell of a plain
    line (the only whitespace printable ASCII has is the space)."""
    padded = chunk.padded
    while True:
        step = (padded.take(starts) == _SPACE) & (starts < ends)
        if not step.any():
            break
        starts += step
    while True:
        step = (padded.take(ends - 1) == _SPACE) & (ends > starts)
        if not step.any():
            break
        ends -= step
    return starts, ends


def _lookup(
    vocabulary: ByteVocabulary,
    chunk: _Chunk,
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    columns: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Each cell's value in `vocabulary`, and whether the cell is exactly one of its spellings."""
    if not len(vocabulary.lengths) or not len(starts):
        return np.full(len(starts), math.nan), np.zeros(len(starts), dtype=bool)
    first = chunk.words.take(starts) & _MASKS.take(np.minimum(lengths, WORD_BYTES))
    last = chunk.words.take(np.maximum(starts + lengths - WORD_BYTES, 0))
    last[lengths <= WORD_BYTES] = 0
    key = spelling_key(lengths, first, last, column_salt(columns))
    entry = vocabulary.table.take(((key * vocabulary.multiplier) >> vocabulary.shift).astype(np.intp))
    candidate = np.maximum(entry, 0)
    found = (
        (entry >= 0)
        & (vocabulary.lengths.take(candidate) == lengths)
        & (vocabulary.first.take(candidate) == first)
        & (vocabulary.last.take(candidate) == last)
        & (vocabulary.columns.take(candidate) == columns)
    )
    long = np.flatnonzero(found & (lengths > 2 * WORD_BYTES))
    if long.size:
        # First and last words cover spellings up to 16 bytes; longer ones are compared whole.
        long_starts, long_lengths, long_entries = starts[long], lengths[long], candidate[long]
        same = np.ones(long.size, dtype=bool)
        for k in range(1, vocabulary.middle.shape[1] + 1):
            remaining = np.clip(long_lengths - WORD_BYTES * k, 0, WORD_BYTES)
            word = chunk.words.take(long_starts + WORD_BYTES * k) & _MASKS.take(remaining)
            same &= vocabulary.middle[long_entries, k - 1] == word
        found[long] = same
    return vocabulary.values.take(candidate), found


def _numeric_cells(
    chunk: _Chunk,
    schema: CompiledSchema,
    kind: str,
    indices: list[int],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Integer or number columns (one row each): values (NaN for a missing marker, checked
    first as `check_value` does) and which cells are plainly valid, range included."""
    shape = starts.shape
    flat_starts, flat_lengths = starts.ravel(), lengths.ravel()
    if kind == "integer":
        values, good = _whole_numbers(chunk, flat_starts, flat_lengths)
    else:
        values, good = _decimal_numbers(chunk, flat_starts, flat_lengths)
    values, good = values.reshape(shape), good.reshape(shape)
    bounds = [schema.features[index].range or (-math.inf, math.inf) for index in indices]
    low = np.array([bound[0] for bound in bounds])[:, None]
    high = np.array([bound[1] for bound in bounds])[:, None]
    good &= (values >= low) & (values <= high)
    for row, index in enumerate(indices):
        if schema.missing[index]:
            _, missing = _lookup(
                schema.byte_codes, chunk, starts[row], lengths[row], np.full(shape[1], index, dtype=np.int64)
            )
            values[row, missing] = math.nan
            good[row] |= missing
    return values, good


def _whole_numbers(
    chunk: _Chunk, starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Cells that are an optional sign and 1 to 16 ASCII digits, as float64 (as `float(int(text))`)."""
    first = chunk.padded.take(starts)
    signed = ((first == ord("+")) | (first == ord("-"))) & (lengths > 0)
    digits = lengths - signed
    good = (digits >= 1) & (digits <= _MAX_DIGITS)
    digits = np.clip(digits, 1, _MAX_DIGITS)
    begin = starts + signed
    high = np.maximum(digits - WORD_BYTES, 0)
    whole, low_good = _eight_digits(chunk.words.take(begin + high), digits - high)
    good &= low_good
    long = np.flatnonzero(high)
    if long.size:
        high_value, high_good = _eight_digits(chunk.words.take(begin[long]), high[long])
        whole[long] += high_value * np.uint64(10**WORD_BYTES)
        good[long] &= high_good
    signed_whole = whole.view(np.int64)
    np.negative(signed_whole, out=signed_whole, where=first == ord("-"))
    return signed_whole.astype(np.float64), good


def _eight_digits(
    words: npt.NDArray[np.uint64], digits: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """The number the first `digits` (1-8) bytes of each word spell, and whether they are all
    ASCII digits: the word is shifted so that its digits end at its last byte and '0's fill
    the front, then summed pairwise (SWAR, as simdjson parses eight digits)."""
    spare = WORD_BYTES - digits
    word = ((words & _MASKS.take(digits)) << (spare.view(np.uint64) * np.uint64(8))) | (
        _ZEROS & _MASKS.take(spare)
    )
    good = ((word & _HIGH_NIBBLES) == _ZEROS) & (((word + _SIXES) & _HIGH_NIBBLES) == _ZEROS)
    word = ((word & np.uint64(0x0F0F0F0F0F0F0F0F)) * np.uint64(2561)) >> np.uint64(8)
    word = ((word & np.uint64(0x00FF00FF00FF00FF)) * np.uint64(6553601)) >> np.uint64(16)
    word = ((word & np.uint64(0x0000FFFF0000FFFF)) * np.uint64(42949672960001)) >> np.uint64(32)
    return word, good


def _cell_bytes(
    chunk: _Chunk, starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64], separator: bytes
) -> str:
    """The cells' text joined by `separator` (a byte no cell of a plain line holds)."""
    if not len(starts):
        return ""
    spans = lengths + 1
    total = int(spans.sum())
    begins = np.cumsum(spans) - spans
    index = np.arange(total, dtype=np.int64) + np.repeat(starts - begins, spans)
    joined = chunk.padded[index]
    joined[begins + lengths] = ord(separator)
    text: str = joined[:-1].tobytes().decode("ascii")
    return text


def _cell_texts(chunk: _Chunk, starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]) -> list[str]:
    return _cell_bytes(chunk, starts, lengths, b"\n").split("\n") if len(starts) else []


def _decimal_numbers(
    chunk: _Chunk, starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Cells that `_NUMBER` matches and that are finite, read by numpy's parser in one call
    (the same correctly rounded conversion as `float`); a column with any other cell is read
    cell by cell."""
    if not len(starts):
        return np.empty(0, dtype=np.float64), np.empty(0, dtype=bool)
    joined = _cell_bytes(chunk, starts, lengths, b",")
    if _NUMBERS.fullmatch(joined):
        values = np.fromstring(joined, dtype=np.float64, sep=",")
        return values, np.isfinite(values)
    texts = joined.split(",")
    values = np.array(
        [float(text) if _NUMBER.fullmatch(text) else math.nan for text in texts], dtype=np.float64
    )
    return values, np.isfinite(values)


def _target_cells(
    chunk: _Chunk, schema: CompiledSchema, starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> tuple[list[Actual], npt.NDArray[np.bool_]]:
    """The target's values as `check_actual` reads them: missing markers first, then labels
    (and their aliases) or numbers."""
    codes, found = _lookup(schema.byte_labels, chunk, starts, lengths, np.zeros(len(starts), dtype=np.int64))
    labels = schema.label_values
    if schema.target.task != "regression":
        actual: list[Actual] = [
            labels[int(code)] if known and code >= 0 else None
            for known, code in zip(found.tolist(), codes.tolist(), strict=True)
        ]
        return actual, found
    values, good = _decimal_numbers(chunk, starts, lengths)
    missing = found  # a regression target's table holds only its missing markers
    actual = [
        None if absent else value for absent, value in zip(missing.tolist(), values.tolist(), strict=True)
    ]
    return actual, good | missing


def _fast_path(
    texts: list[str],
    positions: list[int],
    slots: tuple[int, ...],
    line_numbers: list[int],
    schema: CompiledSchema,
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
        lines=[line_numbers[positions[i]] for i in kept],
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
    numbers = np.array(lines, dtype=np.int64)
    with_actual = any(part.actual is not None for part in parts)
    actual = [label for part in parts for label in (part.actual or [None] * len(part))]
    ids = [row_id for part in parts for row_id in (part.ids or [""] * len(part))]
    features = np.concatenate([part.features for part in parts])
    if not np.all(numbers[1:] > numbers[:-1]):  # the slices of a chunk come in line order
        order = np.argsort(numbers, kind="stable").tolist()
        lines = [lines[i] for i in order]
        features = features[order]
        actual = [actual[i] for i in order]
        ids = [ids[i] for i in order]
    return ParsedBatch(
        lines=lines,
        features=features,
        actual=actual if with_actual else None,
        ids=ids if schema.row_id is not None else None,
        rejections=rejections,
    )
