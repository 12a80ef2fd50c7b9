"""The bundle's own model, run in-process on one thread: compiled to native code where the bundle
carries a library for this machine (a tree ensemble, see predictflow.forest), by ONNX Runtime
otherwise. Both give the graph's output; the compiled forest is 2-3x faster and needs neither
ONNX Runtime's import nor its session."""

from __future__ import annotations

import logging
from typing import Any, Final

import numpy as np

from predictflow.bundle import Bundle, SchemaMismatch
from predictflow.features import FeatureMatrix, check_matrix
from predictflow.forest.runtime import CompiledForest, ForestLoadError
from predictflow.predictors.base import Scores
from predictflow.predictors.exceptions import PredictorModelError

COMPILED: Final = "compiled-forest"
ONNXRUNTIME: Final = "onnxruntime"
logger = logging.getLogger(__name__)
_told: set[tuple[str, str]] = set()


class EmbeddedPredictor:
    """One model per bundle, made once per container."""

    def __init__(self, bundle: Bundle, *, compiled: bool = True) -> None:
        if bundle.model_bytes is None:
            raise SchemaMismatch(f"bundle {bundle.model_version} names an endpoint, not an ONNX model")
        self._bundle = bundle
        self._input = bundle.spec.model.input
        self._outputs = [bundle.spec.model.output]
        self._width = 1 if bundle.spec.target.task == "regression" else len(bundle.spec.target.labels)
        self._forest: CompiledForest | None = None
        self._session: Any = None
        self.backend_note = "compiled forest not asked for" if not compiled else bundle.forest_note
        if compiled and bundle.forest_library is not None:
            try:
                self._forest = CompiledForest(bundle.forest_library, bundle.spec.model.sha256)
            except ForestLoadError as error:
                self.backend_note = f"the compiled forest does not load: {error}"
            else:
                if self._forest.outputs != self._width:
                    self._forest = None
                    self.backend_note = "the compiled forest does not answer one score per label"
        if self._forest is None:
            self._session = _session(bundle, self.backend_note)
        key = (bundle.model_version, self.backend)
        if key not in _told:  # once per bundle and backend: a container makes many predictors
            _told.add(key)
            logger.info(
                "model %s scored by %s%s",
                bundle.model_version,
                self.backend,
                f" ({self.backend_note})" if self._forest is None and self.backend_note else "",
            )

    @property
    def bundle(self) -> Bundle:
        return self._bundle

    @property
    def model_version(self) -> str:
        return self._bundle.model_version

    @property
    def backend(self) -> str:
        """`compiled-forest` or `onnxruntime`; `backend_note` says why not the compiled forest."""
        return COMPILED if self._forest is not None else ONNXRUNTIME

    def scores(self, features: FeatureMatrix, *, validated: bool = False) -> Scores:
        if not validated:
            check_matrix(self._bundle.schema, features)
        if len(features) == 0:
            return np.empty((0, self._width), dtype=np.float64)
        if self._forest is not None:
            return self._forest.predict(features)
        (scores,) = self._session.run(self._outputs, {self._input: features})
        return np.asarray(scores, dtype=np.float64).reshape(len(features), self._width)


def _session(bundle: Bundle, why: str) -> Any:
    try:
        import onnxruntime
    except ModuleNotFoundError as error:
        if error.name != "onnxruntime":
            raise  # ONNX Runtime is there but broken: its own traceback says how
        # A stack deployed with OnnxRuntime=Excluded: the functions have no ONNX Runtime layer.
        # Not retryable: the same bundle fails the same way until the stack or the bundle changes.
        raise PredictorModelError(
            f"model {bundle.model_version} needs ONNX Runtime ({why}), which this deployment "
            "leaves out: deploy the stack with OnnxRuntime=Included, or activate a bundle with a "
            "compiled forest for this machine (`predictflow model train` makes one)"
        ) from error

    options = onnxruntime.SessionOptions()
    # One thread: Lambda gives a fraction of a core at small memory sizes, and batches are
    # small enough that a thread pool costs more than it saves.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(bundle.model_bytes, options, providers=["CPUExecutionProvider"])
