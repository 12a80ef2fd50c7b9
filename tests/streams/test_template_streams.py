"""The stream resources as template.yaml declares them (after the SAM transform)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from predictflow.local.template import transform
from tests.fixtures import ROOT


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return dict(transform(ROOT / "template.yaml", "us-east-1").template["Resources"])


def test_the_stream_function_reaches_only_its_own_resources(resources: dict[str, Any]) -> None:
    role = resources["StreamFunctionRole"]["Properties"]
    assert not [arn for arn in role["ManagedPolicyArns"] if "SQSQueueExecution" in arn or "Kinesis" in arn]
    policies = [branch for p in role["Policies"] for branch in (p["Fn::If"][1:] if "Fn::If" in p else [p])]
    documents = [p["PolicyDocument"] for p in policies if isinstance(p, dict) and "PolicyDocument" in p]
    statements = [s for document in documents for s in document["Statement"]]
    text = json.dumps(statements)
    assert '"Resource": "*"' not in text
    assert '"*"' not in text
    writes = [s for s in statements if "s3:PutObject" in json.dumps(s["Action"])]
    assert [s["Resource"] for s in writes] == [{"Fn::Sub": "${OutputBucket.Arn}/predictions/_streams/*"}]


def test_the_queue_is_encrypted_and_redrives_to_an_alarmed_dead_letter_queue(
    resources: dict[str, Any],
) -> None:
    queue = resources["StreamQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["StreamDeadLetterQueue", "Arn"]}
    assert resources["StreamDeadLetterQueue"]["Properties"]["SqsManagedSseEnabled"] is True
    alarm = resources["StreamDeadLetterQueueAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["StreamDeadLetterQueue", "QueueName"]}


@pytest.mark.parametrize("mapping", ["StreamQueueMapping", "StreamRecordsMapping"])
def test_mappings_report_partial_batch_failures(resources: dict[str, Any], mapping: str) -> None:
    properties = resources[mapping]["Properties"]
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BatchSize"] == {"Ref": "StreamBatchSize"}
    assert properties["MaximumBatchingWindowInSeconds"] == {"Ref": "StreamBatchingWindowSeconds"}
