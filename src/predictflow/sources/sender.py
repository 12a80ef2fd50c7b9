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


def send_to_sqs(sqs: Any, queue_url: str, records: Iterable[Any], per_message: int = 100) -> Sent:
    sent = Sent()
    entries: list[tuple[str, int]] = []
    size = 0

    def flush() -> None:
        nonlocal entries, size
        if not entries:
            return
        answer = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "MessageBody": body} for n, (body, _) in enumerate(entries)],
        )
        failed = answer.get("Failed") or []
        if failed:
            reason = failed[0].get("Message", failed[0])
            raise SendError(f"the queue refused {len(failed)} message(s): {reason}")
        ids = {entry["Id"]: entry["MessageId"] for entry in answer.get("Successful") or []}
        sent.message_ids.extend((ids[str(n)], count) for n, (_, count) in enumerate(entries))
        sent.records += sum(count for _, count in entries)
        sent.messages += len(entries)
        sent.requests += 1
        entries, size = [], 0

    for body, count in message_bodies(records, per_message):
        length = len(body.encode())
        if length > SQS_BATCH_BYTES:
            raise SendError(
                f"a message of {count} records is {length} bytes, over SQS's 256 KiB: "
                "send fewer records per message"
            )
        if len(entries) == SQS_BATCH_MESSAGES or size + length > SQS_BATCH_BYTES:
            flush()
        entries.append((body, count))
        size += length
    flush()
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
    entries: list[tuple[str, int]] = []
    size = 0

    def flush() -> None:
        nonlocal entries, size
        if not entries:
            return
        first = sent.messages + 1
        answer = kinesis.put_records(
            StreamName=stream,
            Records=[
                {"Data": body.encode(), "PartitionKey": str(first + n)} for n, (body, _) in enumerate(entries)
            ],
        )
        if answer.get("FailedRecordCount"):
            failed = next(r for r in answer["Records"] if r.get("ErrorCode"))
            raise SendError(
                f"the stream refused {answer['FailedRecordCount']} record(s): {failed.get('ErrorMessage')}"
            )
        sent.message_ids.extend(
            (f"{r['ShardId']}/{r['SequenceNumber']}", count)
            for r, (_, count) in zip(answer["Records"], entries, strict=True)
        )
        sent.records += sum(count for _, count in entries)
        sent.messages += len(entries)
        sent.requests += 1
        entries, size = [], 0

    for body, count in message_bodies(records, per_message):
        length = len(body.encode())
        if length > KINESIS_RECORD_BYTES:
            raise SendError(
                f"a message of {count} records is {length} bytes, over Kinesis's 1 MiB: "
                "send fewer records per message"
            )
        length += PARTITION_KEY_BYTES  # the 5 MiB of a request count partition keys too
        if len(entries) == KINESIS_BATCH_RECORDS or size + length > KINESIS_BATCH_BYTES:
            flush()
        entries.append((body, count))
        size += length
    flush()
    return sent
