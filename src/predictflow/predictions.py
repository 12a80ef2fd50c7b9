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
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
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
    of the entry the module docstring describes (numbers as `repr` writes them).

    This is the hot path of a large file (about a fifth of `predictflow predict`'s time), so each
    line is one f-string over columns made ahead: whatever is the same for many records (the
    label's key and text, the model version, a label's `actual`) is spelled once per batch, not
    once per record, and only the numbers, line numbers and ids are formatted per record.
    """
    version = f',"model_version":{_json(model_version)}'
    starts: Sequence[int | str] = lines
    if ids is not None or origins:
        starts = _starts(lines, ids, origins or {})
    middles = [version] * len(lines) if actual is None else _actual_texts(version, actual)
    if target.task == "regression":
        return "".join(
            [
                f'{{"line":{start}{middle},"value":{value!r}}}\n'
                for start, middle, value in zip(starts, middles, answers.tolist(), strict=True)
            ]
        )
    if target.task == "binary":
        assert target.threshold is not None
        named = (f',"label":{_json(target.negative)}', f',"label":{_json(str(target.positive))}')
        keys = [f'{label},"probability":' for label in named]
        positives = (answers >= target.threshold).tolist()
        return "".join(
            [
                f'{{"line":{start}{middle}{keys[positive]}{p!r}}}\n'
                for start, middle, positive, p in zip(
                    starts, middles, positives, answers.tolist(), strict=True
                )
            ]
        )
    keys = [f',"label":{_json(label)},"probabilities":' for label in target.labels]
    # One %-template per batch: every label's key spelled once, each probability by %r (repr).
    template = "{" + ",".join(f"{_json(label).replace('%', '%%')}:%r" for label in target.labels) + "}"
    most = np.argmax(answers, axis=1).tolist()
    return "".join(
        [
            f'{{"line":{start}{middle}{keys[top]}{template % tuple(row)}}}\n'
            for start, middle, top, row in zip(starts, middles, most, answers.tolist(), strict=True)
        ]
    )


def _json(value: object) -> str:
    """`json.dumps(value)` of a scalar, for less: a string by the encoder's own C function, a
    finite float by its repr (which is what json writes), without the encoder's set-up."""
    if type(value) is str:
        return str(encode_basestring_ascii(value))
    if type(value) is float and value - value == 0:
        return repr(value)
    return json.dumps(value)


def _starts(
    lines: Sequence[int], ids: Sequence[str] | None, origins: Mapping[int, Mapping[str, Any]]
) -> list[str]:
    """Each line's number, then its id and origin when it has them (what follows `"line":`)."""
    starts = [str(line) for line in lines]
    if ids is not None:
        starts = [f'{start},"id":{_json(row_id)}' for start, row_id in zip(starts, ids, strict=True)]
    if origins:
        starts = [
            f'{start},"origin":{json.dumps(origins[line], separators=(",", ":"))}'
            if line in origins
            else start
            for start, line in zip(starts, lines, strict=True)
        ]
    return starts


def _actual_texts(version: str, actual: Sequence[Actual]) -> list[str]:
    """The model version and, where the record has one, its `actual`, per record."""
    if set(map(type, actual)) <= {str, type(None)}:
        # Labels: a few distinct values over many records, each spelled once. (Only strings
        # are looked up: 0.0 and -0.0 are one key of a dict but two texts.)
        spelled = {a: version if a is None else f'{version},"actual":{_json(a)}' for a in set(actual)}
        return list(map(spelled.__getitem__, actual))
    return [version if a is None else f'{version},"actual":{_json(a)}' for a in actual]
