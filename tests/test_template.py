"""template.yaml: valid, transformable, least-privilege, and every file it names exists."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest
from moto import mock_aws

from predictflow.local.deploy import Deployer
from predictflow.local.moto_bridge import LambdaInvoker
from predictflow.local.template import Resolver, RuleFailed, TemplateError, load_template, transform
from tests.fixtures import ROOT

TEMPLATE = ROOT / "template.yaml"
ASL = ROOT / "statemachine" / "predictflow.asl.json"
# Actions AWS documents as taking no resource-level permission, each with where it is used.
RESOURCE_LESS_ACTIONS = {
    # Step Functions log delivery (https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html)
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    # X-Ray tracing, added by SAM for `Tracing`
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
}  # fmt: skip


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    return transform(TEMPLATE, "us-east-1").template


def either_branch(value: Any) -> list[Any]:
    """Both outcomes of an `Fn::If` (a conditional policy is checked whichever way it goes)."""
    if isinstance(value, dict) and "Fn::If" in value:
        _, when_true, when_false = value["Fn::If"]
        return [v for branch in (when_true, when_false) for v in either_branch(branch)]
    if value == {"Ref": "AWS::NoValue"}:
        return []
    return [value]


def statements(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for name, resource in resources.items():
        if resource["Type"] == "AWS::IAM::Role":
            for conditional in resource["Properties"].get("Policies", []):
                for policy in either_branch(conditional):
                    found.extend((name, s) for s in policy["PolicyDocument"]["Statement"])
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_cfn_lint_reports_no_error_or_warning() -> None:
    from cfnlint.api import lint_all  # type: ignore[import-untyped]

    matches = [str(m) for m in lint_all(TEMPLATE.read_text()) if m.rule.id[0] in "EW"]
    assert matches == []


def test_the_sam_transform_gives_the_pipelines_resources(transformed: dict[str, Any]) -> None:
    types = {name: r["Type"] for name, r in transformed["Resources"].items()}
    for function in ("FetchFunction", "ValidateFunction", "PredictFunction", "RouteFunction"):
        assert types[function] == "AWS::Lambda::Function"
    assert types["PredictionStateMachine"] == "AWS::StepFunctions::StateMachine"
    assert types["PredictionStateMachineObjectCreated"] == "AWS::Events::Rule"
    assert types["DeadLetterAlarm"] == types["FailedExecutionsAlarm"] == "AWS::CloudWatch::Alarm"


def test_no_iam_statement_uses_a_wildcard_where_a_resource_can_be_named(transformed: dict[str, Any]) -> None:
    for role, statement in statements(transformed["Resources"]):
        actions = as_list(statement["Action"])
        assert not any(a == "*" or a.endswith(":*") for a in actions), (role, actions)
        if "*" in as_list(statement["Resource"]):
            assert set(actions) <= RESOURCE_LESS_ACTIONS, (role, actions)


def test_no_function_or_role_name_is_hard_coded(transformed: dict[str, Any]) -> None:
    for name, resource in transformed["Resources"].items():
        properties = resource.get("Properties", {})
        for key in ("FunctionName", "RoleName", "BucketName", "TableName", "StateMachineName"):
            assert key not in properties or resource["Type"] not in (
                "AWS::Lambda::Function", "AWS::IAM::Role", "AWS::S3::Bucket",
                "AWS::DynamoDB::Table", "AWS::StepFunctions::StateMachine",
            ), f"{name} hard-codes {key}"  # fmt: skip


def test_the_state_machine_can_invoke_only_its_four_functions(transformed: dict[str, Any]) -> None:
    invoked = set()
    for role, statement in statements(transformed["Resources"]):
        if role == "PredictionStateMachineRole" and "lambda:InvokeFunction" in as_list(statement["Action"]):
            text = json.dumps(statement["Resource"])
            invoked |= set(re.findall(r'"Ref": "(\w+Function)"', text))
    assert invoked == {"FetchFunction", "ValidateFunction", "PredictFunction", "RouteFunction"}


def test_buckets_are_encrypted_private_versioned_and_deny_plain_http() -> None:
    resources = load_template(TEMPLATE)["Resources"]
    for bucket in ("InputBucket", "OutputBucket"):
        properties = resources[bucket]["Properties"]
        assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert all(properties["PublicAccessBlockConfiguration"].values())
        assert properties["VersioningConfiguration"]["Status"] == "Enabled"
        (deny,) = resources[f"{bucket}Policy"]["Properties"]["PolicyDocument"]["Statement"]
        assert deny["Effect"] == "Deny"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert resources["InputBucket"]["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }


def test_every_file_the_template_references_exists() -> None:
    resources = load_template(TEMPLATE)["Resources"]
    for name, resource in resources.items():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if key in properties:
                assert (ROOT / properties[key]).exists(), f"{name}.{key}"
        if "Handler" in properties:
            module = properties["Handler"].rsplit(".", 1)[0]
            assert (ROOT / properties["CodeUri"] / f"{module}.py").is_file(), name
    assert (ROOT / resources["PredictflowLayer"]["Properties"]["ContentUri"] / "requirements.txt").is_file()


def test_the_asl_names_no_arn_and_every_substitution_is_provided() -> None:
    text = ASL.read_text()
    assert "arn:aws:lambda" not in text
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    provided = load_template(TEMPLATE)["Resources"]["PredictionStateMachine"]["Properties"][
        "DefinitionSubstitutions"
    ]
    assert placeholders == set(provided)


def test_every_task_retries_lambda_service_errors_with_capped_jittered_backoff() -> None:
    service_errors = {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                      "Lambda.TooManyRequestsException"}  # fmt: skip

    def tasks(states: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        found = []
        for name, state in states.items():
            if state["Type"] == "Task":
                found.append((name, state))
            if "ItemProcessor" in state:
                found.extend(tasks(state["ItemProcessor"]["States"]))
        return found

    all_tasks = tasks(json.loads(ASL.read_text())["States"])
    assert {name for name, _ in all_tasks} >= {"Fetch", "Validate", "Predict", "Route", "Finalize"}
    for name, state in all_tasks:
        retried = set()
        for retrier in state["Retry"]:
            retried |= set(retrier["ErrorEquals"])
            assert retrier["MaxDelaySeconds"] > 0, name
            assert retrier["JitterStrategy"] == "FULL", name
            assert retrier["BackoffRate"] > 1, name
        assert service_errors <= retried or "States.ALL" in retried, name
        # Validation problems are routed per record, never retried.
        assert not retried & {"FileRejected", "ObjectNotFound", "FileTooLarge", "RecordError"}, name


def grants(transformed: dict[str, Any], role: str) -> set[tuple[str, str]]:
    """(action, resource) pairs a role's inline policies allow, resources as JSON text."""
    pairs = set()
    for name, statement in statements(transformed["Resources"]):
        if name == role and statement["Effect"] == "Allow":
            for action in as_list(statement["Action"]):
                for resource in as_list(statement["Resource"]):
                    pairs.add((action, json.dumps(resource, sort_keys=True)))
    return pairs


