"""The model store's operations, for `predictflow model ...` and `local run --model`.

- `import_model`: an ONNX file exported elsewhere + a schema file -> a bundle folder, checked,
  written whole or not at all.
- `deploy`: a bundle folder -> the stack's model store, active unless told otherwise. A bundle
  that fails `check_bundle` is never uploaded, so it can never become active; nor is one that
  needs ONNX Runtime on a stack deployed without it (its `OnnxRuntime` Output is `Excluded`).
- `list_models`: the deployed versions, the packaged default, and which one serves.
- `activate`: switch to a deployed version (or back to the packaged default) by a unique prefix
  of its name, after loading and checking it.

Every refusal is a `ModelError` (or a `BundleError`) whose message is the one line a user sees.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from predictflow.bundle import BUNDLE_FILE, Bundle, BundleError, default_bundle, load_bundle
from predictflow.bundle.check import Graph, check_bundle, check_graph, open_graph, smoke_test
from predictflow.bundle.exceptions import SchemaMismatch
from predictflow.bundle.format import BundleSpec, ModelSpec, RecordSchema
from predictflow.bundle.schema_files import read_schema_file
from predictflow.bundle.store import ModelStore
from predictflow.forest.build import attach_forest

PACKAGED_NOTE: Final = "packaged default, serving while nothing is deployed"
MAIN_METRICS: Final = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
LABEL_TYPES: Final = ("tensor(int64)", "tensor(string)", "tensor(int32)")
LAMBDA_MACHINE: Final = "linux-aarch64"
"""The machine kind the template's functions run on (Architectures: arm64)."""
ONNX_RUNTIME_INCLUDED: Final = "Included"
ONNX_RUNTIME_EXCLUDED: Final = "Excluded"
logger = logging.getLogger(__name__)


class ModelError(BundleError):
    """A model command refused: the message says what is wrong and what to do."""


# --------------------------------------------------------------------------- import
def read_schema(path: Path) -> RecordSchema:
    """A schema file: the bundle's own format (a bundle file is accepted too, for its layout)
    or Amazon ML's data schema."""
    return read_schema_file(path)


def pick_ports(graph: Graph, input_name: str | None, output_name: str | None) -> tuple[str, str]:
    """The graph's input and score output: the ones named, else the only candidates."""
    if input_name is None:
        if len(graph.inputs) != 1:
            listed = ", ".join(port.describe() for port in graph.inputs)
            raise SchemaMismatch(
                f"the model has {len(graph.inputs)} inputs ({listed}): name the feature matrix with --input"
            )
        input_name = graph.inputs[0].name
    if output_name is None:
        scores = [port for port in graph.outputs if port.type not in LABEL_TYPES]
        if len(scores) == 1:
            output_name = scores[0].name
        else:
            listed = ", ".join(port.describe() for port in graph.outputs) or "none"
            raise SchemaMismatch(
                f"cannot tell which output holds the scores among {listed}: name it with --output"
            )
    return input_name, output_name


def import_model(
    model_path: Path,
    schema_path: Path,
    out: Path,
    *,
    name: str | None = None,
    input_name: str | None = None,
    output_name: str | None = None,
) -> BundleSpec:
    """Check an exported ONNX model against a schema and write it as a bundle folder at `out`.

    Nothing is written unless the whole bundle is good: the files go to a temporary folder
    beside `out`, which is checked as `load_bundle` reads it and then renamed into place."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ModelError(f"{out} already exists: choose another --out or remove it")
    schema = read_schema(schema_path)
    model_bytes = model_path.read_bytes()
    graph = open_graph(model_bytes, str(model_path))
    input_name, output_name = pick_ports(graph, input_name, output_name)
    model = ModelSpec.of_onnx(model_bytes, input=input_name, output=output_name)
    training: dict[str, Any] = {
        "imported_from": {
            "file": model_path.name,
            "sha256": model.sha256,
            "producer": graph.producer,
            "schema_file": schema_path.name,
        }
    }
    spec = schema.versioned_bundle(model, model_bytes, name=name or "", training=training)
    problems = spec.problems()
    if problems:
        raise BundleError("the bundle would not be valid: " + "; ".join(problems))
    check_graph(graph, spec)
    smoke_test(graph, spec)
    return write_bundle(out, spec, model_bytes)


def write_bundle(out: Path, spec: BundleSpec, model_bytes: bytes) -> BundleSpec:
    """bundle.json + model.onnx (+ forest/, a tree ensemble compiled for each machine kind with a
    compiler here) at `out`, whole or not at all. Returns the spec as written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / spec.model.path).write_bytes(model_bytes)
        spec, notes = attach_forest(staging, spec, model_bytes)
        for note in notes:
            logger.info("%s: %s", spec.name, note)
        (staging / BUNDLE_FILE).write_text(spec.to_json())
        check_bundle(load_bundle(staging))
        if out.is_dir():
            out.rmdir()  # empty (checked by the caller); rename does not replace a folder portably
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return spec


# --------------------------------------------------------------------------- deploy
@dataclass(frozen=True)
class Deployed:
    version: str
    uploaded: bool
    """False when the version was already in the store (a re-deploy uploads nothing)."""
    activated: bool
    previous: str | None
    """The version that was active before (None: the packaged default)."""


