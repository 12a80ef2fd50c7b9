"""The moto behaviours the local stack works around, pinned: if an upgrade of moto changes
one of them, these tests fail and say which part of moto_bridge.py to revisit."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import moto
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from predictflow.local.moto_bridge import (
    MOTO_VERSION,
    LambdaContext,
    LambdaInvoker,
    LocalFunction,
    MotoBridge,
    MotoBridgeError,
    aws_shaped_s3_event,
    check_moto_version,
    isolate_powertools_log_keys,
    share_botocore_loader,
)

REGION = "us-east-1"
PASS_DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws(config=CONFIG):
        yield


def trusting(service: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def role_arn() -> str:
    iam = boto3.client("iam", region_name=REGION)
    return str(
        iam.create_role(RoleName="r", AssumeRolePolicyDocument=trusting("states.amazonaws.com"))["Role"][
            "Arn"
        ]
    )


def s3_to_state_machine() -> tuple[str, str]:
    """A bucket whose object-created events a rule sends to a state machine."""
    s3, events, sfn = (boto3.client(s, region_name=REGION) for s in ("s3", "events", "stepfunctions"))
    s3.create_bucket(Bucket="input-bucket")
    s3.put_bucket_notification_configuration(
        Bucket="input-bucket", NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    machine = sfn.create_state_machine(name="m", definition=PASS_DEFINITION, roleArn=role_arn())[
        "stateMachineArn"
    ]
    events.put_rule(
        Name="r", EventPattern=json.dumps({"source": ["aws.s3"], "detail-type": ["Object Created"]})
    )
    events.put_targets(Rule="r", Targets=[{"Id": "sfn", "Arn": machine}])
    return "input-bucket", machine


def test_the_bridge_refuses_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    check_moto_version()
    assert moto.__version__ == MOTO_VERSION
    monkeypatch.setattr(moto, "__version__", "9.9.9")
    with pytest.raises(MotoBridgeError, match=f"written for moto {MOTO_VERSION}; found moto 9.9.9"):
        check_moto_version()


def test_pinned_moto_does_not_deliver_s3_events_to_a_state_machine(aws: None) -> None:
    bucket, machine = s3_to_state_machine()
    boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key="k", Body=b"x")
    executions = boto3.client("stepfunctions", region_name=REGION).list_executions(stateMachineArn=machine)
    assert executions["executions"] == [], "moto now delivers to states targets: drop that part of the bridge"


def test_with_the_bridge_the_rule_starts_an_execution_with_an_aws_shaped_event(aws: None) -> None:
    bridge = MotoBridge(LambdaInvoker()).install()
    started: list[dict[str, Any]] = []
    bridge.on_execution_started(lambda arn, event: started.append(event))
    try:
        bucket, machine = s3_to_state_machine()
        s3 = boto3.client("s3", region_name=REGION)
        s3.put_object(Bucket=bucket, Key="a", Body=b"x")
        s3.put_object(Bucket=bucket, Key="a", Body=b"x")
        sfn = boto3.client("stepfunctions", region_name=REGION)
        assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 2
    finally:
        bridge.close()
    first, second = (event["detail"]["object"] for event in started)
    assert "etag" in first
    assert "eTag" not in first
    assert first["sequencer"] != second["sequencer"]
    assert isinstance(started[0]["time"], str)


def test_pinned_moto_sends_s3_events_with_etag_misspelt_and_a_constant_sequencer(aws: None) -> None:
    from moto.events.models import Rule

    seen: list[Any] = []
    original = Rule.send_to_targets
    Rule.send_to_targets = lambda rule, event, transform_input=True: seen.append(event)  # type: ignore[method-assign, assignment, misc, arg-type]
    try:
        s3_to_state_machine()
        s3 = boto3.client("s3", region_name=REGION)
        s3.put_object(Bucket="input-bucket", Key="a", Body=b"1")
        s3.put_object(Bucket="input-bucket", Key="b", Body=b"2")
    finally:
        Rule.send_to_targets = original  # type: ignore[method-assign]
    assert "eTag" in seen[0]["detail"]["object"], (
        "moto now spells etag as AWS does: simplify aws_shaped_s3_event"
    )
    assert seen[0]["detail"]["object"]["sequencer"] == seen[1]["detail"]["object"]["sequencer"]
    shaped = aws_shaped_s3_event(seen[0])
    assert shaped["detail"]["object"]["etag"] == seen[0]["detail"]["object"]["eTag"]


def test_pinned_moto_names_an_unnamed_execution_none_and_the_bridge_names_it_a_uuid(aws: None) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(name="m", definition=PASS_DEFINITION, roleArn=role_arn())[
        "stateMachineArn"
    ]
    assert sfn.start_execution(stateMachineArn=machine)["executionArn"].endswith(":None")
    bridge = MotoBridge(LambdaInvoker()).install()
    try:
        arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    finally:
        bridge.close()
    assert len(arn.rsplit(":", 1)[1]) == 36


def lambda_function() -> str:
    """A function moto knows about (its code is never run by moto here)."""
    client = boto3.client("lambda", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument=trusting("lambda.amazonaws.com"))
    import io
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("app.py", "def lambda_handler(e, c): return 'moto ran this'\n")
    created = client.create_function(
        FunctionName="fn",
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="app.lambda_handler",
        Code={"ZipFile": archive.getvalue()},
    )
    return str(created["FunctionArn"])


def test_pinned_moto_does_not_run_lambda_code_without_docker(aws: None) -> None:
    lambda_function()
    payload = (
        boto3.client("lambda", region_name=REGION).invoke(FunctionName="fn", Payload=b"{}")["Payload"].read()
    )
    assert b"moto ran this" not in payload, "moto now runs Lambda code: the invoker may be unnecessary"


def test_the_invoker_runs_the_handler_and_honours_the_lambda_error_contract(aws: None) -> None:
    class Throttled(Exception):
        pass

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event.get("fail"):
            raise Throttled("slow down")
        return {"doubled": event["n"] * 2, "function": context.function_name}

    arn = lambda_function()
    invoker = LambdaInvoker()
    invoker.register(LocalFunction("fn", arn, handler, 3.0, 128))
    bridge = MotoBridge(invoker).install()
    try:
        client = boto3.client("lambda", region_name=REGION)
        ok = client.invoke(FunctionName=arn, Payload=json.dumps({"n": 21}))
        failed = client.invoke(FunctionName="fn", Payload=json.dumps({"fail": True}))
    finally:
        bridge.close()
    assert json.loads(ok["Payload"].read()) == {"doubled": 42, "function": "fn"}
    assert "FunctionError" not in ok
    assert failed["FunctionError"] == "Unhandled"
    error = json.loads(failed["Payload"].read())
    assert (error["errorType"], error["errorMessage"]) == ("Throttled", "slow down")
    assert any("slow down" in line for line in error["stackTrace"])


def test_a_handler_that_overruns_its_timeout_is_reported_as_lambda_does(aws: None) -> None:
    arn = lambda_function()
    invoker = LambdaInvoker()
    invoker.register(LocalFunction("fn", arn, lambda e, c: time.sleep(2), 0.2, 128))
    payload, errored = invoker.invoke("fn", {})
    assert errored
    assert json.loads(payload)["errorType"] == "Sandbox.Timedout"


def test_retry_waits_are_scaled_and_restored(aws: None) -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    # moto's module imports `time`; the bridge swaps that reference.
    bridge = MotoBridge(LambdaInvoker(), retry_wait_scale=0.0).install()
    assert retrier_decl.time is not time  # type: ignore[attr-defined]
    bridge.close()
    assert retrier_decl.time is time  # type: ignore[attr-defined]


def test_pinned_moto_ignores_bucket_policy_conditions(aws: None) -> None:
    """Why the local deploy leaves conditional Deny statements out (and says so)."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="tls-only")
    statement = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": "arn:aws:s3:::tls-only/*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    deny = {"Version": "2012-10-17", "Statement": [statement]}
    s3.put_bucket_policy(Bucket="tls-only", Policy=json.dumps(deny))
    with pytest.raises(s3.exceptions.ClientError) as refused:
        s3.put_object(Bucket="tls-only", Key="k", Body=b"over https")
    assert refused.value.response["Error"]["Code"] in ("403", "AccessDenied")


def test_the_bridge_reports_each_execution_end_with_its_final_status(aws: None) -> None:
    bridge = MotoBridge(LambdaInvoker()).install()
    ended: list[tuple[str, str]] = []
    bridge.on_execution_finished(lambda arn, status: ended.append((arn, status)))
    failing = json.dumps({"StartAt": "No", "States": {"No": {"Type": "Fail", "Error": "Nope"}}})
    try:
        sfn = boto3.client("stepfunctions", region_name=REGION)
        role = role_arn()
        passing = sfn.create_state_machine(name="pass", definition=PASS_DEFINITION, roleArn=role)
        failing_machine = sfn.create_state_machine(name="fail", definition=failing, roleArn=role)
        good = sfn.start_execution(stateMachineArn=passing["stateMachineArn"])["executionArn"]
        bad = sfn.start_execution(stateMachineArn=failing_machine["stateMachineArn"])["executionArn"]
        deadline = time.monotonic() + 10
        while len(ended) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        # Heard only once DescribeExecution says the same.
        assert sfn.describe_execution(executionArn=good)["status"] == "SUCCEEDED"
    finally:
        bridge.close()
    assert sorted(ended) == sorted([(good, "SUCCEEDED"), (bad, "FAILED")])


def test_sessions_share_one_botocore_loader_until_undone() -> None:
    import botocore.session
    import moto.core.utils as moto_utils

    undo = share_botocore_loader()
    try:
        first, second = botocore.session.Session(), botocore.session.Session()
        assert first.get_component("data_loader") is second.get_component("data_loader")
        # A model parsed for one session is the one every other session gets.
        assert first.get_service_model("s3") is not None
        loader = second.get_component("data_loader")
        assert loader.load_service_model("s3", "service-2") is first.get_component(
            "data_loader"
        ).load_service_model("s3", "service-2")
        # moto reads the models it serves through a loader of its own: one, too.
        assert moto_utils.create_loader() is moto_utils.create_loader()  # type: ignore[attr-defined]
    finally:
        undo()
    after = botocore.session.Session()
    assert after.get_component("data_loader") is not first.get_component("data_loader")
    assert moto_utils.create_loader() is not moto_utils.create_loader()  # type: ignore[attr-defined]


DEFERRED_BATCH = """
import sys
from predictflow.local.moto_bridge import defer_moto_batch
defer_moto_batch()
import moto.stepfunctions.parser.models  # what the bridge imports
print("ec2 after the interpreter:", "moto.ec2" in sys.modules)
from moto.backends import get_backend
from moto.batch import batch_backends
print("batch backends:", get_backend("batch") is batch_backends, type(batch_backends).__name__)
"""


def test_moto_batch_loads_on_first_use_and_is_whole_when_it_does() -> None:
    out = subprocess.run(
        [sys.executable, "-c", DEFERRED_BATCH], capture_output=True, text=True, check=True
    ).stdout
    assert "ec2 after the interpreter: False" in out
    assert "batch backends: True BackendDict" in out


def test_pinned_moto_batch_package_only_exports_its_backends() -> None:
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("moto.batch")
    assert spec is not None
    assert spec.origin is not None
    code = [line for line in Path(spec.origin).read_text().splitlines() if line.strip()]
    assert code == ["from .models import batch_backends  # noqa: F401"], (
        "moto.batch's __init__ changed: update defer_moto_batch to expose what it now exports"
    )


def test_the_interpreter_parses_each_json_path_once_while_the_bridge_is_installed(aws: None) -> None:
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    # Pinned: moto builds a new parser for every evaluation through these two names.
    assert vars(json_path)["parse"]("$.a.b") is not vars(json_path)["parse"]("$.a.b")
    bridge = MotoBridge(LambdaInvoker()).install()
    try:
        assert vars(json_path)["parse"]("$.a.b") is vars(json_path)["parse"]("$.a.b")
        assert vars(result_path)["parse"]("$.c") is vars(result_path)["parse"]("$.c")
        assert json_path.extract_json("$.a.b", {"a": {"b": [1, 2]}}) == [1, 2]
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine = sfn.create_state_machine(
            name="paths",
            definition=json.dumps(
                {
                    "StartAt": "Shape",
                    "States": {
                        "Shape": {
                            "Type": "Pass",
                            "Parameters": {"value.$": "$.input.value"},
                            "ResultPath": "$.shaped",
                            "End": True,
                        }
                    },
                }
            ),
            roleArn=role_arn(),
        )["stateMachineArn"]
        outputs = []
        for value in (1, 2):
            arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"input": {"value": value}}))[
                "executionArn"
            ]
            deadline = time.monotonic() + 10
            while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
                assert time.monotonic() < deadline
                time.sleep(0.01)
            outputs.append(json.loads(described["output"])["shaped"])
    finally:
        bridge.close()
    assert outputs == [{"value": 1}, {"value": 2}]
    assert vars(json_path)["parse"]("$.a.b") is not vars(json_path)["parse"]("$.a.b")


def overlapping_handlers(
    service: str, stream: io.StringIO, meeting: threading.Barrier
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Two powertools handlers of one service that append their own keys, wait for each
    other (so the two invocations overlap), then log."""
    from aws_lambda_powertools import Logger

    logger = Logger(service=service, logger_handler=logging.StreamHandler(stream))

    def make(chunk: int) -> Callable[..., Any]:
        @logger.inject_lambda_context(clear_state=True)
        def handler(event: dict[str, Any], context: Any) -> None:
            logger.append_keys(chunk=chunk)
            meeting.wait(timeout=5)
            logger.info("routed")

        return handler

    return make(1), make(2)


def logged(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_pinned_powertools_shares_a_loggers_keys_between_threads() -> None:
    stream, meeting = io.StringIO(), threading.Barrier(2)
    first, second = overlapping_handlers("shared-keys", stream, meeting)
    contexts = [LambdaContext(name, f"arn:aws:lambda:::function:{name}", 128, 3.0) for name in ("one", "two")]
    threads = [
        threading.Thread(target=handler, args=({}, context))
        for handler, context in zip((first, second), contexts, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = logged(stream)
    assert len({line["chunk"] for line in lines}) == 1, (
        "powertools now keeps keys per thread: isolate_powertools_log_keys may be unnecessary"
    )


def test_concurrent_invocations_log_their_own_keys_with_the_keys_isolated() -> None:
    stream, meeting = io.StringIO(), threading.Barrier(2)
    first, second = overlapping_handlers("isolated-keys", stream, meeting)
    undo = isolate_powertools_log_keys()
    try:
        invoker = LambdaInvoker(concurrency=2)
        invoker.register(LocalFunction("one", "arn:aws:lambda:::function:one", first, 5.0, 128))
        invoker.register(LocalFunction("two", "arn:aws:lambda:::function:two", second, 5.0, 128))
        results = []
        threads = [
            threading.Thread(target=lambda name=name: results.append(invoker.invoke(name, {})))
            for name in ("one", "two")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        undo()
    assert [errored for _, errored in results] == [False, False]  # both reached the meeting
    assert sorted((line["function_name"], line["chunk"]) for line in logged(stream)) == [
        ("one", 1),
        ("two", 2),
    ]
    # Outside invocations the keys are the formatter's again, and still work.
    from aws_lambda_powertools import Logger

    logger = Logger(service="isolated-keys")
    logger.append_keys(after="undo")
    logger.info("done")
    assert logged(stream)[-1]["after"] == "undo"


def test_the_invoker_runs_at_most_its_concurrency_at_once() -> None:
    running, most = [0], [0]
    lock = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1

    invoker = LambdaInvoker(concurrency=2)
    invoker.register(LocalFunction("fn", "arn:aws:lambda:::function:fn", handler, 5.0, 128))
    threads = [threading.Thread(target=invoker.invoke, args=("fn", {})) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 2
    assert invoker.invocations == {"fn": 6}


def test_waiting_until_idle_waits_for_the_invocations_in_flight() -> None:
    released = threading.Event()
    invoker = LambdaInvoker()
    invoker.register(
        LocalFunction("fn", "arn:aws:lambda:::function:fn", lambda e, c: released.wait(5), 5.0, 128)
    )
    caller = threading.Thread(target=invoker.invoke, args=("fn", {}))
    caller.start()
    time.sleep(0.05)
    assert invoker.wait_until_idle(timeout=0.05) is False
    released.set()
    assert invoker.wait_until_idle(timeout=5) is True
    caller.join()


MAP_DEFINITION = json.dumps(
    {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 2,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Double",
                    "States": {
                        "Double": {
                            "Type": "Pass",
                            "Parameters": {"value.$": "States.MathAdd($, $)"},
                            "End": True,
                        }
                    },
                },
                "End": True,
            }
        },
    }
)


def run_to_end(sfn: Any, machine: str, document: dict[str, Any]) -> dict[str, Any]:
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps(document))["executionArn"]
    deadline = time.monotonic() + 10
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return dict(described)


def test_a_definition_is_parsed_once_and_each_execution_gets_its_own_program(aws: None) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    # Pinned: moto lexes and parses the definition on every call (create, each execution,
    # each describe).
    assert (
        AmazonStateLanguageParser.parse(MAP_DEFINITION)[1]
        is not AmazonStateLanguageParser.parse(MAP_DEFINITION)[1]
    )
    bridge = MotoBridge(LambdaInvoker()).install()
    try:
        first_program, first_tree = AmazonStateLanguageParser.parse(MAP_DEFINITION)
        second_program, second_tree = AmazonStateLanguageParser.parse(MAP_DEFINITION)
        assert first_tree is second_tree
        assert first_program is not second_program
        sfn, role = boto3.client("stepfunctions", region_name=REGION), role_arn()
        machine = sfn.create_state_machine(name="map", definition=MAP_DEFINITION, roleArn=role)[
            "stateMachineArn"
        ]
        outputs = [run_to_end(sfn, machine, {"items": items}) for items in ([1, 2, 3], [10, 20])]
        # A definition that does not parse is refused at every attempt, as before.
        for attempt in ("broken-1", "broken-2"):
            with pytest.raises(ClientError, match="ASLParserException"):
                sfn.create_state_machine(
                    name=attempt, definition='{"StartAt": "A", "States": {', roleArn=role
                )
    finally:
        bridge.close()
    assert [o["status"] for o in outputs] == ["SUCCEEDED", "SUCCEEDED"]
    assert [json.loads(o["output"]) for o in outputs] == [
        [{"value": 2}, {"value": 4}, {"value": 6}],
        [{"value": 20}, {"value": 40}],
    ]
    assert (
        AmazonStateLanguageParser.parse(MAP_DEFINITION)[1]
        is not AmazonStateLanguageParser.parse(MAP_DEFINITION)[1]
    )


def test_a_second_install_reuses_the_loaders_the_first_one_shared() -> None:
    import botocore.session

    undo = share_botocore_loader()
    try:
        first = botocore.session.Session().get_component("data_loader")
    finally:
        undo()
    undo = share_botocore_loader()
    try:
        # A second stack in the process does not parse botocore's models again.
        assert botocore.session.Session().get_component("data_loader") is first
    finally:
        undo()


RANGES = [
    "bytes=0-0",
    "bytes=10-99",
    "bytes=4194304-8388607",
    "bytes=6000000-",
    "bytes=100-99999999",
    "bytes=-10",
    "bytes=0-1,5-6",
    "bytes=abc",
    "bytes=99999999-",
    "bytes=20-10",
]


def ranged_answers(s3: Any, bucket: str, version: str, etag: str) -> list[Any]:
    """What S3 answers each range in RANGES: the bytes and their Content-Range, or the error."""
    answers: list[Any] = []
    for spec in RANGES:
        for pin in ({"VersionId": version}, {"IfMatch": etag}, {}):
            try:
                got = s3.get_object(Bucket=bucket, Key="big", Range=spec, **pin)
                answers.append((spec, got.get("ContentRange"), got["ContentLength"], got["Body"].read()))
            except ClientError as error:
                answers.append((spec, error.response["Error"]["Code"]))
    return answers


def test_pinned_moto_reads_a_whole_object_for_each_ranged_get(aws: None) -> None:
    import tracemalloc

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="ranges")
    s3.put_object(Bucket="ranges", Key="big", Body=b"x" * 12_000_000)
    tracemalloc.start()
    s3.get_object(Bucket="ranges", Key="big", Range="bytes=0-9")["Body"].read()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak > 12_000_000, "moto now reads only a GET's range: drop gap 13 of the bridge"


def test_with_the_bridge_a_ranged_get_reads_its_range_and_answers_as_moto_does(aws: None) -> None:
    import tracemalloc

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="ranges")
    s3.put_bucket_versioning(Bucket="ranges", VersioningConfiguration={"Status": "Enabled"})
    # Larger than the buffer moto keeps in memory (about 5 MB), so it is read from its file.
    body = bytes(range(256)) * 40_000
    put = s3.put_object(Bucket="ranges", Key="big", Body=body)
    version, etag = put["VersionId"], put["ETag"].strip('"')
    without = ranged_answers(s3, "ranges", version, etag)
    bridge = MotoBridge(LambdaInvoker()).install()
    try:
        assert ranged_answers(s3, "ranges", version, etag) == without
        tracemalloc.start()
        part = s3.get_object(Bucket="ranges", Key="big", Range="bytes=4096-8191")["Body"].read()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert s3.get_object(Bucket="ranges", Key="big")["Body"].read() == body  # no range: whole
    finally:
        bridge.close()
    assert part == body[4096:8192]
    assert peak < 1_000_000
    assert ranged_answers(s3, "ranges", version, etag) == without
