"""The model store through the local stack: deploy, list, activate, and what the pipeline serves.

The bundles are built here (LightGBM through onnxmltools, brought in with `model import`):
`income-band`, the Adult layout with its labels spelled low/high, and `parcel-tier`, a 3-class
model on another record layout with a row id. Every check is what a user would see: the
commands' output, and the predictions of the files uploaded after each change.
"""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from predictflow.bundle.store import ModelStore
from predictflow.cli import cli
from predictflow.local.moto_bridge import Invocation
from predictflow.local.stack import LocalStack
from predictflow.local.template import transform
from predictflow.records import parse_chunk
from predictflow.service.models import PACKAGED_NOTE, import_model
from tests.conftest import running_stack
from tests.fixtures import ADULT, ADULT_DATA, ROOT, lightgbm_onnx, upload_and_wait

CHUNK_BYTES = 4096
TIERS = ("bronze", "gold", "silver")


# --------------------------------------------------------------------------- bundles
def income_band(folder: Path, threshold: float = 0.5) -> Path:
    lines = ADULT_DATA.read_bytes().splitlines(keepends=True)[:3000]
    batch = parse_chunk(b"".join(lines), ADULT.schema)
    assert batch.actual is not None
    labels = np.array([label == ">50K" for label in batch.actual], dtype=np.int32)
    schema = {
        "name": "income-band",
        "fields": [spec.to_dict() for spec in ADULT.spec.fields],
        "target": {
            "name": "income",
            "task": "binary",
            "labels": ["low", "high"],
            "positive": "high",
            "threshold": threshold,
            "aliases": {"<=50K": "low", ">50K": "high", "<=50K.": "low", ">50K.": "high"},
        },
    }
    return imported(folder, lightgbm_onnx(batch.features, labels, 2), schema)


def parcel_tier(folder: Path) -> Path:
    generator = np.random.default_rng(7)
    weight = generator.uniform(0, 100, 600)
    colour = generator.integers(0, 3, 600).astype(np.float64)
    fragile = generator.integers(0, 2, 600).astype(np.float64)
    tier = np.where(weight < 33, 0, np.where(weight < 66, 2, 1))
    features = np.column_stack([weight, colour, fragile]).astype(np.float32)
    schema = {
        "name": "parcel-tier",
        "fields": [
            {"name": "sku", "type": "string", "role": "id"},
            {"name": "weight", "type": "number", "range": [0, 100], "missing": ["NA"]},
            {"name": "colour", "type": "category", "categories": ["red", "green", "blue"], "missing": ["NA"]},
            {"name": "fragile", "type": "binary"},
            {"name": "tier", "type": "category", "role": "target"},
        ],
        "target": {"name": "tier", "task": "multiclass", "labels": list(TIERS)},
    }
    return imported(folder, lightgbm_onnx(features, tier.astype(np.int32), 3), schema)


def imported(folder: Path, model: bytes, schema: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(model)
    (folder / "schema.json").write_text(json.dumps(schema))
    out = folder / "bundle"
    import_model(folder / "model.onnx", folder / "schema.json", out)
    return out


def version_of(bundle: Path) -> str:
    return str(json.loads((bundle / "bundle.json").read_text())["model_version"])


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bundles")
    found = {
        "income": income_band(root / "income"),
        "income-strict": income_band(root / "income-strict", threshold=0.7),
        "parcel": parcel_tier(root / "parcel"),
    }
    # A bundle that loads (its digest is right) but whose model does not fit its description.
    broken = root / "broken"
    shutil.copytree(found["income"], broken)
    spec = json.loads((broken / "bundle.json").read_text())
    spec["model"]["output"] = "label"
    spec["model_version"] = "income-band-broken000000"
    (broken / "bundle.json").write_text(json.dumps(spec))
    found["broken"] = broken
    return found


# --------------------------------------------------------------------------- stack
@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    parameters = {"ChunkBytes": str(CHUNK_BYTES), "MaxFileBytes": str(CHUNK_BYTES * 1000)}
    with running_stack(parameters=parameters, retry_wait_scale=0.001) as local:
        yield local


@pytest.fixture
def store(stack: LocalStack) -> ModelStore:
    return ModelStore(stack.client("s3"), stack.outputs["ModelBucketName"])


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--stack-name", "predictflow-local", "model", *args])


def listed(stack: LocalStack) -> list[dict[str, Any]]:
    result = run("list", "--output", "json")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout)["models"])


