"""A record schema from a training file, as Amazon ML's datasource wizard made one.

Reading. The file is CSV (UTF-8, BOM allowed), read with the csv module, each cell stripped of
surrounding spaces as the parser strips it; blank lines are skipped. Without `--schema` it must
have a header row; with a schema, a headerless file takes the schema's field order.

Missing markers. `''`, `NA` and `?` mean missing. Every field accepts `''` (an empty cell is
missing in any file, so a blank at serving time is never rejected for a field that happened to
have none in training); `NA` and `?` are added per field when they occur in that field.

Types, per column, from its non-missing cells:
- `integer` when every cell is a whole number the parser accepts (`[+-]digits`) within ±2**24;
- `number` when every cell is a number (`1.5`, `-2e3`, ...; the parser's own syntax);
- `category` otherwise, with its vocabulary sorted by frequency (most frequent first), then by
  name, so that the same data always gives the same codes;
- the row id (`--id COLUMN`) is a `string` field with the role `id`; nothing else is taken for an
  id, because a column of unique strings may just as well be a high-cardinality feature.

Ranges. A numeric field accepts its observed [min, max] widened on each side by 10% of the span
(integers rounded outward, clamped within ±2**24). Trees make the same prediction for any value
beyond the highest split, so the margin costs nothing in quality: it is there to reject values
that are wrong rather than new (an age of 999).

Refused: a feature column that is empty (every cell missing) or constant (one value), naming
them: they carry nothing to learn from; remove them from the file (or list them as excluded in an
Amazon ML schema).

Task, when `--task` is absent: a target whose values are not all numbers is `binary` with 2
distinct values and `multiclass` with 3 to 50; a numeric target is `binary` with 2 values,
`multiclass` when its values are 3 to 20 whole numbers, and `regression` otherwise. Labels are the
target's distinct texts sorted as strings; for binary the positive class is `--positive`, else
the "yes" of a 0/1, n/y, no/yes, f/t, false/true pair, else the minority class.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from predictflow.bundle.format import (
    BINARY_SPELLINGS,
    FLOAT32_EXACT,
    FieldSpec,
    RecordSchema,
    TargetSpec,
    Task,
)
from predictflow.bundle.schema_files import SchemaSource
from predictflow.training.errors import TrainingError

MISSING_MARKERS: Final = ("", "NA", "?")
RANGE_MARGIN: Final = 0.10
MAX_CLASSES: Final = 50
MAX_INTEGER_CLASSES: Final = 20
_NUMBER: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_WHOLE: Final = re.compile(r"[+-]?\d+", re.ASCII)


@dataclass(frozen=True)
class Table:
    """A CSV file's cells by column (stripped), with its column names."""

    names: tuple[str, ...]
    columns: tuple[list[str], ...]
    has_header: bool
    rows: int
    digest_source: bytes = field(repr=False, default=b"")

    def column(self, name: str) -> list[str]:
        return self.columns[self.names.index(name)]


