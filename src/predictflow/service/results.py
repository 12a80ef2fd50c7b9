"""Reading what the pipeline wrote, for the CLI and the tests: per-file outcomes from the
ledger, predictions (ledger item or S3 parts), and dead-letter entries."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from predictflow.pipeline.stores import (
    BY_ERROR_TYPE,
    BY_ORIGIN_KEY,
    ENTRY_PREFIX,
    HEADER_SORT_KEY,
    REPLAY_MARK,
    DeadLetterStore,
    Ledger,
    PredictionStore,
    now,
    plain,
    prediction_folder,
)


@dataclass(frozen=True)
class StackNames:
    """The names a deployed (or local) stack publishes as its Outputs."""

    input_bucket: str
    input_prefix: str
    output_bucket: str
    predictions_prefix: str
    dead_letter_table: str
    ledger_table: str
    state_machine_arn: str
    event_dead_letter_queue_url: str | None = None
    """The EventBridge rule's dead-letter queue (None for a stack from before it had one)."""
    model_bucket: str | None = None
    """The model store (None for a stack from before model bundles)."""
    onnx_runtime: str = "Included"
    """Whether the scoring functions carry ONNX Runtime (the `OnnxRuntime` parameter; a stack
    from before the Output always did)."""

    @classmethod
    def from_outputs(cls, outputs: dict[str, str]) -> StackNames:
        return cls(
            input_bucket=outputs["InputBucketName"],
            input_prefix=outputs["InputPrefix"],
            output_bucket=outputs["OutputBucketName"],
            predictions_prefix=outputs["PredictionsPrefix"],
            dead_letter_table=outputs["DeadLetterTableName"],
            ledger_table=outputs["LedgerTableName"],
            state_machine_arn=outputs["StateMachineArn"],
            event_dead_letter_queue_url=outputs.get("EventDeadLetterQueueUrl"),
            model_bucket=outputs.get("ModelBucketName"),
            onnx_runtime=outputs.get("OnnxRuntime", "Included"),
        )


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {name: plain(value) for name, value in item.items()}


def version_of(item: dict[str, Any]) -> str:
    """The upload version an entry or mark belongs to (the end of its partition key)."""
    return str(item["pk"]).rsplit("#", 1)[1]


def origin_of(entry: dict[str, Any], origins: Callable[[str], dict[int, dict[str, Any]]]) -> dict[str, Any]:
    """Where an entry's line first came from: `{"source_key", "version_id", "line",
    "attempt"}`, `attempt` counting the replays it went through (0: the upload itself).

    The entry's own `origin` where the pipeline stored one, else the lineage of the replay
    file it is a line of, else the entry itself."""
    stored = entry.get("origin")
    if isinstance(stored, dict) and stored.get("source_key"):
        return stored
    found = origins(str(entry["source_key"])).get(int(entry["line"]))
    if found:
        return found
    return {
        "source_key": entry["source_key"],
        "version_id": version_of(entry),
        "line": int(entry["line"]),
        "attempt": 0,
    }


