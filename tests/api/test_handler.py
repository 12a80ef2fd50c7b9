"""functions/api's handler with API Gateway proxy events: what a caller gets for each request."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from predictflow.local.moto_bridge import LambdaContext, environment, load_handler
from predictflow.offline import predict_file
from tests.api.events import ARTICLE_OBJECT, proxy_event, records_event
from tests.fixtures import ADULT, ARTICLE, HANDLER_ENVIRONMENT, ROOT, with_field

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
CONTEXT = LambdaContext("api", "arn:aws:lambda:us-east-1:123456789012:function:api", 1024, 29)


@pytest.fixture(scope="module")
def handler() -> Iterator[Handler]:
    with environment(HANDLER_ENVIRONMENT):
        yield load_handler(ROOT / "functions" / "api", "app.lambda_handler", "predictflow_test_api")


def call(handler: Handler, event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = handler(event, CONTEXT)
    body = response["body"]
    assert "\n" not in body, "every answer is one line of JSON"
    headers = {name: values[-1] for name, values in response["multiValueHeaders"].items()}
    assert headers["Content-Type"] == "application/json"
    return int(response["statusCode"]), json.loads(body), headers


def test_each_record_gets_the_prediction_line_a_file_would_get_in_request_order(
    handler: Handler, tmp_path: Path
) -> None:
    # GIVEN the article's record and a variant, as CSV lines and as objects, mixed
    other = with_field(0, "51")
    records: list[Any] = [ARTICLE, ARTICLE_OBJECT, other, dict(ARTICLE_OBJECT, age=51)]
    # WHEN they are posted
    status, body, headers = call(handler, records_event(records))
    # THEN each answers, in order, what `predictflow predict` writes for the same line
    file = tmp_path / "records.csv"
    file.write_text(f"{ARTICLE}\n{other}\n")
    out = io.StringIO()
    predict_file(file, out, None, ADULT)
    offline = [json.loads(line) for line in out.getvalue().splitlines()]
    assert status == 200
    assert headers["X-Predictflow-Model-Version"] == ADULT.model_version == body["model_version"]
    assert (body["predicted"], body["rejected"]) == (4, 0)
    expected = [offline[0], offline[0], offline[1], offline[1]]
    for position, (result, line) in enumerate(zip(body["results"], expected, strict=True), 1):
        assert result == line | {"line": position}
    assert body["results"][0]["probability"] != body["results"][2]["probability"]


def test_a_bad_record_answers_its_dead_letter_reason_and_the_others_are_scored(handler: Handler) -> None:
    records: list[Any] = [
        with_field(1, "Astronaut"),
        ARTICLE,
        {"age": 22},
        "22, Local-gov",
        7,
        "   ",
        f"{ARTICLE}\n{ARTICLE}",
        dict(ARTICLE_OBJECT, age="old"),
    ]
    status, body, _ = call(handler, records_event(records))
    assert status == 200
    assert (body["predicted"], body["rejected"]) == (1, 7)
    errors = [(r.get("error_type"), r.get("error_message")) for r in body["results"]]
    assert [r["line"] for r in body["results"]] == list(range(1, 9))
    assert errors == [
        ("UnknownCategory", "workclass: 'Astronaut' is not a known category"),
        (None, None),
        ("MissingField", "workclass: the field is missing"),
        ("FieldCountError", "expected 14 fields (or 15 with income), got 2"),
        ("MalformedLine", "line is JSON but not an object: '7'"),
        ("MalformedLine", "the record is blank"),
        ("MalformedLine", "a record given as text is one CSV line; this one holds a line break"),
        ("InvalidValue", "age: 'old' is not a whole number"),
    ]
    assert body["results"][1]["label"] in ("<=50K", ">50K")


@pytest.mark.parametrize(
    ("event", "status", "error_type", "says"),
    [
        (proxy_event("/predict", "{not json"), 400, "MalformedJson", "not valid JSON"),
        (proxy_event("/predict", ""), 400, "MalformedJson", "empty"),
        (proxy_event("/predict", '["a"]'), 400, "BadRequest", "JSON object"),
        (proxy_event("/predict", '{"rows": []}'), 400, "BadRequest", "unknown key(s) 'rows'"),
        (proxy_event("/predict", '{"records": "a, b"}'), 400, "BadRequest", "must be a list"),
        (records_event([]), 400, "BadRequest", "empty"),
        (
            records_event([ARTICLE] * 1001),
            400,
            "TooManyRecords",
            "1001 records; a request holds at most 1000",
        ),
        (records_event(["x" * 1_100_000]), 413, "PayloadTooLarge", "over 1048576 bytes"),
        (records_event([ARTICLE], content_type="text/csv"), 415, "UnsupportedMediaType", "'text/csv'"),
        (
            records_event([ARTICLE], content_type="application/x-www-form-urlencoded"),
            415,
            "UnsupportedMediaType",
            "Content-Type: application/json",
        ),
        (
            proxy_event("/predict", {"records": [ARTICLE], "model_version": "nope-123"}),
            404,
            "UnknownModel",
            "nope-123",
        ),
        (
            proxy_event("/predict", {"records": [ARTICLE], "model_version": "../x"}),
            400,
            "BadRequest",
            "model_version",
        ),
        (proxy_event("/score", {"records": [ARTICLE]}), 404, "NotFound", "no route POST /score"),
        (proxy_event("/predict", None, method="GET"), 404, "NotFound", "no route GET /predict"),
    ],
)
def test_every_bad_request_gets_its_status_and_a_one_line_json_error(
    handler: Handler, event: dict[str, Any], status: int, error_type: str, says: str
) -> None:
    got, body, _ = call(handler, event)
    assert (got, body["error_type"]) == (status, error_type)
    assert says in body["message"]


def test_a_missing_content_type_is_taken_as_json(handler: Handler) -> None:
    status, body, _ = call(handler, records_event([ARTICLE], content_type=None))
    assert (status, body["predicted"]) == (200, 1)


def test_a_pinned_model_version_is_served(handler: Handler) -> None:
    status, body, _ = call(
        handler, proxy_event("/predict", {"records": [ARTICLE], "model_version": ADULT.model_version})
    )
    assert (status, body["model_version"]) == (200, ADULT.model_version)


def test_no_record_content_reaches_the_logs(handler: Handler, caplog: pytest.LogCaptureFixture) -> None:
    marker = "Zanzibar-Unlikely-Country"
    with caplog.at_level("INFO", logger="predictflow"):
        call(handler, records_event([with_field(13, marker), dict(ARTICLE_OBJECT, age=44)]))
    logged = " ".join(str(vars(record)) for record in caplog.records)
    assert [r.getMessage() for r in caplog.records if r.levelname == "INFO"] == ["scored request"]
    assert "'predicted': 1" in logged
    assert "'rejected': 1" in logged
    assert marker not in logged
    assert "Local-gov" not in logged
