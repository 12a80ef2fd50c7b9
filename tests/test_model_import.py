"""`predictflow model import`: models exported elsewhere become bundles, or are refused whole.

The models are real, trained here: LightGBM through onnxmltools, scikit-learn through skl2onnx.
Each refusal is one line that names what does not fit, and leaves no folder behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import onnxmltools
import pytest
from click.testing import CliRunner, Result
from onnxmltools.convert.common.data_types import FloatTensorType
from skl2onnx import to_onnx
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from predictflow.bundle import load_bundle
from predictflow.bundle.check import check_bundle
from predictflow.cli import cli
from predictflow.offline import predict_file
from predictflow.predictors import EmbeddedPredictor
from predictflow.records import parse_chunk
from tests.fixtures import ADULT, ADULT_DATA, lightgbm_onnx

TIERS = ("bronze", "gold", "silver")  # scikit-learn's class order: sorted


def adult_schema(name: str = "income-band") -> dict[str, Any]:
    """The Adult layout with the labels spelled `low`/`high` (the census spellings as aliases)."""
    return {
        "name": name,
        "description": "Adult census records, income as low/high",
        "fields": [spec.to_dict() for spec in ADULT.spec.fields],
        "target": {
            "name": "income",
            "task": "binary",
            "labels": ["low", "high"],
            "positive": "high",
            "threshold": 0.5,
            "aliases": {"<=50K": "low", ">50K": "high", "<=50K.": "low", ">50K.": "high"},
        },
    }


def parcel_schema(labels: tuple[str, ...] = TIERS) -> dict[str, Any]:
    """Another record layout: a row id, a number, a category with a missing marker, a yes/no."""
    return {
        "name": "parcel-tier",
        "fields": [
            {"name": "sku", "type": "string", "role": "id"},
            {"name": "weight", "type": "number", "range": [0, 100], "missing": ["NA"]},
            {"name": "colour", "type": "category", "categories": ["red", "green", "blue"], "missing": ["NA"]},
            {"name": "fragile", "type": "binary"},
            {"name": "tier", "type": "category", "role": "target"},
        ],
        "target": {"name": "tier", "task": "multiclass", "labels": list(labels)},
    }


def adult_training(rows: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    lines = ADULT_DATA.read_bytes().splitlines(keepends=True)[:rows]
    batch = parse_chunk(b"".join(lines), ADULT.schema)
    assert batch.actual is not None
    return batch.features, np.array([label == ">50K" for label in batch.actual], dtype=np.int32)


def parcel_training(rows: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """Tier by weight (and colour): class codes in TIERS order."""
    generator = np.random.default_rng(7)
    weight = generator.uniform(0, 100, rows)
    colour = generator.integers(0, 3, rows).astype(np.float64)
    fragile = generator.integers(0, 2, rows).astype(np.float64)
    tier = np.where(weight < 33, 0, np.where(weight < 66, 2, 1))  # bronze, silver, gold by weight
    tier = np.where((colour == 2) & (weight > 50), 1, tier)
    features = np.column_stack([weight, colour, fragile]).astype(np.float32)
    features[::17, 1] = np.nan
    return features, tier.astype(np.int32)


def sklearn_onnx(*, zipmap: bool = False) -> bytes:
    features, codes = parcel_training()
    labels = np.array(TIERS)[codes]
    model = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500)).fit(features, labels)
    options = None if zipmap else {"zipmap": False}
    return bytes(to_onnx(model, features[:1], options=options, target_opset=15).SerializeToString())


def write(path: Path, content: bytes | dict[str, Any]) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    return path


def import_cli(model: Path, schema: Path, out: Path, *extra: str) -> Result:
    return CliRunner().invoke(
        cli, ["model", "import", str(model), "--schema", str(schema), "--out", str(out), *extra]
    )


@pytest.fixture(scope="module")
def adult_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("m") / "adult.onnx", lightgbm_onnx(*adult_training(), 2))


def test_a_lightgbm_model_with_its_own_labels_becomes_a_bundle_that_scores_census_files(
    adult_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "income-band"
    result = import_cli(adult_model, write(tmp_path / "schema.json", adult_schema()), out)
    assert result.exit_code == 0, result.output
    bundle = load_bundle(out)
    assert sorted(p.name for p in out.iterdir()) == ["bundle.json", "forest", "model.onnx"]
    # An imported LightGBM model is compiled too, and served by its compiled forest here.
    assert bundle.spec.forest is not None
    assert bundle.spec.forest.libraries.keys() == {"linux-x86_64", "linux-aarch64"}
    assert EmbeddedPredictor(bundle).backend == "compiled-forest"
    assert bundle.model_version.startswith("income-band-")
    assert bundle.model_version in result.output
    assert (bundle.spec.model.input, bundle.spec.model.output) == ("features", "probabilities")
    check_bundle(bundle)
    labelled = tmp_path / "labelled.csv"
    labelled.write_bytes(b"".join(ADULT_DATA.read_bytes().splitlines(keepends=True)[5000:5200]))
    out_lines: list[str] = []

    class Sink:
        def write(self, text: str) -> int:
            out_lines.append(text)
            return len(text)

    report = predict_file(labelled, Sink(), Sink(), bundle)  # type: ignore[arg-type]
    assert report.predicted == 200
    assert report.quality is not None
    assert report.quality["roc_auc"] > 0.8
    first = json.loads("".join(out_lines).splitlines()[0])
    assert first["label"] in ("low", "high")
    assert first["actual"] in ("low", "high")
    assert first["model_version"] == bundle.model_version


def test_the_same_model_and_schema_give_the_same_version(adult_model: Path, tmp_path: Path) -> None:
    schema = write(tmp_path / "schema.json", adult_schema())
    assert import_cli(adult_model, schema, tmp_path / "a").exit_code == 0
    assert import_cli(adult_model, schema, tmp_path / "b", "--name", "income-band").exit_code == 0
    assert load_bundle(tmp_path / "a").model_version == load_bundle(tmp_path / "b").model_version


def test_a_scikit_learn_pipeline_is_imported_with_its_graph_names(tmp_path: Path) -> None:
    out = tmp_path / "parcels"
    result = import_cli(
        write(tmp_path / "m.onnx", sklearn_onnx()), write(tmp_path / "s.json", parcel_schema()), out
    )
    assert result.exit_code == 0, result.output
    bundle = load_bundle(out)
    assert (bundle.spec.model.input, bundle.spec.model.output) == ("X", "probabilities")
    scores = EmbeddedPredictor(bundle).scores(np.array([[10, 0, 0], [90, 2, 1]], dtype=np.float32))
    assert [TIERS[i] for i in scores.argmax(axis=1)] == ["bronze", "gold"]


def test_a_schema_whose_labels_are_not_in_the_models_class_order_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "parcels"
    schema = write(tmp_path / "s.json", parcel_schema(("bronze", "silver", "gold")))
    result = import_cli(write(tmp_path / "m.onnx", sklearn_onnx()), schema, out)
    assert result.exit_code == 1
    assert "class order is not the schema's" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "s.json"]


def refused(tmp_path: Path, model: bytes, schema: dict[str, Any] | bytes, *extra: str) -> str:
    out = tmp_path / "bundle"
    before = set(tmp_path.iterdir())
    model_path = write(tmp_path / "model.onnx", model)
    schema_path = write(tmp_path / "schema.json", schema)
    result = import_cli(model_path, schema_path, out, *extra)
    assert result.exit_code == 1, result.output
    assert set(tmp_path.iterdir()) == before | {model_path, schema_path}, "a refused import left files"
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), result.output
    return lines[0]


def test_a_zipmap_output_is_refused_with_how_to_export_without_it(tmp_path: Path) -> None:
    message = refused(tmp_path, sklearn_onnx(zipmap=True), parcel_schema(), "--output", "output_probability")
    assert "ZipMap" in message
    assert "zipmap" in message
    assert "False" in message
    # Without --output, the ZipMap is the only score candidate: refused the same way.
    message = refused(tmp_path, sklearn_onnx(zipmap=True), parcel_schema())
    assert "is a ZipMap" in message
    assert "zipmap=False" in message


def test_bad_inputs_are_refused_in_one_line_and_nothing_is_written(adult_model: Path, tmp_path: Path) -> None:
    good = adult_model.read_bytes()
    assert "not an ONNX model" in refused(tmp_path, b"this is a CSV file, not a model\n", adult_schema())
    narrow = lightgbm_onnx(*parcel_training(), 3)
    message = refused(tmp_path, narrow, adult_schema())
    assert "takes 3 columns but the schema has 14 feature fields" in message
    three_labels = adult_schema() | {
        "target": {"name": "income", "task": "multiclass", "labels": ["low", "mid", "high"]}
    }
    message = refused(tmp_path, good, three_labels)
    assert "does not fit a multiclass target with 3 labels" in message
    assert "[N, 3]" in message
    message = refused(tmp_path, good, b"{not json")
    assert "schema file" in message
    assert "not valid JSON" in message
    message = refused(tmp_path, good, {"name": "x", "fields": [{"name": "a", "type": "text"}], "target": {}})
    assert "schema file" in message
    message = refused(tmp_path, good, adult_schema() | {"format_version": 99})
    assert "newer than this predictflow reads" in message
    message = refused(tmp_path, good, adult_schema(), "--input", "nope")
    assert "no input named 'nope'" in message
    assert "features (tensor(float) [N, 14])" in message
    message = refused(tmp_path, good, adult_schema(), "--output", "label")
    assert "not a float tensor" in message


def test_an_existing_bundle_folder_is_not_overwritten(adult_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = import_cli(adult_model, write(tmp_path / "s.json", adult_schema()), out)
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_a_model_with_a_fixed_batch_size_is_refused(tmp_path: Path) -> None:
    features, labels = adult_training(500)
    params: dict[str, Any] = {"objective": "binary", "num_leaves": 4, "verbose": -1, "num_threads": 1}
    booster = lightgbm.train(params, lightgbm.Dataset(features, labels), 3)
    model = onnxmltools.convert_lightgbm(
        booster, initial_types=[("features", FloatTensorType([1, 14]))], zipmap=False, target_opset=15
    )
    assert "fixed batch size of 1" in refused(tmp_path, model.SerializeToString(), adult_schema())


def test_local_run_serves_an_imported_bundle_without_deploying_it_anywhere_else(tmp_path: Path) -> None:
    bundle = tmp_path / "parcels"
    model, schema = write(tmp_path / "m.onnx", sklearn_onnx()), write(tmp_path / "s.json", parcel_schema())
    assert import_cli(model, schema, bundle).exit_code == 0
    records = tmp_path / "parcels.jsonl"
    records.write_text(
        '{"sku": "P-1", "weight": 12, "colour": "red", "fragile": "no"}\n'
        '{"sku": "P-2", "weight": 88, "colour": "blue", "fragile": "yes", "tier": "gold"}\n'
    )
    out = tmp_path / "out"
    args = ["local", "run", str(records), "--model", str(bundle), "--json", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"] == {"records": 2, "predicted": 2, "dead_lettered": 0}
    lines = [
        json.loads(line) for line in (out / "predictions" / "parcels.jsonl.jsonl").read_text().splitlines()
    ]
    assert [line["id"] for line in lines] == ["P-1", "P-2"]
    assert {line["model_version"] for line in lines} == {load_bundle(bundle).model_version}
    assert [line["label"] for line in lines] == ["bronze", "gold"]
    assert set(lines[0]["probabilities"]) == set(TIERS)


def test_local_run_refuses_a_bundle_that_fails_its_check_before_uploading(tmp_path: Path) -> None:
    bundle = tmp_path / "parcels"
    model, schema = write(tmp_path / "m.onnx", sklearn_onnx()), write(tmp_path / "s.json", parcel_schema())
    assert import_cli(model, schema, bundle).exit_code == 0
    spec = json.loads((bundle / "bundle.json").read_text())
    spec["model"]["output"] = "label"
    (bundle / "bundle.json").write_text(json.dumps(spec))
    result = CliRunner().invoke(
        cli, ["local", "run", str(tmp_path / "s.json"), "--model", str(bundle), "--json"]
    )
    assert result.exit_code == 1
    assert "fails its check" in result.output
    assert "not a float tensor" in result.output
    assert '"files"' not in result.output
