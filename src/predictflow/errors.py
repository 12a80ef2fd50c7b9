"""Pipeline errors. A Lambda reports an exception by its class name (`errorType`), which is
what the state machine's Retry and Catch match, so these names are part of the contract
with statemachine/predictflow.asl.json."""

from __future__ import annotations

from typing import ClassVar


class PipelineError(Exception):
    retryable: ClassVar[bool] = False


class StorageUnavailable(PipelineError):
    """S3 or DynamoDB throttled or failed on the server side; the ASL retries it."""

    retryable = True


class FileRejected(PipelineError):
    """The object as a whole cannot be processed; the ASL dead-letters it without retry."""


class ObjectNotFound(FileRejected):
    """The object (or the version the event named) no longer exists."""


class ObjectChanged(FileRejected):
    """The object was overwritten after the event: its ETag no longer matches."""


class FileTooLarge(FileRejected):
    """The object is above the configured size limit; it is rejected without being read."""


class MalformedEvent(FileRejected):
    """The execution input is not an S3 "Object Created" event."""
