"""Pipeline and record errors. A Lambda reports an exception by its class name (`errorType`),
which is what the state machine's Retry and Catch match, and a rejected line's `RejectReason`
is the `error_type` of its dead-letter entry: both are contracts with users and with
statemachine/predictflow.asl.json. This module imports nothing of the project, so every other
module can raise these without an import cycle."""

from __future__ import annotations

from enum import StrEnum
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
    """The object is above the configured size limit (rejected without being read), or would
    need more chunks than one execution holds (rejected whole once Fetch has cut that many)."""


class MalformedEvent(FileRejected):
    """The execution input is not an S3 "Object Created" event."""


class MissingColumns(FileRejected):
    """A file with a header row lacks columns the model needs; nothing in it can be scored."""


class RejectReason(StrEnum):
    """Why a line is not a record. The values are the `error_type` of dead-letter entries."""

    ENCODING = "EncodingError"
    LINE_TOO_LONG = "LineTooLong"
    MALFORMED = "MalformedLine"
    HEADER_ROW = "HeaderRow"
    FIELD_COUNT = "FieldCountError"
    MISSING_FIELD = "MissingField"
    INVALID_VALUE = "InvalidValue"
    UNKNOWN_CATEGORY = "UnknownCategory"


class RecordError(ValueError):
    """A value that breaks the bundle's schema, naming the field and the offending value."""

    def __init__(self, reason: RejectReason, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field

    def __reduce__(self) -> tuple[type[RecordError], tuple[RejectReason, str, str | None]]:
        # Pickled with its own arguments, not `args` (the message alone): so that one raised in
        # a `predict --jobs` worker reaches the main process whole.
        return type(self), (self.reason, str(self), self.field)
