"""The API on the local stack, over real HTTP on 127.0.0.1, as `curl` and any client see it:
the gateway part (routes, request models, gateway responses, from the deployed template) and
the real handler behind it."""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from predictflow.bundle import DEFAULT_BUNDLE_DIR
from predictflow.bundle.store import ModelStore
from predictflow.local.stack import LocalStack
from tests.api.events import ARTICLE_OBJECT
from tests.conftest import running_stack
from tests.fixtures import ADULT, ARTICLE, with_field

BAD_LINES = [
    with_field(1, "Astronaut"),
    "22, Local-gov",
    with_field(0, "-4"),
    with_field(0, "old"),
]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with running_stack(api_port=0) as stack:
        yield stack


def post(
    url: str, body: bytes | str, content_type: str | None = "application/json"
) -> tuple[int, Any, dict[str, str]]:
    data = body.encode() if isinstance(body, str) else body
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text, got = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, text, got = error.code, error.read(), dict(error.headers)
    assert text.count(b"\n") == 0, "one line of JSON"
    return status, json.loads(text), got


def test_the_stack_serves_the_templates_api_and_names_it_in_its_outputs(stack: LocalStack) -> None:
    assert stack.outputs["ApiUrl"] == stack.api_url
    assert stack.api_url.startswith("http://127.0.0.1:")
    assert stack.api_url.endswith("/v1")
    notes = " ".join(stack.deployment.notes if stack.deployment else [])
    assert "IAM authorization, API keys, usage plans and throttles are not checked locally" in notes


def test_a_curl_style_request_is_scored(stack: LocalStack) -> None:
    status, body, headers = post(
        f"{stack.api_url}/predict", json.dumps({"records": [ARTICLE, ARTICLE_OBJECT]})
    )
    assert status == 200
    assert headers["X-Predictflow-Model-Version"] == ADULT.model_version
    assert [r["line"] for r in body["results"]] == [1, 2]
    assert body["results"][0] == body["results"][1] | {"line": 1}


def test_an_error_is_the_one_a_dead_letter_carries_for_the_same_line(stack: LocalStack) -> None:
    # GIVEN the same bad lines uploaded as a file through the pipeline
    key = stack.upload(
        DEFAULT_BUNDLE_DIR, key="incoming/api-bad-lines.csv", body="\n".join(BAD_LINES).encode()
    )
    stack.wait_for_executions(1)
    dead = {
        entry["line"]: (entry["error_type"], entry["error_message"])
        for entry in stack.results().dead_letters(source_key=key)
    }
    # WHEN they are posted to the API
    status, body, _ = post(f"{stack.api_url}/predict", json.dumps({"records": BAD_LINES}))
    # THEN each answers what its dead letter says
    assert status == 200
    answered = {r["line"]: (r["error_type"], r["error_message"]) for r in body["results"]}
    assert len(dead) == len(BAD_LINES)
    assert answered == dead


@pytest.mark.parametrize(
    ("path", "body", "content_type", "status", "error_type"),
    [
        # refused by the gateway, with the template's gateway responses
        ("/predict", json.dumps({"records": [ARTICLE] * 1001}), "application/json", 400, "BadRequestBody"),
        ("/predict", json.dumps({"records": []}), "application/json", 400, "BadRequestBody"),
        ("/predict", "{not json", "application/json", 400, "BadRequestBody"),
        ("/aml/predict", json.dumps({"Record": {}}), "application/json", 400, "BadRequestBody"),
        ("/score", "{}", "application/json", 403, "MissingAuthentication"),
        ("/predict", b"x" * (10 * 1024 * 1024 + 1), "application/json", 413, "PayloadTooLarge"),
        # refused by the handler
        ("/predict", json.dumps({"records": ["x" * 1_100_000]}), "application/json", 413, "PayloadTooLarge"),
        ("/predict", "age,workclass", "text/csv", 415, "UnsupportedMediaType"),
        ("/predict", "a=b", "application/x-www-form-urlencoded", 415, "UnsupportedMediaType"),
        (
            "/predict",
            json.dumps({"records": [ARTICLE], "model_version": "adult-income-000000000000"}),
            "application/json",
            404,
            "UnknownModel",
        ),
    ],
)
def test_bad_requests_over_http(
    stack: LocalStack, path: str, body: str | bytes, content_type: str, status: int, error_type: str
) -> None:
    got, answer, _ = post(f"{stack.api_url}{path}", body, content_type)
    assert (got, answer["error_type"]) == (status, error_type)
    assert answer["message"]


def test_a_deployed_version_can_be_pinned(stack: LocalStack) -> None:
    spec = dataclasses.replace(ADULT.spec, name="adult-copy", model_version="adult-copy-0123456789ab")
    ModelStore(stack.client("s3"), stack.outputs["ModelBucketName"]).upload(DEFAULT_BUNDLE_DIR, spec)
    status, body, headers = post(
        f"{stack.api_url}/predict", json.dumps({"records": [ARTICLE], "model_version": spec.model_version})
    )
    assert status == 200
    assert headers["X-Predictflow-Model-Version"] == body["results"][0]["model_version"] == spec.model_version
