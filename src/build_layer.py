"""Build a Lambda layer: the runtime requirements, the predictflow package, and nothing else.

    python build_layer.py TARGET [--host]                    PredictflowLayer
    python build_layer.py TARGET [--host] --only onnxruntime OnnxRuntimeLayer

`sam build` runs this through src/Makefile (BuildMethod: makefile). The core layer installs
requirements.txt but ONNX Runtime, and copies the package; the ONNX Runtime layer installs
requirements.txt's onnxruntime pin alone (the one place it is pinned), with its dependencies
but those the core layer carries (numpy), so the two layers never hold two copies of a module.
Both are for the template's runtime (Python 3.12, Linux arm64) unless --host asks for this
machine's platform (the packaging test does). Then it removes what a Lambda never loads: the
AWS SDK the runtime already provides, test suites and ONNX Runtime's model-conversion tools,
and the parts of predictflow a Lambda never imports (NOT_FOR_LAMBDA).
benchmarks/package_size.py measures the result.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ONNX_RUNTIME = "onnxruntime"
"""The requirement with a layer of its own: only bundles without a compiled forest need it."""
LAMBDA_PYTHON = (3, 12)
"""The template's runtime (python3.12): the wheels' and the bytecode's Python."""
LAMBDA_PLATFORM = [
    "--platform", "manylinux_2_28_aarch64", "--platform", "manylinux2014_aarch64",
    "--python-version", "{}.{}".format(*LAMBDA_PYTHON), "--implementation", "cp", "--only-binary=:all:",
]  # fmt: skip
# In the python3.12 Lambda runtime already; the layer's copies would only shadow them.
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")
# The parts of the package a Lambda never imports: the command line, the web console, the local
# stack and the trainer carry their own dependencies (click, rich, Flask, moto, LightGBM), which
# the layer does not, and would only add size and surface.
NOT_FOR_LAMBDA = ("cli", "console", "local", "training")
NEVER_LOADED = (
    "onnxruntime/tools", "onnxruntime/quantization", "onnxruntime/transformers", "onnxruntime/datasets",
    # numpy's Fortran wrapper generator, C headers for extension builds and PyInstaller hooks.
    "numpy/f2py", "numpy/_core/include", "numpy/_pyinstaller",
)  # fmt: skip
# ONNX Runtime's shared library for C and C++ callers (about half the package): the Python module
# carries its own copy of the runtime and never loads it (tests/test_packaging.py scores a model
# with ONNX Runtime from the built layer).
NEVER_LOADED_FILES = ("onnxruntime/capi/libonnxruntime.so*", "**/*.pyi")  # type stubs: for checkers
COLD_START_MODULES = HERE / "cold_start_modules.txt"
"""The layer's modules the functions import at cold start (tests/test_packaging.py keeps the
list true): they ship compiled, as the runtime cannot write bytecode to /opt. Compiling every
module would take the core layer over its 60 MB; these are 3.9 MB of bytecode."""


