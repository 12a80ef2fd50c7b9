"""Replaying dead letters: their lines go back in through the input prefix, as new files.

A replay writes the selected entries' raw lines (or a corrected file) under
`<input prefix>replay/`, so each new execution starts from the same S3 event, rule and state
machine as any upload. An entry whose line is not known in full (a whole-file entry, or a
line cut short because it was too long) is replayed only with `--fixed`.

Layouts. Entries are grouped by the layout of the file they came from: JSON Lines (the raw
line starts with `{`), CSV under the header row the source had (kept by
`DeadLetterStore.put(..., header=...)`), or headerless CSV. Each group becomes one replay
file; a header group's file starts with its header, so its entries are lines 2, 3, ... Every
replay file carries the S3 user metadata `predictflow-header: present|absent`, so the parser
does not take a header-looking first line of a headerless file for a header. A line that
was not UTF-8 is written from its original bytes (`raw_base64`), not from its escaped text.

Crash safety, in four steps, each safe to stop after:

1. *Claim.* Each entry gets a `pending` mark (a conditional write: no mark yet, or a pending
   mark that expired) naming the replay file and the line it will be, with an expiry
   (`PENDING_SECONDS`). Two runs cannot claim one entry, so no line goes into two files.
2. *Lineage.* The replay file's lines are mapped to their original upload's lines
   (`DeadLetterStore.origins`), before the file exists, so the pipeline always finds them.
3. *Upload.* The replay file is put, once.
4. *Resolve.* The marks become `done`, with the replay file's version.

Stopped after 1 or 2 (Ctrl-C, kill, a failed call), the pending marks name a file that was
never written: once they expire, the entries are open again and the next replay takes them.
Stopped after 3, the marks name a file that exists: every reader (`dead-letters`,
`results`, the next `replay`) treats such a mark as done and resolves it. A run that took
more than half the expiry to reach its upload gives its claims back instead of uploading,
so an entry taken over after its expiry is never also uploaded by its first claimant.

`--fixed F` submits F in place of the entries' lines, and is all or nothing: one lock item
per content of F (its SHA-256) lets one run upload it; a run that cannot claim every entry
of its selection gives its claims back and uploads nothing. When F holds one line per
selected entry, in the order `replay --dry-run` lists them (after an optional header row),
its lines are linked to the entries line by line; otherwise only the marks say which file
took the entries.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from botocore.exceptions import ClientError

from predictflow.pipeline.stores import (
    HEADER_SORT_KEY,
    DeadLetterStore,
    now,
    typed,
    uploaded_version,
)
from predictflow.records import RAW_EXCERPT_CHARS
from predictflow.service.results import Results, origin_of

PENDING_SECONDS: Final = 900.0
"""How long a claim holds before another replay may take its entries over. Long beside a
replay's own run (seconds), short beside how long an operator waits to retry."""

HEADER_METADATA: Final = "predictflow-header"
LOCK_SORT_KEY: Final = "lock"


class ReplayRefused(Exception):
    """A replay that must not run as asked; the message says why, in one line."""


