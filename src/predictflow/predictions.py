"""What a prediction is, for every task a bundle can have, and how it is written.

A prediction line holds `line` (1-based, the header row counting as line 1), `id` when the
bundle names a row-id field, `model_version`, `actual` when the file carries the target,
`origin` for a replayed record (where it first came from), and the answer:

    binary       "label", "probability"      P(positive label); label by the bundle's threshold
    multiclass   "label", "probabilities"    label -> probability; label is the most probable
    regression   "value"

(Amazon ML's `Prediction` maps as: predictedLabel = label, predictedScores = probability or
probabilities, predictedValue = value.) The pipeline's Route step and `predictflow predict`
write lines through `prediction_lines`, so a file scored either way reads the same.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from predictflow.bundle import Bundle
from predictflow.bundle.format import TargetSpec
from predictflow.features import Value, encode_values
from predictflow.predictors.base import Predictor, Scores
from predictflow.records import Actual

Answers = npt.NDArray[np.float64]
"""What travels from Predict to Route: P(positive) per record (binary), the (n, k) probabilities
(multiclass), or the value per record (regression)."""


def answers_of(target: TargetSpec, scores: Scores) -> Answers:
    """The part of a model's scores a prediction needs."""
    if target.task == "binary":
        return np.ascontiguousarray(scores[:, target.labels.index(str(target.positive))])
    if target.task == "regression":
        return np.ascontiguousarray(scores[:, 0])
    return scores


def labels_of(target: TargetSpec, answers: Answers) -> list[str]:
    """Each record's label: binary by the threshold (a score at the threshold is positive, as in
    Amazon ML), multiclass the most probable (the first on a tie)."""
    if target.task == "binary":
        assert target.threshold is not None
        names = (target.negative, str(target.positive))
        return [names[positive] for positive in (answers >= target.threshold).tolist()]
    labels = target.labels
    return [labels[i] for i in np.argmax(answers, axis=1).tolist()]


@dataclass(frozen=True, slots=True)
class Prediction:
    """One record's prediction, for callers that score records directly."""

    model_version: str
    label: str | None = None
    probability: float | None = None
    probabilities: Mapping[str, float] | None = None
    value: float | None = None
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model_version": self.model_version}
        for name in ("label", "probability", "probabilities", "value"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def predict_rows(predictor: Predictor, rows: Sequence[Sequence[Value]]) -> list[Prediction]:
    """Score rows of values in the bundle's feature order (numbers or their text).

    Raises `RecordError` for a value that breaks the schema. A category the model has never
    seen is not an error here: it is scored as missing and named in the warnings.
    """
    bundle = predictor.bundle
    features, warnings = encode_values(bundle.schema, rows, unknown_as_missing=True)
    # Every value was checked as it was encoded: the matrix needs no second pass.
    scores = predictor.scores(features, validated=True)
    return predictions_of(bundle, predictor.model_version, answers_of(bundle.spec.target, scores), warnings)


def predictions_of(
    bundle: Bundle, model_version: str, answers: Answers, warnings: Sequence[tuple[str, ...]]
) -> list[Prediction]:
    target = bundle.spec.target
    if target.task == "regression":
        return [
            Prediction(model_version, value=v, warnings=w)
            for v, w in zip(answers.tolist(), warnings, strict=True)
        ]
    labels = labels_of(target, answers)
    if target.task == "binary":
        return [
            Prediction(model_version, label=label, probability=p, warnings=w)
            for label, p, w in zip(labels, answers.tolist(), warnings, strict=True)
        ]
    return [
        Prediction(
            model_version, label=label, probabilities=dict(zip(target.labels, row, strict=True)), warnings=w
        )
        for label, row, w in zip(labels, answers.tolist(), warnings, strict=True)
    ]


def prediction_lines(
    target: TargetSpec,
    model_version: str,
    lines: Sequence[int],
    answers: Answers,
    *,
    ids: Sequence[str] | None = None,
    actual: Sequence[Actual] | None = None,
    origins: Mapping[int, Mapping[str, Any]] | None = None,
) -> str:
    """JSON lines for a batch of predictions, byte for byte `json.dumps(entry, separators=(",", ":"))`
    of the entry the module docstring describes.

    Built a column at a time with string formatting rather than a dict and an encoder call per
    record: this is the hot path of a large file.
    """
    count = len(lines)
    quote = json.dumps
    version = quote(model_version)
    head = [f'{{"line":{line}' for line in lines]
    if ids is not None:
        head = [f'{h},"id":{quote(row_id)}' for h, row_id in zip(head, ids, strict=True)]
    if origins:
        head = [
            f'{h},"origin":{quote(origins[line], separators=(",", ":"))}' if line in origins else h
            for h, line in zip(head, lines, strict=True)
        ]
    middle = [f',"model_version":{version}'] * count
    if actual is not None:
        spelled: dict[Actual, str] = {}
        middle = [
            m if a is None else f'{m},"actual":{spelled.get(a) or spelled.setdefault(a, quote(a))}'
            for m, a in zip(middle, actual, strict=True)
        ]
    tails = _answer_texts(target, answers)
    return "".join(map("".join, zip(head, middle, tails, strict=True)))


def _answer_texts(target: TargetSpec, answers: Answers) -> list[str]:
    if target.task == "regression":
        return [f',"value":{value!r}}}\n' for value in answers.tolist()]
    labels = [json.dumps(label) for label in labels_of(target, answers)]
    if target.task == "binary":
        return [
            f',"label":{label},"probability":{p!r}}}\n'
            for label, p in zip(labels, answers.tolist(), strict=True)
        ]
    keys = [json.dumps(label) for label in target.labels]
    objects = [
        "{" + ",".join(f"{k}:{p!r}" for k, p in zip(keys, row, strict=True)) + "}" for row in answers.tolist()
    ]
    return [
        f',"label":{label},"probabilities":{probabilities}}}\n'
        for label, probabilities in zip(labels, objects, strict=True)
    ]
