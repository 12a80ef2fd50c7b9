"""An `Ensemble` as C: one function that scores rows, and a JSON description of how to finish.

Two layouts, chosen per tree, in one function that keeps every row's sums in ORT's order (trees
by id, a leaf's weights as listed, float32 accumulators), so which layout scores a tree never
changes a bit of the result:

- branch-free (trees of ordered splits up to `MAX_DEPTH` deep): the tree padded to a complete
  one, its nodes an array walked by `i = 2*i + 1 + (v[column] > threshold)`, the leaf values an
  array indexed by where the walk ends. No data-dependent branch, so no mispredictions (the
  goto layout mispredicted on most rows), and `ROWS` rows walk each tree together, so their
  independent loads overlap. Consecutive trees of one depth and one leaf shape share one loop.
- goto (anything else: equality splits, NaN or infinite thresholds, deeper trees): every tree a
  run of labelled tests (`goto`, not nesting, so deep trees from imported models compile as
  easily as shallow ones).

Thresholds and weights are written as hexadecimal float literals, so the library compares and
adds exactly the float32 values in the graph. The output is deterministic: same model, same bytes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from predictflow.forest.trees import Ensemble, Leaf, Node, Tree

ABI: Final = 1
PREDICT: Final = "pf_forest_predict"
META: Final = "pf_forest_meta"
LAYOUTS: Final = ("branch-free", "goto")
MAX_RUNS_WALKED_TOGETHER: Final = 32
"""Forests in more runs than this (see `_runs`) walk one row at a time: the code per row is
written once per run, and gcc's time grows faster than the code."""

MAX_DEPTH: Final = 8
"""Deeper trees keep the goto layout: a complete tree doubles with each level (2^8 leaves is 1 KiB)."""
ROWS: Final = 8
"""Rows walked together (benchmarks/forest_speed.py, Adult, x86_64, in turns): 1 row 0.48 s,
2 0.43 s, 4 0.36 s, 8 0.31 s per 1M rows; 16 looked faster once on a loaded machine (untried on
arm64, where 8 lanes of indices and sums still fit the 31 registers)."""

_TESTS: Final = {
    # mode: (test, test when a missing value takes the true branch). NaN fails every ordered
    # comparison, so a negated opposite test sends it to the true branch in one comparison.
    "BRANCH_LEQ": ("v <= {t}", "!(v > {t})"),
    "BRANCH_LT": ("v < {t}", "!(v >= {t})"),
    "BRANCH_GTE": ("v >= {t}", "!(v < {t})"),
    "BRANCH_GT": ("v > {t}", "!(v <= {t})"),
    "BRANCH_EQ": ("v == {t}", "(v == {t} || v != v)"),
    "BRANCH_NEQ": ("v != {t}", "v != {t}"),
}
# Every ordered split as the branch-free test `v' > t'` (1: the right child): (mode, missing
# value takes the true branch) -> (v' is the column with NaN as +inf, t' is the float32 just
# below t, the true branch is the right child). With NaN kept, `NaN > t'` is 0; as +inf it is 1
# (t' is finite). For a float32 v, `v >= t` is `v > (the float32 below t)`.
_ORDERED: Final = {
    ("BRANCH_LEQ", True): (False, False, False),
    ("BRANCH_LEQ", False): (True, False, False),
    ("BRANCH_LT", True): (False, True, False),
    ("BRANCH_LT", False): (True, True, False),
    ("BRANCH_GTE", True): (True, True, True),
    ("BRANCH_GTE", False): (False, True, True),
    ("BRANCH_GT", True): (True, False, True),
    ("BRANCH_GT", False): (False, False, True),
}


def float_literal(value: float) -> str:
    """A C float literal of exactly this float32 value."""
    if math.isnan(value):
        return '__builtin_nanf("")'
    if math.isinf(value):
        return "__builtin_inff()" if value > 0 else "(-__builtin_inff())"
    return f"{value.hex()}f"


def meta(ensemble: Ensemble, model_sha256: str) -> dict[str, object]:
    return {
        "abi": ABI,
        "model_sha256": model_sha256,
        "width": ensemble.width,
        "columns": ensemble.columns,
        "post": ensemble.post,
    }


@dataclass(frozen=True)
class Complete:
    """A tree as a complete binary tree of `depth` levels: node i's children are 2i+1 (v' <= t')
    and 2i+2 (v' > t'); leaf k (node 2^depth - 1 + k) adds weights[k], one per column in `columns`."""

    depth: int
    nodes: tuple[tuple[int, float], ...]
    """(column of v', where width + c is column c with NaN as +inf; t') per node."""
    columns: tuple[int, ...]
    weights: tuple[tuple[float, ...], ...]


