"""The ledger's claim: one conditional write tells a new file from a duplicate, with no read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from predictflow.pipeline.stores import Ledger, ObjectRef

TABLE = "ledger"
REF = ObjectRef("input", "incoming/records.csv", "v1", '"etag"', 120)


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def requests_made(client: Any) -> list[str]:
    """The DynamoDB operations `client` sends from now on, in order (botocore's own hook)."""
    sent: list[str] = []
    client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: sent.append(model.name), unique_id="count-requests"
    )
    return sent


def test_a_duplicate_claim_names_the_holder_from_the_refused_write_alone(dynamodb: Any) -> None:
    ledger = Ledger(dynamodb, TABLE)
    assert ledger.claim(REF, "arn:execution:first") is None
    sent = requests_made(dynamodb)
    assert ledger.claim(REF, "arn:execution:second") == "arn:execution:first"
    assert sent == ["PutItem"], "the holder comes with the refused write: no GetItem that could fail"


def test_a_retried_claim_by_the_same_execution_stays_its_own(dynamodb: Any) -> None:
    ledger = Ledger(dynamodb, TABLE)
    assert ledger.claim(REF, "arn:execution:first") is None
    assert ledger.claim(REF, "arn:execution:first") is None
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": REF.identity}})["Item"]
    assert item["execution_arn"]["S"] == "arn:execution:first"
