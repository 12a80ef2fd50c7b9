"""Route a stream message's records to the file path's outputs, keyed by the message.

A message's accepted records go to one gzip JSON-lines object,
`<predictions prefix>_streams/<source>/<message id>.jsonl.gz`, in the format of a file's
prediction parts (`PredictionStore.write_part`); its rejected records, and a poison message as
line 0, go to the dead-letter table with `source_bucket` = the kind ("sqs"), `source_key` =
`<source>/<message id>`, no version and `line` = the record's position in the message. Both
are written whole under keys the message alone decides, so a redelivered message rewrites the
same object and the same items: a no-op. Dead letters go first, then predictions, as Route
does, so a failure part-way leaves no prediction of a message whose dead letters are missing.

Storage that is busy or down raises `StorageUnavailable`: the caller reports that message as a
batch item failure and the queue redelivers it, alone.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final

from predictflow.api.scoring import Scorer
from predictflow.pipeline.stores import (
    PART_SUFFIX,
    S3_KEY_BYTES,
    DeadLetter,
    DeadLetterStore,
    now,
    storage_errors,
)
from predictflow.predictions import prediction_lines
from predictflow.records import excerpt
from predictflow.sources.messages import Message, PoisonMessage, records_of

STREAMS_FOLDER: Final = "_streams/"


class StreamOutputs:
    """Prediction objects of stream messages, in the output bucket beside the files' ones."""

    def __init__(self, s3: Any, bucket: str, predictions_prefix: str) -> None:
        self._s3 = s3
        self.bucket = bucket
        self._prefix = f"{predictions_prefix}{STREAMS_FOLDER}"

    def key(self, message: Message) -> str:
        """`<prefix>_streams/<source>/<message id>.jsonl.gz`, or the id's SHA-256 in its place
        where that would pass S3's 1,024 bytes (queue names stop at 80 characters, SQS message
        ids are UUIDs, so only an unusual source gets there)."""
        key = f"{self._prefix}{message.source}/{message.message_id}{PART_SUFFIX}"
        if len(key.encode()) <= S3_KEY_BYTES:
            return key
        digest = hashlib.sha256(f"{message.source}/{message.message_id}".encode()).hexdigest()
        return f"{self._prefix}_long-keys/{digest}{PART_SUFFIX}"

    def write(self, message: Message, jsonl: str) -> str:
        """Level 1 and mtime 0 as a file's parts: a redelivery writes the same bytes."""
        key = self.key(message)
        with storage_errors(f"s3://{self.bucket}/{key}"):
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=gzip.compress(jsonl.encode(), compresslevel=1, mtime=0),
                ContentType="application/gzip",
            )
        return key


@dataclass(frozen=True, slots=True)
class Routed:
    """What one message became: counts for logs and metrics, never record content."""

    predicted: int
    rejected: int
    poison: str | None = None
    model_version: str = ""
    key: str | None = None


class StreamRouter:
    def __init__(self, scorer: Scorer, outputs: StreamOutputs, dead_letters: DeadLetterStore) -> None:
        self._scorer = scorer
        self._outputs = outputs
        self._dead_letters = dead_letters

    def route(self, message: Message) -> Routed:
        at = now()
        try:
            records = records_of(message.body)
        except PoisonMessage as poison:
            entry = self._entry(message, 0, excerpt(message.body), poison.error_type, str(poison), at)
            self._dead_letters.put([entry])
            return Routed(0, 1, poison=poison.error_type)
        scored = self._scorer.score(records)
        dead = [
            self._entry(message, line, _raw(records[line - 1]), error_type, error_message, at)
            for line, (error_type, error_message) in sorted(scored.errors.items())
        ]
        if dead:
            self._dead_letters.put(dead)
        key = None
        if scored.parts:
            target = scored.bundle.spec.target
            by_line: dict[int, str] = {}
            for batch, answers in scored.parts:
                texts = prediction_lines(
                    target, scored.model_version, batch.lines, answers, ids=batch.ids, actual=batch.actual
                ).splitlines(keepends=True)
                by_line.update(zip(batch.lines, texts, strict=True))
            key = self._outputs.write(message, "".join(by_line[line] for line in sorted(by_line)))
        return Routed(scored.predicted, scored.rejected, model_version=scored.model_version, key=key)

    @staticmethod
    def _entry(
        message: Message, line: int, raw: str, error_type: str, error_message: str, at: str
    ) -> DeadLetter:
        source_key = f"{message.source}/{message.message_id}"
        return DeadLetter(
            message.kind, source_key, None, line, raw, error_type, error_message, message.source_arn, at
        )


def _raw(record: Any) -> str:
    """The record as the message held it: a CSV line as is, anything else as compact JSON."""
    return excerpt(record if isinstance(record, str) else json.dumps(record, separators=(",", ":")))
