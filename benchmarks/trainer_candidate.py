"""The trainer behind benchmarks/train_quality.py's candidate hook (on branch quality-bench).

    python benchmarks/train_quality.py --candidate trainer_candidate:candidate

`candidate` trains a bundle with `predictflow.training.train_bundle` (schema inferred from the CSV,
the task given, the search and folds as `predictflow model train` runs them) and returns a scorer
that runs the bundle's ONNX model with predictflow's EmbeddedPredictor.

The scorer encodes the test CSV with the bundle's own code tables (`encode_values`), with two
allowances a scorer of held-out data needs and the pipeline deliberately does not make: a category
the training data never had is scored as missing (as LightGBM and HistGradientBoosting treat it),
and a number outside the inferred range is scored as it is (the pipeline rejects it as suspect;
trees give any value beyond the last split the same answer). Probabilities come back in the
benchmark's label order (labels sorted as strings, which is the bundle's order too).

Measured (quality-bench's harness, 6 tables x 3 splits, mean of the main metric; shared 2-core box):

    table      metric    LightGBM  HistGB   CatBoost  trainer
    adult      AUC       0.9300    0.9290   0.9300    0.9303
    credit     AUC       0.8318    0.8298   0.8451    0.8446
    happiness  log-loss  0.8977    0.8940   0.8992    0.8824
    chile      log-loss  1.0501    1.1490   0.9331    0.8494
    ames       RMSE      23590     23116    22862     22479
    gssvocab   RMSE      1.803     1.802    1.797     1.797
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

# This worktree's predictflow, even when the harness runs from a checkout whose src/ is older.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
for loaded in [name for name in sys.modules if name == "predictflow" or name.startswith("predictflow.")]:
    del sys.modules[loaded]

from predictflow.bundle import load_bundle  # noqa: E402
from predictflow.bundle.format import FieldSpec, Task  # noqa: E402
from predictflow.bundle.schema import CompiledSchema  # noqa: E402
from predictflow.features import encode_values  # noqa: E402
from predictflow.predictors import EmbeddedPredictor  # noqa: E402
from predictflow.training import TrainOptions, train_bundle  # noqa: E402

Array = npt.NDArray[np.float64]


def candidate(train_csv: Path, target: str, task: str, workdir: Path) -> Callable[[Path], Array]:
    out = workdir / "bundle"
    options = TrainOptions(target=target, task=_task(task), report=False)
    train_bundle(train_csv, out, options, force=True)
    bundle = load_bundle(out)
    predictor = EmbeddedPredictor(bundle)
    spec = bundle.spec
    relaxed = CompiledSchema(replace(spec, fields=tuple(_relaxed(f) for f in spec.fields)))
    labels = spec.target.labels

    def score(features_csv: Path) -> Array:
        reader = csv.reader(io.StringIO(features_csv.read_text(encoding="utf-8")))
        header = next(reader)
        where = [header.index(name) for name in relaxed.feature_names]
        rows = [[row[i].strip() for i in where] for row in reader if row]
        matrix, _ = encode_values(relaxed, rows, unknown_as_missing=True)
        scores = predictor.scores(matrix, validated=True)
        if spec.target.task == "regression":
            return scores[:, 0]
        order = sorted(range(len(labels)), key=lambda i: labels[i])
        ordered = scores[:, order]
        return ordered[:, 1] if spec.target.task == "binary" else ordered

    return score


def _relaxed(spec: FieldSpec) -> FieldSpec:
    """No range, and an integer field read as a number ("3.0" is 3): the same encoding."""
    return replace(spec, range=None, type="number" if spec.type == "integer" else spec.type)


def _task(task: str) -> Task:
    if task not in ("binary", "multiclass", "regression"):
        raise ValueError(f"unknown task {task!r}")
    return task  # type: ignore[return-value]