def complete(tree: Tree, width: int) -> Complete | None:
    """The tree in the branch-free layout, or None when it keeps the goto layout."""
    depths: dict[int, int] = {}
    shapes: set[tuple[int, ...]] = set()

    def depth(node_id: int) -> int | None:
        if node_id not in depths:
            node = tree.nodes[node_id]
            if isinstance(node, Leaf):
                shapes.add(tuple(column for column, _ in node.weights))
                depths[node_id] = 0
            elif (node.mode, node.missing_true) not in _ORDERED or not math.isfinite(node.threshold):
                return None
            else:
                below = [depth(node.true), depth(node.false)]
                if None in below:
                    return None
                depths[node_id] = 1 + max(d for d in below if d is not None)
        return depths[node_id]

    levels = depth(0)
    if levels is None or levels > MAX_DEPTH or len(shapes) != 1:
        return None
    nodes: list[tuple[int, float]] = [(0, 0.0)] * (2**levels - 1)
    weights: list[tuple[float, ...]] = [()] * 2**levels

    def place(node_id: int, position: int, level: int) -> None:
        node = tree.nodes[node_id]
        if isinstance(node, Leaf):
            # A leaf above the last level: every leaf below its place is it (the tests on the
            # way, column 0 against 0, lead to the same value either way).
            first = position
            for _ in range(levels - level):
                first = 2 * first + 1
            span = 2 ** (levels - level)
            leaf = tuple(weight for _, weight in node.weights)
            for k in range(first, first + span):
                weights[k - (2**levels - 1)] = leaf
            return
        nan_high, below, swap = _ORDERED[(node.mode, node.missing_true)]
        cut = np.float32(node.threshold)
        if below:
            with np.errstate(over="ignore"):  # below -FLT_MAX is -inf, and `v > -inf` is `v >= -FLT_MAX`
                cut = np.nextafter(cut, np.float32(-np.inf))
        nodes[position] = (node.feature + (width if nan_high else 0), float(cut))
        left, right = (node.false, node.true) if swap else (node.true, node.false)
        place(left, 2 * position + 1, level + 1)
        place(right, 2 * position + 2, level + 1)

    place(0, 0, 0)
    (columns,) = shapes
    return Complete(levels, tuple(nodes), columns, tuple(weights))


def c_source(ensemble: Ensemble, model_sha256: str, layout: str = "branch-free", rows: int = ROWS) -> str:
    """The library's C source. `layout="goto", rows=1` is the layout of every tree before the
    branch-free one (kept for trees it cannot take, and to measure against)."""
    if layout not in LAYOUTS or rows < 1:
        raise ValueError(f"layout {layout!r} with {rows} rows")
    description = json.dumps(meta(ensemble, model_sha256), sort_keys=True, separators=(",", ":"))
    escaped = description.replace("\\", "\\\\").replace('"', '\\"')
    width, sums = ensemble.width, range(ensemble.columns)
    shapes = [complete(tree, width) if layout == "branch-free" else None for tree in ensemble.trees]
    if any(shape is None for shape in shapes) or len(_runs(shapes)) > MAX_RUNS_WALKED_TOGETHER:
        # Each goto tree, and each run of branch-free trees, is written once per row walked
        # together: a multiclass forest (its trees alternate between classes, so every run is
        # one tree) or one of many goto trees made a function gcc took minutes to compile
        # (68 s against 2 s for the trainer's test). Such forests walk one row at a time; their
        # branch-free trees still save the mispredictions.
        rows = 1
    lanes = range(rows)
    one = rows == 1
    lines = [
        f"/* Generated by predictflow from model.onnx sha256 {model_sha256}: do not edit. */",
        "#include <stdint.h>",
        '#define EXPORT __attribute__((visibility("default")))',
        f'static const char META_JSON[] = "{escaped}";',
        f"EXPORT const char *{META}(void) {{ return META_JSON; }}",
    ]
    runs = _runs(shapes)
    if any(shape is not None for shape in shapes):
        lines.append("typedef struct { float t; uint32_t c; } pf_node;")
        for start, end in runs:
            shape = shapes[start]
            if shape is None:
                continue
            nodes = ", ".join(
                "{" + ", ".join(f"{{{float_literal(t)}, {c}}}" for c, t in complete_.nodes) + "}"
                for complete_ in _shapes(shapes, start, end)
            )
            leaves = ", ".join(
                "{" + ", ".join(float_literal(w) for leaf in complete_.weights for w in leaf) + "}"
                for complete_ in _shapes(shapes, start, end)
            )
            count, inner, per = end - start, 2**shape.depth - 1, 2**shape.depth * len(shape.columns)
            lines.append(f"static const pf_node N{start}[{count}][{max(inner, 1)}] = {{{nodes}}};")
            lines.append(f"static const float W{start}[{count}][{max(per, 1)}] = {{{leaves}}};")
    lines.append(f"EXPORT void {PREDICT}(const float *restrict rows, int64_t n, float *restrict out) {{")
    if one:
        lines += ["  for (int64_t r = 0; r < n; ++r) {", f"    const float *x = rows + r * {width};"]
    else:
        # The last block's missing rows repeat row n-1; their sums are not written.
        lines.append(f"  for (int64_t r = 0; r < n; r += {rows}) {{")
        lines += [
            f"    const float *x_{j} = rows + (r + {j} < n ? r + {j} : n - 1) * {width};" for j in lanes
        ]
    if any(shape is None for shape in shapes):
        lines.append("    float v;")
    lines += [f"    float s{c}{_lane(j, one)} = 0.0f;" for j in lanes for c in sums]
    if any(shape is not None for shape in shapes):
        for j in lanes:
            x = f"x{_lane(j, one)}"
            lines.append(f"    float p{_lane(j, one)}[{2 * width}];")
            lines.append(
                f"    for (int c = 0; c < {width}; ++c) {{ float a = {x}[c]; p{_lane(j, one)}[c] = a; "
                f"p{_lane(j, one)}[{width} + c] = a != a ? __builtin_inff() : a; }}"
            )
    for start, end in runs:
        shape = shapes[start]
        if shape is None:
            for number in range(start, end):
                for j in lanes:
                    lines += _goto_tree(
                        ensemble.trees[number], number, _lane(j, one), f"r{j}" if not one else ""
                    )
        else:
            lines += _loop(shape, start, end, rows, one)
    for j in lanes:
        stored = [f"out[(r + {j}) * {ensemble.columns} + {c}] = s{c}{_lane(j, one)};" for c in sums]
        if one:
            lines += [f"    out[r * {ensemble.columns} + {c}] = s{c};" for c in sums]
        elif j == 0:
            lines += [f"    {line}" for line in stored]
        else:
            lines.append(f"    if (r + {j} < n) {{ {' '.join(stored)} }}")
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def _lane(j: int, one: bool) -> str:
    return "" if one else f"_{j}"