def deploy(
    store: ModelStore, directory: Path, *, activate: bool = True, onnx_runtime: str = ONNX_RUNTIME_INCLUDED
) -> Deployed:
    """Put a bundle folder in the store and (by default) make it the active version.

    The bundle is loaded (its model digest verified) and checked first: one that fails is
    neither uploaded nor activated, nor is one that needs ONNX Runtime when `onnx_runtime`
    (the stack's `OnnxRuntime` Output, `StackNames.onnx_runtime`) says the stack has none. A
    version already stored is not uploaded again (versions are content hashes, so it is the
    same bundle)."""
    bundle = load_bundle(directory)
    check_runnable(bundle.spec, onnx_runtime)
    check(bundle)
    version = bundle.model_version
    previous = store.active_version()
    uploaded = False
    if not store.exists(version):
        store.upload(directory, bundle.spec)
        uploaded = True
    activated = False
    if activate and previous != version:
        store.activate(version)
        activated = True
    return Deployed(version, uploaded, activated, previous)


def needs_onnx_runtime(spec: BundleSpec) -> str | None:
    """Why the functions would score this bundle with ONNX Runtime, or None if they need not
    (a compiled forest for their machine, or an endpoint bundle, which runs no model here)."""
    if spec.model.kind != "onnx":
        return None
    if spec.forest is None:
        return "it has no compiled forest: not a tree ensemble the compiler supports"
    if LAMBDA_MACHINE not in spec.forest.libraries:
        return (
            f"it has no compiled forest for {LAMBDA_MACHINE}, the functions' machine: build the bundle "
            "where aarch64-linux-gnu-gcc is installed"
        )
    return None


def check_runnable(spec: BundleSpec, onnx_runtime: str) -> None:
    """Refuse a bundle the stack's functions could not score (before anything is uploaded)."""
    if onnx_runtime not in (ONNX_RUNTIME_INCLUDED, ONNX_RUNTIME_EXCLUDED):
        raise ModelError(f"the stack's OnnxRuntime output is {onnx_runtime!r}, neither Included nor Excluded")
    reason = needs_onnx_runtime(spec)
    if onnx_runtime == ONNX_RUNTIME_EXCLUDED and reason is not None:
        raise ModelError(
            f"bundle {spec.model_version} needs ONNX Runtime ({reason}), which the stack leaves out "
            "(OnnxRuntime=Excluded): deploy the stack with OnnxRuntime=Included, or use a bundle "
            f"with a compiled forest for {LAMBDA_MACHINE} (`predictflow model train` makes one)"
        )


def check(bundle: Bundle) -> None:
    """`check_bundle`, with the bundle named in the message."""
    try:
        check_bundle(bundle)
    except SchemaMismatch as error:
        raise SchemaMismatch(f"bundle {bundle.model_version} fails its check: {error}") from error


# --------------------------------------------------------------------------- list
@dataclass(frozen=True)
class ModelRow:
    version: str
    name: str
    task: str
    metric: str
    """The task's main metric as `name value`, or '' when the bundle has no metrics."""
    created: str
    """When it was uploaded to the store (deployed versions) or trained (the packaged one)."""
    active: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "name": self.name,
            "task": self.task,
            "metric": self.metric,
            "created": self.created,
            "active": self.active,
            "note": self.note,
        }


def main_metric(spec: BundleSpec) -> str:
    metrics = spec.training.get("metrics", {}) if isinstance(spec.training, dict) else {}
    key = MAIN_METRICS.get(spec.target.task, "")
    value = metrics.get(key) if isinstance(metrics, dict) else None
    if isinstance(value, int | float):
        return f"{key} {value:.4f}"
    return ""


def list_models(store: ModelStore) -> list[ModelRow]:
    """The packaged default first, then every deployed version oldest first."""
    active = store.active_version()
    packaged = default_bundle().spec
    rows = [
        ModelRow(
            packaged.model_version,
            packaged.name,
            packaged.target.task,
            main_metric(packaged),
            "packaged",
            active is None or active == packaged.model_version,
            PACKAGED_NOTE,
        )
    ]
    for stored in store.stored():
        spec = stored.spec
        if spec.model_version == packaged.model_version:
            continue
        rows.append(
            ModelRow(
                spec.model_version,
                spec.name,
                spec.target.task,
                main_metric(spec),
                _when(stored.uploaded_at),
                spec.model_version == active,
            )
        )
    return rows


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


# --------------------------------------------------------------------------- activate
def resolve(store: ModelStore, prefix: str) -> str:
    """The one known version starting with `prefix` (deployed ones and the packaged default)."""
    known = sorted({*store.version_names(), default_bundle().model_version})
    if prefix in known:
        return prefix
    matches = [version for version in known if version.startswith(prefix)]
    if not prefix or not matches:
        raise ModelError(f"no model version starts with {prefix!r}; known versions: {', '.join(known)}")
    if len(matches) > 1:
        raise ModelError(f"{prefix!r} is ambiguous: it starts {', '.join(matches)}; give more of the version")
    return matches[0]


@dataclass(frozen=True)
class Activated:
    version: str
    previous: str | None
    changed: bool


def activate(store: ModelStore, prefix: str, *, onnx_runtime: str = ONNX_RUNTIME_INCLUDED) -> Activated:
    """Make a known version active, after loading it (digest verified) and checking it, and
    that the stack can score it (as `deploy`)."""
    version = resolve(store, prefix)
    packaged = default_bundle()
    bundle = packaged if version == packaged.model_version else store.load(version)
    check(bundle)
    check_runnable(bundle.spec, onnx_runtime)
    previous = store.active_version()
    if previous == version or (previous is None and version == packaged.model_version):
        return Activated(version, previous, changed=False)
    store.activate(version)
    return Activated(version, previous, changed=True)