def active(stack: LocalStack) -> str:
    (row,) = [row for row in listed(stack) if row["active"]]
    return str(row["version"])


class Upload:
    """One file through the pipeline, and what it became."""

    def __init__(self, stack: LocalStack, body: bytes, name: str = "records.csv") -> None:
        self.stack = stack
        self.key, self.version, self.execution = upload_and_wait(
            stack, body, f"{stack.outputs['InputPrefix']}{uuid.uuid4().hex[:8]}/{name}", timeout=120
        )
        assert self.execution["status"] == "SUCCEEDED", self.execution

    def predictions(self) -> list[dict[str, Any]]:
        return list(self.stack.results().predictions(self.key, self.version))

    def dead_letters(self) -> list[dict[str, Any]]:
        return list(self.stack.results().dead_letters(source_key=self.key, version=self.version))


def adult_lines(start: int, count: int) -> bytes:
    return b"".join(ADULT_DATA.read_bytes().splitlines(keepends=True)[start : start + count])


PARCELS = (
    b"sku,colour,weight,fragile,tier\n"  # a header: columns by name, in another order
    b"A-1,red,10,no,bronze\n"
    b"A-2,blue,95,yes,gold\n"
    b"A-3,NA,50,n,\n"
    b"A-4,purple,50,y,silver\n"  # not one of the model's colours: a dead letter naming it
)


# --------------------------------------------------------------------------- tests
def test_a_deployed_bundle_serves_its_own_layout_labels_and_ids(
    stack: LocalStack, bundles: dict[str, Path]
) -> None:
    result = run("deploy", str(bundles["parcel"]))
    assert result.exit_code == 0, result.output
    version = version_of(bundles["parcel"])
    assert f"uploaded {version}" in result.output
    assert "active now (was the packaged default)" in result.output
    upload = Upload(stack, PARCELS)
    predictions = upload.predictions()
    assert [p["id"] for p in predictions] == ["A-1", "A-2", "A-3"]
    assert {p["model_version"] for p in predictions} == {version}
    for p in predictions:
        assert set(p["probabilities"]) == set(TIERS)
        assert abs(sum(p["probabilities"].values()) - 1) < 1e-6
        assert p["label"] == max(p["probabilities"], key=p["probabilities"].get)
    assert [p["label"] for p in predictions[:2]] == ["bronze", "gold"]
    assert [p.get("actual") for p in predictions] == ["bronze", "gold", None]
    (dead,) = upload.dead_letters()
    assert dead["line"] == 5
    assert "colour" in json.dumps(dead)
    assert "purple" in json.dumps(dead)


def test_model_list_marks_the_active_version_and_the_packaged_default(
    stack: LocalStack, bundles: dict[str, Path]
) -> None:
    assert run("deploy", str(bundles["parcel"])).exit_code == 0
    rows = {row["version"]: row for row in listed(stack)}
    parcel = rows[version_of(bundles["parcel"])]
    packaged = rows[ADULT.model_version]
    assert parcel["active"]
    assert not packaged["active"]
    assert (parcel["name"], parcel["task"]) == ("parcel-tier", "multiclass")
    assert packaged["note"] == PACKAGED_NOTE
    assert packaged["metric"].startswith("roc_auc 0.9")
    table = CliRunner(env={"COLUMNS": "250"}).invoke(
        cli, ["--stack-name", "predictflow-local", "model", "list"]
    )
    assert table.exit_code == 0, table.output
    line = next(line for line in table.output.splitlines() if version_of(bundles["parcel"]) in line)
    assert "*" in line
    assert "active" in line
    assert "multiclass" in line
    assert PACKAGED_NOTE in table.output


