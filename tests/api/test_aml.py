"""POST /aml/predict against Amazon ML's own `Predict` shapes, read from botocore's service model:
code written for Amazon ML sends what it sent and reads what it read."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from predictflow.local.moto_bridge import LambdaContext, environment, load_handler
from tests.api.events import ARTICLE_OBJECT, proxy_event
from tests.fixtures import ADULT, HANDLER_ENVIRONMENT, ROOT

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
CONTEXT = LambdaContext("api", "arn:aws:lambda:us-east-1:123456789012:function:api", 1024, 29)
PREDICT = botocore.session.get_session().get_service_model("machinelearning").operation_model("Predict")
AML_MODEL_ID = "ml-0123456789a"
AML_RECORD: dict[str, str] = {name: str(value) for name, value in ARTICLE_OBJECT.items()}
AML_REQUEST: dict[str, Any] = {
    "MLModelId": AML_MODEL_ID,
    "Record": AML_RECORD,
    "PredictEndpoint": "https://realtime.machinelearning.us-east-1.amazonaws.com",
}


@pytest.fixture(scope="module")
def handler() -> Iterator[Handler]:
    variables = HANDLER_ENVIRONMENT | {"PREDICTFLOW_AML_MODEL_ID": AML_MODEL_ID}
    with environment(variables):
        yield load_handler(ROOT / "functions" / "api", "app.lambda_handler", "predictflow_test_api_aml")


def problems(value: Any, shape: Any, where: str = "") -> list[str]:
    """What in `value` breaks botocore's `shape` (types, required and known members, map keys)."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{where}: not an object"]
        found = [f"{where}.{name}: not in the shape" for name in value if name not in shape.members]
        found += [f"{where}.{name}: required" for name in shape.required_members if name not in value]
        for name, member in shape.members.items():
            if name in value:
                found += problems(value[name], member, f"{where}.{name}")
        return found
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{where}: not a map"]
        found = []
        for key, item in value.items():
            if shape.key.enum and key not in shape.key.enum:
                found.append(f"{where}: key {key!r} is not one of {shape.key.enum}")
            found += problems(item, shape.value, f"{where}[{key}]")
        return found
    if kind == "string":
        return [] if isinstance(value, str) else [f"{where}: not a string"]
    if kind == "float":
        return [] if isinstance(value, float) else [f"{where}: not a float"]
    return [f"{where}: unexpected shape type {kind}"]


def call(handler: Handler, body: Any) -> tuple[int, dict[str, Any]]:
    response = handler(proxy_event("/aml/predict", json.dumps(body)), CONTEXT)
    return int(response["statusCode"]), json.loads(response["body"])


def test_the_request_we_send_is_a_valid_amazon_ml_predict_request() -> None:
    report = ParamValidator().validate(AML_REQUEST, PREDICT.input_shape)
    assert not report.has_errors(), report.generate_report()


@pytest.mark.parametrize("model_id", ["ml-0123456789a", "adult-income", ADULT.model_version])
def test_a_prediction_has_amazon_mls_output_shape(handler: Handler, model_id: str) -> None:
    status, body = call(handler, AML_REQUEST | {"MLModelId": model_id})
    assert status == 200
    assert problems(body, PREDICT.output_shape) == []
    prediction = body["Prediction"]
    # A binary model answers as Amazon ML did: one score, P(positive), under the predicted label.
    assert prediction["predictedLabel"] in ("<=50K", ">50K")
    ((label, score),) = prediction["predictedScores"].items()
    assert label == prediction["predictedLabel"]
    assert (score >= 0.5) == (label == ">50K")
    assert prediction["details"]["PredictiveModelType"] == "BINARY"


def test_the_output_checker_can_fail() -> None:
    bad = {"Prediction": {"predictedScores": {"a": "0.5"}, "details": {"Colour": "red"}, "extra": 1}}
    assert len(problems(bad, PREDICT.output_shape)) == 3


def test_an_invalid_record_is_a_400_naming_its_dead_letter_reason(handler: Handler) -> None:
    record = AML_RECORD | {"workclass": "Astronaut"}
    status, body = call(handler, AML_REQUEST | {"Record": record})
    assert status == 400
    assert body == {
        "error_type": "InvalidRecord",
        "message": "workclass: 'Astronaut' is not a known category",
        "record_error_type": "UnknownCategory",
    }


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"MLModelId": "ml-somebody-else"}, 404, "no model 'ml-somebody-else'"),
        ({"MLModelId": "has space"}, 400, "MLModelId"),
        ({"Record": {"age": 22}}, 400, "Record must map field names to strings"),
        ({"PredictEndpoint": None}, 400, "PredictEndpoint"),
        ({"Extra": 1}, 400, "unknown key(s) 'Extra'"),
    ],
)
def test_requests_amazon_ml_would_refuse_are_refused(
    handler: Handler, change: dict[str, Any], status: int, says: str
) -> None:
    got, body = call(handler, AML_REQUEST | change)
    assert got == status
    assert says in body["message"]


def test_a_request_without_a_required_key_is_refused() -> None:
    request = {key: value for key, value in AML_REQUEST.items() if key != "PredictEndpoint"}
    assert ParamValidator().validate(request, PREDICT.input_shape).has_errors()
