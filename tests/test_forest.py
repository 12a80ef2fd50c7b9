"""The compiled forest answers exactly as ONNX Runtime does, or ONNX Runtime answers.

Every comparison is against ONNX Runtime on the same float32 rows: the Adult training data,
hypothesis-drawn rows built to hit the model's own thresholds exactly, NaN missing values,
infinities and category codes past the vocabulary, for the trainer's kinds of model (binary,
categorical splits, multiclass, regression) and for imported scikit-learn forests.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from predictflow.bundle import load_bundle
from predictflow.bundle.check import check_bundle
from predictflow.bundle.exceptions import BundleError, SchemaMismatch
from predictflow.bundle.format import BundleSpec
from predictflow.forest.build import compile_library, compilers
from predictflow.forest.codegen import PREDICT, c_source
from predictflow.forest.runtime import CompiledForest, platform_key
from predictflow.forest.trees import Node, Unsupported, read_ensemble
from predictflow.predictors import EmbeddedPredictor
from predictflow.records import parse_chunk
from tests.fixtures import ADULT, ADULT_DATA, SCHEMA

HOST = platform_key().split("-", 1)[1]
TOLERANCE = 1e-6


def ort_scores(model_bytes: bytes, rows: np.ndarray, output: str = "probabilities") -> np.ndarray:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    (scores,) = session.run([output], {session.get_inputs()[0].name: rows})
    return np.asarray(scores, dtype=np.float64).reshape(len(rows), -1)


COMPILED: dict[tuple[str, str, str], CompiledForest] = {}


def compiled(
    model_bytes: bytes, output: str = "probabilities", input_name: str = "features"
) -> CompiledForest:
    """The model's forest, compiled once per test run: the hypothesis tests draw many rows for
    the same few models, and a compile takes seconds."""
    sha = hashlib.sha256(model_bytes).hexdigest()
    key = (sha, output, input_name)
    if key not in COMPILED:
        library = compile_library(c_source(read_ensemble(model_bytes, input_name, output), sha), HOST)
        assert library is not None, "no C compiler for this machine"
        COMPILED[key] = CompiledForest(library, sha)
    return COMPILED[key]


def thresholds(model_bytes: bytes, output: str) -> dict[int, list[float]]:
    found: dict[int, list[float]] = {}
    for tree in read_ensemble(model_bytes, "features", output).trees:
        for node in tree.nodes.values():
            if isinstance(node, Node):
                found.setdefault(node.feature, []).append(node.threshold)
    return found


def edge_rows(draw: Any, model_bytes: bytes, output: str, width: int, count: int) -> np.ndarray:
    """Rows whose values are the model's thresholds exactly, their float32 neighbours, NaN,
    infinities, category codes past any vocabulary, or anything."""
    cuts = thresholds(model_bytes, output)
    rows = []
    for _ in range(count):
        row = []
        for column in range(width):
            options = cuts.get(column, [0.0])
            cut = np.float32(draw(st.sampled_from(options)))
            kind = draw(st.sampled_from(["hit", "below", "above", "nan", "inf", "code", "any"]))
            value = {
                "hit": cut,
                "below": np.nextafter(cut, np.float32(-np.inf)),
                "above": np.nextafter(cut, np.float32(np.inf)),
                "nan": np.float32(np.nan),
                "inf": np.float32(draw(st.sampled_from([np.inf, -np.inf]))),
                "code": np.float32(draw(st.integers(0, 60))),
                "any": np.float32(draw(st.floats(-1e7, 1e7, width=32))),
            }[kind]
            row.append(value)
        rows.append(row)
    return np.array(rows, dtype=np.float32)


def assert_same(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape
    worst = float(np.max(np.abs(got - expected))) if got.size else 0.0
    assert worst <= TOLERANCE, f"compiled forest differs from ONNX Runtime by {worst}"


# --------------------------------------------------------------------------- the Adult bundle
def test_the_adult_bundle_is_scored_by_its_compiled_forest_exactly_as_onnx_runtime_scores_it() -> None:
    batch = parse_chunk(ADULT_DATA.read_bytes(), SCHEMA)
    assert len(batch.features) == 32_561
    assert not batch.rejections
    predictor = EmbeddedPredictor(ADULT)
    assert predictor.backend == "compiled-forest"
    assert ADULT.model_bytes is not None
    assert_same(
        predictor.scores(batch.features, validated=True), ort_scores(ADULT.model_bytes, batch.features)
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_thresholds_hit_exactly_missing_values_and_unseen_codes_score_as_in_onnx_runtime(data: Any) -> None:
    assert ADULT.model_bytes is not None
    rows = edge_rows(data.draw, ADULT.model_bytes, "probabilities", SCHEMA.width, 8)
    predictor = EmbeddedPredictor(ADULT)
    assert_same(predictor.scores(rows, validated=True), ort_scores(ADULT.model_bytes, rows))


# --------------------------------------------------------------------------- other tree models
def _lightgbm(objective: str, *, categorical: bool, classes: int = 2) -> bytes:
    import lightgbm
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    rng = np.random.default_rng(7)
    x = np.column_stack([rng.integers(0, 12, 3000), rng.normal(size=3000), rng.uniform(0, 100, 3000)])
    x[rng.random(3000) < 0.15, 1] = np.nan  # learned missing-value directions
    signal = (x[:, 0] % 3 == 0) + np.nan_to_num(x[:, 1]) + x[:, 2] / 50
    y = np.digitize(signal, np.quantile(signal, np.linspace(0, 1, classes + 1)[1:-1]))
    params: dict[str, Any] = {"objective": objective, "num_leaves": 15, "verbose": -1, "seed": 1}
    params |= {"num_class": classes} if objective == "multiclass" else {}
    params |= {"min_data_per_group": 5, "cat_smooth": 1} if categorical else {}
    dataset = lightgbm.Dataset(
        x, signal if objective == "regression" else y, categorical_feature=[0] if categorical else "auto"
    )
    booster = lightgbm.train(params, dataset, 30)
    model = onnxmltools.convert_lightgbm(
        booster, initial_types=[("features", FloatTensorType([None, 3]))], zipmap=False, target_opset=15
    )
    return bytes(model.SerializeToString())


def _sklearn_forest(classes: int) -> bytes:
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 3)).astype(np.float32)
    y = np.digitize(x[:, 0] + x[:, 1], [-0.5, 0.5][: classes - 1])
    model = RandomForestClassifier(n_estimators=12, max_depth=6, random_state=0).fit(x, y)
    onx = to_onnx(model, x[:1], options={"zipmap": False}, initial_types=None)
    onx.graph.input[0].name = "features"
    for node in onx.graph.node:
        node.input[:] = ["features" if name == "X" else name for name in node.input]
    return bytes(onx.SerializeToString())


MODELS = {
    "binary, categorical splits": (lambda: _lightgbm("binary", categorical=True), "probabilities"),
    "multiclass softmax": (lambda: _lightgbm("multiclass", categorical=True, classes=4), "probabilities"),
    "regression": (lambda: _lightgbm("regression", categorical=False), "variable"),
    "scikit-learn random forest, 3 classes": (lambda: _sklearn_forest(3), "probabilities"),
}
BUILT: dict[str, bytes] = {}


def _model(name: str) -> tuple[bytes, str]:
    make, output = MODELS[name]
    if name not in BUILT:
        BUILT[name] = make()  # type: ignore[no-untyped-call]
    return BUILT[name], output


@pytest.mark.parametrize("name", list(MODELS))
def test_tree_models_of_every_supported_kind_compile_to_onnx_runtimes_scores(name: str) -> None:
    model_bytes, output = _model(name)
    forest = compiled(model_bytes, output)
    rng = np.random.default_rng(11)
    rows = np.column_stack([rng.integers(0, 15, 2000), rng.normal(size=2000), rng.uniform(-5, 105, 2000)])
    rows[rng.random(2000) < 0.2, 1] = np.nan
    rows = rows.astype(np.float32)
    assert_same(forest.predict(rows), ort_scores(model_bytes, rows, output))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(list(MODELS)), st.data())
def test_edge_values_score_as_in_onnx_runtime_for_every_supported_kind(name: str, data: Any) -> None:
    model_bytes, output = _model(name)
    rows = edge_rows(data.draw, model_bytes, output, 3, 6)
    assert_same(compiled(model_bytes, output).predict(rows), ort_scores(model_bytes, rows, output))


def test_a_binary_forest_with_all_positive_votes_is_left_to_onnx_runtime_with_the_reason() -> None:
    with pytest.raises(Unsupported, match=r"one-score binary|class ids"):
        read_ensemble(_sklearn_forest(2), "features", "probabilities")


# --------------------------------------------------------------------------- fallback and checks
def _copy_bundle(tmp_path: Path) -> Path:
    folder = tmp_path / "bundle"
    shutil.copytree(ADULT.location, folder)
    return folder


def _rewrite(folder: Path, change: Any) -> None:
    data = json.loads((folder / "bundle.json").read_text())
    change(data)
    (folder / "bundle.json").write_text(json.dumps(data))


def test_a_bundle_without_a_library_for_this_machine_is_scored_by_onnx_runtime(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _copy_bundle(tmp_path)
    _rewrite(folder, lambda data: data["forest"]["libraries"].pop(platform_key()))
    with caplog.at_level(logging.INFO, logger="predictflow.predictors.embedded"):
        predictor = EmbeddedPredictor(load_bundle(folder))
    assert predictor.backend == "onnxruntime"
    assert f"no compiled forest for {platform_key()}" in predictor.backend_note
    assert "scored by onnxruntime" in caplog.text
    batch = parse_chunk(ADULT_DATA.read_bytes()[:20_000], SCHEMA)
    assert_same(predictor.scores(batch.features), EmbeddedPredictor(ADULT).scores(batch.features))


def test_an_altered_library_is_not_loaded_and_the_deploy_check_refuses_it(tmp_path: Path) -> None:
    folder = _copy_bundle(tmp_path)
    library = folder / "forest" / f"{platform_key()}.so"
    data = library.read_bytes()
    library.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    bundle = load_bundle(folder)
    predictor = EmbeddedPredictor(bundle)
    assert predictor.backend == "onnxruntime"
    assert "does not match its sha256" in predictor.backend_note
    with pytest.raises(SchemaMismatch, match="compiled forest cannot be used"):
        check_bundle(bundle)


def test_a_compiled_forest_that_differs_from_onnx_runtime_is_refused_by_the_check(tmp_path: Path) -> None:
    folder = _copy_bundle(tmp_path)
    source = (folder / "forest" / "forest.c").read_text()
    # One leaf of the first tree worth a little more: a miscompiled or stale library. The
    # first value of the first trees' leaf table (the branch-free layout takes every Adult tree).
    first_leaf = source.index("{{", source.index("static const float W0[")) + 2
    end = source.index(",", first_leaf)
    wrong = source[:end] + " + 0.01f" + source[end:]
    library = compile_library(wrong, HOST)
    assert library is not None
    path = folder / "forest" / f"{platform_key()}.so"
    path.write_bytes(library)
    _rewrite(
        folder,
        lambda data: data["forest"]["libraries"][platform_key()].update(
            sha256=hashlib.sha256(library).hexdigest()
        ),
    )
    with pytest.raises(SchemaMismatch, match="differs from ONNX Runtime"):
        check_bundle(load_bundle(folder))


def test_forest_paths_outside_the_forest_folder_are_refused() -> None:
    data = json.loads(ADULT.spec.to_json())
    data["forest"]["libraries"][platform_key()]["path"] = "../../etc/passwd"
    with pytest.raises(BundleError, match="forest/<name>"):
        BundleSpec.from_dict(data)


def test_the_forest_is_not_part_of_the_model_version() -> None:
    data = json.loads((Path(ADULT.location) / "bundle.json").read_text())
    assert data["forest"]["libraries"].keys() == {"linux-x86_64", "linux-aarch64"}
    assert ADULT.model_version == "adult-income-3769ee4624e1"


# --------------------------------------------------------------------------- arm64, for Lambda
HARNESS = r"""
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
  void *lib = dlopen(argv[1], RTLD_NOW);
  if (!lib) { fprintf(stderr, "%s\n", dlerror()); return 2; }
  typedef void (*predict_fn)(const float *, int64_t, float *);
  predict_fn predict = (predict_fn)dlsym(lib, "%s");
  int64_t n = atoll(argv[2]), width = atoll(argv[3]);
  float *rows = malloc(sizeof(float) * n * width), *out = malloc(sizeof(float) * n);
  if (fread(rows, sizeof(float), n * width, stdin) != (size_t)(n * width)) return 3;
  predict(rows, n, out);
  fwrite(out, sizeof(float), n, stdout);
  return 0;
}
""".replace("%s", PREDICT)


def test_the_arm64_library_lambda_loads_gives_onnx_runtimes_scores_under_qemu(tmp_path: Path) -> None:
    library = Path(ADULT.location) / "forest" / "linux-aarch64.so"
    described = subprocess.run(["file", "-b", str(library)], capture_output=True, text=True, check=True)
    assert "ARM aarch64" in described.stdout
    assert "shared object" in described.stdout
    gcc = compilers("aarch64")
    qemu = shutil.which("qemu-aarch64")
    assert gcc, "apt-get install gcc-aarch64-linux-gnu"
    assert qemu, "apt-get install qemu-user"
    (tmp_path / "harness.c").write_text(HARNESS)
    subprocess.run([gcc[0], "-O1", "-o", str(tmp_path / "harness"), str(tmp_path / "harness.c")], check=True)
    batch = parse_chunk(ADULT_DATA.read_bytes(), SCHEMA)
    rows = np.ascontiguousarray(batch.features[:4000], dtype=np.float32)
    rows[::7, 1] = np.nan
    run = subprocess.run(
        [qemu, "-L", "/usr/aarch64-linux-gnu", str(tmp_path / "harness"), str(library), str(len(rows)), "14"],
        input=rows.tobytes(), capture_output=True, check=True,
    )  # fmt: skip
    raw = np.frombuffer(run.stdout, dtype=np.float32).reshape(-1, 1)
    host = EmbeddedPredictor(ADULT)
    assert host.backend == "compiled-forest"
    assert ADULT.model_bytes is not None
    forest = compiled(ADULT.model_bytes)
    assert np.array_equal(raw, forest.raw(rows)), "arm64 and x86_64 libraries sum differently"
    assert_same(forest.finish(raw), ort_scores(ADULT.model_bytes, rows))


# --------------------------------------------------------------------------- branch-free layout
ORDERED_MODES = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT")
CUTS = (0.5, 0.0, -0.0, -3.4028234663852886e38, 1e-45)


def _every_ordered_split() -> bytes:
    """A regressor whose trees use every ordered mode with both missing-value directions, at
    thresholds where `v >= t` as `v > (the float below t)` could go wrong (0, -0, -FLT_MAX, the
    smallest denormal), one leaf above the last level (padding), weights that name their path,
    each tree its own target so that no sum hides a wrong leaf."""
    from onnx import TensorProto, helper

    nodes: dict[str, list[Any]] = {
        key: [] for key in ("treeids", "nodeids", "featureids", "modes", "values", "true", "false", "missing")
    }
    leaves: dict[str, list[Any]] = {"treeids": [], "nodeids": [], "ids": [], "weights": []}

    def add(
        tree: int, node: int, feature: int, mode: str, value: float, true: int, false: int, miss: int
    ) -> None:
        for key, item in zip(nodes, (tree, node, feature, mode, value, true, false, miss), strict=True):
            nodes[key].append(item)

    tree = 0
    for mode in ORDERED_MODES:
        for missing in (1, 0):
            for cut in CUTS:
                # root on x0; its true branch a second test on x1, its false branch a leaf
                add(tree, 0, 0, mode, cut, 1, 2, missing)
                add(tree, 1, 1, ORDERED_MODES[(tree + 1) % 4], -cut, 3, 4, 1 - missing)
                for leaf, weight in ((2, 1.0), (3, 2.0), (4, 4.0)):
                    add(tree, leaf, 0, "LEAF", 0.0, 0, 0, 0)
                    for key, item in zip(leaves, (tree, leaf, tree, weight), strict=True):
                        leaves[key].append(item)
                tree += 1
    ensemble = helper.make_node(
        "TreeEnsembleRegressor", ["features"], ["variable"], domain="ai.onnx.ml", n_targets=tree,
        nodes_treeids=nodes["treeids"], nodes_nodeids=nodes["nodeids"], nodes_featureids=nodes["featureids"],
        nodes_modes=nodes["modes"], nodes_values=nodes["values"], nodes_truenodeids=nodes["true"],
        nodes_falsenodeids=nodes["false"], nodes_missing_value_tracks_true=nodes["missing"],
        target_treeids=leaves["treeids"], target_nodeids=leaves["nodeids"], target_ids=leaves["ids"],
        target_weights=leaves["weights"],
    )  # fmt: skip
    graph = helper.make_graph(
        [ensemble], "splits",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, tree])],
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 3)]
    return bytes(helper.make_model(graph, opset_imports=opsets, ir_version=8).SerializeToString())


def test_every_ordered_split_and_missing_direction_takes_the_branch_free_layout_and_scores_as_ort() -> None:
    model_bytes = _every_ordered_split()
    ensemble = read_ensemble(model_bytes, "features", "variable")
    source = c_source(ensemble, "0" * 64)
    assert "goto" not in source, "a tree of ordered splits kept the goto layout"
    values = [np.float32(c) for c in CUTS] + [np.float32(np.nan), np.float32(np.inf), np.float32(-np.inf)]
    with np.errstate(over="ignore"):  # the float below -FLT_MAX is -inf
        values += [np.nextafter(v, np.float32(s)) for v in values[: len(CUTS)] for s in (np.inf, -np.inf)]
    rows = np.array([[a, b] for a in values for b in values], dtype=np.float32)
    forest = compiled(model_bytes, "variable")
    assert_same(forest.predict(rows), ort_scores(model_bytes, rows, "variable"))
    # The sums are the goto layout's bit for bit, for every count of rows walked together.
    for together in (1, 3, 8):
        library = compile_library(c_source(ensemble, "0" * 64, "branch-free", together), HOST)
        assert library is not None
        other = CompiledForest(library, "0" * 64)
        for count in (1, 5, len(rows)):
            assert np.array_equal(other.raw(rows[:count]), forest.raw(rows[:count]))