def can(pairs: set[tuple[str, str]], action: str, *resource_parts: str) -> bool:
    return any(a == action and all(part in r for part in resource_parts) for a, r in pairs)


def test_each_function_reads_only_what_it_reads_and_writes_only_what_it_writes(
    transformed: dict[str, Any],
) -> None:
    fetch, validate, predict, route = (
        grants(transformed, f"{name}FunctionRole") for name in ("Fetch", "Validate", "Predict", "Route")
    )
    everyone = (fetch, validate, predict, route)
    # Nobody writes the input bucket; only Fetch and Validate read it.
    assert not any(can(p, "s3:PutObject", "InputBucket") for p in everyone)
    assert can(fetch, "s3:GetObject", "InputBucket")
    assert can(validate, "s3:GetObject", "InputBucket")
    assert not any(can(p, "s3:GetObject", "InputBucket") for p in (predict, route))
    # Work payloads: Validate writes, Predict reads and writes, Route reads; all under work/.
    assert can(validate, "s3:PutObject", "OutputBucket", "/work/*")
    assert can(predict, "s3:GetObject", "/work/*")
    assert can(predict, "s3:PutObject", "/work/*")
    assert can(route, "s3:GetObject", "/work/*")
    # Only Route writes predictions, and only there.
    assert can(route, "s3:PutObject", "/predictions/*")
    assert not any(can(p, "s3:PutObject", "/predictions/*") for p in (fetch, validate, predict))
    assert {r for a, r in route if a == "s3:PutObject"} == {
        r for a, r in route if a == "s3:PutObject" and "/predictions/*" in r
    }
    # Only Route writes dead letters; only Fetch claims in the ledger, only Route closes it.
    assert can(route, "dynamodb:BatchWriteItem", "DeadLetterTable")
    assert not any(
        can(p, action, "DeadLetterTable")
        for p in (fetch, validate, predict)
        for action in ("dynamodb:PutItem", "dynamodb:BatchWriteItem")
    )
    assert can(fetch, "dynamodb:PutItem", "LedgerTable")
    # A refused claim carries its holder, so Fetch reads nothing from the ledger.
    assert not can(fetch, "dynamodb:GetItem", "LedgerTable")
    assert can(route, "dynamodb:UpdateItem", "LedgerTable")
    assert not can(route, "dynamodb:PutItem", "LedgerTable")
    assert not any(action.startswith("dynamodb:") for action, _ in validate | predict)
    assert not any(can(p, "dynamodb:Scan", "") or can(p, "dynamodb:DeleteItem", "") for p in everyone)


