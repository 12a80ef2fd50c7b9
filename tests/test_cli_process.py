"""The CLI as a real process: how it ends in a pipe, on a busy port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.fixtures import EVENTS

PREDICTFLOW = [sys.executable, "-c", "from predictflow.cli import main; main()"]


def test_a_closed_pipe_ends_the_command_quietly_with_the_shells_status(tmp_path: Path) -> None:
    """`predictflow predict big.csv | head -1`: as Unix tools do, no message, status 128 + SIGPIPE."""
    line = (EVENTS / "records-good.csv").read_text().splitlines()[0]
    big = tmp_path / "big.csv"
    big.write_text((line + "\n") * 20_000)
    process = subprocess.Popen(
        [*PREDICTFLOW, "predict", str(big)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ
    )
    assert process.stdout is not None
    assert process.stderr is not None
    assert process.stdout.readline().startswith(b"{")
    process.stdout.close()  # what `head -1` does once it has its line
    errors = process.stderr.read().decode()
    assert process.wait(timeout=120) == 128 + signal.SIGPIPE
    assert "BrokenPipe" not in errors
    assert "Error" not in errors


def test_a_failed_execution_shows_its_error_not_motos_state_dump(tmp_path: Path) -> None:
    """moto logs each failed state with a dump of its internal state; the terminal gets one line."""
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    done = subprocess.run(
        [*PREDICTFLOW, "local", "run", str(empty)], capture_output=True, text=True, timeout=300
    )
    assert "FAILED" in done.stdout
    assert "FailureEventException" not in done.stderr
    assert "empty.csv: NoRecords: The file holds no record lines" in done.stderr


def test_local_up_on_a_busy_port_fails_at_once() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [*PREDICTFLOW, "local", "up", "--port", str(port)], capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 1
    assert done.stderr.strip() == f"Error: port {port} is in use; use --port"
