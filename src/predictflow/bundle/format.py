"""The bundle file, `bundle.json`: what a model expects of a record, and what it answers.

A bundle is a folder: `bundle.json`, the model it names (`model.onnx`), and optionally the
trainer's evaluation report (`report/`). The file is the one description of a record layout
that validation, encoding, scoring, routing, dead-letter messages and the CLI read; no module
holds a field name, a label or a vocabulary of a particular data set.

    {
      "format": "predictflow-bundle", "format_version": 1,
      "name": "adult-income",
      "model_version": "adult-income-3f9c0e1d2b4a",      # a content hash, see `content_version`
      "fields": [                                         # every column, in headerless file order
        {"name": "age", "type": "integer", "range": [17, 100]},
        {"name": "workclass", "type": "category", "categories": ["Private", ...], "missing": ["?"]},
        {"name": "id", "type": "string", "role": "id"},  # passed through as `id`, never a feature
        {"name": "income", "type": "category", "role": "target"}
      ],
      "target": {"name": "income", "task": "binary", "labels": ["<=50K", ">50K"],
                 "positive": ">50K", "threshold": 0.5, "aliases": {">50K.": ">50K", ...}},
      "model": {"kind": "onnx", "path": "model.onnx", "sha256": "...", "size_bytes": 171234,
                "input": "features", "output": "probabilities", "opset": 15},
      "forest": {"source": {"path": "forest/forest.c", "sha256": "..."},   # optional, see below
                 "libraries": {"linux-x86_64": {"path": "forest/linux-x86_64.so", "sha256": "..."},
                               "linux-aarch64": {"path": "forest/linux-aarch64.so", "sha256": "..."}}},
      "training": {"data": {...digest...}, "metrics": {...}, ...},   # provenance, display only
      "metadata": {...}                                                # free-form, display only
    }

Field types: `integer` (whole numbers), `number` (decimals), `category` (one of `categories`),
`binary` (Amazon ML's spellings of 0/1: 0/1, n/y, no/yes, f/t, false/true, any case), and
`string` (only for the row id). A feature is encoded as one float32 column in field order:
numbers as themselves, a category as its index in `categories`, a binary value as 0 or 1, and
a missing marker as NaN, which tree models send down their learned missing-value branch.

`forest` is the model compiled to native code (predictflow.forest), one library per machine
kind, each with its sha256: a tree-ensemble bundle scores through it where there is a library for
the machine, and through ONNX Runtime everywhere else. It is derived from model.onnx (and checked
against it when written and deployed), so it is not part of the content version: recompiling with
another compiler does not make another model.

Reading is tolerant (unknown keys are kept and written back, as MLflow's MLmodel does) and
versioned (a newer `format_version` is refused; an older one is upgraded in `upgrade`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, cast

from predictflow.bundle.exceptions import BundleError, UnsupportedFormat

FORMAT: Final = "predictflow-bundle"
FORMAT_VERSION: Final = 1
BUNDLE_FILE: Final = "bundle.json"
MODEL_FILE: Final = "model.onnx"

Task = Literal["binary", "multiclass", "regression"]
FieldType = Literal["integer", "number", "category", "binary", "string"]
Role = Literal["feature", "id", "target"]
ModelKind = Literal["onnx", "sagemaker", "aml"]

TASKS: Final[tuple[Task, ...]] = ("binary", "multiclass", "regression")
FIELD_TYPES: Final[tuple[FieldType, ...]] = ("integer", "number", "category", "binary", "string")
ROLES: Final[tuple[Role, ...]] = ("feature", "id", "target")
MODEL_KINDS: Final[tuple[ModelKind, ...]] = ("onnx", "sagemaker", "aml")

BINARY_SPELLINGS: Final = {
    "0": 0, "n": 0, "no": 0, "f": 0, "false": 0,
    "1": 1, "y": 1, "yes": 1, "t": 1, "true": 1,
}  # fmt: skip
"""Amazon ML's BINARY attribute: these spellings, in any case."""

