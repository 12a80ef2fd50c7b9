"""Emptying a stack's versioned buckets before `sam delete`, against moto's CloudFormation and S3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from predictflow.service import cleanup

STACK = "predictflow-cleanup"
TEMPLATE = {
    "Resources": {
        bucket: {
            "Type": "AWS::S3::Bucket",
            "Properties": {"VersioningConfiguration": {"Status": "Enabled"}},
        }
        for bucket in ("InputBucket", "OutputBucket")
    }
    | {
        "Ledger": {
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": "Retain",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            },
        }
    }
}


@pytest.fixture
def stack() -> Iterator[dict[str, str]]:
    """A deployed stack whose buckets hold versions and delete markers, as a used one does."""
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(TEMPLATE))
        resources = cloudformation.describe_stack_resources(StackName=STACK)["StackResources"]
        names = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
        s3 = boto3.client("s3", region_name="us-east-1")
        for logical in ("InputBucket", "OutputBucket"):
            # moto's CloudFormation does not apply VersioningConfiguration; AWS's does.
            s3.put_bucket_versioning(Bucket=names[logical], VersioningConfiguration={"Status": "Enabled"})
        for version in range(3):
            s3.put_object(
                Bucket=names["InputBucket"], Key="incoming/records.csv", Body=f"v{version}".encode()
            )
        s3.delete_object(Bucket=names["InputBucket"], Key="incoming/records.csv")  # a delete marker
        # More than one DeleteObjects request holds.
        for number in range(cleanup.DELETE_BATCH + 2):
            s3.put_object(Bucket=names["OutputBucket"], Key=f"predictions/{number}.jsonl", Body=b"{}")
        yield names


def versions_and_markers(s3: Any, bucket: str) -> tuple[int, int]:
    listing = s3.list_object_versions(Bucket=bucket)
    return len(listing.get("Versions", [])), len(listing.get("DeleteMarkers", []))


def test_the_stacks_buckets_are_emptied_of_every_version_and_marker_and_can_go(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    with pytest.raises(s3.exceptions.ClientError, match="BucketNotEmpty"):
        s3.delete_bucket(Bucket=stack["InputBucket"])
    assert cleanup.main([STACK, "--region", "us-east-1", "--yes"]) == 0
    for logical in ("InputBucket", "OutputBucket"):
        assert versions_and_markers(s3, stack[logical]) == (0, 0)
        s3.delete_bucket(Bucket=stack[logical])  # what CloudFormation does on `sam delete`
    printed = capsys.readouterr().out
    assert f"s3://{stack['InputBucket']}: 3 object version(s), 1 delete marker(s)" in printed
    assert (
        f"s3://{stack['OutputBucket']}: emptied ({cleanup.DELETE_BATCH + 2} versions, 0 markers)" in printed
    )
    # The retained table is not the cleanup's business.
    assert boto3.client("dynamodb", region_name="us-east-1").list_tables()["TableNames"] == [stack["Ledger"]]


def test_nothing_is_deleted_unless_the_user_says_yes(
    stack: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert cleanup.main([STACK, "--region", "us-east-1"]) == 1
    s3 = boto3.client("s3", region_name="us-east-1")
    assert versions_and_markers(s3, stack["InputBucket"]) == (3, 1)
    assert "nothing deleted" in capsys.readouterr().out
