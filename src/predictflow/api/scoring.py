"""Scoring a request's records with the code that scores files: no second parser, no second model.

The records are written out as the lines of a record file, at their position in the request
(record 1 on line 1), and `records.parse_chunk` reads them: objects as JSON Lines, strings as
headerless CSV. Each layout's lines go in a body of their own with the other records' places
left blank (blank lines are not records), so line numbers stay request positions and a request
may mix both. An accepted record is scored by the bundle's predictor and written by
`predictions.prediction_lines`, a rejected one answers the `error_type` and `error_message` its
dead letter would carry, in request order.

The active version is read from the model store at most every `ACTIVE_VERSION_TTL` seconds
(an S3 GET per request would cost more than the rest of a one-record call), so an activation
reaches a warm API container within that time; a pinned `model_version` is served at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from predictflow.api.errors import InvalidRecord, UnknownModel
from predictflow.bundle import Bundle, BundleError
from predictflow.errors import RejectReason
from predictflow.pipeline.bundles import Bundles
from predictflow.predictions import Answers, answers_of, labels_of, prediction_lines
from predictflow.predictors.base import Predictor
from predictflow.records import Layout, ParsedBatch, is_blank, parse_chunk

ACTIVE_VERSION_TTL: Final = 15.0


@dataclass(slots=True)
class Scored:
    """A request's outcome: per record (by 1-based position) its prediction line or its error."""

    model_version: str
    bundle: Bundle
    count: int
    parts: list[tuple[ParsedBatch, Answers]] = field(default_factory=list)
    errors: dict[int, tuple[str, str]] = field(default_factory=dict)

    @property
    def predicted(self) -> int:
        return sum(len(batch) for batch, _ in self.parts)

    @property
    def rejected(self) -> int:
        return len(self.errors)

    def results_json(self) -> str:
        """The `POST /predict` body, written as text: prediction lines are already JSON."""
        texts: list[str] = [""] * self.count
        target = self.bundle.spec.target
        for batch, answers in self.parts:
            lines = prediction_lines(
                target, self.model_version, batch.lines, answers, ids=batch.ids, actual=batch.actual
            ).split("\n")
            for line, text in zip(batch.lines, lines, strict=False):
                texts[line - 1] = text
        for line, (error_type, message) in self.errors.items():
            texts[line - 1] = json.dumps(
                {"line": line, "error_type": error_type, "error_message": message}, separators=(",", ":")
            )
        head = json.dumps(
            {"model_version": self.model_version, "predicted": self.predicted, "rejected": self.rejected},
            separators=(",", ":"),
        )
        return head[:-1] + ',"results":[' + ",".join(texts) + "]}"

    def aml_prediction(self) -> dict[str, Any]:
        """Amazon ML's `Prediction` for a one-record request (`details` names the model type and
        the bundle's algorithm). As Amazon ML did, a binary model's `predictedScores` holds one
        score, P(positive label), keyed by the predicted label; a multiclass model's holds every
        label's probability; a regression model answers `predictedValue` only."""
        if self.errors:
            error_type, message = self.errors[1]
            raise InvalidRecord(error_type, message)
        (_, answers), *_ = self.parts
        target = self.bundle.spec.target
        algorithm = str(self.bundle.spec.training.get("algorithm") or self.bundle.spec.model.kind)
        details = {"PredictiveModelType": target.task.upper(), "Algorithm": algorithm}
        if target.task == "regression":
            return {"predictedValue": float(answers[0]), "predictedScores": {}, "details": details}
        (label,) = labels_of(target, answers[:1])
        if target.task == "binary":
            scores = {label: float(answers[0])}
        else:
            scores = dict(zip(target.labels, map(float, answers[0]), strict=True))
        return {"predictedLabel": label, "predictedScores": scores, "details": details}


class Scorer:
    """Validates and scores records with the served bundles (`pipeline.bundles.Bundles`)."""

    def __init__(
        self,
        bundles: Bundles,
        aml_model_ids: Sequence[str] = (),
        ttl: float = ACTIVE_VERSION_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bundles = bundles
        self._aml_model_ids = frozenset(filter(None, aml_model_ids))
        self._ttl = ttl
        self._clock = clock
        self._active: tuple[float, str] | None = None
        self._lock = threading.Lock()

    def active_version(self) -> str:
        now = self._clock()
        with self._lock:
            if self._active is not None and now - self._active[0] < self._ttl:
                return self._active[1]
        version = self._bundles.active_version()
        with self._lock:
            self._active = (now, version)
        return version

    def predictor(self, version: str | None) -> Predictor:
        """The predictor of `version` (None: the active one); `UnknownModel` if none is deployed."""
        if version is None:
            return self._bundles.predictor(self.active_version())
        try:
            return self._bundles.predictor(version)
        except (BundleError, LookupError) as error:
            raise UnknownModel(f"no model version {version!r} is deployed") from error

    def aml_version(self, model_id: str) -> str | None:
        """The version an Amazon ML `MLModelId` selects: None (the active one) for the active
        bundle's name or version, or the Amazon ML model id the stack names (AmlModelId), so
        that code written for Amazon ML needs only the new URL; else that deployed version."""
        active = self.active_version()
        if model_id in self._aml_model_ids or model_id == active:
            return None
        if model_id == self._bundles.bundle(active).spec.name:
            return None
        try:
            self._bundles.bundle(model_id)
        except (BundleError, LookupError) as error:
            raise UnknownModel(
                f"no model {model_id!r}: use the bundle's name, a deployed version, or the stack's AmlModelId"
            ) from error
        return model_id

    def score(self, records: Sequence[Any], version: str | None = None) -> Scored:
        predictor = self.predictor(version)
        bundle = predictor.bundle
        scored = Scored(predictor.model_version, bundle, len(records))
        csv_lines: list[str] = []
        json_lines: list[str] = []
        for line, record in enumerate(records, 1):
            csv_text = json_text = ""
            if isinstance(record, str):
                if "\n" in record:
                    scored.errors[line] = (
                        RejectReason.MALFORMED.value,
                        "a record given as text is one CSV line; this one holds a line break",
                    )
                elif is_blank(record):
                    scored.errors[line] = (RejectReason.MALFORMED.value, "the record is blank")
                else:
                    csv_text = record
            else:
                # A value that is not an object (a number, a list, null) is refused by the
                # JSON Lines reader with the message a file's line would get.
                json_text = json.dumps(record, separators=(",", ":"))
            csv_lines.append(csv_text)
            json_lines.append(json_text)
        for layout, lines in ((Layout("csv"), csv_lines), (Layout("jsonl"), json_lines)):
            if not any(lines):
                continue
            data = "\n".join(lines).encode("utf-8", "surrogatepass")
            batch = parse_chunk(data, bundle.schema, 1, layout=layout)
            for rejection in batch.rejections:
                scored.errors[rejection.line] = (rejection.reason.value, rejection.message)
            if len(batch):
                answers = answers_of(bundle.spec.target, predictor.scores(batch.features, validated=True))
                scored.parts.append((batch, answers))
        return scored
