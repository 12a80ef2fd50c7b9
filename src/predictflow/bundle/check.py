"""Does a bundle's model fit its own description? Asked before a bundle is written or made active.

`BundleSpec.problems` checks the description against itself; this checks the ONNX model against
the description, from ONNX Runtime's view of the graph (what the Lambda will load, not what an
exporter meant to write):

- the bytes are a model ONNX Runtime loads;
- the input `model.input` is float32 of shape [N, width], width = the number of feature fields,
  and it is the only input (the pipeline feeds nothing else);
- the output `model.output` is a float tensor of [N, len(labels)] for a classifier, [N, 1] or [N]
  for regression; a ZipMap (a list of dicts per row) is refused with how to export without it;
- a smoke prediction on a few synthetic records (every field missing where the schema allows it,
  typical values, the edges of each range) gives finite numbers, and for a classifier
  probabilities in [0, 1] summing to 1 per row; where the graph also answers with string labels,
  they must be the bundle's labels, in the bundle's score order;
- where the bundle carries a compiled forest for this machine, it must load and give ONNX
  Runtime's scores (within FOREST_TOLERANCE) on the smoke records and on a few hundred seeded
  random ones (missing values, range ends, every category and one past the last).

A failure raises `SchemaMismatch` naming what does not fit. Bundles that name an endpoint
(SageMaker, Amazon ML) have no graph to inspect: their description was checked when loaded.

`onnx` (the protobuf library) is a development dependency only, so nothing here imports it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from predictflow.bundle.exceptions import SchemaMismatch
from predictflow.bundle.format import BundleSpec, ModelSpec
from predictflow.bundle.sources import Bundle

FLOAT_TENSORS: Final = ("tensor(float)", "tensor(double)")
PROBABILITY_TOLERANCE: Final = 1e-3
FOREST_TOLERANCE: Final = 1e-6
FOREST_ROWS: Final = 512
ZIPMAP_ADVICE: Final = (
    "export it without a ZipMap: skl2onnx `to_onnx(model, X, options={'zipmap': False})` or "
    "`convert_sklearn(..., options={id(model): {'zipmap': False}})`, onnxmltools `zipmap=False`"
)


@dataclass(frozen=True)
class Port:
    """One graph input or output as ONNX Runtime describes it."""

    name: str
    type: str
    shape: tuple[int | str | None, ...] | None

    @classmethod
    def of(cls, node: Any) -> Port:
        shape = node.shape
        return cls(str(node.name), str(node.type), tuple(shape) if isinstance(shape, list) else None)

    def describe(self) -> str:
        dims = "?" if self.shape is None else "[" + ", ".join(_dim(d) for d in self.shape) + "]"
        return f"{self.name} ({self.type} {dims})"

    @property
    def is_zipmap(self) -> bool:
        return self.type.startswith("seq(map")


@dataclass(frozen=True)
class Graph:
    """What a loaded model takes and answers, and the session to run it."""

    session: Any
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    producer: str

    def input(self, name: str) -> Port | None:
        return next((port for port in self.inputs if port.name == name), None)

    def output(self, name: str) -> Port | None:
        return next((port for port in self.outputs if port.name == name), None)


def open_graph(model_bytes: bytes, where: str = "the model") -> Graph:
    """Load ONNX bytes with ONNX Runtime, or say they are not a model it can run."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 4
    try:
        session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SchemaMismatch(
            f"{where} is not an ONNX model ONNX Runtime can load ({_short(reason)}): "
            "export the model to ONNX (skl2onnx, onnxmltools) and pass the .onnx file"
        ) from error
    meta = session.get_modelmeta()
    producer = meta.producer_name
    return Graph(
        session,
        tuple(Port.of(node) for node in session.get_inputs()),
        tuple(Port.of(node) for node in session.get_outputs()),
        str(producer),
    )


def check_bundle(bundle: Bundle) -> None:
    """Raise `SchemaMismatch` unless the bundle's model fits its fields and target."""
    spec = bundle.spec
    if spec.model.kind != "onnx":
        return
    if bundle.model_bytes is None:
        raise SchemaMismatch(f"bundle {spec.model_version}: its ONNX model was not loaded, nothing to check")
    graph = open_graph(bundle.model_bytes, f"{spec.model.path} of bundle {spec.name}")
    check_graph(graph, spec)
    smoke_test(graph, spec)
    check_forest(graph, bundle)