def requirements() -> dict[str, str]:
    """requirements.txt as {normalized distribution name: requirement line}."""
    found = {}
    for line in (HERE / "requirements.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            found[_name(re.split(r"[\[=<>!~; ]", line, maxsplit=1)[0])] = line
    return found


def _name(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def build(target: Path, host: bool = False, only: str | None = None) -> Path:
    """The core layer (only=None) or ONNX Runtime's (only="onnxruntime") at `target`."""
    if only not in (None, ONNX_RUNTIME):
        raise ValueError(f"only {ONNX_RUNTIME!r} has a layer of its own, not {only!r}")
    target.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target)]
    command += [] if host else LAMBDA_PLATFORM
    pinned = requirements()
    ort = pinned.pop(ONNX_RUNTIME)
    if only is None:
        subprocess.run([*command, *pinned.values()], check=True)  # noqa: S603 - fixed argv
        shutil.copytree(
            HERE / "predictflow",
            target / "predictflow",
            dirs_exist_ok=True,
            ignore=lambda folder, names: [
                n for n in names if Path(folder) == HERE / "predictflow" and n in NOT_FOR_LAMBDA
            ],
        )
    else:
        # Resolved with the core layer's pins (so ONNX Runtime gets the numpy it will import),
        # which are then removed: the core layer carries them.
        subprocess.run([*command, ort, *pinned.values()], check=True)  # noqa: S603 - fixed argv
        _remove_distributions(target, set(pinned) | _installed_with(target, pinned))
    for name in PROVIDED_BY_RUNTIME:
        for path in target.glob(f"{name}*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    # Console scripts (f2py, onnxruntime_test): a Lambda imports modules, it runs no script.
    shutil.rmtree(target / "bin", ignore_errors=True)
    for relative in NEVER_LOADED:
        shutil.rmtree(target / relative, ignore_errors=True)
    for pattern in NEVER_LOADED_FILES:
        for path in target.glob(pattern):
            path.unlink()
    for pattern in ("**/tests", "**/__pycache__"):
        for path in list(target.glob(pattern)):
            if path.is_dir():
                shutil.rmtree(path)
    compile_cold_start(target, sys.executable if host else lambda_python())
    return target


def compile_cold_start(target: Path, python: str | None) -> list[Path]:
    """Compile the listed modules the layer holds with `python`, as hash-checked-never bytecode
    (PEP 552 "unchecked-hash": valid whatever the file times a zip gives the sources). A module
    without bytecode is compiled by each cold start: the Adult predict function's import and
    load took 0.49 s so, against 0.11 s with its bytecode (benchmarks/predictor_speed.py)."""
    listed = [line.strip() for line in COLD_START_MODULES.read_text().splitlines() if line.strip()]
    present = [target / name for name in listed if (target / name).is_file()]
    if python is None:
        version = "{}.{}".format(*LAMBDA_PYTHON)
        print(
            f"warning: no Python {version} to compile the layer's bytecode with: each cold start will "
            f"compile its modules (about 0.4 s). Put python{version} on the PATH, or build in a "
            "container (sam build --use-container).",
            file=sys.stderr,
        )
        return []
    if present:
        command = [python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash"]
        subprocess.run([*command, *map(str, present)], check=True)  # noqa: S603 - fixed argv
    return present


def lambda_python() -> str | None:
    """An interpreter of the runtime's Python version: this one, or python3.X on the PATH."""
    if sys.version_info[:2] == LAMBDA_PYTHON:
        return sys.executable
    candidate = shutil.which("python{}.{}".format(*LAMBDA_PYTHON))
    if candidate is None:
        return None
    # A version manager's shim may be on the PATH without that version selected: ask it.
    asked = subprocess.run(  # noqa: S603 - fixed argv
        [candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
    )
    return candidate if asked.returncode == 0 and asked.stdout.strip() == str(LAMBDA_PYTHON) else None


def _installed_with(target: Path, pinned: dict[str, str]) -> set[str]:
    """The distributions the core pins pulled in (typing-extensions for powertools, say): every
    installed one but ONNX Runtime and what ONNX Runtime itself requires."""
    metadata = {
        _name(info.name.split("-")[0]): (info / "METADATA").read_text() for info in target.glob("*.dist-info")
    }
    wanted = {ONNX_RUNTIME}
    queue = [ONNX_RUNTIME]
    while queue:
        for line in metadata.get(queue.pop(), "").splitlines():
            if line.startswith("Requires-Dist:") and "extra ==" not in line:
                name = _name(re.split(r"[\[=<>!~;( ]", line.split(":", 1)[1].strip(), maxsplit=1)[0])
                if name in metadata and name not in wanted and name not in pinned:
                    wanted.add(name)
                    queue.append(name)
    return set(metadata) - wanted


def _remove_distributions(target: Path, names: set[str]) -> None:
    """Every file each named distribution installed (its RECORD), and its dist-info."""
    for info in list(target.glob("*.dist-info")):
        if _name(info.name.split("-")[0]) not in names:
            continue
        for row in (info / "RECORD").read_text().splitlines():
            path = (target / row.split(",", 1)[0]).resolve()
            # RECORD names console scripts as ../../bin/...: never delete outside the layer.
            if path.is_relative_to(target.resolve()) and path.is_file() and info not in path.parents:
                path.unlink()
        shutil.rmtree(info)
    # The folders those files left empty (numpy/, numpy.libs/): deepest first.
    for folder in sorted((p for p in target.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(folder.iterdir()):
            folder.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", type=Path)
    parser.add_argument("--host", action="store_true", help="build for this machine, not for Lambda")
    parser.add_argument(
        "--only", choices=[ONNX_RUNTIME], help="build the layer of this requirement alone, not the core layer"
    )
    args = parser.parse_args()
    build(args.target, host=args.host, only=args.only)


if __name__ == "__main__":
    main()
