"""Deliver SQS messages and Kinesis records to the stack's functions as Lambda's event source
mappings do (Kinesis: `KinesisPoller`, below).

moto records an event source mapping but runs it only through Docker, so the local stack
polls instead, a thread per mapping: ReceiveMessage of up to the mapping's batch size,
waiting up to its batching window to fill the batch, then the real handler through the stack's
invoker with the event AWS sends (`Records` of `aws:sqs` messages). With
ReportBatchItemFailures, the messages the handler names in `batchItemFailures` stay on the
queue and every other one is deleted; a handler that raises leaves the whole batch. What stays
reappears after the queue's visibility timeout (times `retry_wait_scale`, so tests need not
wait six minutes), and the queue's redrive policy moves it to its dead-letter queue after
maxReceiveCount deliveries, as on AWS.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

LOG = logging.getLogger("predictflow.local")
SQS_MAX_RECEIVE: Final = 10
SQS_MAX_WAIT: Final = 20


@dataclass(frozen=True, slots=True)
class StreamMapping:
    """An AWS::Lambda::EventSourceMapping of the deployed template."""

    logical_id: str
    function_name: str
    source_arn: str
    batch_size: int
    batching_window: int
    report_batch_item_failures: bool
    enabled: bool = True
    starting_position: str = "LATEST"
    maximum_retry_attempts: int = -1
    """Kinesis: retries of a failing batch before it is given up (-1: until the record expires)."""
    on_failure: str = ""
    """Kinesis: the SQS queue ARN that names a batch given up."""

    @property
    def queue_name(self) -> str:
        return self.source_arn.rsplit(":", 1)[-1]


def sqs_event(messages: list[dict[str, Any]], source_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS poller sends, built from ReceiveMessage's answer."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes") or {}),
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value["DataType"],
                    }
                    for name, value in (message.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": source_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


class SqsPoller:
    """One mapping's poller thread."""

    def __init__(
        self,
        mapping: StreamMapping,
        sqs: Any,
        invoke: Callable[[str, Any], tuple[bytes, bool]],
        region: str,
        retry_wait_scale: float = 1.0,
    ) -> None:
        self.mapping = mapping
        self._sqs = sqs
        self._invoke = invoke
        self._region = region
        self._retry_wait_scale = retry_wait_scale
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stream-{mapping.logical_id}", daemon=True)
        self.queue_url = ""
        self._visibility = 30
        self.deliveries: list[tuple[list[str], list[str]]] = []
        """Per invocation: the message ids delivered and those that stayed on the queue."""
        self.errors: list[str] = []
        self.busy = False

    def start(self) -> SqsPoller:
        self.queue_url = str(self._sqs.get_queue_url(QueueName=self.mapping.queue_name)["QueueUrl"])
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout"]
        )
        self._visibility = int(attributes["Attributes"]["VisibilityTimeout"])
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._receive()
                if batch:
                    self._deliver(batch)
            except Exception as error:  # noqa: BLE001 - a poller outlives any one failure, as AWS's does
                if self._stop.is_set():
                    return
                LOG.warning("stream poller %s: %s", self.mapping.logical_id, error)
                self.errors.append(f"{type(error).__name__}: {error}")
                self._stop.wait(0.5)
            finally:
                self.busy = False

    def drained(self) -> bool:
        """Nothing on the queue, in flight or being delivered."""
        if self.busy:
            return False
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return not self.busy and all(int(value) == 0 for value in attributes.values())

    def _receive(self) -> list[dict[str, Any]]:
        """Up to batch size messages, waiting at most the batching window for more than the
        first (and, for an empty queue, long-polling a second at a time so `stop` is prompt)."""
        batch: list[dict[str, Any]] = []
        deadline: float | None = None
        while len(batch) < self.mapping.batch_size and not self._stop.is_set():
            wait = 1 if deadline is None else max(0, min(SQS_MAX_WAIT, round(deadline - time.monotonic())))
            answer = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(SQS_MAX_RECEIVE, self.mapping.batch_size - len(batch)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = answer.get("Messages", [])
            if messages:
                self.busy = True
            batch.extend(messages)
            if deadline is None and batch:
                deadline = time.monotonic() + self.mapping.batching_window
            if deadline is not None and (not messages and time.monotonic() >= deadline - 0.05):
                break
            if deadline is not None and self.mapping.batching_window == 0:
                break
            if deadline is None and not messages:
                return []
        return batch

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        event = sqs_event(batch, self.mapping.source_arn, self._region)
        payload, errored = self._invoke(self.mapping.function_name, event)
        failed: set[str] = set()
        if errored:
            failed = {message["MessageId"] for message in batch}
        elif self.mapping.report_batch_item_failures:
            answer = json.loads(payload or b"null") or {}
            failures = answer.get("batchItemFailures") if isinstance(answer, dict) else None
            known = {message["MessageId"] for message in batch}
            for item in failures or []:
                identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
                if not isinstance(identifier, str) or identifier not in known:
                    # Lambda treats an unknown or empty identifier as the whole batch failing.
                    failed = known
                    break
                failed.add(identifier)
        self.deliveries.append(([m["MessageId"] for m in batch], sorted(failed)))
        done = [m for m in batch if m["MessageId"] not in failed]
        for start in range(0, len(done), SQS_MAX_RECEIVE):
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(done[start : start + SQS_MAX_RECEIVE])
                ],
            )
        visibility = int(self._visibility * self._retry_wait_scale)
        if failed and visibility != self._visibility:
            for message in batch:
                if message["MessageId"] in failed:
                    self._sqs.change_message_visibility(
                        QueueUrl=self.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=visibility,
                    )


