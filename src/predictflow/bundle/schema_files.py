"""Schema files for `predictflow model train --schema` and `model import --schema`.

Two formats are read, told apart by their keys:

- the bundle's own schema format (`RecordSchema`, see format.py): `{name, fields, target}`, complete
  and checked as it is;
- Amazon ML's data schema file, as a datasource had it::

    {"version": "1.0", "targetAttributeName": "y", "rowId": "id", "dataFormat": "CSV",
     "dataFileContainsHeader": true, "excludedAttributeNames": ["notes"],
     "attributes": [{"attributeName": "age", "attributeType": "NUMERIC"}, ...]}

An Amazon ML schema names columns and their kinds but not what a bundle also needs (vocabularies,
ranges, missing markers, class labels), which Amazon ML took from the data; `read_schema_source`
says so (`complete=False`) and the trainer fills them in from the training file. The mapping:

    NUMERIC      -> `number` (the trainer narrows it to `integer` when every value is whole)
    CATEGORICAL  -> `category`; as the target, a multiclass task (binary when it has 2 values)
    BINARY       -> `binary` (0/1, y/n, yes/no, t/f, true/false in any case); as the target, a binary
                    task with labels "0" and "1", positive "1", threshold 0.5, and every other
                    spelling, in every case, as an alias of "0" or "1"
    TEXT         -> refused: predictflow encodes no free text. Make it CATEGORICAL when it is a
                    short code, or list it in `excludedAttributeNames`
    rowId        -> a `string` field with the role `id`, passed through as `id`, never a feature
    excludedAttributeNames
                 -> left out of `fields`: a file with a header matches columns by name and ignores
                    the ones the bundle does not name. A headerless file has no names, so leaving a
                    column out would shift the ones after it: excluded attributes with
                    `"dataFileContainsHeader": false` are refused (add a header row to the data).

Every problem is a `SchemaFileError` (a `BundleError`) that names it and says how to fix it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from predictflow.bundle.exceptions import BundleError, UnsupportedFormat
from predictflow.bundle.format import (
    BINARY_SPELLINGS,
    FORMAT_VERSION,
    FieldSpec,
    FieldType,
    RecordSchema,
    TargetSpec,
    Task,
)

AML_TYPES: Final[dict[str, FieldType]] = {"NUMERIC": "number", "CATEGORICAL": "category", "BINARY": "binary"}
AML_TASKS: Final[dict[str, Task]] = {"NUMERIC": "regression", "CATEGORICAL": "multiclass", "BINARY": "binary"}


class SchemaFileError(BundleError):
    """A schema file that cannot be read: the message names the problem and how to fix it."""


@dataclass(frozen=True, slots=True)
class SchemaSource:
    """A schema file as read: the schema, and what the trainer must still take from the data."""

    schema: RecordSchema
    format: str
    """`predictflow` or `amazon-ml`."""
    complete: bool
    """False when vocabularies, ranges and labels are still to be taken from the data (Amazon ML)."""
    has_header: bool | None = None
    """Whether the data file starts with a header row, when the schema says so."""
    excluded: tuple[str, ...] = ()


def read_schema_file(path: Path | str) -> RecordSchema:
    """The record schema a schema file describes (either format; see the module docstring)."""
    return read_schema_source(path).schema


def read_schema_source(path: Path | str) -> SchemaSource:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SchemaFileError(f"cannot read the schema file {path}: {error}") from error
    try:
        data = json.loads(text)
    except ValueError as error:
        raise SchemaFileError(
            f"the schema file {path} is not valid JSON ({error}): fix the syntax at that position"
        ) from error
    if not isinstance(data, Mapping):
        raise SchemaFileError(f"the schema file {path} must hold a JSON object, not {type(data).__name__}")
    if "attributes" in data or "targetAttributeName" in data:
        return _amazon_ml(data, path)
    if "fields" in data:
        version = data.get("format_version")
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise UnsupportedFormat(
                f"schema file {path} is format {version}, newer than this predictflow reads "
                f"({FORMAT_VERSION}): upgrade predictflow to use it"
            )
        try:
            schema = RecordSchema.from_dict(data)
        except BundleError as error:
            raise SchemaFileError(f"{path}: {error}") from error
        return SchemaSource(schema, "predictflow", complete=True)
    raise SchemaFileError(
        f"{path} is neither a predictflow schema (with 'fields' and 'target') nor an Amazon ML data "
        "schema (with 'attributes' and 'targetAttributeName')"
    )


def binary_target(name: str) -> TargetSpec:
    """Amazon ML's BINARY target: labels "0" and "1", every other spelling in every case an alias."""
    aliases: dict[str, str] = {}
    for spelled, value in BINARY_SPELLINGS.items():
        for cased in _every_case(spelled):
            if cased not in ("0", "1"):
                aliases[cased] = str(value)
    return TargetSpec(name, "binary", ("0", "1"), positive="1", threshold=0.5, aliases=aliases)


