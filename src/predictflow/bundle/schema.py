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
