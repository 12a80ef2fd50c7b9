"""`predictflow model train`: schema inference, schema files (predictflow and Amazon ML), bundles for
each task that `predictflow predict --model` scores, reproducible bytes, and bad input that is
refused with a message and leaves no bundle behind. Small tables, 3 folds, a tiny search."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from predictflow.bundle import BundleError, load_bundle
from predictflow.bundle.schema_files import SchemaFileError, read_schema_file, read_schema_source
from predictflow.cli import cli
from predictflow.cli.train import train
from predictflow.training.infer import infer_schema, read_table
from tests.fixtures import write_table

FAST = ["--folds", "3", "--max-settings", "1"]


def run_train(*args: str) -> Result:
    return CliRunner().invoke(train, [*args], catch_exceptions=False)


def predictions(data: Path, bundle: Path, tmp_path: Path) -> list[dict[str, Any]]:
    out = tmp_path / "predictions.jsonl"
    result = CliRunner().invoke(cli, ["predict", str(data), "--model", str(bundle), "--output", str(out)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()]


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------- inference


def test_inference_types_vocabularies_ranges_and_missing_markers(tmp_path: Path) -> None:
    data = write_table(tmp_path / "t.csv", "binary")
    schema, notes = infer_schema(read_table(data), "y", name="t", id_column="id")
    fields = {spec.name: spec for spec in schema.fields}
    assert fields["id"].role == "id"
    assert fields["id"].type == "string"
    assert fields["number"].type == "number"
    assert fields["number"].missing == ("", "?")
    assert fields["count"].type == "integer"
    assert fields["count"].missing == ("",)
    low, high = fields["count"].range or (0, 0)
    assert low <= 0 - 1
    assert high >= 19 + 1
    assert low == int(low)
    assert high == int(high)
    colour = fields["colour"]
    assert colour.type == "category"
    assert set(colour.categories) == {"red", "green", "blue"}
    assert colour.missing == ("", "NA")
    counts = {
        c: sum(1 for line in data.read_text().splitlines() if f",{c}," in line) for c in colour.categories
    }
    assert list(colour.categories) == sorted(counts, key=lambda c: (-counts[c], c))
    assert fields["y"].role == "target"
    assert schema.target.task == "binary"
    assert schema.target.labels == ("no", "yes")
    assert schema.target.positive == "yes"
    assert any("task binary" in note for note in notes)


def test_inference_picks_the_minority_as_positive_and_infers_the_task(tmp_path: Path) -> None:
    data = tmp_path / "t.csv"
    data.write_text("x,y\n" + "".join(f"{i},{'cat' if i % 4 else 'dog'}\n" for i in range(40)))
    schema, notes = infer_schema(read_table(data), "y", name="t")
    assert schema.target.positive == "dog"
    assert any("minority" in note for note in notes)
    numbers = tmp_path / "n.csv"
    numbers.write_text("x,y\n" + "".join(f"{i},{i * 1.5}\n" for i in range(40)))
    assert infer_schema(read_table(numbers), "y", name="n")[0].target.task == "regression"


# --------------------------------------------------------------------------- schema files


def aml(path: Path, **changes: Any) -> Path:
    schema: dict[str, Any] = {
        "version": "1.0",
        "rowId": "id",
        "targetAttributeName": "y",
        "dataFormat": "CSV",
        "dataFileContainsHeader": True,
        "excludedAttributeNames": ["note"],
        "attributes": [
            {"attributeName": "id", "attributeType": "CATEGORICAL"},
            {"attributeName": "number", "attributeType": "NUMERIC"},
            {"attributeName": "count", "attributeType": "NUMERIC"},
            {"attributeName": "colour", "attributeType": "CATEGORICAL"},
            {"attributeName": "flag", "attributeType": "BINARY"},
            {"attributeName": "note", "attributeType": "TEXT"},
            {"attributeName": "y", "attributeType": "BINARY"},
        ],
    } | changes
    path.write_text(json.dumps(schema))
    return path


def test_an_amazon_ml_schema_maps_binary_rowid_and_excluded_attributes(tmp_path: Path) -> None:
    source = read_schema_source(aml(tmp_path / "data.schema"))
    schema = source.schema
    assert source.format == "amazon-ml"
    assert not source.complete
    by_name = {spec.name: spec for spec in schema.fields}
    assert "note" not in by_name
    assert by_name["id"].role == "id"
    assert by_name["flag"].type == "binary"
    target = schema.target
    assert (target.task, target.labels, target.positive, target.threshold) == ("binary", ("0", "1"), "1", 0.5)
    assert {target.aliases[s] for s in ("y", "YES", "tRuE", "T")} == {"1"}
    assert {target.aliases[s] for s in ("n", "No", "FALSE", "f")} == {"0"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"excludedAttributeNames": []}, "TEXT attributes are not supported: note"),
        ({"dataFileContainsHeader": False}, "add a header row"),
        ({"targetAttributeName": "price"}, "'price' is not among the attributes"),
        ({"attributes": [{"attributeName": "y", "attributeType": "DATE"}]}, "use one of NUMERIC"),
    ],
)
def test_a_bad_amazon_ml_schema_is_refused_with_what_to_do(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(SchemaFileError, match=message):
        read_schema_file(aml(tmp_path / "s.json", **changes))


def test_a_schema_file_that_is_not_json_is_a_bundle_error(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"fields": [')
    with pytest.raises(BundleError, match="not valid JSON"):
        read_schema_file(path)


# ------------------------------------------------------------------------------- training


@pytest.mark.parametrize(
    ("task", "answer"), [("binary", "probability"), ("multiclass", "probabilities"), ("regression", "value")]
)
def test_each_task_trains_a_bundle_that_predict_scores(tmp_path: Path, task: str, answer: str) -> None:
    data = write_table(tmp_path / f"{task}.csv", task)
    out = tmp_path / "bundle"
    result = run_train(str(data), "--target", "y", "--id", "id", "--task", task, "--out", str(out), *FAST)
    assert result.exit_code == 0, result.output
    bundle = load_bundle(out)
    assert bundle.spec.target.task == task
    assert bundle.spec.training["data"]["records"] == 240
    lines = predictions(data, out, tmp_path)
    assert len(lines) == 240
    first = lines[0]
    assert first["id"] == "r0"
    assert first["model_version"] == bundle.model_version
    assert answer in first
    if task == "multiclass":
        assert set(first["probabilities"]) == {"high", "low", "mid"}
        assert abs(sum(first["probabilities"].values()) - 1) < 1e-5
    report = out / "report"
    assert (report / "index.html").is_file()
    assert (report / "importance.png").stat().st_size > 1000
    expected = {"binary": "roc.png", "multiclass": "confusion.png", "regression": "residuals.png"}[task]
    assert (report / expected).is_file()
    assert expected in (report / "index.html").read_text()


def test_a_binary_bundle_is_better_than_chance_out_of_fold(tmp_path: Path) -> None:
    data = write_table(tmp_path / "b.csv", "binary", rows=400)
    out = tmp_path / "bundle"
    assert run_train(str(data), "--target", "y", "--out", str(out), *FAST).exit_code == 0
    metrics = load_bundle(out).spec.training["metrics"]
    assert metrics["roc_auc"] > 0.8
    assert "Score threshold" in (out / "report" / "index.html").read_text()


def test_the_same_command_gives_the_same_bytes(tmp_path: Path) -> None:
    data = write_table(tmp_path / "t.csv", "multiclass")
    outputs = []
    for name in ("one", "two"):
        out = tmp_path / name
        assert run_train(str(data), "--target", "y", "--out", str(out), "--folds", "3").exit_code == 0
        outputs.append(files_of(out))
    assert outputs[0] == outputs[1]
    assert "report/index.html" in outputs[0]


def test_an_amazon_ml_schema_trains_with_yes_no_spellings(tmp_path: Path) -> None:
    data = write_table(tmp_path / "t.csv", "binary")
    text = data.read_text().replace("id,number", "id,note,number").splitlines()
    data.write_text("\n".join([text[0], *(line.replace(",", ",free text,", 1) for line in text[1:])]) + "\n")
    out = tmp_path / "bundle"
    result = run_train(
        str(data), "--target", "y", "--schema", str(aml(tmp_path / "s.json")), "--out", str(out), *FAST
    )
    assert result.exit_code == 0, result.output
    lines = predictions(data, out, tmp_path)
    assert {line["actual"] for line in lines} == {"0", "1"}
    assert {line["label"] for line in lines} <= {"0", "1"}


def test_a_bundle_schema_file_is_used_as_it_is(tmp_path: Path) -> None:
    data = write_table(tmp_path / "t.csv", "binary")
    first = tmp_path / "first"
    assert run_train(str(data), "--target", "y", "--id", "id", "--out", str(first), *FAST).exit_code == 0
    spec = json.loads((first / "bundle.json").read_text())
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({key: spec[key] for key in ("name", "fields", "target")}))
    second = tmp_path / "second"
    result = run_train(str(data), "--target", "y", "--schema", str(schema), "--out", str(second), *FAST)
    assert result.exit_code == 0, result.output
    assert load_bundle(second).model_version == load_bundle(first).model_version


# ------------------------------------------------------------------------------- bad input


def bad_input(tmp_path: Path, case: str) -> list[str]:
    data = write_table(tmp_path / "t.csv", "multiclass")
    if case == "schema":
        (tmp_path / "s.json").write_text("{not json")
        return [str(data), "--target", "y", "--schema", str(tmp_path / "s.json")]
    if case == "target":
        return [str(data), "--target", "income"]
    if case == "rare class":
        text = data.read_text().splitlines()
        data.write_text("\n".join([*text, text[-1].rsplit(",", 1)[0] + ",rare"]) + "\n")
        return [str(data), "--target", "y", "--task", "multiclass"]
    lines = data.read_text().splitlines()
    data.write_text("\n".join([lines[0] + ",const", *(line + ",7" for line in lines[1:])]) + "\n")
    return [str(data), "--target", "y"]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("schema", "is not valid JSON"),
        ("target", "the target column 'income' is not in the data"),
        ("rare class", "fewer examples than the 3 cross-validation folds: 'rare' (1)"),
        ("constant", "nothing to learn from: const (always '7')"),
    ],
)
def test_bad_input_gets_one_clear_line_and_leaves_no_bundle(tmp_path: Path, case: str, message: str) -> None:
    args = bad_input(tmp_path, case)
    out = tmp_path / "out" / "bundle"
    result = run_train(*args, "--out", str(out), *FAST)
    assert result.exit_code == 1
    assert message in result.output
    assert not out.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_an_existing_bundle_is_kept_unless_forced(tmp_path: Path) -> None:
    data = write_table(tmp_path / "t.csv", "regression")
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = run_train(str(data), "--target", "y", "--out", str(out), *FAST)
    assert result.exit_code == 1
    assert "--force" in result.output
    assert (out / "keep.txt").read_text() == "mine"
    assert run_train(str(data), "--target", "y", "--out", str(out), "--force", *FAST).exit_code == 0
    assert not (out / "keep.txt").exists()
    assert (out / "bundle.json").is_file()
