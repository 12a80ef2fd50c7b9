"""Reading what the pipeline wrote, for the CLI and the tests: per-file outcomes from the
ledger, predictions (ledger item or S3 parts), and dead-letter entries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from predictflow.pipeline.stores import (
    ENTRY_PREFIX,
    REPLAY_MARK,
    DeadLetterStore,
    Ledger,
    PredictionStore,
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
        )


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, typed in item.items():
        ((kind, value),) = typed.items()
        out[name] = int(value) if kind == "N" else value
    return out


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
        manifest_key = f"{self.names.predictions_prefix}{key}/{version}/_manifest.json"
        try:
            body = self._s3.get_object(Bucket=self.names.output_bucket, Key=manifest_key)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None
        return dict(json.loads(body))

    def predictions(self, key: str, version: str) -> Iterator[dict[str, Any]]:
        """Every prediction for one uploaded version, in line order."""
        return map(json.loads, self.prediction_lines(key, version))

    def dead_letters(
        self,
        *,
        source_key: str | None = None,
        version: str | None = None,
        error_type: str | None = None,
        include_replayed: bool = False,
    ) -> list[dict[str, Any]]:
        """Dead-letter entries in source and line order, each with `replayed_as` once replayed.

        Replayed entries are left out unless `include_replayed`. With a source key and its
        version, one partition is read; otherwise the whole table is scanned.
        """
        if source_key is not None and version is not None:
            pk = DeadLetterStore.partition(self.names.input_bucket, source_key, version)
            pages = self._dynamodb.get_paginator("query").paginate(
                TableName=self.names.dead_letter_table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}},
            )
        else:
            pages = self._dynamodb.get_paginator("scan").paginate(TableName=self.names.dead_letter_table)
        items = [_plain(item) for page in pages for item in page.get("Items", [])]
        marks = {(item["pk"], item["line"]): item for item in items if item["sk"].startswith(REPLAY_MARK)}
        entries = []
        for item in items:
            if not item["sk"].startswith(ENTRY_PREFIX):
                continue
            if source_key is not None and item["source_key"] != source_key:
                continue
            if error_type is not None and item["error_type"] != error_type:
                continue
            mark = marks.get((item["pk"], item["line"]))
            if mark is not None:
                if not include_replayed:
                    continue
                item = item | {"replayed_as": mark["replayed_as"], "replayed_at": mark["replayed_at"]}
            entries.append(item)
        entries.sort(key=lambda entry: (entry["pk"], entry["sk"]))
        return entries
