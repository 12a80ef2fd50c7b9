"""The pipeline's steps as plain functions; the Lambda handlers in functions/ are thin
wrappers that add logging, tracing and metrics.

    Fetch       claim the object version, pin the active model version, plan byte-range chunks
                at line boundaries (and, for a file of several chunks, read its layout)
    Validate    read a chunk, parse and validate every line against the pinned bundle
    Predict     score the chunk's valid records with the pinned bundle
    Route       write dead-letter entries, then predictions: one outcome per record
    Finalize    add up the chunks, write the manifest (the commit), decide the outcome

What travels between the steps is in `payloads.py`; each batch goes inline when small and by S3
reference otherwise (see `WorkStore`).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Final

import numpy as np

from predictflow.errors import FileRejected, FileTooLarge, MalformedEvent, RejectReason
from predictflow.pipeline import chunks as chunking
from predictflow.pipeline import settings as limits
from predictflow.pipeline.bundles import Bundles
from predictflow.pipeline.payloads import ScoredBatch, ValidatedBatch, matrix_from_text, matrix_to_text
from predictflow.pipeline.settings import Settings
from predictflow.pipeline.stores import DeadLetter, ObjectRef, Stores, now
from predictflow.predictions import answers_of, prediction_lines
from predictflow.records import (
    HEADER_HINT,
    MAX_LINE_CHARS,
    RAW_EXCERPT_CHARS,
    Layout,
    ParsedBatch,
    Rejection,
    detect_layout,
    first_record_line,
    header_slots,
    parse_chunk,
    split_lines,
)

SMALL_FILE_RECORDS: Final = 3
"""A file of at most this many records keeps its prediction lines on its ledger item (see
`route_chunk`), which stays within one DynamoDB write unit; larger files get JSON-lines parts in
S3 and a manifest."""

WHOLE_FILE_BYTES: Final = 16 * 1024
"""A file of at most this many bytes is read by Fetch, which predicts it there when it holds at
most SMALL_FILE_RECORDS records, all valid: one Lambda invocation and one ledger write instead
of five and two, the larger part of what a one-record file costs (benchmarks/cost_model.py). A
larger file would rarely qualify, and its read would be wasted."""

MAX_LINE_BYTES: Final = 4 * MAX_LINE_CHARS
"""A line longer than this in bytes is longer than a record may be in characters."""


def execution_name(execution_arn: str) -> str:
    return execution_arn.rsplit(":", 1)[-1]


def fetch(
    event: dict[str, Any], execution_arn: str, settings: Settings, stores: Stores, bundles: Bundles
) -> dict[str, Any]:
    """Claim the file and plan its chunks; or, for a small file whose records are all valid,
    predict it here and commit it in the same write as the claim (`finished`, with the file's
    `summary`, in the plan)."""
    ref = ObjectRef.from_event(event)
    plan: dict[str, Any] = {
        "object": ref.as_dict(),
        "execution_arn": execution_arn,
        "duplicate": False,
        "finished": False,
        "model_version": None,
        "layout": None,
        "chunks": [],
    }
    claimed_at = now()
    if _is_whole_file_candidate(ref, settings, bundles):
        plan["model_version"] = version = bundles.active_version()
        finished = _predict_whole_file(ref, execution_arn, version, claimed_at, stores, bundles)
        if finished is not None:
            holder, summary = finished
            if holder is None:
                plan |= {"finished": True, "summary": summary}
            else:
                plan |= {"duplicate": True, "claimed_by": holder, "model_version": None}
            return plan
    holder = stores.ledger.claim(ref, execution_arn)
    if holder is not None:
        plan |= {"duplicate": True, "claimed_by": holder, "model_version": None}
        return plan
    if ref.size > settings.max_file_bytes:
        raise FileTooLarge(
            f"s3://{ref.bucket}/{ref.key} is {ref.size} bytes; the limit is {settings.max_file_bytes}"
        )
    plan["model_version"] = plan["model_version"] or bundles.active_version()
    if ref.size <= min(settings.chunk_bytes, chunking.MAX_CHUNK_LINES):
        # One chunk (a file of N bytes has at most N lines): Validate's ranged GET of the
        # pinned version is the first read, and it reports a missing object (and finds the
        # layout) as well as a read here would, for one request less. A larger file is read to
        # be cut by its bytes and its lines.
        plan["chunks"] = [{"index": 1, "first_line": 1, "start": 0, "end": ref.size}]
        return plan
    # The first chunk's bytes at most: where Validate of that chunk would find the first line.
    head = bytearray()
    metadata: dict[str, str] = {}

    def blocks() -> Any:
        for block in stores.source.stream(ref, metadata=metadata):
            if len(head) < settings.chunk_bytes:
                head.extend(block[: settings.chunk_bytes - len(head)])
            yield block

    for chunk in chunking.cut_chunks(blocks(), settings.chunk_bytes):
        plan["chunks"].append(chunk)
        if len(plan["chunks"]) > limits.MAX_CHUNKS:
            # More chunks would take a Standard execution's history past its 25,000 events.
            raise FileTooLarge(
                f"s3://{ref.bucket}/{ref.key} needs more than {limits.MAX_CHUNKS} chunks (of at most "
                f"{settings.chunk_bytes} bytes and {chunking.MAX_CHUNK_LINES} lines each) by byte "
                f"{chunk['end']}; split it into smaller files"
            )
    if len(plan["chunks"]) == 1:
        # One chunk after all: Validate finds the layout in it, as for a small file.
        return plan
    # Whole lines only (a line cut at the head's end would be read as a shorter one).
    whole = head if len(head) >= ref.size else head[: head.rfind(b"\n") + 1]
    first = first_record_line(bytes(whole))
    if first is not None:
        schema = bundles.bundle(plan["model_version"]).schema
        layout = detect_layout(first[1], schema, metadata.get(HEADER_HINT))
        if layout.header is not None:
            # Checked here, for the whole file: a file that lacks a column is dead-lettered whole.
            header_slots(layout, schema)
        plan["layout"] = layout.as_dict()
    return plan


def _is_whole_file_candidate(ref: ObjectRef, settings: Settings, bundles: Bundles) -> bool:
    """Small enough to be predicted by Fetch itself, by a container that scores records locally.
    Replay files take the chunk path: their lines' origins are read from the dead-letter table."""
    return (
        bundles.scores_records
        and ref.size <= WHOLE_FILE_BYTES
        and not (settings.replay_prefix and ref.key.startswith(settings.replay_prefix))
    )


