"""Where the pipeline reads and writes: source objects, work payloads, predictions, the
dead-letter table and the ledger of processed objects.

Everything is addressed by deterministic keys (source object, version, chunk, line), so a
retried or duplicated step overwrites what it wrote before instead of adding to it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final, NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from predictflow.errors import MalformedEvent, ObjectChanged, ObjectNotFound, StorageUnavailable

INLINE_PAYLOAD_LIMIT: Final = 64 * 1024
"""Step payloads above this go to S3 and travel as a reference (claim check): a state's
input and output are capped at 256 KiB and hold other fields beside the batch."""

PART_SUFFIX: Final = ".jsonl.gz"
"""Prediction parts are gzip-compressed JSON lines: about 13 times smaller than the text, for
a twentieth of a second per chunk, so Route uploads and S3 stores a fraction of the bytes.
Any gzip reader opens them (`zcat`, Athena and Spark by the extension)."""

_MISSING_CODES: Final = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
_CHANGED_CODES: Final = frozenset({"PreconditionFailed", "412"})


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def raise_storage_error(error: ClientError | BotoCoreError, what: str) -> NoReturn:
    """Turn an AWS error into the pipeline error the state machine routes on."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _MISSING_CODES:
            raise ObjectNotFound(f"{what}: object or version not found ({code})") from error
        if code in _CHANGED_CODES:
            raise ObjectChanged(f"{what}: object changed since the event ({code})") from error
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if status >= 500 or code in (
            "SlowDown",
            "Throttling",
            "ThrottlingException",
            "ProvisionedThroughputExceededException",
            "RequestLimitExceeded",
        ):
            raise StorageUnavailable(f"{what}: {code}") from error
        raise error
    raise StorageUnavailable(f"{what}: {error}") from error


@contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """`raise_storage_error` around a block of AWS calls."""
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise_storage_error(error, what)


