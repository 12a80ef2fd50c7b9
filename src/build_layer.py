"""Build the Lambda layer: the runtime requirements, the predictflow package, and nothing else.

    python build_layer.py TARGET [--host]

`sam build` runs this through src/Makefile (BuildMethod: makefile). It installs
requirements.txt for the template's runtime (Python 3.12, Linux arm64) unless --host asks for
this machine's platform (the packaging test does), copies the package, then removes what a
Lambda never loads: the AWS SDK the runtime already provides, test suites and ONNX Runtime's
model-conversion tools, and the parts of predictflow a Lambda never imports (NOT_FOR_LAMBDA).
benchmarks/package_size.py measures the result.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LAMBDA_PLATFORM = [
    "--platform", "manylinux_2_28_aarch64", "--platform", "manylinux2014_aarch64",
    "--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:",
]  # fmt: skip
# In the python3.12 Lambda runtime already; the layer's copies would only shadow them.
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")
# The parts of the package a Lambda never imports: the command line, the web console, the local
# stack and the trainer carry their own dependencies (click, rich, Flask, moto, LightGBM), which
# the layer does not, and would only add size and surface.
NOT_FOR_LAMBDA = ("cli", "console", "local", "training")
NEVER_LOADED = (
    "onnxruntime/tools", "onnxruntime/quantization", "onnxruntime/transformers", "onnxruntime/datasets",
)  # fmt: skip
# ONNX Runtime's shared library for C and C++ callers (about half the package): the Python module
# carries its own copy of the runtime and never loads it (tests/test_packaging.py scores a model
# with ONNX Runtime from the built layer).
NEVER_LOADED_FILES = ("onnxruntime/capi/libonnxruntime.so*",)


def build(target: Path, host: bool = False) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target)]
    command += [] if host else LAMBDA_PLATFORM
    subprocess.run([*command, "-r", str(HERE / "requirements.txt")], check=True)  # noqa: S603 - fixed argv
    shutil.copytree(
        HERE / "predictflow",
        target / "predictflow",
        dirs_exist_ok=True,
        ignore=lambda folder, names: [
            n for n in names if Path(folder) == HERE / "predictflow" and n in NOT_FOR_LAMBDA
        ],
    )
    for name in PROVIDED_BY_RUNTIME:
        for path in target.glob(f"{name}*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    for relative in NEVER_LOADED:
        shutil.rmtree(target / relative, ignore_errors=True)
    for pattern in NEVER_LOADED_FILES:
        for path in target.glob(pattern):
            path.unlink()
    for pattern in ("**/tests", "**/__pycache__"):
        for path in list(target.glob(pattern)):
            if path.is_dir():
                shutil.rmtree(path)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", type=Path)
    parser.add_argument("--host", action="store_true", help="build for this machine, not for Lambda")
    args = parser.parse_args()
    build(args.target, host=args.host)


if __name__ == "__main__":
    main()
