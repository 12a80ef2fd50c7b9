"""Deploy template.yaml into moto with boto3, resource by resource, like CloudFormation.

Only the resource types the template uses are known here; any other type stops the deploy
with its logical id and type named (`UnsupportedResources`), so nothing is skipped quietly.
"""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

from predictflow.local.template import Resolver, TemplateError, references, require_local_extra, transform

# Before the bridge imports moto: every local command deploys through here.
require_local_extra()

from predictflow.local.api_bridge import LocalApi, LocalApis  # noqa: E402 - after the check above
from predictflow.local.moto_bridge import (  # noqa: E402 - after the check above
    LambdaInvoker,
    LocalFunction,
    environment,
    load_handler,
)
from predictflow.local.stream_bridge import StreamMapping  # noqa: E402 - after the check above

ACCOUNT_ID = "123456789012"


class UnsupportedResources(TemplateError):
    def __init__(self, unsupported: dict[str, str]) -> None:
        listed = ", ".join(f"{name} ({kind})" for name, kind in sorted(unsupported.items()))
        super().__init__(f"the local stack cannot create: {listed}")
        self.unsupported = unsupported


@dataclass
class Deployment:
    stack_name: str
    region: str
    outputs: dict[str, str]
    physical_ids: dict[str, str]
    resource_types: dict[str, str]
    function_environment: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """What the local stack does differently from AWS, said out loud."""
    apis: list[LocalApi] = field(default_factory=list)
    """The REST APIs, with their routes, for the local API bridge (`api_bridge.py`)."""
    stream_mappings: list[StreamMapping] = field(default_factory=list)
    """The event source mappings, which the local stream bridge runs (`stream_bridge.py`)."""


def _placeholder_zip() -> bytes:
    # moto stores code but never runs it here: the invoker runs the real folder instead.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README", "predictflow local stack: code runs in-process from the source tree\n")
    return buffer.getvalue()