# Each set is refused by the template's Rules before any resource is made, on AWS and locally.
REFUSED = {
    "sagemaker-without-endpoint": (
        {"PredictorBackend": "sagemaker"},
        "PredictorBackend sagemaker needs SageMakerEndpointName.",
    ),
    "aml-without-model": (
        {"PredictorBackend": "aml", "AmlPredictEndpoint": "https://realtime.machinelearning.example"},
        "PredictorBackend aml needs AmlModelId.",
    ),
    "aml-without-endpoint": (
        {"PredictorBackend": "aml", "AmlModelId": "ml-1"},
        "PredictorBackend aml needs AmlPredictEndpoint.",
    ),
    "endpoint-for-embedded": (
        {"SageMakerEndpointName": "scorer"},
        "SageMakerEndpointName is set, but PredictorBackend is not sagemaker.",
    ),
    "aml-model-for-sagemaker": (
        {"PredictorBackend": "sagemaker", "SageMakerEndpointName": "scorer", "AmlModelId": "ml-1"},
        "AmlModelId or AmlPredictEndpoint is set, but PredictorBackend is not aml.",
    ),
}
ACCEPTED = {
    "embedded": {},
    "sagemaker": {"PredictorBackend": "sagemaker", "SageMakerEndpointName": "scorer"},
    "aml": {
        "PredictorBackend": "aml",
        "AmlModelId": "ml-1",
        "AmlPredictEndpoint": "https://realtime.machinelearning.example",
    },
}


def rules_resolver(parameters: dict[str, str]) -> Resolver:
    template = load_template(TEMPLATE)
    defaults = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    return Resolver(parameters=defaults | parameters, pseudo={})