def uploaded_version(put_response: dict[str, Any]) -> str:
    """What identifies the version a PutObject created: its version id where the bucket is
    versioned, else its ETag (as `ObjectRef.output_id` does for the object's event)."""
    return str(put_response.get("VersionId") or put_response["ETag"].strip('"'))


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One version of one source object, as the S3 event named it."""

    bucket: str
    key: str
    version_id: str | None
    etag: str
    size: int

    @property
    def identity(self) -> str:
        """Unique per upload: the version id where the bucket is versioned, else the ETag."""
        return Ledger.item_key(self.bucket, self.key, self.output_id)

    @property
    def output_id(self) -> str:
        return self.version_id or self.etag

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObjectRef:
        return cls(data["bucket"], data["key"], data.get("version_id"), data["etag"], int(data["size"]))

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> ObjectRef:
        """Read the S3 "Object Created" EventBridge event (keys arrive already decoded)."""
        try:
            detail = event["detail"]
            obj = detail["object"]
            return cls(
                bucket=detail["bucket"]["name"],
                key=obj["key"],
                version_id=obj.get("version-id") or None,
                etag=obj["etag"],
                size=int(obj["size"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise MalformedEvent(f"not an S3 Object Created event: missing {error}") from error


class SourceReader:
    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def _version_args(self, ref: ObjectRef) -> dict[str, str]:
        # A version id pins the exact upload; without versioning the ETag does.
        if ref.version_id:
            return {"VersionId": ref.version_id}
        return {"IfMatch": f'"{ref.etag}"'}

    def read_range(self, ref: ObjectRef, start: int, end: int) -> bytes:
        """Bytes [start, end) of the pinned version."""
        return self.read_chunk(ref, start, end)[0]

    def read_chunk(self, ref: ObjectRef, start: int, end: int) -> tuple[bytes, dict[str, str]]:
        """Bytes [start, end) of the pinned version, and the object's user metadata (which the
        same GET returns at no cost: it may say whether the file has a header)."""
        if end <= start:
            return b"", {}
        try:
            response = self._s3.get_object(
                Bucket=ref.bucket, Key=ref.key, Range=f"bytes={start}-{end - 1}", **self._version_args(ref)
            )
            return bytes(response["Body"].read()), dict(response.get("Metadata") or {})
        except (ClientError, BotoCoreError) as error:
            raise_storage_error(error, f"s3://{ref.bucket}/{ref.key}")

    def stream(
        self,
        ref: ObjectRef,
        block_bytes: int = 8 * 1024 * 1024,
        metadata: dict[str, str] | None = None,
        byte_range: tuple[int, int] | None = None,
    ) -> Iterator[bytes]:
        """The pinned version (or bytes [start, end) of it) block by block; `metadata`, when
        given, receives its user metadata."""
        extra = self._version_args(ref)
        if byte_range is not None:
            extra["Range"] = f"bytes={byte_range[0]}-{byte_range[1] - 1}"
        try:
            response = self._s3.get_object(Bucket=ref.bucket, Key=ref.key, **extra)
            if metadata is not None:
                metadata.update(response.get("Metadata") or {})
            try:
                yield from response["Body"].iter_chunks(block_bytes)
            finally:  # a reader that stops early (Fetch refusing a file) releases the connection
                response["Body"].close()
        except (ClientError, BotoCoreError) as error:
            raise_storage_error(error, f"s3://{ref.bucket}/{ref.key}")


class WorkStore:
    """Claim-check storage for step payloads too large to travel through the state."""

    def __init__(self, s3: Any, bucket: str, prefix: str) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._prefix = prefix

    def stash(self, payload: dict[str, Any], name: str) -> dict[str, Any]:
        body = json.dumps(payload, separators=(",", ":")).encode()
        if len(body) <= INLINE_PAYLOAD_LIMIT:
            return {"inline": payload}
        key = f"{self._prefix}{name}.json"
        try:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/json")
        except (ClientError, BotoCoreError) as error:
            raise_storage_error(error, f"s3://{self._bucket}/{key}")
        return {"s3": {"bucket": self._bucket, "key": key, "bytes": len(body)}}

    def unstash(self, envelope: dict[str, Any]) -> dict[str, Any]:
        if "inline" in envelope:
            return dict(envelope["inline"])
        location = envelope["s3"]
        try:
            body = self._s3.get_object(Bucket=location["bucket"], Key=location["key"])["Body"].read()
        except (ClientError, BotoCoreError) as error:
            raise_storage_error(error, f"s3://{location['bucket']}/{location['key']}")
        return dict(json.loads(body))


S3_KEY_BYTES: Final = 1024
"""S3's limit on a key's length, in UTF-8 bytes."""

LONGEST_PART_NAME: Final = len(f"part-99999{PART_SUFFIX}")
LONG_KEYS_FOLDER: Final = "_long-keys/"


def prediction_folder(prefix: str, key: str, version: str) -> str:
    """Where one uploaded version's predictions go: `<prefix><key>/<version>/`, readable next
    to its source, unless that would push a part's key past S3's 1,024 bytes; then
    `<prefix>_long-keys/<sha256 of the key>/<version>/` (the manifest names the source key)."""
    folder = f"{prefix}{key}/{version}/"
    if len(folder.encode()) + LONGEST_PART_NAME <= S3_KEY_BYTES:
        return folder
    return f"{prefix}{LONG_KEYS_FOLDER}{hashlib.sha256(key.encode()).hexdigest()}/{version}/"


class PredictionStore:
    """JSON-lines prediction files, one per chunk, plus a manifest per source object."""

    def __init__(self, s3: Any, bucket: str, prefix: str) -> None:
        self._s3 = s3
        self.bucket = bucket
        self._prefix = prefix

    def folder(self, ref: ObjectRef) -> str:
        return prediction_folder(self._prefix, ref.key, ref.output_id)

    def part_key(self, ref: ObjectRef, chunk_index: int) -> str:
        return f"{self.folder(ref)}part-{chunk_index:05d}{PART_SUFFIX}"

    def manifest_key(self, ref: ObjectRef) -> str:
        return f"{self.folder(ref)}_manifest.json"

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        except (ClientError, BotoCoreError) as error:
            raise_storage_error(error, f"s3://{self.bucket}/{key}")

    def write_part(self, ref: ObjectRef, chunk_index: int, jsonl: str) -> str:
        """One chunk's predictions, already as JSON lines, gzipped at level 1; mtime 0 makes a
        retried write byte-identical. Measured on a part of 9,500 prediction lines (1.02 MB):
        level 1 makes 150 KB in 3.1 ms, level 6 130 KB in 8.6 ms (13% fewer bytes for 2.8
        times the CPU). Storing the part uncompressed would save about 2 ms of CPU per part
        (compress and put through moto), 1% of a local run, for 6.9 times the bytes stored
        and read back, and readers expect gzip; a small part costs 0.05 ms to compress."""
        key = self.part_key(ref, chunk_index)
        self._put(key, gzip.compress(jsonl.encode(), compresslevel=1, mtime=0), "application/gzip")
        return key

    def delete_part(self, ref: ObjectRef, chunk_index: int) -> None:
        """Remove a chunk's part (if any): its records were dead-lettered instead."""
        key = self.part_key(ref, chunk_index)
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as error:
            raise_storage_error(error, f"s3://{self.bucket}/{key}")

    @staticmethod
    def part_lines(body: bytes) -> list[bytes]:
        """The JSON lines of one part, as stored by `write_part`."""
        return [line for line in gzip.decompress(body).splitlines() if line]

    def delete_manifest(self, ref: ObjectRef) -> None:
        """Un-commit a file's outcome (it ended without one): its parts are no longer read."""
        key = self.manifest_key(ref)
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as error:
            raise_storage_error(error, f"s3://{self.bucket}/{key}")

    def write_manifest(self, ref: ObjectRef, manifest: dict[str, Any]) -> str:
        key = self.manifest_key(ref)
        self._put(key, json.dumps(manifest, indent=1).encode(), "application/json")
        return key


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record (or, with line 0, a whole file) that did not become a prediction.

    `origin` is set for a line of a replay file: where the line first came from
    (`{"source_key", "version_id", "line", "attempt"}`, as `DeadLetterStore.origins` gives
    it). `raw_base64` holds the line's original bytes when they were not UTF-8, so that a
    replay can submit those bytes rather than the escaped text in `raw`.
    """

    source_bucket: str
    source_key: str
    version_id: str | None
    line: int
    raw: str
    error_type: str
    error_message: str
    execution_arn: str
    time: str
    origin: dict[str, Any] | None = None
    raw_base64: str | None = None

    @property
    def source(self) -> str:
        return DeadLetterStore.partition(self.source_bucket, self.source_key, self.version_id)

    @property
    def origin_key(self) -> str:
        """The key of the upload this line's chain of replays started from."""
        return str(self.origin["source_key"]) if self.origin else self.source_key