FLOAT32_EXACT: Final = 2**24
"""Whole numbers up to this size are exact in the model's float32 input."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One column of a record file."""

    name: str
    type: FieldType
    role: Role = "feature"
    range: tuple[float, float] | None = None
    categories: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.role != "feature":
            out["role"] = self.role
        if self.range is not None:
            out["range"] = [_plain_number(bound) for bound in self.range]
        if self.categories:
            out["categories"] = list(self.categories)
        if self.missing:
            out["missing"] = list(self.missing)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FieldSpec:
        bounds = data.get("range")
        return cls(
            name=str(data["name"]),
            type=cast(FieldType, data["type"]),
            role=cast(Role, data.get("role", "feature")),
            range=(float(bounds[0]), float(bounds[1])) if bounds is not None else None,
            categories=tuple(str(category) for category in data.get("categories", ())),
            missing=tuple(str(marker) for marker in data.get("missing", ())),
        )


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """What the model predicts. Labels are in the order of the model's score columns."""

    name: str
    task: Task
    labels: tuple[str, ...] = ()
    positive: str | None = None
    threshold: float | None = None
    aliases: Mapping[str, str] = field(default_factory=dict)
    """Other spellings of a label in labelled files (e.g. a trailing period), for `actual`."""

    @property
    def negative(self) -> str:
        """For a binary task: the label that is not the positive one."""
        return next(label for label in self.labels if label != self.positive)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "task": self.task}
        if self.labels:
            out["labels"] = list(self.labels)
        if self.positive is not None:
            out["positive"] = self.positive
        if self.threshold is not None:
            out["threshold"] = self.threshold
        if self.aliases:
            out["aliases"] = dict(self.aliases)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetSpec:
        threshold = data.get("threshold")
        return cls(
            name=str(data["name"]),
            task=cast(Task, data["task"]),
            labels=tuple(str(label) for label in data.get("labels", ())),
            positive=str(data["positive"]) if data.get("positive") is not None else None,
            threshold=float(threshold) if threshold is not None else None,
            aliases={str(k): str(v) for k, v in data.get("aliases", {}).items()},
        )


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Where the scores come from: an ONNX file in the bundle, or an endpoint it names."""

    kind: ModelKind
    path: str = MODEL_FILE
    sha256: str = ""
    size_bytes: int = 0
    input: str = "features"
    output: str = "probabilities"
    opset: int | None = None
    endpoint: str = ""
    """sagemaker: the endpoint name; aml: the real-time endpoint URL."""
    model_id: str = ""
    """aml: the MLModelId."""

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "onnx":
            out: dict[str, Any] = {
                "kind": "onnx",
                "path": self.path,
                "sha256": self.sha256,
                "size_bytes": self.size_bytes,
                "input": self.input,
                "output": self.output,
            }
            if self.opset is not None:
                out["opset"] = self.opset
            return out
        out = {"kind": self.kind, "endpoint": self.endpoint}
        if self.model_id:
            out["model_id"] = self.model_id
        return out

    @classmethod
    def of_onnx(cls, model_bytes: bytes, *, input: str, output: str, opset: int | None = None) -> ModelSpec:
        """The description of an ONNX model the bundle carries as `model.onnx`."""
        return cls(
            "onnx",
            path=MODEL_FILE,
            sha256=hashlib.sha256(model_bytes).hexdigest(),
            size_bytes=len(model_bytes),
            input=input,
            output=output,
            opset=opset,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        opset = data.get("opset")
        return cls(
            kind=cast(ModelKind, data["kind"]),
            path=str(data.get("path", MODEL_FILE)),
            sha256=str(data.get("sha256", "")),
            size_bytes=int(data.get("size_bytes", 0)),
            input=str(data.get("input", "features")),
            output=str(data.get("output", "probabilities")),
            opset=int(opset) if opset is not None else None,
            endpoint=str(data.get("endpoint", "")),
            model_id=str(data.get("model_id", "")),
        )


FOREST_PATH: Final = re.compile(r"forest/[A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class FileRef:
    path: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileRef:
        return cls(str(data["path"]), str(data["sha256"]))


@dataclass(frozen=True, slots=True)
class ForestSpec:
    """The compiled forest's files: its C source and a library per machine kind (linux-x86_64)."""

    source: FileRef
    libraries: Mapping[str, FileRef] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.to_dict(),
            "libraries": {key: ref.to_dict() for key, ref in sorted(self.libraries.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ForestSpec:
        return cls(
            FileRef.from_dict(data["source"]),
            {str(key): FileRef.from_dict(ref) for key, ref in data.get("libraries", {}).items()},
        )

    def problems(self) -> list[str]:
        refs = [self.source, *self.libraries.values()]
        # Paths are read from the bundle's folder or S3 prefix: keep them inside forest/.
        return [
            f"forest file {ref.path!r} must be forest/<name> with a sha256"
            for ref in refs
            if not FOREST_PATH.fullmatch(ref.path) or not re.fullmatch(r"[0-9a-f]{64}", ref.sha256)
        ]


@dataclass(frozen=True, slots=True)
class BundleSpec:
    """The whole of `bundle.json`."""

    name: str
    model_version: str
    fields: tuple[FieldSpec, ...]
    target: TargetSpec
    model: ModelSpec
    training: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    forest: ForestSpec | None = None
    """The model compiled to native code, when it is a tree ensemble (not in the content version)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Keys this version of predictflow does not know; kept so that a rewrite loses nothing."""

    @property
    def features(self) -> tuple[FieldSpec, ...]:
        return tuple(spec for spec in self.fields if spec.role == "feature")

    @property
    def row_id(self) -> FieldSpec | None:
        return next((spec for spec in self.fields if spec.role == "id"), None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "model_version": self.model_version,
            "fields": [spec.to_dict() for spec in self.fields],
            "target": self.target.to_dict(),
            "model": self.model.to_dict(),
        }
        if self.forest is not None:
            out["forest"] = self.forest.to_dict()
        if self.training:
            out["training"] = dict(self.training)
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out | dict(self.extra)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BundleSpec:
        """Read (and check) a bundle file's content; every problem is named at once."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise BundleError(f"not a predictflow bundle file: its 'format' is not {FORMAT!r}")
        data = upgrade(data)
        known = {"format", "format_version", "name", "model_version", "fields", "target", "model"}
        known |= {"training", "metadata", "forest"}
        try:
            spec = cls(
                name=str(data["name"]),
                model_version=str(data["model_version"]),
                fields=tuple(FieldSpec.from_dict(item) for item in data["fields"]),
                target=TargetSpec.from_dict(data["target"]),
                model=ModelSpec.from_dict(data["model"]),
                training=dict(data.get("training", {})),
                metadata=dict(data.get("metadata", {})),
                forest=ForestSpec.from_dict(data["forest"]) if data.get("forest") is not None else None,
                extra={key: value for key, value in data.items() if key not in known},
            )
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise BundleError(f"bundle file is incomplete or malformed: {_describe(error)}") from error
        problems = spec.problems()
        if problems:
            raise BundleError("bundle file is not valid: " + "; ".join(problems))
        return spec

    @classmethod
    def from_json(cls, text: str | bytes) -> BundleSpec:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise BundleError(f"bundle file is not JSON: {error}") from error
        return cls.from_dict(data)

    def problems(self) -> list[str]:
        """Everything that makes this description unusable, in words a person can act on."""
        problems: list[str] = []
        names = [spec.name for spec in self.fields]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            problems.append(f"field names are repeated: {', '.join(duplicates)}")
        if not self.features:
            problems.append("no field has the role 'feature'")
        if sum(spec.role == "id" for spec in self.fields) > 1:
            problems.append("more than one field has the role 'id'")
        for spec in self.fields:
            problems.extend(_field_problems(spec))
        targets = [spec for spec in self.fields if spec.role == "target"]
        if len(targets) > 1:
            problems.append("more than one field has the role 'target'")
        if targets and targets[0].name != self.target.name:
            problems.append(
                f"the target field is {targets[0].name!r} but target.name is {self.target.name!r}"
            )
        problems.extend(_target_problems(self.target))
        if self.model.kind not in MODEL_KINDS:
            problems.append(f"model.kind {self.model.kind!r} is not one of {', '.join(MODEL_KINDS)}")
        elif self.model.kind == "onnx" and not self.model.sha256:
            problems.append("model.sha256 is missing")
        elif self.model.kind != "onnx" and not self.model.endpoint:
            problems.append(f"a {self.model.kind} model needs model.endpoint")
        if self.forest is not None:
            if self.model.kind != "onnx":
                problems.append("only an ONNX model can have a compiled forest")
            problems.extend(self.forest.problems())
        return problems


@dataclass(frozen=True, slots=True)
class RecordSchema:
    """A schema file: the record layout and target of a bundle, before there is a model.

    It is the bundle file without `model_version` and `model`: `predictflow model train
    --schema` and `model import --schema` read it, and the trainer's bundle file repeats it."""

    name: str
    fields: tuple[FieldSpec, ...]
    target: TargetSpec
    description: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordSchema:
        try:
            schema = cls(
                name=str(data["name"]),
                fields=tuple(FieldSpec.from_dict(item) for item in data["fields"]),
                target=TargetSpec.from_dict(data["target"]),
                description=str(data.get("description", "")),
            )
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise BundleError(f"schema file is incomplete or malformed: {_describe(error)}") from error
        problems = schema.as_bundle(ModelSpec("onnx", sha256="-")).problems()
        if problems:
            raise BundleError("schema file is not valid: " + "; ".join(problems))
        return schema

    def versioned_bundle(
        self, model: ModelSpec, model_bytes: bytes, name: str = "", **provenance: Any
    ) -> BundleSpec:
        """The bundle file for this schema and model, its version the content hash of both."""
        draft = replace(self.as_bundle(model, **provenance), name=name or self.name)
        return replace(draft, model_version=content_version(draft.name, draft.to_dict(), model_bytes))

    def as_bundle(self, model: ModelSpec, model_version: str = "", **provenance: Any) -> BundleSpec:
        metadata = {"description": self.description} if self.description else {}
        return BundleSpec(
            self.name, model_version, self.fields, self.target, model, metadata=metadata, **provenance
        )


def upgrade(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """Bring an older bundle file to the current format; refuse a newer one.

    Format 1 is the first, so there is nothing to upgrade yet: a later format adds its step here,
    as one function, so that every reader of every older bundle goes through the same code.
    """
    version = data.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise BundleError(f"bundle file has no valid format_version (got {version!r})")
    if version > FORMAT_VERSION:
        raise UnsupportedFormat(
            f"bundle format {version} is newer than this predictflow reads ({FORMAT_VERSION}): "
            "upgrade predictflow to use it"
        )
    return data


def content_version(name: str, spec_without_version: Mapping[str, Any], model_bytes: bytes) -> str:
    """A model version that changes whenever what the bundle does changes: the model's bytes,
    or the fields, target and model description. Training provenance and metadata are left out,
    so re-describing a bundle does not make it a new model."""
    digest = hashlib.sha256(model_bytes)
    described = {key: spec_without_version[key] for key in ("fields", "target", "model")}
    digest.update(json.dumps(described, sort_keys=True, separators=(",", ":")).encode())
    return f"{name}-{digest.hexdigest()[:12]}"


def _field_problems(spec: FieldSpec) -> list[str]:
    where = f"field {spec.name!r}"
    problems: list[str] = []
    if not spec.name or spec.name != spec.name.strip():
        problems.append(f"{where}: a name must be non-empty with no surrounding spaces")
    if spec.type not in FIELD_TYPES:
        return [f"{where}: type {spec.type!r} is not one of {', '.join(FIELD_TYPES)}"]
    if spec.role not in ROLES:
        problems.append(f"{where}: role {spec.role!r} is not one of {', '.join(ROLES)}")
    if spec.role == "feature" and spec.type == "string":
        problems.append(f"{where}: a 'string' field can only be the row id (role 'id')")
    if spec.role == "feature" and spec.type == "category" and not spec.categories:
        problems.append(f"{where}: a category field needs its 'categories'")
    if len(set(spec.categories)) != len(spec.categories):
        problems.append(f"{where}: categories are repeated")
    if set(spec.categories) & set(spec.missing):
        problems.append(f"{where}: a missing marker is also a category")
    if spec.range is not None:
        low, high = spec.range
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            problems.append(f"{where}: range must be two finite numbers, low <= high")
        elif spec.type == "integer" and max(abs(low), abs(high)) > FLOAT32_EXACT:
            problems.append(f"{where}: an integer range must stay within ±2**24 (exact in float32)")
    if spec.range is not None and spec.type not in ("integer", "number"):
        problems.append(f"{where}: only integer and number fields have a range")
    return problems


def _target_problems(target: TargetSpec) -> list[str]:
    if target.task not in TASKS:
        return [f"target.task {target.task!r} is not one of {', '.join(TASKS)}"]
    problems: list[str] = []
    if target.task == "binary":
        if len(target.labels) != 2:
            problems.append("a binary target needs exactly two labels")
        elif target.positive not in target.labels:
            problems.append("a binary target needs its positive label, one of its two labels")
        if target.threshold is None or not 0.0 < target.threshold < 1.0:
            problems.append("a binary target needs a decision threshold between 0 and 1")
    elif target.task == "multiclass" and len(target.labels) < 2:
        problems.append("a multiclass target needs at least two labels")
    elif target.task == "regression" and target.labels:
        problems.append("a regression target has no labels")
    if len(set(target.labels)) != len(target.labels):
        problems.append("target labels are repeated")
    unknown = sorted(set(target.aliases.values()) - set(target.labels))
    if unknown:
        problems.append(f"target aliases name labels that do not exist: {', '.join(unknown)}")
    return problems


def _plain_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _describe(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"missing key {error}"
    return str(error)
