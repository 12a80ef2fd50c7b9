"""The tree ensemble inside an ONNX graph, read from the graph's own attributes.

Supported: one `ai.onnx.ml` TreeEnsembleClassifier or TreeEnsembleRegressor (opsets 1-3, float
attributes) fed straight by the graph's float32 input, whose score output reaches the graph's
output through Identity, Cast to float/double, or Mul by a scalar constant (what onnxmltools and
skl2onnx add). Anything else is `Unsupported`, with the reason, and the bundle is served by ONNX
Runtime as before: the compiled forest is an optimisation, never a second meaning of the model.

The classifier cases are the ones whose ONNX Runtime output is unambiguous (see `Ensemble.post`):
- binary with one score column (every class_id 0, as LightGBM and XGBoost export), LOGISTIC:
  ORT answers [logistic(-s), logistic(s)];
- three or more classes each with its own column, NONE or SOFTMAX.
ORT's other two-class conventions (all-positive weights, a column per class, scores on class 1
only) have special cases that differ between its versions, so they are left to ORT.

Reading needs the `onnx` package (a build-time dependency: bundles are compiled when they are
made, never in the Lambda).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

MODES: Final = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ")
ENSEMBLES: Final = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
# Attributes the kernel reads that change nothing we compute (hitrates are a hint; labels are
# the other output, which the pipeline does not read).
IGNORED: Final = {"nodes_hitrates", "classlabels_int64s", "classlabels_strings", "name"}
FLOAT: Final = 1
DOUBLE: Final = 11


class Unsupported(ValueError):
    """The graph is not one the forest compiler reproduces exactly; ORT serves it."""


@dataclass(frozen=True)
class Node:
    feature: int
    mode: str
    threshold: float
    true: int
    false: int
    missing_true: bool


@dataclass(frozen=True)
class Leaf:
    weights: tuple[tuple[int, float], ...]
    """(score column, weight) in the order ORT adds them."""


@dataclass(frozen=True)
class Tree:
    nodes: dict[int, Node | Leaf]


@dataclass(frozen=True)
class Ensemble:
    trees: tuple[Tree, ...]
    """In tree-id order: ORT sums trees in that order, in float32, and so does the library."""
    width: int
    """Feature columns the graph takes."""
    columns: int
    """Raw score columns the library writes."""
    post: dict[str, Any]
    """What turns raw sums into the graph's output (applied by `runtime.finish`, in float32):
    aggregate (SUM/AVERAGE), n_trees, base (per column), transform (NONE/LOGISTIC/SOFTMAX/BINARY_LOGISTIC),
    scale (a constant the graph multiplies by), outputs (columns of the graph's output)."""


def _attributes(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_ensemble(model_bytes: bytes, input_name: str, output_name: str) -> Ensemble:
    """The graph's tree ensemble, or `Unsupported` saying why it cannot be compiled exactly."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    if [i.name for i in graph.input if i.name not in {t.name for t in graph.initializer}] != [input_name]:
        raise Unsupported("the graph does not take exactly one input")
    elem = graph.input[[i.name for i in graph.input].index(input_name)].type.tensor_type.elem_type
    if elem != FLOAT:
        raise Unsupported("the graph's input is not float32")
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            constants[node.output[0]] = numpy_helper.to_array(_attributes(node)["value"])
    producers = {out: node for node in graph.node for out in node.output}
    # Walk back from the output to the ensemble through the nodes we know how to reproduce.
    scale = 1.0
    name = output_name
    while True:
        node = producers.get(name)
        if node is None:
            raise Unsupported(f"output {output_name!r} is not computed from a tree ensemble")
        if node.op_type in ENSEMBLES and node.domain == "ai.onnx.ml":
            break
        if node.op_type == "Identity" or (
            node.op_type == "Cast" and _attributes(node).get("to") in (FLOAT, DOUBLE)
        ):
            name = node.input[0]
        elif node.op_type == "Mul" and len(node.input) == 2:
            scalar = [i for i in node.input if i in constants and constants[i].size == 1]
            if len(scalar) != 1:
                raise Unsupported("a Mul on the score path is not by a scalar constant")
            scale *= float(constants[scalar[0]].reshape(-1)[0])
            name = next(i for i in node.input if i != scalar[0])
        else:
            raise Unsupported(f"a {node.op_type} node on the score path")
    if sum(n.op_type in ENSEMBLES for n in graph.node) != 1:
        raise Unsupported("more than one tree ensemble in the graph")
    if list(node.input) != [input_name]:
        raise Unsupported("the tree ensemble is not fed the graph's input directly")
    scores_output = node.output[1] if node.op_type == "TreeEnsembleClassifier" else node.output[0]
    if name != scores_output:
        raise Unsupported("the output is the predicted label, not the scores")
    width = _input_width(graph, input_name)
    return _ensemble(node.op_type, _attributes(node), width, scale)


def _input_width(graph: Any, input_name: str) -> int:
    tensor = next(i for i in graph.input if i.name == input_name).type.tensor_type
    dims = list(tensor.shape.dim)
    if len(dims) != 2 or not dims[1].HasField("dim_value"):
        raise Unsupported("the input's width is not fixed")
    return int(dims[1].dim_value)


def _ensemble(kind: str, attrs: dict[str, Any], width: int, scale: float) -> Ensemble:
    prefix = "class" if kind == "TreeEnsembleClassifier" else "target"
    known = {
        "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values",
        "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true", "post_transform",
        "base_values", f"{prefix}_treeids", f"{prefix}_nodeids", f"{prefix}_ids", f"{prefix}_weights",
        "aggregate_function", "n_targets",
    }  # fmt: skip
    unknown = sorted(set(attrs) - known - IGNORED)
    if unknown:
        raise Unsupported(f"attribute(s) {', '.join(unknown)} are not compiled")
    transform = _text(attrs.get("post_transform", b"NONE"))
    base = [float(v) for v in attrs.get("base_values", [])]
    aggregate = _text(attrs.get("aggregate_function", b"SUM"))
    if kind == "TreeEnsembleClassifier":
        labels = attrs.get("classlabels_int64s") or attrs.get("classlabels_strings") or []
        columns = len(labels)
        class_ids = set(attrs.get("class_ids", []))
        if columns == 2 and class_ids == {0}:
            if transform != "LOGISTIC":
                raise Unsupported(f"a one-score binary classifier with post_transform {transform}")
            if len(base) > 1:
                raise Unsupported("a one-score binary classifier with two base values")
            post = {"transform": "BINARY_LOGISTIC", "base": base or [0.0], "outputs": 2}
            raw_columns = 1
        elif columns >= 3 and class_ids == set(range(columns)):
            if transform not in ("NONE", "SOFTMAX"):
                raise Unsupported(f"a {columns}-class classifier with post_transform {transform}")
            if base and len(base) != columns:
                raise Unsupported("base_values do not give one value per class")
            post = {"transform": transform, "base": base or [0.0] * columns, "outputs": columns}
            raw_columns = columns
        else:
            raise Unsupported("the class ids do not give one score column per class, nor one in all")
        aggregate = "SUM"
    else:
        raw_columns = int(attrs.get("n_targets", 1))
        if transform != "NONE":
            raise Unsupported(f"a regressor with post_transform {transform}")
        if aggregate not in ("SUM", "AVERAGE"):
            raise Unsupported(f"aggregate_function {aggregate}")
        if base and len(base) != raw_columns:
            raise Unsupported("base_values do not give one value per target")
        post = {"transform": "NONE", "base": base or [0.0] * raw_columns, "outputs": raw_columns}
    trees = _trees(attrs, prefix, raw_columns, width)
    if kind == "TreeEnsembleRegressor" and raw_columns == 1:
        # ORT's one-target kernel reads a leaf's first weight only; leaves with none or several
        # are an ambiguity we leave to it.
        leaves = (node for tree in trees for node in tree.nodes.values() if isinstance(node, Leaf))
        if any(len(leaf.weights) != 1 for leaf in leaves):
            raise Unsupported("a one-target regressor with a leaf of no weight or several")
    post |= {"aggregate": aggregate, "n_trees": len(trees), "scale": scale}
    return Ensemble(trees, width, raw_columns, post)


def _trees(attrs: dict[str, Any], prefix: str, columns: int, width: int) -> tuple[Tree, ...]:
    tree_ids = list(attrs["nodes_treeids"])
    count = len(tree_ids)
    modes = [_text(m) for m in attrs["nodes_modes"]]
    missing = list(attrs.get("nodes_missing_value_tracks_true", [0] * count))
    columns_of: tuple[str, ...] = ("nodes_nodeids", "nodes_featureids", "nodes_values")
    columns_of += ("nodes_truenodeids", "nodes_falsenodeids")
    if any(len(attrs.get(key, [])) != count for key in columns_of) or len(missing) != count:
        raise Unsupported("the nodes_* attributes are not of one length")
    weights: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for tree, node, column, weight in zip(
        attrs[f"{prefix}_treeids"], attrs[f"{prefix}_nodeids"], attrs[f"{prefix}_ids"],
        attrs[f"{prefix}_weights"], strict=True,
    ):  # fmt: skip
        if not 0 <= column < columns:
            raise Unsupported(f"a leaf weight for score column {column}")
        weights.setdefault((tree, node), []).append((int(column), float(weight)))
    nodes: dict[int, dict[int, Node | Leaf]] = {}
    for i in range(count):
        tree, node_id, mode = tree_ids[i], attrs["nodes_nodeids"][i], modes[i]
        target = nodes.setdefault(tree, {})
        if node_id in target:
            raise Unsupported(f"tree {tree} repeats node {node_id}")
        if mode == "LEAF":
            target[node_id] = Leaf(tuple(weights.get((tree, node_id), ())))
            continue
        if mode not in MODES:
            raise Unsupported(f"node mode {mode}")
        feature = int(attrs["nodes_featureids"][i])
        if not 0 <= feature < width:
            raise Unsupported(f"a split on feature {feature} of {width}")
        target[node_id] = Node(
            feature, mode, float(attrs["nodes_values"][i]),
            int(attrs["nodes_truenodeids"][i]), int(attrs["nodes_falsenodeids"][i]), bool(missing[i]),
        )  # fmt: skip
    trees = []
    for tree_id in sorted(nodes):
        tree = Tree(nodes[tree_id])
        if 0 not in tree.nodes:
            raise Unsupported(f"tree {tree_id} has no node 0")
        _check_acyclic(tree, tree_id)
        trees.append(tree)
    return tuple(trees)


def _check_acyclic(tree: Tree, tree_id: int) -> None:
    """Every branch leads to a node of the tree, and no path comes back to where it was.
    Branches may share a node (categorical splits are exported as chains of BRANCH_EQ tests
    that end in the same subtree), so this is a graph's cycle test, not a tree's."""
    edges: dict[int, tuple[int, ...]] = {}
    stack = [0]
    while stack:
        node_id = stack.pop()
        if node_id in edges:
            continue
        node = tree.nodes.get(node_id)
        if node is None:
            raise Unsupported(f"tree {tree_id} refers to a missing node {node_id}")
        edges[node_id] = (node.true, node.false) if isinstance(node, Node) else ()
        stack.extend(edges[node_id])
    incoming = dict.fromkeys(edges, 0)
    for targets in edges.values():
        for target in targets:
            incoming[target] += 1
    ready = [node_id for node_id, count in incoming.items() if count == 0]
    done = 0
    while ready:
        node_id = ready.pop()
        done += 1
        for target in edges[node_id]:
            incoming[target] -= 1
            if incoming[target] == 0:
                ready.append(target)
    if done != len(edges):
        raise Unsupported(f"tree {tree_id} has a cycle")
