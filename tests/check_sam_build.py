"""Check what `sam build` made: every function and the layer, built for arm64.

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
# In the python3.12 Lambda runtime already (build_layer.PROVIDED_BY_RUNTIME), and the parts of
# the package a Lambda never imports (build_layer.NOT_FOR_LAMBDA).
NOT_IN_LAYER = ("boto3", "botocore")
NOT_IN_PACKAGE = ("cli", "console", "local", "training")


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
    if not list(layer.glob("onnxruntime/capi/*aarch64*.so")):
        found.append("the layer's onnxruntime is not built for arm64 (aarch64)")
    found += [f"the layer carries {name}" for name in NOT_IN_LAYER if (layer / name).exists()]
    package = layer / "predictflow"
    found += [f"the layer carries predictflow.{n}" for n in NOT_IN_PACKAGE if (package / n).exists()]
    return found


def main() -> None:
    build_dir = Path(sys.argv[1])
    found = problems(build_dir)
    if found:
        sys.exit("sam build is incomplete:\n  " + "\n  ".join(found))
    size = sum(path.stat().st_size for path in build_dir.rglob("*") if path.is_file())
    print(f"sam build: every function and the arm64 layer are built ({size / 2**20:.0f} MiB in {build_dir})")


if __name__ == "__main__":
    main()