def check_forest(graph: Graph, bundle: Bundle) -> None:
    """The compiled forest, where this machine has one, answers as ONNX Runtime does."""
    from predictflow.forest.runtime import CompiledForest, ForestLoadError, platform_key

    spec = bundle.spec
    if spec.forest is None or platform_key() not in spec.forest.libraries:
        return
    if bundle.forest_library is None:
        raise SchemaMismatch(f"its compiled forest cannot be used: {bundle.forest_note}")
    try:
        forest = CompiledForest(bundle.forest_library, spec.model.sha256)
    except ForestLoadError as error:
        raise SchemaMismatch(f"its compiled forest does not load: {error}") from error
    rows = np.concatenate([synthetic_rows(spec), random_rows(spec, FOREST_ROWS)])
    (expected,) = graph.session.run([spec.model.output], {spec.model.input: rows})
    expected = np.asarray(expected, dtype=np.float64).reshape(len(rows), -1)
    got = forest.predict(rows)
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=0, atol=FOREST_TOLERANCE):
        worst = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else math.inf
        raise SchemaMismatch(
            f"its compiled forest differs from ONNX Runtime by {worst:.3g} on {len(rows)} check records: "
            "rebuild the bundle (its forest/ folder) or remove the forest section to serve it by ONNX Runtime"
        )


def random_rows(spec: BundleSpec, count: int, seed: int = 20_240_601) -> npt.NDArray[np.float32]:
    """Seeded records over each field's domain: categories (and one code past the last), values
    across and at the ends of ranges, and missing values where the schema has a marker."""
    rng = np.random.default_rng(seed)
    columns = []
    for field in spec.features:
        if field.type == "category":
            column = rng.integers(0, len(field.categories) + 1, count).astype(np.float32)
        elif field.type == "binary":
            column = rng.integers(0, 2, count).astype(np.float32)
        else:
            low, high = field.range if field.range is not None else (-1e6, 1e6)
            drawn = rng.uniform(low, high, count)
            drawn = np.floor(drawn) if field.type == "integer" else drawn
            drawn[rng.random(count) < 0.05] = low
            drawn[rng.random(count) < 0.05] = high
            column = drawn.astype(np.float32)
        if field.missing:
            column[rng.random(count) < 0.1] = np.nan
        columns.append(column)
    return np.stack(columns, axis=1).astype(np.float32)


def check_graph(graph: Graph, spec: BundleSpec) -> None:
    """The graph's input and output fit the fields and the target (names, types, shapes)."""
    model = spec.model
    width = len(spec.features)
    port = graph.input(model.input)
    if port is None:
        raise SchemaMismatch(
            f"the model has no input named {model.input!r}; its inputs: {_ports(graph.inputs)} "
            "(name the right one with --input)"
        )
    others = [p for p in graph.inputs if p.name != model.input]
    if others:
        raise SchemaMismatch(
            f"the model has inputs the pipeline does not feed: {_ports(others)}; "
            f"export it with one float32 input of shape [N, {width}]"
        )
    if port.type != "tensor(float)":
        raise SchemaMismatch(
            f"input {port.describe()} is not float32: the pipeline feeds a float32 matrix [N, {width}]"
        )
    if port.shape is not None:
        if len(port.shape) != 2:
            raise SchemaMismatch(
                f"input {port.describe()} is not a matrix: the pipeline feeds float32 [N, {width}]"
            )
        rows, columns = port.shape
        if isinstance(columns, int) and columns != width:
            raise SchemaMismatch(
                f"input {port.describe()} takes {columns} columns but the schema has {width} "
                f"feature fields ({_names(spec)})"
            )
        if isinstance(rows, int) and rows > 0:
            raise SchemaMismatch(
                f"input {port.describe()} has a fixed batch size of {rows}: export it with a "
                "dynamic first dimension (None), as files are scored in batches of any size"
            )
    check_output(graph, spec.model, spec)


def check_output(graph: Graph, model: ModelSpec, spec: BundleSpec) -> None:
    port = graph.output(model.output)
    if port is None:
        raise SchemaMismatch(
            f"the model has no output named {model.output!r}; its outputs: {_ports(graph.outputs)} "
            "(name the right one with --output)"
        )
    if port.is_zipmap:
        raise SchemaMismatch(f"output {port.describe()} is a ZipMap (one dict per row): {ZIPMAP_ADVICE}")
    if port.type not in FLOAT_TENSORS:
        raise SchemaMismatch(
            f"output {port.describe()} is not a float tensor of scores"
            + (" (it looks like the predicted label; name the probabilities)" if "int" in port.type else "")
        )
    if port.shape is None:
        return
    wanted = _wanted_shape(spec)
    columns: int | str | None = port.shape[1] if len(port.shape) == 2 else None
    if spec.target.task == "regression":
        fits = len(port.shape) == 1 or (
            len(port.shape) == 2 and not (isinstance(columns, int) and columns != 1)
        )
    else:
        fits = len(port.shape) == 2 and not (isinstance(columns, int) and columns != len(spec.target.labels))
    if not fits:
        raise SchemaMismatch(f"output {port.describe()} does not fit a {_task(spec)}: it must be {wanted}")


