"""A SageMaker real-time endpoint that takes CSV rows and answers one score per row."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from typing import Any, Final

from predictflow.bundle import Bundle
from predictflow.features import Value
from predictflow.predictors.base import RowPredictor, backend_errors
from predictflow.predictors.exceptions import PredictorModelError


class SageMakerPredictor(RowPredictor):
    """The body is the records in the bundle's feature order as CSV without a header; the
    response is CSV or newline-separated scores, a JSON list, or `{"predictions": [...]}` whose
    items are numbers, objects with a `score`, or (multiclass) objects of label -> probability."""

    BATCH_SIZE: Final = 500  # keeps a request far below the 6 MB invoke_endpoint limit
    _name = "sagemaker"

    def __init__(self, bundle: Bundle, client: Any, endpoint_name: str) -> None:
        super().__init__(bundle)
        self._client = client
        self._endpoint = endpoint_name

    @property
    def model_version(self) -> str:
        return f"sagemaker:{self._endpoint}"

    def _score_rows(self, rows: Sequence[Sequence[Value]]) -> list[float | dict[str, float]]:
        answers: list[float | dict[str, float]] = []
        for start in range(0, len(rows), self.BATCH_SIZE):
            batch = rows[start : start + self.BATCH_SIZE]
            scores = self._invoke(batch)
            if len(scores) != len(batch):
                raise PredictorModelError(
                    f"sagemaker: endpoint returned {len(scores)} scores for {len(batch)} records"
                )
            answers.extend(scores)
        return answers

    def _invoke(self, batch: Sequence[Sequence[Value]]) -> list[float | dict[str, float]]:
        body = io.StringIO()
        csv.writer(body, lineterminator="\n").writerows(batch)
        with backend_errors("sagemaker"):
            response = self._client.invoke_endpoint(
                EndpointName=self._endpoint,
                ContentType="text/csv",
                Accept="text/csv",
                Body=body.getvalue().encode(),
            )
            payload = response["Body"].read().decode("utf-8")
        return parse_scores(payload, str(response.get("ContentType", "")))


def parse_scores(payload: str, content_type: str) -> list[float | dict[str, float]]:
    """Read an endpoint's scores; anything unreadable is a `PredictorModelError`."""
    try:
        if "json" in content_type or payload.lstrip().startswith(("[", "{")):
            document = json.loads(payload)
            items = document["predictions"] if isinstance(document, dict) else document
            raw: list[Any] = [
                item["score"] if isinstance(item, dict) and "score" in item else item for item in items
            ]
        else:
            raw = [text for text in payload.replace(",", "\n").split() if text]
        scores: list[float | dict[str, float]] = [
            {str(k): float(v) for k, v in value.items()} if isinstance(value, dict) else float(value)
            for value in raw
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise PredictorModelError(f"sagemaker: unreadable response: {payload[:200]!r}") from error
    for score in scores:
        if isinstance(score, float) and not math.isfinite(score):
            raise PredictorModelError(f"sagemaker: score {score} is not a finite number")
    return scores
