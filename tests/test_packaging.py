"""Each function runs from its built artifact alone: its code folder, the layer that
src/build_layer.py builds (what `sam build` runs), and the AWS SDK the Lambda runtime
provides. Nothing from this project's virtualenv is on the path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from predictflow.pipeline.payloads import matrix_from_text
from tests.fixtures import ADULT, ROOT
from tests.fixtures import HANDLER_ENVIRONMENT as ENVIRONMENT

FUNCTIONS = ("fetch", "validate", "predict", "route", "api", "stream")
RUN_IN_ARTIFACT = """
import json, sys
sys.path[:0] = {paths!r}
import app
event = json.load(open({event!r}))
print(json.dumps(app.lambda_handler(event, type("Context", (), {context!r})())))
"""
CONTEXT = {
    "function_name": "predict",
    "memory_limit_in_mb": 1024,
    "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:predict",
    "aws_request_id": "local",
}


@pytest.fixture(scope="session")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    sys.path.insert(0, str(ROOT / "src"))
    from build_layer import build

    scratch = tmp_path_factory.mktemp("artifact")
    layer = build(scratch / "opt" / "python", host=True)
    runtime = scratch / "var" / "runtime"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--target",
            str(runtime),
            "boto3==1.44.5",
            "botocore==1.44.8",
        ],
        check=True,
    )
    return {"layer": layer, "runtime": runtime}


def run_in_artifact(
    artifact: dict[str, Path], function: str, event: Path | None
) -> subprocess.CompletedProcess[str]:
    paths = [str(ROOT / "functions" / function), str(artifact["layer"]), str(artifact["runtime"])]
    code = (
        RUN_IN_ARTIFACT.format(paths=paths, event=str(event), context=CONTEXT)
        if event
        else f"import sys; sys.path[:0] = {paths!r}; import app; print(app.__file__)"
    )
    environment = {"PATH": os.environ["PATH"], "AWS_DEFAULT_REGION": "us-east-1"} | ENVIRONMENT
    # -S: no site-packages, so only the artifact's folders can satisfy an import.
    return subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, env=environment, check=False
    )


def test_the_layer_carries_no_training_library_and_no_sdk_copy(artifact: dict[str, Path]) -> None:
    names = {path.name.split("-")[0].lower() for path in artifact["layer"].iterdir()}
    assert {"onnxruntime", "numpy", "aws_lambda_powertools", "predictflow"} <= names
    assert not names & {
        "lightgbm",
        "sklearn",
        "scikit_learn",
        "scipy",
        "onnxmltools",
        "onnx",
        "boto3",
        "botocore",
    }
    assert (artifact["layer"] / "predictflow" / "bundles" / "adult-income" / "model.onnx").is_file()
    package = {path.name for path in (artifact["layer"] / "predictflow").iterdir()}
    assert not package & {"cli", "console", "local", "training"}, (
        "the layer carries only what a Lambda imports"
    )
    assert (artifact["layer"] / "predictflow" / "bundles" / "adult-income" / "bundle.json").is_file()
    assert {"api", "sources"} <= package, "the stream handler scores with the API's code"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_handler_imports_from_its_artifact(artifact: dict[str, Path], function: str) -> None:
    result = run_in_artifact(artifact, function, None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(ROOT / "functions" / function / "app.py")


def test_the_predict_handler_scores_the_sample_event_from_its_artifact(artifact: dict[str, Path]) -> None:
    result = run_in_artifact(artifact, "predict", ROOT / "events" / "predict.json")
    assert result.returncode == 0, result.stderr
    batch = json.loads(result.stdout.strip().splitlines()[-1])["inline"]
    (probability,) = matrix_from_text(batch["answers"], np.float64)
    assert 0 < probability < 1
    assert batch["model_version"] == ADULT.model_version