def read_table(path: Path, *, names: Sequence[str] | None = None, has_header: bool | None = None) -> Table:
    """Read a training CSV. Without `names` the first row must be a header; with them, the file
    has a header when `has_header` says so or (None) when its first row holds those names."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TrainingError(
            f"{path} is not UTF-8 text (bad byte at {error.start}): save it as UTF-8"
        ) from error
    # A blank line (nothing but spaces and tabs) is not a record, as in the parser.
    rows = [
        [cell.strip() for cell in row]
        for row in csv.reader(io.StringIO(text), skipinitialspace=True)
        if len(row) > 1 or (row and row[0].strip(" \t"))
    ]
    if not rows:
        raise TrainingError(f"{path} holds no records")
    first = rows[0]
    if names is None:
        header = True
    elif has_header is None:
        known = {name.lower() for name in names}
        header = sum(cell.lower() in known for cell in first) * 2 >= len(first)
    else:
        header = has_header
    if header:
        columns_names = tuple(first)
        body = rows[1:]
        blank = [str(i + 1) for i, name in enumerate(columns_names) if not name]
        if blank:
            raise TrainingError(
                f"{path}: header column(s) {', '.join(blank)} have no name: name every column"
            )
        repeated = sorted({n for n in columns_names if columns_names.count(n) > 1})
        if repeated:
            raise TrainingError(f"{path}: the header names {', '.join(repeated)} more than once")
    else:
        assert names is not None
        columns_names = tuple(names)
        body = rows
    width = len(columns_names)
    for number, row in enumerate(body, start=2 if header else 1):
        if len(row) != width:
            raise TrainingError(
                f"{path}: record {number} has {len(row)} fields, expected {width}"
                + ("" if header else f" ({', '.join(columns_names)})")
                + ": fix that line or give a schema that matches the file"
            )
    if not body:
        raise TrainingError(f"{path} has a header but no records")
    columns = tuple(list(column) for column in zip(*body, strict=True))
    return Table(columns_names, columns, header, len(body), data)


# --------------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class ColumnFacts:
    counts: Counter[str]
    """Non-missing values and how often each occurs."""
    markers: tuple[str, ...]
    kind: str
    """integer, number or text."""

    @property
    def values(self) -> list[str]:
        return list(self.counts)


def column_facts(cells: list[str]) -> ColumnFacts:
    counts = Counter(cells)
    markers = tuple(marker for marker in MISSING_MARKERS if marker in counts)
    for marker in markers:
        del counts[marker]
    kind = "text"
    if counts:
        if all(_WHOLE.fullmatch(value) for value in counts) and all(
            abs(int(value)) <= FLOAT32_EXACT for value in counts
        ):
            kind = "integer"
        elif all(_NUMBER.fullmatch(value) and math.isfinite(float(value)) for value in counts):
            kind = "number"
    return ColumnFacts(counts, markers, kind)


def missing_of(facts: ColumnFacts) -> tuple[str, ...]:
    return tuple(dict.fromkeys(("", *facts.markers)))


def numeric_field(name: str, facts: ColumnFacts, kind: str) -> FieldSpec:
    values = [float(value) for value in facts.counts]
    low, high = min(values), max(values)
    margin = (high - low) * RANGE_MARGIN
    low, high = low - margin, high + margin
    if kind == "integer":
        low, high = max(math.floor(low), -FLOAT32_EXACT), min(math.ceil(high), FLOAT32_EXACT)
    return FieldSpec(
        name, "integer" if kind == "integer" else "number", range=(low, high), missing=missing_of(facts)
    )


def category_field(name: str, facts: ColumnFacts) -> FieldSpec:
    vocabulary = sorted(facts.counts, key=lambda value: (-facts.counts[value], value))
    return FieldSpec(name, "category", categories=tuple(vocabulary), missing=missing_of(facts))


def binary_field(name: str, facts: ColumnFacts) -> FieldSpec:
    wrong = sorted(value for value in facts.counts if value.lower() not in BINARY_SPELLINGS)
    if wrong:
        raise TrainingError(
            f"column {name!r} is BINARY in the schema but holds {', '.join(map(repr, wrong[:5]))}: "
            "declare it CATEGORICAL, or fix the values (0/1, y/n, yes/no, t/f, true/false)"
        )
    return FieldSpec(name, "binary", missing=missing_of(facts))


def _useless(name: str, facts: ColumnFacts) -> str | None:
    if not facts.counts:
        return f"{name} (empty)"
    if len(facts.counts) == 1:
        return f"{name} (always {next(iter(facts.counts))!r})"
    return None


def _refuse_useless(useless: list[str]) -> None:
    if useless:
        raise TrainingError(
            f"column(s) with nothing to learn from: {', '.join(useless)}: remove them from the data file "
            "(or list them in excludedAttributeNames of an Amazon ML schema)"
        )


# ------------------------------------------------------------------------------------ task


def target_facts(table: Table, target: str) -> ColumnFacts:
    if target not in table.names:
        raise TrainingError(
            f"the target column {target!r} is not in the data (its columns: {', '.join(table.names)}): "
            "give --target one of them"
        )
    facts = column_facts(table.column(target))
    if len(facts.counts) < 2:
        raise TrainingError(
            f"the target column {target!r} has {'no values' if not facts.counts else 'a single value'}: "
            "a model needs at least two different target values to learn"
        )
    return facts


def infer_task(facts: ColumnFacts, target: str) -> Task:
    distinct = len(facts.counts)
    if distinct == 2:
        return "binary"
    if facts.kind == "text":
        if distinct <= MAX_CLASSES:
            return "multiclass"
        raise TrainingError(
            f"the target {target!r} has {distinct} different texts: too many classes to infer a task "
            f"(at most {MAX_CLASSES}); pass --task multiclass to train on them anyway"
        )
    if facts.kind == "integer" and distinct <= MAX_INTEGER_CLASSES:
        return "multiclass"
    return "regression"


def target_spec(
    facts: ColumnFacts, target: str, task: Task, positive: str | None
) -> tuple[TargetSpec, str | None]:
    """The target and, for binary, a sentence saying how the positive class was chosen."""
    if task == "regression":
        if facts.kind == "text":
            bad = next(v for v in facts.counts if not (_NUMBER.fullmatch(v) and math.isfinite(float(v))))
            raise TrainingError(
                f"a regression target must be numeric, but {target!r} holds {bad!r}: "
                "pass --task binary or multiclass, or fix the column"
            )
        return TargetSpec(target, "regression"), None
    labels = tuple(sorted(facts.counts))
    if positive is not None and positive not in labels:
        raise TrainingError(f"--positive {positive!r} is not a value of {target!r} ({', '.join(labels)})")
    if task == "multiclass":
        if positive is not None:
            raise TrainingError("--positive is for binary targets only")
        return TargetSpec(target, "multiclass", labels), None
    if len(labels) != 2:
        raise TrainingError(
            f"a binary target needs exactly 2 values, but {target!r} has {len(labels)} "
            f"({', '.join(labels[:10])}): pass --task multiclass, or fix the column"
        )
    note = None
    if positive is None:
        spelled = {label: BINARY_SPELLINGS.get(label.lower()) for label in labels}
        if sorted(v for v in spelled.values() if v is not None) == [0, 1]:
            positive = next(label for label, value in spelled.items() if value == 1)
            note = (
                f"positive class {positive!r} (the yes of {labels[0]!r}/{labels[1]!r}); --positive changes it"
            )
        else:
            positive = min(labels, key=lambda label: (facts.counts[label], [-ord(c) for c in label]))
            note = (
                f"positive class {positive!r}, the minority ({facts.counts[positive]} of "
                f"{sum(facts.counts.values())}); --positive changes it"
            )
    negative = next(label for label in labels if label != positive)
    return TargetSpec(target, "binary", (negative, positive), positive=positive, threshold=0.5), note


def _target_field(name: str, facts: ColumnFacts, task: Task) -> FieldSpec:
    return FieldSpec(
        name, "number" if task == "regression" else "category", role="target", missing=missing_of(facts)
    )


# ---------------------------------------------------------------------------------- schemas


def infer_schema(
    table: Table,
    target: str,
    *,
    name: str,
    task: Task | None = None,
    positive: str | None = None,
    id_column: str | None = None,
) -> tuple[RecordSchema, list[str]]:
    """The schema of a table with a header, and notes for the user (choices made for them)."""
    facts = target_facts(table, target)
    chosen_task = task or infer_task(facts, target)
    target_def, note = target_spec(facts, target, chosen_task, positive)
    notes = (
        []
        if task
        else [f"task {chosen_task} (inferred from {len(facts.counts)} target values; --task sets it)"]
    )
    notes += [note] if note else []
    if id_column is not None and id_column not in table.names:
        raise TrainingError(f"--id {id_column!r} is not a column of the data ({', '.join(table.names)})")
    if id_column == target:
        raise TrainingError("--id cannot be the target column")
    fields: list[FieldSpec] = []
    useless: list[str] = []
    for column, cells in zip(table.names, table.columns, strict=True):
        if column == target:
            fields.append(_target_field(column, facts, chosen_task))
            continue
        if column == id_column:
            fields.append(FieldSpec(column, "string", role="id"))
            continue
        column_info = column_facts(cells)
        problem = _useless(column, column_info)
        if problem:
            useless.append(problem)
        elif column_info.kind == "text":
            fields.append(category_field(column, column_info))
        else:
            fields.append(numeric_field(column, column_info, column_info.kind))
    _refuse_useless(useless)
    return RecordSchema(name, tuple(fields), target_def), notes


def complete_schema(
    source: SchemaSource, table: Table, *, task: Task | None = None, positive: str | None = None
) -> tuple[RecordSchema, list[str]]:
    """A schema file's schema, with what only the data can tell filled in (Amazon ML schemas)."""
    schema = source.schema
    missing = [spec.name for spec in schema.fields if spec.name not in table.names]
    if missing:
        raise TrainingError(
            f"the data lacks column(s) the schema names: {', '.join(missing)} "
            f"(the data has: {', '.join(table.names)})"
        )
    target = schema.target.name
    if source.complete:
        if task and task != schema.target.task:
            raise TrainingError(f"--task {task} contradicts the schema's task {schema.target.task}")
        if positive and positive != schema.target.positive:
            raise TrainingError(
                f"--positive {positive!r} contradicts the schema's {schema.target.positive!r}"
            )
        return schema, []
    facts = target_facts(table, target)
    notes: list[str] = []
    if schema.target.task == "binary" and task in (None, "binary"):
        target_def = schema.target
        if positive not in (None, "1"):
            raise TrainingError("a BINARY target's positive class is '1'; leave out --positive")
        wrong = sorted(v for v in facts.counts if v not in target_def.labels and v not in target_def.aliases)
        if wrong:
            raise TrainingError(
                f"the BINARY target {target!r} holds {', '.join(map(repr, wrong[:5]))}: "
                "use 0/1, y/n, yes/no, t/f or true/false, or declare it CATEGORICAL"
            )
    else:
        chosen: Task
        if task:
            chosen = task
        elif schema.target.task == "multiclass" and len(facts.counts) == 2:
            chosen = "binary"
            notes.append("task binary (the CATEGORICAL target has 2 values; --task sets it)")
        else:
            chosen = schema.target.task
        target_def, note = target_spec(facts, target, chosen, positive)
        notes += [note] if note else []
    fields: list[FieldSpec] = []
    useless: list[str] = []
    for spec in schema.fields:
        if spec.role == "id":
            fields.append(spec)
            continue
        column_info = column_facts(table.column(spec.name))
        if spec.role == "target":
            fields.append(_target_field(spec.name, column_info, target_def.task))
            continue
        problem = _useless(spec.name, column_info)
        if problem:
            useless.append(problem)
        elif spec.type == "binary":
            fields.append(binary_field(spec.name, column_info))
        elif spec.type == "category":
            fields.append(category_field(spec.name, column_info))
        elif column_info.kind == "text":
            bad = next(v for v in column_info.counts if not _NUMBER.fullmatch(v))
            raise TrainingError(
                f"column {spec.name!r} is NUMERIC in the schema but holds {bad!r}: "
                "declare it CATEGORICAL, or fix the values"
            )
        else:
            fields.append(numeric_field(spec.name, column_info, column_info.kind))
    _refuse_useless(useless)
    return replace(schema, fields=tuple(fields), target=target_def), notes