def _predict_whole_file(
    ref: ObjectRef, execution_arn: str, version: str, claimed_at: str, stores: Stores, bundles: Bundles
) -> tuple[str | None, dict[str, Any]] | None:
    """Predict a small file in one step when every one of its records is valid, and claim and
    commit it in one ledger write. Returns (the execution that holds the file if not this one,
    the file's summary), or None when the file needs the chunk path: it has a line to
    dead-letter (dead letters are written before the commit, which needs the claim first), no
    record, or more records than a ledger item keeps."""
    predictor = bundles.predictor(version)
    bundle = predictor.bundle
    try:
        data, metadata = stores.source.read_chunk(ref, 0, ref.size)
        batch = parse_chunk(data, bundle.schema, 1, header_hint=metadata.get(HEADER_HINT))
    except FileRejected:
        # Gone, changed, or lacking a column: the chunk path meets the same error again, after
        # the claim, and records it as it always has. Recording it here, before any claim,
        # could overwrite the outcome of another execution that holds the file.
        return None
    if batch.rejections or not 0 < len(batch) <= SMALL_FILE_RECORDS:
        return None
    answers = answers_of(bundle.spec.target, predictor.scores(batch.features, validated=True))
    jsonl = prediction_lines(
        bundle.spec.target, predictor.model_version, batch.lines, answers, ids=batch.ids, actual=batch.actual
    )
    totals = {"records": len(batch), "predicted": len(batch), "dead_lettered": 0, "failed_chunks": 0}
    holder = stores.ledger.claim_finished(
        ref, execution_arn, claimed_at=claimed_at, counts=totals, compact_predictions=jsonl,
        model_version=version,
    )  # fmt: skip
    summary = _file_summary(
        ref, execution_arn, version, "SUCCEEDED", totals, chunks=1, predictions="ledger",
        ignored=list(batch.ignored_columns),
    )  # fmt: skip
    return holder, summary


def _file_summary(
    ref: ObjectRef,
    execution_arn: str,
    model_version: str | None,
    status: str,
    totals: dict[str, int],
    *,
    chunks: int,
    predictions: str,
    ignored: list[str],
) -> dict[str, Any]:
    """How a file ended, as its execution's output and its manifest say it (Finalize, or Fetch
    for a file it predicted whole)."""
    summary: dict[str, Any] = {
        "source_bucket": ref.bucket,
        "source_key": ref.key,
        "version_id": ref.version_id,
        "execution_arn": execution_arn,
        "model_version": model_version,
        "status": status,
        **totals,
        "chunks": chunks,
        "predictions": predictions,
        "finished_at": now(),
    }
    if ignored:
        summary["ignored_columns"] = ignored
    return summary


