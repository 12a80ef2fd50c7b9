"""What a Lambda container builds once, at cold start, from the validated settings."""

from __future__ import annotations

import functools
import threading
from typing import Any

from predictflow.bundle import Bundle
from predictflow.bundle.store import ModelStore
from predictflow.pipeline.bundles import Bundles
from predictflow.pipeline.settings import Settings
from predictflow.pipeline.stores import (
    DeadLetterStore,
    Ledger,
    PredictionStore,
    SourceReader,
    Stores,
    WorkStore,
)
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

                    trace_aws_calls()
                    self._client = boto3.client(self._service)
        return getattr(self._client, name)


@functools.cache
def trace_aws_calls() -> None:
    """X-Ray subsegments for the container's AWS calls, patched in when its first client is
    made rather than at import: the patch imports botocore, about a tenth of a second of cold
    start that a Predict container scoring inline batches never needs. (Powertools' Tracer
    skips the patch where tracing is disabled, as outside Lambda.)"""
    from aws_lambda_powertools import Tracer

    Tracer(auto_patch=False).patch(["botocore"])


def build_stores(settings: Settings) -> Stores:
    s3, dynamodb = LazyClient("s3"), LazyClient("dynamodb")
    return Stores(
        source=SourceReader(s3),
        work=WorkStore(s3, settings.output_bucket, settings.work_prefix),
        predictions=PredictionStore(s3, settings.output_bucket, settings.predictions_prefix),
        dead_letters=DeadLetterStore(dynamodb, settings.dead_letter_table),
        ledger=Ledger(dynamodb, settings.ledger_table),
    )


def build_bundles(settings: Settings, *, scoring: bool = False) -> Bundles:
    """The bundle cache; with `scoring`, it also makes the configured backend's predictor."""
    store = ModelStore(LazyClient("s3"), settings.model_bucket) if settings.model_bucket else None
    return Bundles(
        store,
        (lambda bundle: build_predictor(settings, bundle)) if scoring else None,
        pointer_seconds=settings.active_model_cache_seconds,
    )


def build_predictor(settings: Settings, bundle: Bundle) -> Predictor:
    # boto3 is imported only for an endpoint backend: the embedded one needs no client, and
    # the import is a tenth of a second of cold start.
    model = bundle.spec.model
    if settings.predictor_backend == "sagemaker" or model.kind == "sagemaker":
        import boto3

        endpoint = model.endpoint if model.kind == "sagemaker" else settings.sagemaker_endpoint_name
        trace_aws_calls()
        return SageMakerPredictor(bundle, boto3.client("sagemaker-runtime"), endpoint)
    if settings.predictor_backend == "aml" or model.kind == "aml":
        import boto3

        model_id = model.model_id if model.kind == "aml" else settings.aml_model_id
        endpoint = model.endpoint if model.kind == "aml" else settings.aml_predict_endpoint
        trace_aws_calls()
        return AmlPredictor(bundle, boto3.client("machinelearning"), model_id, endpoint)
    return EmbeddedPredictor(bundle)


def log_keys(payload: dict[str, Any]) -> dict[str, str]:
    """The keys every log line of an invocation carries: which execution, which file, which model."""
    source = payload.get("object") or (payload.get("event") or {}).get("detail", {}).get("object", {})
    # EventBridge's "Execution Status Change" event names its execution in its detail.
    execution = payload.get("execution_arn") or (payload.get("detail") or {}).get("executionArn", "")
    return {
        "execution_arn": str(execution),
        "source_key": str(source.get("key", "")),
        "model_version": str(payload.get("model_version") or ""),
    }
