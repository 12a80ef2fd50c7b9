"""Predictors: the bundle's ONNX model in-process, or an endpoint the bundle's records are sent to.

- `EmbeddedPredictor` (the default) runs the bundle's ONNX model: batched, one thread.
- `SageMakerPredictor` sends batches as CSV to a SageMaker real-time endpoint.
- `AmlPredictor` calls the legacy Amazon ML real-time endpoint once per record, as that API
  requires (the original design).

Every backend maps its failures onto the `PredictorError` family (`exceptions.py`).
"""

from predictflow.predictors.aml import AmlPredictor
from predictflow.predictors.base import Predictor, RowPredictor, Scores, backend_errors
from predictflow.predictors.embedded import EmbeddedPredictor
from predictflow.predictors.exceptions import (
    RETRYABLE_ERRORS,
    PredictorBadRequest,
    PredictorError,
    PredictorModelError,
    PredictorThrottled,
    PredictorTimeout,
    PredictorUnavailable,
)
from predictflow.predictors.sagemaker import SageMakerPredictor, parse_scores

__all__ = (
    "RETRYABLE_ERRORS",
    "AmlPredictor",
    "EmbeddedPredictor",
    "Predictor",
    "PredictorBadRequest",
    "PredictorError",
    "PredictorModelError",
    "PredictorThrottled",
    "PredictorTimeout",
    "PredictorUnavailable",
    "RowPredictor",
    "SageMakerPredictor",
    "Scores",
    "backend_errors",
    "parse_scores",
)
