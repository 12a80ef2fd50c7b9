"""`predictflow model train`: a training CSV in, a bundle folder out.

    reading -> inferring schema -> CV search -> final fit -> export -> report -> bundle folder

The records are encoded by predictflow's own parser (`parse_chunk`) with the schema the bundle
will carry, so the model is trained on exactly the encoding it will be served with. Before the
bundle is kept, the training file is scored through the serving path (`predict_file`, whose
`EmbeddedPredictor` runs the exported ONNX model) and must give the trained model's own predictions.

Everything is written to a temporary folder next to `out`, which replaces `out` only at the end:
a failure at any stage leaves no bundle, half-written or otherwise. An existing non-empty `out` is
refused unless `force`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from predictflow.bundle.check import check_bundle
from predictflow.bundle.format import (
    BUNDLE_FILE,
    MODEL_FILE,
    BundleSpec,
    ModelSpec,
    RecordSchema,
    Task,
)
from predictflow.bundle.schema import CompiledSchema
from predictflow.bundle.schema_files import read_schema_source
from predictflow.bundle.sources import load_bundle
from predictflow.errors import MissingColumns
from predictflow.forest.build import attach_forest
from predictflow.training import fit
from predictflow.training.errors import TrainingError
from predictflow.training.export import INPUT_NAME, ONNX_OPSET, library_versions, onnx_bytes
from predictflow.training.infer import Table, complete_schema, infer_schema, read_table

Floats = npt.NDArray[np.float64]
DEFAULT_SEED: Final = 20_240_601
STAGES: Final = ("reading", "inferring schema", "CV search", "final fit", "export", "report")
SKEW_TOLERANCE: Final = 1e-4
REPORT_DIR: Final = "report"


@dataclass(frozen=True)
class TrainOptions:
    target: str
    task: Task | None = None
    positive: str | None = None
    schema: Path | None = None
    id_column: str | None = None
    folds: int = 5
    seed: int = DEFAULT_SEED
    name: str | None = None
    trials: int | None = None
    """At most this many settings in the search (None: fit.MAX_TRIALS, within fit.BUDGET)."""
    report: bool = True


@dataclass
class TrainResult:
    out: Path
    spec: BundleSpec
    metrics: dict[str, float]
    notes: list[str] = field(default_factory=list)


Events = Callable[[str, str], None]
"""(kind, text): ("stage", one of STAGES), ("note", a choice made for the user), ("trial", "2/6")."""


def train_bundle(
    data: Path, out: Path, options: TrainOptions, *, force: bool = False, events: Events | None = None
) -> TrainResult:
    """Train on `data` and write a bundle folder at `out` (see the module docstring)."""

    def tell(kind: str, text: str) -> None:
        if events:
            events(kind, text)

    data, out = Path(data), Path(out)
    if options.folds < 2:
        raise TrainingError("--folds must be at least 2")
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise TrainingError(
            f"{out} already exists and is not empty: pass --force to replace it, or choose another --out"
        )
    if not data.is_file():
        raise TrainingError(f"{data} is not a file")

    tell("stage", "reading")
    source = read_schema_source(options.schema) if options.schema else None
    if source:
        names = [spec.name for spec in source.schema.fields]
        table = read_table(data, names=names, has_header=source.has_header)
    else:
        table = read_table(data)

    tell("stage", "inferring schema")
    name = options.name or (source.schema.name if source else _bundle_name(data))
    if source:
        schema, notes = complete_schema(source, table, task=options.task, positive=options.positive)
        row_id = next((spec.name for spec in schema.fields if spec.role == "id"), None)
        if options.id_column and options.id_column != row_id:
            raise TrainingError(
                f"--id {options.id_column!r} is not the schema's row id ({row_id or 'none'}): "
                "name the row id in the schema (rowId) and leave out --id"
            )
    else:
        schema, notes = infer_schema(
            table,
            options.target,
            name=name,
            task=options.task,
            positive=options.positive,
            id_column=options.id_column,
        )
    if source and options.target != schema.target.name:
        raise TrainingError(
            f"--target {options.target!r} is not the schema's target {schema.target.name!r}: "
            "give the same name"
        )
    problems = schema.as_bundle(ModelSpec("onnx", sha256="-")).problems()
    if problems:
        raise TrainingError("the schema is not valid: " + "; ".join(problems))
    for note in notes:
        tell("note", note)
    compiled = CompiledSchema(schema.as_bundle(ModelSpec("onnx", sha256="-")))
    x, y, lines, dropped = encode(table, data, compiled)
    if dropped:
        tell("note", f"{dropped} record(s) with no {schema.target.name} value left out")
    task = schema.target.task
    classes = len(schema.target.labels)

    tell("stage", "CV search")
    folds = fit.make_folds(y, task, options.folds, options.seed, schema.target.labels)
    categorical = [i for i, spec in enumerate(compiled.features) if spec.type == "category"]
    search = fit.search(
        x,
        y,
        task,
        classes,
        folds=folds,
        seed=options.seed,
        categorical=categorical,
        count=options.trials,
        on_trial=lambda done, total: tell("trial", f"{done}/{total}"),
    )
    metrics = headline(schema, y, search.best.oof)

    tell("stage", "final fit")
    booster = fit.final_model(
        x, y, task, classes, search.best.setting, search.rounds, options.seed, categorical
    )

    tell("stage", "export")
    model_bytes, output = onnx_bytes(booster, name=name, width=compiled.width)
    model = ModelSpec.of_onnx(model_bytes, input=INPUT_NAME, output=output, opset=ONNX_OPSET)
    training = provenance(data, table, len(y), metrics, search, task, classes, options)
    spec = schema.versioned_bundle(model, model_bytes, training=training)
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (scratch / MODEL_FILE).write_bytes(model_bytes)
        spec, forest_notes = attach_forest(scratch, spec, model_bytes)
        for note in forest_notes:
            tell("note", note)
        (scratch / BUNDLE_FILE).write_text(spec.to_json(), encoding="utf-8")
        check_bundle(load_bundle(scratch))
        check_serving(scratch, data, booster, x, lines, task)
        if options.report:
            tell("stage", "report")
            from predictflow.training.report import write_report

            write_report(
                scratch / REPORT_DIR,
                title=f"{spec.model_version}: evaluation",
                target=schema.target,
                y=y,
                oof=search.best.oof,
                feature_names=compiled.feature_names,
                importance=np.asarray(booster.feature_importance("gain"), dtype=np.float64),
                metrics=metrics,
                facts=report_facts(spec, training),
            )
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(scratch, out)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return TrainResult(out, spec, metrics, notes)


def _bundle_name(data: Path) -> str:
    return re.sub(r"[^a-z0-9]+", "-", data.stem.lower()).strip("-") or "model"


def encode(table: Table, data: Path, schema: CompiledSchema) -> tuple[Floats, Floats, list[int], int]:
    """The training matrix through the serving parser; the target as class index or value."""
    from predictflow.records import parse_chunk

    try:
        batch = parse_chunk(
            table.digest_source, schema, header_hint="present" if table.has_header else "absent"
        )
    except MissingColumns as error:
        raise TrainingError(f"{data}: {error}") from error
    if batch.rejections:
        shown = "; ".join(f"line {r.line}: {r.message}" for r in batch.rejections[:3])
        raise TrainingError(
            f"{data}: {len(batch.rejections)} record(s) do not fit the schema ({shown}): "
            "fix those records, or the schema's vocabularies and ranges"
        )
    if batch.actual is None:
        raise TrainingError(f"{data} has no {schema.target.name} values to learn from")
    keep = [i for i, value in enumerate(batch.actual) if value is not None]
    target = schema.target
    if target.task == "regression":
        y = np.array([float(batch.actual[i]) for i in keep], dtype=np.float64)  # type: ignore[arg-type]
    else:
        index = {label: code for code, label in enumerate(target.labels)}
        y = np.array([index[str(batch.actual[i])] for i in keep], dtype=np.float64)
    x = batch.features[keep].astype(np.float64)
    return x, y, [batch.lines[i] for i in keep], len(batch.actual) - len(keep)


def headline(schema: RecordSchema, y: Floats, oof: Floats) -> dict[str, float]:
    from predictflow.training.report import headline_metrics

    return headline_metrics(schema.target, y, oof)


def check_serving(folder: Path, data: Path, booster: Any, x: Floats, lines: list[int], task: Task) -> None:
    """Score the training file through the serving path and compare with the trained model."""
    from predictflow.bundle import load_bundle
    from predictflow.offline import predict_file

    bundle = load_bundle(folder)
    written = io.StringIO()
    predict_file(data, written, io.StringIO(), bundle)
    served: dict[int, Any] = {}
    labels = bundle.spec.target.labels
    for text in written.getvalue().splitlines():
        line = json.loads(text)
        if task == "binary":
            served[line["line"]] = line["probability"]
        elif task == "multiclass":
            served[line["line"]] = [line["probabilities"][label] for label in labels]
        else:
            served[line["line"]] = line["value"]
    missing = [line for line in lines if line not in served]
    if missing:
        raise TrainingError(
            f"serving check: {len(missing)} training records were not scored (first: line {missing[0]})"
        )
    got = np.array([served[line] for line in lines], dtype=np.float64)
    expected = np.asarray(booster.predict(x), dtype=np.float64)
    scale = np.maximum(1.0, np.abs(expected)) if task == "regression" else 1.0
    worst = float(np.max(np.abs(got - expected) / scale)) if len(got) else 0.0
    if worst > SKEW_TOLERANCE:
        raise TrainingError(
            f"serving check: the exported model differs from the trained one by {worst:.2g} on the training "
            "file; this is a predictflow bug, please report it with the data's schema"
        )


def provenance(
    data: Path,
    table: Table,
    records: int,
    metrics: dict[str, float],
    search: fit.Search,
    task: Task,
    classes: int,
    options: TrainOptions,
) -> dict[str, Any]:
    import matplotlib

    best = search.best.setting
    hyperparameters = fit.base_params(task, classes, options.seed) | best.params()
    hyperparameters = {k: v for k, v in hyperparameters.items() if k not in ("verbose", "num_threads")}
    training: dict[str, Any] = {
        "data": {
            "file": data.name,
            "sha256": hashlib.sha256(table.digest_source).hexdigest(),
            "rows": table.rows,
            "records": records,
        },
        "metrics": metrics
        | {
            "evaluated_on": f"out-of-fold predictions of {search.folds}-fold cross-validation "
            "on the training data"
        },
        "algorithm": "LightGBM gradient-boosted trees",
        "hyperparameters": hyperparameters | {"categorical_splits": best.categorical},
        "rounds": search.rounds,
        "cross_validation": search.describe(task) | {"best_rounds": search.best.rounds},
        "libraries": library_versions() | {"matplotlib": matplotlib.__version__},
    }
    if options.report:
        training["report"] = f"{REPORT_DIR}/index.html"
    return training


def report_facts(spec: BundleSpec, training: dict[str, Any]) -> dict[str, Any]:
    cv = training["cross_validation"]
    return {
        "model version": spec.model_version,
        "data": f"{training['data']['file']} ({training['data']['records']} records, sha256 "
        f"{training['data']['sha256'][:16]}…)",
        "protocol": f"{cv['folds']}-fold {'stratified ' if cv['stratified'] else ''}cross-validation, "
        f"seed {cv['seed']}, early stopping after {cv['early_stopping']['patience']} rounds",
        "settings tried": len(cv["trials"]),
        "chosen": ", ".join(
            f"{k}={v}" for k, v in training["hyperparameters"].items() if k not in ("seed", "deterministic")
        ),
        "rounds": f"{training['rounds']} (best on the folds: {cv['best_rounds']})",
        "features": len(spec.features),
    }
