"""The bundle's own ONNX model, run in-process by ONNX Runtime on one thread."""

from __future__ import annotations

import numpy as np

from predictflow.bundle import Bundle, SchemaMismatch
from predictflow.features import FeatureMatrix, check_matrix
from predictflow.predictors.base import Scores


class EmbeddedPredictor:
    """One ONNX Runtime session per bundle, made once per container."""

    def __init__(self, bundle: Bundle) -> None:
        import onnxruntime

        if bundle.model_bytes is None:
            raise SchemaMismatch(f"bundle {bundle.model_version} names an endpoint, not an ONNX model")
        options = onnxruntime.SessionOptions()
        # One thread: Lambda gives a fraction of a core at small memory sizes, and batches are
        # small enough that a thread pool costs more than it saves.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            bundle.model_bytes, options, providers=["CPUExecutionProvider"]
        )
        self._bundle = bundle
        self._input = bundle.spec.model.input
        self._outputs = [bundle.spec.model.output]
        self._width = 1 if bundle.spec.target.task == "regression" else len(bundle.spec.target.labels)

    @property
    def bundle(self) -> Bundle:
        return self._bundle

    @property
    def model_version(self) -> str:
        return self._bundle.model_version

    def scores(self, features: FeatureMatrix, *, validated: bool = False) -> Scores:
        if not validated:
            check_matrix(self._bundle.schema, features)
        if len(features) == 0:
            return np.empty((0, self._width), dtype=np.float64)
        (scores,) = self._session.run(self._outputs, {self._input: features})
        return np.asarray(scores, dtype=np.float64).reshape(len(features), self._width)
