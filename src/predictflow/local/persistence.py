"""The local stack's state across restarts: moto's backends, pickled to one file.

moto 5.2.5 keeps every service's state in memory only (its backends, one `BackendDict` per
service), so a stopped `local up` lost its buckets, tables and executions. This module saves
the backends of the services that hold data, and puts them back on the next start:

- What is saved: S3 (buckets, objects, versions), DynamoDB (tables, items: the ledger and the
  dead letters), Step Functions (state machines, executions, each with its history), CloudWatch
  Logs (the functions' log lines), SQS and Kinesis (messages not yet consumed). The rest
  (IAM, Lambda, EventBridge rules, the API) is what the template defines, deployed again on
  each start from the same template.
- How it fits the deploy: the stack is deployed afresh into an empty moto with the physical
  names of the saved state (the same deploy suffix), then the saved backends replace the
  freshly made ones of those services. Nothing is created twice and nothing is lost, because
  the state is refused when the template, the parameters or the stack name changed
  (`StateMismatch`): the saved resources would no longer be the ones the template makes.
- The file is written to a temporary file and renamed over the old one, so a crash or a
  Ctrl-C during a save leaves the previous state whole.
- A Step Functions execution keeps its interpreter (threads, locks, the running program) in
  its worker; only the worker's history is saved (`SavedWorker`), which is all that
  DescribeExecution, GetExecutionHistory and ListExecutions read. An execution still running
  when the stack stopped cannot go on: it comes back ABORTED, with an error saying why.

The file starts with a JSON header (format, moto and Python versions, what the state was made
from), so a state of another version or template is refused with a message before any of it
is unpickled.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

FORMAT: Final = 1
STATE_FILE: Final = "local-stack.state"
MAGIC: Final = b"predictflow local stack state\n"
DEFAULT_STATE_DIR: Final = Path(".predictflow")
"""Relative to the current directory: the project's own folder, as `.aws-sam/` is for SAM."""
STOPPED_ERROR: Final = "LocalStackStopped"
STOPPED_CAUSE: Final = (
    "The local stack stopped while this execution ran; it was aborted on the next start. "
    "Replay its file (predictflow replay)."
)


class StateError(Exception):
    """The saved state cannot be used; the message says why and how to start fresh."""


class StateMismatch(StateError):
    """The saved state was made by another version, template or stack."""


def _backend_dicts() -> dict[str, Any]:
    """The services whose state is data rather than what the template defines."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.kinesis.models import kinesis_backends
    from moto.logs.models import logs_backends
    from moto.s3.models import s3_backends
    from moto.sqs.models import sqs_backends
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    return {
        "s3": s3_backends,
        "dynamodb": dynamodb_backends,
        "stepfunctions": stepfunctions_parser_backends,
        "logs": logs_backends,
        "sqs": sqs_backends,
        "kinesis": kinesis_backends,
    }


def fingerprint(template: Path, parameters: dict[str, str], stack_name: str, region: str) -> dict[str, str]:
    """What the saved resources were made from: the same inputs make the same resources."""
    return {
        "template_sha256": hashlib.sha256(template.read_bytes()).hexdigest(),
        "parameters": json.dumps(parameters, sort_keys=True),
        "stack_name": stack_name,
        "region": region,
    }


def _versions() -> dict[str, str]:
    import moto  # here, not at the top: the CLI imports this module for its defaults

    return {
        "format": str(FORMAT),
        "moto": moto.__version__,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    }


class SavedWorker:
    """Stands in for a saved execution's `ExecutionWorker`: its history, without the
    interpreter (threads and locks, which neither pickle nor outlive the process)."""

    def __init__(self, history: list[Any]) -> None:
        self.env = _SavedEnvironment(history)

    def stop(self, stop_date: Any = None, cause: Any = None, error: Any = None) -> None:
        """Nothing runs any more: an execution comes back finished (or ABORTED)."""


class _SavedEnvironment:
    def __init__(self, history: list[Any]) -> None:
        self.event_manager = _SavedEvents(history)


class _SavedEvents:
    def __init__(self, history: list[Any]) -> None:
        self.history = history

    def get_event_history(self) -> list[Any]:
        return list(self.history)


def _new_lock() -> Any:
    return threading.Lock()


class _StatePickler(pickle.Pickler):
    """Pickles moto's backends: a lock or condition becomes a new one on load (the state it
    guards is saved, the waiting threads are not), an execution's worker its history."""

    def reducer_override(self, obj: Any) -> Any:
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

        kind = type(obj)
        if kind is _LOCK_TYPE:
            return _new_lock, ()
        if kind is _RLOCK_TYPE:
            return threading.RLock, ()
        if kind is threading.Condition:
            return threading.Condition, ()
        if isinstance(obj, ExecutionWorker):
            history = obj.env.event_manager.get_event_history() if obj.env is not None else []
            return SavedWorker, (history,)
        return NotImplemented


