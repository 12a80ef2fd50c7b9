"""The pipeline's steps as plain functions; the Lambda handlers in functions/ are thin
wrappers that add logging, tracing and metrics.

    Fetch       claim the object version, plan byte-range chunks at line boundaries
    Validate    read a chunk, parse and validate every line
    Predict     score the chunk's valid records
    Route       write predictions and dead-letter entries, one per record
    Finalize    add up the chunks, write the manifest, decide the outcome

Payloads between steps are JSON. Validate's batch is columnar: `{"lines": [...], "features":
<base64 of the (n, 14) float32 matrix>, "actual": [...] (labelled files only), "rejections":
[[line, raw, error_type, message], ...]}`. Predict adds only what it knows,
`{"probabilities": <base64 float64>, "model_version": ...}`, and Route reads both. Each
travels inline when small and by S3 reference otherwise (see `WorkStore`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from predictflow.errors import FileTooLarge, MalformedEvent
from predictflow.features import FeatureMatrix, decode, decode_columns, matrix_from_text, matrix_to_text
from predictflow.pipeline.chunks import plan_chunks
from predictflow.pipeline.settings import Settings
from predictflow.pipeline.stores import (
    DeadLetter,
    DeadLetterStore,
    Ledger,
    ObjectRef,
    PredictionStore,
    SourceReader,
    WorkStore,
    now,
)
from predictflow.predictors import Predictor, label_for, labels_for
from predictflow.records import parse_chunk
from predictflow.schema import (
    FEATURE_NAMES,
    FIELDS,
    LABELS,
    MISSING,
    CategoricalField,
)


@dataclass(frozen=True, slots=True)
class Stores:
    """The storage the steps use, built once per container from the settings."""

    source: SourceReader
    work: WorkStore
    predictions: PredictionStore
    dead_letters: DeadLetterStore
    ledger: Ledger

    @classmethod
    def create(cls, settings: Settings, s3: Any, dynamodb: Any) -> Stores:
        return cls(
            source=SourceReader(s3),
            work=WorkStore(s3, settings.output_bucket, settings.work_prefix),
            predictions=PredictionStore(s3, settings.output_bucket, settings.predictions_prefix),
            dead_letters=DeadLetterStore(dynamodb, settings.dead_letter_table),
            ledger=Ledger(dynamodb, settings.ledger_table),
        )


SMALL_FILE_RECORDS = 3
"""A file of at most this many records keeps its predictions on its ledger item (see
`route_chunk`), compactly, so that the item stays within one DynamoDB write unit; larger
files get JSON-lines objects in S3 and a manifest."""


def prediction_entry(
    ref: ObjectRef,
    line: int,
    values: list[Any],
    probability: float,
    actual: str | None,
    model_version: str,
    execution_arn: str,
) -> dict[str, Any]:
    """One success entry: the shape of every prediction the pipeline stores."""
    entry = {
        "source_bucket": ref.bucket,
        "source_key": ref.key,
        "version_id": ref.version_id,
        "line": line,
        "features": dict(zip(FEATURE_NAMES, values, strict=True)),
        "label": label_for(probability),
        "probability": probability,
        "model_version": model_version,
        "execution_arn": execution_arn,
    }
    if actual is not None:
        entry["actual"] = actual
    return entry


def execution_name(execution_arn: str) -> str:
    return execution_arn.rsplit(":", 1)[-1]


def fetch(event: dict[str, Any], execution_arn: str, settings: Settings, stores: Stores) -> dict[str, Any]:
    ref = ObjectRef.from_event(event)
    holder = stores.ledger.claim(ref, execution_arn)
    plan: dict[str, Any] = {
        "object": ref.as_dict(),
        "execution_arn": execution_arn,
        "duplicate": holder is not None,
        "chunks": [],
    }
    if holder is not None:
        plan["claimed_by"] = holder
        return plan
    if ref.size > settings.max_file_bytes:
        raise FileTooLarge(
            f"s3://{ref.bucket}/{ref.key} is {ref.size} bytes; the limit is {settings.max_file_bytes}"
        )
    if ref.size <= settings.chunk_bytes:
        # One chunk: Validate's ranged GET of the pinned version is the first read, and it
        # reports a missing object as well as a HEAD would, for one request less.
        plan["chunks"] = [{"index": 1, "first_line": 1, "start": 0, "end": ref.size}]
    else:
        plan["chunks"] = plan_chunks(stores.source.stream(ref), settings.chunk_bytes)
    return plan


def _stash_name(execution_arn: str, chunk: dict[str, Any], stage: str) -> str:
    return f"{execution_name(execution_arn)}/chunk-{int(chunk['index']):05d}/{stage}"


def validate(payload: dict[str, Any], stores: Stores) -> tuple[dict[str, Any], dict[str, int]]:
    ref = ObjectRef.from_dict(payload["object"])
    chunk = payload["chunk"]
    data = stores.source.read_range(ref, int(chunk["start"]), int(chunk["end"]))
    first_line = int(chunk["first_line"])
    batch = parse_chunk(data, first_line, allow_header=first_line == 1)
    out: dict[str, Any] = {
        "lines": batch.lines,
        "features": matrix_to_text(batch.features),
        "rejections": [[r.line, r.raw, r.reason.value, r.message] for r in batch.rejections],
    }
    if any(label is not None for label in batch.actual):
        out["actual"] = batch.actual
    counts = {"valid": len(batch), "rejected": len(batch.rejections)}
    return stores.work.stash(out, _stash_name(payload["execution_arn"], chunk, "validated")), counts


def _features(batch: dict[str, Any]) -> FeatureMatrix:
    return matrix_from_text(batch["features"], np.float32, len(FEATURE_NAMES))  # type: ignore[return-value]


def predict(payload: dict[str, Any], predictor: Predictor, stores: Stores) -> tuple[dict[str, Any], int]:
    """Score the validated batch. The records themselves stay where Validate put them: Route
    reads them from there, so Predict neither copies nor re-sends them."""
    batch = stores.work.unstash(payload["batch"])
    probabilities = predictor.probabilities(_features(batch))
    scores = {"probabilities": matrix_to_text(probabilities), "model_version": predictor.model_version}
    envelope = stores.work.stash(scores, _stash_name(payload["execution_arn"], payload["chunk"], "predicted"))
    return envelope, len(probabilities)


def route_chunk(payload: dict[str, Any], stores: Stores) -> dict[str, Any]:
    ref = ObjectRef.from_dict(payload["object"])
    execution_arn = payload["execution_arn"]
    chunk = payload["chunk"]
    batch = stores.work.unstash(payload["batch"])
    scores = stores.work.unstash(payload["predicted"])
    model_version = scores["model_version"]
    lines: list[int] = batch["lines"]
    features = _features(batch)
    probabilities = matrix_from_text(scores["probabilities"], np.float64)
    if len(probabilities) != len(lines):
        raise ValueError(
            f"{len(probabilities)} probabilities for {len(lines)} records: the batches do not match"
        )
    actual: list[str | None] = batch.get("actual") or [None] * len(lines)
    counts: dict[str, Any] = {}
    if _is_whole_small_file(ref, chunk, len(lines)):
        # An S3 PUT costs more than the rest of a one-record file's processing; its
        # predictions ride to Finalize in compact form and are kept on its ledger item.
        rows = [
            [line, list(values), probability, label]
            for line, values, probability, label in zip(
                lines, decode(features), probabilities.tolist(), actual, strict=True
            )
        ]
        counts["compact_predictions"] = {"model_version": model_version, "rows": rows}
    elif lines:
        jsonl = prediction_lines(ref, lines, features, probabilities, actual, model_version, execution_arn)
        stores.predictions.write_part(ref, int(chunk["index"]), jsonl)
    at = now()
    dead = [
        DeadLetter(ref.bucket, ref.key, ref.version_id, line, raw, error_type, message, execution_arn, at)
        for line, raw, error_type, message in batch["rejections"]
    ]
    stores.dead_letters.put(dead)
    return counts | _counts(chunk, records=len(lines) + len(dead), predicted=len(lines), dead=len(dead))


_QUOTED: Final = {
    index: {value: json.dumps(value) for value in (*field.categories, MISSING)}
    for index, field in enumerate(FIELDS)
    if isinstance(field, CategoricalField)
}
_FEATURES_FORMAT: Final = "{" + ",".join(f'"{name}":%s' for name in FEATURE_NAMES) + "}"
_LABEL_JSON: Final = {label: json.dumps(label) for label in LABELS}


def prediction_lines(
    ref: ObjectRef,
    lines: list[int],
    features: FeatureMatrix,
    probabilities: npt.NDArray[np.float64],
    actual: list[str | None],
    model_version: str,
    execution_arn: str,
) -> str:
    """JSON lines for a chunk's predictions, byte for byte `json.dumps(prediction_entry(...))`.

    Built a column at a time (each value formatted by a C-level map) rather than a dict and
    an encoder call per record: this is the hot path of a large file.
    """
    columns = decode_columns(features)
    text_columns = [
        list(map(_QUOTED[index].__getitem__, column)) if index in _QUOTED else list(map(str, column))  # type: ignore[arg-type]
        for index, column in enumerate(columns)
    ]
    features_json = map(_FEATURES_FORMAT.__mod__, zip(*text_columns, strict=True))
    labels = list(map(_LABEL_JSON.__getitem__, labels_for(probabilities)))
    scores = map(repr, probabilities.tolist())
    endings = ["}\n" if label is None else f',"actual":{json.dumps(label)}}}\n' for label in actual]
    # Everything but the five per-record fields is the same for the whole chunk.
    constant = {name: json.dumps(value).replace("%", "%%") for name, value in (
        ("bucket", ref.bucket), ("key", ref.key), ("version", ref.version_id),
        ("model", model_version), ("execution", execution_arn),
    )}  # fmt: skip
    line_format = (
        f'{{"source_bucket":{constant["bucket"]},"source_key":{constant["key"]},'
        f'"version_id":{constant["version"]},"line":%d,"features":%s,"label":%s,"probability":%s,'
        f'"model_version":{constant["model"]},"execution_arn":{constant["execution"]}%s'
    )
    return "".join(map(line_format.__mod__, zip(lines, features_json, labels, scores, endings, strict=True)))


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
    error = state.get("error") or {}
    return str(error.get("Error", "Unknown")), str(error.get("Cause", ""))[:2000]


def dead_letter_chunk(payload: dict[str, Any], stores: Stores) -> dict[str, Any]:
    """A chunk whose step failed for good: dead-letter each of its records with that error.

    If the chunk was validated, its records are known one by one; if it could not even be
    read, one entry for its first line stands for the whole byte range.
    """
    ref = ObjectRef.from_dict(payload["object"])
    execution_arn = payload["execution_arn"]
    chunk = payload["chunk"]
    state = payload["state"]
    error_type, cause = _error_of(state)
    at = now()
    validated = state.get("validated")
    if validated is None:
        whole_file = int(chunk["start"]) == 0 and int(chunk["end"]) >= ref.size
        message = (
            f"the file could not be read: {cause}"
            if whole_file
            else f"lines from {chunk['first_line']} (bytes {chunk['start']}-{chunk['end']}) "
            f"could not be read: {cause}"
        )
        entry = DeadLetter(
            ref.bucket,
            ref.key,
            ref.version_id,
            0 if whole_file else int(chunk["first_line"]),
            "",
            error_type,
            message,
            execution_arn,
            at,
        )
        stores.dead_letters.put([entry])
        return _counts(chunk, records=0, predicted=0, dead=1, failed=1)
    batch = stores.work.unstash(validated["batch"])
    labels = batch.get("actual") or [None] * len(batch["lines"])
    entries = [
        DeadLetter(
            ref.bucket,
            ref.key,
            ref.version_id,
            line,
            ", ".join(map(str, [*values, label] if label else values)),
            error_type,
            f"not predicted: {cause}",
            execution_arn,
            at,
        )
        for line, values, label in zip(batch["lines"], decode(_features(batch)), labels, strict=True)
    ] + [
        DeadLetter(ref.bucket, ref.key, ref.version_id, line, raw, kind, message, execution_arn, at)
        for line, raw, kind, message in batch["rejections"]
    ]
    stores.dead_letters.put(entries)
    return _counts(chunk, records=len(entries), predicted=0, dead=len(entries), failed=1)


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
        stores.dead_letters.put(
            [
                DeadLetter(
                    ref.bucket,
                    ref.key,
                    ref.version_id,
                    0,
                    "",
                    "NoRecords",
                    "the file holds no record lines (empty, blank or header only)",
                    execution_arn,
                    now(),
                )
            ]
        )
        totals["dead_lettered"] = written = 1
    status = "SUCCEEDED" if failed_chunks == 0 and totals["records"] > 0 else "FAILED"
    compact = next((c["compact_predictions"] for c in chunk_counts if "compact_predictions" in c), None)
    inline = json.dumps(compact, separators=(",", ":")) if compact else ""
    parts = (
        []
        if compact
        else [stores.predictions.part_key(ref, int(c["chunk"])) for c in chunk_counts if c["predicted"]]
    )
    summary = {
        "source_bucket": ref.bucket,
        "source_key": ref.key,
        "version_id": ref.version_id,
        "execution_arn": execution_arn,
        "status": status,
        **totals,
        "failed_chunks": failed_chunks,
        "chunks": len(chunk_counts),
        "predictions": (
            f"s3://{stores.predictions.bucket}/{stores.predictions.folder(ref)}" if parts else "ledger"
        ),
        "finished_at": now(),
    }
    if parts:
        stores.predictions.write_manifest(ref, summary | {"parts": parts})
    stores.ledger.finish(ref, execution_arn, status, totals | {"failed_chunks": failed_chunks}, inline)
    return summary | {"dead_letters_written": written}
