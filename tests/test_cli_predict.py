"""`predictflow predict`: offline batch prediction from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from predictflow.cli import cli
from tests.fixtures import ADULT, ADULT_DATA, EVENTS


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_one_json_line_per_record_with_the_line_number(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["predict", str(EVENTS / "records-good.csv")])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["line"] for line in lines] == [1, 2, 3, 4, 5]
    assert all(line["label"] in (">50K", "<=50K") and 0 < line["probability"] < 1 for line in lines)
    assert all(line["model_version"] == ADULT.model_version for line in lines)
    assert "5 predicted, 0 rejected" in result.stderr


def test_bad_lines_are_reported_and_the_run_goes_on(runner: CliRunner, tmp_path: Path) -> None:
    output, rejects = tmp_path / "out.jsonl", tmp_path / "rejects.txt"
    result = runner.invoke(
        cli, ["predict", str(EVENTS / "records-mixed.csv"), "-o", str(output), "--rejects", str(rejects)]
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["line"] for line in output.read_text().splitlines()] == [2, 3, 5]
    assert rejects.read_text().splitlines() == [
        f"{EVENTS / 'records-mixed.csv'}:4: InvalidValue: age: 'abc' is not a whole number",
        f"{EVENTS / 'records-mixed.csv'}:6: UnknownCategory: race: 'Martian' is not a known category",
    ]
    assert "3 predicted, 2 rejected" in result.stderr


def test_labelled_files_pass_actual_through_and_end_with_quality(runner: CliRunner, tmp_path: Path) -> None:
    sample = tmp_path / "labelled.csv"
    lines = ADULT_DATA.read_text().splitlines()[:2000]
    # The published test split writes its labels with a trailing period.
    sample.write_text("\n".join(line + "." if i % 2 else line for i, line in enumerate(lines)) + "\n")
    result = runner.invoke(cli, ["predict", str(sample), "-o", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 0, result.output
    first = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
    assert first["actual"] == "<=50K"
    assert "on 2000 labelled records: accuracy 0.8" in result.stderr
    auc = float(result.stderr.split("ROC AUC ")[1].split(",")[0])
    assert 0.9 < auc < 1.0


def test_a_missing_file_is_one_clear_line(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["predict", "no-such-file.csv"])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.output


# Run as `predictflow predict` runs, noting at exit which modules the process imported.
NOTING_MODULES = """
import atexit, json, sys
noted = sys.argv.pop(1)
atexit.register(lambda: open(noted, "w").write(json.dumps(sorted(sys.modules))))
from predictflow.cli import main
main()
"""
NOT_FOR_PREDICT = (
    "predictflow.api",
    "predictflow.console",
    "predictflow.local",
    "predictflow.service",
    "predictflow.sources",
    "predictflow.pipeline.stores",
    "predictflow.cli.commands",
    "predictflow.cli.send",
    "botocore.config",  # clients' (the predictors import botocore.exceptions only, to name errors)
    "moto",
    "boto3",
    "rich",
    "aws_lambda_powertools",
)


def test_predict_imports_neither_the_stack_nor_the_api(tmp_path: Path) -> None:
    """What `predict` imports is its start-up time: the API, the console, the local stack, boto3
    and rich are for the other commands (about 0.3 s before they were imported lazily)."""
    noted = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", NOTING_MODULES, str(noted), "predict", str(EVENTS / "records-good.csv")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 5
    imported = json.loads(noted.read_text())
    assert "predictflow.offline" in imported  # the wrapper saw the command run
    assert [
        m for m in imported if m.split(".")[0] in ("moto", "boto3", "rich", "aws_lambda_powertools")
    ] == []
    assert [m for m in imported if m.startswith(NOT_FOR_PREDICT)] == []


def test_every_command_is_listed_and_runs_its_help(runner: CliRunner) -> None:
    listed = runner.invoke(cli, ["--help"])
    assert listed.exit_code == 0, listed.output
    names = [line.split()[0] for line in listed.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert names == [
        *("console", "dead-letters", "dlq", "executions", "local", "logs", "model", "predict"),
        *("replay", "results", "send", "show", "upload", "wait"),
    ]
    for name in names:
        shown = runner.invoke(cli, [name, "--help"])
        assert shown.exit_code == 0, (name, shown.output)
        assert f"Usage: cli {name}" in shown.stdout