def kinesis_event(records: list[dict[str, Any]], shard: str, source_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's Kinesis poller sends, built from GetRecords' answer."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": record["PartitionKey"],
                    "sequenceNumber": record["SequenceNumber"],
                    "data": base64.b64encode(record["Data"]).decode(),
                    "approximateArrivalTimestamp": record["ApproximateArrivalTimestamp"].timestamp(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard}:{record['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/local",
                "awsRegion": region,
                "eventSourceARN": source_arn,
            }
            for record in records
        ]
    }


class KinesisPoller:
    """One mapping's poller over a stream's shards, in a thread: GetRecords of up to the batch
    size per shard, the handler, and the shard's checkpoint moved past what succeeded. With
    ReportBatchItemFailures, a failure names a sequence number: the shard is read again from
    it (records before it are done), as Lambda does; a batch that fails `MaximumRetryAttempts`
    times more is named on the on-failure queue and skipped, and the shard moves on."""

    def __init__(
        self,
        mapping: StreamMapping,
        kinesis: Any,
        sqs: Any,
        invoke: Callable[[str, Any], tuple[bytes, bool]],
        region: str,
    ) -> None:
        self.mapping = mapping
        self._kinesis = kinesis
        self._sqs = sqs
        self._invoke = invoke
        self._region = region
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stream-{mapping.logical_id}", daemon=True)
        self.stream = mapping.source_arn.rsplit("/", 1)[-1]
        self._iterators: dict[str, str] = {}
        self.deliveries: list[tuple[list[str], list[str]]] = []
        self.errors: list[str] = []
        self.busy = False

    def start(self) -> KinesisPoller:
        shards = self._kinesis.list_shards(StreamName=self.stream)["Shards"]
        for shard in shards:
            self._iterators[shard["ShardId"]] = self._kinesis.get_shard_iterator(
                StreamName=self.stream,
                ShardId=shard["ShardId"],
                ShardIteratorType=self.mapping.starting_position,
            )["ShardIterator"]
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def drained(self) -> bool:
        """Nothing left to read at any shard's checkpoint, and no delivery running."""
        if self.busy:
            return False
        for iterator in list(self._iterators.values()):
            if self._kinesis.get_records(ShardIterator=iterator, Limit=1).get("Records"):
                return False
        return not self.busy

    def _run(self) -> None:
        while not self._stop.is_set():
            idle = True
            for shard in list(self._iterators):
                try:
                    idle = not self._poll(shard) and idle
                except Exception as error:  # noqa: BLE001 - a poller outlives any one failure
                    if self._stop.is_set():
                        return
                    LOG.warning("stream poller %s: %s", self.mapping.logical_id, error)
                    self.errors.append(f"{type(error).__name__}: {error}")
                finally:
                    self.busy = False
            if idle:
                self._stop.wait(max(0.05, min(1.0, float(self.mapping.batching_window))))

    def _poll(self, shard: str) -> bool:
        answer = self._kinesis.get_records(
            ShardIterator=self._iterators[shard], Limit=self.mapping.batch_size
        )
        records = answer.get("Records", [])
        if not records:
            self._iterators[shard] = answer["NextShardIterator"]
            return False
        self.busy = True
        failed_at = self._deliver_with_retries(shard, records)
        if failed_at is None:
            self._iterators[shard] = answer["NextShardIterator"]
        else:
            self._iterators[shard] = self._kinesis.get_shard_iterator(
                StreamName=self.stream, ShardId=shard, ShardIteratorType="AT_SEQUENCE_NUMBER",
                StartingSequenceNumber=failed_at,
            )["ShardIterator"]  # fmt: skip
        return True

    def _deliver_with_retries(self, shard: str, records: list[dict[str, Any]]) -> str | None:
        """None when the batch is done (or given up); else the sequence number to read again from."""
        attempts = 0
        while True:
            failed = self._deliver(shard, records)
            if failed is None:
                return None
            position = next(n for n, r in enumerate(records) if r["SequenceNumber"] == failed)
            if position > 0:
                return failed  # progress: read again from the first failed record
            attempts += 1
            if 0 <= self.mapping.maximum_retry_attempts < attempts:
                self._give_up(shard, records)
                return None
            if self._stop.is_set():
                return failed

    def _deliver(self, shard: str, records: list[dict[str, Any]]) -> str | None:
        event = kinesis_event(records, shard, self.mapping.source_arn, self._region)
        payload, errored = self._invoke(self.mapping.function_name, event)
        sequences = [r["SequenceNumber"] for r in records]
        failed: str | None = None
        if errored:
            failed = sequences[0]
        elif self.mapping.report_batch_item_failures:
            answer = json.loads(payload or b"null") or {}
            items = answer.get("batchItemFailures") if isinstance(answer, dict) else None
            named = [item.get("itemIdentifier") if isinstance(item, dict) else None for item in items or []]
            if any(not isinstance(n, str) or n not in sequences for n in named):
                failed = sequences[0]
            elif named:
                failed = min(named, key=sequences.index)
        self.deliveries.append(
            ([f"{shard}/{s}" for s in sequences], [] if failed is None else [f"{shard}/{failed}"])
        )
        return failed

    def _give_up(self, shard: str, records: list[dict[str, Any]]) -> None:
        if not self.mapping.on_failure:
            return
        url = self._sqs.get_queue_url(QueueName=self.mapping.on_failure.rsplit(":", 1)[-1])["QueueUrl"]
        self._sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps(
                {
                    "requestContext": {
                        "condition": "RetryAttemptsExhausted",
                        "functionArn": self.mapping.function_name,
                    },
                    "KinesisBatchInfo": {
                        "shardId": shard,
                        "startSequenceNumber": records[0]["SequenceNumber"],
                        "endSequenceNumber": records[-1]["SequenceNumber"],
                        "batchSize": len(records),
                        "streamArn": self.mapping.source_arn,
                    },
                }
            ),
        )


