"""Everything the local stack adds to moto, in one place.

moto runs S3, EventBridge, DynamoDB and the Step Functions interpreter, but on this machine it
cannot run Lambda code (it needs Docker) and it does not deliver EventBridge events to a
state machine target. This module fills exactly those gaps:

1. `LambdaInvoker`: Lambda `Invoke` calls for the stack's functions run the real handler
   in-process, with the Lambda error contract: an exception becomes `FunctionError` with a
   `{"errorType", "errorMessage", "stackTrace"}` payload, which is what the state machine's
   Retry and Catch match. A handler that overruns its timeout is reported as
   `Sandbox.Timedout`, as Lambda reports it. Invocations run side by side in threads, up to
   a set concurrency, as a Map state's chunks do on Lambda.
2. EventBridge delivery to `states` targets: when a rule matches, an execution starts with
   the event as its input, as on AWS. S3's events are first given the shape AWS sends
   (`etag`, a unique `sequencer`, an ISO `time`), which moto 5.2.5 does not.
3. An execution started without a name gets a UUID, as on AWS (moto names it "None").
   Listeners hear when an execution starts and when it ends, so nothing has to poll.
4. The interpreter reuses one Lambda client instead of building one per task (speed only).
5. Every botocore session in the process shares one data loader (speed only): moto, the SAM
   translator and the X-Ray SDK each make sessions of their own, and each session would
   otherwise parse botocore's JSON models again (endpoints.json seven times, about a third
   of the start-up).
6. `moto.batch` loads on first use (speed only): the Step Functions interpreter imports it for
   one enum, and its package import loads all of moto's EC2 (another third of the start-up).
7. The interpreter parses each JSONPath once (speed only): it builds a new PLY parser for
   every path it evaluates, several milliseconds each, most of its own time on a large file.
8. An execution that ends FAILED, TIMED_OUT or ABORTED puts the "Step Functions Execution
   Status Change" event on the default bus, as Step Functions does for Standard workflows;
   moto emits none.
9. EventBridge delivery to `lambda` targets: the function is invoked asynchronously with the
   event, as EventBridge does, and retried twice on failure, as Lambda retries asynchronous
   invocations; moto delivers to no Lambda target.
10. S3 refuses a key longer than 1,024 UTF-8 bytes (`KeyTooLongError`), as AWS does; moto
    stores it, so a test would pass here that fails on AWS.
11. What a function logs goes to CloudWatch Logs (`FunctionLogs`), as Lambda sends it: log
    group `/aws/lambda/<function name>`, one stream per container (here: per invocation slot
    in use), so `predictflow logs` reads the local stack as it reads AWS.
12. A state machine's definition is lexed and parsed once (speed only): moto parses it with
    ANTLR when the machine is created, again for each execution, and again for each
    DescribeExecution (its variable references), about 40 ms of CPU each for predictflow's
    definition. The parse tree is kept per definition; each execution still builds its own
    program from it, so no evaluation state is shared between executions.
13. A ranged GET reads only its range (speed and memory only): moto reads the whole object for
    every ranged GET and then slices it, so each 4 MiB chunk of a 115 MB file cost a 115 MB
    read (3 GB of copies and most of the local stack's peak memory on a 1M-record file). The
    object's length and the range's bytes now come from its stored buffer; what moto answers
    (status, headers, errors for a range it cannot satisfy) is its own.

And one addition to aws-lambda-powertools, for concurrent invocations in one process:
`isolate_powertools_log_keys` gives each invocation its own copy of the Logger's keys
(execution, source key, Lambda context), as each Lambda sandbox has its own process.

Two test aids ride on the invoker: scenario mocks in Step Functions Local's MockConfigFile
format (`StepFunctionsLocalMocks`), and a scale for the interpreter's Retry waits, so that a
test of five backed-off retries need not sleep a minute.

It is written for one moto version and refuses any other: tests/local/test_moto_bridge.py
pins the moto behaviours it relies on, so an upgrade that changes them fails loudly.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import itertools
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Literal

import moto

MOTO_VERSION: Final = "5.2.5"
S3_KEY_BYTES: Final = 1024
LOG = logging.getLogger("predictflow.local")


class MotoBridgeError(RuntimeError):
    """The installed moto is not the one this bridge was written for."""


def check_moto_version() -> None:
    if moto.__version__ != MOTO_VERSION:
        raise MotoBridgeError(
            f"the local stack is written for moto {MOTO_VERSION}; found moto {moto.__version__}. "
            "Install the pinned version (pip install -e .) or update predictflow/local/moto_bridge.py "
            "and its tests."
        )


_loaders_lock = threading.Lock()
_session_loaders: dict[str | None, Any] = {}
_moto_loaders: list[Any] = []
"""The shared loaders outlive one install: a process that starts a second stack (tests, the
benchmark, `local up` after a failed start) would otherwise parse botocore's JSON models
again, about 0.2 s of CPU. What a loader holds is botocore's data files, the same for every
stack."""


def share_botocore_loader() -> Callable[[], None]:
    """Make the botocore data loaders created from now on one per kind (botocore caches what a
    loader has parsed, so each model is parsed once per process): one shared by every new
    botocore session, per data path, and one for moto's reading of the models it serves
    (its loader adds moto's own model extras). Returns the function that restores both
    factories (the loaders are kept for the next install)."""
    import botocore.loaders
    import botocore.session
    import moto.core.utils

    session_factory = botocore.session.create_loader
    moto_factory = moto.core.utils.create_loader  # type: ignore[attr-defined]
    lock = _loaders_lock
    session_loaders: dict[str | None, botocore.loaders.Loader] = _session_loaders
    moto_loaders: list[botocore.loaders.Loader] = _moto_loaders

    def shared_session_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
        with lock:
            if search_path_string not in session_loaders:
                session_loaders[search_path_string] = session_factory(search_path_string)
            return session_loaders[search_path_string]

    def shared_moto_loader() -> botocore.loaders.Loader:
        with lock:
            if not moto_loaders:
                moto_loaders.append(moto_factory())
            return moto_loaders[0]

    botocore.session.create_loader = shared_session_loader
    moto.core.utils.create_loader = shared_moto_loader  # type: ignore[attr-defined]

    def undo() -> None:
        botocore.session.create_loader = session_factory
        moto.core.utils.create_loader = moto_factory  # type: ignore[attr-defined]

    return undo


def defer_moto_batch() -> None:
    """Register `moto.batch` as its package without running its `__init__`, whose one line
    imports `batch_backends` from `.models` (and with it all of moto's EC2); that import
    happens when something first asks for either name. Submodules import as before, so the
    interpreter's `from moto.batch.utils import JobStatus` no longer costs EC2."""
    if "moto.batch" in sys.modules:
        return
    spec = importlib.util.find_spec("moto.batch")
    if spec is None:
        raise MotoBridgeError("moto.batch is missing from the installed moto")
    package = importlib.util.module_from_spec(spec)

    def load_on_first_use(name: str) -> Any:
        if name not in ("models", "batch_backends"):
            raise AttributeError(f"module 'moto.batch' has no attribute {name!r}")
        models = importlib.import_module("moto.batch.models")
        package.batch_backends = models.batch_backends  # type: ignore[attr-defined]
        return models if name == "models" else models.batch_backends

    package.__getattr__ = load_on_first_use  # type: ignore[method-assign]
    sys.modules["moto.batch"] = package


_INVOCATION = threading.local()
"""Set in the thread of each invocation: the powertools log keys of that invocation."""


class _PerInvocationLogKeys:
    """Stands in for `LambdaPowertoolsFormatter.log_format`, the dict of keys every log line
    carries. powertools keeps it on the formatter, one per logger and so one per process: right
    on Lambda, where a sandbox runs one invocation at a time, wrong here, where invocations
    run side by side in threads. Inside an invocation the keys are that invocation's own copy;
    elsewhere (set-up, tests) they are the formatter's."""

    def __init__(self) -> None:
        self.shared: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()

    def _shared_of(self, formatter: Any) -> dict[str, Any]:
        if formatter not in self.shared:
            # A formatter made before the keys were isolated keeps them in its own __dict__.
            self.shared[formatter] = formatter.__dict__.pop("log_format", {})
        return self.shared[formatter]

    def __get__(self, formatter: Any, owner: Any = None) -> Any:
        if formatter is None:
            return self
        own: dict[Any, dict[str, Any]] | None = getattr(_INVOCATION, "log_keys", None)
        if own is None:
            return self._shared_of(formatter)
        if formatter not in own:
            own[formatter] = dict(self._shared_of(formatter))
        return own[formatter]

    def __set__(self, formatter: Any, keys: dict[str, Any]) -> None:
        own: dict[Any, dict[str, Any]] | None = getattr(_INVOCATION, "log_keys", None)
        if own is None:
            self._shared_of(formatter)
            self.shared[formatter] = keys
        else:
            if formatter not in self.shared:  # made inside an invocation: its first keys are the base
                self.shared[formatter] = dict(keys)
            own[formatter] = keys


_isolation_lock = threading.Lock()
_isolation_users: list[_PerInvocationLogKeys] = []


def isolate_powertools_log_keys() -> Callable[[], None]:
    """Give each invocation its own powertools log keys (see `_PerInvocationLogKeys`) until
    the returned function is called; stacks started side by side share the isolation, and
    the last one to stop puts the keys back on the formatters."""
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    with _isolation_lock:
        if not _isolation_users:
            if "log_format" in vars(LambdaPowertoolsFormatter):
                raise MotoBridgeError("LambdaPowertoolsFormatter.log_format is already a class attribute")
            LambdaPowertoolsFormatter.log_format = _PerInvocationLogKeys()  # type: ignore[assignment]
        keys: _PerInvocationLogKeys = vars(LambdaPowertoolsFormatter)["log_format"]
        _isolation_users.append(keys)

    def undo() -> None:
        with _isolation_lock:
            _isolation_users.remove(keys)
            if _isolation_users:
                return
            del LambdaPowertoolsFormatter.log_format  # type: ignore[misc]
            for formatter, shared in list(keys.shared.items()):
                formatter.__dict__["log_format"] = shared

    return undo


@dataclass
class LambdaContext:
    """What the Lambda runtime passes as `context`, enough for powertools."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class LocalFunction:
    name: str
    arn: str
    handler: Callable[[Any, Any], Any]
    timeout_seconds: float
    memory_mb: int


def load_handler(code_dir: Path, handler: str, module_alias: str) -> Callable[[Any, Any], Any]:
    """Import `module.function` from a function's code folder, as the Lambda runtime would,
    under a unique module name (every function's module is called `app`)."""
    module_name, function_name = handler.rsplit(".", 1)
    path = code_dir / f"{module_name.replace('.', '/')}.py"
    spec = importlib.util.spec_from_file_location(module_alias, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"handler module not found: {path}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, function_name)  # type: ignore[no-any-return]


@contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass(frozen=True)
class Invocation:
    """One finished invocation: wall seconds, and the CPU seconds its handler thread used."""

    function: str
    event: dict[str, Any]
    seconds: float
    cpu_seconds: float
    error_type: str | None


@dataclass(frozen=True)
class MockedResponse:
    """One answer from a MockConfigFile: a `Return` payload or a `Throw` error."""

    payload: Any = None
    error: str | None = None
    cause: str = ""


class StepFunctionsLocalMocks:
    """One test case of a Step Functions Local MockConfigFile, applied to Lambda invocations.

    The file format is AWS's (`StateMachines.NAME.TestCases.CASE.STATE -> MOCK`,
    `MockedResponses.MOCK."0" | "1-2" -> {"Return": ...} | {"Throw": {"Error", "Cause"}}`,
    invocation numbers zero-based, retries included), so the same scenarios run on Step
    Functions Local. One extension: an invocation number the mock does not list runs the
    real handler, so "throttled twice, then the real model" is expressible.
    """

    def __init__(self, responses_by_function: dict[str, dict[int, MockedResponse]]) -> None:
        self._responses = responses_by_function
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls, path: Path, state_machine: str, test_case: str, function_of_state: Mapping[str, str]
    ) -> StepFunctionsLocalMocks:
        config = json.loads(path.read_text())
        case = config["StateMachines"][state_machine]["TestCases"][test_case]
        responses: dict[str, dict[int, MockedResponse]] = {}
        for state, mock_name in case.items():
            function = function_of_state.get(state)
            if function is None:
                raise KeyError(f"{test_case}: no Lambda state called {state!r} (or it shares its function)")
            responses[function] = {}
            for numbers, answer in config["MockedResponses"][mock_name].items():
                first, _, last = numbers.partition("-")
                for number in range(int(first), int(last or first) + 1):
                    if "Throw" in answer:
                        thrown = answer["Throw"]
                        responses[function][number] = MockedResponse(
                            error=thrown["Error"], cause=thrown.get("Cause", "")
                        )
                    else:
                        returned = answer["Return"]
                        payload = (
                            returned.get("Payload", returned) if isinstance(returned, dict) else returned
                        )
                        responses[function][number] = MockedResponse(payload=payload)
        return cls(responses)

    def take(self, function_name: str) -> MockedResponse | None:
        if function_name not in self._responses:
            return None
        with self._lock:
            number = self._counts.get(function_name, 0)
            self._counts[function_name] = number + 1
        return self._responses[function_name].get(number)


class _InvocationLogHandler(logging.Handler):
    """Keeps each line a function logs inside an invocation, in that invocation's list."""

    def emit(self, record: logging.LogRecord) -> None:
        lines: list[tuple[float, str]] | None = getattr(_INVOCATION, "log_lines", None)
        if lines is not None:
            lines.append((record.created, self.format(record)))


class _OutsideInvocations(logging.Filter):
    """Lets through only what is logged outside invocations (set-up), for a stack whose
    functions' lines go to CloudWatch Logs alone, as on Lambda."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(_INVOCATION, "log_lines", None) is None


class FunctionLogs:
    """Gap 11: each invocation's log lines into moto's CloudWatch Logs, as Lambda sends a
    function's output there. A stream stands for a container: an invocation takes a free one
    (or opens one), and gives it back when it returns, so no stream interleaves two
    invocations, as on Lambda, where a container runs one invocation at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: dict[str, list[str]] = {}
        self.handler = _InvocationLogHandler()

    @staticmethod
    def group_of(function_name: str) -> str:
        return f"/aws/lambda/{function_name}"

    def attach(self, logger: logging.Logger, echo: Literal["stdout", "stderr", "none"]) -> Callable[[], None]:
        """Capture what `logger` (the functions' powertools logger) logs in invocations, in
        the format its own handler prints (powertools' JSON). Its own handler goes on printing
        the lines to stdout (powertools' default), or to stderr (where they cannot break a
        command's output), or, with "none", only what is logged outside invocations (the
        invocations' lines are in CloudWatch Logs alone, as on Lambda). Returns the undo."""
        own = [handler for handler in logger.handlers if handler is not self.handler]
        if own and own[0].formatter is not None:
            self.handler.setFormatter(own[0].formatter)
        logger.addHandler(self.handler)
        quiet = _OutsideInvocations()
        streams: dict[logging.StreamHandler[Any], Any] = {}
        for handler in own:
            if echo == "none":
                handler.addFilter(quiet)
            elif echo == "stderr" and isinstance(handler, logging.StreamHandler):
                streams[handler] = handler.setStream(sys.stderr)

        def undo() -> None:
            logger.removeHandler(self.handler)
            for handler in own:
                handler.removeFilter(quiet)
            for handler, stream in streams.items():
                handler.setStream(stream)

        return undo

    def take_stream(self, function: LocalFunction) -> str:
        with self._lock:
            free = self._free.setdefault(function.name, [])
            if free:
                return free.pop()
        return f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"

    def give_back(self, function: LocalFunction, stream: str, lines: list[tuple[float, str]]) -> None:
        """Write the invocation's lines to its stream, and free the stream."""
        if lines:
            from moto.logs.models import logs_backends

            account, region = function.arn.split(":")[4], function.arn.split(":")[3]
            events = [{"timestamp": int(created * 1000), "message": line} for created, line in lines]
            group = self.group_of(function.name)
            with self._lock:  # moto's log streams are not thread-safe
                backend = logs_backends[account][region]
                if group not in backend.groups:  # the template may declare it (retention)
                    backend.create_log_group(group, tags={})
                if stream not in backend.groups[group].streams:
                    backend.create_log_stream(group, stream)
                backend.put_log_events(group, stream, sorted(events, key=lambda event: event["timestamp"]))
        with self._lock:
            self._free.setdefault(function.name, []).append(stream)


class LambdaInvoker:
    """Runs the stack's functions in this process and answers moto's Lambda `Invoke` for them.

    Up to `concurrency` invocations run at once, each in a thread of its own, as a Map state's
    chunks run side by side on Lambda. They share the process, and with it each handler's
    module: its clients and model are thread-safe, and its powertools log keys must be made
    per invocation with `isolate_powertools_log_keys` before `concurrency` exceeds one.
    Threads beyond the cores only contend for the GIL: the model call, gzip and hashing
    release it, parsing and formatting do not.
    """

    def __init__(self, concurrency: int = 1) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self.concurrency = concurrency
        self._slots = threading.BoundedSemaphore(concurrency)
        self._counts_lock = threading.Lock()
        self._idle = threading.Condition(self._counts_lock)
        self._in_flight = 0
        self._functions: dict[str, LocalFunction] = {}
        self.invocations: dict[str, int] = {}
        self._listeners: list[Callable[[Invocation], None]] = []
        self.mocks: StepFunctionsLocalMocks | None = None
        self.logs: FunctionLogs | None = None
        """Where the invocations' log lines go; None: nowhere but the loggers' own handlers."""

    @property
    def in_flight(self) -> int:
        with self._idle:
            return self._in_flight

    def register(self, function: LocalFunction) -> None:
        self._functions[function.name] = function
        self._functions[function.arn] = function

    def on_invoke(self, listener: Callable[[Invocation], None]) -> None:
        """Call `listener` after each invocation."""
        self._listeners.append(listener)

    def knows(self, function_name: str) -> bool:
        return self._lookup(function_name) is not None

    def _lookup(self, function_name: str) -> LocalFunction | None:
        found = self._functions.get(function_name)
        if found is None and function_name.startswith("arn:"):
            found = self._functions.get(function_name.split(":")[6])
        return found

    def wait_until_idle(self, timeout: float) -> bool:
        """Wait for the invocations in flight to return (their handlers' last words, such as
        powertools' metrics flush, included); False if some are still running at `timeout`."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def invoke(self, function_name: str, event: Any) -> tuple[bytes, bool]:
        """Returns (payload, errored), as Lambda's RequestResponse invoke does."""
        with self._idle:
            self._in_flight += 1
        try:
            return self._invoke(function_name, event)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _invoke(self, function_name: str, event: Any) -> tuple[bytes, bool]:
        function = self._lookup(function_name)
        if function is None:
            raise KeyError(function_name)
        mocked = self.mocks.take(function.name) if self.mocks is not None else None
        if mocked is not None:
            if mocked.error is not None:
                return json.dumps({"errorType": mocked.error, "errorMessage": mocked.cause}).encode(), True
            return json.dumps(mocked.payload).encode(), False
        result: dict[str, Any] = {}
        context = LambdaContext(function.name, function.arn, function.memory_mb, function.timeout_seconds)
        logs = self.logs
        lines: list[tuple[float, str]] = []
        if logs is not None:
            context.log_group_name = logs.group_of(function.name)
            context.log_stream_name = logs.take_stream(function)

        def run() -> None:
            try:
                result["value"] = function.handler(event, context)
            except Exception as error:  # noqa: BLE001 - the Lambda contract reports every exception
                result["error"] = {
                    "errorType": type(error).__name__,
                    "errorMessage": str(error),
                    "stackTrace": traceback.format_exception(error),
                }

        cpu: dict[str, float] = {}

        def run_timed() -> None:
            _INVOCATION.log_keys = {}
            _INVOCATION.log_lines = lines if logs is not None else None
            began = time.thread_time()
            run()
            cpu["seconds"] = time.thread_time() - began

        with self._slots:
            started = time.monotonic()
            context._deadline = started + function.timeout_seconds
            worker = threading.Thread(target=run_timed, name=f"lambda-{function.name}", daemon=True)
            worker.start()
            worker.join(function.timeout_seconds)
            if worker.is_alive():
                result = {
                    "error": {
                        "errorType": "Sandbox.Timedout",
                        "errorMessage": f"Task timed out after {function.timeout_seconds:.2f} seconds",
                    }
                }
            seconds = time.monotonic() - started
        if logs is not None:
            # A handler past its timeout may still log; what it logged by now is its record.
            logs.give_back(function, context.log_stream_name, list(lines))
        with self._counts_lock:
            self.invocations[function.name] = self.invocations.get(function.name, 0) + 1
        error = result.get("error")
        for listener in self._listeners:
            listener(
                Invocation(
                    function.name,
                    event,
                    seconds,
                    cpu.get("seconds", seconds),
                    error["errorType"] if error else None,
                )
            )
        if error is not None:
            return json.dumps(error).encode(), True
        return json.dumps(result.get("value")).encode(), False


_sequencer = itertools.count(1)


def aws_shaped_s3_event(event: dict[str, Any]) -> dict[str, Any]:
    """Give moto's S3 "Object Created" event the fields AWS sends."""
    if event.get("source") != "aws.s3":
        return event
    shaped = copy.deepcopy(event)
    detail_object = shaped.get("detail", {}).get("object", {})
    if "eTag" in detail_object:
        detail_object["etag"] = detail_object.pop("eTag")
    # AWS sequencers grow per key; moto sends one constant, which would make every upload
    # of the same key look like one event.
    detail_object["sequencer"] = f"{time.time_ns():016X}{next(_sequencer):08X}"
    if isinstance(shaped.get("time"), int | float):
        shaped["time"] = datetime.fromtimestamp(shaped["time"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    shaped["id"] = str(uuid.uuid4())
    return shaped


PARSE_TREES_KEPT: Final = 32
"""Definitions whose parse trees are kept (a stack has one state machine; tests make more)."""


def _parse_once(parse: Callable[[str], tuple[Any, Any]]) -> Callable[[str], tuple[Any, Any]]:
    """`AmazonStateLanguageParser.parse`, lexing and parsing each definition once: a kept
    parse tree is only walked again by moto's Preprocessor, which makes a new program (the
    components an execution evaluates) each time, as the original does after its parse. A
    definition that fails to parse is not kept, so it fails each time as before."""
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    trees: dict[str, Any] = {}
    lock = threading.Lock()

    def parse_once(definition: str) -> tuple[Any, Any]:
        with lock:
            tree = trees.get(definition)
        if tree is None:
            program, tree = parse(definition)
            with lock:
                if len(trees) >= PARSE_TREES_KEPT:
                    trees.clear()
                trees[definition] = tree
            return program, tree
        return Preprocessor().visit(tree), tree

    return parse_once


_ONE_RANGE: Final = re.compile(r"bytes=\d+-\d*")
"""A Range header of one range from a first byte: what the pipeline's readers send."""


class _StoredBytes:
    """A stored object's content as moto's ranged GET uses it (its length and one slice), read
    from the object's buffer when sliced rather than copied whole first (gap 13)."""

    def __init__(self, key: Any) -> None:
        self._key = key

    def __len__(self) -> int:
        return int(self._key.size)

    def __getitem__(self, part: slice) -> bytes:
        start, stop, step = part.indices(len(self))
        if step != 1:
            raise ValueError("a stored object is read in one run of bytes")
        with self._key.lock:
            self._key._value_buffer.seek(start)
            return bytes(self._key._value_buffer.read(max(0, stop - start)))

    def __bytes__(self) -> bytes:
        return bytes(self._key.value)


def _read_only_ranges() -> Callable[[], None]:
    """Gap 13, installed; returns its undo. While S3Response.get_object answers a GET with one
    range, on this thread, the key's `value` is the lazy `_StoredBytes`, which moto's range
    handling slices; any answer that would still carry it whole gets the bytes instead."""
    from moto.s3.models import FakeKey
    from moto.s3.responses import S3Response

    original_value = FakeKey.value
    original_get = S3Response.get_object
    original_range = S3Response._handle_range_header
    ranged = threading.local()

    def value(key: Any) -> Any:
        if getattr(ranged, "key_reads", False):
            return _StoredBytes(key)
        return original_value.fget(key)  # type: ignore[attr-defined]

    def whole(answer: Any) -> Any:
        status, headers, body = answer
        return status, headers, bytes(body) if isinstance(body, _StoredBytes) else body

    def get_object(response: Any) -> Any:
        if not _ONE_RANGE.fullmatch(str(response.headers.get("range") or "")):
            return original_get(response)
        ranged.key_reads = True
        try:
            status, headers, body = original_get(response)
        finally:
            ranged.key_reads = False
        # Only a 200 goes on to moto's range handling, which slices it.
        return (status, headers, body) if status == 200 else whole((status, headers, body))

    def handle_range_header(response: Any, *args: Any) -> Any:
        return whole(original_range(response, *args))

    FakeKey.value = property(value, original_value.fset)  # type: ignore[method-assign, assignment, attr-defined]
    S3Response.get_object = get_object  # type: ignore[method-assign, assignment]
    S3Response._handle_range_header = handle_range_header  # type: ignore[method-assign, assignment]

    def undo() -> None:
        FakeKey.value = original_value  # type: ignore[method-assign]
        S3Response.get_object = original_get  # type: ignore[method-assign]
        S3Response._handle_range_header = original_range  # type: ignore[method-assign]

    return undo


class _ScaledTime:
    """Stands in for the `time` module of moto's Retry evaluation: waits scaled by `scale`."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds * self.scale)


class MotoBridge:
    """Installs the hooks into moto and removes them on `close()`."""

    def __init__(self, invoker: LambdaInvoker, retry_wait_scale: float = 1.0) -> None:
        check_moto_version()
        self.invoker = invoker
        self.retry_wait_scale = retry_wait_scale
        self.delivery_errors: list[str] = []
        self._execution_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._finish_listeners: list[Callable[[str, str], None]] = []
        self._undo: list[Callable[[], None]] = []

    def on_execution_started(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        self._execution_listeners.append(listener)

    def on_execution_finished(self, listener: Callable[[str, str], None]) -> None:
        """Call `listener(execution_arn, status)` when any execution ends, once its status
        is what DescribeExecution reports."""
        self._finish_listeners.append(listener)

    def install(self) -> MotoBridge:
        defer_moto_batch()
        from moto.awslambda.models import LambdaBackend
        from moto.awslambda_simple.models import LambdaSimpleBackend
        from moto.events.models import Rule

        # moto picks LambdaSimpleBackend when Docker is off and LambdaBackend otherwise;
        # both answer Invoke through their own `invoke`.
        originals = {cls: cls.invoke for cls in (LambdaBackend, LambdaSimpleBackend)}
        original_send = Rule.send_to_targets
        bridge = self

        def invoke(
            backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> Any:
            if not bridge.invoker.knows(function_name):
                original = originals[type(backend)]
                return original(backend, function_name, qualifier, body, headers, response_headers)
            event = json.loads(body) if body else {}
            payload, errored = bridge.invoker.invoke(function_name, event)
            if errored:
                response_headers["x-amz-function-error"] = "Unhandled"
            response_headers["Content-Length"] = str(len(payload))
            return payload

        def send_to_targets(rule: Any, original_event: Any, transform_input: bool = True) -> None:
            if not rule.event_pattern.matches_event(original_event):
                return
            others = [t for t in rule.targets if t["Arn"].split(":")[2] not in ("states", "lambda")]
            for target in rule.targets:
                if target["Arn"].split(":")[2] == "states":
                    bridge._start_execution(rule, target, original_event)
                elif target["Arn"].split(":")[2] == "lambda":
                    bridge._invoke_async(target["Arn"], original_event)
            if others:
                shallow = copy.copy(rule)
                shallow.targets = others
                original_send(shallow, original_event, transform_input)

        from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend

        original_terminated = BaseExecutionWorkerCommunication.terminated

        def terminated(communication: Any) -> None:
            original_terminated(communication)
            execution = communication.execution
            bridge._emit_status_change(execution)
            for listener in bridge._finish_listeners:
                listener(execution.exec_arn, execution.exec_status.value)

        original_start = StepFunctionsParserBackend.start_execution

        def start_execution(
            backend: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any
        ) -> Any:
            # AWS names an unnamed execution with a UUID; moto 5.2.5 names it "None", so a
            # second unnamed start collides with the first.
            return original_start(backend, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

        # moto's interpreter builds a new boto3 client for every Lambda task (~20 ms each);
        # one per region and endpoint serves them all.
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

        original_client_for = lambda_eval_utils.boto_client_for  # type: ignore[attr-defined]
        clients: dict[tuple[str, str, str], Any] = {}
        clients_lock = threading.Lock()

        def cached_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
            key = (region, service, os.environ.get("MOTO_PORT", ""))
            with clients_lock:
                if key not in clients:
                    clients[key] = original_client_for(
                        region=region, service=service, state_credentials=state_credentials
                    )
                return clients[key]

        lambda_eval_utils.boto_client_for = cached_client_for  # type: ignore[attr-defined]

        # Parsed paths are immutable expression trees, so one per path string serves every
        # execution and thread.
        from moto.stepfunctions.parser.asl.component.common.path import result_path
        from moto.stepfunctions.parser.asl.utils import json_path

        original_parsers = {module: module.parse for module in (json_path, result_path)}
        for module, parse in original_parsers.items():
            module.parse = functools.lru_cache(maxsize=1024)(parse)  # type: ignore[attr-defined]

        # Gap 12: every caller reaches the parser through this class attribute.
        from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

        original_asl_parse = vars(AmazonStateLanguageParser)["parse"]
        AmazonStateLanguageParser.parse = staticmethod(_parse_once(original_asl_parse.__func__))  # type: ignore[method-assign, assignment]

        from moto.s3.exceptions import S3ClientError
        from moto.s3.models import S3Backend

        original_put_object = S3Backend.put_object

        def put_object(backend: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
            if len(key_name.encode()) > S3_KEY_BYTES:
                raise S3ClientError("KeyTooLongError", "Your key is too long")
            return original_put_object(backend, bucket_name, key_name, *args, **kwargs)

        S3Backend.put_object = put_object  # type: ignore[method-assign, assignment]
        self._undo.append(lambda: setattr(S3Backend, "put_object", original_put_object))
        self._undo.append(_read_only_ranges())

        for cls in originals:
            cls.invoke = invoke  # type: ignore[method-assign, assignment]
        Rule.send_to_targets = send_to_targets  # type: ignore[method-assign, assignment]
        StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign, assignment]
        BaseExecutionWorkerCommunication.terminated = terminated  # type: ignore[method-assign, assignment]

        def undo() -> None:
            for cls, original in originals.items():
                cls.invoke = original  # type: ignore[method-assign, assignment]
            Rule.send_to_targets = original_send  # type: ignore[method-assign, assignment]
            StepFunctionsParserBackend.start_execution = original_start  # type: ignore[method-assign]
            BaseExecutionWorkerCommunication.terminated = original_terminated  # type: ignore[method-assign]
            lambda_eval_utils.boto_client_for = original_client_for  # type: ignore[attr-defined]
            for module, parse in original_parsers.items():
                module.parse = parse  # type: ignore[attr-defined]
            AmazonStateLanguageParser.parse = original_asl_parse  # type: ignore[method-assign]

        self._undo.append(undo)
        if self.retry_wait_scale != 1.0:
            from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

            retrier_decl.time = _ScaledTime(self.retry_wait_scale)  # type: ignore[assignment, attr-defined]
            self._undo.append(lambda: setattr(retrier_decl, "time", time))
        return self

    def _start_execution(self, rule: Any, target: dict[str, Any], event: dict[str, Any]) -> None:
        from moto.stepfunctions.responses import get_backend

        # moto's S3 notifier swallows every exception from here, so failures are logged
        # and kept for the caller to report rather than lost.
        try:
            shaped = aws_shaped_s3_event(event)
            if "Input" in target:
                execution_input = target["Input"]
            elif "InputPath" in target:
                raise MotoBridgeError("InputPath targets are not supported by the local stack")
            else:
                execution_input = json.dumps(shaped)
            arn = target["Arn"]
            account, region = arn.split(":")[4], arn.split(":")[3]
            execution = get_backend(account, region).start_execution(arn, str(uuid.uuid4()), execution_input)
            for listener in self._execution_listeners:
                listener(execution.execution_arn, shaped)
        except Exception as error:
            message = f"rule {rule.name}: could not start {target.get('Arn')}: {error!r}"
            LOG.exception(message)
            self.delivery_errors.append(message)
            raise

    def _emit_status_change(self, execution: Any) -> None:
        """Gap 8: the event Step Functions puts on the default bus when a Standard execution
        ends other than SUCCEEDED (the fields a rule or its target reads)."""
        status = execution.exec_status.value
        if status not in ("FAILED", "TIMED_OUT", "ABORTED"):
            return
        from moto.events.models import events_backends

        detail = {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine.arn,
            "name": execution.name,
            "status": status,
            "input": json.dumps(execution.input_data) if execution.input_data is not None else None,
            "error": execution.error,
            "cause": execution.cause,
        }
        events_backends[execution.account_id][execution.region_name].put_events(
            [
                {
                    "Source": "aws.states",
                    "DetailType": "Step Functions Execution Status Change",
                    "Detail": json.dumps(detail, default=str),
                    "Resources": [execution.exec_arn],
                }
            ]
        )

    ASYNC_RETRY_WAITS: Final = (60.0, 120.0)
    """Lambda retries a failed asynchronous invocation twice, about a minute and two apart."""

    def _invoke_async(self, function_arn: str, event: Any) -> None:
        """Gap 9: EventBridge invokes a Lambda target asynchronously; its result goes nowhere,
        and a failed invocation is retried as Lambda retries asynchronous ones."""
        name = function_arn.split(":")[6]
        if not self.invoker.knows(name):
            self.delivery_errors.append(f"EventBridge target {function_arn} is not a function of the stack")
            return

        def run() -> None:
            for wait in (0.0, *self.ASYNC_RETRY_WAITS):
                time.sleep(wait * self.retry_wait_scale)
                _, errored = self.invoker.invoke(name, copy.deepcopy(event))
                if not errored:
                    return
            LOG.warning("asynchronous invocation of %s failed after Lambda's two retries", name)

        threading.Thread(target=run, daemon=True).start()

    def close(self) -> None:
        while self._undo:
            self._undo.pop()()
