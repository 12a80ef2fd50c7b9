"""A bundle's fields compiled once into what the parser, the encoder and the formatter look up.

As powertools compiles its JMESPath expressions onto the persistence layer at configure time,
`CompiledSchema` turns the bundle file's field list into code tables (category -> model code,
missing marker -> NaN), numeric bounds as arrays, the header names and the label spellings,
so that no per-record code re-reads the description.

File columns are mapped to *slots*: a feature's index in the model's input, or one of the
negative slots below for the row id, the target and columns the model does not use.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Final

import numpy as np
import numpy.typing as npt

from predictflow.bundle.format import BINARY_SPELLINGS, BundleSpec, FieldSpec, TargetSpec

ID_SLOT: Final = -1
TARGET_SLOT: Final = -2
IGNORED_SLOT: Final = -3

Codes = dict[str, float]

WORD_BYTES: Final = 8
MAX_SPELLING_BYTES: Final = 64
"""Spellings longer than this are left to the text path: every cell costs one gather per word."""
_HASH_FIRST: Final = np.uint64(0x9E3779B97F4A7C15)
_HASH_LAST: Final = np.uint64(0xC2B2AE3D27D4EB4F)
_HASH_LENGTH: Final = np.uint64(0x165667B19E3779F9)
_HASH_COLUMN: Final = np.uint64(0x27D4EB2F165667C5)


def column_salt(columns: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    """What a cell's column adds to its key (`spelling_key`)."""
    return columns.astype(np.uint64) * _HASH_COLUMN


def spelling_key(
    lengths: npt.NDArray[np.int64],
    first: npt.NDArray[np.uint64],
    last: npt.NDArray[np.uint64],
    salt: npt.NDArray[np.uint64],
) -> npt.NDArray[np.uint64]:
    """A 64-bit key of byte strings given as their length, their first 8 bytes and their last 8
    (little-endian words, zero beyond the end; `last` zero up to 8 bytes) and their column's
    salt. The parser and `ByteVocabulary` share it, so that a spelling and a cell holding it
    always get the same key; a candidate is then checked byte for byte, so a collision can
    only send a cell to the slower path."""
    key: npt.NDArray[np.uint64] = (first * _HASH_FIRST) ^ (last * _HASH_LAST)
    return key ^ (lengths.view(np.uint64) * _HASH_LENGTH) ^ salt


def is_plain_spelling(spelling: str) -> bool:
    """Whether a cell of a plain line can hold `spelling` exactly: printable ASCII without quotes,
    commas or surrounding spaces (cells are compared after their spaces are stripped)."""
    return (
        len(spelling) <= MAX_SPELLING_BYTES
        and all(" " <= char <= "~" and char not in '",' for char in spelling)
        and spelling == spelling.strip()
    )


def _word(text: bytes) -> int:
    return int.from_bytes(text[:WORD_BYTES].ljust(WORD_BYTES, b"\0"), "little")


