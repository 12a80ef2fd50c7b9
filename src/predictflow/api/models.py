"""The API's requests, checked in the handler whatever the gateway checked before.

The gateway validates bodies against the same limits (template.yaml's models), but it does not
run locally, a direct Lambda invoke skips it, and it cannot tell a body that is not JSON from
one that breaks the model in words a user can act on; so the handler checks everything again,
here. No pydantic: its import costs more cold start than these few checks take to write.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from predictflow.api.errors import (
    BadRequest,
    MalformedJson,
    PayloadTooLarge,
    TooManyRecords,
    UnsupportedMediaType,
)

MAX_RECORDS: Final = 1000
MAX_BODY_BYTES: Final = 1024 * 1024
"""1,000 census records as JSON objects are about 400 KB; a body above 1 MiB is refused with a
413 before it is parsed. (API Gateway's own limit is 10 MB, Lambda's 6 MB.)"""

VERSION_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Amazon ML's shapes, as botocore's `machinelearning` service model states them.
AML_MODEL_ID: Final = re.compile(r"[a-zA-Z0-9_.-]{1,64}")
AML_MAX_ENDPOINT: Final = 2048


def read_json(content_type: str | None, body: str | None) -> Any:
    """The request's JSON document. Raises 415 for a type that is not JSON (no type at all is
    taken as JSON, as most clients send it), 413 for a body over `MAX_BODY_BYTES`, 400 for a
    body that is not JSON."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(f"the body must be JSON (Content-Type: application/json), not {media!r}")
    text = body or ""
    if len(text) > MAX_BODY_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is over {MAX_BODY_BYTES} bytes; send at most {MAX_RECORDS} records")
    if not text.strip():
        raise MalformedJson('the body is empty; send {"records": [...]}')
    try:
        return json.loads(text)
    except ValueError as error:
        raise MalformedJson(f"the body is not valid JSON: {error}") from error


@dataclass(frozen=True, slots=True)
class PredictRequest:
    """`POST /predict`: 1-1,000 records, each an object keyed by field name or one CSV line in
    the bundle's field order; optionally the model version to use (default: the active one)."""

    records: list[Any]
    model_version: str | None = None

    @classmethod
    def from_document(cls, document: Any) -> PredictRequest:
        if not isinstance(document, dict):
            raise BadRequest('the body must be a JSON object: {"records": [...]}')
        unknown = sorted(set(document) - {"records", "model_version"})
        if unknown:
            raise BadRequest(
                f"unknown key(s) {', '.join(map(repr, unknown))}; a request has records, model_version"
            )
        records = document.get("records")
        if not isinstance(records, list):
            raise BadRequest('"records" must be a list of records (objects or CSV lines)')
        if not records:
            raise BadRequest('"records" is empty; send 1 to 1000 records')
        if len(records) > MAX_RECORDS:
            raise TooManyRecords(f"{len(records)} records; a request holds at most {MAX_RECORDS}")
        return cls(records, _version(document.get("model_version")))


@dataclass(frozen=True, slots=True)
class AmlPredictRequest:
    """`POST /aml/predict`: Amazon ML's `Predict` request, `{MLModelId, Record, PredictEndpoint}`.

    `MLModelId` picks the model: a deployed version, or any other id (the id the caller used
    with Amazon ML) for the active version; `PredictEndpoint` is required, as Amazon ML required
    it, and otherwise ignored."""

    model_id: str
    record: dict[str, str]
    endpoint: str

    @classmethod
    def from_document(cls, document: Any) -> AmlPredictRequest:
        if not isinstance(document, dict):
            raise BadRequest("the body must be a JSON object: {MLModelId, Record, PredictEndpoint}")
        missing = [name for name in ("MLModelId", "Record", "PredictEndpoint") if name not in document]
        if missing:
            raise BadRequest(f"missing required key(s): {', '.join(missing)}")
        unknown = sorted(set(document) - {"MLModelId", "Record", "PredictEndpoint"})
        if unknown:
            raise BadRequest(f"unknown key(s) {', '.join(map(repr, unknown))}")
        model_id, record, endpoint = document["MLModelId"], document["Record"], document["PredictEndpoint"]
        if not isinstance(model_id, str) or not AML_MODEL_ID.fullmatch(model_id):
            raise BadRequest("MLModelId must be 1-64 characters of letters, digits, '_', '.' or '-'")
        if not isinstance(record, dict) or not all(
            isinstance(name, str) and isinstance(value, str) for name, value in record.items()
        ):
            raise BadRequest("Record must map field names to strings, as in Amazon ML")
        if not isinstance(endpoint, str) or len(endpoint) > AML_MAX_ENDPOINT:
            raise BadRequest("PredictEndpoint must be a string of at most 2048 characters")
        return cls(model_id, record, endpoint)


def _version(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not VERSION_PATTERN.fullmatch(value):
        raise BadRequest('"model_version" must be a deployed version, e.g. "adult-income-3769ee4624e1"')
    return value