class Deployer:
    def __init__(
        self, client: Callable[[str], Any], invoker: LambdaInvoker, region: str, suffix: str | None = None
    ) -> None:
        self._client = client
        self._invoker = invoker
        self._region = region
        self.suffix = suffix or uuid.uuid4().hex[:8]
        """What makes this deploy's physical names unique; a restored local stack passes the
        saved one, so that its deploy makes the resources its saved state holds."""
        self._apis = LocalApis()

    def deploy(
        self, template_path: Path, stack_name: str, parameters: dict[str, str] | None = None
    ) -> Deployment:
        transformed = transform(template_path, self._region)
        template = transformed.template
        resources: dict[str, Any] = template["Resources"]
        unsupported = {
            name: spec["Type"] for name, spec in resources.items() if spec["Type"] not in self._creators()
        }
        if unsupported:
            raise UnsupportedResources(unsupported)
        resolver = Resolver(
            parameters=self._parameters(template, parameters or {}),
            pseudo={
                "AWS::Region": self._region,
                "AWS::AccountId": ACCOUNT_ID,
                "AWS::Partition": "aws",
                "AWS::StackName": stack_name,
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::StackId": (
                    f"arn:aws:cloudformation:{self._region}:{ACCOUNT_ID}:stack/{stack_name}/{self.suffix}"
                ),
            },
        )
        resolver.mappings = template.get("Mappings", {})
        # Before any resource, as CloudFormation checks them: a refused deploy creates nothing.
        resolver.check_rules(template.get("Rules", {}))
        resolver.evaluate_conditions(template.get("Conditions", {}))
        graph = {
            name: (references(spec.get("Properties", {})) | set(_depends_on(spec))) & resources.keys()
            for name, spec in resources.items()
        }
        deployment = Deployment(stack_name, self._region, {}, {}, {})
        for name in TopologicalSorter(graph).static_order():
            spec = resources[name]
            if "Condition" in spec and not resolver.conditions[spec["Condition"]]:
                continue
            properties = resolver.resolve(spec.get("Properties", {}))
            ref, attributes = self._creators()[spec["Type"]](
                name, properties, stack_name, transformed.code_dirs, deployment
            )
            resolver.refs[name] = ref
            for attribute, value in attributes.items():
                resolver.attributes[(name, attribute)] = value
            deployment.physical_ids[name] = ref
            deployment.resource_types[name] = spec["Type"]
        deployment.apis = list(self._apis.apis.values())
        deployment.outputs = {
            name: str(resolver.resolve(output["Value"]))
            for name, output in template.get("Outputs", {}).items()
            if "Condition" not in output or resolver.conditions[output["Condition"]]
        }
        return deployment

    @staticmethod
    def _parameters(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
        declared = template.get("Parameters", {})
        unknown = set(overrides) - declared.keys()
        if unknown:
            raise TemplateError(f"unknown template parameters: {', '.join(sorted(unknown))}")
        values = {}
        for name, spec in declared.items():
            value = overrides.get(name, spec.get("Default"))
            if value is None:
                raise TemplateError(f"template parameter {name} has no default and no value")
            allowed = spec.get("AllowedValues")
            if allowed and str(value) not in [str(a) for a in allowed]:
                raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
            _check_constraints(name, spec, str(value))
            values[name] = str(value)
        return values

    def _physical_name(self, stack: str, logical: str, limit: int, lower: bool = False) -> str:
        name = f"{stack}-{logical}"[: limit - 9] + f"-{self.suffix}"
        return name.lower() if lower else name

    def _creators(self) -> dict[str, Callable[..., tuple[str, dict[str, str]]]]:
        return {
            "AWS::S3::Bucket": self._bucket,
            "AWS::S3::BucketPolicy": self._bucket_policy,
            "AWS::DynamoDB::Table": self._table,
            "AWS::IAM::Role": self._role,
            "AWS::Lambda::LayerVersion": self._layer,
            "AWS::Lambda::Function": self._function,
            "AWS::Logs::LogGroup": self._log_group,
            "AWS::StepFunctions::StateMachine": self._state_machine,
            "AWS::Events::Rule": self._rule,
            "AWS::CloudWatch::Alarm": self._alarm,
            "AWS::SQS::Queue": self._queue,
            "AWS::SQS::QueuePolicy": self._queue_policy,
            "AWS::Lambda::Permission": self._permission,
            "AWS::Lambda::EventSourceMapping": self._event_source_mapping,
            "AWS::Kinesis::Stream": self._kinesis_stream,
        } | self._apis.creators()

    def _bucket(self, logical: str, props: dict[str, Any], stack: str, *_: Any) -> tuple[str, dict[str, str]]:
        s3 = self._client("s3")
        name = props.get("BucketName") or self._physical_name(stack, logical, 63, lower=True)
        if self._region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self._region})
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
        if "BucketEncryption" in props:
            rules = [
                {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if "OwnershipControls" in props:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
        notification = props.get("NotificationConfiguration", {})
        if notification.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
        if "LifecycleConfiguration" in props:
            rules = []
            for rule in props["LifecycleConfiguration"]["Rules"]:
                converted: dict[str, Any] = {
                    "ID": rule["Id"],
                    "Status": rule["Status"],
                    "Filter": {"Prefix": rule.get("Prefix", "")},
                }
                if "ExpirationInDays" in rule:
                    converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
                if "NoncurrentVersionExpiration" in rule:
                    converted["NoncurrentVersionExpiration"] = {
                        "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
                    }
                rules.append(converted)
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
        return name, {"Arn": f"arn:aws:s3:::{name}"}

    def _bucket_policy(
        self, logical: str, props: dict[str, Any], stack: str, code_dirs: Any, deployment: Deployment
    ) -> tuple[str, dict[str, str]]:
        document = {"Version": "2012-10-17"} | props["PolicyDocument"]
        # moto 5.2.5 enforces bucket policies but ignores their conditions, so a Deny that
        # holds only under a condition (aws:SecureTransport) would deny every request.
        conditional = [s for s in document["Statement"] if "Condition" in s]
        for statement in conditional:
            deployment.notes.append(
                f"{logical}: statement {statement.get('Sid', '?')} is conditional; moto cannot "
                "evaluate conditions, so it is not applied locally (it is on AWS)"
            )
        document["Statement"] = [s for s in document["Statement"] if "Condition" not in s]
        if document["Statement"]:
            self._client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(document))
        return f"{props['Bucket']}-policy", {}

    def _table(self, logical: str, props: dict[str, Any], stack: str, *_: Any) -> tuple[str, dict[str, str]]:
        name = props.get("TableName") or self._physical_name(stack, logical, 255)
        arguments: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if "GlobalSecondaryIndexes" in props:
            arguments["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if "SSESpecification" in props:
            arguments["SSESpecification"] = {"Enabled": bool(props["SSESpecification"].get("SSEEnabled"))}
        dynamodb = self._client("dynamodb")
        description = dynamodb.create_table(**arguments)["TableDescription"]
        return name, {"Arn": description["TableArn"]}

    def _role(self, logical: str, props: dict[str, Any], stack: str, *_: Any) -> tuple[str, dict[str, str]]:
        iam = self._client("iam")
        name = props.get("RoleName") or self._physical_name(stack, logical, 64)
        role = iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"])
        )["Role"]
        for policy in props.get("Policies", []):
            document = {"Version": "2012-10-17"} | policy["PolicyDocument"]
            iam.put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document)
            )
        return name, {"Arn": role["Arn"], "RoleId": role["RoleId"]}

    def _layer(self, logical: str, props: dict[str, Any], stack: str, *_: Any) -> tuple[str, dict[str, str]]:
        layer = self._client("lambda").publish_layer_version(
            LayerName=props.get("LayerName") or self._physical_name(stack, logical, 64),
            Content={"ZipFile": _placeholder_zip()},
        )
        return str(layer["LayerVersionArn"]), {}

    def _function(
        self,
        logical: str,
        props: dict[str, Any],
        stack: str,
        code_dirs: dict[str, Path],
        deployment: Deployment,
    ) -> tuple[str, dict[str, str]]:
        name = props.get("FunctionName") or self._physical_name(stack, logical, 64)
        variables = {k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()}
        # One process hosts every function, so they must agree on their environment.
        if deployment.function_environment and variables != deployment.function_environment:
            raise TemplateError(f"{logical}: the local stack needs every function to share one environment")
        deployment.function_environment = variables
        created = self._client("lambda").create_function(
            FunctionName=name,
            Runtime=props["Runtime"],
            Role=props["Role"],
            Handler=props["Handler"],
            Code={"ZipFile": _placeholder_zip()},
            Timeout=int(props.get("Timeout", 3)),
            MemorySize=int(props.get("MemorySize", 128)),
            Environment={"Variables": variables},
            Architectures=props.get("Architectures", ["x86_64"]),
            # The layers the template gives it (the ORT layer only where its condition holds), so
            # get_function tells what a deployed stack would run with; their content is not used.
            Layers=[str(layer) for layer in props.get("Layers", [])],
        )
        code_dir = code_dirs.get(logical)
        if code_dir is None:
            raise TemplateError(f"{logical}: no local code folder")
        with environment(variables):
            handler = load_handler(code_dir, props["Handler"], f"predictflow_function_{logical}")
        self._invoker.register(
            LocalFunction(
                name,
                created["FunctionArn"],
                handler,
                float(props.get("Timeout", 3)),
                int(props.get("MemorySize", 128)),
            )
        )
        return name, {"Arn": created["FunctionArn"]}

    def _log_group(
        self, logical: str, props: dict[str, Any], stack: str, *_: Any
    ) -> tuple[str, dict[str, str]]:
        name = props.get("LogGroupName") or f"/{stack}/{logical}"
        logs = self._client("logs")
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in props:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
        return name, {"Arn": f"arn:aws:logs:{self._region}:{ACCOUNT_ID}:log-group:{name}:*"}

    def _state_machine(
        self, logical: str, props: dict[str, Any], stack: str, *_: Any
    ) -> tuple[str, dict[str, str]]:
        definition = props["DefinitionString"]
        for key, value in props.get("DefinitionSubstitutions", {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        name = props.get("StateMachineName") or self._physical_name(stack, logical, 80)
        arguments: dict[str, Any] = {
            "name": name,
            "definition": definition,
            "roleArn": props["RoleArn"],
            "type": props.get("StateMachineType", "STANDARD"),
        }
        if "TracingConfiguration" in props:
            arguments["tracingConfiguration"] = {
                "enabled": bool(props["TracingConfiguration"].get("Enabled"))
            }
        arn = self._client("stepfunctions").create_state_machine(**arguments)["stateMachineArn"]
        return arn, {"Name": name, "Arn": arn}

    def _rule(self, logical: str, props: dict[str, Any], stack: str, *_: Any) -> tuple[str, dict[str, str]]:
        events = self._client("events")
        name = props.get("Name") or self._physical_name(stack, logical, 64)
        arn = events.put_rule(
            Name=name,
            EventPattern=json.dumps(props["EventPattern"]),
            State=props.get("State", "ENABLED"),
        )["RuleArn"]
        targets = [
            {
                key: value
                for key, value in target.items()
                if key in ("Id", "Arn", "RoleArn", "Input", "InputPath", "RetryPolicy", "DeadLetterConfig")
            }
            for target in props.get("Targets", [])
        ]
        if targets:
            events.put_targets(Rule=name, Targets=targets)
        return name, {"Arn": arn}

    def _permission(
        self, logical: str, props: dict[str, Any], stack: str, *_: Any
    ) -> tuple[str, dict[str, str]]:
        arguments = {"StatementId": logical, "Action": props["Action"], "Principal": props["Principal"]}
        if "SourceArn" in props:
            arguments["SourceArn"] = props["SourceArn"]
        self._client("lambda").add_permission(FunctionName=props["FunctionName"], **arguments)
        return f"{logical}-{self.suffix}", {}

    def _queue(self, logical: str, props: dict[str, Any], stack: str, *_: Any) -> tuple[str, dict[str, str]]:
        sqs = self._client("sqs")
        name = props.get("QueueName") or self._physical_name(stack, logical, 80)
        url = str(sqs.create_queue(QueueName=name, Attributes=_queue_attributes(props))["QueueUrl"])
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        # Ref of a queue is its URL, as in CloudFormation.
        return url, {"Arn": str(arn), "QueueName": name, "QueueUrl": url}

    def _queue_policy(
        self, logical: str, props: dict[str, Any], stack: str, *_: Any
    ) -> tuple[str, dict[str, str]]:
        sqs = self._client("sqs")
        document = json.dumps({"Version": "2012-10-17"} | props["PolicyDocument"])
        for url in props["Queues"]:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": document})
        return f"{logical}-{self.suffix}", {}

    def _event_source_mapping(
        self, logical: str, props: dict[str, Any], stack: str, code_dirs: Any, deployment: Deployment
    ) -> tuple[str, dict[str, str]]:
        """Recorded, not created in moto (which would run it through Docker): the stream
        bridge polls the queue and invokes the function as the mapping would."""
        mapping = StreamMapping(
            logical_id=logical,
            function_name=str(props["FunctionName"]),
            source_arn=str(props["EventSourceArn"]),
            batch_size=int(props.get("BatchSize", 10)),
            batching_window=int(props.get("MaximumBatchingWindowInSeconds", 0)),
            report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
            enabled=str(props.get("Enabled", True)).lower() != "false",
            starting_position=str(props.get("StartingPosition", "LATEST")),
            maximum_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
            on_failure=str(props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination", "")),
        )
        deployment.stream_mappings.append(mapping)
        return f"{logical}-{self.suffix}", {}

    def _kinesis_stream(
        self, logical: str, props: dict[str, Any], stack: str, *_: Any
    ) -> tuple[str, dict[str, str]]:
        """One shard locally whatever the mode: on-demand has no shard count to give."""
        kinesis = self._client("kinesis")
        name = props.get("Name") or self._physical_name(stack, logical, 128)
        kinesis.create_stream(StreamName=name, ShardCount=int(props.get("ShardCount", 1)))
        arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
        return name, {"Arn": str(arn)}

    def _alarm(self, logical: str, props: dict[str, Any], stack: str, *_: Any) -> tuple[str, dict[str, str]]:
        name = props.get("AlarmName") or self._physical_name(stack, logical, 255)
        arguments = {
            key: props[key]
            for key in (
                "Namespace",
                "MetricName",
                "Dimensions",
                "Statistic",
                "ExtendedStatistic",
                "Period",
                "EvaluationPeriods",
                "Threshold",
                "ComparisonOperator",
                "TreatMissingData",
                "AlarmDescription",
            )
            if key in props
        }
        for key in ("Period", "EvaluationPeriods"):
            arguments[key] = int(arguments[key])
        arguments["Threshold"] = float(arguments["Threshold"])
        self._client("cloudwatch").put_metric_alarm(AlarmName=name, **arguments)
        return name, {"Arn": f"arn:aws:cloudwatch:{self._region}:{ACCOUNT_ID}:alarm:{name}"}


def _check_constraints(name: str, spec: dict[str, Any], value: str) -> None:
    """The parameter constraints CloudFormation enforces before a deploy (Number bounds and
    AllowedPattern), so the local stack refuses the values AWS refuses."""
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise TemplateError(f"parameter {name}={value!r} must be a number") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"parameter {name}={value} must not be less than {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"parameter {name}={value} must not be greater than {spec['MaxValue']}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and re.fullmatch(pattern, value) is None:
        raise TemplateError(f"parameter {name}={value!r} does not match {pattern}")


def _queue_attributes(props: dict[str, Any]) -> dict[str, str]:
    names = ("MessageRetentionPeriod", "SqsManagedSseEnabled", "VisibilityTimeout", "KmsMasterKeyId")
    attributes = {name: str(props[name]).lower() if isinstance(props[name], bool) else str(props[name])
                  for name in names if name in props}  # fmt: skip
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    return attributes


def _depends_on(spec: dict[str, Any]) -> list[str]:
    depends = spec.get("DependsOn", [])
    return [depends] if isinstance(depends, str) else list(depends)
