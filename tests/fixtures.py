"""Data the tests share: the article's record, the Adult bundle, and small builders.

Test modules import from here, never from each other.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import numpy as np

from predictflow.bundle import Bundle, CompiledSchema, default_bundle
from predictflow.features import Value, decode
from predictflow.records import ParsedBatch

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
ADULT_DATA = ROOT / "model" / "data" / "adult.data"

ADULT: Bundle = default_bundle()
SCHEMA: CompiledSchema = ADULT.schema
FEATURES = SCHEMA.features

ARTICLE = (
    "22, Local-gov, 108435, Masters, 14, Married-civ-spouse, Prof-specialty, Husband, White, Male, "
    "0, 0, 80, United-States"
)
ARTICLE_VALUES: tuple[Value, ...] = (
    22, "Local-gov", 108435, "Masters", 14, "Married-civ-spouse", "Prof-specialty", "Husband", "White",
    "Male", 0, 0, 80, "United-States",
)  # fmt: skip
HEADER = ", ".join(SCHEMA.feature_names)

HANDLER_ENVIRONMENT = {
    "PREDICTFLOW_OUTPUT_BUCKET": "predictflow-output-bucket",
    "PREDICTFLOW_PREDICTIONS_PREFIX": "predictions/",
    "PREDICTFLOW_WORK_PREFIX": "work/",
    "PREDICTFLOW_DEAD_LETTER_TABLE": "dead-letters",
    "PREDICTFLOW_LEDGER_TABLE": "ledger",
    "PREDICTFLOW_MAX_FILE_BYTES": "1000000",
    "PREDICTFLOW_CHUNK_BYTES": "4096",
    "PREDICTFLOW_PREDICTOR_BACKEND": "embedded",
    "POWERTOOLS_SERVICE_NAME": "predictflow",
    "POWERTOOLS_METRICS_NAMESPACE": "predictflow",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
}
"""What template.yaml gives every function, for a stack of tables and buckets made by hand."""


def with_field(index: int, value: str, line: str = ARTICLE) -> str:
    fields = line.split(", ")
    fields[index] = value
    return ", ".join(fields)


def rows(batch: ParsedBatch, schema: CompiledSchema = SCHEMA) -> list[tuple[Value, ...]]:
    """The accepted records' values, in the model's order."""
    return decode(schema, batch.features)


def lightgbm_onnx(
    features: np.ndarray, labels: np.ndarray, classes: int, *, input_name: str = "features", width: int = 0
) -> bytes:
    """A small LightGBM model as ONNX, for bundles the tests make (training libraries load here)."""
    import lightgbm
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    params: dict[str, Any] = {
        "num_leaves": 7,
        "seed": 1,
        "deterministic": True,
        "num_threads": 1,
        "verbose": -1,
    }
    params |= {"objective": "binary"} if classes == 2 else {"objective": "multiclass", "num_class": classes}
    booster = lightgbm.train(params, lightgbm.Dataset(features, labels), 15)
    model = onnxmltools.convert_lightgbm(
        booster,
        initial_types=[(input_name, FloatTensorType([None, width or features.shape[1]]))],
        zipmap=False,
        target_opset=15,
    )
    return bytes(model.SerializeToString())


def write_table(path: Path, task: str, rows: int = 240, seed: int = 0) -> Path:
    """A small table with a number, a count, a category with missing markers, a yes/no flag, an id."""
    rng = np.random.default_rng(seed)
    number = rng.normal(0, 1, rows)
    count = rng.integers(0, 20, rows)
    colours = np.array(["red", "green", "blue"])[rng.integers(0, 3, rows)]
    flag = np.array(["yes", "no"])[rng.integers(0, 2, rows)]
    signal = number + (colours == "red") + 0.1 * count + rng.normal(0, 0.5, rows)
    lines = ["id,number,count,colour,flag,y"]
    for i in range(rows):
        colour = "" if i % 17 == 0 else "NA" if i % 23 == 0 else str(colours[i])
        value = "?" if i % 31 == 0 else f"{number[i]:.3f}"
        if task == "binary":
            y = "yes" if signal[i] > 1.2 else "no"
        elif task == "multiclass":
            y = "low" if signal[i] < 0.5 else "mid" if signal[i] < 1.8 else "high"
        else:
            y = f"{3 * signal[i]:.4f}"
        lines.append(f"r{i},{value},{count[i]},{colour},{flag[i]},{y}")
    path.write_text("\n".join(lines) + "\n")
    return path


def upload_and_wait(
    stack: Any, body: bytes, key: str | None = None, timeout: float = 120
) -> tuple[str, str, dict[str, Any]]:
    """Put `body` under the stack's input prefix (a fresh key unless given) and wait for the
    execution it starts: (key, version id, the execution as DescribeExecution gives it)."""
    import uuid

    key = key or f"{stack.outputs['InputPrefix']}{uuid.uuid4().hex[:8]}/records.csv"
    before = len(stack.started_executions)
    version = stack.client("s3").put_object(Bucket=stack.outputs["InputBucketName"], Key=key, Body=body)[
        "VersionId"
    ]
    return key, version, stack.wait_for_executions(before + 1, timeout=timeout)[before]


def free_port() -> int:
    """A free port whose next one is free too: `local up` serves the API on --port + 1."""
    while True:
        with socket.socket() as probe, socket.socket() as next_one:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
            try:
                next_one.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
