"""Reading what the pipeline wrote: manifests, predictions and dead-letter entries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError


def object_folder(prefix: str, key: str, version_or_etag: str) -> str:
    return f"{prefix}{key}/{version_or_etag}/"


def read_manifest(s3: Any, bucket: str, folder: str) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=f"{folder}_manifest.json")["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return dict(json.loads(body))


def read_predictions(s3: Any, bucket: str, folder: str) -> Iterator[dict[str, Any]]:
    """Every prediction line under `folder`, in chunk order."""
    paginator = s3.get_paginator("list_objects_v2")
    keys = sorted(
        item["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=folder)
        for item in page.get("Contents", [])
        if item["Key"].endswith(".jsonl")
    )
    for key in keys:
        for line in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_lines():
            if line:
                yield json.loads(line)


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, typed in item.items():
        ((kind, value),) = typed.items()
        out[name] = int(value) if kind == "N" else value
    return out


def read_dead_letters(
    dynamodb: Any, table: str, *, source_key: str | None = None, error_type: str | None = None
) -> list[dict[str, Any]]:
    """Dead-letter entries, oldest source first, in line order."""
    filters, values = [], {}
    if source_key is not None:
        filters.append("source_key = :source_key")
        values[":source_key"] = {"S": source_key}
    if error_type is not None:
        filters.append("error_type = :error_type")
        values[":error_type"] = {"S": error_type}
    arguments: dict[str, Any] = {"TableName": table}
    if filters:
        arguments["FilterExpression"] = " AND ".join(filters)
        arguments["ExpressionAttributeValues"] = values
    paginator = dynamodb.get_paginator("scan")
    entries = [_plain(item) for page in paginator.paginate(**arguments) for item in page.get("Items", [])]
    entries.sort(key=lambda entry: (entry["pk"], entry["sk"]))
    return entries
