"""The `Predictor` interface and its three backends.

- `EmbeddedPredictor` (the default) serves the ONNX artifact in-process: one session per
  container, batched, about 3 µs a record on one core.
- `SageMakerPredictor` sends batches as CSV to a SageMaker real-time endpoint.
- `AmlPredictor` calls the legacy Amazon ML real-time endpoint once per record, as that API
  requires (the original design).

Every backend maps its failures onto the `PredictorError` family. The class names are the
`errorType` the state machine sees, so Retry and Catch can tell a throttle (retry) from a
bad request (dead-letter at once):

    retryable:      PredictorThrottled, PredictorUnavailable, PredictorTimeout
    not retryable:  PredictorBadRequest, PredictorModelError
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from predictflow.features import FeatureMatrix, Value, check_matrix, decode, encode, unknown_categories
from predictflow.records import RecordError, RejectReason, check_fields
from predictflow.schema import FEATURE_NAMES, FIELDS, LABELS, NEGATIVE_LABEL, POSITIVE_LABEL

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Probabilities = npt.NDArray[np.float64]


class PredictorError(Exception):
    """A backend failure, named so that the state machine can route it."""

    retryable: ClassVar[bool] = False


class PredictorThrottled(PredictorError):
    retryable = True


class PredictorUnavailable(PredictorError):
    retryable = True


class PredictorTimeout(PredictorError):
    retryable = True


class PredictorBadRequest(PredictorError):
    """The backend refused the request itself (unknown endpoint, invalid input)."""


class PredictorModelError(PredictorError):
    """The model answered, but not with one probability per record."""


RETRYABLE_ERRORS: Final = tuple(
    cls.__name__ for cls in (PredictorThrottled, PredictorUnavailable, PredictorTimeout)
)


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str
    probability: float
    model_version: str
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "probability": self.probability,
            "model_version": self.model_version,
        }
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


DECISION_THRESHOLD: Final = 0.5
"""P(>50K) from which a record is labelled >50K."""


def label_for(probability: float) -> str:
    return POSITIVE_LABEL if probability >= DECISION_THRESHOLD else NEGATIVE_LABEL


def labels_for(probabilities: Probabilities) -> list[str]:
    """`label_for` of each probability, for a whole batch at once."""
    return [LABELS[positive] for positive in (probabilities >= DECISION_THRESHOLD).tolist()]


def checked_rows(rows: Sequence[Sequence[Value]]) -> tuple[list[tuple[Value, ...]], list[tuple[str, ...]]]:
    """Validate rows handed to a predictor directly.

    Raises `RecordError` for a value that breaks the schema. A category the model has never
    seen is not an error here: it is scored as missing and reported in the warnings.
    """
    typed: list[tuple[Value, ...]] = []
    warnings: list[tuple[str, ...]] = []
    for row in rows:
        if len(row) != len(FIELDS):
            raise RecordError(RejectReason.FIELD_COUNT, f"expected {len(FIELDS)} values, got {len(row)}")
        as_text = [str(value) for value in row]
        try:
            values, _ = check_fields(as_text)
            notes: tuple[str, ...] = ()
        except RecordError as error:
            if error.reason is not RejectReason.UNKNOWN_CATEGORY:
                raise
            # Numbers are checked before categories, so every number here is valid.
            values = tuple(
                int(text) if index not in _CATEGORICAL else text.strip() for index, text in enumerate(as_text)
            )
            notes = tuple(unknown_categories(values))
        typed.append(values)
        warnings.append(notes)
    return typed, warnings


_CATEGORICAL: Final = frozenset(index for index, field in enumerate(FIELDS) if hasattr(field, "categories"))


class Predictor(Protocol):
    @property
    def model_version(self) -> str: ...

    def predict(self, rows: Sequence[Sequence[Value]]) -> list[Prediction]:
        """Score typed rows (values in schema order); one `Prediction` per row, in order."""
        ...

    def probabilities(self, features: FeatureMatrix) -> Probabilities:
        """P(>50K) for each row of an encoded matrix, as the pipeline's steps pass them."""
        ...


class RowPredictor:
    """For backends that score typed rows: the matrix form decodes and delegates."""

    def predict(self, rows: Sequence[Sequence[Value]]) -> list[Prediction]:
        raise NotImplementedError

    def probabilities(self, features: FeatureMatrix) -> Probabilities:
        import numpy as np

        check_matrix(features)
        scores = [prediction.probability for prediction in self.predict(decode(features))]
        return np.asarray(scores, dtype=np.float64)