def test_activate_rolls_back_and_the_next_file_uses_the_old_version(
    stack: LocalStack, bundles: dict[str, Path]
) -> None:
    income = version_of(bundles["income"])
    assert run("deploy", str(bundles["income"])).exit_code == 0
    assert active(stack) == income
    banded = Upload(stack, adult_lines(0, 20)).predictions()
    assert {p["model_version"] for p in banded} == {income}
    assert {p["label"] for p in banded} <= {"low", "high"}
    assert {p["actual"] for p in banded} <= {"low", "high"}

    result = run("activate", ADULT.model_version[:15])  # a prefix, as git takes one
    assert result.exit_code == 0, result.output
    assert f"active: {ADULT.model_version} (was {income})" in result.output
    census = Upload(stack, adult_lines(0, 20)).predictions()
    assert {p["model_version"] for p in census} == {ADULT.model_version}
    assert {p["label"] for p in census} <= {"<=50K", ">50K"}

    result = run("activate", income)  # and forward again
    assert result.exit_code == 0, result.output
    assert {p["model_version"] for p in Upload(stack, adult_lines(0, 5)).predictions()} == {income}


def test_activate_refuses_unknown_and_ambiguous_versions_and_changes_nothing(
    stack: LocalStack, bundles: dict[str, Path]
) -> None:
    assert run("deploy", str(bundles["income-strict"]), "--no-activate").exit_code == 0
    assert run("deploy", str(bundles["income"])).exit_code == 0
    before = active(stack)
    unknown = run("activate", "no-such-model")
    assert unknown.exit_code == 1
    assert "no model version starts with 'no-such-model'" in unknown.output
    for bundle in ("income", "income-strict", "parcel"):
        assert version_of(bundles[bundle]) in unknown.output  # the known versions are listed
    ambiguous = run("activate", "income-band-")
    assert ambiguous.exit_code == 1
    assert "ambiguous" in ambiguous.output
    assert version_of(bundles["income-strict"]) in ambiguous.output
    assert active(stack) == before


def test_deploying_the_same_bundle_again_changes_nothing(stack: LocalStack, bundles: dict[str, Path]) -> None:
    assert run("deploy", str(bundles["parcel"])).exit_code == 0
    again = run("deploy", str(bundles["parcel"]))
    assert again.exit_code == 0, again.output
    assert "is already in" in again.output
    assert "already the active version" in again.output


def test_a_bundle_that_fails_its_check_is_never_uploaded_nor_active(
    stack: LocalStack, store: ModelStore, bundles: dict[str, Path]
) -> None:
    assert run("deploy", str(bundles["income"])).exit_code == 0
    result = run("deploy", str(bundles["broken"]))
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert "income-band-broken000000 fails its check" in line
    assert "not a float tensor" in line
    assert active(stack) == version_of(bundles["income"])
    assert not store.exists("income-band-broken000000")
    # Nor can a damaged version already in the store be switched to.
    store.upload(bundles["broken"], json_spec(bundles["broken"]))
    refused = run("activate", "income-band-broken")
    assert refused.exit_code == 1
    assert "fails its check" in refused.output
    assert active(stack) == version_of(bundles["income"])


def json_spec(bundle: Path) -> Any:
    from predictflow.bundle import BundleSpec

    return BundleSpec.from_json((bundle / "bundle.json").read_text())