class Results:
    def __init__(self, names: StackNames, s3: Any, dynamodb: Any) -> None:
        self.names = names
        self._s3 = s3
        self._dynamodb = dynamodb

    def file(self, key: str, version: str) -> dict[str, Any] | None:
        """The ledger item of one uploaded version: status, counts, execution."""
        identity = Ledger.item_key(self.names.input_bucket, key, version)
        item = self._dynamodb.get_item(
            TableName=self.names.ledger_table, Key={"pk": {"S": identity}}, ConsistentRead=True
        ).get("Item")
        return _plain(item) if item else None

    def files(self) -> list[dict[str, Any]]:
        paginator = self._dynamodb.get_paginator("scan")
        items = [
            _plain(item)
            for page in paginator.paginate(TableName=self.names.ledger_table)
            for item in page.get("Items", [])
        ]
        return sorted(items, key=lambda item: str(item.get("claimed_at", "")))

    def prediction_lines(self, key: str, version: str) -> Iterator[bytes]:
        """Every prediction for one uploaded version as a JSON line, in line order: a small
        file's lines from its ledger item, a larger one's from the parts its manifest lists.

        The manifest is the commit: a part it does not list (a chunk dead-lettered after a Route
        attempt wrote it, or an execution still running) is not a prediction yet."""
        outcome = self.file(key, version)
        if outcome and outcome.get("compact_predictions"):
            yield from (line for line in str(outcome["compact_predictions"]).encode().splitlines() if line)
            return
        manifest = self.manifest(key, version)
        for part in manifest["parts"] if manifest else []:
            data = self._s3.get_object(Bucket=self.names.output_bucket, Key=part)["Body"].read()
            yield from PredictionStore.part_lines(data)

    def manifest(self, key: str, version: str) -> dict[str, Any] | None:
        """What Finalize committed for one uploaded version of more than a few records: its
        source, execution, model version, counts and prediction parts (None until then)."""
        manifest_key = prediction_folder(self.names.predictions_prefix, key, version) + "_manifest.json"
        try:
            body = self._s3.get_object(Bucket=self.names.output_bucket, Key=manifest_key)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None
        return dict(json.loads(body))

    def predictions(self, key: str, version: str) -> Iterator[dict[str, Any]]:
        """Every prediction for one uploaded version, in line order."""
        return map(json.loads, self.prediction_lines(key, version))

    # ------------------------------------------------------------ dead letters
    def _query(self, index: str | None, name: str, value: str) -> list[dict[str, Any]]:
        arguments: dict[str, Any] = {
            "TableName": self.names.dead_letter_table,
            "KeyConditionExpression": "#key = :value",
            "ExpressionAttributeNames": {"#key": name},
            "ExpressionAttributeValues": {":value": {"S": value}},
        }
        if index is not None:
            arguments["IndexName"] = index
        pages = self._dynamodb.get_paginator("query").paginate(**arguments)
        return [_plain(item) for page in pages for item in page.get("Items", [])]

    def _chain_items(self, source_key: str) -> list[dict[str, Any]]:
        """Entries and marks of every chain that starts at `source_key`: its own, then those
        of the replay files its marks name (whose entries the pipeline may not have tied to
        their origin), and so on. Queries only."""
        items: dict[tuple[str, str], dict[str, Any]] = {}
        queue, seen = [source_key], set()
        while queue:
            key = queue.pop()
            if key in seen:
                continue
            seen.add(key)
            for item in self._query(BY_ORIGIN_KEY, "origin_key", key):
                items[(item["pk"], item["sk"])] = item
                if str(item["sk"]).startswith(REPLAY_MARK) and item.get("replayed_as"):
                    queue.append(str(item["replayed_as"]))
        return list(items.values())

    def has_chain(self, source_key: str) -> bool:
        """Whether any dead letter's chain of replays started at `source_key` (one Query)."""
        found = self._dynamodb.query(
            TableName=self.names.dead_letter_table,
            IndexName=BY_ORIGIN_KEY,
            KeyConditionExpression="#key = :value",
            ExpressionAttributeNames={"#key": "origin_key"},
            ExpressionAttributeValues={":value": {"S": source_key}},
            Limit=1,
        )
        return bool(found.get("Items"))

    def error_types(self) -> set[str]:
        """The error types of the entries in the table (a Scan of that attribute only)."""
        pages = self._dynamodb.get_paginator("scan").paginate(
            TableName=self.names.dead_letter_table,
            ProjectionExpression="error_type",
        )
        return {
            str(item["error_type"]["S"])
            for page in pages
            for item in page.get("Items", [])
            if "error_type" in item
        }

    def header(self, partition: str) -> str | None:
        """The raw header row of the source whose dead letters are in `partition`, if kept."""
        item = self._dynamodb.get_item(
            TableName=self.names.dead_letter_table,
            Key={"pk": {"S": partition}, "sk": {"S": HEADER_SORT_KEY}},
        ).get("Item")
        return str(item["raw"]["S"]) if item else None

    def origin_lookup(self) -> Callable[[str], dict[int, dict[str, Any]]]:
        """`origins(key)` for keys of replay files, read once per key (empty for the rest)."""
        store = DeadLetterStore(self._dynamodb, self.names.dead_letter_table)
        cache: dict[str, dict[int, dict[str, Any]]] = {}
        replay_prefix = f"{self.names.input_prefix}replay/"

        def origins(key: str) -> dict[int, dict[str, Any]]:
            if not key.startswith(replay_prefix):
                return {}
            if key not in cache:
                cache[key] = store.origins(self.names.input_bucket, key)
            return cache[key]

        return origins

    def replay_file_version(self, key: str) -> str:
        """The version of a replay file in the input bucket, or "" if it was never written."""
        try:
            head = self._s3.head_object(Bucket=self.names.input_bucket, Key=key)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                return ""
            raise
        return str(head.get("VersionId") or head["ETag"].strip('"'))

    def mark_state(self, mark: dict[str, Any], versions: dict[str, str] | None = None) -> tuple[str, str]:
        """(state, replay file version) of a replay mark: `done`; `pending` (a replay holds
        it now); or `stale` (its replay stopped before uploading: the entry is open again).
        A pending mark whose file exists is done: its replay stopped after the upload."""
        if mark.get("state", "done") == "done":
            return "done", str(mark.get("replayed_version", ""))
        versions = {} if versions is None else versions
        key = str(mark["replayed_as"])
        if key not in versions:
            versions[key] = self.replay_file_version(key)
        if versions[key]:
            return "done", versions[key]
        expires = datetime.fromisoformat(str(mark.get("expires_at") or now()))
        return ("stale", "") if expires < datetime.now(UTC) else ("pending", "")

    def dead_letters(
        self,
        *,
        source_key: str | None = None,
        version: str | None = None,
        error_type: str | None = None,
        include_replayed: bool = False,
    ) -> list[dict[str, Any]]:
        """Open dead-letter entries in partition and line order, each once, at the end of its
        chain of replays: with `attempts` (1 + the replays it went through) and, for a line of
        a replay file, `origin` (the upload and line it first came from).

        With `include_replayed`, entries already replayed are listed too, with `replayed_as`,
        `replayed_line` and `replay_state` (`done`, or `pending` while a replay holds them).
        `source_key` selects the chains that started at that key (with `version`, only that
        upload's own entries); `error_type` the entries of that type. Both are Queries (the
        table, or a GSI); only a listing of everything scans.
        """
        if source_key is not None and version is not None:
            pk = DeadLetterStore.partition(self.names.input_bucket, source_key, version)
            items = self._query(None, "pk", pk)
        elif source_key is not None:
            items = self._chain_items(source_key)
        elif error_type is not None:
            items = self._query(BY_ERROR_TYPE, "error_type", error_type)
        else:
            pages = self._dynamodb.get_paginator("scan").paginate(TableName=self.names.dead_letter_table)
            items = [_plain(item) for page in pages for item in page.get("Items", [])]
        marks = {
            (item["pk"], item["line"]): item for item in items if str(item["sk"]).startswith(REPLAY_MARK)
        }
        origins = self.origin_lookup()
        versions: dict[str, str] = {}
        entries = []
        for item in items:
            if not str(item["sk"]).startswith(ENTRY_PREFIX) or str(item["pk"]).startswith("lineage#"):
                continue
            if error_type is not None and item["error_type"] != error_type:
                continue
            origin = origin_of(item, origins)
            item["attempts"] = int(origin["attempt"]) + 1
            if int(origin["attempt"]) > 0:
                item["origin"] = origin
            mark = marks.get((item["pk"], item["line"]))
            if mark is not None:
                state, replay_version = self.mark_state(mark, versions)
                if state != "stale":
                    if not include_replayed:
                        continue
                    item |= {
                        "replayed_as": mark["replayed_as"],
                        "replayed_line": mark.get("replayed_line", 0),
                        "replayed_version": replay_version,
                        "replayed_at": mark["replayed_at"],
                        "replay_state": state,
                    }
            entries.append(item)
        entries.sort(key=lambda entry: (entry["pk"], entry["sk"]))
        return entries

    # ------------------------------------------------------------ lineage
    def trace(self, key: str, version: str, line: int) -> list[dict[str, Any]]:
        """What happened to line `line` of upload (`key`, `version`): one step per file the
        line went through, to the end of its chain of replays. Each step is
        `{"source_key", "version_id", "line", "outcome", ...}` with outcome `predicted` (and
        the `prediction`), `dead_letter` (the open `entry`), `replayed` (to the next step),
        `pending` (its replay or execution has not finished), or `none` (no outcome: a
        header or blank line, or a line of a corrected file not linked to its entry)."""
        return self._trace(key, version, line, {})

    def _trace(
        self, key: str, version: str, line: int, cache: dict[tuple[str, str], dict[int, dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = []
        while True:
            step, following = self._step(key, version, line, cache)
            steps.append(step)
            if following is None:
                return steps
            key, version, line = following

    def _predicted(
        self, key: str, version: str, cache: dict[tuple[str, str], dict[int, dict[str, Any]]]
    ) -> dict[int, dict[str, Any]]:
        if (key, version) not in cache:
            cache[(key, version)] = {int(p["line"]): p for p in self.predictions(key, version)}
        return cache[(key, version)]

    def _step(
        self, key: str, version: str, line: int, cache: dict[tuple[str, str], dict[int, dict[str, Any]]]
    ) -> tuple[dict[str, Any], tuple[str, str, int] | None]:
        step: dict[str, Any] = {"source_key": key, "version_id": version, "line": line}
        pk = DeadLetterStore.partition(self.names.input_bucket, key, version)
        found = self._dynamodb.batch_get_item(
            RequestItems={
                self.names.dead_letter_table: {
                    "Keys": [
                        {"pk": {"S": pk}, "sk": {"S": DeadLetterStore.sort_key(line)}},
                        {"pk": {"S": pk}, "sk": {"S": DeadLetterStore.mark_key(line)}},
                    ],
                    "ConsistentRead": True,
                }
            }
        )["Responses"][self.names.dead_letter_table]
        by_sk = {item["sk"]: item for item in map(_plain, found)}
        entry = by_sk.get(DeadLetterStore.sort_key(line))
        mark = by_sk.get(DeadLetterStore.mark_key(line))
        if entry is not None and mark is not None:
            state, replay_version = self.mark_state(mark)
            if state == "pending":
                return step | {"outcome": "pending", "entry": entry}, None
            if state == "done":
                step |= {"outcome": "replayed", "entry": entry, "replayed_as": mark["replayed_as"]}
                replayed_line = int(mark.get("replayed_line", 0))
                if not replayed_line:
                    return step, None  # a corrected file not linked line by line
                return step, (str(mark["replayed_as"]), replay_version, replayed_line)
        if entry is not None:
            return step | {"outcome": "dead_letter", "entry": entry}, None
        prediction = self._predicted(key, version, cache).get(line)
        if prediction is not None:
            return step | {"outcome": "predicted", "prediction": prediction}, None
        outcome = self.file(key, version)
        finished = outcome is not None and outcome.get("status") in ("SUCCEEDED", "FAILED")
        return step | {"outcome": "none" if finished else "pending"}, None

    def replayed_predictions(self, key: str, version: str) -> Iterator[dict[str, Any]]:
        """The final predictions of this upload's replayed lines, in line order, each with
        `origin`: the upload and line it stands for, and how many replays it took."""
        pk = DeadLetterStore.partition(self.names.input_bucket, key, version)
        marks = [item for item in self._query(None, "pk", pk) if str(item["sk"]).startswith(REPLAY_MARK)]
        cache: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
        for mark in sorted(marks, key=lambda item: int(item["line"])):
            steps = self._trace(key, version, int(mark["line"]), cache)
            final = steps[-1]
            if final["outcome"] != "predicted":
                continue
            prediction = dict(final["prediction"])
            prediction.setdefault(
                "origin",
                {
                    "source_key": key,
                    "version_id": version,
                    "line": int(mark["line"]),
                    "attempt": len(steps) - 1,
                },
            )
            yield prediction