class StreamBridge:
    """The pollers of a deployment's SQS mappings, started and stopped with the stack."""

    def __init__(
        self,
        mappings: list[StreamMapping],
        client: Callable[[str], Any],
        invoke: Callable[[str, Any], tuple[bytes, bool]],
        region: str,
        retry_wait_scale: float = 1.0,
    ) -> None:
        self.pollers: list[SqsPoller | KinesisPoller] = []
        for mapping in mappings:
            if not mapping.enabled:
                continue
            if mapping.source_arn.startswith("arn:aws:sqs:"):
                self.pollers.append(SqsPoller(mapping, client("sqs"), invoke, region, retry_wait_scale))
            elif mapping.source_arn.startswith("arn:aws:kinesis:"):
                self.pollers.append(KinesisPoller(mapping, client("kinesis"), client("sqs"), invoke, region))

    def start(self) -> StreamBridge:
        for poller in self.pollers:
            poller.start()
        return self

    def stop(self) -> None:
        for poller in self.pollers:
            poller._stop.set()
        for poller in self.pollers:
            poller.stop()

    def wait_until_drained(self, timeout: float = 60.0) -> None:
        """Until every queue is empty and no delivery is running; `TimeoutError` after `timeout`."""
        deadline = time.monotonic() + timeout
        while not all(poller.drained() for poller in self.pollers):
            if time.monotonic() > deadline:
                raise TimeoutError(f"stream queues not drained within {timeout:.0f}s")
            time.sleep(0.05)

    @property
    def errors(self) -> list[str]:
        return [error for poller in self.pollers for error in poller.errors]