def _stash_name(execution_arn: str, chunk: dict[str, Any], stage: str) -> str:
    return f"{execution_name(execution_arn)}/chunk-{int(chunk['index']):05d}/{stage}"


def validate(
    payload: dict[str, Any], stores: Stores, bundles: Bundles
) -> tuple[dict[str, Any], dict[str, int]]:
    ref = ObjectRef.from_dict(payload["object"])
    chunk = payload["chunk"]
    bundle = bundles.bundle(payload["model_version"])
    first_line = int(chunk["first_line"])
    if chunk.get("single_line") and int(chunk["end"]) - int(chunk["start"]) > MAX_LINE_BYTES:
        batch = _long_line(stores, ref, chunk, bundle.schema.width)
        batch.layout = Layout.from_dict(payload.get("layout"))
        return _stash_validated(payload, batch, stores)
    data, metadata = stores.source.read_chunk(ref, int(chunk["start"]), int(chunk["end"]))
    batch = parse_chunk(
        data,
        bundle.schema,
        first_line,
        layout=Layout.from_dict(payload.get("layout")),
        header_hint=metadata.get(HEADER_HINT),
    )
    return _stash_validated(payload, batch, stores)


def _stash_validated(
    payload: dict[str, Any], batch: ParsedBatch, stores: Stores
) -> tuple[dict[str, Any], dict[str, int]]:
    out: ValidatedBatch = {
        "lines": batch.lines,
        "features": matrix_to_text(batch.features),
        "rejections": [
            [
                r.line,
                r.raw,
                r.reason.value,
                r.message,
                base64.b64encode(r.raw_bytes).decode() if r.raw_bytes else None,
            ]
            for r in batch.rejections
        ],
        "layout": (batch.layout or Layout()).as_dict(),
    }
    if batch.actual is not None:
        out["actual"] = batch.actual
    if batch.ids is not None:
        out["ids"] = batch.ids
    if batch.ignored_columns:
        out["ignored_columns"] = list(batch.ignored_columns)
    counts = {"valid": len(batch), "rejected": len(batch.rejections)}
    return stores.work.stash(
        dict(out), _stash_name(payload["execution_arn"], payload["chunk"], "validated")
    ), counts


def _long_line(stores: Stores, ref: ObjectRef, chunk: dict[str, Any], width: int) -> ParsedBatch:
    """A chunk that is one line too long to be a record, read as a stream: memory stays bounded
    by a block, whatever the line's size. It is blank (no record) or one LineTooLong rejection."""
    start, end = int(chunk["start"]), int(chunk["end"])
    head, tail = b"", b""
    content = 0  # bytes other than spaces and tabs, the line break included
    for block in stores.source.stream(ref, 1024 * 1024, byte_range=(start, end)):
        if len(head) < RAW_EXCERPT_CHARS:
            head += block[: RAW_EXCERPT_CHARS - len(head)]
        content += len(block.translate(None, b" \t"))
        tail = (tail + block)[-2:]
    line_break = 2 if tail == b"\r\n" else 1 if tail.endswith(b"\n") else 0
    empty = np.empty((0, width), dtype=np.float32)
    if content == line_break:  # blank: nothing but spaces and tabs (see records.is_blank)
        return ParsedBatch([], empty)
    line = int(chunk["first_line"])
    message = f"line has {end - start} bytes; a record has at most {MAX_LINE_CHARS} characters"
    excerpt_text = head.decode("utf-8", errors="backslashreplace") + "…"
    return ParsedBatch(
        [], empty, rejections=[Rejection(line, excerpt_text, RejectReason.LINE_TOO_LONG, message)]
    )


def predict(payload: dict[str, Any], stores: Stores, bundles: Bundles) -> tuple[dict[str, Any], int]:
    """Score the validated batch. The records themselves stay where Validate put them: Route
    reads them from there, so Predict neither copies nor re-sends them."""
    predictor = bundles.predictor(payload["model_version"])
    bundle = predictor.bundle
    batch = stores.work.unstash(payload["batch"])
    features = matrix_from_text(batch["features"], np.float32, bundle.schema.width)
    answers = answers_of(bundle.spec.target, predictor.scores(features))
    scored: ScoredBatch = {
        "answers": matrix_to_text(answers),
        "columns": 1 if answers.ndim == 1 else int(answers.shape[1]),
        "model_version": predictor.model_version,
    }
    envelope = stores.work.stash(
        dict(scored), _stash_name(payload["execution_arn"], payload["chunk"], "predicted")
    )
    return envelope, len(answers)