def smoke_test(graph: Graph, spec: BundleSpec) -> None:
    """Score a few synthetic records and check the answers are usable."""
    features = synthetic_rows(spec)
    try:
        results = graph.session.run(None, {spec.model.input: features})
    except Exception as error:
        raise SchemaMismatch(
            f"the model fails on {len(features)} synthetic records of the schema: "
            f"{_short(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)}"
        ) from error
    answers = dict(zip((port.name for port in graph.outputs), results, strict=True))
    scores = np.asarray(answers[spec.model.output])
    check_scores(spec, scores, len(features))
    for port in graph.outputs:
        if port.name != spec.model.output and port.type == "tensor(string)":
            check_label_order(spec, np.asarray(answers[port.name]), scores, port.name)


def check_scores(spec: BundleSpec, raw: npt.NDArray[Any], rows: int) -> None:
    wanted = _wanted_shape(spec)
    k = 1 if spec.target.task == "regression" else len(spec.target.labels)
    if raw.size != rows * k or raw.shape[0] != rows:
        raise SchemaMismatch(
            f"the model answered {rows} synthetic records with scores of shape {list(raw.shape)}; "
            f"a {_task(spec)} needs {wanted}"
        )
    scores = raw.astype(np.float64).reshape(rows, k)
    if not np.isfinite(scores).all():
        raise SchemaMismatch("the model gives non-finite scores (NaN or infinity) on synthetic records")
    if spec.target.task == "regression":
        return
    if (scores < -PROBABILITY_TOLERANCE).any() or (scores > 1 + PROBABILITY_TOLERANCE).any():
        raise SchemaMismatch(
            f"output {spec.model.output!r} is not probabilities: values outside [0, 1] "
            f"(e.g. {float(scores.min()):.4g} .. {float(scores.max()):.4g}); name the probability output, "
            "not raw margins"
        )
    sums = scores.sum(axis=1)
    if (np.abs(sums - 1.0) > PROBABILITY_TOLERANCE).any():
        raise SchemaMismatch(
            f"output {spec.model.output!r} does not sum to 1 per record (e.g. {float(sums[0]):.4g}): "
            f"a classifier must give one probability per label ({', '.join(spec.target.labels)})"
        )


def check_label_order(
    spec: BundleSpec, labels: npt.NDArray[Any], scores: npt.NDArray[Any], name: str
) -> None:
    """A graph that also answers string labels shows its class order: it must be the bundle's."""
    known = set(spec.target.labels)
    answered = [str(label) for label in labels.reshape(-1).tolist()]
    unknown = sorted(set(answered) - known)
    if unknown:
        raise SchemaMismatch(
            f"the model's {name!r} output answers labels the schema does not list: {', '.join(unknown)} "
            f"(the schema's labels: {', '.join(spec.target.labels)})"
        )
    k = len(spec.target.labels)
    scores = np.asarray(scores, dtype=np.float64).reshape(len(answered), k)
    for row, label in zip(scores, answered, strict=True):
        ordered = np.sort(row)
        expected = spec.target.labels[int(np.argmax(row))]
        if ordered[-1] - ordered[-2] > 1e-6 and expected != label:
            raise SchemaMismatch(
                f"the model's class order is not the schema's: it answers {label!r} where the schema's "
                f"order ({', '.join(spec.target.labels)}) makes it {expected!r}; "
                "list target.labels in the model's class order"
            )


def synthetic_rows(spec: BundleSpec) -> npt.NDArray[np.float32]:
    """Records a model must be able to score, already encoded: every field missing (where the
    schema has a missing marker), typical values (range midpoints, first categories), and each
    range's low and high ends with the last categories."""
    features = spec.features
    missing = [math.nan if field.missing else _typical(field) for field in features]
    typical = [_typical(field) for field in features]
    low = [_edge(field, 0) for field in features]
    high = [_edge(field, 1) for field in features]
    return np.array([missing, typical, low, high], dtype=np.float32)


def _typical(field: Any) -> float:
    if field.type in ("category", "binary"):
        return 0.0
    if field.range is None:
        return 0.0
    middle = (field.range[0] + field.range[1]) / 2
    return float(math.floor(middle)) if field.type == "integer" else float(middle)


def _edge(field: Any, end: int) -> float:
    if field.type == "category":
        return float(len(field.categories) - 1) if end else 0.0
    if field.type == "binary":
        return float(end)
    if field.range is None:
        return 0.0
    return float(field.range[end])


def _wanted_shape(spec: BundleSpec) -> str:
    if spec.target.task == "regression":
        return "[N, 1] or [N]"
    return f"[N, {len(spec.target.labels)}] (one column per label: {', '.join(spec.target.labels)})"


def _task(spec: BundleSpec) -> str:
    if spec.target.task == "regression":
        return "regression target"
    return f"{spec.target.task} target with {len(spec.target.labels)} labels"


def _names(spec: BundleSpec) -> str:
    names = [field.name for field in spec.features]
    return ", ".join(names) if len(names) <= 8 else ", ".join(names[:8]) + ", ..."


def _ports(ports: Any) -> str:
    return ", ".join(port.describe() for port in ports) or "none"


def _dim(dim: int | str | None) -> str:
    return "N" if dim is None else str(dim)


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