ENTRY_PREFIX: Final = "line#"
REPLAY_MARK: Final = "replayed#"
HEADER_SORT_KEY: Final = "header"
LINEAGE_PREFIX: Final = "lineage#"
BY_ERROR_TYPE: Final = "ByErrorType"
"""GSI: error_type, time. Entries and replay marks carry both, lineage and header items not."""
BY_ORIGIN_KEY: Final = "ByOriginKey"
"""GSI: origin_key (the key a chain of replays started from), sk. Entries and marks only."""


def typed(value: Any) -> dict[str, Any]:
    """A plain value as a DynamoDB attribute value (the few kinds this table holds)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, dict):
        return {"M": {name: typed(inner) for name, inner in value.items()}}
    return {"S": str(value)}


def plain(value: dict[str, Any]) -> Any:
    """The inverse of `typed` for one attribute value."""
    ((kind, inner),) = value.items()
    if kind == "N":
        return int(inner)
    if kind == "M":
        return {name: plain(item) for name, item in inner.items()}
    if kind == "NULL":
        return None
    return inner


class DeadLetterStore:
    """A DynamoDB table: partition = source object version, sort = line (zero-padded).

    Beside the entries (`line#…`), a partition may hold the source's header row (`header`)
    and replay marks (`replayed#…`); `lineage#s3://bucket/replay-key` partitions map each
    line of a replay file to the line of the upload it came from.
    """

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table

    @staticmethod
    def sort_key(line: int) -> str:
        return f"{ENTRY_PREFIX}{line:010d}"

    @staticmethod
    def mark_key(line: int) -> str:
        """The sort key of the item that marks the entry for `line` as replayed."""
        return f"{REPLAY_MARK}{line:010d}"

    @staticmethod
    def partition(bucket: str, key: str, version_id: str | None) -> str:
        return f"s3://{bucket}/{key}#{version_id or ''}"

    @staticmethod
    def lineage_partition(bucket: str, replay_key: str) -> str:
        return f"{LINEAGE_PREFIX}s3://{bucket}/{replay_key}"

    def put(self, entries: Sequence[DeadLetter], header: str | None = None) -> int:
        """Record entries; the same (source, line) written again replaces itself.

        `header` is the source's raw header row, when it had one: it is kept once per
        partition (sort key `header`), so that a replay can put it back above the lines.
        """
        items = [self._item(entry) for entry in entries]
        if header is not None:
            for partition in sorted({entry.source for entry in entries}):
                items.append({"pk": {"S": partition}, "sk": {"S": HEADER_SORT_KEY}, "raw": {"S": header}})
        for start in range(0, len(items), 25):
            self._batch_write(items[start : start + 25])
        return len(entries)

    def origins(self, bucket: str, replay_key: str) -> dict[int, dict[str, Any]]:
        """Line of the replay file `replay_key` -> where that line first came from:
        `{"source_key", "version_id", "line", "attempt"}` of the original upload, `attempt`
        counting the replays (1 for the first). Empty for a key that is not a replay file."""
        pages = self._dynamodb.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": self.lineage_partition(bucket, replay_key)}},
            ConsistentRead=True,
        )
        found: dict[int, dict[str, Any]] = {}
        for page in pages:
            for item in page.get("Items", []):
                origin = {name: plain(item[name]) for name in ("source_key", "version_id", "line", "attempt")}
                found[int(item["sk"]["S"].removeprefix(ENTRY_PREFIX))] = origin
        return found

    def _batch_write(self, items: list[dict[str, Any]]) -> None:
        request = {self._table: [{"PutRequest": {"Item": item}} for item in items]}
        for _ in range(8):
            try:
                response = self._dynamodb.batch_write_item(RequestItems=request)
            except (ClientError, BotoCoreError) as error:
                raise_storage_error(error, f"dynamodb:{self._table}")
            request = response.get("UnprocessedItems") or {}
            if not request:
                return
        raise StorageUnavailable(f"dynamodb:{self._table}: writes still unprocessed after 8 tries")

    def _item(self, entry: DeadLetter) -> dict[str, Any]:
        item = {
            "pk": {"S": entry.source},
            "sk": {"S": self.sort_key(entry.line)},
            "source_bucket": {"S": entry.source_bucket},
            "source_key": {"S": entry.source_key},
            "origin_key": {"S": entry.origin_key},
            "line": {"N": str(entry.line)},
            "raw": {"S": entry.raw},
            "error_type": {"S": entry.error_type},
            "error_message": {"S": entry.error_message},
            "execution_arn": {"S": entry.execution_arn},
            "time": {"S": entry.time},
        }
        if entry.version_id:
            item["version_id"] = {"S": entry.version_id}
        if entry.origin:
            item["origin"] = typed(dict(entry.origin))
        if entry.raw_base64 is not None:
            item["raw_base64"] = {"S": entry.raw_base64}
        return item


@dataclass(frozen=True, slots=True)
class Stores:
    """The storage the steps use, built once per container (see `runtime.build_stores`)."""

    source: SourceReader
    work: WorkStore
    predictions: PredictionStore
    dead_letters: DeadLetterStore
    ledger: Ledger


_OURS_TO_WRITE: Final = (
    "attribute_not_exists(pk) OR (execution_arn = :me AND #status IN (:running, :succeeded))"
)
"""A claim may write a new item, or replace one an earlier attempt of the same Fetch wrote (that
attempt's result never reached the state machine). It never replaces an item another execution
holds, nor one closed for this execution after it ended (aborted, timed out, failed)."""


def _ours_to_write(execution_arn: str) -> dict[str, dict[str, str]]:
    return {":me": {"S": execution_arn}, ":running": {"S": "RUNNING"}, ":succeeded": {"S": "SUCCEEDED"}}


def _claim_item(
    ref: ObjectRef, execution_arn: str, status: str, claimed_at: str
) -> dict[str, dict[str, str]]:
    """The ledger item a claim writes: which execution holds which file since when."""
    return {
        "pk": {"S": ref.identity},
        "execution_arn": {"S": execution_arn},
        "source_bucket": {"S": ref.bucket},
        "source_key": {"S": ref.key},
        "status": {"S": status},
        "claimed_at": {"S": claimed_at},
    }


class Ledger:
    """One item per source object version: which execution owns it and how it ended."""

    @staticmethod
    def item_key(bucket: str, key: str, version: str) -> str:
        return f"s3://{bucket}/{key}#{version}"

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def claim(self, ref: ObjectRef, execution_arn: str) -> str | None:
        """Claim `ref` for this execution. Returns None when the claim is ours (new, or
        ours already from an earlier attempt), else the execution that holds it.

        One request: a refused write returns the item that refused it (ALL_OLD), so telling a
        duplicate from a new file needs no second read that could fail on its own (a
        throttled read would dead-letter a file another execution is processing)."""
        return self._put_if_ours(_claim_item(ref, execution_arn, "RUNNING", now()), execution_arn)

    def _put_if_ours(self, item: dict[str, dict[str, str]], execution_arn: str) -> str | None:
        """Write the item unless another execution holds it (see _OURS_TO_WRITE): None when
        written, else the holder's execution."""
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=_OURS_TO_WRITE,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_ours_to_write(execution_arn),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return None
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise_storage_error(error, f"dynamodb:{self._table}")
            holder = error.response.get("Item", {}).get("execution_arn", {}).get("S")
            if not holder:
                # The condition failed, so an item with another owner exists: without it in the
                # answer, the claim's outcome is unknown, and guessing either way is wrong.
                raise_storage_error(error, f"dynamodb:{self._table}")
            return str(holder)
        except BotoCoreError as error:
            raise_storage_error(error, f"dynamodb:{self._table}")

    def close_unfinished(self, ref: ObjectRef, execution_arn: str, status: str, error: str) -> bool:
        """Close the item of a file whose execution ended before Finalize recorded its outcome.

        Conditional: only this execution's item, only while it is RUNNING (or already closed by
        this same call, so that a retried close still reports True and its dead letter is
        written), or no item at all (the claim itself never got written). Returns False when
        the file was closed some other way, or belongs to another execution."""
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": ref.identity}},
                UpdateExpression=(
                    "SET #status = :status, finished_at = :at, error_type = :error, execution_arn = :arn,"
                    " source_bucket = :bucket, source_key = :key"
                ),
                ConditionExpression=(
                    "attribute_not_exists(pk) OR (execution_arn = :arn"
                    " AND (#status = :running OR (#status = :status AND error_type = :error)))"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":status": {"S": status},
                    ":error": {"S": error},
                    ":running": {"S": "RUNNING"},
                    ":arn": {"S": execution_arn},
                    ":at": {"S": now()},
                    ":bucket": {"S": ref.bucket},
                    ":key": {"S": ref.key},
                },
            )
            return True
        except ClientError as failure:
            if failure.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise_storage_error(failure, f"dynamodb:{self._table}")
        except BotoCoreError as failure:
            raise_storage_error(failure, f"dynamodb:{self._table}")

    def finish(
        self,
        ref: ObjectRef,
        execution_arn: str,
        status: str,
        counts: dict[str, int],
        compact_predictions: str = "",
        error: str = "",
        model_version: str = "",
    ) -> None:
        """Record how the file ended: one write, creating the item if it was never claimed."""
        values: dict[str, dict[str, str]] = {
            ":status": {"S": status},
            ":at": {"S": now()},
            ":arn": {"S": execution_arn},
            ":bucket": {"S": ref.bucket},
            ":key": {"S": ref.key},
        }
        values |= {f":{name}": {"N": str(value)} for name, value in counts.items()}
        assignments = [
            "#status = :status",
            "finished_at = :at",
            "execution_arn = :arn",
            "source_bucket = :bucket",
            "source_key = :key",
        ]
        assignments += [f"#{name} = :{name}" for name in counts]
        if compact_predictions:
            values[":predictions"] = {"S": compact_predictions}
            assignments.append("compact_predictions = :predictions")
        if error:
            values[":error"] = {"S": error}
            assignments.append("error_type = :error")
        if model_version:
            values[":model"] = {"S": model_version}
            assignments.append("model_version = :model")
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": {"S": ref.identity}},
                UpdateExpression="SET " + ", ".join(assignments),
                ExpressionAttributeNames={"#status": "status"} | {f"#{name}": name for name in counts},
                ExpressionAttributeValues=values,
            )
        except (ClientError, BotoCoreError) as failure:
            raise_storage_error(failure, f"dynamodb:{self._table}")

    def claim_finished(
        self,
        ref: ObjectRef,
        execution_arn: str,
        *,
        claimed_at: str,
        counts: dict[str, int],
        compact_predictions: str,
        model_version: str,
    ) -> str | None:
        """Claim `ref` and record it SUCCEEDED in one conditional write: for a small file whose
        records were all predicted in one step, the item is the file's only output, so the claim
        and the commit can be the same write. Returns None when the item is ours (new, or written
        by an earlier attempt of this execution), else the execution that holds it."""
        item = _claim_item(ref, execution_arn, "SUCCEEDED", claimed_at) | {
            "finished_at": {"S": now()},
            "model_version": {"S": model_version},
            "compact_predictions": {"S": compact_predictions},
        }
        item |= {name: {"N": str(value)} for name, value in counts.items()}
        return self._put_if_ours(item, execution_arn)