@pytest.mark.parametrize(("parameters", "description"), REFUSED.values(), ids=REFUSED.keys())
def test_the_local_deploy_refuses_what_the_rules_refuse_and_creates_nothing(
    parameters: dict[str, str], description: str
) -> None:
    with mock_aws():
        deployer = Deployer(
            lambda service: boto3.client(service, region_name="us-east-1"), LambdaInvoker(), "us-east-1"
        )
        with pytest.raises(RuleFailed) as refused:
            deployer.deploy(TEMPLATE, "rules", parameters)
        assert refused.value.description == description
        assert boto3.client("s3", region_name="us-east-1").list_buckets()["Buckets"] == []


@pytest.mark.parametrize("parameters", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_every_complete_backend_passes_the_rules(parameters: dict[str, str]) -> None:
    rules_resolver(parameters).check_rules(load_template(TEMPLATE)["Rules"])


def test_the_local_deploy_refuses_numbers_outside_the_parameters_bounds() -> None:
    with mock_aws():
        deployer = Deployer(
            lambda service: boto3.client(service, region_name="us-east-1"), LambdaInvoker(), "us-east-1"
        )
        with pytest.raises(TemplateError, match="ChunkBytes=1024 must not be less than 4096"):
            deployer.deploy(TEMPLATE, "bounds", {"ChunkBytes": "1024"})
        with pytest.raises(TemplateError, match="InputPrefix='incoming' does not match"):
            deployer.deploy(TEMPLATE, "bounds", {"InputPrefix": "incoming"})


def test_every_function_logs_to_a_group_of_its_own_that_expires(transformed: dict[str, Any]) -> None:
    resources = transformed["Resources"]
    functions = {name for name, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    groups = {
        r["Properties"]["LogGroupName"]["Fn::Sub"]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Logs::LogGroup"
    }
    for function in functions:
        group = groups[f"/aws/lambda/${{{function}}}"]
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}, function
    environment = load_template(TEMPLATE)["Globals"]["Function"]["Environment"]["Variables"]
    assert environment["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"


SCORING_FUNCTIONS = {"FetchFunction", "PredictFunction", "StreamFunction", "ApiFunction"}
"""The functions that run the model: Fetch predicts small files whole, the others score."""


@pytest.mark.parametrize("setting", ["Included", "Excluded"])
def test_onnx_runtime_is_a_layer_the_scoring_functions_get_only_when_included(setting: str) -> None:
    with mock_aws():
        deployer = Deployer(
            lambda service: boto3.client(service, region_name="us-east-1"), LambdaInvoker(), "us-east-1"
        )
        deployment = deployer.deploy(TEMPLATE, "layers", {"OnnxRuntime": setting})
        lambda_client = boto3.client("lambda", region_name="us-east-1")
        layers = {
            name: [layer["Arn"] for layer in lambda_client.get_function(
                FunctionName=physical)["Configuration"].get("Layers", [])]
            for name, physical in deployment.physical_ids.items()
            if deployment.resource_types[name] == "AWS::Lambda::Function"
        }  # fmt: skip
        published = {
            layer["LayerName"]: layer["LatestMatchingVersion"]["LayerVersionArn"]
            for layer in lambda_client.list_layers()["Layers"]
        }
    assert deployment.outputs["OnnxRuntime"] == setting, "the CLI reads the setting from this Output"
    (core,) = [arn for name, arn in published.items() if "PredictflowLayer" in name]
    ort = [arn for name, arn in published.items() if "OnnxRuntimeLayer" in name]
    assert len(published) == (2 if setting == "Included" else 1)
    for function, arns in layers.items():
        with_ort = setting == "Included" and function in SCORING_FUNCTIONS
        assert arns == [core, *(ort if with_ort else [])], function
    assert set(layers) == SCORING_FUNCTIONS | {"ValidateFunction", "RouteFunction"}


def test_onnx_runtime_is_included_by_default_so_any_bundle_scores() -> None:
    parameter = load_template(TEMPLATE)["Parameters"]["OnnxRuntime"]
    assert parameter["Default"] == "Included"
    assert parameter["AllowedValues"] == ["Included", "Excluded"]