def route_chunk(
    payload: dict[str, Any], stores: Stores, bundles: Bundles, replay_prefix: str = ""
) -> dict[str, Any]:
    """Write the chunk's outcomes: its dead letters first, then its predictions, so that a Route
    that fails part-way has made no prediction visible (the manifest, written by Finalize, is
    what makes a part count; see `dead_letter_chunk` for the other half).

    A line of a replay file carries its `origin`, the upload and line it first came from, on its
    prediction or its new dead letter."""
    ref = ObjectRef.from_dict(payload["object"])
    execution_arn = payload["execution_arn"]
    chunk = payload["chunk"]
    batch = stores.work.unstash(payload["batch"])
    scored = stores.work.unstash(payload["predicted"])
    bundle = bundles.bundle(payload["model_version"])
    lines: list[int] = batch["lines"]
    columns = int(scored["columns"])
    answers = matrix_from_text(scored["answers"], np.float64, columns if columns > 1 else None)
    if len(answers) != len(lines):
        raise ValueError(f"{len(answers)} answers for {len(lines)} records: the batches do not match")
    at = now()
    origins = _origins(stores, ref, replay_prefix)
    dead = [_rejection_entry(ref, rejection, execution_arn, at, origins) for rejection in batch["rejections"]]
    stores.dead_letters.put(dead, header=(batch.get("layout") or {}).get("header_line"))
    jsonl = prediction_lines(
        bundle.spec.target,
        scored["model_version"],
        lines,
        answers,
        ids=batch.get("ids"),
        actual=batch.get("actual"),
        origins=origins,
    )
    counts: dict[str, Any] = {}
    if _is_whole_small_file(ref, chunk, len(lines)):
        # An S3 PUT costs more than the rest of a one-record file's processing: its prediction
        # lines ride to Finalize and are kept on its ledger item.
        counts["compact_predictions"] = jsonl
    elif lines:
        stores.predictions.write_part(ref, int(chunk["index"]), jsonl)
    if batch.get("ignored_columns"):
        counts["ignored_columns"] = batch["ignored_columns"]
    return counts | _counts(chunk, records=len(lines) + len(dead), predicted=len(lines), dead=len(dead))


def _origins(stores: Stores, ref: ObjectRef, replay_prefix: str) -> dict[int, dict[str, Any]]:
    if not replay_prefix or not ref.key.startswith(replay_prefix):
        return {}
    return stores.dead_letters.origins(ref.bucket, ref.key)


def _rejection_entry(
    ref: ObjectRef, rejection: list[Any], execution_arn: str, at: str, origins: dict[int, dict[str, Any]]
) -> DeadLetter:
    line, raw, error_type, message, *rest = rejection
    return DeadLetter(
        ref.bucket,
        ref.key,
        ref.version_id,
        line,
        raw,
        error_type,
        message,
        execution_arn,
        at,
        origin=origins.get(line),
        raw_base64=rest[0] if rest else None,
    )


def _is_whole_small_file(ref: ObjectRef, chunk: dict[str, Any], predicted: int) -> bool:
    return int(chunk["start"]) == 0 and int(chunk["end"]) >= ref.size and predicted <= SMALL_FILE_RECORDS


def _counts(
    chunk: dict[str, Any], *, records: int, predicted: int, dead: int, failed: int = 0
) -> dict[str, Any]:
    return {
        "chunk": int(chunk["index"]),
        "records": records,
        "predicted": predicted,
        "dead_lettered": dead,
        "failed": failed,
        "dead_letters_written": dead,
    }


def _error_of(state: dict[str, Any]) -> tuple[str, str]:
    """The error a Catch caught, and its cause in words: a Lambda's cause is its JSON error
    report (`errorType`, `errorMessage`, `stackTrace`), of which a dead letter wants the message."""
    error = state.get("error") or {}
    cause = str(error.get("Cause", ""))
    try:
        report = json.loads(cause)
    except ValueError:
        report = None
    if isinstance(report, dict) and "errorMessage" in report:
        cause = str(report["errorMessage"])
    return str(error.get("Error", "Unknown")), cause[:2000]


