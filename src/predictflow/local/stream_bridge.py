"""Deliver SQS messages to the stack's functions as a Lambda event source mapping does.

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
        self.pollers = [
            SqsPoller(mapping, client("sqs"), invoke, region, retry_wait_scale)
            for mapping in mappings
            if mapping.enabled and mapping.source_arn.startswith("arn:aws:sqs:")
        ]

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
