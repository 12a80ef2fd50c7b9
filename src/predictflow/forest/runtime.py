"""A compiled forest at run time: the library loaded with ctypes, its sums finished in numpy.

Only the standard library and numpy: this is what the Lambda imports instead of ONNX Runtime.
The library says what it was compiled from (`pf_forest_meta`): the model's sha256 and how ORT
turns the sums into the graph's output, which `finish` repeats in float32, as ORT computes.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import sys
import tempfile
from typing import Any, Final

import numpy as np
import numpy.typing as npt

ABI: Final = 1
Floats32 = npt.NDArray[np.float32]


def platform_key() -> str:
    """The machine kind a library is built for, as the bundle names it: linux-x86_64, linux-aarch64."""
    return f"{sys.platform}-{platform.machine().lower()}"


class ForestLoadError(RuntimeError):
    """The library cannot be loaded or does not describe the model it is bundled with."""


class CompiledForest:
    """Scores float32 rows [n, width] as the bundle's ONNX graph would: (n, outputs) float64."""

    def __init__(self, library: bytes, model_sha256: str) -> None:
        self._lib = _load(library)
        self._lib.pf_forest_meta.restype = ctypes.c_char_p
        self._lib.pf_forest_predict.restype = None
        self._lib.pf_forest_predict.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
        described: dict[str, Any] = json.loads(self._lib.pf_forest_meta())
        if described.get("abi") != ABI:
            raise ForestLoadError(f"the library's ABI is {described.get('abi')!r}, not {ABI}")
        if described.get("model_sha256") != model_sha256:
            raise ForestLoadError("the library was compiled from another model")
        self.width = int(described["width"])
        self.columns = int(described["columns"])
        post = described["post"]
        self._transform = str(post["transform"])
        self._average = np.float32(post["n_trees"]) if post["aggregate"] == "AVERAGE" else None
        self._base = np.asarray(post["base"], dtype=np.float32)
        self._scale = np.float32(post["scale"])
        self.outputs = int(post["outputs"])

    def raw(self, rows: Floats32) -> Floats32:
        """The per-row float32 sums over the trees (before base values and transform)."""
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.width:
            raise ValueError(f"rows must be float32 [n, {self.width}], got {rows.shape}")
        out = np.empty((rows.shape[0], self.columns), dtype=np.float32)
        self._lib.pf_forest_predict(rows.ctypes.data, rows.shape[0], out.ctypes.data)
        return out

    def predict(self, rows: Floats32) -> npt.NDArray[np.float64]:
        return self.finish(self.raw(rows))

    def finish(self, raw: Floats32) -> npt.NDArray[np.float64]:
        """ORT's finishing steps, in its order and precision (float32)."""
        scores = raw / self._average if self._average is not None else raw
        scores = scores + self._base
        if self._transform == "BINARY_LOGISTIC":
            margin = scores[:, 0]
            scores = np.stack([_logistic(-margin), _logistic(margin)], axis=1)
        elif self._transform == "SOFTMAX":
            exp = np.exp(scores - scores.max(axis=1, keepdims=True))
            total = np.zeros(len(exp), dtype=np.float32)
            for column in range(exp.shape[1]):  # ORT adds the columns one by one, in float32
                total += exp[:, column]
            scores = exp / total[:, None]
        if self._scale != 1:
            scores = scores * self._scale
        return scores.astype(np.float64)


def _logistic(value: Floats32) -> Floats32:
    """ORT's ComputeLogistic: 1 / (1 + exp(-|v|)), mirrored for v < 0, in float32."""
    one = np.float32(1)
    positive = one / (one + np.exp(-np.abs(value)))
    return np.where(value < 0, one - positive, positive).astype(np.float32)


def _load(library: bytes) -> ctypes.CDLL:
    """dlopen the bytes already checked against the bundle's sha256, from a file in a folder only
    this process's user can write, under a name never used before: the dynamic loader returns an
    already-loaded library for a path it has seen (so /proc/self/fd/N of a reused descriptor
    would give back an earlier bundle's forest). The file is removed once loaded."""
    with tempfile.TemporaryDirectory(prefix="predictflow-forest-") as folder:
        path = os.path.join(folder, "forest.so")
        with open(path, "wb") as file:
            file.write(library)
        try:
            return ctypes.CDLL(path)
        except OSError as error:
            raise ForestLoadError(f"the library does not load here: {error}") from error