class EmbeddedPredictor:
    """The bundled ONNX model, run by ONNX Runtime on one thread."""

    def __init__(self, model_bytes: bytes | None = None, version: str | None = None) -> None:
        import onnxruntime

        from predictflow.model_artifact import INPUT_NAME, OUTPUT_NAME, load_artifact

        if model_bytes is None:
            artifact = load_artifact()
            model_bytes, version = artifact.model_bytes, artifact.version
        options = onnxruntime.SessionOptions()
        # One thread: Lambda gives a fraction of a core at small memory sizes, and batches
        # are small enough that a thread pool costs more than it saves.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        self._input = INPUT_NAME
        self._outputs = [OUTPUT_NAME]
        self._version = version or "unversioned"

    @property
    def model_version(self) -> str:
        return self._version

    def probabilities(self, features: FeatureMatrix) -> Probabilities:
        """P(>50K) for each row of an encoded matrix (the parser's output)."""
        import numpy as np

        check_matrix(features)
        if len(features) == 0:
            return np.empty(0, dtype=np.float64)
        (scores,) = self._session.run(self._outputs, {self._input: features})
        return np.asarray(scores[:, 1], dtype=np.float64)

    def predict(self, rows: Sequence[Sequence[Value]]) -> list[Prediction]:
        typed, warnings = checked_rows(rows)
        scores = self.probabilities(encode(typed)).tolist()
        return [
            Prediction(label_for(p), p, self._version, notes)
            for p, notes in zip(scores, warnings, strict=True)
        ]


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


def _raise_for_transport_error(error: BotoCoreError, backend: str) -> None:
    if isinstance(error, ReadTimeoutError | ConnectTimeoutError):
        raise PredictorTimeout(f"{backend}: {error}") from error
    if isinstance(error, EndpointConnectionError):
        raise PredictorUnavailable(f"{backend}: {error}") from error
    raise PredictorUnavailable(f"{backend}: {error}") from error


@contextmanager
def backend_errors(backend: str) -> Iterator[None]:
    """Re-raise an AWS client or transport failure as the matching `PredictorError`."""
    try:
        yield
    except ClientError as error:
        _raise_for_client_error(error, backend)
        raise
    except BotoCoreError as error:
        _raise_for_transport_error(error, backend)
        raise


def _batches(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class SageMakerPredictor(RowPredictor):
    """A SageMaker real-time endpoint that takes CSV rows and returns one score per row.

    The body is the records in schema order as CSV without a header; the response is CSV or
    newline-separated scores, a JSON list, or `{"predictions": [...]}` whose items are
    numbers or objects with a `score`.
    """

    BATCH_SIZE: Final = 500  # keeps a request far below the 6 MB invoke_endpoint limit

    def __init__(self, client: Any, endpoint_name: str) -> None:
        self._client = client
        self._endpoint = endpoint_name

    @property
    def model_version(self) -> str:
        return f"sagemaker:{self._endpoint}"

    def predict(self, rows: Sequence[Sequence[Value]]) -> list[Prediction]:
        typed, warnings = checked_rows(rows)
        scores: list[float] = []
        for batch in _batches(typed, self.BATCH_SIZE):
            scores.extend(self._invoke(batch))
        return [
            Prediction(label_for(p), p, self.model_version, notes)
            for p, notes in zip(scores, warnings, strict=True)
        ]

    def _invoke(self, batch: Sequence[Sequence[Value]]) -> list[float]:
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
        scores = parse_scores(payload, str(response.get("ContentType", "")))
        if len(scores) != len(batch):
            raise PredictorModelError(
                f"sagemaker: endpoint returned {len(scores)} scores for {len(batch)} records"
            )
        return scores


def parse_scores(payload: str, content_type: str) -> list[float]:
    """Read an endpoint's scores; anything that is not one probability per record is a
    `PredictorModelError`."""
    try:
        if "json" in content_type or payload.lstrip().startswith(("[", "{")):
            document = json.loads(payload)
            items = document["predictions"] if isinstance(document, dict) else document
            raw = [item["score"] if isinstance(item, dict) else item for item in items]
        else:
            raw = [text for text in payload.replace(",", "\n").split() if text]
        scores = [float(value) for value in raw]
    except (ValueError, KeyError, TypeError) as error:
        raise PredictorModelError(f"sagemaker: unreadable response: {payload[:200]!r}") from error
    for score in scores:
        if not (math.isfinite(score) and 0.0 <= score <= 1.0):
            raise PredictorModelError(f"sagemaker: score {score} is not a probability")
    return scores


class AmlPredictor(RowPredictor):
    """The legacy Amazon ML real-time endpoint: one `Predict` call per record."""

    def __init__(self, client: Any, model_id: str, endpoint_url: str) -> None:
        self._client = client
        self._model_id = model_id
        self._endpoint = endpoint_url

    @property
    def model_version(self) -> str:
        return f"aml:{self._model_id}"

    def predict(self, rows: Sequence[Sequence[Value]]) -> list[Prediction]:
        typed, warnings = checked_rows(rows)
        return [
            Prediction(label_for(p), p, self.model_version, notes)
            for p, notes in zip(map(self._predict_one, typed), warnings, strict=True)
        ]

    def _predict_one(self, row: Sequence[Value]) -> float:
        record = {name: str(value) for name, value in zip(FEATURE_NAMES, row, strict=True)}
        with backend_errors("machinelearning"):
            response = self._client.predict(
                MLModelId=self._model_id, Record=record, PredictEndpoint=self._endpoint
            )
        try:
            prediction = response["Prediction"]
            scores = prediction["predictedScores"]
            # A binary model reports one score: P(label "1"), where "1" is >50K.
            score = float(next(iter(scores.values())))
        except (KeyError, StopIteration, TypeError, ValueError) as error:
            raise PredictorModelError(f"machinelearning: unreadable prediction {response!r:.200}") from error
        if not 0.0 <= score <= 1.0:
            raise PredictorModelError(f"machinelearning: score {score} is not a probability")
        return score
