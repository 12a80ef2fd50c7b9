"""`predictflow local run` (the README's main job) and `local up`'s endpoint, end to end."""

from __future__ import annotations

import gc
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from predictflow.cli import cli
from predictflow.cli.aws import LOCAL_REGION, local_endpoint, read_local_state
from predictflow.local.stack import REGION, LocalStack
from tests.fixtures import EVENTS, free_port


def test_local_run_json_summary_and_outputs(tmp_path: Path) -> None:
    files = [
        str(EVENTS / name) for name in ("records-good.csv", "records-mixed.csv", "records-malformed.csv")
    ]
    result = CliRunner().invoke(cli, ["local", "run", *files, "--json", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    by_file = {Path(row["file"]).name: row for row in summary["files"]}
    assert set(by_file["records-mixed.csv"]) == {
        "file", "key", "execution", "status", "records", "predicted", "dead_lettered", "seconds", "error",
        "cause",
    }  # fmt: skip
    assert (by_file["records-mixed.csv"]["predicted"], by_file["records-mixed.csv"]["dead_lettered"]) == (
        3,
        2,
    )
    assert (
        by_file["records-malformed.csv"]["predicted"],
        by_file["records-malformed.csv"]["dead_lettered"],
    ) == (0, 3)
    assert summary["totals"] == {"records": 13, "predicted": 8, "dead_lettered": 5}
    predictions = [json.loads(line) for line in (tmp_path / "predictions" / "records-mixed.csv.jsonl").open()]
    assert [p["line"] for p in predictions] == [2, 3, 5]
    assert all({"line", "model_version", "label", "probability"} <= set(p) for p in predictions)
    dead = [json.loads(line) for line in (tmp_path / "dead-letter" / "records-mixed.csv.jsonl").open()]
    assert [(d["line"], d["error_type"]) for d in dead] == [(4, "InvalidValue"), (6, "UnknownCategory")]
    assert all({"source_key", "line", "raw", "error_type", "error_message"} <= set(d) for d in dead)


def test_local_run_exit_status_is_0_for_dead_letters_3_for_a_failed_execution(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    mixed = str(EVENTS / "records-mixed.csv")
    assert CliRunner().invoke(cli, ["local", "run", mixed]).exit_code == 0
    failed = CliRunner().invoke(cli, ["local", "run", mixed, str(empty)])
    assert failed.exit_code == 3
    assert "Exit status" in CliRunner().invoke(cli, ["local", "run", "--help"]).stdout


def test_local_run_keeps_files_of_the_same_name_apart(tmp_path: Path) -> None:
    for folder, name in (("a", "records-good.csv"), ("b", "records-mixed.csv")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "r.csv").write_bytes((EVENTS / name).read_bytes())
    files = [str(tmp_path / "a" / "r.csv"), str(tmp_path / "b" / "r.csv")]
    result = CliRunner().invoke(
        cli, ["local", "run", *files, "--json", "--out", str(tmp_path / "out"), "--timeout", "60"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [(row["key"], row["predicted"]) for row in summary["files"]] == [
        ("incoming/a/r.csv", 5),
        ("incoming/b/r.csv", 3),
    ]
    assert len((tmp_path / "out" / "predictions" / "a" / "r.csv.jsonl").read_text().splitlines()) == 5
    assert len((tmp_path / "out" / "predictions" / "b" / "r.csv.jsonl").read_text().splitlines()) == 3


def test_local_run_out_takes_a_254_byte_file_name_and_prints_its_summary(tmp_path: Path) -> None:
    long = tmp_path / ("x" * 250 + ".csv")
    long.write_bytes((EVENTS / "records-good.csv").read_bytes())
    result = CliRunner().invoke(cli, ["local", "run", str(long), "--json", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"]["predicted"] == 5
    [written] = (tmp_path / "out" / "predictions").iterdir()
    assert written.name.startswith("x" * 200)
    assert len(written.read_text().splitlines()) == 5


def test_local_run_table_names_every_file() -> None:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["local", "run", str(EVENTS / "records-good.csv")])
    assert result.exit_code == 0, result.output
    assert "records-good.csv" in result.stdout
    assert "SUCCEEDED" in result.stdout


def test_a_failed_execution_keeps_its_error_and_cause_in_the_summary(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = CliRunner().invoke(cli, ["local", "run", str(empty), "--json"])
    assert result.exit_code == 3  # documented: an execution failed
    summary = json.loads(result.stdout)
    assert summary["files"][0]["status"] == "FAILED"
    assert summary["files"][0]["error"] == "NoRecords"
    assert "no record lines" in summary["files"][0]["cause"]


def test_the_served_stack_answers_the_cli_over_http() -> None:
    port = free_port()
    stack = LocalStack(server_port=port)
    stack.start()
    try:
        endpoint = ["--endpoint-url", f"http://127.0.0.1:{port}"]
        uploaded = CliRunner().invoke(cli, [*endpoint, "upload", str(EVENTS / "records-mixed.csv")])
        assert uploaded.exit_code == 0, uploaded.output
        assert "arn:aws:states:" in uploaded.stdout
        stack.wait_for_executions(1)
        dead = CliRunner().invoke(cli, [*endpoint, "dead-letters", "--json"])
        assert [entry["line"] for entry in json.loads(dead.stdout)["dead_letters"]] == [4, 6]
    finally:
        stack.stop()


def test_many_files_leave_stdout_to_the_summary(tmp_path: Path) -> None:
    """Powertools prints buffered metrics once a metric holds 100 values; not into our JSON."""
    line = (EVENTS / "records-good.csv").read_text().splitlines()[0] + "\n"
    files = []
    for index in range(110):
        path = tmp_path / f"one-{index}.csv"
        path.write_text(line)
        files.append(str(path))
    result = CliRunner().invoke(cli, ["local", "run", *files, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"] == {"records": 110, "predicted": 110, "dead_lettered": 0}


def test_local_up_serves_until_ctrl_c_and_logs_each_execution(tmp_path: Path) -> None:
    port = free_port()
    command = [str(Path(sys.executable).parent / "predictflow"), "local", "up", "--port", str(port),
               "--state-dir", str(tmp_path / "state")]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        deadline = time.monotonic() + 60
        banner = ""
        while "Ctrl-C stops" not in banner and time.monotonic() < deadline:
            banner += server.stdout.readline()
        assert f"local stack on http://127.0.0.1:{port}" in banner
        # --local finds the stack on the port it was given, as the banner's hint says.
        assert "predictflow --local upload" in banner
        # ... and in its own region, whatever the user's environment names.
        uploaded = CliRunner(env={"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}).invoke(
            cli, ["--local", "upload", str(EVENTS / "records-good.csv")]
        )
        assert uploaded.exit_code == 0, uploaded.output
        listed = CliRunner().invoke(cli, ["--local", "--region", "ap-south-1", "executions", "--json"])
        assert listed.exit_code == 0, listed.output
        assert uploaded.exit_code == 0, uploaded.output
        log = ""
        while "succeeded" not in log and time.monotonic() < deadline:
            log += server.stdout.readline()
        assert "started" in log
        assert f"--endpoint-url http://127.0.0.1:{port}" in log  # the hint names the port it serves
        assert "records-good.csv" in log
        server.send_signal(signal.SIGINT)
        rest, _ = server.communicate(timeout=30)
        assert "stopping" in rest
        assert server.returncode == 0
        assert read_local_state() is None
    finally:
        if server.poll() is None:
            server.kill()


def test_the_local_region_is_the_stacks() -> None:
    assert LOCAL_REGION == REGION


def test_local_finds_a_stack_served_on_another_port_and_says_when_it_is_starting() -> None:
    """`local up --port N` then `--local ...`: the commands go to port N, and while it still
    deploys they say so rather than send the user to `sam deploy`."""
    from moto.server import ThreadedMotoServer

    from predictflow.cli.aws import clear_local_state, write_local_state

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        write_local_state(f"http://127.0.0.1:{port}", ready=False)
        starting = CliRunner().invoke(cli, ["--local", "executions"])
        assert starting.exit_code == 1
        assert f"the local stack at http://127.0.0.1:{port} is starting" in starting.output
        write_local_state(f"http://127.0.0.1:{port}", ready=True)
        ready = CliRunner().invoke(cli, ["--local", "executions"])
        assert "no stack named 'predictflow-local'" in ready.output
    finally:
        clear_local_state()
        server.stop()
    assert local_endpoint() == "http://127.0.0.1:4566"  # once it stopped, the default port again


def test_local_run_log_level_info_prints_the_functions_lines_on_stderr_not_in_the_summary() -> None:
    mixed = str(EVENTS / "records-mixed.csv")
    verbose = CliRunner().invoke(cli, ["local", "run", mixed, "--json", "--log-level", "INFO"])
    assert verbose.exit_code == 0, verbose.output
    assert json.loads(verbose.stdout)["totals"]["dead_lettered"] == 2
    assert '"message":"validated chunk"' in verbose.stderr
    quiet = CliRunner().invoke(cli, ["local", "run", mixed, "--json"])
    assert "validated chunk" not in quiet.stderr


def test_local_run_starts_without_full_collections_and_gives_the_collector_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The deploy makes millions of long-lived objects; a full collection over them during the
    start cost a quarter of a second of every `local run`. The collector is the caller's again
    afterwards: enabled, nothing left frozen."""
    full_passes_in_start: list[int] = []
    starting = False
    original_start = LocalStack.start

    def start(stack: LocalStack) -> None:
        nonlocal starting
        starting = True
        try:
            original_start(stack)
        finally:
            starting = False

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2 and starting:
            full_passes_in_start.append(1)

    monkeypatch.setattr(LocalStack, "start", start)
    gc.callbacks.append(watch)
    try:
        result = CliRunner().invoke(cli, ["local", "run", str(EVENTS / "records-good.csv"), "--json"])
    finally:
        gc.callbacks.remove(watch)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"]["predicted"] == 5
    assert full_passes_in_start == []
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