@dataclass(frozen=True, eq=False)
class ByteVocabulary:
    """Accepted spellings of several columns, matched against byte slices of a chunk.

    Each (column, spelling) is an entry with a value. A cell's key (`spelling_key`) picks one
    slot of a collision-free table; the entry there is the cell's only candidate, confirmed by
    its length, column, first and last 8 bytes and, for spellings over 16 bytes, the words in
    between. A dict lookup per cell costs a Python call; this costs a few numpy operations per
    column.
    """

    lengths: npt.NDArray[np.int64]
    columns: npt.NDArray[np.int64]
    first: npt.NDArray[np.uint64]
    last: npt.NDArray[np.uint64]
    middle: npt.NDArray[np.uint64]
    """(entries, words): bytes 8-16, 16-24, ... of each spelling, zero-padded."""
    values: npt.NDArray[np.float64]
    table: npt.NDArray[np.int64]
    """Slot -> entry, -1 where empty."""
    multiplier: np.uint64
    shift: np.uint64

    @classmethod
    def build(cls, entries: dict[tuple[int, str], float]) -> ByteVocabulary:
        plain = {(column, text.encode("ascii")): value for (column, text), value in entries.items()}
        spellings = [text for _, text in plain]
        count = len(plain)
        middle_words = max(1, -(-max((len(text) for text in spellings), default=0) // WORD_BYTES) - 1)
        middle = np.zeros((count, middle_words), dtype=np.uint64)
        for row, text in enumerate(spellings):
            for k in range(1, -(-len(text) // WORD_BYTES)):
                middle[row, k - 1] = _word(text[WORD_BYTES * k :])
        lengths = np.array([len(text) for text in spellings], dtype=np.int64)
        columns = np.array([column for column, _ in plain], dtype=np.int64)
        first = np.array([_word(text) for text in spellings], dtype=np.uint64)
        last = np.array(
            [_word(text[-WORD_BYTES:]) if len(text) > WORD_BYTES else 0 for text in spellings],
            dtype=np.uint64,
        )
        keys = spelling_key(lengths, first, last, column_salt(columns))
        # Multiplicative hashing into a table 4-8x the entries, with the first multiplier (from a
        # fixed sequence) under which no two entries share a slot.
        bits = max(4, (4 * max(count, 1) - 1).bit_length())
        generator = np.random.default_rng(14)
        while True:
            for _ in range(64):
                multiplier = np.uint64(int(generator.integers(1, 2**62)) * 2 + 1)
                shift = np.uint64(64 - bits)
                slots = (keys * multiplier) >> shift
                if len(np.unique(slots)) == count:
                    table = np.full(1 << bits, -1, dtype=np.int64)
                    table[slots.astype(np.int64)] = np.arange(count)
                    values = np.array(list(plain.values()), dtype=np.float64)
                    return cls(lengths, columns, first, last, middle, values, table, multiplier, shift)
            bits += 1


@dataclass(frozen=True, eq=False)
class CompiledSchema:
    spec: BundleSpec

    @cached_property
    def features(self) -> tuple[FieldSpec, ...]:
        return self.spec.features

    @cached_property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.features)

    @property
    def width(self) -> int:
        """How many columns the model's input has."""
        return len(self.features)

    @property
    def target(self) -> TargetSpec:
        return self.spec.target

    @cached_property
    def row_id(self) -> FieldSpec | None:
        return self.spec.row_id

    @cached_property
    def codes(self) -> dict[int, Codes]:
        """Per category or binary feature: each accepted spelling -> its model code, and each
        missing marker -> NaN. Binary spellings are listed in lower case; other cases are
        accepted by `check_value`, off the fast path."""
        tables: dict[int, Codes] = {}
        for index, spec in enumerate(self.features):
            if spec.type == "category":
                table = {category: float(code) for code, category in enumerate(spec.categories)}
            elif spec.type == "binary":
                table = {spelled: float(code) for spelled, code in BINARY_SPELLINGS.items()}
            else:
                continue
            tables[index] = table | dict.fromkeys(spec.missing, math.nan)
        return tables

    @cached_property
    def byte_codes(self) -> ByteVocabulary:
        """For the byte-level parser: every plain spelling a feature accepts by table (categories,
        binary spellings and missing markers of every field), keyed by feature index."""
        entries: dict[tuple[int, str], float] = {}
        for index, spec in enumerate(self.features):
            table = self.codes.get(index, dict.fromkeys(spec.missing, math.nan))
            entries |= {(index, text): code for text, code in table.items() if is_plain_spelling(text)}
        return ByteVocabulary.build(entries)

    @cached_property
    def label_values(self) -> tuple[str, ...]:
        """The target's labels in order, for `byte_labels` codes."""
        return tuple(dict.fromkeys(self.labels.values()))

    @cached_property
    def byte_labels(self) -> ByteVocabulary:
        """For the byte-level parser: target spellings -> index in `label_values`, or -1 for a
        missing target (as `check_actual` reads them: missing markers first)."""
        entries: dict[tuple[int, str], float] = {}
        if self.target.task != "regression":
            index = {label: float(code) for code, label in enumerate(self.label_values)}
            entries = {
                (0, text): index[label] for text, label in self.labels.items() if is_plain_spelling(text)
            }
        entries |= {(0, text): -1.0 for text in self.target_missing if is_plain_spelling(text)}
        return ByteVocabulary.build(entries)

    @cached_property
    def numeric(self) -> tuple[int, ...]:
        """Feature indices of integer and number fields, in order."""
        return tuple(i for i, spec in enumerate(self.features) if spec.type in ("integer", "number"))

    @cached_property
    def minima(self) -> npt.NDArray[np.float64]:
        return np.array([self._bounds(i)[0] for i in self.numeric], dtype=np.float64)

    @cached_property
    def maxima(self) -> npt.NDArray[np.float64]:
        return np.array([self._bounds(i)[1] for i in self.numeric], dtype=np.float64)

    def _bounds(self, index: int) -> tuple[float, float]:
        bounds = self.features[index].range
        return bounds if bounds is not None else (-math.inf, math.inf)

    @cached_property
    def missing(self) -> dict[int, frozenset[str]]:
        return {i: frozenset(spec.missing) for i, spec in enumerate(self.features)}

    @cached_property
    def labels(self) -> dict[str, str]:
        """Every accepted spelling of the target in a labelled file -> its label."""
        return {label: label for label in self.target.labels} | dict(self.target.aliases)

    @cached_property
    def target_missing(self) -> frozenset[str]:
        target = next((spec for spec in self.spec.fields if spec.role == "target"), None)
        return frozenset({"", *(target.missing if target else ())})

    @cached_property
    def headerless_slots(self) -> tuple[tuple[int, ...], ...]:
        """The column layouts a file without a header may have: every field in the bundle's
        order, or every field but the target (an unlabelled file)."""
        full = tuple(self.slot_of(spec.name) for spec in self.spec.fields)
        if TARGET_SLOT not in full:
            return (full,)
        return full, tuple(slot for slot in full if slot != TARGET_SLOT)

    @cached_property
    def _slots(self) -> dict[str, int]:
        slots = {spec.name: i for i, spec in enumerate(self.features)}
        if self.row_id is not None:
            slots[self.row_id.name] = ID_SLOT
        slots[self.target.name] = TARGET_SLOT
        return slots

    def slot_of(self, name: str) -> int:
        return self._slots.get(name, IGNORED_SLOT)

    @cached_property
    def names_by_lower(self) -> dict[str, str]:
        """Column names as a header may spell them (case and surrounding spaces aside)."""
        return {name.lower(): name for name in self._slots}

    @cached_property
    def required(self) -> tuple[str, ...]:
        """The columns a file with a header must have: every feature, and the row id."""
        return tuple(name for name, slot in self._slots.items() if slot != TARGET_SLOT)

    @cached_property
    def fingerprint(self) -> str:
        """A digest of the feature encoding (order, names, types, vocabularies).

        Ranges and missing markers are left out on purpose: they change what is accepted, not
        how an accepted record is encoded, so they must not invalidate a model."""
        described = [[spec.name, spec.type, list(spec.categories)] for spec in self.features]
        return hashlib.sha256(json.dumps(described).encode()).hexdigest()[:16]
