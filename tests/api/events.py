"""API Gateway REST (v1) proxy events for the API's handler tests, and the records they send."""

from __future__ import annotations

import json
from typing import Any

from tests.fixtures import ARTICLE, SCHEMA

ARTICLE_OBJECT: dict[str, Any] = dict(zip(SCHEMA.feature_names, ARTICLE.split(", "), strict=True))
"""The article's record keyed by field name (values as the CSV line spells them)."""


def proxy_event(
    path: str,
    body: str | bytes | dict[str, Any] | None,
    *,
    method: str = "POST",
    content_type: str | None = "application/json",
    stage: str = "v1",
) -> dict[str, Any]:
    """What API Gateway's Lambda proxy integration sends for one request."""
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, bytes):
        body = body.decode()
    headers = {"Host": "abc123.execute-api.us-east-1.amazonaws.com"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "accountId": "123456789012",
            "apiId": "abc123",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "tests"},
            "requestTimeEpoch": 1_700_000_000_000,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def records_event(records: list[Any], **options: Any) -> dict[str, Any]:
    return proxy_event("/predict", {"records": records}, **options)