def test_a_deploy_during_a_file_never_mixes_versions_in_that_file(
    stack: LocalStack, store: ModelStore, bundles: dict[str, Path]
) -> None:
    """Fetch pins the version: a switch after the file's first chunk is scored changes nothing
    for that file, and the next file is scored by the new version."""
    income = version_of(bundles["income"])
    assert run("deploy", str(bundles["income"])).exit_code == 0
    functions = stack.lambda_states()
    predict = functions["Predict"]
    body = adult_lines(100, 400)  # about 40 KB: ten chunks of 4 KB
    switched = threading.Event()
    after_switch: list[str] = []

    def switch_after_first_chunk(invocation: Invocation) -> None:
        if invocation.function != predict or invocation.event.get("model_version") != income:
            return
        if not switched.is_set():
            switched.set()
            run("activate", ADULT.model_version)  # the CLI, in the middle of the execution
        else:
            after_switch.append(str(invocation.event.get("model_version")))

    stack.invoker.on_invoke(switch_after_first_chunk)
    upload = Upload(stack, body)
    assert switched.is_set()
    assert active(stack) == ADULT.model_version
    assert len(after_switch) >= 3, "the switch did not happen in the middle of the file"
    predictions = upload.predictions()
    assert len(predictions) == 400
    assert {p["model_version"] for p in predictions} == {income}
    assert {p["label"] for p in predictions} <= {"low", "high"}
    following = Upload(stack, adult_lines(100, 10)).predictions()
    assert {p["model_version"] for p in following} == {ADULT.model_version}


def test_deploy_refuses_a_stack_without_a_model_store_or_a_missing_folder(tmp_path: Path) -> None:
    missing = run("deploy", str(tmp_path / "nowhere"))
    assert missing.exit_code == 2
    assert "does not exist" in missing.output
    not_a_bundle = run("deploy", str(tmp_path))
    assert not_a_bundle.exit_code == 1
    assert "no bundle.json" in not_a_bundle.output


# --------------------------------------------------------------------------- IAM
def test_the_functions_only_read_the_model_store_and_nothing_writes_it() -> None:
    resources = transform(ROOT / "template.yaml", "us-east-1").template["Resources"]
    grants: dict[str, set[tuple[str, str]]] = {}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in branches(resource["Properties"].get("Policies", [])):
            for statement in policy["PolicyDocument"]["Statement"]:
                targets = [json.dumps(r, sort_keys=True) for r in as_list(statement["Resource"])]
                if statement["Effect"] != "Allow" or not any("ModelBucket" in r for r in targets):
                    continue
                for action in as_list(statement["Action"]):
                    grants.setdefault(name, set()).update((action, r) for r in targets if "ModelBucket" in r)
    roles = {f"{step}FunctionRole" for step in ("Fetch", "Validate", "Predict", "Route", "Api", "Stream")}
    assert set(grants) == roles, (
        "only the pipeline's, the API's and the stream's functions may reach the model store"
    )
    for role, pairs in grants.items():
        for action, resource in pairs:
            if action == "s3:GetObject":
                assert resource.endswith('/bundles/*"}') or resource.endswith('/active.json"}'), (
                    role,
                    resource,
                )
            else:
                # Only the readers of the active pointer need ListBucket (a missing pointer is a 404).
                assert role in ("FetchFunctionRole", "ApiFunctionRole", "StreamFunctionRole"), (role, action)
                assert action == "s3:ListBucket", (role, action)
                assert resource == json.dumps({"Fn::GetAtt": ["ModelBucket", "Arn"]}), resource
        assert any(a == "s3:GetObject" and "/bundles/*" in r for a, r in pairs), role
    assert any("/active.json" in r for _, r in grants["FetchFunctionRole"]), "Fetch reads the pointer"
    readers_of_pointer = {
        role for role, pairs in grants.items() if any("/active.json" in r for _, r in pairs)
    }
    # Fetch pins the version for a file; the API and the stream source read it per request or
    # message (cached for seconds).
    assert readers_of_pointer == {"FetchFunctionRole", "ApiFunctionRole", "StreamFunctionRole"}


def branches(policies: list[Any]) -> Iterator[dict[str, Any]]:
    for policy in policies:
        if isinstance(policy, dict) and "Fn::If" in policy:
            _, yes, no = policy["Fn::If"]
            yield from branches([yes, no])
        elif policy != {"Ref": "AWS::NoValue"}:
            yield policy


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
