"""What a stream message holds: one record, or a small batch of them as `POST /predict` takes.

    {"records": [...]}        1-1,000 records, objects keyed by field name or CSV lines: the
                              API's request, read by the API's own `PredictRequest`
    {"age": 39, ...}          one record as a JSON object
    39,State-gov,...          one record as a CSV line in the bundle's field order

A body that is none of these is poison: it can never become records, however often it is
redelivered, so it is dead-lettered with its reason and the queue moves on. A record that is
readable but not valid is not poison: it is dead-lettered by the record checks, as a file's line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from predictflow.api.errors import ApiError
from predictflow.api.models import MAX_BODY_BYTES, PredictRequest

MAX_MESSAGE_BYTES: Final = MAX_BODY_BYTES
"""A message over this (1 MiB, the API's body limit) is poison. SQS itself stops at 256 KiB,
Kinesis at 1 MiB per record."""


class PoisonMessage(ValueError):
    """A message that holds no records; `error_type` names why, as a dead letter carries it."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a stream: where it came from and its body.

    `source` names the queue or stream (it goes into the output keys), `message_id` identifies
    the message across redeliveries (SQS's MessageId; shard + sequence number for Kinesis), and
    `source_arn` is kept on its dead letters as the file path keeps the execution ARN."""

    kind: str
    source: str
    message_id: str
    body: str
    source_arn: str


def records_of(body: str) -> list[Any]:
    """The records a message body holds, in order (record 1 first); `PoisonMessage` if none."""
    if len(body) > MAX_MESSAGE_BYTES // 4 and len(body.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
        raise PoisonMessage("MessageTooLarge", f"the message is over {MAX_MESSAGE_BYTES} bytes")
    text = body.strip()
    if not text:
        raise PoisonMessage("MalformedMessage", "the message is empty: it holds no record")
    if text[0] not in "{[":
        return [text]  # one CSV line; the record checks judge it (a line break is their error)
    try:
        document = json.loads(text)
    except ValueError as error:
        raise PoisonMessage("MalformedMessage", f"the message is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise PoisonMessage(
            "MalformedMessage", 'a message holds one record (an object or a CSV line) or {"records": [...]}'
        )
    if "records" not in document:
        return [document]
    try:
        request = PredictRequest.from_document(document)
    except ApiError as error:
        raise PoisonMessage("MalformedMessage", str(error)) from error
    if request.model_version is not None:
        raise PoisonMessage("MalformedMessage", "a stream message is scored by the active model version")
    return request.records