def dead_letter_chunk(payload: dict[str, Any], stores: Stores, replay_prefix: str = "") -> dict[str, Any]:
    """A chunk whose step failed for good: dead-letter each of its records with that error.

    If the chunk was validated, its records are known one by one, and each entry carries the
    line as the file holds it (read again from the pinned version); if it could not even be read,
    one entry for its first line stands for the whole byte range. A prediction part an earlier
    Route attempt may have written for the chunk is removed: no record ends both ways.
    """
    ref = ObjectRef.from_dict(payload["object"])
    execution_arn = payload["execution_arn"]
    chunk = payload["chunk"]
    state = payload["state"]
    error_type, cause = _error_of(state)
    at = now()
    stores.predictions.delete_part(ref, int(chunk["index"]))
    validated = state.get("validated")
    if validated is None:
        whole_file = int(chunk["start"]) == 0 and int(chunk["end"]) >= ref.size
        message = (
            f"the file could not be processed: {cause}"
            if whole_file
            else f"lines from {chunk['first_line']} (bytes {chunk['start']}-{chunk['end']}) "
            f"could not be processed: {cause}"
        )
        line = 0 if whole_file else int(chunk["first_line"])
        entry = DeadLetter(
            ref.bucket, ref.key, ref.version_id, line, "", error_type, message, execution_arn, at
        )
        stores.dead_letters.put([entry])
        return _counts(chunk, records=0, predicted=0, dead=1, failed=1)
    batch = stores.work.unstash(validated["batch"])
    raw_lines = _raw_lines(stores, ref, chunk)
    origins = _origins(stores, ref, replay_prefix)
    entries = [
        DeadLetter(
            ref.bucket,
            ref.key,
            ref.version_id,
            line,
            raw_lines.get(line, ""),
            error_type,
            f"not predicted: {cause}",
            execution_arn,
            at,
            origin=origins.get(line),
        )
        for line in batch["lines"]
    ] + [_rejection_entry(ref, rejection, execution_arn, at, origins) for rejection in batch["rejections"]]
    stores.dead_letters.put(entries, header=(batch.get("layout") or {}).get("header_line"))
    return _counts(chunk, records=len(entries), predicted=0, dead=len(entries), failed=1)


def _raw_lines(stores: Stores, ref: ObjectRef, chunk: dict[str, Any]) -> dict[int, str]:
    data = stores.source.read_range(ref, int(chunk["start"]), int(chunk["end"]))
    first = int(chunk["first_line"])
    if first == 1 and data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    texts = split_lines(data.decode("utf-8", errors="replace"))
    return {first + offset: text for offset, text in enumerate(texts)}


def dead_letter_file(payload: dict[str, Any], stores: Stores) -> dict[str, Any]:
    """The file could not be processed at all: one entry, line 0, says why."""
    event = payload["event"]
    error_type, cause = _error_of(event)
    execution_arn = payload["execution_arn"]
    try:
        ref: ObjectRef | None = ObjectRef.from_event(event)
    except MalformedEvent:
        ref = None
    if ref is None:
        # Not an S3 event at all: the entry keeps what arrived, so it can be looked into.
        raw = json.dumps({k: v for k, v in event.items() if k != "error"})[:1024]
        entry = DeadLetter("unknown", "unknown", None, 0, raw, error_type, cause, execution_arn, now())
        stores.dead_letters.put([entry])
        return {"source_key": "unknown", "dead_letters_written": 1}
    entry = DeadLetter(ref.bucket, ref.key, ref.version_id, 0, "", error_type, cause, execution_arn, now())
    stores.dead_letters.put([entry])
    counts = {"records": 0, "predicted": 0, "dead_lettered": 1, "failed_chunks": 0}
    stores.ledger.finish(ref, execution_arn, "FAILED", counts, error=error_type)
    return {"source_key": ref.key, "dead_letters_written": 1}