_LOCK_TYPE: Final = type(threading.Lock())
_RLOCK_TYPE: Final = type(threading.RLock())


@dataclass(frozen=True)
class SavedState:
    header: dict[str, Any]
    backends: dict[tuple[str, str, str], Any]

    @property
    def deploy_suffix(self) -> str:
        return str(self.header["deploy_suffix"])


class StateStore:
    """The state file of one directory."""

    def __init__(self, directory: Path, made_from: dict[str, str]) -> None:
        self.directory = directory
        self.path = directory / STATE_FILE
        self.made_from = made_from
        self._save_lock = threading.Lock()

    # ------------------------------------------------------------------ load
    def load(self) -> SavedState | None:
        """The saved state, None if there is none; StateError if it cannot be used."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StateError(f"cannot read the local stack's state {self.path}: {error.strerror}") from error
        stream = io.BytesIO(data)
        if stream.readline() != MAGIC:
            raise StateError(f"{self.path} is not a local stack state file")
        try:
            header = json.loads(stream.readline())
        except ValueError as error:
            raise StateError(f"the local stack's state {self.path} is damaged: {error}") from error
        if not isinstance(header, dict):
            raise StateError(f"the local stack's state {self.path} is damaged: no header")
        for name, wanted in (_versions() | self.made_from).items():
            found = header.get(name)
            if found == wanted:
                continue
            if name == "template_sha256":
                raise StateMismatch(
                    f"the local stack's state {self.path} was saved from another template.yaml"
                )
            label = _LABELS.get(name, name)
            raise StateMismatch(
                f"the local stack's state {self.path} was saved with {label} {found}; "
                f"this stack has {label} {wanted}"
            )
        try:
            backends = pickle.loads(stream.read())  # noqa: S301 - a file this program wrote, in the user's folder
        except Exception as error:  # any unpickling failure means a damaged file
            raise StateError(
                f"the local stack's state {self.path} is damaged ({type(error).__name__}: {error})"
            ) from error
        if not isinstance(backends, dict):
            raise StateError(f"the local stack's state {self.path} is damaged: no backends")
        return SavedState(header, backends)

    # ------------------------------------------------------------------ save
    def save(self, deploy_suffix: str) -> int:
        """Write the current state (temporary file, then rename); returns the bytes written.
        A running execution is saved with the history it has so far."""
        with self._save_lock:
            backends = dict(_live_backends())
            buffer = io.BytesIO()
            buffer.write(MAGIC)
            header = (
                _versions()
                | self.made_from
                | {
                    "deploy_suffix": deploy_suffix,
                    "saved_at": datetime.now(UTC).isoformat(),
                }
            )
            buffer.write(json.dumps(header).encode() + b"\n")
            _StatePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(backends)
            self.directory.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            with temporary.open("wb") as out:
                out.write(buffer.getbuffer())
                out.flush()
                os.fsync(out.fileno())
            temporary.replace(self.path)
            return buffer.tell()

    def discard(self) -> Path | None:
        """Move the state aside (`local up --fresh`): kept under a dated name, not deleted."""
        if not self.path.exists():
            return None
        kept = self.path.with_name(f"{self.path.name}.{time.strftime('%Y%m%d-%H%M%S')}.old")
        self.path.replace(kept)
        return kept


_LABELS: Final = {"format": "state format", "moto": "moto", "python": "Python", "stack_name": "stack"}


def _live_backends() -> Iterator[tuple[tuple[str, str, str], Any]]:
    for service, backend_dict in _backend_dicts().items():
        for account in list(backend_dict.keys()):
            regions = backend_dict[account]
            for region in list(regions.keys()):
                yield (service, account, region), regions[region]


def restore(state: SavedState) -> list[str]:
    """Put the saved backends in place of the current ones; returns the ARNs of the
    executions that were running when the state was saved, now ABORTED."""
    dicts = _backend_dicts()
    aborted: list[str] = []
    for (service, account, region), backend in state.backends.items():
        dicts[service][account][region] = backend
        if service == "stepfunctions":
            aborted += _abort_unfinished(backend)
    return aborted


def _abort_unfinished(backend: Any) -> list[str]:
    from moto.stepfunctions.parser.api import ExecutionStatus

    aborted = []
    for machine in backend.state_machines:
        for execution in machine.executions:
            if execution.exec_status != ExecutionStatus.RUNNING:
                continue
            now = datetime.now(UTC)
            execution.exec_status = ExecutionStatus.ABORTED
            execution.stop_date = now
            execution.error = STOPPED_ERROR
            execution.cause = STOPPED_CAUSE
            history = execution.exec_worker.env.event_manager.history
            history.append(
                {
                    "timestamp": now,
                    "type": "ExecutionAborted",
                    "id": len(history) + 1,
                    "previousEventId": len(history),
                    "executionAbortedEventDetails": {"error": STOPPED_ERROR, "cause": STOPPED_CAUSE},
                }
            )
            aborted.append(execution.exec_arn)
    return aborted
