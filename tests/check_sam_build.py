"""Check what `sam build` made: every function and both layers, built for arm64.

    python tests/check_sam_build.py BUILD_DIR

`make sam-build-check` (part of `make test`, so CI's) runs `sam build` into BUILD_DIR and then
this. Not a pytest module: it needs aws-sam-cli, which lives in a virtualenv of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from predictflow.local.template import load_template

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
from build_layer import COLD_START_MODULES, LAMBDA_PYTHON  # noqa: E402 - src/ is not a package

# In the python3.12 Lambda runtime already (build_layer.PROVIDED_BY_RUNTIME), and the parts of
# the package a Lambda never imports (build_layer.NOT_FOR_LAMBDA).
NOT_IN_LAYER = ("boto3", "botocore")
NOT_IN_PACKAGE = ("cli", "console", "local", "training")
CORE_LAYER_BUDGET = 60_000_000
"""Bytes unzipped: issue 14's goal for a stack deployed with OnnxRuntime=Excluded."""


def size_of(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def problems(build_dir: Path) -> list[str]:
    found: list[str] = []
    built = load_template(build_dir / "template.yaml")["Resources"]
    source = load_template(ROOT / "template.yaml")["Resources"]
    functions = {name for name, spec in source.items() if spec["Type"] == "AWS::Serverless::Function"}
    for name in sorted(functions):
        properties: dict[str, Any] = built[name]["Properties"]
        module = str(properties["Handler"]).rsplit(".", 1)[0]
        if not (build_dir / str(properties["CodeUri"]) / f"{module}.py").is_file():
            found.append(f"{name}: no {module}.py in {properties['CodeUri']}")
    layer = build_dir / str(built["PredictflowLayer"]["Properties"]["ContentUri"]) / "python"
    if not (layer / "predictflow" / "bundles" / "adult-income" / "model.onnx").is_file():
        found.append(f"the layer has no predictflow package with its bundled model in {layer}")
    if (layer / "onnxruntime").exists():
        found.append("the core layer carries onnxruntime (it has a layer of its own)")
    if size_of(layer) > CORE_LAYER_BUDGET:
        megabytes = size_of(layer) / 1e6
        found.append(f"the core layer is {megabytes:.1f} MB, over {CORE_LAYER_BUDGET / 1e6:.0f} MB")
    ort = build_dir / str(built["OnnxRuntimeLayer"]["Properties"]["ContentUri"]) / "python"
    if not list(ort.glob("onnxruntime/capi/*aarch64*.so")):
        found.append("the ONNX Runtime layer's onnxruntime is not built for arm64 (aarch64)")
    # Lambda unpacks both layers into /opt/python: a module in both would be one copy shadowed.
    shared = {p.name for p in layer.iterdir()} & {p.name for p in ort.iterdir()} if ort.is_dir() else set()
    found += [f"both layers carry {name}" for name in sorted(shared)]
    found += [f"the layer carries {name}" for name in NOT_IN_LAYER if (layer / name).exists()]
    package = layer / "predictflow"
    found += [f"the layer carries predictflow.{n}" for n in NOT_IN_PACKAGE if (package / n).exists()]
    found += uncompiled(layer)
    return found


def uncompiled(layer: Path) -> list[str]:
    """The modules a cold start imports that ship without the runtime's bytecode, which each
    cold start would then compile (about 0.4 s): build_layer.py needs python3.12 to make it."""
    tag = "cpython-{}{}".format(*LAMBDA_PYTHON)
    missing = [
        name
        for name in COLD_START_MODULES.read_text().split()
        if (layer / name).is_file()
        and not (layer / name).parent.joinpath("__pycache__", f"{Path(name).stem}.{tag}.pyc").is_file()
    ]
    if not missing:
        return []
    return [f"{len(missing)} modules a cold start imports have no {tag} bytecode, {missing[0]} first"]


def main() -> None:
    build_dir = Path(sys.argv[1])
    found = problems(build_dir)
    if found:
        sys.exit("sam build is incomplete:\n  " + "\n  ".join(found))
    size = sum(path.stat().st_size for path in build_dir.rglob("*") if path.is_file())
    built_size = f"{size / 2**20:.0f} MiB in {build_dir}"
    print(f"sam build: every function and both arm64 layers are built ({built_size})")


if __name__ == "__main__":
    main()
