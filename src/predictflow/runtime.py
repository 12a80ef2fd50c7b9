"""What a Lambda container builds once, at cold start, from the validated settings."""

from __future__ import annotations

from typing import Any

import boto3

from predictflow.predictors import AmlPredictor, EmbeddedPredictor, Predictor, SageMakerPredictor
from predictflow.settings import Settings
from predictflow.steps import Stores


def build_stores(settings: Settings) -> Stores:
    return Stores.create(settings, s3=boto3.client("s3"), dynamodb=boto3.client("dynamodb"))


def build_predictor(settings: Settings) -> Predictor:
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
