"""The local stack's state across restarts: `local up` stopped and started again keeps its
buckets, tables, executions (with their histories) and dead letters."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from predictflow.cli import cli
from predictflow.local.moto_bridge import Invocation
from predictflow.local.persistence import (
    STATE_FILE,
    STOPPED_ERROR,
    StateMismatch,
    StateStore,
    fingerprint,
)
from predictflow.local.stack import MOTO_STATE_DUMP
from tests.conftest import running_stack
from tests.fixtures import EVENTS, free_port


@contextmanager
def local_up(port: int, *options: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`predictflow local up` as a user runs it, until its banner; yields it and the banner."""
    command = [str(Path(sys.executable).parent / "predictflow"), "local", "up", "--port", str(port),
               "--no-console", *options]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        deadline = time.monotonic() + 90
        banner = ""
        while "Ctrl-C stops" not in banner and server.poll() is None and time.monotonic() < deadline:
            banner += server.stdout.readline()
        yield server, banner
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def stop(server: subprocess.Popen[str]) -> str:
    server.send_signal(signal.SIGINT)
    rest, _ = server.communicate(timeout=60)
    assert server.returncode == 0, rest
    return rest


def run(*arguments: str) -> Result:
    return CliRunner().invoke(cli, ["--local", *arguments])


def test_a_restart_keeps_files_tables_executions_and_dead_letters(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = free_port()
    with local_up(port, "--state-dir", str(state)) as (server, banner):
        assert f"state kept in {state}" in banner, banner
        uploaded = run("upload", str(EVENTS / "records-mixed.csv"))
        assert uploaded.exit_code == 0, uploaded.output
        assert server.stdout is not None
        log = ""
        while "succeeded" not in log:
            log += server.stdout.readline()
        assert "saving the state" in stop(server)
    assert (state / STATE_FILE).stat().st_size > 0

    with local_up(port, "--state-dir", str(state)) as (server, banner):
        assert f"state taken up from {state}" in banner, banner
        listed = run("executions", "--json")
        assert listed.exit_code == 0, listed.output
        executions = json.loads(listed.stdout)["executions"]
        assert [(e["status"], e["source_key"]) for e in executions] == [
            ("SUCCEEDED", "incoming/records-mixed.csv")
        ]
        name = executions[0]["execution_arn"].rsplit(":", 1)[-1]
        shown = run("show", name)
        assert shown.exit_code == 0, shown.output
        # The history came back: the Map's iterations and the last state.
        assert "Validate" in shown.stdout
        assert "Finalize" in shown.stdout
        dead = run("dead-letters", "--json")
        assert [entry["line"] for entry in json.loads(dead.stdout)["dead_letters"]] == [4, 6]
        results = run("results", "incoming/records-mixed.csv")
        assert results.exit_code == 0, results.output
        assert len([line for line in results.stdout.splitlines() if line.startswith("{")]) == 3
        fixed = tmp_path / "fixed.csv"
        good = (EVENTS / "records-good.csv").read_text().splitlines()
        fixed.write_text(f"{good[0]}\n{good[1]}\n")
        replayed = run(
            "replay",
            "--source",
            "incoming/records-mixed.csv",
            "--fixed",
            str(fixed),
            "--wait",
            "--timeout",
            "60",
        )
        assert replayed.exit_code == 0, replayed.output
        assert "replayed 2 entries as" in replayed.stdout
        stop(server)

    # The restart deployed nothing twice: one of each bucket, table and state machine.
    with local_up(port, "--state-dir", str(state)) as (server, banner):
        assert "state taken up" in banner
        assert json.loads(run("dead-letters", "--json").stdout)["dead_letters"] == []  # replayed, kept
        assert len(json.loads(run("executions", "--json").stdout)["executions"]) == 2
        stop(server)


def test_a_damaged_state_is_refused_with_a_way_out(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / STATE_FILE).write_bytes(b"predictflow local stack state\n{}\n")
    port = free_port()
    with local_up(port, "--state-dir", str(state)) as (server, banner):
        rest, _ = server.communicate(timeout=60)
        output = banner + rest
    assert server.returncode == 1
    assert "was saved with state format None" in output
    assert "--fresh" in output
    assert "Traceback" not in output
    with local_up(port, "--state-dir", str(state), "--fresh") as (server, banner):
        assert "the saved state is kept as" in banner
        assert "Ctrl-C stops" in banner
        stop(server)
    assert len(list(state.glob(f"{STATE_FILE}.*.old"))) == 1


def test_every_local_stack_keeps_moto_s_state_dump_off_the_terminal(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Not only the CLI's: any LocalStack (tests, notebooks, benchmarks) silences it, and the
    failed execution still keeps its error and cause."""
    with caplog.at_level(logging.DEBUG), running_stack() as stack:
        stack.upload(tmp_path / "empty.csv", key="incoming/empty.csv", body=b"")
        (failed,) = stack.wait_for_executions(1)
    assert failed["status"] == "FAILED"
    assert failed["error"]
    assert failed["cause"]
    dumps = [r for r in caplog.records if r.name.startswith("moto.stepfunctions")]
    assert dumps == []
    assert logging.getLogger(MOTO_STATE_DUMP).level == logging.NOTSET  # given back on stop


def test_an_execution_running_when_the_state_was_saved_comes_back_aborted_and_its_file_dead_lettered(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    fetched, release = threading.Event(), threading.Event()

    def hold_after_fetch(invocation: Invocation) -> None:
        if "FetchFunction" in invocation.function:  # the execution waits here, RUNNING
            fetched.set()
            release.wait(60)

    with running_stack(state_dir=state) as stack:
        stack.invoker.on_invoke(hold_after_fetch)
        key = stack.upload(EVENTS / "records-good.csv", key="incoming/interrupted.csv")
        assert fetched.wait(60)
        stack.save_state()  # as the periodic save would, or a `local up` killed now
        shutil.copy(state / STATE_FILE, tmp_path / "while-running")
        release.set()
        stack.wait_for_executions(1)
    shutil.copy(tmp_path / "while-running", state / STATE_FILE)

    with running_stack(state_dir=state) as again:
        (arn,) = again.aborted_on_restore
        described = again.describe(arn)
        assert (described["status"], described["error"]) == ("ABORTED", STOPPED_ERROR)
        history = again.client("stepfunctions").get_execution_history(executionArn=arn)["events"]
        assert history[-1]["type"] == "ExecutionAborted"
        # As for any aborted execution, the status change event closes its file: one dead letter.
        deadline = time.monotonic() + 30
        while not (dead := again.results().dead_letters(source_key=key)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [entry["error_type"] for entry in dead] == ["ExecutionAborted"]


def test_the_state_is_saved_after_executions_end_so_a_killed_stack_keeps_them(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = free_port()
    with local_up(port, "--state-dir", str(state)) as (server, banner):
        assert "Ctrl-C stops" in banner, banner
        uploaded = run("upload", str(EVENTS / "records-mixed.csv"))
        assert uploaded.exit_code == 0, uploaded.output
        assert server.stdout is not None
        log = ""
        while "succeeded" not in log:
            log += server.stdout.readline()
        deadline = time.monotonic() + 30
        while not (state / STATE_FILE).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        server.kill()  # no Ctrl-C, no save on the way out
        server.wait()
    with local_up(port, "--state-dir", str(state)) as (server, banner):
        assert "state taken up" in banner
        dead = run("dead-letters", "--json")
        assert [entry["line"] for entry in json.loads(dead.stdout)["dead_letters"]] == [4, 6]
        stop(server)


def test_a_state_of_another_template_is_refused_before_it_is_unpickled(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text("Resources: {}\n")

    def store(parameters: dict[str, str]) -> StateStore:
        return StateStore(tmp_path, fingerprint(template, parameters, "predictflow-local", "us-east-1"))

    store({}).save("abcd1234")
    assert store({}).load() is not None
    with pytest.raises(StateMismatch, match=r"saved with parameters \{\}; this stack has parameters"):
        store({"LogLevel": "INFO"}).load()
    template.write_text("Resources: {Queue: {Type: AWS::SQS::Queue}}\n")
    with pytest.raises(StateMismatch, match=r"was saved from another template\.yaml"):
        store({}).load()


def test_ctrl_c_as_soon_as_the_stack_is_up_stops_it_and_saves_its_state(tmp_path: Path) -> None:
    """From the first line saying the stack is up (before the console has started and the
    loop that waits for Ctrl-C has begun), an interrupt stops the stack cleanly and saves it."""
    state = tmp_path / "state"
    command = [str(Path(sys.executable).parent / "predictflow"), "local", "up", "--port", str(free_port()),
               "--console-port", "0", "--state-dir", str(state)]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        line = ""
        while not line.startswith("local stack on") and server.poll() is None:
            line = server.stdout.readline()
        server.send_signal(signal.SIGINT)
        rest, _ = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0, rest
    assert "stopping; saving the state" in rest
    assert "Aborted" not in rest
    assert (state / STATE_FILE).is_file()
