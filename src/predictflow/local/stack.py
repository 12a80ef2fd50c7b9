"""The local stack: S3, EventBridge, Step Functions, DynamoDB and the real Lambda handlers in
one process, deployed from template.yaml, with no AWS account and no Docker.

    with LocalStack() as stack:                 # moto in-process, template deployed
        stack.upload(Path("events/records-good.csv"))
        stack.wait_for_executions(1)

`LocalStack(server_port=4566)` serves the same stack on 127.0.0.1 for the CLI and any AWS SDK.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Literal

import boto3
from botocore.config import Config

from predictflow.local.api_bridge import ApiServer, Gateway
from predictflow.local.deploy import Deployer, Deployment
from predictflow.local.moto_bridge import (
    FunctionLogs,
    LambdaInvoker,
    MotoBridge,
    StepFunctionsLocalMocks,
    check_moto_version,
    isolate_powertools_log_keys,
    share_botocore_loader,
)
from predictflow.local.persistence import SavedState, StateError, StateStore, fingerprint, restore
from predictflow.local.stream_bridge import StreamBridge
from predictflow.service.results import Results, StackNames

LOG = logging.getLogger("predictflow.local")
PROJECT_ROOT: Final = Path(__file__).resolve().parents[3]
TEMPLATE: Final = PROJECT_ROOT / "template.yaml"
REGION: Final = "us-east-1"
FINISHED: Final = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
MOTO_STATE_DUMP: Final = "moto.stepfunctions.parser.asl.component.eval_component"
"""moto's Step Functions engine logs each failed state as ERROR here, with a dump of its
internal state (about 1,200 characters)."""

LOCAL_ENVIRONMENT: Final = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # No X-Ray daemon and no CloudWatch locally: tracing off, metrics not flushed to stdout.
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    # Payloads never leave this process, so the SDK's CRC32 of every request body (about a
    # third of a large file's local time) protects nothing here. On AWS the default stays.
    "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
}


DEFAULT_CONCURRENCY: Final = os.cpu_count() or 1
"""Invocations at once, one per core: a Map state's chunks overlap where their work releases
the GIL (the model call, gzip, hashing); more threads would only contend for it."""


_quiet_lock = threading.Lock()
_quiet_levels: list[int] = []  # the level before the first stack, once per stack running


def _quiet_moto() -> Callable[[], None]:
    """Silence moto's dump of a failed state's internals (MOTO_STATE_DUMP) while a stack runs:
    the execution's error and cause stay in its record (describe_execution, `show`); the dump
    is of no use on a user's terminal. Returns the function that restores the level once the
    last stack of the process stops."""
    logger = logging.getLogger(MOTO_STATE_DUMP)
    with _quiet_lock:
        _quiet_levels.append(_quiet_levels[0] if _quiet_levels else logger.level)
        logger.setLevel(logging.CRITICAL)

    def undo() -> None:
        with _quiet_lock:
            level = _quiet_levels.pop()
            if not _quiet_levels:
                logger.setLevel(level)

    return undo


def _drop_metrics(_: object) -> None:
    """On AWS, powertools prints metrics to the function's log, which CloudWatch reads. Here
    they are disabled (POWERTOOLS_METRICS_DISABLED), but powertools still keeps them, and
    prints them anyway once a metric holds 100 values: into this process's stdout, in the
    middle of `local run --json`. Dropping them after each invocation keeps stdout clean."""
    from aws_lambda_powertools.metrics.metrics import Metrics

    Metrics._metrics.clear()
    Metrics._metadata.clear()


class LocalStack:
    def __init__(
        self,
        template: Path = TEMPLATE,
        parameters: dict[str, str] | None = None,
        *,
        stack_name: str = "predictflow-local",
        server_port: int | None = None,
        log_level: str = "WARNING",
        retry_wait_scale: float = 1.0,
        publish_outputs: bool = True,
        concurrency: int = DEFAULT_CONCURRENCY,
        api_port: int | None = None,
        streams: bool = False,
        state_dir: Path | None = None,
        save_interval: float = 2.0,
        function_logs: Literal["stdout", "stderr", "none"] = "stdout",
    ) -> None:
        check_moto_version()
        self.template = template
        self.parameters = parameters or {}
        self.stack_name = stack_name
        self.server_port = server_port
        self.log_level = log_level
        self.retry_wait_scale = retry_wait_scale
        self.publish_outputs = publish_outputs
        self.api_port = api_port
        """Serve the template's REST API on this port of 127.0.0.1 (0: any free one); None: not at all."""
        self.api_server: ApiServer | None = None
        self.streams = streams
        """Deliver the template's SQS and Kinesis event source mappings (`stream_bridge.py`)."""
        self.stream_bridge: StreamBridge | None = None
        self.function_logs = function_logs
        """Where the functions' log lines are printed besides CloudWatch Logs, which keeps them
        all (`predictflow logs`); "none": CloudWatch Logs only, as on Lambda."""
        self.state_dir = state_dir
        """Keep the stack's data here across restarts (`persistence.py`); None: forget it on stop."""
        self.save_interval = save_interval
        """Seconds between saves while executions start and end (each save waits for a quiet moment)."""
        self.restored: SavedState | None = None
        """The state this start took up again, if any."""
        self.aborted_on_restore: list[str] = []
        """Executions that were running when the state was saved, now ABORTED."""
        self._store: StateStore | None = None
        self._deploy_suffix = ""
        self._saver: threading.Thread | None = None
        self._stopping = threading.Event()
        self.invoker = LambdaInvoker(concurrency)
        self.deployment: Deployment | None = None
        self.started_executions: list[str] = []
        self.finished_executions: dict[str, str] = {}
        """Execution ARN -> final status, as each execution ends."""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._changes = 0  # executions started or ended so far
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._mock: Any = None
        self._server: Any = None
        self._bridge: MotoBridge | None = None
        self._saved_environment: dict[str, str | None] = {}
        self._undo: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Deployment:
        """Start moto and the bridge, and deploy the template. The garbage collector is paused
        meanwhile: the deploy makes hundreds of thousands of objects that live as long as the
        stack, and the collector made two or three full passes over them, about a quarter of
        the start's CPU. (The little cyclic garbage of the start waits for the next pass.)"""
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._start()
        finally:
            if was_enabled:
                gc.enable()

    def _start(self) -> Deployment:
        from moto import mock_aws
        from moto.core.config import default_user_config

        saved = self._load_state()  # before anything starts: a state that cannot be used stops here
        self._set_environment(LOCAL_ENVIRONMENT)
        self._undo = [share_botocore_loader(), isolate_powertools_log_keys(), _quiet_moto()]
        config = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
        if self.server_port is None:
            self._mock = mock_aws(config=config)  # type: ignore[call-overload]
            self._mock.start()
        else:
            from moto.server import ThreadedMotoServer

            default_user_config["stepfunctions"]["execute_state_machine"] = True
            # moto's Step Functions engine calls back into the server through this port.
            self._set_environment(
                {
                    "MOTO_PORT": str(self.server_port),
                    "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.server_port}",
                    "AWS_ACCESS_KEY_ID": "local",
                    "AWS_SECRET_ACCESS_KEY": "local",
                }
            )
            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.server_port, verbose=False)
            self._server.start()
        self._bridge = MotoBridge(self.invoker, self.retry_wait_scale).install()
        self._bridge.on_execution_started(self._record_execution)
        self._bridge.on_execution_finished(self._record_finish)
        # A restored stack deploys under its saved suffix: the same physical names as the
        # resources its saved backends hold (see persistence.py).
        deployer = Deployer(self.client, self.invoker, REGION, saved.deploy_suffix if saved else None)
        self._deploy_suffix = deployer.suffix
        self.deployment = deployer.deploy(self.template, self.stack_name, self._parameters())
        if saved is not None:
            self.aborted_on_restore = restore(saved)
            self.restored = saved
            self._announce_aborted()
        # powertools configures its logger once per process; a second stack in the same
        # process (tests, benchmarks) must still log at its own level.
        service = self.deployment.function_environment.get("POWERTOOLS_SERVICE_NAME")
        level = self.deployment.function_environment.get("POWERTOOLS_LOG_LEVEL")
        if service and level:
            logging.getLogger(service).setLevel(level)
        if service:
            self.invoker.logs = FunctionLogs()
            self._undo.append(self.invoker.logs.attach(logging.getLogger(service), self.function_logs))
        if self.api_port is not None and self.deployment.apis:
            self.api_server = ApiServer(
                Gateway(self.deployment.apis[0], self.invoker.invoke), self.api_port
            ).start()
            # The output names the URL this process serves, for the CLI and any client.
            self.deployment.outputs["ApiUrl"] = self.api_server.url
        if self.publish_outputs:
            self._register_outputs(self.deployment)
        self.invoker.on_invoke(_drop_metrics)
        if self._store is not None:
            self._saver = threading.Thread(
                target=self._save_on_changes, name="local-stack-saver", daemon=True
            )
            self._saver.start()
        if self.streams and self.deployment.stream_mappings:
            self.stream_bridge = StreamBridge(
                self.deployment.stream_mappings,
                self.client,
                self.invoker.invoke,
                REGION,
                self.retry_wait_scale,
            ).start()
        return self.deployment

    def _register_outputs(self, deployment: Deployment) -> None:
        """Publish the Outputs under the stack's name in CloudFormation, where the CLI's
        `--stack-name` looks for a deployed stack: one code path for both."""
        body = {
            "Resources": {"LocalStackMarker": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {name: {"Value": value} for name, value in deployment.outputs.items()},
        }
        with warnings.catch_warnings():
            # moto records the stack but says it cannot create a WaitConditionHandle.
            warnings.simplefilter("ignore", UserWarning)
            self.client("cloudformation").create_stack(
                StackName=self.stack_name, TemplateBody=json.dumps(body)
            )

    def stop(self) -> None:
        """Stop everything, saving the state last (with `state_dir`); a state that cannot be
        saved is raised as StateError once everything else has stopped."""
        self._stopping.set()
        if self._saver is not None:
            self._saver.join()
            self._saver = None
        if self.stream_bridge is not None:
            self.stream_bridge.stop()
            self.stream_bridge = None
        # A handler can still be finishing after its execution's outcome is visible (the
        # ledger is written before powertools flushes): let it finish in this environment.
        if not self.invoker.wait_until_idle(timeout=30):
            LOG.warning("stopping with invocations still running")
        if self.api_server is not None:
            self.api_server.stop()
            self.api_server = None
        if self._server is not None:
            # No request may change the state while it is saved.
            self._server.stop()
            self._server = None
        unsaved: Exception | None = None
        if self._store is not None and self.deployment is not None:
            try:
                self._store.save(self._deploy_suffix)
            except Exception as error:  # noqa: BLE001 - raised below, once everything has stopped
                unsaved = error
        if self.server_port is not None and self.deployment is not None:
            # A served stack's state lives in moto's process-wide backends, which stopping the
            # server does not clear (mock_aws does): a second stack in this process would meet
            # the first one's resources (a log group named after the stack already exists).
            from moto.moto_api._internal.models import moto_api_backend

            moto_api_backend.reset()
        if self._bridge is not None:
            self._bridge.close()
            self._bridge = None
        while self._undo:
            self._undo.pop()()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        self._clients = {}
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment = {}
        if unsaved is not None and self._store is not None:
            raise StateError(
                f"could not save the local stack's state to {self._store.path}: {unsaved}"
            ) from unsaved

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ state across restarts
    def _parameters(self) -> dict[str, str]:
        # One machine, one user: `model activate` then an upload must use the new model, so the
        # functions read the active-model pointer for every file unless told otherwise.
        return {"LogLevel": self.log_level, "ActiveModelCacheSeconds": "0"} | self.parameters

    def _load_state(self) -> SavedState | None:
        if self.state_dir is None:
            return None
        self._store = StateStore(
            self.state_dir, fingerprint(self.template, self._parameters(), self.stack_name, REGION)
        )
        return self._store.load()

    def discard_state(self) -> Path | None:
        """Move the saved state aside (kept, renamed), so the next start is empty; before start."""
        if self.state_dir is None:
            return None
        return StateStore(self.state_dir, {}).discard()

    def save_state(self) -> int:
        """Save the state now (it is saved on stop, and after executions end); returns its size."""
        if self._store is None:
            raise RuntimeError("the local stack keeps no state: start it with state_dir")
        return self._store.save(self._deploy_suffix)

    def _quiet(self) -> bool:
        """Nothing runs: no execution started and not ended, no invocation in flight."""
        with self._changed:
            running = any(arn not in self.finished_executions for arn in self.started_executions)
        return not running and self.invoker.in_flight == 0

    def _save_on_changes(self) -> None:
        """Save after executions start or end, at a quiet moment, at most every save_interval.
        A request can still change a backend while it is pickled (the pickler then meets a
        dict that changed size); that save is tried again at the next quiet moment."""
        saved_at = self.changes
        while not self._stopping.wait(self.save_interval):
            if self.changes == saved_at or not self._quiet():
                continue
            seen = self.changes
            try:
                self.save_state()
            except RuntimeError as error:
                LOG.info("state changed while it was saved (%s); saving again shortly", error)
                continue
            except Exception:
                # Reported, and tried again at the next change; stop() saves once more and
                # raises what it meets.
                LOG.exception("could not save the local stack's state")
            saved_at = seen

    def _announce_aborted(self) -> None:
        """An execution the restart aborted ends as any aborted one does: with the status
        change event, whose rule dead-letters its unfinished file (Route's execution_ended)."""
        if not self.aborted_on_restore or self._bridge is None:
            return
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        for arn in self.aborted_on_restore:
            account = arn.split(":")[4]
            backend = stepfunctions_parser_backends[account][REGION]
            self._bridge._emit_status_change(backend.describe_execution(arn))

    def _set_environment(self, variables: dict[str, str]) -> None:
        for name, value in variables.items():
            self._saved_environment.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    # ------------------------------------------------------------------ access
    @property
    def endpoint_url(self) -> str | None:
        return None if self.server_port is None else f"http://127.0.0.1:{self.server_port}"

    def client(self, service: str) -> Any:
        """A client of the local stack's endpoint (kept: boto3 clients are thread-safe, and a
        new S3 client costs tens of milliseconds of endpoint-rule parsing)."""
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(
                    service,
                    region_name=REGION,
                    endpoint_url=self.endpoint_url,
                    config=Config(retries={"max_attempts": 2, "mode": "standard"}),
                )
            return self._clients[service]

    @property
    def api_url(self) -> str:
        """The local prediction API's base URL (…/<stage>); needs `api_port`."""
        if self.api_server is None:
            raise RuntimeError("the local API is not served: start the stack with api_port")
        return self.api_server.url

    @property
    def outputs(self) -> dict[str, str]:
        if self.deployment is None:
            raise RuntimeError("the local stack is not started")
        return self.deployment.outputs

    def results(self) -> Results:
        return Results(StackNames.from_outputs(self.outputs), self.client("s3"), self.client("dynamodb"))

    @property
    def delivery_errors(self) -> list[str]:
        return [] if self._bridge is None else list(self._bridge.delivery_errors)

    def on_execution_started(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        if self._bridge is None:
            raise RuntimeError("the local stack is not started")
        self._bridge.on_execution_started(listener)

    def lambda_states(self) -> dict[str, str]:
        """State name -> function name, for the states whose function no other state uses."""
        if self.deployment is None:
            raise RuntimeError("the local stack is not started")
        definition = self.client("stepfunctions").describe_state_machine(
            stateMachineArn=self.outputs["StateMachineArn"]
        )["definition"]
        found: dict[str, list[str]] = {}

        def walk(states: dict[str, Any]) -> None:
            for name, state in states.items():
                function = state.get("Parameters", {}).get("FunctionName")
                if isinstance(function, str):
                    found.setdefault(function.split(":")[6], []).append(name)
                if "ItemProcessor" in state:
                    walk(state["ItemProcessor"]["States"])

        walk(json.loads(definition)["States"])
        return {states[0]: function for function, states in found.items() if len(states) == 1}

    def use_mocks(
        self, mock_config: Path, test_case: str, state_machine: str = "PredictionStateMachine"
    ) -> None:
        """Apply one MockConfigFile test case to the following invocations (None clears)."""
        self.invoker.mocks = StepFunctionsLocalMocks.load(
            mock_config, state_machine, test_case, self.lambda_states()
        )

    def clear_mocks(self) -> None:
        self.invoker.mocks = None

    def _record_execution(self, execution_arn: str, _event: dict[str, Any]) -> None:
        with self._changed:
            self.started_executions.append(execution_arn)
            self._changes += 1
            self._changed.notify_all()

    def _record_finish(self, execution_arn: str, status: str) -> None:
        with self._changed:
            self.finished_executions[execution_arn] = status
            self._changes += 1
            self._changed.notify_all()

    @property
    def changes(self) -> int:
        """How many times an execution has started or ended: read it before looking at the
        executions, then `wait_for_change(since=...)` misses nothing in between."""
        with self._changed:
            return self._changes

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Sleep until an execution starts or ends after `since`, or `timeout` seconds pass;
        returns the new count."""
        with self._changed:
            self._changed.wait_for(lambda: self._changes != since, timeout)
            return self._changes

    # ------------------------------------------------------------------ the main job
    def upload(self, path: Path, key: str | None = None, body: bytes | None = None) -> str:
        """Put a file under the input prefix; the bucket's event starts its execution."""
        key = key or f"{self.outputs['InputPrefix']}{path.name}"
        data = body if body is not None else path.read_bytes()
        self.client("s3").put_object(Bucket=self.outputs["InputBucketName"], Key=key, Body=data)
        return key

    def deliver(self, event: dict[str, Any]) -> str:
        """Start an execution with `event` as its input, as the EventBridge rule does (tests
        use it to deliver one event more than once); returns the execution ARN."""
        arn = str(
            self.client("stepfunctions").start_execution(
                stateMachineArn=self.outputs["StateMachineArn"], input=json.dumps(event)
            )["executionArn"]
        )
        self._record_execution(arn, event)
        return arn

    def describe(self, execution_arn: str) -> dict[str, Any]:
        return dict(self.client("stepfunctions").describe_execution(executionArn=execution_arn))

    def wait_for_executions(self, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait until `count` executions have started and all of them have finished."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (
                len(self.started_executions) >= count
                and all(arn in self.finished_executions for arn in self.started_executions)
            ):
                if self.delivery_errors:
                    raise RuntimeError("; ".join(self.delivery_errors))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{len(self.started_executions)} of {count} executions started; "
                        f"not all finished within {timeout:.0f}s"
                    )
                self._changed.wait(min(remaining, 1.0))
            arns = list(self.started_executions)
        sfn = self.client("stepfunctions")
        return [sfn.describe_execution(executionArn=arn) for arn in arns]