@dataclass
class ReplayFile:
    """One file a replay uploads: its key, layout and the entries its lines carry."""

    key: str
    header: str | None
    entries: list[dict[str, Any]] = field(default_factory=list)
    body: bytes = b""
    lines: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Line number in this file -> the entry it carries."""
    version: str = ""


@dataclass
class ReplayPlan:
    files: list[ReplayFile] = field(default_factory=list)
    skipped: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    fixed_sha256: str = ""

    @property
    def entries(self) -> list[dict[str, Any]]:
        return [entry for replay_file in self.files for entry in replay_file.entries]

    @property
    def key(self) -> str:
        return ", ".join(replay_file.key for replay_file in self.files)


@dataclass
class ReplayOutcome:
    taken: list[dict[str, Any]] = field(default_factory=list)
    uploaded: list[ReplayFile] = field(default_factory=list)
    note: str = ""


def replayable(entry: dict[str, Any]) -> str | None:
    """Why an entry cannot be replayed from its own raw line, or None if it can."""
    if int(entry["line"]) == 0 or not (entry.get("raw") or entry.get("raw_base64")):
        return "no single line to replay (whole file or unreadable chunk): use --fixed"
    if str(entry["raw"]).endswith("…") and len(str(entry["raw"])) > RAW_EXCERPT_CHARS:
        return "the stored line is an excerpt of a longer line: use --fixed"
    return None


def raw_bytes(entry: dict[str, Any]) -> bytes:
    """The line as it was uploaded: its original bytes where it was not UTF-8."""
    if entry.get("raw_base64"):
        return base64.b64decode(str(entry["raw_base64"]))
    return str(entry["raw"]).encode()


def _fixed_has_header(lines: list[bytes], headers: set[str]) -> bool:
    """Whether a corrected file starts with a header row: it is one the sources had, or its
    first field is a name rather than a value (records start with a number, `?` or `{`)."""
    first = lines[0].decode("utf-8", "replace").lstrip("\ufeff").strip()
    if first in headers:
        return True
    field_text = first.split(",", 1)[0].strip()
    return bool(field_text) and not first.startswith("{") and field_text[0].isalpha()


def plan(results: Results, entries: list[dict[str, Any]], fixed: bytes | None) -> ReplayPlan:
    """Which files the replay would write, and which entries it must skip (and why)."""
    prefix = f"{results.names.input_prefix}replay/"
    replay = ReplayPlan()
    headers = {str(entry["pk"]): results.header(str(entry["pk"])) for entry in entries}
    if fixed is not None:
        if not entries:
            return replay
        sha = hashlib.sha256(fixed).hexdigest()
        replay.fixed_sha256 = sha
        lines = [line.rstrip(b"\r") for line in fixed.split(b"\n") if line.strip()]
        has_header = bool(lines) and _fixed_has_header(lines, {h for h in headers.values() if h})
        replay_file = ReplayFile(f"{prefix}fixed-{sha[:20]}.csv", "" if has_header else None, list(entries))
        replay_file.body = fixed
        records = lines[1:] if has_header else lines
        if len(records) == len(entries):
            first = 2 if has_header else 1
            replay_file.lines = {first + i: entry for i, entry in enumerate(entries)}
        replay.files.append(replay_file)
        return replay
    groups: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for entry in entries:
        reason = replayable(entry)
        if reason is not None:
            replay.skipped.append((entry, reason))
            continue
        if raw_bytes(entry).lstrip().startswith(b"{"):
            layout: tuple[str, str | None] = ("jsonl", None)
        else:
            layout = ("csv", headers[str(entry["pk"])])
        groups.setdefault(layout, []).append(entry)
    run = f"{now()[:10]}-{uuid.uuid4().hex[:12]}"
    for number, ((kind, header), members) in enumerate(sorted(groups.items(), key=str), start=1):
        replay_file = ReplayFile(f"{prefix}{run}-{number}.{kind}", header, members)
        first = 1
        body = []
        if header is not None:
            body.append(header.encode() + b"\n")
            first = 2
        for offset, entry in enumerate(members):
            body.append(raw_bytes(entry) + b"\n")
            replay_file.lines[first + offset] = entry
        replay_file.body = b"".join(body)
        replay.files.append(replay_file)
    return replay


def _expires(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def _conditional_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in (
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
    )


class _Submission:
    """One run of `submit`: the claims it holds, so that it can give them back."""

    def __init__(
        self,
        results: Results,
        s3: Any,
        dynamodb: Any,
        pending_seconds: float,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.results = results
        self.names = results.names
        self.s3 = s3
        self.dynamodb = dynamodb
        self.pending_seconds = pending_seconds
        self.progress = progress or (lambda _: None)
        self.started = time.monotonic()
        self.claimed: list[tuple[dict[str, Any], ReplayFile, int]] = []

    def claim(self, entry: dict[str, Any], replay_file: ReplayFile, line: int) -> bool:
        """Take `entry` for `replay_file`'s `line` with a pending mark; False if another
        replay holds it."""
        mark = {
            "pk": entry["pk"],
            "sk": DeadLetterStore.mark_key(int(entry["line"])),
            "line": int(entry["line"]),
            # The GSIs' keys, so that filtered queries see the mark beside its entry.
            "error_type": entry["error_type"],
            "time": entry["time"],
            "origin_key": entry.get("origin_key") or entry["source_key"],
            "state": "pending",
            "expires_at": _expires(self.pending_seconds),
            "replayed_as": replay_file.key,
            "replayed_line": line,
            "replayed_at": now(),
        }
        try:
            self.dynamodb.put_item(
                TableName=self.names.dead_letter_table,
                Item={name: typed(value) for name, value in mark.items()},
                # A pending mark past its expiry whose file exists is done, not stale: the
                # selection (Results.dead_letters) never offers such an entry.
                ConditionExpression="attribute_not_exists(sk) OR (#state = :pending AND expires_at < :now)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":pending": {"S": "pending"}, ":now": {"S": now()}},
            )
        except ClientError as error:
            if _conditional_failed(error):
                return False
            raise
        self.claimed.append((entry, replay_file, line))
        self.progress(1)
        return True

    def release(self) -> None:
        """Give back the claims this run holds (best effort: they expire anyway)."""
        for entry, replay_file, _ in self.claimed:
            try:
                self.dynamodb.delete_item(
                    TableName=self.names.dead_letter_table,
                    Key={"pk": {"S": entry["pk"]}, "sk": {"S": DeadLetterStore.mark_key(int(entry["line"]))}},
                    ConditionExpression="replayed_as = :mine AND #state = :pending",
                    ExpressionAttributeNames={"#state": "state"},
                    ExpressionAttributeValues={":mine": {"S": replay_file.key}, ":pending": {"S": "pending"}},
                )
            except ClientError as error:
                if not _conditional_failed(error):
                    raise
        self.claimed = []

    def write_lineage(self, replay_file: ReplayFile, lines: dict[int, dict[str, Any]]) -> None:
        store = DeadLetterStore(self.dynamodb, self.names.dead_letter_table)
        partition = store.lineage_partition(self.names.input_bucket, replay_file.key)
        origins = self.results.origin_lookup()
        items = []
        for line, entry in sorted(lines.items()):
            origin = origin_of(entry, origins)
            item = {
                "pk": partition,
                "sk": store.sort_key(line),
                "source_key": origin["source_key"],
                "version_id": origin["version_id"],
                "line": int(origin["line"]),
                "attempt": int(origin["attempt"]) + 1,
            }
            items.append({name: typed(value) for name, value in item.items()})
        for start in range(0, len(items), 25):
            store._batch_write(items[start : start + 25])

    def upload(self, replay_file: ReplayFile) -> None:
        if time.monotonic() - self.started > self.pending_seconds / 2:
            # Our claims may have expired and been taken over: uploading now could submit
            # their lines a second time.
            self.release()
            raise ReplayRefused("the replay took too long to reach its upload; its claims were given back")
        response = self.s3.put_object(
            Bucket=self.names.input_bucket,
            Key=replay_file.key,
            Body=replay_file.body,
            Metadata={HEADER_METADATA: "absent" if replay_file.header is None else "present"},
        )
        replay_file.version = uploaded_version(response)

    def resolve(self, replay_file: ReplayFile) -> None:
        for entry, held_by, _ in self.claimed:
            if held_by is not replay_file:
                continue
            self.dynamodb.update_item(
                TableName=self.names.dead_letter_table,
                Key={"pk": {"S": entry["pk"]}, "sk": {"S": DeadLetterStore.mark_key(int(entry["line"]))}},
                UpdateExpression="SET #state = :done, replayed_version = :version REMOVE expires_at",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":done": {"S": "done"}, ":version": {"S": replay_file.version}},
            )
            self.progress(1)

    def lock(self, replay_file: ReplayFile) -> str | None:
        """Take the one right to upload this corrected file; None if taken, else an empty
        string (or the holder's state, when another run holds or used it)."""
        key = {"pk": {"S": f"replay#{replay_file.key}"}, "sk": {"S": LOCK_SORT_KEY}}
        try:
            self.dynamodb.put_item(
                TableName=self.names.dead_letter_table,
                Item=key | {"state": {"S": "pending"}, "expires_at": {"S": _expires(self.pending_seconds)}},
                ConditionExpression="attribute_not_exists(sk) OR (#state = :pending AND expires_at < :now)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":pending": {"S": "pending"}, ":now": {"S": now()}},
            )
            if self.results.replay_file_version(replay_file.key):
                # A run that stopped after its upload left the lock pending: it was used.
                self.set_lock(replay_file, "done")
                return "done"
            return None
        except ClientError as error:
            if not _conditional_failed(error):
                raise
        item = self.dynamodb.get_item(
            TableName=self.names.dead_letter_table, Key=key, ConsistentRead=True
        ).get("Item", {})
        return str(item.get("state", {}).get("S", "pending"))

    def set_lock(self, replay_file: ReplayFile, state: str) -> None:
        key = {"pk": {"S": f"replay#{replay_file.key}"}, "sk": {"S": LOCK_SORT_KEY}}
        if state == "free":
            self.dynamodb.delete_item(TableName=self.names.dead_letter_table, Key=key)
            return
        self.dynamodb.put_item(TableName=self.names.dead_letter_table, Item=key | {"state": {"S": state}})


def submit(
    results: Results,
    s3: Any,
    dynamodb: Any,
    replay: ReplayPlan,
    fixed: bytes | None,
    *,
    pending_seconds: float = PENDING_SECONDS,
    progress: Callable[[int], None] | None = None,
) -> ReplayOutcome:
    """Claim, link, upload and resolve (see the module's docstring). `progress` hears one
    step per claim and one per resolved mark (twice the entries in all)."""
    run = _Submission(results, s3, dynamodb, pending_seconds, progress)
    outcome = ReplayOutcome()
    if fixed is not None:
        (replay_file,) = replay.files
        held = run.lock(replay_file)
        if held is not None:
            outcome.note = (
                f"this corrected file was already replayed as {replay_file.key}"
                if held == "done"
                else f"another replay is submitting this corrected file as {replay_file.key}"
            )
            return outcome
        # Stopped before the upload, the lock stays pending and expires like the marks.
        by_entry = {id(entry): line for line, entry in replay_file.lines.items()}
        for entry in replay_file.entries:
            if not run.claim(entry, replay_file, by_entry.get(id(entry), 0)):
                run.release()
                run.set_lock(replay_file, "free")
                outcome.note = "another replay took some of these entries meanwhile: nothing submitted"
                return outcome
        run.write_lineage(replay_file, replay_file.lines)
        run.upload(replay_file)
        run.set_lock(replay_file, "done")
        run.resolve(replay_file)
        outcome.taken = list(replay_file.entries)
        outcome.uploaded.append(replay_file)
        return outcome
    for replay_file in replay.files:
        # Lines are numbered as taken, so entries another replay holds leave no gaps.
        line = 2 if replay_file.header is not None else 1
        taken: dict[int, dict[str, Any]] = {}
        for entry in replay_file.entries:
            if run.claim(entry, replay_file, line):
                taken[line] = entry
                line += 1
        if not taken:
            continue
        replay_file.lines = taken
        replay_file.entries = list(taken.values())
        header = [replay_file.header.encode() + b"\n"] if replay_file.header is not None else []
        replay_file.body = b"".join(header + [raw_bytes(entry) + b"\n" for entry in taken.values()])
        run.write_lineage(replay_file, taken)
        run.upload(replay_file)
        run.resolve(replay_file)
        outcome.taken.extend(taken.values())
        outcome.uploaded.append(replay_file)
    if not outcome.taken:
        outcome.note = "another replay took these entries first"
    return outcome


__all__ = [
    "HEADER_METADATA",
    "HEADER_SORT_KEY",
    "PENDING_SECONDS",
    "ReplayFile",
    "ReplayOutcome",
    "ReplayPlan",
    "ReplayRefused",
    "plan",
    "replayable",
    "submit",
]
