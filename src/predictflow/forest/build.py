"""Compile a tree-ensemble model into the bundle: forest/forest.c and one library per machine kind.

    forest/forest.c              the generated source (deterministic from model.onnx)
    forest/linux-x86_64.so       built with the host's cc on x86_64, else x86_64-linux-gnu-gcc
    forest/linux-aarch64.so      built with aarch64-linux-gnu-gcc (Debian: gcc-aarch64-linux-gnu),
                                 or the host's cc on arm64: what the Lambda loads

A machine kind without a compiler here gets no library, and a bundle without a library for the
machine it runs on is served by ONNX Runtime: compiling is an optimisation, never a requirement.
The flags keep IEEE float semantics (no -ffast-math, no fused multiply-add), so every machine
compares and adds exactly as the graph says.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from predictflow.bundle.format import BundleSpec, FileRef, ForestSpec
from predictflow.forest.codegen import c_source
from predictflow.forest.trees import Unsupported, read_ensemble

FOLDER: Final = "forest"
SOURCE: Final = f"{FOLDER}/forest.c"
ARCHES: Final = ("x86_64", "aarch64")
FLAGS: Final = (
    "-std=c11", "-O2", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math",
    "-fvisibility=hidden", "-nostdlib", "-s", "-Wl,--build-id=none", "-Wl,-z,noexecstack",
)  # fmt: skip
TIMEOUT_S: Final = 600


@dataclass
class ForestBuild:
    """What `compile_bundle_forest` wrote (paths relative to the bundle folder), or why not."""

    source: tuple[str, str] | None = None
    """(path, sha256) of the C source; None when the model is not compiled."""
    libraries: dict[str, tuple[str, str]] = field(default_factory=dict)
    """platform key (linux-x86_64) -> (path, sha256)."""
    notes: list[str] = field(default_factory=list)
    """Why the model, or a machine kind, was left to ONNX Runtime."""


def compilers(arch: str) -> list[str]:
    """The compilers that build for `arch` on this machine, best first."""
    names = [f"{arch}-linux-gnu-gcc"]
    if platform.machine().lower() in (arch, {"aarch64": "arm64", "x86_64": "amd64"}[arch]):
        names += ["cc", "gcc"]
    return [found for name in names if (found := shutil.which(name))]


def compile_library(source: str, arch: str, extra: tuple[str, ...] = ()) -> bytes | None:
    """The shared library for `arch`, or None when no compiler for it is installed. `extra`
    flags are for measuring (benchmarks/forest_speed.py); bundles are built with `FLAGS` only."""
    found = compilers(arch)
    if not found:
        return None
    with tempfile.TemporaryDirectory(prefix="predictflow-cc-") as folder:
        c_file = Path(folder) / "forest.c"
        c_file.write_text(source)
        library = Path(folder) / "forest.so"
        subprocess.run(  # noqa: S603 - a compiler found on PATH, fixed flags, our own files
            [found[0], *FLAGS, *extra, "-o", str(library), str(c_file)],
            check=True, capture_output=True, timeout=TIMEOUT_S,
        )  # fmt: skip
        return library.read_bytes()


def compile_bundle_forest(folder: Path, model_bytes: bytes, input_name: str, output_name: str) -> ForestBuild:
    """Write forest/ into a bundle folder when its model is a tree ensemble we reproduce exactly."""
    build = ForestBuild()
    try:
        ensemble = read_ensemble(model_bytes, input_name, output_name)
    except Unsupported as reason:
        build.notes.append(f"not compiled, served by ONNX Runtime: {reason}")
        return build
    except ImportError:
        build.notes.append("not compiled: the onnx package is not installed (pip install onnx)")
        return build
    source = c_source(ensemble, hashlib.sha256(model_bytes).hexdigest())
    (folder / FOLDER).mkdir(parents=True, exist_ok=True)
    (folder / SOURCE).write_text(source)
    build.source = (SOURCE, hashlib.sha256(source.encode()).hexdigest())
    for arch in ARCHES:
        library = compile_library(source, arch)
        key = f"linux-{arch}"
        if library is None:
            build.notes.append(f"no compiler for {arch} here: {key} is served by ONNX Runtime")
            continue
        path = f"{FOLDER}/{key}.so"
        (folder / path).write_bytes(library)
        build.libraries[key] = (path, hashlib.sha256(library).hexdigest())
    return build


def attach_forest(folder: Path, spec: BundleSpec, model_bytes: bytes) -> tuple[BundleSpec, list[str]]:
    """Compile the bundle's model into `folder`/forest/ and return its spec naming the files
    (unchanged when the model is not compiled), with the notes on what was left to ORT."""
    if spec.model.kind != "onnx":
        return spec, []
    build = compile_bundle_forest(folder, model_bytes, spec.model.input, spec.model.output)
    if build.source is None:
        return replace(spec, forest=None), build.notes
    forest = ForestSpec(FileRef(*build.source), {key: FileRef(*ref) for key, ref in build.libraries.items()})
    return replace(spec, forest=forest), build.notes
