"""The EventBridge rule's dead-letter queue: events the rule could not deliver to the state
machine (after its RetryPolicy), listed and re-driven.

EventBridge puts the undelivered event, as JSON, in the message body, and why it failed in
the message attributes `ERROR_CODE` and `ERROR_MESSAGE`. A redrive does what the rule would
have done, StartExecution with the event as its input, and deletes a message only once its
execution started. The execution is named after the event's id, so a redrive stopped
between the start and the delete, and run again, does not start a second execution (and
the ledger would claim the object version once anyway).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import ClientError

LIST_VISIBILITY_SECONDS: Final = 30
REDRIVE_VISIBILITY_SECONDS: Final = 300


class NoDeadLetterQueue(Exception):
    """The stack publishes no EventDeadLetterQueueUrl (deployed before it had one)."""


@dataclass(frozen=True)
class Undelivered:
    message_id: str
    receipt_handle: str
    body: str
    key: str
    version: str
    reason: str

    @property
    def execution_name(self) -> str:
        try:
            event_id = str(json.loads(self.body).get("id") or "")
        except (ValueError, AttributeError):
            event_id = ""
        # Names allow letters, digits, - and _ up to 80 characters.
        safe = re.sub(r"[^A-Za-z0-9_-]", "-", event_id)[:60]
        return f"redrive-{safe or hashlib.sha256(self.body.encode()).hexdigest()[:32]}"


def _undelivered(message: dict[str, Any]) -> Undelivered:
    attributes = message.get("MessageAttributes", {})

    def attribute(name: str) -> str:
        return str(attributes.get(name, {}).get("StringValue", ""))

    body = str(message.get("Body", ""))
    key = version = ""
    try:
        detail = json.loads(body).get("detail", {})
        key = str(detail.get("object", {}).get("key", ""))
        version = str(detail.get("object", {}).get("version-id", ""))
    except (ValueError, AttributeError):
        pass  # not an S3 event: listed with empty key and version, as received
    reason = ": ".join(part for part in (attribute("ERROR_CODE"), attribute("ERROR_MESSAGE")) if part)
    return Undelivered(str(message["MessageId"]), str(message["ReceiptHandle"]), body, key, version, reason)


def _receive(sqs: Any, queue_url: str, visibility: int) -> list[Undelivered]:
    found: dict[str, Undelivered] = {}
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=visibility,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        fresh = [m for m in map(_undelivered, messages) if m.message_id not in found]
        if not fresh:
            return list(found.values())
        found |= {m.message_id: m for m in fresh}


def list_undelivered(sqs: Any, queue_url: str) -> list[Undelivered]:
    """Every message in the queue. Reading hides a message for a moment; each is made
    visible again at once, so listing takes nothing away from a redrive."""
    messages = _receive(sqs, queue_url, LIST_VISIBILITY_SECONDS)
    for message in messages:
        sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=0
        )
    return messages


def redrive(sqs: Any, sfn: Any, queue_url: str, state_machine_arn: str) -> list[tuple[Undelivered, str]]:
    """Start an execution for each message, then delete it. Returns (message, execution)."""
    done = []
    for message in _receive(sqs, queue_url, REDRIVE_VISIBILITY_SECONDS):
        name = message.execution_name
        try:
            arn = str(
                sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=message.body)[
                    "executionArn"
                ]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
            # Started by an earlier redrive that stopped before its delete.
            arn = state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message.receipt_handle)
        done.append((message, arn))
    return done
