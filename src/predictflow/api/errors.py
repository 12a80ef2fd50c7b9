"""What the API answers when it cannot score a request: the one place that maps errors to HTTP.

Every error body is one line of JSON, `{"error_type": ..., "message": ...}`, whoever raised it:
this module for the handler, and the gateway responses in template.yaml (`x-amazon-apigateway-
gateway-responses`) for what API Gateway refuses before the handler runs (missing or bad
signature 403, bad API key 403, throttled or over quota 429, body too large 413, body against
the gateway's model 400).

A record that is not valid is not an error of the request: it gets its own `error_type` and
`error_message` in the results, and the other records are scored (see `scoring.py`).
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

from predictflow.bundle import BundleError
from predictflow.errors import StorageUnavailable
from predictflow.predictors.exceptions import (
    PredictorBadRequest,
    PredictorError,
    PredictorModelError,
)

LOG = logging.getLogger("predictflow.api")
JSON = "application/json"


class ApiError(Exception):
    """A request the API refuses, with the status and `error_type` it answers."""

    status: ClassVar[int] = 400
    error_type: ClassVar[str] = "BadRequest"


class BadRequest(ApiError):
    """The body is JSON but not a request this route takes."""


class MalformedJson(ApiError):
    error_type = "MalformedJson"


class TooManyRecords(ApiError):
    error_type = "TooManyRecords"


class PayloadTooLarge(ApiError):
    status = 413
    error_type = "PayloadTooLarge"


class UnsupportedMediaType(ApiError):
    status = 415
    error_type = "UnsupportedMediaType"


class UnknownModel(ApiError):
    status = 404
    error_type = "UnknownModel"


class InvalidRecord(ApiError):
    """Amazon ML's Predict answers an invalid record with a 400; /aml/predict does the same,
    with the record's own `error_type` (as its dead letter would carry it) in the body."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.record_error_type = error_type


def error_body(error_type: str, message: str, **extra: Any) -> str:
    return json.dumps({"error_type": error_type, "message": message} | extra, separators=(",", ":"))


def status_of(error: Exception) -> tuple[int, str, dict[str, str]]:
    """Status, body and extra headers for any exception a route raised.

    Domain errors from the rest of predictflow map here and nowhere else: storage or a model
    backend throttled or down is a 503 the client may retry (with Retry-After), a backend that
    refused or answered nonsense is a 502, and anything else is a 500 whose details go to the
    log only (they could hold a stack trace, never record content: routes log counts).
    """
    if isinstance(error, InvalidRecord):
        return (
            error.status,
            error_body("InvalidRecord", str(error), record_error_type=error.record_error_type),
            {},
        )
    if isinstance(error, ApiError):
        return error.status, error_body(error.error_type, str(error)), {}
    if isinstance(error, StorageUnavailable) or (isinstance(error, PredictorError) and error.retryable):
        return (
            503,
            error_body("ServiceUnavailable", "the model store or backend is busy; retry"),
            {"Retry-After": "1"},
        )
    if isinstance(error, (PredictorBadRequest, PredictorModelError)):
        return 502, error_body("ModelBackendError", f"the model backend failed: {type(error).__name__}"), {}
    if isinstance(error, BundleError):
        LOG.exception("the active bundle cannot be loaded")
        return 500, error_body("ModelUnavailable", "the active model bundle cannot be loaded"), {}
    LOG.exception("unexpected error")
    return 500, error_body("InternalError", "internal error"), {}
