"""The SageMaker and Amazon ML backends: requests, responses and the error types they raise."""

from __future__ import annotations

import io
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws

from predictflow.errors import RecordError
from predictflow.predictions import predict_rows
from predictflow.predictors import (
    RETRYABLE_ERRORS,
    AmlPredictor,
    PredictorBadRequest,
    PredictorError,
    PredictorModelError,
    PredictorThrottled,
    PredictorTimeout,
    PredictorUnavailable,
    SageMakerPredictor,
)
from tests.fixtures import ADULT, ARTICLE_VALUES, SCHEMA

OTHER = (39, "State-gov", 77516, "Bachelors", 13, "Never-married", "Adm-clerical", "Not-in-family",
         "White", "Male", 2174, 0, 40, "United-States")  # fmt: skip


def queue_sagemaker_results(*results: dict[str, str]) -> None:
    response = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json={"results": list(results)},
        timeout=5,
    )
    assert response.status_code == 201


@mock_aws
def test_sagemaker_scores_a_batch_in_one_csv_call() -> None:
    queue_sagemaker_results({"Body": "0.81\n0.12\n", "ContentType": "text/csv"})
    predictor = SageMakerPredictor(
        ADULT, boto3.client("sagemaker-runtime", region_name="us-east-1"), "income-endpoint"
    )
    first, second = predict_rows(predictor, [ARTICLE_VALUES, OTHER])
    assert (first.label, first.probability) == (">50K", 0.81)
    assert (second.label, second.probability) == ("<=50K", 0.12)
    assert first.model_version == "sagemaker:income-endpoint"


@mock_aws
def test_sagemaker_json_responses_are_understood() -> None:
    queue_sagemaker_results(
        {"Body": '{"predictions": [{"score": 0.7}, {"score": 0.2}]}', "ContentType": "application/json"}
    )
    predictor = SageMakerPredictor(
        ADULT, boto3.client("sagemaker-runtime", region_name="us-east-1"), "income-endpoint"
    )
    assert [p.probability for p in predict_rows(predictor, [ARTICLE_VALUES, OTHER])] == [0.7, 0.2]


@mock_aws
def test_sagemaker_answering_the_wrong_number_of_scores_is_a_model_error() -> None:
    queue_sagemaker_results({"Body": "0.5\n", "ContentType": "text/csv"})
    predictor = SageMakerPredictor(
        ADULT, boto3.client("sagemaker-runtime", region_name="us-east-1"), "income-endpoint"
    )
    with pytest.raises(PredictorModelError, match="returned 1 scores for 2 records"):
        predict_rows(predictor, [ARTICLE_VALUES, OTHER])


@mock_aws
def test_sagemaker_rejects_bad_records_before_calling_the_endpoint() -> None:
    predictor = SageMakerPredictor(
        ADULT, boto3.client("sagemaker-runtime", region_name="us-east-1"), "income-endpoint"
    )
    row: list[Any] = list(ARTICLE_VALUES)
    row[0] = 12
    with pytest.raises(RecordError, match=r"age: 12 is outside 17\.\.100"):
        predict_rows(predictor, [row])


def test_sagemaker_sends_csv_rows_in_schema_order_and_batches_them() -> None:
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    predictor = SageMakerPredictor(ADULT, client, "income-endpoint")
    rows = [ARTICLE_VALUES] * (SageMakerPredictor.BATCH_SIZE + 1)
    with Stubber(client) as stub:
        for size in (SageMakerPredictor.BATCH_SIZE, 1):
            body = "".join(", ".join(map(str, ARTICLE_VALUES)).replace(", ", ",") + "\n" for _ in range(size))
            stub.add_response(
                "invoke_endpoint",
                {"Body": StreamingBody(io.BytesIO(b"0.3\n" * size), 4 * size), "ContentType": "text/csv"},
                {
                    "EndpointName": "income-endpoint",
                    "ContentType": "text/csv",
                    "Accept": "text/csv",
                    "Body": body.encode(),
                },
            )
        predictions = predict_rows(predictor, rows)
        stub.assert_no_pending_responses()
    assert len(predictions) == len(rows)


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("ThrottlingException", 400, PredictorThrottled),
        ("ServiceUnavailable", 503, PredictorUnavailable),
        ("InternalFailure", 500, PredictorUnavailable),
        ("ModelNotReadyException", 429, PredictorUnavailable),
        ("ModelError", 424, PredictorModelError),
        ("ValidationError", 400, PredictorBadRequest),
    ],
)
def test_sagemaker_failures_map_to_retryable_or_final_error_types(
    code: str, status: int, error: type[PredictorError]
) -> None:
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("invoke_endpoint", service_error_code=code, http_status_code=status)
        with pytest.raises(error) as raised:
            predict_rows(SageMakerPredictor(ADULT, client, "income-endpoint"), [ARTICLE_VALUES])
    assert type(raised.value).__name__ in RETRYABLE_ERRORS or not raised.value.retryable
    assert raised.value.retryable == (type(raised.value).__name__ in RETRYABLE_ERRORS)


