"""The legacy Amazon ML real-time endpoint: one `Predict` call per record, as that API requires."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from predictflow.bundle import Bundle
from predictflow.features import Value
from predictflow.predictors.base import RowPredictor, backend_errors
from predictflow.predictors.exceptions import PredictorModelError


class AmlPredictor(RowPredictor):
    """Records go as Amazon ML's `Record` (field name -> text); its `Prediction` comes back as
    `predictedScores` (binary: one score, P(label "1"), the bundle's positive label; multiclass:
    a score per label) or `predictedValue` (regression)."""

    _name = "machinelearning"

    def __init__(self, bundle: Bundle, client: Any, model_id: str, endpoint_url: str) -> None:
        super().__init__(bundle)
        self._client = client
        self._model_id = model_id
        self._endpoint = endpoint_url

    @property
    def model_version(self) -> str:
        return f"aml:{self._model_id}"

    def _score_rows(self, rows: Sequence[Sequence[Value]]) -> list[float | dict[str, float]]:
        return [self._predict_one(row) for row in rows]

    def _predict_one(self, row: Sequence[Value]) -> float | dict[str, float]:
        names = self._bundle.schema.feature_names
        record = {name: str(value) for name, value in zip(names, row, strict=True)}
        with backend_errors("machinelearning"):
            response = self._client.predict(
                MLModelId=self._model_id, Record=record, PredictEndpoint=self._endpoint
            )
        task = self._bundle.spec.target.task
        try:
            prediction = response["Prediction"]
            if task == "regression":
                return float(prediction["predictedValue"])
            scores = prediction["predictedScores"]
            if task == "binary":
                return float(next(iter(scores.values())))
            return {str(label): float(score) for label, score in scores.items()}
        except (KeyError, StopIteration, TypeError, ValueError, AttributeError) as error:
            raise PredictorModelError(f"machinelearning: unreadable prediction {response!r:.200}") from error