def finalize(payload: dict[str, Any], stores: Stores) -> dict[str, Any]:
    """Add up the chunks and commit the file's outcome: the manifest lists the parts that count
    (readers read those and no others), then the ledger records how the file ended."""
    ref = ObjectRef.from_dict(payload["object"])
    execution_arn = payload["execution_arn"]
    chunk_counts: list[dict[str, Any]] = payload["chunk_counts"]
    totals = {
        name: sum(int(counts[name]) for counts in chunk_counts)
        for name in ("records", "predicted", "dead_lettered")
    }
    failed_chunks = sum(int(counts["failed"]) for counts in chunk_counts)
    written = 0
    if totals["records"] == 0 and failed_chunks == 0:
        message = "the file holds no record lines (empty, blank or header only)"
        entry = DeadLetter(
            ref.bucket, ref.key, ref.version_id, 0, "", "NoRecords", message, execution_arn, now()
        )
        stores.dead_letters.put([entry])
        totals["dead_lettered"] = written = 1
    status = "SUCCEEDED" if failed_chunks == 0 and totals["records"] > 0 else "FAILED"
    compact = next((c["compact_predictions"] for c in chunk_counts if c.get("compact_predictions")), "")
    parts = (
        []
        if compact
        else [
            stores.predictions.part_key(ref, int(c["chunk"]))
            for c in chunk_counts
            if c["predicted"] and not c["failed"]
        ]
    )
    ignored: list[str] = next((c["ignored_columns"] for c in chunk_counts if c.get("ignored_columns")), [])
    summary = _file_summary(
        ref,
        execution_arn,
        payload.get("model_version"),
        status,
        totals | {"failed_chunks": failed_chunks},
        chunks=len(chunk_counts),
        predictions=f"s3://{stores.predictions.bucket}/{stores.predictions.folder(ref)}"
        if parts
        else "ledger",
        ignored=ignored,
    )
    if parts:
        stores.predictions.write_manifest(ref, summary | {"parts": parts})
    stores.ledger.finish(
        ref,
        execution_arn,
        status,
        totals | {"failed_chunks": failed_chunks},
        compact,
        model_version=str(payload.get("model_version") or ""),
    )
    return summary | {"dead_letters_written": written}


EXECUTION_ENDED: Final = "Step Functions Execution Status Change"
"""The EventBridge detail-type Step Functions emits when a Standard execution ends."""

_ENDED_AS: Final = {
    "FAILED": "ExecutionFailed",
    "TIMED_OUT": "ExecutionTimedOut",
    "ABORTED": "ExecutionAborted",
}


def close_unfinished_file(payload: dict[str, Any], stores: Stores) -> dict[str, Any]:
    """The chunks or Finalize failed past their retries (the state machine's Catch): close the
    file's ledger item and dead-letter the file whole, naming the error."""
    ref = ObjectRef.from_dict(payload["object"])
    error_type, cause = _error_of(payload)
    message = (
        f"the file's execution failed before its outcome was recorded ({error_type}: {cause}); "
        "its chunks' outputs are not committed: redrive the execution, or replay the file with --fixed"
    )
    written = _close(stores, ref, payload["execution_arn"], "FAILED", "FileNotFinished", message)
    return {"source_key": ref.key, "dead_letters_written": written}


def execution_ended(event: dict[str, Any], stores: Stores) -> dict[str, Any]:
    """An execution ended FAILED, TIMED_OUT or ABORTED (EventBridge): if its file is still
    RUNNING in the ledger, no state of the execution closed it, so close it here. A file that
    Finalize, a Catch or the dead-letter path already closed is left as it is."""
    detail = event["detail"]
    status = str(detail["status"])
    try:
        ref = ObjectRef.from_event(json.loads(detail.get("input") or "{}"))
    except (MalformedEvent, ValueError):
        return {"source_key": "", "dead_letters_written": 0}
    error_type = _ENDED_AS.get(status, "ExecutionFailed")
    reason = f"{detail.get('error') or status}: {detail.get('cause') or ''}".rstrip(": ")
    message = (
        f"the execution ended {status} before the file's outcome was recorded ({reason[:1500]}); "
        "redrive the execution (Standard), or replay the file with --fixed"
    )
    written = _close(stores, ref, str(detail["executionArn"]), status, error_type, message)
    return {"source_key": ref.key, "dead_letters_written": written}


def _close(
    stores: Stores, ref: ObjectRef, execution_arn: str, status: str, error_type: str, message: str
) -> int:
    """Close a file that no Finalize closed: the whole file becomes one dead letter, and a
    manifest Finalize may have written before it failed is removed, so that no reader sees
    its records both predicted and dead-lettered."""
    if not stores.ledger.close_unfinished(ref, execution_arn, status, error_type):
        return 0
    stores.predictions.delete_manifest(ref)
    entry = DeadLetter(ref.bucket, ref.key, ref.version_id, 0, "", error_type, message, execution_arn, now())
    stores.dead_letters.put([entry])
    return 1
