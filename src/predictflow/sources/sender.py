"""Put a record file's records on a stream queue, a small batch per message.

The records go as the API takes them, `{"records": [...]}` of CSV lines or JSON objects, so a
message is scored exactly as a `POST /predict` of the same records. A CSV header row (detected
as the file path detects it, against the packaged bundle) is dropped: CSV lines must follow the
bundle's field order, as /predict's do. Messages go ten to a SendMessageBatch, within SQS's
256 KiB per request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from predictflow.bundle import default_bundle
from predictflow.records import detect_layout, is_blank

SQS_BATCH_MESSAGES: Final = 10
SQS_BATCH_BYTES: Final = 256 * 1024


class SendError(RuntimeError):
    """The queue refused messages, or a message would not fit."""


@dataclass(slots=True)
class Sent:
    records: int = 0
    messages: int = 0
    requests: int = 0
    message_ids: list[tuple[str, int]] = field(default_factory=list)
    """Per message sent, in order: its MessageId and how many records it holds."""

    def add(self, batch: list[tuple[str, int]], ids: list[str]) -> None:
        """One request's messages, sent, with the ids the service gave them."""
        self.message_ids.extend(
            (message_id, count) for message_id, (_, count) in zip(ids, batch, strict=True)
        )
        self.records += sum(count for _, count in batch)
        self.messages += len(batch)
        self.requests += 1


def file_records(path: Path) -> Iterator[Any]:
    """A record file's records: JSON Lines as objects, CSV as its lines without the header."""
    with path.open(encoding="utf-8-sig") as lines:
        first = True
        for text in lines:
            text = text.rstrip("\r\n")
            if is_blank(text):
                continue
            if text.lstrip().startswith("{"):
                try:
                    yield json.loads(text)
                    first = False
                    continue
                except ValueError:
                    pass  # sent as it is; its dead letter will say why
            if first and detect_layout(text, default_bundle().schema).header is not None:
                first = False
                continue
            first = False
            yield text


def message_bodies(records: Iterable[Any], per_message: int) -> Iterator[tuple[str, int]]:
    """(body, record count) per message of up to `per_message` records."""
    batch: list[Any] = []
    for record in records:
        batch.append(record)
        if len(batch) == per_message:
            yield json.dumps({"records": batch}, separators=(",", ":")), len(batch)
            batch = []
    if batch:
        yield json.dumps({"records": batch}, separators=(",", ":")), len(batch)


Message = tuple[str, int]
"""A message's body and how many records it holds."""


def requests(
    messages: Iterable[Message],
    *,
    most: int,
    request_bytes: int,
    message_bytes: int,
    overhead: int,
    limit: str,
) -> Iterator[list[Message]]:
    """Messages grouped into requests of at most `most` messages and `request_bytes` bytes (each
    message counting `overhead` more); a message over `message_bytes` is refused, naming `limit`."""
    batch: list[Message] = []
    size = 0
    for body, count in messages:
        length = len(body.encode())
        if length > message_bytes:
            raise SendError(
                f"a message of {count} records is {length} bytes, over {limit}: "
                "send fewer records per message"
            )
        length += overhead
        if batch and (len(batch) == most or size + length > request_bytes):
            yield batch
            batch, size = [], 0
        batch.append((body, count))
        size += length
    if batch:
        yield batch


def send_to_sqs(sqs: Any, queue_url: str, records: Iterable[Any], per_message: int = 100) -> Sent:
    sent = Sent()
    batches = requests(
        message_bodies(records, per_message),
        most=SQS_BATCH_MESSAGES,
        request_bytes=SQS_BATCH_BYTES,
        message_bytes=SQS_BATCH_BYTES,
        overhead=0,
        limit="SQS's 256 KiB",
    )
    for batch in batches:
        answer = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "MessageBody": body} for n, (body, _) in enumerate(batch)],
        )
        failed = answer.get("Failed") or []
        if failed:
            reason = failed[0].get("Message", failed[0])
            raise SendError(f"the queue refused {len(failed)} message(s): {reason}")
        ids = {entry["Id"]: entry["MessageId"] for entry in answer.get("Successful") or []}
        sent.add(batch, [ids[str(n)] for n in range(len(batch))])
    return sent


KINESIS_BATCH_RECORDS: Final = 500
KINESIS_BATCH_BYTES: Final = 5 * 1024 * 1024
KINESIS_RECORD_BYTES: Final = 1024 * 1024
PARTITION_KEY_BYTES: Final = 10
"""At most: a partition key is the message's number."""


def send_to_kinesis(kinesis: Any, stream: str, records: Iterable[Any], per_message: int = 100) -> Sent:
    """The same messages as Kinesis records, 500 to a PutRecords; each message's partition key
    is its number, so messages spread over the shards. `message_ids` hold `<shard>/<sequence>`."""
    sent = Sent()
    batches = requests(
        message_bodies(records, per_message),
        most=KINESIS_BATCH_RECORDS,
        request_bytes=KINESIS_BATCH_BYTES,
        message_bytes=KINESIS_RECORD_BYTES,
        overhead=PARTITION_KEY_BYTES,  # the 5 MiB of a request count partition keys too
        limit="Kinesis's 1 MiB",
    )
    for batch in batches:
        first = sent.messages + 1
        answer = kinesis.put_records(
            StreamName=stream,
            Records=[
                {"Data": body.encode(), "PartitionKey": str(first + n)} for n, (body, _) in enumerate(batch)
            ],
        )
        if answer.get("FailedRecordCount"):
            failed = next(r for r in answer["Records"] if r.get("ErrorCode"))
            raise SendError(
                f"the stream refused {answer['FailedRecordCount']} record(s): {failed.get('ErrorMessage')}"
            )
        sent.add(batch, [f"{r['ShardId']}/{r['SequenceNumber']}" for r in answer["Records"]])
    return sent