@pytest.mark.parametrize(
    ("transport_error", "error"),
    [
        (ReadTimeoutError(endpoint_url="https://runtime.sagemaker"), PredictorTimeout),
        (EndpointConnectionError(endpoint_url="https://runtime.sagemaker"), PredictorUnavailable),
    ],
)
def test_sagemaker_transport_failures_are_retryable(
    transport_error: Exception, error: type[PredictorError]
) -> None:
    from botocore.config import Config

    client = boto3.client(
        "sagemaker-runtime", region_name="us-east-1", config=Config(retries={"max_attempts": 0})
    )

    def fail_on_the_wire(**_: Any) -> None:
        raise transport_error

    client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", fail_on_the_wire)
    with pytest.raises(error) as raised:
        predict_rows(SageMakerPredictor(ADULT, client, "income-endpoint"), [ARTICLE_VALUES])
    assert raised.value.retryable


def aml_response(score: float, label: str) -> dict[str, Any]:
    return {
        "Prediction": {
            "predictedLabel": label,
            "predictedScores": {label: score},
            "details": {"Algorithm": "SGD", "PredictiveModelType": "BINARY"},
        }
    }


def aml_request(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "MLModelId": "ml-income",
        "Record": {name: str(value) for name, value in zip(SCHEMA.feature_names, row, strict=True)},
        "PredictEndpoint": "https://realtime.machinelearning.us-east-1.amazonaws.com",
    }


def test_aml_calls_predict_once_per_record_with_the_original_record_shape() -> None:
    client = boto3.client("machinelearning", region_name="us-east-1")
    predictor = AmlPredictor(
        ADULT, client, "ml-income", "https://realtime.machinelearning.us-east-1.amazonaws.com"
    )
    with Stubber(client) as stub:
        stub.add_response("predict", aml_response(0.83, "1"), aml_request(ARTICLE_VALUES))
        stub.add_response("predict", aml_response(0.04, "0"), aml_request(OTHER))
        first, second = predict_rows(predictor, [ARTICLE_VALUES, OTHER])
        stub.assert_no_pending_responses()
    assert (first.label, first.probability, first.model_version) == (">50K", 0.83, "aml:ml-income")
    assert (second.label, second.probability) == ("<=50K", 0.04)


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("LimitExceededException", 417, PredictorThrottled),
        ("PredictorNotMountedException", 400, PredictorUnavailable),
        ("InternalServerException", 500, PredictorUnavailable),
        ("ResourceNotFoundException", 404, PredictorBadRequest),
        ("InvalidInputException", 400, PredictorBadRequest),
    ],
)
def test_aml_failures_map_to_retryable_or_final_error_types(
    code: str, status: int, error: type[PredictorError]
) -> None:
    client = boto3.client("machinelearning", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("predict", service_error_code=code, http_status_code=status)
        with pytest.raises(error):
            predict_rows(AmlPredictor(ADULT, client, "ml-income", "https://endpoint"), [ARTICLE_VALUES])


def test_aml_answer_without_scores_is_a_model_error() -> None:
    client = boto3.client("machinelearning", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response("predict", {"Prediction": {"predictedLabel": "1", "predictedScores": {}}})
        with pytest.raises(PredictorModelError):
            predict_rows(AmlPredictor(ADULT, client, "ml-income", "https://endpoint"), [ARTICLE_VALUES])
