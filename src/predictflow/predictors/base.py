"""The `Predictor` interface, and what endpoint backends share.

A predictor turns an encoded feature matrix (`features.py`) into scores, one row per record:
for a classifier, one probability per label in the bundle's label order; for a regression, one
value. What the scores mean for a record (its label, P(positive), its value) is decided once,
from the bundle, in `predictions.py`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import numpy as np
import numpy.typing as npt
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from predictflow.bundle import Bundle
from predictflow.features import FeatureMatrix, Value, check_matrix, decode
from predictflow.predictors.exceptions import (
    PredictorBadRequest,
    PredictorModelError,
    PredictorThrottled,
    PredictorTimeout,
    PredictorUnavailable,
)

Scores = npt.NDArray[np.float64]


class Predictor(Protocol):
    @property
    def bundle(self) -> Bundle: ...

    @property
    def model_version(self) -> str: ...

    def scores(self, features: FeatureMatrix, *, validated: bool = False) -> Scores:
        """One row of scores per row of `features`: (n, labels) for a classifier, (n, 1) for a
        regression. The matrix is checked against the schema first (`check_matrix`) unless the
        caller has just built it from validated values (`validated=True`)."""
        ...


class RowPredictor:
    """For backends that take records as values (an endpoint): the matrix is decoded to the
    values the records held, sent, and the answers checked against the bundle."""

    def __init__(self, bundle: Bundle) -> None:
        self._bundle = bundle

    @property
    def bundle(self) -> Bundle:
        return self._bundle

    def scores(self, features: FeatureMatrix, *, validated: bool = False) -> Scores:
        schema = self._bundle.schema
        if not validated:
            check_matrix(schema, features)
        rows = decode(schema, features)
        answers = self._score_rows(rows) if rows else []
        return scores_from_answers(self._bundle, answers, self._name)

    _name = "endpoint"

    def _score_rows(self, rows: Sequence[Sequence[Value]]) -> list[float | dict[str, float]]:
        """One answer per row: a probability of the positive label (binary), a mapping of label
        to probability (multiclass), or a value (regression)."""
        raise NotImplementedError


def scores_from_answers(bundle: Bundle, answers: Sequence[float | dict[str, float]], backend: str) -> Scores:
    """An endpoint's answers as the (n, k) scores the rest of the pipeline reads."""
    target = bundle.spec.target
    if target.task == "regression":
        values = np.asarray(answers, dtype=np.float64).reshape(-1, 1)
        if not np.isfinite(values).all():
            raise PredictorModelError(f"{backend}: a predicted value is not a finite number")
        return values
    out = np.empty((len(answers), len(target.labels)), dtype=np.float64)
    for row, answer in enumerate(answers):
        if isinstance(answer, dict):
            missing = [label for label in target.labels if label not in answer]
            if missing:
                raise PredictorModelError(f"{backend}: no score for label(s) {', '.join(missing)}")
            out[row] = [float(answer[label]) for label in target.labels]
        elif target.task == "binary":
            positive = target.labels.index(str(target.positive))
            out[row, positive] = float(answer)
            out[row, 1 - positive] = 1.0 - float(answer)
        else:
            raise PredictorModelError(f"{backend}: a multiclass model must answer a score per label")
    if not (np.isfinite(out).all() and (out >= 0).all() and (out <= 1).all()):
        raise PredictorModelError(f"{backend}: a score is not a probability")
    return out


def _raise_for_client_error(error: ClientError, backend: str) -> None:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", str(error))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    text = f"{backend}: {code}: {message}"
    if code in ("ThrottlingException", "Throttling", "LimitExceededException", "TooManyRequestsException"):
        raise PredictorThrottled(text) from error
    if code in ("ModelError",):
        raise PredictorModelError(text) from error
    if (
        code in ("ModelNotReadyException", "PredictorNotMountedException", "ServiceUnavailable")
        or status >= 500
    ):
        raise PredictorUnavailable(text) from error
    raise PredictorBadRequest(text) from error


@contextmanager
def backend_errors(backend: str) -> Iterator[None]:
    """Re-raise an AWS client or transport failure as the matching `PredictorError`."""
    try:
        yield
    except ClientError as error:
        _raise_for_client_error(error, backend)
        raise
    except BotoCoreError as error:
        if isinstance(error, ReadTimeoutError | ConnectTimeoutError):
            raise PredictorTimeout(f"{backend}: {error}") from error
        raise PredictorUnavailable(f"{backend}: {error}") from error