def _shapes(shapes: list[Complete | None], start: int, end: int) -> list[Complete]:
    return [shape for shape in shapes[start:end] if shape is not None]


def _runs(shapes: list[Complete | None]) -> list[tuple[int, int]]:
    """Consecutive trees of one layout, depth and leaf columns, as [start, end) in tree order."""
    runs: list[tuple[int, int]] = []

    def key(shape: Complete | None) -> tuple[int, tuple[int, ...]] | None:
        return None if shape is None else (shape.depth, shape.columns)

    for number, shape in enumerate(shapes):
        if runs and key(shapes[runs[-1][0]]) == key(shape):
            runs[-1] = (runs[-1][0], number + 1)
        else:
            runs.append((number, number + 1))
    return runs


def _loop(shape: Complete, start: int, end: int, rows: int, one: bool) -> list[str]:
    lanes = range(rows)
    inner = 2**shape.depth - 1
    lines = [
        f"    /* trees {start}-{end - 1}: branch-free, {shape.depth} levels */",
        f"    for (int t = 0; t < {end - start}; ++t) {{",
        f"      const pf_node *d = N{start}[t];",
        f"      const float *w = W{start}[t];",
        f"      uint32_t {', '.join(f'i{_lane(j, one)} = 0' for j in lanes)};",
    ]
    for _ in range(shape.depth):
        lines.append(
            "      "
            + " ".join(
                f"i{k} = 2 * i{k} + 1 + (p{k}[d[i{k}].c] > d[i{k}].t);"
                for k in (_lane(j, one) for j in lanes)
            )
        )
    per = len(shape.columns)
    for j in lanes:
        k = _lane(j, one)
        adds = " ".join(
            f"s{column}{k} += w[(i{k} - {inner}) * {per} + {place}];"
            for place, column in enumerate(shape.columns)
        )
        if adds:
            lines.append(f"      {adds}")
    lines.append("    }")
    return lines


def _goto_tree(tree: Tree, number: int, lane: str, tag: str) -> list[str]:
    lines = [f"    /* tree {number} */"]
    prefix = f"t{number}{tag}"
    for node_id in _preorder(tree.nodes):
        node = tree.nodes[node_id]
        label = f"{prefix}n{node_id}"
        if isinstance(node, Leaf):
            adds = " ".join(f"s{column}{lane} += {float_literal(weight)};" for column, weight in node.weights)
            lines.append(f"    {label}: {adds} goto {prefix}end;")
        else:
            lines.append(f"    {label}: {_branch(node, prefix, lane)}")
    lines.append(f"    {prefix}end:;")
    return lines


def _branch(node: Node, prefix: str, lane: str) -> str:
    plain, missing_true = _TESTS[node.mode]
    test = (missing_true if node.missing_true else plain).format(t=float_literal(node.threshold))
    return f"v = x{lane}[{node.feature}]; if ({test}) goto {prefix}n{node.true}; goto {prefix}n{node.false};"


def _preorder(nodes: dict[int, Node | Leaf]) -> list[int]:
    """Nodes from the root, each node's true branch right after it, so the likely path falls through."""
    order: list[int] = []
    stack = [0]
    seen: set[int] = set()
    while stack:
        node_id = stack.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        order.append(node_id)
        node = nodes[node_id]
        if isinstance(node, Node):
            stack.extend((node.false, node.true))
    return order