def _every_case(word: str) -> list[str]:
    options = [(c.lower(), c.upper()) if c.isalpha() else (c,) for c in word]
    return sorted({"".join(chars) for chars in itertools.product(*options)})


def _amazon_ml(data: Mapping[str, Any], path: Path) -> SchemaSource:
    where = f"{path} (Amazon ML schema)"
    attributes = data.get("attributes")
    if not isinstance(attributes, list) or not attributes:
        raise SchemaFileError(f"{where}: 'attributes' must be a non-empty list of attributes")
    target_name = data.get("targetAttributeName")
    if not isinstance(target_name, str) or not target_name:
        raise SchemaFileError(
            f"{where}: 'targetAttributeName' is missing: name the attribute the model should predict"
        )
    excluded = data.get("excludedAttributeNames") or []
    if not isinstance(excluded, list) or not all(isinstance(name, str) for name in excluded):
        raise SchemaFileError(f"{where}: 'excludedAttributeNames' must be a list of attribute names")
    row_id = data.get("rowId")
    if row_id is not None and not isinstance(row_id, str):
        raise SchemaFileError(f"{where}: 'rowId' must be an attribute name")
    data_format = str(data.get("dataFormat", "CSV"))
    if data_format.upper() != "CSV":
        raise SchemaFileError(f"{where}: dataFormat {data_format!r} is not supported: only CSV")
    header = data.get("dataFileContainsHeader")
    if header is not None and not isinstance(header, bool):
        raise SchemaFileError(f"{where}: 'dataFileContainsHeader' must be true or false")

    names: list[str] = []
    kinds: dict[str, str] = {}
    for position, attribute in enumerate(attributes, start=1):
        if not isinstance(attribute, Mapping) or not isinstance(attribute.get("attributeName"), str):
            raise SchemaFileError(f"{where}: attribute {position} has no 'attributeName'")
        name = attribute["attributeName"]
        kind = str(attribute.get("attributeType", "")).upper()
        if kind not in (*AML_TYPES, "TEXT"):
            raise SchemaFileError(
                f"{where}: attribute {name!r} has attributeType {attribute.get('attributeType')!r}; "
                "use one of NUMERIC, CATEGORICAL, BINARY, TEXT"
            )
        if name in kinds:
            raise SchemaFileError(f"{where}: attribute {name!r} is listed twice; keep one")
        names.append(name)
        kinds[name] = kind
    for name in [target_name, *([row_id] if row_id else []), *excluded]:
        if name not in kinds:
            raise SchemaFileError(
                f"{where}: {name!r} is not among the attributes ({', '.join(names)}): fix the name or add it"
            )
    if target_name in excluded or (row_id and row_id in excluded):
        raise SchemaFileError(f"{where}: the target and the rowId cannot be excluded attributes")
    if row_id == target_name:
        raise SchemaFileError(f"{where}: the rowId cannot be the target")
    if excluded and header is False:
        raise SchemaFileError(
            f"{where}: excluded attributes ({', '.join(excluded)}) in a file without a header would shift "
            "the columns after them: add a header row to the data file and set dataFileContainsHeader "
            "to true, or remove those columns from the data and the schema"
        )
    text = [name for name in names if kinds[name] == "TEXT" and name not in excluded and name != row_id]
    if text:
        raise SchemaFileError(
            f"{where}: TEXT attributes are not supported: {', '.join(text)}. Declare them CATEGORICAL when "
            "they hold short codes, or list them in excludedAttributeNames"
        )

    fields: list[FieldSpec] = []
    for name in names:
        if name in excluded:
            continue
        if name == row_id:
            fields.append(FieldSpec(name, "string", role="id"))
        elif name == target_name:
            target_type: FieldType = "category" if kinds[name] in ("CATEGORICAL", "BINARY") else "number"
            fields.append(FieldSpec(name, target_type, role="target"))
        else:
            fields.append(FieldSpec(name, AML_TYPES[kinds[name]]))
    if not any(spec.role == "feature" for spec in fields):
        raise SchemaFileError(f"{where}: no attribute is left to learn from besides the target and rowId")
    target_kind = kinds[target_name]
    target = (
        binary_target(target_name)
        if target_kind == "BINARY"
        else TargetSpec(target_name, AML_TASKS[target_kind])
    )
    name = Path(path).stem.removesuffix(".schema").removesuffix(".csv") or "model"
    schema = RecordSchema(name=name, fields=tuple(fields), target=target)
    return SchemaSource(schema, "amazon-ml", complete=False, has_header=header, excluded=tuple(excluded))
