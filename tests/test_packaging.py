"""Each function runs from its built artifact alone: its code folder, the layer that
src/build_layer.py builds (what `sam build` runs), and the AWS SDK the Lambda runtime
provides. Nothing from this project's virtualenv is on the path."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from predictflow.pipeline.payloads import matrix_from_text
from tests.fixtures import ADULT, ROOT
from tests.fixtures import HANDLER_ENVIRONMENT as ENVIRONMENT

FUNCTIONS = ("fetch", "validate", "predict", "route", "api", "stream")
PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(?:\[[^]]*\])?==(?P<version>\S+)$")


def pins(requirements: list[str]) -> dict[str, str]:
    """name -> version of exact pins; anything else is refused (every dependency is pinned)."""
    found = {}
    for requirement in requirements:
        match = PIN.match(requirement.strip())
        assert match, f"{requirement!r} is not an exact pin"
        found[match["name"].lower()] = match["version"]
    return found


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME_PINS = pins(PROJECT["dependencies"])
"""The single source of the project's versions; the layer's requirements and the runtime
the artifact test builds must agree with it."""
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
    ort = build(scratch / "opt-onnxruntime" / "python", host=True, only="onnxruntime")
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
            # The SDK the Lambda runtime provides, at the versions the project pins.
            f"boto3=={RUNTIME_PINS['boto3']}",
            f"botocore=={RUNTIME_PINS['botocore']}",
        ],
        check=True,
    )
    # The handlers run from the core layer alone (OnnxRuntime=Excluded): the Adult bundle is
    # scored by its compiled forest.
    return {"layer": layer, "onnxruntime": ort, "runtime": runtime}


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
    assert {"numpy", "aws_lambda_powertools", "predictflow"} <= names
    assert "onnxruntime" not in names, "ONNX Runtime has a layer of its own"
    ort = {path.name.split("-")[0].lower() for path in artifact["onnxruntime"].iterdir()}
    assert "onnxruntime" in ort
    assert not ort & names, "Lambda merges the layers: a module in both would be a shadowed copy"
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


def test_onnx_runtime_scores_from_the_layer_without_its_c_library(artifact: dict[str, Path]) -> None:
    """Bundles without a compiled forest are scored by ONNX Runtime: its Python module must work
    from the layer, which leaves out the C/C++ library the module does not load."""
    assert not list(artifact["onnxruntime"].glob("onnxruntime/capi/libonnxruntime.so*"))
    model = artifact["layer"] / "predictflow" / "bundles" / "adult-income" / "model.onnx"
    code = (
        f"import sys; sys.path[:0] = {[str(artifact['layer']), str(artifact['onnxruntime'])]!r}\n"
        "import numpy, onnxruntime\n"
        f"session = onnxruntime.InferenceSession({str(model)!r}, providers=['CPUExecutionProvider'])\n"
        f"features = numpy.zeros((2, {ADULT.schema.width}), dtype=numpy.float32)\n"
        "print(session.run(None, {session.get_inputs()[0].name: features})[-1].shape)"
    )
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(2, 2)"


def test_the_layers_requirements_pin_what_the_project_pins() -> None:
    lines = (ROOT / "src" / "requirements.txt").read_text().splitlines()
    layer = pins([line for line in lines if line.strip() and not line.startswith("#")])
    assert layer, "the layer installs its requirements"
    assert {name: RUNTIME_PINS.get(name) for name in layer} == layer


def test_boto3_and_botocore_are_pinned_as_the_pair_they_are_released_as() -> None:
    # boto3 X.Y.Z is released with botocore X.Y.Z; any other pair was never tested together.
    assert RUNTIME_PINS["boto3"] == RUNTIME_PINS["botocore"]


def test_every_extra_pins_a_package_at_most_once_across_the_project() -> None:
    extras = PROJECT["optional-dependencies"]
    seen: dict[str, str] = dict(RUNTIME_PINS)
    for extra, requirements in extras.items():
        for name, version in pins(requirements).items():
            assert seen.setdefault(name, version) == version, f"{name} pinned twice, differently ({extra})"


def test_the_local_stacks_packages_are_an_extra_not_a_runtime_dependency() -> None:
    local = pins(PROJECT["optional-dependencies"]["local"])
    assert {"moto", "aws-sam-translator"} <= set(local)
    assert not {"moto", "aws-sam-translator"} & set(RUNTIME_PINS)


def test_a_local_command_without_the_local_extra_says_what_to_install(tmp_path: Path) -> None:
    # An installation without moto: a package of that name that cannot be imported, first on
    # the path, stands in for its absence.
    (tmp_path / "moto").mkdir()
    (tmp_path / "moto" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'moto'\", name='moto')\n"
    )
    environment = os.environ | {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "src")])}
    result = subprocess.run(
        [sys.executable, "-c", "from predictflow.cli import main; main()", "local", "run",
         str(ROOT / "events" / "records-good.csv")],
        capture_output=True, text=True, env=environment, cwd=tmp_path, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "the local stack needs the `local` extra (moto not installed)" in result.stderr
    assert "pip install 'predictflow[local]'" in result.stderr


COLD_STARTS = """
import importlib.util, json, sys
sys.path[:0] = {paths!r}
for function in {functions!r}:
    path = f"{root}/functions/{{function}}/app.py"
    spec = importlib.util.spec_from_file_location(f"app_{{function}}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if function == "predict":  # the cold start loads the active bundle's predictor
        module.bundles.predictor(module.bundles.active_version())
layer = {layer!r}
print(json.dumps(sorted(
    [module.__file__[len(layer) + 1:], module.__cached__]
    for module in list(sys.modules.values())
    if (getattr(module, "__file__", None) or "").startswith(layer + "/") and module.__file__.endswith(".py")
)))
"""


def modules_a_cold_start_imports(artifact: dict[str, Path]) -> list[list[str]]:
    """[path in the layer, where its bytecode is looked for] of every module the six functions
    import from the core layer at cold start (the predict function's bundle loaded)."""
    layer = str(artifact["layer"])
    code = COLD_STARTS.format(
        paths=[layer, str(artifact["runtime"])], functions=FUNCTIONS, root=ROOT, layer=layer
    )
    environment = {"PATH": os.environ["PATH"], "AWS_DEFAULT_REGION": "us-east-1"} | ENVIRONMENT
    done = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=environment)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.splitlines()[-1]))  # after the functions' own log lines


def test_every_module_a_cold_start_imports_ships_compiled(artifact: dict[str, Path]) -> None:
    """The Lambda runtime cannot write bytecode to /opt: a module the layer ships without it is
    compiled again by every cold start (0.49 s against 0.11 s for the predict function)."""
    from build_layer import COLD_START_MODULES

    imported = modules_a_cold_start_imports(artifact)
    listed = COLD_START_MODULES.read_text().split()
    missing = sorted({path for path, _ in imported} - set(listed))
    assert not missing, (
        f"add to {COLD_START_MODULES.name} (the functions import them at cold start): {missing}"
    )
    uncompiled = [path for path, cached in imported if not Path(cached).is_file()]
    assert not uncompiled, f"shipped without bytecode: {uncompiled}"
    # Unchecked-hash bytecode (PEP 552 flags 0b01): valid whatever times the zip gives the sources.
    flags = {int.from_bytes(Path(cached).read_bytes()[4:8], "little") for _, cached in imported}
    assert flags == {1}
