"""What a Lambda container builds once, at cold start, from the validated settings."""

from __future__ import annotations

import threading
from typing import Any

from predictflow.pipeline.settings import Settings
from predictflow.pipeline.steps import Stores
from predictflow.predictors import AmlPredictor, EmbeddedPredictor, Predictor, SageMakerPredictor


class LazyClient:
    """A boto3 client made on first use and kept for the container's life.

    Most invocations of Predict never touch S3 (their batch travels inline), and the first
    client costs ~0.1 s of cold start, so it is made only when a step needs it.
    """

    def __init__(self, service: str) -> None:
        self._service = service
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3

                    self._client = boto3.client(self._service)
        return getattr(self._client, name)


def build_stores(settings: Settings) -> Stores:
    return Stores.create(settings, s3=LazyClient("s3"), dynamodb=LazyClient("dynamodb"))


def build_predictor(settings: Settings) -> Predictor:
    import boto3

    if settings.predictor_backend == "sagemaker":
        return SageMakerPredictor(boto3.client("sagemaker-runtime"), settings.sagemaker_endpoint_name)
    if settings.predictor_backend == "aml":
        return AmlPredictor(
            boto3.client("machinelearning"), settings.aml_model_id, settings.aml_predict_endpoint
        )
    return EmbeddedPredictor()


def log_keys(payload: dict[str, Any]) -> dict[str, str]:
    """The keys every log line of an invocation carries: which execution, which file."""
    source = payload.get("object") or (payload.get("event") or {}).get("detail", {}).get("object", {})
    return {
        "execution_arn": str(payload.get("execution_arn", "")),
        "source_key": str(source.get("key", "")),
    }
