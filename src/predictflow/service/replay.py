"""Replaying dead letters: their lines go back in through the input prefix, as a new file.

A replay writes the selected entries' raw lines (or a corrected file) to
`<input prefix>replay/<id>.csv`, so the new execution starts from the same S3 event, rule and
state machine as any upload. Each replayed entry gets a mark in the dead-letter table,
written with a condition, so a second replay (even a concurrent one) cannot take it again.
An entry whose line is not known in full (a whole-file entry, or a line cut short because
it was too long) is replayed only with `--fixed`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from predictflow.pipeline.stores import DeadLetterStore, now, uploaded_version
from predictflow.records import RAW_EXCERPT_CHARS
from predictflow.service.results import Results


@dataclass
class ReplayPlan:
    key: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[dict[str, Any], str]] = field(default_factory=list)


def replayable(entry: dict[str, Any]) -> str | None:
    """Why an entry cannot be replayed from its own raw line, or None if it can."""
    if int(entry["line"]) == 0 or not entry.get("raw"):
        return "no single line to replay (whole file or unreadable chunk): use --fixed"
    if str(entry["raw"]).endswith("…") and len(str(entry["raw"])) > RAW_EXCERPT_CHARS:
        return "the stored line is an excerpt of a longer line: use --fixed"
    return None


def plan(results: Results, entries: list[dict[str, Any]], fixed: bytes | None) -> ReplayPlan:
    key = f"{results.names.input_prefix}replay/{now()[:10]}-{uuid.uuid4().hex[:12]}.csv"
    replay = ReplayPlan(key)
    for entry in entries:
        reason = None if fixed is not None else replayable(entry)
        if reason is None:
            replay.entries.append(entry)
        else:
            replay.skipped.append((entry, reason))
    return replay


def submit(
    results: Results, s3: Any, dynamodb: Any, replay: ReplayPlan, fixed: bytes | None
) -> tuple[list[dict[str, Any]], str]:
    """Mark each entry as ours, then upload the replay file. Returns the entries taken and
    the version of the replay file (empty when none was taken, and nothing uploaded)."""
    taken = []
    for entry in replay.entries:
        try:
            dynamodb.put_item(
                TableName=results.names.dead_letter_table,
                Item={
                    "pk": {"S": entry["pk"]},
                    "sk": {"S": DeadLetterStore.mark_key(int(entry["line"]))},
                    "line": {"N": str(entry["line"])},
                    "replayed_as": {"S": replay.key},
                    "replayed_at": {"S": now()},
                },
                ConditionExpression="attribute_not_exists(sk)",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                continue  # another replay took it first
            raise
        taken.append(entry)
    if not taken:
        return [], ""
    body = fixed if fixed is not None else "".join(f"{entry['raw']}\n" for entry in taken).encode()
    response = s3.put_object(Bucket=results.names.input_bucket, Key=replay.key, Body=body)
    return taken, uploaded_version(response)
